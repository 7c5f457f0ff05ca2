//! A mission's website watch: the status board of its targets (state, last
//! check, latency, open alerts with their evidence), adding and removing
//! targets, and the recent alerts. The board refreshes itself (app.js).

use axum::extract::{Path, State};
use axum::response::Response;
use crrt_platform::policy::Action;
use crrt_platform::{NewWatchTarget, PlatformError};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{badge, csrf, empty, maybe_time, page, time};
use super::{Ctx, Form, NoFields, done};
use crate::AppState;

pub(crate) async fn board(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let platform = &state.platform;
    let loaded = async {
        let view = platform.mission(&ctx.actor, &id).await?;
        let board = platform.watch_board(&ctx.actor, &id).await?;
        let history = platform.watch_alerts(&ctx.actor, &id, true).await?;
        let notify = platform.watch_notifications(&ctx.actor, &id).await?;
        Ok::<_, PlatformError>((view, board, history, notify))
    };
    let (view, board, history, notify) = match loaded.await {
        Ok(all) => all,
        Err(error) => return ctx.fail(error),
    };
    let mission = &view.mission;
    let member = view.team.iter().any(|user| user.id == ctx.actor.user.id);
    let work = ctx.may(Action::WorkOnMission { mission, member });
    let live = matches!(mission.status.as_str(), "forming" | "active");
    let n_alerting = board
        .iter()
        .filter(|target| target.state == "alert")
        .count();
    let body = html! {
        h1 { "Website watch" }
        p.muted {
            (board.len()) " target" @if board.len() != 1 { "s" } " · " (n_alerting) " with open alerts · "
            @if live { "checked while the mission is forming or active; this page refreshes every 30 s" }
            @else { "not checked: the mission is " (mission.status) }
        }
        section data-refresh="30" {
            @if board.is_empty() { (empty("No websites watched yet.")) } @else {
                table.board {
                    thead { tr { th { "Target" } th { "State" } th { "Last check" } th { "Result" } th { "Latency" } th { "p50 / p95" } th { "Open alerts" } @if work { th { span.visually-hidden { "Actions" } } } } }
                    tbody { @for target in &board {
                        tr {
                            td { strong { (target.name) } br; code { (target.url) } }
                            td { (badge("state", &target.state)) }
                            td { (maybe_time(target.last_check_at.as_deref())) }
                            td { (target.last_result.as_deref().unwrap_or("—")) }
                            td { (millis(target.latency_ms)) }
                            td { (millis(target.p50_ms)) " / " (millis(target.p95_ms)) }
                            td {
                                @if target.open_alerts.is_empty() { "—" }
                                ul.plain { @for alert in &target.open_alerts {
                                    li {
                                        (badge("kind", &alert.kind)) " " (alert.summary)
                                        @if alert.flapping { " " (badge("state", "flapping")) }
                                        " · since " (time(&alert.opened_at))
                                        @if alert.body_sha256.is_some() { " · " a href={ "/api/v1/watch/alerts/" (alert.id) "/body" } download { "page as fetched" } }
                                        @if alert.diff_sha256.is_some() { " · " a href={ "/api/v1/watch/alerts/" (alert.id) "/diff" } download { "diff" } }
                                    }
                                } }
                            }
                            @if work { td {
                                form.inline method="post" action={ "/watch/targets/" (target.id) "/rebaseline" } data-confirm={ "Take " (target.name) " as it is now as normal? Its open alerts close." } {
                                    (csrf(&ctx)) button type="submit" { "Accept as normal" }
                                }
                                " "
                                form.inline method="post" action={ "/watch/targets/" (target.id) "/remove" } data-confirm={ "Stop watching " (target.name) "?" } {
                                    (csrf(&ctx)) button type="submit" { "Stop watching" }
                                }
                            } }
                        }
                    } }
                }
            }
        }
        @if work {
            section.card {
                h2 { "Watch a website" }
                form.stack method="post" action={ "/missions/" (mission.id) "/watch" } {
                    (csrf(&ctx))
                    label for="watch-name" { "Name" }
                    input #watch-name name="name" required maxlength="200" placeholder="mfa";
                    label for="watch-url" { "Address" }
                    input #watch-url name="url" type="url" required placeholder="https://mfa.gov.ua/";
                    label for="watch-interval" { "Check every" }
                    select #watch-interval name="interval" {
                        @for (value, label) in [("30s", "30 seconds"), ("60s", "minute"), ("5m", "5 minutes"), ("15m", "15 minutes")] {
                            option value=(value) selected[value == "60s"] { (label) }
                        }
                    }
                    label for="watch-timeout" { "Down after no answer for" }
                    select #watch-timeout name="timeout" {
                        @for (value, label) in [("5s", "5 seconds"), ("10s", "10 seconds"), ("30s", "30 seconds")] {
                            option value=(value) selected[value == "10s"] { (label) }
                        }
                    }
                    label for="watch-status" { "Expected status (optional; default any 2xx)" }
                    input #watch-status name="expect_status" inputmode="numeric" pattern="[1-5][0-9][0-9]" maxlength="3" placeholder="200";
                    label for="watch-must" { "Text that must appear (optional)" }
                    input #watch-must name="must_contain" maxlength="200" placeholder="Міністерство закордонних справ";
                    label for="watch-must-not" { "Text that must not appear (optional)" }
                    input #watch-must-not name="must_not_contain" maxlength="200" placeholder="hacked by";
                    fieldset {
                        legend { "DNS records to watch for changes" }
                        @for kind in ["A", "AAAA", "NS", "MX"] {
                            label.check { input type="checkbox" name={ "dns_" (kind.to_ascii_lowercase()) } value="true" checked[kind == "A" || kind == "NS"]; " " (kind) }
                        }
                    }
                    button.primary type="submit" { "Start watching" }
                }
            }
        }
        section.card {
            h2 { "Notifications" }
            p.muted { "Each alert that opens or closes is sent once: to a webhook as JSON signed with HMAC-SHA256 (header X-CRRT-Signature-256), and by e-mail." }
            @if work {
                form.stack method="post" action={ "/missions/" (mission.id) "/watch/notifications" } {
                    (csrf(&ctx))
                    label for="notify-url" { "Webhook address (optional)" }
                    input #notify-url name="webhook_url" type="url" value=(notify.webhook_url.as_deref().unwrap_or("")) placeholder="https://hooks.example/crrt";
                    label for="notify-secret" { "Webhook secret (at least 16 characters)" }
                    input #notify-secret name="webhook_secret" type="password" autocomplete="new-password"
                        placeholder=(if notify.webhook_secret_set { "set; leave empty to keep it" } else { "" });
                    label for="notify-emails" { "E-mail addresses, one per line (optional)" }
                    textarea #notify-emails name="emails" rows="3" { (notify.emails.join("\n")) }
                    button type="submit" { "Save notifications" }
                }
            } @else {
                p { "Webhook: " (notify.webhook_url.as_deref().unwrap_or("none")) " · e-mail: "
                    @if notify.emails.is_empty() { "none" } @else { (notify.emails.join(", ")) } }
            }
        }
        section {
            h2 { "Alerts" }
            @if history.is_empty() { (empty("No alerts.")) } @else {
                table {
                    thead { tr { th { "Target" } th { "Kind" } th { "What" } th { "Opened" } th { "Closed" } } }
                    tbody { @for alert in history.iter().take(100) {
                        tr {
                            td { (alert.target_name) }
                            td { (badge("kind", &alert.kind)) }
                            td { (alert.summary) }
                            td { (time(&alert.opened_at)) }
                            td { (maybe_time(alert.closed_at.as_deref())) }
                        }
                    } }
                }
            }
        }
    };
    page(
        &ctx,
        "Website watch",
        &[
            ("Missions", "/missions".into()),
            (&mission.title, format!("/missions/{}", mission.id)),
        ],
        body,
    )
}

fn millis(value: Option<i64>) -> String {
    value.map_or_else(|| "—".into(), |ms| format!("{ms} ms"))
}

/// The add form; one checkbox per DNS record type.
#[derive(Deserialize)]
pub(crate) struct TargetForm {
    name: String,
    url: String,
    interval: String,
    #[serde(default)]
    timeout: String,
    #[serde(default)]
    expect_status: String,
    #[serde(default)]
    must_contain: String,
    #[serde(default)]
    must_not_contain: String,
    dns_a: Option<String>,
    dns_aaaa: Option<String>,
    dns_ns: Option<String>,
    dns_mx: Option<String>,
}

pub(crate) async fn add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<TargetForm>,
) -> Response {
    let mut settings = json!({"interval": form.interval});
    let mut put = |key: &str, value: Value| {
        if let Some(object) = settings.as_object_mut() {
            object.insert(key.into(), value);
        }
    };
    if !form.timeout.trim().is_empty() {
        put("timeout", json!(form.timeout.trim()));
    }
    if !form.expect_status.trim().is_empty() {
        match form.expect_status.trim().parse::<u16>() {
            Ok(status) => put("expect_status", json!(status)),
            Err(_) => {
                return done(
                    &format!("/missions/{id}/watch"),
                    Err(PlatformError::Invalid(format!(
                        "expected status {:?} is not a number",
                        form.expect_status
                    ))),
                );
            }
        }
    }
    if !form.must_contain.trim().is_empty() {
        put("must_contain", json!([form.must_contain.trim()]));
    }
    if !form.must_not_contain.trim().is_empty() {
        put("must_not_contain", json!([form.must_not_contain.trim()]));
    }
    let dns: Vec<&str> = [
        ("A", &form.dns_a),
        ("AAAA", &form.dns_aaaa),
        ("NS", &form.dns_ns),
        ("MX", &form.dns_mx),
    ]
    .into_iter()
    .filter(|(_, ticked)| ticked.is_some())
    .map(|(kind, _)| kind)
    .collect();
    if !dns.is_empty() {
        put("dns", json!(dns));
    }
    let new = NewWatchTarget {
        name: form.name,
        url: form.url,
        settings,
    };
    let outcome = state
        .platform
        .add_watch_target(&ctx.actor, &id, new)
        .await
        .map(|target| {
            format!(
                "Watching {}: the first check runs within seconds.",
                target.name
            )
        });
    done(&format!("/missions/{id}/watch"), outcome)
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, NoFields {}): Form<NoFields>,
) -> Response {
    on_target(&state, &ctx, &id, TargetAction::Remove).await
}

#[derive(Deserialize)]
pub(crate) struct NotifyForm {
    #[serde(default)]
    webhook_url: String,
    #[serde(default)]
    webhook_secret: String,
    #[serde(default)]
    emails: String,
}

pub(crate) async fn set_notifications(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<NotifyForm>,
) -> Response {
    let settings = crrt_platform::WatchNotificationSettings {
        webhook_url: Some(form.webhook_url),
        webhook_secret: Some(form.webhook_secret),
        emails: form
            .emails
            .split(['\n', ','])
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect(),
    };
    let outcome = state
        .platform
        .set_watch_notifications(&ctx.actor, &id, settings)
        .await
        .map(|_| "Notifications saved.".to_owned());
    done(&format!("/missions/{id}/watch"), outcome)
}

pub(crate) async fn rebaseline(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, NoFields {}): Form<NoFields>,
) -> Response {
    on_target(&state, &ctx, &id, TargetAction::Rebaseline).await
}

enum TargetAction {
    Remove,
    Rebaseline,
}

/// Does something to a target, then back to its mission's board.
async fn on_target(state: &AppState, ctx: &Ctx, id: &str, action: TargetAction) -> Response {
    let mission = match state.platform.store().watch_target(id).await {
        Ok(Some(target)) => target.mission_id,
        Ok(None) => {
            return done(
                "/missions",
                Err(PlatformError::NotFound(format!("watch target {id}"))),
            );
        }
        Err(error) => return done("/missions", Err(error.into())),
    };
    let outcome = match action {
        TargetAction::Remove => state
            .platform
            .remove_watch_target(&ctx.actor, id)
            .await
            .map(|()| "No longer watched.".to_owned()),
        TargetAction::Rebaseline => state
            .platform
            .rebaseline_watch_target(&ctx.actor, id)
            .await
            .map(|()| "The next check is the new normal; the open alerts are closed.".to_owned()),
    };
    done(&format!("/missions/{mission}/watch"), outcome)
}
