//! A cache of parsed rules, keyed by each rule file's content hash.
//!
//! Parsing YAML is the largest part of loading the SigmaHQ rules (0.15 to
//! 0.25 s on two cores for 3,000 files). The cache keeps each file's rules
//! as what loading needs ([`RuleHead`]: metadata, log source, prefilter gate)
//! beside rsigma's intermediate form, both JSON, so a second hunt with the
//! same rules skips YAML entirely and decodes a rule's IR only if the hunt
//! ever evaluates it (a fifth of the SigmaHQ rules on the attack samples).
//! A file is looked up by the hash of its bytes (plus the loader revision
//! and `expand` values), so an edited rule is re-read and a `git checkout`
//! that only touches modification times is not.
//!
//! The cache is an optimisation, never a source of truth: an unreadable,
//! truncated or foreign cache file is ignored and rewritten, and writes go
//! to a temporary file renamed into place, so a crash never leaves half a
//! cache. A rule whose IR is damaged inside an otherwise sound file is
//! found when first needed and reported as a rule problem. Files with
//! correlations, filters or problems are not cached.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::bucket::{LoadedRule, RuleBody, RuleHead};

const MAGIC: &[u8; 16] = b"crrt-sigma-ir-2\n";
/// Bump when the loader's rewriting of rules or their heads change, so
/// cached rules are read again.
const LOADER_REVISION: u32 = 9;
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

    pub(crate) fn get(&self, key: u64) -> Option<Vec<LoadedRule>> {
        decode_file(self.entries.get(&key)?)
    }

    /// Stores this load's new entries, keeps the ones it used, and as many
    /// older ones as fit; returns why the cache could not be written.
    pub(crate) fn save(
        mut self,
        used: &[u64],
        new: Vec<(u64, Vec<LoadedRule>)>,
    ) -> Result<(), String> {
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
            keep.push((key, encode_file(&rules)?));
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

/// One rule file's entry: the rule count, then per rule its head and its IR,
/// each as a length and JSON.
fn encode_file(rules: &[LoadedRule]) -> Result<Vec<u8>, String> {
    let mut out = (rules.len() as u64).to_le_bytes().to_vec();
    for rule in rules {
        let head = serde_json::to_vec(&rule.head).map_err(|e| e.to_string())?;
        let ir = match &rule.body {
            RuleBody::Ir(ir) => serde_json::to_vec(ir).map_err(|e| e.to_string())?,
            RuleBody::Encoded(bytes) => bytes.to_vec(),
        };
        for part in [head, ir] {
            out.extend((part.len() as u64).to_le_bytes());
            out.extend(part);
        }
    }
    Ok(out)
}

/// The rules of an entry, their IR still encoded; `None` if it is damaged.
fn decode_file(blob: &[u8]) -> Option<Vec<LoadedRule>> {
    let (count, mut rest) = take_u64(blob)?;
    let mut rules = Vec::new();
    for _ in 0..count {
        let (head, after) = take_part(rest)?;
        let (ir, after) = take_part(after)?;
        rules.push(LoadedRule {
            head: serde_json::from_str::<RuleHead>(std::str::from_utf8(head).ok()?).ok()?,
            body: RuleBody::Encoded(ir.into()),
        });
        rest = after;
    }
    rest.is_empty().then_some(rules)
}

fn take_part(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_u64(bytes)?;
    let len = usize::try_from(len).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// `None` for anything but a complete cache file of this format.
fn decode_entries(bytes: &[u8]) -> Option<HashMap<u64, Vec<u8>>> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (count, mut rest) = take_u64(rest)?;
    let mut entries = HashMap::new();
    for _ in 0..count {
        let (key, after) = take_u64(rest)?;
        let (blob, after) = take_part(after)?;
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
