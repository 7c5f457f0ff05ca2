//! A case: tasks, notes (with a Markdown preview that needs no script),
//! evidence, hunts with live progress, findings with triage, and the
//! timeline with its filters.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use crrt_platform::policy::Action;
use crrt_platform::{
    CaseView, Evidence, Hunt, MissionView, NewHunt, NewTask, Page, PlatformError, RulePack,
    StoredFinding, TaskUpdate,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{
    Moment, action_button, badge, csrf, empty, maybe_time, page, pager, render, short, size, time,
    timeline as timeline_list, trusted,
};
use super::{Ctx, Form, NoFields, PageParam, done};
use crate::AppState;

const FINDINGS_PER_PAGE: i64 = 100;
const TIMELINE_PER_PAGE: usize = 200;
/// The timeline reads at most this many findings before filtering.
const TIMELINE_FINDINGS: i64 = 10_000;

/// Everything the case page shows.
struct CasePage {
    view: CaseView,
    mission: MissionView,
    evidence: Vec<Evidence>,
    hunts: Vec<Hunt>,
    findings: Vec<StoredFinding>,
    rulepacks: Vec<RulePack>,
    indicators: Vec<crrt_platform::IndicatorView>,
    names: HashMap<String, String>,
}

async fn load(state: &AppState, ctx: &Ctx, id: &str) -> crrt_platform::Result<CasePage> {
    let platform = &state.platform;
    let view = platform.case(&ctx.actor, id).await?;
    let mission = platform.mission(&ctx.actor, &view.case.mission_id).await?;
    let first = |limit| Page { limit, offset: 0 };
    let evidence = platform.case_evidence(&ctx.actor, id, first(500)).await?;
    let hunts = platform.hunts(&ctx.actor, id, first(20)).await?;
    let findings = platform.findings(&ctx.actor, id, first(10)).await?;
    let rulepacks = if ctx.may(Action::ReadRulePacks) {
        platform.rulepacks(&ctx.actor, first(200)).await?
    } else {
        Vec::new()
    };
    let indicators = platform
        .indicators(
            &ctx.actor,
            &crrt_platform::IndicatorFilter {
                case_id: Some(id.to_owned()),
                ..Default::default()
            },
            first(200),
        )
        .await?;
    let mut ids: Vec<&str> = view.notes.iter().map(|n| n.author_id.as_str()).collect();
    ids.extend(evidence.iter().map(|e| e.uploaded_by.as_str()));
    ids.extend(view.tasks.iter().filter_map(|t| t.assignee_id.as_deref()));
    let names = platform.display_names(&ids).await?;
    Ok(CasePage {
        view,
        mission,
        evidence,
        hunts,
        findings,
        rulepacks,
        indicators,
        names,
    })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    match load(&state, &ctx, &id).await {
        Ok(data) => case_page(&ctx, &data, None, StatusCode::OK),
        Err(e) => ctx.fail(e),
    }
}

/// A note being written: its text, and the preview or problem to show.
struct Draft {
    markdown: String,
    preview: Option<String>,
    problem: Option<String>,
}

fn case_page(ctx: &Ctx, data: &CasePage, draft: Option<&Draft>, status: StatusCode) -> Response {
    let case = &data.view.case;
    let mission = &data.mission.mission;
    let member = data.mission.team.iter().any(|u| u.id == ctx.actor.user.id);
    let work = ctx.may(Action::WorkOnMission { mission, member });
    let upload = ctx.may(Action::UploadEvidence { mission, member });
    let name = |id: &str| {
        data.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| short(id).to_owned())
    };
    let body = html! {
        h1 { (case.title) " " (badge("state", &case.status)) }
        p.muted {
            @if let Some(p) = &case.playbook { "Playbook " strong { (p) } " · " }
            "opened " (time(&case.created_at)) " · "
            a href={ "/cases/" (case.id) "/timeline" } { "Timeline" } " · "
            a href={ "/cases/" (case.id) "/findings" } { "All findings" }
        }
        section #tasks {
            h2 { "Tasks" }
            @if data.view.tasks.is_empty() { (empty("No tasks.")) } @else {
                table {
                    thead { tr { th { "Task" } th { "Assignee" } th { "Due" } th { "State" } @if work { th { "Change" } } } }
                    tbody {
                        @for t in &data.view.tasks {
                            tr #{ "task-" (t.id) } {
                                td { (t.title) }
                                td { (t.assignee_id.as_deref().map(name).unwrap_or_else(|| "—".into())) }
                                td { (t.due_on.as_deref().unwrap_or("—")) }
                                td { (badge("state", &t.status)) }
                                @if work {
                                    td {
                                        form.inline method="post" action={ "/tasks/" (t.id) } {
                                            (csrf(ctx)) input type="hidden" name="version" value=(t.version);
                                            label.sr for={ "assign-" (t.id) } { "Assignee" }
                                            select id={ "assign-" (t.id) } name="assignee_id" {
                                                option value="" { "nobody" }
                                                @for u in &data.mission.team {
                                                    option value=(u.id) selected[t.assignee_id.as_deref() == Some(u.id.as_str())] { (u.display_name) }
                                                }
                                            }
                                            label.sr for={ "status-" (t.id) } { "State" }
                                            select id={ "status-" (t.id) } name="status" {
                                                @for s in ["open", "in_progress", "done"] {
                                                    option value=(s) selected[t.status == s] { (s.replace('_', " ")) }
                                                }
                                            }
                                            button type="submit" { "Save" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if work {
                form.row method="post" action={ "/cases/" (case.id) "/tasks" } {
                    (csrf(ctx))
                    label for="task-title" { "New task" }
                    input #task-title name="title" required maxlength="300" placeholder="Collect EVTX from DC01";
                    label for="task-assignee" { "Assignee" }
                    select #task-assignee name="assignee_id" {
                        option value="" { "nobody" }
                        @for u in &data.mission.team { option value=(u.id) { (u.display_name) } }
                    }
                    label for="task-due" { "Due" }
                    input #task-due type="date" name="due_on";
                    button.primary type="submit" { "Add task" }
                }
            }
        }
        section #notes {
            h2 { "Notes" }
            @if data.view.notes.is_empty() { (empty("No notes.")) }
            @for n in &data.view.notes {
                article.note #{ "note-" (n.id) } {
                    header { strong { (name(&n.author_id)) } " · " (time(&n.created_at)) }
                    div.markdown { (trusted(&n.html)) }
                }
            }
            @if work {
                @if let Some(d) = draft {
                    @if let Some(problem) = &d.problem { div.flash.error role="alert" { (problem) } }
                    @if let Some(preview) = &d.preview {
                        div.preview { h3 { "Preview" } div.markdown { (trusted(preview)) } }
                    }
                }
                form.stack method="post" action={ "/cases/" (case.id) "/notes" } {
                    (csrf(ctx))
                    label for="note" { "New note (Markdown)" }
                    textarea #note name="markdown" rows="5" required { (draft.map_or("", |d| d.markdown.as_str())) }
                    div.row {
                        button type="submit" name="intent" value="preview" { "Preview" }
                        button.primary type="submit" name="intent" value="save" { "Add note" }
                    }
                }
            }
        }
        section #evidence {
            h2 { "Evidence" }
            @if data.evidence.is_empty() { (empty("No evidence uploaded.")) } @else {
                table {
                    thead { tr { th { "File" } th { "Size" } th { "SHA-256" } th { "Uploaded" } } }
                    tbody { @for e in &data.evidence {
                        tr {
                            td { a href={ "/api/v1/evidence/" (e.id) "/content" } download { (e.name) } }
                            td.num { (size(e.size)) }
                            td { code.hash title=(e.sha256) { (e.sha256) } }
                            td { (name(&e.uploaded_by)) " · " (time(&e.uploaded_at)) " from " (e.uploaded_from) }
                        }
                    } }
                }
            }
            @if upload {
                form.row method="post" action={ "/cases/" (case.id) "/evidence" } enctype="multipart/form-data" {
                    (csrf(ctx))
                    label for="file" { "Upload evidence" }
                    input #file type="file" name="file" required;
                    button.primary type="submit" { "Upload" }
                }
                p.muted { "Files are kept unchanged and hashed on arrival; the same content twice is refused. Large files over an unreliable link: "
                    code { "crrt upload --server URL --token TOKEN --case " (case.id) " FILE..." } " resumes where a broken connection stopped." }
            }
        }
        section #hunts {
            h2 { "Hunts" }
            @if data.hunts.is_empty() { (empty("No hunts yet.")) } @else {
                table {
                    thead { tr { th { "Started" } th { "State" } th { "Progress" } th { "Findings" } th { "Finished" } @if work { th {} } } }
                    tbody { @for h in &data.hunts {
                        tr data-hunt=(h.id) data-status=(h.status) {
                            td { (time(&h.created_at)) }
                            td data-field="status" { (badge("state", &h.status)) }
                            td data-field="progress" { (progress(h)) }
                            td.num data-field="n_findings" { (h.n_findings) }
                            td { (maybe_time(h.finished_at.as_deref()))
                                @if let Some(err) = &h.error { div.error { (err) } } }
                            @if work { td { @if matches!(h.status.as_str(), "queued" | "running") {
                                (action_button(ctx, &format!("/hunts/{}/cancel", h.id), &[], "Cancel", "danger"))
                            } } }
                        }
                    } }
                }
            }
            @if work {
                @if data.rulepacks.is_empty() && data.indicators.is_empty() {
                    p.muted { "Upload a Sigma or YARA rule pack on " a href="/rulepacks" { "Rule packs" } ", or share indicators on this case, to hunt." }
                } @else if data.evidence.is_empty() {
                    p.muted { "Upload evidence to hunt in it." }
                } @else {
                    form.stack method="post" action={ "/cases/" (case.id) "/hunts" } {
                        (csrf(ctx))
                        fieldset { legend { "Rule packs" }
                            @for p in &data.rulepacks {
                                label.check { input type="checkbox" name="rulepack" value=(p.id); " " (p.name) " (" (p.n_rules) (if p.kind == "yara" { " YARA rules, on files" } else { " Sigma rules" }) ")" }
                            }
                        }
                        @if !data.indicators.is_empty() {
                            label.check { input type="checkbox" name="indicators" value="true" checked;
                                " Also the " (data.indicators.len()) " indicators of this case and its mission" }
                        }
                        fieldset { legend { "Evidence (none ticked: all of it)" }
                            @for e in &data.evidence {
                                label.check { input type="checkbox" name="evidence" value=(e.id); " " (e.name) }
                            }
                        }
                        button.primary type="submit" { "Start hunt" }
                    }
                }
            }
        }
        @if work {
            section #import {
                h2 { "Import findings from the field" }
                p.muted { "Findings of an offline " code { "crrt hunt --format jsonl" } " keep their evidence file names; "
                    "all lines come in or none, each finding once." }
                form.row method="post" action={ "/cases/" (case.id) "/findings/import" } enctype="multipart/form-data" {
                    (csrf(ctx))
                    label for="import-file" { "JSONL file" }
                    input #import-file type="file" name="file" accept=".jsonl,.json,.txt" required;
                    button type="submit" { "Import" }
                }
            }
        }
        section #indicators {
            h2 { "Indicators" }
            (super::indicators::table(&data.indicators))
            @if work {
                details {
                    summary { "Share an indicator on this case" }
                    (super::indicators::share_form(ctx, Some(&case.id)))
                }
            }
        }
        section #findings {
            h2 { "Latest findings" }
            (findings_table(ctx, &data.findings, false))
            p { a href={ "/cases/" (case.id) "/findings" } { "All findings and triage →" } }
        }
    };
    render(
        ctx,
        status,
        &case.title,
        &[
            ("Missions", "/missions".into()),
            (&mission.title, format!("/missions/{}", mission.id)),
        ],
        body,
    )
}

fn progress(h: &Hunt) -> Markup {
    let percent = (h.bytes_total > 0).then(|| h.bytes_done * 100 / h.bytes_total);
    html! {
        @if let Some(p) = percent { progress max="100" value=(p) { (p) "%" } " " }
        span.muted { (h.records_done) " events, " (size(h.bytes_done)) " of " (size(h.bytes_total)) }
    }
}

fn findings_table(ctx: &Ctx, findings: &[StoredFinding], triage: bool) -> Markup {
    html! {
        @if findings.is_empty() { (empty("No findings.")) } @else {
            table.findings {
                thead { tr { th { "When" } th { "Level" } th { "Rule" } th { "Host" } th { "Evidence" } th { "Triage" } } }
                tbody { @for f in findings {
                    tr #{ "finding-" (f.id) } {
                        td { (maybe_time(f.at.as_deref())) }
                        td { (badge("level", &f.level)) }
                        td {
                            details {
                                summary { (f.rule_title) }
                                @if let Some(rule) = &f.rule_id { p.muted { "rule " code { (rule) } } }
                                @if !f.tags.is_empty() { p.muted { (f.tags.join(" ")) } }
                                pre.event { (serde_json::to_string_pretty(&f.event).unwrap_or_default()) }
                            }
                        }
                        td { (f.host.as_deref().unwrap_or("—")) }
                        td { (f.evidence_file) @if let Some(r) = f.record_id { " #" (r) } }
                        td {
                            (badge("state", &f.triage))
                            @if let Some(c) = &f.triage_comment { div.muted { (c) } }
                            @if triage {
                                form.triage method="post" action={ "/findings/" (f.id) "/triage" } {
                                    (csrf(ctx))
                                    label.sr for={ "verdict-" (f.id) } { "Verdict" }
                                    select id={ "verdict-" (f.id) } name="verdict" {
                                        @for v in ["needs_review", "true_positive", "false_positive"] {
                                            option value=(v) selected[f.triage == v] { (v.replace('_', " ")) }
                                        }
                                    }
                                    label.sr for={ "comment-" (f.id) } { "Comment" }
                                    input id={ "comment-" (f.id) } name="comment" placeholder="comment" maxlength="2000"
                                        value=(f.triage_comment.as_deref().unwrap_or(""));
                                    button type="submit" { "Save" }
                                }
                                form.triage method="post" action="/indicators" {
                                    (csrf(ctx))
                                    input type="hidden" name="finding_id" value=(f.id);
                                    input type="hidden" name="case_id" value=(f.case_id);
                                    label.sr for={ "promote-" (f.id) } { "Value to share" }
                                    input id={ "promote-" (f.id) } name="value" placeholder="IP, domain, hash, account" required;
                                    label.sr for={ "promote-tlp-" (f.id) } { "TLP" }
                                    select id={ "promote-tlp-" (f.id) } name="tlp" {
                                        @for t in crrt_intel::Tlp::ALL { option value=(t.as_str()) selected[*t == crrt_intel::Tlp::Amber] { (t.label()) } }
                                    }
                                    button type="submit" { "Share as indicator" }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct TaskForm {
    title: String,
    assignee_id: Option<String>,
    due_on: Option<String>,
}

pub(crate) async fn add_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<TaskForm>,
) -> Response {
    let new = NewTask {
        title: form.title,
        assignee_id: form.assignee_id.filter(|a| !a.is_empty()),
        due_on: form.due_on.filter(|d| !d.is_empty()),
    };
    let outcome = state
        .platform
        .add_task(&ctx.actor, &id, new)
        .await
        .map(|t| format!("Task “{}” added.", t.title));
    done(&format!("/cases/{id}#tasks"), outcome)
}

#[derive(Deserialize)]
pub(crate) struct TaskChange {
    version: i64,
    assignee_id: Option<String>,
    status: Option<String>,
}

pub(crate) async fn update_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<TaskChange>,
) -> Response {
    let update = TaskUpdate {
        version: form.version,
        title: None,
        assignee_id: form.assignee_id,
        status: form.status,
        due_on: None,
    };
    match state.platform.update_task(&ctx.actor, &id, update).await {
        Ok(task) => done(
            &format!("/cases/{}#task-{}", task.case_id, task.id),
            Ok(format!("Task “{}” saved.", task.title)),
        ),
        // Without the task we do not know its case: back to the dashboard.
        Err(e) => done("/dashboard", Err(e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct NoteForm {
    markdown: String,
    intent: Option<String>,
}

pub(crate) async fn add_note(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<NoteForm>,
) -> Response {
    let previewing = form.intent.as_deref() == Some("preview");
    if !previewing {
        match state
            .platform
            .add_note(&ctx.actor, &id, &form.markdown)
            .await
        {
            Ok(note) => {
                return done(
                    &format!("/cases/{id}#note-{}", note.id),
                    Ok("Note added.".into()),
                );
            }
            // Keep what was typed: show the page again with the problem.
            Err(PlatformError::Invalid(problem) | PlatformError::Forbidden(problem)) => {
                return again(&state, &ctx, &id, form.markdown, None, Some(problem)).await;
            }
            Err(e) => return ctx.fail(e),
        }
    }
    let preview = crrt_platform::render_markdown(&form.markdown);
    again(&state, &ctx, &id, form.markdown, Some(preview), None).await
}

async fn again(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    markdown: String,
    preview: Option<String>,
    problem: Option<String>,
) -> Response {
    let status = if problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    match load(state, ctx, id).await {
        Ok(data) => {
            let draft = Draft {
                markdown,
                preview,
                problem,
            };
            case_page(ctx, &data, Some(&draft), status)
        }
        Err(e) => ctx.fail(e),
    }
}

/// A browser upload: the CSRF field must come first (the form puts it
/// there), then the file, streamed to the evidence store chunk by chunk.
pub(crate) async fn upload_evidence(
    State(state): State<AppState>,
    ctx: Ctx,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let back = format!("/cases/{id}#evidence");
    let broken = |e: axum::extract::multipart::MultipartError| {
        done(
            &back,
            Err(PlatformError::Invalid(format!(
                "the upload broke off ({}); nothing was stored",
                e.body_text()
            ))),
        )
    };
    let token = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("_csrf") => match field.text().await {
            Ok(text) => text,
            Err(e) => return broken(e),
        },
        Ok(_) => return super::csrf_refused(),
        Err(e) => return broken(e),
    };
    if !super::same_secret(&token, &ctx.csrf) {
        return super::csrf_refused();
    }
    let mut field = match multipart.next_field().await {
        Ok(Some(field)) if field.name() == Some("file") => field,
        Ok(_) => {
            return done(
                &back,
                Err(PlatformError::Invalid("choose a file to upload".into())),
            );
        }
        Err(e) => return broken(e),
    };
    let name = field.file_name().unwrap_or("upload").to_owned();
    let mut incoming = match state.platform.begin_upload(&ctx.actor, &id).await {
        Ok(incoming) => incoming,
        Err(e) => return done(&back, Err(e)),
    };
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if let Err(e) = incoming.write(&chunk) {
                    return done(&back, Err(e));
                }
            }
            Ok(None) => break,
            // Dropping `incoming` removes the partial file.
            Err(e) => return broken(e),
        }
    }
    let outcome = state
        .platform
        .finish_upload(&ctx.actor, incoming, &name, &address.ip().to_string())
        .await
        .map(|e| format!("{} stored, SHA-256 {}.", e.name, e.sha256));
    done(&back, outcome)
}

pub(crate) async fn start_hunt(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, fields): Form<Vec<(String, String)>>,
) -> Response {
    let pick = |name: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let evidence = pick("evidence");
    let new = NewHunt {
        rulepacks: pick("rulepack"),
        evidence: (!evidence.is_empty()).then_some(evidence),
        indicators: !pick("indicators").is_empty(),
    };
    let outcome = state
        .platform
        .start_hunt(&ctx.actor, &id, new)
        .await
        .map(|_| "Hunt queued; its progress shows below.".to_owned());
    done(&format!("/cases/{id}#hunts"), outcome)
}

pub(crate) async fn cancel_hunt(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, NoFields {}): Form<NoFields>,
) -> Response {
    match state.platform.cancel_hunt(&ctx.actor, &id).await {
        Ok(hunt) => done(
            &format!("/cases/{}#hunts", hunt.case_id),
            Ok("Hunt cancelled.".into()),
        ),
        Err(e) => done("/dashboard", Err(e)),
    }
}

pub(crate) async fn findings(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    query: Result<Query<PageParam>, QueryRejection>,
) -> Response {
    let page_of = query
        .map(|Query(q)| q)
        .unwrap_or_default()
        .page(FINDINGS_PER_PAGE);
    let platform = &state.platform;
    let loaded = async {
        let view = platform.case(&ctx.actor, &id).await?;
        let mission = platform.mission(&ctx.actor, &view.case.mission_id).await?;
        let findings = platform.findings(&ctx.actor, &id, page_of).await?;
        Ok::<_, PlatformError>((view, mission, findings))
    };
    let (view, mission, findings) = match loaded.await {
        Ok(all) => all,
        Err(e) => return ctx.fail(e),
    };
    let member = mission.team.iter().any(|u| u.id == ctx.actor.user.id);
    let triage = ctx.may(Action::WorkOnMission {
        mission: &mission.mission,
        member,
    });
    let base = format!("/cases/{id}/findings");
    let body = html! {
        h1 { "Findings of " (view.case.title) }
        p.muted { "Sorted by the time of the event. Open a rule to see the event that fired it." }
        (findings_table(&ctx, &findings, triage))
        (pager(&base, page_of, findings.len()))
    };
    page(
        &ctx,
        "Findings",
        &[
            ("Missions", "/missions".into()),
            (
                &mission.mission.title,
                format!("/missions/{}", mission.mission.id),
            ),
            (&view.case.title, format!("/cases/{id}")),
        ],
        body,
    )
}

#[derive(Deserialize)]
pub(crate) struct TriageForm {
    verdict: String,
    comment: Option<String>,
}

pub(crate) async fn triage(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<TriageForm>,
) -> Response {
    let comment = form.comment.filter(|c| !c.trim().is_empty());
    match state
        .platform
        .triage(&ctx.actor, &id, &form.verdict, comment)
        .await
    {
        Ok(f) => done(
            &format!("/cases/{}/findings#finding-{}", f.case_id, f.id),
            Ok(format!("Marked {}.", f.triage.replace('_', " "))),
        ),
        Err(e) => done("/dashboard", Err(e)),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct TimelineFilter {
    host: Option<String>,
    level: Option<String>,
    rule: Option<String>,
    page: Option<usize>,
}

pub(crate) async fn timeline(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    query: Result<Query<TimelineFilter>, QueryRejection>,
) -> Response {
    let filter = query.map(|Query(q)| q).unwrap_or_default();
    let platform = &state.platform;
    let loaded = async {
        let view = platform.case(&ctx.actor, &id).await?;
        let entries = platform
            .timeline(&ctx.actor, &id, TIMELINE_FINDINGS)
            .await?;
        Ok::<_, PlatformError>((view, entries))
    };
    let (view, entries) = match loaded.await {
        Ok(all) => all,
        Err(e) => return ctx.fail(e),
    };
    fn wanted(value: &Option<String>) -> Option<&str> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let (host, level, rule) = (
        wanted(&filter.host),
        wanted(&filter.level),
        wanted(&filter.rule).map(str::to_lowercase),
    );
    let filtering = host.is_some() || level.is_some() || rule.is_some();
    let mut hosts: Vec<&str> = entries.iter().filter_map(|e| e.host.as_deref()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    // Filters narrow the findings; notes and tasks stay unless filtering.
    let kept: Vec<_> = entries
        .iter()
        .filter(|e| {
            if e.kind != "finding" {
                return !filtering;
            }
            host.is_none_or(|h| e.host.as_deref() == Some(h))
                && level.is_none_or(|l| e.detail == l)
                && rule
                    .as_deref()
                    .is_none_or(|r| e.title.to_lowercase().contains(r))
        })
        .collect();
    let number = filter.page.unwrap_or(1).max(1);
    let shown: Vec<_> = kept
        .iter()
        .skip((number - 1) * TIMELINE_PER_PAGE)
        .take(TIMELINE_PER_PAGE)
        .collect();
    let moments: Vec<Moment<'_>> = shown
        .iter()
        .map(|e| Moment {
            at: e.at.as_deref(),
            kind: &e.kind,
            title: match e.kind.as_str() {
                "finding" => html! { (badge("level", &e.detail)) " " a href={ "/cases/" (id) "/findings" } { (e.title) } },
                "task" => html! { a href={ "/cases/" (id) "#task-" (e.id) } { (e.title) } " " (badge("state", &e.detail)) },
                _ => html! { a href={ "/cases/" (id) "#note-" (e.id) } { (e.title) } },
            },
            detail: html! { @if let Some(h) = &e.host { "host " code { (h) } } },
        })
        .collect();
    let query = |page: usize| {
        let mut pairs = vec![("page", page.to_string())];
        for (name, value) in [
            ("host", &filter.host),
            ("level", &filter.level),
            ("rule", &filter.rule),
        ] {
            if let Some(v) = value {
                pairs.push((name, v.clone()));
            }
        }
        format!(
            "/cases/{id}/timeline?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let levels = ["informational", "low", "medium", "high", "critical"];
    let body = html! {
        h1 { "Timeline of " (view.case.title) }
        form.row.filters method="get" action={ "/cases/" (id) "/timeline" } role="search" {
            label for="f-host" { "Host" }
            select #f-host name="host" {
                option value="" { "any" }
                @for h in &hosts { option value=(h) selected[host == Some(*h)] { (h) } }
            }
            label for="f-level" { "Level" }
            select #f-level name="level" {
                option value="" { "any" }
                @for l in levels { option value=(l) selected[level == Some(l)] { (l) } }
            }
            label for="f-rule" { "Rule contains" }
            input #f-rule name="rule" value=(filter.rule.as_deref().unwrap_or(""));
            button type="submit" { "Filter" }
            @if filtering { a href={ "/cases/" (id) "/timeline" } { "Clear" } }
        }
        p.muted { (kept.len()) " entries" @if filtering { " match" } "." }
        @if moments.is_empty() { (empty("Nothing on the timeline matches.")) } @else { (timeline_list(&moments)) }
        @if number > 1 || kept.len() > number * TIMELINE_PER_PAGE {
            nav.pager aria-label="Pages" {
                @if number > 1 { a rel="prev" href=(query(number - 1)) { "← Previous" } }
                span { "Page " (number) }
                @if kept.len() > number * TIMELINE_PER_PAGE { a rel="next" href=(query(number + 1)) { "Next →" } }
            }
        }
    };
    page(
        &ctx,
        "Timeline",
        &[(&view.case.title, format!("/cases/{id}"))],
        body,
    )
}

/// Findings of an offline hunt (JSON Lines), uploaded from the browser:
/// the CSRF field first, then the file, bounded by the route's limit.
pub(crate) async fn import_findings(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let back = format!("/cases/{id}#findings");
    let mut token = None;
    let mut text = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return done(
                    &back,
                    Err(PlatformError::Invalid(format!(
                        "the upload broke off ({}); nothing was imported",
                        e.body_text()
                    ))),
                );
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "_csrf" && token.is_none() {
            return super::csrf_refused();
        }
        let read = field.bytes().await;
        match (name.as_str(), read) {
            ("_csrf", Ok(bytes)) => token = Some(String::from_utf8_lossy(&bytes).into_owned()),
            ("file", Ok(bytes)) => match String::from_utf8(bytes.to_vec()) {
                Ok(t) => text = Some(t),
                Err(_) => {
                    return done(
                        &back,
                        Err(PlatformError::Invalid(
                            "the file is not UTF-8 text; expected crrt hunt JSON Lines".into(),
                        )),
                    );
                }
            },
            (_, Ok(_)) => {}
            (_, Err(e)) => {
                return done(
                    &back,
                    Err(PlatformError::TooLarge(format!(
                        "the file could not be read ({}); nothing was imported",
                        e.body_text()
                    ))),
                );
            }
        }
    }
    if !token.is_some_and(|t| super::same_secret(&t, &ctx.csrf)) {
        return super::csrf_refused();
    }
    let Some(text) = text else {
        return done(
            &back,
            Err(PlatformError::Invalid("choose a JSONL file".into())),
        );
    };
    let outcome = state
        .platform
        .import_findings(&ctx.actor, &id, &text)
        .await
        .map(|hunt| format!("Imported: {} new findings.", hunt.n_findings));
    done(&back, outcome)
}
