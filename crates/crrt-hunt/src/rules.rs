//! Loading Sigma rules from files and folders into a compiled [`RuleSet`].
//!
//! Loading never fails because of one bad rule: a file or rule that cannot
//! be parsed or compiled becomes a [`Diagnostic`] and the rest load. Rules are
//! parsed and compiled on all cores, then grouped into one engine per log
//! source (see [`crate::logsource`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use std::sync::Arc;

use rsigma_eval::compiler::compile_detection;
use rsigma_eval::{CompiledDetection, CompiledRule, EvaluationResult};
use rsigma_ir::IrRule;
use rsigma_parser::{
    ConditionExpr, CorrelationRule, FilterRule, FilterRuleTarget, Level, SigmaRule, Status,
};

use crate::bucket::{Bucket, KeywordHits, Keywords, LoadedRule};
use crate::cache::RuleCache;
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
    cache_dir: Option<PathBuf>,
    /// No rule at all is fine (an indicator-only hunt).
    allow_none: bool,
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

    /// Loading no rule at all gives an empty set instead of an error: for
    /// hunts that look for indicators only.
    pub fn allow_no_rules(mut self) -> Self {
        self.allow_none = true;
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

    /// Keeps parsed rules in `dir` so that the next load of the same rule
    /// files skips YAML parsing (see the `cache` module). Off by default.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    pub fn load(self) -> Result<RuleSet, HuntError> {
        if self.paths.is_empty() && self.texts.is_empty() && !self.allow_none {
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
        let salt = {
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&self.placeholders, &mut hasher);
            std::hash::Hasher::finish(&hasher)
        };
        let cache = self.cache_dir.as_deref().map(RuleCache::open);

        // Read and parse every file on all cores (or take its rules from the
        // cache); one file's failure is one diagnostic.
        let mut parsed: Vec<ParsedFile> = files
            .par_iter()
            .map(|path| match std::fs::read(path) {
                Ok(bytes) => {
                    let key = RuleCache::key(&bytes, salt);
                    if let Some(rules) = cache.as_ref().and_then(|c| c.get(key)) {
                        let mut file = ParsedFile::empty(path);
                        file.rules = rules;
                        file.cache = CacheUse::Hit(key);
                        return file;
                    }
                    let mut file = parse_text(path, bytes, pipeline.as_ref());
                    if file.correlations.is_empty()
                        && file.filters.is_empty()
                        && file.diagnostics.is_empty()
                    {
                        file.cache = CacheUse::Miss(key);
                    }
                    file
                }
                Err(e) => ParsedFile::failed(path, e.to_string()),
            })
            .collect();
        parsed.extend(
            self.texts
                .iter()
                .map(|(name, text)| parse_text(name, text.clone().into_bytes(), pipeline.as_ref())),
        );
        let n_files = parsed.len();
        let n_cached = parsed
            .iter()
            .filter(|f| matches!(f.cache, CacheUse::Hit(_)))
            .count();
        let cache_problem = cache.and_then(|cache| {
            let used: Vec<u64> = parsed
                .iter()
                .filter_map(|f| match f.cache {
                    CacheUse::Hit(key) => Some(key),
                    _ => None,
                })
                .collect();
            let new: Vec<(u64, Vec<LoadedRule>)> = parsed
                .iter()
                .filter_map(|f| match f.cache {
                    CacheUse::Miss(key) => Some((key, f.rules.clone())),
                    _ => None,
                })
                .collect();
            cache.save(&used, new).err()
        });

        let mut diagnostics = Vec::new();
        let mut detections: Vec<(PathBuf, LoadedRule)> = Vec::new();
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
        let known_as = |r: &LoadedRule, set: &HashSet<&str>| {
            [&r.head.id, &r.head.name]
                .into_iter()
                .flatten()
                .any(|n| set.contains(n.as_str()))
        };
        let correlated: Vec<(PathBuf, LoadedRule)> = detections
            .iter()
            .filter(|(_, r)| known_as(r, &referenced))
            .cloned()
            .collect();
        detections.retain(|(_, r)| {
            let m = &r.head;
            self.selection
                .selects(m.id.as_deref(), m.level, m.status, &m.tags)
                && !known_as(r, &silent)
        });
        let n_selected = detections.len() + correlations.len();

        let mapping = self.mapping.unwrap_or_else(LogSourceMap::windows_default);
        let filters = Arc::new(CompiledFilter::compile_all(&filters, &mut diagnostics));
        for (path, rule) in detections.iter().chain(&correlated) {
            if let Some(problem) = &rule.head.problem {
                diagnostics.push(Diagnostic {
                    path: path.clone(),
                    rule: Some(rule.head.title.clone()),
                    message: problem.clone(),
                });
            }
        }
        detections.retain(|(_, r)| r.head.problem.is_none());
        let output = Buckets::build(detections, &filters);
        let correlation = if correlations.is_empty() {
            None
        } else {
            // The correlation engine takes rules in their parsed form: read
            // again the (few) files that hold the rules correlations count.
            let wanted: HashSet<&Path> = correlated.iter().map(|(p, _)| p.as_path()).collect();
            let mut detection_rules = Vec::new();
            for path in wanted {
                let given = self.texts.iter().find(|(name, _)| name == path);
                let Some(text) = given
                    .map(|(_, text)| text.clone())
                    .or_else(|| std::fs::read_to_string(path).ok())
                else {
                    continue;
                };
                if let Ok(collection) = rsigma_parser::parse_sigma_yaml(&text) {
                    for rule in collection.rules {
                        if let Ok(rule) = prepare_rule(rule, pipeline.as_ref())
                            && [&rule.id, &rule.name]
                                .into_iter()
                                .flatten()
                                .any(|n| referenced.contains(n.as_str()))
                        {
                            detection_rules.push(rule);
                        }
                    }
                }
            }
            let correlated: Vec<(PathBuf, LoadedRule)> = correlated
                .into_iter()
                .filter(|(_, r)| r.head.problem.is_none())
                .collect();
            Some(CorrelationSet {
                buckets: Buckets::build(correlated, &filters),
                detection_rules,
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
                cached_files: n_cached,
            },
            cache_problem,
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
    /// Files whose rules came from the rule cache.
    pub cached_files: usize,
}

/// Compiled rules, immutable and shared by every hunting thread.
pub struct RuleSet {
    pub(crate) output: Buckets,
    pub(crate) output_router: Router,
    pub(crate) correlation: Option<CorrelationSet>,
    pub(crate) correlation_router: Option<Router>,
    diagnostics: Vec<Diagnostic>,
    counts: RuleCounts,
    cache_problem: Option<String>,
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
    /// Rules and files that could not be loaded, with the reason. Rules
    /// are compiled when first needed, so after a hunt this also lists any
    /// rule whose compilation failed then (a regex beyond the size limit).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut out = self.diagnostics.clone();
        let sets =
            std::iter::once(&self.output).chain(self.correlation.as_ref().map(|c| &c.buckets));
        for buckets in sets {
            for rule in buckets.buckets.iter().flat_map(|b| b.rules()) {
                if let Some(message) = rule.failure() {
                    out.push(Diagnostic {
                        path: rule.path.clone(),
                        rule: Some(rule.title.clone()),
                        message: message.to_owned(),
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.path, &a.rule, &a.message).cmp(&(&b.path, &b.rule, &b.message)));
        out.dedup();
        out
    }

    /// Why the rule cache could not be written, if it could not; the rules
    /// loaded all the same.
    pub fn cache_problem(&self) -> Option<&str> {
        self.cache_problem.as_deref()
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
        let keywords = KeywordHits::new(&self.output.keywords);
        self.output_router
            .for_each_target(record, |bucket, renames| {
                let view = EventView::new(record, renames);
                out.extend(self.output.buckets[bucket].evaluate(&view, &keywords));
            });
        out
    }
}

/// Rules grouped into one [`Bucket`] per log source.
pub(crate) struct Buckets {
    pub buckets: Vec<Bucket>,
    /// The keyword literals of all of them, searched once per record.
    pub keywords: Keywords,
    pub index: HashMap<SourceKey, usize>,
    pub n_rules: usize,
}

impl Buckets {
    fn build(rules: Vec<(PathBuf, LoadedRule)>, filters: &Arc<Vec<CompiledFilter>>) -> Self {
        let n_rules = rules.len();
        let mut grouped: BTreeMap<SourceKey, Vec<(PathBuf, LoadedRule)>> = BTreeMap::new();
        for (path, rule) in rules {
            grouped
                .entry(SourceKey::of(&rule.head.logsource))
                .or_default()
                .push((path, rule));
        }
        let groups: Vec<(SourceKey, Vec<(PathBuf, LoadedRule)>)> = grouped.into_iter().collect();
        let built: Vec<(SourceKey, Bucket)> = groups
            .into_par_iter()
            .map(|(key, rules)| (key, Bucket::new(rules, Arc::clone(filters))))
            .collect();
        let mut index = HashMap::new();
        let mut buckets = Vec::with_capacity(built.len());
        for (i, (key, bucket)) in built.into_iter().enumerate() {
            index.insert(key, i);
            buckets.push(bucket);
        }
        let keywords = Keywords::index(&mut buckets);
        Buckets {
            buckets,
            keywords,
            index,
            n_rules,
        }
    }
}

/// A Sigma filter compiled once and spliced into every rule it targets:
/// its detections are added under private names and each of the rule's
/// conditions becomes `condition and filter-condition` (what rsigma's
/// `Engine::apply_filter` does, without rebuilding an engine per filter).
pub(crate) struct CompiledFilter {
    target: FilterRuleTarget,
    logsource: Option<rsigma_parser::LogSource>,
    detections: Vec<(String, CompiledDetection)>,
    condition: ConditionExpr,
}

impl CompiledFilter {
    fn compile_all(filters: &[FilterRule], diagnostics: &mut Vec<Diagnostic>) -> Vec<Self> {
        let mut out = Vec::new();
        for (n, filter) in filters.iter().enumerate() {
            match Self::compile(filter, n) {
                Ok(Some(compiled)) => out.push(compiled),
                Ok(None) => {}
                Err(e) => diagnostics.push(Diagnostic {
                    path: PathBuf::new(),
                    rule: Some(filter.title.clone()),
                    message: format!("filter not applied: {e}"),
                }),
            }
        }
        out
    }

    fn compile(filter: &FilterRule, n: usize) -> Result<Option<Self>, rsigma_eval::EvalError> {
        let prefix = format!("__filter_{n}_");
        let mut detections = Vec::new();
        let mut names: Vec<&String> = filter.detection.named.keys().collect();
        names.sort();
        for name in names {
            let compiled = compile_detection(&filter.detection.named[name])?;
            detections.push((format!("{prefix}{name}"), compiled));
        }
        if detections.is_empty() {
            return Ok(None);
        }
        let condition = match filter.detection.conditions.first() {
            Some(expr) => prefix_identifiers(expr, &prefix),
            None => ConditionExpr::And(
                detections
                    .iter()
                    .map(|(name, _)| ConditionExpr::Identifier(name.clone()))
                    .collect(),
            ),
        };
        Ok(Some(CompiledFilter {
            target: filter.rules.clone(),
            logsource: filter.logsource.clone(),
            detections,
            condition,
        }))
    }

    pub(crate) fn apply(&self, rule: &mut CompiledRule) {
        let targeted = match &self.target {
            FilterRuleTarget::Any => true,
            FilterRuleTarget::Specific(refs) => refs
                .iter()
                .any(|r| rule.id.as_deref() == Some(r.as_str()) || rule.title == *r),
        };
        let same_source = self.logsource.as_ref().is_none_or(|ls| {
            let within = |f: &Option<String>, r: &Option<String>| {
                f.as_ref()
                    .is_none_or(|f| r.as_ref().is_some_and(|r| f.eq_ignore_ascii_case(r)))
            };
            within(&ls.category, &rule.logsource.category)
                && within(&ls.product, &rule.logsource.product)
                && within(&ls.service, &rule.logsource.service)
        });
        if !(targeted && same_source) {
            return;
        }
        for (name, detection) in &self.detections {
            rule.detections.insert(name.clone(), detection.clone());
        }
        for condition in &mut rule.conditions {
            let original = std::mem::replace(condition, ConditionExpr::And(Vec::new()));
            *condition = ConditionExpr::And(vec![original, self.condition.clone()]);
        }
    }
}

fn prefix_identifiers(expr: &ConditionExpr, prefix: &str) -> ConditionExpr {
    let each = |children: &[ConditionExpr]| {
        children
            .iter()
            .map(|c| prefix_identifiers(c, prefix))
            .collect()
    };
    match expr {
        ConditionExpr::Identifier(name) => ConditionExpr::Identifier(format!("{prefix}{name}")),
        ConditionExpr::And(children) => ConditionExpr::And(each(children)),
        ConditionExpr::Or(children) => ConditionExpr::Or(each(children)),
        ConditionExpr::Not(child) => {
            ConditionExpr::Not(Box::new(prefix_identifiers(child, prefix)))
        }
        // Selectors name patterns, and `them` skips the `__` names.
        ConditionExpr::Selector { .. } => expr.clone(),
    }
}

/// Correlation rules and the detection rules they count.
pub(crate) struct CorrelationSet {
    pub buckets: Buckets,
    pub detection_rules: Vec<SigmaRule>,
    pub correlations: Vec<CorrelationRule>,
}

/// Whether a file's rules came from, or can go into, the rule cache.
#[derive(Clone, Copy)]
enum CacheUse {
    No,
    Hit(u64),
    Miss(u64),
}

struct ParsedFile {
    path: PathBuf,
    rules: Vec<LoadedRule>,
    correlations: Vec<CorrelationRule>,
    filters: Vec<FilterRule>,
    diagnostics: Vec<Diagnostic>,
    cache: CacheUse,
}

impl ParsedFile {
    fn empty(path: &Path) -> Self {
        ParsedFile {
            path: path.to_owned(),
            rules: Vec::new(),
            correlations: Vec::new(),
            filters: Vec::new(),
            diagnostics: Vec::new(),
            cache: CacheUse::No,
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
    let problem = |rule: Option<&str>, message: String| Diagnostic {
        path: path.to_owned(),
        rule: rule.map(str::to_owned),
        message,
    };
    match rsigma_parser::parse_sigma_yaml(&text) {
        Ok(collection) => {
            parsed
                .diagnostics
                .extend(collection.errors.into_iter().map(|e| problem(None, e)));
            for rule in collection.rules {
                let title = rule.title.clone();
                let lowered = prepare_rule(rule, pipeline).and_then(|rule| {
                    let mut ir = rsigma_ir::lower_rule(&rule, &rsigma_ir::LowerOptions::default())
                        .map_err(|e| e.to_string())?;
                    windash_slashes(&mut ir);
                    Ok(ir)
                });
                match lowered {
                    Ok(ir) => {
                        let problem = static_problem(&ir);
                        parsed.rules.push(LoadedRule::new(ir, problem));
                    }
                    Err(message) => parsed.diagnostics.push(problem(Some(&title), message)),
                }
            }
            parsed.correlations = collection.correlations;
            parsed
                .correlations
                .iter_mut()
                .for_each(temporal_needs_every_rule);
            parsed.filters = collection.filters;
        }
        Err(e) => parsed.diagnostics.push(problem(None, e.to_string())),
    }
    parsed
}

/// Our corrections to a parsed rule, then the `expand` placeholders.
fn prepare_rule(
    mut rule: SigmaRule,
    pipeline: Option<&rsigma_eval::Pipeline>,
) -> Result<SigmaRule, String> {
    // rsigma matches correlation references against rule ids only; a rule
    // known by its `name` alone is known by that.
    if rule.id.is_none() {
        rule.id = rule.name.clone();
    }
    for detection in rule.detection.named.values_mut() {
        keyword_modifiers_have_no_field(detection);
    }
    if let Some(pipeline) = pipeline {
        rsigma_eval::apply_pipelines(std::slice::from_ref(pipeline), &mut rule)
            .map_err(|e| format!("placeholders: {e}"))?;
    }
    Ok(rule)
}

/// Sigma's `windash` permutes `-` and `/` (pySigma: at the start of a word);
/// rsigma 0.23 permutes `-` only, so `' /i '` missed `' -i '`. A `/` opening
/// a word becomes `-`, which rsigma expands to `-`, `/` and the three dashes.
fn windash_slashes(rule: &mut IrRule) {
    use rsigma_ir::{IrDetection, IrEncoding, IrMatcher};
    fn matcher(m: &mut IrMatcher) {
        match m {
            IrMatcher::Encoded {
                encodings, value, ..
            } if encodings.contains(&IrEncoding::Windash) => {
                let chars: Vec<char> = value.chars().collect();
                let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
                *value = chars
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        let opens_word = c == '/'
                            && !word(i.checked_sub(1).and_then(|p| chars.get(p)))
                            && word(chars.get(i + 1));
                        if opens_word { '-' } else { c }
                    })
                    .collect();
            }
            IrMatcher::Not(inner) | IrMatcher::TimestampPart { inner, .. } => matcher(inner),
            IrMatcher::AnyOf(children) | IrMatcher::AllOf(children) => {
                children.iter_mut().for_each(matcher)
            }
            _ => {}
        }
    }
    fn detection(d: &mut IrDetection) {
        match d {
            IrDetection::AllOf(items) => items.iter_mut().for_each(|i| matcher(&mut i.matcher)),
            IrDetection::AnyOf(children) | IrDetection::And(children) => {
                children.iter_mut().for_each(detection)
            }
            IrDetection::Keywords(m) => matcher(m),
            IrDetection::ArrayMatch { body, .. } => detection(body),
            IrDetection::Conditional { named, .. } => named.values_mut().for_each(detection),
        }
    }
    rule.detections.values_mut().for_each(detection);
}

/// Problems that would make the rule fail to compile, found without
/// compiling it (rules are compiled when first needed): empty detections,
/// regexes that do not parse, malformed CIDR blocks.
fn static_problem(rule: &IrRule) -> Option<String> {
    use rsigma_ir::{IrDetection, IrMatcher};
    fn matcher(m: &IrMatcher) -> Option<String> {
        match m {
            IrMatcher::Regex {
                pattern,
                case_insensitive,
                multiline,
                dotall,
                ..
            } => regex_syntax::ParserBuilder::new()
                .case_insensitive(*case_insensitive)
                .multi_line(*multiline)
                .dot_matches_new_line(*dotall)
                .build()
                .parse(pattern)
                .err()
                .map(|e| format!("invalid regex {pattern:?}: {e}")),
            IrMatcher::Cidr { network } => cidr_problem(network),
            IrMatcher::Encoded {
                encodings, value, ..
            } if encodings.contains(&rsigma_ir::IrEncoding::Windash)
                && value.matches('-').count() > 8 =>
            {
                Some(format!("windash value {value:?} has more than 8 dashes"))
            }
            IrMatcher::Not(inner) | IrMatcher::TimestampPart { inner, .. } => matcher(inner),
            IrMatcher::AnyOf(children) | IrMatcher::AllOf(children) => {
                children.iter().find_map(matcher)
            }
            _ => None,
        }
    }
    fn detection(d: &IrDetection) -> Option<String> {
        match d {
            IrDetection::AllOf(items) if items.is_empty() => Some("empty selection".to_owned()),
            IrDetection::AnyOf(children) | IrDetection::And(children) if children.is_empty() => {
                Some("empty selection".to_owned())
            }
            IrDetection::AllOf(items) => items.iter().find_map(|i| matcher(&i.matcher)),
            IrDetection::AnyOf(children) | IrDetection::And(children) => {
                children.iter().find_map(detection)
            }
            IrDetection::Keywords(m) => matcher(m),
            IrDetection::ArrayMatch { body, .. } => detection(body),
            IrDetection::Conditional { named, .. } if named.is_empty() => {
                Some("empty selection".to_owned())
            }
            IrDetection::Conditional { named, .. } => named.values().find_map(detection),
        }
    }
    let mut names: Vec<&String> = rule.detections.keys().collect();
    names.sort();
    names
        .into_iter()
        .find_map(|n| detection(&rule.detections[n]))
}

fn cidr_problem(network: &str) -> Option<String> {
    let valid = network.split_once('/').is_some_and(|(addr, len)| {
        match (addr.parse::<std::net::IpAddr>(), len.parse::<u8>()) {
            (Ok(std::net::IpAddr::V4(_)), Ok(len)) => len <= 32,
            (Ok(std::net::IpAddr::V6(_)), Ok(len)) => len <= 128,
            _ => false,
        }
    });
    (!valid).then(|| format!("invalid CIDR block {network:?}"))
}

fn collect_rule_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), HuntError> {
    collect_files(path, &["yml", "yaml"], out)
}

/// A file as given, or a folder's files (recursively) whose extension is
/// one of `extensions` (ignoring case): how rule paths are read.
pub(crate) fn collect_files(
    path: &Path,
    extensions: &[&str],
    out: &mut Vec<PathBuf>,
) -> Result<(), HuntError> {
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
            collect_files(&child, extensions, out)?;
        } else if child
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
        {
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
