//! Which events a Sigma rule's `logsource` covers.
//!
//! Rules are not rewritten with `Channel`/`EventID` conditions (that made
//! every category rule pay for the check on every event). Instead each rule
//! goes into one bucket keyed by its log source, and each event is routed to
//! the few buckets whose log source it belongs to. The Windows part of the
//! routing is data: `data/windows-logsources.yml`, extensible by users.

use std::collections::HashMap;

use serde::Deserialize;

use crate::error::HuntError;

const DEFAULT_WINDOWS_MAPPING: &str = include_str!("data/windows-logsources.yml");

/// The channels and event ids behind Sigma's Windows services and categories.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceMap {
    #[serde(default)]
    services: HashMap<String, Vec<String>>,
    #[serde(default)]
    categories: HashMap<String, Vec<CategorySource>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategorySource {
    channel: String,
    event_ids: Vec<u32>,
    #[serde(default)]
    fields: indexmap_like::OrderedMap,
}

impl LogSourceMap {
    /// The bundled mapping for Windows event logs.
    pub fn windows_default() -> Self {
        // The bundled file is part of the binary; a unit test parses it.
        Self::from_yaml(DEFAULT_WINDOWS_MAPPING).unwrap_or_default()
    }

    pub fn from_yaml(text: &str) -> Result<Self, HuntError> {
        yaml_serde::from_str(text).map_err(|e| HuntError::Mapping(e.to_string()))
    }

    /// Adds `other`'s services and categories; a category `other` names
    /// replaces this one's.
    pub fn extend(&mut self, other: LogSourceMap) {
        for (service, channels) in other.services {
            self.services
                .entry(service.to_lowercase())
                .or_default()
                .extend(channels);
        }
        for (category, sources) in other.categories {
            self.categories.insert(category.to_lowercase(), sources);
        }
    }

    /// The Windows log sources of an event from `channel` with `event_id`:
    /// the services and categories it belongs to, each category with the
    /// field renames its rules need.
    pub(crate) fn windows_sources(&self, channel: &str, event_id: Option<u32>) -> WindowsSources {
        let mut sources = WindowsSources::default();
        for (service, channels) in &self.services {
            if channels.iter().any(|c| c.eq_ignore_ascii_case(channel)) {
                sources.services.push(service.to_lowercase());
            }
        }
        if let Some(event_id) = event_id {
            for (category, category_sources) in &self.categories {
                for source in category_sources {
                    if source.channel.eq_ignore_ascii_case(channel)
                        && source.event_ids.contains(&event_id)
                    {
                        let renames = source
                            .fields
                            .0
                            .iter()
                            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                            .collect();
                        sources.categories.push((category.to_lowercase(), renames));
                    }
                }
            }
        }
        sources.services.sort();
        sources.categories.sort();
        sources
    }
}

impl LogSourceMap {
    /// Every channel the mapping names, with the event ids its categories use.
    pub(crate) fn channels(&self) -> Vec<(String, Vec<u32>)> {
        let mut out: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
        for channels in self.services.values() {
            for channel in channels {
                out.entry(channel.clone()).or_default();
            }
        }
        for sources in self.categories.values() {
            for source in sources {
                out.entry(source.channel.clone())
                    .or_default()
                    .extend(&source.event_ids);
            }
        }
        out.into_iter()
            .map(|(channel, mut ids)| {
                ids.sort_unstable();
                ids.dedup();
                (channel, ids)
            })
            .collect()
    }
}

/// A Sigma field name and the name the event uses for it.
pub(crate) type Rename = (Box<str>, Box<str>);

#[derive(Debug, Default)]
pub(crate) struct WindowsSources {
    pub services: Vec<String>,
    pub categories: Vec<(String, Vec<Rename>)>,
}

/// A rule's log source, lower-cased; the key of its bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SourceKey {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

impl SourceKey {
    pub(crate) fn of(logsource: &rsigma_parser::LogSource) -> Self {
        let norm = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_lowercase());
        SourceKey {
            product: norm(&logsource.product),
            category: norm(&logsource.category),
            service: norm(&logsource.service),
        }
    }

    pub(crate) fn new(
        product: Option<&str>,
        category: Option<&str>,
        service: Option<&str>,
    ) -> Self {
        SourceKey {
            product: product.map(str::to_owned),
            category: category.map(str::to_owned),
            service: service.map(str::to_owned),
        }
    }
}

/// Field renames keep their file order, so the YAML reads like the table it is.
mod indexmap_like {
    use serde::{Deserialize, Deserializer, de::MapAccess, de::Visitor};
    use std::fmt;

    #[derive(Debug, Clone, Default)]
    pub struct OrderedMap(pub Vec<(String, String)>);

    impl<'de> Deserialize<'de> for OrderedMap {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = OrderedMap;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a map of Sigma field names to event field names")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = map.next_entry::<String, String>()? {
                        out.push((k, v));
                    }
                    Ok(OrderedMap(out))
                }
            }
            deserializer.deserialize_map(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_mapping_parses() {
        let map = LogSourceMap::from_yaml(DEFAULT_WINDOWS_MAPPING).expect("bundled mapping");
        assert!(map.services.contains_key("security"));
        assert!(map.categories.contains_key("process_creation"));
    }

    #[test]
    fn security_4688_is_process_creation_with_renames() {
        let map = LogSourceMap::windows_default();
        let sources = map.windows_sources("security", Some(4688));
        assert_eq!(sources.services, vec!["security"]);
        let (category, renames) = &sources.categories[0];
        assert_eq!(category, "process_creation");
        assert!(
            renames
                .iter()
                .any(|(s, n)| &**s == "Image" && &**n == "NewProcessName")
        );
    }

    #[test]
    fn sysmon_13_is_registry_set_and_registry_event() {
        let map = LogSourceMap::windows_default();
        let sources = map.windows_sources("Microsoft-Windows-Sysmon/Operational", Some(13));
        let names: Vec<_> = sources.categories.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, vec!["registry_event", "registry_set"]);
        assert_eq!(sources.services, vec!["sysmon"]);
    }

    #[test]
    fn user_mapping_extends_services() {
        let mut map = LogSourceMap::windows_default();
        map.extend(
            LogSourceMap::from_yaml("services:\n  mysvc: [My/Operational]\n").expect("yaml"),
        );
        assert_eq!(
            map.windows_sources("my/operational", None).services,
            vec!["mysvc"]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(LogSourceMap::from_yaml("servics: {}\n").is_err());
    }
}
