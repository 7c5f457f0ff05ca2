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
