//! A target's memory: its baseline, its latencies, and its alerts, which open
//! after `confirm` failed checks in a row and close after `recover` passed
//! ones. Pure: observations in, alert events out, no clock and no socket.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Target;
use crate::content::{self, Page, Phrases};
use crate::dns::{self, Answers};
use crate::fetch::{FetchFailure, Fetched, Observation};

/// What an alert is about. One alert of each kind at most per target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// No response: refused, unresolvable, timed out.
    Down,
    /// A response with a status that is not expected.
    Status,
    /// Responses far slower than usual: the first sign of a flood.
    Slow,
    /// A required text is missing or a forbidden one is present.
    Content,
    /// The page is not what it was: text replaced, defacement phrases, new
    /// outside scripts or frames, a redirect to another site.
    Defacement,
    /// The certificate is invalid, expires soon or has a new issuer.
    Tls,
    /// The DNS answers changed or the lookup failed.
    Dns,
}

impl fmt::Display for AlertKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            AlertKind::Down => "down",
            AlertKind::Status => "status",
            AlertKind::Slow => "slow",
            AlertKind::Content => "content",
            AlertKind::Defacement => "defacement",
            AlertKind::Tls => "tls",
            AlertKind::Dns => "dns",
        })
    }
}

/// An alert opening or closing.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    pub time: Timestamp,
    pub event: Change,
    pub target: String,
    pub url: String,
    pub kind: AlertKind,
    /// One line for people.
    pub summary: String,
    /// Every reason, when there are several.
    pub reasons: Vec<String>,
    /// When the alert opened (for a close: how long it lasted).
    pub opened: Timestamp,
    /// The alert opened three times within half an hour; it now needs a
    /// longer run of passed checks to close.
    pub flapping: bool,
    /// What the opening check saw, unchanged.
    #[serde(skip)]
    pub evidence: Option<Evidence>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Open,
    Close,
}

/// The opening check's evidence, kept as it was received.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub url: String,
    pub final_url: Option<String>,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: Option<f64>,
    pub total_ms: Option<f64>,
    pub content_type: Option<String>,
    pub truncated: bool,
    pub body_sha256: Option<String>,
    #[serde(skip)]
    pub body: Vec<u8>,
    /// The visible text against the baseline's, as a unified diff.
    #[serde(skip)]
    pub diff: Option<String>,
    pub dns: Option<Answers>,
}

/// A target's state between checks.
#[derive(Debug)]
pub struct Monitor {
    target: Arc<Target>,
    phrases: Arc<Phrases>,
    baseline: Baseline,
    /// Latencies of recent checks that were not slow, oldest first.
    latencies: VecDeque<Duration>,
    alerts: BTreeMap<AlertKind, AlertState>,
    pub checks: u64,
    pub failed_checks: u64,
    /// The last observation added to the baseline.
    baseline_changed: bool,
}

/// What the site looked like when the watch began; kept by the platform so
/// that a restart does not take a defaced page as the new normal.
#[derive(Debug, Default, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Baseline {
    pub page: Option<Page>,
    pub phrases: BTreeSet<String>,
    pub final_host: Option<String>,
    pub issuer: Option<String>,
    pub dns: Option<Answers>,
}

#[derive(Debug, Default)]
struct AlertState {
    open: Option<OpenAlert>,
    failed_in_a_row: u32,
    passed_in_a_row: u32,
    recent_opens: VecDeque<Timestamp>,
}

#[derive(Debug)]
struct OpenAlert {
    since: Timestamp,
    flapping: bool,
}

/// One check's verdict on one kind.
enum Verdict {
    Pass,
    Fail(Vec<String>),
    /// The check could not tell (no page to judge the content of).
    Unknown,
}

/// Latencies kept for the median.
const LATENCY_WINDOW: usize = 30;
/// Latencies needed before anything is called slow.
const LATENCY_MIN_SAMPLES: usize = 5;
/// A check is never slow when under the median plus this.
const LATENCY_FLOOR: Duration = Duration::from_millis(500);
const FLAP_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);
const FLAP_OPENS: usize = 3;

impl Monitor {
    pub fn new(target: Arc<Target>, phrases: Arc<Phrases>) -> Monitor {
        Monitor {
            target,
            phrases,
            baseline: Baseline::default(),
            latencies: VecDeque::with_capacity(LATENCY_WINDOW),
            alerts: BTreeMap::new(),
            checks: 0,
            failed_checks: 0,
            baseline_changed: false,
        }
    }

    /// A monitor that starts from a baseline learnt earlier.
    pub fn with_baseline(
        target: Arc<Target>,
        phrases: Arc<Phrases>,
        baseline: Baseline,
    ) -> Monitor {
        let mut monitor = Monitor::new(target, phrases);
        monitor.baseline = baseline;
        monitor
    }

    /// Whether the last observation changed the baseline (to be saved).
    pub fn baseline_changed(&self) -> bool {
        self.baseline_changed
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    /// The open alerts, by kind, with when they opened.
    pub fn open_alerts(&self) -> impl Iterator<Item = (AlertKind, Timestamp)> + '_ {
        self.alerts
            .iter()
            .filter_map(|(kind, state)| state.open.as_ref().map(|open| (*kind, open.since)))
    }

    /// Median and 95th percentile of the recent normal latencies.
    pub fn latency_percentiles(&self) -> Option<(Duration, Duration)> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut sorted: Vec<_> = self.latencies.iter().copied().collect();
        sorted.sort_unstable();
        let at = |fraction: f64| sorted[((sorted.len() - 1) as f64 * fraction).round() as usize];
        Some((at(0.5), at(0.95)))
    }

    /// When to check next: soon while a change waits for confirmation.
    pub fn next_delay(&self) -> Duration {
        let pending = self.alerts.iter().any(|(kind, state)| {
            let confirm = self.confirm(*kind);
            (state.open.is_none() && state.failed_in_a_row > 0 && state.failed_in_a_row < confirm)
                || (state.open.is_some() && state.passed_in_a_row > 0)
        });
        if pending {
            self.target.retry
        } else {
            self.target.interval
        }
    }

    fn confirm(&self, kind: AlertKind) -> u32 {
        // A certificate does not flicker: one look is enough.
        if kind == AlertKind::Tls {
            1
        } else {
            self.target.confirm
        }
    }

    /// Takes one check into account; returns the alerts that opened or closed.
    pub fn observe(&mut self, observation: &Observation) -> Vec<AlertEvent> {
        self.checks += 1;
        let page = observation
            .page
            .as_ref()
            .ok()
            .filter(|fetched| self.target.status_ok(fetched.status));
        let read = page.map(|fetched| {
            content::read_page(
                &fetched.body,
                fetched.content_type.as_deref(),
                &fetched.final_url,
            )
        });
        let verdicts = [
            (AlertKind::Down, self.judge_down(observation)),
            (AlertKind::Status, self.judge_status(observation)),
            (AlertKind::Slow, self.judge_slow(observation)),
            (AlertKind::Content, self.judge_content(page)),
            (
                AlertKind::Defacement,
                self.judge_defacement(page, read.as_ref()),
            ),
            (AlertKind::Tls, self.judge_tls(observation)),
            (AlertKind::Dns, self.judge_dns(observation)),
        ];
        if verdicts
            .iter()
            .any(|(_, verdict)| matches!(verdict, Verdict::Fail(_)))
        {
            self.failed_checks += 1;
        }
        self.learn(observation, page, read);
        let mut events = Vec::new();
        for (kind, verdict) in verdicts {
            if let Some(event) = self.apply(kind, verdict, observation) {
                events.push(event);
            }
        }
        events
    }

    fn judge_down(&self, observation: &Observation) -> Verdict {
        match &observation.page {
            Ok(_) | Err(FetchFailure::Tls(_)) => Verdict::Pass,
            Err(failure) => Verdict::Fail(vec![failure.to_string()]),
        }
    }

    fn judge_status(&self, observation: &Observation) -> Verdict {
        match &observation.page {
            Ok(fetched) if self.target.status_ok(fetched.status) => Verdict::Pass,
            Ok(fetched) => Verdict::Fail(vec![format!(
                "status {}, expected {}",
                fetched.status,
                self.expected_status()
            )]),
            Err(_) => Verdict::Unknown,
        }
    }

    fn expected_status(&self) -> String {
        if self.target.expect_status.is_empty() {
            "2xx".into()
        } else {
            self.target
                .expect_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        }
    }

    fn judge_slow(&self, observation: &Observation) -> Verdict {
        let Ok(fetched) = &observation.page else {
            return Verdict::Unknown;
        };
        if self.latencies.len() < LATENCY_MIN_SAMPLES {
            return Verdict::Unknown;
        }
        let Some((median, p95)) = self.latency_percentiles() else {
            return Verdict::Unknown;
        };
        if self.is_slow(fetched.latency, median) {
            Verdict::Fail(vec![format!(
                "response after {} ms; usually {} ms (p95 {} ms)",
                fetched.latency.as_millis(),
                median.as_millis(),
                p95.as_millis()
            )])
        } else {
            Verdict::Pass
        }
    }

    fn is_slow(&self, latency: Duration, median: Duration) -> bool {
        latency
            > median
                .mul_f64(self.target.latency_factor)
                .max(median + LATENCY_FLOOR)
    }

    fn judge_content(&self, page: Option<&Fetched>) -> Verdict {
        let Some(fetched) = page else {
            return Verdict::Unknown;
        };
        if self.target.must_contain.is_empty() && self.target.must_not_contain.is_empty() {
            return Verdict::Pass;
        }
        let body = String::from_utf8_lossy(&fetched.body).to_lowercase();
        let mut reasons = Vec::new();
        for text in &self.target.must_contain {
            if !body.contains(&text.to_lowercase()) {
                reasons.push(format!("{text:?} is missing"));
            }
        }
        for text in &self.target.must_not_contain {
            if body.contains(&text.to_lowercase()) {
                reasons.push(format!("{text:?} appears"));
            }
        }
        if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(reasons)
        }
    }

    fn judge_defacement(&self, page: Option<&Fetched>, read: Option<&Page>) -> Verdict {
        let (Some(fetched), Some(read)) = (page, read) else {
            return Verdict::Unknown;
        };
        let Some(baseline) = &self.baseline.page else {
            return Verdict::Pass;
        };
        let mut reasons = Vec::new();
        let similarity = content::similarity(&baseline.words, &read.words);
        if similarity < self.target.similarity {
            reasons.push(format!(
                "visible text {:.0}% like the baseline (alert under {:.0}%)",
                similarity * 100.0,
                self.target.similarity * 100.0
            ));
        }
        let phrases: Vec<_> = self
            .phrases
            .found_in(&read.text)
            .into_iter()
            .filter(|phrase| !self.baseline.phrases.contains(phrase))
            .collect();
        if !phrases.is_empty() {
            reasons.push(format!(
                "defacement phrases: {}",
                phrases
                    .iter()
                    .map(|phrase| format!("{phrase:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let new_hosts: Vec<_> = read
            .outside_hosts
            .difference(&baseline.outside_hosts)
            .cloned()
            .collect();
        if !new_hosts.is_empty() {
            reasons.push(format!(
                "scripts or frames from new hosts: {}",
                new_hosts.join(", ")
            ));
        }
        let final_host = fetched.final_url.host_str().map(str::to_ascii_lowercase);
        if let (Some(before), Some(now)) = (&self.baseline.final_host, &final_host)
            && before != now
        {
            reasons.push(format!("now redirects to {now} (was {before})"));
        }
        if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(reasons)
        }
    }

    fn judge_tls(&self, observation: &Observation) -> Verdict {
        let certificate = match &observation.page {
            Err(FetchFailure::Tls(reason)) => {
                return Verdict::Fail(vec![format!("certificate refused: {reason}")]);
            }
            Ok(fetched) => match &fetched.certificate {
                Some(certificate) => certificate,
                None => return Verdict::Unknown,
            },
            Err(_) => return Verdict::Unknown,
        };
        let mut reasons = Vec::new();
        let left = certificate.not_after.duration_since(observation.at);
        let days = left.as_secs() / 86_400;
        if left.is_negative() {
            reasons.push(format!("certificate expired on {}", certificate.not_after));
        } else if days < i64::from(self.target.tls_expiry_days) {
            reasons.push(format!(
                "certificate expires in {days} days ({})",
                certificate.not_after
            ));
        }
        if let Some(issuer) = &self.baseline.issuer
            && issuer != &certificate.issuer
        {
            reasons.push(format!(
                "certificate issuer changed to {:?} (was {issuer:?})",
                certificate.issuer
            ));
        }
        if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(reasons)
        }
    }

    fn judge_dns(&self, observation: &Observation) -> Verdict {
        match &observation.dns {
            None => Verdict::Unknown,
            Some(Err(error)) => Verdict::Fail(vec![format!("DNS lookup failed: {error}")]),
            Some(Ok(answers)) => match &self.baseline.dns {
                None => Verdict::Pass,
                Some(baseline) => {
                    let changes = dns::changes(baseline, answers);
                    if changes.is_empty() {
                        Verdict::Pass
                    } else {
                        Verdict::Fail(changes)
                    }
                }
            },
        }
    }

    /// The baseline is the first good look at each part; latencies grow
    /// only with normal checks, so a long flood does not become the norm.
    fn learn(&mut self, observation: &Observation, page: Option<&Fetched>, read: Option<Page>) {
        let before = (
            self.baseline.page.is_some(),
            self.baseline.issuer.is_some(),
            self.baseline.dns.is_some(),
        );
        self.learn_parts(observation, page, read);
        let after = (
            self.baseline.page.is_some(),
            self.baseline.issuer.is_some(),
            self.baseline.dns.is_some(),
        );
        self.baseline_changed = before != after;
    }

    fn learn_parts(
        &mut self,
        observation: &Observation,
        page: Option<&Fetched>,
        read: Option<Page>,
    ) {
        if let Some(fetched) = page
            && let Some(read) = read
            && self.baseline.page.is_none()
        {
            self.baseline.phrases = self.phrases.found_in(&read.text);
            self.baseline.final_host = fetched.final_url.host_str().map(str::to_ascii_lowercase);
            self.baseline.page = Some(read);
        }
        if let Ok(fetched) = &observation.page {
            let median = self.latency_percentiles().map(|(median, _)| median);
            let normal = self.latencies.len() < LATENCY_MIN_SAMPLES
                || median.is_none_or(|median| !self.is_slow(fetched.latency, median));
            if normal {
                if self.latencies.len() == LATENCY_WINDOW {
                    self.latencies.pop_front();
                }
                self.latencies.push_back(fetched.latency);
            }
            if self.baseline.issuer.is_none()
                && let Some(certificate) = &fetched.certificate
            {
                self.baseline.issuer = Some(certificate.issuer.clone());
            }
        }
        if self.baseline.dns.is_none()
            && let Some(Ok(answers)) = &observation.dns
        {
            self.baseline.dns = Some(answers.clone());
        }
    }

    fn apply(
        &mut self,
        kind: AlertKind,
        verdict: Verdict,
        observation: &Observation,
    ) -> Option<AlertEvent> {
        let confirm = self.confirm(kind);
        let recover = self.target.recover;
        let state = self.alerts.entry(kind).or_default();
        match verdict {
            Verdict::Unknown => None,
            Verdict::Fail(reasons) => {
                state.failed_in_a_row += 1;
                state.passed_in_a_row = 0;
                if state.open.is_some() || state.failed_in_a_row < confirm {
                    return None;
                }
                while state
                    .recent_opens
                    .front()
                    .is_some_and(|at| observation.at.duration_since(*at) > FLAP_WINDOW)
                {
                    state.recent_opens.pop_front();
                }
                state.recent_opens.push_back(observation.at);
                let flapping = state.recent_opens.len() >= FLAP_OPENS;
                state.open = Some(OpenAlert {
                    since: observation.at,
                    flapping,
                });
                let evidence = self.evidence(observation);
                Some(self.event(
                    kind,
                    Change::Open,
                    observation.at,
                    observation.at,
                    reasons,
                    flapping,
                    Some(evidence),
                ))
            }
            Verdict::Pass => {
                state.passed_in_a_row += 1;
                state.failed_in_a_row = 0;
                let open = state.open.as_ref()?;
                let needed = if open.flapping { recover * 3 } else { recover };
                if state.passed_in_a_row < needed {
                    return None;
                }
                let open = state.open.take()?;
                Some(self.event(
                    kind,
                    Change::Close,
                    observation.at,
                    open.since,
                    vec!["recovered".into()],
                    open.flapping,
                    None,
                ))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        kind: AlertKind,
        event: Change,
        time: Timestamp,
        opened: Timestamp,
        reasons: Vec<String>,
        flapping: bool,
        evidence: Option<Evidence>,
    ) -> AlertEvent {
        AlertEvent {
            time,
            event,
            target: self.target.name.clone(),
            url: self.target.url.to_string(),
            kind,
            summary: reasons.join("; "),
            reasons,
            opened,
            flapping,
            evidence,
        }
    }

    fn evidence(&self, observation: &Observation) -> Evidence {
        let mut evidence = Evidence {
            url: self.target.url.to_string(),
            final_url: None,
            status: None,
            error: None,
            latency_ms: None,
            total_ms: None,
            content_type: None,
            truncated: false,
            body_sha256: None,
            body: Vec::new(),
            diff: None,
            dns: observation
                .dns
                .as_ref()
                .and_then(|answers| answers.as_ref().ok())
                .cloned(),
        };
        match &observation.page {
            Err(failure) => evidence.error = Some(failure.to_string()),
            Ok(fetched) => {
                evidence.final_url = Some(fetched.final_url.to_string());
                evidence.status = Some(fetched.status);
                evidence.latency_ms = Some(fetched.latency.as_secs_f64() * 1000.0);
                evidence.total_ms = Some(fetched.total.as_secs_f64() * 1000.0);
                evidence.content_type = fetched.content_type.clone();
                evidence.truncated = fetched.truncated;
                evidence.body_sha256 = Some(hex::encode(Sha256::digest(&fetched.body)));
                evidence.body = fetched.body.clone();
                if let Some(baseline) = &self.baseline.page {
                    let now = content::read_page(
                        &fetched.body,
                        fetched.content_type.as_deref(),
                        &fetched.final_url,
                    );
                    evidence.diff = Some(content::text_diff(&baseline.text, &now.text));
                }
            }
        }
        evidence
    }
}
