//! Three `crrt worker` processes on PostgreSQL; the one that took the hunt
//! is killed with SIGKILL in the middle of it. Another takes it over when
//! the lease runs out, and the case ends with exactly the findings of an
//! uninterrupted run. Needs PostgreSQL (`CRRT_TEST_POSTGRES_URL`) and the
//! shared corpus; skipped with a note without them, failed under `CI=true`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crrt_platform::{
    Actor, Decision, EvidenceStore, NewCase, NewHunt, NewOrg, NewRequest, NewUser, OrgKind, Page,
    Platform, Position, Role, Skill, Tlp, Urgency,
};

fn corpus() -> Option<PathBuf> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if data.join("evtx-attack-samples").is_dir() {
        return Some(data);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no ../shared/data"
    );
    eprintln!("note: ../shared/data absent; the worker test is skipped");
    None
}

fn zip_rules(dir: &std::path::Path) -> Vec<u8> {
    use std::io::Write;
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("rules dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut bytes = Vec::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut bytes));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for file in files {
        let name = file
            .strip_prefix(dir)
            .expect("inside")
            .display()
            .to_string();
        zip.start_file(name, options).expect("entry");
        zip.write_all(&std::fs::read(&file).expect("rule"))
            .expect("write");
    }
    zip.finish().expect("finish");
    bytes
}

async fn actor(platform: &Platform, email: &str) -> Actor {
    let user = platform
        .store()
        .user_by_email(email)
        .await
        .expect("read")
        .expect("user");
    Actor::new(user).expect("role")
}

fn worker(url: &str, evidence: &std::path::Path, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args([
            "worker",
            "--database",
            url,
            "--name",
            name,
            "--lease-seconds",
            "3",
            "--evidence-dir",
        ])
        .arg(evidence)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a worker starts")
}

#[tokio::test]
async fn a_hunt_survives_its_worker_being_killed() {
    let Some(data) = corpus() else { return };
    if !crrt_store::testing::backends().contains(&"postgres") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let url = crrt_store::testing::fresh_database("postgres", dir.path()).await;
    let evidence_dir = dir.path().join("evidence");
    let platform = Platform::open(&url)
        .await
        .expect("platform")
        .with_evidence(EvidenceStore::open(&evidence_dir, 1 << 30).expect("evidence"));

    // A mission with a case, as the API would make it.
    for (name, kind, country) in [
        ("NCSC-LT", OrgKind::Member, "LT"),
        ("Ministry", OrgKind::Requester, "UA"),
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
    for (email, org, role) in [
        ("c@ncsc.lt", "NCSC-LT", Role::Coordinator),
        ("r@min.ua", "Ministry", Role::Requester),
    ] {
        platform
            .create_user(
                None,
                NewUser {
                    email: email.into(),
                    display_name: None,
                    org: org.into(),
                    role,
                    password: Some("a long enough password".into()),
                    skills: Vec::new(),
                    languages: Vec::new(),
                    availability: Vec::new(),
                },
            )
            .await
            .expect("user");
    }
    let (coordinator, requester) = (
        actor(&platform, "c@ncsc.lt").await,
        actor(&platform, "r@min.ua").await,
    );
    let request = platform
        .file_request(
            &requester,
            NewRequest {
                summary: "Wiper".into(),
                symptoms: "MBR gone".into(),
                affected_systems: Vec::new(),
                urgency: Urgency::Critical,
                tlp: Tlp::Amber,
                capabilities: vec![Skill::Forensics],
                mitigations: String::new(),
            },
        )
        .await
        .expect("request");
    platform
        .review_request(&coordinator, &request.id, 1, None)
        .await
        .expect("review");
    platform
        .record_position(&coordinator, &request.id, "NCSC-LT", Position::Agree)
        .await
        .expect("position");
    platform
        .decide_request(&coordinator, &request.id, 2, Decision::Accept)
        .await
        .expect("accept");
    let mission = platform
        .activation(&coordinator, &request.id)
        .await
        .expect("activation")
        .mission_id
        .expect("mission");
    let case = platform
        .create_case(
            &coordinator,
            &mission,
            NewCase {
                title: "Hosts".into(),
                playbook: None,
            },
        )
        .await
        .expect("case")
        .case;

    // Evidence: the corpus's Credential Access and Lateral Movement recordings.
    let mut files = Vec::new();
    for folder in ["Credential Access", "Lateral Movement"] {
        for entry in std::fs::read_dir(data.join("evtx-attack-samples").join(folder))
            .expect("folder")
            .flatten()
        {
            if entry.path().extension().is_some_and(|e| e == "evtx") {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    for file in &files {
        let bytes = std::fs::read(file).expect("read");
        let mut incoming = platform
            .begin_upload(&coordinator, &case.id)
            .await
            .expect("upload");
        incoming.write(&bytes).expect("write");
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        // Some recordings are byte-identical copies; the case keeps one.
        let _ = platform
            .finish_upload(&coordinator, incoming, &name, "test")
            .await;
    }
    let rules_dir = data.join("sigma/rules/windows/builtin/security");
    let pack = platform
        .upload_rulepack(&coordinator, "security", &zip_rules(&rules_dir))
        .await
        .expect("rule pack");

    let mut workers: Vec<(String, Child)> = (1..=3)
        .map(|n| {
            let name = format!("w{n}");
            (name.clone(), worker(&url, &evidence_dir, &name))
        })
        .collect();
    let hunt = platform
        .start_hunt(
            &coordinator,
            &case.id,
            NewHunt {
                rulepacks: vec![pack.id.clone()],
                evidence: None,
                indicators: false,
            },
        )
        .await
        .expect("hunt");

    // Kill whoever takes it, while it works.
    let started = Instant::now();
    let victim = loop {
        let current = platform
            .store()
            .hunt(&hunt.id)
            .await
            .expect("read")
            .expect("hunt");
        if let Some(owner) = current.lease_owner {
            break owner;
        }
        assert!(
            current.status == "queued",
            "ended before it could be interrupted: {current:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no worker took the hunt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let index = workers
        .iter()
        .position(|(n, _)| *n == victim)
        .expect("a known worker");
    let (_, mut killed) = workers.remove(index);
    killed.kill().expect("SIGKILL");
    killed.wait().expect("reaped");

    let done = loop {
        let current = platform
            .store()
            .hunt(&hunt.id)
            .await
            .expect("read")
            .expect("hunt");
        if !matches!(current.status.as_str(), "queued" | "running") {
            break current;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the hunt never finished: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done.status, "done", "{done:?}");
    assert!(done.attempts >= 2, "taken over after the kill: {done:?}");
    for (_, mut child) in workers {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(child.wait().expect("exits").success());
    }

    // The same hunt, uninterrupted, in this process.
    let mut loader = crrt_hunt::RuleLoader::new();
    for (path, text) in platform
        .store()
        .rulepack_files(&pack.id)
        .await
        .expect("rules")
    {
        loader = loader.yaml(path, text);
    }
    let rules = loader.load().expect("rules load");
    let stored: Vec<crrt_platform::Evidence> = platform
        .case_evidence(
            &coordinator,
            &case.id,
            Page {
                limit: 500,
                offset: 0,
            },
        )
        .await
        .expect("evidence");
    let store = EvidenceStore::open(&evidence_dir, 1 << 30).expect("store");
    let evidence: Vec<crrt_hunt::Evidence> = stored
        .iter()
        .map(|e| crrt_hunt::Evidence {
            path: store.path_of(&e.sha256),
            size: e.size as u64,
        })
        .collect();
    let reference = crrt_hunt::Hunter::new(&rules).run(&evidence, &crrt_hunt::Progress::default());
    let mut expected: Vec<(String, Option<u64>, Option<String>)> = reference
        .findings
        .iter()
        .map(|f| (f.rule_title.clone(), f.record_id, f.host.clone()))
        .collect();
    expected.sort();
    expected.dedup();
    let mut got: Vec<(String, Option<u64>, Option<String>)> = platform
        .findings(
            &coordinator,
            &case.id,
            Page {
                limit: 500,
                offset: 0,
            },
        )
        .await
        .expect("findings")
        .into_iter()
        .map(|f| (f.rule_title, f.record_id.map(|r| r as u64), f.host))
        .collect();
    got.sort();
    assert!(!expected.is_empty(), "the reference run finds something");
    assert_eq!(got, expected);
}
