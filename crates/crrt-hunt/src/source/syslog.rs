//! Syslog lines: RFC 5424, RFC 3164 (with or without `<PRI>`, as written to
//! `/var/log/*`), and the ISO-timestamp variant rsyslog writes.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use crate::record::{Fields, Record, RecordKind};

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub(crate) fn looks_like_syslog(line: &str) -> bool {
    parse(line, 2000, 0).is_some()
}

/// `year` completes RFC 3164 timestamps, which carry none.
pub(crate) fn parse(line: &str, line_no: u64, year: i16) -> Option<Record> {
    let mut fields = Map::new();
    let mut rest = line;
    if let Some(after) = rest.strip_prefix('<') {
        let close = after.find('>')?;
        let pri: usize = after[..close].parse().ok()?;
        fields.insert(
            "facility".to_owned(),
            Value::from(*FACILITIES.get(pri / 8)?),
        );
        fields.insert("severity".to_owned(), Value::from(SEVERITIES[pri % 8]));
        rest = &after[close + 1..];
        if let Some(after_version) = rest.strip_prefix("1 ") {
            return parse_5424(after_version, fields, line_no);
        }
    }
    let (timestamp, after_time) = parse_3164_time(rest, year).or_else(|| parse_iso_time(rest))?;
    let mut parts = after_time.trim_start().splitn(2, ' ');
    let hostname = parts.next().filter(|h| !h.is_empty())?;
    let body = parts.next().unwrap_or_default();
    fields.insert("hostname".to_owned(), Value::from(hostname));
    // TAG[pid]: message
    let (tag, message) = match body.split_once(": ") {
        Some((tag, message)) if !tag.contains(' ') => (Some(tag), message),
        _ => (None, body),
    };
    if let Some(tag) = tag {
        let (app, pid) = match tag.split_once('[') {
            Some((app, pid)) => (app, pid.strip_suffix(']')),
            None => (tag, None),
        };
        fields.insert("app_name".to_owned(), Value::from(app));
        if let Some(pid) = pid {
            fields.insert("pid".to_owned(), Value::from(pid));
        }
    }
    fields.insert("message".to_owned(), Value::from(message));
    Some(Record {
        kind: RecordKind::Syslog,
        fields: Fields::Json(Value::Object(fields)),
        timestamp: Some(timestamp),
        position: line_no,
    })
}

fn parse_5424(rest: &str, mut fields: Map<String, Value>, line_no: u64) -> Option<Record> {
    let mut parts = rest.splitn(6, ' ');
    let time = parts.next()?;
    let timestamp = if time == "-" {
        None
    } else {
        Some(crate::time::parse_timestamp(time)?)
    };
    for name in ["hostname", "app_name", "pid", "msgid"] {
        let value = parts.next()?;
        if value != "-" {
            fields.insert(name.to_owned(), Value::from(value));
        }
    }
    let tail = parts.next().unwrap_or_default();
    let (structured, message) = split_structured_data(tail);
    if let Some(sd) = structured {
        fields.insert("structured_data".to_owned(), Value::from(sd));
    }
    fields.insert(
        "message".to_owned(),
        Value::from(message.strip_prefix('\u{feff}').unwrap_or(message)),
    );
    Some(Record {
        kind: RecordKind::Syslog,
        fields: Fields::Json(Value::Object(fields)),
        timestamp,
        position: line_no,
    })
}

/// `-` or one or more `[...]` elements (`]` escaped as `\]` inside), then the message.
fn split_structured_data(tail: &str) -> (Option<&str>, &str) {
    if let Some(message) = tail.strip_prefix('-') {
        return (None, message.trim_start());
    }
    let bytes = tail.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] == b'[' {
        while i < bytes.len() && bytes[i] != b']' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        i += 1;
    }
    let end = i.min(tail.len());
    if end == 0 || !tail.is_char_boundary(end) {
        return (None, tail);
    }
    (Some(&tail[..end]), tail[end..].trim_start())
}

/// `Mmm dd hh:mm:ss` (the day space-padded).
fn parse_3164_time(text: &str, year: i16) -> Option<(jiff::Timestamp, &str)> {
    let month = MONTHS.iter().position(|m| text.starts_with(m))? as i8 + 1;
    let rest = text.get(3..)?.trim_start();
    let (day, rest) = rest.split_once(' ')?;
    let day: i8 = day.parse().ok()?;
    let clock = rest.get(..8)?;
    let mut hms = clock.split(':').map(|p| p.parse::<i8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let civil = DateTime::new(year, month, day, h, m, s, 0).ok()?;
    let ts = civil.to_zoned(TimeZone::UTC).ok()?.timestamp();
    Some((ts, &rest[8..]))
}

fn parse_iso_time(text: &str) -> Option<(jiff::Timestamp, &str)> {
    let (first, rest) = text.split_once(' ')?;
    if !first.as_bytes().first()?.is_ascii_digit() || !first.contains('T') {
        return None;
    }
    Some((crate::time::parse_timestamp(first)?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3164_with_and_without_pri() {
        let r = parse(
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick",
            1,
            2003,
        )
        .expect("parses");
        assert_eq!(r.fields["facility"], json!("auth"));
        assert_eq!(r.fields["severity"], json!("crit"));
        assert_eq!(r.fields["hostname"], json!("mymachine"));
        assert_eq!(r.fields["app_name"], json!("su"));
        assert_eq!(r.fields["message"], json!("'su root' failed for lonvick"));
        assert_eq!(
            r.timestamp.map(|t| t.to_string()).as_deref(),
            Some("2003-10-11T22:14:15Z")
        );

        let r = parse(
            "Mar  1 10:00:00 web01 sshd[123]: Accepted password for root",
            2,
            2024,
        )
        .expect("parses");
        assert_eq!(r.fields["app_name"], json!("sshd"));
        assert_eq!(r.fields["pid"], json!("123"));
    }

    #[test]
    fn rfc5424() {
        let r = parse(
            r#"<165>1 2003-10-11T22:14:15.003Z host.example evntslog - ID47 [exampleSDID@32473 iut="3"] An application event"#,
            1,
            0,
        )
        .expect("parses");
        assert_eq!(r.fields["app_name"], json!("evntslog"));
        assert!(r.fields.get("pid").is_none());
        assert_eq!(r.fields["msgid"], json!("ID47"));
        assert_eq!(
            r.fields["structured_data"],
            json!(r#"[exampleSDID@32473 iut="3"]"#)
        );
        assert_eq!(r.fields["message"], json!("An application event"));
    }

    #[test]
    fn rsyslog_iso_and_garbage() {
        let r = parse(
            "2024-01-02T03:04:05.123456+00:00 db1 sudo: bob : TTY=pts/0",
            1,
            0,
        )
        .expect("parses");
        assert_eq!(r.fields["app_name"], json!("sudo"));
        assert!(parse("just some words", 1, 2024).is_none());
        assert!(parse("<999>Oct 11 22:14:15 h a: b", 1, 2024).is_none());
    }
}
