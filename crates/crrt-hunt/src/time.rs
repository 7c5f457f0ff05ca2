//! Timestamps as they appear in evidence, all brought to UTC.

use jiff::{Timestamp, civil::DateTime, tz::TimeZone};

/// Parses RFC 3339 and the common near-misses (a space instead of `T`, no
/// offset, which evidence means as UTC, and trailing fractional digits).
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let normalised = text.replacen(' ', "T", 1);
    if let Ok(ts) = normalised.parse::<Timestamp>() {
        return Some(ts);
    }
    let civil = normalised.trim_end_matches('Z').parse::<DateTime>().ok()?;
    civil.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

pub fn from_epoch_seconds(seconds: f64) -> Option<Timestamp> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.trunc() as i64;
    let nanos = ((seconds - seconds.trunc()) * 1e9) as i32;
    Timestamp::new(whole, nanos).ok()
}

/// RFC 3339 in UTC with microseconds: fixed width, so text order is time order.
pub fn format_timestamp(ts: Timestamp) -> String {
    format!("{ts:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Option<&str>) {
        assert_eq!(
            parse_timestamp(input).map(format_timestamp).as_deref(),
            expected,
            "{input}"
        );
    }

    #[test]
    fn timestamps() {
        check(
            "2019-03-19T23:34:28.460592Z",
            Some("2019-03-19T23:34:28.460592Z"),
        );
        check(
            "2019-03-19 23:34:28.460",
            Some("2019-03-19T23:34:28.460000Z"),
        );
        check(
            "2019-03-19T23:34:28+02:00",
            Some("2019-03-19T21:34:28.000000Z"),
        );
        check(
            "2019-03-19T23:34:28.4605921Z",
            Some("2019-03-19T23:34:28.460592Z"),
        );
        check("yesterday", None);
    }
}
