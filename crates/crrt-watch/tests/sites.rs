//! Real sites on loopback that go down, slow down, change their date, get
//! defaced: each check goes over HTTP through the real fetcher, and each
//! scenario must produce exactly the expected alerts.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use crrt_watch::{AlertEvent, AlertKind, Change, Fetcher, Monitor, Phrases, Target};

/// What the site serves now.
#[derive(Debug, Clone)]
enum Mode {
    Normal,
    Slow(Duration),
    Status(u16),
    /// The January 2022 message in place of the page.
    Defaced,
    /// The page, plus a script from a host it never used.
    Injected,
}

#[derive(Clone)]
struct Site {
    mode: Arc<Mutex<Mode>>,
    hits: Arc<Mutex<u64>>,
}

async fn page(State(site): State<Site>) -> Response {
    let mode = site.mode.lock().expect("mode").clone();
    let hit = {
        let mut hits = site.hits.lock().expect("hits");
        *hits += 1;
        *hits
    };
    // Every response has a new date, time and visitor count, like real portals.
    let stamp = format!(
        "{:02}.11.2026 {:02}:{:02}",
        1 + hit % 28,
        hit % 24,
        (hit * 7) % 60
    );
    let normal = format!(
        "<html><head><title>Ministry of Foreign Affairs of Ukraine</title>\
         <script src=\"/static/app.js\"></script></head><body>\
         <h1>Ministry of Foreign Affairs</h1><p>Updated {stamp}. Visitors today: {}</p>\
         <p>Statement of the Ministry on the situation at the border. The Ministry calls on partners \
         to support the sovereignty and territorial integrity of Ukraine.</p>\
         <ul><li>Consular services</li><li>Embassies abroad</li><li>Press centre</li></ul></body></html>",
        1000 + hit * 13
    );
    match mode {
        Mode::Normal => Html(normal).into_response(),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            Html(normal).into_response()
        }
        Mode::Status(status) => (StatusCode::from_u16(status).expect("status"), "Service unavailable").into_response(),
        Mode::Defaced => Html(
            "<html><body><h1>Українець!</h1><p>Всі ваші особисті дані були завантажені в загальну мережу. \
             Бійтеся і чекайте гіршого.</p></body></html>"
                .to_string(),
        )
        .into_response(),
        Mode::Injected => Html(normal.replace("</body>", "<script src=\"https://cdn.evil.example/m.js\"></script></body>")).into_response(),
    }
}

/// A site on a loopback port that can be stopped and started again on the same port.
struct Server {
    site: Site,
    address: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start() -> Server {
        let site = Site {
            mode: Arc::new(Mutex::new(Mode::Normal)),
            hits: Arc::new(Mutex::new(0)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let mut server = Server {
            site,
            address,
            task: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new().fallback(page).with_state(self.site.clone());
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        }));
    }

    fn set(&self, mode: Mode) {
        *self.site.mode.lock().expect("mode") = mode;
    }

    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.address)
            .await
            .expect("bind the same port again");
        self.serve(listener);
    }

    fn target(&self) -> Target {
        let mut target = Target::new(
            "mfa",
            format!("http://{}/", self.address).parse().expect("url"),
        );
        target.timeout = Duration::from_secs(2);
        target
    }
}

struct Watch {
    fetcher: Fetcher,
    monitor: Monitor,
    target: Arc<Target>,
}

impl Watch {
    fn new(target: Target) -> Watch {
        let target = Arc::new(target);
        Watch {
            fetcher: Fetcher::new(),
            monitor: Monitor::new(target.clone(), Arc::new(Phrases::bundled())),
            target,
        }
    }

    /// Runs `n` checks, returns the alerts they produced.
    async fn checks(&mut self, n: usize) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        for _ in 0..n {
            let observation = self.fetcher.check(&self.target).await;
            events.extend(self.monitor.observe(&observation));
        }
        events
    }
}

fn kinds(events: &[AlertEvent]) -> Vec<(Change, AlertKind)> {
    events
        .iter()
        .map(|event| (event.event, event.kind))
        .collect()
}

#[tokio::test]
async fn a_page_whose_date_and_counters_change_raises_nothing() {
    let server = Server::start().await;
    let mut watch = Watch::new(server.target());
    let events = watch.checks(25).await;
    assert!(events.is_empty(), "{events:#?}");
    assert_eq!(*server.site.hits.lock().expect("hits"), 25);
    assert_eq!(watch.monitor.open_alerts().count(), 0);
}

#[tokio::test]
async fn a_site_that_goes_down_opens_one_alert_after_confirmation_and_closes_when_back() {
    let mut server = Server::start().await;
    let mut watch = Watch::new(server.target());
    assert!(watch.checks(3).await.is_empty());
    server.stop().await;
    assert!(
        watch.checks(1).await.is_empty(),
        "one failed check is not yet an outage"
    );
    assert_eq!(
        watch.monitor.next_delay(),
        watch.target.retry,
        "a failure is confirmed soon, not at the next tick"
    );
    let opened = watch.checks(1).await;
    assert_eq!(kinds(&opened), [(Change::Open, AlertKind::Down)]);
    assert!(
        opened[0].summary.contains("unreachable"),
        "{}",
        opened[0].summary
    );
    let evidence = opened[0].evidence.as_ref().expect("evidence");
    assert!(
        evidence
            .error
            .as_deref()
            .is_some_and(|error| error.contains("unreachable"))
    );
    assert!(
        watch.checks(5).await.is_empty(),
        "an open alert is not repeated"
    );
    server.restart().await;
    assert!(
        watch.checks(1).await.is_empty(),
        "one good check is not yet a recovery"
    );
    let closed = watch.checks(1).await;
    assert_eq!(kinds(&closed), [(Change::Close, AlertKind::Down)]);
    assert_eq!(closed[0].opened, opened[0].time);
    assert!(watch.checks(3).await.is_empty());
}

#[tokio::test]
async fn a_hanging_site_is_down_after_its_timeout() {
    let server = Server::start().await;
    let mut target = server.target();
    target.timeout = Duration::from_millis(300);
    let mut watch = Watch::new(target);
    assert!(watch.checks(2).await.is_empty());
    server.set(Mode::Slow(Duration::from_secs(5)));
    let events = watch.checks(2).await;
    assert_eq!(kinds(&events), [(Change::Open, AlertKind::Down)]);
    assert!(
        events[0].summary.contains("no response within 0.3s"),
        "{}",
        events[0].summary
    );
}

#[tokio::test]
async fn a_slowed_site_opens_slow_against_its_own_usual_latency() {
    let server = Server::start().await;
    let mut watch = Watch::new(server.target());
    assert!(watch.checks(8).await.is_empty());
    server.set(Mode::Slow(Duration::from_millis(900)));
    let events = watch.checks(2).await;
    assert_eq!(kinds(&events), [(Change::Open, AlertKind::Slow)]);
    assert!(
        events[0].summary.contains("usually"),
        "{}",
        events[0].summary
    );
    // The slow responses did not become the norm: still slow, still one alert.
    assert!(watch.checks(3).await.is_empty());
    server.set(Mode::Normal);
    assert_eq!(
        kinds(&watch.checks(2).await),
        [(Change::Close, AlertKind::Slow)]
    );
}

#[tokio::test]
async fn an_error_status_opens_status_not_down() {
    let server = Server::start().await;
    let mut watch = Watch::new(server.target());
    assert!(watch.checks(2).await.is_empty());
    server.set(Mode::Status(503));
    let events = watch.checks(2).await;
    assert_eq!(kinds(&events), [(Change::Open, AlertKind::Status)]);
    assert_eq!(events[0].summary, "status 503, expected 2xx");
    assert_eq!(
        events[0]
            .evidence
            .as_ref()
            .and_then(|evidence| evidence.status),
        Some(503)
    );
}

#[tokio::test]
async fn the_january_2022_defacement_is_detected_with_its_evidence() {
    let server = Server::start().await;
    let mut target = server.target();
    target.must_contain = vec!["Ministry of Foreign Affairs".into()];
    let mut watch = Watch::new(target);
    assert!(watch.checks(3).await.is_empty());
    server.set(Mode::Defaced);
    let events = watch.checks(2).await;
    assert_eq!(
        kinds(&events),
        [
            (Change::Open, AlertKind::Content),
            (Change::Open, AlertKind::Defacement)
        ]
    );
    let defacement = &events[1];
    assert!(
        defacement.summary.contains("like the baseline"),
        "{}",
        defacement.summary
    );
    assert!(
        defacement.summary.contains("\"бійтеся і чекайте гіршого\""),
        "{}",
        defacement.summary
    );
    let evidence = defacement.evidence.as_ref().expect("evidence");
    let body = String::from_utf8(evidence.body.clone()).expect("utf-8");
    assert!(body.contains("Українець!"), "the body is kept as fetched");
    use sha2::Digest;
    assert_eq!(
        evidence.body_sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&evidence.body)).as_str())
    );
    let diff = evidence.diff.as_deref().expect("diff");
    assert!(
        diff.contains("-Ministry of Foreign Affairs") && diff.contains("+Українець!"),
        "{diff}"
    );
    server.set(Mode::Normal);
    let closed = watch.checks(2).await;
    assert_eq!(
        kinds(&closed),
        [
            (Change::Close, AlertKind::Content),
            (Change::Close, AlertKind::Defacement)
        ]
    );
}

#[tokio::test]
async fn a_script_from_a_new_host_is_a_defacement_even_when_the_text_is_unchanged() {
    let server = Server::start().await;
    let mut watch = Watch::new(server.target());
    assert!(watch.checks(2).await.is_empty());
    server.set(Mode::Injected);
    let events = watch.checks(2).await;
    assert_eq!(kinds(&events), [(Change::Open, AlertKind::Defacement)]);
    assert_eq!(
        events[0].summary,
        "scripts or frames from new hosts: cdn.evil.example"
    );
}

#[tokio::test]
async fn a_flapping_site_is_damped() {
    let mut server = Server::start().await;
    let mut watch = Watch::new(server.target());
    watch.checks(2).await;
    for _ in 0..2 {
        server.stop().await;
        assert_eq!(
            kinds(&watch.checks(2).await),
            [(Change::Open, AlertKind::Down)]
        );
        server.restart().await;
        assert_eq!(
            kinds(&watch.checks(2).await),
            [(Change::Close, AlertKind::Down)]
        );
    }
    // The third opening in half an hour marks the alert as flapping: two
    // good checks no longer close it, six do.
    server.stop().await;
    let third = watch.checks(2).await;
    assert!(third.len() == 1 && third[0].flapping, "{third:?}");
    server.restart().await;
    assert!(watch.checks(5).await.is_empty());
    assert_eq!(
        kinds(&watch.checks(1).await),
        [(Change::Close, AlertKind::Down)]
    );
}

#[tokio::test]
async fn a_public_only_fetcher_refuses_private_names_addresses_and_redirects() {
    let server = Server::start().await;
    let port = server.address.port();
    // A name that resolves to loopback.
    let mut target = Target::new(
        "internal",
        format!("http://localhost:{port}/").parse().expect("url"),
    );
    target.timeout = Duration::from_secs(2);
    let fetcher = Fetcher::public_only();
    let observation = fetcher.check(&target).await;
    let failure = observation.page.expect_err("refused").to_string();
    assert!(failure.contains("private or loopback"), "{failure}");
    // A private address named directly.
    let observation = fetcher.check(&server.target()).await;
    assert!(
        observation
            .page
            .expect_err("refused")
            .to_string()
            .contains("private or loopback")
    );
    // The same site through an ordinary fetcher is up.
    assert!(Fetcher::new().check(&server.target()).await.page.is_ok());
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_not_followed_by_a_public_only_fetcher() {
    let inside = Server::start().await;
    let to = format!("http://{}/", inside.address);
    let app = Router::new().fallback(move || {
        let to = to.clone();
        async move { axum::response::Redirect::temporary(&to) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let target = Target::new("portal", format!("http://{address}/").parse().expect("url"));
    // Followed by an ordinary fetcher...
    let fetched = Fetcher::new().check(&target).await.page.expect("followed");
    assert_eq!(
        fetched.final_url.as_str(),
        format!("http://{}/", inside.address)
    );
    // ... not by a public-only one's client (asked directly: its check would
    // refuse the loopback start address before any request).
    let client = Fetcher::public_only().client(&target).expect("client");
    let error = client
        .get(target.url.clone())
        .send()
        .await
        .expect_err("redirect refused");
    let chain = format!("{error:?}");
    assert!(chain.contains("redirected to a private address"), "{chain}");
}
