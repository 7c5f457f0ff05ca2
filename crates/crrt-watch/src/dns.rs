//! DNS answers for a target's host, compared with the first answers seen: a
//! hijacked zone (new A records, new name servers, new MX) is how defacements
//! and phishing of government sites often begin.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Mutex;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;
use serde::{Deserialize, Serialize};

/// The record types watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordKind {
    A,
    Aaaa,
    Ns,
    Mx,
}

impl RecordKind {
    fn record_type(self) -> RecordType {
        match self {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
            RecordKind::Ns => RecordType::NS,
            RecordKind::Mx => RecordType::MX,
        }
    }
}

impl FromStr for RecordKind {
    type Err = String;

    fn from_str(text: &str) -> Result<RecordKind, String> {
        match text.to_ascii_uppercase().as_str() {
            "A" => Ok(RecordKind::A),
            "AAAA" => Ok(RecordKind::Aaaa),
            "NS" => Ok(RecordKind::Ns),
            "MX" => Ok(RecordKind::Mx),
            _ => Err(format!("dns record type {text:?}: watch A, AAAA, NS or MX")),
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            RecordKind::A => "A",
            RecordKind::Aaaa => "AAAA",
            RecordKind::Ns => "NS",
            RecordKind::Mx => "MX",
        })
    }
}

/// Answers per record type, sorted so that two lookups compare equal when the
/// records are the same whatever their order.
pub type Answers = BTreeMap<RecordKind, BTreeSet<String>>;

/// Resolvers: the system's, and one per name server a target names.
#[derive(Default)]
pub struct Dns {
    resolvers: Mutex<HashMap<Option<SocketAddr>, TokioResolver>>,
}

impl fmt::Debug for Dns {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Dns")
    }
}

impl Dns {
    fn resolver(&self, server: Option<SocketAddr>) -> Result<TokioResolver, String> {
        let mut resolvers = self
            .resolvers
            .lock()
            .map_err(|_| "the resolver table is poisoned".to_string())?;
        if let Some(resolver) = resolvers.get(&server) {
            return Ok(resolver.clone());
        }
        let builder = match server {
            None => TokioResolver::builder_tokio()
                .map_err(|error| format!("system DNS configuration: {error}"))?,
            Some(address) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = address.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = address.port();
                let server = NameServerConfig::new(address.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let resolver = builder
            .build()
            .map_err(|error| format!("DNS resolver: {error}"))?;
        resolvers.insert(server, resolver.clone());
        Ok(resolver)
    }

    /// Looks up every kind for `host`. A name without records of a kind gets an
    /// empty set; a failing server is an error.
    pub async fn lookup(
        &self,
        host: &str,
        kinds: &[RecordKind],
        server: Option<SocketAddr>,
    ) -> Result<Answers, String> {
        let resolver = self.resolver(server)?;
        // A trailing dot: the name is absolute, no search domains are tried.
        let name = if host.ends_with('.') {
            host.to_owned()
        } else {
            format!("{host}.")
        };
        let mut answers = Answers::new();
        for &kind in kinds {
            let record_type = kind.record_type();
            let values = match resolver.lookup(name.as_str(), record_type).await {
                Ok(lookup) => lookup
                    .answers()
                    .iter()
                    .filter(|record| record.record_type() == record_type)
                    .map(|record| record.data.to_string().to_ascii_lowercase())
                    .collect(),
                Err(error) if error.is_no_records_found() || error.is_nx_domain() => {
                    BTreeSet::new()
                }
                Err(error) => return Err(format!("{kind} lookup of {host}: {error}")),
            };
            answers.insert(kind, values);
        }
        Ok(answers)
    }
}

/// What changed between two sets of answers, one line per record type.
pub fn changes(baseline: &Answers, current: &Answers) -> Vec<String> {
    let mut lines = Vec::new();
    for (kind, now) in current {
        let before = baseline.get(kind).cloned().unwrap_or_default();
        if &before != now {
            let added: Vec<_> = now.difference(&before).cloned().collect();
            let removed: Vec<_> = before.difference(now).cloned().collect();
            let mut line = format!("{kind} changed");
            if !added.is_empty() {
                line.push_str(&format!(", new {}", added.join(" ")));
            }
            if !removed.is_empty() {
                line.push_str(&format!(", gone {}", removed.join(" ")));
            }
            lines.push(line);
        }
    }
    lines
}
