//! CRRT's threat-intelligence formats, without storage or network: the
//! platform decides who sees what and keeps it; this crate reads and writes.
//!
//! - [`Observable`]: a value of a [`Kind`] in its canonical spelling
//!   (defanged input accepted); [`Observable::parse_line`] detects the kind.
//! - [`Tlp`]: TLP 2.0 levels and their official STIX marking definitions.
//! - [`stix`]: a bundle out of [`Indicator`]s (patterns, identities,
//!   markings, sightings, malware and attack patterns) and indicators in.
//! - [`misp`]: MISP events in and out.
//! - [`bulk`] and [`csv`](mod@csv_rows): a pasted list, and CSV rows.
//!
//! ```
//! use crrt_intel::{Kind, Observable};
//! let o = Observable::parse_line("hxxp://evil[.]example/payload").unwrap();
//! assert_eq!((o.kind, o.value.as_str()), (Kind::Url, "http://evil.example/payload"));
//! assert_eq!(crrt_intel::stix::pattern(&o), "[url:value = 'http://evil.example/payload']");
//! ```

pub mod csv_rows;
pub mod misp;
mod observable;
pub mod stix;
mod tlp;

pub use observable::{Kind, Observable, refang};
pub use tlp::{TLP2_EXTENSION, Tlp};

#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    #[error("{0}")]
    Invalid(String),
}

/// Something in an input that could not be used, and where it is
/// (`line 4`, `objects[7]`, `Attribute[2]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    pub position: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.position, self.message)
    }
}

/// An indicator as the exports need it: the platform fills this from
/// what the reader may see.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// The platform's id (STIX ids are derived from it).
    pub id: String,
    pub observable: Observable,
    pub tlp: Tlp,
    /// The source organisation's name.
    pub source: String,
    pub confidence: Option<u8>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub expires_at: Option<String>,
    /// ATT&CK technique ids (`T1485`), `malware:NAME`, free labels.
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub sightings: i64,
    pub created_at: String,
    pub modified_at: String,
}

/// A pasted list: one value per line (`TYPE:VALUE` to name the type;
/// blank lines and `#` comments skipped). All lines or none: the problems
/// name each bad line, and nothing is returned unless there are none.
pub mod bulk {
    use super::{Observable, Problem};

    pub fn parse(text: &str) -> Result<Vec<Observable>, Vec<Problem>> {
        let lines: Vec<&str> = text.lines().collect();
        // Large feeds are read on every core: each thread takes a slice
        // of lines, and the results are joined in order.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(lines.len() / 10_000 + 1);
        let chunk = lines.len().div_ceil(threads.max(1)).max(1);
        let parts: Vec<(Vec<Observable>, Vec<Problem>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = lines
                .chunks(chunk)
                .enumerate()
                .map(|(c, slice)| scope.spawn(move || parse_lines(slice, c * chunk)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let mut out = Vec::with_capacity(lines.len());
        let mut problems = Vec::new();
        for (values, bad) in parts {
            out.extend(values);
            problems.extend(bad);
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    fn parse_lines(lines: &[&str], first: usize) -> (Vec<Observable>, Vec<Problem>) {
        let mut out = Vec::with_capacity(lines.len());
        let mut problems = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match Observable::parse_line(line) {
                Ok(o) => out.push(o),
                Err(e) => problems.push(Problem {
                    position: format!("line {}", first + n + 1),
                    message: e.to_string(),
                }),
            }
        }
        (out, problems)
    }
}
