//! Access logs of a ministry's site during an attack: an hour of ordinary
//! visitors with a flood, a flash crowd and one scanner in it. The hunt must
//! report the top talkers and exactly three spikes, each told apart.

use std::fmt::Write as _;
use std::path::PathBuf;

use crrt_hunt::{Hunter, Progress, RuleLoader, Verdict, discover};

/// A combined-format line.
fn line(
    out: &mut String,
    minute: u32,
    second: u32,
    ip: &str,
    path: &str,
    status: u16,
    agent: &str,
) {
    let _ = writeln!(
        out,
        "{ip} - - [24/Feb/2022:{:02}:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" {status} 512 \"-\" \"{agent}\"",
        4 + minute / 60,
        minute % 60,
        second
    );
}

fn log() -> String {
    let mut out = String::new();
    for minute in 0..90 {
        // Ordinary visitors: ten a minute from thirty addresses.
        for n in 0..10 {
            let visitor = (minute * 7 + n) % 30;
            line(
                &mut out,
                minute,
                n * 5,
                &format!("198.51.100.{visitor}"),
                &format!("/news/{}", n % 7),
                200,
                &format!("Mozilla/5.0 visitor {}", visitor % 10),
            );
        }
        match minute {
            // The flood: 2,000 bots, one user agent, the front page, the server failing.
            20..=24 => {
                for n in 0..2400u32 {
                    let status = if n % 3 == 0 { 200 } else { 503 };
                    line(
                        &mut out,
                        minute,
                        n % 60,
                        &format!("10.{}.{}.{}", n % 2000 / 250, n % 250, minute),
                        "/",
                        status,
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                    );
                }
            }
            // News breaks: 400 people reading many pages with their own browsers.
            45..=48 => {
                for n in 0..500u32 {
                    line(
                        &mut out,
                        minute,
                        n % 60,
                        &format!("203.0.113.{}", n % 250),
                        &format!("/news/statement-{}", n % 25),
                        200,
                        &format!("Mozilla/5.0 reader {}", n % 97),
                    );
                }
            }
            // One scanner walking paths.
            70..=71 => {
                for n in 0..400u32 {
                    line(
                        &mut out,
                        minute,
                        n % 60,
                        "192.0.2.66",
                        &format!("/wp-admin/{n}.php"),
                        404,
                        "sqlmap/1.6",
                    );
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn a_flood_a_flash_crowd_and_a_scanner_are_told_apart() {
    let dir = tempfile::tempdir().expect("dir");
    let path: PathBuf = dir.path().join("access.log");
    std::fs::write(&path, log()).expect("write");
    let rules = RuleLoader::new().allow_no_rules().load().expect("no rules");
    let evidence = discover(&[path]).expect("discover");
    let report = Hunter::new(&rules).run(&evidence, &Progress::default());

    let [site] = &report.traffic[..] else {
        panic!("one site: {:?}", report.traffic)
    };
    assert_eq!(site.median_per_minute, 10);
    assert_eq!(
        site.top_sources[0],
        ("192.0.2.66".to_owned(), 800),
        "the scanner talks most"
    );
    let verdicts: Vec<Verdict> = site.spikes.iter().map(|spike| spike.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::Flood, Verdict::FlashCrowd, Verdict::OneSource],
        "{:#?}",
        site.spikes
    );

    let flood = &site.spikes[0];
    assert_eq!(
        crrt_hunt::format_timestamp(flood.start),
        "2022-02-24T04:20:00.000000Z"
    );
    assert_eq!(
        crrt_hunt::format_timestamp(flood.end),
        "2022-02-24T04:24:00.000000Z"
    );
    assert_eq!(flood.requests, 5 * 2410);
    assert_eq!(flood.top_paths[0].0, "/");
    assert!(
        flood
            .reasons
            .iter()
            .any(|reason| reason.starts_with("errors rising")),
        "{:?}",
        flood.reasons
    );

    // Each spike is a finding too, so it reaches JSONL, CSV and the platform.
    let traffic: Vec<(&str, &str)> = report
        .findings
        .iter()
        .filter_map(|finding| Some((finding.rule_id.as_deref()?, finding.level.as_str())))
        .filter(|(rule, _)| rule.starts_with("traffic:"))
        .collect();
    assert_eq!(
        traffic,
        [
            ("traffic:flood", "high"),
            ("traffic:flash-crowd", "informational"),
            ("traffic:one-source", "medium")
        ]
    );
    let finding = report
        .findings
        .iter()
        .find(|finding| finding.rule_id.as_deref() == Some("traffic:flood"))
        .expect("flood");
    assert!(
        finding
            .rule_title
            .starts_with("HTTP flood: 12050 requests in 5 minutes from"),
        "{}",
        finding.rule_title
    );
    assert!(finding.tags.contains(&"attack.t1499.002".to_owned()));
    assert_eq!(finding.event["top_paths"][0]["value"], "/");
}

#[test]
fn ordinary_traffic_has_no_spike() {
    let mut out = String::new();
    for minute in 0..60 {
        for n in 0..(20 + minute % 7) {
            line(
                &mut out,
                minute,
                n,
                &format!("198.51.100.{}", n % 40),
                "/",
                200,
                "Mozilla/5.0",
            );
        }
    }
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("access.log");
    std::fs::write(&path, out).expect("write");
    let rules = RuleLoader::new().allow_no_rules().load().expect("no rules");
    let report =
        Hunter::new(&rules).run(&discover(&[path]).expect("discover"), &Progress::default());
    assert!(
        report.traffic[0].spikes.is_empty(),
        "{:?}",
        report.traffic[0].spikes
    );
    assert!(report.findings.is_empty());
}

#[test]
fn a_stray_1970_timestamp_does_not_make_millions_of_minutes() {
    let mut out = String::from(
        "10.0.0.1 - - [01/Jan/1970:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"\n",
    );
    for minute in 0..30 {
        for n in 0..20 {
            line(&mut out, minute, n, "198.51.100.1", "/", 200, "Mozilla/5.0");
        }
    }
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("access.log");
    std::fs::write(&path, out).expect("write");
    let rules = RuleLoader::new().allow_no_rules().load().expect("no rules");
    let report =
        Hunter::new(&rules).run(&discover(&[path]).expect("discover"), &Progress::default());
    let site = &report.traffic[0];
    assert_eq!((site.requests, site.median_per_minute), (601, 0));
    assert!(site.spikes.is_empty(), "{:?}", site.spikes);
}
