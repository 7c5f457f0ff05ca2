//! Hostile and broken input, mass-produced: every reader gets its valid
//! sample cut at many points and with bytes flipped at random (a seeded
//! generator, so a failure reproduces), and must neither panic nor hang;
//! what it cannot read is reported as data. A stable-toolchain stand-in for
//! a fuzzer (cargo-fuzz needs nightly, which this project does not use).

use std::io::Write;
use std::path::{Path, PathBuf};

use crrt_hunt::{Hunter, Progress, RuleLoader, RuleSet, discover};

const RULE: &str = "title: anything\nid: 00000000-0000-0000-0000-0000000000aa\nlogsource: {product: windows}\nlevel: low\ndetection:\n  sel: {CommandLine|contains: whoami}\n  condition: sel\n";

/// xorshift64*: small, seeded, good enough to pick positions and bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![
        (
            "events.jsonl",
            br#"{"winlog": {"channel": "Security", "event_id": 4688, "computer_name": "DC01", "event_data": {"CommandLine": "whoami /all", "NewProcessName": "C:\\Windows\\System32\\whoami.exe"}}, "@timestamp": "2022-02-23T16:00:00Z"}
{"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS1", "TimeCreated_attributes": {"SystemTime": "2022-02-23T16:01:00Z"}}, "EventData": {"CommandLine": "whoami"}}}
[{"a": {"b": [1, 2, {"c": "d"}]}}, {"e": null}]
"#
            .to_vec(),
        ),
        (
            "access.log",
            br#"203.0.113.9 - - [23/Feb/2022:16:00:00 +0200] "GET /shell.aspx?cmd=whoami HTTP/1.1" 200 512 "-" "curl/7.68"
198.51.100.1 - bob [23/Feb/2022:16:00:01 +0200] "POST /login HTTP/1.1" 302 0 "https://x/" "Mozilla/5.0"
"#
            .to_vec(),
        ),
        (
            "u_ex220223.log",
            b"#Software: Microsoft Internet Information Services 10.0\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status\n2022-02-23 16:00:00 10.0.0.5 GET /owa/auth/x.aspx cmd=whoami 443 - 203.0.113.9 curl/7.68 200\n"
                .to_vec(),
        ),
        (
            "auth.log",
            b"<38>Feb 23 16:00:00 web01 sshd[812]: Failed password for root from 203.0.113.9 port 4022 ssh2\n<165>1 2022-02-23T16:00:01.003Z mail01 postfix 99 ID47 [ex@32473 a=\"b\"] message text\n"
                .to_vec(),
        ),
    ];
    // A ZIP of the others, to fuzz the archive reader and nesting.
    let mut zip_bytes = Vec::new();
    {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(&mut zip_bytes));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in &out {
            zip.start_file(format!("triage/{name}"), options)
                .expect("zip entry");
            zip.write_all(bytes).expect("zip write");
        }
        zip.finish().expect("zip finish");
    }
    out.push(("triage.zip", zip_bytes));
    // A real EVTX file when the shared corpus is here (small one: fast).
    let evtx = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/evtx-attack-samples/Execution/sysmon_zipexec.evtx");
    if let Ok(bytes) = std::fs::read(&evtx) {
        out.push(("sample.evtx", bytes));
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {} is missing",
            evtx.display()
        );
        let _ = writeln!(
            std::io::stderr(),
            "note: no EVTX sample (../shared/data absent); EVTX not mutated"
        );
    }
    out
}

fn hunt_file(rules: &RuleSet, path: &Path) {
    let evidence = discover(&[path.to_owned()]).expect("the file exists");
    // Neither a panic nor an endless loop: the test harness would report both.
    let report = Hunter::new(rules).run(&evidence, &Progress::default());
    for problem in report.stats.damaged.iter().chain(&report.stats.failed) {
        assert!(!problem.detail.is_empty(), "a problem says what it is");
    }
}

#[test]
fn truncated_and_corrupted_inputs_never_panic() {
    let rules = RuleLoader::new()
        .yaml("rule.yml", RULE)
        .load()
        .expect("rule");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x5eed_c0de_2022_0224);
    let mut n_cases = 0;
    for (name, bytes) in samples() {
        let path = dir.path().join(name);
        // The intact file reads.
        std::fs::write(&path, &bytes).expect("write");
        hunt_file(&rules, &path);
        // Cut at every point for small files, at 200 points for large ones.
        let cuts: Vec<usize> = if bytes.len() <= 600 {
            (0..bytes.len()).collect()
        } else {
            (0..200).map(|_| rng.below(bytes.len())).collect()
        };
        for cut in cuts {
            std::fs::write(&path, &bytes[..cut]).expect("write");
            hunt_file(&rules, &path);
            n_cases += 1;
        }
        // Flip 1 to 16 random bytes, many times (most for the binary format).
        let rounds = if name.ends_with(".evtx") { 1000 } else { 150 };
        for _ in 0..rounds {
            let mut mutated = bytes.clone();
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(mutated.len());
                mutated[at] = rng.next() as u8;
            }
            std::fs::write(&path, &mutated).expect("write");
            hunt_file(&rules, &path);
            n_cases += 1;
        }
    }
    assert!(n_cases > 1000, "{n_cases} cases");
}

#[test]
fn folder_links_that_loop_are_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.log"), "x\n").expect("write");
    // `/usr/bin/X11 -> .` on Debian: following it never ends.
    std::os::unix::fs::symlink(".", dir.path().join("loop")).expect("symlink");
    std::os::unix::fs::symlink("a.log", dir.path().join("b.log")).expect("symlink");
    std::os::unix::fs::symlink("missing", dir.path().join("dangling")).expect("symlink");
    let found = crrt_hunt::discover(&[dir.path().to_owned()]).expect("discover");
    let names: Vec<String> = found
        .iter()
        .map(|e| {
            e.path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["a.log", "b.log"]);
}
