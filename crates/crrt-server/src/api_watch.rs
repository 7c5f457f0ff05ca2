//! `/api/v1/missions/{id}/watch`: the mission's watched websites (the status
//! board), adding and removing targets, their alerts, and each alert's
//! evidence. Merged into the API's router and OpenAPI document.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use crrt_platform::{
    AlertFile, NewWatchTarget, WatchAlertView, WatchNotificationSettings, WatchNotificationView,
    WatchTargetView,
};
use serde::Deserialize;

use crate::api::{ApiJson, ErrorBody, Signed};
use crate::{AppError, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/missions/{id}/watch", get(board).post(add_target))
        .route("/api/v1/missions/{id}/watch/alerts", get(alerts))
        .route(
            "/api/v1/missions/{id}/watch/notifications",
            get(notifications).put(set_notifications),
        )
        .route("/api/v1/watch/targets/{id}", delete(remove_target))
        .route("/api/v1/watch/targets/{id}/rebaseline", post(rebaseline))
        .route("/api/v1/watch/alerts/{id}/body", get(alert_body))
        .route("/api/v1/watch/alerts/{id}/diff", get(alert_diff))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    board,
    add_target,
    alerts,
    notifications,
    set_notifications,
    remove_target,
    rebaseline,
    alert_body,
    alert_diff
))]
pub(crate) struct WatchDoc;

#[utoipa::path(get, path = "/api/v1/missions/{id}/watch", tag = "watch", params(("id" = String, Path, description = "Mission id")), responses((status = 200, description = "Every target with its last check and open alerts", body = [WatchTargetView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn board(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.watch_board(&actor, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/missions/{id}/watch", tag = "watch", params(("id" = String, Path, description = "Mission id")), request_body = NewWatchTarget, responses((status = 201, body = WatchTargetView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "A target of this name exists", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_target(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewWatchTarget>,
) -> Result<impl IntoResponse, AppError> {
    let view = state.platform.add_watch_target(&actor, &id, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    /// `true` for closed alerts too (newest first, at most 500).
    all: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/missions/{id}/watch/alerts", tag = "watch", params(("id" = String, Path, description = "Mission id"), AlertsQuery), responses((status = 200, body = [WatchAlertView]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn alerts(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<AlertsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, AppError> {
    let all = query?.0.all.unwrap_or(false);
    Ok(Json(state.platform.watch_alerts(&actor, &id, all).await?))
}

#[utoipa::path(delete, path = "/api/v1/watch/targets/{id}", tag = "watch", params(("id" = String, Path, description = "Watch target id")), responses((status = 204, description = "No longer watched; its open alerts closed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_target(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    state.platform.remove_watch_target(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/watch/alerts/{id}/body", tag = "watch", params(("id" = String, Path, description = "Watch alert id")), responses((status = 200, description = "The page body as the opening check received it; X-Content-SHA256 carries its hash", content_type = "application/octet-stream"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn alert_body(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    alert_file(state, actor, id, AlertFile::Body).await
}

#[utoipa::path(get, path = "/api/v1/watch/alerts/{id}/diff", tag = "watch", params(("id" = String, Path, description = "Watch alert id")), responses((status = 200, description = "The visible text against the baseline, as a unified diff", content_type = "text/plain"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn alert_diff(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    alert_file(state, actor, id, AlertFile::Diff).await
}

async fn alert_file(
    state: AppState,
    actor: crrt_platform::Actor,
    id: String,
    which: AlertFile,
) -> Result<Response, AppError> {
    let (bytes, sha256) = state
        .platform
        .watch_alert_file(&actor, &id, which)
        .await
        .map_err(crate::api::unreadable)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    // A defaced page is hostile content: never rendered by the browser.
    let content_type = if which == AlertFile::Body {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    if let Ok(value) = HeaderValue::from_str(&sha256) {
        headers.insert("x-content-sha256", value);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/missions/{id}/watch/notifications", tag = "watch", params(("id" = String, Path, description = "Mission id")), responses((status = 200, description = "Where alerts are sent; the webhook secret is never shown", body = WatchNotificationView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn notifications(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.watch_notifications(&actor, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/missions/{id}/watch/notifications", tag = "watch", params(("id" = String, Path, description = "Mission id")), request_body = WatchNotificationSettings, responses((status = 200, body = WatchNotificationView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_notifications(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WatchNotificationSettings>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(
        state
            .platform
            .set_watch_notifications(&actor, &id, body)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/watch/targets/{id}/rebaseline", tag = "watch", params(("id" = String, Path, description = "Watch target id")), responses((status = 204, description = "The next check is the new baseline; the target's open alerts closed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn rebaseline(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    state.platform.rebaseline_watch_target(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
