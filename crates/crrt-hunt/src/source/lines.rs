//! Line formats (JSON Lines, W3C, access logs, syslog), read in batches that
//! are parsed and matched on all cores while the next batch is read.

use std::io::BufRead;
use std::sync::Arc;

use rayon::prelude::*;

use super::{Format, ReadContext};
use crate::record::Record;

const BATCH_LINES: usize = 2048;

struct Batch {
    /// 1-based number of the first line.
    first_line: u64,
    lines: Vec<String>,
    /// The W3C `#Fields:` in force for these lines.
    w3c_fields: Option<Arc<Vec<String>>>,
}

pub(crate) fn read<R: BufRead + Send>(
    format: Format,
    reader: R,
    name: &str,
    ctx: &ReadContext<'_>,
) {
    let mut batches = Batches {
        reader,
        format,
        line_no: 0,
        w3c_fields: None,
        error: None,
        done: false,
    };
    (&mut batches).par_bridge().for_each(|batch| {
        if ctx.sink.cancelled() {
            return;
        }
        let mut records = Vec::with_capacity(batch.lines.len());
        let mut n_bad = 0u64;
        let mut first_bad = None;
        for (i, line) in batch.lines.iter().enumerate() {
            let line_no = batch.first_line + i as u64;
            match parse_line(
                format,
                line,
                line_no,
                batch.w3c_fields.as_ref().map(|f| f.as_slice()),
                ctx.syslog_year,
            ) {
                Some(record) => records.push(record),
                None => {
                    n_bad += 1;
                    first_bad.get_or_insert(line_no);
                }
            }
        }
        if let Some(line_no) = first_bad {
            ctx.sink.damaged(
                name,
                n_bad,
                format!("line {line_no} is not valid {}", format.name()),
            );
        }
        ctx.sink.records(name, records);
        ctx.sink
            .bytes_read(batch.lines.iter().map(|l| l.len() as u64 + 1).sum());
    });
    if let Some(error) = batches.error.take() {
        ctx.sink.failed(name, error);
    }
}

fn parse_line(
    format: Format,
    line: &str,
    line_no: u64,
    w3c_fields: Option<&[String]>,
    year: i16,
) -> Option<Record> {
    match format {
        Format::JsonLines => super::json::parse_line(line, line_no),
        Format::W3c => super::weblog::parse_w3c(line, w3c_fields?, line_no),
        Format::AccessLog => super::weblog::parse_access_log(line, line_no),
        Format::Syslog => super::syslog::parse(line, line_no, year),
        Format::Evtx | Format::Zip | Format::Json => None,
    }
}

struct Batches<R> {
    reader: R,
    format: Format,
    line_no: u64,
    w3c_fields: Option<Arc<Vec<String>>>,
    error: Option<String>,
    done: bool,
}

impl<R: BufRead> Iterator for Batches<R> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.done {
            return None;
        }
        let mut batch = Batch {
            first_line: 0,
            lines: Vec::with_capacity(BATCH_LINES),
            w3c_fields: None,
        };
        let mut buf = Vec::new();
        while batch.lines.len() < BATCH_LINES {
            buf.clear();
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    self.error = Some(format!("read error after line {}: {e}", self.line_no));
                    self.done = true;
                    break;
                }
            }
            self.line_no += 1;
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.strip_prefix('\u{feff}').unwrap_or(&line);
            if line.trim().is_empty() {
                continue;
            }
            if self.format == Format::W3c && line.starts_with('#') {
                if let Some(fields) = line.strip_prefix("#Fields:") {
                    if !batch.lines.is_empty() {
                        // New fields apply to lines after this one: close the batch.
                        self.w3c_fields = Some(Arc::new(
                            fields.split_whitespace().map(str::to_owned).collect(),
                        ));
                        return Some(batch);
                    }
                    self.w3c_fields = Some(Arc::new(
                        fields.split_whitespace().map(str::to_owned).collect(),
                    ));
                    batch.w3c_fields = self.w3c_fields.clone();
                }
                continue;
            }
            if batch.lines.is_empty() {
                batch.first_line = self.line_no;
                batch.w3c_fields = self.w3c_fields.clone();
            }
            batch.lines.push(line.to_owned());
        }
        (!batch.lines.is_empty()).then_some(batch)
    }
}

/// Every record of a line format in `text`, skipping lines that do not parse.
#[cfg(test)]
pub(crate) fn parse_all(format: Format, text: &str, syslog_year: i16) -> Vec<Record> {
    let batches = Batches {
        reader: text.as_bytes(),
        format,
        line_no: 0,
        w3c_fields: None,
        error: None,
        done: false,
    };
    let mut out = Vec::new();
    for batch in batches {
        for (i, line) in batch.lines.iter().enumerate() {
            let line_no = batch.first_line + i as u64;
            out.extend(parse_line(
                format,
                line,
                line_no,
                batch.w3c_fields.as_ref().map(|f| f.as_slice()),
                syslog_year,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w3c_fields_directive_applies_to_the_lines_after_it() {
        let text = "#Software: IIS\n#Fields: date time c-ip\n2019-09-03 10:00:00 1.1.1.1\n\
                    #Fields: date time cs-method c-ip\n2019-09-03 10:00:01 GET 2.2.2.2\nbroken line\n";
        let records = parse_all(Format::W3c, text, 0);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].fields["c-ip"], "1.1.1.1");
        assert_eq!(records[1].fields["cs-method"], "GET");
        assert_eq!(records[1].position, 5);
    }
}
