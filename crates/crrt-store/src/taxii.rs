//! STIX objects that partners submit over TAXII, kept as they came (one row
//! per object version), partitioned by collection and by the organisation
//! that submitted them; and the status resources of their submissions.
//! Pages are keyset-paginated on (date_added, id, version), so reading
//! page N costs the same as page 1 however large the collection grows.
//!
//! Objects are found by `id_key`, 64 bits of a hash of (collection,
//! organisation, id), not by an index on those text columns: partners'
//! ids are random, so each envelope's inserts land all over such an
//! index, and every page they touch is written to the log at commit. An
//! index of 8-byte keys has a tenth of the pages to touch, which kept the
//! add rate from falling as collections grew. Two ids may share a key, so
//! reads also compare the id itself, and adds find what is there before
//! inserting (there is no unique constraint to lean on).

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::{Result, Store, Tx, dynamic, text};

/// One stored STIX object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiiObject {
    pub id: String,
    pub version: String,
    pub date_added: String,
    pub spec_version: String,
    /// The object as submitted (JSON).
    pub object: String,
}

/// Which versions of each object a read returns (`match[version]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionMatch {
    pub first: bool,
    /// The default when nothing is asked for.
    pub last: bool,
    pub all: bool,
    pub exact: Vec<String>,
}

/// Filters of a TAXII read.
#[derive(Debug, Clone, Default)]
pub struct TaxiiFilter {
    pub added_after: Option<String>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub spec_versions: Vec<String>,
    pub versions: VersionMatch,
    /// Continue after this (date_added, id, version).
    pub after: Option<(String, String, String)>,
}

/// Where rows live: a collection, and the organisation they belong to.
#[derive(Debug, Clone, Copy)]
pub struct Partition<'a> {
    pub collection: &'a str,
    pub org_id: &'a str,
}

impl Partition<'_> {
    /// The indexed key of an object id in this partition. Stored, so it
    /// must never change: the first 8 bytes of SHA-256 over the three
    /// names, each followed by a NUL.
    pub(crate) fn key(&self, id: &str) -> i64 {
        let mut hasher = Sha256::new();
        for part in [self.collection, self.org_id, id] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }
}

/// Reads by id name the key index on SQLite: with an id list and an order
/// by date added, its planner prefers the (collection, org_id, date_added)
/// index and walks the whole partition (measured: adds and reads by id
/// slowed as collections grew). A dropped index then fails loudly instead.
fn by_key(sqlite: bool) -> &'static str {
    if sqlite {
        " INDEXED BY taxii_objects_key"
    } else {
        ""
    }
}

/// `t.id_key IN (...)` for these ids: the numbers are ours, not input, so
/// they are written into the statement rather than bound.
fn key_list(at: Partition<'_>, ids: &[String]) -> String {
    let keys: Vec<String> = ids.iter().map(|id| at.key(id).to_string()).collect();
    keys.join(", ")
}

fn conditions(
    at: Partition<'_>,
    sqlite: bool,
    filter: &TaxiiFilter,
    values: &mut Vec<String>,
) -> String {
    let hint = by_key(sqlite);
    let mut sql = String::new();
    let param = |values: &mut Vec<String>, v: &str| {
        values.push(v.to_owned());
        format!("${}", 2 + values.len())
    };
    if let Some(after) = &filter.added_after {
        let p = param(values, after);
        sql.push_str(&format!(" AND t.date_added > {p}"));
    }
    if !filter.ids.is_empty() {
        sql.push_str(&format!(" AND t.id_key IN ({})", key_list(at, &filter.ids)));
    }
    for (column, list) in [
        ("t.id", &filter.ids),
        ("t.type", &filter.types),
        ("t.spec_version", &filter.spec_versions),
    ] {
        if !list.is_empty() {
            let ps: Vec<String> = list.iter().map(|v| param(values, v)).collect();
            sql.push_str(&format!(" AND {column} IN ({})", ps.join(", ")));
        }
    }
    let v = &filter.versions;
    if !v.all {
        let mut any = Vec::new();
        let same = "t2.id_key = t.id_key AND t2.collection = t.collection \
                    AND t2.org_id = t.org_id AND t2.id = t.id";
        if v.last || (!v.first && v.exact.is_empty()) {
            any.push(format!(
                "t.version = (SELECT MAX(t2.version) FROM taxii_objects t2{hint} WHERE {same})"
            ));
        }
        if v.first {
            any.push(format!(
                "t.version = (SELECT MIN(t2.version) FROM taxii_objects t2{hint} WHERE {same})"
            ));
        }
        if !v.exact.is_empty() {
            let ps: Vec<String> = v.exact.iter().map(|x| param(values, x)).collect();
            any.push(format!("t.version IN ({})", ps.join(", ")));
        }
        sql.push_str(&format!(" AND ({})", any.join(" OR ")));
    }
    if let Some((added, id, version)) = &filter.after {
        let (a, i, ver) = (
            param(values, added),
            param(values, id),
            param(values, version),
        );
        sql.push_str(&format!(
            " AND (t.date_added > {a} OR (t.date_added = {a} AND (t.id > {i} OR (t.id = {i} AND t.version > {ver}))))"
        ));
    }
    sql
}

/// Migration 19: copies the objects of the table it renamed into the new
/// one, with their keys, a page at a time in primary-key order.
pub(crate) async fn rekey_taxii_objects(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sqlite: bool,
) -> Result<()> {
    let columns = "collection, org_id, id, version, date_added, type, spec_version, object";
    let mut after: Option<[String; 4]> = None;
    loop {
        let mut query = match &after {
            None => sqlx::query(dynamic(format!(
                "SELECT {columns} FROM taxii_objects_before_19 \
                 ORDER BY collection, org_id, id, version LIMIT 500"
            ))),
            Some(_) => sqlx::query(dynamic(format!(
                "SELECT {columns} FROM taxii_objects_before_19 \
                 WHERE (collection, org_id, id, version) > ($1, $2, $3, $4) \
                 ORDER BY collection, org_id, id, version LIMIT 500"
            ))),
        };
        for v in after.iter().flatten() {
            query = query.bind(v);
        }
        let rows = query.fetch_all(&mut **tx).await?;
        let Some(last) = rows.last() else { break };
        after = Some([
            text(last, "collection")?,
            text(last, "org_id")?,
            text(last, "id")?,
            text(last, "version")?,
        ]);
        for chunk in rows.chunks(100) {
            let sql = format!(
                "INSERT INTO taxii_objects ({columns}, id_key) VALUES {}",
                crate::value_rows(sqlite, chunk.len(), 9)
            );
            let mut insert = sqlx::query(dynamic(sql));
            for r in chunk {
                let (collection, org_id, id) =
                    (text(r, "collection")?, text(r, "org_id")?, text(r, "id")?);
                let key = Partition {
                    collection: &collection,
                    org_id: &org_id,
                }
                .key(&id);
                insert = insert
                    .bind(collection)
                    .bind(org_id)
                    .bind(id)
                    .bind(text(r, "version")?)
                    .bind(text(r, "date_added")?)
                    .bind(text(r, "type")?)
                    .bind(text(r, "spec_version")?)
                    .bind(text(r, "object")?)
                    .bind(key);
            }
            insert.execute(&mut **tx).await?;
        }
    }
    sqlx::raw_sql("DROP TABLE taxii_objects_before_19")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Up to `limit` objects in (date_added, id, version) order.
    pub async fn taxii_objects(
        &self,
        at: Partition<'_>,
        filter: &TaxiiFilter,
        limit: i64,
    ) -> Result<Vec<TaxiiObject>> {
        let mut values = Vec::new();
        let sqlite = self.backend == crate::Backend::Sqlite;
        let conditions = conditions(at, sqlite, filter, &mut values);
        let n = 3 + values.len();
        let hint = if filter.ids.is_empty() {
            ""
        } else {
            by_key(sqlite)
        };
        let sql = format!(
            "SELECT t.id, t.version, t.date_added, t.spec_version, t.object FROM taxii_objects t{hint} \
             WHERE t.collection = $1 AND t.org_id = $2{conditions} \
             ORDER BY t.date_added, t.id, t.version LIMIT ${n}"
        );
        let mut query = sqlx::query(dynamic(sql))
            .bind(at.collection)
            .bind(at.org_id);
        for v in &values {
            query = query.bind(v);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(TaxiiObject {
                    id: text(r, "id")?,
                    version: text(r, "version")?,
                    date_added: text(r, "date_added")?,
                    spec_version: text(r, "spec_version")?,
                    object: text(r, "object")?,
                })
            })
            .collect()
    }

    /// Every version of one object, oldest first.
    pub async fn taxii_versions(
        &self,
        at: Partition<'_>,
        id: &str,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT version, date_added FROM taxii_objects{} WHERE id_key = $1 AND collection = $2 \
             AND org_id = $3 AND id = $4 ORDER BY version",
            by_key(self.backend == crate::Backend::Sqlite)
        )))
        .bind(at.key(id))
        .bind(at.collection)
        .bind(at.org_id)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((text(r, "version")?, text(r, "date_added")?)))
            .collect()
    }

    pub async fn taxii_status(&self, id: &str, org_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT body FROM taxii_status WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| text(&r, "body")).transpose()
    }
}

impl Tx {
    /// Adds object versions (multi-row inserts); an (id, version) already
    /// there, or repeated in `objects`, is left as it was. Returns how
    /// many rows were new.
    pub async fn add_taxii_objects(
        &mut self,
        at: Partition<'_>,
        objects: &[(TaxiiObject, String)],
    ) -> Result<u64> {
        if !self.sqlite {
            // What is there is read before inserting, so two adds to one
            // partition must take turns (SQLite's transactions hold the
            // write lock from their start, `Store::begin`).
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                .bind(at.key(""))
                .execute(&mut *self.tx)
                .await?;
        }
        let keys: Vec<i64> = objects.iter().map(|(o, _)| at.key(&o.id)).collect();
        let mut seen = self.present_versions(at, &keys).await?;
        let fresh: Vec<(&(TaxiiObject, String), i64)> = objects
            .iter()
            .zip(keys)
            .filter(|((o, _), _)| seen.insert((o.id.clone(), o.version.clone())))
            .collect();
        // 9 columns per row. Statements of 100 rows measured fastest:
        // 1,000 rows (8,000 parameters) made adding three times slower.
        for chunk in fresh.chunks(100) {
            let rows = crate::value_rows(self.sqlite, chunk.len(), 9);
            let sql = format!(
                "INSERT INTO taxii_objects (collection, org_id, id, version, date_added, type, \
                 spec_version, object, id_key) VALUES {rows}"
            );
            let mut query = sqlx::query(dynamic(sql));
            for ((o, kind), key) in chunk {
                query = query
                    .bind(at.collection)
                    .bind(at.org_id)
                    .bind(&o.id)
                    .bind(&o.version)
                    .bind(&o.date_added)
                    .bind(kind)
                    .bind(&o.spec_version)
                    .bind(&o.object)
                    .bind(*key);
            }
            query.execute(&mut *self.tx).await?;
        }
        Ok(fresh.len() as u64)
    }

    /// The (id, version) pairs stored under these keys.
    async fn present_versions(
        &mut self,
        at: Partition<'_>,
        keys: &[i64],
    ) -> Result<HashSet<(String, String)>> {
        let mut unique = keys.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut present = HashSet::new();
        for chunk in unique.chunks(500) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            let sql = format!(
                "SELECT id, version FROM taxii_objects{} WHERE id_key IN ({}) \
                 AND collection = $1 AND org_id = $2",
                by_key(self.sqlite),
                list.join(", ")
            );
            let rows = sqlx::query(dynamic(sql))
                .bind(at.collection)
                .bind(at.org_id)
                .fetch_all(&mut *self.tx)
                .await?;
            for r in &rows {
                present.insert((text(r, "id")?, text(r, "version")?));
            }
        }
        Ok(present)
    }

    /// Deletes the matching versions of one object; how many went.
    pub async fn delete_taxii_object(
        &mut self,
        at: Partition<'_>,
        id: &str,
        filter: &TaxiiFilter,
    ) -> Result<u64> {
        let mut values = Vec::new();
        let conditions = conditions(at, self.sqlite, filter, &mut values);
        let hint = by_key(self.sqlite);
        // Conditions refer to `t`; select the rows first, then delete them.
        let n = 3 + values.len();
        let key = at.key(id);
        let sql = format!(
            "SELECT t.version FROM taxii_objects t{hint} WHERE t.collection = $1 AND t.org_id = $2{conditions} \
             AND t.id_key = {key} AND t.id = ${n}"
        );
        let mut query = sqlx::query(dynamic(sql))
            .bind(at.collection)
            .bind(at.org_id);
        for v in &values {
            query = query.bind(v);
        }
        let versions: Vec<String> = query
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await?
            .iter()
            .map(|r| text(r, "version"))
            .collect::<Result<_>>()?;
        let mut gone = 0;
        for version in versions {
            gone += sqlx::query(dynamic(format!(
                "DELETE FROM taxii_objects{hint} WHERE id_key = $1 AND collection = $2 \
                 AND org_id = $3 AND id = $4 AND version = $5"
            )))
            .bind(key)
            .bind(at.collection)
            .bind(at.org_id)
            .bind(id)
            .bind(&version)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        }
        Ok(gone)
    }

    pub async fn insert_taxii_status(
        &mut self,
        id: &str,
        org_id: &str,
        body: &str,
        at: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO taxii_status (id, org_id, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(org_id)
        .bind(body)
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

/// A standing pull from a partner's TAXII collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub source_org_id: String,
    pub recorder_id: String,
    /// `none`, or a credential for the partner's server (`bearer TOKEN`,
    /// `basic USER:PASSWORD`) as the platform sealed it (`sealed:v1:...`).
    pub auth: String,
    /// Certificate authorities (PEM) to trust for the partner's server,
    /// besides the system's.
    pub ca_pem: Option<String>,
    pub every_seconds: i64,
    /// The partner's date-added watermark of the last pull.
    pub added_after: Option<String>,
    pub next_run: String,
    pub last_run: Option<String>,
    pub last_result: Option<String>,
    pub created_at: String,
}

const SUBSCRIPTION_COLUMNS: &str = "id, url, source_org_id, recorder_id, auth, every_seconds, \
     added_after, next_run, last_run, last_result, created_at, ca_pem";

fn subscription(row: &sqlx::any::AnyRow) -> Result<Subscription> {
    Ok(Subscription {
        id: text(row, "id")?,
        url: text(row, "url")?,
        source_org_id: text(row, "source_org_id")?,
        recorder_id: text(row, "recorder_id")?,
        auth: text(row, "auth")?,
        every_seconds: crate::int(row, "every_seconds")?,
        added_after: crate::opt_text(row, "added_after")?,
        next_run: text(row, "next_run")?,
        last_run: crate::opt_text(row, "last_run")?,
        last_result: crate::opt_text(row, "last_result")?,
        created_at: text(row, "created_at")?,
        ca_pem: crate::opt_text(row, "ca_pem")?,
    })
}

impl Store {
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM taxii_subscriptions ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription).collect()
    }

    /// Rewrites the database so that values replaced in it (credentials
    /// sealed after the fact) leave no copy in free pages or the log:
    /// SQLite is vacuumed and its write-ahead log emptied; PostgreSQL
    /// rewrites the subscriptions table into new files.
    pub async fn scrub_replaced_values(&self) -> Result<()> {
        match self.backend {
            crate::Backend::Sqlite => {
                sqlx::raw_sql("VACUUM").execute(&self.pool).await?;
                sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&self.pool)
                    .await?;
            }
            crate::Backend::Postgres => {
                // One statement each: PostgreSQL runs several sent together
                // in one transaction, where VACUUM cannot run.
                for table in ["taxii_subscriptions", "watch_notifications"] {
                    sqlx::raw_sql(dynamic(format!("VACUUM FULL {table}")))
                        .execute(&self.pool)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Subscriptions whose next pull is due at `now`.
    pub async fn due_subscriptions(&self, now: &str) -> Result<Vec<Subscription>> {
        let rows = sqlx::query(dynamic(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM taxii_subscriptions WHERE next_run <= $1 ORDER BY next_run"
        )))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription).collect()
    }
}

impl Tx {
    pub async fn insert_subscription(&mut self, s: &Subscription) -> Result<()> {
        sqlx::query(dynamic(format!(
            "INSERT INTO taxii_subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(&s.id)
        .bind(&s.url)
        .bind(&s.source_org_id)
        .bind(&s.recorder_id)
        .bind(&s.auth)
        .bind(s.every_seconds)
        .bind(s.added_after.as_deref())
        .bind(&s.next_run)
        .bind(s.last_run.as_deref())
        .bind(s.last_result.as_deref())
        .bind(&s.created_at)
        .bind(s.ca_pem.as_deref())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Replaces a subscription's stored credential (when sealing it).
    pub async fn set_subscription_auth(&mut self, id: &str, auth: &str) -> Result<()> {
        sqlx::query("UPDATE taxii_subscriptions SET auth = $2 WHERE id = $1")
            .bind(id)
            .bind(auth)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records a pull: its outcome, the new watermark, the next run.
    pub async fn record_subscription_run(
        &mut self,
        id: &str,
        added_after: Option<&str>,
        next_run: &str,
        last_run: &str,
        result: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE taxii_subscriptions SET added_after = COALESCE($2, added_after), next_run = $3, \
             last_run = $4, last_result = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(added_after)
        .bind(next_run)
        .bind(last_run)
        .bind(result)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
