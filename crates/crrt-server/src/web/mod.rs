//! The web UI: server-rendered HTML pages over the same platform calls as
//! the API, with a few lines of JavaScript as enhancement only. Every form
//! works without JavaScript.
//!
//! - [`Ctx`] is the signed-in person (session cookie only: browsers never
//!   send bearer tokens), with the page's CSRF token and any flash message.
//!   Pages that need a person redirect to `/signin` without one.
//! - [`Form`] parses a urlencoded POST and refuses it unless its `_csrf`
//!   field matches the session's token, before the handler runs.
//! - Actions answer with a redirect (POST/redirect/GET) carrying a one-time
//!   flash message in a cookie; see [`done`].
//! - Assets are compiled into the binary; [`security_headers`] sets a
//!   Content-Security-Policy without inline scripts or styles.

mod account;
mod admin;
mod cases;
mod dashboard;
mod indicators;
mod layout;
mod missions;
mod reports;
mod requests;
mod watch;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use crrt_platform::{Actor, PlatformError};
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::api::session_cookie;

const FLASH_COOKIE: &str = "crrt_flash";
/// Largest urlencoded form accepted (notes are the longest text).
const MAX_FORM_BYTES: usize = 256 << 10;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .route("/signin", get(account::signin_page).post(account::signin))
        .route("/signout", post(account::signout))
        .route("/account", get(account::account_page))
        .route("/account/password", post(account::change_password))
        .route(
            "/account/tokens",
            get(account::tokens_page).post(account::create_token),
        )
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/dashboard", get(dashboard::dashboard))
        .route(
            "/requests",
            get(requests::list).post(requests::file_request),
        )
        .route("/requests/new", get(requests::new_request))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/withdraw", post(requests::withdraw))
        .route("/requests/{id}/review", post(requests::review))
        .route("/requests/{id}/position", post(requests::position))
        .route("/requests/{id}/decision", post(requests::decide))
        .route("/missions", get(missions::list))
        .route("/missions/{id}", get(missions::show))
        .route("/missions/{id}/checklist", post(missions::checklist))
        .route("/missions/{id}/status", post(missions::move_to))
        .route(
            "/missions/{id}/team",
            get(missions::team_page).post(missions::confirm_team),
        )
        .route("/missions/{id}/cases", post(missions::create_case))
        .route("/missions/{id}/watch", get(watch::board).post(watch::add))
        .route("/missions/{id}/reports", get(reports::show))
        .route("/missions/{id}/reports/situation", post(reports::issue))
        .route(
            "/missions/{id}/reports/recommendations",
            post(reports::recommendations),
        )
        .route(
            "/missions/{id}/watch/notifications",
            post(watch::set_notifications),
        )
        .route("/watch/targets/{id}/remove", post(watch::remove))
        .route("/watch/targets/{id}/rebaseline", post(watch::rebaseline))
        .route("/cases/{id}", get(cases::show))
        .route("/cases/{id}/tasks", post(cases::add_task))
        .route("/tasks/{id}", post(cases::update_task))
        .route("/cases/{id}/notes", post(cases::add_note))
        .route(
            "/cases/{id}/evidence",
            post(cases::upload_evidence).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/cases/{id}/hunts", post(cases::start_hunt))
        .route("/hunts/{id}/cancel", post(cases::cancel_hunt))
        .route("/cases/{id}/findings", get(cases::findings))
        .route(
            "/cases/{id}/findings/import",
            post(cases::import_findings).layer(axum::extract::DefaultBodyLimit::max(256 << 20)),
        )
        .route("/findings/{id}/triage", post(cases::triage))
        .route("/cases/{id}/timeline", get(cases::timeline))
        .route(
            "/rulepacks",
            get(admin::rulepacks).post(admin::upload_rulepack).layer(
                axum::extract::DefaultBodyLimit::max(
                    crrt_platform::rulepacks::MAX_PACK_BYTES + 4096,
                ),
            ),
        )
        .route("/indicators", get(indicators::list).post(indicators::share))
        .route("/indicators/paste", post(indicators::paste))
        .route(
            "/indicators/import",
            post(indicators::import).layer(axum::extract::DefaultBodyLimit::max(
                crate::api_intel::MAX_IMPORT_BYTES,
            )),
        )
        .route(
            "/indicators/{id}",
            get(indicators::show).post(indicators::change),
        )
        .route("/sharing", get(indicators::sharing))
        .route("/sharing/subscriptions", post(indicators::subscribe))
        .route("/roster", get(admin::roster))
        .route("/audit", get(admin::audit))
}

/// Headers on every response: the browser runs only our own scripts and
/// styles, never frames us, and keeps pages with case data out of caches.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !is_asset {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    )
}

async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/app.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A message shown once on the next page.
#[derive(Debug, Clone)]
pub(crate) struct Flash {
    pub ok: bool,
    pub message: String,
}

/// The signed-in person behind a page request.
pub(crate) struct Ctx {
    pub actor: Actor,
    pub csrf: String,
    pub flash: Option<Flash>,
    /// The path and query asked for, to mark the current section.
    pub path: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let to_signin = || {
            let next = utf8_percent_encode(&path, NON_ALPHANUMERIC);
            Redirect::to(&format!("/signin?next={next}")).into_response()
        };
        let Some(token) = session_cookie(&parts.headers) else {
            return Err(to_signin());
        };
        let actor = match state.platform.session_actor(&token).await {
            Ok(actor) => actor,
            Err(PlatformError::Unauthenticated) => return Err(to_signin()),
            Err(e) => return Err(error_page(e)),
        };
        Ok(Ctx {
            actor,
            csrf: csrf_token(&token),
            flash: flash_of(&parts.headers),
            path,
        })
    }
}

impl Ctx {
    /// Whether the platform's policy allows the action: used only to hide
    /// controls the platform would refuse anyway.
    pub fn may(&self, action: crrt_platform::policy::Action<'_>) -> bool {
        crrt_platform::policy::allowed(&self.actor, action)
    }
}

impl Ctx {
    /// A platform error as a page inside the shell, so navigation stays.
    pub fn fail(&self, e: PlatformError) -> Response {
        let (status, title, message) = error_text(&e);
        let body = maud::html! {
            h1 { (title) }
            p { (message) }
        };
        layout::render(self, status, title, &[], body)
    }
}

/// The CSRF token of a session: derived from the session secret, so it
/// needs no storage and dies with the session.
fn csrf_token(session_token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"crrt-csrf\0");
    hash.update(session_token.as_bytes());
    hex::encode(&hash.finalize()[..16])
}

fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn flash_of(headers: &HeaderMap) -> Option<Flash> {
    let value = crate::api::cookie(headers, FLASH_COOKIE)?;
    let text = percent_decode_str(&value).decode_utf8().ok()?;
    let (kind, message) = text.split_once(':')?;
    Some(Flash {
        ok: kind == "ok",
        message: message.chars().take(500).collect(),
    })
}

/// A form whose only field is its CSRF token (a button).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NoFields {}

/// A urlencoded form from a signed-in person, its CSRF token checked.
pub(crate) struct Form<T>(pub Ctx, pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Form<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| {
                message_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too much text",
                    "The form is larger than CRRT accepts (256 KiB). Shorten it and send it again.",
                )
            })?;
        if !csrf_matches(&ctx, &bytes) {
            return Err(csrf_refused());
        }
        let value = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|e| {
            message_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The form is incomplete",
                &format!("CRRT could not read the form: {e}."),
            )
        })?;
        Ok(Form(ctx, value))
    }
}

/// Whether the urlencoded body carries this session's CSRF token.
fn csrf_matches(ctx: &Ctx, body: &[u8]) -> bool {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    pairs
        .iter()
        .find(|(name, _)| name == "_csrf")
        .is_some_and(|(_, sent)| same_secret(sent, &ctx.csrf))
}

fn csrf_refused() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Form refused",
        "This form did not come from your current CRRT session (it may have expired). \
         Nothing was changed. Reload the page and try again.",
    )
}

/// The answer to an action: back to `to` with the outcome as a flash
/// message. Problems the person can fix come back as messages; missing
/// objects and failures of the server get their own page.
pub(crate) fn done(to: &str, outcome: Result<String, PlatformError>) -> Response {
    match outcome {
        Ok(message) => with_flash(Redirect::to(to).into_response(), true, &message),
        Err(e @ (PlatformError::NotFound(_) | PlatformError::Store(_) | PlatformError::Io(_))) => {
            error_page(e)
        }
        Err(e) => with_flash(Redirect::to(to).into_response(), false, &e.to_string()),
    }
}

fn with_flash(mut response: Response, ok: bool, message: &str) -> Response {
    let text = format!("{}:{message}", if ok { "ok" } else { "error" });
    let cookie = format!(
        "{FLASH_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=60",
        utf8_percent_encode(&text, NON_ALPHANUMERIC)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn clear_flash(response: &mut Response) {
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("crrt_flash=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
}

/// A page for a platform error, with the status that fits it.
pub(crate) fn error_page(e: PlatformError) -> Response {
    let (status, title, message) = error_text(&e);
    message_page(status, title, &message)
}

fn error_text(e: &PlatformError) -> (StatusCode, &'static str, String) {
    let (status, title) = match e {
        PlatformError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        PlatformError::Forbidden(_) => (StatusCode::FORBIDDEN, "Not allowed"),
        PlatformError::Unauthenticated => (StatusCode::UNAUTHORIZED, "Sign in first"),
        PlatformError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Not accepted"),
        PlatformError::Conflict(_) => (StatusCode::CONFLICT, "Changed meanwhile"),
        PlatformError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "Too many attempts"),
        PlatformError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "Too large"),
        PlatformError::Store(_) | PlatformError::Io(_) => {
            tracing::error!(error = %e, "page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
        }
    };
    let message = match status {
        StatusCode::INTERNAL_SERVER_ERROR => {
            "The server could not complete this; the details are in its log.".to_owned()
        }
        // "Not found" also answers objects one may not see: say no more.
        StatusCode::NOT_FOUND => {
            "There is nothing here, or nothing you may see. Check the address.".to_owned()
        }
        _ => e.to_string(),
    };
    (status, title, message)
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = maud::html! {
        h1 { (title) }
        p { (message) }
        p { a href="/dashboard" { "Back to the dashboard" } }
    };
    (status, layout::bare(title, body)).into_response()
}

/// `?page=N` (1-based) on long lists.
#[derive(Debug, serde::Deserialize, Default)]
pub(crate) struct PageParam {
    pub page: Option<i64>,
}

impl PageParam {
    pub fn page(&self, per_page: i64) -> crrt_platform::Page {
        let n = self.page.unwrap_or(1).clamp(1, 1_000_000);
        crrt_platform::Page {
            limit: per_page,
            offset: (n - 1) * per_page,
        }
    }
}
