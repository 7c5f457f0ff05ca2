//! CRRT's domain rules over [`crrt_store`]: who may do what ([`policy`], the
//! one place authorisation is decided), accounts and credentials
//! ([`auth`]), assistance requests and their states ([`requests`]), and the
//! audit trail every state change writes in the same transaction.
//!
//! The [`Platform`] is cheap to clone and shared by every request handler.
//! Each operation takes the acting [`Actor`] (or none, for administration
//! from the command line on the same machine), checks the policy, changes
//! the store and appends the audit event, then commits.
//!
//! ```no_run
//! # async fn demo() -> Result<(), crrt_platform::PlatformError> {
//! use crrt_platform::{NewOrg, OrgKind, Platform};
//! let platform = Platform::open("sqlite://crrt-data/crrt.db").await?;
//! platform
//!     .create_org(None, NewOrg { name: "CERT-EE".into(), kind: OrgKind::Member, country: "EE".into() })
//!     .await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod cases;
pub mod evidence;
pub mod hunts;
pub mod indicators;
pub mod missions;
mod model;
pub mod policy;
pub mod reports;
pub mod requests;
pub mod rulepacks;
pub mod secrets;
pub mod taxii;
pub mod uploads;
mod views;
pub mod watch;

use crrt_store::{AuditEntry, Store, StoreError};

pub use auth::{Credentials, LoginLimiter, NewToken, NewUser, ProfileUpdate};
pub use cases::{Case, CaseView, NewCase, NewTask, Note, Task, TaskUpdate, render_markdown};
pub use crrt_store::{
    ApiToken, AssistanceRequest, AuditEvent, AuditVerification, Availability, Mission,
    Organisation, Page, User,
};
pub use crrt_store::{
    IndicatorFilter, Sighting, StoredIndicator, Subscription, TaxiiFilter, VersionMatch,
};
pub use crrt_store::{IssuedSitrep, Recommendations};
pub use evidence::{Evidence, EvidenceStore, Incoming};
pub use hunts::{Hunt, NewHunt, StoredFinding, TimelineEntry, WorkerOptions};
pub use indicators::{
    BatchSettings, Format, ImportReport, IndicatorLink, IndicatorUpdate, IndicatorView,
    NewIndicator,
};
pub use missions::{
    Activation, Candidate, ChecklistUpdate, Clock, MissionStatus, MissionView, Position,
};
pub use model::{Actor, NewOrg, OrgKind, Role, Skill, Tlp, UserView};
pub use reports::{Report, ReportKind};
pub use requests::{Decision, NewRequest, RequestStatus, Urgency};
pub use rulepacks::{RulePack, RuleProblem};
pub use uploads::{NewUpload, Upload, UploadChunk, UploadProgress};
pub use watch::{
    AlertFile, NewWatchTarget, WatchAlertView, WatchNotificationSettings, WatchNotificationView,
    WatchOptions, WatchTargetView,
};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("sign in first")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed sign-ins; try again in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("{0}")]
    TooLarge(String),
    /// The evidence store failed (disk full, permissions).
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Store(StoreError),
}

impl From<StoreError> for PlatformError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => {
                PlatformError::Conflict(format!("{what} already exists"))
            }
            StoreError::Conflict(what) => PlatformError::Conflict(format!(
                "{what} was changed by someone else; reload it and try again"
            )),
            other => PlatformError::Store(other),
        }
    }
}

impl From<crrt_intel::IntelError> for PlatformError {
    fn from(e: crrt_intel::IntelError) -> Self {
        match e {
            crrt_intel::IntelError::Invalid(message) => PlatformError::Invalid(message),
        }
    }
}

pub type Result<T> = std::result::Result<T, PlatformError>;

/// The team platform: the store plus the rules.
#[derive(Debug, Clone)]
pub struct Platform {
    store: Store,
    limiter: std::sync::Arc<LoginLimiter>,
    evidence: Option<evidence::EvidenceStore>,
    /// Seals the partner credentials subscriptions keep.
    secrets: Option<std::sync::Arc<secrets::SecretBox>>,
    /// Whether watch targets may be loopback or private addresses.
    watch_private: bool,
}

impl Platform {
    pub async fn open(database_url: &str) -> Result<Platform> {
        Ok(Platform::new(Store::open(database_url).await?))
    }

    pub fn new(store: Store) -> Platform {
        Platform {
            store,
            limiter: std::sync::Arc::new(LoginLimiter::default()),
            evidence: None,
            secrets: None,
            watch_private: false,
        }
    }

    /// Lets missions watch loopback and private addresses. Off by default:
    /// the watch fetches what the team names and keeps the body, which
    /// would let a mission member read the server's own network.
    pub fn allow_private_watch_targets(mut self, allowed: bool) -> Platform {
        self.watch_private = allowed;
        self
    }

    /// Keeps uploaded evidence in `store`.
    pub fn with_evidence(mut self, store: evidence::EvidenceStore) -> Platform {
        self.evidence = Some(store);
        self
    }

    /// Seals stored credentials (of TAXII subscriptions, of watch
    /// webhooks) with this key.
    pub fn with_secrets(mut self, secrets: secrets::SecretBox) -> Platform {
        self.secrets = Some(std::sync::Arc::new(secrets));
        self
    }

    /// A credential to store, sealed with the platform's key.
    fn seal_secret(&self, plain: &str) -> Result<String> {
        match &self.secrets {
            Some(secrets) => Ok(secrets.seal(plain)),
            None => Err(PlatformError::Invalid(
                "this platform has no key to seal a stored credential with".into(),
            )),
        }
    }

    /// A stored credential, unsealed (one stored in clear by an older
    /// version is read as it is).
    fn open_secret(&self, stored: &str) -> Result<String> {
        if !secrets::SecretBox::is_sealed(stored) {
            return Ok(stored.to_owned());
        }
        match &self.secrets {
            Some(secrets) => secrets.open(stored),
            None => Err(PlatformError::Invalid(
                "this platform was opened without its credential key".into(),
            )),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn organisations(&self, actor: &Actor, page: Page) -> Result<Vec<Organisation>> {
        policy::require(actor, policy::Action::ListOrganisations)?;
        Ok(self.store.orgs(page).await?)
    }

    pub async fn create_org(&self, actor: Option<&Actor>, new: NewOrg) -> Result<Organisation> {
        if let Some(actor) = actor {
            policy::require(actor, policy::Action::Administer)?;
        }
        let name = new.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(PlatformError::Invalid(
                "an organisation needs a name of 1 to 200 characters".into(),
            ));
        }
        let country = new.country.trim().to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(PlatformError::Invalid(format!(
                "country {:?} is not a two-letter ISO 3166 code",
                new.country
            )));
        }
        let org = Organisation {
            id: new_id(),
            name: name.to_owned(),
            kind: new.kind.as_str().to_owned(),
            country,
            created_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_org(&org).await?;
        tx.append_audit(&audit(
            actor,
            "organisation.create",
            "organisation",
            &org.id,
            None,
            Some(&org),
        ))
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    pub async fn audit_trail(
        &self,
        actor: &Actor,
        from: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        policy::require(actor, policy::Action::ReadAudit)?;
        Ok(self.store.audit_events(from, limit).await?)
    }

    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        Ok(self.store.verify_audit().await?)
    }
}

/// Fixed-width UTC time, so that text order is time order in the store.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// 128 random bits, hex: object ids that reveal nothing and never collide.
pub(crate) fn new_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// A random id shaped as a version-4 UUID (32 hex digits): for objects
/// that other systems name by UUID (indicators in STIX).
pub(crate) fn new_uuid_id() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hex::encode(bytes)
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is not something to carry on from.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes
}

pub(crate) fn audit<T: serde::Serialize>(
    actor: Option<&Actor>,
    action: &str,
    object_type: &str,
    object_id: &str,
    before: Option<&T>,
    after: Option<&T>,
) -> AuditEntry {
    let value = |v: Option<&T>| v.and_then(|v| serde_json::to_value(v).ok());
    AuditEntry {
        at: now(),
        actor: actor.map(|a| a.user.id.clone()),
        action: action.to_owned(),
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
        before: value(before),
        after: value(after),
    }
}
