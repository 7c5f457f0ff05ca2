//! HTTPS sites on loopback with certificates from test authorities: a
//! certificate about to expire, one from an unknown issuer, and an issuer
//! that changes between checks each open a `tls` alert, never `down`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use crrt_watch::{AlertEvent, AlertKind, Change, Fetcher, Monitor, Phrases, Target};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test certificate authority.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        Authority { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for 127.0.0.1 that ends `days` from now.
    fn leaf(&self, days: i64) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let end = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * days))
            .expect("time");
        let date = end.to_zoned(jiff::tz::TimeZone::UTC).date();
        params.not_after =
            rcgen::date_time_ymd(i32::from(date.year()), date.month() as u8, date.day() as u8);
        let key = KeyPair::generate().expect("key");
        let certificate = params.signed_by(&key, &self.issuer).expect("leaf");
        (
            certificate.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// axum over TLS: a listener whose connections are TLS streams.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else {
                continue;
            };
            // A client that refuses our certificate ends its handshake: next one.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Serves a page over HTTPS with this certificate; returns the address and the task.
async fn https_site(
    certificate: (CertificateDer<'static>, PrivateKeyDer<'static>),
    address: Option<SocketAddr>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    crrt_watch::install_crypto_provider();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.0], certificate.1)
        .expect("server config");
    let tcp = TcpListener::bind(address.unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
        .await
        .expect("bind");
    let address = tcp.local_addr().expect("address");
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let app = Router::new()
        .fallback(|| async { axum::response::Html("<h1>Ministry of Foreign Affairs</h1>") });
    let task = tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (address, task)
}

fn target(address: SocketAddr, ca_file: Option<std::path::PathBuf>) -> Arc<Target> {
    let mut target = Target::new("mfa", format!("https://{address}/").parse().expect("url"));
    target.ca_file = ca_file;
    Arc::new(target)
}

async fn check(fetcher: &Fetcher, monitor: &mut Monitor, target: &Target) -> Vec<AlertEvent> {
    monitor.observe(&fetcher.check(target).await)
}

fn kinds(events: &[AlertEvent]) -> Vec<(Change, AlertKind)> {
    events
        .iter()
        .map(|event| (event.event, event.kind))
        .collect()
}

#[tokio::test]
async fn a_certificate_that_expires_soon_opens_tls_and_the_page_is_still_watched() {
    let authority = Authority::new("CRRT Test CA");
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, authority.pem()).expect("write");
    let (address, _site) = https_site(authority.leaf(5), None).await;
    let target = target(address, Some(ca_file));
    let fetcher = Fetcher::new();
    let mut monitor = Monitor::new(target.clone(), Arc::new(Phrases::bundled()));
    let events = check(&fetcher, &mut monitor, &target).await;
    assert_eq!(kinds(&events), [(Change::Open, AlertKind::Tls)]);
    assert!(
        events[0]
            .summary
            .starts_with("certificate expires in 4 days")
            || events[0]
                .summary
                .starts_with("certificate expires in 5 days"),
        "{}",
        events[0].summary
    );
    assert_eq!(
        monitor.baseline().issuer.as_deref(),
        Some("CN=CRRT Test CA")
    );
    assert!(
        monitor.baseline().page.is_some(),
        "the page was read over HTTPS"
    );
}

#[tokio::test]
async fn an_unknown_issuer_is_a_tls_alert_not_an_outage() {
    let authority = Authority::new("Someone Else's CA");
    let (address, _site) = https_site(authority.leaf(90), None).await;
    let target = target(address, None);
    let fetcher = Fetcher::new();
    let mut monitor = Monitor::new(target.clone(), Arc::new(Phrases::bundled()));
    let mut events = check(&fetcher, &mut monitor, &target).await;
    events.extend(check(&fetcher, &mut monitor, &target).await);
    assert_eq!(kinds(&events), [(Change::Open, AlertKind::Tls)]);
    assert!(
        events[0].summary.contains("certificate refused")
            && events[0].summary.contains("UnknownIssuer"),
        "{}",
        events[0].summary
    );
}

#[tokio::test]
async fn a_new_issuer_opens_tls() {
    let usual = Authority::new("Usual CA");
    let other = Authority::new("Other CA");
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = dir.path().join("both.pem");
    std::fs::write(&ca_file, format!("{}{}", usual.pem(), other.pem())).expect("write");
    let (address, site) = https_site(usual.leaf(90), None).await;
    let target = target(address, Some(ca_file));
    let fetcher = Fetcher::new();
    let mut monitor = Monitor::new(target.clone(), Arc::new(Phrases::bundled()));
    assert!(check(&fetcher, &mut monitor, &target).await.is_empty());
    site.abort();
    let _ = site.await;
    let (_, _site) = https_site(other.leaf(90), Some(address)).await;
    let events = check(&fetcher, &mut monitor, &target).await;
    assert_eq!(kinds(&events), [(Change::Open, AlertKind::Tls)]);
    assert_eq!(
        events[0].summary,
        "certificate issuer changed to \"CN=Other CA\" (was \"CN=Usual CA\")"
    );
}
