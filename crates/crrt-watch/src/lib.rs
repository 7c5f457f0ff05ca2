//! Watching the victim's websites: is each one up, fast, served with a good
//! certificate from the usual DNS answers, and still the page it was?
//!
//! A [`Target`] (from a [`Config`] file or built in code) is checked by the
//! [`Fetcher`] into an [`Observation`]; the target's [`Monitor`] compares it
//! with what it learnt (the baseline page, the usual latency, the first
//! certificate issuer and DNS answers) and opens or closes [`AlertEvent`]s.
//! [`watch`] runs one monitor per target on a schedule and reports to a
//! [`Sink`]. Only the fetcher touches the network; the monitor is pure, so the
//! rules of when an alert opens are tested without waiting.
//!
//! ```no_run
//! # async fn example() -> Result<(), crrt_watch::Error> {
//! let config: crrt_watch::Config = r#"
//!     [[target]]
//!     name = "mfa"
//!     url = "https://mfa.gov.ua/"
//!     must_not_contain = ["hacked by"]
//! "#.parse()?;
//! let fetcher = crrt_watch::Fetcher::new();
//! let target = std::sync::Arc::new(config.targets[0].clone());
//! let mut monitor = crrt_watch::Monitor::new(target.clone(), std::sync::Arc::new(crrt_watch::Phrases::bundled()));
//! for event in monitor.observe(&fetcher.check(&target).await) {
//!     println!("{} {} {}", event.target, event.kind, event.summary);
//! }
//! # Ok(()) }
//! ```

mod config;
pub mod content;
pub mod dns;
mod fetch;
mod monitor;
pub mod notify;
mod run;

pub use config::{
    Config, Email, MIN_INTERVAL, StatusList, Target, TargetSettings, Webhook, duration,
};
pub use content::Phrases;
pub use fetch::{
    Certificate, FetchFailure, Fetched, Fetcher, Observation, is_private_ip, is_private_url,
};
pub use monitor::{AlertEvent, AlertKind, Baseline, Change, Evidence, Monitor};
pub use notify::{Mailer, Notifier, SmtpSettings};
pub use run::{Sink, Watcher, check_once, watch};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    // Not `source`: the message holds the I/O error, and a chain printed
    // whole (`{:#}`) would say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Makes ring the process's TLS provider, once; HTTP clients need one.
/// Harmless when a provider is already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
