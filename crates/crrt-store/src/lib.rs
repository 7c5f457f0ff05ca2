//! CRRT's storage: one schema on SQLite (the embedded default: one file, no
//! other service) and on PostgreSQL (for replicas and workers). This is the
//! only crate that writes SQL.
//!
//! - [`Store::open`] connects (`sqlite://PATH` or `postgres://...`), creates or
//!   upgrades the schema ([`migrations`]) and hands out reads and
//!   transactions.
//! - [`Tx`] is one transaction: every state change of the platform and its
//!   [`audit`] event commit together or not at all.
//! - Rows are plain records ([`Organisation`], [`User`], [`AssistanceRequest`],
//!   ...); their meaning (roles, states, who may do what) belongs to
//!   `crrt-platform`.
//!
//! Queries are written once, with `$1`-style parameters in order, in the SQL
//! both engines accept; values are `TEXT` and `BIGINT` (times as RFC 3339
//! UTC strings, which sort chronologically), so one code path serves both.
//!
//! ```no_run
//! # async fn demo() -> Result<(), crrt_store::StoreError> {
//! let store = crrt_store::Store::open("sqlite://crrt-data/crrt.db").await?;
//! let mut tx = store.begin().await?;
//! // ... tx.insert_org(...), tx.append_audit(...)
//! tx.commit().await?;
//! # Ok(()) }
//! ```

pub mod audit;
mod indicators;
mod migrations;
mod reports;
mod rows;
mod taxii;
pub mod testing;
mod watch;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row};

pub use audit::{AuditEntry, AuditEvent, AuditVerification};
pub use indicators::{Audience, IndicatorFilter, Sighting, StoredIndicator};
pub use reports::{IssuedSitrep, Recommendations};
pub use rows::*;
pub use taxii::{Partition, Subscription, TaxiiFilter, TaxiiObject, VersionMatch};
pub use watch::{WatchAlert, WatchCheck, WatchNotifications, WatchTarget};

/// Which database engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is neither sqlite:// nor postgres://")]
    BadUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} was changed by someone else; reload and try again")]
    Conflict(String),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which missions a list shows.
#[derive(Debug, Clone, Copy)]
pub enum MissionScope<'a> {
    All,
    /// Of one requesting organisation.
    Organisation(&'a str),
    /// Those this user is on.
    Member(&'a str),
}

/// A page of a list: at most `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects and brings the schema up to date. SQLite files are created
    /// when missing, in WAL mode with full synchronous writes, so a process
    /// killed mid-write leaves the last committed state.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(url.to_owned()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let mut options = AnyPoolOptions::new().max_connections(match backend {
            // One writer at a time either way; a few readers beside it.
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        });
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(
                        // A 64 MiB page cache per connection (the default
                        // is 2 MiB): indexes of 100,000s of rows stay in
                        // memory, so inserts and pages stay flat.
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                         PRAGMA cache_size = -65536;",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        let store = Store { pool, backend };
        migrations::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn begin(&self) -> Result<Tx> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Sqlite {
            // Take the write lock now rather than on the first write, so two
            // read-then-write transactions cannot deadlock on the upgrade.
            sqlx::query("UPDATE audit_head SET id = id WHERE id = 1")
                .execute(&mut *tx)
                .await?;
        }
        Ok(Tx {
            tx,
            sqlite: self.backend == Backend::Sqlite,
        })
    }

    // ----- organisations -----

    pub async fn org(&self, id: &str) -> Result<Option<Organisation>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {ORG_COLUMNS} FROM organisations WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Organisation::from_row(&r)).transpose()
    }

    pub async fn org_by_name(&self, name: &str) -> Result<Option<Organisation>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {ORG_COLUMNS} FROM organisations WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Organisation::from_row(&r)).transpose()
    }

    pub async fn orgs(&self, page: Page) -> Result<Vec<Organisation>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {ORG_COLUMNS} FROM organisations ORDER BY name LIMIT $1 OFFSET $2"
        )))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Organisation::from_row).collect()
    }

    // ----- users -----

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| User::from_row(&r)).transpose()
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        )))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| User::from_row(&r)).transpose()
    }

    /// Users, optionally of one organisation, by email.
    pub async fn users(&self, org_id: Option<&str>, page: Page) -> Result<Vec<User>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE ($1 = '' OR org_id = $1) \
             ORDER BY email LIMIT $2 OFFSET $3"
        )))
        .bind(org_id.unwrap_or(""))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(User::from_row).collect()
    }

    pub async fn count_users(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    // ----- sessions and API tokens -----

    /// The user of a live session (`now` before its expiry).
    pub async fn session_user(&self, token_hash: &str, now: &str) -> Result<Option<User>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {USER_COLUMNS_U} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2"
        )))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| User::from_row(&r)).transpose()
    }

    /// The user of an API token that has not been revoked.
    pub async fn token_user(&self, token_hash: &str) -> Result<Option<User>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {USER_COLUMNS_U} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| User::from_row(&r)).transpose()
    }

    pub async fn tokens_of(&self, user_id: &str, page: Page) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id \
             LIMIT $2 OFFSET $3"
        )))
        .bind(user_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ApiToken::from_row).collect()
    }

    pub async fn token(&self, id: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| ApiToken::from_row(&r)).transpose()
    }

    // ----- assistance requests -----

    pub async fn request(&self, id: &str) -> Result<Option<AssistanceRequest>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| AssistanceRequest::from_row(&r)).transpose()
    }

    /// Requests, newest first, optionally of one requesting organisation.
    pub async fn requests(
        &self,
        org_id: Option<&str>,
        page: Page,
    ) -> Result<Vec<AssistanceRequest>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE ($1 = '' OR org_id = $1) \
             ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
        )))
        .bind(org_id.unwrap_or(""))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(AssistanceRequest::from_row).collect()
    }

    // ----- activation council and missions -----

    pub async fn council(&self, request_id: &str) -> Result<Option<Council>> {
        let row = sqlx::query(
            "SELECT request_id, lead_org_id, rotating_org_id, convened_by, convened_at \
             FROM councils WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Council::from_row(&r)).transpose()
    }

    pub async fn council_positions(&self, request_id: &str) -> Result<Vec<CouncilPosition>> {
        let rows = sqlx::query(
            "SELECT request_id, org_id, position, recorded_by, recorded_at \
             FROM council_positions WHERE request_id = $1 ORDER BY recorded_at, org_id",
        )
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(CouncilPosition::from_row).collect()
    }

    pub async fn mission(&self, id: &str) -> Result<Option<Mission>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {MISSION_COLUMNS} FROM missions WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Mission::from_row(&r)).transpose()
    }

    pub async fn mission_of_request(&self, request_id: &str) -> Result<Option<Mission>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {MISSION_COLUMNS} FROM missions WHERE request_id = $1"
        )))
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Mission::from_row(&r)).transpose()
    }

    /// Missions, newest first: all, of one requesting organisation, or those
    /// a user is a member of.
    pub async fn missions(&self, scope: MissionScope<'_>, page: Page) -> Result<Vec<Mission>> {
        let (org, member) = match scope {
            MissionScope::All => ("", ""),
            MissionScope::Organisation(org) => (org, ""),
            MissionScope::Member(user) => ("", user),
        };
        let rows = sqlx::query(dynamic(format!(
            "SELECT {MISSION_COLUMNS} FROM missions m WHERE ($1 = '' OR m.org_id = $1) \
             AND ($2 = '' OR EXISTS (SELECT 1 FROM mission_members mm \
                  WHERE mm.mission_id = m.id AND mm.user_id = $2)) \
             ORDER BY m.created_at DESC, m.id LIMIT $3 OFFSET $4"
        )))
        .bind(org)
        .bind(member)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Mission::from_row).collect()
    }

    /// The ids of a mission's team members.
    pub async fn mission_members(&self, mission_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT user_id FROM mission_members WHERE mission_id = $1 ORDER BY added_at, user_id",
        )
        .bind(mission_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| text(r, "user_id")).collect()
    }

    pub async fn is_mission_member(&self, mission_id: &str, user_id: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM mission_members WHERE mission_id = $1 AND user_id = $2",
        )
        .bind(mission_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// Every user of the given role (for team proposals), by email.
    pub async fn users_with_role(&self, role: &str) -> Result<Vec<User>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE role = $1 AND disabled = 0 ORDER BY email"
        )))
        .bind(role)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(User::from_row).collect()
    }

    // ----- cases, tasks, notes -----

    pub async fn case(&self, id: &str) -> Result<Option<Case>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Case::from_row(&r)).transpose()
    }

    pub async fn cases(&self, mission_id: &str, page: Page) -> Result<Vec<Case>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE mission_id = $1 \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        )))
        .bind(mission_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Case::from_row).collect()
    }

    pub async fn task(&self, id: &str) -> Result<Option<Task>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Task::from_row(&r)).transpose()
    }

    pub async fn tasks(&self, case_id: &str) -> Result<Vec<Task>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE case_id = $1 ORDER BY position, id"
        )))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Task::from_row).collect()
    }

    /// Tasks assigned to a user that are not done, soonest due first.
    pub async fn open_tasks_of(&self, user_id: &str, limit: i64) -> Result<Vec<Task>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE assignee_id = $1 AND status <> 'done' \
             ORDER BY due_on IS NULL, due_on, created_at, id LIMIT $2"
        )))
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Task::from_row).collect()
    }

    pub async fn notes(&self, case_id: &str, page: Page) -> Result<Vec<Note>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {NOTE_COLUMNS} FROM notes WHERE case_id = $1 \
             ORDER BY created_at, id LIMIT $2 OFFSET $3"
        )))
        .bind(case_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Note::from_row).collect()
    }

    // ----- evidence -----

    pub async fn evidence(&self, id: &str) -> Result<Option<Evidence>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Evidence::from_row(&r)).transpose()
    }

    pub async fn evidence_of_case(&self, case_id: &str, page: Page) -> Result<Vec<Evidence>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE case_id = $1 \
             ORDER BY uploaded_at, id LIMIT $2 OFFSET $3"
        )))
        .bind(case_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Evidence::from_row).collect()
    }

    pub async fn evidence_by_hash(&self, case_id: &str, sha256: &str) -> Result<Option<Evidence>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE case_id = $1 AND sha256 = $2"
        )))
        .bind(case_id)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Evidence::from_row(&r)).transpose()
    }

    /// Bytes of evidence a case holds.
    pub async fn evidence_bytes_of_case(&self, case_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM evidence WHERE case_id = $1",
        )
        .bind(case_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Every distinct stored content hash, for verification and cleanup.
    pub async fn evidence_hashes(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT sha256 FROM evidence ORDER BY sha256")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| text(r, "sha256")).collect()
    }

    // ----- rule packs -----

    pub async fn rulepack(&self, id: &str) -> Result<Option<RulePack>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {RULEPACK_COLUMNS} FROM rulepacks WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| RulePack::from_row(&r)).transpose()
    }

    pub async fn rulepacks(&self, page: Page) -> Result<Vec<RulePack>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {RULEPACK_COLUMNS} FROM rulepacks ORDER BY uploaded_at DESC, id \
             LIMIT $1 OFFSET $2"
        )))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(RulePack::from_row).collect()
    }

    /// The YAML files of a pack: (path in the pack, text).
    pub async fn rulepack_files(&self, pack_id: &str) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT path, text FROM rulepack_files WHERE pack_id = $1 ORDER BY path")
                .bind(pack_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((text(r, "path")?, text(r, "text")?)))
            .collect()
    }

    // ----- hunts and findings -----

    pub async fn hunt(&self, id: &str) -> Result<Option<Hunt>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {HUNT_COLUMNS} FROM hunts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Hunt::from_row(&r)).transpose()
    }

    pub async fn hunts_of_case(&self, case_id: &str, page: Page) -> Result<Vec<Hunt>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {HUNT_COLUMNS} FROM hunts WHERE case_id = $1 ORDER BY created_at DESC, id \
             LIMIT $2 OFFSET $3"
        )))
        .bind(case_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Hunt::from_row).collect()
    }

    /// Takes the oldest queued hunt, or one whose worker's lease ran out,
    /// for `worker` until `lease_until`. On PostgreSQL concurrent workers
    /// skip rows another is taking (`FOR UPDATE SKIP LOCKED`); SQLite has one
    /// writer at a time anyway.
    pub async fn claim_hunt(
        &self,
        worker: &str,
        now: &str,
        lease_until: &str,
    ) -> Result<Option<Hunt>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut tx = self.begin().await?;
        let row = sqlx::query(dynamic(format!(
            "UPDATE hunts SET status = 'running', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1, started_at = COALESCE(started_at, $3) \
             WHERE id = (SELECT id FROM hunts WHERE status = 'queued' \
                 OR (status = 'running' AND lease_expires_at < $3) \
                 ORDER BY created_at, id LIMIT 1 {lock}) \
             RETURNING {HUNT_COLUMNS}"
        )))
        .bind(worker)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        row.map(|r| Hunt::from_row(&r)).transpose()
    }

    /// Extends the lease and records progress; `false` when the worker no
    /// longer holds the hunt (cancelled, or its lease was taken over).
    pub async fn renew_hunt(
        &self,
        id: &str,
        worker: &str,
        lease_until: &str,
        progress: (i64, i64, i64),
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE hunts SET lease_expires_at = $1, records_done = $2, bytes_done = $3, \
             bytes_total = $4 WHERE id = $5 AND lease_owner = $6 AND status = 'running'",
        )
        .bind(lease_until)
        .bind(progress.0)
        .bind(progress.1)
        .bind(progress.2)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn findings_of_case(&self, case_id: &str, page: Page) -> Result<Vec<StoredFinding>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE case_id = $1 \
             ORDER BY at, evidence_file, record_id, rule_title LIMIT $2 OFFSET $3"
        )))
        .bind(case_id)
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(StoredFinding::from_row).collect()
    }

    /// The newest findings over all cases of a mission.
    pub async fn latest_findings_of_mission(
        &self,
        mission_id: &str,
        limit: i64,
    ) -> Result<Vec<StoredFinding>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {FINDING_COLUMNS} FROM findings \
             WHERE case_id IN (SELECT id FROM cases WHERE mission_id = $1) \
             ORDER BY created_at DESC, at DESC, id LIMIT $2"
        )))
        .bind(mission_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(StoredFinding::from_row).collect()
    }

    pub async fn finding(&self, id: &str) -> Result<Option<StoredFinding>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {FINDING_COLUMNS} FROM findings WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| StoredFinding::from_row(&r)).transpose()
    }

    // ----- audit -----

    /// Audit events in chain order, from sequence number `from` on.
    pub async fn audit_events(&self, from: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2"
        )))
        .bind(from)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(AuditEvent::from_row).collect()
    }

    /// Audit events about one object, in order.
    pub async fn audit_of(&self, object_type: &str, object_id: &str) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE object_type = $1 AND object_id = $2 \
             ORDER BY seq"
        )))
        .bind(object_type)
        .bind(object_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(AuditEvent::from_row).collect()
    }

    /// Recomputes the whole chain; reports the first row that does not fit.
    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let head_seq: i64 = head.try_get(0)?;
        let head_hash: String = head.try_get(1)?;
        let mut expected_prev = audit::GENESIS.to_owned();
        let mut expected_seq = 1;
        loop {
            let batch = self.audit_events(expected_seq, 1000).await?;
            if batch.is_empty() {
                break;
            }
            for event in batch {
                if let Some(problem) = audit::check_link(&event, expected_seq, &expected_prev) {
                    return Ok(AuditVerification::Broken {
                        seq: expected_seq,
                        problem,
                    });
                }
                expected_prev = event.hash;
                expected_seq += 1;
            }
        }
        let n_events = expected_seq - 1;
        if n_events != head_seq || expected_prev != head_hash {
            return Ok(AuditVerification::Broken {
                seq: n_events + 1,
                problem: format!(
                    "the chain ends at event {n_events} but its head records event {head_seq}: \
                     events were removed from the end"
                ),
            });
        }
        Ok(AuditVerification::Intact { n_events })
    }
}

/// One transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    tx: sqlx::Transaction<'static, Any>,
    sqlite: bool,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tx")
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn insert_org(&mut self, org: &Organisation) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO organisations (id, name, kind, country, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&org.id)
        .bind(&org.name)
        .bind(&org.kind)
        .bind(&org.country)
        .bind(&org.created_at)
        .execute(&mut *self.tx)
        .await;
        unique(result, || format!("organisation {:?}", org.name))
    }

    pub async fn insert_user(&mut self, user: &User) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO users (id, email, display_name, org_id, role, password_hash, skills, \
             languages, availability, disabled, version, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(&user.org_id)
        .bind(&user.role)
        .bind(&user.password_hash)
        .bind(json(&user.skills))
        .bind(json(&user.languages))
        .bind(json(&user.availability))
        .bind(i64::from(user.disabled))
        .bind(user.version)
        .bind(&user.created_at)
        .execute(&mut *self.tx)
        .await;
        unique(result, || format!("user {:?}", user.email))
    }

    /// Writes `user` if the stored row still has `user.version - 1`.
    pub async fn update_user(&mut self, user: &User) -> Result<()> {
        let done = sqlx::query(
            "UPDATE users SET display_name = $1, role = $2, password_hash = $3, skills = $4, \
             languages = $5, availability = $6, disabled = $7, version = $8 \
             WHERE id = $9 AND version = $10",
        )
        .bind(&user.display_name)
        .bind(&user.role)
        .bind(&user.password_hash)
        .bind(json(&user.skills))
        .bind(json(&user.languages))
        .bind(json(&user.availability))
        .bind(i64::from(user.disabled))
        .bind(user.version)
        .bind(&user.id)
        .bind(user.version - 1)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("user {}", user.email)));
        }
        Ok(())
    }

    /// Ends every session of a user (disabled, or password changed).
    pub async fn delete_sessions_of(&mut self, user_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_session(&mut self, session: &Session) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&session.token_hash)
        .bind(&session.user_id)
        .bind(&session.created_at)
        .bind(&session.expires_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn delete_session(&mut self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes sessions that expired before `now`.
    pub async fn delete_expired_sessions(&mut self, now: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_token(&mut self, token: &ApiToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&token.id)
        .bind(&token.user_id)
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(&token.created_at)
        .bind(token.revoked_at.as_deref())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn revoke_token(&mut self, id: &str, at: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn insert_request(&mut self, request: &AssistanceRequest) -> Result<()> {
        sqlx::query(dynamic(format!(
            "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        )))
        .bind(&request.id)
        .bind(&request.org_id)
        .bind(&request.filed_by)
        .bind(&request.summary)
        .bind(&request.symptoms)
        .bind(json(&request.affected_systems))
        .bind(&request.urgency)
        .bind(&request.tlp)
        .bind(json(&request.capabilities))
        .bind(&request.mitigations)
        .bind(&request.status)
        .bind(request.decline_reason.as_deref())
        .bind(request.version)
        .bind(&request.created_at)
        .bind(&request.updated_at)
        .bind(request.decided_at.as_deref())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes `request` if the stored row still has `request.version - 1`:
    /// optimistic versioning, so two concurrent edits cannot both win.
    pub async fn update_request(&mut self, request: &AssistanceRequest) -> Result<()> {
        let done = sqlx::query(
            "UPDATE requests SET summary = $1, symptoms = $2, affected_systems = $3, \
             urgency = $4, tlp = $5, capabilities = $6, mitigations = $7, status = $8, \
             decline_reason = $9, version = $10, updated_at = $11, decided_at = $12 \
             WHERE id = $13 AND version = $14",
        )
        .bind(&request.summary)
        .bind(&request.symptoms)
        .bind(json(&request.affected_systems))
        .bind(&request.urgency)
        .bind(&request.tlp)
        .bind(json(&request.capabilities))
        .bind(&request.mitigations)
        .bind(&request.status)
        .bind(request.decline_reason.as_deref())
        .bind(request.version)
        .bind(&request.updated_at)
        .bind(request.decided_at.as_deref())
        .bind(&request.id)
        .bind(request.version - 1)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("request {}", request.id)));
        }
        Ok(())
    }

    pub async fn insert_council(&mut self, council: &Council) -> Result<()> {
        sqlx::query(
            "INSERT INTO councils (request_id, lead_org_id, rotating_org_id, convened_by, convened_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&council.request_id)
        .bind(&council.lead_org_id)
        .bind(council.rotating_org_id.as_deref())
        .bind(&council.convened_by)
        .bind(&council.convened_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records (or replaces) a member state's council position.
    pub async fn set_council_position(&mut self, position: &CouncilPosition) -> Result<()> {
        sqlx::query(
            "INSERT INTO council_positions (request_id, org_id, position, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id, org_id) DO UPDATE SET \
             position = excluded.position, recorded_by = excluded.recorded_by, \
             recorded_at = excluded.recorded_at",
        )
        .bind(&position.request_id)
        .bind(&position.org_id)
        .bind(&position.position)
        .bind(&position.recorded_by)
        .bind(&position.recorded_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn insert_mission(&mut self, mission: &Mission) -> Result<()> {
        let result = sqlx::query(dynamic(format!(
            "INSERT INTO missions ({MISSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(&mission.id)
        .bind(&mission.request_id)
        .bind(&mission.org_id)
        .bind(&mission.title)
        .bind(&mission.status)
        .bind(json(&mission.checklist))
        .bind(mission.team_confirmed_at.as_deref())
        .bind(mission.version)
        .bind(&mission.created_at)
        .bind(&mission.updated_at)
        .execute(&mut *self.tx)
        .await;
        unique(result, || {
            format!("a mission for request {}", mission.request_id)
        })
    }

    /// Writes `mission` if the stored row still has `mission.version - 1`.
    pub async fn update_mission(&mut self, mission: &Mission) -> Result<()> {
        let done = sqlx::query(
            "UPDATE missions SET title = $1, status = $2, checklist = $3, team_confirmed_at = $4, \
             version = $5, updated_at = $6 WHERE id = $7 AND version = $8",
        )
        .bind(&mission.title)
        .bind(&mission.status)
        .bind(json(&mission.checklist))
        .bind(mission.team_confirmed_at.as_deref())
        .bind(mission.version)
        .bind(&mission.updated_at)
        .bind(&mission.id)
        .bind(mission.version - 1)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("mission {}", mission.id)));
        }
        Ok(())
    }

    /// Replaces a mission's team.
    pub async fn set_mission_members(
        &mut self,
        mission_id: &str,
        user_ids: &[String],
        at: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM mission_members WHERE mission_id = $1")
            .bind(mission_id)
            .execute(&mut *self.tx)
            .await?;
        for user_id in user_ids {
            sqlx::query(
                "INSERT INTO mission_members (mission_id, user_id, added_at) VALUES ($1, $2, $3)",
            )
            .bind(mission_id)
            .bind(user_id)
            .bind(at)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    pub async fn insert_case(&mut self, case: &Case) -> Result<()> {
        sqlx::query(dynamic(format!(
            "INSERT INTO cases ({CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(&case.id)
        .bind(&case.mission_id)
        .bind(&case.title)
        .bind(case.playbook.as_deref())
        .bind(&case.status)
        .bind(case.version)
        .bind(&case.created_by)
        .bind(&case.created_at)
        .bind(&case.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn insert_task(&mut self, task: &Task) -> Result<()> {
        sqlx::query(dynamic(format!(
            "INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(&task.id)
        .bind(&task.case_id)
        .bind(&task.title)
        .bind(task.assignee_id.as_deref())
        .bind(&task.status)
        .bind(task.due_on.as_deref())
        .bind(task.position)
        .bind(task.version)
        .bind(&task.created_at)
        .bind(&task.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes `task` if the stored row still has `task.version - 1`.
    pub async fn update_task(&mut self, task: &Task) -> Result<()> {
        let done = sqlx::query(
            "UPDATE tasks SET title = $1, assignee_id = $2, status = $3, due_on = $4, \
             version = $5, updated_at = $6 WHERE id = $7 AND version = $8",
        )
        .bind(&task.title)
        .bind(task.assignee_id.as_deref())
        .bind(&task.status)
        .bind(task.due_on.as_deref())
        .bind(task.version)
        .bind(&task.updated_at)
        .bind(&task.id)
        .bind(task.version - 1)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("task {}", task.id)));
        }
        Ok(())
    }

    pub async fn insert_note(&mut self, note: &Note) -> Result<()> {
        sqlx::query(dynamic(format!(
            "INSERT INTO notes ({NOTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        )))
        .bind(&note.id)
        .bind(&note.case_id)
        .bind(&note.author_id)
        .bind(&note.markdown)
        .bind(&note.html)
        .bind(&note.created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn insert_evidence(&mut self, evidence: &Evidence) -> Result<()> {
        let result = sqlx::query(dynamic(format!(
            "INSERT INTO evidence ({EVIDENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(&evidence.id)
        .bind(&evidence.case_id)
        .bind(&evidence.name)
        .bind(evidence.size)
        .bind(&evidence.sha256)
        .bind(&evidence.uploaded_by)
        .bind(&evidence.uploaded_from)
        .bind(&evidence.uploaded_at)
        .execute(&mut *self.tx)
        .await;
        unique(result, || {
            format!("this content (SHA-256 {}) in the case", evidence.sha256)
        })
    }

    pub async fn insert_rulepack(
        &mut self,
        pack: &RulePack,
        files: &[(String, String)],
    ) -> Result<()> {
        let result = sqlx::query(dynamic(format!(
            "INSERT INTO rulepacks ({RULEPACK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(&pack.id)
        .bind(&pack.name)
        .bind(&pack.sha256)
        .bind(pack.n_files)
        .bind(pack.n_rules)
        .bind(json(&pack.problems))
        .bind(&pack.uploaded_by)
        .bind(&pack.uploaded_at)
        .bind(&pack.kind)
        .execute(&mut *self.tx)
        .await;
        unique(result, || {
            format!("a rule pack with this content (SHA-256 {})", pack.sha256)
        })?;
        for (path, text) in files {
            sqlx::query("INSERT INTO rulepack_files (pack_id, path, text) VALUES ($1, $2, $3)")
                .bind(&pack.id)
                .bind(path)
                .bind(text)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    pub async fn insert_hunt(&mut self, hunt: &Hunt) -> Result<()> {
        sqlx::query(dynamic(format!(
            "INSERT INTO hunts ({HUNT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        )))
        .bind(&hunt.id)
        .bind(&hunt.case_id)
        .bind(&hunt.status)
        .bind(json(&hunt.rulepack_ids))
        .bind(json(&hunt.evidence_ids))
        .bind(&hunt.requested_by)
        .bind(&hunt.created_at)
        .bind(hunt.started_at.as_deref())
        .bind(hunt.finished_at.as_deref())
        .bind(hunt.lease_owner.as_deref())
        .bind(hunt.lease_expires_at.as_deref())
        .bind(hunt.attempts)
        .bind(hunt.records_done)
        .bind(hunt.bytes_done)
        .bind(hunt.bytes_total)
        .bind(hunt.n_findings)
        .bind(hunt.error.as_deref())
        .bind(json(&hunt.indicator_ids))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Ends a hunt the worker still holds; `false` if it no longer does.
    pub async fn finish_hunt(
        &mut self,
        id: &str,
        worker: &str,
        status: &str,
        at: &str,
        n_findings: i64,
        error: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE hunts SET status = $1, finished_at = $2, n_findings = $3, error = $4, \
             lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $5 AND lease_owner = $6 AND status = 'running'",
        )
        .bind(status)
        .bind(at)
        .bind(n_findings)
        .bind(error)
        .bind(id)
        .bind(worker)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn set_hunt_findings(&mut self, id: &str, n_findings: i64) -> Result<()> {
        sqlx::query("UPDATE hunts SET n_findings = $1 WHERE id = $2")
            .bind(n_findings)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Cancels a hunt that has not ended; `false` if it had.
    pub async fn cancel_hunt(&mut self, id: &str, at: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE hunts SET status = 'cancelled', finished_at = $1, lease_owner = NULL, \
             lease_expires_at = NULL WHERE id = $2 AND status IN ('queued', 'running')",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores findings; one already stored (same id) is left as it is.
    pub async fn insert_findings(&mut self, findings: &[StoredFinding]) -> Result<u64> {
        let mut added = 0;
        for f in findings {
            let done = sqlx::query(dynamic(format!(
                "INSERT INTO findings ({FINDING_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
                 ON CONFLICT (id) DO NOTHING"
            )))
            .bind(&f.id)
            .bind(&f.case_id)
            .bind(&f.hunt_id)
            .bind(f.evidence_id.as_deref())
            .bind(&f.evidence_file)
            .bind(f.rule_id.as_deref())
            .bind(&f.rule_title)
            .bind(&f.level)
            .bind(json(&f.tags))
            .bind(f.at.as_deref())
            .bind(f.host.as_deref())
            .bind(f.channel.as_deref())
            .bind(f.event_id)
            .bind(f.record_id)
            .bind(f.event.to_string())
            .bind(&f.triage)
            .bind(f.triage_comment.as_deref())
            .bind(&f.created_at)
            .execute(&mut *self.tx)
            .await?;
            added += done.rows_affected();
        }
        Ok(added)
    }

    pub async fn set_triage(
        &mut self,
        id: &str,
        verdict: &str,
        comment: Option<&str>,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE findings SET triage = $1, triage_comment = $2 WHERE id = $3")
                .bind(verdict)
                .bind(comment)
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Appends to the hash chain. The head row is updated first: on
    /// PostgreSQL that locks it until commit, on SQLite the transaction
    /// already holds the write lock, so appenders are serialised.
    pub async fn append_audit(&mut self, entry: &AuditEntry) -> Result<AuditEvent> {
        let head =
            sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
                .fetch_one(&mut *self.tx)
                .await?;
        let seq: i64 = head.try_get(0)?;
        let prev_hash: String = head.try_get(1)?;
        let event = AuditEvent::chain(entry, seq, prev_hash);
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
            .bind(&event.hash)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(dynamic(format!(
            "INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(event.seq)
        .bind(&event.at)
        .bind(event.actor.as_deref())
        .bind(&event.action)
        .bind(&event.object_type)
        .bind(&event.object_id)
        .bind(event.before.as_ref().map(|v| v.to_string()))
        .bind(event.after.as_ref().map(|v| v.to_string()))
        .bind(&event.prev_hash)
        .bind(&event.hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(event)
    }
}

/// `(p, p, ...), (p, ...)`: the parameter lists of a multi-row INSERT,
/// `rows` rows of `cols` parameters each. SQLite gets anonymous `?` parameters: sqlx
/// asks SQLite the name of every numbered parameter, which SQLite finds
/// by a linear scan, so `$N` parameters cost time quadratic in their
/// number (28% of the server's CPU while partners added TAXII objects).
fn value_rows(sqlite: bool, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            if sqlite {
                sql.push('?');
            } else {
                sql.push_str(&format!("${}", r * cols + c + 1));
            }
        }
        sql.push(')');
    }
    sql
}

/// Queries built from this crate's own column lists, never from input.
fn dynamic(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain strings and vectors of them cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// A unique-constraint violation becomes [`StoreError::Duplicate`].
fn unique(
    result: std::result::Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    what: impl FnOnce() -> String,
) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Duplicate(what()))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn text(row: &AnyRow, column: &str) -> Result<String> {
    Ok(row.try_get(column)?)
}

pub(crate) fn opt_text(row: &AnyRow, column: &str) -> Result<Option<String>> {
    Ok(row.try_get(column)?)
}

pub(crate) fn int(row: &AnyRow, column: &str) -> Result<i64> {
    Ok(row.try_get(column)?)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    let raw = text(row, column)?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}
