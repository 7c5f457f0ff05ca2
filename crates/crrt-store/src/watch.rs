//! Watched websites of missions, their last check for the status board, the
//! baseline each learnt, and their alerts (open until `closed_at`).

use crate::{Result, Store, Tx, dynamic, int, opt_text, text};

/// A mission's watched site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTarget {
    pub id: String,
    pub mission_id: String,
    pub name: String,
    pub url: String,
    /// The other settings, as JSON in `crrt watch`'s field names.
    pub settings: String,
    pub created_by: String,
    pub created_at: String,
    pub removed_at: Option<String>,
    /// The learnt baseline (JSON), kept across restarts.
    pub baseline: Option<String>,
    /// Bumped when the team accepts the current page as the new normal.
    pub generation: i64,
    pub last: Option<WatchCheck>,
}

/// The last check of a target, for the status board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchCheck {
    pub at: String,
    /// `up`, or what went wrong.
    pub result: String,
    pub latency_ms: Option<i64>,
    pub p50_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

/// An alert of a watched site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchAlert {
    pub id: String,
    pub target_id: String,
    pub mission_id: String,
    pub kind: String,
    pub summary: String,
    pub flapping: bool,
    pub opened_at: String,
    pub closed_at: Option<String>,
    /// What the opening check saw (JSON): status, timings, error, DNS.
    pub facts: String,
    /// The body as fetched and the text diff, in the evidence folder.
    pub body_sha256: Option<String>,
    pub diff_sha256: Option<String>,
}

const TARGET_COLUMNS: &str = "id, mission_id, name, url, settings, created_by, created_at, removed_at, \
     baseline, generation, last_check_at, last_result, last_latency_ms, p50_ms, p95_ms";

const ALERT_COLUMNS: &str = "id, target_id, mission_id, kind, summary, flapping, opened_at, closed_at, \
     facts, body_sha256, diff_sha256";

fn target(row: &sqlx::any::AnyRow) -> Result<WatchTarget> {
    use sqlx::Row;
    let opt_int = |column: &str| -> Result<Option<i64>> { Ok(row.try_get(column)?) };
    let last = match opt_text(row, "last_check_at")? {
        Some(at) => Some(WatchCheck {
            at,
            result: opt_text(row, "last_result")?.unwrap_or_default(),
            latency_ms: opt_int("last_latency_ms")?,
            p50_ms: opt_int("p50_ms")?,
            p95_ms: opt_int("p95_ms")?,
        }),
        None => None,
    };
    Ok(WatchTarget {
        id: text(row, "id")?,
        mission_id: text(row, "mission_id")?,
        name: text(row, "name")?,
        url: text(row, "url")?,
        settings: text(row, "settings")?,
        created_by: text(row, "created_by")?,
        created_at: text(row, "created_at")?,
        removed_at: opt_text(row, "removed_at")?,
        baseline: opt_text(row, "baseline")?,
        generation: int(row, "generation")?,
        last,
    })
}

fn alert(row: &sqlx::any::AnyRow) -> Result<WatchAlert> {
    Ok(WatchAlert {
        id: text(row, "id")?,
        target_id: text(row, "target_id")?,
        mission_id: text(row, "mission_id")?,
        kind: text(row, "kind")?,
        summary: text(row, "summary")?,
        flapping: int(row, "flapping")? != 0,
        opened_at: text(row, "opened_at")?,
        closed_at: opt_text(row, "closed_at")?,
        facts: text(row, "facts")?,
        body_sha256: opt_text(row, "body_sha256")?,
        diff_sha256: opt_text(row, "diff_sha256")?,
    })
}

impl Store {
    /// A mission's targets that are not removed, by name.
    pub async fn watch_targets(&self, mission_id: &str) -> Result<Vec<WatchTarget>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {TARGET_COLUMNS} FROM watch_targets WHERE mission_id = $1 AND removed_at IS NULL ORDER BY name, id"
        )))
        .bind(mission_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(target).collect()
    }

    /// Every target to watch: not removed, on a mission forming or active.
    pub async fn active_watch_targets(&self) -> Result<Vec<WatchTarget>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {TARGET_COLUMNS} FROM watch_targets WHERE removed_at IS NULL AND mission_id IN \
             (SELECT id FROM missions WHERE status IN ('forming', 'active')) ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(target).collect()
    }

    pub async fn watch_target(&self, id: &str) -> Result<Option<WatchTarget>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {TARGET_COLUMNS} FROM watch_targets WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(target).transpose()
    }

    /// A mission's alerts, newest first; only open ones unless `closed_too`.
    pub async fn watch_alerts(
        &self,
        mission_id: &str,
        closed_too: bool,
        limit: i64,
    ) -> Result<Vec<WatchAlert>> {
        let open_only = if closed_too {
            ""
        } else {
            " AND closed_at IS NULL"
        };
        let rows = sqlx::query(dynamic(format!(
            "SELECT {ALERT_COLUMNS} FROM watch_alerts WHERE mission_id = $1{open_only} \
             ORDER BY opened_at DESC, id LIMIT $2"
        )))
        .bind(mission_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert).collect()
    }

    pub async fn watch_alert(&self, id: &str) -> Result<Option<WatchAlert>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {ALERT_COLUMNS} FROM watch_alerts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(alert).transpose()
    }

    /// Records a target's last check (outside any transaction: one row, often).
    pub async fn record_watch_check(&self, target_id: &str, check: &WatchCheck) -> Result<()> {
        sqlx::query(
            "UPDATE watch_targets SET last_check_at = $2, last_result = $3, last_latency_ms = $4, \
             p50_ms = $5, p95_ms = $6 WHERE id = $1",
        )
        .bind(target_id)
        .bind(&check.at)
        .bind(&check.result)
        .bind(check.latency_ms)
        .bind(check.p50_ms)
        .bind(check.p95_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Tx {
    pub async fn insert_watch_target(&mut self, t: &WatchTarget) -> Result<()> {
        sqlx::query(
            "INSERT INTO watch_targets (id, mission_id, name, url, settings, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.id)
        .bind(&t.mission_id)
        .bind(&t.name)
        .bind(&t.url)
        .bind(&t.settings)
        .bind(&t.created_by)
        .bind(&t.created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn remove_watch_target(&mut self, id: &str, at: &str) -> Result<()> {
        sqlx::query(
            "UPDATE watch_targets SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        // A removed target's open alerts end with it.
        self.close_alerts_of(id, at).await
    }

    /// Forgets the baseline (the next look is the new one) and closes the
    /// target's open alerts.
    pub async fn rebaseline_watch_target(&mut self, id: &str, at: &str) -> Result<()> {
        sqlx::query(
            "UPDATE watch_targets SET baseline = NULL, generation = generation + 1 WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        self.close_alerts_of(id, at).await
    }

    /// Ends every open alert of a target.
    async fn close_alerts_of(&mut self, id: &str, at: &str) -> Result<()> {
        sqlx::query(
            "UPDATE watch_alerts SET closed_at = $2 WHERE target_id = $1 AND closed_at IS NULL",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn set_watch_baseline(&mut self, id: &str, baseline: &str) -> Result<()> {
        sqlx::query("UPDATE watch_targets SET baseline = $2 WHERE id = $1")
            .bind(id)
            .bind(baseline)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Opens an alert unless one of its kind is already open for the target
    /// (a restart re-detects what is still wrong); returns whether it did.
    pub async fn open_watch_alert(&mut self, a: &WatchAlert) -> Result<bool> {
        let open = sqlx::query("SELECT COUNT(*) FROM watch_alerts WHERE target_id = $1 AND kind = $2 AND closed_at IS NULL")
            .bind(&a.target_id)
            .bind(&a.kind)
            .fetch_one(&mut *self.tx)
            .await?;
        use sqlx::Row;
        if open.try_get::<i64, _>(0)? > 0 {
            return Ok(false);
        }
        sqlx::query(dynamic(format!(
            "INSERT INTO watch_alerts ({ALERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )))
        .bind(&a.id)
        .bind(&a.target_id)
        .bind(&a.mission_id)
        .bind(&a.kind)
        .bind(&a.summary)
        .bind(i64::from(a.flapping))
        .bind(&a.opened_at)
        .bind(a.closed_at.as_deref())
        .bind(&a.facts)
        .bind(a.body_sha256.as_deref())
        .bind(a.diff_sha256.as_deref())
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// Closes the open alert of this kind; returns its id if there was one.
    pub async fn close_watch_alert(
        &mut self,
        target_id: &str,
        kind: &str,
        at: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT id FROM watch_alerts WHERE target_id = $1 AND kind = $2 AND closed_at IS NULL",
        )
        .bind(target_id)
        .bind(kind)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id = text(&row, "id")?;
        sqlx::query("UPDATE watch_alerts SET closed_at = $2 WHERE id = $1")
            .bind(&id)
            .bind(at)
            .execute(&mut *self.tx)
            .await?;
        Ok(Some(id))
    }
}

/// Where a mission's watch alerts are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchNotifications {
    pub mission_id: String,
    pub webhook_url: Option<String>,
    /// The HMAC key, sealed by the platform (signing needs it back).
    pub webhook_secret: Option<String>,
    /// E-mail addresses (JSON list in the row).
    pub emails: Vec<String>,
    pub updated_by: String,
    pub updated_at: String,
}

fn watch_notifications(row: &sqlx::any::AnyRow) -> Result<WatchNotifications> {
    Ok(WatchNotifications {
        mission_id: text(row, "mission_id")?,
        webhook_url: opt_text(row, "webhook_url")?,
        webhook_secret: opt_text(row, "webhook_secret")?,
        emails: crate::from_json(row, "emails")?,
        updated_by: text(row, "updated_by")?,
        updated_at: text(row, "updated_at")?,
    })
}

const NOTIFICATION_COLUMNS: &str =
    "mission_id, webhook_url, webhook_secret, emails, updated_by, updated_at";

impl Store {
    pub async fn watch_notifications(
        &self,
        mission_id: &str,
    ) -> Result<Option<WatchNotifications>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM watch_notifications WHERE mission_id = $1"
        )))
        .bind(mission_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(watch_notifications).transpose()
    }

    /// Every mission's settings that name a webhook secret.
    pub async fn watch_notifications_with_secrets(&self) -> Result<Vec<WatchNotifications>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM watch_notifications \
             WHERE webhook_secret IS NOT NULL ORDER BY mission_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(watch_notifications).collect()
    }
}

impl Tx {
    /// Replaces a mission's webhook secret as stored (when sealing it).
    pub async fn set_webhook_secret(&mut self, mission_id: &str, secret: &str) -> Result<()> {
        sqlx::query("UPDATE watch_notifications SET webhook_secret = $2 WHERE mission_id = $1")
            .bind(mission_id)
            .bind(secret)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Replaces a mission's notification settings.
    pub async fn set_watch_notifications(&mut self, n: &WatchNotifications) -> Result<()> {
        sqlx::query("DELETE FROM watch_notifications WHERE mission_id = $1")
            .bind(&n.mission_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO watch_notifications (mission_id, webhook_url, webhook_secret, emails, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&n.mission_id)
        .bind(n.webhook_url.as_deref())
        .bind(n.webhook_secret.as_deref())
        .bind(crate::json(&n.emails))
        .bind(&n.updated_by)
        .bind(&n.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
