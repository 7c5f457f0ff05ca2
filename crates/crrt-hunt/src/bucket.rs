//! A log source's rules and the prefilter that picks, per event, the few
//! rules worth evaluating.
//!
//! rsigma's `Engine` indexes rules with one Aho-Corasick DFA per field; on the
//! SigmaHQ Windows rules that build took 0.5 s and most of the memory of a
//! hunt. Here each rule gets a *gate*, read from its intermediate form: a set
//! of `(field, literal)` pairs such that, if the rule matches an event, at
//! least one literal occurs in that field's value. Per field, one short
//! anchor per literal goes into a small automaton that builds in
//! milliseconds. Rules with no sound gate (regex only, negations, keywords,
//! numeric comparisons) are evaluated for every event of the bucket.
//!
//! A rule is compiled (regexes, automata) the first time it is a candidate:
//! on the SigmaHQ Windows rules and the attack-samples corpus fewer than half
//! ever are. Candidates are evaluated in full by `rsigma_eval::evaluate_rule`,
//! so findings are exactly the engine's; a differential test over the whole
//! corpus holds that line.

use std::collections::{BTreeMap, HashMap};

use aho_corasick::{AhoCorasick, MatchKind};
use rsigma_eval::event::{Event, EventValue};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rsigma_eval::{CompiledRule, EvaluationResult, compile_to_compiled, evaluate_rule};
use rsigma_ir::{IrCondition, IrDetection, IrDetectionItem, IrMatcher, IrPatternPart, IrRule};
use rsigma_parser::Quantifier;

use crate::rules::CompiledFilter;

/// One log source's rules, ready to evaluate.
pub(crate) struct Bucket {
    rules: Vec<LazyRule>,
    filters: Arc<Vec<CompiledFilter>>,
    fields: Vec<FieldIndex>,
    /// Rules evaluated for every event, ascending.
    always: Vec<u32>,
}

struct FieldIndex {
    field: String,
    automaton: AhoCorasick,
    /// Pattern id to the rules it gates.
    rules_of: Vec<Vec<u32>>,
}

/// A rule in its intermediate form, compiled on first use.
pub(crate) struct LazyRule {
    pub path: PathBuf,
    pub ir: IrRule,
    compiled: OnceLock<Result<CompiledRule, String>>,
}

impl LazyRule {
    fn compiled(&self, filters: &[CompiledFilter]) -> Option<&CompiledRule> {
        self.compiled
            .get_or_init(|| {
                let mut rule = compile_to_compiled(&self.ir).map_err(|e| e.to_string())?;
                for filter in filters {
                    filter.apply(&mut rule);
                }
                Ok(rule)
            })
            .as_ref()
            .ok()
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
    pub(crate) fn new(rules: Vec<(PathBuf, IrRule)>, filters: Arc<Vec<CompiledFilter>>) -> Self {
        let mut always = Vec::new();
        // field -> literal -> rules; BTreeMaps so the build is deterministic.
        let mut by_field: BTreeMap<String, BTreeMap<String, Vec<u32>>> = BTreeMap::new();
        for (i, (_, rule)) in rules.iter().enumerate() {
            let i = i as u32;
            match rule_gate(rule) {
                Some(gate) => {
                    for (field, literal) in gate.pairs {
                        by_field
                            .entry(field)
                            .or_default()
                            .entry(literal)
                            .or_default()
                            .push(i);
                    }
                }
                None => always.push(i),
            }
        }
        let mut fields = Vec::with_capacity(by_field.len());
        for (field, literals) in by_field {
            // Search for one short anchor per literal rather than the literal
            // itself: the automaton stays a few states per rule and builds in
            // microseconds, and a candidate is verified in full anyway.
            let anchors = anchors(literals.keys().map(String::as_str));
            let mut by_anchor: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
            for ((_, rules), anchor) in literals.iter().zip(&anchors) {
                by_anchor.entry(anchor).or_default().extend(rules);
            }
            let (patterns, mut rules_of): (Vec<&str>, Vec<Vec<u32>>) =
                by_anchor.into_iter().unzip();
            for r in &mut rules_of {
                r.sort_unstable();
                r.dedup();
            }
            // Standard match kind: overlapping search must report an anchor
            // even when a longer one contains it.
            match AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(true)
                .build(&patterns)
            {
                Ok(automaton) => fields.push(FieldIndex {
                    field,
                    automaton,
                    rules_of,
                }),
                // Cannot happen for short string patterns; if it does, the
                // rules stay correct by being always run.
                Err(_) => always.extend(rules_of.into_iter().flatten()),
            }
        }
        always.sort_unstable();
        always.dedup();
        let rules = rules
            .into_iter()
            .map(|(path, ir)| LazyRule {
                path,
                ir,
                compiled: OnceLock::new(),
            })
            .collect();
        Bucket {
            rules,
            fields,
            always,
            filters,
        }
    }

    pub(crate) fn rules(&self) -> &[LazyRule] {
        &self.rules
    }

    /// Every rule of this bucket that matches the event, in rule order.
    pub(crate) fn evaluate(&self, event: &impl Event) -> Vec<EvaluationResult> {
        let mut candidates = Bits::new(self.rules.len());
        for &i in &self.always {
            candidates.set(i);
        }
        for index in &self.fields {
            if let Some(value) = event.get_field(&index.field) {
                visit_strings(&value, &mut |s| index.mark(s, &mut candidates));
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

impl FieldIndex {
    fn mark(&self, haystack: &str, out: &mut Bits) {
        if haystack.is_ascii() {
            for m in self.automaton.find_overlapping_iter(haystack) {
                for &rule in &self.rules_of[m.pattern().as_usize()] {
                    out.set(rule);
                }
            }
        } else {
            // Unicode case folding (`to_lowercase`, regex `(?i)`) can map
            // text onto a literal in ways ASCII folding does not see; such
            // values are rare, so every rule gated here is evaluated.
            for rules in &self.rules_of {
                for &rule in rules {
                    out.set(rule);
                }
            }
        }
    }
}

/// Bytes per anchor: long enough to be selective, short enough that most
/// literals have several to choose from.
const ANCHOR: usize = 4;

/// For each literal, the substring of [`ANCHOR`] bytes that the fewest other
/// literals of the same field share (so `.exe` is never chosen when the
/// literal has anything rarer); shorter literals are their own anchor.
fn anchors<'a>(literals: impl Iterator<Item = &'a str> + Clone) -> Vec<&'a str> {
    let grams = |l: &'a str| {
        (0..=l.len().saturating_sub(ANCHOR))
            .filter(move |&i| l.is_char_boundary(i) && l.is_char_boundary(i + ANCHOR))
            .map(move |i| &l[i..i + ANCHOR])
    };
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for literal in literals.clone() {
        for gram in grams(literal) {
            *frequency.entry(gram).or_default() += 1;
        }
    }
    literals
        .map(|literal| {
            grams(literal)
                .min_by_key(|g| frequency[g])
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

struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: u32) {
        self.0[(i / 64) as usize] |= 1 << (i % 64);
    }
    fn for_each(&self, mut f: impl FnMut(usize)) {
        for (w, &word) in self.0.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let bit = word.trailing_zeros() as usize;
                f(w * 64 + bit);
                word &= word - 1;
            }
        }
    }
}

/// A disjunction of `(field, lowercase literal)` pairs, one of which holds
/// whenever the rule matches.
#[derive(Debug, Clone, PartialEq)]
struct Gate {
    pairs: Vec<(String, String)>,
}

impl Gate {
    fn union(gates: impl IntoIterator<Item = Option<Gate>>) -> Option<Gate> {
        let mut pairs = Vec::new();
        for gate in gates {
            pairs.extend(gate?.pairs);
        }
        (!pairs.is_empty()).then_some(Gate { pairs })
    }

    /// Of several gates that must all hold, the most selective one: longest
    /// shortest literal, then fewest literals.
    fn best(gates: impl IntoIterator<Item = Option<Gate>>) -> Option<Gate> {
        gates.into_iter().flatten().max_by_key(|g| {
            let shortest = g.pairs.iter().map(|(_, l)| l.len()).min().unwrap_or(0);
            (shortest.min(8), usize::MAX - g.pairs.len())
        })
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
        // Keywords search every value; array scopes look inside members.
        IrDetection::Keywords(_)
        | IrDetection::ArrayMatch { .. }
        | IrDetection::Conditional { .. } => None,
    }
}

fn item_gate(item: &IrDetectionItem) -> Option<Gate> {
    if item.exists.is_some() {
        return None;
    }
    let field = item.field.as_ref()?;
    let literals = matcher_literals(&item.matcher)?;
    Some(Gate {
        pairs: literals.into_iter().map(|l| (field.clone(), l)).collect(),
    })
}

/// Literals one of which the value must contain for the matcher to hold;
/// `None` when no such set exists. Case-insensitive matchers compare the
/// Unicode-lowercased value, so their literal is lowercased the same way;
/// the automaton also folds ASCII case, which only widens the gate.
fn matcher_literals(matcher: &IrMatcher) -> Option<Vec<String>> {
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
            // A non-ASCII literal may fold onto ASCII text (`ſ` onto `s`).
            if longest.is_empty() || (*case_insensitive && !longest.is_ascii()) {
                return None;
            }
            Some(vec![if *case_insensitive {
                longest.to_lowercase()
            } else {
                longest.clone()
            }])
        }
        IrMatcher::AnyOf(children) => {
            let mut out = Vec::new();
            for child in children {
                out.extend(matcher_literals(child)?);
            }
            (!out.is_empty()).then_some(out)
        }
        IrMatcher::AllOf(children) => {
            children
                .iter()
                .filter_map(matcher_literals)
                .max_by_key(|l| {
                    (
                        l.iter().map(String::len).min().unwrap_or(0),
                        usize::MAX - l.len(),
                    )
                })
        }
        // Encodings (base64, UTF-16, windash), regexes, numbers, CIDR,
        // negations, field references: no literal of the raw value is implied.
        _ => None,
    }
}

/// The prefilter must never change what fires: over the whole attack corpus
/// and the SigmaHQ Windows rules, every routed event gets exactly the rules
/// rsigma's own `Engine` (its candidate index, no prefilter of ours) gives.
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
        let rules = RuleLoader::new()
            .path(sigma.join("rules/windows"))
            .path(sigma.join("rules-emerging-threats"))
            .path(sigma.join("rules-threat-hunting"))
            .load()
            .expect("rules");
        let engines: Vec<Engine> = rules
            .output
            .buckets
            .iter()
            .map(|bucket| {
                let mut engine = Engine::new();
                engine.extend_compiled_rules(
                    bucket
                        .rules()
                        .iter()
                        .map(|r| rsigma_eval::compile_to_compiled(&r.ir).expect("compiles")),
                );
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
            rules
                .output_router
                .for_each_target(record, |bucket, renames| {
                    let view = EventView::new(record, renames);
                    let ours = ids(rules.output.buckets[bucket].evaluate(&view));
                    let reference = ids(engines[bucket].evaluate(&view));
                    assert_eq!(ours, reference, "event {}", record.fields);
                    matches += ours.len();
                });
        }
        assert!(matches > 1000, "{matches} matches");
    }
}
