//! The shell every page shares and the small components pages are made of:
//! badges for level, TLP and state, times and ages, tables, the pager, the
//! timeline. maud escapes every interpolated string; the only raw HTML is
//! a note's, which the platform renders with raw HTML turned into text.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crrt_platform::Role;
use crrt_platform::policy::Action;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::Ctx;

const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · CRRT" }
            link rel="stylesheet" href={ "/assets/app.css?v=" (ASSET_VERSION) };
            script src={ "/assets/app.js?v=" (ASSET_VERSION) } defer {}
        }
    }
}

/// A page for someone not signed in (sign-in, errors).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main #main.narrow {
                    p.brand { span.logo aria-hidden="true" { "◆" } " CRRT" }
                    (body)
                }
            }
        }
    }
}

/// A full page for the signed-in person: navigation by role, the flash
/// message, breadcrumbs, and the content.
pub(crate) fn page(ctx: &Ctx, title: &str, crumbs: &[(&str, String)], body: Markup) -> Response {
    render(ctx, StatusCode::OK, title, crumbs, body)
}

pub(crate) fn render(
    ctx: &Ctx,
    status: StatusCode,
    title: &str,
    crumbs: &[(&str, String)],
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/dashboard" { span.logo aria-hidden="true" { "◆" } " CRRT" }
                    nav aria-label="Main" { ul { (nav(ctx)) } }
                    div.who {
                        a href="/account" title="Your account" {
                            (ctx.actor.user.display_name) " "
                            span.role { (ctx.actor.role.as_str()) }
                        }
                        form method="post" action="/signout" {
                            (csrf(ctx))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    @if !crumbs.is_empty() {
                        nav.crumbs aria-label="Breadcrumb" {
                            @for (label, href) in crumbs {
                                a href=(href) { (label) } " / "
                            }
                        }
                    }
                    @if let Some(flash) = &ctx.flash {
                        div class={ "flash " (if flash.ok { "ok" } else { "error" }) }
                            role=(if flash.ok { "status" } else { "alert" }) {
                            (flash.message)
                        }
                    }
                    (body)
                }
            }
        }
    };
    let mut response = (status, markup).into_response();
    if ctx.flash.is_some() {
        super::clear_flash(&mut response);
    }
    response
}

fn nav(ctx: &Ctx) -> Markup {
    let role = ctx.actor.role;
    let mut items = vec![("Dashboard", "/dashboard")];
    if ctx.may(Action::ListRequests) {
        items.push(("Requests", "/requests"));
    }
    if ctx.may(Action::ListMissions) {
        items.push(("Missions", "/missions"));
    }
    if ctx.may(Action::ShareIndicator) {
        items.push(("Indicators", "/indicators"));
    }
    if ctx.may(Action::ReadRulePacks) {
        items.push(("Rule packs", "/rulepacks"));
    }
    if ctx.may(Action::ListUsers) {
        items.push(("Roster", "/roster"));
    }
    if role == Role::Admin {
        items.push(("Audit", "/audit"));
    }
    html! {
        @for (label, href) in items {
            li {
                a href=(href) aria-current=[ctx.path.starts_with(href).then_some("page")] { (label) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="_csrf" value=(ctx.csrf); }
}

/// A one-button form that POSTs to `action` (with optional extra hidden
/// fields) — for state changes, which never travel in links.
pub(crate) fn action_button(
    ctx: &Ctx,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(ctx))
            @for (name, value) in fields { input type="hidden" name=(name) value=(value); }
            button type="submit" class=(class) { (label) }
        }
    }
}

/// `2022-02-24 04:50 UTC`, with the exact stored time on hover.
pub(crate) fn time(at: &str) -> Markup {
    let short = at.get(..16).unwrap_or(at).replace('T', " ");
    html! { time datetime=(at) title=(at) { (short) " UTC" } }
}

pub(crate) fn maybe_time(at: Option<&str>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { "—" } },
    }
}

/// How long ago, in the largest unit that fits: `3 h`, `2 d`.
pub(crate) fn age(at: &str) -> String {
    let Ok(then) = at.parse::<jiff::Timestamp>() else {
        return "?".into();
    };
    let seconds = (jiff::Timestamp::now() - then).get_seconds().max(0);
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// A coloured badge; `kind` picks the palette (`level`, `tlp`, `state`).
pub(crate) fn badge(kind: &str, value: &str) -> Markup {
    let class = value
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .to_ascii_lowercase();
    let label = if kind == "tlp" {
        format!("TLP:{}", value.to_ascii_uppercase())
    } else {
        value.replace('_', " ")
    };
    html! { span class={ "badge " (kind) "-" (class) } { (label) } }
}

pub(crate) fn empty(message: &str) -> Markup {
    html! { p.empty { (message) } }
}

/// Previous/next links for a list shown `per_page` at a time.
pub(crate) fn pager(base: &str, page: crrt_platform::Page, n_shown: usize) -> Markup {
    let number = page.offset / page.limit.max(1) + 1;
    let join = if base.contains('?') { '&' } else { '?' };
    let has_next = n_shown as i64 == page.limit;
    html! {
        @if number > 1 || has_next {
            nav.pager aria-label="Pages" {
                @if number > 1 {
                    a rel="prev" href={ (base) (join) "page=" (number - 1) } { "← Previous" }
                }
                span { "Page " (number) }
                @if has_next {
                    a rel="next" href={ (base) (join) "page=" (number + 1) } { "Next →" }
                }
            }
        }
    }
}

/// One entry of a timeline.
pub(crate) struct Moment<'a> {
    pub at: Option<&'a str>,
    pub kind: &'a str,
    pub title: Markup,
    pub detail: Markup,
}

pub(crate) fn timeline(moments: &[Moment<'_>]) -> Markup {
    html! {
        ol.timeline {
            @for m in moments {
                li class={ "moment kind-" (m.kind) } {
                    div.when { (maybe_time(m.at)) }
                    div.what {
                        span.kind { (m.kind) } " " (m.title)
                        div.detail { (m.detail) }
                    }
                }
            }
        }
    }
}

/// Markup the platform made safe (a note's HTML).
pub(crate) fn trusted(html: &str) -> PreEscaped<&str> {
    PreEscaped(html)
}

/// A short, readable id: enough to tell objects apart on screen.
pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Bytes as B, KiB, MiB or GiB.
pub(crate) fn size(bytes: i64) -> String {
    let b = bytes as f64;
    match bytes {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", b / 1024.0),
        n if n < 1 << 30 => format!("{:.1} MiB", b / 1048576.0),
        _ => format!("{:.2} GiB", b / 1073741824.0),
    }
}
