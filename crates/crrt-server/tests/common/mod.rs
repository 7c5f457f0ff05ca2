//! The server under test: a real server on loopback over a fresh SQLite
//! or PostgreSQL database, one user per role with an API token, and an
//! embedded hunt worker. Shared by the API and web UI tests.

// Each test binary uses a different part of this.
#![allow(dead_code)]

use std::collections::BTreeMap;

use crrt_platform::{
    Actor, NewOrg, NewRequest, NewUser, OrgKind, Platform, Role, Skill, Tlp, Urgency,
};
use crrt_store::testing::fresh_database;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery";

/// A running server with one user per role and their API tokens.
pub struct Fixture {
    pub base: String,
    pub platform: Platform,
    pub tokens: BTreeMap<&'static str, String>,
    pub client: Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    pub dir: tempfile::TempDir,
}

pub const ROLES: [&str; 7] = [
    "admin",
    "coordinator",
    "responder",
    "requester",
    "other_requester",
    "partner",
    "anonymous",
];

impl Fixture {
    pub async fn start(backend: &str) -> Fixture {
        Fixture::start_with(backend, None).await
    }

    /// A server keeping evidence in `evidence` [default: a folder, with a
    /// small per-file limit so the oversize case is cheap].
    pub async fn start_with(
        backend: &str,
        evidence: Option<crrt_platform::EvidenceStore>,
    ) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = fresh_database(backend, dir.path()).await;
        let evidence = match evidence {
            Some(store) => store,
            None => crrt_platform::EvidenceStore::open(dir.path().join("evidence"), 64 << 10)
                .expect("evidence folder")
                .with_case_limit(120_000),
        };
        let platform = Platform::open(&url)
            .await
            .expect("platform")
            .with_evidence(evidence)
            .with_secrets(
                crrt_platform::secrets::SecretBox::open_or_create(&dir.path().join("secret.key"))
                    .expect("credential key"),
            )
            // The watch tests' sites are on loopback.
            .allow_private_watch_targets(true);
        for (name, kind, country) in [
            ("NCSC-LT", OrgKind::Member, "LT"),
            ("Ministry", OrgKind::Requester, "UA"),
            ("Other Ministry", OrgKind::Requester, "MD"),
            ("Vendor", OrgKind::Partner, "US"),
        ] {
            platform
                .create_org(
                    None,
                    NewOrg {
                        name: name.into(),
                        kind,
                        country: country.into(),
                    },
                )
                .await
                .expect("org");
        }
        let mut tokens = BTreeMap::new();
        for (key, org, role) in [
            ("admin", "NCSC-LT", Role::Admin),
            ("coordinator", "NCSC-LT", Role::Coordinator),
            ("responder", "NCSC-LT", Role::Responder),
            ("requester", "Ministry", Role::Requester),
            ("other_requester", "Other Ministry", Role::Requester),
            ("partner", "Vendor", Role::Partner),
        ] {
            let email = format!("{key}@example.org");
            platform
                .create_user(
                    None,
                    NewUser {
                        email: email.clone(),
                        display_name: None,
                        org: org.into(),
                        role,
                        password: Some(PASSWORD.into()),
                        skills: vec![Skill::Forensics],
                        languages: vec!["en".into()],
                        availability: Vec::new(),
                    },
                )
                .await
                .expect("user");
            let token = platform
                .create_token(None, &email, "tests")
                .await
                .expect("token");
            tokens.insert(key, token.secret);
        }
        // A worker, as `crrt serve` embeds one.
        let worker = platform.clone();
        tokio::spawn(async move {
            let options = crrt_platform::WorkerOptions {
                name: "test-worker".into(),
                lease_seconds: 30,
            };
            worker.run_worker(&options, std::future::pending()).await
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_platform = platform.clone();
        tokio::spawn(async move {
            crrt_server::run(
                listener,
                server_platform,
                crrt_server::Config::default(),
                async {
                    let _ = rx.await;
                },
            )
            .await
            .expect("server runs");
        });
        Fixture {
            base,
            platform,
            tokens,
            client: client_builder().build().expect("client"),
            _shutdown: tx,
            dir,
        }
    }

    pub async fn actor(&self, key: &str) -> Actor {
        let user = self
            .platform
            .store()
            .user_by_email(&format!("{key}@example.org"))
            .await
            .expect("read")
            .expect("exists");
        Actor::new(user).expect("role")
    }

    /// A fresh request, reviewed by the coordinator (so the council sits).
    pub async fn reviewed(&self) -> crrt_platform::AssistanceRequest {
        let request = self.request().await;
        self.platform
            .review_request(&self.actor("coordinator").await, &request.id, 1, None)
            .await
            .expect("reviewed")
    }

    /// A fresh mission: a request reviewed, agreed by one member state, accepted.
    pub async fn mission(&self) -> crrt_platform::Mission {
        let coordinator = self.actor("coordinator").await;
        let request = self.reviewed().await;
        self.platform
            .record_position(
                &coordinator,
                &request.id,
                "NCSC-LT",
                crrt_platform::Position::Agree,
            )
            .await
            .expect("position");
        self.platform
            .decide_request(
                &coordinator,
                &request.id,
                2,
                crrt_platform::Decision::Accept,
            )
            .await
            .expect("accepted");
        let id = self
            .platform
            .activation(&coordinator, &request.id)
            .await
            .expect("activation")
            .mission_id
            .expect("a mission");
        self.platform
            .mission(&coordinator, &id)
            .await
            .expect("mission")
            .mission
    }

    /// A fresh case from the wiper playbook on a fresh mission.
    pub async fn case(&self) -> crrt_platform::CaseView {
        let mission = self.mission().await;
        self.platform
            .create_case(
                &self.actor("coordinator").await,
                &mission.id,
                crrt_platform::NewCase {
                    title: "File servers".into(),
                    playbook: Some("wiper".into()),
                },
            )
            .await
            .expect("case")
    }

    /// A fresh request filed by the Ministry's requester.
    pub async fn request(&self) -> crrt_platform::AssistanceRequest {
        self.platform
            .file_request(&self.actor("requester").await, new_request())
            .await
            .expect("filed")
    }

    /// Polls a hunt as `role` until it leaves queued/running (30 s at most).
    pub async fn finished_hunt(&self, role: &str, id: &str) -> Value {
        for _ in 0..300 {
            let (_, hunt) = self
                .call(role, Method::GET, &format!("/api/v1/hunts/{id}"), None)
                .await;
            if hunt["status"] != "queued" && hunt["status"] != "running" {
                return hunt;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("hunt {id} never ended");
    }

    /// `GET /api/v1/evidence/{id}/content` as `role`: the response, to
    /// read its status, headers and bytes.
    pub async fn download(&self, role: &str, evidence: &Value) -> reqwest::Response {
        self.client
            .get(format!(
                "{}/api/v1/evidence/{}/content",
                self.base,
                evidence["id"].as_str().expect("evidence id")
            ))
            .bearer_auth(&self.tokens[role])
            .send()
            .await
            .expect("HTTP")
    }

    pub async fn call(
        &self,
        role: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = self.tokens.get(role) {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("HTTP works");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

pub fn new_request() -> NewRequest {
    NewRequest {
        summary: "Wiper on file servers".into(),
        symptoms: "MBR overwritten on two servers".into(),
        affected_systems: vec!["FS01".into()],
        urgency: Urgency::Critical,
        tlp: Tlp::Amber,
        capabilities: vec![Skill::Forensics],
        mitigations: String::new(),
    }
}

/// An HTTP client; reqwest is built with rustls and needs its crypto provider.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A real SMTP server (aiosmtpd, PyPI) on a free loopback port, delivering
/// into the maildir `mailbox`; stopped when dropped. `None` when this machine
/// lacks it (CI installs it, and there its absence fails the test).
pub fn smtpd(mailbox: &std::path::Path) -> Option<(Smtpd, u16)> {
    use std::process::Command;
    let (child, port) = loopback_service(
        Command::new("python3").args(["-c", "import aiosmtpd"]),
        "e-mail checks (pip install aiosmtpd)",
        |port| {
            let mut command = Command::new("python3");
            command
                .args([
                    "-m",
                    "aiosmtpd",
                    "-n",
                    "-l",
                    &format!("127.0.0.1:{port}"),
                    "-c",
                    "aiosmtpd.handlers.Mailbox",
                ])
                .arg(mailbox);
            command
        },
    )?;
    Some((Smtpd(child), port))
}

/// A third-party server started on a free loopback port and waited for;
/// `None` (with a note) when `available` fails on this machine, a failure
/// when `CI=true` (CI installs what the tests need).
pub fn loopback_service(
    available: &mut std::process::Command,
    what: &str,
    command: impl FnOnce(u16) -> std::process::Command,
) -> Option<(std::process::Child, u16)> {
    use std::process::Stdio;
    let present = available
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the server for {what} is missing"
        );
        eprintln!("note: {what} skipped");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let mut child = command(port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("the server for {what} does not start: {e}"));
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, port));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server for {what} did not listen");
}

pub struct Smtpd(std::process::Child);

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
