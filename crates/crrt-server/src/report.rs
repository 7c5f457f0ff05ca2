//! A mission report rendered three ways: Markdown, a standalone HTML
//! document (shown in the UI and printed), and PDF printed from that HTML
//! by headless Chromium. The TLP marking heads and foots every page: the
//! HTML puts it in a table's `thead`/`tfoot`, which browsers repeat on
//! each printed page.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crrt_platform::Report;
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// How long Chromium may take to print one report.
const PDF_TIMEOUT: Duration = Duration::from_secs(60);

fn title(r: &Report) -> String {
    let kind = if r.kind == "final" {
        "Final report"
    } else {
        "Situation report"
    };
    format!("{kind}: {}", r.mission_title)
}

fn period(r: &Report) -> Option<String> {
    r.period_from
        .as_ref()
        .map(|from| format!("{} to {}", short(from), short(&r.period_to)))
}

/// `2022-02-23T04:00:00.000000Z` → `2022-02-23 04:00 UTC`.
fn short(time: &str) -> String {
    match (time.get(..10), time.get(11..16)) {
        (Some(date), Some(hm)) if time.len() > 16 => format!("{date} {hm} UTC"),
        _ => time.to_owned(),
    }
}

fn tlp_class(tlp: &str) -> String {
    tlp.trim_start_matches("TLP:")
        .to_ascii_lowercase()
        .replace('+', "-")
}

// ----- Markdown -----

/// Table cells: pipes and line breaks would end the cell.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "**{}**\n", r.tlp);
    let _ = writeln!(w, "# {}\n", title(r));
    let _ = writeln!(
        w,
        "Mission status: {} · generated {} for {}",
        r.mission_status,
        short(&r.generated_at),
        r.reader
    );
    if let Some(period) = period(r) {
        let _ = writeln!(w, "\nPeriod: {period}");
    }
    let final_report = r.kind == "final";
    if final_report {
        let _ = writeln!(w, "\n## The request\n");
        let q = &r.request;
        let _ = writeln!(
            w,
            "{} ({}) asked for help on {}, urgency {}.\n\n**{}**\n\n{}\n",
            q.institution,
            q.country,
            short(&q.filed_at),
            q.urgency,
            q.summary,
            q.symptoms
        );
        if !q.affected_systems.is_empty() {
            let _ = writeln!(w, "Affected systems: {}", q.affected_systems.join(", "));
        }
        let _ = writeln!(w, "\n## The team\n");
        let _ = writeln!(w, "Member states: {}\n", r.member_states.join(", "));
        let _ = writeln!(
            w,
            "| Name | Organisation | Country | Skills |\n| --- | --- | --- | --- |"
        );
        for m in &r.team {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                cell(&m.name),
                cell(&m.organisation),
                cell(&m.country),
                cell(&m.skills.join(", "))
            );
        }
    }
    let levels: Vec<String> = r
        .findings_by_level
        .iter()
        .map(|(l, n)| format!("{n} {l}"))
        .collect();
    let heading = if final_report {
        "Findings"
    } else {
        "New findings"
    };
    let _ = writeln!(w, "\n## {heading}\n");
    let _ = writeln!(
        w,
        "{} findings{}.",
        r.findings_total,
        if levels.is_empty() {
            String::new()
        } else {
            format!(" ({})", levels.join(", "))
        }
    );
    if !r.techniques.is_empty() {
        let _ = writeln!(w, "\n### By ATT&CK technique\n");
        let _ = writeln!(
            w,
            "| Technique | Findings | Rules | Hosts |\n| --- | --- | --- | --- |"
        );
        for t in &r.techniques {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                cell(&t.technique),
                t.findings,
                cell(&t.rules.join(", ")),
                cell(&t.hosts.join(", "))
            );
        }
    }
    if !r.findings.is_empty() {
        let _ = writeln!(w, "\n### Findings\n");
        let _ = writeln!(
            w,
            "| Time | Level | Rule | Host | Evidence | Triage |\n| --- | --- | --- | --- | --- | --- |"
        );
        for f in &r.findings {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                f.at.as_deref().map(short).unwrap_or_default(),
                f.level,
                cell(&f.rule_title),
                cell(f.host.as_deref().unwrap_or("")),
                cell(&f.evidence_file),
                f.triage
            );
        }
    }
    let heading = if final_report {
        "Indicators shared"
    } else {
        "New indicators"
    };
    let _ = writeln!(w, "\n## {heading}\n");
    if r.indicators.is_empty() {
        let _ = writeln!(w, "None.");
    } else {
        let _ = writeln!(
            w,
            "| Type | Value | TLP | Source | Sightings |\n| --- | --- | --- | --- | --- |"
        );
        for i in &r.indicators {
            let _ = writeln!(
                w,
                "| {} | `{}` | TLP:{} | {} | {} |",
                i.kind,
                cell(&i.value).replace('`', "'"),
                i.tlp.to_ascii_uppercase(),
                cell(&i.source),
                i.sightings
            );
        }
    }
    let _ = writeln!(w, "\n## Website alerts\n");
    if r.alerts.is_empty() {
        let _ = writeln!(w, "None.");
    }
    for a in &r.alerts {
        let _ = writeln!(
            w,
            "- {} {}: {} (opened {}{})",
            a.target,
            a.kind,
            a.summary,
            short(&a.opened_at),
            a.closed_at
                .as_deref()
                .map(|c| format!(", closed {}", short(c)))
                .unwrap_or_else(|| ", open".into())
        );
    }
    let _ = writeln!(w, "\n## Tasks\n");
    let _ = writeln!(
        w,
        "Done: {} · open: {}\n",
        r.tasks_done.len(),
        r.tasks_open.len()
    );
    for t in &r.tasks_done {
        let _ = writeln!(w, "- [x] {} ({})", t.title, t.case_title);
    }
    for t in &r.tasks_open {
        let _ = writeln!(w, "- [ ] {} ({}, {})", t.title, t.case_title, t.status);
    }
    if final_report {
        let _ = writeln!(w, "\n## Timeline\n");
        for t in &r.timeline {
            let _ = writeln!(
                w,
                "- {} · {} · {}",
                t.at.as_deref()
                    .map(short)
                    .unwrap_or_else(|| "undated".into()),
                t.kind,
                t.title
            );
        }
        let _ = writeln!(w, "\n## Recommendations\n");
        let _ = writeln!(
            w,
            "{}",
            r.recommendations
                .as_deref()
                .unwrap_or("The team has not written recommendations yet.")
        );
        let _ = writeln!(w, "\n## Appendix: evidence\n");
        let _ = writeln!(
            w,
            "| Case | File | Bytes | SHA-256 | Uploaded |\n| --- | --- | --- | --- | --- |"
        );
        for e in &r.evidence {
            let _ = writeln!(
                w,
                "| {} | {} | {} | `{}` | {} by {} |",
                cell(&e.case_title),
                cell(&e.name),
                e.size,
                e.sha256,
                short(&e.uploaded_at),
                cell(&e.uploaded_by)
            );
        }
    }
    let _ = writeln!(w, "\n**{}**", r.tlp);
    out
}

// ----- HTML -----

const CSS: &str = "
body { font: 10.5pt/1.45 'DejaVu Sans', 'Noto Sans', Arial, sans-serif; color: #111; margin: 0 auto; max-width: 60rem; padding: 0 1rem; }
table.page { width: 100%; border-collapse: collapse; }
table.page > thead td, table.page > tfoot td { text-align: center; padding: 4pt 0; }
.tlp { display: inline-block; font-weight: bold; padding: 2pt 8pt; background: #000; letter-spacing: .05em; }
.tlp-red { color: #ff2b2b; } .tlp-amber, .tlp-amber-strict { color: #ffc000; }
.tlp-green { color: #33ff00; } .tlp-clear { color: #fff; }
h1 { font-size: 18pt; margin: .3em 0; } h2 { font-size: 13pt; border-bottom: 1px solid #999; margin-top: 1.4em; }
h3 { font-size: 11pt; }
table.data { border-collapse: collapse; width: 100%; margin: .5em 0; font-size: 9pt; }
table.data th, table.data td { border: 1px solid #bbb; padding: 2pt 4pt; text-align: left; vertical-align: top; overflow-wrap: break-word; }
table.data th { background: #eee; }
.muted { color: #555; } code { font-size: 8.5pt; overflow-wrap: anywhere; }
@page { size: A4; margin: 12mm 12mm; }
@media print { h2, h3 { break-after: avoid; } tr { break-inside: avoid; } }
";

fn data_table(headers: &[&str], rows: Vec<Vec<Markup>>) -> Markup {
    html! {
        table.data {
            thead { tr { @for h in headers { th { (h) } } } }
            tbody { @for row in rows { tr { @for c in row { td { (c) } } } } }
        }
    }
}

pub fn html(r: &Report) -> String {
    let final_report = r.kind == "final";
    let tlp = html! { span class={ "tlp tlp-" (tlp_class(&r.tlp)) } { (r.tlp) } };
    let body = html! {
        h1 { (title(r)) }
        p.muted {
            "Mission status: " (r.mission_status) " · generated " (short(&r.generated_at)) " for " (r.reader)
            @if let Some(period) = period(r) { br; "Period: " (period) }
        }
        @if final_report {
            h2 { "The request" }
            p { (r.request.institution) " (" (r.request.country) ") asked for help on "
                (short(&r.request.filed_at)) ", urgency " (r.request.urgency) "." }
            p { strong { (r.request.summary) } }
            p { (r.request.symptoms) }
            @if !r.request.affected_systems.is_empty() {
                p { "Affected systems: " (r.request.affected_systems.join(", ")) }
            }
            h2 { "The team" }
            p { "Member states: " (r.member_states.join(", ")) }
            (data_table(&["Name", "Organisation", "Country", "Skills"], r.team.iter().map(|m| vec![
                html! { (m.name) }, html! { (m.organisation) }, html! { (m.country) }, html! { (m.skills.join(", ")) },
            ]).collect()))
        }
        h2 { @if final_report { "Findings" } @else { "New findings" } }
        p { (r.findings_total) " findings"
            @if !r.findings_by_level.is_empty() {
                " (" (r.findings_by_level.iter().map(|(l, n)| format!("{n} {l}")).collect::<Vec<_>>().join(", ")) ")"
            } "." }
        @if !r.techniques.is_empty() {
            h3 { "By ATT&CK technique" }
            (data_table(&["Technique", "Findings", "Rules", "Hosts"], r.techniques.iter().map(|t| vec![
                html! { (t.technique) }, html! { (t.findings) }, html! { (t.rules.join(", ")) }, html! { (t.hosts.join(", ")) },
            ]).collect()))
        }
        @if !r.findings.is_empty() {
            h3 { "Findings" }
            (data_table(&["Time", "Level", "Rule", "Host", "Evidence", "Triage"], r.findings.iter().map(|f| vec![
                html! { (f.at.as_deref().map(short).unwrap_or_default()) }, html! { (f.level) },
                html! { (f.rule_title) }, html! { (f.host.as_deref().unwrap_or("")) },
                html! { code { (f.evidence_file) } }, html! { (f.triage.replace('_', " ")) },
            ]).collect()))
            @if r.findings_total > r.findings.len() {
                p.muted { "The first " (r.findings.len()) " are listed." }
            }
        }
        h2 { @if final_report { "Indicators shared" } @else { "New indicators" } }
        @if r.indicators.is_empty() { p { "None." } } @else {
            (data_table(&["Type", "Value", "TLP", "Source", "Sightings"], r.indicators.iter().map(|i| vec![
                html! { (i.kind) }, html! { code { (i.value) } },
                html! { span class={ "tlp tlp-" (tlp_class(&i.tlp)) } { "TLP:" (i.tlp.to_ascii_uppercase()) } },
                html! { (i.source) }, html! { (i.sightings) },
            ]).collect()))
        }
        h2 { "Website alerts" }
        @if r.alerts.is_empty() { p { "None." } } @else {
            (data_table(&["Site", "Alert", "Opened", "Closed"], r.alerts.iter().map(|a| vec![
                html! { (a.target) }, html! { (a.kind) ": " (a.summary) },
                html! { (short(&a.opened_at)) }, html! { (a.closed_at.as_deref().map(short).unwrap_or_else(|| "open".into())) },
            ]).collect()))
        }
        h2 { "Tasks" }
        p { "Done: " (r.tasks_done.len()) " · open: " (r.tasks_open.len()) }
        @if !r.tasks_done.is_empty() || !r.tasks_open.is_empty() {
            (data_table(&["Task", "Case", "Status", "Due"], r.tasks_done.iter().chain(&r.tasks_open).map(|t| vec![
                html! { (t.title) }, html! { (t.case_title) }, html! { (t.status.replace('_', " ")) },
                html! { (t.due_on.as_deref().unwrap_or("")) },
            ]).collect()))
        }
        @if final_report {
            h2 { "Timeline" }
            (data_table(&["Time", "What", "Case"], r.timeline.iter().map(|t| vec![
                html! { (t.at.as_deref().map(short).unwrap_or_else(|| "undated".into())) },
                html! { (t.kind) ": " (t.title) }, html! { (t.case_title) },
            ]).collect()))
            h2 { "Recommendations" }
            @match &r.recommendations {
                Some(text) => { div { (PreEscaped(crrt_platform::render_markdown(text))) } }
                None => { p.muted { "The team has not written recommendations yet." } }
            }
            h2 { "Appendix: evidence" }
            (data_table(&["Case", "File", "Bytes", "SHA-256", "Uploaded"], r.evidence.iter().map(|e| vec![
                html! { (e.case_title) }, html! { (e.name) }, html! { (e.size) },
                html! { code { (e.sha256) } }, html! { (short(&e.uploaded_at)) " by " (e.uploaded_by) },
            ]).collect()))
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="color-scheme" content="light";
                title { (r.tlp) " " (title(r)) }
                style { (PreEscaped(CSS)) }
            }
            body {
                table.page {
                    thead { tr { td { (tlp) } } }
                    tfoot { tr { td { (tlp) } } }
                    tbody { tr { td { (body) } } }
                }
            }
        }
    }
    .into_string()
}

// ----- PDF -----

/// Why a PDF could not be made.
#[derive(Debug)]
pub enum PdfError {
    /// No Chromium here: PDF is off, Markdown and HTML still work.
    Unavailable(String),
    Failed(String),
}

/// The Chromium to print with: `CRRT_CHROMIUM`, else the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CRRT_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|candidate| candidate.is_file())
}

/// Prints the report's HTML to PDF with headless Chromium, in a fresh
/// profile in a temporary folder that is removed afterwards. The page loads
/// nothing from the network: the HTML is self-contained.
pub async fn pdf(r: &Report) -> Result<Vec<u8>, PdfError> {
    let Some(browser) = chromium() else {
        return Err(PdfError::Unavailable(
            "PDF reports need Chromium on the server (Debian: apt-get install chromium, or set CRRT_CHROMIUM); Markdown and HTML are available".into(),
        ));
    };
    let dir = tempfile::tempdir().map_err(|e| PdfError::Failed(e.to_string()))?;
    let input = dir.path().join("report.html");
    let output = dir.path().join("report.pdf");
    tokio::fs::write(&input, html(r))
        .await
        .map_err(|e| PdfError::Failed(e.to_string()))?;
    let mut command = tokio::process::Command::new(&browser);
    command
        .arg("--headless")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--disable-extensions")
        .arg("--disable-background-networking")
        .arg("--no-first-run")
        .arg("--no-pdf-header-footer")
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", output.display()))
        .arg(format!("file://{}", input.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let run = command.output();
    let result = tokio::time::timeout(PDF_TIMEOUT, run)
        .await
        .map_err(|_| PdfError::Failed(format!("Chromium took over {} s", PDF_TIMEOUT.as_secs())))?
        .map_err(|e| PdfError::Unavailable(format!("{}: {e}", browser.display())))?;
    match tokio::fs::read(&output).await {
        Ok(bytes) if bytes.starts_with(b"%PDF") => Ok(bytes),
        _ => Err(PdfError::Failed(format!(
            "Chromium did not print the report (exit {}): {}",
            result.status,
            String::from_utf8_lossy(&result.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ))),
    }
}
