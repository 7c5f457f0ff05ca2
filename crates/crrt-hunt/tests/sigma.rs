//! Sigma semantics, one line per case: a detection, an event, fires or not.

use crrt_hunt::{Hunter, Progress, Record, RecordKind, RuleLoader, discover};
use serde_json::{Value, json};

/// Does a rule with this `detection:` block fire on `event`?
fn fires(detection: &str, event: Value) -> bool {
    fires_with(detection, event, &[])
}

fn fires_with(detection: &str, event: Value, vars: &[(&str, &str)]) -> bool {
    let yaml = format!(
        "title: case\nid: 00000000-0000-0000-0000-000000000001\nlogsource:\n  product: test\nlevel: high\ndetection:\n{}\n",
        indent(detection)
    );
    let mut loader = RuleLoader::new().yaml("case.yml", yaml);
    for (name, value) in vars {
        loader = loader.placeholder(*name, vec![(*value).to_owned()]);
    }
    let rules = loader.load().expect("rule loads");
    assert!(rules.diagnostics().is_empty(), "{:?}", rules.diagnostics());
    assert_eq!(rules.detection_rule_count(), 1);
    let record = Record {
        kind: RecordKind::Json,
        fields: crrt_hunt::Fields::Json(event),
        timestamp: None,
        position: 1,
    };
    !rules.matches(&record).is_empty()
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

fn check(detection: &str, event: Value, expected: bool) {
    assert_eq!(
        fires(detection, event.clone()),
        expected,
        "detection:\n{detection}\nevent: {event}"
    );
}

#[test]
fn plain_values_wildcards_and_escapes() {
    let sel = |v: &str| format!("sel:\n  Image: '{v}'\ncondition: sel");
    check(
        &sel("C:\\x\\cmd.exe"),
        json!({"Image": "c:\\X\\CMD.EXE"}),
        true,
    ); // case-insensitive
    check(&sel("*\\cmd.exe"), json!({"Image": "C:\\x\\cmd.exe"}), true);
    check(
        &sel("*\\cmd.exe"),
        json!({"Image": "C:\\x\\cmd.exe.bak"}),
        false,
    );
    check(&sel("c?d.exe"), json!({"Image": "cmd.exe"}), true);
    check(&sel("a\\*b"), json!({"Image": "a*b"}), true); // escaped wildcard is literal
    check(&sel("a\\*b"), json!({"Image": "axxb"}), false);
    check(
        "sel:\n  Image:\n    - a\n    - b\ncondition: sel",
        json!({"Image": "b"}),
        true,
    ); // list = OR
    check(
        "sel:\n  Image: null\ncondition: sel",
        json!({"Other": 1}),
        true,
    );
    check(
        "sel:\n  Image: null\ncondition: sel",
        json!({"Image": "x"}),
        false,
    );
    check(
        "sel:\n  Port: 445\ncondition: sel",
        json!({"Port": 445}),
        true,
    );
    check(
        "sel:\n  nested.field: x\ncondition: sel",
        json!({"nested": {"field": "x"}}),
        true,
    );
}

#[test]
fn string_modifiers() {
    check(
        "sel:\n  C|contains: whoami\ncondition: sel",
        json!({"C": "cmd /c WHOAMI /all"}),
        true,
    );
    check(
        "sel:\n  C|startswith: cmd\ncondition: sel",
        json!({"C": "cmd /c x"}),
        true,
    );
    check(
        "sel:\n  C|startswith: cmd\ncondition: sel",
        json!({"C": "x cmd"}),
        false,
    );
    check(
        "sel:\n  C|endswith: .ps1\ncondition: sel",
        json!({"C": "a.PS1"}),
        true,
    );
    check(
        "sel:\n  C|contains|all: [a, b]\ncondition: sel",
        json!({"C": "xaxbx"}),
        true,
    );
    check(
        "sel:\n  C|contains|all: [a, z]\ncondition: sel",
        json!({"C": "xaxbx"}),
        false,
    );
    check(
        "sel:\n  C|windash|contains: ' -enc '\ncondition: sel",
        json!({"C": "powershell /enc abc"}),
        true,
    );
    check(
        "sel:\n  C|windash|contains: ' -enc '\ncondition: sel",
        json!({"C": "powershell \u{2013}enc abc"}),
        true,
    );
    // Sigma permutes `/` as well as `-` (rsigma 0.23 only `-`; we fix it).
    check(
        "sel:\n  C|windash|contains: ' /i \"lsass'\ncondition: sel",
        json!({"C": "findstr -i \"lsass\""}),
        true,
    );
    check(
        "sel:\n  C|windash|contains: 'a/b'\ncondition: sel",
        json!({"C": "a-b"}),
        false,
    );
    check(
        "sel:\n  C|cased: Admin\ncondition: sel",
        json!({"C": "admin"}),
        false,
    );
    check(
        "sel:\n  C|cased: Admin\ncondition: sel",
        json!({"C": "Admin"}),
        true,
    );
}

#[test]
fn encoding_modifiers() {
    // base64("whoami") = d2hvYW1p
    check(
        "sel:\n  C|base64: whoami\ncondition: sel",
        json!({"C": "d2hvYW1p"}),
        true,
    );
    check(
        "sel:\n  C|base64|contains: whoami\ncondition: sel",
        json!({"C": "x d2hvYW1p y"}),
        true,
    );
    // "xwhoami" base64 = eHdob2FtaQ==; offset 1 of "whoami" is "d2hvYW1p" shifted: dob2FtaQ
    check(
        "sel:\n  C|base64offset|contains: whoami\ncondition: sel",
        json!({"C": "eHdob2FtaQ=="}),
        true,
    );
    // UTF-16LE "ab" = 61 00 62 00 -> YQBiAA
    check(
        "sel:\n  C|utf16le|base64offset|contains: ab\ncondition: sel",
        json!({"C": "-enc YQBiAA=="}),
        true,
    );
    check(
        "sel:\n  C|wide|base64offset|contains: ab\ncondition: sel",
        json!({"C": "-enc YQBiAA=="}),
        true,
    );
    // UTF-16BE "ab" = 00 61 00 62 -> AGEAYg
    check(
        "sel:\n  C|utf16be|base64offset|contains: ab\ncondition: sel",
        json!({"C": "AGEAYg=="}),
        true,
    );
}

#[test]
fn regex_and_its_flags() {
    check(
        "sel:\n  C|re: '^cmd\\.exe /c'\ncondition: sel",
        json!({"C": "cmd.exe /c x"}),
        true,
    );
    check(
        "sel:\n  C|re: '^CMD'\ncondition: sel",
        json!({"C": "cmd"}),
        false,
    ); // regexes are cased
    check(
        "sel:\n  C|re|i: '^CMD'\ncondition: sel",
        json!({"C": "cmd"}),
        true,
    );
    check(
        "sel:\n  C|re|m: '^b$'\ncondition: sel",
        json!({"C": "a\nb"}),
        true,
    );
    check(
        "sel:\n  C|re|s: 'a.b'\ncondition: sel",
        json!({"C": "a\nb"}),
        true,
    );
    check(
        "sel:\n  C|re: 'a.b'\ncondition: sel",
        json!({"C": "a\nb"}),
        false,
    );
}

#[test]
fn network_numbers_and_fields() {
    check(
        "sel:\n  Ip|cidr: 10.0.0.0/8\ncondition: sel",
        json!({"Ip": "10.1.2.3"}),
        true,
    );
    check(
        "sel:\n  Ip|cidr: 10.0.0.0/8\ncondition: sel",
        json!({"Ip": "11.1.2.3"}),
        false,
    );
    check(
        "sel:\n  Ip|cidr: 'fe80::/10'\ncondition: sel",
        json!({"Ip": "fe80::1"}),
        true,
    );
    check("sel:\n  N|gt: 10\ncondition: sel", json!({"N": 11}), true);
    check("sel:\n  N|gt: 10\ncondition: sel", json!({"N": 10}), false);
    check("sel:\n  N|gte: 10\ncondition: sel", json!({"N": 10}), true);
    check("sel:\n  N|lt: 10\ncondition: sel", json!({"N": "9"}), true);
    check("sel:\n  N|lte: 10\ncondition: sel", json!({"N": 11}), false);
    check(
        "sel:\n  A|exists: true\ncondition: sel",
        json!({"A": ""}),
        true,
    );
    check(
        "sel:\n  A|exists: false\ncondition: sel",
        json!({"A": ""}),
        false,
    );
    check(
        "sel:\n  A|exists: false\ncondition: sel",
        json!({"B": 1}),
        true,
    );
    check(
        "sel:\n  A|fieldref: B\ncondition: sel",
        json!({"A": "x", "B": "x"}),
        true,
    );
    check(
        "sel:\n  A|fieldref: B\ncondition: sel",
        json!({"A": "x", "B": "y"}),
        false,
    );
}

#[test]
fn expand_placeholders() {
    let detection = "sel:\n  Host|expand: '%Admins_Workstations%'\ncondition: sel";
    assert!(fires_with(
        detection,
        json!({"Host": "ADM-01"}),
        &[("Admins_Workstations", "ADM-01")]
    ));
    assert!(!fires_with(
        detection,
        json!({"Host": "PC-07"}),
        &[("Admins_Workstations", "ADM-01")]
    ));
}

#[test]
fn keywords() {
    check(
        "keywords:\n  - mimikatz\n  - 'sekurlsa::'\ncondition: keywords",
        json!({"a": {"b": "run MIMIKATZ now"}}),
        true,
    );
    check(
        "keywords:\n  - mimikatz\ncondition: keywords",
        json!({"a": "benign"}),
        false,
    );
    check(
        "keywords:\n  '|all':\n    - a1\n    - b2\ncondition: keywords",
        json!({"x": "a1", "y": "b2"}),
        true,
    );
}

#[test]
fn conditions() {
    let base = "sel1:\n  A: 1\nsel2:\n  B: 2\nfilter:\n  C: 3\n";
    let c = |cond: &str, event: Value, expected: bool| {
        check(&format!("{base}condition: {cond}"), event, expected)
    };
    c("sel1 and sel2", json!({"A": 1, "B": 2}), true);
    c("sel1 and sel2", json!({"A": 1}), false);
    c("sel1 or sel2", json!({"B": 2}), true);
    c("sel1 and not filter", json!({"A": 1, "C": 3}), false);
    c("sel1 and not filter", json!({"A": 1}), true);
    c("(sel1 or sel2) and not filter", json!({"B": 2}), true);
    c("not (sel1 or sel2)", json!({"Z": 0}), true);
    c("1 of sel*", json!({"B": 2}), true);
    c("all of sel*", json!({"B": 2}), false);
    c("all of sel*", json!({"A": 1, "B": 2}), true);
    c("1 of them", json!({"C": 3}), true);
    c("all of them", json!({"A": 1, "B": 2, "C": 3}), true);
    c("all of them", json!({"A": 1, "B": 2}), false);
    c("any of sel*", json!({"A": 1}), true);
    c(
        "1 of sel* and not 1 of filter*",
        json!({"A": 1, "C": 3}),
        false,
    );
}

#[test]
fn a_malformed_rule_is_a_diagnostic_not_an_error() {
    let rules = RuleLoader::new()
        .yaml(
            "good.yml",
            "title: ok\nlogsource: {product: test}\ndetection:\n  sel: {A: 1}\n  condition: sel\n",
        )
        .yaml(
            "bad.yml",
            "title: broken\ndetection:\n  sel: {A: 1}\n  condition: sel and\n",
        )
        .yaml("notyaml.yml", "title: [unclosed\n")
        .load()
        .expect("loading goes on");
    assert_eq!(rules.detection_rule_count(), 1);
    let files: Vec<String> = rules
        .diagnostics()
        .iter()
        .map(|d| d.path.display().to_string())
        .collect();
    assert!(files.contains(&"bad.yml".to_owned()), "{files:?}");
    assert!(files.contains(&"notyaml.yml".to_owned()), "{files:?}");
}

/// Writes events as JSON Lines and hunts them with the given rule texts.
fn hunt(rule_texts: &[&str], events: &[Value]) -> Vec<(String, Value)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&path, lines.join("\n")).expect("write");
    let mut loader = RuleLoader::new();
    for (i, text) in rule_texts.iter().enumerate() {
        loader = loader.yaml(format!("rule{i}.yml"), *text);
    }
    let rules = loader.load().expect("rules");
    assert!(rules.diagnostics().is_empty(), "{:?}", rules.diagnostics());
    let evidence = discover(&[path]).expect("evidence");
    let report = Hunter::new(&rules).run(&evidence, &Progress::default());
    report
        .findings
        .into_iter()
        .map(|f| (f.rule_title, f.event))
        .collect()
}

const FAILED_LOGON: &str = "title: failed logon\nid: 11111111-0000-0000-0000-000000000001\nname: failed_logon\nlogsource: {product: test}\nlevel: low\ndetection:\n  sel: {action: fail}\n  condition: sel\n";

fn logon(second: u32, user: &str, action: &str, src: &str) -> Value {
    json!({"timestamp": format!("2022-02-23T04:00:{second:02}Z"), "user": user, "action": action, "src": src})
}

#[test]
fn event_count_correlation_with_group_by() {
    let correlation = "title: brute force\nid: 11111111-0000-0000-0000-000000000002\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [failed_logon]\n  group-by: [user]\n  timespan: 1m\n  condition: {gte: 3}\n";
    let events = [
        logon(1, "bob", "fail", "a"),
        logon(2, "bob", "fail", "a"),
        logon(3, "eve", "fail", "a"),
        logon(4, "bob", "fail", "a"),
    ];
    let findings = hunt(&[FAILED_LOGON, correlation], &events);
    let titles: Vec<&str> = findings.iter().map(|(t, _)| t.as_str()).collect();
    // generate: false (the default) keeps the counted rule's own findings out.
    assert_eq!(titles, vec!["brute force"]);
    assert_eq!(findings[0].1["group"]["user"], json!("bob"));
}

#[test]
fn value_count_correlation() {
    let correlation = "title: spray\nlevel: high\ncorrelation:\n  type: value_count\n  rules: [failed_logon]\n  group-by: [src]\n  timespan: 1m\n  condition: {field: user, gte: 3}\n";
    let sprayed = [
        logon(1, "a", "fail", "x"),
        logon(2, "b", "fail", "x"),
        logon(3, "c", "fail", "x"),
    ];
    assert_eq!(hunt(&[FAILED_LOGON, correlation], &sprayed).len(), 1);
    let same_user = [
        logon(1, "a", "fail", "x"),
        logon(2, "a", "fail", "x"),
        logon(3, "a", "fail", "x"),
    ];
    assert_eq!(hunt(&[FAILED_LOGON, correlation], &same_user).len(), 0);
}

#[test]
fn temporal_correlations_and_order() {
    let success = "title: success\nname: ok_logon\nlogsource: {product: test}\ndetection:\n  sel: {action: ok}\n  condition: sel\n";
    let temporal = |kind: &str| {
        format!(
            "title: fail then success\nlevel: critical\ncorrelation:\n  type: {kind}\n  rules: [failed_logon, ok_logon]\n  group-by: [user]\n  timespan: 30s\n  generate: true\n"
        )
    };
    let fail_then_ok = [logon(1, "bob", "fail", "x"), logon(5, "bob", "ok", "x")];
    let ok_then_fail = [logon(1, "bob", "ok", "x"), logon(5, "bob", "fail", "x")];
    let count = |rules: &[&str], events: &[Value]| {
        hunt(rules, events)
            .iter()
            .filter(|(t, _)| t == "fail then success")
            .count()
    };
    assert_eq!(
        count(
            &[FAILED_LOGON, success, &temporal("temporal")],
            &ok_then_fail
        ),
        1
    );
    assert_eq!(
        count(
            &[FAILED_LOGON, success, &temporal("temporal_ordered")],
            &fail_then_ok
        ),
        1
    );
    assert_eq!(
        count(
            &[FAILED_LOGON, success, &temporal("temporal_ordered")],
            &ok_then_fail
        ),
        0
    );
    // generate: true keeps the referenced rules' findings as well.
    assert_eq!(
        hunt(
            &[FAILED_LOGON, success, &temporal("temporal")],
            &fail_then_ok
        )
        .len(),
        3
    );
}

#[test]
fn filter_rules_suppress_known_good() {
    let rule = "title: admin tool\nid: 22222222-0000-0000-0000-000000000001\nlogsource: {product: test}\ndetection:\n  sel: {Image|endswith: psexec.exe}\n  condition: sel\n";
    let filter = "title: jump host\nfilter:\n  rules: [22222222-0000-0000-0000-000000000001]\n  selection: {Host: JUMP01}\n  condition: not selection\n";
    let events = [
        json!({"Image": "c:\\psexec.exe", "Host": "JUMP01"}),
        json!({"Image": "c:\\psexec.exe", "Host": "PC7"}),
    ];
    let findings = hunt(&[rule, filter], &events);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].1["Host"], json!("PC7"));
}

#[test]
fn correlation_groups_security_4688_events_by_sigma_field_names() {
    let rule = "title: shell\nname: shell\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel: {Image|endswith: '\\cmd.exe'}\n  condition: sel\n";
    let correlation = "title: shell storm\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [shell]\n  group-by: [Image]\n  timespan: 1m\n  condition: {gte: 2}\n";
    let event = |second: u32, record: u32| {
        json!({"Event": {"System": {"EventID": 4688, "Channel": "Security", "Computer": "DC01", "EventRecordID": record,
            "TimeCreated": {"#attributes": {"SystemTime": format!("2022-02-23T04:00:{second:02}Z")}}},
            "EventData": {"NewProcessName": "C:\\Windows\\System32\\cmd.exe"}}})
    };
    let findings = hunt(&[rule, correlation], &[event(1, 1), event(2, 2)]);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        findings[0].1["group"]["Image"],
        json!("C:\\Windows\\System32\\cmd.exe")
    );
}

#[test]
fn the_rule_cache_is_used_invalidated_by_content_and_survives_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_dir = dir.path().join("rules");
    let cache = dir.path().join("cache");
    std::fs::create_dir(&rules_dir).expect("mkdir");
    let rule = |n: u32, value: &str| {
        format!(
            "title: rule {n}\nid: 00000000-0000-0000-0000-00000000000{n}\nlogsource: {{product: test}}\nlevel: high\ndetection:\n  sel: {{CommandLine|contains: '{value}'}}\n  condition: sel\n"
        )
    };
    std::fs::write(rules_dir.join("a.yml"), rule(1, "mimikatz")).expect("write");
    std::fs::write(rules_dir.join("b.yml"), rule(2, "vssadmin")).expect("write");
    let load = || {
        RuleLoader::new()
            .path(&rules_dir)
            .cache_dir(&cache)
            .load()
            .expect("rules")
    };
    let fired = |rules: &crrt_hunt::RuleSet, command: &str| {
        let record = Record {
            kind: RecordKind::Json,
            fields: crrt_hunt::Fields::Json(json!({"CommandLine": command})),
            timestamp: None,
            position: 1,
        };
        let mut titles: Vec<String> = rules
            .matches(&record)
            .into_iter()
            .map(|r| r.header.rule_title)
            .collect();
        titles.sort();
        titles
    };

    let cold = load();
    assert_eq!(cold.counts().cached_files, 0);
    assert_eq!(cold.cache_problem(), None);
    let warm = load();
    assert_eq!(warm.counts().cached_files, 2);
    assert_eq!(fired(&warm, "x mimikatz y"), ["rule 1"]);
    assert_eq!(fired(&warm, "vssadmin delete shadows"), ["rule 2"]);

    // An edited rule is read again; the other still comes from the cache.
    std::fs::write(rules_dir.join("b.yml"), rule(2, "wbadmin")).expect("write");
    let edited = load();
    assert_eq!(edited.counts().cached_files, 1);
    assert!(fired(&edited, "vssadmin delete shadows").is_empty());
    assert_eq!(fired(&edited, "wbadmin delete catalog"), ["rule 2"]);

    // A damaged cache file is ignored, then rewritten.
    for entry in std::fs::read_dir(&cache).expect("cache dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
    }
    let after_damage = load();
    assert_eq!(after_damage.counts().cached_files, 0);
    assert_eq!(fired(&after_damage, "wbadmin delete catalog"), ["rule 2"]);
    assert_eq!(load().counts().cached_files, 2);

    // A rule's body damaged inside a sound cache file is decoded only when
    // the rule is first needed: it is then reported, never silently lost.
    for entry in std::fs::read_dir(&cache).expect("cache dir") {
        let path = entry.expect("entry").path();
        let mut bytes = std::fs::read(&path).expect("read");
        let (from, to) = (b"\"Contains\"", b"\"Containz\"");
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("a contains matcher in the cached IR");
        bytes[at..at + to.len()].copy_from_slice(to);
        std::fs::write(&path, bytes).expect("write");
    }
    let damaged_rule = load();
    assert_eq!(damaged_rule.counts().cached_files, 2);
    let fired_now = [
        fired(&damaged_rule, "x mimikatz y"),
        fired(&damaged_rule, "wbadmin delete catalog"),
    ];
    let problems: Vec<String> = damaged_rule
        .diagnostics()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("unreadable cached rule"),
        "{problems:?}"
    );
    assert_eq!(
        fired_now.iter().map(Vec::len).sum::<usize>(),
        1,
        "the other rule still fires: {fired_now:?}"
    );
}

#[test]
fn a_rule_with_an_invalid_regex_is_reported_at_load() {
    let rules = RuleLoader::new()
        .yaml(
            "bad-regex.yml",
            "title: bad regex\nlogsource: {product: test}\ndetection:\n  sel: {Image|endswith: '\\x.exe', CommandLine|re: '(unclosed'}\n  condition: sel\n",
        )
        .yaml(
            "bad-cidr.yml",
            "title: bad cidr\nlogsource: {product: test}\ndetection:\n  sel: {SourceIp|cidr: '10.0.0.0/99'}\n  condition: sel\n",
        )
        .load()
        .expect("loading goes on");
    assert_eq!(rules.detection_rule_count(), 0);
    let problems: Vec<String> = rules.diagnostics().iter().map(|d| d.to_string()).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("bad-cidr.yml") && problems[0].contains("CIDR"),
        "{problems:?}"
    );
    assert!(
        problems[1].contains("bad-regex.yml") && problems[1].contains("regex"),
        "{problems:?}"
    );
}

/// Cases where the prefilter (gates on literals, numbers, keywords and regex
/// prefixes) could wrongly skip a rule; each must fire as rsigma says.
#[test]
fn prefilter_never_hides_a_match() {
    // Numbers: event ids as integers, floats and numeric strings.
    for id in [json!(4688), json!(4688.0), json!("4688"), json!(" 4688")] {
        let expected = id != json!(" 4688");
        check(
            "  sel: {EventID: 4688}\n  condition: sel",
            json!({"EventID": id}),
            expected,
        );
    }
    check(
        "  sel: {EventID: [4688, 1]}\n  condition: sel",
        json!({"EventID": [7, 1]}),
        true,
    );
    check(
        "  sel: {EventID: 0}\n  condition: sel",
        json!({"EventID": 0}),
        true,
    );
    // Two conditions: both gate, either alone is not enough.
    let both = "  img: {Image|endswith: '\\powershell.exe'}\n  cmd: {CommandLine|contains: ' -enc '}\n  condition: img and cmd";
    check(
        both,
        json!({"Image": "C:\\powershell.exe", "CommandLine": "x -enc y"}),
        true,
    );
    check(
        both,
        json!({"Image": "C:\\powershell.exe", "CommandLine": "x"}),
        false,
    );
    // ...and an `or` of two `and`s still finds each branch.
    let branches = "  a: {A: alpha}\n  b: {B: bravo}\n  c: {C: charlie}\n  d: {D: delta}\n  condition: (a and b) or (c and d)";
    check(branches, json!({"C": "charlie", "D": "delta"}), true);
    check(branches, json!({"A": "alpha", "D": "delta"}), false);
    // Keywords are searched in every string value, nested too.
    check(
        "  keywords: [mimikatz]\n  condition: keywords",
        json!({"X": {"Y": ["a", "MIMIKATZ.exe"]}}),
        true,
    );
    // Regex prefixes, case-insensitive, and alternations.
    check(
        "  sel: {CommandLine|re|i: '(vssadmin|wbadmin)\\s+delete'}\n  condition: sel",
        json!({"CommandLine": "WBADMIN  DELETE catalog"}),
        true,
    );
    // Long `contains` lists (regrouped before compiling): any value fires.
    let values: Vec<String> = (0..20).map(|i| format!("'needle{i:02}'")).collect();
    let list = format!(
        "  sel: {{CommandLine|contains: [{}]}}\n  condition: sel",
        values.join(", ")
    );
    for i in [0, 6, 7, 13, 19] {
        check(
            &list,
            json!({"CommandLine": format!("x NEEDLE{i:02} y")}),
            true,
        );
    }
    check(&list, json!({"CommandLine": "x needle20 y"}), false);
    // Literals inside a regex, not only its prefix, and case folding.
    let inner =
        "  sel: {CommandLine|re: '\\.exe\\s+.*werfaultsecure\\.exe\\s+\\d+'}\n  condition: sel";
    check(
        inner,
        json!({"CommandLine": "w.exe  C:\\werfaultsecure.exe 612"}),
        true,
    );
    check(
        inner,
        json!({"CommandLine": "w.exe  C:\\werfault.exe 612"}),
        false,
    );
    let folded = "  sel: {CommandLine|re|i: 'set.*&&\\s?set'}\n  condition: sel";
    check(
        folded,
        json!({"CommandLine": "cmd /c SET a=1&& set b"}),
        true,
    );
    check(
        folded,
        json!({"CommandLine": "cmd /c \u{17F}ET a=1&& \u{17F}et b"}),
        true,
    );
    check(
        "  sel: {CommandLine|re: '\\w+`(?:\\w+|-|.)`[\\w+|\\s]'}\n  condition: sel",
        json!({"CommandLine": "IN`V`o`Ke-eXp`ResSIOn"}),
        true,
    );
    // Windash: any dash variant, the text between dashes is what gates.
    check(
        "  sel: {CommandLine|windash|contains: ' -accepteula'}\n  condition: sel",
        json!({"CommandLine": "psexec /accepteula"}),
        true,
    );
    // Base64 at each of the three alignments, of UTF-16 too, and values
    // too short to gate on.
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    for (encodings, value, wide) in [
        ("base64offset|contains", "Set-MpPreference", false),
        ("wide|base64offset|contains", "IEX (", true),
        ("base64offset|contains", "ab", false),
        ("base64|contains", "whoami", false),
        ("wide|base64|contains", "whoami", true),
    ] {
        let detection = format!("  sel: {{CommandLine|{encodings}: '{value}'}}\n  condition: sel");
        let bytes: Vec<u8> = if wide {
            value.encode_utf16().flat_map(u16::to_le_bytes).collect()
        } else {
            value.as_bytes().to_vec()
        };
        let offsets = if encodings.contains("offset") {
            0..3
        } else {
            0..1
        };
        for offset in offsets {
            let mut text = b"xyz"[..offset].to_vec();
            text.extend_from_slice(&bytes);
            text.extend_from_slice(b"tail");
            let event = json!({"CommandLine": format!("powershell -e {}", b64(&text))});
            check(&detection, event, true);
        }
        check(
            &detection,
            json!({"CommandLine": "powershell -e AAAA"}),
            false,
        );
    }
    // Non-ASCII values: Unicode case folding (the Kelvin sign is a `k`).
    check(
        "  sel: {CommandLine|contains: 'kill'}\n  condition: sel",
        json!({"CommandLine": "\u{212A}ILL"}),
        true,
    );
    check(
        "  sel: {CommandLine|contains: '*kill*x'}\n  condition: sel",
        json!({"CommandLine": "\u{212A}illx"}),
        true,
    );
    check(
        "  sel: {CommandLine|contains: '*ss*x'}\n  condition: sel",
        json!({"CommandLine": "\u{17F}Sx"}),
        true,
    );
    check(
        "  sel: {CommandLine|contains: 'xi\u{307}y'}\n  condition: sel",
        json!({"CommandLine": "X\u{130}Y"}),
        true,
    );
    // A pair of conditions or a single one: either fires, half a pair
    // does not. Five `|all` values: each is needed.
    let pair_or_single = "  sel_pair:\n    Image|contains: '\\windows\\'\n    CommandLine|contains: '\\..\\'\n  sel_single:\n    CommandLine|contains: '.exe\\..\\'\n  condition: 1 of sel_*";
    check(
        pair_or_single,
        json!({"Image": "C:\\tools\\x.exe", "CommandLine": "a.exe\\..\\b"}),
        true,
    );
    check(
        pair_or_single,
        json!({"Image": "C:\\Windows\\x.exe", "CommandLine": "a\\..\\b"}),
        true,
    );
    check(
        pair_or_single,
        json!({"Image": "C:\\Windows\\x.exe", "CommandLine": "a b"}),
        false,
    );
    check(
        pair_or_single,
        json!({"Image": "C:\\tools\\x.exe", "CommandLine": "a\\..\\b"}),
        false,
    );
    let five =
        "  sel: {CommandLine|contains|all: [alpha, bravo, charlie, delta, echo]}\n  condition: sel";
    check(
        five,
        json!({"CommandLine": "echo delta charlie bravo alpha"}),
        true,
    );
    check(
        five,
        json!({"CommandLine": "echo delta charlie bravo"}),
        false,
    );
    check(
        five,
        json!({"CommandLine": "delta charlie bravo alpha"}),
        false,
    );
    // Literals of two bytes (in most values, and searched at every byte
    // among longer anchors) are matched, alone or beside a longer one.
    let short = "  sel: {CommandLine|contains: '^^'}\n  condition: sel";
    check(short, json!({"CommandLine": "ec^^ho"}), true);
    check(short, json!({"CommandLine": "ec^ho"}), false);
    let beside = "  sel: {CommandLine|contains|all: ['-e', 'bypass']}\n  condition: sel";
    check(beside, json!({"CommandLine": "ps -ep bypass"}), true);
    check(beside, json!({"CommandLine": "ps /ep bypass"}), false);
    check(beside, json!({"CommandLine": "ps -ep unrestricted"}), false);
    // Literals of cased letters beyond ASCII alone (Cyrillic homoglyphs)
    // wait for a value beyond ASCII, in either case; a lone Kelvin sign
    // lowercases to `k` and still finds plain text.
    let homoglyph = "  sel: {CommandLine|contains: ['\u{430}', '\u{435}']}\n  condition: sel";
    check(homoglyph, json!({"CommandLine": "p\u{430}ssword"}), true);
    check(homoglyph, json!({"CommandLine": "P\u{410}SSWORD"}), true);
    check(homoglyph, json!({"CommandLine": "password"}), false);
    check(homoglyph, json!({"CommandLine": "p\u{AE}ssword"}), false);
    check(
        "  sel: {CommandLine|contains: '\u{212A}'}\n  condition: sel",
        json!({"CommandLine": "kill"}),
        true,
    );
    // Other non-ASCII text is searched as it is: a literal beside `®` or
    // Cyrillic is still found, and one that is not there still is not.
    let product = "  sel: {Product|contains: 'windows op'}\n  condition: sel";
    check(
        product,
        json!({"Product": "MICROSOFT\u{AE} WINDOWS OPERATING SYSTEM"}),
        true,
    );
    check(
        product,
        json!({"Product": "Microsoft\u{AE} Windows\u{AE} Operating System"}),
        false,
    );
    check(
        product,
        json!({"Product": "\u{421}\u{438}\u{441}\u{442}\u{435}\u{43C}\u{430} Windows Op"}),
        true,
    );
    check(
        product,
        json!({"Product": "\u{AE} \u{212A} Windows Op"}),
        true,
    );
    // Caseless non-ASCII literals (Braille blank) gate without folding.
    check(
        "  sel: {Image|endswith: '\u{2800}\u{2800}.exe'}\n  condition: sel",
        json!({"Image": "a\u{2800}\u{2800}.exe"}),
        true,
    );
    // Numbers compared as text.
    check(
        "  sel: {Port|contains: '44'}\n  condition: sel",
        json!({"Port": 4443}),
        true,
    );
}

#[test]
fn a_cancelled_hunt_stops_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.jsonl");
    let lines: Vec<String> = (0..5000)
        .map(|i| json!({"CommandLine": format!("whoami {i}")}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).expect("write");
    let rules = RuleLoader::new()
        .yaml(
            "r.yml",
            "title: w\nlogsource: {product: test}\ndetection:\n  sel: {CommandLine|contains: whoami}\n  condition: sel\n",
        )
        .load()
        .expect("rules");
    let evidence = discover(&[path]).expect("evidence");
    let progress = Progress::default();
    progress.cancel();
    let report = Hunter::new(&rules).run(&evidence, &progress);
    assert!(report.findings.is_empty());
    let full = Hunter::new(&rules).run(&evidence, &Progress::default());
    assert_eq!(full.findings.len(), 5000);
}
