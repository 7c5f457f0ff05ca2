//! Indicators in the browser: the list (search, type, level, case;
//! filtered by TLP in the platform like every other read), sharing one,
//! pasting a list, importing a file, exporting, and one indicator's page.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::Response;
use crrt_intel::{Kind, Tlp};
use crrt_platform::{
    BatchSettings, Format, ImportReport, IndicatorFilter, IndicatorUpdate, IndicatorView,
    NewIndicator, Page, PlatformError,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{badge, csrf, empty, maybe_time, page, pager, short, time};
use super::{Ctx, Form, done};
use crate::AppState;

const PER_PAGE: i64 = 100;

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    q: Option<String>,
    kind: Option<String>,
    tlp: Option<String>,
    case: Option<String>,
    page: Option<i64>,
}

impl ListQuery {
    fn filter(&self) -> IndicatorFilter {
        let some = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        IndicatorFilter {
            kind: some(&self.kind),
            tlp: some(&self.tlp),
            search: some(&self.q),
            case_id: some(&self.case),
            ..IndicatorFilter::default()
        }
    }

    /// This query as URL parameters, without the page.
    fn params(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("q", &self.q),
            ("kind", &self.kind),
            ("tlp", &self.tlp),
            ("case", &self.case),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let number = query.page.unwrap_or(1).max(1);
    let page_of = Page {
        limit: PER_PAGE,
        offset: (number - 1) * PER_PAGE,
    };
    let filter = query.filter();
    let loaded = async {
        let items = state
            .platform
            .indicators(&ctx.actor, &filter, page_of)
            .await?;
        let total = state.platform.count_indicators(&ctx.actor, &filter).await?;
        Ok::<_, PlatformError>((items, total))
    };
    let (items, total) = match loaded.await {
        Ok(both) => both,
        Err(e) => return ctx.fail(e),
    };
    let params = query.params();
    let body = html! {
        h1 { "Indicators" }
        p.muted { "What partners and the team share, as far as your organisation's TLP allows. " (total) " in all"
            @if !params.is_empty() { " match" } "." }
        form.row.filters method="get" action="/indicators" role="search" {
            label for="f-q" { "Value contains" }
            input #f-q name="q" value=(query.q.as_deref().unwrap_or(""));
            label for="f-kind" { "Type" }
            select #f-kind name="kind" {
                option value="" { "any" }
                @for k in Kind::ALL { option value=(k.as_str()) selected[query.kind.as_deref() == Some(k.as_str())] { (k.as_str()) } }
            }
            label for="f-tlp" { "TLP" }
            select #f-tlp name="tlp" {
                option value="" { "any" }
                @for t in Tlp::ALL { option value=(t.as_str()) selected[query.tlp.as_deref() == Some(t.as_str())] { (t.label()) } }
            }
            @if let Some(case) = query.case.as_deref().filter(|c| !c.is_empty()) { input type="hidden" name="case" value=(case); }
            button type="submit" { "Filter" }
            a href={ "/api/v1/indicators/export?" (params) } download="crrt-indicators.stix.json" { "Export STIX 2.1" }
            a href={ "/api/v1/indicators/export?format=misp&" (params) } download="crrt-indicators.misp.json" { "Export MISP" }
            a href="/sharing" { "TAXII" }
        }
        (table(&items))
        (pager(&format!("/indicators?{params}"), page_of, items.len()))
        div.grid {
            section.card #share { h2 { "Share one" } (share_form(&ctx, None)) }
            section.card #paste {
                h2 { "Paste a list" }
                p.muted { "One value per line; types are detected (write " code { "TYPE:VALUE" } " for accounts and mutexes). "
                    "Defanged values are fine. All lines or none." }
                form.stack method="post" action="/indicators/paste" {
                    (csrf(&ctx))
                    label for="paste-text" { "Values" }
                    textarea #paste-text name="text" rows="6" required placeholder="185.61.137[.]4\nhxxp://evil[.]example/stage2\nmutex:Global\\WG" {}
                    (tlp_select("paste-tlp", Tlp::Amber))
                    label for="paste-tags" { "Tags (comma-separated)" }
                    input #paste-tags name="tags" placeholder="T1485, malware:WhisperGate";
                    button.primary type="submit" { "Share the list" }
                }
            }
            section.card #import {
                h2 { "Import a file" }
                p.muted { "A STIX 2.1 bundle or MISP event (the valid rest comes in, the rest is listed), or CSV with a "
                    code { "value" } " column (all rows or none)." }
                form.stack method="post" action="/indicators/import" enctype="multipart/form-data" {
                    (csrf(&ctx))
                    label for="import-format" { "Format" }
                    select #import-format name="format" {
                        option value="stix" { "STIX 2.1 bundle" } option value="misp" { "MISP event" } option value="csv" { "CSV" }
                    }
                    label for="import-tlp-level" { "TLP for entries without one" }
                    (tlp_select("import-tlp", Tlp::Amber))
                    label for="import-file" { "File" }
                    input #import-file type="file" name="file" required;
                    button.primary type="submit" { "Import" }
                }
            }
        }
    };
    page(&ctx, "Indicators", &[], body)
}

fn tlp_select(id: &str, selected: Tlp) -> Markup {
    html! {
        label for=(id) { "TLP" }
        select id=(id) name="tlp" {
            @for t in Tlp::ALL { option value=(t.as_str()) selected[*t == selected] { (t.label()) } }
        }
    }
}

/// The form to share one value; on a case page it links to that case.
pub(crate) fn share_form(ctx: &Ctx, case_id: Option<&str>) -> Markup {
    html! {
        form.stack method="post" action="/indicators" {
            (csrf(ctx))
            @if let Some(case) = case_id { input type="hidden" name="case_id" value=(case); }
            label for="share-value" { "Value" }
            input #share-value name="value" required maxlength="4096" placeholder="evil[.]example, 185.61.137.4, a SHA-256 ...";
            label for="share-kind" { "Type" }
            select #share-kind name="kind" {
                option value="" { "detect" }
                @for k in Kind::ALL { option value=(k.as_str()) { (k.as_str()) } }
            }
            (tlp_select("share-tlp", Tlp::Amber))
            label for="share-orgs" { "TLP:AMBER — also for these organisations (comma-separated)" }
            input #share-orgs name="recipient_orgs";
            label for="share-users" { "TLP:RED — only these people (e-mails, comma-separated)" }
            input #share-users name="recipient_users";
            label for="share-confidence" { "Confidence (0–100)" }
            input #share-confidence type="number" name="confidence" min="0" max="100";
            label for="share-tags" { "Tags (comma-separated: T1485, malware:WhisperGate)" }
            input #share-tags name="tags";
            label for="share-expires" { "Expires" }
            input #share-expires type="date" name="expires_at";
            label for="share-description" { "Description" }
            textarea #share-description name="description" rows="2" {}
            button.primary type="submit" { "Share" }
        }
    }
}

pub(crate) fn table(items: &[IndicatorView]) -> Markup {
    html! {
        @if items.is_empty() { (empty("No indicators.")) } @else {
            table.indicators {
                thead { tr { th { "Value" } th { "Type" } th { "TLP" } th { "Source" } th { "Confidence" } th { "Sightings" } th { "Tags" } th { "Changed" } } }
                tbody { @for i in items {
                    @let ind = &i.indicator;
                    tr {
                        td { a href={ "/indicators/" (ind.id) } { code.hash { (ind.value) } } }
                        td { (ind.kind) }
                        td { (badge("tlp", &ind.tlp)) }
                        td { (i.source) }
                        td.num { @if let Some(c) = ind.confidence { (c) } @else { "—" } }
                        td.num { (ind.sightings) }
                        td { (ind.tags.join(", ")) }
                        td { (time(&ind.updated_at)) }
                    }
                } }
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ShareForm {
    value: String,
    kind: Option<String>,
    tlp: Tlp,
    confidence: Option<String>,
    tags: Option<String>,
    expires_at: Option<String>,
    description: Option<String>,
    case_id: Option<String>,
    finding_id: Option<String>,
    recipient_orgs: Option<String>,
    recipient_users: Option<String>,
}

fn comma_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn share(
    State(state): State<AppState>,
    Form(ctx, form): Form<ShareForm>,
) -> Response {
    let back = match (&form.case_id, &form.finding_id) {
        (Some(case), _) if !case.is_empty() => format!("/cases/{case}#indicators"),
        _ => "/indicators".to_owned(),
    };
    let confidence = match form
        .confidence
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => match c.parse::<u8>() {
            Ok(c) => Some(c),
            Err(_) => {
                return done(
                    &back,
                    Err(PlatformError::Invalid(format!(
                        "confidence {c:?} is not 0 to 100"
                    ))),
                );
            }
        },
    };
    let new = NewIndicator {
        kind: form.kind.filter(|k| !k.is_empty()),
        value: form.value,
        tlp: form.tlp,
        confidence,
        tags: comma_list(form.tags.as_deref()),
        first_seen: None,
        expires_at: form.expires_at.filter(|e| !e.is_empty()),
        description: form.description,
        case_id: form.case_id.filter(|c| !c.is_empty()),
        mission_id: None,
        recipient_orgs: comma_list(form.recipient_orgs.as_deref()),
        recipient_users: comma_list(form.recipient_users.as_deref()),
    };
    let outcome = match form.finding_id.filter(|f| !f.is_empty()) {
        Some(finding) => {
            state
                .platform
                .promote_finding_value(&ctx.actor, &finding, new)
                .await
        }
        None => state.platform.share_indicator(&ctx.actor, new).await,
    };
    match outcome {
        Ok(view) => done(
            &format!("/indicators/{}", view.indicator.id),
            Ok(format!(
                "Shared {} {} as {}.",
                view.indicator.kind,
                view.indicator.value,
                Tlp::ALL
                    .iter()
                    .find(|t| t.as_str() == view.indicator.tlp)
                    .map_or_else(|| view.indicator.tlp.clone(), |t| t.label())
            )),
        ),
        Err(e) => done(&back, Err(e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct PasteForm {
    text: String,
    tlp: Tlp,
    tags: Option<String>,
}

pub(crate) async fn paste(
    State(state): State<AppState>,
    Form(ctx, form): Form<PasteForm>,
) -> Response {
    let settings = BatchSettings {
        tlp: form.tlp,
        confidence: None,
        tags: comma_list(form.tags.as_deref()),
        case_id: None,
        mission_id: None,
        recipient_orgs: Vec::new(),
        recipient_users: Vec::new(),
    };
    let outcome = state
        .platform
        .import_indicators(&ctx.actor, Format::Text, form.text.as_bytes(), settings)
        .await
        .and_then(report_message);
    done("/indicators", outcome)
}

fn report_message(report: ImportReport) -> Result<String, PlatformError> {
    let skipped = |r: &ImportReport| {
        r.problems
            .iter()
            .take(5)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if report.refused {
        return Err(PlatformError::Invalid(format!(
            "nothing was stored: {}{}",
            skipped(&report),
            if report.problems.len() > 5 {
                "; ..."
            } else {
                ""
            }
        )));
    }
    let mut message = format!(
        "{} new indicators shared, {} already known.",
        report.imported, report.already_known
    );
    if !report.problems.is_empty() {
        message.push_str(&format!(
            " {} entries skipped: {}",
            report.problems.len(),
            skipped(&report)
        ));
    }
    Ok(message)
}

/// A file import: the CSRF field first, then format, level and the file.
pub(crate) async fn import(
    State(state): State<AppState>,
    ctx: Ctx,
    mut multipart: Multipart,
) -> Response {
    let mut token = None;
    let mut format = None;
    let mut tlp = None;
    let mut bytes = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return done(
                    "/indicators",
                    Err(PlatformError::Invalid(format!(
                        "the upload broke off ({}); nothing was stored",
                        e.body_text()
                    ))),
                );
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "_csrf" && token.is_none() {
            return super::csrf_refused();
        }
        match field.bytes().await {
            Ok(data) => match name.as_str() {
                "_csrf" => token = Some(String::from_utf8_lossy(&data).into_owned()),
                "format" => format = Some(String::from_utf8_lossy(&data).into_owned()),
                "tlp" => tlp = Some(String::from_utf8_lossy(&data).into_owned()),
                "file" => bytes = Some(data),
                _ => {}
            },
            Err(e) => {
                return done(
                    "/indicators",
                    Err(PlatformError::TooLarge(format!(
                        "the file could not be read ({}); nothing was stored",
                        e.body_text()
                    ))),
                );
            }
        }
    }
    if !token.is_some_and(|t| super::same_secret(&t, &ctx.csrf)) {
        return super::csrf_refused();
    }
    let format = match format.as_deref() {
        Some("stix") => Format::Stix,
        Some("misp") => Format::Misp,
        Some("csv") => Format::Csv,
        other => {
            return done(
                "/indicators",
                Err(PlatformError::Invalid(format!(
                    "format {other:?} is not stix, misp or csv"
                ))),
            );
        }
    };
    let tlp = match tlp.as_deref().unwrap_or("amber").parse::<Tlp>() {
        Ok(t) => t,
        Err(e) => return done("/indicators", Err(e.into())),
    };
    let Some(bytes) = bytes else {
        return done(
            "/indicators",
            Err(PlatformError::Invalid("choose a file".into())),
        );
    };
    let settings = BatchSettings {
        tlp,
        confidence: None,
        tags: Vec::new(),
        case_id: None,
        mission_id: None,
        recipient_orgs: Vec::new(),
        recipient_users: Vec::new(),
    };
    let outcome = state
        .platform
        .import_indicators(&ctx.actor, format, &bytes, settings)
        .await
        .and_then(report_message);
    done("/indicators", outcome)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let loaded = async {
        let view = state.platform.indicator(&ctx.actor, &id).await?;
        let sightings = state
            .platform
            .store()
            .sightings_of(&view.indicator.id, 50)
            .await?;
        Ok::<_, PlatformError>((view, sightings))
    };
    let (view, sightings) = match loaded.await {
        Ok(both) => both,
        Err(e) => return ctx.fail(e),
    };
    let ind = &view.indicator;
    let may_change = ctx.may(crrt_platform::policy::Action::ChangeIndicator(ind));
    let body = html! {
        h1 { code.hash { (ind.value) } " " (badge("tlp", &ind.tlp)) }
        dl.facts {
            dt { "Type" } dd { (ind.kind) }
            dt { "Source" } dd { (view.source) }
            dt { "Confidence" } dd { @if let Some(c) = ind.confidence { (c) } @else { "—" } }
            dt { "First seen" } dd { (maybe_time(ind.first_seen.as_deref())) }
            dt { "Last seen" } dd { (maybe_time(ind.last_seen.as_deref())) }
            dt { "Expires" } dd { (maybe_time(ind.expires_at.as_deref())) }
            dt { "Tags" } dd { (ind.tags.join(", ")) }
            dt { "Shared" } dd { (time(&ind.created_at)) " · changed " (time(&ind.updated_at)) }
            @if !view.recipient_orgs.is_empty() { dt { "Also for" } dd { (view.recipient_orgs.join(", ")) } }
            @if !view.recipient_users.is_empty() { dt { "Only for" } dd { (view.recipient_users.join(", ")) } }
            @if !view.links.is_empty() {
                dt { "Linked to" }
                dd { @for l in &view.links {
                    @match &l.case_id {
                        Some(case) => { a href={ "/cases/" (case) } { "case " (short(case)) } " " }
                        None => { a href={ "/missions/" (l.mission_id) } { "mission " (short(&l.mission_id)) } " " }
                    }
                } }
            }
        }
        @if let Some(d) = &ind.description { p.pre { (d) } }
        section {
            h2 { "Sightings (" (ind.sightings) ")" }
            @if sightings.is_empty() { (empty("Not seen by a hunt yet.")) } @else {
                table {
                    thead { tr { th { "Seen in" } th { "When" } th { "Recorded" } } }
                    tbody { @for s in &sightings {
                        tr { td { (s.seen_in) } td { (maybe_time(s.at.as_deref())) } td { (time(&s.recorded_at)) } }
                    } }
                }
            }
        }
        @if may_change {
            section.card {
                h2 { "Change" }
                form.stack method="post" action={ "/indicators/" (ind.id) } {
                    (csrf(&ctx))
                    input type="hidden" name="version" value=(ind.version);
                    label for="change-tlp" { "TLP" }
                    select #change-tlp name="tlp" {
                        @for t in Tlp::ALL { option value=(t.as_str()) selected[t.as_str() == ind.tlp] { (t.label()) } }
                    }
                    label for="change-orgs" { "TLP:AMBER — also for (organisations, comma-separated)" }
                    input #change-orgs name="recipient_orgs" value=(view.recipient_orgs.join(", "));
                    label for="change-users" { "TLP:RED — only for (e-mails, comma-separated)" }
                    input #change-users name="recipient_users" value=(view.recipient_users.join(", "));
                    label for="change-expires" { "Expires" }
                    input #change-expires type="date" name="expires_at" value=(ind.expires_at.as_deref().and_then(|e| e.get(..10)).unwrap_or(""));
                    button.primary type="submit" { "Save" }
                }
            }
        }
    };
    page(
        &ctx,
        &ind.value,
        &[("Indicators", "/indicators".into())],
        body,
    )
}

#[derive(Deserialize)]
pub(crate) struct ChangeForm {
    version: i64,
    tlp: Tlp,
    recipient_orgs: Option<String>,
    recipient_users: Option<String>,
    expires_at: Option<String>,
}

pub(crate) async fn change(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, form): Form<ChangeForm>,
) -> Response {
    let update = IndicatorUpdate {
        version: form.version,
        tlp: Some(form.tlp),
        confidence: None,
        expires_at: form.expires_at.filter(|e| !e.is_empty()),
        tags: None,
        description: None,
        recipient_orgs: Some(comma_list(form.recipient_orgs.as_deref())),
        recipient_users: Some(comma_list(form.recipient_users.as_deref())),
    };
    let outcome = state
        .platform
        .update_indicator(&ctx.actor, &id, update)
        .await
        .map(|v| format!("Saved; now {}.", v.indicator.tlp.to_ascii_uppercase()));
    done(&format!("/indicators/{id}"), outcome)
}

/// TAXII for partners' tools, and (for administrators) standing pulls from
/// partners' servers.
pub(crate) async fn sharing(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: axum::http::HeaderMap,
) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("this-server");
    let admin = ctx.may(crrt_platform::policy::Action::Administer);
    let (subscriptions, orgs) = if admin {
        let loaded = async {
            let subs = state.platform.subscriptions(&ctx.actor).await?;
            let orgs = state.platform.organisation_names().await?;
            Ok::<_, PlatformError>((subs, orgs))
        };
        match loaded.await {
            Ok(both) => both,
            Err(e) => return ctx.fail(e),
        }
    } else {
        (Vec::new(), std::collections::HashMap::new())
    };
    let mut org_names: Vec<&String> = orgs.values().collect();
    org_names.sort();
    let body = html! {
        h1 { "Sharing over TAXII 2.1" }
        section.card {
            h2 { "For your tools" }
            p { "Point a TAXII 2.1 client (OpenCTI, MISP's TAXII module, taxii2-client) at this server. "
                "Sign in with your e-mail and an " a href="/account/tokens" { "API token" } " as the password." }
            dl.facts {
                dt { "Discovery" } dd { code { "http://" (host) "/taxii2/" } }
                dt { "API root" } dd { code { "http://" (host) "/taxii2/" (crrt_platform::taxii::API_ROOT) "/" } }
                dt { "Shared (read)" } dd { code { (crrt_platform::taxii::SHARED) } " — the indicators your TLP allows" }
                dt { "Inbox (read, write)" } dd { code { (crrt_platform::taxii::INBOX) } " — your organisation's submissions; their indicators reach the team" }
            }
        }
        @if admin {
            section.card {
                h2 { "Pulling from partners" }
                @if subscriptions.is_empty() { (empty("No standing pulls.")) } @else {
                    table {
                        thead { tr { th { "Collection" } th { "Source" } th { "Every" } th { "Last pull" } th { "Result" } th { "Next" } } }
                        tbody { @for sub in &subscriptions {
                            tr {
                                td { code.hash { (sub.url) } }
                                td { (orgs.get(&sub.source_org_id).map_or(short(&sub.source_org_id), |s| s.as_str())) }
                                td.num { (sub.every_seconds) " s" }
                                td { (maybe_time(sub.last_run.as_deref())) }
                                td { (sub.last_result.as_deref().unwrap_or("—")) }
                                td { (time(&sub.next_run)) }
                            }
                        } }
                    }
                }
                form.stack method="post" action="/sharing/subscriptions" {
                    (csrf(&ctx))
                    label for="sub-url" { "Collection URL (https://…/collections/ID/)" }
                    input #sub-url name="url" required placeholder="http://taxii.partner.example/taxii2/api/collections/…/";
                    label for="sub-source" { "Source organisation" }
                    select #sub-source name="source" {
                        @for name in &org_names { option value=(name) { (name) } }
                    }
                    label for="sub-token" { "Token at the partner's server (Bearer)" }
                    input #sub-token name="token" autocomplete="off";
                    label for="sub-user" { "…or Basic user" }
                    input #sub-user name="user" autocomplete="off";
                    label for="sub-password" { "…and password" }
                    input #sub-password type="password" name="password" autocomplete="off";
                    label for="sub-every" { "Every (seconds, at least 10)" }
                    input #sub-every type="number" name="every" min="10" value="900";
                    label for="sub-ca" { "Partner's own certificate authority (PEM, optional)" }
                    textarea #sub-ca name="ca_pem" rows="3" placeholder="-----BEGIN CERTIFICATE-----" {}
                    button.primary type="submit" { "Subscribe" }
                }
                p.muted { "The credential is sealed with the server's key (not readable from the database or its backups). HTTPS servers must present a certificate from a public authority or the one given here." }
            }
        }
    };
    page(
        &ctx,
        "Sharing",
        &[("Indicators", "/indicators".into())],
        body,
    )
}

#[derive(Deserialize)]
pub(crate) struct SubscriptionForm {
    url: String,
    source: String,
    token: Option<String>,
    user: Option<String>,
    password: Option<String>,
    every: i64,
    ca_pem: Option<String>,
}

pub(crate) async fn subscribe(
    State(state): State<AppState>,
    Form(ctx, form): Form<SubscriptionForm>,
) -> Response {
    let auth = match (
        form.token.filter(|t| !t.trim().is_empty()),
        form.user.filter(|u| !u.trim().is_empty()),
    ) {
        (Some(token), _) => format!("bearer {}", token.trim()),
        (None, Some(user)) => format!(
            "basic {}:{}",
            user.trim(),
            form.password.unwrap_or_default()
        ),
        (None, None) => "none".into(),
    };
    let url = if form.url.trim().ends_with('/') {
        form.url.trim().to_owned()
    } else {
        format!("{}/", form.url.trim())
    };
    let outcome = state
        .platform
        .subscribe(
            &ctx.actor,
            &url,
            &form.source,
            &auth,
            form.ca_pem.as_deref(),
            form.every,
        )
        .await
        .map(|_| "Subscribed; the first pull runs within seconds.".to_owned());
    done("/sharing", outcome)
}
