//! Built indicator sets for `crrt hunt --indicators`, kept beside the rule
//! cache: detecting and normalising 100,000 values and building their
//! tables is most of loading a large feed, and a responder hunts many times
//! with the same partner feeds.
//!
//! The feeds of a hunt are looked up together by the hash of their bytes,
//! so an edited feed is parsed again. Like the rule cache it is never a
//! source of truth: a truncated or foreign file is ignored and rewritten,
//! writes go to a temporary file renamed into place, and only the few most
//! recent sets are kept.

use std::hash::{BuildHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crrt_hunt::IndicatorSet;

const MAGIC: &[u8; 16] = b"crrt-indicator2\n";
/// Bump when parsing or normalising values changes.
const REVISION: u32 = 2;
/// Sets kept; older ones are removed when a new one is written.
const KEEP: usize = 8;

/// What one feed gave: how many indicators, and the entries it skipped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FeedNote {
    pub count: usize,
    pub warnings: Vec<String>,
}

/// The feeds of a hunt, loaded: their set and a note per feed.
pub struct Loaded {
    pub set: IndicatorSet,
    pub notes: Vec<FeedNote>,
}

pub struct FeedCache {
    dir: PathBuf,
}

impl FeedCache {
    pub fn new(dir: &Path) -> FeedCache {
        FeedCache {
            dir: dir.join("indicators"),
        }
    }

    /// The key of these feeds' contents, in this order.
    pub fn key<'a>(feeds: impl IntoIterator<Item = &'a [u8]>) -> u64 {
        // Any fast hash stable within one build will do: a key is
        // compared with keys this build wrote.
        let mut hasher = foldhash::quality::FixedState::with_seed(0x1f2e_3d4c).build_hasher();
        REVISION.hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        for feed in feeds {
            feed.hash(&mut hasher);
        }
        hasher.finish()
    }

    fn path(&self, key: u64) -> PathBuf {
        self.dir.join(format!("{key:016x}.bin"))
    }

    pub fn get(&self, key: u64) -> Option<Loaded> {
        decode(&std::fs::read(self.path(key)).ok()?)
    }

    /// Writes the set; returns why it could not be.
    pub fn put(&self, key: u64, loaded: &Loaded) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("{}: {e}", self.dir.display());
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(fail)?;
        {
            let mut out = std::io::BufWriter::new(tmp.as_file_mut());
            out.write_all(&encode(loaded)).map_err(fail)?;
            out.flush().map_err(fail)?;
        }
        tmp.persist(self.path(key)).map_err(|e| fail(e.error))?;
        self.prune();
        Ok(())
    }

    /// Keeps the most recently written sets.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut feeds: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "bin"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        feeds.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (_, path) in feeds.into_iter().skip(KEEP) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The notes as JSON (a few lines), then the set's own bytes.
fn encode(loaded: &Loaded) -> Vec<u8> {
    let notes = serde_json::to_vec(&loaded.notes).unwrap_or_default();
    let mut out = MAGIC.to_vec();
    out.extend((notes.len() as u64).to_le_bytes());
    out.extend(notes);
    out.extend(loaded.set.to_bytes());
    out
}

/// `None` for anything but a complete file of this format and build.
fn decode(bytes: &[u8]) -> Option<Loaded> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    let (notes, set) = rest.split_at_checked(len)?;
    Some(Loaded {
        notes: serde_json::from_slice(notes).ok()?,
        set: IndicatorSet::from_bytes(set)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crrt_hunt::IndicatorSpec;
    use crrt_intel::Observable;

    fn sample() -> Loaded {
        let spec = |id: &str, line: &str, tags: &[&str]| IndicatorSpec {
            id: id.into(),
            observable: Observable::parse_line(line).expect("valid"),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };
        Loaded {
            set: IndicatorSet::new(vec![
                spec("evil.example", "evil[.]example", &[]),
                spec(
                    "indicator--1",
                    r"mutex:Global\WG",
                    &["T1485", "malware:WhisperGate"],
                ),
                spec("10.1.0.0/16", "10.1.0.0/16", &[]),
            ]),
            notes: vec![FeedNote {
                count: 3,
                warnings: vec!["line 3: cannot tell what \"x\" is".into()],
            }],
        }
    }

    #[test]
    fn sets_round_trip_and_damage_is_a_miss() {
        let bytes = encode(&sample());
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.notes, sample().notes);
        assert_eq!(back.set.len(), 3);
        assert_eq!(back.set.spec(1).id, "indicator--1");
        assert_eq!(back.set.spec(1).value, r"Global\WG");
        let tags: Vec<&str> = back.set.spec(1).tags().collect();
        assert_eq!(tags, ["T1485", "malware:WhisperGate"]);
        assert_eq!(encode(&back), bytes, "nothing lost");
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_none());
        assert!(decode(b"crrt-indicator2\n\xff\xff\xff\xff\xff\xff\xff\xff").is_none());
    }

    #[test]
    fn written_sets_are_found_and_old_ones_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FeedCache::new(dir.path());
        for n in 0..(KEEP as u8 + 3) {
            cache
                .put(FeedCache::key([[n].as_slice()]), &sample())
                .expect("written");
            // Distinct modification times for the pruning order.
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
        let kept = std::fs::read_dir(dir.path().join("indicators"))
            .expect("dir")
            .count();
        assert_eq!(kept, KEEP);
        assert!(
            cache
                .get(FeedCache::key([[KEEP as u8 + 2].as_slice()]))
                .is_some()
        );
        assert!(
            cache.get(FeedCache::key([[0].as_slice()])).is_none(),
            "the oldest went"
        );
        assert_ne!(
            FeedCache::key([b"a".as_slice()]),
            FeedCache::key([b"b".as_slice()])
        );
        // Feeds are keyed together, each whole: not by their concatenation.
        assert_ne!(
            FeedCache::key([b"ab".as_slice(), b"c".as_slice()]),
            FeedCache::key([b"a".as_slice(), b"bc".as_slice()])
        );
    }
}
