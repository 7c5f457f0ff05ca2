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

use crate::record::{Fields, Record, RecordKind};

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
        fields: Fields::Json(Value::Object(flat)),
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
        fields: Fields::Json(Value::Object(flat)),
        timestamp,
        position,
    })
}

fn flatten_system(system: &Map<String, Value>, flat: &mut Map<String, Value>) {
    for (key, value) in system {
        system_entry(key.clone(), value.clone(), flat);
    }
}

/// How a child of `System` that carries attributes is flattened (in the
/// JSON way and in records read from templates alike).
#[derive(Clone, Copy)]
pub(crate) enum Attrs {
    /// Every attribute, its name after this prefix.
    Prefixed(&'static str),
    /// `SystemTime` alone, as `TimeCreated`.
    Time,
}

impl Attrs {
    pub(crate) fn of(key: &str) -> Option<Attrs> {
        Some(match key {
            "Provider" | "Provider_attributes" => Attrs::Prefixed("Provider_"),
            "TimeCreated" | "TimeCreated_attributes" => Attrs::Time,
            "Execution" | "Execution_attributes" => Attrs::Prefixed("Execution"),
            "Security" | "Security_attributes" | "Correlation" | "Correlation_attributes" => {
                Attrs::Prefixed("")
            }
            _ => return None,
        })
    }

    /// The flat record's name for attribute `attr`, if it keeps it.
    pub(crate) fn key(self, attr: &str) -> Option<String> {
        match self {
            Attrs::Prefixed(prefix) => Some(format!("{prefix}{attr}")),
            Attrs::Time if attr == "SystemTime" => Some("TimeCreated".to_owned()),
            Attrs::Time => None,
        }
    }

    /// Puts one attribute into the flat record.
    fn put(self, attr: String, value: Value, flat: &mut Map<String, Value>) {
        if let Some(name) = self.key(&attr) {
            flat.insert(name, value);
        }
    }
}

/// One child of `System`, moved into the flat record.
fn system_entry(key: String, value: Value, flat: &mut Map<String, Value>) {
    if let Some(how) = Attrs::of(&key) {
        for (attr, v) in into_attributes(value) {
            how.put(attr, v, flat);
        }
        return;
    }
    match key.as_str() {
        k if k.ends_with("_attributes") => {}
        "EventID" => {
            if let Some(id) = into_text(value).as_ref().and_then(number_or_numeric_string) {
                flat.insert(key, Value::from(id));
            }
        }
        _ => {
            if let Some(v) = into_text(value) {
                flat.insert(key, v);
            }
        }
    }
}

/// `EventData` holds named values; classic events hold an unnamed `Data`
/// list, kept as `Data` so keyword rules still see every string.
fn flatten_data(data: &Value, flat: &mut Map<String, Value>) {
    if let Value::Object(map) = data {
        for (key, value) in map {
            data_entry(key.clone(), value.clone(), flat);
        }
    }
}

/// One child of `EventData` or `UserData`, moved into the flat record.
fn data_entry(key: String, value: Value, flat: &mut Map<String, Value>) {
    if key == "#attributes" || key.ends_with("_attributes") {
        return;
    }
    match value {
        // `UserData` wraps its values in one element named after the event
        // (e.g. `LogFileCleared`); lift that element's children.
        Value::Object(inner) if !inner.contains_key("#text") && !inner.contains_key("Value") => {
            for (k, v) in inner {
                data_entry(k, v, flat);
            }
        }
        other => {
            if let Some(v) = into_text(other) {
                flat.insert(key, v);
            }
        }
    }
}

/// The attributes of an element, owned: `{"#attributes": {..}}` or the
/// `X_attributes` object itself.
fn into_attributes(value: Value) -> impl Iterator<Item = (String, Value)> {
    let map = match value {
        Value::Object(mut m) => match m.remove("#attributes") {
            Some(Value::Object(attrs)) => Some(attrs),
            Some(other) => {
                m.insert("#attributes".to_owned(), other);
                Some(m)
            }
            None => Some(m),
        },
        _ => None,
    };
    map.into_iter().flatten()
}

/// The value of an element that may carry attributes (`{"#text": v}`) or be
/// Velociraptor's `{"Value": v}`, owned.
fn into_text(value: Value) -> Option<Value> {
    match value {
        Value::Object(mut m) => m.remove("#text").or_else(|| m.remove("Value")),
        other => Some(other),
    }
}

/// The `evtx` crate's JSON rendering of one record, flattened while it is
/// parsed: the `Event` and `System` levels are never built as maps and no
/// value is copied. Same result as [`from_event_json`] on the same text
/// (a test holds them equal on the corpus).
pub(crate) fn from_evtx_json(bytes: &[u8], position_hint: u64) -> Option<Record> {
    use serde::de::DeserializeSeed;
    let mut flat = Map::with_capacity(32);
    // One UTF-8 check of the whole record: parsing bytes checks each
    // string on its own (800,000 calls on the corpus, 4% of a hunt).
    let text = std::str::from_utf8(bytes).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let has_system = stream::Root { flat: &mut flat }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    if !has_system {
        return None;
    }
    Some(flat_record(
        Fields::Json(Value::Object(flat)),
        position_hint,
    ))
}

/// A flattened Windows event as a record: its time is its `TimeCreated`,
/// its position its `EventRecordID` (else `position_hint`).
pub(crate) fn flat_record(flat: Fields, position_hint: u64) -> Record {
    let timestamp = match flat.get("TimeCreated") {
        Some(Value::String(s)) => crate::time::parse_timestamp(s),
        Some(Value::Number(n)) => n.as_f64().and_then(crate::time::from_epoch_seconds),
        _ => None,
    };
    let position = flat
        .get("EventRecordID")
        .and_then(Value::as_u64)
        .unwrap_or(position_hint);
    Record {
        kind: RecordKind::Windows,
        fields: flat,
        timestamp,
        position,
    }
}

mod stream {
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::{Map, Value};

    /// The visit methods of a visitor of any value that reads objects
    /// only: everything else is consumed and skipped.
    macro_rules! skip_all_but_objects {
        () => {
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(())
            }
            fn visit_bool<E>(self, _: bool) -> Result<(), E> {
                Ok(())
            }
            fn visit_i64<E>(self, _: i64) -> Result<(), E> {
                Ok(())
            }
            fn visit_u64<E>(self, _: u64) -> Result<(), E> {
                Ok(())
            }
            fn visit_f64<E>(self, _: f64) -> Result<(), E> {
                Ok(())
            }
            fn visit_str<E>(self, _: &str) -> Result<(), E> {
                Ok(())
            }
            fn visit_unit<E>(self) -> Result<(), E> {
                Ok(())
            }
            fn visit_none<E>(self) -> Result<(), E> {
                Ok(())
            }
        };
    }

    /// `{"Event": {...}}`; yields whether a `System` section was seen.
    pub(super) struct Root<'a> {
        pub flat: &'a mut Map<String, Value>,
    }

    impl<'de> DeserializeSeed<'de> for Root<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Root<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object with an Event")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut has_system = false;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "Event" {
                    has_system |= map.next_value_seed(Event {
                        flat: &mut *self.flat,
                    })?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(has_system)
        }
    }

    struct Event<'a> {
        flat: &'a mut Map<String, Value>,
    }

    /// A section's children, each handed to `entry` as it is parsed: the
    /// section itself is never built as a map. Fails unless it is an
    /// object (a `System` that is not one makes the record unreadable, as
    /// when it was parsed whole).
    struct Section<'a> {
        flat: &'a mut Map<String, Value>,
        entry: fn(String, Value, &mut Map<String, Value>),
        /// Whether children with attributes are flattened as they are
        /// parsed (`System`'s).
        attributes: bool,
    }

    impl<'de> DeserializeSeed<'de> for Section<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Section<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                match super::Attrs::of(&key).filter(|_| self.attributes) {
                    Some(how) => map.next_value_seed(Element {
                        key,
                        how,
                        flat: &mut *self.flat,
                    })?,
                    None => {
                        let value = map.next_value::<Value>()?;
                        (self.entry)(key, value, self.flat);
                    }
                }
            }
            Ok(())
        }
    }

    /// A child of `System` with attributes. Its usual shape,
    /// `{"#attributes": {..}}` first, is flattened without building either
    /// object; any other is built and handed to `system_entry`.
    struct Element<'a> {
        key: String,
        how: super::Attrs,
        flat: &'a mut Map<String, Value>,
    }

    impl<'de> DeserializeSeed<'de> for Element<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Element<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let Some(first) = map.next_key::<String>()? else {
                return Ok(());
            };
            let mut whole = Map::new();
            if first == "#attributes" {
                let seed = Attributes {
                    how: self.how,
                    flat: &mut *self.flat,
                };
                match map.next_value_seed(seed)? {
                    // Other children do not count once attributes did.
                    None => {
                        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        return Ok(());
                    }
                    Some(value) => whole.insert(first, value),
                };
            } else {
                whole.insert(first, map.next_value::<Value>()?);
            }
            while let Some((k, v)) = map.next_entry::<String, Value>()? {
                whole.insert(k, v);
            }
            super::system_entry(self.key, Value::Object(whole), self.flat);
            Ok(())
        }
        skip_all_but_objects!();
    }

    /// The value of `#attributes`: an object is flattened as it is parsed
    /// (`None`); anything else is returned as it is.
    struct Attributes<'a> {
        how: super::Attrs,
        flat: &'a mut Map<String, Value>,
    }

    impl<'de> DeserializeSeed<'de> for Attributes<'_> {
        type Value = Option<Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Attributes<'_> {
        type Value = Option<Value>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
            while let Some((attr, value)) = map.next_entry::<String, Value>()? {
                self.how.put(attr, value, self.flat);
            }
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Option<Value>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<Value>()? {
                items.push(item);
            }
            Ok(Some(Value::Array(items)))
        }
        fn visit_bool<E>(self, v: bool) -> Result<Option<Value>, E> {
            Ok(Some(Value::Bool(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Option<Value>, E> {
            Ok(Some(Value::from(v)))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Option<Value>, E> {
            Ok(Some(Value::from(v)))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Option<Value>, E> {
            Ok(Some(Value::from(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Option<Value>, E> {
            Ok(Some(Value::String(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Option<Value>, E> {
            Ok(Some(Value::String(v)))
        }
        fn visit_unit<E>(self) -> Result<Option<Value>, E> {
            Ok(Some(Value::Null))
        }
        fn visit_none<E>(self) -> Result<Option<Value>, E> {
            Ok(Some(Value::Null))
        }
    }

    /// A section that is skipped unless it is an object (`EventData` can
    /// be null or text).
    struct Optional<'a>(Section<'a>);

    impl<'de> DeserializeSeed<'de> for Optional<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Optional<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
            self.0.visit_map(map)
        }
        skip_all_but_objects!();
    }

    impl<'de> DeserializeSeed<'de> for Event<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Event<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an Event object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut has_system = false;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match &*key {
                    "System" => {
                        map.next_value_seed(Section {
                            flat: &mut *self.flat,
                            entry: super::system_entry,
                            attributes: true,
                        })?;
                        has_system = true;
                    }
                    "EventData" | "UserData" => {
                        map.next_value_seed(Optional(Section {
                            flat: &mut *self.flat,
                            entry: super::data_entry,
                            attributes: false,
                        }))?;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(has_system)
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
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn check(input: Value, expected: Value) {
        let record = from_event_json(input, 0).expect("a Windows event");
        assert_eq!(record.fields, Fields::Json(expected));
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

    /// Shapes the corpus does not hold, parsed both ways.
    #[test]
    fn streaming_and_tree_flattening_agree_on_odd_shapes() {
        let system = json!({"EventID": 1102, "EventRecordID": 9, "Channel": "Security"});
        for data in [
            json!(null),
            json!("text"),
            json!(["a", {"b": 1}]),
            json!(7),
            json!({"LogFileCleared": {"SubjectUserName": "admin", "#attributes": {"x": 1}}}),
            json!({"Data": ["one", "two"], "Binary": "00FF"}),
        ] {
            for section in ["EventData", "UserData"] {
                let event = json!({"Event": {"System": system, section: data}});
                let text = serde_json::to_vec(&event).expect("json");
                let streamed = from_evtx_json(&text, 0).expect("streamed");
                let tree = from_event_json(event, 0).expect("tree");
                assert_eq!(streamed.fields, tree.fields, "{section}: {data}");
            }
        }
        // Children of System with attributes: the usual `#attributes`
        // object first is flattened as it streams, every other shape is
        // built and flattened as before.
        for element in [
            json!({"Provider": {"Name": "P", "Guid": "{g}"}}),
            json!({"Provider": {"#attributes": {"Name": "P"}, "#text": "x"}}),
            json!({"Provider": {"#text": "x", "#attributes": {"Name": "P"}}}),
            json!({"Provider": {}}),
            json!({"Execution": {"#attributes": 5, "ProcessID": 4, "ThreadID": 8}}),
            json!({"Execution": {"#attributes": [1, {"a": 2}], "ThreadID": 8}}),
            json!({"Security": null, "Correlation": [1, 2]}),
            json!({"Security": "S-1-5-18", "Correlation": {"#attributes": {"ActivityID": "{a}"}}}),
            json!({"TimeCreated": {"#attributes": {"Other": 1, "SystemTime": "2019-01-01T00:00:00Z"}}}),
            json!({"TimeCreated": {"SystemTime": 1546300800.5}}),
            json!({"TimeCreated_attributes": {"SystemTime": "2019-01-01T00:00:00Z"}}),
        ] {
            let mut system = json!({"EventID": 4624, "Channel": "Security"});
            for (k, v) in element.as_object().expect("object") {
                system[k] = v.clone();
            }
            let event = json!({"Event": {"System": system, "EventData": {"a": 1}}});
            let text = serde_json::to_vec(&event).expect("json");
            let streamed = from_evtx_json(&text, 0).expect("streamed");
            let tree = from_event_json(event, 0).expect("tree");
            // In the same order too (maps compare regardless of it).
            assert_eq!(streamed.fields.to_string(), tree.fields.to_string());
            assert_eq!(streamed.timestamp, tree.timestamp, "{element}");
        }
        for system in [json!("not an object"), json!(null), json!([1])] {
            let event = json!({"Event": {"System": system, "EventData": {"a": 1}}});
            let text = serde_json::to_vec(&event).expect("json");
            assert!(from_evtx_json(&text, 0).is_none(), "{system}");
            assert!(from_event_json(event, 0).is_none(), "{system}");
        }
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

    /// The streaming flattener gives exactly what parsing then flattening
    /// gives, on every record of the shared corpus, and evtx's two
    /// renderings (attributes inline, which hunts read, and as separate
    /// `X_attributes` keys, as some exports carry) flatten alike.
    #[test]
    fn streaming_and_tree_flattening_agree_on_the_corpus() {
        let Some(files) = corpus_evtx_files() else {
            return;
        };
        let inline = flatten_corpus(&files, false);
        assert!(inline.len() > 8000, "{} records compared", inline.len());
        assert!(
            inline == flatten_corpus(&files, true),
            "the two renderings flatten differently"
        );
    }

    /// The shared corpus's EVTX files in name order; `None` (with a note)
    /// in a clone without `../shared`, a failure when `CI=true`.
    pub(crate) fn corpus_evtx_files() -> Option<Vec<std::path::PathBuf>> {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/evtx-attack-samples");
        if std::fs::metadata(&dir).is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but no corpus"
            );
            eprintln!("skipped: no corpus at {}", dir.display());
            return None;
        }
        let mut files = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("dir").flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "evtx") {
                    files.push(p);
                }
            }
        }
        files.sort();
        Some(files)
    }

    /// Every record of `files` flattened (fields, time, position), checking
    /// the streaming flattener against the tree one on the way.
    fn flatten_corpus(files: &[std::path::PathBuf], separate: bool) -> Vec<String> {
        use std::sync::Arc;
        let mut out = Vec::new();
        for file in files {
            let settings = evtx::ParserSettings::new().separate_json_attributes(separate);
            let shared = Arc::new(settings.clone());
            let Ok(parser) = evtx::EvtxParser::from_path(file) else {
                continue;
            };
            let mut parser = parser.with_configuration(settings);
            for chunk in parser.chunks().flatten() {
                let mut chunk = chunk;
                let Ok(mut parsed) = chunk.parse(Arc::clone(&shared)) else {
                    continue;
                };
                for record in parsed.iter().flatten() {
                    let Ok(bytes) = record.into_json_bytes() else {
                        continue;
                    };
                    let tree: Value = serde_json::from_slice(&bytes.data).expect("valid JSON");
                    let a = from_evtx_json(&bytes.data, 0);
                    let b = from_event_json(tree, 0);
                    assert_eq!(
                        a.as_ref().map(|r| (&r.fields, r.timestamp, r.position)),
                        b.as_ref().map(|r| (&r.fields, r.timestamp, r.position)),
                        "{}",
                        file.display()
                    );
                    // Same keys in the same order, so output is byte-identical.
                    if let (Some(a), Some(b)) = (&a, &b) {
                        assert_eq!(a.fields.to_string(), b.fields.to_string());
                    }
                    out.push(a.map_or_else(
                        || "not an event".to_owned(),
                        |r| format!("{} {:?} {}", r.fields, r.timestamp, r.position),
                    ));
                }
            }
        }
        out
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
