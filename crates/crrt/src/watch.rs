//! `crrt watch CONFIG`: watch the victim's websites and print each alert as it
//! opens and closes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;

use crrt_watch::{
    AlertEvent, Baseline, Change, Config, Mailer, Monitor, Notifier, Observation, Phrases, Sink,
};
use sha2::{Digest, Sha256};

/// Watch websites for outages, floods, defacement, certificate and DNS changes.
///
/// CONFIG is a TOML file with one `[[target]]` table per site:
///
///     [defaults]                  # optional, for every target
///     interval = "60s"            # between checks (minimum 10s)
///     timeout = "10s"
///
///     [[target]]
///     name = "mfa"
///     url = "https://mfa.gov.ua/"
///     expect_status = [200]       # default: any 2xx
///     must_contain = ["Міністерство"]
///     must_not_contain = ["hacked by"]
///     similarity = 0.5            # visible text vs. its baseline, 0–1
///     dns = ["A", "AAAA", "NS", "MX"]
///     tls_expiry_days = 14
///
///     [[webhook]]                 # optional: alerts POSTed as signed JSON
///     url = "https://hooks.example/crrt"
///     secret = "at least sixteen characters"
///
///     [email]                     # optional: alerts by e-mail
///     smtp = "smtps://user:password@mail.example"   # or smtp://host:587?tls=required
///     from = "CRRT watch <watch@cert.example>"
///     to = ["duty@cert.example"]
///
/// The first good look at each site is its baseline. An alert opens after
/// two failed checks in a row (the second comes 5 s after the first) and
/// closes after two good ones; an alert that keeps coming back is held
/// open longer. Alert kinds: down, status, slow, content, defacement, tls, dns.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct WatchArgs {
    /// The TOML file with the targets.
    config: PathBuf,
    /// How alerts are printed.
    #[arg(long, value_enum, default_value_t = WatchFormat::Text)]
    format: WatchFormat,
    /// Check every target once, print what was seen, and exit: 0 when all
    /// are up, 1 when one is not. Use it to test a configuration.
    #[arg(long)]
    once: bool,
    /// Keep each alert's evidence here: the body as fetched, the text diff
    /// against the baseline, the check's facts, and SHA256SUMS.
    #[arg(long, value_name = "DIR")]
    evidence: Option<PathBuf>,
    /// Defacement phrases (one per line, `#` comments) instead of the bundled
    /// list; `--phrases` with `--once` shows how many were read.
    #[arg(long, value_name = "FILE")]
    phrases: Option<PathBuf>,
    /// Keep each site's baseline (what it looked like at the first good
    /// look) in this JSON file, so that a restart compares with it instead of
    /// learning a possibly defaced page anew. Delete it to re-baseline.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Stop after this long, e.g. "30m"; without it, watch until Ctrl-C.
    #[arg(long, value_name = "DURATION")]
    r#for: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WatchFormat {
    /// One readable line per alert.
    Text,
    /// One JSON object per alert.
    Jsonl,
}

pub fn run(args: WatchArgs) -> Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let phrases = match &args.phrases {
        Some(path) => Phrases::parse(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => Phrases::bundled(),
    };
    let stop_after = args
        .r#for
        .as_deref()
        .map(|text| crrt_watch::duration("--for", text))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if let Some(dir) = &args.evidence {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the evidence folder {}", dir.display()))?;
    }
    let runtime = crate::serve::runtime()?;
    if args.once {
        return runtime.block_on(once(config, phrases));
    }
    runtime.block_on(async move {
        let notifier = Notifier::start(&config.webhooks)?;
        let mail = match &config.email {
            Some(email) => Some((Mailer::start(&email.smtp)?, crrt_watch::notify::parse_recipients(&email.to)?)),
            None => None,
        };
        let sink = Arc::new(Printer {
            format: args.format,
            evidence: args.evidence.clone(),
            notifier,
            mail,
            out: Mutex::new(()),
            lateness: Lateness::default(),
            state: Mutex::new(None),
        });
        let shortest = config
            .targets
            .iter()
            .map(|target| target.interval)
            .min()
            .unwrap_or_default();
        eprintln!(
            "watching {} target{} (first checks spread over {}s); {}; {} webhook{}; {}; Ctrl-C to stop",
            config.targets.len(),
            plural(config.targets.len()),
            shortest.as_secs(),
            match &args.evidence {
                Some(dir) => format!("evidence kept in {}", dir.display()),
                None => "evidence not kept (add --evidence DIR)".into(),
            },
            config.webhooks.len(),
            plural(config.webhooks.len()),
            match &config.email {
                Some(email) => format!("e-mail to {}", email.to.join(", ")),
                None => "no e-mail".into(),
            },
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let deadline = async {
                match stop_after {
                    Some(after) => tokio::time::sleep(after).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = deadline => {}
            }
            let _ = stop.send(true);
        });
        let state = match &args.state {
            Some(path) => Some(Arc::new(StateFile::open(path)?)),
            None => None,
        };
        let targets = config
            .targets
            .into_iter()
            .map(|target| {
                let baseline = state.as_ref().and_then(|state| state.baseline(&target));
                (target, baseline)
            })
            .collect();
        *sink.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = state.clone();
        let saver = state.clone().map(|state| tokio::spawn(async move { state.save_every(Duration::from_secs(5)).await }));
        let monitors = crrt_watch::watch(targets, phrases, sink.clone(), stopped).await;
        if let Some(saver) = saver {
            saver.abort();
        }
        if let Some(state) = &state {
            state.save()?;
        }
        print_summary(&monitors);
        sink.lateness.print();
        // Give queued webhooks a moment to leave before the runtime ends.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(ExitCode::SUCCESS)
    })
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Prints alerts, keeps their evidence, and hands them to the webhooks.
struct Printer {
    format: WatchFormat,
    evidence: Option<PathBuf>,
    notifier: Notifier,
    mail: Option<(Mailer, Vec<lettre::message::Mailbox>)>,
    /// Lines from many tasks must not interleave.
    out: Mutex<()>,
    lateness: Lateness,
    state: Mutex<Option<Arc<StateFile>>>,
}

/// `--state`: baselines by target name, with the URL they were learnt from.
struct StateFile {
    path: PathBuf,
    baselines: Mutex<BTreeMap<String, SavedBaseline>>,
    dirty: std::sync::atomic::AtomicBool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedBaseline {
    url: String,
    baseline: Baseline,
}

impl StateFile {
    fn open(path: &Path) -> Result<StateFile> {
        let baselines = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{}: not a crrt watch state file (delete it to start afresh)",
                    path.display()
                )
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        Ok(StateFile {
            path: path.to_owned(),
            baselines: Mutex::new(baselines),
            dirty: false.into(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SavedBaseline>> {
        self.baselines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The baseline kept for this target, if it was learnt from the same URL.
    fn baseline(&self, target: &crrt_watch::Target) -> Option<Baseline> {
        self.lock()
            .get(&target.name)
            .filter(|saved| saved.url == target.url.as_str())
            .map(|saved| saved.baseline.clone())
    }

    fn learnt(&self, monitor: &Monitor) {
        let target = monitor.target();
        self.lock().insert(
            target.name.clone(),
            SavedBaseline {
                url: target.url.to_string(),
                baseline: monitor.baseline().clone(),
            },
        );
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the file whole (temporary file, then rename).
    fn save(&self) -> Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&*self.lock())?;
        let folder = self
            .path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(folder)
            .with_context(|| format!("writing next to {}", self.path.display()))?;
        file.write_all(&bytes)?;
        file.persist(&self.path)
            .map_err(|error| error.error)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }

    async fn save_every(&self, period: Duration) {
        loop {
            tokio::time::sleep(period).await;
            if let Err(error) = self.save() {
                eprintln!("warning: {error:#}");
            }
        }
    }
}

/// How late checks started against their schedule, in milliseconds: the sign
/// that the machine or the network cannot keep up with the targets.
struct Lateness {
    /// Checks per millisecond of lateness; the last bucket holds 10 s and more.
    buckets: Vec<AtomicU64>,
    max_ms: AtomicU64,
}

const LATENESS_BUCKETS: usize = 10_001;

impl Default for Lateness {
    fn default() -> Lateness {
        Lateness {
            buckets: (0..LATENESS_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_ms: AtomicU64::new(0),
        }
    }
}

impl Lateness {
    fn record(&self, late: Duration) {
        let millis = u64::try_from(late.as_millis()).unwrap_or(u64::MAX);
        let bucket = usize::try_from(millis)
            .unwrap_or(usize::MAX)
            .min(LATENESS_BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.max_ms.fetch_max(millis, Ordering::Relaxed);
    }

    fn percentile(&self, total: u64, fraction: f64) -> usize {
        let wanted = (((total as f64) * fraction).ceil() as u64).max(1);
        let mut seen = 0;
        for (millis, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= wanted {
                return millis;
            }
        }
        LATENESS_BUCKETS - 1
    }

    fn print(&self) {
        let total: u64 = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .sum();
        if total == 0 {
            return;
        }
        eprintln!(
            "{total} checks started late by p50 {} ms, p99 {} ms, max {} ms",
            self.percentile(total, 0.5),
            self.percentile(total, 0.99),
            self.max_ms.load(Ordering::Relaxed)
        );
    }
}

impl Sink for Printer {
    fn alert(&self, _key: &str, event: AlertEvent) {
        let kept = self
            .evidence
            .as_deref()
            .and_then(|dir| match keep_evidence(dir, &event) {
                Ok(folder) => folder,
                Err(error) => {
                    eprintln!(
                        "warning: evidence of {} {} not kept: {error:#}",
                        event.target, event.kind
                    );
                    None
                }
            });
        self.notifier.send(&event);
        if let Some((mailer, to)) = &self.mail {
            mailer.send(&event, to);
        }
        let line = match self.format {
            WatchFormat::Jsonl => {
                let mut value = serde_json::to_value(&event).unwrap_or_default();
                if let (Some(object), Some(evidence)) = (value.as_object_mut(), &event.evidence) {
                    object.insert(
                        "evidence".into(),
                        serde_json::to_value(evidence).unwrap_or_default(),
                    );
                    if let Some(folder) = &kept {
                        object.insert("evidence_dir".into(), folder.display().to_string().into());
                    }
                }
                value.to_string()
            }
            WatchFormat::Text => text_line(&event, kept.as_deref()),
        };
        let _guard = self.out.lock();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }

    fn checked(&self, _key: &str, monitor: &Monitor, _observation: &Observation, late: Duration) {
        self.lateness.record(late);
        if monitor.baseline_changed()
            && let Some(state) = &*self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            state.learnt(monitor);
        }
        if late > Duration::from_secs(5) {
            tracing::warn!(
                "a check started {}s late: the machine cannot keep up",
                late.as_secs()
            );
        }
    }
}

fn text_line(event: &AlertEvent, kept: Option<&Path>) -> String {
    let time = event.time.strftime("%Y-%m-%d %H:%M:%SZ");
    match event.event {
        Change::Open => {
            let mut line = format!(
                "{time}  OPEN   {}  {}  {}",
                event.target, event.kind, event.summary
            );
            if event.flapping {
                line.push_str(" (flapping)");
            }
            if let Some(folder) = kept {
                line.push_str(&format!("  [evidence {}]", folder.display()));
            }
            line
        }
        Change::Close => {
            let lasted = event.time.duration_since(event.opened);
            format!(
                "{time}  CLOSE  {}  {}  recovered after {}",
                event.target,
                event.kind,
                human(lasted.unsigned_abs())
            )
        }
    }
}

fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// Writes one alert's evidence into its own folder, whole or not at all:
/// the files go to a hidden folder first, which is renamed when complete.
fn keep_evidence(dir: &Path, event: &AlertEvent) -> Result<Option<PathBuf>> {
    let Some(evidence) = &event.evidence else {
        return Ok(None);
    };
    let slug: String = event
        .target
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '-' {
                character
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let name = format!(
        "{}-{slug}-{}",
        event.time.strftime("%Y%m%dT%H%M%SZ"),
        event.kind
    );
    let folder = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut facts = serde_json::to_value(event)?;
    if let Some(object) = facts.as_object_mut() {
        object.insert("evidence".into(), serde_json::to_value(evidence)?);
    }
    let mut files: Vec<(&str, Vec<u8>)> = vec![("check.json", serde_json::to_vec_pretty(&facts)?)];
    if evidence.status.is_some() {
        files.push(("body", evidence.body.clone()));
    }
    if let Some(diff) = &evidence.diff {
        files.push(("diff.txt", diff.clone().into_bytes()));
    }
    let mut sums = String::new();
    for (file, bytes) in &files {
        std::fs::write(partial.join(file), bytes).with_context(|| format!("writing {file}"))?;
        sums.push_str(&format!("{}  {file}\n", hex::encode(Sha256::digest(bytes))));
    }
    std::fs::write(partial.join("SHA256SUMS"), sums).context("writing SHA256SUMS")?;
    std::fs::rename(&partial, &folder)
        .with_context(|| format!("moving the evidence to {}", folder.display()))?;
    Ok(Some(folder))
}

fn print_summary(monitors: &[Monitor]) {
    eprintln!(
        "\n{:<24} {:>7} {:>7} {:>8} {:>8}  OPEN ALERTS",
        "TARGET", "CHECKS", "FAILED", "P50 ms", "P95 ms"
    );
    for monitor in monitors {
        let (p50, p95) = monitor
            .latency_percentiles()
            .map(|(p50, p95)| (p50.as_millis().to_string(), p95.as_millis().to_string()))
            .unwrap_or(("-".into(), "-".into()));
        let open: Vec<String> = monitor
            .open_alerts()
            .map(|(kind, since)| format!("{kind} since {}", since.strftime("%H:%M:%SZ")))
            .collect();
        eprintln!(
            "{:<24} {:>7} {:>7} {p50:>8} {p95:>8}  {}",
            monitor.target().name,
            monitor.checks,
            monitor.failed_checks,
            if open.is_empty() {
                "-".into()
            } else {
                open.join(", ")
            }
        );
    }
}

/// `--once`: one check per target, what it saw, and whether all are up.
async fn once(config: Config, phrases: Phrases) -> Result<ExitCode> {
    let results = crrt_watch::check_once(config.targets, phrases).await;
    let mut all_up = true;
    println!("{:<24} {:<10} {:>8}  DETAILS", "TARGET", "RESULT", "MS");
    for (monitor, observation) in &results {
        let target = monitor.target();
        let (result, millis, mut details) = match &observation.page {
            Ok(fetched) if target.status_ok(fetched.status) => {
                let page = crrt_watch::content::read_page(
                    &fetched.body,
                    fetched.content_type.as_deref(),
                    &fetched.final_url,
                );
                let mut details = vec![format!(
                    "status {}, {} words",
                    fetched.status,
                    page.words.len()
                )];
                if !page.outside_hosts.is_empty() {
                    details.push(format!(
                        "outside scripts/frames: {}",
                        page.outside_hosts
                            .iter()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                if let Some(certificate) = &fetched.certificate {
                    let days = certificate
                        .not_after
                        .duration_since(observation.at)
                        .as_secs()
                        / 86_400;
                    details.push(format!(
                        "certificate from {} for {days} more days",
                        certificate.issuer
                    ));
                }
                ("up", fetched.latency.as_millis().to_string(), details)
            }
            Ok(fetched) => (
                "status",
                fetched.latency.as_millis().to_string(),
                vec![format!("status {}", fetched.status)],
            ),
            Err(failure) => ("down", "-".into(), vec![failure.to_string()]),
        };
        if result != "up" {
            all_up = false;
        }
        match &observation.dns {
            Some(Ok(answers)) => details.extend(answers.iter().map(|(kind, values)| {
                format!(
                    "{kind} {}",
                    values.iter().cloned().collect::<Vec<_>>().join(" ")
                )
            })),
            Some(Err(error)) => {
                all_up = false;
                details.push(error.clone());
            }
            None => {}
        }
        println!(
            "{:<24} {result:<10} {millis:>8}  {}",
            target.name,
            details.join("; ")
        );
    }
    Ok(if all_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
