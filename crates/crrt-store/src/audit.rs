//! The audit trail: append-only and hash-chained. Each event's hash covers
//! its own fields and the previous event's hash, and a head row records the
//! last sequence number and hash, so altering, removing or reordering any
//! event (including the last ones) breaks a link that
//! [`crate::Store::verify_audit`] names.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;

use crate::{Result, StoreError, int, opt_text, text};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the platform records: who did what to which object, before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: String,
    /// The acting user's id; `None` for the system itself.
    pub actor: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    pub actor: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerification {
    Intact {
        n_events: i64,
    },
    /// The first event that does not fit, and why.
    Broken {
        seq: i64,
        problem: String,
    },
}

impl AuditEvent {
    pub(crate) fn chain(entry: &AuditEntry, seq: i64, prev_hash: String) -> Self {
        let mut event = AuditEvent {
            seq,
            at: entry.at.clone(),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            object_type: entry.object_type.clone(),
            object_id: entry.object_id.clone(),
            before: entry.before.clone(),
            after: entry.after.clone(),
            prev_hash,
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        event
    }

    /// SHA-256 over the previous hash and every field, each length-prefixed
    /// so that no two different events serialise alike.
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        field(self.prev_hash.as_bytes());
        field(&self.seq.to_le_bytes());
        field(self.at.as_bytes());
        field(self.actor.as_deref().unwrap_or("").as_bytes());
        field(self.action.as_bytes());
        field(self.object_type.as_bytes());
        field(self.object_id.as_bytes());
        field(canonical(&self.before).as_bytes());
        field(canonical(&self.after).as_bytes());
        hex::encode(hasher.finalize())
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<Self> {
        let parse = |column: &str| -> Result<Option<serde_json::Value>> {
            opt_text(row, column)?
                .map(|raw| serde_json::from_str(&raw))
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("audit {column}: {e}")))
        };
        Ok(AuditEvent {
            seq: int(row, "seq")?,
            at: text(row, "at")?,
            actor: opt_text(row, "actor")?,
            action: text(row, "action")?,
            object_type: text(row, "object_type")?,
            object_id: text(row, "object_id")?,
            before: parse("before_json")?,
            after: parse("after_json")?,
            prev_hash: text(row, "prev_hash")?,
            hash: text(row, "hash")?,
        })
    }
}

/// JSON with object keys sorted (serde_json's maps keep insertion order).
fn canonical(value: &Option<serde_json::Value>) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    value
        .as_ref()
        .map(|v| sorted(v).to_string())
        .unwrap_or_default()
}

/// Why `event` is not the `seq`-th link after `prev_hash`, if it is not.
pub(crate) fn check_link(event: &AuditEvent, seq: i64, prev_hash: &str) -> Option<String> {
    if event.seq != seq {
        return Some(format!(
            "event {seq} is missing (the next stored event is {})",
            event.seq
        ));
    }
    if event.prev_hash != prev_hash {
        return Some(format!(
            "event {seq} does not follow event {}: its previous-hash field was changed, \
             or the event before it was",
            seq - 1
        ));
    }
    if event.compute_hash() != event.hash {
        return Some(format!("event {seq} was altered after it was written"));
    }
    None
}
