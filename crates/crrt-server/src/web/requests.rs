//! Assistance requests: the requester files and follows one; the
//! coordinator reviews it, records the council's positions and decides.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use crrt_platform::policy::Action;
use crrt_platform::{
    AssistanceRequest, Decision, NewRequest, Page, PlatformError, Position, Skill, Tlp, Urgency,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{age, badge, csrf, empty, maybe_time, page, pager, render, short, time};
use super::{Ctx, Form, PageParam, done};
use crate::AppState;

const PER_PAGE: i64 = 50;

pub(crate) async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    query: Result<Query<PageParam>, QueryRejection>,
) -> Response {
    let page_of = query.map(|Query(q)| q).unwrap_or_default().page(PER_PAGE);
    let (requests, orgs) = match tokio::try_join!(
        state.platform.requests(&ctx.actor, page_of),
        state.platform.organisation_names()
    ) {
        Ok(both) => both,
        Err(e) => return ctx.fail(e),
    };
    let body = html! {
        h1 { "Assistance requests" }
        @if ctx.may(Action::FileRequest) {
            p { a.button.primary href="/requests/new" { "Ask for assistance" } }
        }
        @if requests.is_empty() { (empty("No requests.")) } @else {
            table {
                thead { tr { th { "Summary" } th { "From" } th { "Urgency" } th { "TLP" } th { "State" } th { "Filed" } th { "Age" } } }
                tbody {
                    @for r in &requests {
                        tr {
                            td { a href={ "/requests/" (r.id) } { (r.summary) } }
                            td { (orgs.get(&r.org_id).map_or(short(&r.org_id), |s| s.as_str())) }
                            td { (badge("level", &r.urgency)) }
                            td { (badge("tlp", &r.tlp)) }
                            td { (badge("state", &r.status)) }
                            td { (time(&r.created_at)) }
                            td { (age(&r.created_at)) }
                        }
                    }
                }
            }
        }
        (pager("/requests", page_of, requests.len()))
    };
    page(&ctx, "Requests", &[], body)
}

/// What the requester typed, kept when the form comes back with a problem.
#[derive(Default)]
struct Draft {
    summary: String,
    symptoms: String,
    affected_systems: String,
    urgency: String,
    tlp: String,
    capabilities: Vec<String>,
    mitigations: String,
}

pub(crate) async fn new_request(ctx: Ctx) -> Response {
    if !ctx.may(Action::FileRequest) {
        return ctx.fail(PlatformError::Forbidden(format!(
            "a {} may not file an assistance request",
            ctx.actor.role
        )));
    }
    let draft = Draft {
        urgency: "high".into(),
        tlp: "amber".into(),
        ..Draft::default()
    };
    page(
        &ctx,
        "Ask for assistance",
        &[("Requests", "/requests".into())],
        request_form(&ctx, &draft, None),
    )
}

fn request_form(ctx: &Ctx, d: &Draft, problem: Option<&str>) -> Markup {
    // The platform names the field in its message; mark that field.
    let invalid = |field: &str| {
        problem
            .is_some_and(|p| p.starts_with(field))
            .then_some("true")
    };
    html! {
        h1 { "Ask for assistance" }
        p.muted { "Tell the team what is happening. Fields marked * are required. "
            "The TLP you choose limits who may read this request and what comes from it." }
        @if let Some(problem) = problem {
            div.flash.error role="alert" #form-problem { "Please correct this: " (problem) }
        }
        form.stack method="post" action="/requests" {
            (csrf(ctx))
            label for="summary" { "Summary *" }
            input #summary name="summary" value=(d.summary) required maxlength="300"
                aria-invalid=[invalid("summary")] placeholder="Ministry websites defaced, wiper suspected";
            label for="symptoms" { "What you see *" }
            textarea #symptoms name="symptoms" rows="5" required aria-invalid=[invalid("symptoms")] { (d.symptoms) }
            label for="affected" { "Affected systems (one per line)" }
            textarea #affected name="affected_systems" rows="3" { (d.affected_systems) }
            div.row {
                div {
                    label for="urgency" { "Urgency" }
                    select #urgency name="urgency" {
                        @for u in [Urgency::Low, Urgency::Medium, Urgency::High, Urgency::Critical] {
                            option value=(u.as_str()) selected[d.urgency == u.as_str()] { (u.as_str()) }
                        }
                    }
                }
                div {
                    label for="tlp" { "TLP" }
                    select #tlp name="tlp" {
                        @for t in Tlp::ALL {
                            option value=(t.as_str()) selected[d.tlp == t.as_str()] { "TLP:" (t.as_str().to_ascii_uppercase()) }
                        }
                    }
                }
            }
            fieldset {
                legend { "Capabilities you need" }
                div.checks {
                    @for s in Skill::ALL {
                        label.check {
                            input type="checkbox" name="capabilities" value=(s.as_str())
                                checked[d.capabilities.iter().any(|c| c == s.as_str())];
                            " " (s.as_str())
                        }
                    }
                }
            }
            label for="mitigations" { "What you have already done" }
            textarea #mitigations name="mitigations" rows="3" { (d.mitigations) }
            button.primary type="submit" { "File the request" }
        }
    }
}

pub(crate) async fn file_request(
    State(state): State<AppState>,
    Form(ctx, fields): Form<Vec<(String, String)>>,
) -> Response {
    let mut draft = Draft::default();
    for (name, value) in fields {
        match name.as_str() {
            "summary" => draft.summary = value,
            "symptoms" => draft.symptoms = value,
            "affected_systems" => draft.affected_systems = value,
            "urgency" => draft.urgency = value,
            "tlp" => draft.tlp = value,
            "capabilities" => draft.capabilities.push(value),
            "mitigations" => draft.mitigations = value,
            _ => {}
        }
    }
    let outcome = match parse_draft(&draft) {
        Ok(new) => state.platform.file_request(&ctx.actor, new).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(request) => super::with_flash(
            Redirect::to(&format!("/requests/{}", request.id)).into_response(),
            true,
            "Request filed. The team has been told; follow its state here.",
        ),
        Err(PlatformError::Invalid(problem)) => render(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Ask for assistance",
            &[("Requests", "/requests".into())],
            request_form(&ctx, &draft, Some(&problem)),
        ),
        Err(e) => ctx.fail(e),
    }
}

fn parse_draft(d: &Draft) -> crrt_platform::Result<NewRequest> {
    Ok(NewRequest {
        summary: d.summary.clone(),
        symptoms: d.symptoms.clone(),
        affected_systems: d
            .affected_systems
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        urgency: match d.urgency.as_str() {
            "low" => Urgency::Low,
            "medium" => Urgency::Medium,
            "high" => Urgency::High,
            "critical" => Urgency::Critical,
            other => {
                return Err(PlatformError::Invalid(format!(
                    "urgency {other:?} is not low, medium, high or critical"
                )));
            }
        },
        tlp: d.tlp.parse()?,
        capabilities: d
            .capabilities
            .iter()
            .map(|c| c.parse())
            .collect::<Result<_, _>>()?,
        mitigations: d.mitigations.clone(),
    })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let platform = &state.platform;
    let loaded = async {
        let request = platform.request(&ctx.actor, &id).await?;
        let activation = platform.activation(&ctx.actor, &id).await?;
        let orgs = platform.organisation_names().await?;
        let members = if ctx.may(Action::DecideRequest(&request)) {
            platform
                .organisations(
                    &ctx.actor,
                    Page {
                        limit: 500,
                        offset: 0,
                    },
                )
                .await?
                .into_iter()
                .filter(|o| o.kind == "member")
                .map(|o| o.name)
                .collect()
        } else {
            Vec::new()
        };
        let names = platform.display_names(&[&request.filed_by]).await?;
        Ok::<_, PlatformError>((request, activation, orgs, members, names))
    };
    let (request, activation, orgs, members, names) = match loaded.await {
        Ok(all) => all,
        Err(e) => return ctx.fail(e),
    };
    let org = |id: &str| {
        orgs.get(id)
            .cloned()
            .unwrap_or_else(|| short(id).to_owned())
    };
    let clock = &activation.clock;
    let open = matches!(request.status.as_str(), "submitted" | "under_review");
    let version = request.version.to_string();
    let body = html! {
        h1 { (request.summary) " " (badge("state", &request.status)) " " (badge("tlp", &request.tlp)) }
        @if let Some(reason) = &request.decline_reason {
            div.flash.error { strong { "Declined: " } (reason) }
        }
        @if let Some(mission) = &activation.mission_id {
            p { "Mission opened: " a href={ "/missions/" (mission) } { "go to the mission" } }
        }
        div.grid {
            section.card {
                h2 { "The request" }
                dl.facts {
                    dt { "From" } dd { (org(&request.org_id)) " — " (names.get(&request.filed_by).map_or("?", |s| s.as_str())) }
                    dt { "Urgency" } dd { (badge("level", &request.urgency)) }
                    dt { "Capabilities" } dd { (request.capabilities.join(", ")) }
                    dt { "Affected systems" } dd { (request.affected_systems.join(", ")) }
                }
                h3 { "What they see" }
                p.pre { (request.symptoms) }
                @if !request.mitigations.is_empty() {
                    h3 { "Already done" }
                    p.pre { (request.mitigations) }
                }
            }
            section.card {
                h2 { "72-hour clock" }
                dl.facts {
                    dt { "Filed" } dd { (time(&clock.requested_at)) " (" (age(&clock.requested_at)) " ago)" }
                    dt { "Deploy by" } dd { (maybe_time(Some(&clock.deploy_by))) }
                    dt { "Decided" } dd { (maybe_time(clock.decided_at.as_deref()))
                        @if let Some(h) = clock.hours_to_decision { " after " (h) " h" } }
                    dt { "Team confirmed" } dd { (maybe_time(clock.team_confirmed_at.as_deref()))
                        @if let Some(h) = clock.hours_to_team { " after " (h) " h" } }
                    @if let Some(ok) = clock.within_promise {
                        dt { "Promise" } dd { (if ok { badge("state", "kept") } else { badge("state", "missed") }) }
                    }
                }
                @if let Some(council) = &activation.council {
                    h3 { "Council" }
                    p.muted { "Lead: " (org(&council.lead_org_id))
                        @if let Some(r) = &council.rotating_org_id { " · rotating participant: " (org(r)) } }
                    @if activation.positions.is_empty() { (empty("No positions recorded yet.")) } @else {
                        table {
                            thead { tr { th { "Member state team" } th { "Position" } th { "Recorded" } } }
                            tbody { @for p in &activation.positions {
                                tr { td { (org(&p.org_id)) } td { (badge("state", &p.position)) } td { (time(&p.recorded_at)) } }
                            } }
                        }
                    }
                }
            }
        }
        (actions(&ctx, &request, &members, open, &version))
    };
    page(
        &ctx,
        &request.summary,
        &[("Requests", "/requests".into())],
        body,
    )
}

fn actions(
    ctx: &Ctx,
    request: &AssistanceRequest,
    members: &[String],
    open: bool,
    version: &str,
) -> Markup {
    let base = format!("/requests/{}", request.id);
    let decide = ctx.may(Action::DecideRequest(request));
    html! {
        @if open && ctx.may(Action::WithdrawRequest(request)) {
            section.card {
                h2 { "Withdraw" }
                p.muted { "If you no longer need the team, withdraw the request. This cannot be undone." }
                form method="post" action={ (base) "/withdraw" } data-confirm="Withdraw this request?" {
                    (csrf(ctx)) input type="hidden" name="version" value=(version);
                    button.danger type="submit" { "Withdraw the request" }
                }
            }
        }
        @if decide && request.status == "submitted" {
            section.card {
                h2 { "Start the review" }
                p.muted { "Convenes the council: your team leads; pick the rotating participant." }
                form.row method="post" action={ (base) "/review" } {
                    (csrf(ctx)) input type="hidden" name="version" value=(version);
                    label for="rotating" { "Rotating participant" }
                    select #rotating name="rotating_participant" {
                        option value="" { "none" }
                        @for m in members { option value=(m) { (m) } }
                    }
                    button.primary type="submit" { "Start review" }
                }
            }
        }
        @if decide && request.status == "under_review" {
            section.card {
                h2 { "Council positions" }
                form.row method="post" action={ (base) "/position" } {
                    (csrf(ctx))
                    label for="member" { "Member state team" }
                    select #member name="organisation" { @for m in members { option value=(m) { (m) } } }
                    label for="position" { "Position" }
                    select #position name="position" {
                        option value="agree" { "agree" } option value="abstain" { "abstain" } option value="object" { "object" }
                    }
                    button type="submit" { "Record" }
                }
                h2 { "Decision" }
                p.muted { "Accepting needs at least one member state that agrees, and opens the mission." }
                div.row {
                    form.inline method="post" action={ (base) "/decision" } {
                        (csrf(ctx)) input type="hidden" name="version" value=(version);
                        input type="hidden" name="outcome" value="accept";
                        button.primary type="submit" { "Accept and open the mission" }
                    }
                }
                form.stack method="post" action={ (base) "/decision" } {
                    (csrf(ctx)) input type="hidden" name="version" value=(version);
                    input type="hidden" name="outcome" value="decline";
                    label for="reason" { "Reason for declining (sent to the requester)" }
                    textarea #reason name="reason" rows="2" required {}
                    button.danger type="submit" { "Decline" }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct Versioned {
    version: i64,
}

pub(crate) async fn withdraw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<Versioned>,
) -> Response {
    let outcome = state
        .platform
        .withdraw_request(&ctx.actor, &id, form.version)
        .await
        .map(|_| "Request withdrawn.".to_owned());
    done(&format!("/requests/{id}"), outcome)
}

#[derive(Deserialize)]
pub(crate) struct Review {
    version: i64,
    rotating_participant: Option<String>,
}

pub(crate) async fn review(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<Review>,
) -> Response {
    let rotating = form.rotating_participant.filter(|r| !r.trim().is_empty());
    let outcome = state
        .platform
        .review_request(&ctx.actor, &id, form.version, rotating.as_deref())
        .await
        .map(|_| "Review started; the council is convened.".to_owned());
    done(&format!("/requests/{id}"), outcome)
}

#[derive(Deserialize)]
pub(crate) struct PositionForm {
    organisation: String,
    position: Position,
}

pub(crate) async fn position(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<PositionForm>,
) -> Response {
    let outcome = state
        .platform
        .record_position(&ctx.actor, &id, &form.organisation, form.position)
        .await
        .map(|_| format!("Position of {} recorded.", form.organisation));
    done(&format!("/requests/{id}"), outcome)
}

#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    version: i64,
    outcome: String,
    reason: Option<String>,
}

pub(crate) async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<DecisionForm>,
) -> Response {
    let decision = match form.outcome.as_str() {
        "accept" => Decision::Accept,
        _ => Decision::Decline {
            reason: form.reason.unwrap_or_default(),
        },
    };
    let accepted = matches!(decision, Decision::Accept);
    let outcome = state
        .platform
        .decide_request(&ctx.actor, &id, form.version, decision)
        .await;
    match outcome {
        Ok(_) if accepted => match state.platform.activation(&ctx.actor, &id).await {
            Ok(activation) => match activation.mission_id {
                Some(mission) => done(
                    &format!("/missions/{mission}/team"),
                    Ok("Accepted. The mission is open: confirm its team.".into()),
                ),
                None => done(&format!("/requests/{id}"), Ok("Accepted.".into())),
            },
            Err(e) => ctx.fail(e),
        },
        Ok(_) => done(
            &format!("/requests/{id}"),
            Ok("Declined; the requester sees why.".into()),
        ),
        Err(e) => done(&format!("/requests/{id}"), Err(e)),
    }
}
