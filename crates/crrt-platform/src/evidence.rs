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
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::policy::{self, Action};
use crate::{Actor, Page, Platform, PlatformError, Result, audit, new_id, now};
pub use crrt_store::Evidence;

/// Stored bytes on their way to a reader, in chunks.
pub type EvidenceStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Files above this go to an object store in parts of this size.
const PART_BYTES: usize = 8 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// Where evidence is kept: a local folder (the default), or an
/// S3-compatible object store, in which case the folder only holds uploads
/// in progress and the copies hunts read.
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    root: PathBuf,
    objects: Option<Objects>,
    /// Resumable uploads a request is writing to right now.
    busy: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Most evidence one case may hold, in bytes.
    pub max_case_bytes: u64,
}

#[derive(Debug, Clone)]
struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: object_store::path::Path,
    url: String,
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

/// A resumable upload being written to; released when dropped.
#[derive(Debug)]
pub(crate) struct Claim {
    busy: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Local copies of stored evidence for a hunt; removed when dropped.
#[derive(Debug)]
pub(crate) struct HuntCopies {
    /// One path per requested hash, in order.
    pub paths: Vec<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl EvidenceStore {
    /// Opens (creating) the folder.
    pub fn open(root: impl Into<PathBuf>, max_file_bytes: u64) -> Result<EvidenceStore> {
        let root = root.into();
        for folder in [
            root.join(".incoming"),
            root.join(".hunting"),
            root.join(".partial"),
        ] {
            std::fs::create_dir_all(&folder)
                .map_err(|e| PlatformError::Io(format!("{}: {e}", folder.display())))?;
        }
        Ok(EvidenceStore {
            root,
            objects: None,
            busy: Arc::default(),
            max_file_bytes,
            max_case_bytes: u64::MAX,
        })
    }

    /// Keeps evidence in an S3-compatible object store (`s3://bucket/prefix`),
    /// configured from the `AWS_*` environment (keys, region, endpoint,
    /// `AWS_ALLOW_HTTP`) and then `options` (the same keys, lower case);
    /// `work` holds uploads in progress and hunt copies. Checks the bucket
    /// answers before returning.
    pub async fn open_objects(
        url: &str,
        options: &[(&str, &str)],
        work: impl Into<PathBuf>,
        max_file_bytes: u64,
    ) -> Result<EvidenceStore> {
        crrt_watch::install_crypto_provider();
        let parsed = url::Url::parse(url)
            .map_err(|e| PlatformError::Invalid(format!("evidence store {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "s3" | "s3a") {
            return Err(PlatformError::Invalid(format!(
                "evidence store {url:?}: only S3-compatible stores (s3://BUCKET/PREFIX) are supported"
            )));
        }
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
        for (key, value) in options {
            let key = key.parse().map_err(|e| {
                PlatformError::Invalid(format!("evidence store option {key:?}: {e}"))
            })?;
            builder = builder.with_config(key, *value);
        }
        let store = builder
            .build()
            .map_err(|e| PlatformError::Invalid(format!("evidence store {url}: {e}")))?;
        let prefix = object_store::path::Path::from(parsed.path().trim_matches('/'));
        // A bucket that does not answer is a configuration error, better
        // found at start than at the first upload.
        store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| {
                PlatformError::Invalid(format!(
                    "evidence store {url} does not answer ({e}); check the bucket name, the AWS_* credentials and AWS_ENDPOINT_URL (a plain-HTTP endpoint needs AWS_ALLOW_HTTP=true)"
                ))
            })?;
        let mut opened = EvidenceStore::open(work, max_file_bytes)?;
        opened.objects = Some(Objects {
            store: Arc::new(store),
            prefix,
            url: url.to_owned(),
        });
        Ok(opened)
    }

    /// Where evidence is kept, for the operator.
    pub fn describe(&self) -> String {
        match &self.objects {
            Some(objects) => format!("{} (work folder {})", objects.url, self.root.display()),
            None => self.root.display().to_string(),
        }
    }

    /// Removes what uploads and hunts broken by a crash left behind
    /// locally, and resumable uploads past their expiry (the others wait
    /// for their clients). For the server at start: the folder is its own (replicas
    /// sharing one folder would remove each other's uploads in flight; they
    /// need object storage). An object store keeps no partial object: a
    /// multipart upload is invisible until completed (a bucket lifecycle
    /// rule reclaims abandoned parts).
    pub fn remove_broken_uploads(&self) -> usize {
        let mut removed = 0;
        if let Ok(entries) = std::fs::read_dir(self.root.join(".incoming")) {
            for entry in entries.flatten() {
                if std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.root.join(".hunting")) {
            for entry in entries.flatten() {
                if std::fs::remove_dir_all(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed + self.remove_expired_uploads()
    }

    /// Where files are written before they are complete.
    pub(crate) fn incoming_dir(&self) -> PathBuf {
        self.root.join(".incoming")
    }

    /// Where content with this hash is kept in the local folder: `ab/abcdef...`.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2.min(sha256.len())]).join(sha256)
    }

    fn object_of(objects: &Objects, sha256: &str) -> object_store::path::Path {
        objects
            .prefix
            .clone()
            .join(&sha256[..2.min(sha256.len())])
            .join(sha256)
    }

    /// The most evidence one case may hold (default: no limit).
    pub fn with_case_limit(mut self, max_case_bytes: u64) -> Self {
        self.max_case_bytes = max_case_bytes;
        self
    }

    fn incoming(&self, case_id: &str, case_bytes: u64) -> Result<Incoming> {
        let (limit, limit_reason) = self.limit_for(case_bytes);
        let file = tempfile::NamedTempFile::new_in(self.incoming_dir())
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

    /// The largest file a case holding `case_bytes` may still take, and why.
    pub(crate) fn limit_for(&self, case_bytes: u64) -> (u64, String) {
        let room = self.max_case_bytes.saturating_sub(case_bytes);
        if room < self.max_file_bytes {
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
        }
    }

    /// Where resumable uploads keep their bytes so far (kept across restarts).
    pub(crate) fn partial_dir(&self) -> PathBuf {
        self.root.join(".partial")
    }

    /// Marks a resumable upload as being written to; `None` when another
    /// request already is. The mark goes with the returned guard.
    pub(crate) fn claim(&self, id: &str) -> Option<Claim> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.insert(id.to_owned()).then(|| Claim {
            busy: Arc::clone(&self.busy),
            id: id.to_owned(),
        })
    }

    /// Keeps a complete file under its hash (once: the same content is
    /// stored once whatever how many cases hold it). Nothing is visible
    /// under the hash until all of it is.
    async fn keep_file(&self, sha256: &str, mut file: tempfile::NamedTempFile) -> Result<()> {
        let Some(objects) = &self.objects else {
            file.as_file_mut()
                .sync_all()
                .map_err(|e| PlatformError::Io(format!("saving the upload: {e}")))?;
            let target = self.path_of(sha256);
            if !target.exists() {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| PlatformError::Io(format!("{}: {e}", parent.display())))?;
                }
                file.persist(&target)
                    .map_err(|e| PlatformError::Io(format!("storing the upload: {}", e.error)))?;
            }
            return Ok(());
        };
        let location = Self::object_of(objects, sha256);
        let failed = |e: object_store::Error| {
            PlatformError::Io(format!("storing the upload in {}: {e}", objects.url))
        };
        match objects.store.head(&location).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(failed(e)),
        }
        let mut reader = tokio::fs::File::from_std(
            file.reopen()
                .map_err(|e| PlatformError::Io(format!("reading the upload: {e}")))?,
        );
        let size = reader
            .metadata()
            .await
            .map_err(|e| PlatformError::Io(format!("reading the upload: {e}")))?
            .len();
        let mut buffer = vec![0; PART_BYTES];
        if size <= PART_BYTES as u64 {
            let bytes = read_full(&mut reader, &mut buffer).await?;
            let payload = PutPayload::from(Bytes::copy_from_slice(&buffer[..bytes]));
            objects
                .store
                .put(&location, payload)
                .await
                .map_err(failed)?;
            return Ok(());
        }
        let upload = objects
            .store
            .put_multipart(&location)
            .await
            .map_err(failed)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        loop {
            let bytes = match read_full(&mut reader, &mut buffer).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            if bytes == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(failed(e));
            }
            writer.write(&buffer[..bytes]);
        }
        writer.finish().await.map_err(failed)?;
        Ok(())
    }

    /// Keeps bytes under their SHA-256 (once, whatever how often they come).
    pub async fn keep_bytes(&self, bytes: &[u8]) -> Result<String> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        if self.objects.is_none() && self.path_of(&sha256).exists() {
            return Ok(sha256);
        }
        let io = |error: std::io::Error| PlatformError::Io(format!("keeping evidence: {error}"));
        let mut file = tempfile::NamedTempFile::new_in(self.incoming_dir()).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        self.keep_file(&sha256, file).await?;
        Ok(sha256)
    }

    /// The stored bytes with this hash, as a stream.
    pub async fn stream(&self, sha256: &str) -> Result<EvidenceStream> {
        let unreadable =
            |e: String| PlatformError::Io(format!("stored evidence {sha256} cannot be read: {e}"));
        match &self.objects {
            None => {
                let file = tokio::fs::File::open(self.path_of(sha256))
                    .await
                    .map_err(|e| unreadable(e.to_string()))?;
                Ok(tokio_util::io::ReaderStream::with_capacity(file, 64 << 10).boxed())
            }
            Some(objects) => {
                let found = objects
                    .store
                    .get(&Self::object_of(objects, sha256))
                    .await
                    .map_err(|e| unreadable(e.to_string()))?;
                Ok(found
                    .into_stream()
                    .map(|chunk| chunk.map_err(std::io::Error::other))
                    .boxed())
            }
        }
    }

    /// The stored bytes with this hash, whole (for small files).
    pub async fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        let mut stream = self.stream(sha256).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                PlatformError::Io(format!("stored evidence {sha256} cannot be read: {e}"))
            })?;
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Re-hashes what is stored under this hash: `Ok` with the hash the
    /// content has now, `Err` when it cannot be read.
    pub async fn rehash(&self, sha256: &str) -> std::result::Result<String, String> {
        let mut stream = match &self.objects {
            None => {
                let path = self.path_of(sha256);
                return sha256_of_file(&path).map_err(|e| format!("{}: {e}", path.display()));
            }
            Some(_) => self.stream(sha256).await.map_err(|e| e.to_string())?,
        };
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(chunk.map_err(|e| e.to_string())?);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Files a hunt can open for these hashes: the stored files themselves
    /// in a folder; from an object store, copies fetched (and checked
    /// against their hash) into a folder removed with the returned value.
    pub(crate) async fn hunt_copies(
        &self,
        hashes: &[String],
        progress: &crrt_hunt::Progress,
    ) -> Result<HuntCopies> {
        if self.objects.is_none() {
            return Ok(HuntCopies {
                paths: hashes.iter().map(|h| self.path_of(h)).collect(),
                _dir: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("hunt-")
            .tempdir_in(self.root.join(".hunting"))
            .map_err(|e| PlatformError::Io(format!("preparing the hunt's copies: {e}")))?;
        let mut paths = Vec::with_capacity(hashes.len());
        for sha256 in hashes {
            let path = dir.path().join(sha256);
            let mut stream = self.stream(sha256).await?;
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| PlatformError::Io(format!("{}: {e}", path.display())))?;
            let mut hasher = Sha256::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    PlatformError::Io(format!("stored evidence {sha256} cannot be read: {e}"))
                })?;
                if progress.is_cancelled() {
                    return Err(PlatformError::Invalid("the hunt was cancelled".into()));
                }
                hasher.update(&chunk);
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                    .await
                    .map_err(|e| PlatformError::Io(format!("{}: {e}", path.display())))?;
            }
            let actual = hex::encode(hasher.finalize());
            if actual != *sha256 {
                return Err(PlatformError::Io(format!(
                    "stored evidence {sha256} has changed (it now hashes to {actual}); run crrt admin verify-evidence"
                )));
            }
            paths.push(path);
        }
        Ok(HuntCopies {
            paths,
            _dir: Some(dir),
        })
    }
}

/// Fills `buffer` from `reader` as far as it goes; the bytes read.
async fn read_full(reader: &mut tokio::fs::File, buffer: &mut [u8]) -> Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut filled = 0;
    while filled < buffer.len() {
        let n = reader
            .read(&mut buffer[filled..])
            .await
            .map_err(|e| PlatformError::Io(format!("reading the upload: {e}")))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// A file name as given, reduced to a name: no folders, no control
/// characters, at most 255 bytes.
pub(crate) fn clean_name(name: &str) -> Result<String> {
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

    /// Where evidence is kept, for the operator.
    pub fn evidence_location(&self) -> Option<String> {
        self.evidence.as_ref().map(EvidenceStore::describe)
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
        let Incoming {
            file,
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
        let evidence = Evidence {
            id: new_id(),
            case_id,
            name,
            size: size as i64,
            sha256: hex::encode(hasher.finalize()),
            uploaded_by: actor.user.id.clone(),
            uploaded_from: from.to_owned(),
            uploaded_at: now(),
        };
        self.record_evidence(actor, evidence, file).await
    }

    /// Keeps a complete, hashed file and records it with its custody, unless
    /// the case already holds the same content.
    pub(crate) async fn record_evidence(
        &self,
        actor: &Actor,
        evidence: Evidence,
        file: tempfile::NamedTempFile,
    ) -> Result<Evidence> {
        let store = self.evidence_store()?;
        if let Some(existing) = self
            .store
            .evidence_by_hash(&evidence.case_id, &evidence.sha256)
            .await?
        {
            return Err(PlatformError::Conflict(format!(
                "this case already holds this content as {:?} (evidence {}, SHA-256 {})",
                existing.name, existing.id, evidence.sha256
            )));
        }
        store.keep_file(&evidence.sha256, file).await?;
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
    ) -> Result<(Evidence, EvidenceStream)> {
        let evidence = self
            .store
            .evidence(id)
            .await?
            .ok_or_else(|| PlatformError::NotFound(format!("evidence {id}")))?;
        self.case_access(actor, &evidence.case_id)
            .await
            .map_err(|_| PlatformError::NotFound(format!("evidence {id}")))?;
        let stream = self.evidence_store()?.stream(&evidence.sha256).await?;
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
        Ok((evidence, stream))
    }

    /// A piece of evidence's chain of custody, oldest first: its upload,
    /// every download and every hunt that read it (for those who may see
    /// the case).
    pub async fn evidence_custody(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<Vec<crrt_store::AuditEvent>> {
        let not_found = || PlatformError::NotFound(format!("evidence {id}"));
        let evidence = self.store.evidence(id).await?.ok_or_else(not_found)?;
        self.case_access(actor, &evidence.case_id)
            .await
            .map_err(|_| not_found())?;
        Ok(self.store.audit_of("evidence", &evidence.id).await?)
    }

    /// Re-hashes every stored file; returns the hashes that are missing or
    /// whose content no longer matches.
    pub async fn verify_evidence(&self) -> Result<(usize, Vec<(String, String)>)> {
        let store = self.evidence_store()?;
        let hashes = self.store.evidence_hashes().await?;
        let mut problems = Vec::new();
        for sha256 in &hashes {
            match store.rehash(sha256).await {
                Ok(actual) if actual == *sha256 => {}
                Ok(actual) => problems.push((
                    sha256.clone(),
                    format!("content changed: it now hashes to {actual}"),
                )),
                Err(e) => problems.push((sha256.clone(), e)),
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
