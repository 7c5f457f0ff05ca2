//! Assistance requests: filed by a requesting institution, reviewed, and
//! accepted or declined by the activation decision; withdrawable by the
//! requester until then. Every change names the version it read, so two
//! people editing at once cannot silently overwrite each other.

use serde::Deserialize;

use crate::policy::{self, Action};
use crate::{
    Actor, AssistanceRequest, Page, Platform, PlatformError, Result, Skill, Tlp, audit, new_id, now,
};

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Submitted,
    UnderReview,
    Accepted,
    Declined,
    Withdrawn,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Submitted => "submitted",
            RequestStatus::UnderReview => "under_review",
            RequestStatus::Accepted => "accepted",
            RequestStatus::Declined => "declined",
            RequestStatus::Withdrawn => "withdrawn",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "submitted" => RequestStatus::Submitted,
            "under_review" => RequestStatus::UnderReview,
            "accepted" => RequestStatus::Accepted,
            "declined" => RequestStatus::Declined,
            "withdrawn" => RequestStatus::Withdrawn,
            other => {
                return Err(PlatformError::Invalid(format!(
                    "stored request status {other:?} is unknown"
                )));
            }
        })
    }

    /// The moves the state machine allows.
    fn can_become(self, next: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (self, next),
            (Submitted, UnderReview)
                | (UnderReview, Accepted)
                | (UnderReview, Declined)
                | (Submitted | UnderReview, Withdrawn)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    Medium,
    High,
    Critical,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Medium => "medium",
            Urgency::High => "high",
            Urgency::Critical => "critical",
        }
    }
}

/// What a requester files.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub summary: String,
    pub symptoms: String,
    #[serde(default)]
    pub affected_systems: Vec<String>,
    pub urgency: Urgency,
    pub tlp: Tlp,
    /// The capabilities asked for.
    #[serde(default)]
    pub capabilities: Vec<Skill>,
    /// Mitigations already taken.
    #[serde(default)]
    pub mitigations: String,
}

/// The activation decision on a request under review.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, tag = "outcome", rename_all = "lowercase")]
pub enum Decision {
    Accept,
    /// A decline carries its reason to the requester.
    Decline {
        reason: String,
    },
}

/// One move of a request: where to, why, and what comes with it.
struct Transition<'a> {
    next: RequestStatus,
    decline_reason: Option<String>,
    action: &'a str,
    council: Option<crrt_store::Council>,
}

const MAX_TEXT: usize = 20_000;

fn text_field(name: &str, value: &str, required: bool) -> Result<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(PlatformError::Invalid(format!("{name} is required")));
    }
    if value.len() > MAX_TEXT {
        return Err(PlatformError::Invalid(format!(
            "{name} is over {MAX_TEXT} bytes"
        )));
    }
    Ok(value.to_owned())
}

impl Platform {
    pub async fn file_request(&self, actor: &Actor, new: NewRequest) -> Result<AssistanceRequest> {
        policy::require(actor, Action::FileRequest)?;
        if new.affected_systems.len() > 500 || new.affected_systems.iter().any(|s| s.len() > 500) {
            return Err(PlatformError::Invalid(
                "affected_systems: at most 500 entries of 500 bytes".into(),
            ));
        }
        let at = now();
        let request = AssistanceRequest {
            id: new_id(),
            org_id: actor.org_id().to_owned(),
            filed_by: actor.user.id.clone(),
            summary: text_field("summary", &new.summary, true)?,
            symptoms: text_field("symptoms", &new.symptoms, true)?,
            affected_systems: new.affected_systems,
            urgency: new.urgency.as_str().to_owned(),
            tlp: new.tlp.as_str().to_owned(),
            capabilities: new
                .capabilities
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            mitigations: text_field("mitigations", &new.mitigations, false)?,
            status: RequestStatus::Submitted.as_str().to_owned(),
            decline_reason: None,
            decided_at: None,
            version: 1,
            created_at: at.clone(),
            updated_at: at,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_request(&request).await?;
        tx.append_audit(&audit(
            Some(actor),
            "request.submit",
            "request",
            &request.id,
            None,
            Some(&request),
        ))
        .await?;
        tx.commit().await?;
        Ok(request)
    }

    /// The requests the actor may see: a requester its own institution's.
    pub async fn requests(&self, actor: &Actor, page: Page) -> Result<Vec<AssistanceRequest>> {
        policy::require(actor, Action::ListRequests)?;
        let org = (actor.role == crate::Role::Requester).then(|| actor.org_id());
        Ok(self.store.requests(org, page).await?)
    }

    /// One request; one the actor may not see is "not found", so that its
    /// existence is not revealed either.
    pub async fn request(&self, actor: &Actor, id: &str) -> Result<AssistanceRequest> {
        self.store
            .request(id)
            .await?
            .filter(|r| policy::allowed(actor, Action::ReadRequest(r)))
            .ok_or_else(|| PlatformError::NotFound(format!("request {id}")))
    }

    pub async fn withdraw_request(
        &self,
        actor: &Actor,
        id: &str,
        version: i64,
    ) -> Result<AssistanceRequest> {
        let current = self.request(actor, id).await?;
        policy::require(actor, Action::WithdrawRequest(&current))?;
        self.move_request(
            actor,
            current,
            version,
            Transition {
                next: RequestStatus::Withdrawn,
                decline_reason: None,
                action: "request.withdraw",
                council: None,
            },
        )
        .await
    }

    /// Starts the review: the coordinator convenes the council for the
    /// lead participant (their own team) and, when named, the rotating
    /// participant of the year.
    pub async fn review_request(
        &self,
        actor: &Actor,
        id: &str,
        version: i64,
        rotating_participant: Option<&str>,
    ) -> Result<AssistanceRequest> {
        let current = self.request(actor, id).await?;
        policy::require(actor, Action::DecideRequest(&current))?;
        let rotating = match rotating_participant {
            None => None,
            Some(name) => {
                let org = self
                    .store
                    .org_by_name(name.trim())
                    .await?
                    .filter(|o| o.kind == "member")
                    .ok_or_else(|| {
                        PlatformError::NotFound(format!("member state team {name:?}"))
                    })?;
                if org.id == actor.org_id() {
                    return Err(PlatformError::Invalid(
                        "the rotating participant is another team than the lead".into(),
                    ));
                }
                Some(org.id)
            }
        };
        let council = crrt_store::Council {
            request_id: current.id.clone(),
            lead_org_id: actor.org_id().to_owned(),
            rotating_org_id: rotating,
            convened_by: actor.user.id.clone(),
            convened_at: now(),
        };
        self.move_request(
            actor,
            current,
            version,
            Transition {
                next: RequestStatus::UnderReview,
                decline_reason: None,
                action: "request.review",
                council: Some(council),
            },
        )
        .await
    }

    pub async fn decide_request(
        &self,
        actor: &Actor,
        id: &str,
        version: i64,
        decision: Decision,
    ) -> Result<AssistanceRequest> {
        let current = self.request(actor, id).await?;
        policy::require(actor, Action::DecideRequest(&current))?;
        let (next, reason, action) = match decision {
            Decision::Accept => (RequestStatus::Accepted, None, "request.accept"),
            Decision::Decline { reason } => (
                RequestStatus::Declined,
                Some(text_field("reason", &reason, true)?),
                "request.decline",
            ),
        };
        let transition = Transition {
            next,
            decline_reason: reason,
            action,
            council: None,
        };
        self.move_request(actor, current, version, transition).await
    }

    async fn move_request(
        &self,
        actor: &Actor,
        current: AssistanceRequest,
        version: i64,
        transition: Transition<'_>,
    ) -> Result<AssistanceRequest> {
        let Transition {
            next,
            decline_reason,
            action,
            council,
        } = transition;
        if current.version != version {
            return Err(PlatformError::Conflict(format!(
                "request {} is at version {}, not {version}; reload it and try again",
                current.id, current.version
            )));
        }
        let status = RequestStatus::parse(&current.status)?;
        if !status.can_become(next) {
            return Err(PlatformError::Conflict(format!(
                "a request that is {} cannot become {}",
                status.as_str(),
                next.as_str()
            )));
        }
        if next == RequestStatus::Accepted {
            let positions = self.store.council_positions(&current.id).await?;
            if !positions.iter().any(|p| p.position == "agree") {
                return Err(PlatformError::Conflict(
                    "no member state's agreement is recorded: record the council's positions \
                     (POST .../council) before accepting"
                        .into(),
                ));
            }
        }
        let mut updated = current.clone();
        updated.status = next.as_str().to_owned();
        updated.decline_reason = decline_reason;
        updated.version += 1;
        updated.updated_at = now();
        if matches!(next, RequestStatus::Accepted | RequestStatus::Declined) {
            updated.decided_at = Some(updated.updated_at.clone());
        }
        let mut tx = self.store.begin().await?;
        tx.update_request(&updated).await?;
        tx.append_audit(&audit(
            Some(actor),
            action,
            "request",
            &updated.id,
            Some(&current),
            Some(&updated),
        ))
        .await?;
        if let Some(council) = &council {
            tx.insert_council(council).await?;
            tx.append_audit(&audit(
                Some(actor),
                "council.convene",
                "request",
                &updated.id,
                None,
                Some(council),
            ))
            .await?;
        }
        // A positive decision opens the mission, in the same transaction.
        if next == RequestStatus::Accepted {
            let mission = crate::missions::opened_by(&updated);
            tx.insert_mission(&mission).await?;
            tx.append_audit(&audit(
                Some(actor),
                "mission.open",
                "mission",
                &mission.id,
                None,
                Some(&mission),
            ))
            .await?;
        }
        tx.commit().await?;
        Ok(updated)
    }
}
