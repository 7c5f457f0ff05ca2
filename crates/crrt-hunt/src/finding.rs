//! What a hunt reports: one [`Finding`] per rule that fired on an event.

use jiff::Timestamp;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// Severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Informational,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub(crate) fn from_sigma(level: Option<rsigma_parser::Level>) -> Self {
        use rsigma_parser::Level;
        match level {
            Some(Level::Critical) => Severity::Critical,
            Some(Level::High) => Severity::High,
            Some(Level::Medium) => Severity::Medium,
            Some(Level::Low) => Severity::Low,
            Some(Level::Informational) | None => Severity::Informational,
        }
    }

    pub fn to_sigma(self) -> rsigma_parser::Level {
        use rsigma_parser::Level;
        match self {
            Severity::Informational => Level::Informational,
            Severity::Low => Level::Low,
            Severity::Medium => Level::Medium,
            Severity::High => Level::High,
            Severity::Critical => Level::Critical,
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Ok(Severity::Informational),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown level {other:?}: expected informational, low, medium, high or critical"
            )),
        }
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A rule that fired, with the event that made it fire.
///
/// The serialised field names are a stable interface: the platform and
/// other tools read `crrt hunt --format jsonl` output by them.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    #[serde(serialize_with = "serialize_timestamp")]
    pub timestamp: Option<Timestamp>,
    pub host: Option<String>,
    pub channel: Option<String>,
    pub event_id: Option<u32>,
    pub record_id: Option<u64>,
    pub rule_id: Option<String>,
    pub rule_title: String,
    pub level: Severity,
    pub tags: Vec<String>,
    /// The evidence path as given; inside a ZIP, `archive.zip!/member/path`.
    pub evidence_file: String,
    /// The matched event's fields; for a correlation, what it counted.
    pub event: Value,
}

impl Finding {
    /// ATT&CK technique ids among the tags (`attack.t1059.001` → `T1059.001`).
    pub fn attack_techniques(&self) -> impl Iterator<Item = String> + '_ {
        self.tags.iter().filter_map(|t| {
            let rest = t.strip_prefix("attack.t")?;
            rest.starts_with(|c: char| c.is_ascii_digit())
                .then(|| format!("T{}", rest.to_ascii_uppercase()))
        })
    }
}

pub(crate) fn serialize_timestamp<S: Serializer>(
    ts: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => s.serialize_str(&crate::time::format_timestamp(*ts)),
        None => s.serialize_none(),
    }
}
