//! CRRT's HTTP side: the JSON API under `/api/v1`, sign-in with session
//! cookies or API tokens, `/healthz` and `/readyz`. The only crate that
//! knows axum; every decision about access is the platform's.
//!
//! [`app`] builds the router from a [`Platform`]; [`run`] serves it on a
//! listener until a shutdown future completes, letting requests in flight
//! finish. Tests run it on port 0.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let platform = crrt_platform::Platform::open("sqlite://crrt-data/crrt.db").await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! crrt_server::run(listener, platform, crrt_server::Config::default(), std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod api;
mod api_intel;
mod api_reports;
mod api_uploads;
mod api_watch;
mod error;
mod report;
mod taxii;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use crrt_platform::Platform;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use error::AppError;

/// Largest request body accepted, in bytes (evidence uploads will have their
/// own streaming route).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// How the server behaves beyond the platform itself.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Mark session cookies `Secure` (set when served over HTTPS, directly
    /// or behind a TLS-terminating proxy).
    pub secure_cookies: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub platform: Platform,
    pub config: Arc<Config>,
}

/// The whole HTTP application.
pub fn app(platform: Platform, config: Config) -> Router {
    let state = AppState {
        platform,
        config: Arc::new(config),
    };
    let request_id = HeaderName::from_static("x-request-id");
    api::routes()
        .merge(api_intel::routes())
        .merge(api_watch::routes())
        .merge(api_reports::routes())
        .merge(api_uploads::routes())
        .merge(taxii::routes())
        .merge(web::routes())
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(web::security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", id, method = %request.method(), path = %request.uri().path())
                })
                // One line per request at info: status and latency, in the span above.
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, SequentialId::default()))
}

/// Unknown paths: the API's error format under `/api/`, a page elsewhere.
async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/taxii2/") {
        return taxii::not_found(uri.path());
    }
    if uri.path().starts_with("/api/") {
        axum::response::IntoResponse::into_response(AppError::not_found("no such endpoint"))
    } else {
        web::error_page(crrt_platform::PlatformError::NotFound(
            uri.path().to_owned(),
        ))
    }
}

/// Serves until `shutdown` completes; requests in flight then finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    platform: Platform,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(platform.clone(), config);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    platform.store().close().await;
    Ok(())
}

/// Request ids: this process's start time and a counter, unique enough to
/// find one request in the logs without a random source per request.
#[derive(Debug, Clone)]
struct SequentialId {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl Default for SequentialId {
    fn default() -> Self {
        let prefix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        SequentialId {
            prefix,
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for SequentialId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:x}-{n}", self.prefix)
            .parse()
            .ok()
            .map(RequestId::new)
    }
}
