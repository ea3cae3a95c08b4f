//! The defined terms of Specific Character Set (0008,0005), PS3.3 C.12.1.1.2.

use super::repertoire::{latin_set, Element, Repertoire};
use crate::error::DicomError;

/// How the values of an attribute are encoded, from all values of
/// Specific Character Set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CharacterSet {
    /// One single-byte set without code extensions: ASCII (or JIS X 0201
    /// Roman) in G0 and at most one set in G1. ESC is an ordinary control.
    SingleByte {
        g0: Repertoire,
        g1: Option<Repertoire>,
    },
    /// ISO 2022 code extensions: escape sequences switch between the
    /// repertoires. `initial` is what value 1 sets up, which is also what
    /// every delimiter returns to.
    Extended {
        initial: Designations,
        declared: Vec<Repertoire>,
    },
    /// ISO_IR 192.
    Utf8,
    /// GB18030, which covers all of Unicode.
    Gb18030,
    /// GBK, the two-byte subset of GB18030.
    Gbk,
}

/// The repertoires held by G0 and G1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Designations {
    pub(crate) g0: Repertoire,
    pub(crate) g1: Option<Repertoire>,
}

impl CharacterSet {
    /// Parses the (0008,0005) value, its values joined with '\\'. An empty
    /// value 1 stands for the default repertoire.
    pub(crate) fn parse(specific_character_set: &str) -> Result<CharacterSet, DicomError> {
        let terms: Vec<&str> = specific_character_set
            .split('\\')
            .map(|term| term.trim_matches([' ', '\0']))
            .collect();

        match terms[..] {
            [term] => parse_single(term),
            _ => parse_extended(specific_character_set, &terms),
        }
    }
}

fn parse_single(term: &str) -> Result<CharacterSet, DicomError> {
    match term {
        "" | "ISO_IR 6" => Ok(single_byte(Repertoire::Ascii, None)),
        "ISO_IR 13" => Ok(single_byte(
            Repertoire::JisRoman,
            Some(Repertoire::Katakana),
        )),
        "ISO_IR 192" => Ok(CharacterSet::Utf8),
        "GB18030" => Ok(CharacterSet::Gb18030),
        "GBK" => Ok(CharacterSet::Gbk),
        _ if term.starts_with("ISO 2022 ") => parse_extended(term, &[term]),
        _ => {
            let set = iso_ir_number(term, "ISO_IR ").and_then(latin_set);
            let set = set.ok_or_else(|| unsupported(term, "not a defined term"))?;
            Ok(single_byte(Repertoire::Ascii, Some(Repertoire::Latin(set))))
        }
    }
}

fn single_byte(g0: Repertoire, g1: Option<Repertoire>) -> CharacterSet {
    CharacterSet::SingleByte { g0, g1 }
}

/// Parses a value list with code extensions. A single-byte term written
/// without extensions ("ISO_IR 100") is taken as its "ISO 2022 IR 100"
/// form, as pydicom does with such files.
fn parse_extended(whole: &str, terms: &[&str]) -> Result<CharacterSet, DicomError> {
    let mut declared = Vec::new();
    let mut initial = None;

    for term in terms {
        let repertoires = match *term {
            "" if initial.is_none() => vec![Repertoire::Ascii],
            _ => extension_repertoires(whole, term)?,
        };
        if initial.is_none() {
            initial = Some(initial_designations(whole, &repertoires)?);
        }
        declared.extend(repertoires);
    }

    let initial = initial.expect("split always yields at least one term");
    Ok(CharacterSet::Extended { initial, declared })
}

/// Returns the repertoires a term designates, G0 first.
fn extension_repertoires(whole: &str, term: &str) -> Result<Vec<Repertoire>, DicomError> {
    let number = iso_ir_number(term, "ISO 2022 IR ").or_else(|| iso_ir_number(term, "ISO_IR "));
    let Some(number) = number else {
        let reason = if matches!(term, "ISO_IR 192" | "GB18030" | "GBK") {
            "this character set cannot be combined with other values"
        } else {
            "not a defined term"
        };
        return Err(unsupported(whole, &format!("'{term}' is {reason}")));
    };

    let repertoires = match number {
        6 => vec![Repertoire::Ascii],
        13 => vec![Repertoire::JisRoman, Repertoire::Katakana],
        87 => vec![Repertoire::JisX0208],
        159 => vec![Repertoire::JisX0212],
        149 => vec![Repertoire::KsX1001],
        58 => vec![Repertoire::Gb2312],
        _ => match latin_set(number) {
            Some(set) => vec![Repertoire::Ascii, Repertoire::Latin(set)],
            None => {
                return Err(unsupported(
                    whole,
                    &format!("'{term}' is not a defined term"),
                ))
            }
        },
    };
    Ok(repertoires)
}

/// Value 1 sets up G0 and G1. PS3.3 C.12.1.1.2 allows only single-byte
/// sets there, so a two-byte set as value 1 is rejected.
fn initial_designations(whole: &str, value1: &[Repertoire]) -> Result<Designations, DicomError> {
    if value1.iter().any(|repertoire| repertoire.is_two_byte()) {
        return Err(unsupported(
            whole,
            "value 1 must be a single-byte character set, e.g. empty or ISO 2022 IR 6",
        ));
    }

    let g0 = value1
        .iter()
        .copied()
        .find(|repertoire| repertoire.element() == Element::G0);
    let g1 = value1
        .iter()
        .copied()
        .find(|repertoire| repertoire.element() == Element::G1);

    Ok(Designations {
        g0: g0.unwrap_or(Repertoire::Ascii),
        g1,
    })
}

fn iso_ir_number(term: &str, prefix: &str) -> Option<u16> {
    term.strip_prefix(prefix)?.parse().ok()
}

fn unsupported(term: &str, reason: &str) -> DicomError {
    DicomError::UnsupportedCharacterSet {
        term: term.to_owned(),
        reason: reason.to_owned(),
    }
}
