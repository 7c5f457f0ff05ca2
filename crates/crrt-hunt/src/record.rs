//! The normalised event every reader produces and every matcher consumes.

use std::borrow::Cow;

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
/// `fields` is always a JSON object. For Windows events it is flat (the
/// `System` values plus the `EventData`/`UserData` values, under the names
/// Sigma rules use: `EventID`, `Channel`, `Computer`, `Provider_Name`, ...).
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: RecordKind,
    pub fields: Value,
    pub timestamp: Option<Timestamp>,
    /// The EVTX record id, or the 1-based line number for line formats.
    pub position: u64,
}

impl Record {
    /// A top-level field. Flat records are searched in order: serde_json's
    /// map hashes every lookup with SipHash, and routing asks each record
    /// for its channel and event id.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match &self.fields {
            Value::Object(map) if map.len() <= SCAN_FIELDS => map
                .iter()
                .find(|(key, _)| key.len() == name.len() && *key == name)
                .map(|(_, value)| value),
            fields => fields.get(name),
        }
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
                    JsonEvent::borrow(&self.fields)
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
    inner: JsonEvent<'a>,
    /// The record's top-level fields, when it has few enough of them to
    /// be searched in order.
    flat: Option<&'a Map<String, Value>>,
    renames: &'a [(Box<str>, Box<str>)],
}

/// Fields up to which a lookup compares names in order rather than
/// hashing: serde_json's map hashes with SipHash (~190 instructions a
/// lookup, 3% of a hunt); a Windows event has 15 to 30 fields.
const SCAN_FIELDS: usize = 48;

impl<'a> EventView<'a> {
    pub(crate) fn new(record: &'a Record, renames: &'a [(Box<str>, Box<str>)]) -> Self {
        EventView {
            inner: JsonEvent::borrow(&record.fields),
            flat: record.fields.as_object().filter(|m| m.len() <= SCAN_FIELDS),
            renames,
        }
    }

    fn lookup(&self, path: &str) -> Option<EventValue<'_>> {
        let Some(map) = self.flat else {
            return self.inner.get_field(path);
        };
        let found = map
            .iter()
            .find(|(name, _)| name.len() == path.len() && *name == path);
        match found {
            Some((_, value)) => Some(EventValue::from(value)),
            // What `JsonEvent` would go on to try: a path into nested
            // values.
            None if path.contains(['.', '[', '\\']) => self.inner.get_field(path),
            None => None,
        }
    }
}

impl Event for EventView<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        // A handful of renames at most, so a linear scan beats hashing.
        for (sigma_name, native_name) in self.renames {
            if **sigma_name == *path {
                return self.lookup(native_name);
            }
        }
        self.lookup(path)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.inner.any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.inner.all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.inner.visit_string_values(visit)
    }

    fn to_json(&self) -> Value {
        self.inner.to_json()
    }

    fn field_keys(&self) -> Vec<Cow<'_, str>> {
        self.inner.field_keys()
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        if self.renames.is_empty() {
            self.inner.top_level_keys()
        } else {
            // Renamed fields are reachable under names the object does not
            // have, so the candidate index must not restrict its probes.
            None
        }
    }
}
