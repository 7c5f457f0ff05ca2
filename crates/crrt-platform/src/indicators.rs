//! Indicators shared between nations: entry (one, pasted lists, CSV, STIX
//! bundles, MISP events), reads filtered by TLP on every path (lists,
//! search, counts, one by id, exports), changes by their source, links to
//! missions and cases, and values promoted from findings.

use std::collections::HashMap;

use crrt_intel::{Kind, Observable, Problem, Tlp};
use crrt_store::{Audience, IndicatorFilter, StoredIndicator};
use serde::{Deserialize, Serialize};

use crate::policy::{self, Action};
use crate::{Actor, Page, Platform, PlatformError, Result, audit, new_uuid_id, now};

/// Most indicators one import or export carries.
pub const MAX_BATCH: usize = 100_000;

/// What a person fills in for one indicator, and what lists and imports
/// share for all of theirs.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIndicator {
    /// `ipv4`, `domain`, `sha256`, ...; detected from the value when absent.
    #[serde(default)]
    pub kind: Option<String>,
    pub value: String,
    pub tlp: Tlp,
    #[serde(default)]
    pub confidence: Option<u8>,
    /// ATT&CK technique ids (`T1485`), `malware:NAME`, free labels.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub first_seen: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Link to a case (and its mission) the actor works on.
    #[serde(default)]
    pub case_id: Option<String>,
    /// Link to a mission the actor works on.
    #[serde(default)]
    pub mission_id: Option<String>,
    /// TLP:AMBER: the organisations (by name) it may also reach.
    #[serde(default)]
    pub recipient_orgs: Vec<String>,
    /// TLP:RED: the people (by e-mail) it may reach.
    #[serde(default)]
    pub recipient_users: Vec<String>,
}

/// Shared settings for a batch (pasted list or file import).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// The level of entries that do not carry their own.
    pub tlp: Tlp,
    #[serde(default)]
    pub confidence: Option<u8>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub case_id: Option<String>,
    #[serde(default)]
    pub mission_id: Option<String>,
    #[serde(default)]
    pub recipient_orgs: Vec<String>,
    #[serde(default)]
    pub recipient_users: Vec<String>,
}

/// An indicator as a reader sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IndicatorView {
    #[serde(flatten)]
    pub indicator: StoredIndicator,
    /// The source organisation's name.
    pub source: String,
    /// Named recipients: shown to the source organisation only.
    pub recipient_orgs: Vec<String>,
    pub recipient_users: Vec<String>,
    /// Missions and cases it is linked to, of those the reader may see.
    pub links: Vec<IndicatorLink>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IndicatorLink {
    pub mission_id: String,
    pub case_id: Option<String>,
}

/// What a batch did: all of it stored, or nothing (`refused`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub format: String,
    /// New indicators stored.
    pub imported: usize,
    /// Values this organisation had already shared (left as they were).
    pub already_known: usize,
    /// Entries that could not be used, with their position.
    pub problems: Vec<Problem>,
    /// `true` when the problems refused the whole input (pasted lists and
    /// CSV are all or none); STIX and MISP import the valid rest.
    pub refused: bool,
}

/// Which format an import is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Stix,
    Misp,
    Csv,
    /// One value per line.
    Text,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Stix => "stix",
            Format::Misp => "misp",
            Format::Csv => "csv",
            Format::Text => "text",
        }
    }
}

/// Changes by the source; absent fields stay.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicatorUpdate {
    pub version: i64,
    #[serde(default)]
    pub tlp: Option<Tlp>,
    #[serde(default)]
    pub confidence: Option<u8>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub recipient_orgs: Option<Vec<String>>,
    #[serde(default)]
    pub recipient_users: Option<Vec<String>>,
}

fn time(what: &str, value: Option<&str>) -> Result<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = value.parse::<jiff::Timestamp>() {
        return Ok(Some(t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()));
    }
    if let Ok(d) = value.parse::<jiff::civil::Date>() {
        return Ok(Some(format!("{d}T00:00:00.000000Z")));
    }
    Err(PlatformError::Invalid(format!(
        "{what} {value:?} is not a date (YYYY-MM-DD) or time (RFC 3339)"
    )))
}

fn confidence(c: Option<u8>) -> Result<Option<i64>> {
    match c {
        Some(c) if c > 100 => Err(PlatformError::Invalid(format!(
            "confidence {c} is not 0 to 100"
        ))),
        c => Ok(c.map(i64::from)),
    }
}

fn clean_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() {
            continue;
        }
        if tag.len() > 200 {
            return Err(PlatformError::Invalid("a tag is over 200 bytes".into()));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

/// Named recipients, resolved and checked against the level.
struct Recipients {
    orgs: Vec<String>,
    users: Vec<String>,
}

/// One indicator ready to store, with where it came from in the input.
struct Pending {
    observable: Observable,
    tlp: Tlp,
    confidence: Option<i64>,
    first_seen: Option<String>,
    expires_at: Option<String>,
    tags: Vec<String>,
    description: Option<String>,
}

impl Platform {
    async fn org_kind(&self, actor: &Actor) -> Result<String> {
        Ok(self
            .store
            .org(actor.org_id())
            .await?
            .map(|o| o.kind)
            .unwrap_or_default())
    }

    /// The reader, as the store's TLP filter needs it.
    pub async fn audience(&self, actor: &Actor) -> Result<Audience> {
        let kind = self.org_kind(actor).await?;
        Ok(policy::indicator_audience(actor, &kind))
    }

    async fn recipients(&self, tlp: Tlp, orgs: &[String], users: &[String]) -> Result<Recipients> {
        let orgs: Vec<&String> = orgs.iter().filter(|o| !o.trim().is_empty()).collect();
        let users: Vec<&String> = users.iter().filter(|u| !u.trim().is_empty()).collect();
        if !orgs.is_empty() && tlp != Tlp::Amber {
            return Err(PlatformError::Invalid(
                "recipient organisations apply to TLP:AMBER only".into(),
            ));
        }
        if !users.is_empty() && tlp != Tlp::Red {
            return Err(PlatformError::Invalid(
                "named recipients (people) apply to TLP:RED only".into(),
            ));
        }
        let mut out = Recipients {
            orgs: Vec::new(),
            users: Vec::new(),
        };
        for name in orgs {
            let org =
                self.store.org_by_name(name.trim()).await?.ok_or_else(|| {
                    PlatformError::Invalid(format!("no organisation named {name:?}"))
                })?;
            out.orgs.push(org.id);
        }
        for email in users {
            let user = self
                .store
                .user_by_email(&email.trim().to_ascii_lowercase())
                .await?
                .ok_or_else(|| PlatformError::Invalid(format!("no user {email:?}")))?;
            out.users.push(user.id);
        }
        Ok(out)
    }

    /// The mission (and case) a new indicator links to; the actor must
    /// work on it.
    async fn link_target(
        &self,
        actor: &Actor,
        case_id: Option<&str>,
        mission_id: Option<&str>,
    ) -> Result<Option<(String, Option<String>)>> {
        if let Some(case_id) = case_id.filter(|c| !c.is_empty()) {
            let case = self.case_for_work(actor, case_id, true).await?;
            return Ok(Some((case.mission_id, Some(case.id))));
        }
        if let Some(mission_id) = mission_id.filter(|m| !m.is_empty()) {
            let view = self.mission(actor, mission_id).await?;
            let member = view.team.iter().any(|u| u.id == actor.user.id);
            policy::require(
                actor,
                Action::WorkOnMission {
                    mission: &view.mission,
                    member,
                },
            )?;
            return Ok(Some((view.mission.id, None)));
        }
        Ok(None)
    }

    /// Shares one indicator. The same value already shared by this
    /// organisation is a conflict naming it.
    pub async fn share_indicator(&self, actor: &Actor, new: NewIndicator) -> Result<IndicatorView> {
        policy::require(actor, Action::ShareIndicator)?;
        let kind = new
            .kind
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(str::parse::<Kind>)
            .transpose()?;
        let observable = Observable::parse(kind, &new.value)?;
        let pending = Pending {
            observable,
            tlp: new.tlp,
            confidence: confidence(new.confidence)?,
            first_seen: time("first_seen", new.first_seen.as_deref())?,
            expires_at: time("expires_at", new.expires_at.as_deref())?,
            tags: clean_tags(&new.tags)?,
            description: new
                .description
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty()),
        };
        let recipients = self
            .recipients(new.tlp, &new.recipient_orgs, &new.recipient_users)
            .await?;
        let link = self
            .link_target(actor, new.case_id.as_deref(), new.mission_id.as_deref())
            .await?;
        let existing = self
            .store
            .indicators_with_value(pending.observable.kind.as_str(), &pending.observable.value)
            .await?
            .into_iter()
            .find(|i| i.source_org_id == actor.org_id());
        if let Some(existing) = existing {
            return Err(PlatformError::Conflict(format!(
                "your organisation already shares {} {} as indicator {}",
                existing.kind, existing.value, existing.id
            )));
        }
        let mut tx = self.store.begin().await?;
        let stored = self
            .store_pending(&mut tx, actor, &pending, &recipients, link.as_ref())
            .await?;
        tx.commit().await?;
        self.view_of(actor, stored).await
    }

    async fn store_pending(
        &self,
        tx: &mut crrt_store::Tx,
        actor: &Actor,
        p: &Pending,
        recipients: &Recipients,
        link: Option<&(String, Option<String>)>,
    ) -> Result<StoredIndicator> {
        let at = now();
        let indicator = StoredIndicator {
            id: new_uuid_id(),
            kind: p.observable.kind.as_str().to_owned(),
            value: p.observable.value.clone(),
            tlp: p.tlp.as_str().to_owned(),
            source_org_id: actor.org_id().to_owned(),
            created_by: actor.user.id.clone(),
            confidence: p.confidence,
            first_seen: p.first_seen.clone(),
            last_seen: None,
            expires_at: p.expires_at.clone(),
            tags: p.tags.clone(),
            description: p.description.clone(),
            sightings: 0,
            version: 1,
            created_at: at.clone(),
            updated_at: at,
        };
        tx.insert_indicator(&indicator).await?;
        tx.set_indicator_recipients(&indicator.id, &recipients.orgs, &recipients.users)
            .await?;
        if let Some((mission, case)) = link {
            tx.link_indicator(&indicator.id, mission, case.as_deref())
                .await?;
        }
        tx.append_audit(&audit(
            Some(actor),
            "indicator.share",
            "indicator",
            &indicator.id,
            None,
            Some(&indicator),
        ))
        .await?;
        Ok(indicator)
    }

    /// A pasted list, a CSV file, a STIX bundle or a MISP event, in one
    /// transaction. Lists and CSV are all or none; STIX and MISP store
    /// the valid rest and report what they skipped.
    pub async fn import_indicators(
        &self,
        actor: &Actor,
        format: Format,
        bytes: &[u8],
        settings: BatchSettings,
    ) -> Result<ImportReport> {
        policy::require(actor, Action::ShareIndicator)?;
        let base_confidence = confidence(settings.confidence)?;
        let base_tags = clean_tags(&settings.tags)?;
        let text = || {
            std::str::from_utf8(bytes).map_err(|_| {
                PlatformError::Invalid(format!("the {} input is not UTF-8 text", format.as_str()))
            })
        };
        let mut report = ImportReport {
            format: format.as_str().into(),
            imported: 0,
            already_known: 0,
            problems: Vec::new(),
            refused: false,
        };
        let from = |o: Observable| Pending {
            observable: o,
            tlp: settings.tlp,
            confidence: base_confidence,
            first_seen: None,
            expires_at: None,
            tags: base_tags.clone(),
            description: None,
        };
        let mut pending: Vec<Pending> = match format {
            Format::Text => match crrt_intel::bulk::parse(text()?) {
                Ok(values) => values.into_iter().map(from).collect(),
                Err(problems) => {
                    report.problems = problems;
                    report.refused = true;
                    return Ok(report);
                }
            },
            Format::Csv => match crrt_intel::csv_rows::parse(bytes) {
                Ok(rows) => {
                    self.incoming(rows, &settings, base_confidence, &base_tags, &mut report)?
                }
                Err(problems) => {
                    report.problems = problems;
                    report.refused = true;
                    return Ok(report);
                }
            },
            Format::Stix | Format::Misp => {
                let (rows, problems) = if format == Format::Stix {
                    crrt_intel::stix::import_bundle(bytes)?
                } else {
                    crrt_intel::misp::import_event(bytes)?
                };
                report.problems = problems;
                self.incoming(rows, &settings, base_confidence, &base_tags, &mut report)?
            }
        };
        if pending.len() > MAX_BATCH {
            return Err(PlatformError::TooLarge(format!(
                "an import carries at most {MAX_BATCH} indicators"
            )));
        }
        // The same value twice in one input is one indicator.
        pending.sort_by(|a, b| a.observable.cmp(&b.observable));
        pending.dedup_by(|a, b| a.observable == b.observable);
        let recipients = self
            .recipients(
                settings.tlp,
                &settings.recipient_orgs,
                &settings.recipient_users,
            )
            .await?;
        let link = self
            .link_target(
                actor,
                settings.case_id.as_deref(),
                settings.mission_id.as_deref(),
            )
            .await?;
        let mut tx = self.store.begin().await?;
        for p in &pending {
            let known = self
                .store
                .indicators_with_value(p.observable.kind.as_str(), &p.observable.value)
                .await?
                .into_iter()
                .any(|i| i.source_org_id == actor.org_id());
            if known {
                report.already_known += 1;
                continue;
            }
            // Recipients follow the batch's level; entries with their own
            // level get none (AMBER then reaches the source only).
            let own = if p.tlp == settings.tlp {
                &recipients
            } else {
                &Recipients {
                    orgs: Vec::new(),
                    users: Vec::new(),
                }
            };
            self.store_pending(&mut tx, actor, p, own, link.as_ref())
                .await?;
            report.imported += 1;
        }
        tx.commit().await?;
        Ok(report)
    }

    fn incoming(
        &self,
        rows: Vec<crrt_intel::stix::Incoming>,
        settings: &BatchSettings,
        base_confidence: Option<i64>,
        base_tags: &[String],
        report: &mut ImportReport,
    ) -> Result<Vec<Pending>> {
        let mut out = Vec::new();
        for (n, row) in rows.into_iter().enumerate() {
            let mut tags = base_tags.to_vec();
            tags.extend(row.tags);
            let dated = (|| -> Result<(Option<String>, Option<String>)> {
                Ok((
                    time("first_seen", row.first_seen.as_deref())?,
                    time("expires_at", row.expires_at.as_deref())?,
                ))
            })();
            let (first_seen, expires_at) = match dated {
                Ok(d) => d,
                Err(e) => {
                    report.problems.push(Problem {
                        position: format!("entry {}", n + 1),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            out.push(Pending {
                observable: row.observable,
                tlp: row.tlp.unwrap_or(settings.tlp),
                confidence: row.confidence.map(i64::from).or(base_confidence),
                first_seen,
                expires_at,
                tags: clean_tags(&tags)?,
                description: row
                    .description
                    .or(row.source.map(|s| format!("Source: {s}"))),
            });
        }
        Ok(out)
    }

    /// Indicators the actor may see, newest change first.
    pub async fn indicators(
        &self,
        actor: &Actor,
        filter: &IndicatorFilter,
        page: Page,
    ) -> Result<Vec<IndicatorView>> {
        let audience = self.audience(actor).await?;
        let rows = self
            .store
            .visible_indicators(&audience, filter, page)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view_of(actor, row).await?);
        }
        Ok(out)
    }

    /// How many the actor may see, by the same filter.
    pub async fn count_indicators(&self, actor: &Actor, filter: &IndicatorFilter) -> Result<i64> {
        let audience = self.audience(actor).await?;
        Ok(self
            .store
            .count_visible_indicators(&audience, filter)
            .await?)
    }

    /// One indicator, or "not found" when the actor may not see it.
    pub async fn indicator(&self, actor: &Actor, id: &str) -> Result<IndicatorView> {
        let not_found = || PlatformError::NotFound(format!("indicator {id}"));
        let row = self.store.indicator(id).await?.ok_or_else(not_found)?;
        let audience = self.audience(actor).await?;
        let (orgs, users) = self.store.indicator_recipients(&row.id).await?;
        if !policy::may_see_indicator(&audience, &row, &orgs, &users) {
            return Err(not_found());
        }
        self.view_of(actor, row).await
    }

    async fn view_of(&self, actor: &Actor, indicator: StoredIndicator) -> Result<IndicatorView> {
        let source = self
            .store
            .org(&indicator.source_org_id)
            .await?
            .map_or_else(|| indicator.source_org_id.clone(), |o| o.name);
        let (mut orgs, mut users) = (Vec::new(), Vec::new());
        if indicator.source_org_id == actor.org_id() {
            let (org_ids, user_ids) = self.store.indicator_recipients(&indicator.id).await?;
            for id in org_ids {
                if let Some(org) = self.store.org(&id).await? {
                    orgs.push(org.name);
                }
            }
            for id in user_ids {
                if let Some(user) = self.store.user(&id).await? {
                    users.push(user.email);
                }
            }
        }
        let mut links = Vec::new();
        for (mission_id, case_id) in self.store.indicator_links(&indicator.id).await? {
            if self.mission(actor, &mission_id).await.is_ok() {
                links.push(IndicatorLink {
                    mission_id,
                    case_id,
                });
            }
        }
        Ok(IndicatorView {
            indicator,
            source,
            recipient_orgs: orgs,
            recipient_users: users,
            links,
        })
    }

    /// Changes by the source organisation.
    pub async fn update_indicator(
        &self,
        actor: &Actor,
        id: &str,
        update: IndicatorUpdate,
    ) -> Result<IndicatorView> {
        let before = self.indicator(actor, id).await?.indicator;
        policy::require(actor, Action::ChangeIndicator(&before))?;
        if before.version != update.version {
            return Err(PlatformError::Conflict(format!(
                "indicator {id} is at version {}, not {}; reload it and try again",
                before.version, update.version
            )));
        }
        let mut after = before.clone();
        let tlp = match update.tlp {
            Some(tlp) => tlp,
            None => before.tlp.parse()?,
        };
        after.tlp = tlp.as_str().to_owned();
        if let Some(c) = update.confidence {
            after.confidence = confidence(Some(c))?;
        }
        if let Some(e) = update.expires_at.as_deref() {
            after.expires_at = time("expires_at", Some(e))?;
        }
        if let Some(tags) = &update.tags {
            after.tags = clean_tags(tags)?;
        }
        if let Some(d) = update.description {
            after.description = Some(d.trim().to_owned()).filter(|d| !d.is_empty());
        }
        // Recipients are left as they are (including "the member-state
        // teams" as a group) unless the change names new ones or the level.
        let recipients = match (update.recipient_orgs, update.recipient_users) {
            (None, None) if tlp.as_str() == before.tlp => None,
            (orgs, users) => Some(
                self.recipients(tlp, &orgs.unwrap_or_default(), &users.unwrap_or_default())
                    .await?,
            ),
        };
        after.version += 1;
        after.updated_at = now();
        let mut tx = self.store.begin().await?;
        tx.update_indicator(&after).await?;
        if let Some(recipients) = &recipients {
            tx.set_indicator_recipients(id, &recipients.orgs, &recipients.users)
                .await?;
        }
        tx.append_audit(&audit(
            Some(actor),
            "indicator.update",
            "indicator",
            id,
            Some(&before),
            Some(&after),
        ))
        .await?;
        tx.commit().await?;
        self.view_of(actor, after).await
    }

    /// What the exports carry: everything the actor may see under the
    /// filter, as the formats crate needs it.
    async fn exportable(
        &self,
        actor: &Actor,
        filter: &IndicatorFilter,
    ) -> Result<Vec<crrt_intel::Indicator>> {
        let audience = self.audience(actor).await?;
        let mut names: HashMap<String, String> = HashMap::new();
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let rows = self
                .store
                .visible_indicators(
                    &audience,
                    filter,
                    Page {
                        limit: 1000,
                        offset,
                    },
                )
                .await?;
            let n = rows.len() as i64;
            for row in rows {
                if !names.contains_key(&row.source_org_id) {
                    let name = self
                        .store
                        .org(&row.source_org_id)
                        .await?
                        .map_or_else(|| row.source_org_id.clone(), |o| o.name);
                    names.insert(row.source_org_id.clone(), name);
                }
                let kind: Kind = row.kind.parse()?;
                out.push(crrt_intel::Indicator {
                    source: names[&row.source_org_id].clone(),
                    observable: Observable {
                        kind,
                        value: row.value,
                    },
                    tlp: row.tlp.parse()?,
                    id: row.id,
                    confidence: row.confidence.map(|c| c.clamp(0, 100) as u8),
                    first_seen: row.first_seen,
                    last_seen: row.last_seen,
                    expires_at: row.expires_at,
                    tags: row.tags,
                    description: row.description,
                    sightings: row.sightings,
                    created_at: row.created_at,
                    modified_at: row.updated_at,
                });
                if out.len() > MAX_BATCH {
                    return Err(PlatformError::TooLarge(format!(
                        "an export carries at most {MAX_BATCH} indicators; narrow it by mission, case, type or level"
                    )));
                }
            }
            if n < 1000 {
                return Ok(out);
            }
            offset += n;
        }
    }

    /// A STIX 2.1 bundle of what the actor may see under the filter.
    pub async fn export_stix(
        &self,
        actor: &Actor,
        filter: &IndicatorFilter,
    ) -> Result<serde_json::Value> {
        let indicators = self.exportable(actor, filter).await?;
        Ok(crrt_intel::stix::export_bundle(&indicators, "CRRT", &now()))
    }

    /// A MISP event of what the actor may see under the filter.
    pub async fn export_misp(
        &self,
        actor: &Actor,
        filter: &IndicatorFilter,
        info: &str,
    ) -> Result<serde_json::Value> {
        let indicators = self.exportable(actor, filter).await?;
        let at = now();
        let uuid = crrt_intel::stix::stix_id("event", &format!("{at}{}", actor.user.id));
        Ok(crrt_intel::misp::export_event(
            &indicators,
            info,
            &at,
            uuid.trim_start_matches("event--"),
        ))
    }

    /// Shares a value seen in a finding as an indicator on its case.
    pub async fn promote_finding_value(
        &self,
        actor: &Actor,
        finding_id: &str,
        mut new: NewIndicator,
    ) -> Result<IndicatorView> {
        let mut finding = self
            .store
            .finding(finding_id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("finding {finding_id}")))?;
        self.withhold_indicator_hits(actor, std::slice::from_mut(&mut finding))
            .await?;
        self.case_for_work(actor, &finding.case_id, true)
            .await
            .map_err(|e| match e {
                PlatformError::NotFound(_) => {
                    PlatformError::NotFound(format!("finding {finding_id}"))
                }
                other => other,
            })?;
        new.case_id = Some(finding.case_id.clone());
        new.mission_id = None;
        if new.description.is_none() {
            new.description = Some(format!(
                "Seen in {} (rule: {})",
                finding.evidence_file, finding.rule_title
            ));
        }
        self.share_indicator(actor, new).await
    }
}
