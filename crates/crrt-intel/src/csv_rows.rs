//! CSV import: a header row naming the columns, then one indicator per row.
//! Columns (any order, case-insensitive): `value` (required), `type`,
//! `tlp`, `confidence`, `tags` (separated by `;` or `|`), `first_seen`,
//! `expires`, `description`. All rows or none: every bad row is reported
//! by its line, and nothing is returned unless there are none.

use crate::stix::Incoming;
use crate::{Kind, Observable, Problem, Tlp};

pub fn parse(bytes: &[u8]) -> Result<Vec<Incoming>, Vec<Problem>> {
    let problem = |position: String, message: String| vec![Problem { position, message }];
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| problem("line 1".into(), format!("cannot read the header row: {e}")))?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let Some(value_at) = column("value").or_else(|| column("indicator")) else {
        return Err(problem(
            "line 1".into(),
            "the header row has no \"value\" column".into(),
        ));
    };
    let (type_at, tlp_at, confidence_at, tags_at) = (
        column("type"),
        column("tlp"),
        column("confidence"),
        column("tags"),
    );
    let (first_at, expires_at, description_at) = (
        column("first_seen"),
        column("expires"),
        column("description"),
    );
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                problems.push(Problem {
                    position: format!("line {line}"),
                    message: format!("not a CSV row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let get = |at: Option<usize>| at.and_then(|i| record.get(i)).filter(|v| !v.is_empty());
        let row = (|| -> Result<Incoming, String> {
            let kind = get(type_at)
                .map(|t| t.parse::<Kind>())
                .transpose()
                .map_err(|e| e.to_string())?;
            let value = get(Some(value_at)).ok_or("the value is empty")?;
            let observable = Observable::parse(kind, value).map_err(|e| e.to_string())?;
            let tlp = get(tlp_at)
                .map(|t| t.parse::<Tlp>())
                .transpose()
                .map_err(|e| e.to_string())?;
            let confidence = get(confidence_at)
                .map(|c| {
                    c.parse::<u8>()
                        .ok()
                        .filter(|c| *c <= 100)
                        .ok_or(format!("confidence {c:?} is not 0 to 100"))
                })
                .transpose()?;
            let time = |at: Option<usize>, what: &str| {
                get(at)
                    .map(|t| {
                        t.parse::<jiff::Timestamp>()
                            .map(|_| t.to_owned())
                            .or_else(|_| {
                                t.parse::<jiff::civil::Date>()
                                    .map(|d| format!("{d}T00:00:00Z"))
                            })
                            .map_err(|_| format!("{what} {t:?} is not a date or time"))
                    })
                    .transpose()
            };
            Ok(Incoming {
                observable,
                tlp,
                confidence,
                first_seen: time(first_at, "first_seen")?,
                expires_at: time(expires_at, "expires")?,
                tags: get(tags_at)
                    .map(|t| {
                        t.split([';', '|'])
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                description: get(description_at).map(str::to_owned),
                source: None,
            })
        })();
        match row {
            Ok(incoming) => out.push(incoming),
            Err(message) => problems.push(Problem {
                position: format!("line {line}"),
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_and_bad_rows_named() {
        let good = b"Type,Value,TLP,Confidence,Tags,Expires\n\
            ,185.61.137[.]4,amber,80,T1071;malware:WhisperGate,2022-06-01\n\
            mutex,Global\\x,,,,\n";
        let rows = parse(good).expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].observable.value, "185.61.137.4");
        assert_eq!(rows[0].tlp, Some(Tlp::Amber));
        assert_eq!(rows[0].tags, vec!["T1071", "malware:WhisperGate"]);
        assert_eq!(rows[0].expires_at.as_deref(), Some("2022-06-01T00:00:00Z"));
        assert_eq!(rows[1].observable.kind, Kind::Mutex);

        let bad = b"value,tlp,confidence\nevil.com,purple,\n1.2.3.4,,101\nok.example,,\n";
        let problems = parse(bad).expect_err("refused");
        let where_: Vec<&str> = problems.iter().map(|p| p.position.as_str()).collect();
        assert_eq!(where_, ["line 2", "line 3"]);
        assert!(parse(b"name\nx\n").is_err(), "no value column");
    }
}
