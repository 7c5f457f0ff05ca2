//! The real `crrt` binary on files the tests write.

use std::path::PathBuf;
use std::process::{Command, Output};

const RULE: &str = "title: Whoami run\nid: 9a1c0000-0000-0000-0000-000000000001\nstatus: test\nlevel: high\ntags: [attack.discovery, attack.t1033]\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel: {Image|endswith: '\\whoami.exe'}\n  condition: sel\n";
const LOW_RULE: &str = "title: Any cmd\nid: 9a1c0000-0000-0000-0000-000000000002\nlevel: low\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel: {Image|endswith: '\\cmd.exe'}\n  condition: sel\n";

/// Sysmon 1 and Security 4688 events, as Winlogbeat and evtx_dump write them.
fn events() -> String {
    [
        r#"{"@timestamp":"2022-02-23T04:00:01Z","winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":1,"computer_name":"PC01","record_id":11,"event_data":{"Image":"C:\\Windows\\System32\\whoami.exe"}}}"#,
        r##"{"Event":{"System":{"EventID":4688,"Channel":"Security","Computer":"DC01","EventRecordID":12,"TimeCreated":{"#attributes":{"SystemTime":"2022-02-24T05:00:00Z"}}},"EventData":{"NewProcessName":"C:\\Windows\\System32\\whoami.exe"}}}"##,
        r#"{"@timestamp":"2022-02-23T04:00:02Z","winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":1,"computer_name":"PC01","record_id":13,"event_data":{"Image":"C:\\Windows\\System32\\cmd.exe"}}}"#,
    ]
    .join("\n")
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
        std::fs::write(dir.path().join("rules/whoami.yml"), RULE).expect("write");
        std::fs::write(dir.path().join("rules/cmd.yml"), LOW_RULE).expect("write");
        std::fs::write(dir.path().join("events.jsonl"), events()).expect("write");
        Case { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn crrt(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_crrt"))
            .current_dir(self.dir.path())
            // The rule cache goes to the case's folder, not the user's.
            .env("XDG_CACHE_HOME", self.path("cache"))
            .args(args)
            .output()
            .expect("runs")
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn jsonl(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn help_teaches_with_examples() {
    let output = Case::new().crrt(&["hunt", "--help"]);
    assert!(output.status.success());
    let text = stdout(&output);
    for expected in [
        "--sigma",
        "--yara",
        "--format",
        "--min-level",
        "--from",
        "Examples:",
        "Exit status",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}

#[test]
fn jsonl_has_the_stable_keys_and_sysmon_and_4688_both_match() {
    let case = Case::new();
    let output = case.crrt(&[
        "hunt",
        "events.jsonl",
        "--sigma",
        "rules",
        "--format",
        "jsonl",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let findings = jsonl(&output);
    let titles: Vec<&str> = findings
        .iter()
        .map(|f| f["rule_title"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        titles,
        vec!["Whoami run", "Any cmd", "Whoami run"],
        "time order"
    );
    let first = &findings[0];
    let keys: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec![
            "timestamp",
            "host",
            "channel",
            "event_id",
            "record_id",
            "rule_id",
            "rule_title",
            "level",
            "tags",
            "evidence_file",
            "event"
        ]
    );
    assert_eq!(first["timestamp"], "2022-02-23T04:00:01.000000Z");
    assert_eq!(first["host"], "PC01");
    assert_eq!(first["event_id"], 1);
    assert_eq!(first["record_id"], 11);
    assert_eq!(
        first["tags"],
        serde_json::json!(["attack.discovery", "attack.t1033"])
    );
    assert_eq!(first["evidence_file"], "events.jsonl");
    // Security 4688 matched the process_creation rule through the field renames.
    assert_eq!(findings[2]["host"], "DC01");
    assert_eq!(findings[2]["channel"], "Security");
}

#[test]
fn selection_and_time_window() {
    let case = Case::new();
    let high = jsonl(&case.crrt(&[
        "hunt",
        "events.jsonl",
        "-s",
        "rules",
        "-f",
        "jsonl",
        "--min-level",
        "high",
    ]));
    assert_eq!(high.len(), 2);
    let window = jsonl(&case.crrt(&[
        "hunt",
        "events.jsonl",
        "-s",
        "rules",
        "-f",
        "jsonl",
        "--from",
        "2022-02-24",
        "--to",
        "2022-02-24",
    ]));
    assert_eq!(window.len(), 1);
    assert_eq!(window[0]["host"], "DC01");
    let tagged = jsonl(&case.crrt(&[
        "hunt",
        "events.jsonl",
        "-s",
        "rules",
        "-f",
        "jsonl",
        "--tag",
        "attack.t1033",
    ]));
    assert_eq!(tagged.len(), 2);
}

#[test]
fn csv_and_table_outputs() {
    let case = Case::new();
    let output = case.crrt(&[
        "hunt",
        "events.jsonl",
        "-s",
        "rules",
        "-f",
        "csv",
        "-o",
        "out.csv",
    ]);
    assert!(output.status.success());
    let csv = std::fs::read_to_string(case.path("out.csv")).expect("csv written");
    assert!(csv.starts_with("timestamp,host,channel,event_id,record_id,rule_id,rule_title,level,tags,evidence_file,event\n"));
    assert_eq!(csv.lines().count(), 4);

    let table = stdout(&case.crrt(&["hunt", "events.jsonl", "-s", "rules"]));
    for expected in [
        "HIGH (2)",
        "LOW (1)",
        "Whoami run",
        "DC01",
        "Summary",
        "3 read",
        "2 high",
    ] {
        assert!(
            table.contains(expected),
            "{expected} missing from:\n{table}"
        );
    }
}

#[test]
fn two_runs_write_identical_files() {
    let case = Case::new();
    for name in ["a.jsonl", "b.jsonl"] {
        assert!(
            case.crrt(&["hunt", ".", "-s", "rules", "-f", "jsonl", "-q", "-o", name])
                .status
                .success()
        );
    }
    let a = std::fs::read(case.path("a.jsonl")).expect("a");
    assert!(a.iter().filter(|b| **b == b'\n').count() > 2);
    assert_eq!(a, std::fs::read(case.path("b.jsonl")).expect("b"));
    // Findings sorted in runs on disk and merged: the same bytes.
    for (format, name) in [("jsonl", "spilled.jsonl"), ("table", "spilled.txt")] {
        let out = case.crrt(&[
            "hunt",
            ".",
            "-s",
            "rules",
            "-f",
            format,
            "-q",
            "--spill-after",
            "1",
            "-o",
            name,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(
        a,
        std::fs::read(case.path("spilled.jsonl")).expect("spilled")
    );
    let table = case.crrt(&["hunt", ".", "-s", "rules", "-q", "-o", "table.txt"]);
    assert!(table.status.success());
    assert_eq!(
        std::fs::read(case.path("table.txt")).expect("table"),
        std::fs::read(case.path("spilled.txt")).expect("spilled table")
    );
}

#[test]
fn bad_arguments_exit_2_naming_the_problem() {
    let case = Case::new();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "hunt",
                "events.jsonl",
                "--sigma",
                "rules",
                "-o",
                "no/such/folder/out.jsonl",
            ],
            "no/such/folder/out.jsonl",
        ),
        (
            &["hunt", "events.jsonl", "--sigma", "no-such-rules"],
            "no-such-rules",
        ),
        (
            &["hunt", "no-such-evidence", "--sigma", "rules"],
            "no-such-evidence",
        ),
        (
            &[
                "hunt",
                "events.jsonl",
                "--sigma",
                "rules",
                "--min-level",
                "severe",
            ],
            "severe",
        ),
        (
            &[
                "hunt",
                "events.jsonl",
                "--sigma",
                "rules",
                "--from",
                "yesterday",
            ],
            "yesterday",
        ),
    ];
    for (args, named) in cases {
        let output = case.crrt(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(named),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_broken_rule_is_reported_and_the_hunt_goes_on() {
    let case = Case::new();
    std::fs::write(
        case.path("rules/broken.yml"),
        "title: broken\ndetection:\n  condition: nope and\n",
    )
    .expect("write");
    let output = case.crrt(&["hunt", "events.jsonl", "-s", "rules", "-f", "jsonl"]);
    assert!(output.status.success());
    assert!(
        stderr(&output).contains("broken.yml"),
        "{}",
        stderr(&output)
    );
    assert_eq!(jsonl(&output).len(), 3);
}

/// The README's quick start: the bundled example intrusion.
#[test]
fn the_bundled_example_finds_the_whole_intrusion() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_crrt"))
        .current_dir(&root)
        .args([
            "hunt",
            "--no-rule-cache",
            "examples/evidence",
            "--sigma",
            "examples/rules",
            "--format",
            "jsonl",
        ])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let titles: Vec<String> = jsonl(&output)
        .iter()
        .map(|f| f["rule_title"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        titles,
        [
            "SSH Brute Force From One Source",
            "Webshell Command In Query String",
            "Account Discovery With Whoami",
            "Shadow Copies Deleted With Vssadmin",
            "Event Log Cleared With Wevtutil",
            "Event Log Cleared",
        ]
    );
}

#[test]
fn a_second_hunt_takes_its_rules_from_the_cache() {
    let case = Case::new();
    let args = [
        "hunt",
        "events.jsonl",
        "--sigma",
        "rules",
        "--format",
        "jsonl",
    ];
    let first = case.crrt(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(!stderr(&first).contains("rule cache"), "{}", stderr(&first));
    let second = case.crrt(&args);
    assert!(
        stderr(&second).contains("(2 from the rule cache)"),
        "{}",
        stderr(&second)
    );
    assert_eq!(stdout(&first), stdout(&second));
    assert!(
        !case.path("cache/crrt/indicators").exists(),
        "no indicators, nothing cached for them"
    );
    let uncached = case.crrt(&[
        "hunt",
        "events.jsonl",
        "--sigma",
        "rules",
        "--format",
        "jsonl",
        "--no-rule-cache",
    ]);
    assert!(
        !stderr(&uncached).contains("rule cache"),
        "{}",
        stderr(&uncached)
    );
    assert_eq!(stdout(&first), stdout(&uncached));
}

#[test]
fn indicators_from_a_list_a_stix_bundle_or_a_misp_event_are_found_in_any_field() {
    let case = Case::new();
    std::fs::write(
        case.path("list.txt"),
        "# from the partner\nwhoami.exe\nfilename:cmd.exe\nnot-seen.example\n",
    )
    .expect("write");
    let hunt_list = || {
        case.crrt(&[
            "hunt",
            "events.jsonl",
            "--indicators",
            "list.txt",
            "--format",
            "jsonl",
        ])
    };
    let out = hunt_list();
    assert!(out.status.success(), "{}", stderr(&out));
    let found = jsonl(&out);
    let titles: Vec<&str> = found
        .iter()
        .filter_map(|f| f["rule_title"].as_str())
        .collect();
    assert_eq!(
        titles
            .iter()
            .filter(|t| t.starts_with("Indicator filename cmd.exe"))
            .count(),
        1,
        "{titles:?}"
    );
    assert_eq!(found.len(), 3, "whoami.exe twice, cmd.exe once: {titles:?}");
    assert!(found.iter().all(|f| f["level"] == "high"));
    assert!(found.iter().all(|f| {
        f["rule_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("indicator:"))
    }));

    // The parsed feed is kept beside the rule cache: the next hunt reads
    // it (same findings); a damaged copy is ignored; an edited feed is
    // parsed again.
    let feeds: Vec<PathBuf> = std::fs::read_dir(case.path("cache/crrt/indicators"))
        .expect("a parsed feed was kept")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(feeds.len(), 1);
    assert_eq!(stdout(&hunt_list()), stdout(&out));
    let kept = std::fs::read(&feeds[0]).expect("read");
    std::fs::write(&feeds[0], &kept[..kept.len() / 2]).expect("damage");
    assert_eq!(stdout(&hunt_list()), stdout(&out));
    std::fs::write(
        case.path("list.txt"),
        "whoami.exe
not-seen.example
",
    )
    .expect("write");
    assert_eq!(jsonl(&hunt_list()).len(), 2, "cmd.exe no longer looked for");

    // Rules and indicators together; a STIX bundle.
    let bundle = serde_json::json!({"type": "bundle", "id": "bundle--6b0e1c52-7d1c-4f0e-9a4b-3b2c1d0e9f8a", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--7b0e1c52-7d1c-4f0e-9a4b-3b2c1d0e9f8a",
         "pattern_type": "stix", "pattern": "[domain-name:value = 'PC01']"},
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--8b0e1c52-7d1c-4f0e-9a4b-3b2c1d0e9f8a",
         "pattern_type": "stix", "pattern": "[file:name = 'whoami.exe']"}
    ]});
    std::fs::write(case.path("bundle.json"), bundle.to_string()).expect("write");
    let out = case.crrt(&[
        "hunt",
        "events.jsonl",
        "--sigma",
        "rules",
        "--indicators",
        "bundle.json",
        "--format",
        "jsonl",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let found = jsonl(&out);
    let by_indicator = found
        .iter()
        .filter(|f| {
            f["rule_id"]
                .as_str()
                .is_some_and(|r| r.starts_with("indicator:"))
        })
        .count();
    assert_eq!(
        by_indicator, 2,
        "whoami.exe twice (a domain-looking PC01 is not a domain)"
    );
    assert!(
        found.iter().any(|f| f["rule_title"] == "Whoami run"),
        "rules still run"
    );

    // A list with a bad line stops before the hunt, naming the line.
    std::fs::write(case.path("bad.txt"), "evil.example\nwhat is this\n").expect("write");
    let out = case.crrt(&["hunt", "events.jsonl", "--indicators", "bad.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

#[test]
fn without_rules_an_access_log_gets_its_traffic_analysed() {
    let dir = tempfile::tempdir().expect("dir");
    let mut log = String::new();
    for minute in 0..30u32 {
        let requests = if (10..13).contains(&minute) { 900 } else { 10 };
        for n in 0..requests {
            log.push_str(&format!(
                "10.{}.{}.{} - - [24/Feb/2022:04:{minute:02}:{:02} +0000] \"GET / HTTP/1.1\" {} 10 \"-\" \"bot\"\n",
                n % 7,
                n % 200,
                minute,
                n % 60,
                if n % 2 == 0 { 503 } else { 200 }
            ));
        }
    }
    let path = dir.path().join("access.log");
    std::fs::write(&path, log).expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_crrt"))
        .args(["hunt", "--format", "jsonl"])
        .arg(&path)
        .output()
        .expect("crrt runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("only the web traffic of access logs is analysed")
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let findings: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    assert_eq!(findings.len(), 1, "{stdout}");
    assert_eq!(findings[0]["rule_id"], "traffic:flood");
    assert_eq!(findings[0]["event"]["requests"], 3 * 900);
}

#[test]
fn yara_scans_files_and_packages_and_names_broken_rule_files() {
    let case = Case::new();
    std::fs::create_dir(case.path("yara")).expect("mkdir");
    std::fs::write(
        case.path("yara/wiper.yar"),
        "rule Wiper_Note : T1485 {\n  meta:\n    score = 85\n  strings:\n    $n = \"Your hard drive has been corrupted\"\n  condition:\n    $n\n}\n",
    )
    .expect("write");
    std::fs::write(
        case.path("yara/broken.yar"),
        "rule Broken {\n  condition:\n    nope(\n}\n",
    )
    .expect("write");
    std::fs::create_dir(case.path("files")).expect("mkdir");
    std::fs::write(
        case.path("files/stage1.exe"),
        b"MZ\x00\x00AAAAA\x00Your hard drive has been corrupted.",
    )
    .expect("write");
    std::fs::write(case.path("files/clean.txt"), b"hello").expect("write");

    // The table: the match, the broken file named with its line, a summary.
    let out = case.crrt(&["hunt", "files", "--yara", "yara"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(
        text.contains("CRITICAL (1)") && text.contains("Wiper_Note"),
        "{text}"
    );
    assert!(
        text.contains("1 YARA rules from 1 of 2 files; 2 files scanned"),
        "{text}"
    );
    assert!(
        !text.contains("events      "),
        "a YARA-only hunt reads no events:\n{text}"
    );
    assert!(
        err.contains("broken.yar") && err.contains("line 4"),
        "{err}"
    );

    // JSON Lines: the stable keys, hashes and offsets.
    let out = case.crrt(&["hunt", "files", "-y", "yara", "-f", "jsonl", "-q"]);
    let findings = jsonl(&out);
    assert_eq!(findings.len(), 1);
    let hit = &findings[0];
    assert_eq!(hit["rule_id"], "yara:Wiper_Note");
    assert_eq!(hit["level"], "critical");
    assert!(
        hit["evidence_file"]
            .as_str()
            .unwrap_or_default()
            .ends_with("stage1.exe")
    );
    assert_eq!(hit["event"]["strings"][0]["matches"][0]["offset"], 10);
    assert_eq!(
        hit["event"]["file"]["sha256"].as_str().map(str::len),
        Some(64)
    );
    assert!(hit["tags"].to_string().contains("attack.t1485"));

    // Sigma and YARA together: events hunted and files scanned in one run.
    std::fs::copy(case.path("events.jsonl"), case.path("files/events.jsonl")).expect("copy");
    let out = case.crrt(&[
        "hunt", "files", "-s", "rules", "-y", "yara", "-f", "jsonl", "-q",
    ]);
    let ids: Vec<String> = jsonl(&out)
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(ids.contains(&"yara:Wiper_Note".to_owned()), "{ids:?}");
    assert!(ids.iter().any(|id| id.starts_with("9a1c0000")), "{ids:?}");

    // Nothing that compiles, or no rule file at all: exit 2 with the reason.
    let out = case.crrt(&["hunt", "files", "--yara", "yara/broken.yar"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no YARA rule compiled"),
        "{}",
        stderr(&out)
    );
    let out = case.crrt(&["hunt", "files", "--yara", "rules"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no YARA rule files"),
        "{}",
        stderr(&out)
    );
}

impl Case {
    /// `crrt` with `input` piped to its standard input.
    fn crrt_piped(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_crrt"))
            .current_dir(self.dir.path())
            .env("XDG_CACHE_HOME", self.path("cache"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // Written from another thread: a pipe holds 64 KiB at most.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().expect("waits");
        writer.join().expect("writer");
        output
    }
}

/// `zcat logs.gz | crrt hunt - ...`: text formats from standard input, hunted
/// as a file with the same lines would be.
#[test]
fn evidence_can_be_piped_to_standard_input() {
    let case = Case::new();
    let args = ["hunt", "--sigma", "rules", "--format", "jsonl"];
    let from_file = case.crrt(&[&args[..], &["events.jsonl"]].concat());
    let piped = case.crrt_piped(&[&args[..], &["-"]].concat(), events().as_bytes());
    assert!(piped.status.success(), "{}", stderr(&piped));
    let strip = |findings: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        findings
            .into_iter()
            .map(|mut f| {
                f["evidence_file"] = serde_json::Value::Null;
                f
            })
            .collect()
    };
    let piped_findings = jsonl(&piped);
    assert_eq!(piped_findings.len(), 3);
    assert_eq!(piped_findings[0]["evidence_file"], "/dev/stdin");
    assert_eq!(strip(piped_findings), strip(jsonl(&from_file)));

    // A large stream, past the 64 KiB read for detection.
    let many: String = (0..2000).map(|_| events() + "\n").collect();
    let piped = case.crrt_piped(&[&args[..], &["-"]].concat(), many.as_bytes());
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(jsonl(&piped).len(), 6000);
}

/// EVTX is read by seeking: from a pipe it is refused with a reason, and
/// the hunt still runs.
#[test]
fn evtx_from_a_pipe_is_refused_with_a_reason() {
    let case = Case::new();
    let mut evtx = b"ElfFile\0".to_vec();
    evtx.resize(4096, 0);
    let output = case.crrt_piped(&["hunt", "-", "--sigma", "rules"], &evtx);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output) + &stderr(&output);
    assert!(text.contains("EVTX cannot be read from a pipe"), "{text}");
}

/// An I/O error is named once, not once per level of its cause.
#[test]
fn an_unreadable_path_is_named_once() {
    let case = Case::new();
    let output = case.crrt(&["hunt", "rules/whoami.yml/inside", "--sigma", "rules"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.matches("os error").count(), 1, "{text}");
}

/// `crrt hunt -` typed at a terminal says so instead of waiting for input
/// (a terminal from `script`, util-linux's, as a user's shell gives one).
#[test]
fn standard_input_at_a_terminal_is_refused() {
    let case = Case::new();
    let script = |command: &str| {
        Command::new("script")
            .current_dir(case.dir.path())
            .env("XDG_CACHE_HOME", case.path("cache"))
            .args(["-qec", command, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
    };
    // A machine without `script` or without pseudo-terminals cannot run this.
    if !script("true").is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: no terminal from `script` (util-linux) here");
        return;
    }
    let command = format!("{} hunt - --sigma rules", env!("CARGO_BIN_EXE_crrt"));
    let output = script(&command).expect("script runs");
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("standard input is a terminal"),
        "{}",
        stdout(&output)
    );
}
