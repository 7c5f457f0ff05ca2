//! A mission's reports: the final report and the situation report since
//! the last one, each as HTML, Markdown or PDF (served by the API under the
//! session); issuing a situation report; the team's recommendations.

use axum::extract::{Path, State};
use axum::response::Response;
use crrt_platform::policy::Action;
use crrt_platform::{PlatformError, ReportKind};
use maud::{PreEscaped, html};
use serde::Deserialize;

use super::layout::{badge, csrf, empty, page, time};
use super::{Ctx, Form, NoFields, done};
use crate::AppState;

pub(crate) async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let platform = &state.platform;
    let loaded = async {
        let view = platform.mission(&ctx.actor, &id).await?;
        let sitrep = platform
            .report(&ctx.actor, &id, ReportKind::Situation, None)
            .await?;
        let issued = platform.sitreps(&ctx.actor, &id).await?;
        let recommendations = platform.recommendations(&ctx.actor, &id).await?;
        Ok::<_, PlatformError>((view, sitrep, issued, recommendations))
    };
    let (view, sitrep, issued, recommendations) = match loaded.await {
        Ok(all) => all,
        Err(error) => return ctx.fail(error),
    };
    let mission = &view.mission;
    let member = view.team.iter().any(|user| user.id == ctx.actor.user.id);
    let work = ctx.may(Action::WorkOnMission { mission, member });
    let api = format!("/api/v1/missions/{}/reports", mission.id);
    let formats = |kind: &str| {
        html! {
            a href={ (api) "/" (kind) "?format=html" } target="_blank" { "View" } " · "
            a href={ (api) "/" (kind) "?format=md" } { "Markdown" } " · "
            a href={ (api) "/" (kind) "?format=pdf" } { "PDF" }
        }
    };
    let text = recommendations
        .as_ref()
        .map(|r| r.markdown.clone())
        .unwrap_or_default();
    let body = html! {
        h1 { "Reports: " (mission.title) }
        p.muted { "Each report is made for its reader: it shows only the indicators your TLP allows, and carries the mission's marking (or a stricter one, if it includes stricter indicators) on every page. "
            a href={ "/missions/" (mission.id) } { "Back to the mission" } }
        div.grid {
            section.card {
                h2 { "Situation report " (badge("tlp", sitrep.tlp.trim_start_matches("TLP:"))) }
                p { "Since " (sitrep.period_from.as_deref().map_or_else(|| html! { "the start" }, time))
                    ": " (sitrep.findings_total) " new findings, " (sitrep.indicators.len()) " new indicators, "
                    (sitrep.alerts.len()) " website alerts, " (sitrep.tasks_done.len()) " tasks done, "
                    (sitrep.tasks_open.len()) " open." }
                p { (formats("situation")) }
                @if work {
                    form method="post" action={ "/missions/" (mission.id) "/reports/situation" } {
                        (csrf(&ctx))
                        button.primary type="submit" { "Issue this situation report" }
                        " " span.muted { "the next one starts from now" }
                    }
                }
                @if !issued.is_empty() {
                    h3 { "Issued" }
                    ul { @for s in issued.iter().take(20) {
                        li { (s.period_from.as_deref().map_or_else(|| html! { "start" }, time)) " to " (time(&s.period_to)) }
                    } }
                }
            }
            section.card {
                h2 { "Final report" }
                p { "The request, the team and its member states, the timeline, findings by ATT&CK technique, indicators with their TLP, the recommendations below, and the evidence hashes." }
                p { (formats("final")) }
            }
        }
        section.card {
            h2 { "Recommendations" }
            @if work {
                form.stack method="post" action={ "/missions/" (mission.id) "/reports/recommendations" } {
                    (csrf(&ctx))
                    label for="recommendations" { "For the final report (Markdown)" }
                    textarea #recommendations name="markdown" rows="10" maxlength="100000" { (text) }
                    button.primary type="submit" { "Save recommendations" }
                }
            } @else {
                @match &recommendations {
                    Some(r) => { div { (PreEscaped(crrt_platform::render_markdown(&r.markdown))) } }
                    None => { (empty("The team has not written recommendations yet.")) }
                }
            }
        }
    };
    page(&ctx, "Reports", &[], body)
}

pub(crate) async fn issue(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, NoFields {}): Form<NoFields>,
) -> Response {
    let outcome = state.platform.issue_sitrep(&ctx.actor, &id).await.map(|r| {
        format!(
            "Situation report issued ({} new findings)",
            r.findings_total
        )
    });
    done(&format!("/missions/{id}/reports"), outcome)
}

#[derive(Debug, Deserialize)]
pub(crate) struct RecommendationsForm {
    markdown: String,
}

pub(crate) async fn recommendations(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<RecommendationsForm>,
) -> Response {
    let outcome = state
        .platform
        .set_recommendations(&ctx.actor, &id, &form.markdown)
        .await
        .map(|_| "Recommendations saved".to_owned());
    done(&format!("/missions/{id}/reports"), outcome)
}
