//! What reports need kept: the team's recommendations per mission, and the
//! situation reports issued (each starts where the last one ended).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Result, Store, Tx, opt_text, text};

/// The team's recommendations for the final report, in Markdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recommendations {
    pub mission_id: String,
    pub markdown: String,
    pub updated_by: String,
    pub updated_at: String,
}

/// A situation report as issued: the period it covered, who issued it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssuedSitrep {
    pub id: String,
    pub mission_id: String,
    /// `None` for the first: it covers the mission from its start.
    pub period_from: Option<String>,
    pub period_to: String,
    pub issued_by: String,
    pub issued_at: String,
}

impl Store {
    pub async fn recommendations(&self, mission_id: &str) -> Result<Option<Recommendations>> {
        let row = sqlx::query(
            "SELECT mission_id, markdown, updated_by, updated_at FROM mission_recommendations \
             WHERE mission_id = $1",
        )
        .bind(mission_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Recommendations {
                mission_id: text(&r, "mission_id")?,
                markdown: text(&r, "markdown")?,
                updated_by: text(&r, "updated_by")?,
                updated_at: text(&r, "updated_at")?,
            })
        })
        .transpose()
    }

    /// The mission's situation reports, latest first.
    pub async fn sitreps(&self, mission_id: &str) -> Result<Vec<IssuedSitrep>> {
        let rows = sqlx::query(
            "SELECT id, mission_id, period_from, period_to, issued_by, issued_at FROM sitreps \
             WHERE mission_id = $1 ORDER BY period_to DESC, id",
        )
        .bind(mission_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IssuedSitrep {
                    id: text(r, "id")?,
                    mission_id: text(r, "mission_id")?,
                    period_from: opt_text(r, "period_from")?,
                    period_to: text(r, "period_to")?,
                    issued_by: text(r, "issued_by")?,
                    issued_at: text(r, "issued_at")?,
                })
            })
            .collect()
    }
}

impl Tx {
    pub async fn set_recommendations(&mut self, r: &Recommendations) -> Result<()> {
        sqlx::query(
            "INSERT INTO mission_recommendations (mission_id, markdown, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (mission_id) DO UPDATE SET \
             markdown = excluded.markdown, updated_by = excluded.updated_by, \
             updated_at = excluded.updated_at",
        )
        .bind(&r.mission_id)
        .bind(&r.markdown)
        .bind(&r.updated_by)
        .bind(&r.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn insert_sitrep(&mut self, s: &IssuedSitrep) -> Result<()> {
        sqlx::query(
            "INSERT INTO sitreps (id, mission_id, period_from, period_to, issued_by, issued_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id)
        .bind(&s.mission_id)
        .bind(&s.period_from)
        .bind(&s.period_to)
        .bind(&s.issued_by)
        .bind(&s.issued_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
