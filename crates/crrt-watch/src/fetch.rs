//! One check of a target over the network: the page, its certificate, its DNS.

use std::collections::HashMap;
use std::error::Error as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use url::Url;

use crate::Target;
use crate::dns::{Answers, Dns};

/// What one check saw.
#[derive(Debug, Clone)]
pub struct Observation {
    pub at: Timestamp,
    pub page: Result<Fetched, FetchFailure>,
    /// `None` when the target watches no DNS records.
    pub dns: Option<Result<Answers, String>>,
}

/// A response, as received.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    /// Where the redirects ended.
    pub final_url: Url,
    /// Until the response's headers arrived.
    pub latency: Duration,
    /// Until the body (or its first `max_body` bytes) arrived.
    pub total: Duration,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than `max_body` and was cut there.
    pub truncated: bool,
    pub certificate: Option<Certificate>,
}

/// The server certificate's facts that alerts use.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    pub issuer: String,
    pub subject: String,
    pub not_after: Timestamp,
}

/// Why there is no response.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchFailure {
    /// No answer in time.
    Timeout(Duration),
    /// The certificate or the handshake failed: a TLS alert, not an outage.
    Tls(String),
    /// Refused, reset, unresolvable: the site is down for visitors.
    Connect(String),
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchFailure::Timeout(after) => {
                write!(formatter, "no response within {:.1}s", after.as_secs_f64())
            }
            FetchFailure::Tls(reason) => write!(formatter, "TLS failed: {reason}"),
            FetchFailure::Connect(reason) => write!(formatter, "unreachable: {reason}"),
        }
    }
}

/// HTTP clients (one per extra CA file) and resolvers, shared by all targets.
#[derive(Debug, Default)]
pub struct Fetcher {
    clients: Mutex<HashMap<Option<PathBuf>, reqwest::Client>>,
    dns: Dns,
    /// Refuse to connect to loopback, private and link-local addresses,
    /// whether named directly, resolved from a name, or redirected to.
    public_only: bool,
}

/// Whether an address is this machine's or a private network's.
pub fn is_private_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
        }
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private_ip(std::net::IpAddr::V4(v4)))
        }
    }
}

/// Whether a URL names this machine or a private network by itself.
pub fn is_private_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_private_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_private_ip(ip.into()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => true,
    }
}

/// A resolver that hands out only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<_> = found
                .into_iter()
                .filter(|address| !is_private_ip(address.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{host} resolves only to private or loopback addresses, which this watch does not check").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Sent with every check, so the victim's administrators can tell the team's
/// checks apart from an attack.
const USER_AGENT: &str = concat!(
    "crrt-watch/",
    env!("CARGO_PKG_VERSION"),
    " (incident response site watch)"
);

impl Fetcher {
    pub fn new() -> Fetcher {
        crate::install_crypto_provider();
        Fetcher::default()
    }

    /// A fetcher that never connects to private or loopback addresses.
    pub fn public_only() -> Fetcher {
        Fetcher {
            public_only: true,
            ..Fetcher::new()
        }
    }

    /// The client for a target; built once per CA file.
    pub fn client(&self, target: &Target) -> Result<reqwest::Client, crate::Error> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| crate::Error::Config("the client table is poisoned".into()))?;
        if let Some(client) = clients.get(&target.ca_file) {
            return Ok(client.clone());
        }
        let public_only = self.public_only;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if public_only && is_private_url(attempt.url()) {
                let to = attempt.url().to_string();
                attempt.error(format!("redirected to a private address ({to})"))
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .tls_info(true)
            .redirect(redirects)
            .connect_timeout(Duration::from_secs(10))
            // A new connection per check: what a visitor's browser goes through
            // (DNS, TCP, TLS), and no idle socket per site between checks.
            .pool_max_idle_per_host(0);
        if self.public_only {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        if let Some(path) = &target.ca_file {
            let pem = std::fs::read(path).map_err(|error| crate::Error::Io {
                path: path.clone(),
                error,
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                crate::Error::Config(format!(
                    "{}: not a PEM certificate bundle: {error}",
                    path.display()
                ))
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|error| crate::Error::Config(format!("HTTP client: {error}")))?;
        clients.insert(target.ca_file.clone(), client.clone());
        Ok(client)
    }

    /// Checks a target once. Never fails: every problem is part of the observation.
    pub async fn check(&self, target: &Target) -> Observation {
        let at = Timestamp::now();
        let page = match self.client(target) {
            Ok(_) if self.public_only && is_private_url(&target.url) => {
                Err(FetchFailure::Connect(format!(
                    "{} is a private or loopback address, which this watch does not check",
                    target.url
                )))
            }
            Ok(client) => fetch(&client, target).await,
            Err(error) => Err(FetchFailure::Connect(error.to_string())),
        };
        // An address has no records to watch.
        let by_address = matches!(
            target.url.host(),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))
        );
        let dns = if target.dns.is_empty() || by_address {
            None
        } else {
            let host = target
                .url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']');
            Some(self.dns.lookup(host, &target.dns, target.dns_server).await)
        };
        Observation { at, page, dns }
    }
}

async fn fetch(client: &reqwest::Client, target: &Target) -> Result<Fetched, FetchFailure> {
    let started = Instant::now();
    let outcome = tokio::time::timeout(target.timeout, async {
        let mut response = client
            .get(target.url.clone())
            .header(reqwest::header::CACHE_CONTROL, "no-cache")
            .send()
            .await
            .map_err(classify)?;
        let latency = started.elapsed();
        let status = response.status().as_u16();
        let final_url = response.url().clone();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let certificate = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .and_then(read_certificate);
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            let room = target.max_body - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            final_url,
            latency,
            total: started.elapsed(),
            content_type,
            body,
            truncated,
            certificate,
        })
    })
    .await;
    outcome.unwrap_or(Err(FetchFailure::Timeout(target.timeout)))
}

/// Sorts reqwest's errors into what the alerts need: TLS problems are told
/// apart by rustls or webpki somewhere in the error's chain.
fn classify(error: reqwest::Error) -> FetchFailure {
    if error.is_timeout() {
        return FetchFailure::Timeout(Duration::ZERO);
    }
    let mut reasons = Vec::new();
    let mut tls = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(cause) = source {
        if let Some(rustls_error) = cause.downcast_ref::<rustls::Error>() {
            tls = Some(rustls_error.to_string());
        }
        reasons.push(cause.to_string());
        source = cause.source();
    }
    let reason = reasons.last().cloned().unwrap_or_else(|| error.to_string());
    match tls {
        Some(tls_reason) => FetchFailure::Tls(tls_reason),
        None if reasons
            .iter()
            .any(|text| text.contains("certificate") || text.contains("handshake")) =>
        {
            FetchFailure::Tls(reason)
        }
        None => FetchFailure::Connect(reason),
    }
}

fn read_certificate(der: &[u8]) -> Option<Certificate> {
    use x509_cert::der::Decode;
    let certificate = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = certificate.tbs_certificate();
    let not_after = tbs.validity().not_after.to_unix_duration();
    Some(Certificate {
        issuer: tbs.issuer().to_string(),
        subject: tbs.subject().to_string(),
        not_after: Timestamp::from_second(i64::try_from(not_after.as_secs()).ok()?).ok()?,
    })
}
