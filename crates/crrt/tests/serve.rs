//! `crrt serve` and `crrt admin` as a user runs them: the real binary, a
//! data directory, HTTP on loopback, SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn crrt(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("runs")
}

/// A platform with a member team, the partner organisation and an
/// administrator (admin@ours.example), through `crrt admin`.
fn ours_with_partner(data: &Path) {
    for args in [
        &[
            "admin",
            "create-org",
            "--name",
            "NCSC-LT",
            "--kind",
            "member",
            "--country",
            "LT",
        ][..],
        &[
            "admin",
            "create-org",
            "--name",
            "Northwind Threat Research",
            "--kind",
            "partner",
            "--country",
            "US",
        ],
        &[
            "admin",
            "create-user",
            "--email",
            "admin@ours.example",
            "--org",
            "NCSC-LT",
            "--role",
            "admin",
            "--password",
            "correct horse battery",
        ],
    ] {
        let out = crrt(data, args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

/// `crrt serve` on a free port of loopback, and the address it printed.
fn serve_on_port_0(data: &Path, extra: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crrt"))
        .arg("serve")
        .args(extra)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("crrt serve starts");
    let address = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("CRRT platform listening on http://")
                .and_then(|r| r.split_whitespace().next().map(str::to_owned))
        })
        .expect("the listening address is printed");
    (child, address)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn administration_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let created = crrt(
        &data,
        &[
            "admin",
            "create-org",
            "--name",
            "CERT-EE",
            "--kind",
            "member",
            "--country",
            "ee",
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    assert!(text(&created.stdout).contains("created organisation CERT-EE (member, EE)"));

    let duplicate = crrt(
        &data,
        &[
            "admin",
            "create-org",
            "--name",
            "CERT-EE",
            "--kind",
            "member",
            "--country",
            "EE",
        ],
    );
    assert_eq!(duplicate.status.code(), Some(2));
    assert!(
        text(&duplicate.stderr).contains("already exists"),
        "{}",
        text(&duplicate.stderr)
    );

    let bad_role = crrt(
        &data,
        &[
            "admin",
            "create-user",
            "--email",
            "a@cert.ee",
            "--org",
            "CERT-EE",
            "--role",
            "boss",
        ],
    );
    assert_eq!(bad_role.status.code(), Some(2));
    assert!(
        text(&bad_role.stderr).contains("expected one of"),
        "{}",
        text(&bad_role.stderr)
    );

    let user = crrt(
        &data,
        &[
            "admin",
            "create-user",
            "--email",
            "Kadri@CERT.ee",
            "--org",
            "CERT-EE",
            "--role",
            "responder",
            "--skill",
            "forensics",
            "--language",
            "et",
        ],
    );
    assert!(user.status.success(), "{}", text(&user.stderr));
    let stdout = text(&user.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password is printed");
    assert!(password.len() >= 20, "{password}");

    let token = crrt(
        &data,
        &[
            "admin",
            "create-token",
            "--email",
            "kadri@cert.ee",
            "--name",
            "script",
        ],
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert!(text(&token.stdout).trim().starts_with("crrt_"));

    let verified = crrt(&data, &["admin", "verify-audit"]);
    assert!(verified.status.success());
    assert!(
        text(&verified.stdout).contains("intact: 3 events"),
        "{}",
        text(&verified.stdout)
    );
}

#[tokio::test]
async fn an_altered_audit_trail_fails_verification() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    for name in ["CERT-EE", "CERT-PL"] {
        let out = crrt(
            &data,
            &[
                "admin",
                "create-org",
                "--name",
                name,
                "--kind",
                "member",
                "--country",
                "EE",
            ],
        );
        assert!(out.status.success());
    }
    let url = format!("sqlite://{}", data.join("crrt.db").display());
    crrt_store::testing::tamper(
        &url,
        "UPDATE audit_events SET actor = 'someone' WHERE seq = 1",
    )
    .await;
    let verified = crrt(&data, &["admin", "verify-audit"]);
    assert_eq!(verified.status.code(), Some(1));
    assert!(
        text(&verified.stdout).contains("BROKEN at event 1"),
        "{}",
        text(&verified.stdout)
    );
}

#[tokio::test]
async fn serve_first_start_sign_in_and_clean_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut password = None;
    let mut address = None;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(p) = line.trim().strip_prefix("password: ") {
            password = Some(p.to_owned());
        }
        if let Some(rest) = line.strip_prefix("CRRT platform listening on http://") {
            address = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let password = password.expect("the first start prints the admin password");
    let address = address.expect("the listening address is printed");

    let client = http();
    let login = client
        .post(format!("http://{address}/api/v1/session"))
        .json(&serde_json::json!({"email": "admin@crrt.local", "password": password}))
        .send()
        .await
        .expect("HTTP");
    assert_eq!(login.status(), reqwest::StatusCode::OK);
    let session = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    // A fresh platform can hunt at once: the bundled rule packs are there.
    let packs: serde_json::Value = client
        .get(format!("http://{address}/api/v1/rulepacks"))
        .header("cookie", session)
        .send()
        .await
        .expect("HTTP")
        .json()
        .await
        .expect("JSON");
    let bundled: Vec<(&str, i64)> = packs["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or_default(),
                p["n_rules"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(bundled.len(), 2, "{packs}");
    assert!(bundled.contains(&("sigma", 7)), "{packs}");
    assert!(
        bundled.iter().any(|(kind, n)| *kind == "yara" && *n > 0),
        "{packs}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "stopped"), "{rest:?}");

    // A second start keeps the account and prints no new password.
    let again = Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args(["admin", "verify-audit", "--data-dir"])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(again.status.success());
}

/// How the server is stopped while writes stream in.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// SIGKILL: no warning at all.
    Kill,
    /// SIGTERM: a clean stop, requests in flight finishing.
    Terminate,
}

/// Streams organisation writes from four clients into `crrt serve`, stops
/// it with `stop` after 40 acknowledged writes, and checks that the
/// database opens with the audit chain intact and every acknowledged write
/// stored; returns the server's exit status.
async fn stop_under_write_load(stop: Stop) -> std::process::ExitStatus {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let setup: [&[&str]; 2] = [
        &[
            "admin",
            "create-org",
            "--name",
            "NCSC-LT",
            "--kind",
            "member",
            "--country",
            "LT",
        ],
        &[
            "admin",
            "create-user",
            "--email",
            "root@ncsc.lt",
            "--org",
            "NCSC-LT",
            "--role",
            "admin",
            "--password",
            "a long enough password",
        ],
    ];
    for args in setup {
        assert!(crrt(&data, args).status.success());
    }
    let token_out = crrt(&data, &["admin", "create-token", "--email", "root@ncsc.lt"]);
    let token = text(&token_out.stdout).trim().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let address = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("CRRT platform listening on http://")
                .and_then(|r| r.split_whitespace().next().map(str::to_owned))
        })
        .expect("listening");

    let client = http();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, token, address, acknowledged) = (
            client.clone(),
            token.clone(),
            address.clone(),
            acknowledged.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("Team {w}-{i}");
                let sent = client
                    .post(format!("http://{address}/api/v1/organisations"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"name": name, "kind": "member", "country": "EE"}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        acknowledged.lock().expect("lock").push(name);
                    }
                    // The server is gone.
                    _ => break,
                }
            }
        }));
    }
    while acknowledged.lock().expect("lock").len() < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    match stop {
        Stop::Kill => child.kill().expect("SIGKILL"),
        Stop::Terminate => {
            let sent = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill");
            assert!(sent.success());
        }
    }
    let status = child.wait().expect("exits");
    for writer in writers {
        writer.await.expect("writer");
    }

    let verified = crrt(&data, &["admin", "verify-audit"]);
    assert!(verified.status.success(), "{}", text(&verified.stdout));
    let store = crrt_store::Store::open(&format!("sqlite://{}", data.join("crrt.db").display()))
        .await
        .expect("the database opens after the stop");
    let names = acknowledged.lock().expect("lock").clone();
    assert!(names.len() >= 40);
    for name in &names {
        assert!(
            store.org_by_name(name).await.expect("read").is_some(),
            "{name} was acknowledged but is missing"
        );
    }
    status
}

/// SIGKILL in the middle of a stream of writes: on restart the database
/// opens, the audit chain is intact, and every write the server
/// acknowledged is there.
#[tokio::test]
async fn a_server_killed_mid_write_restarts_consistent() {
    let status = stop_under_write_load(Stop::Kill).await;
    assert!(!status.success(), "killed: {status:?}");
}

/// SIGTERM while writes stream in: the server stops cleanly (exit 0), and
/// every write it acknowledged is stored.
#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish() {
    let status = stop_under_write_load(Stop::Terminate).await;
    assert!(status.success(), "a clean stop: {status:?}");
}

#[test]
fn restart_removes_broken_uploads_and_evidence_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let incoming = data.join("evidence/.incoming");
    std::fs::create_dir_all(&incoming).expect("mkdir");
    std::fs::write(incoming.join("half-an-upload"), b"partial").expect("write");
    let verified = crrt(&data, &["admin", "verify-evidence"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(text(&verified.stdout).contains("evidence intact: 0 stored files"));
    assert!(
        incoming.join("half-an-upload").exists(),
        "admin commands leave uploads alone"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let started = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("CRRT platform listening"));
    assert!(started);
    assert!(
        !incoming.join("half-an-upload").exists(),
        "the orphan is removed at start"
    );
    child.kill().expect("kill");
    child.wait().expect("reaped");
}

/// `crrt worker` waits for hunts on the same data and stops on SIGTERM.
#[test]
fn a_worker_starts_waits_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args(["worker", "--name", "w1", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("text");
    assert_eq!(first, "CRRT worker w1 waiting for hunts (Ctrl-C stops)");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(child.wait().expect("exits").success());
    assert_eq!(
        lines.next().map(|l| l.expect("text")),
        Some("stopped".into())
    );
}

/// Field mode: findings of an offline `crrt hunt` brought into a case with
/// `crrt import-findings`, with the evidence hashes, once.
#[tokio::test]
async fn offline_findings_are_imported_into_a_case_once() {
    let demo = Demo::start().await;
    let dir = &demo.dir;
    let (address, token, case) = (demo.address.clone(), demo.token.clone(), demo.case.clone());

    // The hunt on a laptop, with the bundled example.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let jsonl = dir.path().join("findings.jsonl");
    let hunted = Command::new(env!("CARGO_BIN_EXE_crrt"))
        .current_dir(&root)
        .args([
            "hunt",
            "examples/evidence",
            "--sigma",
            "examples/rules",
            "--format",
            "jsonl",
            "--no-rule-cache",
            "-q",
            "-o",
        ])
        .arg(&jsonl)
        .output()
        .expect("hunt");
    assert!(hunted.status.success(), "{}", text(&hunted.stderr));
    let n_lines = std::fs::read_to_string(&jsonl)
        .expect("read")
        .lines()
        .count();
    assert!(n_lines > 0);

    let import = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_crrt"))
            .current_dir(&root)
            .args([
                "import-findings",
                "--server",
                &format!("http://{address}"),
                "--token",
                &token,
                "--case",
                &case,
            ])
            .arg(file)
            .output()
            .expect("import")
    };
    let first = import(&jsonl);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains(&format!("imported {n_lines} new findings")),
        "{}",
        text(&first.stdout)
    );
    let again = import(&jsonl);
    assert!(
        text(&again.stdout).contains("imported 0 new findings"),
        "{}",
        text(&again.stdout)
    );

    let findings = demo.get(&format!("/cases/{case}/findings?limit=500")).await;
    let items = findings["items"].as_array().expect("items");
    assert_eq!(items.len(), n_lines);
    assert!(
        items.iter().all(|f| f["event"]["_evidence_sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 64)),
        "{findings}"
    );

    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"rule_title\": \"x\"}\n").expect("write");
    let refused = import(&broken);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("not a crrt hunt finding"),
        "{}",
        text(&refused.stderr)
    );
}

/// One platform pulls a partner's indicators from another over TAXII 2.1.
// Two workers: the commands run blocking while the TLS front serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indicators_are_pulled_from_a_partners_taxii_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partner_data = dir.path().join("partner");
    let (mut child, address) = serve_on_port_0(&partner_data, &["--demo", "--no-worker"]);
    // The demo partner reads its server's shared collection.
    let token = text(
        &crrt(
            &partner_data,
            &["admin", "create-token", "--email", "sam@northwind.example"],
        )
        .stdout,
    )
    .trim()
    .to_owned();
    // Our platform: the partner organisation and an administrator.
    let ours = dir.path().join("ours");
    ours_with_partner(&ours);
    let url = format!(
        "http://{address}/taxii2/crrt/collections/{}/",
        crrt_platform::taxii::SHARED
    );
    let pull_from = |url: &str, extra: &[&str]| {
        let mut args = vec![
            "intel",
            "pull",
            url,
            "--token",
            token.as_str(),
            "--source",
            "Northwind Threat Research",
            "--as",
            "admin@ours.example",
        ];
        args.extend_from_slice(extra);
        crrt(&ours, &args)
    };
    let pull = |extra: &[&str]| pull_from(&url, extra);
    let first = pull(&[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let said = text(&first.stdout);
    // What the partner may read on its server: its own three GREEN
    // indicators (CERT-EE's AMBER ones are not addressed to it).
    assert!(
        said.contains("3 indicator objects pulled: 3 new indicators"),
        "{said}"
    );
    let again = pull(&[]);
    assert!(
        text(&again.stdout)
            .contains("0 new indicators from Northwind Threat Research, 3 already known"),
        "{}",
        text(&again.stdout)
    );
    let last = said
        .lines()
        .find_map(|l| l.strip_prefix("next time: --added-after "))
        .expect("a watermark")
        .to_owned();
    let later = pull(&["--added-after", &last]);
    assert!(
        text(&later.stdout).contains("0 indicator objects pulled"),
        "{}",
        text(&later.stdout)
    );

    // In our platform they keep their level and the partner as source.
    let platform =
        crrt_platform::Platform::open(&format!("sqlite://{}", ours.join("crrt.db").display()))
            .await
            .expect("opens");
    let admin = platform
        .store()
        .user_by_email("admin@ours.example")
        .await
        .expect("read")
        .and_then(crrt_platform::Actor::new)
        .expect("admin");
    let seen = platform
        .indicators(
            &admin,
            &crrt_platform::IndicatorFilter::default(),
            crrt_platform::Page {
                limit: 50,
                offset: 0,
            },
        )
        .await
        .expect("indicators");
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|i| i.source == "Northwind Threat Research" && i.indicator.tlp == "green")
    );

    // The partner's server behind HTTPS with its own certificate authority:
    // refused without --ca-cert (saying so), pulled with it.
    let (front, ca_pem) = tls_front(address.clone()).await;
    let ca = dir.path().join("northwind-ca.pem");
    std::fs::write(&ca, ca_pem).expect("write");
    let https_url = format!(
        "https://{front}/taxii2/crrt/collections/{}/",
        crrt_platform::taxii::SHARED
    );
    let pull_https = |extra: &[&str]| pull_from(&https_url, extra);
    let untrusted = pull_https(&[]);
    assert!(!untrusted.status.success());
    assert!(
        text(&untrusted.stderr).contains("--ca-cert"),
        "{}",
        text(&untrusted.stderr)
    );
    let trusted = pull_https(&["--ca-cert", ca.to_str().expect("utf-8")]);
    assert!(trusted.status.success(), "{}", text(&trusted.stderr));
    assert!(
        text(&trusted.stdout)
            .contains("0 new indicators from Northwind Threat Research, 3 already known"),
        "{}",
        text(&trusted.stdout)
    );

    // Another scheme is refused with the reason, before anything is sent.
    let refused = crrt(
        &ours,
        &[
            "intel",
            "pull",
            "ftp://taxii.example/taxii2/x/collections/y/",
            "--token",
            "t",
            "--source",
            "Northwind Threat Research",
            "--as",
            "admin@ours.example",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("http:// or https:// URL is needed"),
        "{}",
        text(&refused.stderr)
    );

    // A subscription over HTTPS: `crrt serve` pulls it by itself, trusting
    // the CA given when subscribing.
    let subscribed = dir.path().join("subscribed");
    ours_with_partner(&subscribed);
    let out = crrt(
        &subscribed,
        &[
            "intel",
            "subscribe",
            https_url.as_str(),
            "--token",
            token.as_str(),
            "--source",
            "Northwind Threat Research",
            "--as",
            "admin@ours.example",
            "--every",
            "10s",
            "--ca-cert",
            ca.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // One made by an older version, its credential still in clear: sealed
    // when the server starts.
    {
        let platform = crrt_platform::Platform::open(&format!(
            "sqlite://{}",
            subscribed.join("crrt.db").display()
        ))
        .await
        .expect("opens");
        let mut old = platform.store().subscriptions().await.expect("read")[0].clone();
        old.id = "0ld5ub5cr1pt10n".into();
        old.url = "http://127.0.0.1:9/taxii2/x/collections/y/".into();
        old.auth = "basic old-account:old-plain-password".into();
        old.ca_pem = None;
        old.every_seconds = 3600;
        let mut tx = platform.store().begin().await.expect("tx");
        tx.insert_subscription(&old).await.expect("insert");
        tx.commit().await.expect("commit");
    }
    let too_often = crrt(
        &subscribed,
        &[
            "intel",
            "subscribe",
            url.as_str(),
            "--token",
            "t",
            "--source",
            "Northwind Threat Research",
            "--as",
            "admin@ours.example",
            "--every",
            "5s",
        ],
    );
    assert_eq!(
        too_often.status.code(),
        Some(2),
        "{}",
        text(&too_often.stdout)
    );
    let admin_token = text(
        &crrt(
            &subscribed,
            &["admin", "create-token", "--email", "admin@ours.example"],
        )
        .stdout,
    )
    .trim()
    .to_owned();
    let (mut ours_server, ours_address) = serve_on_port_0(&subscribed, &["--no-worker"]);
    let mut count = serde_json::Value::Null;
    for _ in 0..100 {
        count = http()
            .get(format!("http://{ours_address}/api/v1/indicators/count"))
            .bearer_auth(&admin_token)
            .send()
            .await
            .expect("HTTP")
            .json()
            .await
            .expect("JSON");
        if count["count"] == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count["count"], 3, "the subscription was pulled");
    let _ = ours_server.kill();
    let _ = ours_server.wait();

    // No credential is readable from the database (or a copy of it): only
    // with the key beside it, readable by the server's account alone.
    for file in ["crrt.db", "crrt.db-wal"] {
        let bytes = std::fs::read(subscribed.join(file)).unwrap_or_default();
        let bytes = String::from_utf8_lossy(&bytes);
        assert!(!bytes.contains(token.as_str()), "{file} holds the token");
        assert!(
            !bytes.contains("old-plain-password"),
            "{file} holds the password"
        );
    }
    let key = subscribed.join("secret.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let platform = crrt_platform::Platform::open(&format!(
        "sqlite://{}",
        subscribed.join("crrt.db").display()
    ))
    .await
    .expect("opens")
    .with_secrets(crrt_platform::secrets::SecretBox::open_or_create(&key).expect("key"));
    let stored = platform.store().subscriptions().await.expect("read");
    assert_eq!(stored.len(), 2);
    let mut opened: Vec<String> = stored
        .iter()
        .map(|s| platform.subscription_auth(s).expect("opens"))
        .collect();
    opened.sort();
    assert_eq!(
        opened,
        [
            "basic old-account:old-plain-password".to_owned(),
            format!("bearer {token}")
        ]
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `crrt serve --demo` (no worker) on a free port, with the coordinator's
/// API token and the demo mission's first case; stopped when dropped.
struct Demo {
    dir: tempfile::TempDir,
    child: std::process::Child,
    address: String,
    token: String,
    case: String,
    client: reqwest::Client,
}

impl Demo {
    async fn start() -> Demo {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let (child, address) = serve_on_port_0(&data, &["--demo", "--no-worker"]);
        let token_out = crrt(&data, &["admin", "create-token", "--email", "rasa@ncsc.lt"]);
        let token = text(&token_out.stdout).trim().to_owned();
        let mut demo = Demo {
            dir,
            child,
            address,
            token,
            case: String::new(),
            client: http(),
        };
        let mission = demo.get("/missions").await["items"][0]["id"]
            .as_str()
            .expect("mission")
            .to_owned();
        demo.case = demo.get(&format!("/missions/{mission}/cases")).await["items"][0]["id"]
            .as_str()
            .expect("case")
            .to_owned();
        demo
    }

    /// GET under /api/v1 as the coordinator, as JSON.
    async fn get(&self, path: &str) -> serde_json::Value {
        self.client
            .get(format!("http://{}/api/v1{path}", self.address))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("HTTP")
            .json()
            .await
            .expect("JSON")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client; reqwest is built with rustls and needs its crypto provider.
fn http() -> reqwest::Client {
    crrt_watch::install_crypto_provider();
    reqwest::Client::new()
}

/// A TCP relay to `target` whose first `cuts` connections break after
/// `after` bytes from the client: a failing link between a victim's site
/// and the platform.
async fn flaky_link(target: String, cuts: usize, after: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                continue;
            };
            let limit = (n < cuts).then_some(after);
            n += 1;
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = async {
                    let mut buffer = vec![0u8; 16 << 10];
                    let mut sent = 0;
                    while let Ok(read) = client_read.read(&mut buffer).await {
                        if read == 0 {
                            break;
                        }
                        let take = limit.map_or(read, |l| read.min(l - sent));
                        if server_write.write_all(&buffer[..take]).await.is_err() {
                            break;
                        }
                        sent += take;
                        if limit == Some(sent) {
                            break;
                        }
                    }
                };
                let down = tokio::io::copy(&mut server_read, &mut client_write);
                // Whichever side ends first ends the connection.
                tokio::select! {
                    () = up => {}
                    _ = down => {}
                }
            });
        }
    });
    address
}

/// `crrt upload` over a link that breaks mid-chunk: the chunks are sent
/// again from where the server stands, the file arrives whole; the same
/// file again is named as already there; and an upload an earlier run left
/// half done is resumed, not restarted.
#[tokio::test]
async fn evidence_uploads_resume_over_a_breaking_link() {
    use sha2::Digest;
    let demo = Demo::start().await;
    let dir = &demo.dir;
    let (address, token, case) = (demo.address.clone(), demo.token.clone(), demo.case.clone());
    let client = &demo.client;
    let api = |path: &str| format!("http://{address}/api/v1{path}");

    let file = dir.path().join("FS01-memory.raw");
    let content: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&file, &content).expect("write");
    let sha = hex::encode(sha2::Sha256::digest(&content));
    // The first two connections break 2.5 MB in (mid-chunk).
    let relay = flaky_link(address.clone(), 2, 2_500_000).await;
    let upload = |server: &str, path: &Path| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_crrt"))
            .args([
                "upload",
                "--server",
                &format!("http://{server}"),
                "--token",
                &token,
                "--case",
                &case,
                "--chunk-size",
                "1048576",
            ])
            .arg(path)
            .output()
    };
    let out = upload(&relay, &file).await.expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("stored as evidence") && text(&out.stdout).contains(&sha),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("trying again"),
        "the link broke: {}",
        text(&out.stderr)
    );
    let evidence = demo.get(&format!("/cases/{case}/evidence?limit=100")).await;
    let stored = evidence["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["sha256"] == sha)
        .expect("the file is evidence")
        .clone();
    assert_eq!(stored["name"], "FS01-memory.raw");
    let downloaded = client
        .get(api(&format!(
            "/evidence/{}/content",
            stored["id"].as_str().expect("id")
        )))
        .bearer_auth(&token)
        .send()
        .await
        .expect("HTTP")
        .bytes()
        .await
        .expect("body");
    assert!(downloaded.as_ref() == content.as_slice(), "byte for byte");

    let again = upload(&address, &file).await.expect("runs");
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("already in the case"),
        "{}",
        text(&again.stdout)
    );

    // An earlier run stopped after 1 MiB of another file: resumed there.
    let second = dir.path().join("DC01-Security.evtx");
    let other: Vec<u8> = content.iter().rev().copied().collect();
    std::fs::write(&second, &other).expect("write");
    let other_sha = hex::encode(sha2::Sha256::digest(&other));
    let started: serde_json::Value = client
        .post(api(&format!("/cases/{case}/uploads")))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "DC01-Security.evtx", "size": other.len(), "sha256": other_sha}))
        .send()
        .await
        .expect("HTTP")
        .json()
        .await
        .expect("JSON");
    let sent = client
        .patch(api(&format!(
            "/uploads/{}?offset=0",
            started["id"].as_str().expect("id")
        )))
        .bearer_auth(&token)
        .body(other[..1 << 20].to_vec())
        .send()
        .await
        .expect("HTTP");
    assert!(sent.status().is_success());
    let resumed = upload(&address, &second).await.expect("runs");
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stderr).contains("resuming an earlier upload at 1048576"),
        "{}",
        text(&resumed.stderr)
    );
    assert!(
        text(&resumed.stdout).contains(&other_sha),
        "{}",
        text(&resumed.stdout)
    );
}

/// A TLS front for `target` (as a reverse proxy would be), with a
/// certificate for 127.0.0.1 from a fresh authority; the address and the
/// authority's PEM.
async fn tls_front(target: String) -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    crrt_watch::install_crypto_provider();
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "NCSC-LT Team CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names = vec![rcgen::SanType::IpAddress(std::net::IpAddr::V4(
        std::net::Ipv4Addr::LOCALHOST,
    ))];
    let key = KeyPair::generate().expect("key");
    let leaf = params.signed_by(&key, &ca).expect("leaf");
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    (address, ca.pem())
}

/// The field commands reach a platform behind TLS with the team's own
/// certificate authority: refused without `--ca-cert` (saying so), working
/// with it.
#[tokio::test]
async fn field_commands_trust_the_teams_own_certificate_authority() {
    let demo = Demo::start().await;
    let dir = &demo.dir;
    let (token, case) = (demo.token.clone(), demo.case.clone());
    let (front, ca_pem) = tls_front(demo.address.clone()).await;
    let ca = dir.path().join("team-ca.pem");
    std::fs::write(&ca, ca_pem).expect("write");
    let file = dir.path().join("notes-from-site.txt");
    std::fs::write(&file, "net user /add svc_backup, 23 Feb 2022 16:02\n").expect("write");
    let run = |command: &str, extra: &[&str], path: &Path| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_crrt"))
            .args([
                command,
                "--server",
                &format!("https://{front}"),
                "--token",
                &token,
                "--case",
                &case,
            ])
            .args(extra)
            .arg(path)
            .env_remove("CRRT_CA_CERT")
            .output()
    };
    let untrusted = run("upload", &[], &file).await.expect("runs");
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(
        text(&untrusted.stderr).contains("--ca-cert"),
        "{}",
        text(&untrusted.stderr)
    );
    let ca_arg = ca.to_str().expect("path");
    let trusted = run("upload", &["--ca-cert", ca_arg], &file)
        .await
        .expect("runs");
    assert!(trusted.status.success(), "{}", text(&trusted.stderr));
    assert!(text(&trusted.stdout).contains("stored as evidence"));

    let findings = dir.path().join("findings.jsonl");
    std::fs::write(
        &findings,
        concat!(
            r#"{"timestamp":"2022-02-23T16:02:00Z","host":"FS01","channel":"Security","event_id":4720,"record_id":1,"rule_id":"r1","rule_title":"Local account created","level":"medium","tags":["attack.t1136.001"],"evidence_file":"Security.evtx","event":{"TargetUserName":"svc_backup"}}"#,
            "\n"
        ),
    )
    .expect("write");
    let imported = run("import-findings", &["--ca-cert", ca_arg], &findings)
        .await
        .expect("runs");
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let refused = run("import-findings", &[], &findings).await.expect("runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("--ca-cert"),
        "{}",
        text(&refused.stderr)
    );
    let bad_ca = run(
        "upload",
        &["--ca-cert", file.to_str().expect("path")],
        &file,
    )
    .await
    .expect("runs");
    assert_eq!(bad_ca.status.code(), Some(2));
    assert!(
        text(&bad_ca.stderr).contains("no certificate"),
        "{}",
        text(&bad_ca.stderr)
    );
}
