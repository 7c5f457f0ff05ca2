//! Alert notifications by webhook: JSON signed with HMAC-SHA256, delivered in
//! order by one queue per receiver, retried with backoff, never duplicated.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::monitor::AlertEvent;
use crate::{Error, Webhook};

/// The header carrying `sha256=` and the hex HMAC of the body.
pub const SIGNATURE_HEADER: &str = "X-CRRT-Signature-256";

/// Deliveries waiting per receiver; beyond this, new alerts are dropped with
/// a warning rather than piling up in memory while a receiver is down.
const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 5;

/// Signs a body for a receiver that knows `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends alert events to every webhook.
#[derive(Debug, Clone)]
pub struct Notifier {
    queues: Vec<mpsc::Sender<Vec<u8>>>,
}

impl Notifier {
    /// Starts one delivery task per webhook on the current runtime.
    pub fn start(webhooks: &[Webhook]) -> Result<Notifier, Error> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("crrt-watch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| Error::Config(format!("HTTP client: {error}")))?;
        let queues = webhooks
            .iter()
            .map(|hook| {
                let (sender, receiver) = mpsc::channel(QUEUE);
                tokio::spawn(deliver(client.clone(), hook.clone(), receiver));
                sender
            })
            .collect();
        Ok(Notifier { queues })
    }

    /// Queues an event for every webhook; returns at once.
    pub fn send(&self, event: &AlertEvent) {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!("alert not serialisable: {error}");
                return;
            }
        };
        for queue in &self.queues {
            if queue.try_send(body.clone()).is_err() {
                tracing::warn!(target = %event.target, kind = %event.kind, "webhook queue full: alert not sent");
            }
        }
    }
}

async fn deliver(client: reqwest::Client, hook: Webhook, mut queue: mpsc::Receiver<Vec<u8>>) {
    while let Some(body) = queue.recv().await {
        let signed = signature(&hook.secret, &body);
        for attempt in 1..=ATTEMPTS {
            let outcome = client
                .post(hook.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, &signed)
                .body(body.clone())
                .send()
                .await;
            let retry = match outcome {
                Ok(response) if response.status().is_success() => break,
                // The receiver refuses this alert; sending it again changes nothing.
                Ok(response) if response.status().is_client_error() && response.status() != 429 => {
                    tracing::warn!(url = %hook.url, status = %response.status(), "webhook refused the alert");
                    break;
                }
                Ok(response) => format!("status {}", response.status()),
                Err(error) => error.to_string(),
            };
            if attempt == ATTEMPTS {
                tracing::warn!(url = %hook.url, "webhook failed {ATTEMPTS} times, alert dropped: {retry}");
            } else {
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
        }
    }
}

/// Where alert e-mail goes out: an SMTP server URL (`smtps://user:pass@host`,
/// `smtp://host:587?tls=required`, or plain `smtp://host:25` on a trusted
/// network) and the sender.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpSettings {
    pub url: String,
    /// `CRRT watch <crrt@cert.example>`.
    pub from: String,
}

/// Sends alert e-mail, one message per alert to its recipients, in order,
/// retried with backoff.
#[derive(Debug, Clone)]
pub struct Mailer {
    queue: mpsc::Sender<lettre::Message>,
    from: lettre::message::Mailbox,
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// Checks a list of e-mail addresses.
pub fn parse_recipients(addresses: &[String]) -> Result<Vec<lettre::message::Mailbox>, Error> {
    addresses
        .iter()
        .map(|address| {
            address.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "{address:?} is not an e-mail address (name@example.org)"
                ))
            })
        })
        .collect()
}

impl Mailer {
    /// Checks the settings and starts the delivery task on the current runtime.
    pub fn start(settings: &SmtpSettings) -> Result<Mailer, Error> {
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        crate::install_crypto_provider();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
            .map_err(|error| {
                Error::Config(format!("SMTP server {}: {error}", redact(&settings.url)))
            })?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = settings
            .from
            .parse()
            .map_err(|error| Error::Config(format!("sender {:?}: {error}", settings.from)))?;
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_mail(transport, receiver));
        Ok(Mailer { queue, from })
    }

    /// Queues a message about `event` to `to`; returns at once.
    pub fn send(&self, event: &AlertEvent, to: &[lettre::message::Mailbox]) {
        if to.is_empty() {
            return;
        }
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(subject(event));
        for recipient in to {
            builder = builder.to(recipient.clone());
        }
        match builder.body(mail_body(event)) {
            Ok(message) => {
                if self.queue.try_send(message).is_err() {
                    tracing::warn!(target = %event.target, kind = %event.kind, "mail queue full: alert not sent");
                }
            }
            Err(error) => tracing::warn!("alert e-mail not built: {error}"),
        }
    }
}

/// `[CRRT watch] OPEN mfa defacement: visible text 3% like the baseline`.
pub fn subject(event: &AlertEvent) -> String {
    let change = match event.event {
        crate::Change::Open => "OPEN",
        crate::Change::Close => "CLOSED",
    };
    let mut subject = format!(
        "[CRRT watch] {change} {} {}: {}",
        event.target, event.kind, event.summary
    );
    if subject.chars().count() > 160 {
        subject = subject.chars().take(159).collect::<String>() + "…";
    }
    subject
}

fn mail_body(event: &AlertEvent) -> String {
    let mut body = format!(
        "Target: {}\nAddress: {}\nAlert: {} ({})\nTime: {}\n",
        event.target,
        event.url,
        event.kind,
        match event.event {
            crate::Change::Open => "opened",
            crate::Change::Close => "closed",
        },
        event.time
    );
    if event.event == crate::Change::Close {
        body.push_str(&format!("Open since: {}\n", event.opened));
    }
    if event.flapping {
        body.push_str("Flapping: this alert opened three times within 30 minutes.\n");
    }
    body.push_str("\nReasons:\n");
    for reason in &event.reasons {
        body.push_str(&format!("- {reason}\n"));
    }
    if let Some(evidence) = &event.evidence {
        if let Some(status) = evidence.status {
            body.push_str(&format!("\nStatus {status}"));
        }
        if let Some(error) = &evidence.error {
            body.push_str(&format!("\nError: {error}"));
        }
        if let Some(sha256) = &evidence.body_sha256 {
            body.push_str(&format!("\nBody as fetched: SHA-256 {sha256}"));
        }
        body.push('\n');
    }
    body
}

async fn deliver_mail(
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    mut queue: mpsc::Receiver<lettre::Message>,
) {
    use lettre::AsyncTransport;
    while let Some(message) = queue.recv().await {
        for attempt in 1..=ATTEMPTS {
            match transport.send(message.clone()).await {
                Ok(_) => break,
                // A permanent refusal (bad recipient) will not change on retry.
                Err(error) if error.is_permanent() => {
                    tracing::warn!("SMTP server refused the alert e-mail: {error}");
                    break;
                }
                Err(error) if attempt == ATTEMPTS => {
                    tracing::warn!("alert e-mail failed {ATTEMPTS} times, dropped: {error}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500 << attempt)).await,
            }
        }
    }
}
