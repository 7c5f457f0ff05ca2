//! `crrt watch` as a user runs it: a configuration file, sites on loopback,
//! alerts on stdout, evidence on disk.

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn crrt(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("crrt runs")
}

/// A site on loopback that answers every path with a small page.
async fn site() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .fallback(|| async { axum::response::Html("<h1>Ministry of Foreign Affairs</h1>") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    address
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[test]
fn a_configuration_mistake_is_named_and_nothing_is_watched() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("w.toml"),
        "[[target]]\nname = \"mfa\"\nurl = \"https://mfa.gov.ua/\"\ninterval = \"1s\"\n",
    )
    .expect("write");
    let output = crrt(&["watch", "w.toml"], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("w.toml: target 1 (mfa): interval \"1s\" is under the minimum of 10s"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn once_reports_each_site_and_fails_when_one_is_down() {
    let up = site().await;
    let down = closed_port();
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("w.toml"),
        format!(
            "[[target]]\nname = \"mfa\"\nurl = \"http://{up}/\"\nmust_contain = [\"Ministry\"]\n\n\
             [[target]]\nname = \"portal\"\nurl = \"http://127.0.0.1:{down}/\"\n"
        ),
    )
    .expect("write");
    let path = dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || crrt(&["watch", "w.toml", "--once"], &path))
        .await
        .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let mfa = stdout
        .lines()
        .find(|line| line.starts_with("mfa "))
        .expect("mfa line");
    assert!(
        mfa.contains(" up ") && mfa.contains("status 200, 4 words"),
        "{mfa}"
    );
    let portal = stdout
        .lines()
        .find(|line| line.starts_with("portal "))
        .expect("portal line");
    assert!(
        portal.contains(" down ") && portal.contains("Connection refused"),
        "{portal}"
    );
}

#[test]
fn an_outage_is_printed_as_json_with_its_evidence_kept_and_hashed() {
    let down = closed_port();
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("w.toml"),
        format!("[[target]]\nname = \"portal\"\nurl = \"http://127.0.0.1:{down}/\"\n"),
    )
    .expect("write");
    // The first check fails at once, the confirming one 5 s later opens the alert.
    let output = crrt(
        &[
            "watch",
            "w.toml",
            "--format",
            "jsonl",
            "--evidence",
            "kept",
            "--for",
            "8s",
        ],
        dir.path(),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let alert = &lines[0];
    assert_eq!(
        (
            alert["event"].as_str(),
            alert["kind"].as_str(),
            alert["target"].as_str()
        ),
        (Some("open"), Some("down"), Some("portal"))
    );
    assert!(
        alert["evidence"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("unreachable")),
        "{alert}"
    );
    let folder = dir
        .path()
        .join(alert["evidence_dir"].as_str().expect("evidence_dir"));
    let sums = std::fs::read_to_string(folder.join("SHA256SUMS")).expect("sums");
    for line in sums.lines() {
        let (sum, file) = line.split_once("  ").expect("sum line");
        let bytes = std::fs::read(folder.join(file)).expect("file");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sum, "{file}");
    }
    assert!(sums.contains("check.json"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("portal") && stderr.contains("down since"),
        "the summary names what is still open: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_keeps_the_baseline_so_a_restart_still_sees_the_defacement() {
    let page = std::sync::Arc::new(std::sync::Mutex::new(
        "<h1>Ministry of Foreign Affairs</h1><p>Consular services and embassies abroad.</p>",
    ));
    let served = page.clone();
    let app = axum::Router::new().fallback(move || {
        let served = served.clone();
        async move { axum::response::Html(*served.lock().expect("page")) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("w.toml"),
        format!("[[target]]\nname = \"mfa\"\nurl = \"http://{address}/\"\n"),
    )
    .expect("write");
    let run = |seconds: &'static str| {
        let path = dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            crrt(
                &[
                    "watch",
                    "w.toml",
                    "--state",
                    "state.json",
                    "--format",
                    "jsonl",
                    "--for",
                    seconds,
                ],
                &path,
            )
        })
    };

    let first = run("2s").await.expect("join");
    assert!(
        first.status.success() && first.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let state = std::fs::read_to_string(dir.path().join("state.json")).expect("state written");
    assert!(state.contains("Ministry of Foreign Affairs"), "{state}");

    // Defaced while the watch was down: the restart compares with the kept baseline.
    *page.lock().expect("page") = "<h1>Hacked by someone</h1>";
    let second = run("8s").await.expect("join");
    let stdout = String::from_utf8_lossy(&second.stdout);
    let alerts: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    assert_eq!(
        (alerts[0]["event"].as_str(), alerts[0]["kind"].as_str()),
        (Some("open"), Some("defacement"))
    );
    assert!(
        alerts[0]["summary"]
            .as_str()
            .is_some_and(|summary| summary.contains("hacked by")),
        "{}",
        alerts[0]
    );

    std::fs::write(dir.path().join("state.json"), "not json").expect("write");
    let broken = run("1s").await.expect("join");
    assert_eq!(broken.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("not a crrt watch state file"));
}
