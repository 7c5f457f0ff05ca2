//! Web server access logs, with the field names of Sigma's `webserver`
//! category: `c-ip`, `cs-method`, `cs-uri-stem`, `cs-uri-query`,
//! `sc-status`, `cs-user-agent`, `cs-referer`, ...

use jiff::fmt::strtime;
use serde_json::{Map, Value};

use crate::record::{Fields, Record, RecordKind};

pub(crate) fn looks_like_access_log(line: &str) -> bool {
    parse_access_log(line, 0).is_some()
}

/// Apache/nginx common or combined format:
/// `host ident user [time] "request" status bytes ["referer" "agent"]`.
pub(crate) fn parse_access_log(line: &str, line_no: u64) -> Option<Record> {
    let mut rest = line;
    let client = next_token(&mut rest)?;
    let _ident = next_token(&mut rest)?;
    let user = next_token(&mut rest)?;
    let time_text = rest.trim_start().strip_prefix('[')?;
    let close = time_text.find(']')?;
    let timestamp = strtime::parse("%d/%b/%Y:%H:%M:%S %z", &time_text[..close])
        .ok()?
        .to_timestamp()
        .ok()?;
    rest = time_text[close + 1..].trim_start();
    let request = quoted(&mut rest)?;
    let status: u16 = next_token(&mut rest)?.parse().ok()?;
    let bytes = next_token(&mut rest);
    let referer = quoted(&mut rest);
    let agent = quoted(&mut rest);

    let mut fields = Map::new();
    put(&mut fields, "c-ip", client);
    put(&mut fields, "cs-username", user);
    split_request(&request, &mut fields);
    fields.insert("sc-status".to_owned(), Value::from(status));
    if let Some(bytes) = bytes.and_then(|b| b.parse::<u64>().ok()) {
        fields.insert("sc-bytes".to_owned(), Value::from(bytes));
    }
    if let Some(referer) = referer {
        put(&mut fields, "cs-referer", &referer);
    }
    if let Some(agent) = agent {
        put(&mut fields, "cs-user-agent", &agent);
    }
    fields.insert("date".to_owned(), Value::String(timestamp.to_string()));
    Some(Record {
        kind: RecordKind::WebAccess,
        fields: Fields::Json(Value::Object(fields)),
        timestamp: Some(timestamp),
        position: line_no,
    })
}

/// A W3C extended log line (IIS) under the `#Fields:` directive in force.
pub(crate) fn parse_w3c(line: &str, names: &[String], line_no: u64) -> Option<Record> {
    let values: Vec<&str> = line.split_whitespace().collect();
    if values.len() != names.len() {
        return None;
    }
    let mut fields = Map::new();
    let (mut date, mut time) = (None, None);
    for (name, value) in names.iter().zip(values) {
        match name.as_str() {
            "date" => date = Some(value),
            "time" => time = Some(value),
            _ => {}
        }
        let name = match name.as_str() {
            "cs(User-Agent)" => "cs-user-agent".to_owned(),
            "cs(Referer)" => "cs-referer".to_owned(),
            "cs(Cookie)" => "cs-cookie".to_owned(),
            "cs(Host)" => "cs-host".to_owned(),
            other => other.to_ascii_lowercase(),
        };
        if value == "-" {
            continue;
        }
        let value = match name.as_str() {
            "sc-status" | "sc-substatus" | "sc-win32-status" | "s-port" | "sc-bytes"
            | "cs-bytes" | "time-taken" => value
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(value.to_owned())),
            _ => Value::String(value.to_owned()),
        };
        fields.insert(name, value);
    }
    // W3C times are UTC.
    let timestamp = match (date, time) {
        (Some(d), Some(t)) => crate::time::parse_timestamp(&format!("{d}T{t}Z")),
        _ => None,
    };
    Some(Record {
        kind: RecordKind::WebAccess,
        fields: Fields::Json(Value::Object(fields)),
        timestamp,
        position: line_no,
    })
}

fn split_request(request: &str, fields: &mut Map<String, Value>) {
    let mut parts = request.splitn(3, ' ');
    let method = parts.next().unwrap_or_default();
    let Some(target) = parts.next() else {
        // Not a well-formed request line (scanners send those): keep it whole.
        put(fields, "cs-uri", request);
        return;
    };
    put(fields, "cs-method", method);
    put(fields, "cs-uri", target);
    match target.split_once('?') {
        Some((stem, query)) => {
            put(fields, "cs-uri-stem", stem);
            put(fields, "cs-uri-query", query);
        }
        None => put(fields, "cs-uri-stem", target),
    }
    if let Some(version) = parts.next() {
        put(fields, "cs-version", version);
    }
}

fn put(fields: &mut Map<String, Value>, name: &str, value: &str) {
    if !value.is_empty() && value != "-" {
        fields.insert(name.to_owned(), Value::String(value.to_owned()));
    }
}

fn next_token<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let text = rest.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(' ').unwrap_or(text.len());
    *rest = &text[end..];
    Some(&text[..end])
}

/// A double-quoted field; `\"` inside it is an escaped quote.
fn quoted(rest: &mut &str) -> Option<String> {
    let text = rest.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    if next != '"' && next != '\\' {
                        out.push('\\');
                    }
                    out.push(next);
                }
            }
            '"' => {
                *rest = &text[i + 1..];
                return Some(out);
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn combined_format() {
        let record = parse_access_log(
            r#"10.1.1.1 - admin [11/Jul/2018:08:41:29 +0300] "GET /shell.jsp?cmd=whoami HTTP/1.1" 200 12 "http://x/" "Mozilla \"5\"""#,
            4,
        )
        .expect("parses");
        assert_eq!(record.fields["c-ip"], json!("10.1.1.1"));
        assert_eq!(record.fields["cs-username"], json!("admin"));
        assert_eq!(record.fields["cs-method"], json!("GET"));
        assert_eq!(record.fields["cs-uri-stem"], json!("/shell.jsp"));
        assert_eq!(record.fields["cs-uri-query"], json!("cmd=whoami"));
        assert_eq!(record.fields["sc-status"], json!(200));
        assert_eq!(record.fields["cs-user-agent"], json!("Mozilla \"5\""));
        assert_eq!(
            record.timestamp.map(|t| t.to_string()).as_deref(),
            Some("2018-07-11T05:41:29Z")
        );
        assert_eq!(record.position, 4);
    }

    #[test]
    fn common_format_and_garbage() {
        let record = parse_access_log(
            r#"1.2.3.4 - - [11/Jul/2018:08:41:28 +0300] "GET / HTTP/1.1" 302 -"#,
            1,
        );
        assert!(record.expect("parses").fields.get("sc-bytes").is_none());
        assert!(parse_access_log("1.2.3.4 - - [bad time] \"GET /\" 200 1", 1).is_none());
        assert!(parse_access_log("hello world", 1).is_none());
    }

    #[test]
    fn w3c_line() {
        let names: Vec<String> =
            "date time c-ip cs-method cs-uri-stem cs-uri-query sc-status cs(User-Agent)"
                .split(' ')
                .map(str::to_owned)
                .collect();
        let record = parse_w3c(
            "2019-09-03 10:13:36 10.0.2.17 GET /erp/conn.aspx proxy&port=3389 200 -",
            &names,
            9,
        )
        .expect("parses");
        assert_eq!(record.fields["cs-uri-query"], json!("proxy&port=3389"));
        assert_eq!(record.fields["sc-status"], json!(200));
        assert!(record.fields.get("cs-user-agent").is_none());
        assert_eq!(
            record.timestamp.map(|t| t.to_string()).as_deref(),
            Some("2019-09-03T10:13:36Z")
        );
        assert!(parse_w3c("too few", &names, 1).is_none());
    }
}
