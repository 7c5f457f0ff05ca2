//! YARA through the hunt engine: rules written here, files made here, and
//! the shared public rule set when it is present.

use std::io::Write;
use std::path::{Path, PathBuf};

use crrt_hunt::{
    Finding, HuntReport, Hunter, Progress, RuleLoader, Severity, YaraLimits, YaraLoader, YaraRules,
    discover,
};
use sha2::Digest;

const RULES: &str = r#"
rule Wiper_Note : T1485 wiper {
    meta:
        description = "A wiper's ransom note in an executable"
        score = 85
    strings:
        $note = "Your hard drive has been corrupted"
        $pad = { 41 41 41 41 41 00 }
    condition:
        uint16(0) == 0x5a4d and $note and $pad
}

rule Dropper_Named_Stage2 {
    meta:
        description = "A file called stage2 with a PowerShell launcher"
        severity = "medium"
    strings:
        $ps = "powershell -enc" nocase
    condition:
        filename matches /stage2/i and $ps
}
"#;

/// A "PE" carrying the note twice, so offsets can be checked.
fn wiper_bytes() -> Vec<u8> {
    let mut bytes = b"MZ\x90\x00".to_vec();
    bytes.resize(200, 0);
    bytes.extend_from_slice(b"AAAAA\x00Your hard drive has been corrupted.");
    bytes.resize(1000, 0xcc);
    bytes.extend_from_slice(b"Your hard drive has been corrupted");
    bytes
}

fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, options).expect("member");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
    out
}

fn rules(text: &str) -> YaraRules {
    YaraLoader::new()
        .text("test.yar", text)
        .load()
        .expect("rules load")
}

fn yara_hunt(paths: &[PathBuf], rules: &YaraRules, limits: YaraLimits) -> HuntReport {
    let sigma = RuleLoader::new().allow_no_rules().load().expect("no rules");
    Hunter::new(&sigma)
        .yara(rules, limits)
        .read_events(false)
        .run(&discover(paths).expect("evidence"), &Progress::default())
}

fn by_file<'a>(report: &'a HuntReport, file: &str) -> Vec<&'a Finding> {
    report
        .findings
        .iter()
        .filter(|f| f.evidence_file.ends_with(file))
        .collect()
}

#[test]
fn files_and_zip_members_match_with_hashes_offsets_and_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wiper = wiper_bytes();
    std::fs::write(dir.path().join("wiper.exe"), &wiper).expect("write");
    std::fs::write(dir.path().join("notes.txt"), b"Your hard drive is fine").expect("write");
    let stage2 = b"MZ...cmd /c powershell -ENC UwB0AGEAcgB0AC...";
    let inner = zip_of(&[("deeper/wiper.bin", &wiper)]);
    let package = zip_of(&[
        ("C/Windows/Temp/stage2.dat", stage2),
        ("C/Windows/Temp/other.dat", stage2),
        ("C/Users/Public/readme.txt", b"nothing here"),
        ("C/Users/Public/inner.zip", &inner),
    ]);
    std::fs::write(dir.path().join("triage.zip"), &package).expect("write");

    let rules = rules(RULES);
    assert_eq!(rules.rule_count(), 2);
    assert!(rules.diagnostics().is_empty(), "{:?}", rules.diagnostics());
    let report = yara_hunt(&[dir.path().to_owned()], &rules, YaraLimits::default());

    // The plain file: rule, level from the score, ATT&CK tag, hashes, offsets.
    let hits = by_file(&report, "wiper.exe");
    assert_eq!(hits.len(), 1, "{:#?}", report.findings);
    let hit = hits[0];
    assert_eq!(hit.rule_id.as_deref(), Some("yara:Wiper_Note"));
    assert_eq!(hit.rule_title, "Wiper_Note");
    assert_eq!(hit.level, Severity::Critical);
    assert!(
        hit.tags.contains(&"attack.t1485".to_owned()),
        "{:?}",
        hit.tags
    );
    assert!(hit.tags.contains(&"yara".to_owned()));
    assert!(hit.timestamp.is_some(), "the file's modification time");
    let file = &hit.event["file"];
    assert_eq!(file["size"], wiper.len());
    assert_eq!(file["sha256"], hex::encode(sha2::Sha256::digest(&wiper)));
    assert_eq!(file["sha1"], hex::encode(sha1::Sha1::digest(&wiper)));
    assert_eq!(file["md5"], hex::encode(md5::Md5::digest(&wiper)));
    assert_eq!(file["type"], "EXE");
    assert_eq!(
        hit.event["rule"]["meta"][0],
        serde_json::json!(["description", "A wiper's ransom note in an executable"])
    );
    let strings = hit.event["strings"].as_array().expect("strings");
    let note = strings
        .iter()
        .find(|s| s["pattern"] == "$note")
        .expect("$note");
    assert_eq!(note["count"], 2);
    assert_eq!(note["matches"][0]["offset"], 206);
    assert_eq!(note["matches"][1]["offset"], 1000);
    assert_eq!(
        note["matches"][0]["data"],
        "Your hard drive has been corrupted"
    );
    let pad = strings
        .iter()
        .find(|s| s["pattern"] == "$pad")
        .expect("$pad");
    assert_eq!(pad["matches"][0]["data"], "AAAAA\\x00");

    // The text file says something close, but is no match.
    assert!(by_file(&report, "notes.txt").is_empty());

    // ZIP members: named inside the package; the external variable
    // `filename` is the member's own name, so only stage2 matches.
    let stage = by_file(&report, "triage.zip!/C/Windows/Temp/stage2.dat");
    assert_eq!(stage.len(), 1, "{:#?}", report.findings);
    assert_eq!(stage[0].level, Severity::Medium);
    assert_eq!(stage[0].event["file"]["path"], "C/Windows/Temp/stage2.dat");
    assert_eq!(
        stage[0].event["file"]["sha256"],
        hex::encode(sha2::Sha256::digest(stage2))
    );
    assert!(by_file(&report, "other.dat").is_empty());
    // A package inside the package is opened too.
    let nested = by_file(&report, "inner.zip!/deeper/wiper.bin");
    assert_eq!(nested.len(), 1, "{:#?}", report.findings);

    let stats = report.stats.yara.as_ref().expect("YARA stats");
    // wiper.exe, notes.txt, triage.zip, its 4 members, and the nested member.
    assert_eq!(stats.files_scanned, 8, "{stats:?}");
    assert!(stats.failed.is_empty() && stats.too_large.is_empty());
    // YARA alone reads no events.
    assert_eq!(report.stats.records_read, 0);
}

#[test]
fn a_rule_file_that_does_not_compile_is_named_with_its_line_and_the_rest_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(rules_dir.join("sub")).expect("mkdir");
    std::fs::write(rules_dir.join("good.yar"), RULES).expect("write");
    std::fs::write(
        rules_dir.join("sub/broken.yara"),
        "rule Broken {\n  strings:\n    $a = \"x\"\n  condition:\n    $a and $missing\n}\n",
    )
    .expect("write");
    std::fs::write(rules_dir.join("README.md"), "not a rule").expect("write");
    // The same rule name in another file is no clash: one namespace per file.
    std::fs::write(
        rules_dir.join("again.yar"),
        "rule Wiper_Note { condition: false }",
    )
    .expect("write");

    let rules = YaraLoader::new()
        .path(&rules_dir)
        .load()
        .expect("the good files load");
    assert_eq!(rules.file_counts(), (3, 2));
    assert_eq!(rules.rule_count(), 3);
    let problems = rules.diagnostics();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let text = problems[0].to_string();
    assert!(text.contains("broken.yara"), "{text}");
    assert!(text.contains("line 5"), "{text}");
    assert!(text.contains("$missing"), "{text}");

    std::fs::write(dir.path().join("wiper.exe"), wiper_bytes()).expect("write");
    let report = yara_hunt(
        &[dir.path().join("wiper.exe")],
        &rules,
        YaraLimits::default(),
    );
    assert_eq!(report.findings.len(), 1);

    // A folder with no rule file at all is an error, not an empty hunt.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let error = YaraLoader::new().path(&empty).load().expect_err("no rules");
    assert!(error.to_string().contains("no YARA rule files"), "{error}");
}

#[test]
fn large_files_are_skipped_and_hostile_packages_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut big = wiper_bytes();
    big.resize(10_000, b'x');
    std::fs::write(dir.path().join("big.exe"), &big).expect("write");
    std::fs::write(dir.path().join("small.exe"), wiper_bytes()).expect("write");
    let package = zip_of(&[("big.bin", &big), ("small.bin", &wiper_bytes())]);
    std::fs::write(dir.path().join("pack.zip"), &package).expect("write");
    let escaping = zip_of(&[("../../evil.exe", &wiper_bytes())]);
    std::fs::write(dir.path().join("escape.zip"), &escaping).expect("write");
    std::fs::write(
        dir.path().join("truncated.zip"),
        &package[..package.len() / 2],
    )
    .expect("write");

    let limits = YaraLimits {
        max_file_bytes: 5_000,
        ..YaraLimits::default()
    };
    let report = yara_hunt(&[dir.path().to_owned()], &rules(RULES), limits);
    let stats = report.stats.yara.as_ref().expect("stats");
    let too_large: Vec<&str> = stats.too_large.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(too_large.len(), 2, "{too_large:?}");
    assert!(too_large.iter().any(|n| n.ends_with("big.exe")));
    assert!(too_large.iter().any(|n| n.ends_with("pack.zip!/big.bin")));
    assert!(!by_file(&report, "small.exe").is_empty());
    assert!(!by_file(&report, "pack.zip!/small.bin").is_empty());
    // The escaping archive is scanned as a file but never opened.
    assert!(by_file(&report, "evil.exe").is_empty());
    let failed: Vec<String> = stats
        .failed
        .iter()
        .map(|(n, r)| format!("{n}: {r}"))
        .collect();
    assert!(
        failed
            .iter()
            .any(|f| f.contains("escape.zip") && f.contains("escapes the archive")),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|f| f.contains("truncated.zip")),
        "{failed:?}"
    );
}

fn shared_rules() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/yara/signature-base/yara");
    if path.is_dir() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} is missing",
        path.display()
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipping: {} not found (the shared test corpus is not in a fresh clone)",
        path.display()
    );
    None
}

#[test]
fn the_public_rule_set_loads_and_finds_a_whispergate_lookalike_in_a_package() {
    let Some(path) = shared_rules() else { return };
    let rules = YaraLoader::new().path(&path).load().expect("rule set");
    let (files, compiled) = rules.file_counts();
    assert!(files > 700, "{files}");
    // Most of the set compiles; the rest is reported file by file.
    assert!(compiled * 10 > files * 9, "{compiled} of {files}");
    assert!(rules.rule_count() > 3000, "{}", rules.rule_count());
    for problem in rules.diagnostics() {
        assert!(
            problem.path.starts_with(&path) && problem.message.starts_with("line "),
            "{problem}"
        );
    }

    // WhisperGate stage 1's note after its AAAAA marker, in a small PE.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut stage1 = b"MZ\x90\x00".to_vec();
    stage1.resize(4096, 0);
    stage1.extend_from_slice(b"AAAAA\x00Your hard drive has been corrupted.");
    stage1.resize(8192, 0);
    let package = zip_of(&[
        ("C/PerfLogs/stage1.exe", &stage1),
        ("C/Windows/System32/notepad.txt", b"plain text"),
    ]);
    let zip = dir.path().join("ministry-triage.zip");
    std::fs::write(&zip, package).expect("write");
    let report = yara_hunt(&[zip], &rules, YaraLimits::default());
    let hit = report
        .findings
        .iter()
        .find(|f| f.rule_id.as_deref() == Some("yara:APT_HKTL_Wiper_WhisperGate_Jan22_1"))
        .unwrap_or_else(|| panic!("{:#?}", report.findings));
    assert_eq!(
        hit.evidence_file.rsplit("!/").next(),
        Some("C/PerfLogs/stage1.exe")
    );
    assert_eq!(hit.level, Severity::Critical, "score 85");
    assert!(
        Path::new(&hit.event["rule"]["namespace"].as_str().unwrap_or_default())
            .ends_with("apt_ua_wiper_whispergate.yar")
    );
}

#[test]
fn compiled_rules_are_cached_and_a_damaged_cache_is_compiled_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).expect("mkdir");
    std::fs::write(rules_dir.join("good.yar"), RULES).expect("write");
    std::fs::write(rules_dir.join("broken.yar"), "rule B { condition: $x }").expect("write");
    let cache = dir.path().join("cache");
    let load = || {
        YaraLoader::new()
            .path(&rules_dir)
            .cache_dir(&cache)
            .load()
            .expect("load")
    };
    let first = load();
    assert!(!first.from_cache() && first.cache_problem().is_none());
    let second = load();
    assert!(second.from_cache());
    assert_eq!(second.rule_count(), first.rule_count());
    assert_eq!(second.file_counts(), first.file_counts());
    assert_eq!(
        second
            .diagnostics()
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>(),
        first
            .diagnostics()
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
    );
    // The cached rules scan like the compiled ones.
    std::fs::write(dir.path().join("wiper.exe"), wiper_bytes()).expect("write");
    let report = yara_hunt(
        &[dir.path().join("wiper.exe")],
        &second,
        YaraLimits::default(),
    );
    assert_eq!(report.findings.len(), 1);

    // A truncated cache file is ignored and rewritten.
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let bytes = std::fs::read(&cached[0]).expect("read");
    std::fs::write(&cached[0], &bytes[..bytes.len() / 2]).expect("truncate");
    let third = load();
    assert!(!third.from_cache());
    assert!(load().from_cache());

    // An edited rule file is compiled again; the old set is dropped.
    std::fs::write(
        rules_dir.join("good.yar"),
        RULES.replace("Wiper_Note", "Note2"),
    )
    .expect("write");
    let fourth = load();
    assert!(!fourth.from_cache());
    assert_eq!(std::fs::read_dir(&cache).expect("cache").count(), 1);
}
