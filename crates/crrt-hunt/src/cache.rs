//! A cache of parsed rules, keyed by each rule file's content hash.
//!
//! Parsing YAML is the largest part of loading the SigmaHQ rules (0.15 to
//! 0.25 s on two cores for 3,000 files). The cache keeps each file's rules
//! in rsigma's intermediate form (versioned CBOR), so a second hunt with the
//! same rules skips YAML entirely. A file is looked up by the hash of its
//! bytes (plus the loader revision and `expand` values), so an edited rule is
//! re-read and a `git checkout` that only touches modification times is not.
//!
//! The cache is an optimisation, never a source of truth: an unreadable,
//! truncated or foreign cache file is ignored and rewritten, and writes go
//! to a temporary file renamed into place, so a crash never leaves half a
//! cache. Files with correlations, filters or problems are not cached.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use rsigma_ir::IrRule;

const MAGIC: &[u8; 16] = b"crrt-sigma-ir-1\n";
/// Bump when the loader's rewriting of rules changes, so cached rules are
/// re-read with the new rewriting.
const LOADER_REVISION: u32 = 2;
/// Entries not used by the current load are kept up to this total size, so
/// switching between rule sets does not thrash.
const KEEP_BYTES: usize = 64 << 20;

pub(crate) struct RuleCache {
    path: PathBuf,
    entries: HashMap<u64, Vec<u8>>,
}

impl RuleCache {
    /// Opens the cache in `dir`; a missing or unusable file is an empty cache.
    pub(crate) fn open(dir: &Path) -> Self {
        let path = dir.join(format!(
            "sigma-ir-{}-{}.bin",
            env!("CARGO_PKG_VERSION"),
            rsigma_ir::HIR_SCHEMA_VERSION
        ));
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|bytes| decode_entries(&bytes))
            .unwrap_or_default();
        RuleCache { path, entries }
    }

    /// The key of a rule file's content under the given `expand` values.
    pub(crate) fn key(content: &[u8], salt: u64) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        LOADER_REVISION.hash(&mut hasher);
        salt.hash(&mut hasher);
        content.hash(&mut hasher);
        hasher.finish()
    }

    pub(crate) fn get(&self, key: u64) -> Option<Vec<IrRule>> {
        rsigma_ir::decode_rules(self.entries.get(&key)?).ok()
    }

    /// Stores this load's new entries, keeps the ones it used, and as many
    /// older ones as fit; returns why the cache could not be written.
    pub(crate) fn save(mut self, used: &[u64], new: Vec<(u64, Vec<IrRule>)>) -> Result<(), String> {
        if new.is_empty() {
            return Ok(());
        }
        let mut keep: Vec<(u64, Vec<u8>)> = Vec::new();
        for key in used {
            if let Some(blob) = self.entries.remove(key) {
                keep.push((*key, blob));
            }
        }
        for (key, rules) in new {
            let blob = rsigma_ir::encode_rules(&rules).map_err(|e| e.to_string())?;
            keep.push((key, blob));
        }
        let mut size: usize = keep.iter().map(|(_, b)| b.len()).sum();
        for (key, blob) in self.entries {
            if size + blob.len() > KEEP_BYTES {
                continue;
            }
            size += blob.len();
            keep.push((key, blob));
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |tmp: &mut tempfile::NamedTempFile| -> std::io::Result<()> {
            let mut out = std::io::BufWriter::new(tmp.as_file_mut());
            out.write_all(MAGIC)?;
            out.write_all(&(keep.len() as u64).to_le_bytes())?;
            for (key, blob) in &keep {
                out.write_all(&key.to_le_bytes())?;
                out.write_all(&(blob.len() as u64).to_le_bytes())?;
                out.write_all(blob)?;
            }
            out.flush()
        };
        write(&mut tmp).map_err(|e| format!("{}: {e}", self.path.display()))?;
        tmp.persist(&self.path)
            .map_err(|e| format!("{}: {}", self.path.display(), e.error))?;
        Ok(())
    }
}

/// `None` for anything but a complete cache file of this format.
fn decode_entries(bytes: &[u8]) -> Option<HashMap<u64, Vec<u8>>> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (count, mut rest) = take_u64(rest)?;
    let mut entries = HashMap::new();
    for _ in 0..count {
        let (key, after) = take_u64(rest)?;
        let (len, after) = take_u64(after)?;
        let len = usize::try_from(len).ok()?;
        if after.len() < len {
            return None;
        }
        let (blob, after) = after.split_at(len);
        entries.insert(key, blob.to_vec());
        rest = after;
    }
    rest.is_empty().then_some(entries)
}

fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_foreign_files_are_an_empty_cache() {
        let mut good = MAGIC.to_vec();
        good.extend(1u64.to_le_bytes());
        good.extend(7u64.to_le_bytes());
        good.extend(3u64.to_le_bytes());
        good.extend(b"abc");
        assert_eq!(decode_entries(&good).map(|e| e.len()), Some(1));
        for cut in 0..good.len() {
            assert!(decode_entries(&good[..cut]).is_none(), "cut at {cut}");
        }
        assert!(decode_entries(b"not a cache at all").is_none());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode_entries(&trailing).is_none());
    }

    #[test]
    fn keys_depend_on_content_and_salt() {
        assert_eq!(RuleCache::key(b"a", 1), RuleCache::key(b"a", 1));
        assert_ne!(RuleCache::key(b"a", 1), RuleCache::key(b"b", 1));
        assert_ne!(RuleCache::key(b"a", 1), RuleCache::key(b"a", 2));
    }
}
