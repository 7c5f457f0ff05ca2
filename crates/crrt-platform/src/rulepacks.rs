//! Rule packs: Sigma or YARA rules uploaded as a ZIP (a folder zipped) or
//! a single rule file, checked by the hunt engine's own loaders, and kept as
//! their text in the database so that every worker hunts with the same rules.
//! A pack holds one kind: Sigma (`.yml`/`.yaml`, run on events) or YARA
//! (`.yar`/`.yara`, run on files).
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
/// Largest total of rule text a pack may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 128 << 20;

/// What a pack holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackKind {
    Sigma,
    Yara,
}

impl PackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PackKind::Sigma => "sigma",
            PackKind::Yara => "yara",
        }
    }

    fn of_file(path: &str) -> Option<PackKind> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "yml" | "yaml" => Some(PackKind::Sigma),
            "yar" | "yara" => Some(PackKind::Yara),
            _ => None,
        }
    }
}

/// The rule files of an upload: a ZIP's `.yml`/`.yaml` or `.yar`/`.yara`
/// members, or the upload itself as one file (YARA when its name ends in
/// `.yar`/`.yara` or it is not YAML but reads as YARA, else Sigma).
fn rule_files(name: &str, bytes: &[u8]) -> Result<(PackKind, Vec<(String, String)>)> {
    if !bytes.starts_with(b"PK\x03\x04") {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            PlatformError::Invalid(format!("{name} is neither a ZIP nor rule text"))
        })?;
        let kind = PackKind::of_file(name).unwrap_or_else(|| {
            let looks_yara = text.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("rule ")
                    || l.starts_with("private rule ")
                    || l.starts_with("import \"")
            });
            if looks_yara && !text.lines().any(|l| l.starts_with("detection:")) {
                PackKind::Yara
            } else {
                PackKind::Sigma
            }
        });
        return Ok((kind, vec![(name.to_owned(), text.to_owned())]));
    }
    {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| PlatformError::Invalid(format!("{name}: not a readable ZIP: {e}")))?;
        let mut files = Vec::new();
        let mut kind = None;
        let mut unpacked = 0u64;
        for i in 0..archive.len() {
            let mut entry = archive
                .by_index(i)
                .map_err(|e| PlatformError::Invalid(format!("{name}: entry {i}: {e}")))?;
            let path = entry
                .name()
                .map_err(|e| PlatformError::Invalid(format!("{name}: entry {i}: {e}")))?
                .replace('\\', "/");
            let Some(file_kind) = PackKind::of_file(&path).filter(|_| !entry.is_dir()) else {
                continue;
            };
            match kind {
                None => kind = Some(file_kind),
                Some(k) if k != file_kind => {
                    return Err(PlatformError::Invalid(format!(
                        "{name} holds both Sigma (.yml) and YARA (.yar) files: upload them as two packs"
                    )));
                }
                Some(_) => {}
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
                    "{name} unpacks to more than {MAX_UNPACKED_BYTES} bytes of rules (a ZIP bomb?); refused"
                )));
            }
            let text = String::from_utf8(text).map_err(|_| {
                PlatformError::Invalid(format!("{name}: {label} is not UTF-8 text"))
            })?;
            files.push((label, text));
        }
        match kind {
            Some(kind) => Ok((kind, files)),
            None => Err(PlatformError::Invalid(format!(
                "{name} holds no Sigma (.yml, .yaml) or YARA (.yar, .yara) file"
            ))),
        }
    }
}

/// Loads a pack's files with the engine: rules that load, and the problems.
fn check_rules(kind: PackKind, files: &[(String, String)]) -> Result<(i64, Vec<RuleProblem>)> {
    let problem = |d: &crrt_hunt::Diagnostic| RuleProblem {
        file: d.path.display().to_string(),
        rule: d.rule.clone(),
        message: d.message.clone(),
    };
    match kind {
        PackKind::Sigma => {
            let mut loader = crrt_hunt::RuleLoader::new();
            for (path, text) in files {
                loader = loader.yaml(path, text.clone());
            }
            let rules = loader
                .load()
                .map_err(|e| PlatformError::Invalid(e.to_string()))?;
            let problems = rules.diagnostics().iter().map(problem).collect();
            Ok((rules.counts().parsed as i64, problems))
        }
        PackKind::Yara => {
            let rules = yara_rules(files)?;
            let problems = rules.diagnostics().iter().map(problem).collect();
            Ok((rules.rule_count() as i64, problems))
        }
    }
}

/// Compiles YARA rule files kept as text (a pack's, or several packs').
pub(crate) fn yara_rules(files: &[(String, String)]) -> Result<crrt_hunt::YaraRules> {
    let mut loader = crrt_hunt::YaraLoader::new();
    for (path, text) in files {
        loader = loader.text(path, text.clone());
    }
    loader
        .load()
        .map_err(|e| PlatformError::Invalid(e.to_string()))
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
        self.keep_rulepack(Some(actor), &actor.user.id, name, bytes)
            .await
    }

    /// The rule packs CRRT ships, kept at a platform's first start (no
    /// actor: the platform itself) in the name of its first administrator,
    /// so that a fresh install can hunt before anyone uploads rules.
    pub async fn install_bundled_rulepacks(
        &self,
        admin_user_id: &str,
        packs: &[(&str, &[u8])],
    ) -> Result<Vec<RulePack>> {
        let mut out = Vec::new();
        for (name, bytes) in packs {
            out.push(self.keep_rulepack(None, admin_user_id, name, bytes).await?);
        }
        Ok(out)
    }

    async fn keep_rulepack(
        &self,
        actor: Option<&Actor>,
        uploaded_by: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<RulePack> {
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
        let (kind, files) = rule_files(name, bytes)?;
        let (n_rules, problems) = {
            let files = files.clone();
            // Compiling thousands of YARA rules takes seconds: off the runtime.
            tokio::task::spawn_blocking(move || check_rules(kind, &files))
                .await
                .map_err(|e| PlatformError::Invalid(format!("checking the rules failed: {e}")))?
                .map_err(|e| PlatformError::Invalid(format!("{name}: {e}")))?
        };
        if n_rules == 0 {
            return Err(PlatformError::Invalid(format!(
                "{name}: no rule in it loads; first problem: {}",
                problems.first().map_or_else(
                    || "none reported".to_owned(),
                    |p| format!("{}: {}", p.file, p.message)
                )
            )));
        }
        let pack = RulePack {
            id: new_id(),
            name: name.to_owned(),
            kind: kind.as_str().to_owned(),
            sha256: hex::encode(Sha256::digest(bytes)),
            n_files: files.len() as i64,
            n_rules,
            problems,
            uploaded_by: uploaded_by.to_owned(),
            uploaded_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_rulepack(&pack, &files).await?;
        tx.append_audit(&audit(
            actor,
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
