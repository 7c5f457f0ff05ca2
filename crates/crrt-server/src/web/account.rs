//! Sign-in, sign-out, one's own account and API tokens.

use std::net::SocketAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use crrt_platform::{PlatformError, ProfileUpdate};
use maud::html;
use serde::Deserialize;

use super::layout::{self, csrf, empty, page, time};
use super::{Ctx, Form, NoFields, done, error_page};
use crate::AppState;
use crate::api::{end_session, set_session_cookie};

#[derive(Deserialize, Default)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Only our own paths: never an open redirect to another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/dashboard",
    }
}

fn signin_form(next: &str, email: &str, problem: Option<&str>) -> maud::Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(problem) = problem { div.flash.error role="alert" { (problem) } }
        form.stack method="post" action="/signin" {
            input type="hidden" name="next" value=(next);
            label for="email" { "E-mail" }
            input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button.primary type="submit" { "Sign in" }
        }
        p.muted { "Accounts are created by your platform administrator (" code { "crrt admin create-user" } ")." }
    }
}

pub(crate) async fn signin_page(query: Result<Query<Next>, QueryRejection>) -> Response {
    let next = query.ok().and_then(|Query(q)| q.next);
    layout::bare("Sign in", signin_form(safe_next(next.as_deref()), "", None)).into_response()
}

#[derive(Deserialize)]
pub(crate) struct SignIn {
    email: String,
    password: String,
    next: Option<String>,
}

/// Signing in needs no CSRF token (there is no session yet), but a form
/// posted from another site is refused by its Origin.
pub(crate) async fn signin(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignIn>,
) -> Response {
    if !same_origin(&headers) {
        return super::csrf_refused();
    }
    let next = safe_next(form.next.as_deref()).to_owned();
    match state
        .platform
        .login(&form.email, &form.password, &address.ip().to_string())
        .await
    {
        Ok(credentials) => {
            let mut response = Redirect::to(&next).into_response();
            set_session_cookie(&mut response, &state, &credentials.session_token);
            response
        }
        Err(e) => {
            let (status, message) = match &e {
                PlatformError::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "Wrong e-mail or password.".to_owned(),
                ),
                PlatformError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
                _ => return error_page(e),
            };
            (
                status,
                layout::bare("Sign in", signin_form(&next, &form.email, Some(&message))),
            )
                .into_response()
        }
    }
}

/// When the browser says where a form came from, it must be here.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_host == host
}

pub(crate) async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(_ctx, NoFields {}): Form<NoFields>,
) -> Response {
    let mut response = Redirect::to("/signin").into_response();
    match end_session(&state, &headers, &mut response).await {
        Ok(()) => response,
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn account_page(ctx: Ctx) -> Response {
    let user = &ctx.actor.user;
    let body = html! {
        h1 { "Your account" }
        dl.facts {
            dt { "Name" } dd { (user.display_name) }
            dt { "E-mail" } dd { (user.email) }
            dt { "Role" } dd { (ctx.actor.role.as_str()) }
            dt { "Skills" } dd { (list_or_dash(&user.skills)) }
            dt { "Languages" } dd { (list_or_dash(&user.languages)) }
        }
        p { a href="/account/tokens" { "API tokens" } " — for scripts and " code { "crrt import-findings" } "." }
        section {
            h2 { "Change password" }
            p.muted { "Changing it signs you out everywhere, this browser included." }
            form.stack method="post" action="/account/password" {
                (csrf(&ctx))
                input type="hidden" name="version" value=(user.version);
                label for="current" { "Current password" }
                input #current type="password" name="current_password" autocomplete="current-password" required;
                label for="new" { "New password (at least 12 characters)" }
                input #new type="password" name="new_password" autocomplete="new-password" minlength="12" required;
                button.primary type="submit" { "Change password" }
            }
        }
    };
    page(&ctx, "Your account", &[], body)
}

fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordChange {
    version: i64,
    current_password: String,
    new_password: String,
}

pub(crate) async fn change_password(
    State(state): State<AppState>,
    Form(ctx, form): Form<PasswordChange>,
) -> Response {
    let update = ProfileUpdate {
        version: form.version,
        display_name: None,
        skills: None,
        languages: None,
        availability: None,
        current_password: Some(form.current_password),
        new_password: Some(form.new_password),
    };
    match state.platform.update_profile(&ctx.actor, update).await {
        // Every session ended with the change: sign in again.
        Ok(_) => Redirect::to("/signin").into_response(),
        Err(e) => done("/account", Err(e)),
    }
}

pub(crate) async fn tokens_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    tokens_view(&state, ctx, None).await
}

async fn tokens_view(state: &AppState, ctx: Ctx, new_secret: Option<(String, String)>) -> Response {
    let tokens = match state
        .platform
        .tokens(
            &ctx.actor,
            crrt_platform::Page {
                limit: 200,
                offset: 0,
            },
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return error_page(e),
    };
    let body = html! {
        h1 { "API tokens" }
        p { "A token acts as you, with your role, from scripts: "
            code { "Authorization: Bearer TOKEN" } ". Revoke one the moment it may have leaked." }
        @if let Some((name, secret)) = &new_secret {
            div.flash.ok role="status" {
                "Token " strong { (name) } " created. Copy it now; CRRT keeps only its hash and cannot show it again:"
                pre.secret { code { (secret) } }
            }
        }
        form.row method="post" action="/account/tokens" {
            (csrf(&ctx))
            label for="name" { "Name" }
            input #name name="name" placeholder="laptop import" required maxlength="100";
            button.primary type="submit" { "Create token" }
        }
        @if tokens.is_empty() { (empty("No tokens yet.")) } @else {
            table {
                thead { tr { th { "Name" } th { "Created" } th { "State" } th {} } }
                tbody {
                    @for t in &tokens {
                        tr {
                            td { (t.name) }
                            td { (time(&t.created_at)) }
                            td { @if let Some(at) = &t.revoked_at { "revoked " (time(at)) } @else { (layout::badge("state", "active")) } }
                            td { @if t.revoked_at.is_none() {
                                (layout::action_button(&ctx, &format!("/account/tokens/{}/revoke", t.id), &[], "Revoke", "danger"))
                            } }
                        }
                    }
                }
            }
        }
    };
    page(&ctx, "API tokens", &[("Account", "/account".into())], body)
}

#[derive(Deserialize)]
pub(crate) struct TokenName {
    name: String,
}

pub(crate) async fn create_token(
    State(state): State<AppState>,
    Form(ctx, form): Form<TokenName>,
) -> Response {
    match state
        .platform
        .create_token(Some(&ctx.actor), &ctx.actor.user.email.clone(), &form.name)
        .await
    {
        Ok(token) => {
            let name = token.token.name.clone();
            tokens_view(&state, ctx, Some((name, token.secret))).await
        }
        Err(e) => done("/account/tokens", Err(e)),
    }
}

pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(ctx, NoFields {}): Form<NoFields>,
) -> Response {
    let outcome = state
        .platform
        .revoke_token(&ctx.actor, &id)
        .await
        .map(|()| "Token revoked; it no longer works.".to_owned());
    done("/account/tokens", outcome)
}
