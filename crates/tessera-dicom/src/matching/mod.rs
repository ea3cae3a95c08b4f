//! C-FIND attribute matching (PS3.4 section C.2.2.2) for the index, C-FIND
//! and QIDO-RS.
//!
//! A [`Matcher`] is parsed once from a query key and then tested against
//! stored values. The rule follows the attribute's VR in the standard data
//! dictionary:
//!
//! - DA, TM, DT: a single value or a range (`from-to`, `from-`, `-to`),
//!   with values of reduced precision covering their whole span.
//! - UI: one UID or a list of UIDs separated by '\\'.
//! - AE, CS, LO, LT, PN, SH, ST, UC, UR, UT: a single value or a pattern
//!   with `*` and `?`; PN compares case-insensitively, and matches too when
//!   each non-empty component group of the key (alphabetic, ideographic,
//!   phonetic, separated by '=') matches the same group of the stored name.
//! - AS, AT, DS, FD, FL, IS, SL, SS, SV, UL, US, UV: a single value, numbers
//!   compared by value.
//!
//! An empty key or `*` is universal matching for every VR. Sequence keys
//! match item by item with a [`SequenceMatcher`].
//!
//! ```
//! use tessera_dicom::matching::Matcher;
//!
//! let matcher = Matcher::parse("ModalitiesInStudy", "CT").unwrap();
//! assert!(matcher.matches("CT\\PR"));
//! ```

mod person_name;
mod sequence;
mod temporal;
mod wildcard;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::VR;
use dicom_dictionary_std::StandardDataDictionary;

use person_name::groups_match;
pub use person_name::normalize_person_name;
pub use sequence::SequenceMatcher;

use crate::uid::is_valid_uid;
use temporal::{span_contains, TemporalKey, TemporalKind};
use wildcard::wildcard_match;

/// A parsed C-FIND matching key for one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Matches every stored value, including an empty one.
    Universal,
    /// Matches a stored value equal to `value` under `rule`.
    Single {
        /// The key with padding removed. For [`ValueRule::PersonName`] it is
        /// already normalized with [`normalize_person_name`].
        value: String,
        rule: ValueRule,
    },
    /// Matches a stored value against a pattern of `*` and `?`.
    Wildcard {
        pattern: String,
        /// Compare as person names: the stored value is normalized with
        /// [`normalize_person_name`] and the pattern is uppercased.
        person_name: bool,
    },
    /// Matches a DA, TM or DT value between two inclusive bounds.
    ///
    /// Bounds are canonical, so their length identifies their VR: DA `YYYYMMDD`,
    /// TM `HHMMSS.FFFFFF`, DT `YYYYMMDDHHMMSS.FFFFFF`. `from` is the start
    /// and `to` the end of the span that the key's precision covers, so the
    /// key `-0800` yields `to` = `080059.999999`. At least one bound is set.
    /// Bounds of any other length are compared as plain strings.
    Range {
        from: Option<String>,
        to: Option<String>,
    },
    /// Matches a stored UID equal to any UID of the list.
    UidList(Vec<String>),
}

/// Comparison that [`Matcher::Single`] applies between the key and a stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRule {
    /// Exact, case-sensitive comparison after removing padding spaces.
    Exact,
    /// Case-insensitive comparison of names normalized with [`normalize_person_name`].
    PersonName,
    /// Numeric comparison of integers, so "007" equals "7". Values that do
    /// not parse are compared exactly.
    Integer,
    /// Numeric comparison of decimals, so "1.50" equals "1.5". Values that
    /// do not parse are compared exactly.
    Decimal,
    /// The stored date equals the key date.
    Date,
    /// The stored time starts within the span of the key time, so the key
    /// "0800" matches "080000.123".
    Time,
    /// The stored date-time starts within the span of the key date-time.
    DateTime,
}

/// A query key that cannot be turned into a [`Matcher`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("unknown attribute keyword '{keyword}': use a DICOM keyword such as PatientName")]
    UnknownKeyword { keyword: String },

    #[error(
        "invalid date range '{value}' for {keyword}: expected YYYYMMDD-YYYYMMDD, \
         YYYYMMDD-, -YYYYMMDD or YYYYMMDD"
    )]
    InvalidDateRange { keyword: String, value: String },

    #[error(
        "invalid time range '{value}' for {keyword}: expected HHMMSS.FFFFFF-HHMMSS.FFFFFF, \
         an open range or a single time, where trailing parts may be left out"
    )]
    InvalidTimeRange { keyword: String, value: String },

    #[error(
        "invalid date-time range '{value}' for {keyword}: expected \
         YYYYMMDDHHMMSS.FFFFFF-YYYYMMDDHHMMSS.FFFFFF, an open range or a single \
         date-time, where trailing parts may be left out"
    )]
    InvalidDateTimeRange { keyword: String, value: String },

    #[error(
        "invalid UID '{value}' for {keyword}: expected digits and dots without wildcards; \
         separate several UIDs with '\\'"
    )]
    InvalidUid { keyword: String, value: String },

    #[error(
        "{keyword} has VR {vr}, which has no matching rule; \
         send an empty key to return it, or match on another attribute"
    )]
    UnsupportedVr { keyword: String, vr: &'static str },
}

impl Matcher {
    /// keyword is a DICOM keyword (e.g. "PatientName", "StudyDate", "StudyTime", "ModalitiesInStudy", "SOPInstanceUID").
    /// Chooses rules from the keyword's VR via dicom-dictionary-std: DA/TM/DT ranges ("20240101-20240331", "20240101-", "-20240331", single value),
    /// UI lists separated by '\\', `*` and `?` wildcards for string VRs (not for DA/TM/DT/UI),
    /// PN matched case-insensitively (wildcards too), other VRs case-sensitive, empty value or "*" = Universal.
    ///
    /// UI keys always parse to [`Matcher::UidList`], even with one UID.
    /// Leading and trailing spaces and NULs of the key are ignored.
    pub fn parse(keyword: &str, value: &str) -> Result<Matcher, MatchError> {
        let vr = lookup_vr(keyword)?;
        let key = trim_padding(value);

        if key.is_empty() || key == "*" {
            return Ok(Matcher::Universal);
        }

        match vr {
            VR::DA => parse_temporal(TemporalKind::Date, keyword, key),
            VR::TM => parse_temporal(TemporalKind::Time, keyword, key),
            VR::DT => parse_temporal(TemporalKind::DateTime, keyword, key),
            VR::UI => parse_uid_list(keyword, key),
            VR::PN => Ok(parse_text(key, true)),
            VR::AE | VR::CS | VR::LO | VR::LT | VR::SH | VR::ST | VR::UC | VR::UR | VR::UT => {
                Ok(parse_text(key, false))
            }
            VR::AS | VR::AT => Ok(single(key, ValueRule::Exact)),
            VR::IS | VR::SL | VR::SS | VR::SV | VR::UL | VR::US | VR::UV => {
                Ok(single(key, ValueRule::Integer))
            }
            VR::DS | VR::FD | VR::FL => Ok(single(key, ValueRule::Decimal)),
            other => Err(MatchError::UnsupportedVr {
                keyword: keyword.to_owned(),
                vr: other.to_string(),
            }),
        }
    }

    /// True when the stored value matches. A multi-valued stored value (components separated by '\\', e.g. ModalitiesInStudy "CT\\PR") matches if any value matches.
    /// Time values compare with their precision normalised (e.g. "0800" vs "080000.123", colons in old-style "08:00" accepted).
    /// Empty stored value matches only Universal.
    ///
    /// A stored DA, TM or DT value that is not valid for its VR matches
    /// nothing but Universal.
    pub fn matches(&self, stored: &str) -> bool {
        if self.is_universal() {
            return true;
        }

        stored
            .split('\\')
            .map(trim_padding)
            .filter(|value| !value.is_empty())
            .any(|value| self.matches_value(value))
    }

    /// Leading text of every normalized person name that this matcher
    /// accepts, so that an index sorted by [`normalize_person_name`] can be
    /// scanned from it instead of in full. `None` when the key does not fix
    /// the start of the alphabetic group, as in `*SMITH` or `=山田^太郎`, or
    /// when the matcher is not a person name matcher.
    ///
    /// Every accepted value starts with the returned text, because the key's
    /// first component group has to match the stored name's first group
    /// from its first character. A stored value with several values
    /// (separated by '\\') matches through any of them, so an index must
    /// hold a row for each value.
    pub fn person_name_prefix(&self) -> Option<&str> {
        let key = match self {
            Matcher::Single {
                value,
                rule: ValueRule::PersonName,
            } => value.as_str(),
            Matcher::Wildcard {
                pattern,
                person_name: true,
            } => pattern.as_str(),
            _ => return None,
        };

        let end = key.find(['*', '?', '=']).unwrap_or(key.len());
        let prefix = &key[..end];
        (!prefix.is_empty()).then_some(prefix)
    }

    /// Tells whether this matcher accepts every stored value, so a query can skip it.
    pub fn is_universal(&self) -> bool {
        matches!(self, Matcher::Universal)
    }

    fn matches_value(&self, stored: &str) -> bool {
        match self {
            Matcher::Universal => true,
            Matcher::Single {
                value,
                rule: ValueRule::PersonName,
            } => {
                let stored = normalize_person_name(stored);
                *value == stored || groups_match(value, &stored, |key, group| key == group)
            }
            Matcher::Single { value, rule } => rule.compare(value, stored),
            Matcher::Wildcard {
                pattern,
                person_name: true,
            } => {
                let pattern = pattern.to_uppercase();
                let stored = normalize_person_name(stored);
                wildcard_match(&pattern, &stored) || groups_match(&pattern, &stored, wildcard_match)
            }
            Matcher::Wildcard {
                pattern,
                person_name: false,
            } => wildcard_match(pattern, stored),
            Matcher::Range { from, to } => range_contains(from.as_deref(), to.as_deref(), stored),
            Matcher::UidList(uids) => uids.iter().any(|uid| uid == stored),
        }
    }
}

impl ValueRule {
    fn compare(self, key: &str, stored: &str) -> bool {
        match self {
            ValueRule::Exact => key == stored,
            ValueRule::PersonName => normalize_person_name(key) == normalize_person_name(stored),
            ValueRule::Integer => compare_parsed::<i128>(key, stored),
            ValueRule::Decimal => compare_parsed::<f64>(key, stored),
            ValueRule::Date => temporal_equal(TemporalKind::Date, key, stored),
            ValueRule::Time => temporal_equal(TemporalKind::Time, key, stored),
            ValueRule::DateTime => temporal_equal(TemporalKind::DateTime, key, stored),
        }
    }
}

fn compare_parsed<T: std::str::FromStr + PartialEq>(key: &str, stored: &str) -> bool {
    match (key.trim().parse::<T>(), stored.trim().parse::<T>()) {
        (Ok(key), Ok(stored)) => key == stored,
        _ => key == stored,
    }
}

fn temporal_equal(kind: TemporalKind, key: &str, stored: &str) -> bool {
    match (kind.parse(key), kind.parse(stored)) {
        (Some(key), Some(stored)) => span_contains(&key, &stored),
        _ => false,
    }
}

fn range_contains(from: Option<&str>, to: Option<&str>, stored: &str) -> bool {
    let kind = from.or(to).and_then(TemporalKind::of_canonical);

    // Bounds built outside `parse` may not be canonical, so compare them as text.
    let Some(kind) = kind else {
        return from.is_none_or(|from| from <= stored) && to.is_none_or(|to| stored <= to);
    };
    let Some(span) = kind.parse(stored) else {
        return false;
    };

    let start = span.start.as_str();
    from.is_none_or(|from| from <= start) && to.is_none_or(|to| start <= to)
}

fn lookup_vr(keyword: &str) -> Result<VR, MatchError> {
    StandardDataDictionary
        .by_name(keyword)
        .map(|entry| entry.vr().relaxed())
        .ok_or_else(|| MatchError::UnknownKeyword {
            keyword: keyword.to_owned(),
        })
}

fn parse_temporal(kind: TemporalKind, keyword: &str, key: &str) -> Result<Matcher, MatchError> {
    let rule = match kind {
        TemporalKind::Date => ValueRule::Date,
        TemporalKind::Time => ValueRule::Time,
        TemporalKind::DateTime => ValueRule::DateTime,
    };

    match kind.parse_key(key) {
        Some(TemporalKey::Single) => Ok(single(key, rule)),
        Some(TemporalKey::Range { from, to }) => Ok(Matcher::Range {
            from: from.map(|span| span.start),
            to: to.map(|span| span.end),
        }),
        None => Err(invalid_temporal(kind, keyword, key)),
    }
}

fn invalid_temporal(kind: TemporalKind, keyword: &str, key: &str) -> MatchError {
    let keyword = keyword.to_owned();
    let value = key.to_owned();

    match kind {
        TemporalKind::Date => MatchError::InvalidDateRange { keyword, value },
        TemporalKind::Time => MatchError::InvalidTimeRange { keyword, value },
        TemporalKind::DateTime => MatchError::InvalidDateTimeRange { keyword, value },
    }
}

fn parse_uid_list(keyword: &str, key: &str) -> Result<Matcher, MatchError> {
    let uids: Vec<String> = key
        .split('\\')
        .map(trim_padding)
        .filter(|uid| !uid.is_empty())
        .map(str::to_owned)
        .collect();

    if uids.is_empty() {
        return Err(MatchError::InvalidUid {
            keyword: keyword.to_owned(),
            value: key.to_owned(),
        });
    }

    if let Some(invalid) = uids.iter().find(|uid| !is_valid_uid(uid)) {
        return Err(MatchError::InvalidUid {
            keyword: keyword.to_owned(),
            value: invalid.clone(),
        });
    }

    Ok(Matcher::UidList(uids))
}

/// Parses a key of a VR that allows wildcards.
fn parse_text(key: &str, person_name: bool) -> Matcher {
    if key.chars().all(|c| c == '*') {
        return Matcher::Universal;
    }

    if key.contains(['*', '?']) {
        let pattern = if person_name {
            key.to_uppercase()
        } else {
            key.to_owned()
        };
        return Matcher::Wildcard {
            pattern,
            person_name,
        };
    }

    if person_name {
        single(&normalize_person_name(key), ValueRule::PersonName)
    } else {
        single(key, ValueRule::Exact)
    }
}

fn single(value: &str, rule: ValueRule) -> Matcher {
    Matcher::Single {
        value: value.to_owned(),
        rule,
    }
}

/// Removes padding spaces and NULs from both ends.
///
/// Leading spaces are not significant in most text VRs, but LT, ST and UT
/// lose theirs here too.
fn trim_padding(value: &str) -> &str {
    value.trim_matches([' ', '\0'])
}
