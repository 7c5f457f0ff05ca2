//! Running a [`RuleSet`] over evidence: the [`Hunter`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rayon::prelude::*;
use rsigma_eval::{CorrelationConfig, CorrelationEngine, EvaluationResult};
use serde_json::{Value, json};

use crate::bucket::KeywordHits;
use crate::finding::{Finding, Severity};
use crate::indicators::IndicatorSet;
use crate::record::{EventView, Record};
use crate::route::Renames;
use crate::rules::RuleSet;
use crate::source::{self, Evidence, Format, ReadContext, ReadLimits, RecordSink};
use crate::spill::{Found, Pile, Spill, event_text};
use crate::traffic::{TrafficCounter, TrafficReport};
use crate::yara::{self, YaraLimits, YaraRules, YaraSink, YaraStats};

/// Only events inside `[from, to]` are hunted. Events without a time are
/// left out when a bound is set: nothing says they fall inside it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeWindow {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl TimeWindow {
    fn contains(&self, ts: Option<Timestamp>) -> bool {
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some(ts) = ts else {
            return false;
        };
        self.from.is_none_or(|from| ts >= from) && self.to.is_none_or(|to| ts <= to)
    }
}

/// Live counters a caller can poll from another thread for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub records: AtomicU64,
    pub findings: AtomicU64,
    /// Set by [`Progress::cancel`]: readers stop at their next chunk or
    /// batch and the hunt returns what it found so far.
    pub cancelled: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// Asks a running hunt to stop soon (from any thread).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// A file or archive member that could not be read, or only in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProblem {
    pub evidence: String,
    /// Records, lines or chunks skipped; 0 when the whole file failed.
    pub skipped: u64,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct HuntStats {
    /// Files and archive members read, by format.
    pub files_by_format: Vec<(Format, u64)>,
    /// Files in no supported format (not errors: a triage folder holds many).
    pub unsupported: Vec<String>,
    pub records_read: u64,
    pub records_outside_window: u64,
    /// Partly readable files: what was skipped and why.
    pub damaged: Vec<ReadProblem>,
    /// Files that could not be read at all.
    pub failed: Vec<ReadProblem>,
    /// What the YARA pass did, when there was one.
    pub yara: Option<YaraStats>,
}

impl HuntStats {
    pub fn files_read(&self) -> u64 {
        self.files_by_format.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Debug)]
pub struct HuntReport {
    /// In time order (then file, record and rule), so two runs are identical.
    pub findings: Vec<Finding>,
    pub stats: HuntStats,
    /// Per site of the web access logs: top talkers and traffic spikes
    /// (each spike is also a `traffic:` finding).
    pub traffic: Vec<TrafficReport>,
}

/// Hunts evidence with a rule set.
///
/// ```no_run
/// use crrt_hunt::{Hunter, Progress, RuleLoader, discover};
/// let rules = RuleLoader::new().path("rules/").load()?;
/// let evidence = discover(&["evidence/".into()])?;
/// let report = Hunter::new(&rules).run(&evidence, &Progress::default());
/// println!("{} findings", report.findings.len());
/// # Ok::<(), crrt_hunt::HuntError>(())
/// ```
pub struct Hunter<'r> {
    rules: &'r RuleSet,
    indicators: Option<&'r IndicatorSet>,
    yara: Option<&'r YaraRules>,
    yara_limits: YaraLimits,
    read_events: bool,
    window: TimeWindow,
    limits: ReadLimits,
    syslog_year: i16,
}

impl<'r> Hunter<'r> {
    pub fn new(rules: &'r RuleSet) -> Self {
        let year = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).year();
        Hunter {
            rules,
            indicators: None,
            yara: None,
            yara_limits: YaraLimits::default(),
            read_events: true,
            window: TimeWindow::default(),
            limits: ReadLimits::default(),
            syslog_year: year,
        }
    }

    /// Also looks for these indicators in every field of every event; a
    /// hit is a finding of level high whose rule id is `indicator:ID`.
    pub fn indicators(mut self, indicators: &'r IndicatorSet) -> Self {
        self.indicators = Some(indicators).filter(|i| !i.is_empty());
        self
    }

    /// Also scans every file, and every member of a ZIP package, with
    /// these YARA rules; a match is a finding whose rule id is `yara:NAME`
    /// and whose time is the file's modification time. The time window
    /// does not apply to them: a file's age is not an event's.
    pub fn yara(mut self, rules: &'r YaraRules, limits: YaraLimits) -> Self {
        self.yara = Some(rules);
        self.yara_limits = limits;
        self
    }

    /// Whether to read events from logs at all (default yes); a YARA-only
    /// hunt turns it off and reads each file once, for YARA.
    pub fn read_events(mut self, yes: bool) -> Self {
        self.read_events = yes;
        self
    }

    pub fn window(mut self, window: TimeWindow) -> Self {
        self.window = window;
        self
    }

    pub fn limits(mut self, limits: ReadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The year given to RFC 3164 syslog timestamps (default: this year).
    pub fn syslog_year(mut self, year: i16) -> Self {
        self.syslog_year = year;
        self
    }

    pub fn run(&self, evidence: &[Evidence], progress: &Progress) -> HuntReport {
        let mut findings = Vec::new();
        let mut report = self
            .run_each(evidence, progress, Spill::default(), &mut |f| {
                findings.push(f.into_finding());
                Ok(())
            })
            // Nothing is written to disk without a spill: nothing can fail.
            .unwrap_or_else(|_| HuntReport {
                findings: Vec::new(),
                stats: HuntStats::default(),
                traffic: Vec::new(),
            });
        report.findings = findings;
        report
    }

    /// Hunts like [`Hunter::run`], but hands the findings to `each` in
    /// order at the end instead of returning them, keeping at most
    /// `spill.after` of them in memory (the rest in sorted temporary runs):
    /// memory stays flat on a corpus of any size. The report's `findings`
    /// are empty. Fails if a run cannot be written or read back, or `each`
    /// fails.
    pub fn run_each(
        &self,
        evidence: &[Evidence],
        progress: &Progress,
        spill: Spill,
        each: &mut dyn FnMut(Found) -> std::io::Result<()>,
    ) -> std::io::Result<HuntReport> {
        let size: u64 = evidence.iter().map(|e| e.size).sum();
        let passes = u64::from(self.read_events) + u64::from(self.yara.is_some());
        progress
            .bytes_total
            .fetch_add(size * passes, Ordering::Relaxed);
        let collector = Collector {
            rules: self.rules,
            indicators: self.indicators,
            window: self.window,
            progress,
            findings: Pile::new(spill),
            correlation_feed: Mutex::new(Vec::new()),
            stats: Mutex::new(HuntStats::default()),
            outside_window: AtomicU64::new(0),
            traffic: TrafficCounter::default(),
            yara: Mutex::new(YaraStats::default()),
        };
        let ctx = ReadContext {
            sink: &collector,
            limits: self.limits,
            syslog_year: self.syslog_year,
        };
        // One YARA scanner per worker thread: scanners are not shared.
        let scanner = || {
            self.yara
                .map(|rules| rules.scanner(self.yara_limits.timeout))
        };
        evidence.par_iter().for_each_init(scanner, |scanner, e| {
            if self.read_events && !progress.is_cancelled() {
                source::read_file(e, &ctx);
            }
            if let Some(scanner) = scanner
                && !progress.is_cancelled()
            {
                yara::scan_evidence(scanner, e, self.yara_limits, self.limits, &collector);
                progress.bytes_done.fetch_add(e.size, Ordering::Relaxed);
            }
        });

        let Collector {
            findings,
            correlation_feed,
            stats,
            outside_window,
            traffic,
            yara,
            ..
        } = collector;
        let (traffic, traffic_findings) = traffic.finish();
        let mut stats = stats.into_inner().unwrap_or_else(|e| e.into_inner());
        stats.records_read = progress.records.load(Ordering::Relaxed);
        stats.records_outside_window = outside_window.load(Ordering::Relaxed);
        if self.yara.is_some() {
            let mut yara = yara.into_inner().unwrap_or_else(|e| e.into_inner());
            yara.too_large.sort();
            yara.failed.sort();
            stats.yara = Some(yara);
        }
        let feed = correlation_feed
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        findings.extend(self.correlate(feed).into_iter().map(Found::new));
        findings.extend(traffic_findings.into_iter().map(Found::new));
        findings.finish(each)?;
        stats.files_by_format.sort_by_key(|(f, _)| f.name());
        stats.unsupported.sort();
        stats.damaged.sort_by(|a, b| a.evidence.cmp(&b.evidence));
        stats.failed.sort_by(|a, b| a.evidence.cmp(&b.evidence));
        Ok(HuntReport {
            findings: Vec::new(),
            stats,
            traffic,
        })
    }

    /// Replays, in time order, the events that matched rules referenced by
    /// correlations, through the correlation engine.
    fn correlate(&self, mut feed: Vec<CorrelationItem>) -> Vec<Finding> {
        let Some(set) = &self.rules.correlation else {
            return Vec::new();
        };
        feed.sort_by(|a, b| {
            (a.timestamp, &a.evidence, a.position).cmp(&(b.timestamp, &b.evidence, b.position))
        });
        let mut engine = CorrelationEngine::new(CorrelationConfig::default());
        for rule in &set.detection_rules {
            // Compiled once already at load time; errors were reported then.
            let _ = engine.add_rule(rule);
        }
        for correlation in &set.correlations {
            let _ = engine.add_correlation(correlation);
        }
        let mut out = Vec::new();
        for item in feed {
            let view = EventView::new(&item.record, &item.renames);
            let seconds = item.timestamp.map_or(0, |t| t.as_second());
            for result in engine.process_with_detections(&view, item.detections, seconds) {
                let Some(body) = result.as_correlation() else {
                    continue;
                };
                let event = json!({
                    "correlation_type": format!("{:?}", body.correlation_type),
                    "group": body.group_key.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                    "value": body.aggregated_value,
                    "timespan_seconds": body.timespan_secs,
                    "last_event": item.record.fields,
                });
                out.push(finding(&result, &item.record, &item.evidence, event));
            }
        }
        out
    }
}

struct CorrelationItem {
    timestamp: Option<Timestamp>,
    evidence: String,
    position: u64,
    record: Record,
    detections: Vec<EvaluationResult>,
    /// The field renames of the log source the detections came from.
    renames: Vec<(Box<str>, Box<str>)>,
}

struct Collector<'a> {
    rules: &'a RuleSet,
    indicators: Option<&'a IndicatorSet>,
    window: TimeWindow,
    progress: &'a Progress,
    findings: Pile,
    correlation_feed: Mutex<Vec<CorrelationItem>>,
    stats: Mutex<HuntStats>,
    outside_window: AtomicU64,
    traffic: TrafficCounter,
    yara: Mutex<YaraStats>,
}

impl YaraSink for Collector<'_> {
    fn scanned(&self, bytes: u64) {
        let mut stats = self.yara.lock().unwrap_or_else(|e| e.into_inner());
        stats.files_scanned += 1;
        stats.bytes_scanned += bytes;
    }

    fn finding(&self, finding: Finding) {
        self.progress.findings.fetch_add(1, Ordering::Relaxed);
        let found = Found::new(finding);
        self.findings.extend([found]);
    }

    fn too_large(&self, name: &str, size: u64) {
        let mut stats = self.yara.lock().unwrap_or_else(|e| e.into_inner());
        stats.too_large.push((name.to_owned(), size));
    }

    fn failed(&self, name: &str, reason: String) {
        let mut stats = self.yara.lock().unwrap_or_else(|e| e.into_inner());
        stats.failed.push((name.to_owned(), reason));
    }

    fn cancelled(&self) -> bool {
        self.progress.is_cancelled()
    }
}

impl Collector<'_> {
    fn stats(&self) -> std::sync::MutexGuard<'_, HuntStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RecordSink for Collector<'_> {
    fn cancelled(&self) -> bool {
        self.progress.is_cancelled()
    }

    fn records(&self, evidence: &str, records: Vec<Record>) {
        if self.progress.is_cancelled() {
            return;
        }
        self.traffic.add(
            evidence,
            records.iter().filter(|r| self.window.contains(r.timestamp)),
        );
        let mut found: Vec<Found> = Vec::new();
        // One record's findings, which share one copy of its event.
        let mut of_record: Vec<Finding> = Vec::new();
        let mut correlated = Vec::new();
        let mut n_outside = 0;
        let n_records = records.len() as u64;
        for record in records {
            if !self.window.contains(record.timestamp) {
                n_outside += 1;
                continue;
            }
            if let Some(indicators) = self.indicators {
                for hit in indicators.find(&record) {
                    of_record.push(indicator_finding(indicators, &hit, &record, evidence));
                }
            }
            let keywords = KeywordHits::new(&self.rules.output.keywords);
            self.rules
                .output_router
                .for_each_target(&record, |bucket, renames: &Renames| {
                    let view = EventView::new(&record, renames);
                    for result in self.rules.output.buckets[bucket].evaluate(&view, &keywords) {
                        of_record.push(finding(&result, &record, evidence, Value::Null));
                    }
                });
            if !of_record.is_empty() {
                let event = event_text(&record.fields);
                found.extend(
                    of_record
                        .drain(..)
                        .map(|f| Found::with_event(f, Arc::clone(&event))),
                );
            }
            if let (Some(router), Some(set)) =
                (&self.rules.correlation_router, &self.rules.correlation)
            {
                let mut detections = Vec::new();
                let mut item_renames: Vec<(Box<str>, Box<str>)> = Vec::new();
                let keywords = KeywordHits::new(&set.buckets.keywords);
                router.for_each_target(&record, |bucket, renames: &Renames| {
                    let before = detections.len();
                    let view = EventView::new(&record, renames);
                    detections.extend(set.buckets.buckets[bucket].evaluate(&view, &keywords));
                    // Group-by fields are read under the names the rules use.
                    if detections.len() > before && item_renames.is_empty() {
                        item_renames = renames.to_vec();
                    }
                });
                if !detections.is_empty() {
                    correlated.push(CorrelationItem {
                        timestamp: record.timestamp,
                        evidence: evidence.to_owned(),
                        position: record.position,
                        record,
                        detections,
                        renames: item_renames,
                    });
                }
            }
        }
        self.progress
            .records
            .fetch_add(n_records, Ordering::Relaxed);
        if n_outside > 0 {
            self.outside_window.fetch_add(n_outside, Ordering::Relaxed);
        }
        if !found.is_empty() {
            self.progress
                .findings
                .fetch_add(found.len() as u64, Ordering::Relaxed);
            self.findings.extend(found);
        }
        if !correlated.is_empty() {
            self.correlation_feed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(correlated);
        }
    }

    fn damaged(&self, evidence: &str, count: u64, detail: String) {
        let mut stats = self.stats();
        match stats.damaged.iter_mut().find(|p| p.evidence == evidence) {
            Some(problem) => problem.skipped += count,
            None => stats.damaged.push(ReadProblem {
                evidence: evidence.to_owned(),
                skipped: count,
                detail,
            }),
        }
    }

    fn failed(&self, evidence: &str, reason: String) {
        self.stats().failed.push(ReadProblem {
            evidence: evidence.to_owned(),
            skipped: 0,
            detail: reason,
        });
    }

    fn unsupported(&self, evidence: &str) {
        self.stats().unsupported.push(evidence.to_owned());
    }

    fn bytes_read(&self, n: u64) {
        self.progress.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    fn file_started(&self, _evidence: &str, format: Format) {
        let mut stats = self.stats();
        match stats.files_by_format.iter_mut().find(|(f, _)| *f == format) {
            Some((_, n)) => *n += 1,
            None => stats.files_by_format.push((format, 1)),
        }
    }
}

fn finding(result: &EvaluationResult, record: &Record, evidence: &str, event: Value) -> Finding {
    let header = &result.header;
    Finding {
        timestamp: record.timestamp,
        host: record.host(),
        channel: record.channel(),
        event_id: record.event_id(),
        record_id: Some(record.position),
        rule_id: header.rule_id.clone(),
        rule_title: header.rule_title.clone(),
        level: Severity::from_sigma(header.level),
        tags: header.tags.clone(),
        evidence_file: evidence.to_owned(),
        event,
    }
}

fn indicator_finding(
    set: &IndicatorSet,
    hit: &crate::indicators::IndicatorHit,
    record: &Record,
    evidence: &str,
) -> Finding {
    let spec = set.spec(hit.spec);
    let mut tags = vec!["indicator".to_owned()];
    tags.extend(spec.tags().map(str::to_owned));
    Finding {
        timestamp: record.timestamp,
        host: record.host(),
        channel: record.channel(),
        event_id: record.event_id(),
        record_id: Some(record.position),
        rule_id: Some(format!("indicator:{}", spec.id)),
        rule_title: format!("Indicator {} {} in {}", spec.kind, spec.value, hit.field),
        level: Severity::High,
        tags,
        evidence_file: evidence.to_owned(),
        // Given with the record's other findings.
        event: Value::Null,
    }
}
