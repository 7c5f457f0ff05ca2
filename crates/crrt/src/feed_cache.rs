//! Parsed indicator feeds for `crrt hunt --indicators`, kept beside the
//! rule cache: detecting and normalising 100,000 values is most of loading a
//! large feed, and a responder hunts many times with the same partner feed.
//!
//! A feed is looked up by the hash of its bytes, so an edited feed is parsed
//! again. Like the rule cache it is never a source of truth: a truncated or
//! foreign file is ignored and rewritten, writes go to a temporary file
//! renamed into place, and only the few most recent feeds are kept.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crrt_hunt::IndicatorSpec;
use crrt_intel::{Kind, Observable};

const MAGIC: &[u8; 16] = b"crrt-indicator1\n";
/// Bump when parsing or normalising values changes.
const REVISION: u32 = 1;
/// Feeds kept; older ones are removed when a new one is written.
const KEEP: usize = 8;

/// What loading a feed gave: its indicators and the lines it skipped.
pub struct Parsed {
    pub specs: Vec<IndicatorSpec>,
    pub warnings: Vec<String>,
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

    pub fn key(bytes: &[u8]) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        REVISION.hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        bytes.hash(&mut hasher);
        hasher.finish()
    }

    fn path(&self, key: u64) -> PathBuf {
        self.dir.join(format!("{key:016x}.bin"))
    }

    pub fn get(&self, key: u64) -> Option<Parsed> {
        decode(&std::fs::read(self.path(key)).ok()?)
    }

    /// Writes the feed; returns why it could not be.
    pub fn put(&self, key: u64, parsed: &Parsed) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("{}: {e}", self.dir.display());
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(fail)?;
        {
            let mut out = std::io::BufWriter::new(tmp.as_file_mut());
            out.write_all(&encode(parsed)).map_err(fail)?;
            out.flush().map_err(fail)?;
        }
        tmp.persist(self.path(key)).map_err(|e| fail(e.error))?;
        self.prune();
        Ok(())
    }

    /// Keeps the most recently written feeds.
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

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn encode(parsed: &Parsed) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend((parsed.warnings.len() as u64).to_le_bytes());
    for w in &parsed.warnings {
        put_str(&mut out, w);
    }
    out.extend((parsed.specs.len() as u64).to_le_bytes());
    for spec in &parsed.specs {
        put_str(&mut out, spec.observable.kind.as_str());
        put_str(&mut out, &spec.observable.value);
        // The id is nearly always the value itself: one flag byte then.
        if spec.id == spec.observable.value {
            out.push(0);
        } else {
            out.push(1);
            put_str(&mut out, &spec.id);
        }
        out.extend((spec.tags.len() as u32).to_le_bytes());
        for tag in &spec.tags {
            put_str(&mut out, tag);
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
    /// A count no larger than the bytes left could hold (a damaged count
    /// must not reserve gigabytes).
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= self.0.len()).then_some(n)
    }
}

/// `None` for anything but a complete file of this format.
fn decode(bytes: &[u8]) -> Option<Parsed> {
    let mut r = Reader(bytes.strip_prefix(MAGIC.as_slice())?);
    let n = r.count()?;
    let mut warnings = Vec::with_capacity(n);
    for _ in 0..n {
        warnings.push(r.str()?.to_owned());
    }
    let n = r.count()?;
    let mut specs = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = Kind::lookup(r.str()?)?;
        let value = r.str()?.to_owned();
        let id = match r.take(1)? {
            [0] => value.clone(),
            [1] => r.str()?.to_owned(),
            _ => return None,
        };
        let n_tags = r.u32()? as usize;
        let mut tags = Vec::with_capacity(n_tags.min(64));
        for _ in 0..n_tags {
            tags.push(r.str()?.to_owned());
        }
        specs.push(IndicatorSpec {
            id,
            observable: Observable { kind, value },
            tags,
        });
    }
    r.0.is_empty().then_some(Parsed { specs, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Parsed {
        Parsed {
            specs: vec![
                IndicatorSpec {
                    id: "evil.example".into(),
                    observable: Observable::parse_line("evil[.]example").expect("valid"),
                    tags: vec![],
                },
                IndicatorSpec {
                    id: "indicator--1".into(),
                    observable: Observable::parse_line(r"mutex:Global\WG").expect("valid"),
                    tags: vec!["T1485".into(), "malware:WhisperGate".into()],
                },
            ],
            warnings: vec!["line 3: cannot tell what \"x\" is".into()],
        }
    }

    #[test]
    fn feeds_round_trip_and_damage_is_a_miss() {
        let bytes = encode(&sample());
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back.warnings, sample().warnings);
        assert_eq!(back.specs.len(), 2);
        assert_eq!(back.specs[0].id, "evil.example");
        assert_eq!(back.specs[1].id, "indicator--1");
        assert_eq!(back.specs[1].observable, sample().specs[1].observable);
        assert_eq!(back.specs[1].tags, sample().specs[1].tags);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_none());
        assert!(decode(b"crrt-indicator1\n\xff\xff\xff\xff\xff\xff\xff\xff").is_none());
    }

    #[test]
    fn written_feeds_are_found_and_old_ones_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = FeedCache::new(dir.path());
        for n in 0..(KEEP as u8 + 3) {
            cache.put(FeedCache::key(&[n]), &sample()).expect("written");
            // Distinct modification times for the pruning order.
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
        let kept = std::fs::read_dir(dir.path().join("indicators"))
            .expect("dir")
            .count();
        assert_eq!(kept, KEEP);
        assert!(cache.get(FeedCache::key(&[KEEP as u8 + 2])).is_some());
        assert!(cache.get(FeedCache::key(&[0])).is_none(), "the oldest went");
        assert_ne!(FeedCache::key(b"a"), FeedCache::key(b"b"));
    }
}
