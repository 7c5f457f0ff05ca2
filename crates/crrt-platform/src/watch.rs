//! Website watch on missions: the team adds the victim's sites as targets,
//! [`Platform::run_watch`] checks them with `crrt-watch` while the mission is
//! forming or active, and each alert is kept on the mission with its
//! evidence (the body as fetched and the text diff, stored under their
//! SHA-256 in the evidence folder) and an audit event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crrt_watch::{
    AlertEvent, Baseline, Change, Monitor, Observation, Phrases, Sink, Target, TargetSettings,
    Watcher,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Actor, Platform, PlatformError, Result, audit, new_id, now};

/// A site to watch, as the team enters it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewWatchTarget {
    pub name: String,
    pub url: String,
    /// Optional settings with `crrt watch`'s names: `interval` ("60s"),
    /// `timeout`, `expect_status`, `must_contain`, `must_not_contain`,
    /// `similarity`, `dns` (["A", "NS"]), `tls_expiry_days`, ...
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Value,
}

/// A target on the status board.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WatchTargetView {
    pub id: String,
    pub mission_id: String,
    pub name: String,
    pub url: String,
    #[schema(value_type = Object)]
    pub settings: Value,
    pub created_at: String,
    /// `unchecked`, `up`, or `alert` while an alert is open.
    pub state: String,
    pub last_check_at: Option<String>,
    /// `up`, or what the last check found wrong.
    pub last_result: Option<String>,
    pub latency_ms: Option<i64>,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
    pub open_alerts: Vec<WatchAlertView>,
}

/// An alert of a watched site.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WatchAlertView {
    pub id: String,
    pub target_id: String,
    pub target_name: String,
    /// down, status, slow, content, defacement, tls, dns.
    pub kind: String,
    pub summary: String,
    pub flapping: bool,
    pub opened_at: String,
    pub closed_at: Option<String>,
    /// What the opening check saw: status, timings, error, DNS answers, reasons.
    #[schema(value_type = Object)]
    pub facts: Value,
    pub body_sha256: Option<String>,
    pub diff_sha256: Option<String>,
}

/// Where a mission's alerts go: a webhook (JSON signed with HMAC-SHA256 in
/// `X-CRRT-Signature-256`) and e-mail addresses (through the server's SMTP
/// relay, `crrt serve --smtp`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchNotificationSettings {
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// At least 16 characters; empty keeps the one set before for the same URL.
    #[serde(default)]
    pub webhook_secret: Option<String>,
    #[serde(default)]
    pub emails: Vec<String>,
}

/// The settings as shown: the secret never leaves the server.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WatchNotificationView {
    pub webhook_url: Option<String>,
    pub webhook_secret_set: bool,
    pub emails: Vec<String>,
    pub updated_at: Option<String>,
}

/// How the platform's watch runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Reload the targets this often.
    pub refresh: Duration,
    /// The SMTP relay for alert e-mail, if any.
    pub smtp: Option<crrt_watch::SmtpSettings>,
}

/// Which stored file of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertFile {
    Body,
    Diff,
}

/// What the watch tasks report to the one writer, in order.
enum Report {
    Alert(String, Box<AlertEvent>),
    Checked(String, crrt_store::WatchCheck),
    Learnt(String, String),
}

struct ChannelSink(mpsc::UnboundedSender<Report>);

impl Sink for ChannelSink {
    fn alert(&self, key: &str, event: AlertEvent) {
        let _ = self.0.send(Report::Alert(key.to_owned(), Box::new(event)));
    }

    fn checked(&self, key: &str, monitor: &Monitor, observation: &Observation, _late: Duration) {
        let result = match &observation.page {
            Ok(fetched) if monitor.target().status_ok(fetched.status) => "up".to_owned(),
            Ok(fetched) => format!("status {}", fetched.status),
            Err(failure) => failure.to_string(),
        };
        let millis = |duration: Duration| i64::try_from(duration.as_millis()).ok();
        let percentiles = monitor.latency_percentiles();
        let check = crrt_store::WatchCheck {
            at: crate::now(),
            result,
            latency_ms: observation
                .page
                .as_ref()
                .ok()
                .and_then(|fetched| millis(fetched.latency)),
            p50_ms: percentiles.and_then(|(p50, _)| millis(p50)),
            p95_ms: percentiles.and_then(|(_, p95)| millis(p95)),
        };
        let _ = self.0.send(Report::Checked(key.to_owned(), check));
        if monitor.baseline_changed()
            && let Ok(baseline) = serde_json::to_string(monitor.baseline())
        {
            let _ = self.0.send(Report::Learnt(key.to_owned(), baseline));
        }
    }
}

/// The complete target of a stored row, or why it cannot be watched.
fn target_of(row: &crrt_store::WatchTarget) -> std::result::Result<Target, String> {
    let mut settings: TargetSettings =
        serde_json::from_str(&row.settings).map_err(|error| error.to_string())?;
    settings.name = Some(row.name.clone());
    settings.url = Some(row.url.clone());
    settings.build()
}

impl Platform {
    /// The mission, if the actor may read it; with `write`, also work on it.
    async fn watch_mission(
        &self,
        actor: &Actor,
        mission_id: &str,
        write: bool,
    ) -> Result<crrt_store::Mission> {
        self.mission_for_work(actor, mission_id, write).await
    }

    /// A target that is still watched, if the actor may work on its mission.
    async fn target_for_work(
        &self,
        actor: &Actor,
        target_id: &str,
    ) -> Result<crrt_store::WatchTarget> {
        let not_found = || PlatformError::NotFound(format!("watch target {target_id}"));
        let row = self
            .store
            .watch_target(target_id)
            .await?
            .filter(|row| row.removed_at.is_none())
            .ok_or_else(not_found)?;
        self.watch_mission(actor, &row.mission_id, true)
            .await
            .map_err(|error| match error {
                PlatformError::NotFound(_) => not_found(),
                other => other,
            })?;
        Ok(row)
    }

    /// Adds a site to a mission's watch; it is checked within seconds.
    pub async fn add_watch_target(
        &self,
        actor: &Actor,
        mission_id: &str,
        new: NewWatchTarget,
    ) -> Result<WatchTargetView> {
        let mission = self.watch_mission(actor, mission_id, true).await?;
        let mut settings: TargetSettings = match &new.settings {
            Value::Null => TargetSettings::default(),
            value => serde_json::from_value(value.clone())
                .map_err(|error| PlatformError::Invalid(format!("settings: {error}")))?,
        };
        if settings.ca_file.is_some() {
            return Err(PlatformError::Invalid(
                "settings: ca_file names a file on the server; it is for `crrt watch` only".into(),
            ));
        }
        settings.name = Some(new.name.trim().to_owned());
        settings.url = Some(new.url.trim().to_owned());
        let target = settings.build().map_err(PlatformError::Invalid)?;
        if !self.watch_private && crrt_watch::is_private_url(&target.url) {
            return Err(PlatformError::Invalid(format!(
                "url {}: a loopback or private address; the platform watches public sites only \
                 (an administrator may allow more with crrt serve --watch-private-targets)",
                target.url
            )));
        }
        if self
            .store
            .watch_targets(&mission.id)
            .await?
            .iter()
            .any(|existing| existing.name == target.name)
        {
            return Err(PlatformError::Conflict(format!(
                "this mission already watches a target named {:?}",
                target.name
            )));
        }
        settings.name = None;
        settings.url = None;
        let row = crrt_store::WatchTarget {
            id: new_id(),
            mission_id: mission.id.clone(),
            name: target.name.clone(),
            url: target.url.to_string(),
            settings: serde_json::to_string(&settings)
                .map_err(|error| PlatformError::Invalid(error.to_string()))?,
            created_by: actor.user.id.clone(),
            created_at: now(),
            removed_at: None,
            baseline: None,
            generation: 0,
            last: None,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_watch_target(&row).await?;
        tx.append_audit(&audit(
            Some(actor),
            "watch.target.add",
            "watch_target",
            &row.id,
            None,
            Some(&json!({"mission_id": row.mission_id, "name": row.name, "url": row.url, "settings": settings})),
        ))
        .await?;
        tx.commit().await?;
        Ok(view_of(row, Vec::new()))
    }

    /// Stops watching a site; its open alerts close.
    pub async fn remove_watch_target(&self, actor: &Actor, target_id: &str) -> Result<()> {
        let row = self.target_for_work(actor, target_id).await?;
        let mut tx = self.store.begin().await?;
        tx.remove_watch_target(&row.id, &now()).await?;
        tx.append_audit(&audit(
            Some(actor),
            "watch.target.remove",
            "watch_target",
            &row.id,
            Some(&json!({"name": row.name, "url": row.url})),
            None,
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the site as it is now as its new normal: the baseline is
    /// learnt again from the next check and the target's open alerts close
    /// (after a redesign, or once a defacement is cleaned up differently).
    pub async fn rebaseline_watch_target(&self, actor: &Actor, target_id: &str) -> Result<()> {
        let row = self.target_for_work(actor, target_id).await?;
        let mut tx = self.store.begin().await?;
        tx.rebaseline_watch_target(&row.id, &now()).await?;
        tx.append_audit(&audit(
            Some(actor),
            "watch.target.rebaseline",
            "watch_target",
            &row.id,
            Some(&json!({"name": row.name, "generation": row.generation})),
            Some(&json!({"name": row.name, "generation": row.generation + 1})),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The status board: every target of the mission with its last check
    /// and open alerts.
    pub async fn watch_board(
        &self,
        actor: &Actor,
        mission_id: &str,
    ) -> Result<Vec<WatchTargetView>> {
        let mission = self.watch_mission(actor, mission_id, false).await?;
        let mut open: BTreeMap<String, Vec<WatchAlertView>> = BTreeMap::new();
        let rows = self.store.watch_targets(&mission.id).await?;
        let names: BTreeMap<&str, &str> = rows
            .iter()
            .map(|row| (row.id.as_str(), row.name.as_str()))
            .collect();
        for alert in self.store.watch_alerts(&mission.id, false, 1000).await? {
            let name = names
                .get(alert.target_id.as_str())
                .copied()
                .unwrap_or_default()
                .to_owned();
            open.entry(alert.target_id.clone())
                .or_default()
                .push(alert_view(alert, name));
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let alerts = open.remove(&row.id).unwrap_or_default();
                view_of(row, alerts)
            })
            .collect())
    }

    /// A mission's alerts, newest first: open ones, or all with `closed_too`.
    pub async fn watch_alerts(
        &self,
        actor: &Actor,
        mission_id: &str,
        closed_too: bool,
    ) -> Result<Vec<WatchAlertView>> {
        let mission = self.watch_mission(actor, mission_id, false).await?;
        let mut names = BTreeMap::new();
        for row in self.store.watch_targets(&mission.id).await? {
            names.insert(row.id, row.name);
        }
        let mut views = Vec::new();
        for alert in self
            .store
            .watch_alerts(&mission.id, closed_too, 500)
            .await?
        {
            let name = match names.get(&alert.target_id) {
                Some(name) => name.clone(),
                None => self
                    .store
                    .watch_target(&alert.target_id)
                    .await?
                    .map(|row| row.name)
                    .unwrap_or_default(),
            };
            views.push(alert_view(alert, name));
        }
        Ok(views)
    }

    /// An alert's body or diff as stored; the download is audited.
    pub async fn watch_alert_file(
        &self,
        actor: &Actor,
        alert_id: &str,
        which: AlertFile,
    ) -> Result<(Vec<u8>, String)> {
        let not_found = || PlatformError::NotFound(format!("watch alert {alert_id}"));
        let alert = self
            .store
            .watch_alert(alert_id)
            .await?
            .ok_or_else(not_found)?;
        self.watch_mission(actor, &alert.mission_id, false)
            .await
            .map_err(|_| not_found())?;
        let sha256 = match which {
            AlertFile::Body => alert.body_sha256.clone(),
            AlertFile::Diff => alert.diff_sha256.clone(),
        }
        .ok_or_else(not_found)?;
        let bytes = self.evidence_store()?.read(&sha256).await?;
        let mut tx = self.store.begin().await?;
        tx.append_audit(&audit(
            Some(actor),
            "watch.alert.download",
            "watch_alert",
            &alert.id,
            None,
            Some(&json!({"file": if which == AlertFile::Body { "body" } else { "diff" }, "sha256": sha256})),
        ))
        .await?;
        tx.commit().await?;
        Ok((bytes, sha256))
    }

    /// Where the mission's alerts are sent (for those who may read it).
    pub async fn watch_notifications(
        &self,
        actor: &Actor,
        mission_id: &str,
    ) -> Result<WatchNotificationView> {
        let mission = self.watch_mission(actor, mission_id, false).await?;
        let stored = self.store.watch_notifications(&mission.id).await?;
        Ok(WatchNotificationView {
            webhook_url: stored.as_ref().and_then(|n| n.webhook_url.clone()),
            webhook_secret_set: stored.as_ref().is_some_and(|n| n.webhook_secret.is_some()),
            emails: stored
                .as_ref()
                .map(|n| n.emails.clone())
                .unwrap_or_default(),
            updated_at: stored.map(|n| n.updated_at),
        })
    }

    /// Sets where the mission's alerts are sent; the team only.
    pub async fn set_watch_notifications(
        &self,
        actor: &Actor,
        mission_id: &str,
        settings: WatchNotificationSettings,
    ) -> Result<WatchNotificationView> {
        let mission = self.watch_mission(actor, mission_id, true).await?;
        let before = self.store.watch_notifications(&mission.id).await?;
        let url = settings
            .webhook_url
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty());
        let given = settings
            .webhook_secret
            .map(|secret| secret.trim().to_owned())
            .filter(|secret| !secret.is_empty());
        let secret = match (&url, given) {
            (None, _) => None,
            (Some(_), Some(secret)) => Some(secret),
            // The same URL keeps its secret when none is given again.
            (Some(url), None) => before
                .as_ref()
                .filter(|b| b.webhook_url.as_deref() == Some(url.as_str()))
                .and_then(|b| b.webhook_secret.as_deref())
                .map(|stored| self.open_secret(stored))
                .transpose()?,
        };
        if let Some(url) = &url {
            let secret = secret.as_deref().unwrap_or_default();
            url::Url::parse(url)
                .ok()
                .filter(|parsed| {
                    matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some()
                })
                .ok_or_else(|| {
                    PlatformError::Invalid(format!(
                        "webhook_url {url:?}: an http:// or https:// address is needed"
                    ))
                })?;
            if secret.chars().count() < 16 {
                return Err(PlatformError::Invalid(
                    "webhook_secret: a webhook needs a secret of at least 16 characters (the receiver checks signatures with it)".into(),
                ));
            }
        }
        let emails: Vec<String> = settings
            .emails
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if emails.len() > 20 {
            return Err(PlatformError::Invalid(
                "emails: at most 20 addresses".into(),
            ));
        }
        crrt_watch::notify::parse_recipients(&emails)
            .map_err(|error| PlatformError::Invalid(format!("emails: {error}")))?;
        let row = crrt_store::WatchNotifications {
            mission_id: mission.id.clone(),
            webhook_url: url,
            // Sealed: a copy of the database does not let anyone sign
            // alerts the receiver would trust.
            webhook_secret: secret.as_deref().map(|s| self.seal_secret(s)).transpose()?,
            emails,
            updated_by: actor.user.id.clone(),
            updated_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.set_watch_notifications(&row).await?;
        tx.append_audit(&audit(
            Some(actor),
            "watch.notifications.set",
            "mission",
            &mission.id,
            None,
            Some(&json!({"webhook_url": row.webhook_url, "emails": row.emails})),
        ))
        .await?;
        tx.commit().await?;
        self.watch_notifications(actor, &mission.id).await
    }

    /// Watches every target of every forming or active mission until `stop`,
    /// reloading the list every `options.refresh` (added, changed and removed
    /// targets take effect then), and sends each alert that opens or closes
    /// to its mission's webhook and e-mail recipients.
    pub async fn run_watch(
        &self,
        options: WatchOptions,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let (sender, mut reports) = mpsc::unbounded_channel();
        let mut watcher = Watcher::new(Phrases::bundled(), Arc::new(ChannelSink(sender)));
        if !self.watch_private {
            // Names that resolve to private addresses, and redirects there, too.
            watcher = watcher.public_only();
        }
        let mut outbox = Outbox::new(options.smtp.as_ref());
        let mut reload = tokio::time::interval(options.refresh.max(Duration::from_millis(100)));
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = reload.tick() => match self.store.active_watch_targets().await {
                    Ok(rows) => watcher.sync(rows.iter().filter_map(|row| match target_of(row) {
                        Ok(target) => {
                            let baseline = row.baseline.as_deref().and_then(|text| serde_json::from_str::<Baseline>(text).ok());
                            // A new generation (a re-baseline) restarts the monitor.
                            Some((format!("{}#{}", row.id, row.generation), target, baseline))
                        }
                        Err(error) => {
                            tracing::warn!(target = %row.id, "watch target not usable: {error}");
                            None
                        }
                    }).collect()),
                    Err(error) => tracing::warn!("reading the watch targets: {error}"),
                },
                Some(report) = reports.recv() => self.record_report(report, &mut outbox).await,
            }
        }
        watcher.stop().await;
        while let Ok(report) = reports.try_recv() {
            self.record_report(report, &mut outbox).await;
        }
    }

    async fn record_report(&self, report: Report, outbox: &mut Outbox) {
        // Keys are `target#generation`.
        let target = |key: String| key.split('#').next().unwrap_or_default().to_owned();
        let outcome = match report {
            Report::Checked(key, check) => self
                .store
                .record_watch_check(&target(key), &check)
                .await
                .map_err(PlatformError::from),
            Report::Learnt(key, baseline) => self.save_baseline(&target(key), &baseline).await,
            Report::Alert(key, event) => match self.record_alert(&target(key), &event).await {
                // Only what changed the mission's alerts goes out: a restart
                // re-detecting an open alert sends nothing.
                Ok(Some(mission_id)) => self.notify(&mission_id, &event, outbox).await,
                Ok(None) => Ok(()),
                Err(error) => Err(error),
            },
        };
        if let Err(error) = outcome {
            tracing::warn!("recording a watch result: {error}");
        }
    }

    async fn notify(
        &self,
        mission_id: &str,
        event: &AlertEvent,
        outbox: &mut Outbox,
    ) -> Result<()> {
        let Some(settings) = self.store.watch_notifications(mission_id).await? else {
            return Ok(());
        };
        if let (Some(url), Some(secret)) = (&settings.webhook_url, &settings.webhook_secret) {
            outbox.webhook(url, &self.open_secret(secret)?)?.send(event);
        }
        if !settings.emails.is_empty() {
            match &outbox.mailer {
                Some(mailer) => {
                    let to = crrt_watch::notify::parse_recipients(&settings.emails)
                        .map_err(|error| PlatformError::Invalid(error.to_string()))?;
                    mailer.send(event, &to);
                }
                None => tracing::warn!(
                    mission = mission_id,
                    "alert e-mail not sent: crrt serve runs without --smtp"
                ),
            }
        }
        Ok(())
    }

    async fn save_baseline(&self, id: &str, baseline: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.set_watch_baseline(id, baseline).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores an alert's opening or closing; returns its mission when that
    /// changed something.
    async fn record_alert(&self, target_id: &str, event: &AlertEvent) -> Result<Option<String>> {
        let Some(target) = self.store.watch_target(target_id).await? else {
            return Ok(None);
        };
        let mut changed = false;
        let at = fixed(&event.time);
        let mut tx = self.store.begin().await?;
        match event.event {
            Change::Open => {
                let evidence = event.evidence.as_ref();
                let body_sha256 = match evidence {
                    Some(evidence) if evidence.status.is_some() => {
                        self.keep_watch_bytes(&evidence.body).await?
                    }
                    _ => None,
                };
                let diff_sha256 = match evidence.and_then(|evidence| evidence.diff.as_deref()) {
                    Some(diff) => self.keep_watch_bytes(diff.as_bytes()).await?,
                    None => None,
                };
                let mut facts = serde_json::to_value(evidence).unwrap_or(Value::Null);
                if let Some(object) = facts.as_object_mut() {
                    object.insert("reasons".into(), json!(event.reasons));
                }
                let alert = crrt_store::WatchAlert {
                    id: new_id(),
                    target_id: target.id.clone(),
                    mission_id: target.mission_id.clone(),
                    kind: event.kind.to_string(),
                    summary: event.summary.clone(),
                    flapping: event.flapping,
                    opened_at: at,
                    closed_at: None,
                    facts: facts.to_string(),
                    body_sha256,
                    diff_sha256,
                };
                if tx.open_watch_alert(&alert).await? {
                    changed = true;
                    tx.append_audit(&audit(
                        None,
                        "watch.alert.open",
                        "watch_alert",
                        &alert.id,
                        None,
                        Some(&json!({"target": target.name, "kind": alert.kind, "summary": alert.summary,
                                     "body_sha256": alert.body_sha256})),
                    ))
                    .await?;
                }
            }
            Change::Close => {
                if let Some(id) = tx
                    .close_watch_alert(&target.id, &event.kind.to_string(), &at)
                    .await?
                {
                    changed = true;
                    tx.append_audit(&audit(
                        None,
                        "watch.alert.close",
                        "watch_alert",
                        &id,
                        None,
                        Some(&json!({"target": target.name, "kind": event.kind})),
                    ))
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(changed.then(|| target.mission_id.clone()))
    }
}

/// The delivery queues of the running watch: one per webhook, one mailer.
struct Outbox {
    webhooks: std::collections::HashMap<(String, String), crrt_watch::Notifier>,
    mailer: Option<crrt_watch::Mailer>,
}

impl Outbox {
    fn new(smtp: Option<&crrt_watch::SmtpSettings>) -> Outbox {
        let mailer = smtp.and_then(|settings| match crrt_watch::Mailer::start(settings) {
            Ok(mailer) => Some(mailer),
            Err(error) => {
                tracing::warn!("alert e-mail off: {error}");
                None
            }
        });
        Outbox {
            webhooks: Default::default(),
            mailer,
        }
    }

    fn webhook(&mut self, url: &str, secret: &str) -> Result<&crrt_watch::Notifier> {
        let key = (url.to_owned(), secret.to_owned());
        if !self.webhooks.contains_key(&key) {
            let hook = crrt_watch::Webhook {
                url: url
                    .parse()
                    .map_err(|_| PlatformError::Invalid(format!("webhook {url:?} is not a URL")))?,
                secret: secret.to_owned(),
            };
            let notifier = crrt_watch::Notifier::start(&[hook])
                .map_err(|error| PlatformError::Invalid(error.to_string()))?;
            self.webhooks.insert(key.clone(), notifier);
        }
        self.webhooks
            .get(&key)
            .ok_or_else(|| PlatformError::Invalid("webhook".into()))
    }
}

impl Platform {
    /// Keeps a watched page's body or diff as evidence (when there is a store).
    async fn keep_watch_bytes(&self, bytes: &[u8]) -> Result<Option<String>> {
        match &self.evidence {
            Some(store) if !bytes.is_empty() => store.keep_bytes(bytes).await.map(Some),
            _ => Ok(None),
        }
    }
}

/// The store's fixed-width UTC form.
fn fixed(time: &jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn view_of(row: crrt_store::WatchTarget, open_alerts: Vec<WatchAlertView>) -> WatchTargetView {
    let state = if !open_alerts.is_empty() {
        "alert"
    } else if row.last.is_some() {
        "up"
    } else {
        "unchecked"
    };
    let last = row.last.clone();
    WatchTargetView {
        state: state.into(),
        id: row.id,
        mission_id: row.mission_id,
        name: row.name,
        url: row.url,
        settings: serde_json::from_str(&row.settings).unwrap_or(Value::Null),
        created_at: row.created_at,
        last_check_at: last.as_ref().map(|check| check.at.clone()),
        last_result: last.as_ref().map(|check| check.result.clone()),
        latency_ms: last.as_ref().and_then(|check| check.latency_ms),
        p50_ms: last.as_ref().and_then(|check| check.p50_ms),
        p95_ms: last.as_ref().and_then(|check| check.p95_ms),
        open_alerts,
    }
}

fn alert_view(alert: crrt_store::WatchAlert, target_name: String) -> WatchAlertView {
    WatchAlertView {
        facts: serde_json::from_str(&alert.facts).unwrap_or(Value::Null),
        id: alert.id,
        target_id: alert.target_id,
        target_name,
        kind: alert.kind,
        summary: alert.summary,
        flapping: alert.flapping,
        opened_at: alert.opened_at,
        closed_at: alert.closed_at,
        body_sha256: alert.body_sha256,
        diff_sha256: alert.diff_sha256,
    }
}
