//! Parsing of DA, TM and DT values into comparable spans.
//!
//! A value with reduced precision covers a span of time: the time "0800"
//! covers 08:00:00.000000 to 08:00:59.999999. Spans are written in a
//! canonical fixed-width form so that plain string comparison orders them:
//! DA `YYYYMMDD`, TM `HHMMSS.FFFFFF`, DT `YYYYMMDDHHMMSS.FFFFFF`.

/// Length of a canonical DA value, `YYYYMMDD`.
const DATE_LENGTH: usize = 8;

/// Length of a canonical TM value, `HHMMSS.FFFFFF`.
const TIME_LENGTH: usize = 13;

/// Length of a canonical DT value, `YYYYMMDDHHMMSS.FFFFFF`.
const DATE_TIME_LENGTH: usize = 21;

/// Digits that fill the missing trailing parts of a DT value after its year
/// (month, day, hour, minute, second) at the start and at the end of its span.
const DATE_TIME_START_FILL: &str = "0101000000";
const DATE_TIME_END_FILL: &str = "1231235959";

/// Digits that fill the missing minutes and seconds of a TM value.
const TIME_START_FILL: &str = "0000";
const TIME_END_FILL: &str = "5959";

/// The three value representations that support range matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemporalKind {
    Date,
    Time,
    DateTime,
}

/// The first and last instant that a value covers, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: String,
    pub end: String,
}

impl Span {
    fn contains(&self, instant: &str) -> bool {
        self.start.as_str() <= instant && instant <= self.end.as_str()
    }
}

/// A temporal key: one value, or a range with at least one bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemporalKey {
    Single,
    Range {
        from: Option<Span>,
        to: Option<Span>,
    },
}

impl TemporalKind {
    /// Recognizes the kind of a canonical bound by its length.
    pub fn of_canonical(bound: &str) -> Option<TemporalKind> {
        match bound.len() {
            DATE_LENGTH => Some(TemporalKind::Date),
            TIME_LENGTH => Some(TemporalKind::Time),
            DATE_TIME_LENGTH => Some(TemporalKind::DateTime),
            _ => None,
        }
    }

    /// Parses one value, or `None` when it is not a valid value of this kind.
    pub fn parse(self, text: &str) -> Option<Span> {
        let text = text.trim_matches([' ', '\0']);
        match self {
            TemporalKind::Date => parse_date(text),
            TemporalKind::Time => parse_time(text),
            TemporalKind::DateTime => parse_date_time(text),
        }
    }

    /// Parses a key as a single value or as a range `from-to`, `from-` or `-to`.
    pub fn parse_key(self, text: &str) -> Option<TemporalKey> {
        if self.parse(text).is_some() {
            return Some(TemporalKey::Single);
        }

        // A DT value may end in a UTC offset such as "-0500", so every dash
        // is tried as the range separator. The first one that splits the key
        // into two valid bounds wins.
        text.match_indices('-')
            .find_map(|(index, _)| self.parse_range(&text[..index], &text[index + 1..]))
    }

    fn parse_range(self, from: &str, to: &str) -> Option<TemporalKey> {
        let from = self.parse_bound(from)?;
        let to = self.parse_bound(to)?;

        if from.is_none() && to.is_none() {
            return None;
        }
        Some(TemporalKey::Range { from, to })
    }

    /// Parses one side of a range, where an empty side is an open bound.
    fn parse_bound(self, text: &str) -> Option<Option<Span>> {
        if text.trim().is_empty() {
            return Some(None);
        }
        self.parse(text).map(Some)
    }
}

/// Tells whether a stored value falls in a key's span, judged by the start of
/// the stored value's own span.
pub(crate) fn span_contains(key: &Span, stored: &Span) -> bool {
    key.contains(&stored.start)
}

fn parse_date(text: &str) -> Option<Span> {
    let digits = strip_legacy_date_dots(text);
    if digits.len() != DATE_LENGTH || !is_digits(&digits) {
        return None;
    }

    let month = number(&digits[4..6]);
    let day = number(&digits[6..8]);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }

    Some(Span {
        start: digits.clone(),
        end: digits,
    })
}

/// Accepts the ACR-NEMA form `YYYY.MM.DD` that old archives still contain.
fn strip_legacy_date_dots(text: &str) -> String {
    let bytes = text.as_bytes();
    if bytes.len() == 10 && bytes[4] == b'.' && bytes[7] == b'.' {
        text.replace('.', "")
    } else {
        text.to_owned()
    }
}

fn parse_time(text: &str) -> Option<Span> {
    // The ACR-NEMA form `HH:MM:SS` differs only by its colons.
    let text = text.replace(':', "");
    let (whole, fraction) = split_fraction(&text)?;

    if !matches!(whole.len(), 2 | 4 | 6) || !is_digits(whole) {
        return None;
    }
    if fraction.is_some() && whole.len() != 6 {
        return None;
    }
    if !valid_clock(whole) {
        return None;
    }

    let missing = 6 - whole.len();
    Some(Span {
        start: format!(
            "{whole}{}.{}",
            &TIME_START_FILL[..missing],
            pad(fraction, '0')
        ),
        end: format!(
            "{whole}{}.{}",
            &TIME_END_FILL[4 - missing..],
            pad(fraction, '9')
        ),
    })
}

fn parse_date_time(text: &str) -> Option<Span> {
    let text = strip_utc_offset(text);
    let (whole, fraction) = split_fraction(text)?;

    if !matches!(whole.len(), 4 | 6 | 8 | 10 | 12 | 14) || !is_digits(whole) {
        return None;
    }
    if fraction.is_some() && whole.len() != 14 {
        return None;
    }
    if !valid_calendar(whole) || !valid_clock(whole.get(8..).unwrap_or("")) {
        return None;
    }

    let filled = whole.len() - 4;
    Some(Span {
        start: format!(
            "{whole}{}.{}",
            &DATE_TIME_START_FILL[filled..],
            pad(fraction, '0')
        ),
        end: format!(
            "{whole}{}.{}",
            &DATE_TIME_END_FILL[filled..],
            pad(fraction, '9')
        ),
    })
}

/// Removes a trailing UTC offset `&ZZXX`.
///
/// NOTE: the offset is ignored rather than applied, so values stored with
/// different offsets compare by their local clock time.
fn strip_utc_offset(text: &str) -> &str {
    let bytes = text.as_bytes();
    if bytes.len() < 5 {
        return text;
    }

    let sign = bytes[bytes.len() - 5];
    let offset_digits = &bytes[bytes.len() - 4..];
    if (sign == b'+' || sign == b'-') && offset_digits.iter().all(u8::is_ascii_digit) {
        &text[..text.len() - 5]
    } else {
        text
    }
}

/// Splits `whole.fraction`, rejecting a fraction that is empty, longer than
/// six digits or not made of digits.
fn split_fraction(text: &str) -> Option<(&str, Option<&str>)> {
    let Some((whole, fraction)) = text.split_once('.') else {
        return Some((text, None));
    };

    if fraction.is_empty() || fraction.len() > 6 || !is_digits(fraction) {
        return None;
    }
    Some((whole, Some(fraction)))
}

/// Checks month and day of `YYYY[MM[DD]]...`, where present.
fn valid_calendar(digits: &str) -> bool {
    let month_ok = digits
        .get(4..6)
        .is_none_or(|month| (1..=12).contains(&number(month)));
    let day_ok = digits
        .get(6..8)
        .is_none_or(|day| (1..=31).contains(&number(day)));

    month_ok && day_ok
}

/// Checks hour, minute and second of `HH[MM[SS]]`, where present. A second
/// of 60 is allowed for leap seconds.
fn valid_clock(digits: &str) -> bool {
    let hour_ok = digits.get(0..2).is_none_or(|hour| number(hour) <= 23);
    let minute_ok = digits.get(2..4).is_none_or(|minute| number(minute) <= 59);
    let second_ok = digits.get(4..6).is_none_or(|second| number(second) <= 60);

    hour_ok && minute_ok && second_ok
}

fn pad(fraction: Option<&str>, fill: char) -> String {
    let mut padded = fraction.unwrap_or_default().to_owned();
    while padded.len() < 6 {
        padded.push(fill);
    }
    padded
}

fn is_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a run of at most two ASCII digits already checked by [`is_digits`].
fn number(digits: &str) -> u32 {
    digits.parse().unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_span_covers_its_precision() {
        let span = TemporalKind::Time.parse("0800").unwrap();

        assert_eq!(span.start, "080000.000000");
        assert_eq!(span.end, "080059.999999");
    }

    #[test]
    fn time_accepts_colons() {
        let span = TemporalKind::Time.parse("08:30:15").unwrap();

        assert_eq!(span.start, "083015.000000");
    }

    #[test]
    fn time_fraction_pads_both_ends() {
        let span = TemporalKind::Time.parse("083015.5").unwrap();

        assert_eq!(span.start, "083015.500000");
        assert_eq!(span.end, "083015.599999");
    }

    #[test]
    fn time_rejects_bad_values() {
        assert!(TemporalKind::Time.parse("8").is_none());
        assert!(TemporalKind::Time.parse("2460").is_none());
        assert!(TemporalKind::Time.parse("0800.5").is_none());
        assert!(TemporalKind::Time.parse("080000.").is_none());
        assert!(TemporalKind::Time.parse("080000.1234567").is_none());
    }

    #[test]
    fn date_time_span_fills_missing_parts() {
        let span = TemporalKind::DateTime.parse("202402").unwrap();

        assert_eq!(span.start, "20240201000000.000000");
        // Day 31 ends every month in string order, even February.
        assert_eq!(span.end, "20240231235959.999999");
    }

    #[test]
    fn date_time_ignores_utc_offset() {
        let span = TemporalKind::DateTime.parse("20240201120000-0500").unwrap();

        assert_eq!(span.start, "20240201120000.000000");
    }

    #[test]
    fn date_accepts_legacy_dots() {
        let span = TemporalKind::Date.parse("2024.02.01").unwrap();

        assert_eq!(span.start, "20240201");
    }

    #[test]
    fn date_rejects_bad_values() {
        assert!(TemporalKind::Date.parse("2024021").is_none());
        assert!(TemporalKind::Date.parse("20241301").is_none());
        assert!(TemporalKind::Date.parse("20240100").is_none());
        assert!(TemporalKind::Date.parse("2024-02-01").is_none());
    }

    #[test]
    fn date_time_range_splits_at_separator_not_offset() {
        let key = TemporalKind::DateTime
            .parse_key("20240101120000-0500-20240102")
            .unwrap();

        let TemporalKey::Range { from, to } = key else {
            panic!("expected a range, got {key:?}");
        };
        assert_eq!(from.unwrap().start, "20240101120000.000000");
        assert_eq!(to.unwrap().end, "20240102235959.999999");
    }

    #[test]
    fn lone_dash_is_not_a_range() {
        assert!(TemporalKind::Date.parse_key("-").is_none());
    }
}
