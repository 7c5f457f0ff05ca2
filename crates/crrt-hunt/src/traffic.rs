//! Web access logs read as traffic: requests per minute for each site, its
//! top talkers, and the windows where traffic spiked, each told apart as a
//! flood (many sources, few user agents, one path, rising errors), a flash
//! crowd of diverse real visitors, or one source hammering the site.
//!
//! The hunt feeds every access-log record to a [`TrafficCounter`] (batches
//! merged under one lock); [`TrafficCounter::finish`] turns the counts into
//! [`TrafficReport`]s and each spike into a [`Finding`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::finding::{Finding, Severity};
use crate::record::{Record, RecordKind};

/// Distinct sources, agents or paths counted per minute at most; past it,
/// new ones are counted together, and the distinct counts are lower bounds.
const MAX_KEYS_PER_MINUTE: usize = 50_000;
/// Distinct sources counted per site over the whole log at most.
const MAX_SOURCES: usize = 1_000_000;
/// A minute is a spike above this many times the site's median minute ...
const SPIKE_FACTOR: u64 = 4;
/// ... and above this many requests (one a second).
const SPIKE_FLOOR: u64 = 60;

/// One site's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficReport {
    /// The site's host name as logged (`cs-host`, the server), or empty.
    pub host: String,
    pub requests: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// Requests in the median minute between the first and last request.
    pub median_per_minute: u64,
    /// The busiest sources over the whole log, with their requests.
    pub top_sources: Vec<(String, u64)>,
    pub spikes: Vec<Spike>,
}

/// Consecutive minutes of traffic far above the site's usual.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    pub start: Timestamp,
    /// The start of the last minute in the spike.
    pub end: Timestamp,
    pub requests: u64,
    pub peak_per_minute: u64,
    pub sources: usize,
    pub user_agents: usize,
    pub top_sources: Vec<(String, u64)>,
    pub top_paths: Vec<(String, u64)>,
    pub top_user_agents: Vec<(String, u64)>,
    /// Share of 5xx and 429 answers in the spike, and outside spikes.
    pub error_rate: f64,
    pub usual_error_rate: f64,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

/// What a spike looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Many sources, few user agents, one path, rising errors: an attack.
    Flood,
    /// Most requests from one source: a scanner or a single-host attack.
    OneSource,
    /// Many sources with diverse agents and paths, errors not rising:
    /// real visitors (news, a link shared widely).
    FlashCrowd,
    /// Signs of both.
    Unclear,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Flood => "flood",
            Verdict::OneSource => "one-source",
            Verdict::FlashCrowd => "flash-crowd",
            Verdict::Unclear => "spike",
        }
    }
}

#[derive(Debug, Default)]
struct Minute {
    requests: u64,
    errors: u64,
    sources: HashMap<Box<str>, u64>,
    agents: HashMap<Box<str>, u64>,
    paths: HashMap<Box<str>, u64>,
}

#[derive(Debug, Default)]
struct Site {
    minutes: BTreeMap<i64, Minute>,
    sources: HashMap<Box<str>, u64>,
    /// Requests per evidence file, to name the file a spike is in.
    files: HashMap<String, u64>,
}

/// Counts access-log records as they are read, from many threads.
#[derive(Debug, Default)]
pub struct TrafficCounter {
    sites: Mutex<HashMap<String, Site>>,
}

fn bump(map: &mut HashMap<Box<str>, u64>, key: &str, by: u64, cap: usize) {
    if let Some(count) = map.get_mut(key) {
        *count += by;
    } else if map.len() < cap {
        map.insert(key.into(), by);
    } else {
        *map.entry("(others)".into()).or_default() += by;
    }
}

fn text<'a>(record: &'a Record, name: &str) -> &'a str {
    record
        .fields
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("-")
}

impl TrafficCounter {
    /// Counts the access-log records of a batch; others are ignored.
    pub fn add<'a>(&self, evidence: &str, records: impl Iterator<Item = &'a Record>) {
        let mut local: HashMap<String, Site> = HashMap::new();
        for record in records.filter(|record| record.kind == RecordKind::WebAccess) {
            let Some(timestamp) = record.timestamp else {
                continue;
            };
            let site = local.entry(record.host().unwrap_or_default()).or_default();
            let minute = site
                .minutes
                .entry(timestamp.as_second().div_euclid(60))
                .or_default();
            minute.requests += 1;
            let status = record
                .fields
                .get("sc-status")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if status >= 500 || status == 429 {
                minute.errors += 1;
            }
            let source = text(record, "c-ip");
            bump(&mut minute.sources, source, 1, MAX_KEYS_PER_MINUTE);
            bump(
                &mut minute.agents,
                text(record, "cs-user-agent"),
                1,
                MAX_KEYS_PER_MINUTE,
            );
            bump(
                &mut minute.paths,
                text(record, "cs-uri-stem"),
                1,
                MAX_KEYS_PER_MINUTE,
            );
            bump(&mut site.sources, source, 1, MAX_SOURCES);
            *site.files.entry(evidence.to_owned()).or_default() += 1;
        }
        if local.is_empty() {
            return;
        }
        let mut sites = self
            .sites
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (host, batch) in local {
            let site = sites.entry(host).or_default();
            for (key, minute) in batch.minutes {
                let into = site.minutes.entry(key).or_default();
                into.requests += minute.requests;
                into.errors += minute.errors;
                for (map, from) in [
                    (&mut into.sources, minute.sources),
                    (&mut into.agents, minute.agents),
                    (&mut into.paths, minute.paths),
                ] {
                    for (key, count) in from {
                        bump(map, &key, count, MAX_KEYS_PER_MINUTE);
                    }
                }
            }
            for (key, count) in batch.sources {
                bump(&mut site.sources, &key, count, MAX_SOURCES);
            }
            for (file, count) in batch.files {
                *site.files.entry(file).or_default() += count;
            }
        }
    }

    /// The reports, by host, and a finding per spike.
    pub fn finish(self) -> (Vec<TrafficReport>, Vec<Finding>) {
        let sites = self
            .sites
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut reports = Vec::new();
        let mut findings = Vec::new();
        let mut hosts: Vec<_> = sites.into_iter().collect();
        hosts.sort_by(|a, b| a.0.cmp(&b.0));
        for (host, site) in hosts {
            let Some(report) = analyse(&host, &site) else {
                continue;
            };
            let file = site
                .files
                .iter()
                .max_by_key(|(name, count)| (**count, std::cmp::Reverse((*name).clone())))
                .map(|(name, _)| name.clone())
                .unwrap_or_default();
            findings.extend(
                report
                    .spikes
                    .iter()
                    .map(|spike| spike_finding(&report, spike, &file)),
            );
            reports.push(report);
        }
        (reports, findings)
    }
}

fn top(map: &HashMap<Box<str>, u64>, n: usize) -> Vec<(String, u64)> {
    let mut all: Vec<_> = map
        .iter()
        .map(|(key, count)| (key.to_string(), *count))
        .collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

fn minute_time(key: i64) -> Timestamp {
    Timestamp::from_second(key * 60).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn analyse(host: &str, site: &Site) -> Option<TrafficReport> {
    let (&first, _) = site.minutes.first_key_value()?;
    let (&last, _) = site.minutes.last_key_value()?;
    // Quiet minutes between the first and last request count as zero; they
    // are counted, not stored (a stray 1970 timestamp spans millions).
    let span = u64::try_from(last - first + 1).ok()?;
    let mut counts: Vec<u64> = site
        .minutes
        .values()
        .map(|minute| minute.requests)
        .collect();
    counts.sort_unstable();
    let zeros = span - counts.len() as u64;
    let middle = span / 2;
    let median = if middle < zeros {
        0
    } else {
        counts[usize::try_from(middle - zeros).ok()?]
    };
    let threshold = (median * SPIKE_FACTOR).max(SPIKE_FLOOR);
    let requests: u64 = counts.iter().sum();

    // Runs of spiking minutes; a single calmer minute inside a run joins it.
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for (&key, minute) in &site.minutes {
        if minute.requests <= threshold {
            continue;
        }
        match runs.last_mut() {
            Some((_, end)) if key - *end <= 2 => *end = key,
            _ => runs.push((key, key)),
        }
    }
    let in_spike = |key: i64| {
        runs.iter()
            .any(|(start, end)| (*start..=*end).contains(&key))
    };
    let (calm_requests, calm_errors) = site
        .minutes
        .iter()
        .filter(|(key, _)| !in_spike(**key))
        .fold((0u64, 0u64), |(r, e), (_, minute)| {
            (r + minute.requests, e + minute.errors)
        });
    let usual_error_rate = if calm_requests == 0 {
        0.0
    } else {
        calm_errors as f64 / calm_requests as f64
    };

    let spikes = runs
        .into_iter()
        .map(|(start, end)| {
            let mut merged = Minute::default();
            let mut peak = 0;
            for minute in site.minutes.range(start..=end).map(|(_, minute)| minute) {
                merged.requests += minute.requests;
                merged.errors += minute.errors;
                peak = peak.max(minute.requests);
                for (into, from) in [
                    (&mut merged.sources, &minute.sources),
                    (&mut merged.agents, &minute.agents),
                    (&mut merged.paths, &minute.paths),
                ] {
                    for (key, count) in from {
                        bump(into, key, *count, MAX_SOURCES);
                    }
                }
            }
            judge(
                minute_time(start),
                minute_time(end),
                &merged,
                peak,
                usual_error_rate,
            )
        })
        .collect();
    Some(TrafficReport {
        host: host.to_owned(),
        requests,
        first: minute_time(first),
        last: minute_time(last),
        median_per_minute: median,
        top_sources: top(&site.sources, 10),
        spikes,
    })
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

fn judge(
    start: Timestamp,
    end: Timestamp,
    window: &Minute,
    peak: u64,
    usual_error_rate: f64,
) -> Spike {
    let requests = window.requests.max(1);
    let share = |map: &HashMap<Box<str>, u64>| {
        top(map, 1)
            .first()
            .map_or(0.0, |(_, count)| *count as f64 / requests as f64)
    };
    let sources = window.sources.len();
    let agents = window.agents.len();
    let source_share = share(&window.sources);
    let agent_share = share(&window.agents);
    let path_share = share(&window.paths);
    let error_rate = window.errors as f64 / requests as f64;

    let many_sources = sources >= 20;
    let few_agents = agents <= (sources / 20).max(3) || agent_share >= 0.8;
    let one_path = path_share >= 0.5;
    let rising_errors = error_rate >= (usual_error_rate * 3.0).max(0.05);
    let top_path = top(&window.paths, 1).pop().unwrap_or_default().0;
    let top_agent = top(&window.agents, 1).pop().unwrap_or_default().0;
    let top_source = top(&window.sources, 1).pop().unwrap_or_default().0;

    let mut reasons = vec![format!(
        "{sources} sources, {agents} user agents, peak {peak} requests a minute"
    )];
    if few_agents {
        reasons.push(format!(
            "few user agents: {} of requests from {top_agent:?}",
            percent(agent_share)
        ));
    } else {
        reasons.push(format!(
            "diverse user agents (the commonest {})",
            percent(agent_share)
        ));
    }
    if one_path {
        reasons.push(format!(
            "one path: {} of requests for {top_path}",
            percent(path_share)
        ));
    } else {
        reasons.push(format!(
            "diverse paths (the commonest {})",
            percent(path_share)
        ));
    }
    if rising_errors {
        reasons.push(format!(
            "errors rising: {} of answers 5xx or 429, usually {}",
            percent(error_rate),
            percent(usual_error_rate)
        ));
    } else {
        reasons.push(format!("errors as usual: {}", percent(error_rate)));
    }
    let verdict = if source_share >= 0.5 {
        reasons.insert(
            0,
            format!(
                "one source: {} of requests from {top_source}",
                percent(source_share)
            ),
        );
        Verdict::OneSource
    } else {
        let signs = [few_agents, one_path, rising_errors]
            .iter()
            .filter(|sign| **sign)
            .count();
        match (many_sources, signs) {
            (true, 2..) => Verdict::Flood,
            (true, 0) => Verdict::FlashCrowd,
            _ => Verdict::Unclear,
        }
    };
    Spike {
        start,
        end,
        requests: window.requests,
        peak_per_minute: peak,
        sources,
        user_agents: agents,
        top_sources: top(&window.sources, 5),
        top_paths: top(&window.paths, 5),
        top_user_agents: top(&window.agents, 5),
        error_rate,
        usual_error_rate,
        verdict,
        reasons,
    }
}

fn spike_finding(report: &TrafficReport, spike: &Spike, file: &str) -> Finding {
    let minutes = (spike.end.as_second() - spike.start.as_second()) / 60 + 1;
    let (title, level, mut tags) = match spike.verdict {
        Verdict::Flood => (
            "HTTP flood",
            Severity::High,
            vec!["attack.impact", "attack.t1499.002"],
        ),
        Verdict::OneSource => (
            "Traffic spike from one source",
            Severity::Medium,
            vec!["attack.impact", "attack.t1499.002"],
        ),
        Verdict::FlashCrowd => (
            "Flash crowd (diverse visitors)",
            Severity::Informational,
            Vec::new(),
        ),
        Verdict::Unclear => ("Traffic spike", Severity::Medium, Vec::new()),
    };
    tags.insert(0, "traffic");
    let pairs = |list: &[(String, u64)]| {
        list.iter()
            .map(|(key, count)| json!({"value": key, "requests": count}))
            .collect::<Vec<_>>()
    };
    Finding {
        timestamp: Some(spike.start),
        host: (!report.host.is_empty()).then(|| report.host.clone()),
        channel: Some("webserver".into()),
        event_id: None,
        record_id: None,
        rule_id: Some(format!("traffic:{}", spike.verdict.as_str())),
        rule_title: format!(
            "{title}: {} requests in {minutes} minute{} from {} sources",
            spike.requests,
            if minutes == 1 { "" } else { "s" },
            spike.sources
        ),
        level,
        tags: tags.into_iter().map(str::to_owned).collect(),
        evidence_file: file.to_owned(),
        event: json!({
            "start": crate::time::format_timestamp(spike.start),
            "end": crate::time::format_timestamp(spike.end),
            "requests": spike.requests,
            "peak_per_minute": spike.peak_per_minute,
            "usual_per_minute": report.median_per_minute,
            "sources": spike.sources,
            "user_agents": spike.user_agents,
            "error_rate": spike.error_rate,
            "usual_error_rate": spike.usual_error_rate,
            "verdict": spike.verdict.as_str(),
            "reasons": spike.reasons,
            "top_sources": pairs(&spike.top_sources),
            "top_paths": pairs(&spike.top_paths),
            "top_user_agents": pairs(&spike.top_user_agents),
        }),
    }
}
