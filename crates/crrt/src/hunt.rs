//! `crrt hunt`: Sigma rules over evidence files, on this machine.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use crrt_hunt::{
    HuntReport, Hunter, IndicatorSet, IndicatorSpec, LogSourceMap, Progress, ReadLimits,
    RuleLoader, RuleSelection, RuleSet, Severity, Spill, Status, TimeWindow, YaraLimits,
    YaraLoader, YaraRules, discover,
};

use crate::output;

/// Hunt evidence with Sigma rules, indicators and YARA: what fired, on which host, when.
///
/// PATH may be EVTX files, JSON or JSON Lines exports (evtx_dump, Winlogbeat,
/// Velociraptor), web server access logs (combined or IIS W3C), syslog, ZIP
/// triage packages (read in place) and folders of any of these. Formats are
/// recognised from content; other files are counted and skipped. `-` reads
/// a text format from standard input (EVTX and ZIP need a file).
///
/// Examples:
///
///   crrt hunt ./triage --sigma sigma/rules/windows
///
///   crrt hunt Security.evtx --sigma rules/ --min-level high --from 2022-02-23
///
///   crrt hunt triage.zip --sigma rules/ --format jsonl --output findings.jsonl
///
///   crrt hunt ./triage --sigma rules/ --indicators partner-bundle.json
///
///   crrt hunt ./collected-files triage.zip --yara signature-base/yara
///
///   crrt hunt /var/log/nginx/access.log*      (traffic only: floods, top talkers)
///
///   zcat access.log.gz | crrt hunt - --sigma rules/web
///
/// Exit status: 0 when the hunt ran (with or without findings), 2 on bad
/// arguments or when the rules or evidence cannot be found.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct HuntArgs {
    /// Evidence files, folders (searched recursively) or ZIP packages;
    /// `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// A Sigma rule file or a folder of rules (searched recursively).
    /// Repeatable. Without rules, indicators or YARA, only the web traffic
    /// of access logs is analysed (floods, top talkers).
    #[arg(long = "sigma", short = 's', value_name = "RULES")]
    sigma: Vec<PathBuf>,

    /// Indicators to look for in every field of every event: a STIX 2.1
    /// bundle, a MISP event, a CSV file with a `value` column, or a plain
    /// list (one value per line, TYPE:VALUE where the type is not obvious).
    /// A hit is a finding of level high. Repeatable.
    #[arg(long = "indicators", short = 'i', value_name = "FILE")]
    indicators: Vec<PathBuf>,

    /// YARA rules (a .yar/.yara file or a folder searched recursively) to
    /// scan every file with, ZIP members included. A rule file that does
    /// not compile is reported with its line and skipped. Repeatable. With
    /// --yara alone, logs are not read for events: files are only scanned.
    #[arg(long = "yara", short = 'y', value_name = "RULES")]
    yara: Vec<PathBuf>,

    /// Files (and ZIP members) larger than this are not YARA-scanned; they
    /// are counted in the summary.
    #[arg(long, value_name = "BYTES", default_value_t = YaraLimits::default().max_file_bytes)]
    yara_max_size: u64,

    /// Give up on one file's YARA scan after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = YaraLimits::default().timeout.as_secs())]
    yara_timeout: u64,

    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,

    /// Write findings to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,

    /// Only rules of this level or above: informational, low, medium, high, critical.
    #[arg(long, value_name = "LEVEL")]
    min_level: Option<Severity>,

    /// Only rules with this status (stable, test, experimental, deprecated, unsupported). Repeatable.
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
    statuses: Vec<Status>,

    /// Only rules with this tag, e.g. attack.t1059 (also selects attack.t1059.001). Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,

    /// Only the rule with this id. Repeatable.
    #[arg(long = "rule-id", value_name = "ID")]
    rule_ids: Vec<String>,

    /// Only events at or after TIME (RFC 3339, or a date such as 2022-02-23, taken as UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    from: Option<jiff::Timestamp>,

    /// Only events at or before TIME (a date alone means the end of that day, UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time_end)]
    to: Option<jiff::Timestamp>,

    /// A log-source mapping file (YAML) added to the bundled Windows mapping.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,

    /// A value for an `expand` placeholder, as NAME=VALUE. Repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,

    /// Refuse a ZIP package that expands past this many bytes (ZIP bomb guard).
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_unzipped_bytes)]
    max_unzipped_bytes: u64,

    /// The year for syslog timestamps, which carry none (default: this year).
    #[arg(long, value_name = "YEAR")]
    syslog_year: Option<i16>,

    /// Keep parsed Sigma rules, compiled YARA rules and parsed indicator
    /// feeds in DIR so later hunts with the same files start faster
    /// [default: $XDG_CACHE_HOME/crrt, else ~/.cache/crrt].
    #[arg(long, value_name = "DIR", conflicts_with = "no_rule_cache")]
    rule_cache: Option<PathBuf>,

    /// Parse every rule and indicator file, and neither read nor write the
    /// cache.
    #[arg(long)]
    no_rule_cache: bool,

    /// Findings held in memory before they are sorted into temporary files
    /// (in $TMPDIR): memory stays flat however many findings a large
    /// corpus makes.
    #[arg(long, value_name = "FINDINGS", default_value_t = 10_000)]
    spill_after: usize,

    /// No progress bar and no summary on standard error.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Findings grouped by severity, then a summary.
    Table,
    /// One JSON object per finding.
    Jsonl,
    /// One row per finding, with a header.
    Csv,
}

pub fn run(args: HuntArgs) -> Result<ExitCode> {
    let started = Instant::now();
    // Indicators and YARA rules load on other threads while the Sigma rules load.
    let (rules, indicators, yara) = std::thread::scope(|scope| {
        let indicators =
            scope.spawn(|| load_indicators(&args.indicators, args.quiet, rule_cache_dir(&args)));
        let yara = scope.spawn(|| load_yara(&args.yara, rule_cache_dir(&args)));
        let rules = load_rules(&args);
        let indicators = indicators
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("loading the indicators failed")));
        let yara = yara
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("compiling the YARA rules failed")));
        (rules, indicators, yara)
    });
    let (rules, indicators, yara) = (rules?, indicators?, yara?);
    let rules_time = started.elapsed();
    let early_problems = rules.diagnostics();
    report_rule_problems(&early_problems, args.quiet);
    if let Some(yara) = &yara {
        report_rule_problems(yara.diagnostics(), args.quiet);
        if let Some(problem) = yara.cache_problem()
            && !args.quiet
        {
            eprintln!("warning: compiled YARA rules not cached: {problem}");
        }
    }
    if let Some(problem) = rules.cache_problem()
        && !args.quiet
    {
        eprintln!("warning: rule cache not written: {problem}");
    }
    let evidence = discover(&args.paths)?;

    let mut hunter = Hunter::new(&rules)
        .indicators(&indicators)
        .window(TimeWindow {
            from: args.from,
            to: args.to,
        })
        .limits(ReadLimits {
            max_unzipped_bytes: args.max_unzipped_bytes,
        });
    if let Some(yara) = &yara {
        hunter = hunter
            .yara(
                yara,
                YaraLimits {
                    max_file_bytes: args.yara_max_size,
                    timeout: Duration::from_secs(args.yara_timeout.max(1)),
                },
            )
            .read_events(!args.sigma.is_empty() || !args.indicators.is_empty());
    }
    if let Some(year) = args.syslog_year {
        hunter = hunter.syslog_year(year);
    }
    // The output is opened before the hunt: a path that cannot be written
    // is better known now than after an hour of hunting.
    let sink: output::Sink = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let color = args.output.is_none() && std::io::stdout().is_terminal();
    let mut writer = Some(output::FindingWriter::new(args.format, sink, color)?);
    let mut tally = output::Tally::default();
    let mut write_error = None;
    let progress = Progress::default();
    let spill = Spill {
        after: args.spill_after.max(1),
        dir: None,
    };
    let report = run_with_progress(&hunter, &evidence, &progress, args.quiet, spill, &mut |f| {
        tally.add(f.finding());
        if let Some(out) = writer.as_mut()
            && let Err(e) = out.write(&f)
        {
            // A closed pipe (`| head`) is the reader's choice: stop writing,
            // keep counting for the summary.
            writer = None;
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                write_error = Some(e);
            }
        }
        Ok(())
    })
    .context("sorting the findings in temporary files (see --spill-after)")?;
    if let Some(out) = writer
        && let Err(e) = out.finish()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        write_error = Some(e);
    }
    if let Some(e) = write_error {
        return Err(e).context("writing the findings");
    }
    let hunt_time = started.elapsed() - rules_time;
    // Rules compile when first needed; a failure then is reported now.
    let late_problems: Vec<_> = rules
        .diagnostics()
        .into_iter()
        .filter(|d| !early_problems.contains(d))
        .collect();
    report_rule_problems(&late_problems, args.quiet);

    if !args.quiet || args.format == OutputFormat::Table {
        let summary = output::Summary {
            rules: &rules,
            report: &report,
            tally: &tally,
            rules_time,
            hunt_time,
            indicators: indicators.len(),
            yara: yara.as_ref(),
        };
        if args.format == OutputFormat::Table && args.output.is_none() {
            output::print_summary(
                &mut std::io::stdout().lock(),
                &summary,
                std::io::stdout().is_terminal(),
            )?;
        } else if !args.quiet {
            output::print_summary(
                &mut std::io::stderr().lock(),
                &summary,
                std::io::stderr().is_terminal(),
            )?;
        }
    }
    // The process ends here: freeing 100,000 indicators and thousands of
    // compiled rules piece by piece would only delay the exit (about a
    // tenth of loading a large feed).
    std::mem::forget(indicators);
    std::mem::forget(rules);
    std::mem::forget(yara);
    Ok(ExitCode::SUCCESS)
}

fn load_rules(args: &HuntArgs) -> Result<RuleSet> {
    let mut mapping = LogSourceMap::windows_default();
    if let Some(path) = &args.mapping {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        mapping
            .extend(LogSourceMap::from_yaml(&text).with_context(|| format!("{}", path.display()))?);
    }
    let selection = RuleSelection {
        min_level: args.min_level.map(Severity::to_sigma),
        statuses: args.statuses.clone(),
        tags: args.tags.clone(),
        ids: args.rule_ids.clone(),
    };
    let mut loader = RuleLoader::new().selection(selection).mapping(mapping);
    if args.sigma.is_empty() {
        loader = loader.allow_no_rules();
        if args.indicators.is_empty() && args.yara.is_empty() && !args.quiet {
            eprintln!(
                "note: no --sigma rules or --indicators given: only the web traffic of access logs is analysed"
            );
        }
    }
    for path in &args.sigma {
        loader = loader.path(path);
    }
    if let Some(dir) = rule_cache_dir(args) {
        loader = loader.cache_dir(dir);
    }
    for (name, value) in &args.vars {
        loader = loader.placeholder(name, vec![value.clone()]);
    }
    let rules = loader.load()?;
    if rules.counts().selected == 0 && rules.counts().parsed > 0 {
        bail!("no rule matches the selection (--min-level, --status, --tag, --rule-id)");
    }
    Ok(rules)
}

/// Reads indicator files, recognising the format from the content. Plain
/// lists and CSV are all or none (a bad line stops the hunt before it
/// starts); STIX and MISP entries that cannot be used are reported and
/// skipped. The built set is cached under the feeds' contents.
fn load_indicators(paths: &[PathBuf], quiet: bool, cache: Option<PathBuf>) -> Result<IndicatorSet> {
    use crate::feed_cache::{FeedCache, FeedNote, Loaded};
    if paths.is_empty() {
        // Nothing to load, and nothing to cache.
        return Ok(IndicatorSet::new(Vec::new()));
    }
    let cache = cache.map(|dir| FeedCache::new(&dir));
    let mut feeds = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        feeds.push((path.display().to_string(), bytes));
    }
    let key = FeedCache::key(feeds.iter().map(|(_, bytes)| bytes.as_slice()));
    let loaded = match cache.as_ref().and_then(|c| c.get(key)) {
        Some(loaded) if loaded.notes.len() == feeds.len() => loaded,
        _ => {
            let mut specs = Vec::new();
            let mut notes = Vec::with_capacity(feeds.len());
            for (name, bytes) in &feeds {
                let parsed = parse_feed(bytes, name)?;
                notes.push(FeedNote {
                    count: parsed.specs.len(),
                    warnings: parsed.warnings,
                });
                specs.extend(parsed.specs);
            }
            // Duplicates cost nothing: the set reports each value once per
            // event.
            let loaded = Loaded {
                set: IndicatorSet::new(specs),
                notes,
            };
            if let Some(cache) = &cache
                && let Err(problem) = cache.put(key, &loaded)
                && !quiet
            {
                eprintln!("warning: parsed indicators not cached: {problem}");
            }
            loaded
        }
    };
    if !quiet {
        for ((name, _), note) in feeds.iter().zip(&loaded.notes) {
            for warning in &note.warnings {
                eprintln!("warning: {name}: skipped {warning}");
            }
            eprintln!("{} indicators from {name}", note.count);
        }
    }
    Ok(loaded.set)
}

/// One feed's indicators and the entries it skipped.
struct Parsed {
    specs: Vec<IndicatorSpec>,
    warnings: Vec<String>,
}

/// One feed file: a STIX bundle, a MISP event, a CSV file or a plain list,
/// told apart by its content.
fn parse_feed(bytes: &[u8], name: &str) -> Result<Parsed> {
    let text = String::from_utf8_lossy(bytes);
    let head = text.trim_start();
    let (rows, problems) = if head.starts_with('{') {
        let is_bundle = serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .is_some_and(|v| v.get("type").and_then(|t| t.as_str()) == Some("bundle"));
        let read = if is_bundle {
            crrt_intel::stix::import_bundle(bytes)
        } else {
            crrt_intel::misp::import_event(bytes)
        };
        read.with_context(|| name.to_owned())?
    } else {
        let first = head.lines().next().unwrap_or_default().to_ascii_lowercase();
        let csv = first.contains(',')
            && first
                .split(',')
                .any(|c| c.trim() == "value" || c.trim() == "indicator");
        let read = if csv {
            crrt_intel::csv_rows::parse(bytes)
        } else {
            crrt_intel::bulk::parse(&text).map(|values| {
                values
                    .into_iter()
                    .map(|observable| crrt_intel::stix::Incoming {
                        observable,
                        tlp: None,
                        confidence: None,
                        first_seen: None,
                        expires_at: None,
                        tags: Vec::new(),
                        description: None,
                        source: None,
                    })
                    .collect()
            })
        };
        match read {
            Ok(rows) => (rows, Vec::new()),
            Err(problems) => {
                let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
                bail!("{name}: no indicator was loaded:\n{}", list.join("\n"));
            }
        }
    };
    Ok(Parsed {
        specs: rows
            .into_iter()
            .map(|row| IndicatorSpec {
                id: row.observable.value.clone(),
                observable: row.observable,
                tags: row.tags,
            })
            .collect(),
        warnings: problems.iter().map(ToString::to_string).collect(),
    })
}

/// Compiles the YARA rule files, if any were given. A folder without
/// rule files is an error; rule files that do not compile are not.
fn load_yara(paths: &[PathBuf], cache: Option<PathBuf>) -> Result<Option<YaraRules>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut loader = YaraLoader::new();
    if let Some(dir) = cache {
        loader = loader.cache_dir(dir);
    }
    for path in paths {
        loader = loader.path(path);
    }
    let rules = loader.load()?;
    if rules.rule_count() == 0 {
        let (files, _) = rules.file_counts();
        let problems: Vec<String> = rules
            .diagnostics()
            .iter()
            .take(10)
            .map(|d| format!("  {d}"))
            .collect();
        bail!(
            "no YARA rule compiled from {files} files:\n{}",
            problems.join("\n")
        );
    }
    Ok(Some(rules))
}

fn rule_cache_dir(args: &HuntArgs) -> Option<PathBuf> {
    if args.no_rule_cache {
        return None;
    }
    if let Some(dir) = &args.rule_cache {
        return Some(dir.clone());
    }
    let nonempty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    nonempty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|base| base.join("crrt"))
}

fn report_rule_problems(problems: &[crrt_hunt::Diagnostic], quiet: bool) {
    if quiet {
        return;
    }
    for problem in problems {
        eprintln!("warning: skipped {problem}");
    }
}

fn run_with_progress(
    hunter: &Hunter<'_>,
    evidence: &[crrt_hunt::Evidence],
    progress: &Progress,
    quiet: bool,
    spill: Spill,
    each: &mut (dyn FnMut(crrt_hunt::Found) -> std::io::Result<()> + Send),
) -> std::io::Result<HuntReport> {
    let show = !quiet && std::io::stderr().is_terminal();
    if !show {
        return hunter.run_each(evidence, progress, spill, each);
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| hunter.run_each(evidence, progress, spill, each));
        while !worker.is_finished() {
            // A pipe's size is known only once read: the bar grows with it.
            let done = progress.bytes_done.load(Ordering::Relaxed);
            bar.set_length(progress.bytes_total.load(Ordering::Relaxed).max(done));
            bar.set_position(done);
            bar.set_message(format!(
                "{} events, {} findings",
                progress.records.load(Ordering::Relaxed),
                progress.findings.load(Ordering::Relaxed)
            ));
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
        match worker.join() {
            Ok(report) => report,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn parse_status(text: &str) -> Result<Status, String> {
    text.parse::<Status>().map_err(|()| {
        format!("unknown status {text:?}: expected stable, test, experimental, deprecated or unsupported")
    })
}

fn parse_time(text: &str) -> Result<jiff::Timestamp, String> {
    parse_time_bound(text, false)
}

fn parse_time_end(text: &str) -> Result<jiff::Timestamp, String> {
    parse_time_bound(text, true)
}

fn parse_time_bound(text: &str, end_of_day: bool) -> Result<jiff::Timestamp, String> {
    // A date alone is a whole day: --from starts it, --to ends it.
    let Ok(date) = text.trim().parse::<jiff::civil::Date>() else {
        return crrt_hunt::parse_timestamp(text).ok_or_else(|| {
            format!(
                "{text:?} is not a time: use RFC 3339 (2022-02-23T04:00:00Z) or a date (2022-02-23)"
            )
        });
    };
    let time = if end_of_day {
        jiff::civil::Time::MAX
    } else {
        jiff::civil::Time::MIN
    };
    date.to_datetime(time)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?}: expected NAME=VALUE")),
    }
}
