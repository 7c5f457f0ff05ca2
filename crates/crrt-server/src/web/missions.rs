//! Missions: the list, one mission (team, clock, checklist, states, cases)
//! and the team proposal a coordinator edits and confirms.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use crrt_platform::policy::Action;
use crrt_platform::{ChecklistUpdate, MissionStatus, NewCase, Page, PlatformError};
use maud::html;
use serde::Deserialize;

use super::layout::{badge, csrf, empty, maybe_time, page, pager, short, time};
use super::{Ctx, Form, PageParam, done};
use crate::AppState;

const PER_PAGE: i64 = 50;

pub(crate) async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    query: Result<Query<PageParam>, QueryRejection>,
) -> Response {
    let page_of = query.map(|Query(q)| q).unwrap_or_default().page(PER_PAGE);
    let (missions, orgs) = match tokio::try_join!(
        state.platform.missions(&ctx.actor, page_of),
        state.platform.organisation_names()
    ) {
        Ok(both) => both,
        Err(e) => return ctx.fail(e),
    };
    let body = html! {
        h1 { "Missions" }
        @if missions.is_empty() { (empty("No missions you may see.")) } @else {
            table {
                thead { tr { th { "Mission" } th { "For" } th { "State" } th { "Team confirmed" } th { "Opened" } } }
                tbody {
                    @for m in &missions {
                        tr {
                            td { a href={ "/missions/" (m.id) } { (m.title) } }
                            td { (orgs.get(&m.org_id).map_or(short(&m.org_id), |s| s.as_str())) }
                            td { (badge("state", &m.status)) }
                            td { (maybe_time(m.team_confirmed_at.as_deref())) }
                            td { (time(&m.created_at)) }
                        }
                    }
                }
            }
        }
        (pager("/missions", page_of, missions.len()))
    };
    page(&ctx, "Missions", &[], body)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let platform = &state.platform;
    let loaded = async {
        let view = platform.mission(&ctx.actor, &id).await?;
        let cases = platform
            .cases(
                &ctx.actor,
                &id,
                Page {
                    limit: 200,
                    offset: 0,
                },
            )
            .await?;
        let orgs = platform.organisation_names().await?;
        Ok::<_, PlatformError>((view, cases, orgs))
    };
    let (view, cases, orgs) = match loaded.await {
        Ok(all) => all,
        Err(e) => return ctx.fail(e),
    };
    let mission = &view.mission;
    let org = |id: &str| {
        orgs.get(id)
            .cloned()
            .unwrap_or_else(|| short(id).to_owned())
    };
    let manage = ctx.may(Action::ManageMission(mission));
    let member = view.team.iter().any(|u| u.id == ctx.actor.user.id);
    let work = ctx.may(Action::WorkOnMission { mission, member });
    let version = mission.version.to_string();
    let next = match mission.status.as_str() {
        "forming" => Some(MissionStatus::Active),
        "active" => Some(MissionStatus::Demobilised),
        "demobilised" => Some(MissionStatus::Closed),
        _ => None,
    };
    let c = &mission.checklist;
    let body = html! {
        h1 { (mission.title) " " (badge("state", &mission.status)) }
        p.muted { "For " (org(&mission.org_id)) " · " a href={ "/requests/" (mission.request_id) } { "the request" }
            " · deploy by " (time(&view.clock.deploy_by))
            " · " a href={ "/missions/" (mission.id) "/watch" } { "Website watch" }
            " · " a href={ "/missions/" (mission.id) "/reports" } { "Reports" } }
        div.grid {
            section.card {
                h2 { "Team" }
                @if view.team.is_empty() { (empty("No team confirmed yet.")) } @else {
                    table {
                        thead { tr { th { "Responder" } th { "Team" } th { "Skills" } th { "Languages" } } }
                        tbody { @for u in &view.team {
                            tr { td { (u.display_name) } td { (org(&u.org_id)) } td { (u.skills.join(", ")) } td { (u.languages.join(", ")) } }
                        } }
                    }
                }
                @if manage && mission.status != "closed" {
                    p { a.button href={ "/missions/" (mission.id) "/team" } { "Propose and confirm the team" } }
                }
            }
            section.card {
                h2 { "Pre-deployment checklist" }
                @if manage {
                    form.stack method="post" action={ "/missions/" (mission.id) "/checklist" } {
                        (csrf(&ctx)) input type="hidden" name="version" value=(version);
                        label.check { input type="checkbox" name="legal_basis" value="true" checked[c.legal_basis]; " Legal basis agreed" }
                        label.check { input type="checkbox" name="points_of_contact" value="true" checked[c.points_of_contact]; " Points of contact named" }
                        label.check { input type="checkbox" name="secure_communications" value="true" checked[c.secure_communications]; " Secure communications set up" }
                        label for="deployment" { "Deployment" }
                        select #deployment name="deployment" {
                            option value="" selected[c.deployment.is_none()] { "not decided" }
                            @for d in ["on-site", "remote"] { option value=(d) selected[c.deployment.as_deref() == Some(d)] { (d) } }
                        }
                        button type="submit" { "Save the checklist" }
                    }
                } @else {
                    ul {
                        li { (tick(c.legal_basis)) " Legal basis agreed" }
                        li { (tick(c.points_of_contact)) " Points of contact named" }
                        li { (tick(c.secure_communications)) " Secure communications set up" }
                        li { "Deployment: " (c.deployment.as_deref().unwrap_or("not decided")) }
                    }
                }
                @if manage {
                    @if let Some(next) = next {
                        form.inline method="post" action={ "/missions/" (mission.id) "/status" } {
                            (csrf(&ctx)) input type="hidden" name="version" value=(version);
                            input type="hidden" name="status" value=(next.as_str());
                            button.primary type="submit" { "Move to " (next.as_str()) }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Cases" }
            @if cases.is_empty() { (empty("No cases yet.")) } @else {
                table {
                    thead { tr { th { "Case" } th { "Playbook" } th { "State" } th { "Opened" } } }
                    tbody { @for case in &cases {
                        tr { td { a href={ "/cases/" (case.id) } { (case.title) } } td { (case.playbook.as_deref().unwrap_or("—")) } td { (badge("state", &case.status)) } td { (time(&case.created_at)) } }
                    } }
                }
            }
            @if work {
                form.row method="post" action={ "/missions/" (mission.id) "/cases" } {
                    (csrf(&ctx))
                    label for="case-title" { "New case" }
                    input #case-title name="title" required maxlength="300" placeholder="Wiper on the ministry's domain controllers";
                    label for="playbook" { "Playbook" }
                    select #playbook name="playbook" {
                        option value="" { "none" }
                        @for (name, _) in crrt_platform::cases::PLAYBOOKS { option value=(name) { (name) } }
                    }
                    button.primary type="submit" { "Open case" }
                }
            }
        }
    };
    page(
        &ctx,
        &mission.title,
        &[("Missions", "/missions".into())],
        body,
    )
}

fn tick(done: bool) -> &'static str {
    if done { "✔" } else { "✘" }
}

#[derive(Deserialize)]
pub(crate) struct ChecklistForm {
    version: i64,
    legal_basis: Option<String>,
    points_of_contact: Option<String>,
    secure_communications: Option<String>,
    deployment: Option<String>,
}

pub(crate) async fn checklist(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<ChecklistForm>,
) -> Response {
    // An unticked box is absent from the form: it means "no".
    let update = ChecklistUpdate {
        legal_basis: Some(form.legal_basis.is_some()),
        points_of_contact: Some(form.points_of_contact.is_some()),
        secure_communications: Some(form.secure_communications.is_some()),
        deployment: form.deployment.filter(|d| !d.is_empty()),
    };
    let outcome = state
        .platform
        .update_checklist(&ctx.actor, &id, form.version, update)
        .await
        .map(|_| "Checklist saved.".to_owned());
    done(&format!("/missions/{id}"), outcome)
}

#[derive(Deserialize)]
pub(crate) struct MoveForm {
    version: i64,
    status: MissionStatus,
}

pub(crate) async fn move_to(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<MoveForm>,
) -> Response {
    let outcome = state
        .platform
        .move_mission(&ctx.actor, &id, form.version, form.status)
        .await
        .map(|m| format!("The mission is now {}.", m.mission.status));
    done(&format!("/missions/{id}"), outcome)
}

#[derive(Deserialize)]
pub(crate) struct SizeParam {
    size: Option<usize>,
}

pub(crate) async fn team_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    query: Result<Query<SizeParam>, QueryRejection>,
) -> Response {
    let size = query
        .ok()
        .and_then(|Query(q)| q.size)
        .unwrap_or(5)
        .clamp(1, 50);
    let platform = &state.platform;
    let loaded = async {
        let view = platform.mission(&ctx.actor, &id).await?;
        let candidates = platform.propose_team(&ctx.actor, &id, size).await?;
        Ok::<_, PlatformError>((view, candidates))
    };
    let (view, candidates) = match loaded.await {
        Ok(all) => all,
        Err(e) => return ctx.fail(e),
    };
    let current: Vec<&str> = view.team.iter().map(|u| u.id.as_str()).collect();
    let confirmed = !current.is_empty();
    let body = html! {
        h1 { "Team for " (view.mission.title) }
        p { "Ranked by the skills the requester asked for, a language shared with them, and availability today; "
            "the proposal spreads the team across member states. Tick whom to send and confirm." }
        form method="get" action={ "/missions/" (id) "/team" } .row {
            label for="size" { "Team size" }
            input #size type="number" name="size" min="1" max="50" value=(size);
            button type="submit" { "Propose again" }
        }
        form method="post" action={ "/missions/" (id) "/team" } {
            (csrf(&ctx)) input type="hidden" name="version" value=(view.mission.version);
            table {
                thead { tr { th { "Send" } th { "Responder" } th { "Team" } th { "Score" } th { "Why" } } }
                tbody {
                    @for c in &candidates {
                        @let ticked = if confirmed { current.contains(&c.user.id.as_str()) } else { c.proposed };
                        tr class=[c.proposed.then_some("proposed")] {
                            td { input type="checkbox" name="member" value=(c.user.id) checked[ticked]
                                aria-label={ "Send " (c.user.display_name) }; }
                            td { (c.user.display_name) }
                            td { (c.organisation) }
                            td.num { (c.score) }
                            td {
                                @if !c.skills_matched.is_empty() { "skills: " (c.skills_matched.join(", ")) "; " }
                                @if !c.languages_matched.is_empty() { "speaks " (c.languages_matched.join(", ")) "; " }
                                (if c.available { "available today" } else { "not available today" })
                            }
                        }
                    }
                }
            }
            button.primary type="submit" { "Confirm the team" }
        }
    };
    page(
        &ctx,
        "Team",
        &[
            ("Missions", "/missions".into()),
            (&view.mission.title, format!("/missions/{id}")),
        ],
        body,
    )
}

pub(crate) async fn confirm_team(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, fields): Form<Vec<(String, String)>>,
) -> Response {
    let version = fields
        .iter()
        .find(|(k, _)| k == "version")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(-1);
    let members: Vec<String> = fields
        .into_iter()
        .filter(|(k, _)| k == "member")
        .map(|(_, v)| v)
        .collect();
    let outcome = state
        .platform
        .confirm_team(&ctx.actor, &id, version, members)
        .await
        .map(|m| format!("Team of {} confirmed.", m.team.len()));
    done(&format!("/missions/{id}"), outcome)
}

#[derive(Deserialize)]
pub(crate) struct CaseForm {
    title: String,
    playbook: Option<String>,
}

pub(crate) async fn create_case(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<CaseForm>,
) -> Response {
    let new = NewCase {
        title: form.title,
        playbook: form.playbook.filter(|p| !p.is_empty()),
    };
    match state.platform.create_case(&ctx.actor, &id, new).await {
        Ok(view) => done(
            &format!("/cases/{}", view.case.id),
            Ok("Case opened.".into()),
        ),
        Err(e) => done(&format!("/missions/{id}"), Err(e)),
    }
}
