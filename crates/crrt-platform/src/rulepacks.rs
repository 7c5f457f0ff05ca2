//! Rule packs: Sigma rules uploaded as a ZIP (a folder zipped) or a single
//! YAML file, checked by the hunt engine's own loader, and kept as their
//! YAML in the database so that every worker hunts with the same rules.
//!
//! A ZIP is read in memory within bounds (at most [`MAX_PACK_BYTES`]
//! uploaded, [`MAX_UNPACKED_BYTES`] unpacked, counted on the bytes actually
//! inflated, so a ZIP bomb is refused); member names are labels, never paths
//! on disk, so `../` in them reaches nothing.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::policy::{self, Action};
use crate::{Actor, Page, Platform, PlatformError, Result, audit, new_id, now};
pub use crrt_store::{RulePack, RuleProblem};

/// Largest rule pack upload.
pub const MAX_PACK_BYTES: usize = 32 << 20;
/// Largest total of YAML a pack may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 128 << 20;

/// The YAML files of an upload: a ZIP's `.yml`/`.yaml` members, or the
/// upload itself when it is YAML text.
fn yaml_files(name: &str, bytes: &[u8]) -> Result<Vec<(String, String)>> {
    if bytes.starts_with(b"PK\x03\x04") {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| PlatformError::Invalid(format!("{name}: not a readable ZIP: {e}")))?;
        let mut files = Vec::new();
        let mut unpacked = 0u64;
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| PlatformError::Invalid(format!("{name}: entry {i}: {e}")))?;
            let path = entry
                .name()
                .map_err(|e| PlatformError::Invalid(format!("{name}: entry {i}: {e}")))?
                .replace('\\', "/");
            let is_yaml = path.ends_with(".yml") || path.ends_with(".yaml");
            if entry.is_dir() || !is_yaml {
                continue;
            }
            let label: String = path
                .split('/')
                .filter(|p| !p.is_empty() && *p != "." && *p != "..")
                .collect::<Vec<_>>()
                .join("/");
            // Read at most what is left of the budget, plus one byte to
            // notice going over: the declared size is not trusted.
            let budget = MAX_UNPACKED_BYTES - unpacked;
            let mut text = Vec::new();
            (&mut entry)
                .take(budget + 1)
                .read_to_end(&mut text)
                .map_err(|e| PlatformError::Invalid(format!("{name}: {label}: {e}")))?;
            unpacked += text.len() as u64;
            if unpacked > MAX_UNPACKED_BYTES {
                return Err(PlatformError::Invalid(format!(
                    "{name} unpacks to more than {MAX_UNPACKED_BYTES} bytes of YAML (a ZIP bomb?); refused"
                )));
            }
            let text = String::from_utf8(text).map_err(|_| {
                PlatformError::Invalid(format!("{name}: {label} is not UTF-8 text"))
            })?;
            files.push((label, text));
        }
        if files.is_empty() {
            return Err(PlatformError::Invalid(format!(
                "{name} holds no .yml or .yaml file"
            )));
        }
        Ok(files)
    } else {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            PlatformError::Invalid(format!("{name} is neither a ZIP nor YAML text"))
        })?;
        Ok(vec![(name.to_owned(), text.to_owned())])
    }
}

impl Platform {
    /// Checks and stores a rule pack. Rules that do not load are listed in
    /// the pack with the reason; a pack where none loads is refused.
    pub async fn upload_rulepack(
        &self,
        actor: &Actor,
        name: &str,
        bytes: &[u8],
    ) -> Result<RulePack> {
        policy::require(actor, Action::ManageRulePacks)?;
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(PlatformError::Invalid(
                "a rule pack needs a name of 1 to 200 characters".into(),
            ));
        }
        if bytes.len() > MAX_PACK_BYTES {
            return Err(PlatformError::TooLarge(format!(
                "rule packs are limited to {MAX_PACK_BYTES} bytes"
            )));
        }
        let files = yaml_files(name, bytes)?;
        let mut loader = crrt_hunt::RuleLoader::new();
        for (path, text) in &files {
            loader = loader.yaml(path, text.clone());
        }
        let rules = loader
            .load()
            .map_err(|e| PlatformError::Invalid(format!("{name}: {e}")))?;
        let n_rules = rules.counts().parsed as i64;
        if n_rules == 0 {
            return Err(PlatformError::Invalid(format!(
                "{name}: no rule in it loads; first problem: {}",
                rules
                    .diagnostics()
                    .first()
                    .map_or_else(|| "none reported".to_owned(), |d| d.to_string())
            )));
        }
        let pack = RulePack {
            id: new_id(),
            name: name.to_owned(),
            sha256: hex::encode(Sha256::digest(bytes)),
            n_files: files.len() as i64,
            n_rules,
            problems: rules
                .diagnostics()
                .into_iter()
                .map(|d| RuleProblem {
                    file: d.path.display().to_string(),
                    rule: d.rule,
                    message: d.message,
                })
                .collect(),
            uploaded_by: actor.user.id.clone(),
            uploaded_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_rulepack(&pack, &files).await?;
        tx.append_audit(&audit(
            Some(actor),
            "rulepack.upload",
            "rulepack",
            &pack.id,
            None,
            Some(&pack),
        ))
        .await?;
        tx.commit().await?;
        Ok(pack)
    }

    pub async fn rulepacks(&self, actor: &Actor, page: Page) -> Result<Vec<RulePack>> {
        policy::require(actor, Action::ReadRulePacks)?;
        Ok(self.store.rulepacks(page).await?)
    }

    pub async fn rulepack(&self, actor: &Actor, id: &str) -> Result<RulePack> {
        policy::require(actor, Action::ReadRulePacks)?;
        self.store
            .rulepack(id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("rule pack {id}")))
    }
}
