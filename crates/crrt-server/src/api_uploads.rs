//! Resumable evidence uploads: start with the file's name, size (and
//! SHA-256), send chunks with `PATCH ?offset=N`, ask where it stands after a
//! broken connection, and go on from there. Merged into the API's router and
//! OpenAPI document.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use crrt_platform::{NewUpload, Upload, UploadProgress};
use serde::Deserialize;

use crate::api::{ApiJson, ErrorBody, Signed};
use crate::{AppError, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/cases/{id}/uploads",
            post(start_upload).get(case_uploads),
        )
        .route(
            "/api/v1/uploads/{id}",
            get(get_upload).patch(send_chunk).delete(cancel_upload),
        )
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(start_upload, case_uploads, get_upload, send_chunk, cancel_upload))]
pub(crate) struct UploadsDoc;

/// Starts a resumable upload of one file to a case. Who may upload to the
/// case may start one; limits are checked against the announced size.
#[utoipa::path(post, path = "/api/v1/cases/{id}/uploads", tag = "evidence", params(("id" = String, Path, description = "Case id")), request_body = NewUpload, responses((status = 201, body = Upload), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "The case already holds content with the announced SHA-256", body = ErrorBody), (status = 413, description = "Over the per-file or per-case limit", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start_upload(
    State(state): State<AppState>,
    Signed(actor): Signed,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewUpload>,
) -> Result<impl IntoResponse, AppError> {
    let upload = state
        .platform
        .start_upload(&actor, &id, new, &address.ip().to_string())
        .await?;
    Ok((StatusCode::CREATED, Json(upload)))
}

/// The caller's uploads in progress to the case (to resume one).
#[utoipa::path(get, path = "/api/v1/cases/{id}/uploads", tag = "evidence", params(("id" = String, Path, description = "Case id")), responses((status = 200, body = Vec<Upload>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn case_uploads(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.case_uploads(&actor, &id).await?))
}

/// Where an upload stands: `received` is the offset of the next chunk.
#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "evidence", params(("id" = String, Path, description = "Upload id")), responses((status = 200, body = Upload), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_upload(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    Ok(Json(state.platform.upload(&actor, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ChunkQuery {
    /// Where this chunk starts: the upload's `received`.
    offset: u64,
}

/// Appends a chunk (`application/octet-stream`) at `offset`. What arrives
/// is kept even if the connection breaks. When the last byte is in, the
/// file is hashed and kept as evidence (201, with `evidence`); a different
/// hash than announced, or the same content already in the case, drops the
/// upload with the reason.
#[utoipa::path(patch, path = "/api/v1/uploads/{id}", tag = "evidence", params(("id" = String, Path, description = "Upload id"), ChunkQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 200, description = "Chunk kept; more to come", body = UploadProgress), (status = 201, description = "Complete: kept as evidence", body = UploadProgress), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Wrong offset (the message names the right one), another request sending, or the content already in the case", body = ErrorBody), (status = 413, description = "Past the announced size, or the case is full", body = ErrorBody), (status = 422, description = "Another hash than announced", body = ErrorBody), (status = 507, body = ErrorBody)))]
async fn send_chunk(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
    query: Result<Query<ChunkQuery>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Body,
) -> Result<impl IntoResponse, AppError> {
    use http_body_util::BodyExt;
    let Query(query) = query?;
    let mut chunk = state
        .platform
        .resume_upload(&actor, &id, query.offset)
        .await?;
    let mut body = body;
    let mut failure = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data()
                    && let Err(e) = chunk.write(&data)
                {
                    failure = Some(AppError::from(e));
                    break;
                }
            }
            Err(e) => {
                failure = Some(AppError::bad_request(format!(
                    "the chunk broke off: {e}; what arrived is kept, ask GET /api/v1/uploads/{id} where to go on"
                )));
                break;
            }
        }
    }
    // What arrived is kept either way.
    let progress = state
        .platform
        .end_chunk(&actor, chunk, failure.is_some())
        .await?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    let status = if progress.evidence.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(progress)))
}

/// Abandons an upload and the bytes it has.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "evidence", params(("id" = String, Path, description = "Upload id")), responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "A chunk is arriving", body = ErrorBody)))]
async fn cancel_upload(
    State(state): State<AppState>,
    Signed(actor): Signed,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    state.platform.cancel_upload(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
