//! `/api/v1/missions/{id}/reports`: the situation and final reports as
//! JSON, Markdown, HTML or PDF; issuing situation reports; the team's
//! recommendations. Merged into the API's router and OpenAPI document.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use crrt_platform::{IssuedSitrep, Recommendations, Report, ReportKind};
use serde::Deserialize;

use crate::api::{ApiJson, ErrorBody, Signed};
use crate::report::{self, PdfError};
use crate::{AppError, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/missions/{id}/reports/final", get(final_report))
        .route(
            "/api/v1/missions/{id}/reports/situation",
            get(situation_report).post(issue_sitrep),
        )
        .route("/api/v1/missions/{id}/sitreps", get(sitreps))
        .route(
            "/api/v1/missions/{id}/recommendations",
            get(recommendations).put(set_recommendations),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    final_report,
    situation_report,
    issue_sitrep,
    sitreps,
    recommendations,
    set_recommendations
))]
pub(crate) struct ReportsDoc;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// `json` (default), `md`, `html` or `pdf`.
    format: Option<String>,
    /// Situation reports: start here (RFC 3339) instead of at the last one issued.
    since: Option<String>,
}

/// The report in the asked format, named for download.
pub(crate) async fn render(report: &Report, format: &str) -> Result<Response, AppError> {
    let name = format!(
        "crrt-{}-report-{}",
        report.kind,
        report.generated_at.get(..10).unwrap_or("now")
    );
    let (content_type, bytes, ext): (&str, Vec<u8>, &str) = match format {
        "json" => return Ok(Json(report).into_response()),
        "md" | "markdown" => (
            "text/markdown; charset=utf-8",
            report::markdown(report).into_bytes(),
            "md",
        ),
        "html" => (
            "text/html; charset=utf-8",
            report::html(report).into_bytes(),
            "html",
        ),
        "pdf" => match report::pdf(report).await {
            Ok(bytes) => ("application/pdf", bytes, "pdf"),
            Err(PdfError::Unavailable(why)) => {
                return Err(AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "pdf_unavailable",
                    why,
                ));
            }
            Err(PdfError::Failed(why)) => {
                tracing::warn!(%why, "printing a report failed");
                return Err(AppError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "pdf_failed",
                    why,
                ));
            }
        },
        other => {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("unknown format {other:?}: use json, md, html or pdf"),
            ));
        }
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{name}.{ext}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    // The marking travels with the bytes, for proxies and scripts too.
    if let Ok(value) = HeaderValue::from_str(&report.tlp) {
        headers.insert("x-tlp", value);
    }
    Ok(response)
}

async fn respond(
    state: &AppState,
    actor: &crrt_platform::Actor,
    id: &str,
    kind: ReportKind,
    query: ReportQuery,
) -> Result<Response, AppError> {
    let report = state
        .platform
        .report(actor, id, kind, query.since.as_deref())
        .await?;
    render(&report, query.format.as_deref().unwrap_or("json")).await
}

#[utoipa::path(get, path = "/api/v1/missions/{id}/reports/final", tag = "reports", params(("id" = String, Path, description = "Mission id"), ReportQuery), responses((status = 200, description = "The final report (JSON, or Markdown/HTML/PDF by `format`); `X-TLP` carries its marking", body = Report), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, description = "PDF asked and no Chromium on the server", body = ErrorBody)))]
async fn final_report(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    respond(&state, &actor, &id, ReportKind::Final, query).await
}

#[utoipa::path(get, path = "/api/v1/missions/{id}/reports/situation", tag = "reports", params(("id" = String, Path, description = "Mission id"), ReportQuery), responses((status = 200, description = "What happened since the last situation report issued (or `since`)", body = Report), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn situation_report(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    respond(&state, &actor, &id, ReportKind::Situation, query).await
}

#[utoipa::path(post, path = "/api/v1/missions/{id}/reports/situation", tag = "reports", params(("id" = String, Path, description = "Mission id")), responses((status = 201, description = "Issued: the next one starts where this one ends", body = Report), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn issue_sitrep(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let report = state.platform.issue_sitrep(&actor, &id).await?;
    Ok((StatusCode::CREATED, Json(report)))
}

#[utoipa::path(get, path = "/api/v1/missions/{id}/sitreps", tag = "reports", params(("id" = String, Path, description = "Mission id")), responses((status = 200, description = "Situation reports issued, latest first", body = [IssuedSitrep]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn sitreps(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.sitreps(&actor, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/missions/{id}/recommendations", tag = "reports", params(("id" = String, Path, description = "Mission id")), responses((status = 200, description = "The team's recommendations, or null", body = Option<Recommendations>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn recommendations(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.recommendations(&actor, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecommendationsBody {
    /// Markdown, at most 100,000 bytes.
    markdown: String,
}

#[utoipa::path(put, path = "/api/v1/missions/{id}/recommendations", tag = "reports", params(("id" = String, Path, description = "Mission id")), request_body = RecommendationsBody, responses((status = 200, body = Recommendations), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn set_recommendations(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RecommendationsBody>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .set_recommendations(&actor, &id, &body.markdown)
            .await?,
    ))
}
