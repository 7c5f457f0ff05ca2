//! The parse-only floor for benchmarks: every record of every EVTX file under
//! the given paths rendered to JSON by the `evtx` crate, files and chunks on
//! all cores (what `evtx_dump -o json` does), nothing else. A hunt cannot be
//! faster than this on the same input; `bench/` reports both.
//!
//! `cargo run --release -p crrt-hunt --example parse_floor -- PATH...`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use evtx::{EvtxParser, ParserSettings};
use rayon::prelude::*;

fn main() {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: parse_floor PATH...");
        std::process::exit(2);
    }
    let mut files = Vec::new();
    for path in &paths {
        walk(path, &mut files);
    }
    let started = Instant::now();
    let records = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    files.par_iter().for_each(|path| {
        // evtx's default rendering (attributes inline), its fastest: until
        // session 12 this used separate attribute keys, 40% slower.
        let settings = ParserSettings::new().num_threads(1);
        let shared = Arc::new(settings.clone());
        let Ok(parser) = EvtxParser::from_path(path) else {
            return;
        };
        let mut parser = parser.with_configuration(settings);
        parser.chunks().par_bridge().for_each(|chunk| {
            let Ok(mut data) = chunk else { return };
            let Ok(mut chunk) = data.parse(Arc::clone(&shared)) else {
                return;
            };
            for record in chunk.iter().flatten() {
                if let Ok(json) = record.into_json() {
                    records.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(json.data.len() as u64, Ordering::Relaxed);
                }
            }
        });
    });
    let seconds = started.elapsed().as_secs_f64();
    let records = records.into_inner();
    println!(
        "parse floor: {} files, {records} records, {} MiB of JSON in {seconds:.2} s ({:.0} records/s)",
        files.len(),
        bytes.into_inner() >> 20,
        records as f64 / seconds
    );
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            walk(&entry.path(), out);
        }
    } else if std::fs::File::open(path)
        .and_then(|mut f| {
            let mut magic = [0u8; 8];
            std::io::Read::read_exact(&mut f, &mut magic).map(|_| magic)
        })
        .is_ok_and(|magic| &magic == b"ElfFile\0")
    {
        out.push(path.to_owned());
    }
}
