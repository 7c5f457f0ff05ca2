//! Pages for the platform as a whole: rule packs, the roster of teams and
//! responders, and the audit trail with its chain check.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Query, State};
use axum::response::Response;
use crrt_platform::policy::Action;
use crrt_platform::{AuditVerification, Page, PlatformError};
use maud::html;
use serde::Deserialize;

use super::layout::{badge, csrf, empty, page, pager, short, time};
use super::{Ctx, done};
use crate::AppState;

const AUDIT_PER_PAGE: i64 = 100;

pub(crate) async fn rulepacks(State(state): State<AppState>, ctx: Ctx) -> Response {
    let packs = match state
        .platform
        .rulepacks(
            &ctx.actor,
            Page {
                limit: 500,
                offset: 0,
            },
        )
        .await
    {
        Ok(p) => p,
        Err(e) => return ctx.fail(e),
    };
    let body = html! {
        h1 { "Rule packs" }
        p { "Hunts run the packs you choose: Sigma packs (.yml files) on the events of logs, YARA packs (.yar files) on the files themselves, ZIP members included. A rule that cannot be parsed is listed with its reason and line and skipped; the rest of the pack works." }
        @if ctx.may(Action::ManageRulePacks) {
            form.row method="post" action="/rulepacks" enctype="multipart/form-data" {
                (csrf(&ctx))
                label for="pack-name" { "Name" }
                input #pack-name name="name" required maxlength="200" placeholder="SigmaHQ windows 2026-11";
                label for="pack-file" { "ZIP, YAML or YARA file" }
                input #pack-file type="file" name="file" accept=".zip,.yml,.yaml,.yar,.yara" required;
                button.primary type="submit" { "Upload" }
            }
        }
        @if packs.is_empty() { (empty("No rule packs yet.")) }
        @for p in &packs {
            article.card #{ "pack-" (p.id) } {
                h2 { (p.name) " " (badge("kind", if p.kind == "yara" { "YARA" } else { "Sigma" })) }
                p.muted { (p.n_rules) " rules from " (p.n_files) " files · uploaded " (time(&p.uploaded_at))
                    " · SHA-256 " code.hash { (p.sha256) } }
                @if p.problems.is_empty() { p { (badge("state", "all parsed")) } } @else {
                    details {
                        summary { (p.problems.len()) " rules could not be used" }
                        table {
                            thead { tr { th { "File" } th { "Rule" } th { "Why" } } }
                            tbody { @for problem in &p.problems {
                                tr { td { code { (problem.file) } } td { (problem.rule.as_deref().unwrap_or("—")) } td { (problem.message) } }
                            } }
                        }
                    }
                }
            }
        }
    };
    page(&ctx, "Rule packs", &[], body)
}

/// The CSRF field first, then the name, then the file (as the form orders
/// them); the pack is bounded by the route's body limit.
pub(crate) async fn upload_rulepack(
    State(state): State<AppState>,
    ctx: Ctx,
    mut multipart: Multipart,
) -> Response {
    let mut token = None;
    let mut name = String::new();
    let mut bytes = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return done(
                    "/rulepacks",
                    Err(PlatformError::Invalid(format!(
                        "the upload broke off ({}); nothing was stored",
                        e.body_text()
                    ))),
                );
            }
        };
        let field_name = field.name().unwrap_or_default().to_owned();
        if field_name != "_csrf" && token.is_none() {
            return super::csrf_refused();
        }
        let result = match field_name.as_str() {
            "_csrf" => field.text().await.map(|t| token = Some(t)),
            "name" => field.text().await.map(|t| name = t),
            "file" => field.bytes().await.map(|b| bytes = Some(b)),
            _ => Ok(()),
        };
        if let Err(e) = result {
            return done(
                "/rulepacks",
                Err(PlatformError::TooLarge(format!(
                    "the rule pack could not be read ({}); nothing was stored",
                    e.body_text()
                ))),
            );
        }
    }
    if !token.is_some_and(|t| super::same_secret(&t, &ctx.csrf)) {
        return super::csrf_refused();
    }
    let Some(bytes) = bytes else {
        return done(
            "/rulepacks",
            Err(PlatformError::Invalid("choose a ZIP or YAML file".into())),
        );
    };
    let outcome = state
        .platform
        .upload_rulepack(&ctx.actor, &name, &bytes)
        .await
        .map(|p| {
            format!(
                "{}: {} rules loaded, {} could not be used.",
                p.name,
                p.n_rules,
                p.problems.len()
            )
        });
    done("/rulepacks", outcome)
}

pub(crate) async fn roster(State(state): State<AppState>, ctx: Ctx) -> Response {
    let all = Page {
        limit: 500,
        offset: 0,
    };
    let platform = &state.platform;
    let (orgs, users) = match tokio::try_join!(
        platform.organisations(&ctx.actor, all),
        platform.users(&ctx.actor, all)
    ) {
        Ok(both) => both,
        Err(e) => return ctx.fail(e),
    };
    let today = jiff::Zoned::now().date().to_string();
    let body = html! {
        h1 { "Roster" }
        p.muted { "Member-state teams, requesters and partners, with their people. Availability is shown for today (" (today) ")." }
        @for org in &orgs {
            section.card #{ "org-" (org.id) } {
                h2 { (org.name) " " (badge("state", &org.kind)) " " span.muted { (org.country) } }
                @let people: Vec<_> = users.iter().filter(|u| u.org_id == org.id).collect();
                @if people.is_empty() { (empty("No accounts.")) } @else {
                    table {
                        thead { tr { th { "Name" } th { "Role" } th { "Skills" } th { "Languages" } th { "Available" } } }
                        tbody { @for u in people {
                            @let available = u.availability.iter().any(|a| a.from.as_str() <= today.as_str() && today.as_str() <= a.to.as_str());
                            tr class=[u.disabled.then_some("disabled")] {
                                td { (u.display_name) @if u.disabled { " (disabled)" } }
                                td { (u.role) }
                                td { (u.skills.join(", ")) }
                                td { (u.languages.join(", ")) }
                                td {
                                    @if available { (badge("state", "available")) } @else { span.muted { "—" } }
                                    @for a in &u.availability { div.muted { (a.from) " → " (a.to) } }
                                }
                            }
                        } }
                    }
                }
            }
        }
    };
    page(&ctx, "Roster", &[], body)
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditPage {
    page: Option<i64>,
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    ctx: Ctx,
    query: Result<Query<AuditPage>, QueryRejection>,
) -> Response {
    let number = query.ok().and_then(|Query(q)| q.page).unwrap_or(1).max(1);
    // Asking for the first event checks the right to read the trail.
    if let Err(e) = state.platform.audit_trail(&ctx.actor, 1, 1).await {
        return ctx.fail(e);
    }
    let verification = match state.platform.verify_audit().await {
        Ok(v) => v,
        Err(e) => return ctx.fail(e),
    };
    let n_events = match &verification {
        AuditVerification::Intact { n_events } => *n_events,
        AuditVerification::Broken { .. } => i64::MAX,
    };
    // Newest first: page 1 holds the last events of the chain.
    let (from, limit) = if n_events == i64::MAX {
        (1 + (number - 1) * AUDIT_PER_PAGE, AUDIT_PER_PAGE)
    } else {
        let last = n_events - (number - 1) * AUDIT_PER_PAGE;
        let first = (last - AUDIT_PER_PAGE + 1).max(1);
        (first, (last - first + 1).max(0))
    };
    let mut events = if limit > 0 {
        match state.platform.audit_trail(&ctx.actor, from, limit).await {
            Ok(e) => e,
            Err(e) => return ctx.fail(e),
        }
    } else {
        Vec::new()
    };
    if n_events != i64::MAX {
        events.reverse();
    }
    let ids: Vec<&str> = events.iter().filter_map(|e| e.actor.as_deref()).collect();
    let names = state.platform.display_names(&ids).await.unwrap_or_default();
    let body = html! {
        h1 { "Audit trail" }
        @match &verification {
            AuditVerification::Intact { n_events } => div.flash.ok role="status" #chain {
                "Chain verified: all " (n_events) " events are intact and in order." }
            AuditVerification::Broken { seq, problem } => div.flash.error role="alert" #chain {
                "The chain is broken at event " (seq) ": " (problem) ". Events from there on cannot be trusted; keep the database for investigation." }
        }
        @if events.is_empty() { (empty("No events.")) } @else {
            table.audit {
                thead { tr { th { "#" } th { "When" } th { "Who" } th { "Action" } th { "Object" } th { "Hash" } } }
                tbody { @for e in &events {
                    tr {
                        td.num { (e.seq) }
                        td { (time(&e.at)) }
                        td { (e.actor.as_deref().map_or("system".to_owned(), |a| names.get(a).cloned().unwrap_or_else(|| short(a).to_owned()))) }
                        td { code { (e.action) } }
                        td { (e.object_type) " " code { (short(&e.object_id)) } }
                        td { code.hash title=(e.hash) { (short(&e.hash)) } }
                    }
                } }
            }
        }
        (pager("/audit", Page { limit: AUDIT_PER_PAGE, offset: (number - 1) * AUDIT_PER_PAGE }, if from > 1 { AUDIT_PER_PAGE as usize } else { 0 }))
    };
    page(&ctx, "Audit", &[], body)
}
