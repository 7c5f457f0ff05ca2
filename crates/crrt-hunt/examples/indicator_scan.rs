//! Where an indicator hunt's time goes, without the noise of a whole
//! `crrt hunt`: the evidence read with no rules, then read again matching
//! a plain list of indicators, each several times in one process; prints
//! the best time of each and the set's build time.
//!
//! `cargo run --release -p crrt-hunt --example indicator_scan -- LIST PATH...`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crrt_hunt::{Hunter, IndicatorSet, IndicatorSpec, Progress, RuleLoader, discover};
use crrt_intel::Observable;

fn main() {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(list), paths) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: indicator_scan LIST PATH...");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&list).expect("the list");
    let specs: Vec<IndicatorSpec> = text
        .lines()
        .filter_map(|line| Observable::parse_line(line).ok())
        .map(|observable| IndicatorSpec {
            id: observable.value.clone(),
            observable,
            tags: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    let set = IndicatorSet::new(specs);
    let built = started.elapsed();
    let rules = RuleLoader::new().allow_no_rules().load().expect("no rules");
    let evidence = discover(&paths).expect("the evidence");
    let best = |hunter: &Hunter| {
        let mut best = Duration::MAX;
        let mut findings = 0;
        for _ in 0..7 {
            let started = Instant::now();
            let report = hunter.run(&evidence, &Progress::default());
            best = best.min(started.elapsed());
            findings = report.findings.len();
        }
        (best, findings)
    };
    let (plain, _) = best(&Hunter::new(&rules));
    let (with, findings) = best(&Hunter::new(&rules).indicators(&set));
    println!(
        "{} indicators built in {:.1} ms; reading {:.1} ms, reading and matching {:.1} ms ({findings} findings)",
        set.len(),
        built.as_secs_f64() * 1e3,
        plain.as_secs_f64() * 1e3,
        with.as_secs_f64() * 1e3,
    );
}
