//! The first page after signing in: what needs this person now. Each part
//! appears only when the role may read it; the lists come from the same
//! platform calls as everywhere else, so they are filtered the same way.

use axum::extract::State;
use axum::response::Response;
use crrt_platform::Page;
use crrt_platform::policy::Action;
use maud::{Markup, html};

use super::Ctx;
use super::layout::{age, badge, empty, page, short};
use crate::AppState;

const OPEN_REQUEST_STATES: &[&str] = &["submitted", "under_review"];
const LIVE_MISSION_STATES: &[&str] = &["forming", "active"];

pub(crate) async fn dashboard(State(state): State<AppState>, ctx: Ctx) -> Response {
    match sections(&state, &ctx).await {
        Ok(body) => page(&ctx, "Dashboard", &[], body),
        Err(e) => ctx.fail(e),
    }
}

async fn sections(state: &AppState, ctx: &Ctx) -> crrt_platform::Result<Markup> {
    let platform = &state.platform;
    let all = Page {
        limit: 200,
        offset: 0,
    };
    let requests = if ctx.may(Action::ListRequests) {
        let mut open = platform.requests(&ctx.actor, all).await?;
        open.retain(|r| OPEN_REQUEST_STATES.contains(&r.status.as_str()));
        Some(open)
    } else {
        None
    };
    let mut missions = Vec::new();
    if ctx.may(Action::ListMissions) {
        for m in platform.missions(&ctx.actor, all).await? {
            if !LIVE_MISSION_STATES.contains(&m.status.as_str()) || missions.len() == 10 {
                continue;
            }
            let view = platform.mission(&ctx.actor, &m.id).await?;
            let findings = platform.latest_findings(&ctx.actor, &m.id, 5).await?;
            let watch = platform.watch_alerts(&ctx.actor, &m.id, false).await?;
            missions.push((view, findings, watch));
        }
    }
    let tasks = platform.my_open_tasks(&ctx.actor, 50).await?;
    let orgs = platform.organisation_names().await?;
    let org = |id: &str| {
        orgs.get(id)
            .cloned()
            .unwrap_or_else(|| short(id).to_owned())
    };

    Ok(html! {
        h1 { "Good to see you, " (ctx.actor.user.display_name) }
        div.grid {
            @if let Some(requests) = &requests {
                section.card {
                    h2 { "Open requests" }
                    @if requests.is_empty() { (empty("No request is waiting.")) } @else {
                        table {
                            thead { tr { th { "Request" } th { "From" } th { "Urgency" } th { "State" } th { "Age" } } }
                            tbody {
                                @for r in requests {
                                    tr {
                                        td { a href={ "/requests/" (r.id) } { (r.summary) } }
                                        td { (org(&r.org_id)) }
                                        td { (badge("level", &r.urgency)) }
                                        td { (badge("state", &r.status)) }
                                        td { (age(&r.created_at)) }
                                    }
                                }
                            }
                        }
                    }
                    @if ctx.may(Action::FileRequest) {
                        p { a.button.primary href="/requests/new" { "Ask for assistance" } }
                    }
                }
            }
            @if ctx.may(Action::ListMissions) {
                section.card {
                    h2 { "Active missions" }
                    @if missions.is_empty() { (empty("No mission is forming or active.")) }
                    @for (view, findings, watch) in &missions {
                        article.mission {
                            h3 { a href={ "/missions/" (view.mission.id) } { (view.mission.title) } " " (badge("state", &view.mission.status)) }
                            p.muted { "For " (org(&view.mission.org_id)) " · team: "
                                @if view.team.is_empty() { "not confirmed yet" } @else {
                                    @for (i, member) in view.team.iter().enumerate() {
                                        @if i > 0 { ", " } (member.display_name) " (" (org(&member.org_id)) ")"
                                    }
                                }
                            }
                            @if !watch.is_empty() {
                                p { a href={ "/missions/" (view.mission.id) "/watch" } { (watch.len()) " website alert" @if watch.len() != 1 { "s" } } ": "
                                    @for (i, alert) in watch.iter().take(3).enumerate() {
                                        @if i > 0 { ", " } (alert.target_name) " " (badge("kind", &alert.kind))
                                    }
                                }
                            }
                            @if findings.is_empty() { p.muted { "No findings yet." } } @else {
                                ul.findings {
                                    @for f in findings {
                                        li { (badge("level", &f.level)) " " a href={ "/cases/" (f.case_id) "/findings" } { (f.rule_title) }
                                            @if let Some(host) = &f.host { " on " code { (host) } } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Tasks assigned to you" }
                @if tasks.is_empty() { (empty("Nothing assigned to you is open.")) } @else {
                    ul.tasks {
                        @for (task, case) in &tasks {
                            li {
                                a href={ "/cases/" (case.id) "#task-" (task.id) } { (task.title) }
                                " " (badge("state", &task.status))
                                span.muted { " in " (case.title) @if let Some(due) = &task.due_on { " · due " (due) } }
                            }
                        }
                    }
                }
            }
        }
    })
}
