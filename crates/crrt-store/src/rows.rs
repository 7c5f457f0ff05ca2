//! The records the store reads and writes. Fields hold what the platform
//! decided (roles, kinds and states as their lowercase names).

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::{Result, from_json, int, opt_text, text};

pub(crate) const ORG_COLUMNS: &str = "id, name, kind, country, created_at";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    /// `member`, `requester` or `partner`.
    pub kind: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub created_at: String,
}

impl Organisation {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Organisation {
            id: text(row, "id")?,
            name: text(row, "name")?,
            kind: text(row, "kind")?,
            country: text(row, "country")?,
            created_at: text(row, "created_at")?,
        })
    }
}

pub(crate) const USER_COLUMNS: &str = "id, email, display_name, org_id, role, password_hash, \
     skills, languages, availability, disabled, version, created_at";
/// The same columns through the alias `u`, for joins.
pub(crate) const USER_COLUMNS_U: &str = "u.id, u.email, u.display_name, u.org_id, u.role, \
     u.password_hash, u.skills, u.languages, u.availability, u.disabled, u.version, u.created_at";

/// A period a responder can deploy, as dates (`2022-02-24`), both included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Availability {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub org_id: String,
    pub role: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub skills: Vec<String>,
    pub languages: Vec<String>,
    pub availability: Vec<Availability>,
    pub disabled: bool,
    pub version: i64,
    pub created_at: String,
}

impl User {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(User {
            id: text(row, "id")?,
            email: text(row, "email")?,
            display_name: text(row, "display_name")?,
            org_id: text(row, "org_id")?,
            role: text(row, "role")?,
            password_hash: text(row, "password_hash")?,
            skills: from_json(row, "skills")?,
            languages: from_json(row, "languages")?,
            availability: from_json(row, "availability")?,
            disabled: int(row, "disabled")? != 0,
            version: int(row, "version")?,
            created_at: text(row, "created_at")?,
        })
    }
}

/// A login session; the cookie holds the token, the store its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: String,
    pub expires_at: String,
}

pub(crate) const TOKEN_COLUMNS: &str = "id, user_id, name, token_hash, created_at, revoked_at";

/// An API token for scripts; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl ApiToken {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(ApiToken {
            id: text(row, "id")?,
            user_id: text(row, "user_id")?,
            name: text(row, "name")?,
            token_hash: text(row, "token_hash")?,
            created_at: text(row, "created_at")?,
            revoked_at: opt_text(row, "revoked_at")?,
        })
    }
}

pub(crate) const REQUEST_COLUMNS: &str = "id, org_id, filed_by, summary, symptoms, \
     affected_systems, urgency, tlp, capabilities, mitigations, status, decline_reason, \
     version, created_at, updated_at, decided_at";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssistanceRequest {
    pub id: String,
    /// The requesting institution.
    pub org_id: String,
    /// The user who filed it.
    pub filed_by: String,
    pub summary: String,
    pub symptoms: String,
    pub affected_systems: Vec<String>,
    pub urgency: String,
    pub tlp: String,
    pub capabilities: Vec<String>,
    pub mitigations: String,
    pub status: String,
    pub decline_reason: Option<String>,
    /// Bumped by every change; updates name the version they read.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// When the activation decision (accept or decline) was recorded.
    pub decided_at: Option<String>,
}

impl AssistanceRequest {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(AssistanceRequest {
            id: text(row, "id")?,
            org_id: text(row, "org_id")?,
            filed_by: text(row, "filed_by")?,
            summary: text(row, "summary")?,
            symptoms: text(row, "symptoms")?,
            affected_systems: from_json(row, "affected_systems")?,
            urgency: text(row, "urgency")?,
            tlp: text(row, "tlp")?,
            capabilities: from_json(row, "capabilities")?,
            mitigations: text(row, "mitigations")?,
            status: text(row, "status")?,
            decline_reason: opt_text(row, "decline_reason")?,
            version: int(row, "version")?,
            created_at: text(row, "created_at")?,
            updated_at: text(row, "updated_at")?,
            decided_at: opt_text(row, "decided_at")?,
        })
    }
}

/// A member state's position in the activation council on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CouncilPosition {
    pub request_id: String,
    pub org_id: String,
    /// `agree`, `abstain` or `object`.
    pub position: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

impl CouncilPosition {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(CouncilPosition {
            request_id: text(row, "request_id")?,
            org_id: text(row, "org_id")?,
            position: text(row, "position")?,
            recorded_by: text(row, "recorded_by")?,
            recorded_at: text(row, "recorded_at")?,
        })
    }
}

/// Who convened the activation council on a request: the lead participant
/// and the rotating participant of the year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Council {
    pub request_id: String,
    pub lead_org_id: String,
    pub rotating_org_id: Option<String>,
    pub convened_by: String,
    pub convened_at: String,
}

impl Council {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Council {
            request_id: text(row, "request_id")?,
            lead_org_id: text(row, "lead_org_id")?,
            rotating_org_id: opt_text(row, "rotating_org_id")?,
            convened_by: text(row, "convened_by")?,
            convened_at: text(row, "convened_at")?,
        })
    }
}

pub(crate) const MISSION_COLUMNS: &str = "id, request_id, org_id, title, status, checklist, \
     team_confirmed_at, version, created_at, updated_at";

/// The pre-deployment checklist; all of it before a mission goes active.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    /// Legal basis under the memorandum of understanding confirmed.
    pub legal_basis: bool,
    /// Points of contact exchanged on both sides.
    pub points_of_contact: bool,
    /// Secure communications set up.
    pub secure_communications: bool,
    /// `on-site` or `remote`, once decided.
    pub deployment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mission {
    pub id: String,
    pub request_id: String,
    /// The requesting institution.
    pub org_id: String,
    pub title: String,
    pub status: String,
    pub checklist: Checklist,
    pub team_confirmed_at: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Mission {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Mission {
            id: text(row, "id")?,
            request_id: text(row, "request_id")?,
            org_id: text(row, "org_id")?,
            title: text(row, "title")?,
            status: text(row, "status")?,
            checklist: from_json(row, "checklist")?,
            team_confirmed_at: opt_text(row, "team_confirmed_at")?,
            version: int(row, "version")?,
            created_at: text(row, "created_at")?,
            updated_at: text(row, "updated_at")?,
        })
    }
}

pub(crate) const CASE_COLUMNS: &str =
    "id, mission_id, title, playbook, status, version, created_by, created_at, updated_at";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Case {
    pub id: String,
    pub mission_id: String,
    pub title: String,
    /// The playbook that pre-filled its tasks, if any.
    pub playbook: Option<String>,
    pub status: String,
    pub version: i64,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Case {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Case {
            id: text(row, "id")?,
            mission_id: text(row, "mission_id")?,
            title: text(row, "title")?,
            playbook: opt_text(row, "playbook")?,
            status: text(row, "status")?,
            version: int(row, "version")?,
            created_by: text(row, "created_by")?,
            created_at: text(row, "created_at")?,
            updated_at: text(row, "updated_at")?,
        })
    }
}

pub(crate) const TASK_COLUMNS: &str =
    "id, case_id, title, assignee_id, status, due_on, position, version, created_at, updated_at";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: String,
    pub case_id: String,
    pub title: String,
    pub assignee_id: Option<String>,
    /// `open`, `in_progress` or `done`.
    pub status: String,
    /// A date, `2022-02-25`.
    pub due_on: Option<String>,
    /// Order within the case.
    pub position: i64,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Task {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Task {
            id: text(row, "id")?,
            case_id: text(row, "case_id")?,
            title: text(row, "title")?,
            assignee_id: opt_text(row, "assignee_id")?,
            status: text(row, "status")?,
            due_on: opt_text(row, "due_on")?,
            position: int(row, "position")?,
            version: int(row, "version")?,
            created_at: text(row, "created_at")?,
            updated_at: text(row, "updated_at")?,
        })
    }
}

pub(crate) const NOTE_COLUMNS: &str = "id, case_id, author_id, markdown, html, created_at";

/// A note: the Markdown as written, and the HTML it renders to (sanitised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    pub id: String,
    pub case_id: String,
    pub author_id: String,
    pub markdown: String,
    pub html: String,
    pub created_at: String,
}

impl Note {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Note {
            id: text(row, "id")?,
            case_id: text(row, "case_id")?,
            author_id: text(row, "author_id")?,
            markdown: text(row, "markdown")?,
            html: text(row, "html")?,
            created_at: text(row, "created_at")?,
        })
    }
}

pub(crate) const EVIDENCE_COLUMNS: &str =
    "id, case_id, name, size, sha256, uploaded_by, uploaded_from, uploaded_at";

/// A piece of evidence: its bytes live, unchanged, in the evidence store
/// under their SHA-256; this row is its record of custody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    pub id: String,
    pub case_id: String,
    /// The file name as uploaded (a name only; never a path).
    pub name: String,
    pub size: i64,
    /// Lowercase hex.
    pub sha256: String,
    pub uploaded_by: String,
    /// The client address it came from.
    pub uploaded_from: String,
    pub uploaded_at: String,
}

impl Evidence {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Evidence {
            id: text(row, "id")?,
            case_id: text(row, "case_id")?,
            name: text(row, "name")?,
            size: int(row, "size")?,
            sha256: text(row, "sha256")?,
            uploaded_by: text(row, "uploaded_by")?,
            uploaded_from: text(row, "uploaded_from")?,
            uploaded_at: text(row, "uploaded_at")?,
        })
    }
}

pub(crate) const RULEPACK_COLUMNS: &str =
    "id, name, sha256, n_files, n_rules, problems, uploaded_by, uploaded_at, kind";

/// A rule that did not load, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RuleProblem {
    pub file: String,
    pub rule: Option<String>,
    pub message: String,
}

/// A set of Sigma or YARA rules uploaded to the platform, kept as their text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RulePack {
    pub id: String,
    pub name: String,
    /// `sigma` (YAML files, run on events) or `yara` (run on files).
    pub kind: String,
    /// Of the uploaded file.
    pub sha256: String,
    pub n_files: i64,
    /// Rules that loaded.
    pub n_rules: i64,
    /// Files and rules that did not load, and why.
    pub problems: Vec<RuleProblem>,
    pub uploaded_by: String,
    pub uploaded_at: String,
}

impl RulePack {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(RulePack {
            id: text(row, "id")?,
            name: text(row, "name")?,
            kind: text(row, "kind")?,
            sha256: text(row, "sha256")?,
            n_files: int(row, "n_files")?,
            n_rules: int(row, "n_rules")?,
            problems: from_json(row, "problems")?,
            uploaded_by: text(row, "uploaded_by")?,
            uploaded_at: text(row, "uploaded_at")?,
        })
    }
}

pub(crate) const HUNT_COLUMNS: &str = "id, case_id, status, rulepack_ids, evidence_ids, \
     requested_by, created_at, started_at, finished_at, lease_owner, lease_expires_at, attempts, \
     records_done, bytes_done, bytes_total, n_findings, error, indicator_ids";

/// A hunt: rule packs over a case's evidence, run by a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Hunt {
    pub id: String,
    pub case_id: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub rulepack_ids: Vec<String>,
    pub evidence_ids: Vec<String>,
    pub requested_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The worker holding it, and until when.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<String>,
    pub attempts: i64,
    pub records_done: i64,
    pub bytes_done: i64,
    pub bytes_total: i64,
    pub n_findings: i64,
    pub error: Option<String>,
    /// Indicators looked for (chosen when the hunt started).
    #[serde(default)]
    pub indicator_ids: Vec<String>,
}

impl Hunt {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Hunt {
            id: text(row, "id")?,
            case_id: text(row, "case_id")?,
            status: text(row, "status")?,
            rulepack_ids: from_json(row, "rulepack_ids")?,
            evidence_ids: from_json(row, "evidence_ids")?,
            requested_by: text(row, "requested_by")?,
            created_at: text(row, "created_at")?,
            started_at: opt_text(row, "started_at")?,
            finished_at: opt_text(row, "finished_at")?,
            lease_owner: opt_text(row, "lease_owner")?,
            lease_expires_at: opt_text(row, "lease_expires_at")?,
            attempts: int(row, "attempts")?,
            records_done: int(row, "records_done")?,
            bytes_done: int(row, "bytes_done")?,
            bytes_total: int(row, "bytes_total")?,
            n_findings: int(row, "n_findings")?,
            error: opt_text(row, "error")?,
            indicator_ids: from_json(row, "indicator_ids")?,
        })
    }
}

pub(crate) const FINDING_COLUMNS: &str = "id, case_id, hunt_id, evidence_id, evidence_file, \
     rule_id, rule_title, level, tags, at, host, channel, event_id, record_id, event, triage, \
     triage_comment, created_at";

/// A finding on a case: the rule, the event, the evidence it came from, and
/// the team's verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredFinding {
    /// Derived from the case, evidence, record and rule, so a finding seen
    /// twice (a hunt re-run, a worker retried) is stored once.
    pub id: String,
    pub case_id: String,
    pub hunt_id: String,
    pub evidence_id: Option<String>,
    /// The evidence's name, and the member inside a ZIP (`pkg.zip!/a/b`).
    pub evidence_file: String,
    pub rule_id: Option<String>,
    pub rule_title: String,
    pub level: String,
    pub tags: Vec<String>,
    pub at: Option<String>,
    pub host: Option<String>,
    pub channel: Option<String>,
    pub event_id: Option<i64>,
    pub record_id: Option<i64>,
    pub event: serde_json::Value,
    /// `needs_review`, `true_positive` or `false_positive`.
    pub triage: String,
    pub triage_comment: Option<String>,
    pub created_at: String,
}

impl StoredFinding {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        let opt_int = |c: &str| -> Result<Option<i64>> { Ok(sqlx::Row::try_get(row, c)?) };
        Ok(StoredFinding {
            id: text(row, "id")?,
            case_id: text(row, "case_id")?,
            hunt_id: text(row, "hunt_id")?,
            evidence_id: opt_text(row, "evidence_id")?,
            evidence_file: text(row, "evidence_file")?,
            rule_id: opt_text(row, "rule_id")?,
            rule_title: text(row, "rule_title")?,
            level: text(row, "level")?,
            tags: from_json(row, "tags")?,
            at: opt_text(row, "at")?,
            host: opt_text(row, "host")?,
            channel: opt_text(row, "channel")?,
            event_id: opt_int("event_id")?,
            record_id: opt_int("record_id")?,
            event: from_json(row, "event")?,
            triage: text(row, "triage")?,
            triage_comment: opt_text(row, "triage_comment")?,
            created_at: text(row, "created_at")?,
        })
    }
}

pub(crate) const AUDIT_COLUMNS: &str =
    "seq, at, actor, action, object_type, object_id, before_json, after_json, prev_hash, hash";
