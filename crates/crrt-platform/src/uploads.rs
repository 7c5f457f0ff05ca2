//! Resumable uploads: a large file over a victim's failing link arrives in
//! chunks, each appended at the offset the server has; a broken connection
//! loses only the chunk in flight, and the client (or another run of it)
//! asks where to go on. Bytes so far live in the evidence folder's
//! `.partial/`, survive a server restart, and are dropped a day after the
//! last chunk. Only once every announced byte is there is the file hashed,
//! checked against the hash the client announced, and kept as evidence, as
//! a one-shot upload is.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::evidence::{Claim, EvidenceStore, clean_name};
use crate::policy::{self, Action};
use crate::{Actor, Evidence, Platform, PlatformError, Result, new_id, now};

/// An upload with no new bytes for this long is dropped.
pub const UPLOAD_TTL_SECONDS: i64 = 24 * 3600;

/// A resumable upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Upload {
    pub id: String,
    pub case_id: String,
    /// The file's name (a name: folders are dropped).
    pub name: String,
    /// Bytes announced.
    pub size: u64,
    /// The SHA-256 the client announced, checked when the last byte arrives.
    pub sha256: Option<String>,
    pub started_by: String,
    pub started_from: String,
    pub started_at: String,
    /// Bytes received so far: the next chunk starts at this offset.
    #[serde(default)]
    pub received: u64,
    /// Dropped, with its bytes, if nothing more arrives by then.
    #[serde(default)]
    pub expires_at: String,
}

/// What a client announces to start a resumable upload.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewUpload {
    pub name: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's SHA-256 (hex), if the client knows it: the upload is
    /// refused at the end if what arrived differs.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// After a chunk: the upload as it stands and, once complete, the evidence.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadProgress {
    pub upload: Upload,
    pub evidence: Option<Evidence>,
}

/// A chunk being appended to an upload (the upload is held by it: a second
/// request for the same upload is refused meanwhile).
#[derive(Debug)]
pub struct UploadChunk {
    upload: Upload,
    file: std::fs::File,
    written: u64,
    _claim: Claim,
}

impl UploadChunk {
    /// Appends bytes; refuses to go past the announced size.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let at = self.upload.received + self.written;
        if at + bytes.len() as u64 > self.upload.size {
            return Err(PlatformError::TooLarge(format!(
                "the upload announced {} bytes; this chunk goes past that",
                self.upload.size
            )));
        }
        self.file
            .write_all(bytes)
            .map_err(|e| PlatformError::Io(format!("writing the upload: {e}")))?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

impl EvidenceStore {
    fn upload_paths(&self, id: &str) -> Result<(PathBuf, PathBuf)> {
        // Ids are ours (hex); anything else names no upload.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PlatformError::NotFound(format!("upload {id}")));
        }
        let dir = self.partial_dir();
        Ok((
            dir.join(format!("{id}.json")),
            dir.join(format!("{id}.part")),
        ))
    }

    /// The upload with its bytes so far, as stored.
    fn load_upload(&self, id: &str) -> Result<Upload> {
        let (meta, part) = self.upload_paths(id)?;
        let not_found = || PlatformError::NotFound(format!("upload {id}"));
        let text = std::fs::read_to_string(&meta).map_err(|_| not_found())?;
        let mut upload: Upload = serde_json::from_str(&text).map_err(|_| not_found())?;
        let (received, modified) = match std::fs::metadata(&part) {
            Ok(m) => (m.len(), m.modified().ok()),
            Err(_) => (0, None),
        };
        upload.received = received;
        let last = modified
            .and_then(|t| jiff::Timestamp::try_from(t).ok())
            .or_else(|| upload.started_at.parse().ok())
            .unwrap_or_else(jiff::Timestamp::now);
        let expires = last
            .checked_add(jiff::SignedDuration::from_secs(UPLOAD_TTL_SECONDS))
            .unwrap_or(last);
        upload.expires_at = expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        Ok(upload)
    }

    fn drop_upload(&self, id: &str) {
        if let Ok((meta, part)) = self.upload_paths(id) {
            let _ = std::fs::remove_file(part);
            let _ = std::fs::remove_file(meta);
        }
    }

    /// Every upload in progress (expired ones removed on the way).
    fn uploads(&self) -> Vec<Upload> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.partial_dir()) else {
            return out;
        };
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            match self.load_upload(id) {
                Ok(upload) if upload.expires_at > now => out.push(upload),
                // Expired or unreadable, and nobody sending to it.
                _ => {
                    if let Some(_claim) = self.claim(id) {
                        self.drop_upload(id);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at));
        out
    }

    /// Removes expired uploads (for the server at start); how many.
    pub fn remove_expired_uploads(&self) -> usize {
        let before = std::fs::read_dir(self.partial_dir()).map_or(0, |d| d.count());
        self.uploads();
        let after = std::fs::read_dir(self.partial_dir()).map_or(0, |d| d.count());
        before.saturating_sub(after)
    }
}

impl Platform {
    /// Starts a resumable upload to a case (who may upload may start one).
    pub async fn start_upload(
        &self,
        actor: &Actor,
        case_id: &str,
        new: NewUpload,
        from: &str,
    ) -> Result<Upload> {
        let (case, mission, member) = self.case_access(actor, case_id).await?;
        policy::require(
            actor,
            Action::UploadEvidence {
                mission: &mission,
                member,
            },
        )?;
        let name = clean_name(&new.name)?;
        if new.size == 0 {
            return Err(PlatformError::Invalid(
                "an empty file is not evidence".into(),
            ));
        }
        let sha256 = match new.sha256 {
            Some(hash) => {
                let hash = hash.trim().to_ascii_lowercase();
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(PlatformError::Invalid(format!(
                        "{hash:?} is not a SHA-256 (64 hex digits)"
                    )));
                }
                Some(hash)
            }
            None => None,
        };
        // Known content need not travel again.
        if let Some(hash) = &sha256
            && let Some(existing) = self.store.evidence_by_hash(&case.id, hash).await?
        {
            return Err(PlatformError::Conflict(format!(
                "this case already holds this content as {:?} (evidence {}, SHA-256 {hash})",
                existing.name, existing.id
            )));
        }
        let store = self.evidence_store()?;
        let used = self.store.evidence_bytes_of_case(&case.id).await?.max(0) as u64;
        let (limit, reason) = store.limit_for(used);
        if new.size > limit {
            return Err(PlatformError::TooLarge(reason));
        }
        let upload = Upload {
            id: new_id(),
            case_id: case.id,
            name,
            size: new.size,
            sha256,
            started_by: actor.user.id.clone(),
            started_from: from.to_owned(),
            started_at: now(),
            received: 0,
            expires_at: String::new(),
        };
        // The part file comes with the first chunk.
        let (meta, _) = store.upload_paths(&upload.id)?;
        let io = |e: std::io::Error| PlatformError::Io(format!("starting the upload: {e}"));
        let mut file = tempfile::NamedTempFile::new_in(store.partial_dir()).map_err(io)?;
        file.write_all(&serde_json::to_vec(&upload).unwrap_or_default())
            .map_err(io)?;
        file.persist(&meta).map_err(|e| io(e.error))?;
        store.load_upload(&upload.id)
    }

    /// An upload of the actor's (nobody else sees it).
    pub async fn upload(&self, actor: &Actor, id: &str) -> Result<Upload> {
        let upload = self.evidence_store()?.load_upload(id)?;
        if upload.started_by != actor.user.id {
            return Err(PlatformError::NotFound(format!("upload {id}")));
        }
        self.case_access(actor, &upload.case_id)
            .await
            .map_err(|_| PlatformError::NotFound(format!("upload {id}")))?;
        Ok(upload)
    }

    /// The actor's uploads in progress to a case, oldest first.
    pub async fn case_uploads(&self, actor: &Actor, case_id: &str) -> Result<Vec<Upload>> {
        let (case, _, _) = self.case_access(actor, case_id).await?;
        Ok(self
            .evidence_store()?
            .uploads()
            .into_iter()
            .filter(|u| u.case_id == case.id && u.started_by == actor.user.id)
            .collect())
    }

    /// Takes the next chunk of an upload, which must start at `offset`,
    /// the bytes the server has.
    pub async fn resume_upload(&self, actor: &Actor, id: &str, offset: u64) -> Result<UploadChunk> {
        let upload = self.upload(actor, id).await?;
        let store = self.evidence_store()?;
        let claim = store.claim(id).ok_or_else(|| {
            PlatformError::Conflict(format!(
                "another request is sending to upload {id}; wait for it to end"
            ))
        })?;
        if offset != upload.received {
            return Err(PlatformError::Conflict(format!(
                "upload {id} has {} bytes; send from offset {}",
                upload.received, upload.received
            )));
        }
        let (_, part) = store.upload_paths(id)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&part)
            .map_err(|e| PlatformError::Io(format!("resuming the upload: {e}")))?;
        Ok(UploadChunk {
            upload,
            file,
            written: 0,
            _claim: claim,
        })
    }

    /// Ends a chunk (the bytes that came are kept, even when the client
    /// broke off). When the last announced byte is in and the chunk came
    /// whole (`broken` false; an empty chunk at the end will do), the file
    /// is hashed, checked and kept as evidence; if it cannot be (another
    /// hash than announced, the same content already in the case, no room
    /// left), the upload is dropped with the reason.
    pub async fn end_chunk(
        &self,
        actor: &Actor,
        chunk: UploadChunk,
        broken: bool,
    ) -> Result<UploadProgress> {
        let UploadChunk {
            upload,
            file,
            written,
            _claim,
        } = chunk;
        file.sync_data()
            .map_err(|e| PlatformError::Io(format!("saving the upload: {e}")))?;
        let store = self.evidence_store()?;
        let mut upload = upload;
        upload.received += written;
        if upload.received < upload.size || broken {
            let upload = store.load_upload(&upload.id)?;
            return Ok(UploadProgress {
                upload,
                evidence: None,
            });
        }
        let outcome = self.complete_upload(actor, &upload, file).await;
        store.drop_upload(&upload.id);
        let evidence = outcome?;
        Ok(UploadProgress {
            upload,
            evidence: Some(evidence),
        })
    }

    async fn complete_upload(
        &self,
        actor: &Actor,
        upload: &Upload,
        file: std::fs::File,
    ) -> Result<Evidence> {
        let store = self.evidence_store()?;
        let (_, part) = store.upload_paths(&upload.id)?;
        let hashing = part.clone();
        let sha256 = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let mut reader = std::fs::File::open(hashing)?;
            let mut hasher = Sha256::new();
            std::io::copy(&mut reader, &mut hasher)?;
            Ok(hex::encode(hasher.finalize()))
        })
        .await
        .map_err(|e| PlatformError::Io(format!("hashing the upload: {e}")))?
        .map_err(|e| PlatformError::Io(format!("hashing the upload: {e}")))?;
        if let Some(announced) = &upload.sha256
            && *announced != sha256
        {
            return Err(PlatformError::Invalid(format!(
                "the {} bytes received hash to {sha256}, not the announced {announced}; the upload is dropped, start it again",
                upload.size
            )));
        }
        let used = self
            .store
            .evidence_bytes_of_case(&upload.case_id)
            .await?
            .max(0) as u64;
        let (limit, reason) = store.limit_for(used);
        if upload.size > limit {
            return Err(PlatformError::TooLarge(reason));
        }
        // The part becomes the file to keep (moved, not copied).
        let path = tempfile::TempPath::try_from_path(part)
            .map_err(|e| PlatformError::Io(format!("keeping the upload: {e}")))?;
        let file = tempfile::NamedTempFile::from_parts(file, path);
        let evidence = Evidence {
            id: new_id(),
            case_id: upload.case_id.clone(),
            name: upload.name.clone(),
            size: upload.size as i64,
            sha256,
            uploaded_by: actor.user.id.clone(),
            uploaded_from: upload.started_from.clone(),
            uploaded_at: now(),
        };
        self.record_evidence(actor, evidence, file).await
    }

    /// Abandons an upload and its bytes.
    pub async fn cancel_upload(&self, actor: &Actor, id: &str) -> Result<()> {
        self.upload(actor, id).await?;
        let store = self.evidence_store()?;
        let _claim = store.claim(id).ok_or_else(|| {
            PlatformError::Conflict(format!("upload {id} is receiving a chunk; try again"))
        })?;
        store.drop_upload(id);
        Ok(())
    }
}
