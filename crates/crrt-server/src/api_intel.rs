//! `/api/v1/indicators`: sharing, importing, reading (always filtered by
//! TLP in the platform), exporting as STIX 2.1 or MISP, and promoting a
//! finding's value. Merged into the API's router and OpenAPI document.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crrt_platform::{
    BatchSettings, Format, ImportReport, IndicatorFilter, IndicatorUpdate, IndicatorView,
    NewIndicator, Tlp,
};
use serde::{Deserialize, Serialize};

use crate::api::{ApiJson, ErrorBody, PageQuery, Paged, Signed};
use crate::{AppError, AppState};

/// Largest import accepted (a STIX bundle or MISP event of 100,000 entries).
pub const MAX_IMPORT_BYTES: usize = 64 << 20;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/indicators",
            get(list_indicators).post(share_indicator),
        )
        .route("/api/v1/indicators/count", get(count_indicators))
        .route(
            "/api/v1/indicators/import",
            post(import_indicators).layer(axum::extract::DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/api/v1/indicators/export", get(export_indicators))
        .route(
            "/api/v1/indicators/{id}",
            get(get_indicator).post(update_indicator),
        )
        .route("/api/v1/findings/{id}/promote", post(promote_finding))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_indicators,
        share_indicator,
        count_indicators,
        import_indicators,
        export_indicators,
        get_indicator,
        update_indicator,
        promote_finding
    ),
    components(schemas(Format, Tlp))
)]
pub(crate) struct IntelDoc;

/// What to narrow indicator lists, counts and exports to.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndicatorQuery {
    /// `ipv4`, `domain`, `sha256`, ...
    kind: Option<String>,
    /// `clear`, `green`, `amber`, `amber+strict`, `red`.
    tlp: Option<Tlp>,
    /// A part of the value (case-insensitive).
    q: Option<String>,
    mission: Option<String>,
    case: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    /// Exports: `stix` (default) or `misp`.
    format: Option<String>,
}

impl IndicatorQuery {
    fn filter(&self) -> IndicatorFilter {
        let some = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        IndicatorFilter {
            kind: some(&self.kind),
            tlp: self.tlp.map(|t| t.as_str().to_owned()),
            search: some(&self.q),
            mission_id: some(&self.mission),
            case_id: some(&self.case),
            updated_after: None,
        }
    }
}

fn query_of(
    query: Result<Query<IndicatorQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<IndicatorQuery, AppError> {
    Ok(query?.0)
}

#[utoipa::path(get, path = "/api/v1/indicators", tag = "indicators", params(IndicatorQuery), responses((status = 200, description = "Only what the reader's TLP allows", body = Paged<IndicatorView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_indicators(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<IndicatorQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let query = query_of(query)?;
    let page = PageQuery::from_parts(query.limit, query.offset).page()?;
    let items = state
        .platform
        .indicators(&actor, &query.filter(), page)
        .await?;
    Ok(Json(Paged::new(items, page)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Count {
    count: i64,
}

#[utoipa::path(get, path = "/api/v1/indicators/count", tag = "indicators", params(IndicatorQuery), responses((status = 200, description = "How many the reader may see", body = Count), (status = 401, body = ErrorBody)))]
async fn count_indicators(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<IndicatorQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let query = query_of(query)?;
    let count = state
        .platform
        .count_indicators(&actor, &query.filter())
        .await?;
    Ok(Json(Count { count }))
}

#[utoipa::path(post, path = "/api/v1/indicators", tag = "indicators", request_body = NewIndicator, responses((status = 201, body = IndicatorView), (status = 401, body = ErrorBody), (status = 404, description = "The case or mission to link is not visible", body = ErrorBody), (status = 409, description = "Already shared by this organisation", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn share_indicator(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ApiJson(body): ApiJson<NewIndicator>,
) -> Result<impl IntoResponse, AppError> {
    let view = state.platform.share_indicator(&actor, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `?format=` and the batch's shared settings.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportQuery {
    /// `stix`, `misp`, `csv` or `text` (one value per line).
    format: Format,
    /// The level of entries that carry none.
    tlp: Tlp,
    confidence: Option<u8>,
    /// Link everything to this case (or mission).
    case: Option<String>,
    mission: Option<String>,
    /// Tags for every entry, separated by commas.
    tags: Option<String>,
    /// TLP:AMBER recipients (organisation names), separated by commas.
    recipient_orgs: Option<String>,
    /// TLP:RED recipients (e-mails), separated by commas.
    recipient_users: Option<String>,
}

fn list_param(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The raw file in the body. Pasted lists and CSV are all or none (422
/// with the problems, nothing stored); STIX and MISP store the valid rest
/// and list what they skipped.
#[utoipa::path(post, path = "/api/v1/indicators/import", tag = "indicators", params(ImportQuery), request_body(content = String, content_type = "application/octet-stream"), responses((status = 200, description = "Stored; skipped entries are listed", body = ImportReport), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, description = "Refused whole (see problems), or not the format named", body = ImportReport)))]
async fn import_indicators(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let bytes = body.map_err(|e| AppError::new(e.status(), "too_large", e.body_text()))?;
    let settings = BatchSettings {
        tlp: query.tlp,
        confidence: query.confidence,
        tags: list_param(query.tags.as_deref()),
        case_id: query.case,
        mission_id: query.mission,
        recipient_orgs: list_param(query.recipient_orgs.as_deref()),
        recipient_users: list_param(query.recipient_users.as_deref()),
    };
    let report = state
        .platform
        .import_indicators(&actor, query.format, &bytes, settings)
        .await?;
    let status = if report.refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)).into_response())
}

/// Everything the reader may see under the filter, as one STIX 2.1 bundle
/// (default) or one MISP event (`format=misp`).
#[utoipa::path(get, path = "/api/v1/indicators/export", tag = "indicators", params(IndicatorQuery), responses((status = 200, description = "A STIX 2.1 bundle or a MISP event", content_type = "application/json"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, description = "More than 100,000: narrow the filter", body = ErrorBody)))]
async fn export_indicators(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<IndicatorQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let query = query_of(query)?;
    let filter = query.filter();
    let document = match query.format.as_deref().unwrap_or("stix") {
        "stix" => state.platform.export_stix(&actor, &filter).await?,
        "misp" => {
            state
                .platform
                .export_misp(&actor, &filter, "Indicators shared through CRRT")
                .await?
        }
        other => {
            return Err(AppError::bad_request(format!(
                "format {other:?} is not stix or misp"
            )));
        }
    };
    Ok(Json(document).into_response())
}

#[utoipa::path(get, path = "/api/v1/indicators/{id}", tag = "indicators", params(("id" = String, Path, description = "Indicator id")), responses((status = 200, body = IndicatorView), (status = 401, body = ErrorBody), (status = 404, description = "Not found, or not for your eyes", body = ErrorBody)))]
async fn get_indicator(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.indicator(&actor, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/indicators/{id}", tag = "indicators", params(("id" = String, Path, description = "Indicator id")), request_body = IndicatorUpdate, responses((status = 200, body = IndicatorView), (status = 401, body = ErrorBody), (status = 403, description = "Not its source", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_indicator(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<IndicatorUpdate>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state.platform.update_indicator(&actor, &id, body).await?,
    ))
}

/// A value seen in a finding (an address, domain, hash, account) shared
/// as an indicator linked to the finding's case.
#[utoipa::path(post, path = "/api/v1/findings/{id}/promote", tag = "indicators", params(("id" = String, Path, description = "Finding id")), request_body = NewIndicator, responses((status = 201, body = IndicatorView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn promote_finding(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewIndicator>,
) -> Result<impl IntoResponse, AppError> {
    let view = state
        .platform
        .promote_finding_value(&actor, &id, body)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}
