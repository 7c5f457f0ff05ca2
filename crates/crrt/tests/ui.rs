//! The web UI in a real browser: `crrt serve --demo` and Debian's headless
//! Chromium driven over WebDriver (chromedriver). Each role signs in and
//! does its main journey; what a role must not see is checked on the way.
//! Screenshots of the main pages land in `target/screenshots/` (or
//! `$CRRT_SCREENSHOTS`).
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` the test says
//! so and passes, except under `CI=true`, where it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "crrt-demo-2022";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn browser_available() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    let message = format!(
        "SKIPPED: the browser tests need {CHROMIUM} and {CHROMEDRIVER} \
         (apt-get install chromium chromium-driver)"
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("{message}");
    false
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("CRRT_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

fn start_demo(data: &Path) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crrt"))
        // The watched site of the journey is on loopback.
        .args([
            "serve",
            "--demo",
            "--watch-private-targets",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("crrt serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let child = Killed(child);
    let address = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("CRRT platform listening on http://")
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        })
        .expect("the listening address is printed");
    (child, format!("http://{address}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_chromedriver() -> (Killed, String) {
    let port = free_port();
    let child = Killed(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/status")).await.is_ok() {
            return (child, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on {url}");
}

/// One browser session (its own cookies) on the demo platform.
struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn open(driver: &str, base: &str, width: u32, height: u32) -> Browser {
        Browser::open_with(driver, base, width, height, &[]).await
    }

    async fn open_with(
        driver: &str,
        base: &str,
        width: u32,
        height: u32,
        extra_args: &[&str],
    ) -> Browser {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
        ];
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(driver)
            .await
            .expect("a Chromium session");
        Browser {
            client,
            base: base.to_owned(),
            shots: screenshots_dir(),
        }
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no {css} on {}: {e}", self.path().await),
        }
    }

    async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    /// Clicks and waits until the next page has replaced this one.
    async fn click(&self, css: &str) {
        let old = self.find("html").await;
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        for _ in 0..200 {
            if old.tag_name().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} loaded no new page");
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    async fn body(&self) -> String {
        self.text("body").await
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn sign_in(&self, email: &str) {
        self.goto("/signin").await;
        self.fill("#email", email).await;
        self.fill("#password", PASSWORD).await;
        self.click("form[action='/signin'] button").await;
        assert_eq!(self.path().await, "/dashboard", "{email} signed in");
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_does_its_journey_in_a_real_browser() {
    // reqwest is built with rustls and needs its crypto provider.
    crrt_watch::install_crypto_provider();
    if !browser_available() {
        return;
    }
    let data = tempfile::tempdir().expect("tempdir");
    let (_server, base) = start_demo(data.path());
    let (_driver, driver) = start_chromedriver().await;
    let work = tempfile::tempdir().expect("tempdir");

    let request_path = requester_files_a_request(&driver, &base).await;
    let mission_path = coordinator_accepts_and_confirms_a_team(&driver, &base, &request_path).await;
    responder_works_a_case(&driver, &base, &mission_path, work.path()).await;
    coordinator_watches_the_ministry_site(&driver, &base, &mission_path).await;
    admin_sees_the_audit_trail_and_roster(&driver, &base).await;
    outsiders_see_nothing(&driver, &base, &mission_path).await;
    phone_width_and_keyboard(&driver, &base).await;
}

/// The ministry's portal, served on loopback for the watch.
async fn ministry_site() -> String {
    let app = axum::Router::new().fallback(|| async {
        axum::response::Html("<html><head><title>Ministry of Digital Transformation</title></head><body><h1>E-services portal</h1><p>Services for citizens and businesses.</p></body></html>")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    url
}

async fn coordinator_watches_the_ministry_site(driver: &str, base: &str, mission_path: &str) {
    let site = ministry_site().await;
    let b = Browser::open(driver, base, 1280, 800).await;
    b.sign_in("rasa@ncsc.lt").await;
    b.goto(mission_path).await;
    b.click("a[href$='/watch']").await;
    assert!(b.body().await.contains("No websites watched yet."));
    b.fill("#watch-name", "e-services portal").await;
    b.fill("#watch-url", &site).await;
    b.select("#watch-interval", "30s").await;
    b.fill("#watch-must", "E-services").await;
    b.click("form[action$='/watch'] button[type=submit]").await;
    assert!(
        b.body().await.contains("Watching e-services portal"),
        "{}",
        b.body().await
    );
    // `crrt serve` picks the target up within 5 s and checks it at once.
    let mut page = String::new();
    for _ in 0..40 {
        b.goto(&format!("{mission_path}/watch")).await;
        page = b.text("table.board").await;
        if page.contains("up") && page.contains(" ms") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        page.contains("e-services portal") && page.contains("up"),
        "the board shows the check: {page}"
    );
    b.shot("watch-board").await;
    b.close().await;
}

async fn requester_files_a_request(driver: &str, base: &str) -> String {
    let b = Browser::open(driver, base, 1280, 800).await;
    b.goto("/dashboard").await;
    assert!(
        b.path().await.starts_with("/signin"),
        "signed out, a page sends you to sign in"
    );
    b.fill("#email", "olena@mintsyfra.example").await;
    b.fill("#password", "wrong password").await;
    b.click("form[action='/signin'] button").await;
    assert!(b.body().await.contains("Wrong e-mail or password"));
    b.sign_in("olena@mintsyfra.example").await;
    b.shot("requester-dashboard").await;
    let nav = b.text("header nav").await;
    assert!(
        !nav.contains("Roster") && !nav.contains("Audit") && !nav.contains("Rule packs"),
        "a requester's navigation: {nav}"
    );

    b.goto("/requests/new").await;
    // Spaces pass the browser's `required` but not the platform.
    b.fill("#summary", "   ").await;
    b.fill(
        "#symptoms",
        "Portal answers 503 since 09:00; ransom note on the intranet.",
    )
    .await;
    b.select("#urgency", "critical").await;
    b.click("form[action='/requests'] button[type=submit]")
        .await;
    assert!(
        b.text("#form-problem").await.contains("summary"),
        "the problem is named"
    );
    assert_eq!(
        b.find("#symptoms")
            .await
            .prop("value")
            .await
            .expect("value"),
        Some("Portal answers 503 since 09:00; ransom note on the intranet.".into()),
        "what was typed is kept"
    );
    assert!(b.exists("#summary[aria-invalid=true]").await);
    b.shot("requester-request-form-problem").await;
    b.fill("#summary", "Ransomware on the e-services portal")
        .await;
    b.find("input[name=capabilities][value=forensics]")
        .await
        .click()
        .await
        .expect("tick");
    b.click("form[action='/requests'] button[type=submit]")
        .await;
    let path = b.path().await;
    assert!(path.starts_with("/requests/"), "on the request: {path}");
    let page = b.body().await;
    assert!(page.contains("Request filed"), "{page}");
    assert!(page.contains("submitted") && page.contains("TLP:AMBER"));
    assert!(
        !b.exists("form[action$='/decision']").await,
        "a requester cannot decide"
    );
    b.shot("requester-request").await;
    b.close().await;
    path
}

async fn coordinator_accepts_and_confirms_a_team(
    driver: &str,
    base: &str,
    request_path: &str,
) -> String {
    let b = Browser::open(driver, base, 1280, 800).await;
    b.sign_in("rasa@ncsc.lt").await;
    assert!(
        b.text("main")
            .await
            .contains("Ransomware on the e-services portal"),
        "the new request is on the coordinator's dashboard"
    );
    b.shot("coordinator-dashboard").await;
    b.goto(request_path).await;
    b.select("#rotating", "CERT-EE").await;
    b.click("form[action$='/review'] button").await;
    assert!(b.body().await.contains("Review started"));
    b.select("#member", "CERT-EE").await;
    b.select("#position", "agree").await;
    b.click("form[action$='/position'] button").await;
    assert!(b.body().await.contains("Position of CERT-EE recorded"));
    b.shot("coordinator-request-review").await;
    b.click("form[action$='/decision'] input[value=accept] ~ button")
        .await;
    let team_path = b.path().await;
    assert!(
        team_path.ends_with("/team"),
        "accepting leads to the team: {team_path}"
    );
    let page = b.body().await;
    assert!(
        page.contains("skills: forensics"),
        "why each is ranked: {page}"
    );
    b.shot("coordinator-team-proposal").await;
    b.click("form[action$='/team'][method=post] button.primary")
        .await;
    let mission_path = b.path().await;
    assert!(mission_path.starts_with("/missions/"), "{mission_path}");
    assert!(b.body().await.contains("confirmed"));
    // Tick the checklist, then make the mission active.
    for name in ["legal_basis", "points_of_contact", "secure_communications"] {
        b.find(&format!("input[name={name}]"))
            .await
            .click()
            .await
            .expect("tick");
    }
    b.select("#deployment", "on-site").await;
    b.click("form[action$='/checklist'] button").await;
    assert!(b.body().await.contains("Checklist saved"));
    b.click("form[action$='/status'] button").await;
    assert!(b.body().await.contains("The mission is now active"));
    b.fill("#case-title", "Encrypted portal servers").await;
    b.select("#playbook", "ransomware").await;
    b.click("form[action$='/cases'] button").await;
    assert!(b.path().await.starts_with("/cases/"));
    b.goto(&mission_path).await;
    b.shot("coordinator-mission").await;
    b.close().await;
    mission_path
}

async fn responder_works_a_case(driver: &str, base: &str, mission_path: &str, work: &Path) {
    let b = Browser::open(driver, base, 1280, 800).await;
    // Kadri is on the demo's wiper mission.
    b.sign_in("kadri@cert.ee").await;
    b.goto("/missions").await;
    b.click("main table a").await;
    b.click("main table a[href^='/cases/']").await;
    let case_path = b.path().await;

    b.fill("#task-title", "Collect Security.evtx from DC01")
        .await;
    b.find("#task-assignee option:nth-child(2)")
        .await
        .click()
        .await
        .expect("assignee");
    b.click("form[action$='/tasks'] button").await;
    assert!(
        b.body()
            .await
            .contains("Task “Collect Security.evtx from DC01” added")
    );
    // Complete it from its row.
    let row = "#tasks tr:last-child";
    b.select(&format!("{row} select[name=status]"), "done")
        .await;
    b.click(&format!("{row} button")).await;
    assert!(b.body().await.contains("saved"));

    let hostile =
        "Payload seen: <script>alert('x')</script> and <img src=x onerror=alert(1)> — **bold**";
    b.fill("#note", hostile).await;
    b.click("button[value=preview]").await;
    assert!(
        b.text(".preview")
            .await
            .contains("<script>alert('x')</script>"),
        "the preview shows markup as text"
    );
    assert_eq!(
        b.find("#note")
            .await
            .prop("value")
            .await
            .expect("value")
            .as_deref(),
        Some(hostile),
        "previewing keeps the text"
    );
    b.click("button[value=save]").await;
    let note = b.text("#notes article:last-of-type .markdown").await;
    assert!(
        note.contains("<script>alert('x')</script>") && note.contains("onerror=alert(1)"),
        "a hostile note renders as text: {note}"
    );
    assert!(
        !b.exists("#notes .markdown script, #notes .markdown img")
            .await,
        "no element came from the note"
    );

    // Evidence and a rule pack through the browser, then a hunt.
    let events = work.join("dc01.jsonl");
    std::fs::write(
        &events,
        concat!(
            r#"{"winlog": {"channel": "Security", "event_id": 4688, "computer_name": "DC01", "record_id": 7, "event_data": {"CommandLine": "whoami /all", "NewProcessName": "C:\\Windows\\System32\\whoami.exe"}}, "@timestamp": "2022-02-23T16:00:00Z"}"#,
            "\n",
            r#"{"winlog": {"channel": "Security", "event_id": 4688, "computer_name": "FS01", "record_id": 9, "event_data": {"CommandLine": "vssadmin delete shadows /all /quiet", "NewProcessName": "C:\\Windows\\System32\\vssadmin.exe"}}, "@timestamp": "2022-02-23T21:00:00Z"}"#,
            "\n"
        ),
    )
    .expect("events");
    b.find("#file")
        .await
        .send_keys(&events.to_string_lossy())
        .await
        .expect("choose file");
    b.click("form[action$='/evidence'] button").await;
    let page = b.body().await;
    assert!(page.contains("dc01.jsonl stored, SHA-256"), "{page}");

    let rules = work.join("pack.yml");
    std::fs::write(
        &rules,
        "title: Whoami\nid: 11111111-2222-3333-4444-555555555555\nlogsource: {category: process_creation, product: windows}\nlevel: medium\ntags: [attack.t1033]\ndetection:\n  sel: {CommandLine|contains: whoami}\n  condition: sel\n---\ntitle: Shadow copies deleted\nid: 11111111-2222-3333-4444-666666666666\nlogsource: {category: process_creation, product: windows}\nlevel: high\ndetection:\n  sel: {CommandLine|contains|all: [vssadmin, delete, shadows]}\n  condition: sel\n",
    )
    .expect("rules");
    b.goto("/rulepacks").await;
    b.fill("#pack-name", "field rules").await;
    b.find("#pack-file")
        .await
        .send_keys(&rules.to_string_lossy())
        .await
        .expect("choose file");
    b.click("form[action='/rulepacks'] button").await;
    let page = b.body().await;
    assert!(page.contains("field rules: 2 rules loaded"), "{page}");
    b.shot("responder-rulepacks").await;

    b.goto(&case_path).await;
    b.find("input[name=rulepack]")
        .await
        .click()
        .await
        .expect("tick");
    b.click("form[action$='/hunts'] button").await;
    assert!(b.body().await.contains("Hunt queued"));
    // The page reloads itself when the hunt ends; look until it has.
    let mut finished = false;
    for _ in 0..100 {
        if b.exists("tr[data-hunt][data-status=done]").await {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(finished, "the hunt ends and the page shows it");
    b.goto(&case_path).await;
    assert_eq!(
        b.text("tr[data-hunt] [data-field=n_findings]").await,
        "2",
        "both rules fired once"
    );
    b.shot("responder-case").await;

    b.goto(&format!("{case_path}/findings")).await;
    let row = "table.findings tbody tr:first-child";
    b.select(&format!("{row} select[name=verdict]"), "true_positive")
        .await;
    b.fill(&format!("{row} input[name=comment]"), "confirmed on DC01")
        .await;
    b.click(&format!("{row} form.triage button")).await;
    assert!(b.body().await.contains("Marked true positive"));
    b.shot("responder-findings").await;
    // A value from the finding becomes an indicator on the case.
    b.fill(&format!("{row} input[name=value]"), "vssadmin.exe")
        .await;
    b.select(&format!("{row} select[name=tlp]"), "amber+strict")
        .await;
    b.click(&format!("{row} form[action='/indicators'] button"))
        .await;
    let page = b.body().await;
    assert!(
        page.contains("Shared filename vssadmin.exe as TLP:AMBER+STRICT"),
        "{page}"
    );
    assert!(page.contains("Linked to"), "{page}");
    b.shot("responder-indicator").await;

    b.goto(&format!("{case_path}/timeline")).await;
    let all = b.text("ol.timeline").await;
    assert!(all.contains("Whoami") && all.contains("Shadow copies deleted"));
    assert!(
        all.contains("Collect Security.evtx from DC01"),
        "tasks are on it"
    );
    b.shot("responder-timeline").await;
    b.select("#f-level", "high").await;
    b.click("form.filters button").await;
    let high = b.text("ol.timeline").await;
    assert!(
        high.contains("Shadow copies deleted") && !high.contains("Whoami"),
        "filtered by level: {high}"
    );
    b.select("#f-level", "").await;
    b.select("#f-host", "DC01").await;
    b.click("form.filters button").await;
    let dc01 = b.text("ol.timeline").await;
    assert!(
        dc01.contains("Whoami") && !dc01.contains("Shadow"),
        "by host: {dc01}"
    );

    // Kadri is not on the mission the coordinator just formed (unless
    // proposed): either way, a mission she is not on is "not found".
    b.goto(mission_path).await;
    let page = b.body().await;
    let on_team = page.contains("Kadri Tamm");
    assert!(
        on_team || page.contains("nothing you may see"),
        "a responder sees only her missions"
    );
    b.close().await;
}

async fn admin_sees_the_audit_trail_and_roster(driver: &str, base: &str) {
    let b = Browser::open(driver, base, 1280, 800).await;
    b.sign_in("admin@crrt.example").await;
    b.goto("/audit").await;
    let chain = b.text("#chain").await;
    assert!(chain.contains("Chain verified"), "{chain}");
    assert!(b.text("table.audit").await.contains("finding.triage"));
    b.shot("admin-audit").await;
    b.goto("/roster").await;
    let roster = b.body().await;
    assert!(roster.contains("CERT Polska") && roster.contains("Piotr Nowak"));
    assert!(roster.contains("malware-analysis"));
    b.shot("admin-roster").await;
    b.goto("/sharing").await;
    assert!(b.body().await.contains("Pulling from partners"));
    b.shot("admin-sharing").await;

    b.goto("/account/tokens").await;
    b.fill("#name", "nightly export").await;
    b.click("form[action='/account/tokens'] button").await;
    let secret = b.text("pre.secret").await;
    assert!(secret.len() > 20, "the token is shown once");
    let me = reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(secret.trim())
        .send()
        .await
        .expect("HTTP");
    assert_eq!(me.status(), 200, "the new token works");
    b.close().await;
}

async fn outsiders_see_nothing(driver: &str, base: &str, mission_path: &str) {
    let b = Browser::open(driver, base, 1280, 800).await;
    b.sign_in("sam@northwind.example").await;
    // The partner sees its own and shared indicators, not CERT-EE's AMBER ones.
    b.goto("/indicators").await;
    let list = b.text("main").await;
    assert!(
        list.contains("a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92"),
        "{list}"
    );
    assert!(
        !list.contains("91.203.5.0/24"),
        "TLP:AMBER of another organisation"
    );
    assert!(
        !list.contains("vssadmin.exe"),
        "TLP:AMBER+STRICT of another organisation"
    );
    b.shot("partner-indicators").await;
    let nav = b.text("header nav").await;
    assert!(
        !nav.contains("Requests") && !nav.contains("Missions"),
        "a partner's navigation: {nav}"
    );
    b.goto(mission_path).await;
    assert!(b.body().await.contains("Not allowed") || b.body().await.contains("Not found"));
    b.goto("/requests").await;
    assert!(b.body().await.contains("Not allowed"));
    b.goto("/audit").await;
    assert!(b.body().await.contains("Not allowed"));
    b.goto("/dashboard").await;
    b.click("form[action='/signout'] button").await;
    assert!(b.path().await.starts_with("/signin"));
    b.goto("/dashboard").await;
    assert!(
        b.path().await.starts_with("/signin"),
        "signed out stays out"
    );
    b.close().await;

    // Ivan (CERT.hr) is away and on no mission.
    let b = Browser::open(driver, base, 1280, 800).await;
    b.sign_in("ivan@cert.hr").await;
    b.goto("/missions").await;
    assert!(b.body().await.contains("No missions you may see"));
    b.goto(mission_path).await;
    assert!(b.body().await.contains("nothing you may see"));
    b.close().await;
}

async fn phone_width_and_keyboard(driver: &str, base: &str) {
    let b = Browser::open(driver, base, 390, 844).await;
    b.sign_in("rasa@ncsc.lt").await;
    b.shot("coordinator-dashboard-phone").await;
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        overflow,
        serde_json::json!(false),
        "no sideways scrolling at phone width"
    );
    // The first Tab lands on "Skip to content".
    b.find("body")
        .await
        .send_keys("\u{E004}")
        .await
        .expect("tab");
    let focused = b.client.active_element().await.expect("focus");
    assert_eq!(focused.text().await.expect("text"), "Skip to content");
    b.close().await;

    // The system's dark setting gives the dark theme.
    let b = Browser::open_with(driver, base, 1280, 800, &["--force-dark-mode"]).await;
    b.sign_in("kadri@cert.ee").await;
    let background = b
        .client
        .execute(
            "return getComputedStyle(document.body).backgroundColor;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        background,
        serde_json::json!("rgb(13, 17, 23)"),
        "dark theme"
    );
    b.shot("responder-dashboard-dark").await;
    b.close().await;
}
