//! Evidence: uploaded to a case as a stream, hashed (SHA-256) on arrival,
//! stored unchanged under its hash, and recorded with its custody (who, when,
//! from where). Every download is an audit event; `verify_evidence`
//! re-hashes what is stored.
//!
//! An upload is written to `.incoming/` under the evidence folder and moved
//! into place only once complete, hashed and recorded; a broken upload (the
//! client gone, the disk full, the server killed) leaves no evidence row,
//! and its temporary file is removed when the upload is dropped or, after a
//! crash, when the store is next opened.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::policy::{self, Action};
use crate::{Actor, Page, Platform, PlatformError, Result, audit, new_id, now};
pub use crrt_store::Evidence;

/// The local evidence folder (S3-compatible stores come with `object_store`).
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    root: PathBuf,
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most evidence one case may hold, in bytes.
    pub max_case_bytes: u64,
}

/// An upload in progress: bytes so far, hashed as they arrive.
#[derive(Debug)]
pub struct Incoming {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    size: u64,
    limit: u64,
    /// Why the limit is what it is, for the refusal.
    limit_reason: String,
    case_id: String,
}

impl Incoming {
    /// Appends a chunk; refuses to go past the size limit.
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(PlatformError::TooLarge(self.limit_reason.clone()));
        }
        self.hasher.update(chunk);
        self.file
            .write_all(chunk)
            .map_err(|e| PlatformError::Io(format!("writing the upload: {e}")))
    }
}

impl EvidenceStore {
    /// Opens (creating) the folder.
    pub fn open(root: impl Into<PathBuf>, max_file_bytes: u64) -> Result<EvidenceStore> {
        let root = root.into();
        let incoming = root.join(".incoming");
        std::fs::create_dir_all(&incoming)
            .map_err(|e| PlatformError::Io(format!("{}: {e}", incoming.display())))?;
        Ok(EvidenceStore {
            root,
            max_file_bytes,
            max_case_bytes: u64::MAX,
        })
    }

    /// Removes what uploads broken by a crash left in `.incoming/`. For the
    /// server at start: the folder is its own (replicas sharing one folder
    /// would remove each other's uploads in flight; they need object storage).
    pub fn remove_broken_uploads(&self) -> usize {
        let mut removed = 0;
        if let Ok(entries) = std::fs::read_dir(self.root.join(".incoming")) {
            for entry in entries.flatten() {
                if std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Where files are written before they are complete.
    pub(crate) fn incoming_dir(&self) -> PathBuf {
        self.root.join(".incoming")
    }

    /// Where content with this hash is kept: `ab/abcdef...`.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2.min(sha256.len())]).join(sha256)
    }

    /// The most evidence one case may hold (default: no limit).
    pub fn with_case_limit(mut self, max_case_bytes: u64) -> Self {
        self.max_case_bytes = max_case_bytes;
        self
    }

    fn incoming(&self, case_id: &str, case_bytes: u64) -> Result<Incoming> {
        let room = self.max_case_bytes.saturating_sub(case_bytes);
        let (limit, limit_reason) = if room < self.max_file_bytes {
            (
                room,
                format!(
                    "the case holds {case_bytes} bytes of evidence, of at most {}; this file does not fit",
                    self.max_case_bytes
                ),
            )
        } else {
            (
                self.max_file_bytes,
                format!(
                    "evidence files are limited to {} bytes",
                    self.max_file_bytes
                ),
            )
        };
        let file = tempfile::NamedTempFile::new_in(self.root.join(".incoming"))
            .map_err(|e| PlatformError::Io(format!("starting an upload: {e}")))?;
        Ok(Incoming {
            file,
            hasher: Sha256::new(),
            size: 0,
            limit,
            limit_reason,
            case_id: case_id.to_owned(),
        })
    }
}

/// A file name as given, reduced to a name: no folders, no control
/// characters, at most 255 bytes.
fn clean_name(name: &str) -> Result<String> {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches('.');
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    if cleaned.is_empty() || cleaned.len() > 255 {
        return Err(PlatformError::Invalid(format!(
            "{name:?} is not a usable file name"
        )));
    }
    Ok(cleaned)
}

fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

impl Platform {
    /// See [`EvidenceStore::remove_broken_uploads`].
    pub fn remove_broken_uploads(&self) -> usize {
        self.evidence
            .as_ref()
            .map_or(0, EvidenceStore::remove_broken_uploads)
    }

    pub(crate) fn evidence_store(&self) -> Result<&EvidenceStore> {
        self.evidence
            .as_ref()
            .ok_or_else(|| PlatformError::Invalid("this platform has no evidence store".into()))
    }

    /// Starts an upload to a case (the requester's institution, the team
    /// and the coordinator may upload).
    pub async fn begin_upload(&self, actor: &Actor, case_id: &str) -> Result<Incoming> {
        let (case, mission, member) = self.case_access(actor, case_id).await?;
        policy::require(
            actor,
            Action::UploadEvidence {
                mission: &mission,
                member,
            },
        )?;
        let used = self.store.evidence_bytes_of_case(&case.id).await?.max(0) as u64;
        self.evidence_store()?.incoming(&case.id, used)
    }

    /// Completes an upload: the content is kept under its hash and recorded
    /// with its custody, unless the case already holds the same content.
    pub async fn finish_upload(
        &self,
        actor: &Actor,
        incoming: Incoming,
        name: &str,
        from: &str,
    ) -> Result<Evidence> {
        let name = clean_name(name)?;
        let store = self.evidence_store()?;
        let Incoming {
            mut file,
            hasher,
            size,
            case_id,
            ..
        } = incoming;
        if size == 0 {
            return Err(PlatformError::Invalid(
                "an empty file is not evidence".into(),
            ));
        }
        let sha256 = hex::encode(hasher.finalize());
        if let Some(existing) = self.store.evidence_by_hash(&case_id, &sha256).await? {
            return Err(PlatformError::Conflict(format!(
                "this case already holds this content as {:?} (evidence {}, SHA-256 {sha256})",
                existing.name, existing.id
            )));
        }
        file.as_file_mut()
            .sync_all()
            .map_err(|e| PlatformError::Io(format!("saving the upload: {e}")))?;
        let target = store.path_of(&sha256);
        if !target.exists() {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| PlatformError::Io(format!("{}: {e}", parent.display())))?;
            }
            file.persist(&target)
                .map_err(|e| PlatformError::Io(format!("storing the upload: {}", e.error)))?;
        }
        let evidence = Evidence {
            id: new_id(),
            case_id,
            name,
            size: size as i64,
            sha256,
            uploaded_by: actor.user.id.clone(),
            uploaded_from: from.to_owned(),
            uploaded_at: now(),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_evidence(&evidence).await?;
        tx.append_audit(&audit(
            Some(actor),
            "evidence.upload",
            "evidence",
            &evidence.id,
            None,
            Some(&evidence),
        ))
        .await?;
        tx.commit().await?;
        Ok(evidence)
    }

    pub async fn case_evidence(
        &self,
        actor: &Actor,
        case_id: &str,
        page: Page,
    ) -> Result<Vec<Evidence>> {
        let (case, _, _) = self.case_access(actor, case_id).await?;
        Ok(self.store.evidence_of_case(&case.id, page).await?)
    }

    /// The stored file of a piece of evidence, for download; the download
    /// is recorded before the first byte leaves.
    pub async fn open_evidence(
        &self,
        actor: &Actor,
        id: &str,
        from: &str,
    ) -> Result<(Evidence, PathBuf)> {
        let evidence = self
            .store
            .evidence(id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("evidence {id}")))?;
        self.case_access(actor, &evidence.case_id)
            .await
            .map_err(|_| PlatformError::NotFound(format!("evidence {id}")))?;
        let path = self.evidence_store()?.path_of(&evidence.sha256);
        let mut tx = self.store.begin().await?;
        tx.append_audit(&audit(
            Some(actor),
            "evidence.download",
            "evidence",
            &evidence.id,
            None,
            Some(&serde_json::json!({"from": from, "sha256": evidence.sha256})),
        ))
        .await?;
        tx.commit().await?;
        Ok((evidence, path))
    }

    /// Re-hashes every stored file; returns the hashes that are missing or
    /// whose content no longer matches.
    pub async fn verify_evidence(&self) -> Result<(usize, Vec<(String, String)>)> {
        let store = self.evidence_store()?;
        let hashes = self.store.evidence_hashes().await?;
        let mut problems = Vec::new();
        for sha256 in &hashes {
            let path = store.path_of(sha256);
            match sha256_of_file(&path) {
                Ok(actual) if actual == *sha256 => {}
                Ok(actual) => problems.push((
                    sha256.clone(),
                    format!("content changed: it now hashes to {actual}"),
                )),
                Err(e) => problems.push((sha256.clone(), format!("{}: {e}", path.display()))),
            }
        }
        Ok((hashes.len(), problems))
    }
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn names_are_names_not_paths() {
        for (given, kept) in [
            ("Security.evtx", "Security.evtx"),
            ("../../etc/passwd", "passwd"),
            (
                "C:\\Windows\\System32\\winevt\\Logs\\System.evtx",
                "System.evtx",
            ),
            ("..evtx", "evtx"),
            ("a\u{0}b\nc.log", "abc.log"),
        ] {
            assert_eq!(clean_name(given).expect(given), kept);
        }
        for refused in ["", "..", "dir/", "   "] {
            assert!(clean_name(refused).is_err(), "{refused:?}");
        }
    }
}
