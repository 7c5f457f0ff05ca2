//! STIX 2.1: indicators out as a bundle (indicators with patterns, the
//! sources' identities, the TLP 2.0 marking definitions, sightings, and
//! malware and attack-pattern objects with their relationships), and
//! bundles in (indicators whose patterns compare one observable's value).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Indicator, IntelError, Kind, Observable, Problem, Tlp};

/// Our namespace for STIX ids: the same CRRT object always gets the same
/// STIX id, so exports can be re-imported and compared.
const NAMESPACE: Uuid = Uuid::from_u128(0x6a0f_3a1e_5b7c_4c1d_9e2f_8a3b_4c5d_6e7f);

pub fn stix_id(kind: &str, name: &str) -> String {
    // Ids that already are version-4 UUIDs (32 hex digits) are used as
    // they are, so a STIX id leads back to its object without a search.
    if let Some(uuid) = v4_uuid(name) {
        return format!("{kind}--{uuid}");
    }
    format!(
        "{kind}--{}",
        Uuid::new_v5(&NAMESPACE, format!("{kind}:{name}").as_bytes())
    )
}

/// `name` as a hyphenated UUID, when it is a version-4 UUID in 32 hex digits.
fn v4_uuid(name: &str) -> Option<String> {
    let b = name.as_bytes();
    (b.len() == 32
        && b.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        && b[12] == b'4'
        && matches!(b[16], b'8' | b'9' | b'a' | b'b'))
    .then(|| {
        format!(
            "{}-{}-{}-{}-{}",
            &name[0..8],
            &name[8..12],
            &name[12..16],
            &name[16..20],
            &name[20..32]
        )
    })
}

/// The platform id a STIX id was made from, when it was made from a
/// version-4 id (see [`stix_id`]).
pub fn platform_id(stix_id: &str) -> Option<String> {
    let (_, uuid) = stix_id.split_once("--")?;
    let id: String = uuid.chars().filter(|c| *c != '-').collect();
    v4_uuid(&id).map(|_| id)
}

/// STIX timestamps: RFC 3339 UTC with milliseconds.
fn stix_time(at: &str) -> String {
    at.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|_| at.to_owned())
}

fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The STIX pattern matching an observable.
pub fn pattern(o: &Observable) -> String {
    let v = quote(&o.value);
    match o.kind {
        Kind::Ipv4 => format!("[ipv4-addr:value = '{v}']"),
        Kind::Ipv6 => format!("[ipv6-addr:value = '{v}']"),
        Kind::Cidr if o.value.contains(':') => format!("[ipv6-addr:value ISSUBSET '{v}']"),
        Kind::Cidr => format!("[ipv4-addr:value ISSUBSET '{v}']"),
        Kind::Domain => format!("[domain-name:value = '{v}']"),
        Kind::Url => format!("[url:value = '{v}']"),
        Kind::Email => format!("[email-addr:value = '{v}']"),
        Kind::Md5 => format!("[file:hashes.MD5 = '{v}']"),
        Kind::Sha1 => format!("[file:hashes.'SHA-1' = '{v}']"),
        Kind::Sha256 => format!("[file:hashes.'SHA-256' = '{v}']"),
        Kind::FileName => format!("[file:name = '{v}']"),
        Kind::RegistryKey => format!("[windows-registry-key:key = '{v}']"),
        Kind::Account => format!("[user-account:account_login = '{v}']"),
        Kind::Mutex => format!("[mutex:name = '{v}']"),
        Kind::Ja3 => format!("[x-crrt-ja3:value = '{v}']"),
    }
}

/// A bundle of indicators for one reader. `where_sighted` names the
/// identity sightings are attributed to (the platform's operator).
pub fn export_bundle(indicators: &[Indicator], producer: &str, now: &str) -> Value {
    let now = stix_time(now);
    let mut objects: BTreeMap<String, Value> = BTreeMap::new();
    let producer_id = stix_id("identity", producer);
    objects.insert(
        producer_id.clone(),
        json!({
            "type": "identity", "spec_version": "2.1", "id": producer_id,
            "created": "2022-02-24T00:00:00.000Z", "modified": "2022-02-24T00:00:00.000Z",
            "name": producer, "identity_class": "organization",
        }),
    );
    for ind in indicators {
        objects
            .entry(ind.tlp.marking_id().to_owned())
            .or_insert_with(|| ind.tlp.marking_object());
        let source_id = stix_id("identity", &ind.source);
        objects.entry(source_id.clone()).or_insert_with(|| {
            json!({
                "type": "identity", "spec_version": "2.1", "id": source_id,
                "created": "2022-02-24T00:00:00.000Z", "modified": "2022-02-24T00:00:00.000Z",
                "name": ind.source, "identity_class": "organization",
            })
        });
        let id = stix_id("indicator", &ind.id);
        let created = stix_time(&ind.created_at);
        let valid_from = stix_time(ind.first_seen.as_deref().unwrap_or(&ind.created_at));
        let mut indicator = json!({
            "type": "indicator", "spec_version": "2.1", "id": id,
            "created": created, "modified": stix_time(&ind.modified_at),
            "created_by_ref": source_id,
            "name": format!("{}: {}", ind.observable.kind, ind.observable.value),
            "indicator_types": ["malicious-activity"],
            "pattern": pattern(&ind.observable), "pattern_type": "stix", "pattern_version": "2.1",
            "valid_from": valid_from,
            "object_marking_refs": [ind.tlp.marking_id()],
        });
        if let Some(c) = ind.confidence {
            indicator["confidence"] = json!(c);
        }
        if let Some(d) = &ind.description {
            indicator["description"] = json!(d);
        }
        if let Some(until) = &ind.expires_at {
            let until = stix_time(until);
            // valid_until must lie after valid_from.
            if until > valid_from {
                indicator["valid_until"] = json!(until);
            }
        }
        let techniques: Vec<&String> = ind.tags.iter().filter(|t| is_technique(t)).collect();
        let labels: Vec<&String> = ind.tags.iter().filter(|t| !is_technique(t)).collect();
        if !labels.is_empty() {
            indicator["labels"] = json!(labels);
        }
        for technique in techniques {
            let pattern_id = stix_id("attack-pattern", technique);
            objects.entry(pattern_id.clone()).or_insert_with(|| {
                json!({
                    "type": "attack-pattern", "spec_version": "2.1", "id": pattern_id,
                    "created": "2022-02-24T00:00:00.000Z", "modified": "2022-02-24T00:00:00.000Z",
                    "name": technique,
                    "external_references": [{
                        "source_name": "mitre-attack", "external_id": technique,
                        "url": format!("https://attack.mitre.org/techniques/{}/", technique.replace('.', "/")),
                    }],
                    "object_marking_refs": [Tlp::Clear.marking_id()],
                })
            });
            relate(
                &mut objects,
                &id,
                "indicates",
                &pattern_id,
                &created,
                ind.tlp,
            );
        }
        for malware in ind.tags.iter().filter_map(|t| t.strip_prefix("malware:")) {
            let malware_id = stix_id("malware", malware);
            objects.entry(malware_id.clone()).or_insert_with(|| {
                json!({
                    "type": "malware", "spec_version": "2.1", "id": malware_id,
                    "created": "2022-02-24T00:00:00.000Z", "modified": "2022-02-24T00:00:00.000Z",
                    "name": malware, "is_family": true,
                    "object_marking_refs": [Tlp::Clear.marking_id()],
                })
            });
            relate(
                &mut objects,
                &id,
                "indicates",
                &malware_id,
                &created,
                ind.tlp,
            );
        }
        if ind.sightings > 0 {
            let sighting_id = stix_id("sighting", &ind.id);
            let mut sighting = json!({
                "type": "sighting", "spec_version": "2.1", "id": sighting_id,
                "created": created, "modified": now,
                "sighting_of_ref": id, "count": ind.sightings.min(999_999_999),
                "where_sighted_refs": [producer_id],
                "object_marking_refs": [ind.tlp.marking_id()],
            });
            if let Some(first) = &ind.first_seen {
                sighting["first_seen"] = json!(stix_time(first));
            }
            if let Some(last) = &ind.last_seen {
                sighting["last_seen"] = json!(stix_time(last));
            }
            objects.insert(sighting_id, sighting);
        }
        objects.insert(id, indicator);
    }
    json!({
        "type": "bundle",
        "id": format!("bundle--{}", Uuid::new_v5(&NAMESPACE, format!("{now}:{}", objects.len()).as_bytes())),
        "objects": objects.into_values().collect::<Vec<_>>(),
    })
}

fn relate(
    objects: &mut BTreeMap<String, Value>,
    from: &str,
    kind: &str,
    to: &str,
    created: &str,
    tlp: Tlp,
) {
    let id = stix_id("relationship", &format!("{from}:{kind}:{to}"));
    objects.insert(
        id.clone(),
        json!({
            "type": "relationship", "spec_version": "2.1", "id": id,
            "created": created, "modified": created,
            "relationship_type": kind, "source_ref": from, "target_ref": to,
            "object_marking_refs": [tlp.marking_id()],
        }),
    );
}

/// ATT&CK technique ids: `T1059`, `T1059.001`.
pub fn is_technique(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = rest.split_once('.').unwrap_or((rest, "000"));
    main.len() == 4
        && sub.len() == 3
        && main.bytes().all(|b| b.is_ascii_digit())
        && sub.bytes().all(|b| b.is_ascii_digit())
}

/// An indicator read from a bundle, before the platform stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub observable: Observable,
    /// `None` when the object carries no TLP marking.
    pub tlp: Option<Tlp>,
    pub confidence: Option<u8>,
    pub first_seen: Option<String>,
    pub expires_at: Option<String>,
    pub tags: Vec<String>,
    pub description: Option<String>,
    /// The name of the identity that created it, when the bundle has it.
    pub source: Option<String>,
}

/// Reads the indicators of a bundle. A bundle that is not JSON or not a
/// bundle is refused whole; objects that cannot be used are reported with
/// their position (`objects[7]`) and the rest is read.
pub fn import_bundle(bytes: &[u8]) -> Result<(Vec<Incoming>, Vec<Problem>), IntelError> {
    let bundle: Value = serde_json::from_slice(bytes).map_err(|e| {
        IntelError::Invalid(format!(
            "not a STIX bundle: JSON error at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    if bundle.get("type").and_then(Value::as_str) != Some("bundle") {
        return Err(IntelError::Invalid(
            "not a STIX bundle: the top-level object's type is not \"bundle\"".into(),
        ));
    }
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| IntelError::Invalid("the bundle has no \"objects\" list".into()))?;
    let identities: BTreeMap<&str, &str> = objects
        .iter()
        .filter(|o| o.get("type").and_then(Value::as_str) == Some("identity"))
        .filter_map(|o| Some((o.get("id")?.as_str()?, o.get("name")?.as_str()?)))
        .collect();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (n, object) in objects.iter().enumerate() {
        if object.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        let position = format!("objects[{n}]");
        match read_indicator(object, &identities) {
            Ok(found) => out.extend(found),
            Err(message) => problems.push(Problem { position, message }),
        }
    }
    Ok((out, problems))
}

/// The indicators one STIX indicator object carries (an OR-list of
/// values gives several), or why it carries none CRRT can keep.
pub fn indicator_object(object: &Value) -> Result<Vec<Incoming>, String> {
    read_indicator(object, &BTreeMap::new())
}

fn read_indicator(
    object: &Value,
    identities: &BTreeMap<&str, &str>,
) -> Result<Vec<Incoming>, String> {
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    let pattern_type = text("pattern_type").unwrap_or("stix");
    if pattern_type != "stix" {
        return Err(format!(
            "pattern type {pattern_type:?} is not read (only \"stix\")"
        ));
    }
    let pattern = text("pattern").ok_or("the indicator has no pattern")?;
    let observables = parse_pattern(pattern)?;
    let tlp = object
        .get("object_marking_refs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(Tlp::from_marking)
        .max();
    let mut tags: Vec<String> = object
        .get("labels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    tags.extend(
        object
            .get("external_references")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("source_name").and_then(Value::as_str) == Some("mitre-attack"))
            .filter_map(|r| r.get("external_id")?.as_str())
            .map(str::to_owned),
    );
    let confidence = object
        .get("confidence")
        .and_then(Value::as_u64)
        .map(|c| c.min(100) as u8);
    let source = text("created_by_ref")
        .and_then(|r| identities.get(r))
        .map(|s| (*s).to_owned());
    Ok(observables
        .into_iter()
        .map(|observable| Incoming {
            observable,
            tlp,
            confidence,
            first_seen: text("valid_from").map(str::to_owned),
            expires_at: text("valid_until").map(str::to_owned),
            tags: tags.clone(),
            description: text("description").map(str::to_owned),
            source: source.clone(),
        })
        .collect())
}

/// The observables of a pattern made of equality comparisons joined by
/// `OR` (one or several observation expressions). Anything else (`AND`,
/// `MATCHES`, qualifiers) cannot be kept as a plain value and is refused.
pub fn parse_pattern(pattern: &str) -> Result<Vec<Observable>, String> {
    let mut out = Vec::new();
    let mut rest = pattern.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '[' || c == '(');
        if rest.is_empty() {
            break;
        }
        let (path, after) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("cannot read the pattern {pattern:?}"))?;
        let after = after.trim_start();
        let (operator, after) = after
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("cannot read the pattern {pattern:?}"))?;
        if !matches!(operator, "=" | "ISSUBSET") {
            return Err(format!(
                "the comparison {operator:?} in {pattern:?} is not a plain value"
            ));
        }
        let after = after.trim_start();
        let body = after
            .strip_prefix('\'')
            .ok_or_else(|| format!("expected a quoted value in {pattern:?}"))?;
        let (value, consumed) =
            unquote(body).ok_or_else(|| format!("unterminated string in {pattern:?}"))?;
        let kind = kind_of_path(path).ok_or_else(|| {
            format!("the object path {path:?} is not an indicator type CRRT keeps")
        })?;
        let kind = if operator == "ISSUBSET" {
            Kind::Cidr
        } else {
            kind
        };
        let kind = if matches!(kind, Kind::Ipv4 | Kind::Ipv6) && value.contains('/') {
            Kind::Cidr
        } else {
            kind
        };
        out.push(Observable::parse(Some(kind), &value).map_err(|e| e.to_string())?);
        rest = body[consumed..]
            .trim_start_matches(|c: char| c.is_whitespace() || c == ']' || c == ')');
        if rest.is_empty() {
            break;
        }
        rest = rest
            .strip_prefix("OR")
            .ok_or_else(|| {
                format!(
                    "{pattern:?} combines comparisons with something other than OR; only OR lists are read"
                )
            })?
            .trim_start();
    }
    if out.is_empty() {
        return Err(format!("no comparison in the pattern {pattern:?}"));
    }
    Ok(out)
}

/// The value of a quoted string (after its opening quote) and how many
/// bytes it took, closing quote included.
fn unquote(body: &str) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '\'' => return Some((value, i + 1)),
            c => value.push(c),
        }
    }
    None
}

fn kind_of_path(path: &str) -> Option<Kind> {
    Some(match path {
        "ipv4-addr:value" => Kind::Ipv4,
        "ipv6-addr:value" => Kind::Ipv6,
        "domain-name:value" => Kind::Domain,
        "url:value" => Kind::Url,
        "email-addr:value" | "email-message:from_ref.value" | "email-message:sender_ref.value" => {
            Kind::Email
        }
        "file:hashes.MD5" | "file:hashes.'MD5'" => Kind::Md5,
        "file:hashes.'SHA-1'" | "file:hashes.SHA1" | "file:hashes.'SHA1'" => Kind::Sha1,
        "file:hashes.'SHA-256'" | "file:hashes.SHA256" | "file:hashes.'SHA256'" => Kind::Sha256,
        "file:name" => Kind::FileName,
        "windows-registry-key:key" => Kind::RegistryKey,
        "user-account:account_login" | "user-account:user_id" => Kind::Account,
        "mutex:name" => Kind::Mutex,
        "x-crrt-ja3:value" => Kind::Ja3,
        "network-traffic:dst_ref.value" | "network-traffic:src_ref.value" => Kind::Ipv4,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_round_trip() {
        for line in [
            "1.2.3.4",
            "10.0.0.0/8",
            "2001:db8::/32",
            "evil.com",
            "http://evil.com/a'b\\c",
            "a@evil.com",
            "d41d8cd98f00b204e9800998ecf8427e",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92",
            "stage1.exe",
            r"HKLM\Software\Run",
            r"account:MFA\o'brien",
            r"mutex:Global\x",
            "ja3:e7d705a3286e19ea42f587b344ee6865",
        ] {
            let o = Observable::parse_line(line).expect("valid");
            assert_eq!(parse_pattern(&pattern(&o)), Ok(vec![o.clone()]), "{line}");
        }
    }

    #[test]
    fn or_lists_are_read_and_other_operators_refused() {
        let both = parse_pattern(
            "[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '203.0.113.0/24'] OR [domain-name:value = 'x.example']",
        )
        .expect("read");
        assert_eq!(both.len(), 3);
        assert_eq!(both[1].kind, Kind::Cidr);
        for bad in [
            "[file:name = 'a' AND file:size = 3]",
            "[url:value MATCHES '^http']",
            "[x-unknown:thing = 'a']",
            "[file:name = 'unterminated]",
        ] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn v4_ids_lead_back_to_their_object() {
        let id = "6f7e4a1b2c3d4e5f8a9b0c1d2e3f4a5b";
        let stix = stix_id("indicator", id);
        assert_eq!(stix, "indicator--6f7e4a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(platform_id(&stix).as_deref(), Some(id));
        // Other ids get a UUIDv5 and no way back.
        let other = stix_id("indicator", "not-a-uuid");
        assert!(other.starts_with("indicator--") && platform_id(&other).is_none());
    }

    #[test]
    fn technique_ids() {
        assert!(is_technique("T1059"));
        assert!(is_technique("T1059.001"));
        assert!(!is_technique("T105"));
        assert!(!is_technique("malware:WhisperGate"));
    }
}
