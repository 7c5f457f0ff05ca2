//! Indicators, their recipients, links to missions and cases, and
//! sightings. Reads of indicators always go through [`Audience`]: the SQL
//! form of the platform's TLP policy, so lists, searches and counts can
//! only ever return what the reader may see.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{
    Page, Result, Store, StoreError, Tx, dynamic, from_json, int, json, opt_text, text, unique,
};

pub(crate) const INDICATOR_COLUMNS: &str = "id, kind, value, tlp, source_org_id, created_by, \
     confidence, first_seen, last_seen, expires_at, tags, description, sightings, version, \
     created_at, updated_at";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StoredIndicator {
    pub id: String,
    pub kind: String,
    pub value: String,
    /// `clear`, `green`, `amber`, `amber+strict` or `red`.
    pub tlp: String,
    pub source_org_id: String,
    pub created_by: String,
    pub confidence: Option<i64>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub expires_at: Option<String>,
    pub tags: Vec<String>,
    pub description: Option<String>,
    /// How often hunts found it.
    pub sightings: i64,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl StoredIndicator {
    fn from_row(row: &AnyRow) -> Result<Self> {
        let opt_int = |c: &str| -> Result<Option<i64>> { Ok(row.try_get(c)?) };
        Ok(StoredIndicator {
            id: text(row, "id")?,
            kind: text(row, "kind")?,
            value: text(row, "value")?,
            tlp: text(row, "tlp")?,
            source_org_id: text(row, "source_org_id")?,
            created_by: text(row, "created_by")?,
            confidence: opt_int("confidence")?,
            first_seen: opt_text(row, "first_seen")?,
            last_seen: opt_text(row, "last_seen")?,
            expires_at: opt_text(row, "expires_at")?,
            tags: from_json(row, "tags")?,
            description: opt_text(row, "description")?,
            sightings: int(row, "sightings")?,
            version: int(row, "version")?,
            created_at: text(row, "created_at")?,
            updated_at: text(row, "updated_at")?,
        })
    }
}

/// Who is reading: the platform derives it from the actor and its
/// organisation; the store turns it into the visibility predicate.
#[derive(Debug, Clone)]
pub struct Audience {
    pub user_id: String,
    pub org_id: String,
    /// The reader's organisation is in the sharing community (a member
    /// team or a partner), which TLP:GREEN reaches.
    pub community: bool,
    /// The reader's organisation is a member-state team, which TLP:AMBER
    /// addressed to the member teams reaches.
    pub member: bool,
}

impl Audience {
    /// The reader's circle as one SQL parameter: 0 outside the community,
    /// 1 a partner, 2 a member-state team.
    fn circle(&self) -> i64 {
        match (self.member, self.community) {
            (true, _) => 2,
            (false, true) => 1,
            (false, false) => 0,
        }
    }
}

/// What to narrow a list to.
#[derive(Debug, Clone, Default)]
pub struct IndicatorFilter {
    pub kind: Option<String>,
    pub tlp: Option<String>,
    /// A part of the value, compared without case.
    pub search: Option<String>,
    pub mission_id: Option<String>,
    pub case_id: Option<String>,
    /// Only those changed after this time (for feeds).
    pub updated_after: Option<String>,
}

/// The TLP rules as SQL over `i` (the indicators table), with the
/// reader's user, organisation and [`Audience::circle`] as parameters 1
/// to 3.
const VISIBLE: &str = "(i.tlp = 'clear' \
     OR (i.tlp = 'green' AND ($3 >= 1 OR i.source_org_id = $2)) \
     OR (i.tlp = 'amber' AND (i.source_org_id = $2 OR (i.to_members = 1 AND $3 = 2) \
         OR EXISTS (SELECT 1 FROM indicator_recipients r \
         WHERE r.indicator_id = i.id AND r.org_id = $2))) \
     OR (i.tlp = 'amber+strict' AND i.source_org_id = $2) \
     OR (i.tlp = 'red' AND (i.created_by = $1 OR EXISTS (SELECT 1 FROM indicator_recipients r \
         WHERE r.indicator_id = i.id AND r.user_id = $1))))";

/// A sighting: where and when a hunt found an indicator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Sighting {
    pub id: String,
    pub indicator_id: String,
    pub case_id: Option<String>,
    /// The evidence file (and record) it was found in.
    pub seen_in: String,
    pub at: Option<String>,
    pub recorded_at: String,
}

impl Store {
    /// Indicators the audience may see, newest change first.
    pub async fn visible_indicators(
        &self,
        audience: &Audience,
        filter: &IndicatorFilter,
        page: Page,
    ) -> Result<Vec<StoredIndicator>> {
        let (conditions, values) = conditions(filter);
        let n = 4 + values.len();
        let sql = format!(
            "SELECT {} FROM indicators i WHERE {VISIBLE}{conditions} \
             ORDER BY i.updated_at DESC, i.id LIMIT ${n} OFFSET ${}",
            prefixed(INDICATOR_COLUMNS),
            n + 1
        );
        let mut query = sqlx::query(dynamic(sql))
            .bind(&audience.user_id)
            .bind(&audience.org_id)
            .bind(audience.circle());
        for v in &values {
            query = query.bind(v);
        }
        let rows = query
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(StoredIndicator::from_row).collect()
    }

    /// Indicators the audience may see in the order they last changed,
    /// after a (updated_at, id) position: the feed order of TAXII.
    pub async fn visible_indicators_in_order(
        &self,
        audience: &Audience,
        changed_after: Option<&str>,
        after: Option<&(String, String)>,
        limit: i64,
    ) -> Result<Vec<StoredIndicator>> {
        let mut sql = format!(
            "SELECT {} FROM indicators i WHERE {VISIBLE}",
            prefixed(INDICATOR_COLUMNS)
        );
        let mut values: Vec<&str> = Vec::new();
        if let Some(t) = changed_after {
            values.push(t);
            sql.push_str(&format!(" AND i.updated_at > ${}", 3 + values.len()));
        }
        if let Some((at, id)) = after {
            values.push(at);
            let a = 3 + values.len();
            values.push(id);
            let b = 3 + values.len();
            sql.push_str(&format!(
                " AND (i.updated_at > ${a} OR (i.updated_at = ${a} AND i.id > ${b}))"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY i.updated_at, i.id LIMIT ${}",
            4 + values.len()
        ));
        let mut query = sqlx::query(dynamic(sql))
            .bind(&audience.user_id)
            .bind(&audience.org_id)
            .bind(audience.circle());
        for v in values {
            query = query.bind(v);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(StoredIndicator::from_row).collect()
    }

    /// How many indicators the audience may see, by the same filter.
    pub async fn count_visible_indicators(
        &self,
        audience: &Audience,
        filter: &IndicatorFilter,
    ) -> Result<i64> {
        let (conditions, values) = conditions(filter);
        let sql = format!("SELECT COUNT(*) AS n FROM indicators i WHERE {VISIBLE}{conditions}");
        let mut query = sqlx::query(dynamic(sql))
            .bind(&audience.user_id)
            .bind(&audience.org_id)
            .bind(audience.circle());
        for v in &values {
            query = query.bind(v);
        }
        let row = query.fetch_one(&self.pool).await?;
        int(&row, "n")
    }

    /// One indicator, whoever may see it (the platform checks).
    pub async fn indicator(&self, id: &str) -> Result<Option<StoredIndicator>> {
        let row = sqlx::query(dynamic(format!(
            "SELECT {INDICATOR_COLUMNS} FROM indicators WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| StoredIndicator::from_row(&r)).transpose()
    }

    /// Every stored indicator with exactly this value, of any source.
    pub async fn indicators_with_value(
        &self,
        kind: &str,
        value: &str,
    ) -> Result<Vec<StoredIndicator>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {INDICATOR_COLUMNS} FROM indicators WHERE kind = $1 AND value = $2"
        )))
        .bind(kind)
        .bind(value)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(StoredIndicator::from_row).collect()
    }

    /// The organisations and users an indicator is addressed to; one
    /// addressed to the member-state teams names each of them.
    pub async fn indicator_recipients(&self, id: &str) -> Result<(Vec<String>, Vec<String>)> {
        let rows = sqlx::query(
            "SELECT org_id, user_id FROM indicator_recipients WHERE indicator_id = $1 \
             UNION ALL SELECT o.id AS org_id, NULL AS user_id FROM organisations o \
             JOIN indicators i ON i.id = $1 AND i.to_members = 1 WHERE o.kind = 'member'",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut orgs = Vec::new();
        let mut users = Vec::new();
        for row in &rows {
            if let Some(org) = opt_text(row, "org_id")?
                && !orgs.contains(&org)
            {
                orgs.push(org);
            }
            if let Some(user) = opt_text(row, "user_id")? {
                users.push(user);
            }
        }
        Ok((orgs, users))
    }

    /// The missions (and cases) an indicator is linked to.
    pub async fn indicator_links(&self, id: &str) -> Result<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT mission_id, case_id FROM indicator_links WHERE indicator_id = $1 ORDER BY mission_id, case_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((text(r, "mission_id")?, opt_text(r, "case_id")?)))
            .collect()
    }

    pub async fn sightings_of(&self, id: &str, limit: i64) -> Result<Vec<Sighting>> {
        let rows = sqlx::query(
            "SELECT id, indicator_id, case_id, seen_in, at, recorded_at FROM indicator_sightings \
             WHERE indicator_id = $1 ORDER BY recorded_at DESC, id LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Sighting {
                    id: text(r, "id")?,
                    indicator_id: text(r, "indicator_id")?,
                    case_id: opt_text(r, "case_id")?,
                    seen_in: text(r, "seen_in")?,
                    at: opt_text(r, "at")?,
                    recorded_at: text(r, "recorded_at")?,
                })
            })
            .collect()
    }
}

fn prefixed(columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("i.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Extra conditions (AND ...) and their values, numbered from $4.
fn conditions(filter: &IndicatorFilter) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    let next = |values: &mut Vec<String>, v: String| {
        values.push(v);
        format!("${}", 3 + values.len())
    };
    if let Some(kind) = &filter.kind {
        let p = next(&mut values, kind.clone());
        sql.push_str(&format!(" AND i.kind = {p}"));
    }
    if let Some(tlp) = &filter.tlp {
        let p = next(&mut values, tlp.clone());
        sql.push_str(&format!(" AND i.tlp = {p}"));
    }
    if let Some(search) = &filter.search {
        let escaped = search
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = next(&mut values, format!("%{escaped}%"));
        sql.push_str(&format!(" AND LOWER(i.value) LIKE {p} ESCAPE '\\'"));
    }
    if let Some(mission) = &filter.mission_id {
        let p = next(&mut values, mission.clone());
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM indicator_links l WHERE l.indicator_id = i.id AND l.mission_id = {p})"
        ));
    }
    if let Some(case) = &filter.case_id {
        let p = next(&mut values, case.clone());
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM indicator_links l WHERE l.indicator_id = i.id AND l.case_id = {p})"
        ));
    }
    if let Some(after) = &filter.updated_after {
        let p = next(&mut values, after.clone());
        sql.push_str(&format!(" AND i.updated_at > {p}"));
    }
    (sql, values)
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds an indicator's 16 columns, in the order of [`INDICATOR_COLUMNS`].
fn bind_indicator<'q>(query: AnyQuery<'q>, i: &'q StoredIndicator) -> AnyQuery<'q> {
    query
        .bind(&i.id)
        .bind(&i.kind)
        .bind(&i.value)
        .bind(&i.tlp)
        .bind(&i.source_org_id)
        .bind(&i.created_by)
        .bind(i.confidence)
        .bind(i.first_seen.as_deref())
        .bind(i.last_seen.as_deref())
        .bind(i.expires_at.as_deref())
        .bind(json(&i.tags))
        .bind(i.description.as_deref())
        .bind(i.sightings)
        .bind(i.version)
        .bind(&i.created_at)
        .bind(&i.updated_at)
}

impl Tx {
    pub async fn insert_indicator(&mut self, i: &StoredIndicator) -> Result<()> {
        let query = sqlx::query(dynamic(format!(
            "INSERT INTO indicators ({INDICATOR_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        )));
        let result = bind_indicator(query, i).execute(&mut *self.tx).await;
        unique(result, || {
            format!("{} {} from this organisation", i.kind, i.value)
        })
    }

    /// Inserts many indicators at once, leaving out those whose source
    /// already shares the same value; gives the ids of the ones added.
    /// With `to_members`, the TLP:AMBER ones among them are addressed to
    /// the member-state teams.
    pub async fn insert_new_indicators(
        &mut self,
        all: &[StoredIndicator],
        to_members: bool,
    ) -> Result<Vec<String>> {
        let mut added = Vec::new();
        for chunk in all.chunks(100) {
            let rows = crate::value_rows(self.sqlite, chunk.len(), 17);
            let sql = format!(
                "INSERT INTO indicators ({INDICATOR_COLUMNS}, to_members) VALUES {rows} \
                 ON CONFLICT (source_org_id, kind, value) DO NOTHING RETURNING id"
            );
            let mut query = sqlx::query(dynamic(sql));
            for i in chunk {
                query = bind_indicator(query, i).bind(i64::from(to_members && i.tlp == "amber"));
            }
            for row in query.fetch_all(&mut *self.tx).await? {
                added.push(text(&row, "id")?);
            }
        }
        Ok(added)
    }

    /// Writes the indicator if it is still at `version - 1`.
    pub async fn update_indicator(&mut self, i: &StoredIndicator) -> Result<()> {
        let done = sqlx::query(
            "UPDATE indicators SET tlp = $2, confidence = $3, first_seen = $4, last_seen = $5, \
             expires_at = $6, tags = $7, description = $8, sightings = $9, version = $10, \
             updated_at = $11 WHERE id = $1 AND version = $12",
        )
        .bind(&i.id)
        .bind(&i.tlp)
        .bind(i.confidence)
        .bind(i.first_seen.as_deref())
        .bind(i.last_seen.as_deref())
        .bind(i.expires_at.as_deref())
        .bind(json(&i.tags))
        .bind(i.description.as_deref())
        .bind(i.sightings)
        .bind(i.version)
        .bind(&i.updated_at)
        .bind(i.version - 1)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("indicator {}", i.id)));
        }
        Ok(())
    }

    pub async fn set_indicator_recipients(
        &mut self,
        id: &str,
        orgs: &[String],
        users: &[String],
    ) -> Result<()> {
        sqlx::query("DELETE FROM indicator_recipients WHERE indicator_id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        // The list given is the whole audience from now on: the member
        // teams a flag addressed it to are named in it if they still are.
        sqlx::query("UPDATE indicators SET to_members = 0 WHERE id = $1 AND to_members = 1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        for org in orgs {
            sqlx::query("INSERT INTO indicator_recipients (indicator_id, org_id, user_id) VALUES ($1, $2, NULL)")
                .bind(id)
                .bind(org)
                .execute(&mut *self.tx)
                .await?;
        }
        for user in users {
            sqlx::query("INSERT INTO indicator_recipients (indicator_id, org_id, user_id) VALUES ($1, NULL, $2)")
                .bind(id)
                .bind(user)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Links an indicator to a mission (and case), once.
    pub async fn link_indicator(
        &mut self,
        id: &str,
        mission_id: &str,
        case_id: Option<&str>,
    ) -> Result<()> {
        let exists = sqlx::query(
            "SELECT COUNT(*) AS n FROM indicator_links WHERE indicator_id = $1 AND mission_id = $2 \
             AND ((case_id IS NULL AND $3 IS NULL) OR case_id = $3)",
        )
        .bind(id)
        .bind(mission_id)
        .bind(case_id)
        .fetch_one(&mut *self.tx)
        .await?;
        if int(&exists, "n")? == 0 {
            sqlx::query("INSERT INTO indicator_links (indicator_id, mission_id, case_id) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(mission_id)
                .bind(case_id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Records a sighting and counts it on the indicator (once per id).
    pub async fn add_sighting(&mut self, s: &Sighting) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO indicator_sightings (id, indicator_id, case_id, seen_in, at, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.indicator_id)
        .bind(s.case_id.as_deref())
        .bind(&s.seen_in)
        .bind(s.at.as_deref())
        .bind(&s.recorded_at)
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE indicators SET sightings = sightings + 1, \
             last_seen = CASE WHEN last_seen IS NULL OR last_seen < $2 THEN $2 ELSE last_seen END \
             WHERE id = $1",
        )
        .bind(&s.indicator_id)
        .bind(s.at.as_deref().unwrap_or(&s.recorded_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }
}
