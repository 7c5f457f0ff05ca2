//! Windows events in their several JSON shapes, flattened to the field names
//! Sigma rules use.
//!
//! Shapes understood: the `evtx` crate's rendering (with or without separate
//! `_attributes` keys, which is also `evtx_dump -o json`), Velociraptor's
//! `{"System": .., "EventData": ..}`, and Winlogbeat's `winlog.*`. All of them
//! end up as the same flat object, so a JSON export is hunted exactly like
//! the EVTX it came from.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::record::{Record, RecordKind};

/// Flattens one rendered event (`{"Event": {...}}` or its inner object).
/// Returns `None` when the value is not a Windows event.
pub(crate) fn from_event_json(value: Value, position_hint: u64) -> Option<Record> {
    let Value::Object(mut root) = value else {
        return None;
    };
    let event = match root.remove("Event") {
        Some(Value::Object(event)) => event,
        Some(other) => {
            root.insert("Event".to_owned(), other);
            root
        }
        None => root,
    };
    let Some(Value::Object(system)) = event.get("System") else {
        return None;
    };
    let mut flat = Map::with_capacity(32);
    flatten_system(system, &mut flat);
    for section in ["EventData", "UserData"] {
        if let Some(data) = event.get(section) {
            flatten_data(data, &mut flat);
        }
    }
    let timestamp = system_time(system);
    let position = flat
        .get("EventRecordID")
        .and_then(Value::as_u64)
        .unwrap_or(position_hint);
    Some(Record {
        kind: RecordKind::Windows,
        fields: Value::Object(flat),
        timestamp,
        position,
    })
}

/// Winlogbeat's shape: `winlog.channel`, `winlog.event_id`, `winlog.event_data`.
pub(crate) fn from_winlogbeat(root: &Map<String, Value>, position_hint: u64) -> Option<Record> {
    let Some(Value::Object(winlog)) = root.get("winlog") else {
        return None;
    };
    let mut flat = Map::with_capacity(32);
    let copies = [
        ("channel", "Channel"),
        ("computer_name", "Computer"),
        ("provider_name", "Provider_Name"),
        ("provider_guid", "Provider_Guid"),
        ("record_id", "EventRecordID"),
        ("task", "Task"),
        ("opcode", "Opcode"),
        ("version", "Version"),
    ];
    for (from, to) in copies {
        if let Some(v) = winlog.get(from) {
            flat.insert(to.to_owned(), v.clone());
        }
    }
    if let Some(id) = winlog.get("event_id").and_then(number_or_numeric_string) {
        flat.insert("EventID".to_owned(), Value::from(id));
    }
    if let Some(pid) = winlog.get("process").and_then(|p| p.get("pid")) {
        flat.insert("ExecutionProcessID".to_owned(), pid.clone());
    }
    if let Some(user) = winlog.get("user").and_then(|u| u.get("identifier")) {
        flat.insert("UserID".to_owned(), user.clone());
    }
    for section in ["event_data", "user_data"] {
        if let Some(data) = winlog.get(section) {
            flatten_data(data, &mut flat);
        }
    }
    if let Some(record_id) = flat.get("EventRecordID").and_then(number_or_numeric_string) {
        flat.insert("EventRecordID".to_owned(), Value::from(record_id));
    }
    let timestamp = root
        .get("@timestamp")
        .and_then(Value::as_str)
        .and_then(crate::time::parse_timestamp);
    if let Some(ts) = timestamp {
        flat.insert("TimeCreated".to_owned(), Value::String(ts.to_string()));
    }
    let position = flat
        .get("EventRecordID")
        .and_then(Value::as_u64)
        .unwrap_or(position_hint);
    Some(Record {
        kind: RecordKind::Windows,
        fields: Value::Object(flat),
        timestamp,
        position,
    })
}

fn flatten_system(system: &Map<String, Value>, flat: &mut Map<String, Value>) {
    for (key, value) in system {
        match key.as_str() {
            "Provider" | "Provider_attributes" => {
                for (attr, v) in attributes(value) {
                    flat.insert(format!("Provider_{attr}"), v.clone());
                }
            }
            "TimeCreated" | "TimeCreated_attributes" => {
                if let Some(t) = attributes(value).find(|(k, _)| *k == "SystemTime") {
                    flat.insert("TimeCreated".to_owned(), t.1.clone());
                }
            }
            "Execution" | "Execution_attributes" => {
                for (attr, v) in attributes(value) {
                    flat.insert(format!("Execution{attr}"), v.clone());
                }
            }
            "Security" | "Security_attributes" => {
                for (attr, v) in attributes(value) {
                    flat.insert(attr.to_owned(), v.clone());
                }
            }
            "Correlation" | "Correlation_attributes" => {
                for (attr, v) in attributes(value) {
                    flat.insert(attr.to_owned(), v.clone());
                }
            }
            k if k.ends_with("_attributes") => {}
            "EventID" => {
                if let Some(id) = text_of(value).and_then(number_or_numeric_string) {
                    flat.insert(key.clone(), Value::from(id));
                }
            }
            _ => {
                if let Some(v) = text_of(value) {
                    flat.insert(key.clone(), v.clone());
                }
            }
        }
    }
}

/// `EventData` holds named values; classic events hold an unnamed `Data`
/// list, kept as `Data` so keyword rules still see every string.
fn flatten_data(data: &Value, flat: &mut Map<String, Value>) {
    let Value::Object(map) = data else {
        return;
    };
    for (key, value) in map {
        if key == "#attributes" || key.ends_with("_attributes") {
            continue;
        }
        match value {
            // `UserData` wraps its values in one element named after the event
            // (e.g. `LogFileCleared`); lift that element's children.
            Value::Object(inner)
                if !inner.contains_key("#text") && !inner.contains_key("Value") =>
            {
                flatten_data(value, flat);
            }
            _ => {
                if let Some(v) = text_of(value) {
                    flat.insert(key.clone(), v.clone());
                }
            }
        }
    }
}

/// The attributes of a System element in either rendering:
/// `{"#attributes": {..}}` or the `X_attributes` object itself.
fn attributes(value: &Value) -> impl Iterator<Item = (&str, &Value)> {
    let map = match value {
        Value::Object(m) => match m.get("#attributes") {
            Some(Value::Object(attrs)) => Some(attrs),
            _ => Some(m),
        },
        _ => None,
    };
    map.into_iter()
        .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
}

/// The value of an element that may carry attributes (`{"#text": v}`) or be
/// Velociraptor's `{"Value": v}`.
fn text_of(value: &Value) -> Option<&Value> {
    match value {
        Value::Object(m) => m.get("#text").or_else(|| m.get("Value")),
        other => Some(other),
    }
}

fn number_or_numeric_string(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn system_time(system: &Map<String, Value>) -> Option<Timestamp> {
    let created = system
        .get("TimeCreated_attributes")
        .or_else(|| system.get("TimeCreated"))?;
    let (_, value) = attributes(created).find(|(k, _)| *k == "SystemTime")?;
    match value {
        Value::String(s) => crate::time::parse_timestamp(s),
        // Velociraptor renders SystemTime as epoch seconds.
        Value::Number(n) => n.as_f64().and_then(crate::time::from_epoch_seconds),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(input: Value, expected: Value) {
        let record = from_event_json(input, 0).expect("a Windows event");
        assert_eq!(record.fields, expected);
    }

    #[test]
    fn evtx_rendering_with_attributes_inline() {
        check(
            json!({"Event": {"#attributes": {"xmlns": "x"}, "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
                "EventID": {"#attributes": {"Qualifiers": 0}, "#text": 4688},
                "TimeCreated": {"#attributes": {"SystemTime": "2019-03-19T23:34:28.460592Z"}},
                "EventRecordID": 7, "Channel": "Security", "Computer": "PC01"},
                "EventData": {"NewProcessName": "C:\\x.exe", "CommandLine": null}}}),
            json!({"Provider_Name": "Microsoft-Windows-Security-Auditing", "EventID": 4688,
                "TimeCreated": "2019-03-19T23:34:28.460592Z", "EventRecordID": 7,
                "Channel": "Security", "Computer": "PC01", "NewProcessName": "C:\\x.exe",
                "CommandLine": null}),
        );
    }

    #[test]
    fn evtx_rendering_with_separate_attributes_and_user_data() {
        check(
            json!({"Event": {"System": {
                "Provider_attributes": {"Name": "Microsoft-Windows-Eventlog"},
                "EventID": 1102, "Channel": "Security", "Computer": "DC"},
                "UserData": {"LogFileCleared": {"SubjectUserName": "bob"}}}}),
            json!({"Provider_Name": "Microsoft-Windows-Eventlog", "EventID": 1102,
                "Channel": "Security", "Computer": "DC", "SubjectUserName": "bob"}),
        );
    }

    #[test]
    fn winlogbeat_shape_matches_evtx_shape() {
        let beat = json!({"@timestamp": "2019-03-19T23:34:28.460Z", "winlog": {
            "channel": "Security", "event_id": "4688", "computer_name": "PC01",
            "provider_name": "Microsoft-Windows-Security-Auditing", "record_id": 7,
            "event_data": {"NewProcessName": "C:\\x.exe"}}});
        let record = from_winlogbeat(beat.as_object().expect("object"), 0).expect("winlogbeat");
        assert_eq!(record.fields["EventID"], json!(4688));
        assert_eq!(record.fields["Channel"], json!("Security"));
        assert_eq!(record.fields["NewProcessName"], json!("C:\\x.exe"));
        assert_eq!(record.position, 7);
        assert!(record.timestamp.is_some());
    }
}
