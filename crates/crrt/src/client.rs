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
        let pem = self.pem()?;
        client_trusting(pem.as_deref(), &self.origin())
    }

    /// The text of `--ca-cert`, checked to hold certificates (a
    /// subscription keeps it for its later pulls).
    pub fn pem(&self) -> Result<Option<String>> {
        let Some(path) = &self.ca_cert else {
            return Ok(None);
        };
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        client_trusting(Some(&pem), &self.origin())?;
        Ok(Some(pem))
    }

    fn origin(&self) -> String {
        self.ca_cert
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string())
    }
}

/// An HTTP client that trusts the system's authorities and those in `pem`
/// (from `origin`, named in errors).
pub fn client_trusting(pem: Option<&str>, origin: &str) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(20));
    if let Some(pem) = pem {
        let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .with_context(|| format!("{origin}: not a PEM certificate bundle"))?;
        anyhow::ensure!(!certificates.is_empty(), "{origin}: no certificate in it");
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().context("building the HTTP client")
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
