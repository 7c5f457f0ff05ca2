//! `crrt intel`: threat intelligence from partners' TAXII 2.1 servers.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::serve::{StoreArgs, runtime};

/// Threat intelligence from partners: pull a TAXII 2.1 collection once
/// (`pull`) or on a schedule inside `crrt serve` (`subscribe`).
#[derive(Debug, Args)]
pub struct IntelArgs {
    #[command(subcommand)]
    command: IntelCommand,
}

#[derive(Debug, Subcommand)]
enum IntelCommand {
    Pull(PullArgs),
    Subscribe(SubscribeArgs),
}

/// Pull a partner's TAXII 2.1 collection on a schedule, inside `crrt serve`
/// (which checks for due subscriptions every few seconds). Same options as
/// `crrt intel pull`, plus how often. The credential for the partner's
/// server is kept in the platform's database sealed with the server's key
/// (--secret-key, DIR/secret.key by default); a --ca-cert is kept with the
/// subscription for every later pull.
///
/// Example:
///
///   crrt intel subscribe http://taxii.partner.example/taxii2/api/collections/91a7.../ \
///       --token "$PARTNER_TOKEN" --source "Northwind Threat Research" --as admin@crrt.example --every 15m
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
struct SubscribeArgs {
    #[command(flatten)]
    pull: PullArgs,

    /// How often: seconds, or a number with s, m or h (at least 10s).
    #[arg(long, value_name = "INTERVAL", default_value = "15m", value_parser = parse_interval)]
    every: i64,
}

fn parse_interval(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, "s"),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not an interval such as 60s, 15m or 1h"))?;
    match unit {
        "s" => Ok(n),
        "m" => Ok(n * 60),
        "h" => Ok(n * 3600),
        _ => Err(format!(
            "{text:?} is not an interval such as 60s, 15m or 1h"
        )),
    }
}

/// Pull the indicators of a partner's TAXII 2.1 collection into the
/// platform: they keep their TLP marking (TLP:AMBER when unmarked, then
/// addressed to the member-state teams) and get the partner organisation as
/// their source. Values that organisation already shares are left as they
/// were, so pulling again is safe; `--added-after` with the time printed at
/// the end of a pull fetches only what is new.
///
/// Example:
///
///   crrt intel pull http://taxii.partner.example/taxii2/api/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/ \
///       --token "$PARTNER_TOKEN" --source "Northwind Threat Research" --as admin@crrt.example
///
/// HTTPS servers are checked against the system's certificate authorities,
/// plus the partner's own with --ca-cert FILE.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
struct PullArgs {
    /// The collection's URL (ending in /collections/ID/).
    #[arg(value_name = "URL")]
    url: String,

    /// HTTP Basic user name at the partner's server.
    #[arg(long, value_name = "USER", requires = "password")]
    user: Option<String>,

    /// HTTP Basic password at the partner's server.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "CRRT_TAXII_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,

    /// A bearer token for the partner's server (instead of --user/--password).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CRRT_TAXII_TOKEN",
        hide_env_values = true,
        conflicts_with = "user"
    )]
    token: Option<String>,

    /// The organisation (by name, as in this platform) the indicators come from.
    #[arg(long, value_name = "ORG")]
    source: String,

    /// The administrator recording the pull (audit trail).
    #[arg(long = "as", value_name = "EMAIL")]
    as_email: String,

    /// Only objects the partner's server added after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    added_after: Option<String>,

    #[command(flatten)]
    tls: crate::client::TlsArgs,

    #[command(flatten)]
    store: StoreArgs,
}

const TAXII: &str = "application/taxii+json;version=2.1";

pub fn run(args: IntelArgs) -> Result<ExitCode> {
    match args.command {
        IntelCommand::Pull(pull) => pull_into_platform(pull),
        IntelCommand::Subscribe(subscribe) => subscribe_in_platform(subscribe),
    }
}

/// How to sign in at a partner's server.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    Bearer(String),
    Basic(String, Option<String>),
    None,
}

impl Auth {
    fn of(args: &PullArgs) -> Auth {
        match (&args.token, &args.user) {
            (Some(token), _) => Auth::Bearer(token.clone()),
            (None, Some(user)) => Auth::Basic(user.clone(), args.password.clone()),
            _ => Auth::None,
        }
    }

    /// As kept with a subscription: `bearer TOKEN`, `basic USER:PASSWORD`.
    pub(crate) fn parse(stored: &str) -> Auth {
        if let Some(token) = stored.strip_prefix("bearer ") {
            return Auth::Bearer(token.to_owned());
        }
        if let Some(pair) = stored.strip_prefix("basic ") {
            let (user, password) = pair.split_once(':').unwrap_or((pair, ""));
            return Auth::Basic(user.to_owned(), Some(password.to_owned()));
        }
        Auth::None
    }

    fn stored(&self) -> String {
        match self {
            Auth::Bearer(t) => format!("bearer {t}"),
            Auth::Basic(u, p) => format!("basic {u}:{}", p.as_deref().unwrap_or("")),
            Auth::None => "none".into(),
        }
    }
}

fn subscribe_in_platform(args: SubscribeArgs) -> Result<ExitCode> {
    let auth = Auth::of(&args.pull);
    let ca_pem = args.pull.tls.pem()?;
    runtime()?.block_on(async move {
        let platform = args.pull.store.open().await?;
        let recorder = recorder(&platform, &args.pull.as_email).await?;
        let url = with_slash(&args.pull.url);
        let subscription = platform
            .subscribe(
                &recorder,
                &url,
                &args.pull.source,
                &auth.stored(),
                ca_pem.as_deref(),
                args.every,
            )
            .await?;
        println!(
            "subscription {}: {} every {} s into {} (crrt serve pulls it)",
            subscription.id, url, args.every, args.pull.source
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

async fn recorder(platform: &crrt_platform::Platform, email: &str) -> Result<crrt_platform::Actor> {
    platform
        .store()
        .user_by_email(&email.trim().to_ascii_lowercase())
        .await?
        .and_then(crrt_platform::Actor::new)
        .with_context(|| format!("no account {email}"))
}

fn pull_into_platform(args: PullArgs) -> Result<ExitCode> {
    if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
        bail!(
            "{}: a TAXII collection's http:// or https:// URL is needed",
            args.url
        );
    }
    let base = with_slash(&args.url);
    let auth = Auth::of(&args);
    let client = args.tls.client()?;
    runtime()?.block_on(async move {
        let platform = args.store.open().await?;
        let recorder = recorder(&platform, &args.as_email).await?;
        let (objects, last_added) =
            fetch(&client, &base, &auth, args.added_after.as_deref(), true).await?;
        let report = platform
            .import_pulled(&recorder, &args.source, &objects)
            .await?;
        for problem in &report.problems {
            eprintln!("warning: skipped {problem}");
        }
        println!(
            "{} indicator objects pulled: {} new indicators from {}, {} already known, {} skipped",
            objects.len(),
            report.imported,
            args.source,
            report.already_known,
            report.problems.len()
        );
        if let Some(last) = last_added {
            println!("next time: --added-after {last}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Every indicator object of a collection (added after a time), page by
/// page, and the date the last of them was added.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    base: &str,
    auth: &Auth,
    added_after: Option<&str>,
    progress: bool,
) -> Result<(Vec<serde_json::Value>, Option<String>)> {
    let mut objects = Vec::new();
    let mut next: Option<String> = None;
    let mut last_added: Option<String> = None;
    loop {
        let mut query = vec![
            ("match[type]", "indicator".to_owned()),
            ("limit", "1000".to_owned()),
        ];
        if let Some(after) = added_after {
            query.push(("added_after", after.to_owned()));
        }
        if let Some(n) = &next {
            query.push(("next", n.clone()));
        }
        let url = format!(
            "{base}objects/?{}",
            query
                .iter()
                .map(|(k, v)| format!(
                    "{}={}",
                    k.replace('[', "%5B").replace(']', "%5D"),
                    encode(v)
                ))
                .collect::<Vec<_>>()
                .join("&")
        );
        let mut request = client.get(&url).header("accept", TAXII);
        request = match auth {
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic(user, password) => request.basic_auth(user, password.clone()),
            Auth::None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("asking {base}: {}", crate::client::describe(&e)))?;
        let status = response.status();
        if let Some(last) = response
            .headers()
            .get("x-taxii-date-added-last")
            .and_then(|v| v.to_str().ok())
        {
            last_added = Some(last.to_owned());
        }
        let body: serde_json::Value = response
            .json()
            .await
            .with_context(|| format!("{base} did not answer with JSON ({status})"))?;
        if !status.is_success() {
            bail!(
                "{base} refused ({status}): {}",
                body["description"]
                    .as_str()
                    .or(body["title"].as_str())
                    .unwrap_or("no reason given")
            );
        }
        if let Some(page) = body["objects"].as_array() {
            objects.extend(page.iter().cloned());
        }
        if progress {
            eprintln!("{} objects so far", objects.len());
        }
        match (body["more"].as_bool(), body["next"].as_str()) {
            (Some(true), Some(token)) if !token.is_empty() => next = Some(token.to_owned()),
            _ => return Ok((objects, last_added)),
        }
    }
}

/// Pulls every due subscription, until `stop` completes (inside `crrt serve`).
pub(crate) async fn run_subscriptions(
    platform: crrt_platform::Platform,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let now = crrt_platform::now();
        match platform.store().due_subscriptions(&now).await {
            Ok(due) => {
                for subscription in due {
                    let result = pull_once(&platform, &subscription).await;
                    let (watermark, message) = match result {
                        Ok((last, message)) => (last, message),
                        Err(e) => (None, format!("error: {e:#}")),
                    };
                    tracing::info!(subscription = %subscription.id, result = %message, "TAXII pull");
                    if let Err(e) = platform
                        .subscription_ran(&subscription, watermark.as_deref(), &message)
                        .await
                    {
                        tracing::warn!(error = %e, "recording a TAXII pull failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading subscriptions failed"),
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}

async fn pull_once(
    platform: &crrt_platform::Platform,
    subscription: &crrt_platform::Subscription,
) -> Result<(Option<String>, String)> {
    let (recorder, source) = platform.subscription_context(subscription).await?;
    let auth = Auth::parse(&platform.subscription_auth(subscription)?);
    let client =
        crate::client::client_trusting(subscription.ca_pem.as_deref(), "the subscription's CA")?;
    let (objects, last) = fetch(
        &client,
        &subscription.url,
        &auth,
        subscription.added_after.as_deref(),
        false,
    )
    .await?;
    let report = platform.import_pulled(&recorder, &source, &objects).await?;
    Ok((
        last,
        format!(
            "{} objects, {} new, {} already known, {} skipped",
            objects.len(),
            report.imported,
            report.already_known,
            report.problems.len()
        ),
    ))
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
