//! Findings beyond a count kept sorted in temporary files and merged in
//! order at the end (an external merge sort), so that a hunt's memory stays
//! flat however many findings a large corpus makes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rayon::slice::ParallelSliceMut;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::finding::{Finding, Severity};

/// When findings leave memory for temporary files.
#[derive(Debug, Clone)]
pub struct Spill {
    /// Findings held in memory, about, at most: runs of half as many are
    /// sorted and written out while the hunt goes on (`usize::MAX`:
    /// never).
    pub after: usize,
    /// Where the runs go [default: the system's temporary folder].
    pub dir: Option<PathBuf>,
}

impl Default for Spill {
    fn default() -> Self {
        Spill {
            after: usize::MAX,
            dir: None,
        }
    }
}

/// The order of a hunt's findings: by time (untimed last), then evidence
/// file, record and rule, so two runs write identical files.
pub(crate) fn order(a: &Finding, b: &Finding) -> Ordering {
    (
        a.timestamp.is_none(),
        a.timestamp,
        &a.evidence_file,
        a.record_id,
        &a.rule_id,
        &a.rule_title,
    )
        .cmp(&(
            b.timestamp.is_none(),
            b.timestamp,
            &b.evidence_file,
            b.record_id,
            &b.rule_id,
            &b.rule_title,
        ))
}

/// A finding as written to a run: lossless (the time in nanoseconds).
#[derive(Deserialize)]
struct Stored {
    t: Option<i128>,
    host: Option<String>,
    channel: Option<String>,
    event_id: Option<u32>,
    record_id: Option<u64>,
    rule_id: Option<String>,
    rule_title: String,
    level: u8,
    tags: Vec<String>,
    evidence_file: String,
    event: Box<RawValue>,
}

const LEVELS: [Severity; 5] = [
    Severity::Informational,
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

/// [`Stored`] written from a borrowed finding (the same fields).
#[derive(Serialize)]
struct StoredRef<'a> {
    t: Option<i128>,
    host: &'a Option<String>,
    channel: &'a Option<String>,
    event_id: Option<u32>,
    record_id: Option<u64>,
    rule_id: &'a Option<String>,
    rule_title: &'a str,
    level: u8,
    tags: &'a [String],
    evidence_file: &'a str,
    event: &'a RawValue,
}

impl<'a> From<&'a Found> for StoredRef<'a> {
    fn from(h: &'a Found) -> StoredRef<'a> {
        let f = &h.finding;
        StoredRef {
            t: f.timestamp.map(|t| t.as_nanosecond()),
            host: &f.host,
            channel: &f.channel,
            event_id: f.event_id,
            record_id: f.record_id,
            rule_id: &f.rule_id,
            rule_title: &f.rule_title,
            level: LEVELS.iter().position(|l| *l == f.level).unwrap_or(0) as u8,
            tags: &f.tags,
            evidence_file: &f.evidence_file,
            event: &h.event,
        }
    }
}

/// A finding as a hunt hands it out, its event kept as compact JSON text:
/// the parsed fields take four to five times the memory (10.5 MiB against
/// 2.3 MiB for the 1,570 findings of the shared corpus), a hunt holds every
/// finding until the end to write them in order, and every finding of one
/// event shares one copy of it. Written out ([`Serialize`]) it is exactly
/// the [`Finding`] it stands for, without parsing the event again.
#[derive(Debug, Clone)]
pub struct Found {
    /// The finding, its `event` taken out (null).
    finding: Finding,
    event: Arc<RawValue>,
}

/// An event as compact JSON text, to share between its findings.
pub(crate) fn event_text(event: &(impl serde::Serialize + ?Sized)) -> Arc<RawValue> {
    // Values and fields always serialise (their keys are strings).
    serde_json::value::to_raw_value(event)
        .map(Arc::from)
        .unwrap_or_else(|_| Arc::from(RawValue::NULL.to_owned()))
}

impl Found {
    pub(crate) fn new(mut finding: Finding) -> Found {
        let event = event_text(&std::mem::take(&mut finding.event));
        Found { finding, event }
    }

    /// A finding whose event is `event` (its own `event` is dropped).
    pub(crate) fn with_event(mut finding: Finding, event: Arc<RawValue>) -> Found {
        finding.event = Value::Null;
        Found { finding, event }
    }

    /// The finding, its `event` null: see [`Found::event`].
    pub fn finding(&self) -> &Finding {
        &self.finding
    }

    /// The matched event (for a correlation, what it counted) as compact
    /// JSON.
    pub fn event(&self) -> &RawValue {
        &self.event
    }

    /// The whole finding, its event parsed.
    pub fn into_finding(self) -> Finding {
        let mut finding = self.finding;
        finding.event = serde_json::from_str(self.event.get())
            .unwrap_or_else(|_| Value::String(self.event.get().to_owned()));
        finding
    }
}

/// [`Finding`]'s serialised form, its event written as it is held.
#[derive(Serialize)]
struct FoundRef<'a> {
    #[serde(serialize_with = "crate::finding::serialize_timestamp")]
    timestamp: Option<Timestamp>,
    host: &'a Option<String>,
    channel: &'a Option<String>,
    event_id: Option<u32>,
    record_id: Option<u64>,
    rule_id: &'a Option<String>,
    rule_title: &'a str,
    level: Severity,
    tags: &'a [String],
    evidence_file: &'a str,
    event: &'a RawValue,
}

impl Serialize for Found {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = &self.finding;
        FoundRef {
            timestamp: f.timestamp,
            host: &f.host,
            channel: &f.channel,
            event_id: f.event_id,
            record_id: f.record_id,
            rule_id: &f.rule_id,
            rule_title: &f.rule_title,
            level: f.level,
            tags: &f.tags,
            evidence_file: &f.evidence_file,
            event: &self.event,
        }
        .serialize(s)
    }
}

fn held_order(a: &Found, b: &Found) -> Ordering {
    order(&a.finding, &b.finding)
}

impl From<Stored> for Found {
    fn from(s: Stored) -> Found {
        let finding = Finding {
            timestamp: s.t.and_then(|n| Timestamp::from_nanosecond(n).ok()),
            host: s.host,
            channel: s.channel,
            event_id: s.event_id,
            record_id: s.record_id,
            rule_id: s.rule_id,
            rule_title: s.rule_title,
            level: LEVELS
                .get(usize::from(s.level))
                .copied()
                .unwrap_or(Severity::Informational),
            tags: s.tags,
            evidence_file: s.evidence_file,
            event: Value::Null,
        };
        Found {
            finding,
            event: Arc::from(s.event),
        }
    }
}

/// Findings collected during a hunt: in memory up to `Spill::after`, then
/// in sorted runs on disk. Shared by the hunt's threads: a full buffer is
/// taken out under the lock and sorted and written outside it, so the
/// other threads go on hunting meanwhile.
pub(crate) struct Pile {
    spill: Spill,
    held: Mutex<Held>,
}

struct Held {
    buffer: Vec<Found>,
    dir: Option<Arc<tempfile::TempDir>>,
    /// Runs in the order they were begun; `None` while one is written.
    runs: Vec<Option<PathBuf>>,
    /// A run could not be written: findings stay in memory from then on.
    failed: bool,
}

/// Runs read back on threads of their own, parsed while the merge writes;
/// more runs than this are read on the merging thread.
const READER_THREADS: usize = 8;
/// Findings a reader parses ahead of the merge, handed over in batches:
/// one at a time, the handovers woke a sleeping thread so often that the
/// futex calls were 2% of a 1 GB hunt.
const READ_AHEAD: usize = 128;
const BATCH: usize = 64;

impl Pile {
    pub(crate) fn new(spill: Spill) -> Pile {
        Pile {
            spill,
            held: Mutex::new(Held {
                buffer: Vec::new(),
                dir: None,
                runs: Vec::new(),
                failed: false,
            }),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes findings made ready with [`Found::new`] (outside any lock).
    pub(crate) fn extend(&self, findings: impl IntoIterator<Item = Found>) {
        let (run, dir, mut full) = {
            let mut held = self.held();
            held.buffer.extend(findings);
            // Half a buffer: the one filling and the one being written stay
            // within `after` findings together.
            if held.buffer.len() < (self.spill.after / 2).max(1) || held.failed {
                return;
            }
            let dir = match held.dir.clone() {
                Some(dir) => dir,
                None => match self.make_dir() {
                    Ok(dir) => Arc::clone(held.dir.insert(Arc::new(dir))),
                    Err(_) => {
                        held.failed = true;
                        return;
                    }
                },
            };
            held.runs.push(None);
            (held.runs.len() - 1, dir, std::mem::take(&mut held.buffer))
        };
        let path = dir.path().join(format!("run-{run}.jsonl"));
        full.par_sort_by(held_order);
        let written = write_run(&path, &full);
        let mut held = self.held();
        match written {
            Ok(()) => held.runs[run] = Some(path),
            // A run that cannot be written (no room in $TMPDIR) leaves its
            // findings in memory: the hunt goes on as it would without
            // spilling.
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                held.buffer.append(&mut full);
                held.failed = true;
            }
        }
    }

    fn make_dir(&self) -> std::io::Result<tempfile::TempDir> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("crrt-findings-");
        match &self.spill.dir {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
    }

    /// Hands every finding to `each` in order; the first error reading a
    /// run back, or of `each`, ends it.
    pub(crate) fn finish(
        self,
        each: &mut dyn FnMut(Found) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let Held {
            mut buffer,
            dir,
            runs,
            ..
        } = self.held.into_inner().unwrap_or_else(|e| e.into_inner());
        buffer.par_sort_by(held_order);
        // Every run begun was written or given back before the hunt ended.
        let runs: Vec<PathBuf> = runs.into_iter().flatten().collect();
        if runs.is_empty() {
            return buffer.into_iter().try_for_each(each);
        }
        let result = std::thread::scope(|scope| {
            let mut sources: Vec<Box<dyn Iterator<Item = std::io::Result<Found>>>> = Vec::new();
            for (i, path) in runs.iter().enumerate() {
                let file = std::fs::File::open(path)?;
                if i < READER_THREADS {
                    let (send, receive) = std::sync::mpsc::sync_channel(READ_AHEAD / BATCH - 1);
                    scope.spawn(move || {
                        let mut run = read_run(file).peekable();
                        while run.peek().is_some() {
                            let batch: Vec<_> = run.by_ref().take(BATCH).collect();
                            // The merge stopped early (an error): so do we.
                            if send.send(batch).is_err() {
                                return;
                            }
                        }
                    });
                    sources.push(Box::new(receive.into_iter().flatten()));
                } else {
                    sources.push(Box::new(read_run(file)));
                }
            }
            sources.push(Box::new(std::mem::take(&mut buffer).into_iter().map(Ok)));
            merge(sources, each)
        });
        drop(dir);
        result
    }
}

fn write_run(path: &std::path::Path, findings: &[Found]) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for finding in findings {
        serde_json::to_writer(&mut out, &StoredRef::from(finding))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A run's findings, in its order.
fn read_run(file: std::fs::File) -> impl Iterator<Item = std::io::Result<Found>> {
    BufReader::with_capacity(1 << 16, file).lines().map(|line| {
        let stored: Stored = serde_json::from_str(&line?).map_err(std::io::Error::other)?;
        Ok(Found::from(stored))
    })
}

/// Merges sorted sources into `each`, in order.
fn merge(
    mut sources: Vec<Box<dyn Iterator<Item = std::io::Result<Found>> + '_>>,
    each: &mut dyn FnMut(Found) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut heap = BinaryHeap::new();
    for (source, iter) in sources.iter_mut().enumerate() {
        if let Some(first) = iter.next() {
            heap.push(Head {
                found: first?,
                source,
            });
        }
    }
    while let Some(Head { found, source }) = heap.pop() {
        each(found)?;
        if let Some(next) = sources[source].next() {
            heap.push(Head {
                found: next?,
                source,
            });
        }
    }
    Ok(())
}

/// The next finding of one source, ordered for a min-heap (earlier source
/// first on ties, as a stable sort would keep them).
struct Head {
    found: Found,
    source: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        held_order(&other.found, &self.found).then(other.source.cmp(&self.source))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(second: Option<i64>, rule: &str, event: Value) -> Finding {
        Finding {
            timestamp: second.map(|s| Timestamp::from_second(s).expect("time")),
            host: Some("DC01".into()),
            channel: None,
            event_id: Some(4688),
            record_id: Some(7),
            rule_id: Some(rule.into()),
            rule_title: rule.into(),
            level: Severity::High,
            tags: vec!["attack.t1059".into()],
            evidence_file: "Security.evtx".into(),
            event,
        }
    }

    #[test]
    fn a_held_finding_gives_back_the_same_event() {
        for event in [
            serde_json::json!({
                "CommandLine": "cmd /c \"echo é\\x\"\n",
                "Big": u64::MAX,
                "Negative": -3,
                "Ratio": 0.1,
                "Nested": {"b": [1, null, true, {"z": "y"}], "a": ""},
                "Zebra first": 1,
            }),
            Value::Null,
            serde_json::json!("a string event"),
        ] {
            let before = finding(Some(1), "r", event);
            let found = Found::new(before.clone());
            assert_eq!(
                serde_json::to_string(&found).expect("json"),
                serde_json::to_string(&before).expect("json"),
                "written out without parsing"
            );
            let after = found.into_finding();
            assert_eq!(after.event, before.event);
            assert_eq!(
                serde_json::to_string(&after).expect("json"),
                serde_json::to_string(&before).expect("json")
            );
        }
    }

    fn collect(spill: Spill, findings: Vec<Finding>) -> Vec<String> {
        let pile = Pile::new(spill);
        // In small batches, as the readers deliver them.
        for chunk in findings.chunks(3) {
            pile.extend(chunk.iter().cloned().map(Found::new));
        }
        written(pile)
    }

    /// What the pile hands out, in order, as JSON lines.
    fn written(pile: Pile) -> Vec<String> {
        let mut out = Vec::new();
        pile.finish(&mut |f| {
            out.push(serde_json::to_string(&f).map_err(std::io::Error::other)?);
            Ok(())
        })
        .expect("merged");
        out
    }

    #[test]
    fn spilled_runs_merge_to_exactly_what_memory_gives() {
        let mut findings: Vec<Finding> = (0..200)
            .map(|i| {
                let second = (i % 7 != 0).then_some(1_645_000_000 + (i * 7919) % 97);
                finding(
                    second,
                    &format!("rule-{}", i % 5),
                    serde_json::json!({"n": i, "x": 0.1 + i as f64, "s": "ünïcode"}),
                )
            })
            .collect();
        findings.reverse();
        let in_memory = collect(Spill::default(), findings.clone());
        let dir = tempfile::tempdir().expect("dir");
        let spilled = collect(
            Spill {
                after: 16,
                dir: Some(dir.path().to_owned()),
            },
            findings,
        );
        assert_eq!(in_memory.len(), 200);
        assert_eq!(spilled, in_memory);
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            0,
            "the runs are removed"
        );
    }

    #[test]
    fn threads_spilling_at_once_lose_and_reorder_nothing() {
        // Distinct records, as in a hunt: arrival order decides only ties.
        let findings: Vec<Finding> = (0..400)
            .map(|i| Finding {
                record_id: Some(i),
                ..finding(
                    Some(1_645_000_000 + (i as i64 * 31) % 113),
                    "r",
                    serde_json::json!({"n": i}),
                )
            })
            .collect();
        let expected = collect(Spill::default(), findings.clone());
        let dir = tempfile::tempdir().expect("dir");
        let pile = Pile::new(Spill {
            after: 10,
            dir: Some(dir.path().to_owned()),
        });
        std::thread::scope(|scope| {
            for part in findings.chunks(100) {
                let pile = &pile;
                scope.spawn(move || {
                    for chunk in part.chunks(3) {
                        pile.extend(chunk.iter().cloned().map(Found::new));
                    }
                });
            }
        });
        assert_eq!(written(pile), expected);
    }

    #[test]
    fn runs_that_cannot_be_written_leave_the_findings_in_memory() {
        let findings: Vec<Finding> = (0..50)
            .map(|i| finding(Some(1_645_000_000 - i), "r", serde_json::json!({"n": i})))
            .collect();
        let expected = collect(Spill::default(), findings.clone());
        let nowhere = Spill {
            after: 4,
            dir: Some("/nonexistent/crrt-spill".into()),
        };
        assert_eq!(collect(nowhere, findings), expected);
    }
}
