//! The watch configuration: a TOML file with `[defaults]` and one `[[target]]`
//! table per site, checked completely before anything is watched.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::Error;
use crate::dns::RecordKind;

/// The shortest interval allowed: faster checks look like an attack to the
/// victim's own DDoS protection and get the team's address blocked.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// One watched site, complete and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub url: Url,
    /// Time between regular checks.
    pub interval: Duration,
    /// A check that takes longer has failed (`down`).
    pub timeout: Duration,
    /// Time before a failed check is confirmed (or a recovery is).
    pub retry: Duration,
    /// Statuses that count as up; empty means any 2xx.
    pub expect_status: Vec<u16>,
    /// Case-insensitive texts the page must contain.
    pub must_contain: Vec<String>,
    /// Case-insensitive texts the page must not contain.
    pub must_not_contain: Vec<String>,
    /// The lowest similarity (0–1) of the page's visible text to its baseline.
    pub similarity: f64,
    /// A check is slow when its latency exceeds this many times the median.
    pub latency_factor: f64,
    /// Failed checks in a row before an alert opens.
    pub confirm: u32,
    /// Passed checks in a row before an alert closes.
    pub recover: u32,
    /// DNS record types whose answers are watched for changes.
    pub dns: Vec<RecordKind>,
    /// A name server to ask instead of the system's (`host:port`).
    pub dns_server: Option<std::net::SocketAddr>,
    /// Alert when the certificate expires within this many days.
    pub tls_expiry_days: u32,
    /// Extra trusted roots (PEM), for sites behind an internal CA.
    pub ca_file: Option<PathBuf>,
    /// Bytes of body read at most; the rest is not fetched.
    pub max_body: usize,
}

impl Target {
    /// A target with the defaults an operator gets from an empty table.
    pub fn new(name: impl Into<String>, url: Url) -> Target {
        Target {
            name: name.into(),
            url,
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            retry: Duration::from_secs(5),
            expect_status: Vec::new(),
            must_contain: Vec::new(),
            must_not_contain: Vec::new(),
            similarity: 0.5,
            latency_factor: 5.0,
            confirm: 2,
            recover: 2,
            dns: Vec::new(),
            dns_server: None,
            tls_expiry_days: 14,
            ca_file: None,
            max_body: 2 << 20,
        }
    }

    /// Whether a status counts as up.
    pub fn status_ok(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }
}

/// A parsed configuration file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub targets: Vec<Target>,
    pub webhooks: Vec<Webhook>,
    pub email: Option<Email>,
}

/// Alert e-mail: the server, the sender and the recipients.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub smtp: crate::SmtpSettings,
    pub to: Vec<String>,
}

/// Where alerts are posted as signed JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: Url,
    /// The HMAC-SHA256 key; the signature goes in `X-CRRT-Signature`.
    pub secret: String,
}

impl FromStr for Config {
    type Err = Error;

    fn from_str(text: &str) -> Result<Config, Error> {
        let file: FileShape =
            toml::from_str(text).map_err(|error| Error::Config(error.to_string()))?;
        let mut targets = Vec::with_capacity(file.target.len());
        let mut names = std::collections::BTreeSet::new();
        for (index, fields) in file.target.iter().enumerate() {
            let target = fields.or(&file.defaults).build().map_err(|message| {
                Error::Config(format!(
                    "target {} ({}): {message}",
                    index + 1,
                    fields.label()
                ))
            })?;
            if !names.insert(target.name.clone()) {
                return Err(Error::Config(format!(
                    "target {}: the name {:?} is used twice; names identify alerts",
                    index + 1,
                    target.name
                )));
            }
            targets.push(target);
        }
        if targets.is_empty() {
            return Err(Error::Config(
                "no [[target]] table: add one per site, with at least `name` and `url`".into(),
            ));
        }
        let webhooks = file
            .webhook
            .iter()
            .enumerate()
            .map(|(index, hook)| {
                hook.build()
                    .map_err(|message| Error::Config(format!("webhook {}: {message}", index + 1)))
            })
            .collect::<Result<_, _>>()?;
        let email = match &file.email {
            None => None,
            Some(fields) => {
                if fields.to.is_empty() {
                    return Err(Error::Config(
                        "email: `to` needs at least one address".into(),
                    ));
                }
                crate::notify::parse_recipients(&fields.to)
                    .map_err(|error| Error::Config(format!("email: {error}")))?;
                if !(fields.smtp.starts_with("smtp://") || fields.smtp.starts_with("smtps://")) {
                    return Err(Error::Config(format!(
                        "email: smtp {:?} must start with smtps:// or smtp://",
                        fields.smtp.split('@').next_back().unwrap_or_default()
                    )));
                }
                Some(Email {
                    smtp: crate::SmtpSettings {
                        url: fields.smtp.clone(),
                        from: fields.from.clone(),
                    },
                    to: fields.to.clone(),
                })
            }
        };
        Ok(Config {
            targets,
            webhooks,
            email,
        })
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Io {
            path: path.to_owned(),
            error,
        })?;
        text.parse()
            .map_err(|error| match error {
                Error::Config(message) => Error::Config(format!("{}: {message}", path.display())),
                other => other,
            })
            .map(|mut config: Config| {
                // A relative CA file is relative to the configuration, not to where crrt runs.
                let base = path.parent().unwrap_or(std::path::Path::new("."));
                for target in &mut config.targets {
                    if let Some(file) = &target.ca_file
                        && file.is_relative()
                    {
                        target.ca_file = Some(base.join(file));
                    }
                }
                config
            })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    defaults: TargetSettings,
    #[serde(default)]
    target: Vec<TargetSettings>,
    #[serde(default)]
    webhook: Vec<WebhookFields>,
    email: Option<EmailFields>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailFields {
    smtp: String,
    from: String,
    to: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFields {
    url: String,
    secret: String,
}

impl WebhookFields {
    fn build(&self) -> Result<Webhook, String> {
        let url = Url::parse(&self.url).map_err(|error| format!("url {:?}: {error}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "url {:?}: only http and https are supported",
                self.url
            ));
        }
        if self.secret.len() < 16 {
            return Err(
                "secret: use at least 16 characters, the receiver checks signatures with it".into(),
            );
        }
        Ok(Webhook {
            url,
            secret: self.secret.clone(),
        })
    }
}

/// A target as written (a `[[target]]` table, or JSON in the platform):
/// every field optional, so `[defaults]` can fill gaps; [`TargetSettings::build`]
/// checks it.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<StatusList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_contain: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_not_contain: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_expiry_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_kib: Option<usize>,
}

/// One expected status or several.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum StatusList {
    One(u16),
    Many(Vec<u16>),
}

impl TargetSettings {
    fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.url.clone())
            .unwrap_or_else(|| "unnamed".into())
    }

    /// This table with the defaults' values where it has none.
    fn or(&self, defaults: &TargetSettings) -> TargetSettings {
        macro_rules! pick {
            ($($field:ident),*) => { TargetSettings { $($field: self.$field.clone().or_else(|| defaults.$field.clone())),* } };
        }
        let mut merged = pick!(
            interval,
            timeout,
            retry,
            expect_status,
            must_contain,
            must_not_contain,
            similarity,
            latency_factor,
            confirm,
            recover,
            dns,
            dns_server,
            tls_expiry_days,
            ca_file,
            max_body_kib,
            name,
            url
        );
        // Names and addresses belong to one site; defaults must not supply them.
        merged.name = self.name.clone();
        merged.url = self.url.clone();
        merged
    }

    /// The complete target, or what is wrong with these settings.
    pub fn build(&self) -> Result<Target, String> {
        let name = self.name.clone().ok_or("`name` is missing")?;
        if name.trim().is_empty() || name.len() > 200 {
            return Err("`name` must have 1 to 200 characters".into());
        }
        let text = self.url.as_deref().ok_or("`url` is missing")?;
        let url = Url::parse(text).map_err(|error| format!("url {text:?}: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "url {text:?}: an http:// or https:// address with a host is needed"
            ));
        }
        let mut target = Target::new(name, url);
        if let Some(value) = &self.interval {
            target.interval = duration("interval", value)?;
        }
        if target.interval < MIN_INTERVAL {
            return Err(format!(
                "interval {:?} is under the minimum of {}s",
                self.interval.as_deref().unwrap_or_default(),
                MIN_INTERVAL.as_secs()
            ));
        }
        if let Some(value) = &self.timeout {
            target.timeout = duration("timeout", value)?;
        }
        target.timeout = target.timeout.min(target.interval);
        if let Some(value) = &self.retry {
            target.retry = duration("retry", value)?;
        }
        if target.timeout.is_zero() || target.retry.is_zero() {
            return Err("timeout and retry must be longer than zero".into());
        }
        target.retry = target.retry.min(target.interval);
        if let Some(list) = &self.expect_status {
            target.expect_status = match list {
                StatusList::One(status) => vec![*status],
                StatusList::Many(statuses) => statuses.clone(),
            };
            if let Some(bad) = target
                .expect_status
                .iter()
                .find(|status| !(100..=599).contains(*status))
            {
                return Err(format!("expect_status {bad} is not an HTTP status"));
            }
        }
        target.must_contain = self.must_contain.clone().unwrap_or_default();
        target.must_not_contain = self.must_not_contain.clone().unwrap_or_default();
        if let Some(value) = self.similarity {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("similarity {value} must be between 0 and 1"));
            }
            target.similarity = value;
        }
        if let Some(value) = self.latency_factor {
            if !(value >= 1.5 && value.is_finite()) {
                return Err(format!("latency_factor {value} must be 1.5 or more"));
            }
            target.latency_factor = value;
        }
        if let Some(value) = self.confirm {
            target.confirm = value.clamp(1, 10);
        }
        if let Some(value) = self.recover {
            target.recover = value.clamp(1, 10);
        }
        if let Some(kinds) = &self.dns {
            target.dns = kinds
                .iter()
                .map(|kind| kind.parse())
                .collect::<Result<_, _>>()?;
        }
        if let Some(server) = &self.dns_server {
            target.dns_server = Some(server.parse().map_err(|_| {
                format!("dns_server {server:?}: write an address such as 9.9.9.9:53")
            })?);
        }
        if let Some(days) = self.tls_expiry_days {
            target.tls_expiry_days = days;
        }
        target.ca_file = self.ca_file.clone();
        if let Some(kib) = self.max_body_kib {
            if !(1..=65_536).contains(&kib) {
                return Err(format!("max_body_kib {kib} must be between 1 and 65536"));
            }
            target.max_body = kib * 1024;
        }
        Ok(target)
    }
}

/// Parses "60s", "5m", "1h 30m", "500ms" or an ISO 8601 duration.
pub fn duration(field: &str, text: &str) -> Result<Duration, String> {
    let parsed: jiff::SignedDuration = text.trim().parse().map_err(|_| {
        format!("{field} {text:?}: write a duration such as \"60s\", \"5m\" or \"1h\"")
    })?;
    Duration::try_from(parsed).map_err(|_| format!("{field} {text:?} must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_error(toml: &str, expected: &str) {
        match toml.parse::<Config>() {
            Ok(config) => panic!("accepted {toml:?} as {config:?}"),
            Err(error) => assert!(
                error.to_string().contains(expected),
                "{error} lacks {expected:?}"
            ),
        }
    }

    #[test]
    fn defaults_fill_targets_but_never_names_or_urls() {
        let config: Config = r#"
            [defaults]
            interval = "30s"
            must_not_contain = ["hacked"]
            [[target]]
            name = "mfa"
            url = "https://mfa.gov.ua/"
            [[target]]
            name = "bank"
            url = "http://bank.example/"
            interval = "2m"
            expect_status = 200
            dns = ["A", "mx"]
        "#
        .parse()
        .expect("valid");
        let [mfa, bank] = &config.targets[..] else {
            panic!("two targets")
        };
        assert_eq!(mfa.interval, Duration::from_secs(30));
        assert_eq!(mfa.must_not_contain, ["hacked"]);
        assert_eq!(bank.interval, Duration::from_secs(120));
        assert_eq!(bank.expect_status, [200]);
        assert_eq!(bank.dns, [RecordKind::A, RecordKind::Mx]);
        assert!(mfa.status_ok(204) && !mfa.status_ok(302) && !bank.status_ok(204));
    }

    #[test]
    fn mistakes_are_named() {
        check_error("", "no [[target]] table");
        check_error("[[target]]\nname = \"a\"", "target 1 (a): `url` is missing");
        check_error(
            "[[target]]\nname = \"a\"\nurl = \"ftp://x/\"",
            "http:// or https://",
        );
        check_error(
            "[[target]]\nname = \"a\"\nurl = \"http://x/\"\ninterval = \"5s\"",
            "under the minimum of 10s",
        );
        check_error(
            "[[target]]\nname = \"a\"\nurl = \"http://x/\"\ninterval = \"soon\"",
            "interval \"soon\"",
        );
        check_error(
            "[[target]]\nname = \"a\"\nurl = \"http://x/\"\nsimilarity = 2.0",
            "between 0 and 1",
        );
        check_error(
            "[[target]]\nname = \"a\"\nurl = \"http://x/\"\ndns = [\"TXT\"]",
            "TXT",
        );
        check_error(
            "[[target]]\nname = \"a\"\nurl = \"http://x/\"\nintervall = \"60s\"",
            "unknown field `intervall`",
        );
        check_error(
            "[[target]]\nname = \"a\"\nurl = \"http://x/\"\n[[target]]\nname = \"a\"\nurl = \"http://y/\"",
            "used twice",
        );
        check_error(
            "[[target]]\nname = \"a\"\nurl = \"http://x/\"\n[[webhook]]\nurl = \"http://h/\"\nsecret = \"short\"",
            "16 characters",
        );
    }
}
