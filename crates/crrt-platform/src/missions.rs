//! Activation and missions: the council's positions on a request under
//! review, the clock from request to decision to team (the team promises to
//! deploy within 72 hours), the mission a positive decision opens, its
//! pre-deployment checklist, the proposed team, and its states.

use serde::{Deserialize, Serialize};

use crate::policy::{self, Action};
use crate::{
    Actor, AssistanceRequest, Page, Platform, PlatformError, Result, Role, User, audit, new_id, now,
};
pub use crrt_store::{Checklist, CouncilPosition, Mission, MissionScope};

/// Hours within which the team promises to deploy once asked.
pub const DEPLOYMENT_PROMISE_HOURS: i64 = 72;

/// A member state's position in the activation council.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Agree,
    Abstain,
    Object,
}

impl Position {
    fn as_str(self) -> &'static str {
        match self {
            Position::Agree => "agree",
            Position::Abstain => "abstain",
            Position::Object => "object",
        }
    }
}

/// Where a mission is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissionStatus {
    Forming,
    Active,
    Demobilised,
    Closed,
}

impl MissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MissionStatus::Forming => "forming",
            MissionStatus::Active => "active",
            MissionStatus::Demobilised => "demobilised",
            MissionStatus::Closed => "closed",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "forming" => MissionStatus::Forming,
            "active" => MissionStatus::Active,
            "demobilised" => MissionStatus::Demobilised,
            "closed" => MissionStatus::Closed,
            other => {
                return Err(PlatformError::Invalid(format!(
                    "stored mission status {other:?} is unknown"
                )));
            }
        })
    }

    fn can_become(self, next: MissionStatus) -> bool {
        use MissionStatus::*;
        matches!(
            (self, next),
            (Forming, Active) | (Active, Demobilised) | (Demobilised, Closed)
        )
    }
}

/// The activation clock: request, decision, team confirmed, against the
/// 72-hour promise.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Clock {
    pub requested_at: String,
    pub decided_at: Option<String>,
    pub team_confirmed_at: Option<String>,
    /// `requested_at` plus 72 hours.
    pub deploy_by: String,
    pub hours_to_decision: Option<f64>,
    pub hours_to_team: Option<f64>,
    /// Whether the team was confirmed within the promise; `None` until it is.
    pub within_promise: Option<bool>,
}

impl Clock {
    pub fn of(request: &AssistanceRequest, mission: Option<&Mission>) -> Clock {
        let parse = |t: &str| t.parse::<jiff::Timestamp>().ok();
        let requested = parse(&request.created_at);
        let hours = |later: Option<&String>| {
            let (start, end) = (requested?, parse(later?)?);
            Some(((end - start).get_seconds() as f64 / 36.0).round() / 100.0)
        };
        let team = mission.and_then(|m| m.team_confirmed_at.clone());
        let hours_to_team = hours(team.as_ref());
        Clock {
            requested_at: request.created_at.clone(),
            decided_at: request.decided_at.clone(),
            deploy_by: requested
                .map(|t| {
                    (t + jiff::SignedDuration::from_hours(DEPLOYMENT_PROMISE_HOURS))
                        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
                        .to_string()
                })
                .unwrap_or_default(),
            hours_to_decision: hours(request.decided_at.as_ref()),
            within_promise: hours_to_team.map(|h| h <= DEPLOYMENT_PROMISE_HOURS as f64),
            hours_to_team,
            team_confirmed_at: team,
        }
    }
}

/// A request's activation: the council's positions and the clock.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Activation {
    pub request_id: String,
    pub status: String,
    /// Who convened the council (set when the review started).
    pub council: Option<crrt_store::Council>,
    pub positions: Vec<CouncilPosition>,
    pub clock: Clock,
    pub mission_id: Option<String>,
}

/// A mission with its team and clock.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MissionView {
    #[serde(flatten)]
    pub mission: Mission,
    pub team: Vec<crate::UserView>,
    pub clock: Clock,
    pub checklist_complete: bool,
}

/// One responder in a team proposal, with why they rank where they do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    pub user: crate::UserView,
    pub organisation: String,
    pub score: i64,
    pub skills_matched: Vec<String>,
    pub languages_matched: Vec<String>,
    pub available: bool,
    /// In the proposed team.
    pub proposed: bool,
}

/// Changes to the checklist; absent fields stay as they are.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistUpdate {
    pub legal_basis: Option<bool>,
    pub points_of_contact: Option<bool>,
    pub secure_communications: Option<bool>,
    /// `on-site` or `remote`.
    pub deployment: Option<String>,
}

/// The mission a positive decision opens (written by `decide_request`).
pub(crate) fn opened_by(request: &AssistanceRequest) -> Mission {
    let at = request.updated_at.clone();
    Mission {
        id: new_id(),
        request_id: request.id.clone(),
        org_id: request.org_id.clone(),
        title: request.summary.clone(),
        status: MissionStatus::Forming.as_str().to_owned(),
        checklist: Checklist::default(),
        team_confirmed_at: None,
        version: 1,
        created_at: at.clone(),
        updated_at: at,
    }
}

fn checklist_complete(checklist: &Checklist) -> bool {
    checklist.legal_basis
        && checklist.points_of_contact
        && checklist.secure_communications
        && checklist.deployment.is_some()
}

impl Platform {
    /// Records a member state's position on a request under review.
    pub async fn record_position(
        &self,
        actor: &Actor,
        request_id: &str,
        org_name: &str,
        position: Position,
    ) -> Result<Activation> {
        let request = self.request(actor, request_id).await?;
        policy::require(actor, Action::DecideRequest(&request))?;
        if request.status != "under_review" {
            return Err(PlatformError::Conflict(format!(
                "the council sits on requests under review; this one is {}",
                request.status
            )));
        }
        let org = self
            .store
            .org_by_name(org_name.trim())
            .await?
            .filter(|o| o.kind == "member")
            .ok_or_else(|| PlatformError::NotFound(format!("member state team {org_name:?}")))?;
        let before = self
            .store
            .council_positions(request_id)
            .await?
            .into_iter()
            .find(|p| p.org_id == org.id);
        let recorded = CouncilPosition {
            request_id: request.id.clone(),
            org_id: org.id.clone(),
            position: position.as_str().to_owned(),
            recorded_by: actor.user.id.clone(),
            recorded_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.set_council_position(&recorded).await?;
        tx.append_audit(&audit(
            Some(actor),
            "council.position",
            "request",
            &request.id,
            before.as_ref(),
            Some(&recorded),
        ))
        .await?;
        tx.commit().await?;
        self.activation(actor, request_id).await
    }

    pub async fn activation(&self, actor: &Actor, request_id: &str) -> Result<Activation> {
        let request = self.request(actor, request_id).await?;
        let mission = self.store.mission_of_request(&request.id).await?;
        Ok(Activation {
            council: self.store.council(&request.id).await?,
            positions: self.store.council_positions(&request.id).await?,
            clock: Clock::of(&request, mission.as_ref()),
            request_id: request.id,
            status: request.status,
            mission_id: mission.map(|m| m.id),
        })
    }

    /// The missions the actor may see.
    pub async fn missions(&self, actor: &Actor, page: Page) -> Result<Vec<Mission>> {
        policy::require(actor, Action::ListMissions)?;
        let scope = match actor.role {
            Role::Admin | Role::Coordinator => MissionScope::All,
            Role::Requester => MissionScope::Organisation(actor.org_id()),
            // Partners were refused above; a responder sees their missions.
            Role::Responder | Role::Partner => MissionScope::Member(&actor.user.id),
        };
        Ok(self.store.missions(scope, page).await?)
    }

    async fn visible_mission(&self, actor: &Actor, id: &str) -> Result<Mission> {
        let mission = self.store.mission(id).await?;
        if let Some(mission) = mission {
            let member = self
                .store
                .is_mission_member(&mission.id, &actor.user.id)
                .await?;
            if policy::allowed(
                actor,
                Action::ReadMission {
                    mission: &mission,
                    member,
                },
            ) {
                return Ok(mission);
            }
        }
        Err(PlatformError::NotFound(format!("mission {id}")))
    }

    pub async fn mission(&self, actor: &Actor, id: &str) -> Result<MissionView> {
        let mission = self.visible_mission(actor, id).await?;
        self.view(mission).await
    }

    async fn view(&self, mission: Mission) -> Result<MissionView> {
        let request = self
            .store
            .request(&mission.request_id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("request {}", mission.request_id)))?;
        let mut team = Vec::new();
        for user_id in self.store.mission_members(&mission.id).await? {
            if let Some(user) = self.store.user(&user_id).await? {
                team.push(crate::UserView::from(&user));
            }
        }
        Ok(MissionView {
            clock: Clock::of(&request, Some(&mission)),
            checklist_complete: checklist_complete(&mission.checklist),
            team,
            mission,
        })
    }

    async fn managed_mission(&self, actor: &Actor, id: &str, version: i64) -> Result<Mission> {
        let mission = self.visible_mission(actor, id).await?;
        policy::require(actor, Action::ManageMission(&mission))?;
        if mission.version != version {
            return Err(PlatformError::Conflict(format!(
                "mission {id} is at version {}, not {version}; reload it and try again",
                mission.version
            )));
        }
        Ok(mission)
    }

    async fn save_mission(
        &self,
        actor: &Actor,
        before: &Mission,
        mut after: Mission,
        action: &str,
        team: Option<&[String]>,
    ) -> Result<MissionView> {
        after.version = before.version + 1;
        after.updated_at = now();
        let mut tx = self.store.begin().await?;
        tx.update_mission(&after).await?;
        if let Some(team) = team {
            tx.set_mission_members(&after.id, team, &after.updated_at)
                .await?;
        }
        tx.append_audit(&audit(
            Some(actor),
            action,
            "mission",
            &after.id,
            Some(before),
            Some(&after),
        ))
        .await?;
        tx.commit().await?;
        self.view(after).await
    }

    pub async fn update_checklist(
        &self,
        actor: &Actor,
        id: &str,
        version: i64,
        update: ChecklistUpdate,
    ) -> Result<MissionView> {
        let before = self.managed_mission(actor, id, version).await?;
        let mut after = before.clone();
        let list = &mut after.checklist;
        if let Some(v) = update.legal_basis {
            list.legal_basis = v;
        }
        if let Some(v) = update.points_of_contact {
            list.points_of_contact = v;
        }
        if let Some(v) = update.secure_communications {
            list.secure_communications = v;
        }
        if let Some(mode) = update.deployment {
            if mode != "on-site" && mode != "remote" {
                return Err(PlatformError::Invalid(format!(
                    "deployment {mode:?} is neither \"on-site\" nor \"remote\""
                )));
            }
            list.deployment = Some(mode);
        }
        self.save_mission(actor, &before, after, "mission.checklist", None)
            .await
    }

    /// Responders ranked for a mission: skills covering what the request asks
    /// for, a language shared with the requester, availability today; the
    /// proposed team spreads across member states.
    pub async fn propose_team(
        &self,
        actor: &Actor,
        id: &str,
        size: usize,
    ) -> Result<Vec<Candidate>> {
        let mission = self.visible_mission(actor, id).await?;
        policy::require(actor, Action::ManageMission(&mission))?;
        let request = self
            .store
            .request(&mission.request_id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("request {}", mission.request_id)))?;
        let requester_languages = self
            .store
            .user(&request.filed_by)
            .await?
            .map(|u| u.languages)
            .unwrap_or_default();
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let mut candidates = Vec::new();
        for user in self.store.users_with_role(Role::Responder.as_str()).await? {
            let organisation = self
                .store
                .org(&user.org_id)
                .await?
                .map(|o| o.name)
                .unwrap_or_default();
            candidates.push(rank(
                &user,
                organisation,
                &request,
                &requester_languages,
                today,
            ));
        }
        candidates.sort_by(|a, b| b.score.cmp(&a.score).then(a.user.email.cmp(&b.user.email)));
        propose(&mut candidates, &request.capabilities, size);
        Ok(candidates)
    }

    /// Confirms the team (the coordinator's choice, proposed or edited).
    pub async fn confirm_team(
        &self,
        actor: &Actor,
        id: &str,
        version: i64,
        user_ids: Vec<String>,
    ) -> Result<MissionView> {
        let before = self.managed_mission(actor, id, version).await?;
        if MissionStatus::parse(&before.status)? == MissionStatus::Closed {
            return Err(PlatformError::Conflict(
                "a closed mission's team is final".into(),
            ));
        }
        if user_ids.is_empty() || user_ids.len() > 50 {
            return Err(PlatformError::Invalid("a team has 1 to 50 members".into()));
        }
        let mut team = user_ids;
        team.sort();
        team.dedup();
        for user_id in &team {
            let user = self.store.user(user_id).await?;
            if !user.is_some_and(|u| u.role == "responder" || u.role == "coordinator") {
                return Err(PlatformError::Invalid(format!(
                    "{user_id} is not a responder or coordinator of a member state"
                )));
            }
        }
        let mut after = before.clone();
        after.team_confirmed_at.get_or_insert_with(now);
        self.save_mission(actor, &before, after, "mission.team", Some(&team))
            .await
    }

    pub async fn move_mission(
        &self,
        actor: &Actor,
        id: &str,
        version: i64,
        next: MissionStatus,
    ) -> Result<MissionView> {
        let before = self.managed_mission(actor, id, version).await?;
        let status = MissionStatus::parse(&before.status)?;
        if !status.can_become(next) {
            return Err(PlatformError::Conflict(format!(
                "a mission that is {} cannot become {}",
                status.as_str(),
                next.as_str()
            )));
        }
        if next == MissionStatus::Active {
            if !checklist_complete(&before.checklist) {
                return Err(PlatformError::Conflict(
                    "the pre-deployment checklist is not complete (legal basis, points of contact, \
                     secure communications, on-site or remote)"
                        .into(),
                ));
            }
            if self.store.mission_members(&before.id).await?.is_empty() {
                return Err(PlatformError::Conflict("confirm the team first".into()));
            }
        }
        let mut after = before.clone();
        after.status = next.as_str().to_owned();
        let action = format!("mission.{}", next.as_str());
        self.save_mission(actor, &before, after, &action, None)
            .await
    }
}

fn rank(
    user: &User,
    organisation: String,
    request: &AssistanceRequest,
    requester_languages: &[String],
    today: jiff::civil::Date,
) -> Candidate {
    let skills_matched: Vec<String> = request
        .capabilities
        .iter()
        .filter(|c| user.skills.contains(c))
        .cloned()
        .collect();
    let languages_matched: Vec<String> = user
        .languages
        .iter()
        .filter(|l| requester_languages.contains(l))
        .cloned()
        .collect();
    let available = user.availability.iter().any(|w| {
        matches!(
            (w.from.parse::<jiff::civil::Date>(), w.to.parse::<jiff::civil::Date>()),
            (Ok(from), Ok(to)) if from <= today && today <= to
        )
    });
    // Unavailable experts are listed but ranked below every available one.
    let score = 10 * skills_matched.len() as i64
        + 4 * i64::from(!languages_matched.is_empty())
        + if available { 100 } else { 0 };
    Candidate {
        user: crate::UserView::from(user),
        organisation,
        score,
        skills_matched,
        languages_matched,
        available,
        proposed: false,
    }
}

/// Marks up to `size` available candidates: each pick is the best remaining
/// by new capabilities covered, then score, then a member state not yet on
/// the team.
fn propose(candidates: &mut [Candidate], asked: &[String], size: usize) {
    let mut covered: Vec<String> = Vec::new();
    let mut orgs: Vec<String> = Vec::new();
    for _ in 0..size {
        let best = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.available && !c.proposed)
            .max_by_key(|(i, c)| {
                let new = c
                    .skills_matched
                    .iter()
                    .filter(|s| asked.contains(s) && !covered.contains(s))
                    .count();
                let new_org = !orgs.contains(&c.organisation);
                (new, new_org, c.score, usize::MAX - i)
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        candidates[i].proposed = true;
        covered.extend(candidates[i].skills_matched.iter().cloned());
        orgs.push(candidates[i].organisation.clone());
    }
}
