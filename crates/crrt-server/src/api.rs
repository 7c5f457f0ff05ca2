//! Routes and handlers of `/api/v1`. Handlers translate HTTP to platform
//! calls and back; the platform checks access and validates.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use crrt_platform::{
    Actor, ChecklistUpdate, Decision, MissionStatus, NewCase, NewOrg, NewRequest, NewTask, NewUser,
    Page, Position, ProfileUpdate, TaskUpdate, UserView,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{AppError, AppState};
use crrt_platform::{
    Activation, ApiToken, AssistanceRequest, AuditEvent, Case, CaseView, Evidence, Hunt, Mission,
    MissionView, NewHunt, Note, Organisation, RulePack, StoredFinding, Task, TimelineEntry,
};

pub(crate) const SESSION_COOKIE: &str = "crrt_session";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/session", post(login).delete(logout))
        .route("/api/v1/me", get(me).post(update_profile))
        .route("/api/v1/organisations", get(list_orgs).post(create_org))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", post(update_user))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/requests", get(list_requests).post(file_request))
        .route("/api/v1/requests/{id}", get(get_request))
        .route("/api/v1/requests/{id}/withdraw", post(withdraw_request))
        .route("/api/v1/requests/{id}/review", post(review_request))
        .route("/api/v1/requests/{id}/decision", post(decide_request))
        .route(
            "/api/v1/requests/{id}/council",
            get(council).post(record_position),
        )
        .route("/api/v1/missions", get(list_missions))
        .route("/api/v1/missions/{id}", get(get_mission))
        .route("/api/v1/missions/{id}/checklist", post(update_checklist))
        .route("/api/v1/missions/{id}/proposal", get(propose_team))
        .route("/api/v1/missions/{id}/team", post(confirm_team))
        .route("/api/v1/missions/{id}/status", post(move_mission))
        .route(
            "/api/v1/missions/{id}/cases",
            get(list_cases).post(create_case),
        )
        .route("/api/v1/cases/{id}", get(get_case))
        .route("/api/v1/cases/{id}/tasks", post(add_task))
        .route("/api/v1/cases/{id}/notes", post(add_note))
        .route("/api/v1/tasks/{id}", post(update_task))
        .route(
            "/api/v1/cases/{id}/evidence",
            get(list_evidence).post(upload_evidence),
        )
        .route("/api/v1/evidence/{id}/content", get(download_evidence))
        .route("/api/v1/evidence/{id}/custody", get(evidence_custody))
        .route(
            "/api/v1/rulepacks",
            get(list_rulepacks)
                .post(upload_rulepack)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crrt_platform::rulepacks::MAX_PACK_BYTES,
                )),
        )
        .route("/api/v1/rulepacks/{id}", get(get_rulepack))
        .route("/api/v1/cases/{id}/hunts", get(list_hunts).post(start_hunt))
        .route("/api/v1/hunts/{id}", get(get_hunt))
        .route("/api/v1/hunts/{id}/cancel", post(cancel_hunt))
        .route("/api/v1/cases/{id}/findings", get(list_findings))
        .route("/api/v1/cases/{id}/timeline", get(timeline))
        .route(
            "/api/v1/cases/{id}/findings/import",
            post(import_findings).layer(axum::extract::DefaultBodyLimit::max(256 << 20)),
        )
        .route("/api/v1/findings/{id}/triage", post(triage_finding))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/openapi.json", get(openapi))
}

/// JSON bodies whose rejections use our error format.
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// `?limit=&offset=`: every list is paginated (default 50, at most 500).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

impl PageQuery {
    pub(crate) fn from_parts(limit: Option<i64>, offset: Option<i64>) -> PageQuery {
        PageQuery { limit, offset }
    }

    pub(crate) fn page(&self) -> Result<Page, AppError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(1..=500).contains(&limit) || offset < 0 {
            return Err(AppError::bad_request(
                "limit must be 1 to 500 and offset 0 or more",
            ));
        }
        Ok(Page { limit, offset })
    }
}

async fn page_of(
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Page, AppError> {
    let Query(query) = query?;
    query.page()
}

/// A page of items, and where the next one starts when there may be one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Paged<T> {
    items: Vec<T>,
    limit: i64,
    offset: i64,
    next_offset: Option<i64>,
}

impl<T> Paged<T> {
    pub(crate) fn new(items: Vec<T>, page: Page) -> Self {
        let next_offset = (items.len() as i64 == page.limit).then_some(page.offset + page.limit);
        Paged {
            items,
            limit: page.limit,
            offset: page.offset,
            next_offset,
        }
    }
}

/// The signed-in actor, from `Authorization: Bearer TOKEN` or the session
/// cookie. Handlers that take it refuse anonymous requests with 401.
pub(crate) struct Signed(pub Actor);

impl FromRequestParts<AppState> for Signed {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    AppError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        "Authorization must be `Bearer TOKEN`",
                    )
                })?;
            return Ok(Signed(state.platform.token_actor(token.trim()).await?));
        }
        let token = session_cookie(&parts.headers).ok_or_else(|| {
            AppError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first")
        })?;
        Ok(Signed(state.platform.session_actor(&token).await?))
    }
}

pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

pub(crate) fn cookie(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_owned())
}

#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "The database answers"), (status = 503, description = "It does not", body = ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.platform.store().ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database does not answer",
            )
            .into_response()
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = Login, responses((status = 200, description = "Signed in; sets the HTTP-only session cookie", body = SignedIn), (status = 401, description = "Wrong email or password", body = ErrorBody), (status = 429, description = "Too many failures; see Retry-After", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, AppError> {
    let credentials = state
        .platform
        .login(&body.email, &body.password, &address.ip().to_string())
        .await
        .map_err(|e| match e {
            crrt_platform::PlatformError::Unauthenticated => AppError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "wrong email or password",
            ),
            other => other.into(),
        })?;
    let mut response = Json(json!({
        "user": UserView::from(&credentials.user),
        "expires_at": credentials.expires_at,
    }))
    .into_response();
    set_session_cookie(&mut response, &state, &credentials.session_token);
    Ok(response)
}

/// The session cookie: HTTP-only, same-site only, for the session's life.
pub(crate) fn set_session_cookie(response: &mut Response, state: &AppState, token: &str) {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        crrt_platform::auth::SESSION_HOURS * 3600
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Ends the session named by the request's cookie, and expires the cookie.
pub(crate) async fn end_session(
    state: &AppState,
    headers: &HeaderMap,
    response: &mut Response,
) -> Result<(), AppError> {
    if let Some(token) = session_cookie(headers) {
        state.platform.logout(&token).await?;
    }
    let expired = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(())
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204, description = "Signed out")))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let mut response = StatusCode::NO_CONTENT.into_response();
    end_session(&state, &headers, &mut response).await?;
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "session", responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
async fn me(Signed(actor): Signed) -> Json<UserView> {
    Json(UserView::from(&actor.user))
}

#[utoipa::path(get, path = "/api/v1/organisations", tag = "organisations", params(PageQuery), responses((status = 200, body = Paged<Organisation>), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody)))]
async fn list_orgs(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    let items = state.platform.organisations(&actor, page).await?;
    Ok(Json(Paged::new(items, page)))
}

#[utoipa::path(post, path = "/api/v1/organisations", tag = "organisations", request_body = NewOrg, responses((status = 201, body = Organisation), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn create_org(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ApiJson(body): ApiJson<NewOrg>,
) -> Result<impl IntoResponse, AppError> {
    let org = state.platform.create_org(Some(&actor), body).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery), responses((status = 200, body = Paged<UserView>), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    let items = state.platform.users(&actor, page).await?;
    Ok(Json(Paged::new(items, page)))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, responses((status = 201, description = "The user, and the generated password if none was given", body = CreatedUser), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<impl IntoResponse, AppError> {
    let (user, password) = state.platform.create_user(Some(&actor), body).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": UserView::from(&user), "generated_password": password})),
    ))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(PageQuery), responses((status = 200, body = Paged<ApiToken>), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody)))]
async fn list_tokens(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    let items = state.platform.tokens(&actor, page).await?;
    Ok(Json(Paged::new(items, page)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    /// An admin may create a token for someone else.
    email: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewTokenBody, responses((status = 201, description = "The token record and its secret, shown once", body = CreatedToken), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<impl IntoResponse, AppError> {
    let email = body.email.unwrap_or_else(|| actor.user.email.clone());
    let new = state
        .platform
        .create_token(Some(&actor), &email, &body.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": new.token, "secret": new.secret})),
    ))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "Object id")), responses((status = 204, description = "Revoked"), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn revoke_token(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    state.platform.revoke_token(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(PageQuery), responses((status = 200, body = Paged<AssistanceRequest>), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody)))]
async fn list_requests(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    let items = state.platform.requests(&actor, page).await?;
    Ok(Json(Paged::new(items, page)))
}

#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = NewRequest, responses((status = 201, body = AssistanceRequest), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn file_request(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ApiJson(body): ApiJson<NewRequest>,
) -> Result<impl IntoResponse, AppError> {
    let request = state.platform.file_request(&actor, body).await?;
    Ok((StatusCode::CREATED, Json(request)))
}

#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests", params(("id" = String, Path, description = "Object id")), responses((status = 200, body = AssistanceRequest), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody)))]
async fn get_request(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.request(&actor, &id).await?))
}

/// The version of the object the client read, for optimistic concurrency.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Versioned {
    version: i64,
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", tag = "requests", params(("id" = String, Path, description = "Object id")), request_body = Versioned, responses((status = 200, body = AssistanceRequest), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn withdraw_request(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Versioned>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .withdraw_request(&actor, &id, body.version)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/review", tag = "activation", params(("id" = String, Path, description = "Object id")), request_body = ReviewBody, responses((status = 200, body = AssistanceRequest), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn review_request(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .review_request(
                &actor,
                &id,
                body.version,
                body.rotating_participant.as_deref(),
            )
            .await?,
    ))
}

/// Starting the review convenes the council.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    version: i64,
    /// The rotating participant of the year (a member state team's name);
    /// the lead participant is the coordinator's own team.
    rotating_participant: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum Outcome {
    Accept,
    Decline,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    version: i64,
    outcome: Outcome,
    /// Required with `decline`: it goes to the requester.
    reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/decision", tag = "activation", params(("id" = String, Path, description = "Object id")), request_body = DecisionBody, responses((status = 200, description = "Decided; accepting opens the mission", body = AssistanceRequest), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn decide_request(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .decide_request(
                &actor,
                &id,
                body.version,
                match body.outcome {
                    Outcome::Accept => Decision::Accept,
                    Outcome::Decline => Decision::Decline {
                        reason: body.reason.unwrap_or_default(),
                    },
                },
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    from: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Paged<AuditEvent>), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody)))]
async fn audit(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(query) = query?;
    let page = PageQuery {
        limit: query.limit,
        offset: Some(query.from.unwrap_or(1).max(1) - 1),
    }
    .page()?;
    let items = state
        .platform
        .audit_trail(&actor, page.offset + 1, page.limit)
        .await?;
    Ok(Json(Paged::new(items, page)))
}

#[utoipa::path(get, path = "/api/v1/requests/{id}/council", tag = "activation", params(("id" = String, Path, description = "Object id")), responses((status = 200, body = Activation), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody)))]
async fn council(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.activation(&actor, &id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PositionBody {
    /// The member state team's organisation name.
    organisation: String,
    position: Position,
}

#[utoipa::path(post, path = "/api/v1/requests/{id}/council", tag = "activation", params(("id" = String, Path, description = "Object id")), request_body = PositionBody, responses((status = 200, body = Activation), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn record_position(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PositionBody>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .record_position(&actor, &id, &body.organisation, body.position)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/missions", tag = "missions", params(PageQuery), responses((status = 200, body = Paged<Mission>), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody)))]
async fn list_missions(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    let items = state.platform.missions(&actor, page).await?;
    Ok(Json(Paged::new(items, page)))
}

#[utoipa::path(get, path = "/api/v1/missions/{id}", tag = "missions", params(("id" = String, Path, description = "Object id")), responses((status = 200, body = MissionView), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody)))]
async fn get_mission(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.mission(&actor, &id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChecklistBody {
    version: i64,
    legal_basis: Option<bool>,
    points_of_contact: Option<bool>,
    secure_communications: Option<bool>,
    deployment: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/missions/{id}/checklist", tag = "missions", params(("id" = String, Path, description = "Object id")), request_body = ChecklistBody, responses((status = 200, body = MissionView), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn update_checklist(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ChecklistBody>,
) -> Result<impl IntoResponse, AppError> {
    let update = ChecklistUpdate {
        legal_basis: body.legal_basis,
        points_of_contact: body.points_of_contact,
        secure_communications: body.secure_communications,
        deployment: body.deployment,
    };
    Ok(Json(
        state
            .platform
            .update_checklist(&actor, &id, body.version, update)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ProposalQuery {
    size: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/missions/{id}/proposal", tag = "missions", params(("id" = String, Path, description = "Mission id"), ProposalQuery), responses((status = 200, body = Proposal), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody)))]
async fn propose_team(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<ProposalQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(query) = query?;
    let size = query.size.unwrap_or(5);
    if !(1..=50).contains(&size) {
        return Err(AppError::bad_request("size must be 1 to 50"));
    }
    let candidates = state.platform.propose_team(&actor, &id, size).await?;
    Ok(Json(json!({"items": candidates})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TeamBody {
    version: i64,
    /// User ids.
    members: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/missions/{id}/team", tag = "missions", params(("id" = String, Path, description = "Object id")), request_body = TeamBody, responses((status = 200, body = MissionView), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn confirm_team(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TeamBody>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .confirm_team(&actor, &id, body.version, body.members)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    version: i64,
    status: MissionStatus,
}

#[utoipa::path(post, path = "/api/v1/missions/{id}/status", tag = "missions", params(("id" = String, Path, description = "Object id")), request_body = StatusBody, responses((status = 200, body = MissionView), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn move_mission(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .move_mission(&actor, &id, body.version, body.status)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/missions/{id}/cases", tag = "cases", params(("id" = String, Path, description = "Mission id"), PageQuery), responses((status = 200, body = Paged<Case>), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody)))]
async fn list_cases(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    let items = state.platform.cases(&actor, &id, page).await?;
    Ok(Json(Paged::new(items, page)))
}

#[utoipa::path(post, path = "/api/v1/missions/{id}/cases", tag = "cases", params(("id" = String, Path, description = "Object id")), request_body = NewCase, responses((status = 201, body = CaseView), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn create_case(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewCase>,
) -> Result<impl IntoResponse, AppError> {
    let case = state.platform.create_case(&actor, &id, body).await?;
    Ok((StatusCode::CREATED, Json(case)))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases", params(("id" = String, Path, description = "Object id")), responses((status = 200, body = CaseView), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody)))]
async fn get_case(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.case(&actor, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/tasks", tag = "cases", params(("id" = String, Path, description = "Object id")), request_body = NewTask, responses((status = 201, body = Task), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn add_task(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTask>,
) -> Result<impl IntoResponse, AppError> {
    let task = state.platform.add_task(&actor, &id, body).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}", tag = "cases", params(("id" = String, Path, description = "Object id")), request_body = TaskUpdate, responses((status = 200, body = Task), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn update_task(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TaskUpdate>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.update_task(&actor, &id, body).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    /// Markdown.
    body: String,
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/notes", tag = "cases", params(("id" = String, Path, description = "Object id")), request_body = NoteBody, responses((status = 201, body = Note), (status = 400, description = "Malformed or unknown fields", body = ErrorBody), (status = 401, description = "Not signed in", body = ErrorBody), (status = 403, description = "Not allowed", body = ErrorBody), (status = 404, description = "Not found, or not visible to you", body = ErrorBody), (status = 409, description = "Stale version or illegal transition", body = ErrorBody), (status = 422, description = "Invalid values", body = ErrorBody)))]
async fn add_note(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<impl IntoResponse, AppError> {
    let note = state.platform.add_note(&actor, &id, &body.body).await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// The error format every failure uses.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `unauthenticated`,
    /// `forbidden`, `not_found`, `conflict`, `invalid`, `too_large`,
    /// `unsupported_media_type`, `rate_limited`, `internal`.
    code: String,
    /// For people.
    message: String,
}

/// `POST /api/v1/session` answers.
#[derive(Serialize, utoipa::ToSchema)]
struct SignedIn {
    user: UserView,
    expires_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct CreatedUser {
    user: UserView,
    /// Present when the request gave no password; shown this once.
    generated_password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct CreatedToken {
    token: ApiToken,
    /// `crrt_...`, shown this once: send it as `Authorization: Bearer`.
    secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Proposal {
    items: Vec<crrt_platform::Candidate>,
}

/// The API's OpenAPI 3 document, generated from the handlers and types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "CRRT platform API", description = "The team platform of the Cyber Rapid Response Toolkit. Authenticate with the session cookie from POST /api/v1/session, or with `Authorization: Bearer TOKEN`."),
    paths(
        readyz, login, logout, me, update_profile, update_user, list_orgs, create_org, list_users, create_user, list_tokens,
        create_token, revoke_token, list_requests, file_request, get_request, withdraw_request,
        review_request, decide_request, council, record_position, list_missions, get_mission,
        update_checklist, propose_team, confirm_team, move_mission, list_cases, create_case,
        get_case, add_task, add_note, update_task, upload_evidence, list_evidence,
        download_evidence, evidence_custody, upload_rulepack, list_rulepacks, get_rulepack, start_hunt, list_hunts,
        get_hunt, cancel_hunt, list_findings, import_findings, triage_finding, timeline, audit
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = <ApiDoc as utoipa::OpenApi>::openapi();
    doc.merge(<crate::api_intel::IntelDoc as utoipa::OpenApi>::openapi());
    doc.merge(<crate::api_watch::WatchDoc as utoipa::OpenApi>::openapi());
    doc.merge(<crate::api_reports::ReportsDoc as utoipa::OpenApi>::openapi());
    doc.merge(<crate::api_uploads::UploadsDoc as utoipa::OpenApi>::openapi());
    Json(doc)
}

#[utoipa::path(post, path = "/api/v1/me", tag = "session", request_body = ProfileUpdate, responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 403, description = "Wrong current password", body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_profile(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ApiJson(body): ApiJson<ProfileUpdate>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.update_profile(&actor, body).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserAdminBody {
    disabled: bool,
}

#[utoipa::path(post, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "User id")), request_body = UserAdminBody, responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserAdminBody>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .set_disabled(&actor, &id, body.disabled)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The file's name (a name: folders are dropped).
    name: String,
}

/// Streams the request body to the evidence store, hashing as it goes:
/// nothing is held whole in memory, and an upload that breaks off leaves
/// nothing behind.
#[utoipa::path(post, path = "/api/v1/cases/{id}/evidence", tag = "evidence", params(("id" = String, Path, description = "Case id"), UploadQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 201, body = Evidence), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The case already holds this content", body = ErrorBody), (status = 413, description = "Over the per-file limit", body = ErrorBody), (status = 422, body = ErrorBody), (status = 507, description = "The store could not keep it; nothing stored", body = ErrorBody)))]
async fn upload_evidence(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Body,
) -> Result<impl IntoResponse, AppError> {
    use http_body_util::BodyExt;
    let Query(query) = query?;
    let mut incoming = state.platform.begin_upload(&actor, &id).await?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            AppError::bad_request(format!("the upload broke off: {e}; nothing was stored"))
        })?;
        if let Ok(data) = frame.into_data() {
            incoming.write(&data)?;
        }
    }
    let evidence = state
        .platform
        .finish_upload(&actor, incoming, &query.name, &address.ip().to_string())
        .await?;
    Ok((StatusCode::CREATED, Json(evidence)))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/evidence", tag = "evidence", params(("id" = String, Path, description = "Case id"), PageQuery), responses((status = 200, body = Paged<Evidence>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_evidence(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    let items = state.platform.case_evidence(&actor, &id, page).await?;
    Ok(Json(Paged::new(items, page)))
}

/// The stored bytes, streamed; the download is an audit event.
/// The evidence's chain of custody from the audit trail: upload (who, from
/// where, hash), every download, every hunt that read it.
#[utoipa::path(get, path = "/api/v1/evidence/{id}/custody", tag = "evidence", params(("id" = String, Path, description = "Evidence id")), responses((status = 200, body = Vec<AuditEvent>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn evidence_custody(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.evidence_custody(&actor, &id).await?))
}

/// A stored file that cannot be read is the server's problem, not a full disk.
pub(crate) fn unreadable(error: crrt_platform::PlatformError) -> AppError {
    match error {
        crrt_platform::PlatformError::Io(detail) => {
            tracing::error!(error = %detail, "stored evidence unreadable");
            AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                "the stored file cannot be read; run crrt admin verify-evidence",
            )
        }
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/api/v1/evidence/{id}/content", tag = "evidence", params(("id" = String, Path, description = "Evidence id")), responses((status = 200, description = "The file as uploaded; X-Content-SHA256 carries its hash", content_type = "application/octet-stream"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn download_evidence(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (evidence, stream) = state
        .platform
        .open_evidence(&actor, &id, &address.ip().to_string())
        .await
        .map_err(unreadable)?;
    let body = axum::body::Body::from_stream(stream);
    let safe_name: String = evidence
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut response = body.into_response();
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, "application/octet-stream".into());
    set(header::CONTENT_LENGTH, evidence.size.to_string());
    set(
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{safe_name}\""),
    );
    set(
        header::HeaderName::from_static("x-content-sha256"),
        evidence.sha256.clone(),
    );
    Ok(response)
}

/// Sigma or YARA rules as a ZIP (a folder zipped) or one rule file. The
/// kind comes from the file names (`.yml`/`.yaml` or `.yar`/`.yara`; one
/// kind per pack), or for a single file named otherwise from its content.
#[utoipa::path(post, path = "/api/v1/rulepacks", tag = "rule packs", params(UploadQuery), request_body(content = Vec<u8>, content_type = "application/zip"), responses((status = 201, description = "Stored; rules that did not load are listed in `problems`", body = RulePack), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, description = "The same pack is already here", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, description = "Not a ZIP, YAML or YARA, both Sigma and YARA in one ZIP, a ZIP bomb, or no rule loads", body = ErrorBody)))]
async fn upload_rulepack(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(query) = query?;
    let bytes = body.map_err(|e| AppError::new(e.status(), "too_large", e.body_text()))?;
    let pack = state
        .platform
        .upload_rulepack(&actor, &query.name, &bytes)
        .await?;
    Ok((StatusCode::CREATED, Json(pack)))
}

#[utoipa::path(get, path = "/api/v1/rulepacks", tag = "rule packs", params(PageQuery), responses((status = 200, body = Paged<RulePack>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_rulepacks(
    State(state): State<AppState>,
    Signed(actor): Signed,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    let items = state.platform.rulepacks(&actor, page).await?;
    Ok(Json(Paged::new(items, page)))
}

#[utoipa::path(get, path = "/api/v1/rulepacks/{id}", tag = "rule packs", params(("id" = String, Path, description = "Rule pack id")), responses((status = 200, body = RulePack), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_rulepack(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.rulepack(&actor, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/hunts", tag = "hunts", params(("id" = String, Path, description = "Case id")), request_body = NewHunt, responses((status = 201, description = "Queued; a worker picks it up", body = Hunt), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start_hunt(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewHunt>,
) -> Result<impl IntoResponse, AppError> {
    let hunt = state.platform.start_hunt(&actor, &id, body).await?;
    Ok((StatusCode::CREATED, Json(hunt)))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/hunts", tag = "hunts", params(("id" = String, Path, description = "Case id"), PageQuery), responses((status = 200, body = Paged<Hunt>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_hunts(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    Ok(Json(Paged::new(
        state.platform.hunts(&actor, &id, page).await?,
        page,
    )))
}

/// A hunt with its progress (records and bytes done, of bytes in all).
#[utoipa::path(get, path = "/api/v1/hunts/{id}", tag = "hunts", params(("id" = String, Path, description = "Hunt id")), responses((status = 200, body = Hunt), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_hunt(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.hunt(&actor, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/hunts/{id}/cancel", tag = "hunts", params(("id" = String, Path, description = "Hunt id")), responses((status = 200, body = Hunt), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Already ended", body = ErrorBody)))]
async fn cancel_hunt(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.cancel_hunt(&actor, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/findings", tag = "hunts", params(("id" = String, Path, description = "Case id"), PageQuery), responses((status = 200, body = Paged<StoredFinding>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_findings(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let page = page_of(query).await?;
    Ok(Json(Paged::new(
        state.platform.findings(&actor, &id, page).await?,
        page,
    )))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TriageBody {
    /// `needs_review`, `true_positive` or `false_positive`.
    verdict: String,
    comment: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/findings/{id}/triage", tag = "hunts", params(("id" = String, Path, description = "Finding id")), request_body = TriageBody, responses((status = 200, body = StoredFinding), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn triage_finding(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TriageBody>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .triage(&actor, &id, &body.verdict, body.comment)
            .await?,
    ))
}

/// Findings of an offline `crrt hunt` (its JSON Lines output) brought into a
/// case; recorded as a hunt of status `imported`, with who and when.
#[utoipa::path(post, path = "/api/v1/cases/{id}/findings/import", tag = "hunts", params(("id" = String, Path, description = "Case id")), request_body(content = String, content_type = "application/x-ndjson"), responses((status = 201, body = Hunt), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, description = "A line that is not a crrt hunt finding (nothing imported)", body = ErrorBody)))]
async fn import_findings(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    body: Result<String, axum::extract::rejection::StringRejection>,
) -> Result<impl IntoResponse, AppError> {
    let text = body.map_err(|e| AppError::new(e.status(), "bad_request", e.body_text()))?;
    let hunt = state.platform.import_findings(&actor, &id, &text).await?;
    Ok((StatusCode::CREATED, Json(hunt)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Timeline {
    items: Vec<TimelineEntry>,
}

/// Findings (by the time of their event), notes and tasks of a case, in
/// one time line; `?limit=` caps the findings (default 500).
#[utoipa::path(get, path = "/api/v1/cases/{id}/timeline", tag = "hunts", params(("id" = String, Path, description = "Case id"), PageQuery), responses((status = 200, body = Timeline), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn timeline(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(500);
    if !(1..=10_000).contains(&limit) {
        return Err(AppError::bad_request("limit must be 1 to 10000"));
    }
    Ok(Json(Timeline {
        items: state.platform.timeline(&actor, &id, limit).await?,
    }))
}
