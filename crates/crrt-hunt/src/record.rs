//! The normalised event every reader produces and every matcher consumes.

use std::borrow::Cow;
use std::sync::Arc;

use jiff::Timestamp;
use rsigma_eval::event::{Event, EventValue, JsonEvent};
use serde_json::{Map, Value};

/// Where a record came from, which decides how it is routed to rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A Windows event (EVTX, or its JSON export), with flat Sigma field names.
    Windows,
    /// A web server access log line (combined or W3C), with Sigma `webserver` fields.
    WebAccess,
    /// A syslog line (RFC 3164 or RFC 5424).
    Syslog,
    /// Any other JSON object; fields are addressed by dotted paths.
    Json,
}

/// One event from the evidence.
///
/// For Windows events `fields` is flat (the `System` values plus the
/// `EventData`/`UserData` values, under the names Sigma rules use:
/// `EventID`, `Channel`, `Computer`, `Provider_Name`, ...).
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: RecordKind,
    pub fields: Fields,
    pub timestamp: Option<Timestamp>,
    /// The EVTX record id, or the 1-based line number for line formats.
    pub position: u64,
}

/// A record's fields, in the order the event has them.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    /// A JSON object: JSON evidence, log lines, Windows events read
    /// through evtx's JSON rendering.
    Json(Value),
    /// Names and values, the names shared with the template's plan: an
    /// EVTX record read from its template. No map is built: serde_json's
    /// hashes every key with SipHash and allocates it, ~16% of a 1 GB
    /// hunt. Names are unique.
    Flat(Vec<(Arc<str>, Value)>),
}

static NULL: Value = Value::Null;

impl Fields {
    /// A top-level field. Flat records are searched in order: serde_json's
    /// map hashes every lookup with SipHash, and routing asks each record
    /// for its channel and event id.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            // Length, then first byte, before comparing bytes: most names
            // of a record differ in one of those, and rules ask for
            // many names a record does not have.
            Fields::Flat(list) => list
                .iter()
                .find(|(key, _)| {
                    key.len() == name.len()
                        && key.as_bytes().first() == name.as_bytes().first()
                        && **key == *name
                })
                .map(|(_, value)| value),
            Fields::Json(Value::Object(map)) if map.len() <= SCAN_FIELDS => map
                .iter()
                .find(|(key, _)| key.len() == name.len() && *key == name)
                .map(|(_, value)| value),
            Fields::Json(value) => value.get(name),
        }
    }

    /// The fields as a JSON object (built, for flat ones).
    pub fn to_value(&self) -> Value {
        match self {
            Fields::Json(value) => value.clone(),
            Fields::Flat(list) => Value::Object(
                list.iter()
                    .map(|(key, value)| (key.to_string(), value.clone()))
                    .collect(),
            ),
        }
    }
}

impl std::ops::Index<&str> for Fields {
    type Output = Value;
    fn index(&self, name: &str) -> &Value {
        self.get(name).unwrap_or(&NULL)
    }
}

impl serde::Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Fields::Json(value) => value.serialize(serializer),
            Fields::Flat(list) => {
                serializer.collect_map(list.iter().map(|(key, value)| (&**key, value)))
            }
        }
    }
}

impl std::fmt::Display for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

impl Record {
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    fn field_str(&self, name: &str) -> Option<String> {
        match self.field(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The host the event was recorded on, when the format says.
    pub fn host(&self) -> Option<String> {
        match self.kind {
            RecordKind::Windows => self.field_str("Computer"),
            RecordKind::Syslog => self.field_str("hostname"),
            RecordKind::WebAccess => self
                .field_str("cs-host")
                .or_else(|| self.field_str("s-computername"))
                .or_else(|| self.field_str("s-ip")),
            RecordKind::Json => ["host.name", "hostname", "host", "Computer", "computer_name"]
                .iter()
                .find_map(|k| {
                    EventView::new(self, &[])
                        .get_field(k)
                        .and_then(|v| v.as_str().map(Cow::into_owned))
                }),
        }
    }

    pub fn channel(&self) -> Option<String> {
        match self.kind {
            RecordKind::Windows => self.field_str("Channel"),
            RecordKind::Syslog => self.field_str("app_name"),
            RecordKind::WebAccess => Some("webserver".to_owned()),
            RecordKind::Json => None,
        }
    }

    pub fn event_id(&self) -> Option<u32> {
        match self.kind {
            RecordKind::Windows => self.field("EventID").and_then(value_as_u32),
            _ => None,
        }
    }
}

pub(crate) fn value_as_u32(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A record as the Sigma engine sees it: field names first pass through the
/// log source's renames (for example `Image` → `NewProcessName` when a
/// Security 4688 event is matched against `process_creation` rules).
pub(crate) struct EventView<'a> {
    fields: &'a Fields,
    /// A JSON record's object as rsigma reads it (`null` for a flat one).
    inner: JsonEvent<'a>,
    /// A JSON record's object, when it has few enough fields to be
    /// searched in order.
    flat: Option<&'a Map<String, Value>>,
    renames: &'a [(Box<str>, Box<str>)],
}

/// Fields up to which a lookup compares names in order rather than
/// hashing: serde_json's map hashes with SipHash (~190 instructions a
/// lookup, 3% of a hunt); a Windows event has 15 to 30 fields.
const SCAN_FIELDS: usize = 48;

impl<'a> EventView<'a> {
    pub(crate) fn new(record: &'a Record, renames: &'a [(Box<str>, Box<str>)]) -> Self {
        let flat = match &record.fields {
            Fields::Json(Value::Object(map)) if map.len() <= SCAN_FIELDS => Some(map),
            _ => None,
        };
        let inner = match &record.fields {
            Fields::Json(value) => JsonEvent::borrow(value),
            Fields::Flat(_) => JsonEvent::borrow(&NULL),
        };
        EventView {
            fields: &record.fields,
            inner,
            flat,
            renames,
        }
    }

    /// Calls `visit` with each field of a flat record under every name
    /// [`Event::get_field`] gives it by: its own (unless a rename takes
    /// that name) and each name renamed to it. `false`, and nothing
    /// visited, for a JSON record, whose rules may read nested values by
    /// path.
    pub(crate) fn for_each_named_field(&self, visit: &mut dyn FnMut(&str, EventValue<'_>)) -> bool {
        let Fields::Flat(list) = self.fields else {
            return false;
        };
        for (key, value) in list {
            let key: &str = key;
            if !self.renames.iter().any(|(sigma, _)| **sigma == *key) {
                visit(key, EventValue::from(value));
            }
            for (sigma, native) in self.renames {
                if **native == *key {
                    visit(sigma, EventValue::from(value));
                }
            }
        }
        true
    }

    fn lookup(&self, path: &str) -> Option<EventValue<'_>> {
        let value = match (self.fields, self.flat) {
            (Fields::Flat(_), _) | (_, Some(_)) => self.fields.get(path),
            (Fields::Json(_), None) => return self.inner.get_field(path),
        };
        match (value, self.fields) {
            (Some(value), _) => Some(EventValue::from(value)),
            // What `JsonEvent` would go on to try: a path into nested
            // values (a flat record has none).
            (None, Fields::Json(_)) if path.contains(['.', '[', '\\']) => {
                self.inner.get_field(path)
            }
            (None, _) => None,
        }
    }

    /// The values to search for strings: the object, or each flat value.
    fn values(&self) -> impl Iterator<Item = &'a Value> {
        let (one, list) = match self.fields {
            Fields::Json(value) => (Some(value), None),
            Fields::Flat(list) => (None, Some(list.iter().map(|(_, value)| value))),
        };
        one.into_iter().chain(list.into_iter().flatten())
    }
}

impl Event for EventView<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        // A handful of renames at most, so a linear scan beats hashing.
        for (sigma_name, native_name) in self.renames {
            if sigma_name.len() == path.len() && **sigma_name == *path {
                return self.lookup(native_name);
            }
        }
        self.lookup(path)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.values()
            .any(|value| JsonEvent::borrow(value).any_string_value(pred))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        for value in self.values() {
            match value {
                Value::String(s) => out.push(Cow::Borrowed(s.as_str())),
                Value::Object(_) | Value::Array(_) => JsonEvent::borrow(value)
                    .visit_string_values(&mut |s| out.push(Cow::Owned(s.to_owned()))),
                _ => {}
            }
        }
        out
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        for value in self.values() {
            match value {
                // Most values: no event built for them.
                Value::String(s) => visit(s),
                Value::Object(_) | Value::Array(_) => {
                    JsonEvent::borrow(value).visit_string_values(visit)
                }
                _ => {}
            }
        }
    }

    fn to_json(&self) -> Value {
        self.fields.to_value()
    }

    fn field_keys(&self) -> Vec<Cow<'_, str>> {
        match self.fields {
            Fields::Json(_) => self.inner.field_keys(),
            Fields::Flat(list) => list.iter().map(|(key, _)| Cow::Borrowed(&**key)).collect(),
        }
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        if !self.renames.is_empty() {
            // Renamed fields are reachable under names the object does not
            // have, so the candidate index must not restrict its probes.
            return None;
        }
        match self.fields {
            Fields::Json(_) => self.inner.top_level_keys(),
            Fields::Flat(list) => Some(list.iter().map(|(key, _)| Cow::Borrowed(&**key)).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use rsigma_eval::event::Event;
    use serde_json::{Value, json};

    use super::{EventView, Fields, Record, RecordKind};

    /// Every name a rule reads a flat record's field by is visited, with
    /// the value `get_field` gives, and no other: renamed fields, a field
    /// whose own name a rename takes (shadowed), fields under both names.
    #[test]
    fn fields_are_visited_under_the_names_get_field_knows() {
        let field = |k: &str, v: Value| (Arc::<str>::from(k), v);
        let record = Record {
            kind: RecordKind::Windows,
            fields: Fields::Flat(vec![
                field("NewProcessName", json!("C:\\x\\cmd.exe")),
                field("Image", json!("shadowed")),
                field("CommandLine", json!("cmd /c whoami")),
                field("EventID", json!(4688)),
            ]),
            timestamp: None,
            position: 1,
        };
        let renames: Vec<(Box<str>, Box<str>)> = [
            ("Image", "NewProcessName"),
            ("ProcessName", "NewProcessName"),
            ("ParentImage", "ParentProcessName"),
        ]
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
        let view = EventView::new(&record, &renames);
        let mut visited: BTreeMap<String, Vec<String>> = BTreeMap::new();
        assert!(view.for_each_named_field(&mut |name, value| {
            let text = format!("{value:?}");
            visited.entry(name.to_owned()).or_default().push(text);
        }));
        let names = [
            "NewProcessName",
            "Image",
            "ProcessName",
            "ParentImage",
            "ParentProcessName",
            "CommandLine",
            "EventID",
            "Nothing",
        ];
        for name in names {
            let expected = view.get_field(name).map(|v| vec![format!("{v:?}")]);
            assert_eq!(visited.get(name).cloned(), expected, "{name}");
        }
        assert_eq!(visited.len(), 5, "{visited:?}");
        // A JSON record is left to `get_field` (paths into nested values).
        let json = Record {
            fields: Fields::Json(json!({"Image": "x"})),
            ..record
        };
        assert!(!EventView::new(&json, &renames).for_each_named_field(&mut |_, _| {}));
    }
}
