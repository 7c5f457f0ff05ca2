//! JSON events: Windows exports become Windows records (so they are hunted
//! exactly like EVTX); any other object is kept as it is, addressed by
//! dotted field names.

use std::io::BufRead;

use rayon::prelude::*;
use serde_json::Value;

use super::ReadContext;
use crate::record::{Fields, Record, RecordKind};

const BATCH: usize = 2048;

pub(crate) fn parse_line(line: &str, line_no: u64) -> Option<Record> {
    let value: Value = serde_json::from_str(line).ok()?;
    record_from_value(value, line_no)
}

/// A JSON array of events, or objects spread over several lines.
pub(crate) fn read_document<R: BufRead>(mut reader: R, name: &str, ctx: &ReadContext<'_>) {
    let mut text = Vec::new();
    if let Err(e) = reader.read_to_end(&mut text) {
        return ctx.sink.failed(name, e.to_string());
    }
    ctx.sink.bytes_read(text.len() as u64);
    let body = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
    let mut values = Vec::new();
    let mut error = None;
    for (i, item) in serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .enumerate()
    {
        match item {
            Ok(Value::Array(items)) => values.extend(items),
            Ok(value) => values.push(value),
            Err(e) => {
                // The stream cannot resynchronise after a syntax error.
                error = Some(format!(
                    "invalid JSON in document {} at line {}, column {}: {e}",
                    i + 1,
                    e.line(),
                    e.column()
                ));
                break;
            }
        }
    }
    let n_values = values.len();
    values
        .into_par_iter()
        .enumerate()
        .chunks(BATCH)
        .for_each(|chunk| {
            if ctx.sink.cancelled() {
                return;
            }
            let mut n_bad = 0;
            let records: Vec<Record> = chunk
                .into_iter()
                .filter_map(|(i, v)| {
                    let record = record_from_value(v, i as u64 + 1);
                    n_bad += u64::from(record.is_none());
                    record
                })
                .collect();
            if n_bad > 0 {
                ctx.sink.damaged(
                    name,
                    n_bad,
                    "array items that are not JSON objects".to_owned(),
                );
            }
            ctx.sink.records(name, records);
        });
    if let Some(error) = error {
        if n_values == 0 {
            ctx.sink.failed(name, error);
        } else {
            ctx.sink.damaged(
                name,
                1,
                format!("{error}; the {n_values} events before it were read"),
            );
        }
    }
}

fn record_from_value(value: Value, position: u64) -> Option<Record> {
    let Value::Object(map) = &value else {
        return None;
    };
    if map.contains_key("winlog") {
        return crate::windows::from_winlogbeat(map, position);
    }
    let is_rendered_windows = match map.get("Event") {
        Some(Value::Object(event)) => event.contains_key("System"),
        _ => {
            map.contains_key("System")
                && (map.contains_key("EventData") || map.contains_key("UserData"))
        }
    };
    if is_rendered_windows {
        return crate::windows::from_event_json(value, position);
    }
    // Already flat Windows fields (Chainsaw and Hayabusa style exports).
    if map.contains_key("Channel") && map.contains_key("EventID") {
        let timestamp = [
            "TimeCreated",
            "SystemTime",
            "Timestamp",
            "timestamp",
            "@timestamp",
        ]
        .iter()
        .find_map(|k| {
            map.get(*k)
                .and_then(Value::as_str)
                .and_then(crate::time::parse_timestamp)
        });
        let position = map
            .get("EventRecordID")
            .and_then(crate::record::value_as_u32)
            .map_or(position, u64::from);
        return Some(Record {
            kind: RecordKind::Windows,
            fields: Fields::Json(value),
            timestamp,
            position,
        });
    }
    let timestamp = generic_timestamp(map);
    Some(Record {
        kind: RecordKind::Json,
        fields: Fields::Json(value),
        timestamp,
        position,
    })
}

fn generic_timestamp(map: &serde_json::Map<String, Value>) -> Option<jiff::Timestamp> {
    const KEYS: [&str; 9] = [
        "@timestamp",
        "timestamp",
        "time",
        "Timestamp",
        "TimeCreated",
        "EventTime",
        "eventTime",
        "date",
        "ts",
    ];
    KEYS.iter().find_map(|k| match map.get(*k)? {
        Value::String(s) => crate::time::parse_timestamp(s),
        // Epoch seconds, or milliseconds when the number is too large for seconds.
        Value::Number(n) => {
            let n = n.as_f64()?;
            crate::time::from_epoch_seconds(if n > 1e11 { n / 1000.0 } else { n })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evtx_dump_and_flat_exports_are_windows_records() {
        let dump = r##"{"Event":{"System":{"EventID":4688,"Channel":"Security","Computer":"PC","TimeCreated":{"#attributes":{"SystemTime":"2020-01-01T00:00:00Z"}}},"EventData":{"NewProcessName":"a"}}}"##;
        let record = parse_line(dump, 1).expect("record");
        assert_eq!(record.kind, RecordKind::Windows);
        assert_eq!(record.fields["NewProcessName"], json!("a"));
        assert!(record.timestamp.is_some());

        let flat =
            r#"{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Image": "x"}"#;
        assert_eq!(
            parse_line(flat, 1).expect("record").kind,
            RecordKind::Windows
        );
    }

    #[test]
    fn other_objects_stay_nested_with_their_time() {
        let record = parse_line(r#"{"@timestamp": 1700000000, "src": {"ip": "1.2.3.4"}}"#, 3)
            .expect("record");
        assert_eq!(record.kind, RecordKind::Json);
        assert_eq!(record.position, 3);
        assert_eq!(record.timestamp.map(|t| t.as_second()), Some(1_700_000_000));
        assert!(parse_line("[1,2]", 1).is_none());
        assert!(parse_line("{broken", 1).is_none());
    }
}
