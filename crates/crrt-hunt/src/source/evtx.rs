//! EVTX files, read chunk by chunk on all cores. A damaged chunk or record
//! is counted and skipped; the rest of the file is still read.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use evtx::{EvtxChunk, EvtxChunkData, EvtxFileHeader, ParserSettings};

use crate::record::Record;
use rayon::prelude::*;

use super::{ReadContext, template};

/// Where chunks start, and their size (fixed by the format).
const FILE_HEADER: u64 = 4096;
const CHUNK: usize = 65536;

/// Reads an EVTX file's chunks in file order and hands them to the pool.
/// This is evtx's own walk (every whole chunk up to the end of the file,
/// dirty files' chunks past the header's count too, empty ones skipped)
/// without its test for empty chunks, which looked at all 64 KiB of each
/// one byte by byte: a Windows log is preallocated, and a third of the
/// attack samples' chunks are zeros. That test was 8% of reading them.
pub(crate) fn read<T: Read + Seek + Send>(mut file: T, name: &str, ctx: &ReadContext<'_>) {
    if let Err(e) = EvtxFileHeader::from_stream(&mut file) {
        return ctx
            .sink
            .failed(name, format!("not a readable EVTX file: {e}"));
    }
    if let Err(e) = file.seek(SeekFrom::Start(FILE_HEADER)) {
        return ctx
            .sink
            .failed(name, format!("not a readable EVTX file: {e}"));
    }
    // Parallelism comes from handing chunks to the pool, not from evtx's own
    // threads. Attributes inline (`#attributes`), evtx's default: only then
    // does it render from compiled templates (40% faster than its
    // tree walk, which `separate_json_attributes` forces).
    let settings = Arc::new(ParserSettings::new().num_threads(1));
    let mut number = 0_u64;
    let mut ended = false;
    let chunks = std::iter::from_fn(|| {
        if ended {
            return None;
        }
        // Not zeroed first (`read_exact` into `vec![0; CHUNK]` was 1% of
        // a hunt).
        let mut data = Vec::with_capacity(CHUNK);
        let read = (&mut file).take(CHUNK as u64).read_to_end(&mut data);
        number += 1;
        match read {
            Ok(CHUNK) => Some(Ok((number - 1, data))),
            // A chunk cut short ends the file, as in evtx.
            Ok(_) => None,
            // Where a failed read left the file is unknown: the rest of
            // it is not read.
            Err(e) => {
                ended = true;
                Some(Err((number - 1, e)))
            }
        }
    });
    chunks.par_bridge().for_each(|chunk| {
        if ctx.sink.cancelled() {
            return;
        }
        let (number, data) = match chunk {
            Ok(chunk) => chunk,
            Err((number, e)) => {
                return ctx.sink.damaged(
                    name,
                    1,
                    format!("unreadable chunk {number} (the rest of the file is not read): {e}"),
                );
            }
        };
        if is_empty(&data) {
            return;
        }
        let mut data = match EvtxChunkData::new(data, false) {
            Ok(data) => data,
            Err(e) => {
                return ctx
                    .sink
                    .damaged(name, 1, format!("unreadable chunk {number}: {e}"));
            }
        };
        data.number = Some(number);
        let mut chunk = match data.parse(Arc::clone(&settings)) {
            Ok(chunk) => chunk,
            Err(e) => {
                return ctx
                    .sink
                    .damaged(name, 1, format!("unreadable chunk {number}: {e}"));
            }
        };
        let (records, n_damaged, problem) = chunk_records(&mut chunk);
        if let Some(problem) = problem {
            ctx.sink.damaged(name, n_damaged, problem);
        }
        ctx.sink.records(name, records);
    });
}

/// Whether a chunk is all zeros: a chunk in use starts with its magic, so
/// only an empty one is looked at whole, a page at a time (each page's
/// bytes OR-ed together, which the compiler vectorises).
fn is_empty(chunk: &[u8]) -> bool {
    chunk[..8] != *b"ElfChnk\0"
        && chunk
            .chunks(4096)
            .all(|page| page.iter().fold(0, |any, &b| any | b) == 0)
}

/// A chunk's records, with the number it could not read and the first
/// problem. Most records are flattened straight from their templates; the
/// others are rendered to JSON by evtx and flattened from that.
pub(crate) fn chunk_records(chunk: &mut EvtxChunk<'_>) -> (Vec<Record>, u64, Option<String>) {
    let mut records = Vec::with_capacity(128);
    let mut plans = template::Plans::default();
    if template::flatten_chunk(chunk, &mut plans, &mut records) {
        return (records, 0, None);
    }
    // evtx's walk is the same: the records flattened are its first ones.
    let done = records.len();
    let mut n_damaged = 0u64;
    let mut first_problem = None;
    for record in chunk.iter().skip(done) {
        let record = match record {
            Ok(record) => match template::flatten_record(&record, &mut plans) {
                Some(flat) => {
                    records.push(flat);
                    continue;
                }
                None => Ok(record),
            },
            Err(e) => Err(e),
        };
        match record.and_then(|r| r.into_json_bytes()) {
            Ok(serialized) => {
                let id = serialized.event_record_id;
                match crate::windows::from_evtx_json(&serialized.data, id) {
                    Some(mut record) => {
                        // The event's own TimeCreated is what Event Viewer
                        // shows; the record header's is a fallback (some
                        // files carry zeroes there).
                        record.timestamp.get_or_insert(serialized.timestamp);
                        records.push(record);
                    }
                    None => {
                        n_damaged += 1;
                        first_problem.get_or_insert_with(|| {
                            format!("record {id} is not a Windows event (no System section)")
                        });
                    }
                }
            }
            Err(e) => {
                n_damaged += 1;
                first_problem.get_or_insert_with(|| format!("unreadable record: {e}"));
            }
        }
    }
    (records, n_damaged, first_problem)
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read, Seek, SeekFrom};
    use std::sync::Mutex;

    use super::read;
    use crate::record::Record;
    use crate::source::{Format, ReadContext, ReadLimits, RecordSink};

    #[derive(Default)]
    struct Sink {
        records: Mutex<usize>,
        damaged: Mutex<Vec<String>>,
    }

    impl RecordSink for Sink {
        fn records(&self, _: &str, records: Vec<Record>) {
            *self.records.lock().expect("lock") += records.len();
        }
        fn damaged(&self, _: &str, _: u64, detail: String) {
            self.damaged.lock().expect("lock").push(detail);
        }
        fn failed(&self, _: &str, _: String) {}
        fn unsupported(&self, _: &str) {}
        fn bytes_read(&self, _: u64) {}
        fn file_started(&self, _: &str, _: Format) {}
    }

    /// A file whose reads fail from `fails_at` on, every time.
    struct Failing {
        inner: Cursor<Vec<u8>>,
        fails_at: u64,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let at = self.inner.position();
            if at >= self.fails_at {
                return Err(std::io::Error::other("the disk is failing"));
            }
            let n = buf.len().min((self.fails_at - at) as usize);
            self.inner.read(&mut buf[..n])
        }
    }

    impl Seek for Failing {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(to)
        }
    }

    /// A read that fails is one damaged chunk, named, and the end of the
    /// file: what was read before it is kept, and the walk stops (it once
    /// could have asked a failing file for chunks forever).
    #[test]
    fn a_failing_read_ends_the_file_after_what_it_read() {
        let Some(files) = crate::windows::tests::corpus_evtx_files() else {
            return;
        };
        let bytes = files
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .find(|b| b.len() > 4096 + 2 * 65536 && b[4096 + 65536..][..8] == *b"ElfChnk\0")
            .expect("a sample of two chunks or more");
        let sink = Sink::default();
        let ctx = ReadContext {
            sink: &sink,
            limits: ReadLimits::default(),
            syslog_year: 2024,
        };
        let file = Failing {
            inner: Cursor::new(bytes),
            fails_at: 4096 + 65536 + 100,
        };
        read(file, "failing.evtx", &ctx);
        assert!(*sink.records.lock().expect("lock") > 0);
        let damaged = sink.damaged.lock().expect("lock");
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert!(
            damaged[0].contains("chunk 1") && damaged[0].contains("the disk is failing"),
            "{damaged:?}"
        );
    }
}
