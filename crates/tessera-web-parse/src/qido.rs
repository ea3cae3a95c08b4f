//! QIDO-RS query parameters (PS3.18 section 8.3.4): attribute matches named by
//! keyword or by tag, `includefield`, `fuzzymatching`, `limit` and `offset`.
//!
//! An attribute in the items of a sequence is named by a path of two parts
//! joined by '.', each a keyword or a tag: `RequestAttributesSequence.RequestedProcedureID`
//! or `00400275.00401001`. Deeper paths are rejected.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use crate::ParseError;

/// A DICOM attribute named in a query: its tag and standard keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub tag: Tag,
    pub keyword: String,
    /// The sequence whose items contain the attribute, when the query named
    /// a path. It is itself at the top level.
    pub sequence: Option<Box<Attribute>>,
}

impl Attribute {
    /// Returns the keyword path: `Sequence.Attribute` for an attribute of a
    /// sequence's items, else the keyword.
    pub fn path(&self) -> String {
        match &self.sequence {
            Some(sequence) => format!("{}.{}", sequence.keyword, self.keyword),
            None => self.keyword.clone(),
        }
    }

    /// Returns the keyword of the top-level attribute: the sequence's for a path.
    pub fn top_keyword(&self) -> &str {
        match &self.sequence {
            Some(sequence) => &sequence.keyword,
            None => &self.keyword,
        }
    }
}

/// Attributes the client asked for on top of the default ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IncludeFields {
    /// No `includefield`: the default attributes of the level.
    #[default]
    Default,
    /// `includefield=all`: every attribute the archive holds for the level.
    All,
    /// The listed attributes in addition to the defaults.
    Attributes(Vec<Attribute>),
}

/// A parsed QIDO-RS query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QidoQuery {
    /// Match keys in the order given, each attribute at most once.
    pub matches: Vec<(Attribute, String)>,
    pub include: IncludeFields,
    pub fuzzy: bool,
    /// Maximum number of results; None returns them all.
    pub limit: Option<usize>,
    /// Results to skip before the first one returned.
    pub offset: usize,
}

impl QidoQuery {
    /// Parses the query string of a request URI (the part after `?`, still
    /// percent-encoded).
    pub fn parse(query: &str) -> Result<QidoQuery, ParseError> {
        let mut parsed = QidoQuery::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "limit" => parsed.limit = Some(parse_count("limit", &value)?),
                "offset" => parsed.offset = parse_count("offset", &value)?,
                "fuzzymatching" => parsed.fuzzy = parse_bool("fuzzymatching", &value)?,
                "includefield" => parsed.include_fields(&value)?,
                _ => parsed.add_match(&name, value.into_owned())?,
            }
        }
        Ok(parsed)
    }

    /// Returns the match value given for `path`, a keyword or a
    /// `Sequence.Attribute` path, if any.
    pub fn match_value(&self, path: &str) -> Option<&str> {
        self.matches
            .iter()
            .find(|(attribute, _)| attribute.path() == path)
            .map(|(_, value)| value.as_str())
    }

    fn include_fields(&mut self, value: &str) -> Result<(), ParseError> {
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name.eq_ignore_ascii_case("all") {
                self.include = IncludeFields::All;
                continue;
            }
            let attribute = resolve_attribute(name)?;
            match &mut self.include {
                IncludeFields::All => {}
                IncludeFields::Default => self.include = IncludeFields::Attributes(vec![attribute]),
                IncludeFields::Attributes(list) => list.push(attribute),
            }
        }
        Ok(())
    }

    fn add_match(&mut self, name: &str, value: String) -> Result<(), ParseError> {
        let attribute = resolve_attribute(name)?;
        if self.match_value(&attribute.path()).is_some() {
            return Err(ParseError::RepeatedMatch {
                keyword: attribute.path(),
            });
        }
        let value = uid_list_with_backslashes(&attribute, value);
        self.matches.push((attribute, value));
        Ok(())
    }
}

/// Rewrites a UID list separated by commas, as QIDO-RS clients send it
/// (Orthanc's DICOMweb plugin has accepted this form since 2019), into the
/// backslash-separated list of C-FIND UID list matching. A UID never
/// contains a comma, so the rewrite cannot split one.
fn uid_list_with_backslashes(attribute: &Attribute, value: String) -> String {
    let is_uid = StandardDataDictionary
        .by_tag(attribute.tag)
        .is_some_and(|entry| entry.vr().relaxed() == VR::UI);
    if is_uid {
        value.replace(',', "\\")
    } else {
        value
    }
}

/// Resolves a keyword (`PatientName`), a tag in hex (`00100010`) or a path
/// of two of them (`RequestAttributesSequence.00401001`) to an attribute of
/// the standard dictionary.
pub fn resolve_attribute(name: &str) -> Result<Attribute, ParseError> {
    let Some((sequence_name, item_name)) = name.split_once('.') else {
        return resolve_one(name, name);
    };
    if item_name.contains('.') {
        return Err(ParseError::NestedSequence {
            name: name.to_string(),
        });
    }

    let sequence = resolve_one(name, sequence_name)?;
    let vr = StandardDataDictionary
        .by_tag(sequence.tag)
        .map(|entry| entry.vr().relaxed());
    if vr != Some(VR::SQ) {
        return Err(ParseError::NotASequence {
            name: name.to_string(),
            keyword: sequence.keyword,
            vr: vr.map(|vr| vr.to_string()).unwrap_or("unknown").to_string(),
        });
    }

    let mut attribute = resolve_one(name, item_name)?;
    attribute.sequence = Some(Box::new(sequence));
    Ok(attribute)
}

/// Resolves one part of `name`, a keyword or a tag in hex.
fn resolve_one(name: &str, part: &str) -> Result<Attribute, ParseError> {
    let entry = match parse_hex_tag(part) {
        Some(tag) => StandardDataDictionary.by_tag(tag),
        None => StandardDataDictionary.by_name(part),
    };
    let entry = entry.ok_or_else(|| ParseError::UnknownAttribute {
        name: name.to_string(),
    })?;
    Ok(Attribute {
        tag: entry.tag_range().inner(),
        keyword: entry.alias().to_string(),
        sequence: None,
    })
}

fn parse_hex_tag(name: &str) -> Option<Tag> {
    if name.len() != 8 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let group = u16::from_str_radix(&name[..4], 16).ok()?;
    let element = u16::from_str_radix(&name[4..], 16).ok()?;
    Some(Tag(group, element))
}

fn parse_count(parameter: &'static str, value: &str) -> Result<usize, ParseError> {
    value
        .trim()
        .parse()
        .map_err(|_| ParseError::InvalidParameter {
            parameter,
            value: value.to_string(),
            expected: "a non-negative integer",
        })
}

fn parse_bool(parameter: &'static str, value: &str) -> Result<bool, ParseError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ParseError::InvalidParameter {
            parameter,
            value: value.to_string(),
            expected: "true or false",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_tags_name_the_same_attribute() {
        let query = QidoQuery::parse("00100020=123&StudyDate=20240101-20240331").expect("parses");

        assert_eq!(query.match_value("PatientID"), Some("123"));
        assert_eq!(query.match_value("StudyDate"), Some("20240101-20240331"));
    }

    #[test]
    fn percent_encoding_is_decoded() {
        let query = QidoQuery::parse("PatientName=DOE%5EJ*").expect("parses");

        assert_eq!(query.match_value("PatientName"), Some("DOE^J*"));
    }

    #[test]
    fn includefield_lists_accumulate() {
        let query = QidoQuery::parse("includefield=00081030,Modality&includefield=PatientAge")
            .expect("parses");

        let IncludeFields::Attributes(list) = query.include else {
            panic!("expected a list, got {:?}", query.include);
        };
        let keywords: Vec<&str> = list.iter().map(|a| a.keyword.as_str()).collect();
        assert_eq!(keywords, ["StudyDescription", "Modality", "PatientAge"]);
    }

    #[test]
    fn includefield_all_wins() {
        let query = QidoQuery::parse("includefield=Modality&includefield=all").expect("parses");

        assert_eq!(query.include, IncludeFields::All);
    }

    #[test]
    fn paging_and_fuzzy_parse() {
        let query = QidoQuery::parse("limit=25&offset=50&fuzzymatching=true").expect("parses");

        assert_eq!(query.limit, Some(25));
        assert_eq!(query.offset, 50);
        assert!(query.fuzzy);
    }

    #[test]
    fn negative_limit_is_rejected() {
        let error = QidoQuery::parse("limit=-1").expect_err("negative");

        assert!(error.to_string().contains("limit"), "{error}");
    }

    #[test]
    fn unknown_attribute_is_named() {
        let error = QidoQuery::parse("PatientNickname=x").expect_err("unknown");

        assert!(error.to_string().contains("PatientNickname"), "{error}");
    }

    #[test]
    fn repeated_match_is_rejected() {
        let error = QidoQuery::parse("PatientID=1&00100020=2").expect_err("repeated");

        assert!(matches!(error, ParseError::RepeatedMatch { .. }), "{error}");
    }

    #[test]
    fn uid_list_with_commas_becomes_backslashes() {
        let query = QidoQuery::parse("StudyInstanceUID=1.2.3,1.2.4%5C1.2.5&PatientName=a,b")
            .expect("parses");

        assert_eq!(
            query.match_value("StudyInstanceUID"),
            Some("1.2.3\\1.2.4\\1.2.5")
        );
        assert_eq!(query.match_value("PatientName"), Some("a,b"));
    }

    #[test]
    fn sequence_path_by_keyword_and_tag() {
        let query = QidoQuery::parse(
            "RequestAttributesSequence.RequestedProcedureID=RP1&00081032.00080100=CT*",
        )
        .expect("parses");

        assert_eq!(
            query.match_value("RequestAttributesSequence.RequestedProcedureID"),
            Some("RP1")
        );
        assert_eq!(
            query.match_value("ProcedureCodeSequence.CodeValue"),
            Some("CT*")
        );
        assert_eq!(query.match_value("RequestedProcedureID"), None);
        let (attribute, _) = &query.matches[0];
        assert_eq!(attribute.top_keyword(), "RequestAttributesSequence");
        assert_eq!(attribute.tag, Tag(0x0040, 0x1001));
    }

    #[test]
    fn uid_list_in_sequence_path_uses_backslashes() {
        let query = QidoQuery::parse("ReferencedStudySequence.ReferencedSOPInstanceUID=1.2,1.3")
            .expect("parses");

        assert_eq!(
            query.match_value("ReferencedStudySequence.ReferencedSOPInstanceUID"),
            Some("1.2\\1.3")
        );
    }

    #[test]
    fn path_and_plain_key_are_distinct() {
        let query =
            QidoQuery::parse("PatientID=1&OtherPatientIDsSequence.PatientID=2").expect("parses");

        assert_eq!(query.match_value("PatientID"), Some("1"));
        assert_eq!(
            query.match_value("OtherPatientIDsSequence.PatientID"),
            Some("2")
        );
    }

    #[test]
    fn repeated_path_is_rejected() {
        let error = QidoQuery::parse(
            "00400275.00401001=1&RequestAttributesSequence.RequestedProcedureID=2",
        )
        .expect_err("repeated");

        assert!(matches!(error, ParseError::RepeatedMatch { .. }), "{error}");
    }

    #[test]
    fn nested_sequence_path_is_rejected() {
        let error = QidoQuery::parse(
            "RequestAttributesSequence.RequestedProcedureCodeSequence.CodeValue=1",
        )
        .expect_err("nested");

        assert!(
            matches!(error, ParseError::NestedSequence { .. }),
            "{error}"
        );
    }

    #[test]
    fn path_through_non_sequence_is_rejected() {
        let error = QidoQuery::parse("PatientID.PatientName=1").expect_err("not a sequence");

        assert!(matches!(error, ParseError::NotASequence { .. }), "{error}");
        assert!(error.to_string().contains("PatientID"), "{error}");
    }

    #[test]
    fn unknown_item_attribute_is_named() {
        let error = QidoQuery::parse("RequestAttributesSequence.Nickname=1").expect_err("unknown");

        assert!(error.to_string().contains("Nickname"), "{error}");
    }

    #[test]
    fn includefield_takes_a_sequence() {
        let query = QidoQuery::parse("includefield=00400275").expect("parses");

        let IncludeFields::Attributes(list) = query.include else {
            panic!("expected a list, got {:?}", query.include);
        };
        assert_eq!(list[0].keyword, "RequestAttributesSequence");
    }
}
