//! How findings and the hunt summary are printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use crrt_hunt::{Finding, Found, HuntReport, RuleSet, Severity};

pub const CSV_HEADER: [&str; 11] = [
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
    "event",
];

/// Where findings go, one at a time in the hunt's order.
pub type Sink = Box<dyn Write + Send>;

/// Writes findings as they come: JSON Lines and CSV straight through; the
/// table keeps its (short) rows to print them grouped by severity.
pub enum FindingWriter {
    Jsonl(Sink),
    Csv(Box<csv::Writer<Sink>>),
    Table {
        out: Sink,
        color: bool,
        /// Rows per severity, in `Severity::ALL` order.
        rows: [Vec<[String; 5]>; 5],
    },
}

impl FindingWriter {
    pub fn new(format: crate::hunt::OutputFormat, out: Sink, color: bool) -> Result<Self> {
        use crate::hunt::OutputFormat;
        Ok(match format {
            OutputFormat::Jsonl => FindingWriter::Jsonl(out),
            OutputFormat::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                writer.write_record(CSV_HEADER)?;
                FindingWriter::Csv(Box::new(writer))
            }
            OutputFormat::Table => FindingWriter::Table {
                out,
                color,
                rows: Default::default(),
            },
        })
    }

    pub fn write(&mut self, found: &Found) -> std::io::Result<()> {
        let f = found.finding();
        match self {
            FindingWriter::Jsonl(out) => {
                serde_json::to_writer(&mut *out, found)?;
                out.write_all(b"\n")
            }
            FindingWriter::Csv(writer) => writer
                .write_record([
                    f.timestamp
                        .map(crrt_hunt::format_timestamp)
                        .unwrap_or_default(),
                    f.host.clone().unwrap_or_default(),
                    f.channel.clone().unwrap_or_default(),
                    f.event_id.map(|id| id.to_string()).unwrap_or_default(),
                    f.record_id.map(|id| id.to_string()).unwrap_or_default(),
                    f.rule_id.clone().unwrap_or_default(),
                    f.rule_title.clone(),
                    f.level.as_str().to_owned(),
                    f.tags.join(";"),
                    f.evidence_file.clone(),
                    found.event().get().to_owned(),
                ])
                .map_err(std::io::Error::other),
            FindingWriter::Table { rows, .. } => {
                let at = Severity::ALL
                    .iter()
                    .position(|l| *l == f.level)
                    .unwrap_or(0);
                rows[at].push(row(f));
                Ok(())
            }
        }
    }

    pub fn finish(self) -> std::io::Result<()> {
        match self {
            FindingWriter::Jsonl(mut out) => out.flush(),
            FindingWriter::Csv(mut writer) => writer.flush(),
            FindingWriter::Table {
                mut out,
                color,
                rows,
            } => {
                write_table(&mut out, &rows, color)?;
                out.flush()
            }
        }
    }
}

/// Findings grouped by severity, most severe first, in time order within.
fn write_table(
    out: &mut dyn Write,
    rows: &[Vec<[String; 5]>; 5],
    color: bool,
) -> std::io::Result<()> {
    if rows.iter().all(Vec::is_empty) {
        writeln!(out, "No findings.")?;
        return Ok(());
    }
    for (severity, rows) in Severity::ALL.iter().zip(rows) {
        if rows.is_empty() {
            continue;
        }
        let title = format!("{} ({})", severity.as_str().to_uppercase(), rows.len());
        writeln!(out, "\n{}", paint(&title, *severity, color))?;
        let header = ["time (UTC)", "host", "rule", "event", "evidence"];
        let limits = [19, 24, 64, 28, 48];
        let widths: Vec<usize> = (0..5)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
                    .min(limits[i])
            })
            .collect();
        let line = |cells: [&str; 5]| -> String {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let cell = truncate(cell, widths[i]);
                if i == 4 {
                    text.push_str(&cell);
                } else {
                    text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            text.trim_end().to_owned()
        };
        writeln!(out, "{}", line(header))?;
        for r in rows {
            writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]))?;
        }
    }
    Ok(())
}

/// What the summary says about the findings, counted as they pass.
#[derive(Debug, Default)]
pub struct Tally {
    pub total: usize,
    by_level: BTreeMap<Severity, usize>,
    by_rule: BTreeMap<(String, Severity), usize>,
    by_host: BTreeMap<String, usize>,
}

impl Tally {
    pub fn add(&mut self, f: &Finding) {
        self.total += 1;
        *self.by_level.entry(f.level).or_default() += 1;
        match self.by_rule.get_mut(&(f.rule_title.clone(), f.level)) {
            Some(n) => *n += 1,
            None => {
                self.by_rule.insert((f.rule_title.clone(), f.level), 1);
            }
        }
        let host = f.host.as_deref().unwrap_or("-");
        match self.by_host.get_mut(host) {
            Some(n) => *n += 1,
            None => {
                self.by_host.insert(host.to_owned(), 1);
            }
        }
    }
}

fn row(f: &Finding) -> [String; 5] {
    let time = f
        .timestamp
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_owned());
    let channel = f.channel.as_deref().map(short_channel).unwrap_or_default();
    let event = match f.event_id {
        Some(id) => format!("{channel} {id}"),
        None => channel.to_owned(),
    };
    // The end of a path is the part that tells files apart.
    let evidence = tail(&f.evidence_file, 48);
    [
        time,
        f.host.clone().unwrap_or_else(|| "-".to_owned()),
        f.rule_title.clone(),
        event,
        evidence,
    ]
}

fn short_channel(channel: &str) -> &str {
    match channel {
        "Microsoft-Windows-Sysmon/Operational" => "Sysmon",
        "Microsoft-Windows-PowerShell/Operational" => "PowerShell",
        "Microsoft-Windows-Windows Defender/Operational" => "Defender",
        other => other.strip_prefix("Microsoft-Windows-").unwrap_or(other),
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn tail(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_owned();
    }
    let mut out = String::from("…");
    out.extend(text.chars().skip(n - width + 1));
    out
}

fn paint(text: &str, severity: Severity, color: bool) -> String {
    if !color {
        return text.to_owned();
    }
    let code = match severity {
        Severity::Critical => "1;35",
        Severity::High => "1;31",
        Severity::Medium => "1;33",
        Severity::Low => "1;32",
        Severity::Informational => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

pub struct Summary<'a> {
    pub rules: &'a RuleSet,
    pub report: &'a HuntReport,
    pub tally: &'a Tally,
    pub rules_time: Duration,
    pub hunt_time: Duration,
    /// How many indicators were looked for (0: none given).
    pub indicators: usize,
    pub yara: Option<&'a crrt_hunt::YaraRules>,
}

pub fn print_summary(out: &mut dyn Write, s: &Summary<'_>, color: bool) -> Result<()> {
    let stats = &s.report.stats;
    let findings = s.tally;
    let bold = |t: &str| {
        if color {
            format!("\x1b[1m{t}\x1b[0m")
        } else {
            t.to_owned()
        }
    };
    writeln!(out, "\n{}", bold("Summary"))?;
    // A YARA-only hunt reads no events: lines about events would be noise.
    let events_read = !(s.yara.is_some() && stats.files_read() == 0 && stats.records_read == 0);

    let formats: Vec<String> = stats
        .files_by_format
        .iter()
        .map(|(f, n)| format!("{n} {}", f.name()))
        .collect();
    let mut evidence = format!("{} files read", stats.files_read());
    if !formats.is_empty() {
        evidence.push_str(&format!(" ({})", formats.join(", ")));
    }
    if !stats.unsupported.is_empty() {
        evidence.push_str(&format!(
            ", {} skipped (not a log format)",
            stats.unsupported.len()
        ));
    }
    if !stats.failed.is_empty() {
        evidence.push_str(&format!(", {} unreadable", stats.failed.len()));
    }
    if events_read {
        writeln!(out, "  evidence    {evidence}")?;
    }

    let mut events = format!("{} read", stats.records_read);
    if stats.records_outside_window > 0 {
        events.push_str(&format!(
            ", {} outside the time window",
            stats.records_outside_window
        ));
    }
    let skipped: u64 = stats.damaged.iter().map(|d| d.skipped).sum();
    if skipped > 0 {
        events.push_str(&format!(
            ", {skipped} damaged records or lines skipped in {} files",
            stats.damaged.len()
        ));
    }
    if events_read {
        writeln!(out, "  events      {events}")?;
    }

    let counts = s.rules.counts();
    let mut rules = format!("{} detection rules", s.rules.detection_rule_count());
    if s.rules.correlation_rule_count() > 0 {
        rules.push_str(&format!(
            " and {} correlation rules",
            s.rules.correlation_rule_count()
        ));
    }
    rules.push_str(&format!(" from {} files", counts.files));
    if counts.cached_files > 0 {
        rules.push_str(&format!(" ({} from the rule cache)", counts.cached_files));
    }
    if counts.parsed > counts.selected {
        rules.push_str(&format!(
            ", {} left out by the selection or used only by correlations",
            counts.parsed - counts.selected
        ));
    }
    let problems = s.rules.diagnostics().len();
    if problems > 0 {
        rules.push_str(&format!(", {problems} skipped (see warnings)"));
    }
    if events_read || s.rules.detection_rule_count() > 0 {
        writeln!(out, "  rules       {rules}")?;
    }
    if s.indicators > 0 {
        writeln!(
            out,
            "  indicators  {} looked for in every field",
            s.indicators
        )?;
    }

    if let (Some(rules), Some(scan)) = (s.yara, &stats.yara) {
        let (files, compiled) = rules.file_counts();
        let mut line = format!(
            "{} YARA rules from {compiled} of {files} files{}; {} files scanned ({})",
            rules.rule_count(),
            if rules.from_cache() {
                " (compiled, from the rule cache)"
            } else {
                ""
            },
            scan.files_scanned,
            human_bytes(scan.bytes_scanned)
        );
        if !scan.too_large.is_empty() {
            line.push_str(&format!(
                ", {} over the size limit not scanned",
                scan.too_large.len()
            ));
        }
        if !scan.failed.is_empty() {
            line.push_str(&format!(", {} could not be scanned", scan.failed.len()));
        }
        writeln!(out, "  yara        {line}")?;
    }

    let by_level: Vec<String> = Severity::ALL
        .iter()
        .map(|l| (l, findings.by_level.get(l).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .map(|(l, n)| format!("{n} {}", l.as_str()))
        .collect();
    let detail = if by_level.is_empty() {
        String::new()
    } else {
        format!(" ({})", by_level.join(", "))
    };
    writeln!(out, "  findings    {}{detail}", findings.total)?;

    let mut top_rules: Vec<_> = findings.by_rule.iter().collect();
    top_rules.sort_by(|a, b| b.1.cmp(a.1).then(b.0.1.cmp(&a.0.1)).then(a.0.0.cmp(&b.0.0)));
    for (i, ((title, level), n)) in top_rules.iter().take(10).enumerate() {
        let label = if i == 0 { "top rules" } else { "" };
        writeln!(
            out,
            "  {label:<10}  {n:>6}  {} [{}]",
            truncate(title, 70),
            level.as_str()
        )?;
    }
    let mut hosts: Vec<_> = findings.by_host.iter().collect();
    hosts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if !hosts.is_empty() {
        let shown: Vec<String> = hosts
            .iter()
            .take(8)
            .map(|(h, n)| format!("{h} ({n})"))
            .collect();
        let more = if hosts.len() > 8 {
            format!(" and {} more", hosts.len() - 8)
        } else {
            String::new()
        };
        writeln!(out, "  hosts       {}{more}", shown.join(", "))?;
    }
    for site in &s.report.traffic {
        print_traffic(out, site)?;
    }
    let seconds = s.hunt_time.as_secs_f64();
    let rate = if seconds > 0.0 {
        stats.records_read as f64 / seconds
    } else {
        0.0
    };
    let mut speed = Vec::new();
    if events_read {
        speed.push(format!("{rate:.0} events/s"));
    }
    if let Some(scan) = &stats.yara
        && seconds > 0.0
    {
        speed.push(format!(
            "YARA {:.1} MiB/s",
            scan.bytes_scanned as f64 / (1 << 20) as f64 / seconds
        ));
    }
    writeln!(
        out,
        "  time        {:.2} s loading rules, {:.2} s hunting ({})",
        s.rules_time.as_secs_f64(),
        seconds,
        speed.join(", ")
    )?;
    for problem in &stats.failed {
        writeln!(
            out,
            "  unreadable  {}: {}",
            problem.evidence, problem.detail
        )?;
    }
    if let Some(scan) = &stats.yara {
        for (name, size) in &scan.too_large {
            writeln!(
                out,
                "  not scanned {name}: {} over the YARA size limit",
                human_bytes(*size)
            )?;
        }
        for (name, reason) in &scan.failed {
            writeln!(out, "  not scanned {name}: {reason}")?;
        }
    }
    for problem in &stats.damaged {
        writeln!(
            out,
            "  damaged     {}: {} skipped ({})",
            problem.evidence, problem.skipped, problem.detail
        )?;
    }
    Ok(())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// One site's web traffic: volume, top talkers, and each spike with its verdict.
fn print_traffic(out: &mut dyn Write, site: &crrt_hunt::TrafficReport) -> Result<()> {
    let name = if site.host.is_empty() {
        "web access logs".to_owned()
    } else {
        site.host.clone()
    };
    writeln!(
        out,
        "  traffic     {name}: {} requests, {} to {}, usually {} a minute",
        site.requests,
        crrt_hunt::format_timestamp(site.first),
        crrt_hunt::format_timestamp(site.last),
        site.median_per_minute
    )?;
    let talkers: Vec<String> = site
        .top_sources
        .iter()
        .take(5)
        .map(|(source, n)| format!("{source} ({n})"))
        .collect();
    writeln!(out, "  talkers     {}", talkers.join(", "))?;
    for spike in &site.spikes {
        writeln!(
            out,
            "  spike       {} to {}: {} ({} requests, peak {} a minute)",
            crrt_hunt::format_timestamp(spike.start),
            crrt_hunt::format_timestamp(spike.end),
            spike.verdict.as_str(),
            spike.requests,
            spike.peak_per_minute
        )?;
        for reason in &spike.reasons {
            writeln!(out, "                {}", truncate(reason, 100))?;
        }
    }
    Ok(())
}
