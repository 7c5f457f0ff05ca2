//! Hunts in the platform: rule packs over a case's evidence, queued in the
//! database and run by workers (the one embedded in `crrt serve`, or
//! `crrt worker` processes). A worker holds a hunt under a lease it renews
//! while it works, with the progress; a hunt whose worker died is taken
//! again once the lease runs out. Findings are keyed by what they are (case,
//! evidence, record, rule), so a retried or re-run hunt stores each once.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Actor, Page, Platform, PlatformError, Result, audit, new_id, now};
pub use crrt_store::{Hunt, StoredFinding};

/// How long a claim lasts without renewal, by default; renewed every third
/// of it.
pub const LEASE_SECONDS: i64 = 30;

/// How a worker identifies itself and how long its claims last.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub name: String,
    pub lease_seconds: i64,
}

/// What to hunt.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHunt {
    /// Rule pack ids; may be empty when `indicators` is set.
    #[serde(default)]
    pub rulepacks: Vec<String>,
    /// Evidence ids of the case; all of it when absent.
    #[serde(default)]
    pub evidence: Option<Vec<String>>,
    /// Also look for the indicators linked to the case and its mission
    /// (those the requester may see).
    #[serde(default)]
    pub indicators: bool,
}

const VERDICTS: &[&str] = &["needs_review", "true_positive", "false_positive"];

fn timestamp_in(seconds: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds))
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl Platform {
    /// Queues a hunt on a case.
    pub async fn start_hunt(&self, actor: &Actor, case_id: &str, new: NewHunt) -> Result<Hunt> {
        let case = self.case_for_work(actor, case_id, true).await?;
        if new.rulepacks.is_empty() && !new.indicators {
            return Err(PlatformError::Invalid(
                "a hunt needs at least one rule pack, or the case's indicators".into(),
            ));
        }
        let indicator_ids = if new.indicators {
            let ids = self.case_indicator_ids(actor, &case).await?;
            if ids.is_empty() {
                return Err(PlatformError::Invalid(
                    "no indicator is linked to this case or its mission".into(),
                ));
            }
            ids
        } else {
            Vec::new()
        };
        for id in &new.rulepacks {
            if self.store.rulepack(id).await?.is_none() {
                return Err(PlatformError::Invalid(format!(
                    "rule pack {id} does not exist"
                )));
            }
        }
        let all: Vec<String> = self
            .store
            .evidence_of_case(
                &case.id,
                Page {
                    limit: 100_000,
                    offset: 0,
                },
            )
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect();
        let evidence = match new.evidence {
            None => all,
            Some(chosen) => {
                if let Some(stranger) = chosen.iter().find(|id| !all.contains(id)) {
                    return Err(PlatformError::Invalid(format!(
                        "evidence {stranger} is not in this case"
                    )));
                }
                chosen
            }
        };
        if evidence.is_empty() {
            return Err(PlatformError::Invalid(
                "the case has no evidence to hunt".into(),
            ));
        }
        let hunt = Hunt {
            id: new_id(),
            case_id: case.id,
            status: "queued".into(),
            rulepack_ids: new.rulepacks,
            evidence_ids: evidence,
            requested_by: actor.user.id.clone(),
            created_at: now(),
            started_at: None,
            finished_at: None,
            lease_owner: None,
            lease_expires_at: None,
            attempts: 0,
            records_done: 0,
            bytes_done: 0,
            bytes_total: 0,
            n_findings: 0,
            error: None,
            indicator_ids,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_hunt(&hunt).await?;
        tx.append_audit(&audit(
            Some(actor),
            "hunt.start",
            "hunt",
            &hunt.id,
            None,
            Some(&hunt),
        ))
        .await?;
        tx.commit().await?;
        Ok(hunt)
    }

    /// The indicators linked to a case or its mission that the actor may
    /// see: what a hunt with `indicators` looks for.
    async fn case_indicator_ids(&self, actor: &Actor, case: &crate::Case) -> Result<Vec<String>> {
        let audience = self.audience(actor).await?;
        let mut ids = Vec::new();
        for filter in [
            crrt_store::IndicatorFilter {
                case_id: Some(case.id.clone()),
                ..Default::default()
            },
            crrt_store::IndicatorFilter {
                mission_id: Some(case.mission_id.clone()),
                ..Default::default()
            },
        ] {
            let mut offset = 0;
            loop {
                let page = self
                    .store
                    .visible_indicators(
                        &audience,
                        &filter,
                        Page {
                            limit: 1000,
                            offset,
                        },
                    )
                    .await?;
                let n = page.len() as i64;
                ids.extend(page.into_iter().map(|i| i.id));
                if n < 1000 || ids.len() > crate::indicators::MAX_BATCH {
                    break;
                }
                offset += n;
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    pub async fn hunts(&self, actor: &Actor, case_id: &str, page: Page) -> Result<Vec<Hunt>> {
        let case = self.case_for_work(actor, case_id, false).await?;
        Ok(self.store.hunts_of_case(&case.id, page).await?)
    }

    pub async fn hunt(&self, actor: &Actor, id: &str) -> Result<Hunt> {
        let hunt = self
            .store
            .hunt(id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("hunt {id}")))?;
        self.case_for_work(actor, &hunt.case_id, false)
            .await
            .map_err(|_| PlatformError::NotFound(format!("hunt {id}")))?;
        Ok(hunt)
    }

    /// Cancels a queued or running hunt; a running one stores nothing more.
    pub async fn cancel_hunt(&self, actor: &Actor, id: &str) -> Result<Hunt> {
        let hunt = self.hunt(actor, id).await?;
        self.case_for_work(actor, &hunt.case_id, true).await?;
        let mut tx = self.store.begin().await?;
        if !tx.cancel_hunt(id, &now()).await? {
            return Err(PlatformError::Conflict(format!(
                "hunt {id} has already ended ({})",
                hunt.status
            )));
        }
        tx.append_audit(&audit::<Hunt>(
            Some(actor),
            "hunt.cancel",
            "hunt",
            id,
            Some(&hunt),
            None,
        ))
        .await?;
        tx.commit().await?;
        self.hunt(actor, id).await
    }

    pub async fn findings(
        &self,
        actor: &Actor,
        case_id: &str,
        page: Page,
    ) -> Result<Vec<StoredFinding>> {
        let case = self.case_for_work(actor, case_id, false).await?;
        let mut findings = self.store.findings_of_case(&case.id, page).await?;
        self.withhold_indicator_hits(actor, &mut findings).await?;
        Ok(findings)
    }

    /// A finding made by an indicator the reader may not see (its TLP does
    /// not reach them) names neither the indicator nor its value: the
    /// event, from the case's own evidence, stays, the intelligence does
    /// not. Applied on every read path of findings.
    pub(crate) async fn withhold_indicator_hits(
        &self,
        actor: &Actor,
        findings: &mut [StoredFinding],
    ) -> Result<()> {
        let mut seen: std::collections::HashMap<String, bool> = Default::default();
        let mut audience = None;
        for f in findings.iter_mut() {
            let Some(id) = f
                .rule_id
                .as_deref()
                .and_then(|r| r.strip_prefix("indicator:"))
                .map(str::to_owned)
            else {
                continue;
            };
            let visible = match seen.get(&id) {
                Some(v) => *v,
                None => {
                    let v = match self.store.indicator(&id).await? {
                        // Not a platform indicator: an imported offline
                        // hunt's, named by its own value.
                        None => true,
                        Some(row) => {
                            if audience.is_none() {
                                audience = Some(self.audience(actor).await?);
                            }
                            let (orgs, users) = self.store.indicator_recipients(&row.id).await?;
                            audience.as_ref().is_some_and(|a| {
                                crate::policy::may_see_indicator(a, &row, &orgs, &users)
                            })
                        }
                    };
                    seen.insert(id.clone(), v);
                    v
                }
            };
            if !visible {
                f.rule_id = Some("indicator:withheld".into());
                f.rule_title =
                    "Indicator match (withheld: its TLP marking does not reach you)".into();
                f.tags = vec!["indicator".into()];
            }
        }
        Ok(())
    }

    /// A responder's verdict on a finding.
    pub async fn triage(
        &self,
        actor: &Actor,
        id: &str,
        verdict: &str,
        comment: Option<String>,
    ) -> Result<StoredFinding> {
        let finding = self
            .store
            .finding(id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("finding {id}")))?;
        self.case_for_work(actor, &finding.case_id, true)
            .await
            .map_err(|e| match e {
                PlatformError::NotFound(_) => PlatformError::NotFound(format!("finding {id}")),
                other => other,
            })?;
        if !VERDICTS.contains(&verdict) {
            return Err(PlatformError::Invalid(format!(
                "verdict {verdict:?} is not one of: {}",
                VERDICTS.join(", ")
            )));
        }
        let mut tx = self.store.begin().await?;
        tx.set_triage(id, verdict, comment.as_deref()).await?;
        tx.append_audit(&audit(
            Some(actor),
            "finding.triage",
            "finding",
            id,
            Some(&serde_json::json!({"triage": finding.triage, "comment": finding.triage_comment})),
            Some(&serde_json::json!({"triage": verdict, "comment": comment})),
        ))
        .await?;
        tx.commit().await?;
        let mut finding = self
            .store
            .finding(id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("finding {id}")))?;
        self.withhold_indicator_hits(actor, std::slice::from_mut(&mut finding))
            .await?;
        Ok(finding)
    }

    /// Works on hunts until `stop` completes: claims one, runs it, stores
    /// its findings, and looks again (every second when idle).
    pub async fn run_worker(
        &self,
        options: &WorkerOptions,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let name = options.name.as_str();
        let lease = options.lease_seconds.max(3);
        tokio::pin!(stop);
        loop {
            let claimed = self
                .store
                .claim_hunt(name, &now(), &timestamp_in(lease))
                .await;
            let idle = match claimed {
                Ok(Some(hunt)) => {
                    let id = hunt.id.clone();
                    if let Err(e) = self.work_on(name, lease, hunt).await {
                        tracing::warn!(hunt = %id, error = %e, "hunt failed");
                    }
                    false
                }
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a hunt failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            } else if futures_now_ready(&mut stop).await {
                return;
            }
        }
    }

    async fn work_on(&self, worker: &str, lease: i64, hunt: Hunt) -> Result<()> {
        let outcome = self.hunt_evidence(worker, lease, &hunt).await;
        let mut tx = self.store.begin().await?;
        match outcome {
            Ok(Some(findings)) => {
                let added = tx.insert_findings(&findings).await? as i64;
                record_sightings(&mut tx, &findings).await?;
                if tx
                    .finish_hunt(&hunt.id, worker, "done", &now(), added, None)
                    .await?
                {
                    tx.append_audit(&audit::<Hunt>(
                        None,
                        "hunt.done",
                        "hunt",
                        &hunt.id,
                        None,
                        None,
                    ))
                    .await?;
                    custody(&mut tx, &hunt, worker, "done").await?;
                    tx.commit().await?;
                }
                // Otherwise cancelled or taken over meanwhile: store nothing.
            }
            Ok(None) => {}
            Err(e) => {
                if tx
                    .finish_hunt(&hunt.id, worker, "failed", &now(), 0, Some(&e.to_string()))
                    .await?
                {
                    custody(&mut tx, &hunt, worker, "failed").await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(())
    }

    /// Runs the engine over the hunt's evidence on the blocking pool while
    /// renewing the lease; `None` when the hunt was cancelled or lost.
    async fn hunt_evidence(
        &self,
        worker: &str,
        lease: i64,
        hunt: &Hunt,
    ) -> Result<Option<Vec<StoredFinding>>> {
        let store = self
            .evidence
            .as_ref()
            .ok_or_else(|| PlatformError::Invalid("this worker has no evidence store".into()))?;
        let mut loader = crrt_hunt::RuleLoader::new().allow_no_rules();
        let mut yara_files = Vec::new();
        let mut sigma_packs = 0;
        for pack in &hunt.rulepack_ids {
            let kind = self.store.rulepack(pack).await?.map(|p| p.kind);
            for (path, text) in self.store.rulepack_files(pack).await? {
                if kind.as_deref() == Some("yara") {
                    yara_files.push((format!("{pack}/{path}"), text));
                } else {
                    loader = loader.yaml(format!("{pack}/{path}"), text);
                }
            }
            sigma_packs += usize::from(kind.as_deref() != Some("yara"));
        }
        let rules = loader
            .load()
            .map_err(|e| PlatformError::Invalid(format!("loading the rules: {e}")))?;
        let yara = if yara_files.is_empty() {
            None
        } else {
            Some(
                tokio::task::spawn_blocking(move || crate::rulepacks::yara_rules(&yara_files))
                    .await
                    .map_err(|e| PlatformError::Invalid(format!("compiling YARA rules: {e}")))??,
            )
        };
        // With YARA packs alone, files are scanned and no events are read.
        let read_events = sigma_packs > 0 || !hunt.indicator_ids.is_empty() || yara.is_none();
        let mut rows = Vec::new();
        for id in &hunt.evidence_ids {
            if let Some(e) = self.store.evidence(id).await? {
                rows.push(e);
            }
        }
        let progress = Arc::new(crrt_hunt::Progress::default());
        // Kept until the hunt ends: from an object store, these are copies
        // (fetching them may outlast a lease, so it runs under one too).
        let hashes: Vec<String> = rows.iter().map(|e| e.sha256.clone()).collect();
        let fetch = store.hunt_copies(&hashes, &progress);
        let Some(copies) = self
            .under_lease(&hunt.id, worker, lease, &progress, fetch)
            .await?
        else {
            return Ok(None);
        };
        let copies = copies?;
        let mut evidence = Vec::new();
        let mut by_path = Vec::new();
        for (e, path) in rows.into_iter().zip(&copies.paths) {
            by_path.push((path.display().to_string(), e.clone()));
            evidence.push(crrt_hunt::Evidence {
                path: path.clone(),
                size: e.size as u64,
            });
        }
        let mut specs = Vec::new();
        for id in &hunt.indicator_ids {
            let Some(i) = self.store.indicator(id).await? else {
                continue;
            };
            let Ok(kind) = i.kind.parse::<crrt_intel::Kind>() else {
                continue;
            };
            specs.push(crrt_hunt::IndicatorSpec {
                id: i.id,
                observable: crrt_intel::Observable {
                    kind,
                    value: i.value,
                },
                tags: i.tags,
            });
        }
        let indicators = crrt_hunt::IndicatorSet::new(specs);
        let running = {
            let progress = Arc::clone(&progress);
            tokio::task::spawn_blocking(move || {
                let mut hunter = crrt_hunt::Hunter::new(&rules)
                    .indicators(&indicators)
                    .read_events(read_events);
                if let Some(yara) = &yara {
                    hunter = hunter.yara(yara, crrt_hunt::YaraLimits::default());
                }
                hunter.run(&evidence, &progress)
            })
        };
        let Some(report) = self
            .under_lease(&hunt.id, worker, lease, &progress, running)
            .await?
        else {
            return Ok(None);
        };
        let report =
            report.map_err(|e| PlatformError::Invalid(format!("the hunt stopped: {e}")))?;
        let created_at = now();
        let findings = report
            .findings
            .into_iter()
            .map(|mut f| {
                let (evidence_id, sha, file) = by_path
                    .iter()
                    .find(|(p, _)| f.evidence_file.starts_with(p.as_str()))
                    .map(|(p, e)| {
                        let member = &f.evidence_file[p.len()..];
                        (
                            Some(e.id.clone()),
                            e.sha256.clone(),
                            format!("{}{member}", e.name),
                        )
                    })
                    .unwrap_or((None, String::new(), f.evidence_file.clone()));
                own_file_name(&mut f, &file);
                let key = format!(
                    "{}\n{sha}\n{file}\n{:?}\n{}\n{}\n{}",
                    hunt.case_id,
                    f.record_id,
                    f.rule_id.as_deref().unwrap_or(&f.rule_title),
                    f.timestamp.map(|t| t.to_string()).unwrap_or_default(),
                    f.event
                );
                StoredFinding {
                    id: hex::encode(&Sha256::digest(key.as_bytes())[..16]),
                    case_id: hunt.case_id.clone(),
                    hunt_id: hunt.id.clone(),
                    evidence_id,
                    evidence_file: file,
                    rule_id: f.rule_id.clone(),
                    rule_title: f.rule_title.clone(),
                    level: f.level.as_str().to_owned(),
                    tags: f.tags.clone(),
                    at: f.timestamp.map(crrt_hunt::format_timestamp),
                    host: f.host.clone(),
                    channel: f.channel.clone(),
                    event_id: f.event_id.map(i64::from),
                    record_id: f.record_id.and_then(|r| i64::try_from(r).ok()),
                    event: f.event,
                    triage: "needs_review".into(),
                    triage_comment: None,
                    created_at: created_at.clone(),
                }
            })
            .collect();
        Ok(Some(findings))
    }

    /// Awaits `work` while renewing the hunt's lease every third of it,
    /// with the progress so far; `None` when the hunt was cancelled or taken
    /// over meanwhile (the engine is told to stop, and `work` to end).
    async fn under_lease<T>(
        &self,
        hunt_id: &str,
        worker: &str,
        lease: i64,
        progress: &crrt_hunt::Progress,
        work: impl std::future::Future<Output = T>,
    ) -> Result<Option<T>> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(Some(done)),
                () = tokio::time::sleep(std::time::Duration::from_secs((lease / 3) as u64)) => {
                    let counts = (
                        progress.records.load(Ordering::Relaxed) as i64,
                        progress.bytes_done.load(Ordering::Relaxed) as i64,
                        progress.bytes_total.load(Ordering::Relaxed) as i64,
                    );
                    if !self.store.renew_hunt(hunt_id, worker, &timestamp_in(lease), counts).await? {
                        progress.cancel();
                        let _ = (&mut work).await;
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// Each piece of evidence a hunt read gets it on its chain of custody.
async fn custody(tx: &mut crrt_store::Tx, hunt: &Hunt, worker: &str, status: &str) -> Result<()> {
    for id in &hunt.evidence_ids {
        tx.append_audit(&audit(
            None,
            "evidence.hunted",
            "evidence",
            id,
            None,
            Some(&serde_json::json!({
                "hunt": hunt.id, "worker": worker, "status": status,
                "requested_by": hunt.requested_by,
            })),
        ))
        .await?;
    }
    Ok(())
}

/// A YARA finding on a stored file names the file as uploaded, not by its
/// place in the evidence store, and has no time: the stored copy's
/// modification time is the upload's, already in the custody log. Members
/// of an uploaded ZIP keep the times the package recorded.
fn own_file_name(finding: &mut crrt_hunt::Finding, name: &str) {
    let is_plain_file = finding
        .rule_id
        .as_deref()
        .is_some_and(|r| r.starts_with("yara:"))
        && !finding.evidence_file.contains("!/");
    if !is_plain_file {
        return;
    }
    if let Some(file) = finding
        .event
        .get_mut("file")
        .and_then(|f| f.as_object_mut())
    {
        file.insert("path".into(), name.into());
        file.remove("modified");
    }
    finding.timestamp = None;
}

/// A finding of an indicator is a sighting of it: counted once per
/// finding (a retried hunt adds none).
async fn record_sightings(tx: &mut crrt_store::Tx, findings: &[StoredFinding]) -> Result<()> {
    let at = now();
    for f in findings {
        let Some(indicator) = f
            .rule_id
            .as_deref()
            .and_then(|r| r.strip_prefix("indicator:"))
        else {
            continue;
        };
        tx.add_sighting(&crrt_store::Sighting {
            id: f.id.clone(),
            indicator_id: indicator.to_owned(),
            case_id: Some(f.case_id.clone()),
            seen_in: match f.record_id {
                Some(r) => format!("{} record {r}", f.evidence_file),
                None => f.evidence_file.clone(),
            },
            at: f.at.clone(),
            recorded_at: at.clone(),
        })
        .await?;
    }
    Ok(())
}

/// Whether `stop` has completed, without waiting for it.
async fn futures_now_ready(
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> bool {
    tokio::select! {
        biased;
        () = stop.as_mut() => true,
        () = std::future::ready(()) => false,
    }
}

/// One line of `crrt hunt --format jsonl`, as a responder brings it back
/// from the field (the importer adds `evidence_sha256` when it could hash
/// the file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFinding {
    timestamp: Option<String>,
    host: Option<String>,
    channel: Option<String>,
    event_id: Option<i64>,
    record_id: Option<i64>,
    rule_id: Option<String>,
    rule_title: String,
    level: String,
    #[serde(default)]
    tags: Vec<String>,
    evidence_file: String,
    event: serde_json::Value,
    #[serde(default)]
    evidence_sha256: Option<String>,
}

/// Most findings one import may carry.
pub const MAX_IMPORTED_FINDINGS: usize = 200_000;

impl Platform {
    /// Imports findings of an offline `crrt hunt` (JSON Lines) into a case:
    /// all or none; each is linked to the case's evidence with the same
    /// SHA-256 when there is one, and the import is recorded as a hunt of
    /// status `imported`, with who and when.
    pub async fn import_findings(&self, actor: &Actor, case_id: &str, jsonl: &str) -> Result<Hunt> {
        let case = self.case_for_work(actor, case_id, true).await?;
        let mut lines = Vec::new();
        for (n, line) in jsonl.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let finding: FieldFinding = serde_json::from_str(line).map_err(|e| {
                PlatformError::Invalid(format!("line {}: not a crrt hunt finding: {e}", n + 1))
            })?;
            if !["informational", "low", "medium", "high", "critical"]
                .contains(&finding.level.as_str())
            {
                return Err(PlatformError::Invalid(format!(
                    "line {}: level {:?} is unknown",
                    n + 1,
                    finding.level
                )));
            }
            lines.push(finding);
            if lines.len() > MAX_IMPORTED_FINDINGS {
                return Err(PlatformError::TooLarge(format!(
                    "an import carries at most {MAX_IMPORTED_FINDINGS} findings"
                )));
            }
        }
        if lines.is_empty() {
            return Err(PlatformError::Invalid("no finding in the upload".into()));
        }
        let at = now();
        let mut hunt = Hunt {
            id: new_id(),
            case_id: case.id.clone(),
            status: "imported".into(),
            rulepack_ids: Vec::new(),
            evidence_ids: Vec::new(),
            requested_by: actor.user.id.clone(),
            created_at: at.clone(),
            started_at: Some(at.clone()),
            finished_at: Some(at.clone()),
            lease_owner: None,
            lease_expires_at: None,
            attempts: 0,
            records_done: 0,
            bytes_done: 0,
            bytes_total: 0,
            n_findings: 0,
            error: None,
            indicator_ids: Vec::new(),
        };
        let mut findings = Vec::with_capacity(lines.len());
        for f in lines {
            let sha = f.evidence_sha256.clone().unwrap_or_default();
            let evidence_id = match &f.evidence_sha256 {
                Some(sha) => self
                    .store
                    .evidence_by_hash(&case.id, sha)
                    .await?
                    .map(|e| e.id),
                None => None,
            };
            let key = format!(
                "{}\n{sha}\n{}\n{:?}\n{}\n{}\n{}",
                case.id,
                f.evidence_file,
                f.record_id,
                f.rule_id.as_deref().unwrap_or(&f.rule_title),
                f.timestamp.clone().unwrap_or_default(),
                f.event
            );
            let mut event = f.event;
            if let (Some(sha), serde_json::Value::Object(map)) = (&f.evidence_sha256, &mut event) {
                map.insert(
                    "_evidence_sha256".into(),
                    serde_json::Value::String(sha.clone()),
                );
            }
            findings.push(StoredFinding {
                id: hex::encode(&Sha256::digest(key.as_bytes())[..16]),
                case_id: case.id.clone(),
                hunt_id: hunt.id.clone(),
                evidence_id,
                evidence_file: f.evidence_file,
                rule_id: f.rule_id,
                rule_title: f.rule_title,
                level: f.level,
                tags: f.tags,
                at: f.timestamp,
                host: f.host,
                channel: f.channel,
                event_id: f.event_id,
                record_id: f.record_id,
                event,
                triage: "needs_review".into(),
                triage_comment: None,
                created_at: at.clone(),
            });
        }
        let mut tx = self.store.begin().await?;
        tx.insert_hunt(&hunt).await?;
        let added = tx.insert_findings(&findings).await? as i64;
        hunt.n_findings = added;
        tx.set_hunt_findings(&hunt.id, added).await?;
        tx.append_audit(&audit(
            Some(actor),
            "findings.import",
            "hunt",
            &hunt.id,
            None,
            Some(&hunt),
        ))
        .await?;
        tx.commit().await?;
        Ok(hunt)
    }
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// When it happened: the event's time for a finding, else when it was
    /// written (notes) or created (tasks).
    pub at: Option<String>,
    /// `finding`, `note` or `task`.
    pub kind: String,
    pub id: String,
    /// The rule's title, the note's first line, the task's title.
    pub title: String,
    /// Level for findings, status for tasks, author for notes.
    pub detail: String,
    pub host: Option<String>,
}

impl Platform {
    /// Findings, notes and tasks of a case in one time line (findings by
    /// the time of their event); at most `limit` findings.
    pub async fn timeline(
        &self,
        actor: &Actor,
        case_id: &str,
        limit: i64,
    ) -> Result<Vec<TimelineEntry>> {
        let case = self.case_for_work(actor, case_id, false).await?;
        let mut findings = self
            .store
            .findings_of_case(&case.id, Page { limit, offset: 0 })
            .await?;
        self.withhold_indicator_hits(actor, &mut findings).await?;
        let mut out: Vec<TimelineEntry> = findings
            .into_iter()
            .map(|f| TimelineEntry {
                at: f.at,
                kind: "finding".into(),
                id: f.id,
                title: f.rule_title,
                detail: f.level,
                host: f.host,
            })
            .collect();
        for note in self
            .store
            .notes(
                &case.id,
                Page {
                    limit: 10_000,
                    offset: 0,
                },
            )
            .await?
        {
            out.push(TimelineEntry {
                at: Some(note.created_at),
                kind: "note".into(),
                id: note.id,
                title: note
                    .markdown
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect(),
                detail: note.author_id,
                host: None,
            });
        }
        for task in self.store.tasks(&case.id).await? {
            out.push(TimelineEntry {
                at: Some(task.created_at),
                kind: "task".into(),
                id: task.id,
                title: task.title,
                detail: task.status,
                host: None,
            });
        }
        // Undated findings last; ties in a stable order.
        out.sort_by(|a, b| {
            (a.at.is_none(), &a.at, &a.kind, &a.id).cmp(&(b.at.is_none(), &b.at, &b.kind, &b.id))
        });
        Ok(out)
    }
}
