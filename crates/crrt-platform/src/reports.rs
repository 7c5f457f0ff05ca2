//! Mission reports: the facts a situation report or the final report
//! shows, gathered for one reader. Rendering (HTML, Markdown, PDF) is the
//! server's; what goes in, and at which TLP, is decided here.
//!
//! Each report is built for its reader: indicators come through the same
//! TLP-filtered query as every other read path, so a report never shows an
//! indicator its reader could not open. The report's marking is the
//! mission's TLP, raised to the strictest indicator it includes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::policy::{self, Action};
use crate::{Actor, Page, Platform, PlatformError, Result, audit, new_id, now};
use crrt_store::{IndicatorFilter, IssuedSitrep, Recommendations};

/// Rows a report lists at most per section (counts stay exact).
pub const REPORT_ROWS: usize = 500;
/// Longest recommendations text.
pub const MAX_RECOMMENDATIONS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// What happened since the last situation report.
    Situation,
    /// The whole mission, for the requester.
    Final,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Situation => "situation",
            ReportKind::Final => "final",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// `situation` or `final`.
    pub kind: String,
    pub mission_id: String,
    pub mission_title: String,
    pub mission_status: String,
    /// The document's marking: `TLP:AMBER`, ...
    pub tlp: String,
    pub generated_at: String,
    /// Who it was generated for (name, organisation).
    pub reader: String,
    /// The period covered (situation reports): from the last one issued,
    /// or the mission's start, to now.
    pub period_from: Option<String>,
    pub period_to: String,
    pub request: RequestPart,
    pub team: Vec<TeamMember>,
    /// ISO country codes of the team's organisations.
    pub member_states: Vec<String>,
    /// Findings other than false positives, by level: `[level, count]`.
    pub findings_by_level: Vec<(String, usize)>,
    pub findings_total: usize,
    pub findings: Vec<FindingLine>,
    pub techniques: Vec<TechniqueGroup>,
    pub indicators: Vec<IndicatorLine>,
    pub alerts: Vec<AlertLine>,
    pub tasks_done: Vec<TaskLine>,
    pub tasks_open: Vec<TaskLine>,
    pub timeline: Vec<TimelineLine>,
    pub recommendations: Option<String>,
    pub evidence: Vec<EvidenceLine>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestPart {
    pub institution: String,
    pub country: String,
    pub summary: String,
    pub symptoms: String,
    pub affected_systems: Vec<String>,
    pub urgency: String,
    pub filed_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TeamMember {
    pub name: String,
    pub organisation: String,
    pub country: String,
    pub role: String,
    pub skills: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FindingLine {
    pub at: Option<String>,
    pub level: String,
    pub rule_title: String,
    pub rule_id: Option<String>,
    pub host: Option<String>,
    pub evidence_file: String,
    pub case_title: String,
    /// `true_positive` or `needs_review`.
    pub triage: String,
    pub techniques: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TechniqueGroup {
    /// `T1059.001`, or `none` for findings without an ATT&CK tag.
    pub technique: String,
    pub findings: usize,
    pub rules: Vec<String>,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IndicatorLine {
    pub kind: String,
    pub value: String,
    pub tlp: String,
    pub source: String,
    pub confidence: Option<i64>,
    pub sightings: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertLine {
    pub target: String,
    pub kind: String,
    pub summary: String,
    pub opened_at: String,
    pub closed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TaskLine {
    pub case_title: String,
    pub title: String,
    pub status: String,
    pub due_on: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineLine {
    pub at: Option<String>,
    /// `finding`, `note`, `task`, `alert`, `evidence`.
    pub kind: String,
    pub title: String,
    pub case_title: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceLine {
    pub case_title: String,
    pub name: String,
    pub size: i64,
    pub sha256: String,
    pub uploaded_by: String,
    pub uploaded_at: String,
}

fn in_period(at: &str, from: Option<&str>, to: &str) -> bool {
    from.is_none_or(|from| at > from) && at <= to
}

impl Platform {
    /// The report of a mission for this reader: anyone who may read the
    /// mission (its team, the coordinators, the institution that asked).
    /// A situation report covers the time since the last one issued, or
    /// since `since` when given.
    pub async fn report(
        &self,
        actor: &Actor,
        mission_id: &str,
        kind: ReportKind,
        since: Option<&str>,
    ) -> Result<Report> {
        let mission = self.mission(actor, mission_id).await?;
        let period_to = now();
        let period_from = match (kind, since) {
            (ReportKind::Final, _) => None,
            (ReportKind::Situation, Some(since)) => {
                // Stored times are fixed-width UTC text: compare like with like.
                let at = since.trim().parse::<jiff::Timestamp>().map_err(|_| {
                    PlatformError::Invalid(format!("since {since:?} is not an RFC 3339 time"))
                })?;
                Some(at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            }
            (ReportKind::Situation, None) => self
                .store
                .sitreps(&mission.mission.id)
                .await?
                .first()
                .map(|s| s.period_to.clone()),
        };
        let from = period_from.as_deref();
        let situation = kind == ReportKind::Situation;
        let request = self
            .store
            .request(&mission.mission.request_id)
            .await?
            .ok_or_else(|| PlatformError::NotFound("the mission's request".into()))?;
        let orgs: BTreeMap<String, (String, String)> = {
            let mut out = BTreeMap::new();
            let mut offset = 0;
            loop {
                let page = self.store.orgs(Page { limit: 500, offset }).await?;
                let n = page.len() as i64;
                out.extend(page.into_iter().map(|o| (o.id, (o.name, o.country))));
                if n < 500 {
                    break out;
                }
                offset += n;
            }
        };
        let org = |id: &str| orgs.get(id).cloned().unwrap_or_default();
        let names = self
            .display_names(
                &mission
                    .team
                    .iter()
                    .map(|u| u.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .await?;
        let team: Vec<TeamMember> = mission
            .team
            .iter()
            .map(|u| {
                let (organisation, country) = org(&u.org_id);
                TeamMember {
                    name: names.get(&u.id).cloned().unwrap_or(u.display_name.clone()),
                    organisation,
                    country,
                    role: u.role.clone(),
                    skills: u.skills.clone(),
                }
            })
            .collect();
        let member_states: Vec<String> = team
            .iter()
            .map(|m| m.country.clone())
            .filter(|c| !c.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();

        let all = Page {
            limit: 100_000,
            offset: 0,
        };
        let cases = self.store.cases(&mission.mission.id, all).await?;
        let mut findings = Vec::new();
        let mut tasks_done = Vec::new();
        let mut tasks_open = Vec::new();
        let mut timeline = Vec::new();
        let mut evidence = Vec::new();
        for case in &cases {
            let mut stored = self.store.findings_of_case(&case.id, all).await?;
            self.withhold_indicator_hits(actor, &mut stored).await?;
            for f in stored {
                if f.triage == "false_positive"
                    || (situation && !in_period(&f.created_at, from, &period_to))
                {
                    continue;
                }
                let techniques: Vec<String> = f
                    .tags
                    .iter()
                    .filter_map(|t| {
                        let rest = t.strip_prefix("attack.t")?;
                        rest.starts_with(|c: char| c.is_ascii_digit())
                            .then(|| format!("T{}", rest.to_ascii_uppercase()))
                    })
                    .collect();
                if !situation {
                    timeline.push(TimelineLine {
                        at: f.at.clone(),
                        kind: "finding".into(),
                        title: format!("{} [{}]", f.rule_title, f.level),
                        case_title: case.title.clone(),
                    });
                }
                findings.push(FindingLine {
                    at: f.at,
                    level: f.level,
                    rule_title: f.rule_title,
                    rule_id: f.rule_id,
                    host: f.host,
                    evidence_file: f.evidence_file,
                    case_title: case.title.clone(),
                    triage: f.triage,
                    techniques,
                });
            }
            for task in self.store.tasks(&case.id).await? {
                let line = TaskLine {
                    case_title: case.title.clone(),
                    title: task.title.clone(),
                    status: task.status.clone(),
                    due_on: task.due_on.clone(),
                    updated_at: task.updated_at.clone(),
                };
                if task.status == "done" {
                    if !situation || in_period(&task.updated_at, from, &period_to) {
                        tasks_done.push(line);
                    }
                } else {
                    tasks_open.push(line);
                }
                if !situation && task.status == "done" {
                    timeline.push(TimelineLine {
                        at: Some(task.updated_at),
                        kind: "task".into(),
                        title: format!("done: {}", task.title),
                        case_title: case.title.clone(),
                    });
                }
            }
            if !situation {
                for note in self.store.notes(&case.id, all).await? {
                    timeline.push(TimelineLine {
                        at: Some(note.created_at),
                        kind: "note".into(),
                        title: note
                            .markdown
                            .lines()
                            .find(|l| !l.trim().is_empty())
                            .unwrap_or_default()
                            .chars()
                            .take(200)
                            .collect(),
                        case_title: case.title.clone(),
                    });
                }
            }
            for e in self.store.evidence_of_case(&case.id, all).await? {
                if !situation {
                    timeline.push(TimelineLine {
                        at: Some(e.uploaded_at.clone()),
                        kind: "evidence".into(),
                        title: format!("evidence received: {}", e.name),
                        case_title: case.title.clone(),
                    });
                }
                evidence.push(EvidenceLine {
                    case_title: case.title.clone(),
                    name: e.name,
                    size: e.size,
                    sha256: e.sha256,
                    uploaded_by: e.uploaded_by,
                    uploaded_at: e.uploaded_at,
                });
            }
        }
        let uploaders = self
            .display_names(
                &evidence
                    .iter()
                    .map(|e| e.uploaded_by.as_str())
                    .collect::<Vec<_>>(),
            )
            .await?;
        for line in &mut evidence {
            if let Some(name) = uploaders.get(&line.uploaded_by) {
                line.uploaded_by = name.clone();
            }
        }

        let targets: BTreeMap<String, String> = self
            .store
            .watch_targets(&mission.mission.id)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        let mut alerts = Vec::new();
        for a in self
            .store
            .watch_alerts(&mission.mission.id, true, 10_000)
            .await?
        {
            let touched = in_period(&a.opened_at, from, &period_to)
                || a.closed_at
                    .as_deref()
                    .is_some_and(|c| in_period(c, from, &period_to));
            if situation && !touched && a.closed_at.is_some() {
                continue;
            }
            if !situation {
                timeline.push(TimelineLine {
                    at: Some(a.opened_at.clone()),
                    kind: "alert".into(),
                    title: format!("website alert: {}", a.summary),
                    case_title: String::new(),
                });
            }
            alerts.push(AlertLine {
                target: targets.get(&a.target_id).cloned().unwrap_or_default(),
                kind: a.kind,
                summary: a.summary,
                opened_at: a.opened_at,
                closed_at: a.closed_at,
            });
        }

        // Indicators through the TLP-filtered read path, as any other read.
        let views = self
            .indicators(
                actor,
                &IndicatorFilter {
                    mission_id: Some(mission.mission.id.clone()),
                    ..IndicatorFilter::default()
                },
                Page {
                    limit: REPORT_ROWS as i64 * 10,
                    offset: 0,
                },
            )
            .await?;
        let mut marking: crrt_intel::Tlp = request.tlp.parse().unwrap_or(crrt_intel::Tlp::Amber);
        let mut indicators = Vec::new();
        for v in views {
            let i = v.indicator;
            if situation && !in_period(&i.created_at, from, &period_to) {
                continue;
            }
            if let Ok(tlp) = i.tlp.parse::<crrt_intel::Tlp>() {
                marking = marking.max(tlp);
            }
            indicators.push(IndicatorLine {
                kind: i.kind,
                value: i.value,
                tlp: i.tlp,
                source: v.source,
                confidence: i.confidence,
                sightings: i.sightings,
                created_at: i.created_at,
            });
        }
        indicators.sort_by(|a, b| (&a.kind, &a.value).cmp(&(&b.kind, &b.value)));

        findings.sort_by(|a, b| {
            (a.at.is_none(), &a.at, &a.rule_title).cmp(&(b.at.is_none(), &b.at, &b.rule_title))
        });
        let findings_total = findings.len();
        let mut by_level: BTreeMap<u8, (String, usize)> = BTreeMap::new();
        let mut techniques: BTreeMap<String, (usize, BTreeSet<String>, BTreeSet<String>)> =
            BTreeMap::new();
        for f in &findings {
            let rank = match f.level.as_str() {
                "critical" => 0,
                "high" => 1,
                "medium" => 2,
                "low" => 3,
                _ => 4,
            };
            by_level.entry(rank).or_insert((f.level.clone(), 0)).1 += 1;
            let keys = if f.techniques.is_empty() {
                vec!["none".to_owned()]
            } else {
                f.techniques.clone()
            };
            for key in keys {
                let entry = techniques.entry(key).or_default();
                entry.0 += 1;
                entry.1.insert(f.rule_title.clone());
                if let Some(host) = &f.host {
                    entry.2.insert(host.clone());
                }
            }
        }
        let mut techniques: Vec<TechniqueGroup> = techniques
            .into_iter()
            .map(|(technique, (n, rules, hosts))| TechniqueGroup {
                technique,
                findings: n,
                rules: rules.into_iter().collect(),
                hosts: hosts.into_iter().collect(),
            })
            .collect();
        // Tagged techniques first, most findings first.
        techniques.sort_by(|a, b| {
            (
                a.technique == "none",
                std::cmp::Reverse(a.findings),
                &a.technique,
            )
                .cmp(&(
                    b.technique == "none",
                    std::cmp::Reverse(b.findings),
                    &b.technique,
                ))
        });
        findings.truncate(REPORT_ROWS);
        timeline.sort_by(|a, b| (a.at.is_none(), &a.at).cmp(&(b.at.is_none(), &b.at)));
        timeline.truncate(REPORT_ROWS);
        evidence.sort_by(|a, b| (&a.case_title, &a.name).cmp(&(&b.case_title, &b.name)));

        let (institution, country) = org(&request.org_id);
        let (reader_org, _) = org(actor.org_id());
        Ok(Report {
            kind: kind.as_str().into(),
            mission_id: mission.mission.id.clone(),
            mission_title: mission.mission.title.clone(),
            mission_status: mission.mission.status.clone(),
            tlp: marking.label(),
            generated_at: period_to.clone(),
            reader: format!("{} ({reader_org})", actor.user.display_name),
            period_from: if situation {
                period_from.or_else(|| Some(mission.mission.created_at.clone()))
            } else {
                None
            },
            period_to,
            request: RequestPart {
                institution,
                country,
                summary: request.summary,
                symptoms: request.symptoms,
                affected_systems: request.affected_systems,
                urgency: request.urgency,
                filed_at: request.created_at,
            },
            team,
            member_states,
            findings_by_level: by_level.into_values().collect(),
            findings_total,
            findings,
            techniques,
            indicators,
            alerts,
            tasks_done,
            tasks_open,
            timeline,
            recommendations: self
                .store
                .recommendations(&mission.mission.id)
                .await?
                .map(|r| r.markdown)
                .filter(|m| !m.trim().is_empty()),
            evidence,
        })
    }

    /// Issues the situation report: the period it covers is recorded, so
    /// the next one starts where this one ends. The team does this.
    pub async fn issue_sitrep(&self, actor: &Actor, mission_id: &str) -> Result<Report> {
        let mission = self.mission_for_work(actor, mission_id, true).await?;
        let report = self
            .report(actor, &mission.id, ReportKind::Situation, None)
            .await?;
        let sitrep = IssuedSitrep {
            id: new_id(),
            mission_id: mission.id.clone(),
            period_from: report.period_from.clone(),
            period_to: report.period_to.clone(),
            issued_by: actor.user.id.clone(),
            issued_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_sitrep(&sitrep).await?;
        tx.append_audit(&audit(
            Some(actor),
            "report.sitrep",
            "mission",
            &mission.id,
            None,
            Some(&sitrep),
        ))
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    pub async fn sitreps(&self, actor: &Actor, mission_id: &str) -> Result<Vec<IssuedSitrep>> {
        let mission = self.mission(actor, mission_id).await?;
        Ok(self.store.sitreps(&mission.mission.id).await?)
    }

    pub async fn recommendations(
        &self,
        actor: &Actor,
        mission_id: &str,
    ) -> Result<Option<Recommendations>> {
        let mission = self.mission(actor, mission_id).await?;
        Ok(self.store.recommendations(&mission.mission.id).await?)
    }

    /// The team writes the final report's recommendations (Markdown).
    pub async fn set_recommendations(
        &self,
        actor: &Actor,
        mission_id: &str,
        markdown: &str,
    ) -> Result<Recommendations> {
        let mission = self.mission_for_work(actor, mission_id, true).await?;
        policy::require(
            actor,
            Action::WorkOnMission {
                mission: &mission,
                member: self
                    .store
                    .is_mission_member(&mission.id, &actor.user.id)
                    .await?,
            },
        )?;
        if markdown.len() > MAX_RECOMMENDATIONS {
            return Err(PlatformError::TooLarge(format!(
                "recommendations are limited to {MAX_RECOMMENDATIONS} bytes"
            )));
        }
        let before = self.store.recommendations(&mission.id).await?;
        let after = Recommendations {
            mission_id: mission.id.clone(),
            markdown: markdown.to_owned(),
            updated_by: actor.user.id.clone(),
            updated_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.set_recommendations(&after).await?;
        tx.append_audit(&audit(
            Some(actor),
            "report.recommendations",
            "mission",
            &mission.id,
            before.as_ref(),
            Some(&after),
        ))
        .await?;
        tx.commit().await?;
        Ok(after)
    }
}
