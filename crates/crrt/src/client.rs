//! The HTTP client of the commands that talk to a platform or a partner's
//! server (`crrt upload`, `crrt import-findings`, `crrt intel pull`): the
//! system's trusted authorities, plus a team's own with `--ca-cert`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Also trust the certificate authorities in this PEM file (a team's
    /// own CA, or a self-signed certificate of the server).
    #[arg(long, value_name = "FILE", env = "CRRT_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

impl TlsArgs {
    pub fn client(&self) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(20));
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{}: not a PEM certificate bundle", path.display()))?;
            anyhow::ensure!(
                !certificates.is_empty(),
                "{}: no certificate in it",
                path.display()
            );
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        builder.build().context("building the HTTP client")
    }
}

/// A request error with its causes (reqwest's own message names none), and
/// the way out when the server's certificate is not trusted.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.contains("UnknownIssuer") || text.contains("certificate") {
        text.push_str(
            " (a server with its own certificate authority: pass it with --ca-cert FILE)",
        );
    }
    text
}
