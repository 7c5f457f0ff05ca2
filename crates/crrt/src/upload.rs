//! `crrt upload`: evidence to a case over a link that breaks. Files go in
//! chunks through the platform's resumable uploads; a failed chunk is
//! retried from where the server says it stands, and running the command
//! again after it was stopped picks up the same upload.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Upload evidence files to a case of the platform, resumably: each file is
/// hashed here, announced with its size and SHA-256, and sent in chunks; a
/// chunk that fails is sent again from the offset the server has (with
/// growing pauses), and running the same command again after an
/// interruption resumes the same upload instead of starting over. The
/// server checks the whole file's SHA-256 before keeping it as evidence.
///
/// Example:
///
///   crrt upload --server https://crrt.example --token crrt_... --case 3f2a... DC01-Security.evtx triage.zip
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct UploadArgs {
    /// The platform's address, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    server: String,

    /// An API token (`crrt admin create-token`, or POST /api/v1/tokens).
    #[arg(long, value_name = "TOKEN", env = "CRRT_TOKEN", hide_env_values = true)]
    token: String,

    /// The case id.
    #[arg(long, value_name = "ID")]
    case: String,

    /// Bytes per request.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    chunk_size: usize,

    /// Failed attempts in a row before giving up on a file.
    #[arg(long, value_name = "N", default_value_t = 8)]
    retries: u32,

    #[command(flatten)]
    tls: crate::client::TlsArgs,

    /// The files.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// Why a request failed: worth another try (network, server trouble) or not.
enum Failure {
    Retry(String),
    Final(String),
}

impl Client {
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<(StatusCode, Value), Failure> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| {
            let text = crate::client::describe(&e);
            // An untrusted certificate will not get better by waiting.
            if text.contains("--ca-cert") {
                Failure::Final(text)
            } else {
                Failure::Retry(text)
            }
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok((status, body));
        }
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no reason given")
            .to_owned();
        let message = format!("{status}: {message}");
        if status.is_server_error() && status != StatusCode::INSUFFICIENT_STORAGE
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::CONFLICT && message.contains("another request")
        {
            Err(Failure::Retry(message))
        } else {
            Err(Failure::Final(message))
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

pub fn run(args: UploadArgs) -> Result<ExitCode> {
    let client = Client {
        http: args.tls.client()?,
        base: args.server.trim_end_matches('/').to_owned(),
        token: args.token.clone(),
    };
    let chunk_size = args.chunk_size.max(1);
    crate::serve::runtime()?.block_on(async {
        let mut failed = 0;
        for file in &args.files {
            match upload_file(&client, &args, chunk_size, file).await {
                Ok(line) => println!("{}: {line}", file.display()),
                Err(e) => {
                    failed += 1;
                    eprintln!("error: {}: {e:#}", file.display());
                }
            }
        }
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

fn sha256_of(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).context("opening")?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).context("reading")?;
    Ok(hex::encode(hasher.finalize()))
}

async fn upload_file(
    client: &Client,
    args: &UploadArgs,
    chunk_size: usize,
    path: &Path,
) -> Result<String> {
    let size = std::fs::metadata(path).context("reading")?.len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sha256 = {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || sha256_of(&path)).await??
    };
    let uploads = client.url(&format!("/api/v1/cases/{}/uploads", args.case));
    // An upload of this very file left by an earlier run goes on.
    let open = client
        .call(client.http.get(&uploads))
        .await
        .map_err(message)?
        .1;
    let earlier = open.as_array().into_iter().flatten().find(|u| {
        u["name"] == json!(name) && u["size"] == json!(size) && u["sha256"] == json!(sha256)
    });
    let mut upload = match earlier {
        Some(upload) => {
            eprintln!(
                "{}: resuming an earlier upload at {} of {size} bytes",
                path.display(),
                upload["received"]
            );
            upload.clone()
        }
        None => {
            let started = client
                .call(client.http.post(&uploads).json(&json!({
                    "name": name, "size": size, "sha256": sha256
                })))
                .await;
            match started {
                Ok((_, upload)) => upload,
                Err(Failure::Final(e)) if e.contains("already holds this content") => {
                    return Ok(format!("already in the case ({e})"));
                }
                Err(failure) => return Err(message(failure)),
            }
        }
    };
    let id = upload["id"]
        .as_str()
        .context("the server gave no upload id")?
        .to_owned();
    let at = client.url(&format!("/api/v1/uploads/{id}"));
    let bar = progress_bar(size, path);
    let mut file = std::fs::File::open(path).context("opening")?;
    let mut buffer = vec![0u8; chunk_size];
    let mut failures = 0u32;
    loop {
        let offset = upload["received"].as_u64().unwrap_or(0);
        bar.set_position(offset);
        file.seek(SeekFrom::Start(offset)).context("reading")?;
        let mut filled = 0;
        while filled < buffer.len() {
            let n = file.read(&mut buffer[filled..]).context("reading")?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        let sent = client
            .call(
                client
                    .http
                    .patch(format!("{at}?offset={offset}"))
                    .header("content-type", "application/octet-stream")
                    .body(buffer[..filled].to_vec()),
            )
            .await;
        match sent {
            Ok((_, progress)) => {
                failures = 0;
                if let Some(evidence) = progress.get("evidence").filter(|e| !e.is_null()) {
                    bar.finish_and_clear();
                    return Ok(format!(
                        "stored as evidence {}, SHA-256 {}",
                        evidence["id"].as_str().unwrap_or("?"),
                        evidence["sha256"].as_str().unwrap_or("?")
                    ));
                }
                upload = progress["upload"].clone();
            }
            Err(Failure::Final(e)) if e.contains("already holds this content") => {
                bar.finish_and_clear();
                return Ok(format!("already in the case ({e})"));
            }
            Err(Failure::Final(e)) if e.starts_with("409") && e.contains("send from offset") => {
                // Someone (an earlier attempt whose answer was lost) moved it on.
                upload = client.call(client.http.get(&at)).await.map_err(message)?.1;
            }
            Err(Failure::Final(e)) => {
                bar.finish_and_clear();
                bail!("the platform refused the upload ({e})");
            }
            Err(Failure::Retry(e)) => {
                failures += 1;
                if failures > args.retries {
                    bar.finish_and_clear();
                    bail!(
                        "gave up after {} failed attempts ({e}); run the same command again to resume",
                        failures
                    );
                }
                let pause = Duration::from_secs(1 << failures.min(5));
                bar.suspend(|| {
                    eprintln!(
                        "{}: attempt failed ({e}); trying again in {} s",
                        path.display(),
                        pause.as_secs()
                    )
                });
                tokio::time::sleep(pause).await;
                // Where the server stands now (part of the chunk may be in).
                match client.call(client.http.get(&at)).await {
                    Ok((_, now)) => upload = now,
                    Err(Failure::Final(e)) => bail!("the upload is gone ({e})"),
                    Err(Failure::Retry(_)) => {}
                }
            }
        }
    }
}

fn message(failure: Failure) -> anyhow::Error {
    match failure {
        Failure::Retry(e) | Failure::Final(e) => anyhow::anyhow!("{e}"),
    }
}

fn progress_bar(size: u64, path: &Path) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(path.display().to_string());
    bar
}
