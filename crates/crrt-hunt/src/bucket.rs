//! A log source's rules and the prefilter that picks, per event, the few
//! rules worth evaluating.
//!
//! rsigma's `Engine` indexes rules with one Aho-Corasick DFA per field; on the
//! SigmaHQ Windows rules that build took 0.5 s and most of the memory of a
//! hunt. Here each rule gets a *gate*, read from its intermediate form: a set
//! of `(field, literal)` pairs such that, if the rule matches an event, at
//! least one literal occurs in that field's value. Per field, one short
//! anchor per literal goes into a hashed set of byte windows that builds
//! in microseconds. Rules with no sound gate (regex only, negations, keywords,
//! numeric comparisons) are evaluated for every event of the bucket.
//!
//! A rule is compiled (regexes, automata) the first time it is a candidate:
//! on the SigmaHQ Windows rules and the attack-samples corpus fewer than half
//! ever are. A rule from the rule cache is not even decoded until then: its
//! [`RuleHead`] (metadata, log source, gate) is all loading needs.
//! Candidates are evaluated in full by `rsigma_eval::evaluate_rule`, so
//! findings are exactly the engine's; a differential test over the whole
//! corpus (rules from the cache against rules as parsed) holds that line.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::FixedState;

use rsigma_eval::event::{Event, EventValue};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rsigma_eval::{CompiledRule, EvaluationResult, compile_to_compiled, evaluate_rule};
use rsigma_ir::{
    IrCondition, IrDetection, IrDetectionItem, IrEncoding, IrMatcher, IrNumber, IrPattern,
    IrPatternPart, IrRule, IrStrOp,
};
use rsigma_parser::{Level, LogSource, Quantifier, Status};
use serde::{Deserialize, Serialize};

use crate::record::EventView;
use crate::rules::CompiledFilter;

/// One log source's rules, ready to evaluate.
pub(crate) struct Bucket {
    rules: Vec<LazyRule>,
    filters: Arc<Vec<CompiledFilter>>,
    fields: Vec<FieldIndex>,
    /// Field name to its index in `fields`.
    field_of: HashMap<Box<str>, usize, FixedState>,
    /// Keyword literals (ASCII-lowercased) with their slot codes, until
    /// [`Keywords::index`] numbers them; then their ids in that index.
    keywords: Vec<(Box<str>, Vec<u32>)>,
    keyword_ids: Vec<(u32, Vec<u32>)>,
    /// Numeric equality gates (`EventID: 4688`): field, value, rules.
    numbers: Vec<(String, HashMap<i64, Vec<u32>>)>,
    /// Where each event's candidate bits start (see [`Bits`]).
    base: Bits,
}

/// Where a literal must occur: one field's value, or (for keywords) any
/// string value of the event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Target {
    Field(String),
    Keywords,
}

/// Literals (ASCII-lowercased) that share an anchor, each with where the
/// anchor starts in it and its slot codes.
type Literals = Vec<(Box<str>, usize, Vec<u32>)>;

struct FieldIndex {
    /// Tells this index's values apart from other indexes' in [`MEMO`].
    id: u64,
    target: Target,
    anchors: Anchors,
    /// Anchor id to the literals it stands for, ASCII-lowercased, each
    /// with the rules it gates.
    rules_of: Vec<Literals>,
    /// Codes that any value with a non-ASCII character marks.
    non_ascii: Vec<u32>,
    /// Whether every anchor holds a byte beyond [`FORMAT`], so that a value
    /// of format bytes only holds none.
    skips_format: bool,
}

/// A loaded rule: what selecting, grouping and gating it needs, and its
/// intermediate form, which a rule from the cache keeps encoded until it is
/// first a candidate (decoding every cached rule was a tenth of a hunt).
#[derive(Clone)]
pub(crate) struct LoadedRule {
    pub head: RuleHead,
    pub body: RuleBody,
}

/// A rule's metadata, log source, load-time problem and prefilter gate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RuleHead {
    pub title: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub level: Option<Level>,
    pub status: Option<Status>,
    pub tags: Vec<String>,
    pub logsource: LogSource,
    /// Why the rule cannot be evaluated (an invalid regex, say).
    pub problem: Option<String>,
    gate: Option<Gate>,
}

#[derive(Clone)]
pub(crate) enum RuleBody {
    Ir(Box<IrRule>),
    /// The IR as JSON, from the rule cache.
    Encoded(Box<[u8]>),
}

impl RuleBody {
    pub(crate) fn decode(self) -> Result<IrRule, String> {
        match self {
            RuleBody::Ir(ir) => Ok(*ir),
            // One UTF-8 check for the whole rule, not one per string.
            RuleBody::Encoded(bytes) => std::str::from_utf8(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str(text).map_err(|e| e.to_string()))
                .map_err(|e| format!("unreadable cached rule (clear the rule cache): {e}")),
        }
    }
}

impl LoadedRule {
    /// A rule as parsed: Sigma's `base64offset` and long lists rewritten
    /// (see `rewrite`), its gate read, `problem` the caller's static check.
    pub(crate) fn new(mut ir: IrRule, problem: Option<String>) -> Self {
        ir.detections.values_mut().for_each(rewrite);
        let m = &ir.metadata;
        let head = RuleHead {
            title: m.title.clone(),
            id: m.id.clone(),
            name: m.name.clone(),
            level: m.level,
            status: m.status,
            tags: m.tags.clone(),
            logsource: ir.logsource.clone(),
            problem,
            gate: rule_gate(&ir),
        };
        LoadedRule {
            head,
            body: RuleBody::Ir(Box::new(ir)),
        }
    }
}

/// A rule in its intermediate form, compiled on first use.
pub(crate) struct LazyRule {
    pub path: PathBuf,
    pub title: String,
    /// The rule (from the cache, still encoded) until it is compiled: then
    /// it is no longer needed, and the memory it takes goes.
    body: std::sync::Mutex<Option<RuleBody>>,
    compiled: OnceLock<Result<CompiledRule, String>>,
}

impl LazyRule {
    fn compiled(&self, filters: &[CompiledFilter]) -> Option<&CompiledRule> {
        self.compiled
            .get_or_init(|| {
                // The OnceLock runs this once per rule, so the body is there.
                let ir = self
                    .body
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .ok_or_else(|| "the rule was already compiled".to_owned())?
                    .decode()?;
                let mut rule = compile_to_compiled(&ir).map_err(|e| e.to_string())?;
                for filter in filters {
                    filter.apply(&mut rule);
                }
                Ok(rule)
            })
            .as_ref()
            .ok()
    }

    /// Reads the rule's IR, if it has not been compiled yet.
    #[cfg(test)]
    pub(crate) fn with_ir<R>(&self, f: impl FnOnce(&IrRule) -> R) -> Option<R> {
        let body = self
            .body
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        body.decode().ok().as_ref().map(f)
    }

    /// Why the rule could not be compiled, once it has been tried.
    pub(crate) fn failure(&self) -> Option<&str> {
        match self.compiled.get() {
            Some(Err(message)) => Some(message),
            _ => None,
        }
    }
}

impl Bucket {
    pub(crate) fn new(
        rules: Vec<(PathBuf, LoadedRule)>,
        filters: Arc<Vec<CompiledFilter>>,
    ) -> Self {
        // Candidate bits every event starts with: every slot of rules run
        // always, the slots a rule's gate does not use.
        let mut base = Bits::new(rules.len());
        // field -> literal -> slot codes, in a fixed order (a BTreeMap of
        // fields, fixed-seed hashing of literals) so the build is the same
        // every run. Literals ASCII-lowercased, as values are searched (the
        // case variants of a `|cased` literal become one).
        let mut by_field: BTreeMap<Target, HashMap<String, Vec<u32>, FixedState>> = BTreeMap::new();
        let mut by_number: BTreeMap<String, HashMap<i64, Vec<u32>>> = BTreeMap::new();
        let mut non_ascii: BTreeMap<Target, Vec<u32>> = BTreeMap::new();
        let mut lazy = Vec::with_capacity(rules.len());
        for (i, (path, rule)) in rules.into_iter().enumerate() {
            let i = i as u32;
            lazy.push(LazyRule {
                path,
                title: rule.head.title,
                body: std::sync::Mutex::new(Some(rule.body)),
                compiled: OnceLock::new(),
            });
            match rule.head.gate {
                Some(gate) => {
                    for n in gate.slots.len()..SLOTS {
                        base.set(Bits::code(i, n as u32));
                    }
                    let atoms = gate.slots.into_iter().zip(0..).flat_map(|(slot, n)| {
                        slot.into_iter().map(move |atom| (atom, Bits::code(i, n)))
                    });
                    for (atom, i) in atoms {
                        match atom {
                            // Nothing to look for: that slot always holds.
                            Atom::Text(_, literal) if literal.is_empty() => base.set(i),
                            Atom::Text(target, mut literal) => {
                                literal.make_ascii_lowercase();
                                by_field
                                    .entry(target)
                                    .or_default()
                                    .entry(literal)
                                    .or_default()
                                    .push(i)
                            }
                            Atom::Number(field, value) => by_number
                                .entry(field)
                                .or_default()
                                .entry(value)
                                .or_default()
                                .push(i),
                            Atom::NonAscii(field) => {
                                non_ascii.entry(Target::Field(field)).or_default().push(i)
                            }
                        }
                    }
                }
                None => {
                    for n in 0..SLOTS {
                        base.set(Bits::code(i, n as u32));
                    }
                }
            }
        }
        let numbers = by_number.into_iter().collect();
        let keywords = by_field
            .remove(&Target::Keywords)
            .map(|literals| {
                let mut literals: Vec<(Box<str>, Vec<u32>)> = literals
                    .into_iter()
                    .map(|(literal, codes)| (literal.into_boxed_str(), codes))
                    .collect();
                literals.sort_unstable();
                literals
            })
            .unwrap_or_default();
        for target in non_ascii.keys() {
            by_field.entry(target.clone()).or_default();
        }
        let fields: Vec<FieldIndex> = by_field
            .into_iter()
            .map(|(target, literals)| {
                let mut index = field_index(target, literals.into_iter().collect());
                index.non_ascii = non_ascii.remove(&index.target).unwrap_or_default();
                index
            })
            .collect();
        let field_of = (fields.iter().enumerate())
            .filter_map(|(i, index)| match &index.target {
                Target::Field(name) => Some((name.as_str().into(), i)),
                Target::Keywords => None,
            })
            .collect();
        Bucket {
            rules: lazy,
            fields,
            field_of,
            keywords,
            keyword_ids: Vec::new(),
            numbers,
            base,
            filters,
        }
    }
}

/// One field's index: one short anchor per literal rather than the literal
/// itself (a candidate is verified in full anyway), so the index is a few
/// bytes per rule and builds in microseconds.
fn field_index(target: Target, literals: Vec<(String, Vec<u32>)>) -> FieldIndex {
    let anchors = anchors(literals.iter().map(|(literal, _)| literal.as_bytes()));
    let mut ids: HashMap<&[u8], u32, FixedState> = HashMap::default();
    let mut distinct: Vec<&[u8]> = Vec::new();
    let which: Vec<u32> = anchors
        .iter()
        .map(|&anchor| {
            *ids.entry(anchor).or_insert_with(|| {
                distinct.push(anchor);
                (distinct.len() - 1) as u32
            })
        })
        .collect();
    let index = Anchors::new(&distinct);
    let skips_format = distinct.iter().all(|anchor| !is_format(anchor));
    let mut rules_of: Vec<Literals> = vec![Vec::new(); distinct.len()];
    // Where each anchor starts in its literal (anchors are slices of them).
    let offsets: Vec<usize> = anchors
        .iter()
        .zip(&literals)
        .map(|(anchor, (literal, _))| anchor.as_ptr() as usize - literal.as_ptr() as usize)
        .collect();
    for (((literal, mut rules), id), offset) in literals.into_iter().zip(which).zip(offsets) {
        rules.sort_unstable();
        rules.dedup();
        rules_of[id as usize].push((literal.into_boxed_str(), offset, rules));
    }
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    FieldIndex {
        id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        target,
        anchors: index,
        rules_of,
        non_ascii: Vec::new(),
        skips_format,
    }
}

/// Bytes of the values logs are full of that no rule looks for: times
/// (`2019-05-14T12:34:56.789Z`), GUIDs, hexadecimal and decimal numbers,
/// IP addresses. Such values were 45% of the values the keyword index
/// met on the attack samples, and two thirds of its memo's misses.
const FORMAT: [bool; 256] = {
    let mut table = [false; 256];
    let bytes = b"0123456789abcdefABCDEFxXtTzZ{}-:. ";
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
};

fn is_format(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| FORMAT[usize::from(b)])
}

/// ASCII lowercasing as a table, for the window search.
const LOWER: [u8; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = (i as u8).to_ascii_lowercase();
        i += 1;
    }
    table
};

/// A set of anchors (1 to [`ANCHOR`] bytes, ASCII-lowercased) found in a
/// value in one pass: a window of its last four lowercased bytes slides
/// over it, and at each byte the window (and its shorter suffixes, if some
/// anchors are shorter) is tested in a bit table and, if the bit is set,
/// looked up. Every occurrence is reported, overlapping ones too. This
/// replaced one Aho-Corasick automaton per field (contiguous NFA): on the
/// small corpus with the SigmaHQ rules their builds took ~4% of the hunt's
/// instructions, and searching them took more per byte than this.
struct Anchors {
    /// One bit per hash slot, set when some anchor's key lands there.
    bits: Box<[u64]>,
    /// Shift that keeps the hash's top bits: `bits.len() * 64` slots.
    shift: u32,
    /// Key (length and bytes) to anchor id.
    ids: HashMap<u64, u32, FixedState>,
    /// Bit n set when some anchor is n bytes long.
    lengths: u8,
}

impl Anchors {
    fn new(anchors: &[&[u8]]) -> Anchors {
        // About 16 slots per anchor: a window that is no anchor finds its
        // bit set a few percent of the time.
        let slots = (anchors.len() * 16).next_power_of_two().max(64);
        let mut index = Anchors {
            bits: vec![0; slots / 64].into_boxed_slice(),
            shift: 64 - slots.trailing_zeros(),
            ids: HashMap::default(),
            lengths: 0,
        };
        for (id, anchor) in anchors.iter().enumerate() {
            debug_assert!((1..=ANCHOR).contains(&anchor.len()));
            let window = anchor
                .iter()
                .fold(0, |w, &b| (w << 8) | u64::from(LOWER[usize::from(b)]));
            let key = Self::key(anchor.len(), window);
            index.ids.insert(key, id as u32);
            let slot = index.slot(key);
            index.bits[slot / 64] |= 1 << (slot % 64);
            index.lengths |= 1 << anchor.len();
        }
        index
    }

    /// An anchor's length in the bits above its bytes.
    fn key(len: usize, window: u64) -> u64 {
        (len as u64) << (8 * len) | (window & ((1 << (8 * len)) - 1))
    }

    fn slot(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Calls `found(anchor id, anchor length, end)` for every occurrence,
    /// which ends before byte `end`.
    fn find(&self, haystack: &[u8], mut found: impl FnMut(u32, usize, usize)) {
        let mut window = 0_u64;
        if self.lengths == 1 << ANCHOR {
            // Nearly every field: all anchors four bytes long.
            const FOUR: u64 = (ANCHOR as u64) << (8 * ANCHOR);
            let mut bytes = haystack.iter();
            for &byte in bytes.by_ref().take(ANCHOR - 1) {
                window = (window << 8) | u64::from(LOWER[usize::from(byte)]);
            }
            for (end, &byte) in (ANCHOR..).zip(bytes) {
                window = ((window << 8) & 0xFFFF_FFFF) | u64::from(LOWER[usize::from(byte)]);
                let key = FOUR | window;
                let slot = self.slot(key);
                if self.bits[slot / 64] & (1 << (slot % 64)) != 0
                    && let Some(&id) = self.ids.get(&key)
                {
                    found(id, ANCHOR, end);
                }
            }
            return;
        }
        for (i, &byte) in haystack.iter().enumerate() {
            window = (window << 8) | u64::from(LOWER[usize::from(byte)]);
            let mut lengths = self.lengths;
            while lengths != 0 {
                let len = lengths.trailing_zeros() as usize;
                lengths &= lengths - 1;
                if len > i + 1 {
                    break;
                }
                let key = Self::key(len, window);
                let slot = self.slot(key);
                if self.bits[slot / 64] & (1 << (slot % 64)) != 0
                    && let Some(&id) = self.ids.get(&key)
                {
                    found(id, len, i + 1);
                }
            }
        }
    }
}

impl Bucket {
    pub(crate) fn rules(&self) -> &[LazyRule] {
        &self.rules
    }

    /// Every rule of this bucket that matches the event, in rule order.
    /// `keywords` holds the record's keyword search, shared by the buckets
    /// it goes to.
    pub(crate) fn evaluate(
        &self,
        event: &EventView<'_>,
        keywords: &KeywordHits<'_>,
    ) -> Vec<EvaluationResult> {
        let mut candidates = self.base.clone();
        // A bucket with many indexed fields (process creation: dozens,
        // most of them absent from a given event) looks each of the
        // event's fields up among them, rather than each of them up among
        // the event's fields one by one.
        let by_event = self.fields.len() > FIELDS_LOOKED_UP
            && event.for_each_named_field(&mut |name, value| {
                if let Some(&i) = self.field_of.get(name) {
                    visit_strings(&value, &mut |s| self.fields[i].mark(s, &mut candidates));
                }
            });
        if !by_event {
            for index in &self.fields {
                if let Target::Field(field) = &index.target
                    && let Some(value) = event.get_field(field)
                {
                    visit_strings(&value, &mut |s| index.mark(s, &mut candidates));
                }
            }
        }
        if !self.keyword_ids.is_empty() {
            let found = keywords.get(event);
            for (id, codes) in &self.keyword_ids {
                if found.get(*id) {
                    for &code in codes {
                        candidates.set(code);
                    }
                }
            }
        }
        for (field, values) in &self.numbers {
            if let Some(value) = event.get_field(field) {
                visit_numbers(&value, &mut |n| {
                    for &rule in values.get(&n).into_iter().flatten() {
                        candidates.set(rule);
                    }
                });
            }
        }
        let mut out = Vec::new();
        candidates.for_each(|i| {
            if let Some(rule) = self.rules[i].compiled(&self.filters)
                && let Some(result) = evaluate_rule(rule, event)
            {
                out.push(result);
            }
        });
        out
    }
}

/// Indexed fields a bucket looks up one by one in an event; beyond them,
/// it looks up each of the event's fields among its own.
const FIELDS_LOOKED_UP: usize = 8;

/// Long values searched lately on this thread, with the codes an index
/// marked for them. Logs repeat themselves event after event (image paths,
/// command lines, hashes, host and user names), and a value is hashed and
/// compared in a fraction of the time it is searched. Direct-mapped and
/// small: it holds what repeats within a stretch of a log, not a corpus.
struct Memo {
    slots: Box<[Option<Remembered>]>,
    /// Bytes of the values held, kept under [`MEMO_BYTES`].
    bytes: usize,
    /// The codes of the value being searched: grown once per thread,
    /// not per search (a long command line marks twenty codes, and the
    /// vector grown for them was reallocated four times).
    found: Vec<u32>,
}

struct Remembered {
    index: u64,
    hash: u64,
    value: Box<str>,
    codes: Box<[u32]>,
}

/// Entries of the memo; values it remembers, by length; bytes of values
/// it holds at most (a thread's share of the hunt's memory).
const MEMO_SLOTS: usize = 4096;
const MEMO_LENGTHS: std::ops::RangeInclusive<usize> = 8..=4096;
const MEMO_BYTES: usize = 4 << 20;

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo {
        slots: (0..MEMO_SLOTS).map(|_| None).collect(),
        bytes: 0,
        found: Vec::new(),
    });
}

impl FieldIndex {
    /// Marks the codes of the literals `haystack` holds.
    fn mark(&self, haystack: &str, out: &mut Bits) {
        if self.skips_format && is_format(haystack.as_bytes()) {
            return;
        }
        if !MEMO_LENGTHS.contains(&haystack.len()) {
            return self.search(haystack, &mut |code| out.set(code));
        }
        use std::hash::BuildHasher;
        let hash = FixedState::default().hash_one((self.id, haystack));
        MEMO.with_borrow_mut(|memo| {
            let Memo {
                slots,
                bytes,
                found: codes,
            } = memo;
            let slot = &mut slots[hash as usize % MEMO_SLOTS];
            if let Some(seen) = slot
                && seen.hash == hash
                && seen.index == self.id
                && *seen.value == *haystack
            {
                seen.codes.iter().for_each(|&code| out.set(code));
                return;
            }
            codes.clear();
            self.search(haystack, &mut |code| codes.push(code));
            codes.sort_unstable();
            codes.dedup();
            codes.iter().for_each(|&code| out.set(code));
            let held = *bytes - slot.as_ref().map_or(0, |seen| seen.value.len());
            if held + haystack.len() > MEMO_BYTES {
                return;
            }
            *bytes = held + haystack.len();
            *slot = Some(Remembered {
                index: self.id,
                hash,
                value: haystack.into(),
                codes: codes.as_slice().into(),
            });
        })
    }

    /// Calls `found` with the codes of the literals `haystack` holds
    /// (some more than once).
    fn search(&self, haystack: &str, found: &mut dyn FnMut(u32)) {
        let ascii = haystack.is_ascii();
        if !ascii {
            self.non_ascii.iter().for_each(|&code| found(code));
        }
        if ascii || !haystack.chars().any(folds_into_plain) {
            // An anchor is a hint; the literal it stands for is checked
            // where this occurrence puts it (every occurrence of the
            // literal holds its anchor at the same offset, so none is
            // missed) before its rules become candidates.
            let bytes = haystack.as_bytes();
            self.anchors.find(bytes, |id, len, end| {
                for (literal, offset, rules) in &self.rules_of[id as usize] {
                    let present = literal.len() == len || {
                        let start = (end - len).checked_sub(*offset);
                        start
                            .and_then(|start| bytes.get(start..start + literal.len()))
                            .is_some_and(|here| {
                                here.iter()
                                    .zip(literal.as_bytes())
                                    .all(|(&h, &l)| LOWER[usize::from(h)] == l)
                            })
                    };
                    if present {
                        rules.iter().for_each(|&rule| found(rule));
                    }
                }
            });
        } else {
            // Unicode case folding (`to_lowercase`, regex `(?i)`) can map
            // such text onto a literal in ways ASCII folding does not see;
            // these values are rare, so every rule gated here is evaluated.
            for (_, _, rules) in self.rules_of.iter().flatten() {
                rules.iter().for_each(|&rule| found(rule));
            }
        }
    }
}

/// Whether a character has no case: Unicode lower- and upper-casing leave it be.
fn caseless(c: char) -> bool {
    c.to_lowercase().eq([c]) && c.to_uppercase().eq([c])
}

/// Whether case folding can turn the character into text a literal may hold
/// (ASCII or caseless): the Kelvin sign into `k`, `ſ` into `S`, `İ` into
/// `i` and a combining dot. Case-insensitive literals hold only ASCII and
/// caseless characters (see [`matcher_atoms`]; case-sensitive ones compare
/// bytes), so in a value without such characters an ASCII-folded search
/// finds every literal Unicode folding would: text with `®` or Cyrillic
/// (every Sysmon `Product` of Microsoft's) stays gated.
fn folds_into_plain(c: char) -> bool {
    !c.is_ascii()
        && c.to_lowercase()
            .chain(c.to_uppercase())
            .any(|x| x != c && (x.is_ascii() || caseless(x)))
}

/// Bytes per anchor: long enough to be selective, short enough that most
/// literals have several to choose from.
const ANCHOR: usize = 4;
// The window search and the gram counts hold an anchor in 32 bits.
const _: () = assert!(ANCHOR == 4);

/// For each literal, the [`ANCHOR`] bytes that the fewest other literals of
/// the same field share (so `.exe` is never chosen when the literal has
/// anything rarer), among those with a byte beyond [`FORMAT`] if it has
/// any (see [`FieldIndex::skips_format`]); shorter literals are their own
/// anchor. Values are searched as bytes, so an anchor may cut a character.
fn anchors<'a>(literals: impl Iterator<Item = &'a [u8]> + Clone) -> Vec<&'a [u8]> {
    // Tens of thousands of literals over a SigmaHQ load: count grams as
    // integers, not slices.
    let gram = |g: &[u8]| u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
    let mut frequency: HashMap<u32, u32, FixedState> = HashMap::default();
    for literal in literals.clone() {
        for g in literal.windows(ANCHOR) {
            *frequency.entry(gram(g)).or_default() += 1;
        }
    }
    literals
        .map(|literal| {
            literal
                .windows(ANCHOR)
                .min_by_key(|g| (is_format(g), frequency[&gram(g)]))
                .unwrap_or(literal)
        })
        .collect()
}

/// The string forms a matcher compares against (numbers and booleans are
/// compared as their decimal text; arrays match if any member does).
fn visit_strings(value: &EventValue<'_>, visit: &mut dyn FnMut(&str)) {
    match value {
        EventValue::Array(items) => items.iter().for_each(|v| visit_strings(v, visit)),
        other => {
            if let Some(s) = other.as_str() {
                visit(&s);
            }
        }
    }
}

/// The integers a numeric-equality matcher could equal: rsigma compares
/// `|v - n| < f64::EPSILON` after reading strings as `f64`, and gates only
/// hold integers `1 <= |n| < 2^52`, so the nearest integer is the one.
fn visit_numbers(value: &EventValue<'_>, visit: &mut dyn FnMut(i64)) {
    let v = match value {
        EventValue::Array(items) => return items.iter().for_each(|v| visit_numbers(v, visit)),
        EventValue::Int(n) => *n as f64,
        EventValue::Float(f) => *f,
        EventValue::Str(s) => match s.parse::<f64>() {
            Ok(f) => f,
            Err(_) => return,
        },
        _ => return,
    };
    let nearest = v.round();
    if (v - nearest).abs() < f64::EPSILON && nearest.abs() < MAX_EXACT {
        visit(nearest as i64);
    }
}

const MAX_EXACT: f64 = (1u64 << 52) as f64;

/// The keyword literals of all buckets of a rule set, searched once per
/// record: a Windows event goes to up to four buckets with keyword rules,
/// and each searched every string of the event again (40% more bytes
/// than one search, and keywords were three quarters of the bytes the
/// prefilter scans).
pub(crate) struct Keywords {
    /// Codes in this index are literal ids, not slot codes.
    index: Option<FieldIndex>,
    n_literals: usize,
}

impl Keywords {
    /// Numbers the distinct keyword literals of `buckets` and tells each
    /// bucket the ids of its own.
    pub(crate) fn index(buckets: &mut [Bucket]) -> Keywords {
        let mut ids: BTreeMap<Box<str>, u32> = BTreeMap::new();
        for bucket in buckets.iter() {
            for (literal, _) in &bucket.keywords {
                let next = ids.len() as u32;
                ids.entry(literal.clone()).or_insert(next);
            }
        }
        for bucket in buckets.iter_mut() {
            bucket.keyword_ids = std::mem::take(&mut bucket.keywords)
                .into_iter()
                .map(|(literal, codes)| (ids[&literal], codes))
                .collect();
        }
        let n_literals = ids.len();
        let index = (n_literals > 0).then(|| {
            let literals = ids
                .into_iter()
                .map(|(literal, id)| (literal.into_string(), vec![id]))
                .collect();
            field_index(Target::Keywords, literals)
        });
        Keywords { index, n_literals }
    }
}

/// One record's keyword search, done when the first bucket needs it.
pub(crate) struct KeywordHits<'a> {
    keywords: &'a Keywords,
    found: std::cell::OnceCell<Bits>,
}

impl<'a> KeywordHits<'a> {
    pub(crate) fn new(keywords: &'a Keywords) -> Self {
        KeywordHits {
            keywords,
            found: std::cell::OnceCell::new(),
        }
    }

    /// The ids of the literals some string value of the event holds. Every
    /// bucket sees the same values (renames change names only).
    fn get(&self, event: &impl Event) -> &Bits {
        self.found.get_or_init(|| {
            let mut found = Bits::new(self.keywords.n_literals);
            if let Some(index) = &self.keywords.index {
                event.visit_string_values(&mut |s| index.mark(s, &mut found));
            }
            found
        })
    }
}

/// Slots of a gate, at most.
const SLOTS: usize = 4;

/// [`SLOTS`] bits per rule, one per gate slot: a rule is a candidate when
/// all are set. Slot codes (`rule * SLOTS + slot`) are what the indexes
/// store.
#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(rules: usize) -> Self {
        Bits(vec![0; (rules * SLOTS).div_ceil(64)])
    }
    fn code(rule: u32, slot: u32) -> u32 {
        rule * SLOTS as u32 + slot
    }
    fn set(&mut self, code: u32) {
        self.0[(code / 64) as usize] |= 1 << (code % 64);
    }
    fn get(&self, code: u32) -> bool {
        self.0[(code / 64) as usize] & (1 << (code % 64)) != 0
    }
    /// Rules with all slots set, ascending.
    fn for_each(&self, mut f: impl FnMut(usize)) {
        const _: () = assert!(SLOTS == 4);
        for (w, &word) in self.0.iter().enumerate() {
            let mut all = word & (word >> 1) & (word >> 2) & (word >> 3) & 0x1111_1111_1111_1111;
            while all != 0 {
                let bit = all.trailing_zeros() as usize;
                f((w * 64 + bit) / SLOTS);
                all &= all - 1;
            }
        }
    }
}

/// One necessary condition of a rule, as the prefilter can test it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Atom {
    /// The literal occurs in the target (ASCII case folded).
    Text(Target, String),
    /// The field's value equals this integer.
    Number(String, i64),
    /// The field's value holds a character beyond ASCII.
    NonAscii(String),
}

impl Atom {
    /// How selective the atom is likely to be: longer literals are rarer;
    /// a number such as an event id is worth a short literal.
    fn selectivity(&self) -> usize {
        match self {
            Atom::Text(_, literal) => literal.len().min(8),
            Atom::Number(..) => 3,
            // Windows logs are nearly all ASCII; some fields are not
            // (Sysmon's `Product` of Microsoft's own files).
            Atom::NonAscii(_) => 4,
        }
    }
}

/// A conjunction of one to [`SLOTS`] slots, each a disjunction of atoms:
/// when the rule matches, some atom of every slot holds. Several slots let
/// a rule such as `Image|endswith: \powershell.exe` and
/// `CommandLine|contains: -enc` wait for both, not for every PowerShell
/// process; with four, a rule that also names the parent process or the
/// user waits for all of them, however common each is alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Gate {
    slots: Vec<Vec<Atom>>,
}

fn slot_score(slot: &[Atom]) -> (usize, usize) {
    let worst = slot.iter().map(Atom::selectivity).min().unwrap_or(0);
    (worst, usize::MAX - slot.len())
}

impl Gate {
    fn of(atoms: Vec<Atom>) -> Option<Gate> {
        (!atoms.is_empty()).then(|| Gate { slots: vec![atoms] })
    }

    /// One of several gates holds. `(A1 and B1) or (A2 and B2)` implies
    /// `(A1 or A2) and (B1 or B2)`, so slots unite position by position.
    /// A gate of fewer slots repeats its first: `C` is `C and C`, and
    /// `(A1 and B1) or C` implies `(A1 or C) and (B1 or C)`, so
    /// `1 of selection_*` over a selective pair and a single condition
    /// keeps both slots of the pair (dropping one made every process under
    /// `\Windows\` a candidate of a rule that also needs `\..\` in its
    /// command line).
    fn union(gates: impl IntoIterator<Item = Option<Gate>>) -> Option<Gate> {
        let mut slots: Option<Vec<Vec<Atom>>> = None;
        for gate in gates {
            let gate = gate?;
            slots = Some(match slots {
                None => gate.slots,
                Some(mut acc) => {
                    let mut from = gate.slots;
                    if acc.len() < from.len() {
                        std::mem::swap(&mut acc, &mut from);
                    }
                    // Now `from` has no more slots than `acc`.
                    if from.len() < acc.len() {
                        from.resize(acc.len(), from[0].clone());
                    }
                    for (into, from) in acc.iter_mut().zip(from) {
                        into.extend(from);
                    }
                    acc
                }
            });
        }
        Some(Gate { slots: slots? })
    }

    /// All of several gates hold: keep the most selective slots.
    fn best(gates: impl IntoIterator<Item = Option<Gate>>) -> Option<Gate> {
        let mut slots: Vec<Vec<Atom>> = Vec::new();
        for gate in gates.into_iter().flatten() {
            for slot in gate.slots {
                if !slots.contains(&slot) {
                    slots.push(slot);
                }
            }
        }
        // A keyword literal is searched for in every string of every event,
        // whichever rules the event goes to: beside a slot on fields, a
        // slot with keywords costs that search more than it saves.
        let keywords = |slot: &Vec<Atom>| {
            slot.iter()
                .any(|atom| matches!(atom, Atom::Text(Target::Keywords, _)))
        };
        if slots.iter().any(|slot| !keywords(slot)) {
            slots.retain(|slot| !keywords(slot));
        }
        // Stable sort: among equals the first written stays first.
        slots.sort_by_key(|s| std::cmp::Reverse(slot_score(s)));
        slots.truncate(SLOTS);
        // Beyond two, a slot of short literals (`High`, `.exe`) holds for
        // most events and costs every value's search more than it saves.
        let mut n = 0;
        slots.retain(|slot| {
            n += 1;
            n <= 2 || slot_score(slot).0 >= 6
        });
        (!slots.is_empty()).then_some(Gate { slots })
    }
}

fn rule_gate(rule: &IrRule) -> Option<Gate> {
    Gate::union(
        rule.conditions
            .iter()
            .map(|c| condition_gate(c, &rule.detections)),
    )
}

fn condition_gate(expr: &IrCondition, detections: &HashMap<String, IrDetection>) -> Option<Gate> {
    match expr {
        IrCondition::Detection(name) => detection_gate(detections.get(name)?),
        IrCondition::And(children) => {
            Gate::best(children.iter().map(|c| condition_gate(c, detections)))
        }
        IrCondition::Or(children) => {
            Gate::union(children.iter().map(|c| condition_gate(c, detections)))
        }
        IrCondition::Not(_) => None,
        IrCondition::Selector {
            quantifier,
            pattern,
        } => {
            // Sorted names so the gate, and the automaton, are deterministic.
            let mut named: Vec<(&String, &IrDetection)> = detections
                .iter()
                .filter(|(name, _)| pattern.matches_detection_name(name))
                .collect();
            named.sort_by(|a, b| a.0.cmp(b.0));
            let gates = named.into_iter().map(|(_, d)| detection_gate(d));
            match quantifier {
                Quantifier::All => Gate::best(gates),
                Quantifier::Any | Quantifier::Count(1..) => Gate::union(gates),
                // "0 of" always holds.
                Quantifier::Count(0) => None,
            }
        }
    }
}

fn detection_gate(detection: &IrDetection) -> Option<Gate> {
    match detection {
        IrDetection::AllOf(items) => Gate::best(items.iter().map(item_gate)),
        IrDetection::AnyOf(children) => Gate::union(children.iter().map(detection_gate)),
        IrDetection::And(children) => Gate::best(children.iter().map(detection_gate)),
        IrDetection::Keywords(matcher) => matcher_gate(matcher, &Target::Keywords),
        // Array scopes look inside members.
        IrDetection::ArrayMatch { .. } | IrDetection::Conditional { .. } => None,
    }
}

fn item_gate(item: &IrDetectionItem) -> Option<Gate> {
    if item.exists.is_some() {
        return None;
    }
    let target = match &item.field {
        Some(field) => Target::Field(field.clone()),
        // A field-less item is a keyword: any string value of the event.
        None => Target::Keywords,
    };
    matcher_gate(&item.matcher, &target)
}

/// What the prefilter can require of a value the matcher accepts: each
/// value of `|all` is a slot of its own.
fn matcher_gate(matcher: &IrMatcher, target: &Target) -> Option<Gate> {
    match matcher {
        IrMatcher::AllOf(children) => Gate::best(children.iter().map(|c| matcher_gate(c, target))),
        _ => Gate::of(matcher_atoms(matcher, target)?),
    }
}

/// Atoms one of which holds whenever the matcher does; `None` when no such
/// set exists. Case-insensitive matchers compare the Unicode-lowercased
/// value, so their literal is lowercased the same way; the automaton also
/// folds ASCII case, which only widens the gate.
fn matcher_atoms(matcher: &IrMatcher, target: &Target) -> Option<Vec<Atom>> {
    let text = |literal: &str, case_insensitive: bool| {
        // Under case folding a cased non-ASCII letter may match ASCII text
        // (`ſ` matches `s`, the Kelvin sign `k`): keep the longest piece
        // between such letters. Caseless ones (emoji, U+2800) stay.
        let cased = |c: char| !c.is_ascii() && !caseless(c);
        // Nearly every literal is ASCII: no such letter, no Unicode tables.
        let piece = if case_insensitive && !literal.is_ascii() {
            literal.split(cased).max_by_key(|p| p.len())?
        } else {
            literal
        };
        if piece.is_empty() {
            // Only cased letters beyond ASCII (a Cyrillic homoglyph): the
            // value holds one too, as lowercasing keeps ASCII text ASCII
            // and turns none of these letters into ASCII (or the piece
            // would have kept it).
            return match target {
                Target::Field(field) if !literal.to_lowercase().is_ascii() => {
                    Some(vec![Atom::NonAscii(field.clone())])
                }
                _ => None,
            };
        }
        let piece = match (case_insensitive, piece.is_ascii()) {
            (true, true) => piece.to_ascii_lowercase(),
            (true, false) => piece.to_lowercase(),
            (false, _) => piece.to_owned(),
        };
        Some(vec![Atom::Text(target.clone(), piece)])
    };
    match matcher {
        IrMatcher::Str {
            pattern,
            case_insensitive,
            ..
        } => {
            // Every literal part between wildcards is required; the longest
            // is the most selective.
            let longest = pattern
                .parts
                .iter()
                .filter_map(|p| match p {
                    IrPatternPart::Literal(text) => Some(text),
                    _ => None,
                })
                .max_by_key(|t| t.len())?;
            text(longest, *case_insensitive)
        }
        // Windash varies only the dashes: the text between them is required.
        IrMatcher::Encoded {
            encodings,
            value,
            case_insensitive,
            ..
        } if encodings.as_slice() == [IrEncoding::Windash] => {
            let longest = value.split(['-', '/']).max_by_key(|t| t.len())?;
            text(longest, *case_insensitive)
        }
        // Base64 (of UTF-16 if asked): the encoding, or for each of the
        // three alignments the characters that depend on the value only.
        IrMatcher::Encoded {
            encodings,
            value,
            case_insensitive,
            ..
        } => {
            let mut out = Vec::new();
            for literal in encoded_literals(encodings, value)? {
                out.extend(text(&literal, *case_insensitive)?);
            }
            Some(out)
        }
        IrMatcher::Regex {
            pattern,
            case_insensitive,
            multiline,
            dotall,
            ..
        } => regex_literals(pattern, *case_insensitive, *multiline, *dotall).map(|literals| {
            literals
                .into_iter()
                .map(|l| Atom::Text(target.clone(), l))
                .collect()
        }),
        IrMatcher::NumericEq(IrNumber::Literal(n)) => match target {
            Target::Field(field) if n.fract() == 0.0 && n.abs() >= 1.0 && n.abs() < MAX_EXACT => {
                Some(vec![Atom::Number(field.clone(), *n as i64)])
            }
            _ => None,
        },
        IrMatcher::AnyOf(children) => {
            let mut out = Vec::new();
            for child in children {
                out.extend(matcher_atoms(child, target)?);
            }
            (!out.is_empty()).then_some(out)
        }
        IrMatcher::AllOf(children) => children
            .iter()
            .filter_map(|c| matcher_atoms(c, target))
            .max_by_key(|atoms| slot_score(atoms)),
        // Ranges, CIDR, negations, field references: no literal of the
        // raw value is implied.
        _ => None,
    }
}

/// Rewrites a rule before it is gated or compiled:
/// - `base64offset` as Sigma defines it (pySigma's modifier): for each
///   alignment, the characters encoding the value's bits alone. rsigma
///   0.23 also keeps the last, partly padded character, so it misses the
///   value whenever other text follows it in the encoded data (nearly
///   always: `IEX (` inside an encoded command). Such items become the
///   three plain `contains`.
/// - Lists of more than 7 `contains` values become an `or` of lists of 7:
///   rsigma builds an Aho-Corasick DFA for a list of 8 or more, and on the
///   SigmaHQ rules those builds were 6% of a hunt over the small corpus
///   and 10 MiB, for lists evaluated a handful of times each (the gate
///   already found one of their values in the field).
fn rewrite(detection: &mut IrDetection) {
    match detection {
        IrDetection::AllOf(items) => items
            .iter_mut()
            .for_each(|item| rewrite_matcher(&mut item.matcher)),
        IrDetection::AnyOf(children) | IrDetection::And(children) => {
            children.iter_mut().for_each(rewrite)
        }
        IrDetection::Keywords(matcher) => rewrite_matcher(matcher),
        IrDetection::ArrayMatch { body, .. } => rewrite(body),
        IrDetection::Conditional { named, .. } => named.values_mut().for_each(rewrite),
    }
}

fn rewrite_matcher(matcher: &mut IrMatcher) {
    match matcher {
        IrMatcher::Encoded {
            encodings,
            value,
            case_insensitive,
            ..
        } if encodings.contains(&IrEncoding::Base64Offset)
            && !encodings.contains(&IrEncoding::Base64) =>
        {
            let Some(literals) = encoded_literals(encodings, value) else {
                return;
            };
            let case_insensitive = *case_insensitive;
            *matcher = IrMatcher::AnyOf(
                literals
                    .into_iter()
                    .map(|literal| IrMatcher::Str {
                        op: IrStrOp::Contains,
                        pattern: IrPattern {
                            parts: vec![IrPatternPart::Literal(literal)],
                        },
                        case_insensitive,
                    })
                    .collect(),
            );
        }
        IrMatcher::Regex { pattern, .. } => {
            if let Some(trimmed) = trim_regex(pattern) {
                *pattern = trimmed;
            }
        }
        IrMatcher::TimestampPart { inner, .. } | IrMatcher::Not(inner) => rewrite_matcher(inner),
        IrMatcher::AnyOf(children) => {
            children.iter_mut().for_each(rewrite_matcher);
            split_contains_lists(children);
        }
        IrMatcher::AllOf(children) => children.iter_mut().for_each(rewrite_matcher),
        _ => {}
    }
}

/// A regex that matches the same values as `pattern`, where its ends are
/// cheaper to compile; `None` when there is nothing to trim.
///
/// Sigma regexes only ever answer "does the value match" (rsigma calls
/// `is_match`), and for an unanchored search a repetition at either end
/// need only match its minimum: `-k\s\w{1,64}(?:\s?(?:-p|-s))?` matches
/// exactly the values `-k\s\w` does (an optional tail matches empty, and
/// the shortest run of `\w` is inside any longer one). That regex, with its
/// 64 copies of Unicode's `\w`, took 29 ms to compile: a tenth of a hunt.
/// Anything else at an end (`^`, `$`, `\b`, a literal, a group) stops
/// the trimming there.
fn trim_regex(pattern: &str) -> Option<String> {
    use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};
    // Under `x`, whitespace in the pattern is not what it seems when printed.
    let groups = pattern.split("(?").skip(1);
    if groups
        .map(|rest| rest.split(|c: char| !c.is_ascii_alphabetic() && c != '-'))
        .any(|mut set| set.next().is_some_and(|f| f.contains('x')))
    {
        return None;
    }
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .ok()?;
    let (mut items, span) = match &ast {
        Ast::Concat(concat) => (concat.asts.clone(), concat.span),
        Ast::Repetition(r) => (vec![ast.clone()], r.span),
        _ => return None,
    };
    // What an end repetition must keep: `None` drops it, `Some(m)` keeps m.
    let minimum = |item: &Ast| match item {
        Ast::Repetition(r) => Some(match &r.op.kind {
            RepetitionKind::ZeroOrOne | RepetitionKind::ZeroOrMore => None,
            RepetitionKind::OneOrMore => Some(1),
            RepetitionKind::Range(RepetitionRange::Exactly(_)) => return None,
            RepetitionKind::Range(RepetitionRange::AtLeast(m) | RepetitionRange::Bounded(m, _)) => {
                (*m > 0).then_some(*m)
            }
        }),
        _ => None,
    };
    let keep = |mut item: Ast, m: u32| -> Ast {
        if let Ast::Repetition(r) = &mut item {
            if m == 1 {
                return (*r.ast).clone();
            }
            r.op.kind = RepetitionKind::Range(RepetitionRange::Exactly(m));
        }
        item
    };
    let mut changed = false;
    while let Some(cut) = items.last().and_then(minimum) {
        let last = items.pop()?;
        changed = true;
        if let Some(m) = cut {
            items.push(keep(last, m));
            break;
        }
    }
    // At the front, past any `(?i)`-style flags, which must stay first.
    let flags = items
        .iter()
        .take_while(|a| matches!(a, Ast::Flags(_)))
        .count();
    while let Some(cut) = items.get(flags).and_then(minimum) {
        let first = items.remove(flags);
        changed = true;
        if let Some(m) = cut {
            items.insert(flags, keep(first, m));
            break;
        }
    }
    // A run of `m` of any character (`.{1000,}`: "an unusually long
    // command line") exists exactly when some line is that long, with or
    // without `s`: anchored at line starts, the unanchored search no
    // longer tracks a run starting at every position (1.4 ms per value).
    let dot_run = matches!(items.as_slice(), [Ast::Repetition(r)]
        if matches!(*r.ast, Ast::Dot(_))
            && matches!(r.op.kind, RepetitionKind::Range(RepetitionRange::Exactly(m)) if m > 1));
    if !changed && !dot_run {
        return None;
    }
    let ast = Ast::concat(regex_syntax::ast::Concat { span, asts: items });
    let mut out = String::new();
    regex_syntax::ast::print::Printer::new()
        .print(&ast, &mut out)
        .ok()?;
    if dot_run {
        out.insert_str(0, "(?m:^)");
    }
    // A pattern that would not compile is left as the rule wrote it.
    regex_syntax::Parser::new().parse(&out).ok()?;
    Some(out)
}

/// Regroups a list of more than 7 plain `contains` values (see [`rewrite`]).
fn split_contains_lists(children: &mut Vec<IrMatcher>) {
    const GROUP: usize = 7;
    let plain = children
        .iter()
        .filter(|m| matches!(m, IrMatcher::Str { op: IrStrOp::Contains, pattern, .. } if pattern.is_plain()))
        .count();
    if plain <= GROUP {
        return;
    }
    let all = std::mem::take(children);
    let mut groups: Vec<IrMatcher> = Vec::new();
    let mut rest = all.into_iter().peekable();
    while rest.peek().is_some() {
        groups.push(IrMatcher::AnyOf(rest.by_ref().take(GROUP).collect()));
    }
    *children = groups;
}

/// Text that must occur in a value matched by a `base64` or `base64offset`
/// item (UTF-16 first with `wide`, `utf16`, `utf16be`): the encoding itself,
/// or for each alignment the run of characters made of the value's bits
/// alone. `None` for other encodings and for values too short to leave a
/// run at every alignment.
fn encoded_literals(encodings: &[IrEncoding], value: &str) -> Option<Vec<String>> {
    use base64::Engine as _;
    let utf16 = |be: bool| -> Vec<u8> {
        value
            .encode_utf16()
            .flat_map(|u| if be { u.to_be_bytes() } else { u.to_le_bytes() })
            .collect()
    };
    let (mut base64, mut offsets) = (false, false);
    let mut bytes = value.as_bytes().to_vec();
    for encoding in encodings {
        match encoding {
            IrEncoding::Wide => bytes = utf16(false),
            IrEncoding::Utf16Be => bytes = utf16(true),
            IrEncoding::Utf16 => bytes = [[0xFF, 0xFE].as_slice(), &utf16(false)].concat(),
            IrEncoding::Base64 => base64 = true,
            IrEncoding::Base64Offset => offsets = true,
            IrEncoding::Windash => return None,
        }
    }
    let encoded = |offset: usize| {
        let mut padded = vec![0; offset];
        padded.extend_from_slice(&bytes);
        base64::engine::general_purpose::STANDARD.encode(padded)
    };
    if base64 {
        return (!bytes.is_empty()).then(|| vec![encoded(0)]);
    }
    if !offsets {
        return None;
    }
    (0..3_usize)
        .map(|offset| {
            // Character k carries bits 6k..6k+6 of the padded bytes.
            let first = (offset * 8).div_ceil(6);
            let end = ((offset + bytes.len()) * 8) / 6;
            (first < end).then(|| encoded(offset)[first..end].to_owned())
        })
        .collect()
}

/// Literals one of which every match of the regex contains,
/// ASCII-lowercased: the most selective run of literal parts of its
/// top-level concatenation, or literal prefixes of another part (so
/// `\.exe\s+.*werfaultsecure\.exe` gates on `werfaultsecure.exe`, not on
/// `.exe`). `None` when no part has a finite set of non-empty prefixes
/// (`.*x`, `\w+`).
fn regex_literals(
    pattern: &str,
    case_insensitive: bool,
    multiline: bool,
    dotall: bool,
) -> Option<Vec<String>> {
    use regex_syntax::hir::HirKind;
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(case_insensitive)
        .multi_line(multiline)
        .dot_matches_new_line(dotall)
        .build()
        .parse(pattern)
        .ok()?;
    let mut top = &hir;
    while let HirKind::Capture(capture) = top.kind() {
        top = &capture.sub;
    }
    let parts = match top.kind() {
        HirKind::Concat(parts) => parts.as_slice(),
        _ => std::slice::from_ref(top),
    };
    // Parts that each stand for one text (a literal; under `(?i)` a class
    // of one letter's cases) join into runs; other parts offer their own
    // prefixes (an alternation, a repetition).
    let mut best: Option<(Vec<String>, (usize, usize))> = None;
    let mut consider = |literals: Option<Vec<String>>| {
        let Some(literals) = literals else { return };
        let shortest = literals.iter().map(String::len).min().unwrap_or(0);
        let score = (shortest.min(8), usize::MAX - literals.len());
        if best.as_ref().is_none_or(|(_, s)| score > *s) {
            best = Some((literals, score));
        }
    };
    let mut run = String::new();
    for part in parts {
        match one_text(part) {
            Some(text) => run.push_str(&text),
            None => {
                if !run.is_empty() {
                    consider(Some(vec![std::mem::take(&mut run)]));
                }
                consider(prefix_literals(part));
            }
        }
    }
    if !run.is_empty() {
        consider(Some(vec![run]));
    }
    best.map(|(literals, _)| literals)
}

/// The one text a regex part matches, ASCII-lowercased: a literal, or a
/// class of one character's ASCII cases (and characters that fold into
/// them, which [`folds_into_plain`] covers).
fn one_text(part: &regex_syntax::hir::Hir) -> Option<String> {
    use regex_syntax::hir::{Class, HirKind};
    match part.kind() {
        HirKind::Literal(literal) => {
            let text = std::str::from_utf8(&literal.0).ok()?;
            (!text.chars().any(folds_into_plain)).then(|| text.to_ascii_lowercase())
        }
        HirKind::Class(Class::Unicode(class)) => {
            let mut chars = class
                .ranges()
                .iter()
                .flat_map(|r| r.start()..=r.end())
                .filter(|&c| !folds_into_plain(c))
                .map(|c| c.to_ascii_lowercase());
            let first = chars.next()?;
            (first.is_ascii() && chars.all(|c| c == first)).then(|| first.to_string())
        }
        _ => None,
    }
}

/// Literals one of which every match of `hir` starts with. A variant
/// holding a character that folds into ASCII (`(?i)k` also matches the
/// Kelvin sign) is left out: a value with such a character has every rule
/// of the field evaluated anyway (see [`folds_into_plain`]).
fn prefix_literals(hir: &regex_syntax::hir::Hir) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let mut out: Vec<String> = Vec::new();
    for literal in seq.literals()? {
        let text = std::str::from_utf8(literal.as_bytes()).ok()?;
        if text.is_empty() {
            return None;
        }
        if text.chars().any(folds_into_plain) {
            continue;
        }
        let text = text.to_ascii_lowercase();
        if !out.contains(&text) {
            out.push(text);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The prefilter must never change what fires: over the whole attack corpus
/// and the SigmaHQ Windows rules, every routed event gets exactly the rules
/// rsigma's own `Engine` (its candidate index, no prefilter of ours) gives.
#[cfg(test)]
mod windows {
    use super::{Anchors, draws};

    /// Every occurrence, overlapping, any case, of anchors of 1 to 4 bytes
    /// (non-ASCII bytes too), as a naive search finds them.
    #[test]
    fn anchors_are_found_where_a_naive_search_finds_them() {
        let anchors: &[&[u8]] = &[b"a", b"ab", b"aba", b"abab", b"\\x", b"\xc3\xa9", b"e.ex"];
        let index = Anchors::new(anchors);
        let mut next = draws(0x2545_f491);
        let alphabet = b"aAbB\\xX\xc3\xa9e.";
        for _ in 0..2000 {
            let haystack: Vec<u8> = (0..next(13))
                .map(|_| alphabet[next(alphabet.len())])
                .collect();
            let lower = haystack.to_ascii_lowercase();
            let mut expected: Vec<u32> = (1..=lower.len())
                .flat_map(|end| {
                    let lower = &lower[..end];
                    (0..anchors.len() as u32)
                        .filter(move |&id| lower.ends_with(anchors[id as usize]))
                })
                .collect();
            let mut found = Vec::new();
            index.find(&haystack, |id, len, end| {
                assert_eq!(len, anchors[id as usize].len());
                assert!(lower[..end].ends_with(anchors[id as usize]));
                found.push(id);
            });
            expected.sort_unstable();
            found.sort_unstable();
            assert_eq!(found, expected, "{haystack:?}");
        }
    }
}

/// Pseudo-random draws below `n` (xorshift), the same every run. The state
/// advances on every draw, a length of 0 included (a test's generator
/// once stuck at empty haystacks after drawing one).
#[cfg(test)]
pub(crate) fn draws(seed: u32) -> impl FnMut(usize) -> usize {
    let mut state = seed;
    move |n| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as usize % n
    }
}

#[cfg(test)]
mod marks {
    use super::{Bits, Target, field_index};

    /// A value marks exactly the rules of the literals it holds, in any
    /// ASCII case, wherever they are and however their anchors fall.
    #[test]
    fn values_mark_the_rules_of_the_literals_they_hold() {
        let literals = [
            "abab", "babab", "ab", "xabx", "a.ex", "\\x.e", "bbbbbb", "aab.", "é.a", "xxab", "b",
            "ababx", "abab.e", "xxab\\",
        ];
        let index_of = |literals: &[&str]| {
            field_index(
                Target::Keywords,
                literals
                    .iter()
                    .zip(0..)
                    .map(|(l, i)| (l.to_string(), vec![Bits::code(i, 0)]))
                    .collect(),
            )
        };
        let index = index_of(&literals);
        // Some anchors are not where their literals start.
        assert!(
            index
                .rules_of
                .iter()
                .flatten()
                .any(|(_, offset, _)| *offset > 0)
        );
        // A second index over other literals: the memo of long values
        // must keep each index's marks apart.
        let others = ["bbbb", "x.e\\", "aaaa"];
        let other = index_of(&others);
        // An index whose every literal has a byte no format value has:
        // values of format bytes only (here a, b, e, x, dots) are skipped.
        let unformatted = ["x\\", "\\a.b", "é", "b\\ax", "aab\\"];
        let skipping = index_of(&unformatted);
        assert!(skipping.skips_format && !index.skips_format && !other.skips_format);
        let mut next = super::draws(0x9e37_79b9);
        let alphabet = ["a", "A", "b", "B", "x", ".", "e", "\\", "é"];
        let mut text =
            |len: usize| -> String { (0..len).map(|_| alphabet[next(alphabet.len())]).collect() };
        // Long values met again and again, as in a log, and short ones.
        let pool: Vec<String> = (0..64).map(|i| text(32 + i)).collect();
        let mut pick = super::draws(7);
        for round in 0..20_000 {
            let haystack = match round % 2 {
                0 => text(pick(15)),
                _ => pool[pick(pool.len())].clone(),
            };
            let lower = haystack.to_ascii_lowercase();
            for (index, literals) in [
                (&index, &literals[..]),
                (&other, &others[..]),
                (&skipping, &unformatted[..]),
            ] {
                let mut bits = Bits::new(literals.len());
                index.mark(&haystack, &mut bits);
                for (i, literal) in literals.iter().enumerate() {
                    let marked = bits.get(Bits::code(i as u32, 0));
                    assert_eq!(
                        marked,
                        lower.contains(literal),
                        "{literal:?} in {haystack:?}"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod regexes {
    use super::{regex_literals, trim_regex};

    #[test]
    fn trimmed_regexes_match_what_the_whole_regex_matches() {
        assert_eq!(
            trim_regex(r"-k\s\w{1,64}(?:\s?(?:-p|-s))?").as_deref(),
            Some(r"-k\s\w")
        );
        assert_eq!(trim_regex(r".{1000,}").as_deref(), Some(r"(?m:^).{1000}"));
        assert_eq!(trim_regex(r".{150}").as_deref(), Some(r"(?m:^).{150}"));
        assert_eq!(
            trim_regex(r"(?i)\w+x\d{2,10}").as_deref(),
            Some(r"(?i)\wx\d{2}")
        );
        assert_eq!(trim_regex(r"a*").as_deref(), Some(""));
        assert_eq!(trim_regex(r"a+$").as_deref(), Some(r"a$"));
        // Anchors, boundaries and exact counts hold their end.
        for kept in [
            r"^a+$", r"\ba+\b", r"x\d{3}", r"a+b|c+", r"(a+)", r"(?x) a+",
        ] {
            assert_eq!(trim_regex(kept), None, "{kept}");
        }
        let patterns = [
            r"-k\s\w{1,64}(?:\s?(?:-p|-s))?",
            r#"\.exe[\"\']?\s+[^\"]{0,64}a\.exe[\"\']?\s+\d{2,10}"#,
            r"a{2,}b*",
            r"\s*b+?a{3,5}",
            r"(?:ab|b)+a?",
            r"[^a]{1,3}b{0,2}",
            r"(?i)\w+é\d{2,10}",
            r"(?s).{2,4}",
            r".{3,}",
            r".{4}",
            r"\ba+",
            r"s+$",
        ];
        let alphabet: Vec<char> = "ab-kps \t\n\"'.exé1234_Aé".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for pattern in patterns {
            let trimmed = trim_regex(pattern).expect("trims");
            // rsigma sets `i`, `m` and `s` from the rule's modifiers.
            for flags in 0..8 {
                let build = |p: &str| {
                    regex::RegexBuilder::new(p)
                        .case_insensitive(flags & 1 != 0)
                        .multi_line(flags & 2 != 0)
                        .dot_matches_new_line(flags & 4 != 0)
                        .build()
                        .expect("compiles")
                };
                let (whole, cut) = (build(pattern), build(&trimmed));
                for _ in 0..2000 {
                    let len = next(20);
                    let hay: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
                    assert_eq!(
                        whole.is_match(&hay),
                        cut.is_match(&hay),
                        "{pattern} vs {trimmed} on {hay:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_most_selective_literal_anywhere_in_the_regex_gates() {
        let of = |pattern: &str, ci: bool| regex_literals(pattern, ci, false, false);
        assert_eq!(
            of(r"\.exe\s+[^x]{0,64}werfaultsecure\.exe\s+\d+", false).expect("literal"),
            ["werfaultsecure.exe"]
        );
        let folded = of(r"\.exe\s+[^x]{0,64}werfaultsecure\.exe", true).expect("literal");
        // Case variants multiply: the extractor keeps fewer letters.
        assert!(
            folded
                .iter()
                .all(|l| l.len() >= 7 && "werfaultsecure.exe".contains(l.as_str())),
            "{folded:?}"
        );
        assert_eq!(of("(?:set).*&&", true).expect("literal"), ["set"]);
        assert_eq!(of(r"\w+`(?:\w+|-|.)`", false).expect("literal"), ["`"]);
        assert_eq!(
            of(r"(vssadmin|wbadmin)\s+delete", false).expect("literal"),
            ["vssadmin", "wbadmin"]
        );
        assert_eq!(of(r"\w+\d", false), None);
    }
}

#[cfg(test)]
mod encodings {
    use rsigma_ir::IrEncoding::{Base64, Base64Offset, Wide, Windash};

    use super::encoded_literals;

    /// The literals pySigma's `base64offset` gives (its documented example
    /// and `IEX (`, as computed by pySigma's slicing).
    #[test]
    fn base64offset_literals_are_pysigmas() {
        let of = |encodings: &[rsigma_ir::IrEncoding], value: &str| {
            encoded_literals(encodings, value).expect("literals")
        };
        assert_eq!(
            of(&[Base64Offset], "/bin/bash"),
            ["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
        assert_eq!(of(&[Base64Offset], "IEX ("), ["SUVYIC", "lFWCAo", "JRVggK"]);
        assert_eq!(
            of(&[Wide, Base64Offset], "IEX ("),
            ["SQBFAFgAIAAoA", "kARQBYACAAKA", "JAEUAWAAgACgA"]
        );
        assert_eq!(of(&[Base64], "whoami"), ["d2hvYW1p"]);
        assert_eq!(encoded_literals(&[Base64Offset], "a"), None);
        assert_eq!(encoded_literals(&[Windash, Base64Offset], "a-b"), None);
    }
}

#[cfg(test)]
mod folding {
    use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};

    use super::{caseless, folds_into_plain};

    /// What a literal may hold (ASCII, caseless characters) is reached under
    /// the regex crate's case folding (`(?i)`, used for wildcards and `|re|i`)
    /// only from the characters [`folds_into_plain`] names.
    #[test]
    fn only_the_named_characters_fold_into_plain_text() {
        let plain = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|&c| c.is_ascii() || caseless(c))
            .map(|c| ClassUnicodeRange::new(c, c));
        let plain = ClassUnicode::new(plain);
        let mut folded = plain.clone();
        folded.case_fold_simple();
        folded.difference(&plain);
        let reached: Vec<char> = folded
            .ranges()
            .iter()
            .flat_map(|r| r.start()..=r.end())
            .collect();
        assert!(reached.contains(&'\u{212A}'), "{reached:?}");
        for c in reached {
            assert!(folds_into_plain(c), "{c:?} U+{:04X}", c as u32);
        }
        assert!(folds_into_plain('\u{130}') && folds_into_plain('\u{17F}'));
        assert!(!folds_into_plain('\u{AE}') && !folds_into_plain('\u{421}'));
    }
}

#[cfg(test)]
mod differential {
    use std::path::PathBuf;
    use std::sync::Mutex;

    use rsigma_eval::Engine;

    use crate::record::{EventView, Record};
    use crate::source::{Format, ReadContext, RecordSink, read_file};
    use crate::{RuleLoader, discover};

    #[derive(Default)]
    struct Records(Mutex<Vec<Record>>);

    impl RecordSink for Records {
        fn records(&self, _: &str, records: Vec<Record>) {
            self.0.lock().expect("lock").extend(records);
        }
        fn damaged(&self, _: &str, _: u64, _: String) {}
        fn failed(&self, _: &str, _: String) {}
        fn unsupported(&self, _: &str) {}
        fn bytes_read(&self, _: u64) {}
        fn file_started(&self, _: &str, _: Format) {}
    }

    #[test]
    fn findings_equal_rsigma_engine_on_the_corpus() {
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        if !data.join("evtx-attack-samples").is_dir() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {} is missing",
                data.display()
            );
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipping: ../shared/data not found\n",
            );
            return;
        }
        let sigma = data.join("sigma");
        let cache = tempfile::tempdir().expect("tempdir");
        let load = |cached: bool| {
            let loader = RuleLoader::new()
                .path(sigma.join("rules/windows"))
                .path(sigma.join("rules-emerging-threats"))
                .path(sigma.join("rules-threat-hunting"));
            let loader = if cached {
                loader.cache_dir(cache.path())
            } else {
                loader
            };
            loader.load().expect("rules")
        };
        // The reference engines are compiled from rules as parsed; ours
        // come from the rule cache, heads and gates decoded, IR on demand.
        let parsed = load(false);
        load(true);
        let rules = load(true);
        assert!(rules.counts().cached_files > 2000, "{:?}", rules.counts());
        assert_eq!(rules.output.buckets.len(), parsed.output.buckets.len());
        let engines: Vec<Engine> = parsed
            .output
            .buckets
            .iter()
            .map(|bucket| {
                let mut engine = Engine::new();
                engine.extend_compiled_rules(bucket.rules().iter().map(|r| {
                    r.with_ir(|ir| rsigma_eval::compile_to_compiled(ir).expect("compiles"))
                        .expect("not compiled yet")
                }));
                engine
            })
            .collect();
        let sink = Records::default();
        let ctx = ReadContext {
            sink: &sink,
            limits: Default::default(),
            syslog_year: 2024,
        };
        for evidence in discover(&[data.join("evtx-attack-samples")]).expect("corpus") {
            read_file(&evidence, &ctx);
        }
        let records = sink.0.into_inner().expect("lock");
        assert!(records.len() > 10_000, "{} records", records.len());
        let ids = |results: Vec<rsigma_eval::EvaluationResult>| {
            let mut ids: Vec<String> = results
                .into_iter()
                .map(|r| r.header.rule_id.unwrap_or(r.header.rule_title))
                .collect();
            ids.sort();
            ids
        };
        let mut matches = 0;
        for record in &records {
            let keywords = super::KeywordHits::new(&rules.output.keywords);
            rules
                .output_router
                .for_each_target(record, |bucket, renames| {
                    let view = EventView::new(record, renames);
                    let ours = ids(rules.output.buckets[bucket].evaluate(&view, &keywords));
                    let reference = ids(engines[bucket].evaluate(&view));
                    assert_eq!(ours, reference, "event {}", record.fields);
                    matches += ours.len();
                });
        }
        assert!(matches > 1000, "{matches} matches");
    }
}
