//! Alert e-mail to a real SMTP server on loopback: aiosmtpd (PyPI), the
//! server Python's own tests use, writing what it receives to a mailbox.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crrt_watch::notify::parse_recipients;
use crrt_watch::{AlertEvent, AlertKind, Change, Mailer, SmtpSettings};

struct Smtpd(Child);

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// aiosmtpd on a free port, delivering into `mailbox`; `None` when this
/// machine lacks it (CI installs it, and there its absence is a failure).
fn smtpd(mailbox: &std::path::Path) -> Option<(Smtpd, u16)> {
    let available = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but aiosmtpd is missing"
        );
        eprintln!("note: e-mail test skipped (pip install aiosmtpd to run it)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(mailbox)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aiosmtpd starts");
    let server = Smtpd(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("aiosmtpd did not listen");
}

fn event(change: Change) -> AlertEvent {
    let now = jiff::Timestamp::now();
    AlertEvent {
        time: now,
        event: change,
        target: "mfa".into(),
        url: "https://mfa.gov.ua/".into(),
        kind: AlertKind::Defacement,
        summary: "defacement phrases: \"бійтеся і чекайте гіршого\"".into(),
        reasons: vec!["defacement phrases: \"бійтеся і чекайте гіршого\"".into()],
        opened: now,
        flapping: false,
        evidence: None,
    }
}

/// The messages in the mailbox's `new` folder.
fn delivered(mailbox: &std::path::Path) -> Vec<String> {
    let mut messages: Vec<String> = std::fs::read_dir(mailbox.join("new"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    messages.sort_by_key(|message| message.contains("CLOSED"));
    messages
}

#[tokio::test]
async fn an_opened_and_a_closed_alert_arrive_as_two_messages() {
    let dir = tempfile::tempdir().expect("dir");
    let mailbox = dir.path().join("mailbox");
    let Some((_server, port)) = smtpd(&mailbox) else {
        return;
    };
    let mailer = Mailer::start(&SmtpSettings {
        url: format!("smtp://127.0.0.1:{port}"),
        from: "CRRT watch <watch@cert.example>".into(),
    })
    .expect("mailer");
    let to = parse_recipients(&["duty@cert.example".into(), "Anna <anna@cert.ee>".into()])
        .expect("addresses");
    mailer.send(&event(Change::Open), &to);
    mailer.send(&event(Change::Close), &to);
    let mut messages = Vec::new();
    for _ in 0..100 {
        messages = delivered(&mailbox);
        if messages.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(messages.len(), 2, "{messages:?}");
    let opened = &messages[0];
    assert!(
        opened.contains("From: \"CRRT watch\" <watch@cert.example>")
            || opened.contains("From: CRRT watch <watch@cert.example>"),
        "{opened}"
    );
    assert!(
        opened.contains("duty@cert.example") && opened.contains("anna@cert.ee"),
        "{opened}"
    );
    assert!(
        opened.contains("Subject:") && opened.contains("OPEN mfa defacement"),
        "{opened}"
    );
    assert!(
        messages[1].contains("CLOSED mfa defacement"),
        "{}",
        messages[1]
    );
}

#[test]
fn bad_addresses_are_named() {
    let error = parse_recipients(&["duty@cert.example".into(), "not an address".into()])
        .expect_err("refused");
    assert!(error.to_string().contains("\"not an address\""), "{error}");
}
