//! The formats against the outside world: the shared OASIS STIX examples
//! and PyMISP's event files read without a panic; our STIX bundle passes
//! the OASIS `stix2-validator` with no errors and every pattern passes
//! `stix2-patterns`; our MISP event loads in `pymisp`.
//!
//! The Python checks need `pip install stix2-validator pymisp`; without
//! them (or without `../shared/data`) the tests say they skip, and fail
//! under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crrt_intel::{Indicator, Kind, Observable, Tlp, misp, stix};

fn skip(message: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "SKIPPED under CI: {message}"
    );
    eprintln!("SKIPPED: {message}");
}

fn shared(sub: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(&format!("{} is absent", dir.display()));
        None
    }
}

fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(&format!(
            "python3 module {module} is missing (pip install it)"
        ));
    }
    ok
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// One indicator of every kind, with tags that make relationships.
fn one_of_each() -> Vec<Indicator> {
    [
        "185.61.137.4",
        "2001:db8::66",
        "10.66.0.0/16",
        "whispergate-c2.example",
        "hxxps://cdn.discordapp[.]example/attachments/stage2.jpg",
        "operator[at]mail.example",
        "5d5c99efc8b2e4d1a0ba7d4a37f1c4e1",
        "16525f4f7fbc1f16f04e62f0a7fd6d36d7fb2b4a",
        "a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92",
        "stage1.exe",
        r"HKLM\SYSTEM\CurrentControlSet\Services\EaseUS",
        r"account:MFA\it'support",
        r"mutex:Global\WhisperGate",
        "ja3:e7d705a3286e19ea42f587b344ee6865",
    ]
    .iter()
    .enumerate()
    .map(|(n, line)| Indicator {
        id: format!("{n:032x}"),
        observable: Observable::parse_line(line).expect("valid"),
        tlp: Tlp::ALL[n % Tlp::ALL.len()],
        source: if n % 2 == 0 {
            "CERT-EE"
        } else {
            "Northwind Threat Research"
        }
        .into(),
        confidence: Some(80),
        first_seen: Some("2022-01-13T20:00:00Z".into()),
        last_seen: Some("2022-01-14T02:00:00Z".into()),
        expires_at: Some("2022-07-01T00:00:00Z".into()),
        tags: vec!["T1485".into(), "malware:WhisperGate".into(), "wiper".into()],
        description: Some("Seen in the January 2022 wiper campaign".into()),
        sightings: (n as i64) % 3,
        created_at: "2022-01-15T10:00:00.000000Z".into(),
        modified_at: "2022-01-16T10:00:00.000000Z".into(),
    })
    .collect()
}

#[test]
fn shared_stix_and_misp_samples_are_read_without_panic() {
    let Some(stix_dir) = shared("stix") else {
        return;
    };
    let mut files = Vec::new();
    json_files(&stix_dir, &mut files);
    let mut found = 0;
    for file in &files {
        let bytes = std::fs::read(file).expect("read");
        if let Ok((indicators, _problems)) = stix::import_bundle(&bytes) {
            found += indicators.len();
        }
    }
    assert!(found > 0, "indicators in the OASIS examples");
    let c2 =
        std::fs::read(stix_dir.join("examples/indicator-for-c2-ip-address.json")).expect("file");
    let (indicators, problems) = stix::import_bundle(&c2).expect("a bundle");
    assert!(problems.is_empty(), "{problems:?}");
    assert!(indicators.iter().any(|i| i.observable.kind == Kind::Ipv4));

    let Some(misp_dir) = shared("misp") else {
        return;
    };
    let mut files = Vec::new();
    json_files(&misp_dir, &mut files);
    for file in &files {
        let bytes = std::fs::read(file).expect("read");
        let _ = misp::import_event(&bytes);
    }
    let osint = std::fs::read(misp_dir.join("existing_event.json")).expect("file");
    let (indicators, problems) = misp::import_event(&osint).expect("an event");
    assert!(problems.is_empty(), "{problems:?}");
    assert!(!indicators.is_empty());
    assert!(
        indicators.iter().all(|i| i.tlp == Some(Tlp::Clear)),
        "tlp:white is CLEAR"
    );
}

#[test]
fn damaged_inputs_are_refused_with_their_position() {
    for (input, expected) in [
        (
            b"{\"type\": \"bundle\", \"objects\": [".as_slice(),
            "line 1",
        ),
        (b"{\"type\": \"report\"}".as_slice(), "not a STIX bundle"),
        (b"[]".as_slice(), "not a STIX bundle"),
    ] {
        let e = stix::import_bundle(input).expect_err("refused");
        assert!(e.to_string().contains(expected), "{e}");
    }
    let bundle = br#"{"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "pattern_type": "stix", "pattern": "[ipv4-addr:value = '198.51.100.7']"},
        {"type": "indicator", "pattern_type": "stix", "pattern": "[file:size > 3]"},
        {"type": "indicator", "pattern_type": "yara", "pattern": "rule x {}"}
    ]}"#;
    let (indicators, problems) = stix::import_bundle(bundle).expect("read");
    assert_eq!(indicators.len(), 1, "the valid rest is read");
    let positions: Vec<&str> = problems.iter().map(|p| p.position.as_str()).collect();
    assert_eq!(positions, ["objects[1]", "objects[2]"]);
    let e = misp::import_event(b"{\"Event\": {\"info\": \"x\"}}").expect_err("refused");
    assert!(e.to_string().contains("not a MISP event"), "{e}");
}

#[test]
fn our_stix_passes_the_oasis_validator_and_patterns() {
    if !python_has("stix2validator") || !python_has("stix2patterns") {
        return;
    }
    let indicators = one_of_each();
    let bundle = stix::export_bundle(
        &indicators,
        "CRRT (EU rapid response)",
        "2022-02-24T06:00:00Z",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&bundle).expect("json")).expect("write");
    let script = r#"
import json, sys
from stix2validator import validate_file, ValidationOptions
from stix2patterns.validator import run_validator
results = validate_file(sys.argv[1], ValidationOptions(version="2.1", strict=False))
for e in results.object_results:
    for err in e.errors:
        print("ERROR", e.object_id, err)
bundle = json.load(open(sys.argv[1]))
for o in bundle["objects"]:
    if o["type"] == "indicator":
        errors = run_validator(o["pattern"], stix_version="2.1")
        for err in errors:
            print("PATTERN", o["pattern"], err)
print("VALID" if results.is_valid else "INVALID")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.trim_end().ends_with("VALID")
            && !text.contains("ERROR")
            && !text.contains("PATTERN"),
        "validator: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And it reads back to the same values and levels.
    let (back, problems) =
        stix::import_bundle(&serde_json::to_vec(&bundle).expect("json")).expect("read");
    assert!(problems.is_empty(), "{problems:?}");
    let mut sent: Vec<_> = indicators
        .iter()
        .map(|i| (i.observable.clone(), Some(i.tlp)))
        .collect();
    let mut read: Vec<_> = back.iter().map(|i| (i.observable.clone(), i.tlp)).collect();
    sent.sort();
    read.sort();
    assert_eq!(sent, read);
}

#[test]
fn our_misp_event_loads_in_pymisp() {
    if !python_has("pymisp") {
        return;
    }
    let indicators = one_of_each();
    let event = misp::export_event(
        &indicators,
        "CRRT mission: wiper at the ministry",
        "2022-02-24T06:00:00Z",
        "5b5f8b5e-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("event.json");
    std::fs::write(&file, serde_json::to_vec(&event).expect("json")).expect("write");
    let script = r#"
import sys
from pymisp import MISPEvent
e = MISPEvent()
e.load_file(sys.argv[1])
print(len(e.attributes), sorted({t.name for t in e.tags}))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pymisp refused it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("14 "), "{text}");
    assert!(text.contains("tlp:red"), "{text}");
    // And we read our own event back.
    let (back, problems) =
        misp::import_event(&serde_json::to_vec(&event).expect("json")).expect("read");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(back.len(), 14);
}
