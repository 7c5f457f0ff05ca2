//! Routing an event to the rule buckets of its log sources. Built once per
//! rule set; on the hot path it is a hash lookup or two and no allocation.

use std::collections::HashMap;

use crate::logsource::{LogSourceMap, SourceKey};
use crate::record::{Record, RecordKind};
use crate::rules::Buckets;

pub(crate) type Renames = [(Box<str>, Box<str>)];

#[derive(Default)]
pub(crate) struct Router {
    /// Buckets every Windows event goes to (`product: windows` or no log source).
    windows_generic: Vec<usize>,
    /// Keyed by the channel as the mapping spells it, and lower-cased.
    channels: HashMap<Box<str>, ChannelRoute>,
    web: Vec<usize>,
    syslog_generic: Vec<usize>,
    syslog_services: HashMap<String, Vec<usize>>,
    /// Other JSON carries no log source, so every bucket sees it.
    all: Vec<usize>,
    renames: Vec<Box<Renames>>,
}

#[derive(Default, Clone)]
struct ChannelRoute {
    services: Vec<usize>,
    /// Category buckets by event id, each with its renames (an index into `renames`).
    by_event_id: HashMap<u32, Vec<(usize, usize)>>,
}

const WINDOWS: [Option<&str>; 2] = [Some("windows"), None];
const LINUX: [Option<&str>; 2] = [Some("linux"), None];

impl Router {
    pub(crate) fn build(buckets: &Buckets, mapping: &LogSourceMap) -> Router {
        let find = |p: Option<&str>, c: Option<&str>, s: Option<&str>| {
            buckets.index.get(&SourceKey::new(p, c, s)).copied()
        };
        let mut router = Router {
            renames: vec![Box::new([])],
            ..Router::default()
        };
        router.windows_generic = WINDOWS
            .iter()
            .filter_map(|p| find(*p, None, None))
            .collect();

        for (channel, event_ids) in mapping.channels() {
            let services = mapping.windows_sources(&channel, None).services;
            let mut route = ChannelRoute {
                services: WINDOWS
                    .iter()
                    .flat_map(|p| services.iter().filter_map(move |s| find(*p, None, Some(s))))
                    .collect(),
                by_event_id: HashMap::new(),
            };
            for event_id in event_ids {
                let sources = mapping.windows_sources(&channel, Some(event_id));
                let mut targets = Vec::new();
                for (category, renames) in sources.categories {
                    let renames_index = if renames.is_empty() {
                        0
                    } else {
                        router.renames.push(renames.into_boxed_slice());
                        router.renames.len() - 1
                    };
                    for product in WINDOWS {
                        let with_service = services.iter().map(|s| Some(s.as_str()));
                        for service in std::iter::once(None).chain(with_service) {
                            if let Some(bucket) = find(product, Some(&category), service) {
                                targets.push((bucket, renames_index));
                            }
                        }
                    }
                }
                if !targets.is_empty() {
                    route.by_event_id.insert(event_id, targets);
                }
            }
            router
                .channels
                .insert(channel.to_lowercase().into(), route.clone());
            router.channels.insert(channel.into(), route);
        }

        for (key, &bucket) in &buckets.index {
            let no_source =
                key.product.is_none() && key.category.is_none() && key.service.is_none();
            if key.category.as_deref() == Some("webserver") || no_source {
                router.web.push(bucket);
            }
            if LINUX.contains(&key.product.as_deref()) && key.category.is_none() {
                match &key.service {
                    None => router.syslog_generic.push(bucket),
                    Some(service) => router
                        .syslog_services
                        .entry(service.clone())
                        .or_default()
                        .push(bucket),
                }
            }
            router.all.push(bucket);
        }
        for list in [&mut router.web, &mut router.syslog_generic, &mut router.all] {
            list.sort_unstable();
        }
        router
    }

    /// Calls `f` with each bucket the record belongs to and the field
    /// renames that bucket's rules need.
    pub(crate) fn for_each_target(&self, record: &Record, mut f: impl FnMut(usize, &Renames)) {
        let none = &*self.renames[0];
        match record.kind {
            RecordKind::Windows => {
                for &bucket in &self.windows_generic {
                    f(bucket, none);
                }
                let Some(Some(channel)) = record.field("Channel").map(|c| c.as_str()) else {
                    return;
                };
                let route = self
                    .channels
                    .get(channel)
                    .or_else(|| self.channels.get(channel.to_lowercase().as_str()));
                let Some(route) = route else {
                    return;
                };
                for &bucket in &route.services {
                    f(bucket, none);
                }
                if let Some(targets) = record.event_id().and_then(|id| route.by_event_id.get(&id)) {
                    for &(bucket, renames) in targets {
                        f(bucket, &self.renames[renames]);
                    }
                }
            }
            RecordKind::WebAccess => self.web.iter().for_each(|&b| f(b, none)),
            RecordKind::Syslog => {
                for &bucket in &self.syslog_generic {
                    f(bucket, none);
                }
                let mut services: Vec<String> = vec!["syslog".to_owned()];
                if let Some(app) = record.field("app_name").and_then(|v| v.as_str()) {
                    services.push(app.to_lowercase());
                }
                if matches!(
                    record.field("facility").and_then(|v| v.as_str()),
                    Some("auth" | "authpriv")
                ) {
                    services.push("auth".to_owned());
                }
                services.sort();
                services.dedup();
                for service in services {
                    for &bucket in self.syslog_services.get(&service).into_iter().flatten() {
                        f(bucket, none);
                    }
                }
            }
            RecordKind::Json => self.all.iter().for_each(|&b| f(b, none)),
        }
    }
}
