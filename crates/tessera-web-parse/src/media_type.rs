//! Media types (RFC 9110 section 8.3.1) and Accept headers (section 12.5.1),
//! with the quoted-string parameters that DICOMweb clients send, such as
//! `multipart/related; type="application/dicom"; transfer-syntax=*`.

use crate::ParseError;

/// A media type with its parameters; type, subtype and parameter names are
/// lowercased, parameter values are kept as sent (unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub kind: String,
    pub subtype: String,
    pub parameters: Vec<(String, String)>,
}

/// One entry of an Accept header with its quality weight.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptEntry {
    pub media_type: MediaType,
    /// The `q` weight between 0 and 1; entries without one weigh 1.
    pub quality: f32,
}

impl MediaType {
    /// Parses one media type such as `multipart/related; type="application/dicom"`.
    pub fn parse(text: &str) -> Result<MediaType, ParseError> {
        let invalid = |reason: &str| ParseError::MediaType {
            value: text.to_string(),
            reason: reason.to_string(),
        };
        let mut tokens = split_unquoted(text, ';').into_iter();
        let essence = tokens.next().unwrap_or_default();
        let (kind, subtype) = essence
            .trim()
            .split_once('/')
            .ok_or_else(|| invalid("expected type/subtype"))?;
        if !is_token(kind) || !is_token(subtype) {
            return Err(invalid("type and subtype must be tokens"));
        }

        let mut parameters = Vec::new();
        for parameter in tokens {
            let parameter = parameter.trim();
            if parameter.is_empty() {
                continue;
            }
            let (name, value) = parameter
                .split_once('=')
                .ok_or_else(|| invalid("a parameter lacks '='"))?;
            let name = name.trim();
            if !is_token(name) {
                return Err(invalid("a parameter name is not a token"));
            }
            let value =
                unquote(value.trim()).ok_or_else(|| invalid("unterminated quoted value"))?;
            parameters.push((name.to_ascii_lowercase(), value));
        }

        Ok(MediaType {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            parameters,
        })
    }

    /// Returns the value of parameter `name` (case-insensitive), if present.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `type/subtype` without parameters.
    pub fn essence(&self) -> String {
        format!("{}/{}", self.kind, self.subtype)
    }

    /// Tells whether this (possibly wildcard) range covers `kind/subtype`.
    pub fn covers(&self, kind: &str, subtype: &str) -> bool {
        let kind_matches = self.kind == "*" || self.kind.eq_ignore_ascii_case(kind);
        let subtype_matches = self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype);
        kind_matches && subtype_matches
    }
}

/// Parses an Accept header into its entries, highest quality first; entries
/// of equal quality keep the client's order. An empty header yields `*/*`.
pub fn parse_accept(header: &str) -> Result<Vec<AcceptEntry>, ParseError> {
    let mut entries = Vec::new();
    for item in split_unquoted(header, ',') {
        if item.trim().is_empty() {
            continue;
        }
        entries.push(accept_entry(&item)?);
    }
    if entries.is_empty() {
        entries.push(AcceptEntry {
            media_type: MediaType::parse("*/*")?,
            quality: 1.0,
        });
    }

    entries.sort_by(|a, b| b.quality.total_cmp(&a.quality));
    Ok(entries)
}

fn accept_entry(item: &str) -> Result<AcceptEntry, ParseError> {
    let mut media_type = MediaType::parse(item)?;
    let mut quality = 1.0;
    if let Some(position) = media_type.parameters.iter().position(|(k, _)| k == "q") {
        let (_, value) = media_type.parameters.remove(position);
        quality = value
            .parse::<f32>()
            .ok()
            .filter(|q| (0.0..=1.0).contains(q))
            .ok_or_else(|| ParseError::MediaType {
                value: item.trim().to_string(),
                reason: format!("quality {value:?} is not a number between 0 and 1"),
            })?;
    }
    Ok(AcceptEntry {
        media_type,
        quality,
    })
}

/// Splits on `separator` outside double-quoted strings.
fn split_unquoted(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        let current = parts.last_mut().expect("parts is never empty");
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(String::new());
            continue;
        }
        current.push(c);
    }
    parts
}

/// Removes the quotes and escapes of a quoted string; a token comes back as is.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_string());
    };
    let inner = inner.strip_suffix('"')?;
    let mut text = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            text.push(chars.next()?);
        } else {
            text.push(c);
        }
    }
    Some(text)
}

/// RFC 9110 token characters.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_unquoted_parameters_parse_alike() {
        let quoted =
            MediaType::parse(r#"multipart/related; type="application/dicom"; boundary="a b""#)
                .expect("quoted");
        let plain = MediaType::parse("Multipart/Related;type=application/dicom;boundary=ab")
            .expect("plain");

        assert_eq!(quoted.parameter("type"), Some("application/dicom"));
        assert_eq!(quoted.parameter("boundary"), Some("a b"));
        assert_eq!(plain.essence(), "multipart/related");
        assert_eq!(plain.parameter("TYPE"), Some("application/dicom"));
    }

    #[test]
    fn quoted_separator_stays_in_value() {
        let media = MediaType::parse(r#"multipart/related; boundary="x;y,z""#).expect("parses");

        assert_eq!(media.parameter("boundary"), Some("x;y,z"));
    }

    #[test]
    fn missing_subtype_is_rejected() {
        let error = MediaType::parse("application").expect_err("no subtype");

        assert!(error.to_string().contains("type/subtype"), "{error}");
    }

    #[test]
    fn accept_orders_by_quality() {
        let entries = parse_accept(
            r#"image/png;q=0.5, multipart/related; type="application/dicom"; transfer-syntax=*"#,
        )
        .expect("parses");

        assert_eq!(entries[0].media_type.essence(), "multipart/related");
        assert_eq!(
            entries[0].media_type.parameter("transfer-syntax"),
            Some("*")
        );
        assert_eq!(entries[1].media_type.essence(), "image/png");
        assert_eq!(entries[1].quality, 0.5);
    }

    #[test]
    fn empty_accept_means_anything() {
        let entries = parse_accept("").expect("parses");

        assert!(entries[0].media_type.covers("image", "jpeg"));
    }

    #[test]
    fn quality_out_of_range_is_rejected() {
        let error = parse_accept("image/png;q=7").expect_err("bad q");

        assert!(error.to_string().contains("quality"), "{error}");
    }
}
