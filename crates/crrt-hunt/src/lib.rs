//! The CRRT hunt engine: evidence in, [`Finding`]s out. Pure library: no
//! sockets, no database, no command-line parsing.
//!
//! - [`RuleLoader`] reads Sigma rules (detection, filter and correlation
//!   rules) into an immutable, `Send + Sync` [`RuleSet`]. A rule that fails
//!   to parse becomes a [`Diagnostic`], never an error.
//! - [`discover`] turns paths into [`Evidence`]; readers detect each file's
//!   format from its content (EVTX, JSON/JSON Lines, W3C and combined
//!   access logs, syslog, ZIP packages) and normalise events to [`Record`]s,
//!   Windows ones under the field names Sigma rules use.
//! - [`IndicatorSet`] matches indicators (values, CIDR blocks) against
//!   every field of every record, in one automaton pass per event.
//! - [`Hunter`] routes each record to the rules of its log source
//!   ([`LogSourceMap`]), matches on all cores and returns a [`HuntReport`]
//!   with findings in a deterministic order.
//!
//! ```no_run
//! use crrt_hunt::{Hunter, Progress, RuleLoader, discover};
//!
//! let rules = RuleLoader::new().path("sigma/rules/windows").load()?;
//! let evidence = discover(&["triage.zip".into()])?;
//! let report = Hunter::new(&rules).run(&evidence, &Progress::default());
//! for finding in &report.findings {
//!     println!("{} {} {:?}", finding.level.as_str(), finding.rule_title, finding.host);
//! }
//! # Ok::<(), crrt_hunt::HuntError>(())
//! ```

mod bucket;
mod cache;
mod error;
mod finding;
mod hunt;
mod indicators;
mod keytable;
mod logsource;
mod record;
mod route;
mod rules;
mod source;
mod spill;
mod time;
mod traffic;
mod windows;
mod yara;

pub use error::HuntError;
pub use finding::{Finding, Severity};
pub use hunt::{HuntReport, HuntStats, Hunter, Progress, ReadProblem, TimeWindow};
pub use indicators::{IndicatorHit, IndicatorSet, IndicatorSpec, SpecRef};
pub use logsource::LogSourceMap;
pub use record::{Fields, Record, RecordKind};
pub use rsigma_parser::{Level, Status};
pub use rules::{Diagnostic, RuleCounts, RuleLoader, RuleSelection, RuleSet};
pub use source::{Evidence, Format, ReadLimits, detect, discover};
pub use spill::{Found, Spill};
pub use time::{format_timestamp, parse_timestamp};
pub use traffic::{Spike, TrafficReport, Verdict};
pub use yara::{YaraLimits, YaraLoader, YaraRules, YaraStats};
