//! `crrt serve` and `crrt admin`: the team platform and its administration
//! from the command line, against the same data directory or database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use crrt_platform::{
    AuditVerification, EvidenceStore, NewOrg, NewUser, OrgKind, Platform, Role, Skill,
    WorkerOptions,
};

/// The rule packs a fresh platform starts with (the `examples/` rules:
/// generic detections of log clearing, shadow copy deletion, discovery,
/// SSH brute force and web shells, and YARA rules for the 2022 wipers).
/// SigmaHQ and other sets are uploaded as ZIPs.
const BUNDLED_PACKS: &[(&str, &[u8])] = &[
    (
        "CRRT starter rules (Sigma)",
        concat!(
            include_str!("../../../examples/rules/discovery_whoami.yml"),
            "\n---\n",
            include_str!("../../../examples/rules/event_log_cleared.yml"),
            "\n---\n",
            include_str!("../../../examples/rules/shadow_copy_deletion.yml"),
            "\n---\n",
            include_str!("../../../examples/rules/ssh_brute_force.yml"),
            "\n---\n",
            include_str!("../../../examples/rules/webshell_request.yml"),
        )
        .as_bytes(),
    ),
    (
        "CRRT starter rules (YARA): wipers.yar",
        include_bytes!("../../../examples/yara/wipers.yar"),
    ),
];

/// A line for the operator on stdout. The server must outlive its stdout:
/// when whoever started it stops reading, the line is dropped, not the server.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod demo;

/// Where the platform keeps its state.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Folder for the embedded SQLite database and, by default, evidence.
    #[arg(long, value_name = "DIR", default_value = "crrt-data", global = true)]
    data_dir: PathBuf,

    /// A database URL instead of the embedded SQLite file, e.g.
    /// postgres://crrt@localhost/crrt.
    #[arg(long, value_name = "URL", global = true)]
    database: Option<String>,

    /// Folder for evidence files [default: DIR/evidence]; with
    /// --evidence-store, only uploads in progress and hunts' copies.
    #[arg(long, value_name = "DIR", global = true)]
    evidence_dir: Option<PathBuf>,

    /// Keep evidence in an S3-compatible object store instead of the
    /// folder, e.g. s3://crrt-evidence/prod. Credentials, region and
    /// endpoint come from the usual environment: AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL (MinIO, Ceph,
    /// Garage...), AWS_ALLOW_HTTP=true for a plain-HTTP endpoint.
    #[arg(long, value_name = "URL", env = "CRRT_EVIDENCE_STORE", global = true)]
    evidence_store: Option<String>,

    /// Largest evidence file accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 30, global = true)]
    max_evidence_bytes: u64,

    /// Most evidence one case may hold, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 40, global = true)]
    max_case_evidence_bytes: u64,

    /// The key that seals partner credentials in the database (TAXII
    /// subscriptions) [default: DIR/secret.key, created at first use]. Keep
    /// it with the server, out of database backups; every server of one
    /// database needs the same file.
    #[arg(long, value_name = "FILE", env = "CRRT_SECRET_KEY", global = true)]
    secret_key: Option<PathBuf>,
}

impl StoreArgs {
    pub(crate) async fn open(&self) -> Result<Platform> {
        let url = match &self.database {
            Some(url) => url.clone(),
            None => {
                std::fs::create_dir_all(&self.data_dir)
                    .with_context(|| format!("creating {}", self.data_dir.display()))?;
                sqlite_url(&self.data_dir.join("crrt.db"))
            }
        };
        let platform = Platform::open(&url)
            .await
            .with_context(|| format!("opening the database at {}", redact(&url)))?;
        let folder = self
            .evidence_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("evidence"));
        let evidence = match &self.evidence_store {
            None => EvidenceStore::open(&folder, self.max_evidence_bytes)
                .with_context(|| format!("opening the evidence folder {}", folder.display()))?,
            Some(url) => EvidenceStore::open_objects(url, &[], &folder, self.max_evidence_bytes)
                .await
                .context("opening the evidence store")?,
        }
        .with_case_limit(self.max_case_evidence_bytes);
        let key = self
            .secret_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"));
        let secrets = crrt_platform::secrets::SecretBox::open_or_create(&key)?;
        Ok(platform.with_evidence(evidence).with_secrets(secrets))
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Run the team platform: the web UI, the HTTP API and the TAXII 2.1 server,
/// over the embedded SQLite database (or PostgreSQL).
///
/// On first start it creates the schema and an admin account, and prints
/// that account's one-time password. With --demo it loads a realistic
/// exercise (member-state teams, a requesting ministry, responders, requests,
/// a mission with evidence, indicators and a hunt) and prints the demo
/// accounts. It also runs hunts (unless --no-worker), the standing TAXII
/// pulls of `crrt intel subscribe`, and the watch of the websites of
/// forming and active missions (unless --no-watch).
///
/// Examples:
///
///   crrt serve --demo
///
///   crrt serve --listen 0.0.0.0:8080 --data-dir /var/lib/crrt
///
///   crrt serve --database postgres://crrt@db.internal/crrt
///
/// Stops cleanly on Ctrl-C or SIGTERM: requests in flight finish first.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    #[command(flatten)]
    store: StoreArgs,

    /// Load the demo exercise (into an empty data directory) and print its accounts.
    #[arg(long)]
    demo: bool,

    /// Mark session cookies Secure (when clients reach the server over HTTPS).
    #[arg(long)]
    secure_cookies: bool,

    /// Run no hunts here (leave them to `crrt worker` processes).
    #[arg(long)]
    no_worker: bool,

    /// Check no mission's websites from here.
    #[arg(long)]
    no_watch: bool,

    /// Let missions watch loopback and private addresses (refused by
    /// default: a watched page's body is kept and shown to the mission).
    #[arg(long)]
    watch_private_targets: bool,

    /// SMTP relay for website-watch alert e-mail: smtps://user:password@host,
    /// smtp://host:587?tls=required, or smtp://host:25 (unencrypted).
    #[arg(
        long,
        value_name = "URL",
        env = "CRRT_SMTP_URL",
        hide_env_values = true
    )]
    smtp: Option<String>,

    /// Sender of alert e-mail.
    #[arg(
        long,
        value_name = "ADDRESS",
        env = "CRRT_SMTP_FROM",
        default_value = "CRRT watch <crrt@localhost>"
    )]
    smtp_from: String,
}

/// Run hunts queued in the platform's database, beside `crrt serve` or on
/// other machines (PostgreSQL): each worker claims one hunt at a time under a
/// lease it renews; a hunt whose worker died is taken up again when the lease
/// runs out. Stops on Ctrl-C or SIGTERM after the hunt in hand.
///
/// Example:
///
///   crrt worker --database postgres://crrt@db.internal/crrt --evidence-dir /srv/crrt/evidence
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct WorkerArgs {
    #[command(flatten)]
    store: StoreArgs,

    /// This worker's name in the hunts it holds [default: worker-HOST-PID].
    #[arg(long)]
    name: Option<String>,

    /// How long a claim on a hunt lasts without renewal: how soon another
    /// worker takes over from one that died.
    #[arg(long, value_name = "SECONDS", default_value_t = crrt_platform::hunts::LEASE_SECONDS)]
    lease_seconds: i64,
}

pub fn worker(args: WorkerArgs) -> Result<ExitCode> {
    init_logging();
    runtime()?.block_on(async move {
        let platform = args.store.open().await?;
        let name = args
            .name
            .unwrap_or_else(|| format!("worker-{}-{}", hostname(), std::process::id()));
        let stop = shutdown_signal();
        say!("CRRT worker {name} waiting for hunts (Ctrl-C stops)");
        let options = WorkerOptions {
            name,
            lease_seconds: args.lease_seconds,
        };
        platform.run_worker(&options, stop).await;
        say!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Bring the findings of an offline `crrt hunt --format jsonl` into a case
/// of the platform. Each finding keeps its evidence file name; when that file
/// is still here, its SHA-256 goes with it, so the platform links the
/// finding to the same evidence uploaded to the case.
///
/// Example:
///
///   crrt import-findings --server https://crrt.example --token crrt_... --case 3f2a... findings.jsonl
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// The platform's address, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    server: String,

    /// An API token (`crrt admin create-token`, or POST /api/v1/tokens).
    #[arg(long, value_name = "TOKEN", env = "CRRT_TOKEN", hide_env_values = true)]
    token: String,

    /// The case id.
    #[arg(long, value_name = "ID")]
    case: String,

    #[command(flatten)]
    tls: crate::client::TlsArgs,

    /// The JSON Lines file `crrt hunt --format jsonl` wrote.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn import_findings(args: ImportArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let mut hashes: std::collections::HashMap<String, Option<String>> = Default::default();
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut finding: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON", args.file.display(), n + 1))?;
        let file = finding["evidence_file"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // Inside a ZIP the evidence is the archive: `pkg.zip!/member`.
        let on_disk = file.split("!/").next().unwrap_or_default().to_owned();
        let sha = hashes
            .entry(on_disk.clone())
            .or_insert_with(|| sha256_of(Path::new(&on_disk)))
            .clone();
        if let (Some(sha), Some(map)) = (sha, finding.as_object_mut()) {
            map.insert("evidence_sha256".into(), serde_json::Value::String(sha));
        }
        out.push_str(&finding.to_string());
        out.push('\n');
    }
    let url = format!(
        "{}/api/v1/cases/{}/findings/import",
        args.server.trim_end_matches('/'),
        args.case
    );
    runtime()?.block_on(async move {
        let response = args
            .tls
            .client()?
            .post(&url)
            .bearer_auth(&args.token)
            .header("content-type", "application/x-ndjson")
            .body(out)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("sending to {url}: {}", crate::client::describe(&e)))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "the platform refused the import ({status}): {}",
                body["error"]["message"]
                    .as_str()
                    .unwrap_or("no reason given")
            );
        }
        println!(
            "imported {} new findings into case {} (import {})",
            body["n_findings"],
            args.case,
            body["id"].as_str().unwrap_or("?")
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn sha256_of(path: &Path) -> Option<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hex::encode(hasher.finalize()))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    init_logging();
    runtime()?.block_on(async move {
        let platform = args
            .store
            .open()
            .await?
            .allow_private_watch_targets(args.watch_private_targets);
        platform.remove_broken_uploads();
        let sealed = platform.seal_stored_credentials().await?;
        if sealed > 0 {
            say!("Sealed {sealed} partner credential(s) kept in clear by an older version");
        }
        if args.demo {
            demo::load(&platform).await?;
        } else if let Some((email, password)) = platform.ensure_admin().await? {
            say!("First start: created the administrator account.");
            say!("  email:    {email}");
            say!("  password: {password}");
            say!("It is shown this once; store it now.");
            let admin = platform
                .store()
                .user_by_email(&email)
                .await?
                .context("the administrator just created")?;
            for pack in platform
                .install_bundled_rulepacks(&admin.id, BUNDLED_PACKS)
                .await?
            {
                let plural = if pack.n_rules == 1 { "" } else { "s" };
                say!(
                    "Bundled rule pack: {} ({} rule{plural})",
                    pack.name,
                    pack.n_rules
                );
            }
        }
        let stop = shutdown_signal();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr()?;
        if let Some(store) = platform.evidence_location() {
            say!("Evidence kept in {store}");
        }
        say!(
            "CRRT platform listening on http://{address} (web UI: open it in a browser; API under /api/v1; Ctrl-C stops)"
        );
        let config = crrt_server::Config {
            secure_cookies: args.secure_cookies,
        };
        // The embedded worker runs hunts until the server stops.
        let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = (!args.no_worker).then(|| {
            let platform = platform.clone();
            let options = WorkerOptions {
                name: format!("serve-{}-{}", hostname(), std::process::id()),
                lease_seconds: crrt_platform::hunts::LEASE_SECONDS,
            };
            tokio::spawn(async move {
                platform
                    .run_worker(&options, async {
                        let _ = worker_stopped.await;
                    })
                    .await;
            })
        });
        // Standing pulls from partners' TAXII servers.
        let (stop_pulls, pulls_stopped) = tokio::sync::oneshot::channel::<()>();
        let pulls = tokio::spawn(crate::intel::run_subscriptions(platform.clone(), async {
            let _ = pulls_stopped.await;
        }));
        // The missions' websites; target changes are picked up every 5 s.
        let (stop_watch, watch_stopped) = tokio::sync::oneshot::channel::<()>();
        let watch = (!args.no_watch).then(|| {
            let platform = platform.clone();
            let options = crrt_platform::WatchOptions {
                refresh: std::time::Duration::from_secs(5),
                smtp: args.smtp.clone().map(|url| crrt_watch::SmtpSettings {
                    url,
                    from: args.smtp_from.clone(),
                }),
            };
            tokio::spawn(async move {
                platform
                    .run_watch(options, async {
                        let _ = watch_stopped.await;
                    })
                    .await;
            })
        });
        crrt_server::run(listener, platform, config, stop).await?;
        let _ = stop_watch.send(());
        if let Some(watch) = watch {
            let _ = watch.await;
        }
        let _ = stop_pulls.send(());
        let _ = pulls.await;
        let _ = stop_worker.send(());
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        say!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Administer the platform from the command line (same --data-dir or
/// --database as `crrt serve`; works while it runs).
///
/// Examples:
///
///   crrt admin create-org --name CERT-EE --kind member --country EE
///
///   crrt admin create-user --email anna@cert.ee --org CERT-EE --role responder --skill forensics --language et --language en
///
///   crrt admin create-token --email anna@cert.ee --name timeline-script
///
///   crrt admin verify-audit
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AdminArgs {
    #[command(flatten)]
    store: StoreArgs,

    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an organisation: a member-state team, a requesting institution or a partner.
    CreateOrg {
        #[arg(long)]
        name: String,
        /// member, requester or partner.
        #[arg(long, value_parser = parse::<OrgKind>)]
        kind: OrgKind,
        /// ISO 3166-1 alpha-2 code, e.g. EE, UA.
        #[arg(long)]
        country: String,
    },
    /// Create a user; prints a generated password when --password is not given.
    CreateUser {
        #[arg(long)]
        email: String,
        /// The organisation's name.
        #[arg(long)]
        org: String,
        /// admin, coordinator, responder (member teams), requester, partner.
        #[arg(long, value_parser = parse::<Role>)]
        role: Role,
        /// At least 12 characters. Prefer the generated one.
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// forensics, malware-analysis, network, web, ot-ics, cloud,
        /// threat-intelligence, legal-communication. Repeatable.
        #[arg(long = "skill", value_parser = parse::<Skill>)]
        skills: Vec<Skill>,
        /// ISO 639-1 code, e.g. en, uk. Repeatable.
        #[arg(long = "language")]
        languages: Vec<String>,
    },
    /// Create an API token for a user; prints it once.
    CreateToken {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Check the audit trail's hash chain; exit 1 and name the first broken link if altered.
    VerifyAudit,
    /// Re-hash every stored evidence file; exit 1 and name any that is missing or changed.
    VerifyEvidence,
}

fn parse<T: std::str::FromStr<Err = crrt_platform::PlatformError>>(
    text: &str,
) -> Result<T, String> {
    text.parse()
        .map_err(|e: crrt_platform::PlatformError| e.to_string())
}

pub fn admin(args: AdminArgs) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        let platform = args.store.open().await?;
        match args.command {
            AdminCommand::CreateOrg {
                name,
                kind,
                country,
            } => {
                let org = platform
                    .create_org(None, NewOrg { name, kind, country })
                    .await?;
                println!("created organisation {} ({}, {}) id {}", org.name, org.kind, org.country, org.id);
            }
            AdminCommand::CreateUser {
                email,
                org,
                role,
                password,
                name,
                skills,
                languages,
            } => {
                let (user, generated) = platform
                    .create_user(
                        None,
                        NewUser {
                            email,
                            display_name: name,
                            org,
                            role,
                            password,
                            skills,
                            languages,
                            availability: Vec::new(),
                        },
                    )
                    .await?;
                println!("created user {} ({}) id {}", user.email, user.role, user.id);
                if let Some(password) = generated {
                    println!("password: {password}");
                    println!("It is shown this once.");
                }
            }
            AdminCommand::CreateToken { email, name } => {
                let new = platform.create_token(None, &email, &name).await?;
                println!("{}", new.secret);
                eprintln!("token {:?} for {email}: shown this once; use it as `Authorization: Bearer TOKEN`", new.token.name);
            }
            AdminCommand::VerifyEvidence => {
                let (n_files, problems) = platform.verify_evidence().await?;
                if problems.is_empty() {
                    println!("evidence intact: {n_files} stored files re-hashed, all match");
                } else {
                    for (sha256, problem) in &problems {
                        println!("evidence {sha256}: {problem}");
                    }
                    println!("{} of {n_files} stored files do NOT match their record", problems.len());
                    return Ok(ExitCode::from(1));
                }
            }
            AdminCommand::VerifyAudit => match platform.verify_audit().await? {
                AuditVerification::Intact { n_events } => {
                    println!("audit trail intact: {n_events} events, every link verified");
                }
                AuditVerification::Broken { seq, problem } => {
                    println!("audit trail BROKEN at event {seq}: {problem}");
                    return Ok(ExitCode::from(1));
                }
            },
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRRT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal that comes right after the
/// "listening" line is not missed (and does not kill the process outright).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let interrupted = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let terminated = async {
                match terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = interrupted => {},
                () = terminated => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing the work in flight");
    }
}

/// Refuses a database that is not what the caller expects (used by demo).
pub(crate) fn ensure(condition: bool, message: &str) -> Result<()> {
    if !condition {
        bail!("{message}");
    }
    Ok(())
}
