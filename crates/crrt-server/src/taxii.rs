//! TAXII 2.1 at `/taxii2/`: discovery, the `crrt` API root, its two
//! collections (see `crrt_platform::taxii`), objects with filters and
//! `limit`/`next` pages, one object, its versions, the manifest, adding
//! objects with a status resource, deleting. HTTP Basic (e-mail and
//! password, or an API token as the password) or `Bearer` tokens. Every
//! answer, errors included, is `application/taxii+json;version=2.1`.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use crrt_platform::taxii::{self as t, API_ROOT, TaxiiPage};
use crrt_platform::{Actor, PlatformError, TaxiiFilter, VersionMatch};
use serde_json::json;

use crate::AppState;

pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// Largest add request (one envelope).
pub const MAX_CONTENT_LENGTH: usize = 64 << 20;
const DEFAULT_PAGE: i64 = 1000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/{root}/", get(api_root))
        .route("/taxii2/{root}/status/{id}/", get(status))
        .route("/taxii2/{root}/collections/", get(collections))
        .route("/taxii2/{root}/collections/{cid}/", get(collection))
        .route("/taxii2/{root}/collections/{cid}/manifest/", get(manifest))
        .route(
            "/taxii2/{root}/collections/{cid}/objects/",
            get(objects)
                .post(add_objects)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_CONTENT_LENGTH)),
        )
        .route(
            "/taxii2/{root}/collections/{cid}/objects/{oid}/",
            get(object).delete(delete_object),
        )
        .route(
            "/taxii2/{root}/collections/{cid}/objects/{oid}/versions/",
            get(versions),
        )
}

/// A TAXII error message resource with its status.
pub(crate) struct TaxiiError {
    status: StatusCode,
    title: &'static str,
    description: String,
}

impl TaxiiError {
    fn new(status: StatusCode, title: &'static str, description: impl Into<String>) -> Self {
        TaxiiError {
            status,
            title,
            description: description.into(),
        }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut response = taxii_json(self.status, body.to_string());
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"CRRT TAXII\", Bearer"),
            );
        }
        response
    }
}

impl From<PlatformError> for TaxiiError {
    fn from(e: PlatformError) -> Self {
        let message = e.to_string();
        match e {
            PlatformError::Unauthenticated => {
                TaxiiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
            }
            PlatformError::Forbidden(_) => {
                TaxiiError::new(StatusCode::FORBIDDEN, "Forbidden", message)
            }
            PlatformError::NotFound(_) => {
                TaxiiError::new(StatusCode::NOT_FOUND, "Not Found", message)
            }
            PlatformError::Invalid(_) | PlatformError::Conflict(_) => {
                TaxiiError::new(StatusCode::BAD_REQUEST, "Bad Request", message)
            }
            PlatformError::RateLimited { .. } => {
                TaxiiError::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests", message)
            }
            PlatformError::TooLarge(_) => {
                TaxiiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large", message)
            }
            PlatformError::Store(_) | PlatformError::Io(_) => {
                tracing::error!(error = %message, "TAXII request failed");
                TaxiiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    "the server could not complete the request",
                )
            }
        }
    }
}

fn taxii_json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(TAXII_MEDIA_TYPE),
        )],
        body,
    )
        .into_response()
}

type Taxii<T> = Result<T, TaxiiError>;

/// The signed-in reader: Basic (e-mail and password, or anything and an
/// API token) or Bearer. Also checks that the client accepts TAXII 2.1.
pub(crate) struct Reader(Actor);

fn accepts_taxii(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|item| {
        let compact: String = item.chars().filter(|c| !c.is_whitespace()).collect();
        let lower = compact.to_ascii_lowercase();
        let mut parts = lower.split(';');
        let kind = parts.next().unwrap_or_default();
        let params: Vec<&str> = parts.filter(|p| !p.starts_with("q=")).collect();
        match kind {
            "*/*" | "application/*" => true,
            "application/taxii+json" => params.iter().all(|p| *p == "version=2.1"),
            _ => false,
        }
    })
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = TaxiiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Taxii<Self> {
        let unauthorized =
            |why: &str| TaxiiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", why);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("send HTTP Basic credentials or a Bearer API token"))?;
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        let actor = if let Some(token) = value.strip_prefix("Bearer ") {
            state.platform.token_actor(token.trim()).await?
        } else if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    unauthorized("the Basic credentials are not base64 of user:password")
                })?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| unauthorized("the Basic credentials are not user:password"))?;
            if password.starts_with("crrt_") {
                state.platform.token_actor(password).await?
            } else {
                state
                    .platform
                    .password_actor(user, password, &address)
                    .await?
            }
        } else {
            return Err(unauthorized("use HTTP Basic or Bearer"));
        };
        if !accepts_taxii(&parts.headers) {
            return Err(TaxiiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "Not Acceptable",
                format!("this server answers {TAXII_MEDIA_TYPE}"),
            ));
        }
        Ok(Reader(actor))
    }
}

/// Unknown paths under `/taxii2/`, in the TAXII error format.
pub(crate) fn not_found(path: &str) -> Response {
    TaxiiError::new(
        StatusCode::NOT_FOUND,
        "Not Found",
        format!("no TAXII endpoint at {path} (paths end with a slash)"),
    )
    .into_response()
}

fn check_root(root: &str) -> Taxii<()> {
    if root == API_ROOT {
        Ok(())
    } else {
        Err(TaxiiError::new(
            StatusCode::NOT_FOUND,
            "Not Found",
            format!("no API root {root:?}; the API root is /taxii2/{API_ROOT}/"),
        ))
    }
}

fn check_collection(id: &str) -> Taxii<t::CollectionInfo> {
    t::collection(id).ok_or_else(|| {
        TaxiiError::new(
            StatusCode::NOT_FOUND,
            "Not Found",
            format!("no collection {id}"),
        )
    })
}

async fn discovery(
    State(_state): State<AppState>,
    Reader(_actor): Reader,
    headers: HeaderMap,
) -> Taxii<Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let body = json!({
        "title": "CRRT TAXII 2.1",
        "description": "Indicators shared by the Cyber Rapid Response Toolkit, as each reader's TLP allows.",
        "default": format!("/taxii2/{API_ROOT}/"),
        "api_roots": [format!("/taxii2/{API_ROOT}/")],
        "contact": format!("the operators of {host}"),
    });
    Ok(taxii_json(StatusCode::OK, body.to_string()))
}

async fn api_root(Path(root): Path<String>, Reader(_actor): Reader) -> Taxii<Response> {
    check_root(&root)?;
    let body = json!({
        "title": "CRRT",
        "description": "Shared indicators, and your organisation's submissions.",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": MAX_CONTENT_LENGTH,
    });
    Ok(taxii_json(StatusCode::OK, body.to_string()))
}

async fn status(
    State(state): State<AppState>,
    Path((root, id)): Path<(String, String)>,
    Reader(actor): Reader,
) -> Taxii<Response> {
    check_root(&root)?;
    let body = state.platform.taxii_status(&actor, &id).await?;
    Ok(taxii_json(StatusCode::OK, body.to_string()))
}

async fn collections(Path(root): Path<String>, Reader(_actor): Reader) -> Taxii<Response> {
    check_root(&root)?;
    let body = json!({ "collections": t::collections() });
    Ok(taxii_json(StatusCode::OK, body.to_string()))
}

async fn collection(
    Path((root, cid)): Path<(String, String)>,
    Reader(_actor): Reader,
) -> Taxii<Response> {
    check_root(&root)?;
    let info = check_collection(&cid)?;
    Ok(taxii_json(
        StatusCode::OK,
        serde_json::to_string(&info).unwrap_or_default(),
    ))
}

/// `added_after`, `limit`, `next` and `match[...]` from the query string.
struct Query {
    filter: TaxiiFilter,
    limit: i64,
}

fn parse_query(raw: Option<&str>, allow_paging: bool) -> Taxii<Query> {
    let bad = |m: String| TaxiiError::new(StatusCode::BAD_REQUEST, "Bad Request", m);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| bad(format!("the query string cannot be read: {e}")))?;
    let mut filter = TaxiiFilter::default();
    let mut limit = DEFAULT_PAGE;
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for (key, value) in pairs {
        match key.as_str() {
            "added_after" => {
                let t: jiff::Timestamp = value
                    .parse()
                    .map_err(|_| bad(format!("added_after {value:?} is not a timestamp")))?;
                filter.added_after = Some(t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            }
            "limit" if allow_paging => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| *l > 0)
                    .ok_or_else(|| bad(format!("limit {value:?} is not a positive number")))?;
            }
            "next" if allow_paging && !value.is_empty() => {
                filter.after = Some(t::decode_next(&value)?);
            }
            "match[id]" => filter.ids.extend(list(&value)),
            "match[type]" => filter.types.extend(list(&value)),
            "match[spec_version]" => filter.spec_versions.extend(list(&value)),
            "match[version]" => {
                for v in list(&value) {
                    match v.as_str() {
                        "first" => filter.versions.first = true,
                        "last" => filter.versions.last = true,
                        "all" => filter.versions.all = true,
                        other => {
                            let t: jiff::Timestamp = other
                                .parse()
                                .map_err(|_| bad(format!("match[version] {other:?} is not first, last, all or a timestamp")))?;
                            filter
                                .versions
                                .exact
                                .push(t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
                            // Stored versions keep the submitter's spelling;
                            // match that too.
                            filter.versions.exact.push(other.to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if filter.versions == VersionMatch::default() {
        filter.versions.last = true;
    }
    Ok(Query { filter, limit })
}

fn with_date_headers(mut response: Response, page: &TaxiiPage) -> Response {
    let stamp = |t: &str| {
        t.parse::<jiff::Timestamp>()
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            .unwrap_or_else(|_| t.to_owned())
    };
    for (name, value) in [
        ("x-taxii-date-added-first", page.first_added()),
        ("x-taxii-date-added-last", page.last_added()),
    ] {
        if let Some(v) = value
            && let Ok(v) = HeaderValue::from_str(&stamp(v))
        {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// An envelope built from stored JSON text, without parsing it again.
fn envelope(page: &TaxiiPage) -> String {
    let mut out = String::with_capacity(
        page.objects
            .iter()
            .map(|o| o.object.len() + 1)
            .sum::<usize>()
            + 64,
    );
    out.push_str(&format!("{{\"more\":{}", page.more));
    if let Some(next) = &page.next {
        out.push_str(&format!(",\"next\":\"{next}\""));
    }
    if !page.objects.is_empty() {
        out.push_str(",\"objects\":[");
        for (i, o) in page.objects.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&o.object);
        }
        out.push(']');
    }
    out.push('}');
    out
}

async fn objects(
    State(state): State<AppState>,
    Path((root, cid)): Path<(String, String)>,
    Reader(actor): Reader,
    RawQuery(raw): RawQuery,
) -> Taxii<Response> {
    check_root(&root)?;
    check_collection(&cid)?;
    let query = parse_query(raw.as_deref(), true)?;
    let page = state
        .platform
        .taxii_page(&actor, &cid, &query.filter, query.limit)
        .await?;
    Ok(with_date_headers(
        taxii_json(StatusCode::OK, envelope(&page)),
        &page,
    ))
}

async fn manifest(
    State(state): State<AppState>,
    Path((root, cid)): Path<(String, String)>,
    Reader(actor): Reader,
    RawQuery(raw): RawQuery,
) -> Taxii<Response> {
    check_root(&root)?;
    check_collection(&cid)?;
    let query = parse_query(raw.as_deref(), true)?;
    let page = state
        .platform
        .taxii_page(&actor, &cid, &query.filter, query.limit)
        .await?;
    let mut body = json!({"more": page.more});
    if let Some(next) = &page.next {
        body["next"] = json!(next);
    }
    if !page.objects.is_empty() {
        body["objects"] = page
            .objects
            .iter()
            .map(|o| {
                json!({
                    "id": o.id,
                    "date_added": o.date_added,
                    "version": o.version,
                    "media_type": format!("application/stix+json;version={}", o.spec_version),
                })
            })
            .collect();
    }
    Ok(with_date_headers(
        taxii_json(StatusCode::OK, body.to_string()),
        &page,
    ))
}

async fn object(
    State(state): State<AppState>,
    Path((root, cid, oid)): Path<(String, String, String)>,
    Reader(actor): Reader,
    RawQuery(raw): RawQuery,
) -> Taxii<Response> {
    check_root(&root)?;
    check_collection(&cid)?;
    let mut query = parse_query(raw.as_deref(), true)?;
    query.filter.ids = vec![oid.clone()];
    let page = state
        .platform
        .taxii_page(&actor, &cid, &query.filter, query.limit)
        .await?;
    if page.objects.is_empty() && query.filter.after.is_none() {
        return Err(TaxiiError::new(
            StatusCode::NOT_FOUND,
            "Not Found",
            format!("no object {oid} in this collection"),
        ));
    }
    Ok(with_date_headers(
        taxii_json(StatusCode::OK, envelope(&page)),
        &page,
    ))
}

async fn versions(
    State(state): State<AppState>,
    Path((root, cid, oid)): Path<(String, String, String)>,
    Reader(actor): Reader,
    RawQuery(raw): RawQuery,
) -> Taxii<Response> {
    check_root(&root)?;
    check_collection(&cid)?;
    let query = parse_query(raw.as_deref(), true)?;
    let mut all = state.platform.taxii_versions(&actor, &cid, &oid).await?;
    if all.is_empty() {
        return Err(TaxiiError::new(
            StatusCode::NOT_FOUND,
            "Not Found",
            format!("no object {oid} in this collection"),
        ));
    }
    if let Some(after) = &query.filter.added_after {
        all.retain(|(_, added)| added > after);
    }
    if !query.filter.spec_versions.is_empty()
        && !query.filter.spec_versions.iter().any(|v| v == "2.1")
    {
        all.clear();
    }
    let more = all.len() as i64 > query.limit;
    all.truncate(query.limit.clamp(1, t::MAX_PAGE) as usize);
    let first = all.iter().map(|(_, a)| a.clone()).min();
    let last = all.iter().map(|(_, a)| a.clone()).max();
    let body = json!({
        "more": more,
        "versions": all.iter().map(|(v, _)| v).collect::<Vec<_>>(),
    });
    let mut response = taxii_json(StatusCode::OK, body.to_string());
    for (name, value) in [
        ("x-taxii-date-added-first", first),
        ("x-taxii-date-added-last", last),
    ] {
        if let Some(v) = value
            && let Ok(v) = HeaderValue::from_str(&v)
        {
            response.headers_mut().insert(name, v);
        }
    }
    Ok(response)
}

async fn add_objects(
    State(state): State<AppState>,
    Path((root, cid)): Path<(String, String)>,
    Reader(actor): Reader,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Taxii<Response> {
    check_root(&root)?;
    let info = check_collection(&cid)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let compact: String = content_type
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if compact != TAXII_MEDIA_TYPE && compact != "application/taxii+json" {
        return Err(TaxiiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            format!("send the envelope as {TAXII_MEDIA_TYPE}"),
        ));
    }
    if !info.can_write {
        return Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "this collection is read-only; add objects to your inbox",
        ));
    }
    let bytes = body.map_err(|e| {
        TaxiiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            format!(
                "{} (max_content_length is {MAX_CONTENT_LENGTH})",
                e.body_text()
            ),
        )
    })?;
    let outcome = state.platform.taxii_add(&actor, &cid, &bytes).await?;
    Ok(taxii_json(StatusCode::ACCEPTED, outcome.body.to_string()))
}

async fn delete_object(
    State(state): State<AppState>,
    Path((root, cid, oid)): Path<(String, String, String)>,
    Reader(actor): Reader,
    RawQuery(raw): RawQuery,
) -> Taxii<Response> {
    check_root(&root)?;
    check_collection(&cid)?;
    let mut query = parse_query(raw.as_deref(), false)?;
    // Without match[version], a delete removes every version.
    if raw
        .as_deref()
        .is_none_or(|q| !q.contains("match%5Bversion%5D") && !q.contains("match[version]"))
    {
        query.filter.versions = VersionMatch {
            all: true,
            ..VersionMatch::default()
        };
    }
    state
        .platform
        .taxii_delete(&actor, &cid, &oid, &query.filter)
        .await?;
    Ok(taxii_json(StatusCode::OK, String::new()))
}
