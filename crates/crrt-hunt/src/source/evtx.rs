//! EVTX files, read chunk by chunk on all cores. A damaged chunk or record
//! is counted and skipped; the rest of the file is still read.

use std::io::{Read, Seek};
use std::sync::Arc;

use evtx::{EvtxChunk, EvtxParser, ParserSettings};

use crate::record::Record;
use rayon::prelude::*;

use super::{ReadContext, template};

pub(crate) fn read<T: Read + Seek + Send>(
    parser: EvtxParser<T>,
    name: &str,
    ctx: &ReadContext<'_>,
) {
    // Parallelism comes from handing chunks to the pool, not from evtx's own
    // threads. Attributes inline (`#attributes`), evtx's default: only then
    // does it render from compiled templates (40% faster than its
    // tree walk, which `separate_json_attributes` forces).
    let settings = ParserSettings::new().num_threads(1);
    let shared = Arc::new(settings.clone());
    let mut parser = parser.with_configuration(settings);
    parser.chunks().par_bridge().for_each(|chunk| {
        if ctx.sink.cancelled() {
            return;
        }
        let mut data = match chunk {
            Ok(data) => data,
            Err(e) => return ctx.sink.damaged(name, 1, format!("unreadable chunk: {e}")),
        };
        let mut chunk = match data.parse(Arc::clone(&shared)) {
            Ok(chunk) => chunk,
            Err(e) => return ctx.sink.damaged(name, 1, format!("unreadable chunk: {e}")),
        };
        let (records, n_damaged, problem) = chunk_records(&mut chunk);
        if let Some(problem) = problem {
            ctx.sink.damaged(name, n_damaged, problem);
        }
        ctx.sink.records(name, records);
    });
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
