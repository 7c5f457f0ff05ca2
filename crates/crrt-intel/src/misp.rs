//! MISP event JSON: attributes (also inside objects) in, with the event's
//! and each attribute's `tlp:` tags or, failing those, its distribution;
//! indicators out as an event `pymisp` loads.

use serde_json::{Value, json};

use crate::stix::{Incoming, is_technique};
use crate::{Indicator, IntelError, Kind, Observable, Problem, Tlp};

/// The MISP attribute type of each kind, and its category.
fn attribute_type(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Ipv4 | Kind::Ipv6 | Kind::Cidr => ("ip-dst", "Network activity"),
        Kind::Domain => ("domain", "Network activity"),
        Kind::Url => ("url", "Network activity"),
        Kind::Email => ("email-src", "Payload delivery"),
        Kind::Md5 => ("md5", "Payload delivery"),
        Kind::Sha1 => ("sha1", "Payload delivery"),
        Kind::Sha256 => ("sha256", "Payload delivery"),
        Kind::FileName => ("filename", "Payload delivery"),
        Kind::RegistryKey => ("regkey", "Persistence mechanism"),
        Kind::Account => ("target-user", "Targeting data"),
        Kind::Mutex => ("mutex", "Artifacts dropped"),
        Kind::Ja3 => ("ja3-fingerprint-md5", "Network activity"),
    }
}

/// The kinds a MISP attribute type carries (composite types carry two).
fn kinds_of(misp_type: &str) -> Option<&'static [Option<Kind>]> {
    Some(match misp_type {
        "ip-src" | "ip-dst" => &[None],
        "domain" | "hostname" => &[Some(Kind::Domain)],
        "url" | "uri" | "link" => &[Some(Kind::Url)],
        "email" | "email-src" | "email-dst" => &[Some(Kind::Email)],
        "md5" => &[Some(Kind::Md5)],
        "sha1" => &[Some(Kind::Sha1)],
        "sha256" => &[Some(Kind::Sha256)],
        "filename" => &[Some(Kind::FileName)],
        "filename|md5" => &[Some(Kind::FileName), Some(Kind::Md5)],
        "filename|sha1" => &[Some(Kind::FileName), Some(Kind::Sha1)],
        "filename|sha256" => &[Some(Kind::FileName), Some(Kind::Sha256)],
        // The port is not an indicator: only the address is kept.
        "ip-dst|port" | "ip-src|port" => &[None],
        "domain|ip" => &[Some(Kind::Domain), None],
        "regkey" => &[Some(Kind::RegistryKey)],
        "mutex" => &[Some(Kind::Mutex)],
        "target-user" | "github-username" => &[Some(Kind::Account)],
        "ja3-fingerprint-md5" => &[Some(Kind::Ja3)],
        _ => return None,
    })
}

fn tlp_of_tags(tags: Option<&Value>) -> Option<Tlp> {
    tags.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name")?.as_str())
        .filter(|name| name.to_ascii_lowercase().starts_with("tlp:"))
        .filter_map(|name| name.parse().ok())
        .max()
}

fn other_tags(tags: Option<&Value>) -> Vec<String> {
    tags.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name")?.as_str())
        .filter(|name| !name.to_ascii_lowercase().starts_with("tlp:"))
        .map(|name| {
            // ATT&CK galaxy tags end in "- T1059"; keep the technique id.
            name.rsplit_once("- ")
                .map(|(_, id)| id.trim_end_matches('"'))
                .filter(|id| is_technique(id))
                .map_or_else(|| name.to_owned(), str::to_owned)
        })
        .collect()
}

/// MISP distribution levels, when no `tlp:` tag says more.
fn tlp_of_distribution(distribution: Option<&Value>) -> Option<Tlp> {
    let level = match distribution? {
        Value::String(s) => s.parse::<u8>().ok()?,
        Value::Number(n) => n.as_u64()? as u8,
        _ => return None,
    };
    Some(match level {
        0 => Tlp::AmberStrict,
        1 | 2 => Tlp::Green,
        3 => Tlp::Clear,
        _ => Tlp::Amber,
    })
}

/// Reads an event (`{"Event": {...}}` or the event itself). Attributes
/// whose type CRRT does not keep (free text, links to reports) are skipped
/// silently; attributes of a kept type whose value is invalid are reported
/// by position (`Attribute[3]`, `Object[1].Attribute[0]`).
pub fn import_event(bytes: &[u8]) -> Result<(Vec<Incoming>, Vec<Problem>), IntelError> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| {
        IntelError::Invalid(format!(
            "not a MISP event: JSON error at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let event = root.get("Event").unwrap_or(&root);
    if !event.is_object() || (event.get("Attribute").is_none() && event.get("Object").is_none()) {
        return Err(IntelError::Invalid(
            "not a MISP event: no \"Attribute\" or \"Object\" list".into(),
        ));
    }
    let event_tlp =
        tlp_of_tags(event.get("Tag")).or_else(|| tlp_of_distribution(event.get("distribution")));
    let event_tags = other_tags(event.get("Tag"));
    let source = event
        .get("Orgc")
        .and_then(|o| o.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut read = |position: String, attribute: &Value| {
        let misp_type = attribute.get("type").and_then(Value::as_str).unwrap_or("");
        let Some(kinds) = kinds_of(misp_type) else {
            return;
        };
        let Some(value) = attribute.get("value").and_then(Value::as_str) else {
            problems.push(Problem {
                position,
                message: "the attribute has no value".into(),
            });
            return;
        };
        let parts: Vec<&str> = if misp_type.contains('|') {
            value.splitn(2, '|').collect()
        } else {
            vec![value]
        };
        let tlp = tlp_of_tags(attribute.get("Tag")).or(event_tlp);
        let mut tags = event_tags.clone();
        tags.extend(other_tags(attribute.get("Tag")));
        for (kind, part) in kinds.iter().zip(parts) {
            match Observable::parse(*kind, part) {
                Ok(observable) => out.push(Incoming {
                    observable,
                    tlp,
                    confidence: None,
                    first_seen: attribute
                        .get("first_seen")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    expires_at: None,
                    tags: tags.clone(),
                    description: attribute
                        .get("comment")
                        .and_then(Value::as_str)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned),
                    source: source.clone(),
                }),
                Err(e) => problems.push(Problem {
                    position: position.clone(),
                    message: e.to_string(),
                }),
            }
        }
    };
    for (n, attribute) in list(event, "Attribute").iter().enumerate() {
        read(format!("Attribute[{n}]"), attribute);
    }
    for (i, object) in list(event, "Object").iter().enumerate() {
        for (n, attribute) in list(object, "Attribute").iter().enumerate() {
            read(format!("Object[{i}].Attribute[{n}]"), attribute);
        }
    }
    Ok((out, problems))
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// One MISP event holding the indicators, tagged with the strictest TLP
/// among them (each attribute also carries its own).
pub fn export_event(indicators: &[Indicator], info: &str, date: &str, uuid: &str) -> Value {
    let strictest = indicators.iter().map(|i| i.tlp).max().unwrap_or(Tlp::Clear);
    let attributes: Vec<Value> = indicators
        .iter()
        .map(|ind| {
            let (misp_type, category) = attribute_type(ind.observable.kind);
            let mut tags = vec![json!({"name": format!("tlp:{}", ind.tlp.as_str())})];
            tags.extend(ind.tags.iter().map(|t| json!({"name": t})));
            let mut attribute = json!({
                "uuid": crate::stix::stix_id("x", &ind.id).trim_start_matches("x--"),
                "type": misp_type,
                "category": category,
                "value": ind.observable.value,
                "to_ids": true,
                "distribution": "5",
                "comment": ind.description.clone().unwrap_or_default(),
                "Tag": tags,
            });
            if let Some(first) = &ind.first_seen {
                attribute["first_seen"] = json!(first);
            }
            if let Some(last) = &ind.last_seen {
                attribute["last_seen"] = json!(last);
            }
            attribute
        })
        .collect();
    json!({
        "Event": {
            "uuid": uuid,
            "info": info,
            "date": date.get(..10).unwrap_or(date),
            "threat_level_id": "2",
            "analysis": "1",
            "distribution": "0",
            "published": false,
            "Tag": [{"name": format!("tlp:{}", strictest.as_str())}],
            "Attribute": attributes,
        }
    })
}
