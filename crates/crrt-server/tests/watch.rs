//! A mission's website watch over real HTTP: the team adds the ministry's
//! site, `run_watch` checks it, the site is defaced, and the alert appears on
//! the mission's status board with the page as fetched and the diff, only
//! for those who may read the mission.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use crrt_store::testing::backends;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const MINISTRY: &str = "<html><head><title>Ministry of Foreign Affairs</title></head><body>\
    <h1>Ministry of Foreign Affairs</h1><p>Statement of the Ministry on the situation at the border.</p>\
    <p>Consular services. Embassies abroad. Press centre.</p></body></html>";
const DEFACED: &str = "<html><body><h1>Українець!</h1><p>Всі ваші особисті дані були завантажені в загальну мережу. \
    Бійтеся і чекайте гіршого.</p></body></html>";

/// The ministry's site on loopback; its page can be swapped.
async fn site() -> (String, Arc<Mutex<&'static str>>) {
    let page = Arc::new(Mutex::new(MINISTRY));
    let served = page.clone();
    let app = axum::Router::new().fallback(move || {
        let served = served.clone();
        async move { axum::response::Html(*served.lock().expect("page")) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, page)
}

/// Polls the board until `done` holds for the first target (at most 40 s).
async fn board_until(fixture: &Fixture, mission: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let (status, board) = fixture
            .call(
                "coordinator",
                Method::GET,
                &format!("/api/v1/missions/{mission}/watch"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{board}");
        if board[0].is_object() && done(&board[0]) {
            return board[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the board never got there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_defaced_ministry_site_alerts_the_mission_with_its_evidence() {
    // Both databases at once: each scenario waits on the watch's schedule.
    let runs = backends()
        .into_iter()
        .map(|backend| tokio::spawn(defacement_scenario(backend)));
    for run in runs.collect::<Vec<_>>() {
        run.await.expect("scenario");
    }
}

#[tokio::test]
async fn webhook_secrets_kept_in_clear_by_an_older_version_are_sealed_at_start() {
    for backend in backends() {
        let fixture = Fixture::start(backend).await;
        let mission = fixture.mission().await.id;
        let clear = "an-older-version-kept-this-in-clear";
        let coordinator = fixture.actor("coordinator").await;
        let mut tx = fixture.platform.store().begin().await.expect("tx");
        tx.set_watch_notifications(&crrt_store::WatchNotifications {
            mission_id: mission.clone(),
            webhook_url: Some("https://hooks.example/crrt".into()),
            webhook_secret: Some(clear.into()),
            emails: Vec::new(),
            updated_by: coordinator.user.id.clone(),
            updated_at: "2026-11-27T00:00:00.000000Z".into(),
        })
        .await
        .expect("stored");
        tx.commit().await.expect("commit");
        // What `crrt serve` runs when it starts; a second start finds
        // nothing left to seal.
        for expected in [1, 0] {
            assert_eq!(
                fixture
                    .platform
                    .seal_stored_credentials()
                    .await
                    .map_err(|e| e.to_string()),
                Ok(expected),
                "{backend}"
            );
        }
        assert_stored_sealed(&fixture, &mission, clear, backend).await;
        // No copy left in the database files' free pages or WAL either.
        for entry in std::fs::read_dir(fixture.dir.path()).expect("dir") {
            let path = entry.expect("entry").path();
            let name = path.to_string_lossy().into_owned();
            if name.ends_with(".db") || name.ends_with(".db-wal") {
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(clear),
                    "{name} still holds the secret"
                );
            }
        }
    }
}

/// The mission's webhook secret is stored sealed, with no trace of `plain`.
async fn assert_stored_sealed(fixture: &Fixture, mission: &str, plain: &str, backend: &str) {
    let stored = fixture
        .platform
        .store()
        .watch_notifications(mission)
        .await
        .expect("read")
        .and_then(|n| n.webhook_secret)
        .expect("a stored secret");
    assert!(
        crrt_platform::secrets::SecretBox::is_sealed(&stored) && !stored.contains(plain),
        "{backend}: stored as {stored}"
    );
}

async fn defacement_scenario(backend: &'static str) {
    let fixture = Fixture::start(backend).await;
    let mission = fixture.mission().await.id;
    let (url, page) = site().await;
    let watcher = fixture.platform.clone();
    let (hook_url, received) = webhook_receiver().await;
    let mail_dir = tempfile::tempdir().expect("mailbox");
    let smtpd = smtpd(&mail_dir.path().join("mailbox"));
    let options = crrt_platform::WatchOptions {
        refresh: Duration::from_millis(200),
        smtp: smtpd.as_ref().map(|(_, port)| crrt_watch::SmtpSettings {
            url: format!("smtp://127.0.0.1:{port}"),
            from: "CRRT watch <watch@cert.example>".into(),
        }),
    };
    tokio::spawn(async move { watcher.run_watch(options, std::future::pending()).await });
    let path = format!("/api/v1/missions/{mission}/watch");
    let target = json!({"name": "mfa", "url": url, "settings": {"interval": "10s", "must_contain": ["Ministry"]}});

    // Who may add: the team; the victim and outsiders may not.
    for (role, expected) in [
        ("anonymous", StatusCode::UNAUTHORIZED),
        ("partner", StatusCode::NOT_FOUND),
        ("other_requester", StatusCode::NOT_FOUND),
        ("responder", StatusCode::NOT_FOUND),
        ("requester", StatusCode::FORBIDDEN),
    ] {
        let (status, body) = fixture
            .call(role, Method::POST, &path, Some(target.clone()))
            .await;
        assert_eq!(status, expected, "{backend} {role}: {body}");
    }
    // Bad settings are named and change nothing.
    for (settings, expected) in [
        (json!({"interval": "1s"}), "under the minimum of 10s"),
        (json!({"ca_file": "/etc/passwd"}), "ca_file"),
        (json!({"similarity": 7}), "between 0 and 1"),
        (json!({"colour": "red"}), "unknown field `colour`"),
    ] {
        let (status, body) = fixture
            .call(
                "coordinator",
                Method::POST,
                &path,
                Some(json!({"name": "x", "url": url, "settings": settings})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{backend}: {body}"
        );
        assert!(
            body.to_string().contains(expected),
            "{backend}: {body} lacks {expected}"
        );
    }
    // Loopback and private addresses only where the administrator allows them.
    let strict = fixture.platform.clone().allow_private_watch_targets(false);
    let coordinator = fixture.actor("coordinator").await;
    for url in [
        "http://127.0.0.1:8080/",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://localhost/",
        "http://169.254.169.254/latest/",
    ] {
        let new = crrt_platform::NewWatchTarget {
            name: "internal".into(),
            url: url.into(),
            settings: Value::Null,
        };
        let refused = strict
            .add_watch_target(&coordinator, &mission, new)
            .await
            .expect_err("refused");
        assert!(
            refused.to_string().contains("loopback or private"),
            "{backend} {url}: {refused}"
        );
    }
    let (status, added) = fixture
        .call("coordinator", Method::POST, &path, Some(target.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{backend}: {added}");
    let (status, _) = fixture
        .call("coordinator", Method::POST, &path, Some(target.clone()))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "{backend}: one name per mission"
    );

    // Where alerts go: the team decides; the secret is never shown again.
    let notify = format!("/api/v1/missions/{mission}/watch/notifications");
    for (body, expected) in [
        (
            json!({"webhook_url": hook_url, "webhook_secret": "short"}),
            "16 characters",
        ),
        (
            json!({"webhook_url": "ftp://x/", "webhook_secret": SECRET}),
            "http:// or https://",
        ),
        (
            json!({"emails": ["duty@cert.example", "not an address"]}),
            "is not an e-mail address",
        ),
    ] {
        let (status, answer) = fixture
            .call("coordinator", Method::PUT, &notify, Some(body))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{backend}: {answer}"
        );
        assert!(
            answer.to_string().contains(expected),
            "{backend}: {answer} lacks {expected}"
        );
    }
    let settings =
        json!({"webhook_url": hook_url, "webhook_secret": SECRET, "emails": ["duty@cert.example"]});
    let (status, _) = fixture
        .call("requester", Method::PUT, &notify, Some(settings.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{backend}");
    let (status, shown) = fixture
        .call("coordinator", Method::PUT, &notify, Some(settings))
        .await;
    assert_eq!(status, StatusCode::OK, "{backend}: {shown}");
    assert_eq!(shown["webhook_secret_set"], true);
    assert!(
        !shown.to_string().contains(SECRET),
        "{backend}: the secret is not shown"
    );
    // Stored sealed; sending the same URL again without the secret keeps
    // it (opened and sealed anew, so the alerts below are still signed
    // with SECRET).
    let (status, shown) = fixture
        .call(
            "coordinator",
            Method::PUT,
            &notify,
            Some(json!({"webhook_url": hook_url, "emails": ["duty@cert.example"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{backend}: {shown}");
    assert_eq!(shown["webhook_secret_set"], true);
    assert_stored_sealed(&fixture, &mission, SECRET, backend).await;

    // The first check is the baseline; then the site is defaced.
    let up = board_until(&fixture, &mission, |target| target["state"] == "up").await;
    assert_eq!(up["last_result"], "up", "{backend}: {up}");
    *page.lock().expect("page") = DEFACED;
    let alerting = board_until(&fixture, &mission, |target| {
        target["open_alerts"]
            .as_array()
            .is_some_and(|alerts| alerts.iter().any(|alert| alert["kind"] == "defacement"))
    })
    .await;
    assert_eq!(alerting["state"], "alert");
    let alerts = alerting["open_alerts"].as_array().expect("alerts");
    let kinds: Vec<&str> = alerts
        .iter()
        .filter_map(|alert| alert["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"content"),
        "{backend}: must_contain also failed: {kinds:?}"
    );
    let defacement = alerts
        .iter()
        .find(|alert| alert["kind"] == "defacement")
        .expect("defacement");
    assert!(
        defacement["summary"]
            .as_str()
            .is_some_and(|summary| summary.contains("бійтеся і чекайте гіршого")),
        "{defacement}"
    );
    assert_eq!(defacement["facts"]["status"], 200);

    // Each opening went out once, signed, to the webhook and by e-mail.
    let mut kinds_sent = Vec::new();
    for _ in 0..100 {
        kinds_sent = received
            .lock()
            .expect("received")
            .iter()
            .map(|body: &Value| format!("{} {}", body["event"], body["kind"]))
            .collect();
        if kinds_sent.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kinds_sent.sort();
    assert_eq!(
        kinds_sent,
        ["\"open\" \"content\"", "\"open\" \"defacement\""],
        "{backend}"
    );
    if smtpd.is_some() {
        let mut messages = 0;
        for _ in 0..100 {
            messages = std::fs::read_dir(mail_dir.path().join("mailbox/new"))
                .map(|entries| entries.count())
                .unwrap_or(0);
            if messages >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(messages, 2, "{backend}: one e-mail per opened alert");
    }

    // The evidence: the body exactly as fetched, hashed; the diff.
    let alert_id = defacement["id"].as_str().expect("id");
    let response = fixture
        .client
        .get(format!(
            "{}/api/v1/watch/alerts/{alert_id}/body",
            fixture.base
        ))
        .bearer_auth(&fixture.tokens["requester"])
        .send()
        .await
        .expect("download");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{backend}: the victim institution reads its own site's alert"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream",
        "a defaced page is never rendered"
    );
    let sha256 = response.headers()["x-content-sha256"]
        .to_str()
        .expect("hash")
        .to_owned();
    let body = response.bytes().await.expect("body");
    assert_eq!(&body[..], DEFACED.as_bytes());
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&body)), sha256);
    assert_eq!(defacement["body_sha256"], sha256.as_str());
    let (status, diff) = fixture
        .call(
            "coordinator",
            Method::GET,
            &format!("/api/v1/watch/alerts/{alert_id}/diff"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let diff = diff.as_str().expect("text");
    assert!(
        diff.contains("-Ministry of Foreign Affairs") && diff.contains("+Українець!"),
        "{diff}"
    );

    // Outsiders see nothing of it.
    for role in ["other_requester", "partner", "responder"] {
        let (status, _) = fixture.call(role, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {role} board");
        let (status, _) = fixture
            .call(
                role,
                Method::GET,
                &format!("/api/v1/watch/alerts/{alert_id}/body"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {role} body");
    }
    let (status, board) = fixture.call("requester", Method::GET, &path, None).await;
    assert_eq!(
        (status, board[0]["state"].as_str()),
        (StatusCode::OK, Some("alert")),
        "{backend}"
    );

    // The baseline survives a restart; the audit trail holds the alert.
    let stored = fixture
        .platform
        .store()
        .watch_target(added["id"].as_str().expect("id"))
        .await
        .expect("read")
        .expect("row");
    assert!(
        stored
            .baseline
            .as_deref()
            .is_some_and(|baseline| baseline.contains("Ministry")),
        "{backend}"
    );
    let trail = fixture
        .platform
        .store()
        .audit_events(0, 1000)
        .await
        .expect("audit");
    assert!(
        trail.iter().any(|event| event.action == "watch.alert.open"),
        "{backend}"
    );
    assert!(
        matches!(
            fixture.platform.verify_audit().await.expect("verify"),
            crrt_platform::AuditVerification::Intact { .. }
        ),
        "{backend}"
    );

    // The team accepts the page as it is now: its alerts close and the
    // baseline is learnt again from the next check.
    let target_id = added["id"].as_str().expect("id");
    let rebaseline = format!("/api/v1/watch/targets/{target_id}/rebaseline");
    let (status, _) = fixture
        .call("requester", Method::POST, &rebaseline, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{backend}");
    let (status, _) = fixture
        .call("coordinator", Method::POST, &rebaseline, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{backend}");
    let (_, board) = fixture.call("coordinator", Method::GET, &path, None).await;
    assert_eq!(board[0]["open_alerts"], json!([]), "{backend}");
    let mut relearnt = None;
    for _ in 0..100 {
        relearnt = fixture
            .platform
            .store()
            .watch_target(target_id)
            .await
            .expect("read")
            .and_then(|row| row.baseline);
        if relearnt.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        relearnt.is_some_and(|baseline| baseline.contains("Українець")),
        "{backend}: the defaced page is the new normal"
    );

    // Removing the target closes its alerts; the history stays.
    let (status, _) = fixture
        .call(
            "requester",
            Method::DELETE,
            &format!(
                "/api/v1/watch/targets/{}",
                added["id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{backend}");
    let (status, _) = fixture
        .call(
            "coordinator",
            Method::DELETE,
            &format!(
                "/api/v1/watch/targets/{}",
                added["id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{backend}");
    let (_, board) = fixture.call("coordinator", Method::GET, &path, None).await;
    assert_eq!(board, json!([]));
    let (_, history) = fixture
        .call(
            "coordinator",
            Method::GET,
            &format!("{path}/alerts?all=true"),
            None,
        )
        .await;
    let history = history.as_array().expect("alerts");
    assert!(
        !history.is_empty() && history.iter().all(|alert| alert["closed_at"].is_string()),
        "{backend}: {history:?}"
    );
}

const SECRET: &str = "the team's webhook secret";

/// A webhook receiver on loopback keeping the bodies whose signature is right.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let signed = headers
                        .get(crrt_watch::notify::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if signed != crrt_watch::notify::signature(SECRET, &body) {
                        return StatusCode::UNAUTHORIZED;
                    }
                    kept.lock()
                        .expect("kept")
                        .push(serde_json::from_slice(&body).expect("json"));
                    StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, received)
}
