//! Loading Sigma rules from files and folders into a compiled [`RuleSet`].
//!
//! Loading never fails because of one bad rule: a file or rule that cannot
//! be parsed or compiled becomes a [`Diagnostic`] and the rest load. Rules are
//! parsed and compiled on all cores, then grouped into one engine per log
//! source (see [`crate::logsource`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rsigma_eval::{CompiledRule, Engine, EvaluationResult, compile_rule};
use rsigma_parser::{CorrelationRule, FilterRule, Level, SigmaRule, Status};

use crate::error::HuntError;
use crate::logsource::{LogSourceMap, SourceKey};
use crate::record::{EventView, Record};
use crate::route::Router;

/// A problem with one rule file or rule; the file's other rules still load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub rule: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Some(rule) => write!(
                f,
                "{}: rule {rule:?}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Which of the loaded rules take part in the hunt. Empty lists select all.
#[derive(Debug, Clone, Default)]
pub struct RuleSelection {
    pub min_level: Option<Level>,
    pub statuses: Vec<Status>,
    /// Tags, case-insensitive; `attack.t1059` also selects `attack.t1059.001`.
    pub tags: Vec<String>,
    pub ids: Vec<String>,
}

impl RuleSelection {
    fn selects(
        &self,
        id: Option<&str>,
        level: Option<Level>,
        status: Option<Status>,
        tags: &[String],
    ) -> bool {
        if let Some(min) = self.min_level
            && level.is_none_or(|l| level_rank(l) < level_rank(min))
        {
            return false;
        }
        if !self.statuses.is_empty() && status.is_none_or(|s| !self.statuses.contains(&s)) {
            return false;
        }
        if !self.ids.is_empty()
            && id.is_none_or(|id| !self.ids.iter().any(|want| want.eq_ignore_ascii_case(id)))
        {
            return false;
        }
        if !self.tags.is_empty() {
            let tag_matches = |want: &String| {
                tags.iter().any(|t| {
                    let t = t.to_ascii_lowercase();
                    let want = want.to_ascii_lowercase();
                    t == want || t.starts_with(&format!("{want}."))
                })
            };
            if !self.tags.iter().any(tag_matches) {
                return false;
            }
        }
        true
    }
}

pub fn level_rank(level: Level) -> u8 {
    match level {
        Level::Informational => 0,
        Level::Low => 1,
        Level::Medium => 2,
        Level::High => 3,
        Level::Critical => 4,
    }
}

/// Reads rules and builds a [`RuleSet`].
///
/// ```no_run
/// use crrt_hunt::RuleLoader;
/// let rules = RuleLoader::new().path("sigma/rules/windows").load()?;
/// for problem in rules.diagnostics() {
///     eprintln!("skipped: {problem}");
/// }
/// # Ok::<(), crrt_hunt::HuntError>(())
/// ```
#[derive(Debug, Default)]
pub struct RuleLoader {
    paths: Vec<PathBuf>,
    selection: RuleSelection,
    mapping: Option<LogSourceMap>,
    placeholders: BTreeMap<String, Vec<String>>,
    /// Rules given as text, each with the name diagnostics use for it.
    texts: Vec<(PathBuf, String)>,
}

impl RuleLoader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A rule file, or a folder searched recursively for `.yml`/`.yaml`.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Rules given as YAML text; `name` stands for the file in diagnostics.
    pub fn yaml(mut self, name: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.texts.push((name.into(), text.into()));
        self
    }

    pub fn selection(mut self, selection: RuleSelection) -> Self {
        self.selection = selection;
        self
    }

    /// Replaces the bundled Windows mapping (see [`LogSourceMap::extend`] to add to it).
    pub fn mapping(mut self, mapping: LogSourceMap) -> Self {
        self.mapping = Some(mapping);
        self
    }

    /// Values for `%name%` placeholders used with the `expand` modifier.
    pub fn placeholder(mut self, name: impl Into<String>, values: Vec<String>) -> Self {
        self.placeholders
            .entry(name.into())
            .or_default()
            .extend(values);
        self
    }

    pub fn load(self) -> Result<RuleSet, HuntError> {
        if self.paths.is_empty() && self.texts.is_empty() {
            return Err(HuntError::NoRules {
                path: PathBuf::new(),
            });
        }
        let mut files = Vec::new();
        for path in &self.paths {
            let before = files.len();
            collect_rule_files(path, &mut files)?;
            if files.len() == before {
                return Err(HuntError::NoRules { path: path.clone() });
            }
        }
        files.sort();
        files.dedup();
        let pipeline = placeholder_pipeline(&self.placeholders)?;

        // Parse every file on all cores; one file's failure is one diagnostic.
        let mut parsed: Vec<ParsedFile> = files
            .par_iter()
            .map(|path| match std::fs::read(path) {
                Ok(bytes) => parse_text(path, bytes, pipeline.as_ref()),
                Err(e) => ParsedFile::failed(path, e.to_string()),
            })
            .collect();
        parsed.extend(
            self.texts
                .into_iter()
                .map(|(name, text)| parse_text(&name, text.into_bytes(), pipeline.as_ref())),
        );
        let n_files = parsed.len();

        let mut diagnostics = Vec::new();
        let mut detections: Vec<(PathBuf, SigmaRule)> = Vec::new();
        let mut correlations: Vec<(PathBuf, CorrelationRule)> = Vec::new();
        let mut filters: Vec<FilterRule> = Vec::new();
        for file in parsed {
            diagnostics.extend(file.diagnostics);
            detections.extend(file.rules.into_iter().map(|r| (file.path.clone(), r)));
            correlations.extend(
                file.correlations
                    .into_iter()
                    .map(|c| (file.path.clone(), c)),
            );
            filters.extend(file.filters);
        }
        let n_rules_parsed = detections.len() + correlations.len();

        // Correlations are selected like rules; the rules they reference are
        // kept for them whatever the selection says.
        correlations.retain(|(_, c)| {
            self.selection
                .selects(c.id.as_deref(), c.level, c.status, &c.tags)
        });
        let referenced: HashSet<&str> = correlations
            .iter()
            .flat_map(|(_, c)| c.rules.iter().map(String::as_str))
            .collect();
        let silent: HashSet<&str> = correlations
            .iter()
            .filter(|(_, c)| !c.generate)
            .flat_map(|(_, c)| c.rules.iter().map(String::as_str))
            .collect();
        let names = |r: &SigmaRule| -> Vec<String> {
            [r.id.clone(), r.name.clone()]
                .into_iter()
                .flatten()
                .collect()
        };
        let correlated: Vec<(PathBuf, SigmaRule)> = detections
            .iter()
            .filter(|(_, r)| names(r).iter().any(|n| referenced.contains(n.as_str())))
            .cloned()
            .collect();
        detections.retain(|(_, r)| {
            self.selection
                .selects(r.id.as_deref(), r.level, r.status, &r.tags)
                && !names(r).iter().any(|n| silent.contains(n.as_str()))
        });
        let n_selected = detections.len() + correlations.len();

        let mapping = self.mapping.unwrap_or_else(LogSourceMap::windows_default);
        let output = Buckets::compile(&detections, &filters, &mut diagnostics);
        let correlation = if correlations.is_empty() {
            None
        } else {
            let buckets = Buckets::compile(&correlated, &filters, &mut diagnostics);
            Some(CorrelationSet {
                buckets,
                detection_rules: correlated.into_iter().map(|(_, r)| r).collect(),
                correlations: correlations.into_iter().map(|(_, c)| c).collect(),
            })
        };
        diagnostics
            .sort_by(|a, b| (&a.path, &a.rule, &a.message).cmp(&(&b.path, &b.rule, &b.message)));

        Ok(RuleSet {
            output_router: Router::build(&output, &mapping),
            correlation_router: correlation
                .as_ref()
                .map(|c| Router::build(&c.buckets, &mapping)),
            output,
            correlation,
            diagnostics,
            counts: RuleCounts {
                files: n_files,
                parsed: n_rules_parsed,
                selected: n_selected,
            },
        })
    }
}

/// How many rule files and rules were read and kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleCounts {
    pub files: usize,
    /// Detection and correlation rules that parsed.
    pub parsed: usize,
    /// Of those, the ones the selection kept.
    pub selected: usize,
}

/// Compiled rules, immutable and shared by every hunting thread.
pub struct RuleSet {
    pub(crate) output: Buckets,
    pub(crate) output_router: Router,
    pub(crate) correlation: Option<CorrelationSet>,
    pub(crate) correlation_router: Option<Router>,
    diagnostics: Vec<Diagnostic>,
    counts: RuleCounts,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.output.n_rules)
            .field("counts", &self.counts)
            .field("diagnostics", &self.diagnostics.len())
            .finish()
    }
}

impl RuleSet {
    /// Rules and files that could not be loaded, with the reason.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    pub fn counts(&self) -> RuleCounts {
        self.counts
    }

    /// Detection rules that will produce findings of their own.
    pub fn detection_rule_count(&self) -> usize {
        self.output.n_rules
    }

    pub fn correlation_rule_count(&self) -> usize {
        self.correlation
            .as_ref()
            .map_or(0, |c| c.correlations.len())
    }

    /// The detection rules that fire on one record. Correlations need a
    /// sequence of events: use a [`crate::Hunter`] for those.
    pub fn matches(&self, record: &Record) -> Vec<EvaluationResult> {
        let mut out = Vec::new();
        self.output_router
            .for_each_target(record, |bucket, renames| {
                out.extend(self.output.engines[bucket].evaluate(&EventView::new(record, renames)));
            });
        out
    }
}

/// Rules grouped into one engine per log source.
pub(crate) struct Buckets {
    pub engines: Vec<Engine>,
    pub index: HashMap<SourceKey, usize>,
    pub n_rules: usize,
}

impl Buckets {
    fn compile(
        rules: &[(PathBuf, SigmaRule)],
        filters: &[FilterRule],
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Self {
        let compiled: Vec<(SourceKey, Result<CompiledRule, String>)> = rules
            .par_iter()
            .map(|(_, rule)| {
                (
                    SourceKey::of(&rule.logsource),
                    compile_rule(rule).map_err(|e| e.to_string()),
                )
            })
            .collect();
        let mut grouped: BTreeMap<SourceKey, Vec<CompiledRule>> = BTreeMap::new();
        let mut n_rules = 0;
        for ((path, rule), (key, result)) in rules.iter().zip(compiled) {
            match result {
                Ok(compiled) => {
                    grouped.entry(key).or_default().push(compiled);
                    n_rules += 1;
                }
                Err(message) => diagnostics.push(Diagnostic {
                    path: path.clone(),
                    rule: Some(rule.title.clone()),
                    message,
                }),
            }
        }
        let groups: Vec<(SourceKey, Vec<CompiledRule>)> = grouped.into_iter().collect();
        // Building an engine indexes its rules; the buckets build in parallel.
        let engines: Vec<(SourceKey, Engine)> = groups
            .into_par_iter()
            .map(|(key, rules)| {
                let mut engine = Engine::new();
                engine.extend_compiled_rules(rules);
                for filter in filters {
                    // A filter that fails to compile fails for every bucket;
                    // it is reported once, below.
                    let _ = engine.apply_filter(filter);
                }
                (key, engine)
            })
            .collect();
        for filter in filters {
            if let Err(e) = Engine::new().apply_filter(filter) {
                diagnostics.push(Diagnostic {
                    path: PathBuf::new(),
                    rule: Some(filter.title.clone()),
                    message: format!("filter not applied: {e}"),
                });
            }
        }
        let mut index = HashMap::new();
        let mut out = Vec::with_capacity(engines.len());
        for (i, (key, engine)) in engines.into_iter().enumerate() {
            index.insert(key, i);
            out.push(engine);
        }
        Buckets {
            engines: out,
            index,
            n_rules,
        }
    }
}

/// Correlation rules and the detection rules they count.
pub(crate) struct CorrelationSet {
    pub buckets: Buckets,
    pub detection_rules: Vec<SigmaRule>,
    pub correlations: Vec<CorrelationRule>,
}

struct ParsedFile {
    path: PathBuf,
    rules: Vec<SigmaRule>,
    correlations: Vec<CorrelationRule>,
    filters: Vec<FilterRule>,
    diagnostics: Vec<Diagnostic>,
}

impl ParsedFile {
    fn empty(path: &Path) -> Self {
        ParsedFile {
            path: path.to_owned(),
            rules: Vec::new(),
            correlations: Vec::new(),
            filters: Vec::new(),
            diagnostics: Vec::new(),
        }
    }

    fn failed(path: &Path, message: String) -> Self {
        let mut parsed = Self::empty(path);
        parsed.diagnostics.push(Diagnostic {
            path: path.to_owned(),
            rule: None,
            message,
        });
        parsed
    }
}

fn parse_text(path: &Path, bytes: Vec<u8>, pipeline: Option<&rsigma_eval::Pipeline>) -> ParsedFile {
    let Ok(text) = String::from_utf8(bytes) else {
        return ParsedFile::failed(path, "not UTF-8 text".to_owned());
    };
    let mut parsed = ParsedFile::empty(path);
    let problem = |message: String| Diagnostic {
        path: path.to_owned(),
        rule: None,
        message,
    };
    match rsigma_parser::parse_sigma_yaml(&text) {
        Ok(collection) => {
            parsed
                .diagnostics
                .extend(collection.errors.into_iter().map(problem));
            for mut rule in collection.rules {
                // rsigma matches correlation references against rule ids
                // only; a rule known by its `name` alone is known by that.
                if rule.id.is_none() {
                    rule.id = rule.name.clone();
                }
                for detection in rule.detection.named.values_mut() {
                    keyword_modifiers_have_no_field(detection);
                }
                if let Some(pipeline) = pipeline
                    && let Err(e) =
                        rsigma_eval::apply_pipelines(std::slice::from_ref(pipeline), &mut rule)
                {
                    parsed.diagnostics.push(Diagnostic {
                        path: path.to_owned(),
                        rule: Some(rule.title.clone()),
                        message: format!("placeholders: {e}"),
                    });
                    continue;
                }
                parsed.rules.push(rule);
            }
            parsed.correlations = collection.correlations;
            parsed
                .correlations
                .iter_mut()
                .for_each(temporal_needs_every_rule);
            parsed.filters = collection.filters;
        }
        Err(e) => parsed.diagnostics.push(problem(e.to_string())),
    }
    parsed
}

fn collect_rule_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), HuntError> {
    let meta = std::fs::metadata(path).map_err(|e| HuntError::io(path, e))?;
    if meta.is_file() {
        out.push(path.to_owned());
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|e| HuntError::io(path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| HuntError::io(path, e))?;
        let child = entry.path();
        let file_type = entry.file_type().map_err(|e| HuntError::io(&child, e))?;
        if file_type.is_dir() {
            collect_rule_files(&child, out)?;
        } else if matches!(
            child.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(child);
        }
    }
    Ok(())
}

/// `expand` placeholders become a pipeline's variables, the way pySigma does it.
fn placeholder_pipeline(
    values: &BTreeMap<String, Vec<String>>,
) -> Result<Option<rsigma_eval::Pipeline>, HuntError> {
    if values.is_empty() {
        return Ok(None);
    }
    let vars = serde_json::to_string(values).map_err(|e| HuntError::Placeholders(e.to_string()))?;
    // JSON is YAML, so the variables need no escaping of their own.
    let yaml = format!(
        "name: crrt-placeholders\nvars: {vars}\ntransformations:\n  - type: value_placeholders\n"
    );
    rsigma_eval::pipeline::parse_pipeline(&yaml)
        .map(Some)
        .map_err(|e| HuntError::Placeholders(e.to_string()))
}

/// Sigma writes keyword lists with modifiers as `'|all': [...]`. Keywords
/// are searched for anywhere in the event, but a field-less item compiles to
/// an exact match; give it the `contains` a keyword list has.
fn keyword_modifiers_have_no_field(detection: &mut rsigma_parser::Detection) {
    use rsigma_parser::{Detection, Modifier};
    match detection {
        Detection::AllOf(items) => {
            let mut rewritten = Vec::with_capacity(items.len());
            for mut item in items.drain(..) {
                if item.field.name.is_some() {
                    rewritten.push(item);
                    continue;
                }
                let positioned = item.field.modifiers.iter().any(|m| {
                    matches!(
                        m,
                        Modifier::Contains
                            | Modifier::StartsWith
                            | Modifier::EndsWith
                            | Modifier::Re
                    )
                });
                if !positioned {
                    item.field.modifiers.insert(0, Modifier::Contains);
                }
                // `all` means each keyword somewhere in the event, not all in
                // one value: one item per keyword, and items are AND-linked.
                if item.field.modifiers.contains(&Modifier::All) && item.values.len() > 1 {
                    item.field.modifiers.retain(|m| *m != Modifier::All);
                    for value in std::mem::take(&mut item.values) {
                        rewritten.push(rsigma_parser::DetectionItem {
                            field: item.field.clone(),
                            values: vec![value],
                        });
                    }
                } else {
                    rewritten.push(item);
                }
            }
            *items = rewritten;
        }
        Detection::AnyOf(children) => children
            .iter_mut()
            .for_each(keyword_modifiers_have_no_field),
        _ => {}
    }
}

/// A temporal correlation without a condition fires when every rule it
/// names has matched (Sigma specification); rsigma 0.23 defaults to one rule.
/// An explicit `gte: 1` is indistinguishable here and equally meaningless
/// for a temporal rule, so it is read the same way.
fn temporal_needs_every_rule(correlation: &mut CorrelationRule) {
    use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationType};
    if !matches!(
        correlation.correlation_type,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    ) {
        return;
    }
    if let CorrelationCondition::Threshold {
        predicates,
        field: None,
        ..
    } = &mut correlation.condition
        && predicates.as_slice() == [(ConditionOperator::Gte, 1)]
    {
        let mut distinct = correlation.rules.clone();
        distinct.sort();
        distinct.dedup();
        predicates[0].1 = distinct.len() as u64;
    }
}
