//! TAXII 2.1 collections as the platform sees them: what each reader may
//! read and write. Two collections on one API root:
//!
//! - *shared*: the indicators the reader's TLP allows, as STIX 2.1
//!   indicator objects (read-only; the same TLP query as every other read);
//! - *inbox*: what the reader's organisation submitted, kept as submitted
//!   with that organisation as source; it reads back its own and nothing
//!   of other organisations.

use crrt_store::{Partition, TaxiiFilter, TaxiiObject};
use serde_json::{Value, json};

use crate::{Actor, Platform, PlatformError, Result, new_id, now};

pub const API_ROOT: &str = "crrt";
pub const SHARED: &str = "7a1e4c2b-5d3f-4e8a-9b6c-1f2e3d4c5b6a";
pub const INBOX: &str = "3c9d8e7f-6a5b-4c4d-8e2f-0a1b2c3d4e5f";
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";
/// Largest page a reader gets, whatever `limit` asks.
pub const MAX_PAGE: i64 = 10_000;

/// A collection as TAXII describes it to this reader.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CollectionInfo {
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub can_read: bool,
    pub can_write: bool,
    pub media_types: Vec<&'static str>,
}

pub fn collections() -> Vec<CollectionInfo> {
    vec![
        CollectionInfo {
            id: SHARED,
            title: "Indicators shared through CRRT",
            description: "Every indicator your organisation's TLP allows, as STIX 2.1 indicators.",
            can_read: true,
            can_write: false,
            media_types: vec![STIX_MEDIA_TYPE],
        },
        CollectionInfo {
            id: INBOX,
            title: "Your submissions",
            description: "Add STIX 2.1 objects for the team; they keep your organisation as their source. You read back your own.",
            can_read: true,
            can_write: true,
            media_types: vec![STIX_MEDIA_TYPE],
        },
    ]
}

pub fn collection(id: &str) -> Option<CollectionInfo> {
    collections().into_iter().find(|c| c.id == id)
}

/// One page of a read: the objects as JSON text, and where it stands.
#[derive(Debug, Clone, Default)]
pub struct TaxiiPage {
    /// (id, version, date_added, spec_version, object JSON)
    pub objects: Vec<TaxiiObject>,
    pub more: bool,
    /// Opaque continuation for `next`.
    pub next: Option<String>,
}

impl TaxiiPage {
    pub fn first_added(&self) -> Option<&str> {
        self.objects.iter().map(|o| o.date_added.as_str()).min()
    }

    pub fn last_added(&self) -> Option<&str> {
        self.objects.iter().map(|o| o.date_added.as_str()).max()
    }
}

/// `next` tokens: the last (date_added, id, version) served, hex-encoded.
pub fn encode_next(o: &TaxiiObject) -> String {
    hex::encode(format!("{}\n{}\n{}", o.date_added, o.id, o.version))
}

pub fn decode_next(token: &str) -> Result<(String, String, String)> {
    let bad = || PlatformError::Invalid(format!("next {token:?} is not a token this server gave"));
    let bytes = hex::decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => Ok((a.to_owned(), b.to_owned(), c.to_owned())),
        _ => Err(bad()),
    }
}

/// What an add request did, as a TAXII status resource.
#[derive(Debug, Clone)]
pub struct AddOutcome {
    pub status_id: String,
    pub body: Value,
}

fn stix_time(at: &str) -> String {
    at.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|_| at.to_owned())
}

impl Platform {
    fn inbox<'a>(&self, actor: &'a Actor) -> Partition<'a> {
        Partition {
            collection: INBOX,
            org_id: actor.org_id(),
        }
    }

    /// A page of a collection's objects for this reader.
    pub async fn taxii_page(
        &self,
        actor: &Actor,
        collection_id: &str,
        filter: &TaxiiFilter,
        limit: i64,
    ) -> Result<TaxiiPage> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut objects = match collection_id {
            INBOX => {
                self.store
                    .taxii_objects(self.inbox(actor), filter, limit + 1)
                    .await?
            }
            SHARED => self.shared_objects(actor, filter, limit + 1).await?,
            other => {
                return Err(PlatformError::NotFound(format!("collection {other}")));
            }
        };
        let more = objects.len() as i64 > limit;
        objects.truncate(limit as usize);
        let next = more.then(|| objects.last().map(encode_next)).flatten();
        Ok(TaxiiPage {
            objects,
            more,
            next,
        })
    }

    /// The shared collection: visible indicators as STIX indicator
    /// objects, in the order they were last changed.
    async fn shared_objects(
        &self,
        actor: &Actor,
        filter: &TaxiiFilter,
        limit: i64,
    ) -> Result<Vec<TaxiiObject>> {
        let wants =
            |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        if !wants(&filter.types, "indicator") || !wants(&filter.spec_versions, "2.1") {
            return Ok(Vec::new());
        }
        let audience = self.audience(actor).await?;
        // Asked by id: ids made from platform ids lead straight to them.
        if !filter.ids.is_empty() {
            let direct: Option<Vec<String>> = filter
                .ids
                .iter()
                .map(|i| crrt_intel::stix::platform_id(i))
                .collect();
            if let Some(ids) = direct {
                let mut rows = Vec::new();
                for id in ids {
                    let Some(row) = self.store.indicator(&id).await? else {
                        continue;
                    };
                    let (orgs, users) = self.store.indicator_recipients(&row.id).await?;
                    if crate::policy::may_see_indicator(&audience, &row, &orgs, &users)
                        && filter
                            .added_after
                            .as_deref()
                            .is_none_or(|a| row.updated_at.as_str() > a)
                    {
                        rows.push(row);
                    }
                }
                rows.sort_by(|a, b| (&a.updated_at, &a.id).cmp(&(&b.updated_at, &b.id)));
                let names = self.organisation_names().await?;
                let mut out: Vec<TaxiiObject> = rows
                    .into_iter()
                    .filter_map(|row| Self::shared_object(row, filter, &names))
                    .collect();
                out.truncate(limit as usize);
                return Ok(out);
            }
        }
        let names = self.organisation_names().await?;
        let mut out = Vec::new();
        let mut after = filter
            .after
            .as_ref()
            .map(|(added, id, _)| (added.clone(), id.clone()));
        loop {
            let rows = self
                .store
                .visible_indicators_in_order(
                    &audience,
                    filter.added_after.as_deref(),
                    after.as_ref(),
                    1000,
                )
                .await?;
            let n = rows.len();
            for row in rows {
                after = Some((row.updated_at.clone(), row.id.clone()));
                if let Some(object) = Self::shared_object(row, filter, &names) {
                    out.push(object);
                }
                if out.len() as i64 >= limit {
                    return Ok(out);
                }
            }
            if n < 1000 {
                return Ok(out);
            }
        }
    }

    /// One indicator as the STIX object the shared collection serves, if it
    /// passes the id and version filters.
    fn shared_object(
        row: crrt_store::StoredIndicator,
        filter: &TaxiiFilter,
        names: &std::collections::HashMap<String, String>,
    ) -> Option<TaxiiObject> {
        let (Ok(kind), Ok(tlp)) = (
            row.kind.parse::<crrt_intel::Kind>(),
            row.tlp.parse::<crrt_intel::Tlp>(),
        ) else {
            return None;
        };
        let stix_id = crrt_intel::stix::stix_id("indicator", &row.id);
        let version = stix_time(&row.updated_at);
        if !filter.ids.is_empty() && !filter.ids.contains(&stix_id) {
            return None;
        }
        let v = &filter.versions;
        if !v.exact.is_empty() && !v.all && !v.last && !v.first && !v.exact.contains(&version) {
            return None;
        }
        let source = names
            .get(&row.source_org_id)
            .cloned()
            .unwrap_or_else(|| row.source_org_id.clone());
        let indicator = crrt_intel::Indicator {
            id: row.id.clone(),
            observable: crrt_intel::Observable {
                kind,
                value: row.value,
            },
            tlp,
            source,
            confidence: row.confidence.map(|c| c.clamp(0, 100) as u8),
            first_seen: row.first_seen,
            last_seen: row.last_seen,
            expires_at: row.expires_at,
            tags: row.tags,
            description: row.description,
            sightings: 0,
            created_at: row.created_at,
            modified_at: row.updated_at.clone(),
        };
        let bundle = crrt_intel::stix::export_bundle(&[indicator], "CRRT", &now());
        let object = bundle["objects"]
            .as_array()
            .and_then(|objects| objects.iter().find(|o| o["type"] == "indicator"))
            .cloned()
            .unwrap_or(Value::Null);
        Some(TaxiiObject {
            id: stix_id,
            version,
            date_added: row.updated_at,
            spec_version: "2.1".into(),
            object: object.to_string(),
        })
    }

    /// The versions of one object (oldest first), with their date added.
    pub async fn taxii_versions(
        &self,
        actor: &Actor,
        collection_id: &str,
        object_id: &str,
    ) -> Result<Vec<(String, String)>> {
        match collection_id {
            INBOX => Ok(self
                .store
                .taxii_versions(self.inbox(actor), object_id)
                .await?),
            SHARED => {
                let filter = TaxiiFilter {
                    ids: vec![object_id.to_owned()],
                    ..TaxiiFilter::default()
                };
                Ok(self
                    .shared_objects(actor, &filter, 1)
                    .await?
                    .into_iter()
                    .map(|o| (o.version, o.date_added))
                    .collect())
            }
            other => Err(PlatformError::NotFound(format!("collection {other}"))),
        }
    }

    /// Adds an envelope's objects to the inbox; every object is a success
    /// or a failure with its reason in the status resource. Objects are
    /// stored as the bytes they came in (not parsed into trees and written
    /// out again).
    pub async fn taxii_add(
        &self,
        actor: &Actor,
        collection_id: &str,
        body: &[u8],
    ) -> Result<AddOutcome> {
        match collection_id {
            INBOX => {}
            SHARED => {
                return Err(PlatformError::Forbidden(
                    "the shared collection is read-only; add objects to your inbox".into(),
                ));
            }
            other => return Err(PlatformError::NotFound(format!("collection {other}"))),
        }
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            objects: Vec<&'a serde_json::value::RawValue>,
        }
        /// The few properties the store needs; the rest stays as sent.
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(borrow, default)]
            id: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default, rename = "type")]
            kind: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            modified: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            created: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            spec_version: Option<std::borrow::Cow<'a, str>>,
        }
        let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(|e| {
            PlatformError::Invalid(format!(
                "the body is not a TAXII envelope with an \"objects\" list: {e}"
            ))
        })?;
        let objects = envelope.objects;
        let request_timestamp = now();
        let base: jiff::Timestamp = request_timestamp
            .parse()
            .map_err(|_| PlatformError::Invalid("clock".into()))?;
        let mut rows = Vec::with_capacity(objects.len());
        let mut shared: Vec<crrt_intel::stix::Incoming> = Vec::new();
        let mut successes = Vec::new();
        let mut failures = Vec::new();
        for (n, raw) in objects.iter().enumerate() {
            let head: Head<'_> = match serde_json::from_str(raw.get()) {
                Ok(h) => h,
                Err(e) => {
                    failures.push(json!({"id": "", "message": format!("objects[{n}] is not a STIX object: {e}")}));
                    continue;
                }
            };
            let (Some(id), Some(kind)) = (head.id.as_deref(), head.kind.as_deref()) else {
                failures.push(json!({
                    "id": head.id.as_deref().unwrap_or(""),
                    "message": format!("objects[{n}] has no id or type"),
                }));
                continue;
            };
            if !id.starts_with(kind) || !id[kind.len()..].starts_with("--") {
                failures.push(json!({"id": id, "message": format!("objects[{n}]: the id does not start with {kind}--")}));
                continue;
            }
            // Objects added in one request keep their order: each gets
            // its own microsecond.
            let date_added = (base + jiff::SignedDuration::from_micros(n as i64))
                .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            let version = head
                .modified
                .as_deref()
                .or(head.created.as_deref())
                .map(str::to_owned)
                .unwrap_or_else(|| stix_time(&date_added));
            let spec_version = head.spec_version.as_deref().unwrap_or("2.1").to_owned();
            if kind == "indicator"
                && let Ok(value) = serde_json::from_str::<Value>(raw.get())
                && let Ok(found) = crrt_intel::stix::indicator_object(&value)
            {
                shared.extend(found);
            }
            successes.push(json!({"id": id, "version": version}));
            rows.push((
                TaxiiObject {
                    id: id.to_owned(),
                    version,
                    date_added,
                    spec_version,
                    object: raw.get().to_owned(),
                },
                kind.to_owned(),
            ));
        }
        let status_id = uuid_like();
        let failures_n = failures.len();
        let body = json!({
            "id": status_id,
            "status": "complete",
            "request_timestamp": stix_time(&request_timestamp),
            "total_count": objects.len(),
            "success_count": successes.len(),
            "successes": successes,
            "failure_count": failures.len(),
            "failures": failures,
            "pending_count": 0,
            "pendings": [],
        });
        let indicators = self.submitted_indicators(actor, shared, &request_timestamp);
        let mut tx = self.store.begin().await?;
        tx.add_taxii_objects(self.inbox(actor), &rows).await?;
        tx.insert_taxii_status(
            &status_id,
            actor.org_id(),
            &body.to_string(),
            &request_timestamp,
        )
        .await?;
        tx.append_audit(&crate::audit(
            Some(actor),
            "taxii.add",
            "taxii_status",
            &status_id,
            None,
            Some(&json!({"collection": INBOX, "added": rows.len(), "failed": failures_n})),
        ))
        .await?;
        tx.commit().await?;
        // The submission is stored; its indicators become platform
        // indicators right after, off the partner's request (adding them
        // is most of the work). Sending the same objects again repeats it
        // without duplicates.
        if !indicators.is_empty() {
            let platform = self.clone();
            tokio::spawn(async move {
                if let Err(e) = platform.share_submitted(&indicators).await {
                    tracing::warn!(error = %e, "submitted indicators were not shared");
                }
            });
        }
        Ok(AddOutcome { status_id, body })
    }

    pub async fn taxii_status(&self, actor: &Actor, id: &str) -> Result<Value> {
        let body = self
            .store
            .taxii_status(id, actor.org_id())
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("status {id}")))?;
        serde_json::from_str(&body)
            .map_err(|e| PlatformError::Invalid(format!("stored status: {e}")))
    }

    /// Deletes versions of an object from the inbox (only one's own).
    pub async fn taxii_delete(
        &self,
        actor: &Actor,
        collection_id: &str,
        object_id: &str,
        filter: &TaxiiFilter,
    ) -> Result<u64> {
        match collection_id {
            INBOX => {}
            SHARED => {
                return Err(PlatformError::Forbidden(
                    "the shared collection is read-only".into(),
                ));
            }
            other => return Err(PlatformError::NotFound(format!("collection {other}"))),
        }
        let mut tx = self.store.begin().await?;
        let gone = tx
            .delete_taxii_object(self.inbox(actor), object_id, filter)
            .await?;
        if gone == 0 {
            return Err(PlatformError::NotFound(format!("object {object_id}")));
        }
        tx.append_audit(&crate::audit(
            Some(actor),
            "taxii.delete",
            "taxii_object",
            object_id,
            None,
            Some(&json!({"versions": gone})),
        ))
        .await?;
        tx.commit().await?;
        Ok(gone)
    }
}

impl Platform {
    fn submitted_indicators(
        &self,
        actor: &Actor,
        found: Vec<crrt_intel::stix::Incoming>,
        at: &str,
    ) -> Vec<crrt_store::StoredIndicator> {
        found
            .into_iter()
            .map(|f| crrt_store::StoredIndicator {
                id: crate::new_uuid_id(),
                kind: f.observable.kind.as_str().to_owned(),
                value: f.observable.value,
                tlp: f.tlp.unwrap_or(crrt_intel::Tlp::Amber).as_str().to_owned(),
                source_org_id: actor.org_id().to_owned(),
                created_by: actor.user.id.clone(),
                confidence: f.confidence.map(i64::from),
                first_seen: f.first_seen.as_deref().and_then(fixed_time),
                last_seen: None,
                expires_at: f.expires_at.as_deref().and_then(fixed_time),
                tags: f.tags,
                description: f.description,
                sightings: 0,
                version: 1,
                created_at: at.to_owned(),
                updated_at: at.to_owned(),
            })
            .collect()
    }

    /// Indicators in a submission are shared with the platform under
    /// their own marking; TLP:AMBER reaches the member-state teams the
    /// submission was addressed to.
    async fn share_submitted(&self, indicators: &[crrt_store::StoredIndicator]) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.insert_new_indicators(indicators, true).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Indicators pulled from a partner's TAXII server: shared with the
    /// partner organisation as their source and their own TLP marking
    /// (TLP:AMBER when unmarked, addressed to the member-state teams);
    /// values already shared by that source are left as they were.
    pub async fn import_pulled(
        &self,
        recorder: &Actor,
        source_org: &str,
        objects: &[Value],
    ) -> Result<crate::ImportReport> {
        crate::policy::require(recorder, crate::policy::Action::Administer)?;
        let org = self
            .store
            .org_by_name(source_org.trim())
            .await?
            .ok_or_else(|| {
                PlatformError::Invalid(format!("no organisation named {source_org:?}"))
            })?;
        let mut report = crate::ImportReport {
            format: "taxii".into(),
            imported: 0,
            already_known: 0,
            problems: Vec::new(),
            refused: false,
        };
        let mut found = Vec::new();
        for (n, object) in objects.iter().enumerate() {
            if object.get("type").and_then(Value::as_str) != Some("indicator") {
                continue;
            }
            match crrt_intel::stix::indicator_object(object) {
                Ok(values) => found.extend(values),
                Err(message) => report.problems.push(crrt_intel::Problem {
                    position: format!(
                        "object {} ({n})",
                        object.get("id").and_then(Value::as_str).unwrap_or("?")
                    ),
                    message,
                }),
            }
        }
        let at = now();
        let mut indicators = self.submitted_indicators(recorder, found, &at);
        for i in &mut indicators {
            i.source_org_id = org.id.clone();
        }
        let mut tx = self.store.begin().await?;
        let added = tx.insert_new_indicators(&indicators, true).await?;
        report.imported = added.len();
        report.already_known = indicators.len() - added.len();
        tx.append_audit(&crate::audit(
            Some(recorder),
            "indicator.pull",
            "organisation",
            &org.id,
            None,
            Some(&json!({"indicators": report.imported, "already_known": report.already_known})),
        ))
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// A standing pull from a partner's collection, every `every_seconds`
    /// (at least 10). `auth` (`none`, `bearer TOKEN`, `basic USER:PASSWORD`)
    /// is kept sealed with the platform's key; `ca_pem`, certificate
    /// authorities to trust for the partner's server, in clear.
    pub async fn subscribe(
        &self,
        recorder: &Actor,
        url: &str,
        source_org: &str,
        auth: &str,
        ca_pem: Option<&str>,
        every_seconds: i64,
    ) -> Result<crrt_store::Subscription> {
        crate::policy::require(recorder, crate::policy::Action::Administer)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(PlatformError::Invalid(format!(
                "{url}: a TAXII collection's http:// or https:// URL is needed"
            )));
        }
        if every_seconds < 10 {
            return Err(PlatformError::Invalid(
                "a subscription runs at most every 10 seconds".into(),
            ));
        }
        let ca_pem = ca_pem.map(str::trim).filter(|p| !p.is_empty());
        if ca_pem.is_some_and(|p| !p.contains("-----BEGIN CERTIFICATE-----")) {
            return Err(PlatformError::Invalid(
                "the certificate authority must be PEM (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        let org = self
            .store
            .org_by_name(source_org.trim())
            .await?
            .ok_or_else(|| {
                PlatformError::Invalid(format!("no organisation named {source_org:?}"))
            })?;
        let auth = self.seal_credential(auth)?;
        let at = now();
        let subscription = crrt_store::Subscription {
            id: new_id(),
            url: url.to_owned(),
            source_org_id: org.id,
            recorder_id: recorder.user.id.clone(),
            auth,
            ca_pem: ca_pem.map(str::to_owned),
            every_seconds,
            added_after: None,
            next_run: at.clone(),
            last_run: None,
            last_result: None,
            created_at: at,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_subscription(&subscription).await?;
        let mut shown = subscription.clone();
        shown.auth = "(hidden)".into();
        tx.append_audit(&crate::audit(
            Some(recorder),
            "taxii.subscribe",
            "taxii_subscription",
            &subscription.id,
            None,
            Some(&json!({"url": shown.url, "source_org_id": shown.source_org_id, "every_seconds": every_seconds})),
        ))
        .await?;
        tx.commit().await?;
        Ok(subscription)
    }

    /// Standing pulls, for administrators (their credentials left out:
    /// `auth` says only which kind, `bearer`, `basic` or `none`).
    pub async fn subscriptions(&self, actor: &Actor) -> Result<Vec<crrt_store::Subscription>> {
        crate::policy::require(actor, crate::policy::Action::Administer)?;
        let mut all = self.store.subscriptions().await?;
        for s in &mut all {
            s.auth = match self.subscription_auth(s) {
                Ok(plain) => plain.split(' ').next().unwrap_or_default().to_owned(),
                Err(_) => "unreadable".to_owned(),
            };
        }
        Ok(all)
    }

    /// The credential a subscription signs in with, unsealed.
    pub fn subscription_auth(&self, subscription: &crrt_store::Subscription) -> Result<String> {
        self.open_secret(&subscription.auth)
    }

    /// Seals the credentials that subscriptions, and the webhook secrets
    /// that watch notifications, made before sealing existed still keep in
    /// clear; returns how many. Run at start.
    pub async fn seal_stored_credentials(&self) -> Result<usize> {
        let mut sealed = 0;
        for s in self.store.subscriptions().await? {
            if s.auth == "none" || crate::secrets::SecretBox::is_sealed(&s.auth) {
                continue;
            }
            let auth = self.seal_credential(&s.auth)?;
            let mut tx = self.store.begin().await?;
            tx.set_subscription_auth(&s.id, &auth).await?;
            tx.commit().await?;
            sealed += 1;
        }
        for n in self.store.watch_notifications_with_secrets().await? {
            let Some(secret) = n
                .webhook_secret
                .filter(|s| !crate::secrets::SecretBox::is_sealed(s))
            else {
                continue;
            };
            let secret = self.seal_secret(&secret)?;
            let mut tx = self.store.begin().await?;
            tx.set_webhook_secret(&n.mission_id, &secret).await?;
            tx.commit().await?;
            sealed += 1;
        }
        if sealed > 0 {
            self.store.scrub_replaced_values().await?;
        }
        Ok(sealed)
    }

    fn seal_credential(&self, auth: &str) -> Result<String> {
        if auth == "none" {
            return Ok(auth.to_owned());
        }
        self.seal_secret(auth)
    }

    /// The account a subscription pulls for, and its source's name.
    pub async fn subscription_context(
        &self,
        subscription: &crrt_store::Subscription,
    ) -> Result<(Actor, String)> {
        let recorder = self
            .store
            .user(&subscription.recorder_id)
            .await?
            .and_then(Actor::new)
            .ok_or(PlatformError::Unauthenticated)?;
        let source = self
            .store
            .org(&subscription.source_org_id)
            .await?
            .map(|o| o.name)
            .ok_or_else(|| PlatformError::NotFound("the subscription's organisation".into()))?;
        Ok((recorder, source))
    }

    /// Records a pull's outcome and schedules the next one.
    pub async fn subscription_ran(
        &self,
        subscription: &crrt_store::Subscription,
        added_after: Option<&str>,
        result: &str,
    ) -> Result<()> {
        let at = now();
        let next = (jiff::Timestamp::now()
            + jiff::SignedDuration::from_secs(subscription.every_seconds))
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
        let mut tx = self.store.begin().await?;
        tx.record_subscription_run(&subscription.id, added_after, &next, &at, result)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The store's fixed-width UTC form of a STIX time, or none if it is not one.
fn fixed_time(at: &str) -> Option<String> {
    at.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

/// A random UUID (version 4 layout) for status resources.
fn uuid_like() -> String {
    let hex = new_id();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
