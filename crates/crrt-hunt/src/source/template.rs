//! EVTX records flattened straight from their BinXML template and
//! substitution values, without rendering JSON and parsing it back.
//!
//! A record is a template (its XML shape, defined again in every chunk)
//! and the values that fill it. Rendering it to JSON and parsing that again
//! was most of what reading a record cost: evtx's rendering ~55% of its
//! parse floor, our parse of the text more again. Here a template is read
//! once per thread into a [`Plan`] (the inserts into the flat record, in
//! the order the JSON way makes them, each naming a value or a literal) and
//! recognised by its content in every later chunk; a record is then its
//! values put in place, read as evtx's compiled rendering reads them.
//!
//! Only the common shape is planned: `Event` with `System` and an
//! `EventData` of named `Data`, written in the template or nested as a
//! template instance in a value (Sysmon, Security, PowerShell: 93% of the
//! corpus's records). Anything else (`UserData`, unnamed or repeated
//! `Data`, arrays, reals, ANSI strings) returns `None` and the record goes
//! the JSON way: nothing is guessed. A test holds both ways equal on every
//! record of the corpus.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::sync::Arc;

use evtx::{EvtxChunk, EvtxRecord, EvtxRecordHeader, Timestamp};
use serde_json::Value;

use crate::record::{Fields, Record};

/// How the records of one template become flat fields.
pub(crate) struct Plan {
    /// Whether the template is an `Event` (else it is an `EventData`,
    /// found nested in an event's value).
    event: bool,
    /// Whether its names are all different (else, or after another plan's
    /// fields, each is looked for before it is added).
    unique: bool,
    items: Vec<Item>,
}

struct Item {
    key: Arc<str>,
    what: What,
    /// The element's DependencyId: when that value is NULL the element is
    /// left out (Windows' optional elements).
    depends: Option<u16>,
}

#[derive(Clone)]
enum Src {
    Text(Box<str>),
    Slot(u16),
}

enum What {
    /// An attribute of a `System` element: left out when empty.
    Attr(Src),
    /// A leaf element of `System` or `EventData`: `null` when empty.
    Leaf(Src),
    /// `EventID`: a number, or nothing when it is not one (or empty, with
    /// or without its `Qualifiers`).
    EventId(Src),
    /// A named `Data`: `""` when empty.
    Data(Src),
    /// A value holding a BinXML fragment: the `EventData` of most events
    /// is a template instance of its own, nested in the event's values.
    Nested(u16),
    /// A value the event depends on: NULL sends the record the JSON way.
    Required(u16),
}

/// A record's fields as they are put in place.
type Flat = Vec<(Arc<str>, Value)>;

/// Plans by template definition offset, for one chunk.
pub(crate) type Plans = HashMap<u32, Option<Rc<Plan>>, foldhash::fast::FixedState>;

thread_local! {
    /// Plans made on this thread, by their template's content (tokens and
    /// the names they use, wherever the chunk stores them). Every chunk
    /// defines its templates again, with its own string table; read once,
    /// a template is only recognised after that, in every chunk and file.
    static SEEN: RefCell<HashMap<u64, Option<Rc<Plan>>, foldhash::fast::FixedState>> =
        RefCell::default();
}

/// Templates remembered per thread before starting over.
const MAX_SEEN: usize = 4096;

/// One substitution value: its BinXML type and bytes.
#[derive(Clone, Copy)]
struct Raw<'a> {
    ty: u8,
    bytes: &'a [u8],
    /// Where the bytes start in the chunk (a nested instance's inline
    /// definition is found by its position).
    at: usize,
}

/// A template instance: its definition's offset and its values.
struct Instance<'a> {
    def: u32,
    values: Vec<Raw<'a>>,
}

/// BinXML value types (MS-EVEN6 2.2.3.1) this reads.
mod ty {
    pub const NULL: u8 = 0x00;
    pub const STRING: u8 = 0x01;
    pub const BOOL: u8 = 0x0d;
    pub const BINARY: u8 = 0x0e;
    pub const GUID: u8 = 0x0f;
    pub const FILETIME: u8 = 0x11;
    pub const SYSTIME: u8 = 0x12;
    pub const SID: u8 = 0x13;
    pub const HEX32: u8 = 0x14;
    pub const HEX64: u8 = 0x15;
    pub const BINXML: u8 = 0x21;
}

/// A chunk's records flattened from their templates, walked as evtx walks
/// them (from the chunk header to the free space or the last record),
/// into `out`. `true` when that was all of them; `false` at the first
/// record that is not planned or not readable, with the records before it
/// in `out`: the caller reads the rest through evtx.
pub(crate) fn flatten_chunk(
    chunk: &EvtxChunk<'_>,
    plans: &mut Plans,
    out: &mut Vec<Record>,
) -> bool {
    let data = chunk.data;
    let live_end = usize::try_from(chunk.header.free_space_offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    let mut offset = CHUNK_HEADER;
    while offset < live_end {
        let Ok(header) = EvtxRecordHeader::from_bytes_at(data, offset) else {
            return false;
        };
        let Ok(size) = header.record_data_size() else {
            return false;
        };
        let start = offset + RECORD_HEADER;
        let end = start + size as usize;
        if end > data.len() {
            return false;
        }
        let Some(record) = flatten(
            data,
            start..end,
            header.event_record_id,
            header.timestamp,
            plans,
        ) else {
            return false;
        };
        out.push(record);
        if header.event_record_id == chunk.header.last_event_record_id {
            break;
        }
        offset += header.data_size as usize;
    }
    true
}

/// Where a chunk's first record starts, and a record's BinXML.
const CHUNK_HEADER: usize = 512;
const RECORD_HEADER: usize = 24;

/// One record that evtx read flattened from its template, or `None` when
/// it is not of a planned shape.
pub(crate) fn flatten_record(record: &EvtxRecord<'_>, plans: &mut Plans) -> Option<Record> {
    let start = usize::try_from(record.binxml_offset).ok()?;
    let end = start.checked_add(record.binxml_size as usize)?;
    flatten(
        record.chunk.data,
        start..end,
        record.event_record_id,
        record.timestamp,
        plans,
    )
}

/// The record whose BinXML is `chunk[binxml]` flattened from its
/// template, or `None` when it is not of a planned shape.
fn flatten(
    chunk: &[u8],
    binxml: std::ops::Range<usize>,
    id: u64,
    header_time: Timestamp,
    plans: &mut Plans,
) -> Option<Record> {
    let instance = single_instance(chunk, binxml.start, binxml.end)?;
    let mut flat = Vec::with_capacity(32);
    apply(chunk, &instance, plans, true, &mut flat)?;
    let mut record = crate::windows::flat_record(Fields::Flat(flat), id);
    // As the JSON way: the event's own TimeCreated, else the record header's.
    record.timestamp.get_or_insert(header_time);
    Some(record)
}

/// Puts an instance's values in place by its template's plan.
fn apply(
    chunk: &[u8],
    instance: &Instance<'_>,
    plans: &mut Plans,
    event: bool,
    flat: &mut Flat,
) -> Option<()> {
    let plan = match plans.get(&instance.def) {
        Some(plan) => plan.clone()?,
        None => {
            let plan = Plan::find(chunk, instance.def);
            plans.insert(instance.def, plan.clone());
            plan?
        }
    };
    if plan.event != event {
        return None;
    }
    plan.apply(chunk, &instance.values, plans, flat)
}

impl Plan {
    fn apply(
        &self,
        chunk: &[u8],
        values: &[Raw<'_>],
        plans: &mut Plans,
        flat: &mut Flat,
    ) -> Option<()> {
        let check = !self.unique || !flat.is_empty();
        for item in &self.items {
            if let Some(slot) = item.depends
                && is_null(values.get(usize::from(slot))?)
            {
                continue;
            }
            let value = match &item.what {
                What::Attr(src) => match resolve(src, values)? {
                    None => continue,
                    Some(value) => value,
                },
                What::Leaf(src) => resolve(src, values)?.unwrap_or(Value::Null),
                What::Data(src) => resolve(src, values)?.unwrap_or_else(|| Value::from("")),
                What::EventId(src) => {
                    let id = match resolve(src, values)? {
                        Some(Value::Number(n)) => n.as_u64(),
                        Some(Value::String(s)) => s.trim().parse().ok(),
                        _ => None,
                    };
                    match id {
                        Some(id) => Value::from(id),
                        None => continue,
                    }
                }
                What::Required(slot) => {
                    if is_null(values.get(usize::from(*slot))?) {
                        return None;
                    }
                    continue;
                }
                What::Nested(slot) => {
                    let raw = values.get(usize::from(*slot))?;
                    if is_null(raw) {
                        continue;
                    }
                    if raw.ty != ty::BINXML {
                        return None;
                    }
                    let nested = single_instance(chunk, raw.at, raw.at + raw.bytes.len())?;
                    apply(chunk, &nested, plans, false, flat)?;
                    continue;
                }
            };
            match check
                .then(|| flat.iter_mut().find(|(key, _)| **key == *item.key))
                .flatten()
            {
                // A name met again: its value replaced where it stands, as
                // a JSON object's insert does.
                Some((_, old)) => *old = value,
                None => flat.push((Arc::clone(&item.key), value)),
            }
        }
        Some(())
    }
}

/// What evtx counts as NULL for a dependency or a nested slot.
fn is_null(raw: &Raw<'_>) -> bool {
    raw.ty == ty::NULL || (raw.ty == ty::BINXML && raw.bytes.is_empty())
}

/// The template instance a BinXML stream (`chunk[start..end]`) is made
/// of, when it is one and nothing else, as evtx's compiled rendering
/// takes it.
fn single_instance(chunk: &[u8], start: usize, end: usize) -> Option<Instance<'_>> {
    let stream = chunk.get(start..end)?;
    let after_token = match stream {
        [0x0f, _, _, _, 0x0c, _, ..] => 5,
        [0x0c, ..] => 1,
        _ => return None,
    };
    let mut at = start + after_token;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(chunk.get(at..at + 4)?.try_into().ok()?))
    };
    // Unknown byte, template id, definition offset.
    let def = u32_at(at + 5)?;
    at += 9;
    if at == usize::try_from(def).ok()? {
        // The definition is stored here: skip its header and body.
        at += TEMPLATE_HEADER + usize::try_from(u32_at(at + 20)?).ok()?;
    }
    let n = usize::try_from(u32_at(at)?).ok()?;
    at += 4;
    let descriptors = chunk.get(at..at.checked_add(n.checked_mul(4)?)?)?;
    at += n * 4;
    let mut values = Vec::with_capacity(n);
    for d in descriptors.as_chunks::<4>().0 {
        let len = usize::from(u16::from_le_bytes([d[0], d[1]]));
        let bytes = chunk.get(at..at + len)?;
        values.push(Raw {
            ty: d[2],
            bytes,
            at,
        });
        at += len;
    }
    // The stream ends there, or with an end-of-file token.
    match chunk.get(at..end)? {
        [] | [0x00, ..] => Some(Instance { def, values }),
        _ => None,
    }
}

/// A value as evtx's JSON has it once parsed: `Some(None)` when empty,
/// `None` when this value is not one the plan can put in place.
fn resolve(src: &Src, values: &[Raw<'_>]) -> Option<Option<Value>> {
    match src {
        Src::Text(text) if text.is_empty() => Some(None),
        Src::Text(text) => Some(Some(Value::String(text.to_string()))),
        Src::Slot(slot) => json(values.get(usize::from(*slot))?),
    }
}

/// One substitution value as evtx's compiled rendering writes it to JSON
/// (`write_raw_value_text`, `json_bare_type`): integers and booleans bare,
/// everything else a string; `Some(None)` for what it counts as empty.
/// Sizes are checked as its pre-flight does.
fn json(raw: &Raw<'_>) -> Option<Option<Value>> {
    let b = raw.bytes;
    let fixed = |n: usize| (b.len() == n).then_some(());
    let value = match raw.ty {
        ty::NULL => return Some(None),
        ty::STRING => {
            let units = b.as_chunks::<2>();
            if !units.1.is_empty() {
                return None;
            }
            // Up to the first NUL, as evtx does.
            let units = units.0;
            let end = units
                .iter()
                .position(|u| *u == [0, 0])
                .unwrap_or(units.len());
            if end == 0 {
                return Some(None);
            }
            // Unpaired surrogates: left to the JSON way, whatever it does.
            Value::String(utf16(&units[..end])?)
        }
        0x03 => Value::from(i8::from_le_bytes(b.try_into().ok()?)),
        0x04 => Value::from(u8::from_le_bytes(b.try_into().ok()?)),
        0x05 => Value::from(i16::from_le_bytes(b.try_into().ok()?)),
        0x06 => Value::from(u16::from_le_bytes(b.try_into().ok()?)),
        0x07 => Value::from(i32::from_le_bytes(b.try_into().ok()?)),
        0x08 => Value::from(u32::from_le_bytes(b.try_into().ok()?)),
        0x09 => Value::from(i64::from_le_bytes(b.try_into().ok()?)),
        0x0a => Value::from(u64::from_le_bytes(b.try_into().ok()?)),
        ty::BOOL => match i32::from_le_bytes(b.try_into().ok()?) {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            // Kept as an integer by evtx.
            raw => Value::from(raw),
        },
        ty::BINARY if b.is_empty() => return Some(None),
        ty::BINARY => {
            let mut text = String::with_capacity(b.len() * 2);
            for byte in b {
                text.push(HEX_UPPER[usize::from(byte >> 4)] as char);
                text.push(HEX_UPPER[usize::from(byte & 15)] as char);
            }
            Value::String(text)
        }
        ty::GUID => Value::String(guid(b.try_into().ok()?)),
        ty::FILETIME => Value::String(filetime(u64::from_le_bytes(b.try_into().ok()?))?),
        ty::SYSTIME => {
            fixed(16)?;
            let f = |i: usize| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]);
            Value::String(systime([f(0), f(1), f(3), f(4), f(5), f(6), f(7)])?)
        }
        ty::SID => Value::String(sid_text(b)?),
        ty::HEX32 => Value::String(hex(u64::from(u32::from_le_bytes(b.try_into().ok()?)))),
        ty::HEX64 => Value::String(hex(u64::from_le_bytes(b.try_into().ok()?))),
        // ANSI strings (the chunk's code page), reals (evtx's float
        // formatting), SizeT, arrays, fragments out of place, handles:
        // the JSON way.
        _ => return None,
    };
    Some(Some(value))
}

/// UTF-16LE code units as a string; `None` for unpaired surrogates. Most
/// values are ASCII: four units at a time are checked and narrowed.
fn utf16(units: &[[u8; 2]]) -> Option<String> {
    let mut bytes = Vec::with_capacity(units.len());
    let (quads, _) = units.as_chunks::<4>();
    let mut ascii = 0;
    for quad in quads {
        let word = u64::from_le_bytes(*quad.as_flattened().as_array()?);
        if word & 0xFF80_FF80_FF80_FF80 != 0 {
            break;
        }
        bytes.extend_from_slice(&[quad[0][0], quad[1][0], quad[2][0], quad[3][0]]);
        ascii += 4;
    }
    for unit in &units[ascii..] {
        if unit[1] != 0 || unit[0] >= 0x80 {
            break;
        }
        bytes.push(unit[0]);
        ascii += 1;
    }
    // ASCII so far: valid UTF-8.
    let mut out = String::from_utf8(bytes).ok()?;
    if ascii < units.len() {
        let rest = units[ascii..].iter().map(|u| u16::from_le_bytes(*u));
        for c in char::decode_utf16(rest) {
            out.push(c.ok()?);
        }
    }
    Some(out)
}

/// `n` in decimal.
fn decimal(out: &mut String, n: u64) {
    let width = n.checked_ilog10().map_or(1, |log| log as usize + 1);
    digits(out, n, width);
}

/// `n` as `0x` and lowercase hex digits, as evtx writes HexInt values.
fn hex(n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let width = (64 - n.leading_zeros() as usize).div_ceil(4).max(1);
    let mut out = String::with_capacity(2 + width);
    out.push_str("0x");
    for i in (0..width).rev() {
        out.push(HEX[((n >> (4 * i)) & 15) as usize] as char);
    }
    out
}

/// `n` as `width` decimal digits, zero-padded.
fn digits(out: &mut String, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut n = n;
    for i in (0..width).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend(buf[..width].iter().map(|&b| b as char));
}

/// `YYYY-MM-DDTHH:MM:SS.fffffffZ`, as Windows renders times.
fn datetime(fields: [u64; 7]) -> String {
    let mut out = String::with_capacity(28);
    for (value, (width, after)) in fields.into_iter().zip([
        (4, '-'),
        (2, '-'),
        (2, 'T'),
        (2, ':'),
        (2, ':'),
        (2, '.'),
        (7, 'Z'),
    ]) {
        digits(&mut out, value, width);
        out.push(after);
    }
    out
}

/// A SID as `S-R-A-S1-..-Sn`; `None` unless its length is what its
/// sub-authority count says (evtx's pre-flight).
fn sid_text(b: &[u8]) -> Option<String> {
    let &[revision, count, a0, a1, a2, a3, a4, a5, ref subs @ ..] = b else {
        return None;
    };
    if subs.len() != 4 * usize::from(count) {
        return None;
    }
    let authority = u64::from_be_bytes([0, 0, a0, a1, a2, a3, a4, a5]);
    let mut out = String::with_capacity(48);
    out.push_str("S-");
    decimal(&mut out, u64::from(revision));
    out.push('-');
    decimal(&mut out, authority);
    for sub in subs.as_chunks::<4>().0 {
        out.push('-');
        decimal(&mut out, u64::from(u32::from_le_bytes(*sub)));
    }
    Some(out)
}

/// A valid SYSTEMTIME (year, month, day, hour, minute, second, ms) as
/// Windows renders it; `None` for an invalid one (evtx renders those as
/// 1601-01-01, left to it).
fn systime([y, mo, d, h, mi, s, ms]: [u16; 7]) -> Option<String> {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    let valid = (1601..=9999).contains(&y)
        && (1..=days).contains(&d)
        && h < 24
        && mi < 60
        && s < 60
        && ms < 1_000;
    let fields = [y, mo, d, h, mi, s].map(u64::from);
    let ticks = u64::from(ms) * 10_000;
    let [y, mo, d, h, mi, s] = fields;
    valid.then(|| datetime([y, mo, d, h, mi, s, ticks]))
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// A GUID as Windows renders it: lowercase, in braces, the first three
/// groups little-endian.
fn guid(bytes: &[u8; 16]) -> String {
    const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(38);
    out.push('{');
    for (i, &at) in ORDER.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(bytes[at] >> 4)] as char);
        out.push(HEX[usize::from(bytes[at] & 15)] as char);
    }
    out.push('}');
    out
}

/// A FILETIME (100 ns since 1601) with the seven fractional digits Windows
/// shows; `None` past year 9999, which evtx renders otherwise.
fn filetime(ticks: u64) -> Option<String> {
    const PER_SEC: u64 = 10_000_000;
    const PER_DAY: u64 = 86_400 * PER_SEC;
    let (days, rest) = (ticks / PER_DAY, ticks % PER_DAY);
    // Howard Hinnant's civil_from_days, counted from 0000-03-01.
    let z = days + 584_694;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    if year > 9999 {
        return None;
    }
    let secs = rest / PER_SEC;
    let (h, m, s, f) = (secs / 3_600, secs / 60 % 60, secs % 60, rest % PER_SEC);
    Some(datetime([year, month, day, h, m, s, f]))
}

/// A template definition read as a tree: what a plan needs of it.
struct Element {
    name: String,
    depends: Option<u16>,
    attrs: Vec<(String, Vec<Src>)>,
    children: Vec<Node>,
}

enum Node {
    Element(Element),
    Content(Src),
}

impl Plan {
    /// The plan of the template defined at `offset` in the chunk, or
    /// The plan of the template defined at `offset` in `chunk`: the one
    /// made before on this thread for a template of the same content (in
    /// any chunk or file), else one made now.
    fn find(chunk: &[u8], offset: u32) -> Option<Rc<Plan>> {
        let key = Reader::fingerprint(chunk, offset)?;
        SEEN.with_borrow_mut(|seen| {
            if let Some(plan) = seen.get(&key) {
                return plan.clone();
            }
            if seen.len() >= MAX_SEEN {
                seen.clear();
            }
            let plan = Reader::template(chunk, offset)
                .and_then(|root| Plan::of(&root))
                .map(Rc::new);
            seen.insert(key, plan.clone());
            plan
        })
    }

    fn of(root: &Element) -> Option<Plan> {
        let mut items = Vec::new();
        if root.name == "EventData" {
            plan_event_data(root, &mut items)?;
            return Some(Plan::new(false, items));
        }
        if root.name != "Event" {
            return None;
        }
        if let Some(slot) = root.depends {
            // The event hangs on a value (its `EventData`'s, usually): when
            // that is NULL, the JSON way decides.
            push(&mut items, String::new(), What::Required(slot), None);
        }
        let mut children = root.children.iter();
        match children.next()? {
            Node::Element(system) if system.name == "System" => plan_system(system, &mut items)?,
            _ => return None,
        }
        // One `EventData`, written in the template or a value holding one
        // (a second would be `EventData_1`, which the JSON way ignores).
        let mut data_seen = false;
        for child in children {
            match child {
                Node::Element(e) if e.name == "EventData" && !data_seen => {
                    data_seen = true;
                    plan_event_data(e, &mut items)?;
                }
                Node::Content(Src::Slot(slot)) if !data_seen => {
                    data_seen = true;
                    push(&mut items, String::new(), What::Nested(*slot), None);
                }
                // `UserData`'s lifted children: the JSON way.
                Node::Element(e)
                    if matches!(e.name.as_str(), "System" | "EventData" | "UserData") =>
                {
                    return None;
                }
                // Ignored by the JSON way too (`RenderingInfo`).
                Node::Element(_) => {}
                Node::Content(_) => return None,
            }
        }
        Some(Plan::new(true, items))
    }

    fn new(event: bool, items: Vec<Item>) -> Plan {
        let keys = || items.iter().filter(|item| !item.key.is_empty());
        let unique = keys()
            .enumerate()
            .all(|(i, a)| keys().skip(i + 1).all(|b| a.key != b.key));
        Plan {
            event,
            unique,
            items,
        }
    }
}

/// What a `Data` or leaf element holds: one literal or value, or nothing.
fn content(element: &Element) -> Option<Option<Src>> {
    match element.children.as_slice() {
        [] => Some(None),
        [Node::Content(src)] => Some(Some(src.clone())),
        _ => None,
    }
}

fn unique(items: &[Item], from: usize, key: &str) -> Option<()> {
    (!items[from..].iter().any(|i| &*i.key == key) && !key.ends_with("_attributes")).then_some(())
}

fn plan_system(system: &Element, items: &mut Vec<Item>) -> Option<()> {
    if system.depends.is_some() || !system.attrs.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = Vec::new();
    for node in &system.children {
        let Node::Element(e) = node else {
            return None;
        };
        if names.contains(&e.name.as_str()) || e.name.ends_with("_attributes") {
            return None;
        }
        names.push(&e.name);
        if let Some(how) = crate::windows::Attrs::of(&e.name) {
            // Attributes only: content besides them is ignored by the JSON
            // way, child elements are not.
            if e.children.iter().any(|n| matches!(n, Node::Element(_))) {
                return None;
            }
            for (attr, src) in &e.attrs {
                let [src] = src.as_slice() else {
                    return None;
                };
                if let Some(key) = how.key(attr) {
                    push(items, key, What::Attr(src.clone()), e.depends);
                }
            }
            continue;
        }
        let src = content(e)?.unwrap_or(Src::Text("".into()));
        if e.name == "EventID" {
            // With attributes it renders as `{"#attributes": .., "#text": id}`.
            push(items, e.name.clone(), What::EventId(src), e.depends);
            continue;
        }
        if !e.attrs.is_empty() {
            return None;
        }
        push(items, e.name.clone(), What::Leaf(src), e.depends);
    }
    Some(())
}

fn plan_event_data(data: &Element, items: &mut Vec<Item>) -> Option<()> {
    if data.depends.is_some() {
        return None;
    }
    let from = items.len();
    for node in &data.children {
        let Node::Element(e) = node else {
            return None;
        };
        if e.name == "Data" {
            // Named by a literal, never left out: the shape evtx flattens
            // to `"Name": value` (the others are arrays or `#text`).
            let [(attr, name)] = e.attrs.as_slice() else {
                return None;
            };
            let [Src::Text(name)] = name.as_slice() else {
                return None;
            };
            if attr != "Name" || name.is_empty() || e.depends.is_some() {
                return None;
            }
            unique(items, from, name)?;
            let src = content(e)?.unwrap_or(Src::Text("".into()));
            push(items, name.to_string(), What::Data(src), None);
        } else {
            if !e.attrs.is_empty() || e.name.starts_with('#') {
                return None;
            }
            unique(items, from, &e.name)?;
            let src = content(e)?.unwrap_or(Src::Text("".into()));
            push(items, e.name.clone(), What::Leaf(src), e.depends);
        }
    }
    Some(())
}

fn push(items: &mut Vec<Item>, key: String, what: What, depends: Option<u16>) {
    items.push(Item {
        key: key.into(),
        what,
        depends,
    });
}

/// Reads a template definition's BinXML (MS-EVEN6 2.2.3.1) into an
/// [`Element`] tree. Names are offsets into the chunk's string table.
struct Reader<'a> {
    chunk: &'a [u8],
    pos: usize,
    end: usize,
}

/// Template definition header: next offset, GUID, data size.
const TEMPLATE_HEADER: usize = 24;
/// Deeper than any event's XML: a guard against crafted loops of elements.
const MAX_DEPTH: usize = 32;

impl<'a> Reader<'a> {
    /// A reader of the body of the template defined at `offset`, past its
    /// fragment header.
    fn new(chunk: &'a [u8], offset: u32) -> Option<Reader<'a>> {
        let start = usize::try_from(offset).ok()?;
        let size = u32::from_le_bytes(chunk.get(start + 20..start + 24)?.try_into().ok()?);
        let pos = start + TEMPLATE_HEADER;
        let end = pos.checked_add(usize::try_from(size).ok()?)?;
        if end > chunk.len() {
            return None;
        }
        let mut reader = Reader { chunk, pos, end };
        if reader.u8()? == 0x0f {
            reader.pos += 3;
        } else {
            reader.pos -= 1;
        }
        Some(reader)
    }

    fn template(chunk: &'a [u8], offset: u32) -> Option<Element> {
        let mut reader = Reader::new(chunk, offset)?;
        let token = reader.u8()?;
        let root = reader.element(token, 0)?;
        match reader.u8() {
            Some(0x00) | None => Some(root),
            _ => None,
        }
    }

    /// A hash of what a plan depends on: the body's tokens with the names
    /// they use in place of where the chunk stores those (so the same
    /// template in another chunk hashes the same). One pass, nothing
    /// built; `None` for what [`Reader::element`] would not read either.
    fn fingerprint(chunk: &'a [u8], offset: u32) -> Option<u64> {
        use std::hash::Hasher;
        let mut reader = Reader::new(chunk, offset)?;
        let mut h = foldhash::fast::FixedState::default().build_hasher();
        loop {
            let token = reader.u8()?;
            h.write_u8(token);
            match token {
                0x00 => return Some(h.finish()),
                0x01 | 0x41 => {
                    h.write_u16(reader.u16()?);
                    let _size = reader.u32()?;
                    h.write(reader.name_entry()?);
                    if token == 0x41 {
                        let _attr_size = reader.u32()?;
                    }
                }
                0x02..=0x04 => {}
                0x06 | 0x46 => h.write(reader.name_entry()?),
                0x05 | 0x45 => {
                    h.write_u8(reader.u8()?);
                    let len = usize::from(reader.u16()?);
                    h.write(reader.chunk.get(reader.pos..reader.pos + 2 * len)?);
                    reader.pos += 2 * len;
                }
                0x0d | 0x0e => {
                    h.write_u16(reader.u16()?);
                    h.write_u8(reader.u8()?);
                }
                _ => return None,
            }
        }
    }

    /// A name reference's entry (length and characters), wherever it is
    /// stored; skipped when it is stored right here.
    fn name_entry(&mut self) -> Option<&'a [u8]> {
        let offset = usize::try_from(self.u32()?).ok()?;
        let len = usize::from(u16::from_le_bytes(
            self.chunk.get(offset + 6..offset + 8)?.try_into().ok()?,
        ));
        let entry = self.chunk.get(offset + 6..offset + 8 + 2 * len)?;
        if offset == self.pos {
            self.pos += 8 + 2 * len + 2;
            if self.pos > self.end {
                return None;
            }
        }
        Some(entry)
    }

    fn u8(&mut self) -> Option<u8> {
        if self.pos >= self.end {
            return None;
        }
        let b = self.chunk[self.pos];
        self.pos += 1;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let bytes = self.chunk.get(self.pos..self.pos + 2)?;
        self.pos += 2;
        (self.pos <= self.end).then(|| u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let bytes = self.chunk.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        (self.pos <= self.end).then(|| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A name reference, read where the name is stored.
    fn name(&mut self) -> Option<String> {
        utf16(self.name_entry()?[2..].as_chunks::<2>().0)
    }

    /// An element whose start token (`0x01` or `0x41`) was just read.
    fn element(&mut self, token: u8, depth: usize) -> Option<Element> {
        if token & !0x40 != 0x01 || depth > MAX_DEPTH {
            return None;
        }
        let depends = match self.u16()? {
            0xffff => None,
            id => Some(id),
        };
        let _size = self.u32()?;
        let name = self.name()?;
        let mut element = Element {
            name,
            depends,
            attrs: Vec::new(),
            children: Vec::new(),
        };
        if token & 0x40 != 0 {
            let _attr_size = self.u32()?;
        }
        loop {
            match self.u8()? {
                0x06 | 0x46 => {
                    let name = self.name()?;
                    let mut value = Vec::new();
                    // An attribute's value: the tokens up to the next
                    // attribute or the end of the start tag.
                    while let Some(&next) = self.chunk.get(self.pos) {
                        if matches!(next, 0x06 | 0x46 | 0x02 | 0x03) {
                            break;
                        }
                        self.pos += 1;
                        value.push(self.content(next)?);
                    }
                    element.attrs.push((name, value));
                }
                0x03 => return Some(element),
                0x02 => break,
                _ => return None,
            }
        }
        loop {
            match self.u8()? {
                0x04 => return Some(element),
                token @ (0x01 | 0x41) => {
                    let child = self.element(token, depth + 1)?;
                    element.children.push(Node::Element(child));
                }
                token => {
                    let src = self.content(token)?;
                    element.children.push(Node::Content(src));
                }
            }
        }
    }

    /// A value or substitution token; any other (character and entity
    /// references, CDATA, processing instructions) is not planned.
    fn content(&mut self, token: u8) -> Option<Src> {
        match token {
            0x05 | 0x45 => {
                // Literal text: string type, then a counted UTF-16 string.
                if self.u8()? != 0x01 {
                    return None;
                }
                let len = usize::from(self.u16()?);
                let bytes = self.chunk.get(self.pos..self.pos + 2 * len)?;
                self.pos += 2 * len;
                if self.pos > self.end {
                    return None;
                }
                let text = utf16(bytes.as_chunks::<2>().0)?;
                Some(Src::Text(text.into_boxed_str()))
            }
            0x0d | 0x0e => {
                let slot = self.u16()?;
                let _type = self.u8()?;
                Some(Src::Slot(slot))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::windows::from_evtx_json;

    /// Every record of the corpus that is planned flattens exactly as its
    /// JSON rendering does (same fields in the same order, time and
    /// position), and a chunk read the way hunts read it (flattened whole,
    /// or up to a record that is not planned and through evtx from there)
    /// gives what reading every record through JSON gives. Most records
    /// are planned, else this path buys nothing.
    #[test]
    fn planned_records_flatten_as_their_json_does() {
        let Some(files) = crate::windows::tests::corpus_evtx_files() else {
            return;
        };
        let (mut planned, mut total, mut whole_chunks, mut chunks) = (0, 0, 0, 0);
        let show = |records: &[Record]| -> Vec<String> {
            let show = |r: &Record| format!("{} {:?} {}", r.fields, r.timestamp, r.position);
            records.iter().map(show).collect()
        };
        for file in &files {
            let settings = evtx::ParserSettings::new().num_threads(1);
            let shared = Arc::new(settings.clone());
            let Ok(parser) = evtx::EvtxParser::from_path(file) else {
                continue;
            };
            let mut parser = parser.with_configuration(settings);
            for mut chunk in parser.chunks().flatten() {
                let Ok(mut parsed) = chunk.parse(Arc::clone(&shared)) else {
                    continue;
                };
                chunks += 1;
                let mut plans = Plans::default();
                let mut via_json = Vec::new();
                for record in parsed.iter().flatten() {
                    total += 1;
                    let direct = flatten_record(&record, &mut plans);
                    let header_time = record.timestamp;
                    let Ok(json) = record.into_json_bytes() else {
                        assert!(direct.is_none(), "{}", file.display());
                        continue;
                    };
                    let Some(mut record) = from_evtx_json(&json.data, json.event_record_id) else {
                        continue;
                    };
                    record.timestamp.get_or_insert(header_time);
                    if let Some(direct) = direct {
                        planned += 1;
                        assert_eq!(
                            show(&[direct]),
                            show(&[record.clone()]),
                            "{}",
                            file.display()
                        );
                    }
                    via_json.push(record);
                }
                let mut whole = Vec::new();
                whole_chunks += usize::from(flatten_chunk(&parsed, &mut plans, &mut whole));
                let (read, _, _) = crate::source::evtx::chunk_records(&mut parsed);
                assert_eq!(show(&read), show(&via_json), "{}", file.display());
            }
        }
        eprintln!("{planned} of {total} records planned, {whole_chunks} of {chunks} chunks whole");
        assert!(
            total > 8000 && planned * 10 > total * 8,
            "{planned} of {total}"
        );
    }

    /// Damaged templates and values (bytes flipped where a chunk keeps its
    /// first templates and records) never panic or loop: a record is read,
    /// left to evtx, or counted as damaged.
    #[test]
    fn damaged_templates_and_values_are_read_or_refused() {
        let Some(files) = crate::windows::tests::corpus_evtx_files() else {
            return;
        };
        // A Sysmon file: nested EventData instances, many templates.
        let file = files
            .iter()
            .find(|f| f.ends_with("Execution/sysmon_zipexec.evtx"))
            .or(files.first())
            .expect("a file");
        let bytes = std::fs::read(file).expect("read");
        let chunk = bytes[4096..4096 + 65536].to_vec();
        let settings = Arc::new(evtx::ParserSettings::new());
        let mut next = crate::bucket::draws(0x0bad_5eed);
        let mut planned = 0;
        for round in 0..5_000 {
            let mut damaged = chunk.clone();
            for _ in 0..1 + next(8) {
                // Mostly where the first templates and records are.
                let at = if round % 4 == 0 {
                    next(damaged.len())
                } else {
                    512 + next(6000)
                };
                damaged[at] = next(256) as u8;
            }
            let Ok(mut data) = evtx::EvtxChunkData::new(damaged, false) else {
                continue;
            };
            let Ok(mut parsed) = data.parse(Arc::clone(&settings)) else {
                continue;
            };
            let (records, _, _) = crate::source::evtx::chunk_records(&mut parsed);
            planned += records.len();
        }
        assert!(planned > 0);
    }

    /// A name met again (an `EventData` name that `System` has too, or
    /// twice in one template) replaces the value where the name stands, as
    /// inserting into a JSON object does.
    #[test]
    fn names_met_again_replace_their_value_in_place() {
        let leaf = |key: &str, text: &str| Item {
            key: key.into(),
            what: What::Leaf(Src::Text(text.into())),
            depends: None,
        };
        let data = Plan::new(false, vec![leaf("A", "x"), leaf("Channel", "y")]);
        assert!(data.unique);
        let mut flat: Flat = vec![
            ("Channel".into(), Value::from(1)),
            ("B".into(), Value::from(2)),
        ];
        data.apply(&[], &[], &mut Plans::default(), &mut flat)
            .expect("applied");
        let shown = |flat: &Flat| Fields::Flat(flat.clone()).to_string();
        assert_eq!(shown(&flat), r#"{"Channel":"y","B":2,"A":"x"}"#);
        let twice = Plan::new(true, vec![leaf("A", "x"), leaf("B", "y"), leaf("A", "z")]);
        assert!(!twice.unique);
        let mut flat = Flat::new();
        twice
            .apply(&[], &[], &mut Plans::default(), &mut flat)
            .expect("applied");
        assert_eq!(shown(&flat), r#"{"A":"z","B":"y"}"#);
    }

    #[test]
    fn numbers_render_as_evtx_does() {
        for n in [
            0u64,
            1,
            9,
            10,
            15,
            16,
            255,
            4096,
            0x8020_0000_0000_0000,
            u64::MAX,
        ] {
            assert_eq!(hex(n), format!("0x{n:x}"));
            let mut out = String::new();
            decimal(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        let sid = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0];
        assert_eq!(sid_text(&sid).as_deref(), Some("S-1-5-32-544"));
        assert_eq!(sid_text(&sid[..12]), None, "shorter than its count says");
        assert_eq!(
            systime([2019, 3, 19, 23, 34, 27, 540]).as_deref(),
            Some("2019-03-19T23:34:27.5400000Z")
        );
        assert_eq!(systime([2019, 2, 29, 0, 0, 0, 0]), None, "not a leap year");
    }

    #[test]
    fn filetimes_render_as_windows_does() {
        assert_eq!(filetime(0).as_deref(), Some("1601-01-01T00:00:00.0000000Z"));
        // 2019-03-19T23:34:27.5404331Z
        let t = (1_553_038_467u64 + 11_644_473_600) * 10_000_000 + 5_404_331;
        assert_eq!(filetime(t).as_deref(), Some("2019-03-19T23:34:27.5404331Z"));
        assert_eq!(filetime(u64::MAX), None);
    }
}
