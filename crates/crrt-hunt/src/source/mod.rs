//! Evidence readers: files, folders and ZIP triage packages in, batches of
//! [`Record`]s out. The format is detected from content, not the file name.

pub(crate) mod evtx;
mod json;
mod lines;
mod syslog;
mod template;
mod weblog;
mod zip;

pub(crate) use zip::check_archive as zip_guard;

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::HuntError;
use crate::record::Record;

/// A file to read, named as the user gave it.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub path: PathBuf,
    pub size: u64,
}

impl Evidence {
    pub fn display(&self) -> String {
        self.path.display().to_string()
    }
}

/// Expands folders (recursively, in name order) into the files they hold.
/// Paths given are followed when they are links; inside folders, links to
/// files are followed and links to folders are not (they loop: `/usr/bin/X11`
/// points at `.`). Devices, sockets and pipes inside folders are left out;
/// a pipe given itself is read as a stream (`-` is standard input), so
/// `zcat access.log.gz | crrt hunt - ...` works for the text formats.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Evidence>, HuntError> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            // Waiting for a hunt typed in by hand is never what was meant.
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(HuntError::StdinIsTerminal);
            }
            walk(Path::new(STDIN), &mut out)?;
        } else {
            walk(path, &mut out)?;
        }
    }
    Ok(out)
}

/// What `-` stands for.
const STDIN: &str = "/dev/stdin";

fn walk(path: &Path, out: &mut Vec<Evidence>) -> Result<(), HuntError> {
    let meta = std::fs::metadata(path).map_err(|e| HuntError::io(path, e))?;
    if meta.is_file() {
        out.push(Evidence {
            path: path.to_owned(),
            size: meta.len(),
        });
        return Ok(());
    }
    if !meta.is_dir() {
        if is_stream(&meta) {
            // Its size is not known until it is read.
            out.push(Evidence {
                path: path.to_owned(),
                size: 0,
            });
            return Ok(());
        }
        return Err(HuntError::NotEvidence {
            path: path.to_owned(),
        });
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| HuntError::io(path, e))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let kind = entry.file_type().ok()?;
            let wanted = kind.is_dir()
                || kind.is_file()
                || (kind.is_symlink()
                    && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()));
            wanted.then(|| entry.path())
        })
        .collect();
    children.sort();
    for child in children {
        walk(&child, out)?;
    }
    Ok(())
}

/// The formats recognised from a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Evtx,
    Zip,
    /// One JSON object per line.
    JsonLines,
    /// A JSON array, or objects spread over several lines.
    Json,
    /// IIS and other W3C extended logs.
    W3c,
    /// Apache/nginx common and combined formats.
    AccessLog,
    Syslog,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Evtx => "EVTX",
            Format::Zip => "ZIP",
            Format::JsonLines => "JSON Lines",
            Format::Json => "JSON",
            Format::W3c => "W3C log",
            Format::AccessLog => "access log",
            Format::Syslog => "syslog",
        }
    }
}

/// Recognises a format from the first bytes of a file (up to 64 KiB).
pub fn detect(head: &[u8]) -> Option<Format> {
    if let Some(binary) = detect_binary(head) {
        return Some(binary);
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // Binary files have NULs early; a text log may carry a few later (junk
    // that scanners send ends up in access logs).
    if head[..head.len().min(1024)].contains(&0) {
        return None;
    }
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return Some(Format::Json);
    }
    if trimmed.starts_with('{') {
        let first_line = trimmed.lines().next().unwrap_or_default();
        let is_whole =
            serde_json::from_str::<serde_json::Value>(first_line).is_ok_and(|v| v.is_object());
        return Some(if is_whole {
            Format::JsonLines
        } else {
            Format::Json
        });
    }
    let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let first = lines.next()?;
    if first.starts_with("#Software:")
        || first.starts_with("#Version:")
        || first.starts_with("#Fields:")
    {
        return Some(Format::W3c);
    }
    // Judge by the first few data lines, so one odd line does not decide.
    let sample: Vec<&str> = std::iter::once(first).chain(lines).take(5).collect();
    let most = |f: fn(&str) -> bool| sample.iter().filter(|l| f(l)).count() * 2 > sample.len();
    if most(weblog::looks_like_access_log) {
        return Some(Format::AccessLog);
    }
    if most(syslog::looks_like_syslog) {
        return Some(Format::Syslog);
    }
    None
}

/// A pipe or a terminal: what standard input and `<(...)` are.
#[cfg(unix)]
fn is_stream(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_fifo() || meta.file_type().is_char_device()
}

#[cfg(not(unix))]
fn is_stream(_: &std::fs::Metadata) -> bool {
    false
}

/// The binary formats, known by their first eight bytes.
fn detect_binary(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"ElfFile\0") {
        Some(Format::Evtx)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else {
        None
    }
}

/// Bounds on what reading one piece of evidence may cost.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// The most bytes all members of one ZIP (nested ones included) may
    /// expand to; past it the archive is refused as a ZIP bomb.
    pub max_unzipped_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_unzipped_bytes: 4 << 30,
        }
    }
}

/// Receives what the readers produce. Called from several threads at once.
pub(crate) trait RecordSink: Sync {
    /// A batch of records from one evidence file.
    fn records(&self, evidence: &str, records: Vec<Record>);
    /// Records or chunks that could not be read; reading went on.
    fn damaged(&self, evidence: &str, count: u64, detail: String);
    /// A whole file (or archive member) that could not be read at all.
    fn failed(&self, evidence: &str, reason: String);
    /// A file in no format we read; not an error.
    fn unsupported(&self, evidence: &str);
    /// Input bytes consumed, for progress.
    fn bytes_read(&self, n: u64);
    /// A file (or archive member) was recognised and is being read.
    fn file_started(&self, evidence: &str, format: Format);
    /// Whether readers should stop at their next chunk or batch.
    fn cancelled(&self) -> bool {
        false
    }
}

pub(crate) struct ReadContext<'a> {
    pub sink: &'a dyn RecordSink,
    pub limits: ReadLimits,
    /// The year assumed for syslog lines, whose RFC 3164 timestamps have none.
    pub syslog_year: i16,
}

/// Reads one file from disk.
pub(crate) fn read_file(evidence: &Evidence, ctx: &ReadContext<'_>) {
    let name = evidence.display();
    // One open per file, and binary formats known from eight bytes: the
    // EVTX reader used to reopen the file by path after a 64 KiB detection
    // read, so the start of every event log was read twice.
    let mut magic = [0_u8; 8];
    let opened = std::fs::File::open(&evidence.path).and_then(|mut file| {
        let n = read_up_to(&mut file, &mut magic)?;
        Ok((file, n))
    });
    let (mut file, n) = match opened {
        Ok(opened) => opened,
        Err(e) => return ctx.sink.failed(&name, e.to_string()),
    };
    if file.seek(SeekFrom::Start(0)).is_err() {
        return read_stream(&magic[..n], file, &name, ctx);
    }
    match detect_binary(&magic[..n]) {
        Some(Format::Evtx) => {
            ctx.sink.file_started(&name, Format::Evtx);
            evtx::read(file, &name, ctx);
            ctx.sink.bytes_read(evidence.size);
        }
        Some(Format::Zip) => {
            ctx.sink.file_started(&name, Format::Zip);
            zip::read(file, &name, ctx);
            ctx.sink.bytes_read(evidence.size);
        }
        _ => {
            let mut reader = BufReader::with_capacity(64 * 1024, file);
            let format = match reader.fill_buf() {
                Ok(head) => detect(head),
                Err(e) => return ctx.sink.failed(&name, e.to_string()),
            };
            let Some(format) = format else {
                ctx.sink.bytes_read(evidence.size);
                return ctx.sink.unsupported(&name);
            };
            ctx.sink.file_started(&name, format);
            read_text(format, reader, &name, ctx);
        }
    }
}

/// Reads a pipe, whose first bytes are already read: text formats only
/// (the EVTX and ZIP readers seek).
fn read_stream(magic: &[u8], mut pipe: std::fs::File, name: &str, ctx: &ReadContext<'_>) {
    if let Some(format) = detect_binary(magic) {
        return ctx.sink.failed(
            name,
            format!(
                "{} cannot be read from a pipe (it is read by seeking): save it to a file first",
                format.name()
            ),
        );
    }
    // As much of a head as a file gives detection.
    let mut head = vec![0; 64 * 1024];
    head[..magic.len()].copy_from_slice(magic);
    let len = match read_up_to(&mut pipe, &mut head[magic.len()..]) {
        Ok(more) => magic.len() + more,
        Err(e) => return ctx.sink.failed(name, e.to_string()),
    };
    head.truncate(len);
    let Some(format) = detect(&head) else {
        ctx.sink.bytes_read(len as u64);
        return ctx.sink.unsupported(name);
    };
    ctx.sink.file_started(name, format);
    let reader = BufReader::with_capacity(64 * 1024, std::io::Cursor::new(head).chain(pipe));
    read_text(format, reader, name, ctx);
}

/// Reads until `buf` is full or the input ends; the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads a text format from a stream; counts bytes as it goes.
pub(crate) fn read_text<R: BufRead + Send>(
    format: Format,
    reader: R,
    name: &str,
    ctx: &ReadContext<'_>,
) {
    match format {
        Format::Json => json::read_document(reader, name, ctx),
        Format::JsonLines | Format::W3c | Format::AccessLog | Format::Syslog => {
            lines::read(format, reader, name, ctx)
        }
        Format::Evtx | Format::Zip => {
            unreachable!("binary formats are dispatched before read_text")
        }
    }
}

/// A reader that gives up once a shared byte budget is spent: what keeps a
/// ZIP bomb from expanding past [`ReadLimits::max_unzipped_bytes`].
pub(crate) struct BudgetReader<'a, R> {
    inner: R,
    spent: &'a AtomicU64,
    budget: u64,
}

impl<'a, R: Read> BudgetReader<'a, R> {
    pub(crate) fn new(inner: R, spent: &'a AtomicU64, budget: u64) -> Self {
        BudgetReader {
            inner,
            spent,
            budget,
        }
    }
}

impl<R: Read> Read for BudgetReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.spent.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.budget {
            return Err(std::io::Error::other(format!(
                "archive expands past the limit of {} bytes (ZIP bomb?)",
                self.budget
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<Format>) {
        assert_eq!(detect(input.as_bytes()), expected, "{input:?}");
    }

    #[test]
    fn formats_are_detected_from_content() {
        check("{\"a\": 1}\n{\"a\": 2}\n", Some(Format::JsonLines));
        check("{\n  \"a\": 1\n}\n", Some(Format::Json));
        check("  [ {\"a\": 1} ]", Some(Format::Json));
        check(
            "#Software: Microsoft Internet Information Services 10.0\n",
            Some(Format::W3c),
        );
        check(
            "1.2.3.4 - - [11/Jul/2018:08:41:28 +0300] \"GET / HTTP/1.1\" 200 11444\n",
            Some(Format::AccessLog),
        );
        check(
            "1.2.3.4 - bob [11/Jul/2018:08:41:28 +0300] \"GET /a HTTP/1.1\" 404 - \"-\" \"curl/8\"\n",
            Some(Format::AccessLog),
        );
        check(
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed\n",
            Some(Format::Syslog),
        );
        check(
            "Mar  1 10:00:00 web01 sshd[123]: Accepted password for root\n",
            Some(Format::Syslog),
        );
        check(
            "<165>1 2003-10-11T22:14:15.003Z host app 1 ID47 - msg\n",
            Some(Format::Syslog),
        );
        check("# A readme\nnothing to see\n", None);
        check("", None);
        assert_eq!(detect(b"ElfFile\0rest"), Some(Format::Evtx));
        assert_eq!(detect(b"PK\x03\x04rest"), Some(Format::Zip));
        assert_eq!(detect(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00"), None);
    }
}
