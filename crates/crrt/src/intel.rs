//! `crrt intel`: threat intelligence from partners' TAXII 2.1 servers.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::serve::{StoreArgs, runtime};

/// Threat intelligence exchange with partners.
#[derive(Debug, Args)]
pub struct IntelArgs {
    #[command(subcommand)]
    command: IntelCommand,
}

#[derive(Debug, Subcommand)]
enum IntelCommand {
    Pull(PullArgs),
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
/// This build speaks plain HTTP only: reach HTTPS servers through a local
/// TLS-terminating proxy.
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
    store: StoreArgs,
}

const TAXII: &str = "application/taxii+json;version=2.1";

pub fn run(args: IntelArgs) -> Result<ExitCode> {
    match args.command {
        IntelCommand::Pull(pull) => pull_into_platform(pull),
    }
}

fn pull_into_platform(args: PullArgs) -> Result<ExitCode> {
    if !args.url.starts_with("http://") {
        bail!(
            "{}: only http:// URLs work in this build (no TLS); reach HTTPS servers through a local TLS-terminating proxy",
            args.url
        );
    }
    let base = if args.url.ends_with('/') {
        args.url.clone()
    } else {
        format!("{}/", args.url)
    };
    runtime()?.block_on(async move {
        let platform = args.store.open().await?;
        let recorder = platform
            .store()
            .user_by_email(&args.as_email.trim().to_ascii_lowercase())
            .await?
            .and_then(crrt_platform::Actor::new)
            .with_context(|| format!("no account {}", args.as_email))?;
        let client = reqwest::Client::new();
        let mut objects = Vec::new();
        let mut next: Option<String> = None;
        let mut last_added: Option<String> = None;
        loop {
            let mut query = vec![
                ("match[type]", "indicator".to_owned()),
                ("limit", "1000".to_owned()),
            ];
            if let Some(after) = &args.added_after {
                query.push(("added_after", after.clone()));
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
            request = match (&args.token, &args.user, &args.password) {
                (Some(token), _, _) => request.bearer_auth(token),
                (None, Some(user), password) => request.basic_auth(user, password.clone()),
                _ => request,
            };
            let response = request
                .send()
                .await
                .with_context(|| format!("asking {base}"))?;
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
            eprintln!("{} objects so far", objects.len());
            match (body["more"].as_bool(), body["next"].as_str()) {
                (Some(true), Some(token)) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
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
