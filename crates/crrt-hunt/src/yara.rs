//! YARA over files with `yara-x`: plain files (memory-mapped), members of
//! ZIP triage packages (in memory, inside the package's expansion budget),
//! in parallel across files. A match is a [`Finding`] naming the rule, its
//! metadata, the file's hashes and the matched strings with their offsets.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use jiff::Timestamp;
use md5::Md5;
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use yara_x::{Compiler, Rules, ScanError, ScanResults, Scanner, SourceCode};

use crate::error::HuntError;
use crate::finding::{Finding, Severity};
use crate::rules::{Diagnostic, collect_files};
use crate::source::{BudgetReader, Evidence, ReadLimits, zip_guard};

/// External variables that public rule sets (signature-base, LOKI, THOR)
/// use; defined for every rule and set per scanned file.
const EXTERNALS: [&str; 5] = ["filename", "filepath", "extension", "filetype", "owner"];

/// Matched strings shown per pattern, and bytes shown per match: enough
/// to judge a hit, not a copy of the file.
const SHOWN_MATCHES: usize = 10;
const SHOWN_BYTES: usize = 64;

/// Nested archives deeper than this are not opened.
const MAX_DEPTH: usize = 3;

/// Reads YARA rule files: a file, or a folder searched recursively for
/// `.yar` and `.yara`. Each file compiles in its own namespace, so two
/// files may reuse a rule name; a file that does not compile is reported
/// with its line and left out, and the others still load.
#[derive(Debug, Default)]
pub struct YaraLoader {
    paths: Vec<PathBuf>,
    texts: Vec<(PathBuf, String)>,
    cache_dir: Option<PathBuf>,
}

impl YaraLoader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Rules given as text; `name` stands for the file in diagnostics.
    pub fn text(mut self, name: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.texts.push((name.into(), text.into()));
        self
    }

    /// Keeps the compiled rules in `dir`, keyed by every rule file's path
    /// and bytes, so the next load of the same files skips compiling (a
    /// public set takes seconds). Off by default. The cache holds native
    /// code yara-x compiled: it must be a folder only its user can write.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    pub fn load(self) -> Result<YaraRules, HuntError> {
        let mut files = Vec::new();
        for path in &self.paths {
            let before = files.len();
            collect_files(path, &["yar", "yara"], &mut files)?;
            if files.len() == before {
                return Err(HuntError::NoYaraRules { path: path.clone() });
            }
        }
        files.sort();
        files.dedup();
        let mut sources = Vec::with_capacity(files.len() + self.texts.len());
        for file in files {
            let bytes = std::fs::read(&file).map_err(|e| HuntError::io(&file, e))?;
            sources.push((file, bytes));
        }
        sources.extend(
            self.texts
                .into_iter()
                .map(|(name, text)| (name, text.into_bytes())),
        );
        let Some(dir) = self.cache_dir else {
            return Ok(compile(&sources));
        };
        let path = dir.join(format!("yara-{:016x}.bin", cache_key(&sources)));
        if let Some(rules) = std::fs::read(&path).ok().and_then(|b| decode(&b)) {
            return Ok(rules);
        }
        let mut rules = compile(&sources);
        rules.cache_problem = save(&rules, &path).err();
        Ok(rules)
    }
}

const CACHE_MAGIC: &[u8; 16] = b"crrt-yara-rules1";

fn cache_key(sources: &[(PathBuf, Vec<u8>)]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    // Our version pins yara-x's (Cargo.lock): its compiled form changes with it.
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    sources.hash(&mut hasher);
    hasher.finish()
}

/// Magic, the length of a JSON header (counts and diagnostics), the header,
/// then yara-x's own serialised rules (which check their own format).
fn save(rules: &YaraRules, path: &Path) -> Result<(), String> {
    let header = json!({
        "files": rules.files,
        "files_compiled": rules.files_compiled,
        "diagnostics": rules.diagnostics.iter().map(|d| json!([d.path.to_string_lossy(), d.message])).collect::<Vec<_>>(),
    })
    .to_string();
    let body = rules.rules.serialize().map_err(|e| e.to_string())?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut bytes = Vec::with_capacity(body.len() + header.len() + 24);
    bytes.extend_from_slice(CACHE_MAGIC);
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&body);
    std::io::Write::write_all(&mut tmp, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| format!("{}: {}", path.display(), e.error))?;
    // Older compiled sets of other rule files are dropped: they are large.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("yara-") && name.ends_with(".bin") && entry.path() != path {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// `None` for anything but a complete cache file yara-x accepts.
fn decode(bytes: &[u8]) -> Option<YaraRules> {
    let rest = bytes.strip_prefix(CACHE_MAGIC.as_slice())?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    if rest.len() < len {
        return None;
    }
    let (header, body) = rest.split_at(len);
    let header: Value = serde_json::from_slice(header).ok()?;
    let rules = Rules::deserialize(body).ok()?;
    let diagnostics = header["diagnostics"]
        .as_array()?
        .iter()
        .map(|d| {
            Some(Diagnostic {
                path: PathBuf::from(d.get(0)?.as_str()?),
                rule: None,
                message: d.get(1)?.as_str()?.to_owned(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let rule_count = rules.iter().len();
    Some(YaraRules {
        rules,
        diagnostics,
        files: usize::try_from(header["files"].as_u64()?).ok()?,
        files_compiled: usize::try_from(header["files_compiled"].as_u64()?).ok()?,
        rule_count,
        from_cache: true,
        cache_problem: None,
    })
}

fn compile(sources: &[(PathBuf, Vec<u8>)]) -> YaraRules {
    let mut compiler = Compiler::new();
    // What libyara accepts (`\/`, `{` unescaped...) public rule sets use.
    compiler.relaxed_re_syntax(true);
    for name in EXTERNALS {
        // Defining a fresh name cannot fail.
        let _ = compiler.define_global(name, "");
    }
    let mut diagnostics = Vec::new();
    let mut files_compiled = 0;
    for (path, bytes) in sources {
        let origin = path.display().to_string();
        compiler.new_namespace(&origin);
        let before = compiler.errors().len();
        let source = SourceCode::from(bytes.as_slice()).with_origin(origin.as_str());
        if compiler.add_source(source).is_ok() {
            files_compiled += 1;
        }
        for error in &compiler.errors()[before..] {
            diagnostics.push(describe(path, error));
        }
    }
    let rules = compiler.build();
    let rule_count = rules.iter().len();
    YaraRules {
        rules,
        diagnostics,
        files: sources.len(),
        files_compiled,
        rule_count,
        from_cache: false,
        cache_problem: None,
    }
}

/// `file:line: title` from a compile error's first label.
fn describe(path: &Path, error: &yara_x::errors::CompileError) -> Diagnostic {
    let report = serde_json::to_value(error).unwrap_or(Value::Null);
    let title = report
        .get("title")
        .and_then(Value::as_str)
        .map_or_else(|| error.to_string(), str::to_owned);
    let label = report.get("labels").and_then(|l| l.get(0));
    let line = label.and_then(|l| l.get("line")).and_then(Value::as_u64);
    let detail = label
        .and_then(|l| l.get("text"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && *t != title);
    let mut message = match line {
        Some(line) => format!("line {line}: {title}"),
        None => title,
    };
    if let Some(detail) = detail {
        message.push_str(&format!(" ({detail})"));
    }
    Diagnostic {
        path: path.to_owned(),
        rule: None,
        message,
    }
}

/// Compiled YARA rules, `Send + Sync`: one set serves every scanning thread.
pub struct YaraRules {
    rules: Rules,
    diagnostics: Vec<Diagnostic>,
    files: usize,
    files_compiled: usize,
    rule_count: usize,
    from_cache: bool,
    cache_problem: Option<String>,
}

impl std::fmt::Debug for YaraRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraRules")
            .field("files", &self.files)
            .field("rules", &self.rule_count)
            .finish_non_exhaustive()
    }
}

impl YaraRules {
    /// Rule files that did not compile (file, line, reason).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Rule files read, and how many of them compiled whole.
    pub fn file_counts(&self) -> (usize, usize) {
        (self.files, self.files_compiled)
    }

    /// Whether the compiled rules came from the cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// Why the compiled rules could not be kept in the cache, if so.
    pub fn cache_problem(&self) -> Option<&str> {
        self.cache_problem.as_deref()
    }

    pub(crate) fn scanner(&self, timeout: Duration) -> Scanner<'_> {
        let mut scanner = Scanner::new(&self.rules);
        scanner.set_timeout(timeout);
        // Offsets are shown for a few matches; counting millions helps no one.
        scanner.max_matches_per_pattern(1_000);
        scanner
    }
}

/// Bounds on a YARA scan.
#[derive(Debug, Clone, Copy)]
pub struct YaraLimits {
    /// Files (and archive members) larger than this are skipped and counted.
    pub max_file_bytes: u64,
    /// A file whose scan takes longer is reported and left.
    pub timeout: Duration,
}

impl Default for YaraLimits {
    fn default() -> Self {
        YaraLimits {
            max_file_bytes: 256 << 20,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What the YARA pass did, for the summary.
#[derive(Debug, Clone, Default)]
pub struct YaraStats {
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    /// Files over [`YaraLimits::max_file_bytes`]: name and size.
    pub too_large: Vec<(String, u64)>,
    /// Files that could not be scanned (unreadable, timeout): name and reason.
    pub failed: Vec<(String, String)>,
}

/// Where one scan's results go; called from several threads.
pub(crate) trait YaraSink: Sync {
    fn scanned(&self, bytes: u64);
    fn finding(&self, finding: Finding);
    fn too_large(&self, name: &str, size: u64);
    fn failed(&self, name: &str, reason: String);
    fn cancelled(&self) -> bool;
}

/// One file as YARA sees it: its name for the report, its path for the
/// external variables, its content and when it was last written.
struct Target<'a> {
    name: &'a str,
    path: &'a str,
    content: Content<'a>,
    modified: Option<Timestamp>,
}

enum Content<'a> {
    /// On disk: yara-x memory-maps it, so the page cache holds the bytes.
    File(&'a Path, u64),
    /// An archive member, read within the archive's budget.
    Bytes(&'a [u8]),
}

impl Content<'_> {
    fn len(&self) -> u64 {
        match self {
            Content::File(_, size) => *size,
            Content::Bytes(bytes) => bytes.len() as u64,
        }
    }

    /// The first bytes, for the file type.
    fn head(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Content::Bytes(bytes) => Ok(bytes[..bytes.len().min(16)].to_vec()),
            Content::File(path, _) => {
                let mut head = Vec::with_capacity(16);
                std::fs::File::open(path)?.take(16).read_to_end(&mut head)?;
                Ok(head)
            }
        }
    }

    /// Feeds the content to `f` in pieces (the file streamed from disk).
    fn for_each_chunk(&self, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
        match self {
            Content::Bytes(bytes) => {
                bytes.chunks(1 << 20).for_each(f);
                Ok(())
            }
            Content::File(path, _) => {
                let mut file = std::fs::File::open(path)?;
                let mut buf = vec![0; 1 << 20];
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    f(&buf[..n]);
                }
            }
        }
    }
}

/// Scans one evidence file from disk and, for a ZIP package, its members.
pub(crate) fn scan_evidence(
    scanner: &mut Scanner<'_>,
    evidence: &Evidence,
    limits: YaraLimits,
    zip_limits: ReadLimits,
    sink: &dyn YaraSink,
) {
    let name = evidence.display();
    if evidence.size > limits.max_file_bytes {
        return sink.too_large(&name, evidence.size);
    }
    let modified = std::fs::metadata(&evidence.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok());
    let path = evidence.path.to_string_lossy();
    let target = Target {
        name: &name,
        path: &path,
        content: Content::File(&evidence.path, evidence.size),
        modified,
    };
    let Some(head) = scan_target(scanner, &target, limits, sink) else {
        return;
    };
    if is_zip(&head) {
        let file = match std::fs::File::open(&evidence.path) {
            Ok(file) => std::io::BufReader::new(file),
            Err(e) => return sink.failed(&name, e.to_string()),
        };
        let spent = AtomicU64::new(0);
        scan_archive(scanner, file, &name, limits, zip_limits, &spent, 1, sink);
    }
}

fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

#[allow(clippy::too_many_arguments)]
fn scan_archive<R: Read + Seek>(
    scanner: &mut Scanner<'_>,
    archive: R,
    name: &str,
    limits: YaraLimits,
    zip_limits: ReadLimits,
    spent: &AtomicU64,
    depth: usize,
    sink: &dyn YaraSink,
) {
    let mut archive = match zip::ZipArchive::new(archive) {
        Ok(a) => a,
        Err(e) => return sink.failed(name, format!("not a readable ZIP archive: {e}")),
    };
    if let Err(reason) = zip_guard(&mut archive, zip_limits.max_unzipped_bytes) {
        return sink.failed(name, format!("refused: {reason}"));
    }
    for index in 0..archive.len() {
        if sink.cancelled() {
            return;
        }
        let entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(e) => {
                sink.failed(&format!("{name}!/#{index}"), e.to_string());
                continue;
            }
        };
        if entry.is_dir() {
            continue;
        }
        let inner = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("#{index}"));
        let member = format!("{name}!/{inner}");
        if entry.size() > limits.max_file_bytes {
            sink.too_large(&member, entry.size());
            continue;
        }
        let modified = entry.last_modified().and_then(zip_time);
        // The declared size can lie: read at most one byte past the limit.
        let mut bytes = Vec::new();
        let read = BudgetReader::new(entry, spent, zip_limits.max_unzipped_bytes)
            .take(limits.max_file_bytes + 1)
            .read_to_end(&mut bytes);
        if let Err(e) = read {
            sink.failed(&member, e.to_string());
            if spent.load(std::sync::atomic::Ordering::Relaxed) > zip_limits.max_unzipped_bytes {
                return;
            }
            continue;
        }
        if bytes.len() as u64 > limits.max_file_bytes {
            sink.too_large(&member, bytes.len() as u64);
            continue;
        }
        let target = Target {
            name: &member,
            path: &inner,
            content: Content::Bytes(&bytes),
            modified,
        };
        if scan_target(scanner, &target, limits, sink).is_some() && is_zip(&bytes) {
            if depth >= MAX_DEPTH {
                sink.failed(
                    &member,
                    format!("archive nested more than {MAX_DEPTH} deep, not opened"),
                );
            } else {
                scan_archive(
                    scanner,
                    std::io::Cursor::new(&bytes),
                    &member,
                    limits,
                    zip_limits,
                    spent,
                    depth + 1,
                    sink,
                );
            }
        }
    }
}

/// ZIP times carry no zone; they are read as UTC.
fn zip_time(t: zip::DateTime) -> Option<Timestamp> {
    jiff::civil::date(t.year() as i16, t.month() as i8, t.day() as i8)
        .at(t.hour() as i8, t.minute() as i8, t.second() as i8, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// Scans one file; returns its first bytes when the scan ran.
fn scan_target(
    scanner: &mut Scanner<'_>,
    target: &Target<'_>,
    limits: YaraLimits,
    sink: &dyn YaraSink,
) -> Option<Vec<u8>> {
    let head = match target.content.head() {
        Ok(head) => head,
        Err(e) => {
            sink.failed(target.name, e.to_string());
            return None;
        }
    };
    let base = target
        .path
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(target.path);
    let extension = base
        .rsplit_once('.')
        .map(|(_, ext)| format!(".{}", ext.to_ascii_lowercase()))
        .unwrap_or_default();
    let externals = [
        ("filename", base.to_owned()),
        ("filepath", target.path.to_owned()),
        ("extension", extension),
        ("filetype", file_type(&head).to_owned()),
    ];
    for (name, value) in externals {
        // Defined at compile time as strings; setting a string cannot fail.
        let _ = scanner.set_global(name, value.as_str());
    }
    let results = match target.content {
        Content::File(path, _) => scanner.scan_file(path),
        Content::Bytes(bytes) => scanner.scan(bytes),
    };
    match results {
        Ok(results) => {
            sink.scanned(target.content.len());
            for finding in findings(&results, target, &head) {
                sink.finding(finding);
            }
            Some(head)
        }
        Err(ScanError::Timeout) => {
            sink.failed(
                target.name,
                format!("YARA scan timed out after {} s", limits.timeout.as_secs()),
            );
            None
        }
        Err(e) => {
            sink.failed(target.name, format!("YARA: {e}"));
            None
        }
    }
}

/// The coarse file type LOKI and THOR give the `filetype` variable.
fn file_type(data: &[u8]) -> &'static str {
    const MAGIC: [(&[u8], &str); 12] = [
        (b"MZ", "EXE"),
        (b"\x7fELF", "ELF"),
        (b"\xfe\xed\xfa\xce", "MACH-O"),
        (b"\xfe\xed\xfa\xcf", "MACH-O"),
        (b"\xce\xfa\xed\xfe", "MACH-O"),
        (b"\xcf\xfa\xed\xfe", "MACH-O"),
        (b"MDMP", "MDMP"),
        (b"{\\rtf", "RTF"),
        (b"PK\x03\x04", "ZIP"),
        (b"%PDF", "PDF"),
        (b"\xd0\xcf\x11\xe0", "CAB"),
        (b"ElfFile\0", "EVTX"),
    ];
    MAGIC
        .iter()
        .find(|(magic, _)| data.starts_with(magic))
        .map_or("UNKNOWN", |(_, kind)| kind)
}

fn findings(results: &ScanResults<'_, '_>, target: &Target<'_>, head: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut hashes: Option<Value> = None;
    for rule in results.matching_rules() {
        let meta = rule.metadata().into_json();
        let mut tags: Vec<String> = vec!["yara".to_owned()];
        tags.extend(rule.tags().map(|t| attack_tag(t.identifier())));
        let mut strings = Vec::new();
        for pattern in rule.patterns() {
            let matches: Vec<_> = pattern.matches().collect();
            if matches.is_empty() {
                continue;
            }
            let shown: Vec<Value> = matches
                .iter()
                .take(SHOWN_MATCHES)
                .map(|m| {
                    json!({
                        "offset": m.range().start,
                        "length": m.range().len(),
                        "data": escape(&m.data()[..m.data().len().min(SHOWN_BYTES)]),
                    })
                })
                .collect();
            strings.push(json!({
                "pattern": pattern.identifier(),
                "count": matches.len(),
                "matches": shown,
            }));
        }
        let file = hashes
            .get_or_insert_with(|| file_facts(target, head))
            .clone();
        let level = level_from_meta(&meta);
        let event = json!({
            "file": file,
            "rule": {
                "name": rule.identifier(),
                "namespace": rule.namespace(),
                "tags": rule.tags().map(|t| t.identifier()).collect::<Vec<_>>(),
                "meta": meta,
            },
            "strings": strings,
        });
        out.push(Finding {
            timestamp: target.modified,
            host: None,
            channel: None,
            event_id: None,
            record_id: None,
            rule_id: Some(format!("yara:{}", rule.identifier())),
            rule_title: rule.identifier().to_owned(),
            level,
            tags,
            evidence_file: target.name.to_owned(),
            event,
        });
    }
    out
}

fn file_facts(target: &Target<'_>, head: &[u8]) -> Value {
    let mut md5 = Md5::new();
    let mut sha1 = Sha1::new();
    let mut sha256 = Sha256::new();
    let hashed = target.content.for_each_chunk(|chunk| {
        md5.update(chunk);
        sha1.update(chunk);
        sha256.update(chunk);
    });
    let mut facts = Map::new();
    facts.insert("path".into(), target.path.into());
    facts.insert("size".into(), target.content.len().into());
    match hashed {
        Ok(()) => {
            facts.insert("md5".into(), hex::encode(md5.finalize()).into());
            facts.insert("sha1".into(), hex::encode(sha1.finalize()).into());
            facts.insert("sha256".into(), hex::encode(sha256.finalize()).into());
        }
        // Matched, then gone or unreadable: the match still stands.
        Err(e) => {
            facts.insert("hash_error".into(), e.to_string().into());
        }
    }
    facts.insert("type".into(), file_type(head).into());
    if let Some(modified) = target.modified {
        facts.insert(
            "modified".into(),
            crate::time::format_timestamp(modified).into(),
        );
    }
    Value::Object(facts)
}

/// A rule's level: its `severity` or `level` metadata when it names one,
/// else its `score` (0-100, as in signature-base and THOR), else high: a
/// malware signature matched.
fn level_from_meta(meta: &Value) -> Severity {
    let lookup = |key: &str| {
        meta.as_array()?.iter().find_map(|pair| {
            let pair = pair.as_array()?;
            (pair.first()?.as_str()? == key).then(|| pair.get(1).cloned())?
        })
    };
    for key in ["severity", "level"] {
        if let Some(level) = lookup(key)
            .and_then(|v| v.as_str().map(str::to_owned))
            .and_then(|s| s.parse::<Severity>().ok())
        {
            return level;
        }
    }
    match lookup("score").and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok())) {
        Some(score) if score >= 80 => Severity::Critical,
        Some(score) if score >= 60 => Severity::High,
        Some(score) if score >= 40 => Severity::Medium,
        Some(_) => Severity::Low,
        None => Severity::High,
    }
}

/// A tag such as `T1485` becomes `attack.t1485`, the form Sigma findings use.
fn attack_tag(tag: &str) -> String {
    let lower = tag.to_ascii_lowercase();
    let is_technique = lower.len() >= 5
        && lower.starts_with('t')
        && lower[1..5].bytes().all(|b| b.is_ascii_digit());
    if is_technique {
        format!("attack.{}", lower.replace('_', "."))
    } else {
        lower
    }
}

/// Printable ASCII as is, the rest as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_come_from_metadata() {
        let meta = |pairs: Value| pairs;
        assert_eq!(level_from_meta(&meta(json!([]))), Severity::High);
        assert_eq!(
            level_from_meta(&meta(json!([["score", 85]]))),
            Severity::Critical
        );
        assert_eq!(
            level_from_meta(&meta(json!([["score", "40"]]))),
            Severity::Medium
        );
        assert_eq!(
            level_from_meta(&meta(json!([["score", 90], ["severity", "low"]]))),
            Severity::Low
        );
    }

    #[test]
    fn technique_tags_take_the_sigma_form() {
        assert_eq!(attack_tag("T1485"), "attack.t1485");
        assert_eq!(attack_tag("T1059_001"), "attack.t1059.001");
        assert_eq!(attack_tag("APT"), "apt");
        assert_eq!(attack_tag("Trojan"), "trojan");
    }

    #[test]
    fn matched_bytes_are_escaped() {
        assert_eq!(escape(b"MZ\x90\x00a\\"), "MZ\\x90\\x00a\\\\");
    }
}
