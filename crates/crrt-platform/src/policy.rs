//! Authorisation, decided here and nowhere else: by role, organisation and
//! (with missions) membership. Every platform operation calls [`require`]
//! before it reads or writes; the server never decides access itself.

use crate::{Actor, AssistanceRequest, Mission, PlatformError, Result, Role};

/// What an actor is trying to do, with the object when it matters.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Organisations, users and tokens of others.
    Administer,
    ListOrganisations,
    ListUsers,
    ReadAudit,
    FileRequest,
    ListRequests,
    ReadRequest(&'a AssistanceRequest),
    WithdrawRequest(&'a AssistanceRequest),
    /// Start the review of, record the council's positions and the
    /// activation decision on, a request.
    DecideRequest(&'a AssistanceRequest),
    ListMissions,
    /// `member`: the actor is on the mission's team.
    ReadMission {
        mission: &'a Mission,
        member: bool,
    },
    /// Checklist, team, states.
    ManageMission(&'a Mission),
    /// Cases, tasks and notes of a mission.
    WorkOnMission {
        mission: &'a Mission,
        member: bool,
    },
    /// Evidence into a mission's cases: the team, and the institution that asked.
    UploadEvidence {
        mission: &'a Mission,
        member: bool,
    },
    /// Upload rule packs.
    ManageRulePacks,
    /// See rule packs and their problems.
    ReadRulePacks,
    /// Share an indicator, with one's own organisation as its source.
    ShareIndicator,
    /// Change an indicator (its level, recipients, expiry).
    ChangeIndicator(&'a crrt_store::StoredIndicator),
}

/// `Ok` when the actor may do it; otherwise a message naming what is missing.
pub fn require(actor: &Actor, action: Action<'_>) -> Result<()> {
    if allowed(actor, action) {
        Ok(())
    } else {
        Err(PlatformError::Forbidden(format!(
            "a {} may not {}",
            actor.role,
            describe(action)
        )))
    }
}

pub fn allowed(actor: &Actor, action: Action<'_>) -> bool {
    use Role::*;
    let own_org = |r: &AssistanceRequest| r.org_id == actor.org_id();
    match (actor.role, action) {
        (Admin, Action::Administer | Action::ReadAudit) => true,
        (Admin | Coordinator, Action::ListOrganisations | Action::ListUsers) => true,
        (Responder, Action::ListOrganisations) => true,
        (Requester, Action::FileRequest) => true,
        // Requesters see their own institution's requests only; the list
        // itself is filtered by the platform to match.
        (Admin | Coordinator | Requester, Action::ListRequests) => true,
        (Admin | Coordinator, Action::ReadRequest(_)) => true,
        (Requester, Action::ReadRequest(r) | Action::WithdrawRequest(r)) => own_org(r),
        (Coordinator, Action::DecideRequest(_)) => true,
        (Admin | Coordinator | Responder | Requester, Action::ListMissions) => true,
        (Admin | Coordinator, Action::ReadMission { .. }) => true,
        (Responder, Action::ReadMission { member, .. }) => member,
        (Requester, Action::ReadMission { mission, .. }) => mission.org_id == actor.org_id(),
        (Coordinator, Action::ManageMission(_)) => true,
        (Coordinator, Action::WorkOnMission { .. }) => true,
        (Responder, Action::WorkOnMission { member, .. }) => member,
        (Coordinator, Action::UploadEvidence { .. }) => true,
        (Coordinator | Responder, Action::ManageRulePacks) => true,
        (Admin | Coordinator | Responder, Action::ReadRulePacks) => true,
        (Responder, Action::UploadEvidence { member, .. }) => member,
        (Requester, Action::UploadEvidence { mission, .. }) => mission.org_id == actor.org_id(),
        // Everyone signed in may share what they know; the source is
        // always their own organisation.
        (_, Action::ShareIndicator) => true,
        (Admin | Coordinator | Responder | Partner | Requester, Action::ChangeIndicator(i)) => {
            i.source_org_id == actor.org_id()
                && (i.created_by == actor.user.id
                    || matches!(actor.role, Admin | Coordinator | Partner))
        }
        // Responders see requests through the missions they are on (a later
        // issue); partners see none of this.
        _ => false,
    }
}

fn describe(action: Action<'_>) -> &'static str {
    match action {
        Action::Administer => "administer organisations, users or tokens",
        Action::ListOrganisations => "list organisations",
        Action::ListUsers => "list users",
        Action::ReadAudit => "read the audit trail",
        Action::FileRequest => "file an assistance request",
        Action::ListRequests => "list assistance requests",
        Action::ReadRequest(_) => "read this assistance request",
        Action::WithdrawRequest(_) => "withdraw this assistance request",
        Action::DecideRequest(_) => "review or decide assistance requests",
        Action::ListMissions => "list missions",
        Action::ReadMission { .. } => "read this mission",
        Action::ManageMission(_) => "manage missions",
        Action::WorkOnMission { .. } => "work on this mission's cases",
        Action::UploadEvidence { .. } => "upload evidence to this mission",
        Action::ManageRulePacks => "upload rule packs",
        Action::ReadRulePacks => "see rule packs",
        Action::ShareIndicator => "share indicators",
        Action::ChangeIndicator(_) => {
            "change this indicator (only its source organisation's coordinators and its author may)"
        }
    }
}

/// Who reads indicators, in the terms of TLP: the store turns this into
/// its visibility predicate, and [`may_see_indicator`] says the same for
/// one indicator. `org_kind` is the reader's organisation's kind.
pub fn indicator_audience(actor: &Actor, org_kind: &str) -> crrt_store::Audience {
    crrt_store::Audience {
        user_id: actor.user.id.clone(),
        org_id: actor.org_id().to_owned(),
        community: matches!(org_kind, "member" | "partner"),
        member: org_kind == "member",
    }
}

/// TLP 2.0 as a security boundary: CLEAR reaches everyone signed in;
/// GREEN the community (member teams and partners) and the source;
/// AMBER the source organisation and the organisations it names;
/// AMBER+STRICT the source organisation only; RED only the people named
/// (and the author).
pub fn may_see_indicator(
    audience: &crrt_store::Audience,
    indicator: &crrt_store::StoredIndicator,
    recipient_orgs: &[String],
    recipient_users: &[String],
) -> bool {
    let own = indicator.source_org_id == audience.org_id;
    match indicator.tlp.as_str() {
        "clear" => true,
        "green" => audience.community || own,
        "amber" => own || recipient_orgs.contains(&audience.org_id),
        "amber+strict" => own,
        "red" => {
            indicator.created_by == audience.user_id || recipient_users.contains(&audience.user_id)
        }
        // An unknown level (a damaged row) is shown to no one.
        _ => false,
    }
}
