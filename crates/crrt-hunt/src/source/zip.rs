//! ZIP triage packages, read in place: nothing is unpacked to disk. An
//! archive with an entry that escapes it (`../`, absolute paths) is refused
//! whole, and so is one that expands past the configured limit.

use std::io::{BufRead, BufReader, Cursor, Read, Seek};
use std::sync::atomic::AtomicU64;

use zip::ZipArchive;

use super::{BudgetReader, Format, ReadContext, detect};

/// Nested archives deeper than this are reported, not opened.
const MAX_DEPTH: usize = 3;

pub(crate) fn read<R: Read + Seek + Send>(archive: R, name: &str, ctx: &ReadContext<'_>) {
    let spent = AtomicU64::new(0);
    read_archive(archive, name, ctx, &spent, 1);
}

fn read_archive<R: Read + Seek + Send>(
    archive: R,
    name: &str,
    ctx: &ReadContext<'_>,
    spent: &AtomicU64,
    depth: usize,
) {
    let mut archive = match ZipArchive::new(archive) {
        Ok(a) => a,
        Err(e) => {
            return ctx
                .sink
                .failed(name, format!("not a readable ZIP archive: {e}"));
        }
    };
    if let Err(reason) = check_archive(&mut archive, ctx.limits.max_unzipped_bytes) {
        return ctx.sink.failed(name, format!("refused: {reason}"));
    }
    for index in 0..archive.len() {
        let entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(e) => {
                ctx.sink.failed(&format!("{name}!/#{index}"), e.to_string());
                continue;
            }
        };
        if entry.is_dir() {
            continue;
        }
        let member = format!(
            "{name}!/{}",
            entry.name().unwrap_or_else(|_| format!("#{index}").into())
        );
        let limited = BudgetReader::new(entry, spent, ctx.limits.max_unzipped_bytes);
        let mut reader = BufReader::with_capacity(64 * 1024, limited);
        let format = match reader.fill_buf() {
            Ok(head) => detect(head),
            Err(e) => {
                ctx.sink.failed(&member, e.to_string());
                continue;
            }
        };
        let Some(format) = format else {
            ctx.sink.unsupported(&member);
            continue;
        };
        ctx.sink.file_started(&member, format);
        match format {
            Format::Evtx | Format::Zip => {
                // Both need to seek; the member is read into memory, within the budget.
                let mut bytes = Vec::new();
                if let Err(e) = reader.read_to_end(&mut bytes) {
                    ctx.sink.failed(&member, e.to_string());
                    // Past the budget every later member would fail the same way.
                    if spent.load(std::sync::atomic::Ordering::Relaxed)
                        > ctx.limits.max_unzipped_bytes
                    {
                        return;
                    }
                    continue;
                }
                if format == Format::Evtx {
                    super::evtx::read(Cursor::new(bytes), &member, ctx);
                } else if depth >= MAX_DEPTH {
                    ctx.sink.failed(
                        &member,
                        format!("archive nested more than {MAX_DEPTH} deep, not opened"),
                    );
                } else {
                    read_archive(Cursor::new(bytes), &member, ctx, spent, depth + 1);
                }
            }
            text => super::read_text(text, reader, &member, ctx),
        }
    }
}

/// Refuses archives that would write outside themselves or declare an
/// expansion past the limit. Declared sizes can lie, so reading enforces
/// the limit again as bytes come out.
pub(crate) fn check_archive<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    limit: u64,
) -> Result<(), String> {
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| e.to_string())?;
        if entry.enclosed_name().is_none() {
            return Err(format!(
                "entry {:?} has a path that escapes the archive",
                String::from_utf8_lossy(entry.name_raw())
            ));
        }
        declared = declared.saturating_add(entry.size());
    }
    if declared > limit {
        return Err(format!(
            "it declares {declared} bytes uncompressed, over the limit of {limit} (ZIP bomb?)"
        ));
    }
    Ok(())
}
