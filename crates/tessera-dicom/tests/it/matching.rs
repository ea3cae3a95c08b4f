//! C-FIND matching rules, one group of tests per rule.

use tessera_dicom::matching::{
    normalize_person_name, MatchError, Matcher, SequenceMatcher, ValueRule,
};
use tessera_dicom::sequences::SequenceItem;

fn matcher(keyword: &str, key: &str) -> Matcher {
    Matcher::parse(keyword, key)
        .unwrap_or_else(|error| panic!("key '{key}' for {keyword} should parse: {error}"))
}

// Universal matching

#[test]
fn empty_key_is_universal() {
    let m = matcher("PatientName", "");

    assert!(m.is_universal());
    assert!(m.matches("Doe^Jane"));
    assert!(m.matches(""));
}

#[test]
fn star_key_is_universal_for_every_vr() {
    for keyword in [
        "PatientName",
        "StudyDate",
        "StudyTime",
        "SOPInstanceUID",
        "SeriesNumber",
    ] {
        let m = matcher(keyword, "*");

        assert!(m.is_universal(), "{keyword}");
    }
}

#[test]
fn repeated_stars_are_universal() {
    assert!(matcher("Modality", "**").is_universal());
}

#[test]
fn padding_only_key_is_universal() {
    assert!(matcher("AccessionNumber", "  \0").is_universal());
}

#[test]
fn empty_key_of_sequence_is_universal() {
    assert!(matcher("ReferencedStudySequence", "").is_universal());
}

// Single value matching

#[test]
fn single_value_matches_equal_value() {
    let m = matcher("AccessionNumber", "ACC-7");

    assert!(m.matches("ACC-7"));
    assert!(!m.matches("ACC-70"));
}

#[test]
fn single_value_ignores_padding() {
    let m = matcher("Modality", "CT ");

    assert!(m.matches("CT"));
    assert!(m.matches("CT\0"));
}

#[test]
fn single_value_is_case_sensitive_outside_pn() {
    let m = matcher("StudyDescription", "Chest");

    assert!(!m.matches("CHEST"));
}

#[test]
fn single_value_keeps_key_text() {
    let m = matcher("AccessionNumber", " A1 ");

    assert_eq!(
        m,
        Matcher::Single {
            value: "A1".to_owned(),
            rule: ValueRule::Exact
        }
    );
}

#[test]
fn integer_string_compares_by_value() {
    let m = matcher("SeriesNumber", "7");

    assert!(m.matches("007"));
    assert!(m.matches(" 7"));
    assert!(!m.matches("70"));
}

#[test]
fn decimal_string_compares_by_value() {
    let m = matcher("SliceThickness", "1.5");

    assert!(m.matches("1.50"));
    assert!(!m.matches("1.05"));
}

#[test]
fn wildcard_characters_are_literal_in_numbers() {
    let m = matcher("SeriesNumber", "1?");

    assert!(!m.matches("12"));
}

// Wildcard matching

#[test]
fn star_matches_any_run() {
    let m = matcher("StudyDescription", "CT*Chest");

    assert!(m.matches("CT Chest"));
    assert!(m.matches("CT with contrast, Chest"));
    assert!(!m.matches("MR Chest"));
}

#[test]
fn question_mark_matches_one_character() {
    let m = matcher("AccessionNumber", "A?C");

    assert!(m.matches("ABC"));
    assert!(!m.matches("AC"));
    assert!(!m.matches("ABBC"));
}

#[test]
fn wildcard_is_case_sensitive_outside_pn() {
    let m = matcher("StudyDescription", "chest*");

    assert!(!m.matches("Chest CT"));
}

#[test]
fn wildcard_key_parses_to_wildcard() {
    let m = matcher("StudyDescription", "Ch?st*");

    assert!(matches!(m, Matcher::Wildcard { .. }), "{m:?}");
}

// Person name matching

#[test]
fn pn_single_value_ignores_case() {
    let m = matcher("PatientName", "doe^jane");

    assert!(m.matches("Doe^Jane"));
    assert!(m.matches("DOE^JANE"));
}

#[test]
fn pn_single_value_ignores_trailing_empty_components() {
    let m = matcher("PatientName", "Doe^Jane");

    assert!(m.matches("Doe^Jane^^^"));
}

#[test]
fn pn_single_value_needs_whole_name() {
    let m = matcher("PatientName", "Doe");

    assert!(!m.matches("Doe^Jane"));
}

#[test]
fn pn_wildcard_ignores_case() {
    let m = matcher("PatientName", "doe*");

    assert!(m.matches("Doe^Jane"));
    assert!(m.matches("DOERING^PAUL"));
    assert!(!m.matches("Roe^Jane"));
}

#[test]
fn pn_question_mark_ignores_case() {
    let m = matcher("ReferringPhysicianName", "h?use^*");

    assert!(m.matches("House^Gregory"));
}

#[test]
fn pn_matches_non_ascii_names() {
    let m = matcher("PatientName", "müller*");

    assert!(m.matches("Müller^Jürgen"));
}

const JAPANESE_NAME: &str = "Yamada^Tarou=山田^太郎=やまだ^たろう";

#[test]
fn pn_alphabetic_key_ignores_other_groups() {
    let m = matcher("PatientName", "yamada^tarou");

    assert!(m.matches(JAPANESE_NAME));
    assert!(!m.matches("Yamada^Hanako=山田^花子"));
}

#[test]
fn pn_ideographic_key_matches_its_group() {
    let m = matcher("PatientName", "=山田^太郎");

    assert!(m.matches(JAPANESE_NAME));
    assert!(!m.matches("Yamada^Tarou=山本^太郎"));
    assert!(!m.matches("Yamada^Tarou"));
}

#[test]
fn pn_key_groups_must_all_match() {
    let m = matcher("PatientName", "Yamada^Tarou=山本^太郎");

    assert!(!m.matches(JAPANESE_NAME));
}

#[test]
fn pn_wildcard_key_matches_per_group() {
    let ideographic = matcher("PatientName", "=山田^*");
    let phonetic = matcher("PatientName", "==やまだ*");

    assert!(ideographic.matches(JAPANESE_NAME));
    assert!(phonetic.matches(JAPANESE_NAME));
    assert!(!phonetic.matches("Yamada^Tarou=山田^太郎"));
}

#[test]
fn pn_wildcard_key_still_spans_groups() {
    let m = matcher("PatientName", "*山田*");

    assert!(m.matches(JAPANESE_NAME));
}

#[test]
fn person_name_prefix_literal_start() {
    let prefix = |key: &str| {
        matcher("PatientName", key)
            .person_name_prefix()
            .map(str::to_owned)
    };

    assert_eq!(prefix("doe^j*").as_deref(), Some("DOE^J"));
    assert_eq!(prefix(" Doe ^ Jane ").as_deref(), Some("DOE^JANE"));
    assert_eq!(prefix("D?E*").as_deref(), Some("D"));
    assert_eq!(
        prefix("Yamada^Tarou=山田*").as_deref(),
        Some("YAMADA^TAROU")
    );
    assert_eq!(prefix("*SMITH"), None);
    assert_eq!(prefix("=山田^太郎"), None);
    assert_eq!(matcher("PatientID", "ABC*").person_name_prefix(), None);
}

#[test]
fn normalize_person_name_uppercases_and_trims() {
    assert_eq!(normalize_person_name(" doe ^ jane ^^"), "DOE^JANE");
}

// Date, time and date-time ranges

#[test]
fn date_single_value_matches_same_day() {
    let m = matcher("StudyDate", "20240215");

    assert!(m.matches("20240215"));
    assert!(!m.matches("20240216"));
}

#[test]
fn date_closed_range_is_inclusive() {
    let m = matcher("StudyDate", "20240101-20240331");

    assert!(m.matches("20240101"));
    assert!(m.matches("20240215"));
    assert!(m.matches("20240331"));
    assert!(!m.matches("20231231"));
    assert!(!m.matches("20240401"));
}

#[test]
fn date_range_open_at_end() {
    let m = matcher("StudyDate", "20240101-");

    assert!(m.matches("20991231"));
    assert!(!m.matches("20231231"));
}

#[test]
fn date_range_open_at_start() {
    let m = matcher("StudyDate", "-20240331");

    assert!(m.matches("19000101"));
    assert!(!m.matches("20240401"));
}

#[test]
fn date_range_exposes_bounds() {
    let m = matcher("StudyDate", "20240101-20240331");

    assert_eq!(
        m,
        Matcher::Range {
            from: Some("20240101".to_owned()),
            to: Some("20240331".to_owned())
        }
    );
}

#[test]
fn open_date_range_has_one_bound() {
    let m = matcher("PatientBirthDate", "-19991231");

    assert_eq!(
        m,
        Matcher::Range {
            from: None,
            to: Some("19991231".to_owned())
        }
    );
}

#[test]
fn date_matches_legacy_dotted_value() {
    let m = matcher("StudyDate", "19970101-19971231");

    assert!(m.matches("1997.04.24"));
}

#[test]
fn invalid_date_is_rejected() {
    let error = Matcher::parse("StudyDate", "2024-01-01").unwrap_err();

    assert_eq!(
        error,
        MatchError::InvalidDateRange {
            keyword: "StudyDate".to_owned(),
            value: "2024-01-01".to_owned()
        }
    );
}

#[test]
fn invalid_date_message_shows_expected_form() {
    let error = Matcher::parse("StudyDate", "yesterday").unwrap_err();

    assert_eq!(
        error.to_string(),
        "invalid date range 'yesterday' for StudyDate: expected YYYYMMDD-YYYYMMDD, \
         YYYYMMDD-, -YYYYMMDD or YYYYMMDD"
    );
}

#[test]
fn lone_dash_date_is_rejected() {
    let error = Matcher::parse("StudyDate", "-").unwrap_err();

    assert!(
        matches!(error, MatchError::InvalidDateRange { .. }),
        "{error:?}"
    );
}

#[test]
fn wildcard_date_is_rejected() {
    let error = Matcher::parse("StudyDate", "2024*").unwrap_err();

    assert!(
        matches!(error, MatchError::InvalidDateRange { .. }),
        "{error:?}"
    );
}

#[test]
fn time_single_value_matches_within_its_precision() {
    let m = matcher("StudyTime", "0800");

    assert!(m.matches("080000.123"));
    assert!(m.matches("0800"));
    assert!(m.matches("080059"));
    assert!(!m.matches("080100"));
}

#[test]
fn time_accepts_old_style_colons() {
    let m = matcher("StudyTime", "08:00");

    assert!(m.matches("08:00:30"));
    assert!(m.matches("080030"));
}

#[test]
fn time_range_end_covers_its_precision() {
    let m = matcher("StudyTime", "0700-0800");

    assert!(m.matches("070000"));
    assert!(m.matches("080059.999"));
    assert!(!m.matches("080100"));
    assert!(!m.matches("065959"));
}

#[test]
fn time_range_open_at_start() {
    let m = matcher("StudyTime", "-12");

    assert!(m.matches("125959"));
    assert!(!m.matches("13"));
}

#[test]
fn time_range_bounds_are_canonical() {
    let m = matcher("StudyTime", "0700-0800");

    assert_eq!(
        m,
        Matcher::Range {
            from: Some("070000.000000".to_owned()),
            to: Some("080059.999999".to_owned())
        }
    );
}

#[test]
fn invalid_time_is_rejected() {
    let error = Matcher::parse("StudyTime", "25").unwrap_err();

    assert!(
        matches!(error, MatchError::InvalidTimeRange { .. }),
        "{error:?}"
    );
}

#[test]
fn date_time_range_compares_across_days() {
    let m = matcher("AcquisitionDateTime", "20240101120000-20240102");

    assert!(m.matches("20240101130000.5"));
    assert!(m.matches("20240102235959"));
    assert!(!m.matches("20240101115959"));
    assert!(!m.matches("20240103"));
}

#[test]
fn date_time_single_value_ignores_utc_offset() {
    let m = matcher("AcquisitionDateTime", "2024010112");

    assert!(m.matches("20240101123000+0100"));
}

#[test]
fn invalid_date_time_is_rejected() {
    let error = Matcher::parse("AcquisitionDateTime", "2024-13").unwrap_err();

    assert!(
        matches!(error, MatchError::InvalidDateTimeRange { .. }),
        "{error:?}"
    );
}

#[test]
fn invalid_stored_date_does_not_match() {
    let m = matcher("StudyDate", "20240101-");

    assert!(!m.matches("unknown"));
}

// UID list matching

#[test]
fn single_uid_matches_only_itself() {
    let m = matcher("SOPInstanceUID", "1.2.3.4");

    assert!(m.matches("1.2.3.4"));
    assert!(!m.matches("1.2.3.40"));
}

#[test]
fn uid_list_matches_any_listed_uid() {
    let m = matcher("StudyInstanceUID", "1.2.3\\1.2.4\\1.2.5");

    assert!(m.matches("1.2.4"));
    assert!(m.matches("1.2.5"));
    assert!(!m.matches("1.2.6"));
}

#[test]
fn single_uid_parses_to_list_of_one() {
    let m = matcher("SeriesInstanceUID", "1.2.3");

    assert_eq!(m, Matcher::UidList(vec!["1.2.3".to_owned()]));
}

#[test]
fn uid_wildcard_is_rejected() {
    let error = Matcher::parse("StudyInstanceUID", "1.2.*").unwrap_err();

    assert_eq!(
        error,
        MatchError::InvalidUid {
            keyword: "StudyInstanceUID".to_owned(),
            value: "1.2.*".to_owned()
        }
    );
}

#[test]
fn uid_list_names_invalid_member() {
    let error = Matcher::parse("StudyInstanceUID", "1.2.3\\1.02").unwrap_err();

    assert!(
        matches!(&error, MatchError::InvalidUid { value, .. } if value == "1.02"),
        "{error:?}"
    );
}

// Multi-valued stored values

#[test]
fn multi_valued_stored_value_matches_any_value() {
    let m = matcher("ModalitiesInStudy", "PR");

    assert!(m.matches("CT\\PR"));
    assert!(!m.matches("CT\\MR"));
}

#[test]
fn multi_valued_stored_value_matches_wildcard() {
    let m = matcher("ModalitiesInStudy", "M?");

    assert!(m.matches("CT\\MR"));
}

#[test]
fn multi_valued_stored_dates_match_range() {
    let m = matcher("StudyDate", "20240101-20240131");

    assert!(m.matches("20231201\\20240115"));
}

// Empty stored values

#[test]
fn empty_stored_value_matches_only_universal() {
    assert!(!matcher("PatientName", "Doe*").matches(""));
    assert!(!matcher("PatientName", "?").matches(""));
    assert!(!matcher("StudyDate", "-20240101").matches(""));
    assert!(!matcher("SOPInstanceUID", "1.2").matches(""));
    assert!(!matcher("Modality", "CT").matches(""));
    assert!(matcher("Modality", "").matches(""));
}

#[test]
fn padding_only_stored_value_counts_as_empty() {
    assert!(!matcher("PatientName", "*^*").matches("  "));
}

// Keywords

#[test]
fn unknown_keyword_is_rejected() {
    let error = Matcher::parse("PatientsName", "Doe").unwrap_err();

    assert_eq!(
        error,
        MatchError::UnknownKeyword {
            keyword: "PatientsName".to_owned()
        }
    );
}

#[test]
fn unknown_keyword_message_suggests_keyword() {
    let error = Matcher::parse("patient_name", "Doe").unwrap_err();

    assert!(error.to_string().contains("'patient_name'"), "{error}");
    assert!(error.to_string().contains("PatientName"), "{error}");
}

#[test]
fn sequence_key_with_value_is_rejected() {
    let error = Matcher::parse("ReferencedStudySequence", "x").unwrap_err();

    assert!(
        matches!(error, MatchError::UnsupportedVr { vr: "SQ", .. }),
        "{error:?}"
    );
}

// Sequence matching

fn item(pairs: &[(&str, &str)]) -> SequenceItem {
    pairs
        .iter()
        .map(|(keyword, value)| (keyword.to_string(), value.to_string()))
        .collect()
}

fn sequence_matcher(pairs: &[(&str, &str)]) -> SequenceMatcher {
    SequenceMatcher::parse(&item(pairs)).expect("item keys parse")
}

fn requests() -> Vec<SequenceItem> {
    vec![
        item(&[
            ("RequestedProcedureID", "RP1"),
            ("ScheduledProcedureStepID", "SPS1"),
            ("AccessionNumber", "A-100"),
        ]),
        item(&[
            ("RequestedProcedureID", "RP2"),
            ("ScheduledProcedureStepID", "SPS2"),
            ("AccessionNumber", "A-200"),
        ]),
    ]
}

#[test]
fn sequence_without_item_keys_returns_every_item() {
    let matcher = sequence_matcher(&[]);
    let items = requests();

    assert!(matcher.is_universal());
    assert_eq!(matcher.matching_items(&items).map(|m| m.len()), Some(2));
    assert_eq!(matcher.matching_items(&[]).map(|m| m.len()), Some(0));
}

#[test]
fn sequence_of_universal_item_keys_is_universal() {
    let matcher = sequence_matcher(&[("RequestedProcedureID", ""), ("AccessionNumber", "*")]);

    assert!(matcher.is_universal());
    assert_eq!(matcher.matching_items(&[]).map(|m| m.len()), Some(0));
}

#[test]
fn single_value_item_key_returns_only_matching_item() {
    let matcher = sequence_matcher(&[("RequestedProcedureID", "RP2")]);
    let items = requests();

    let matching = matcher.matching_items(&items).expect("one item matches");

    assert_eq!(matching.len(), 1);
    assert_eq!(matching[0]["ScheduledProcedureStepID"], "SPS2");
}

#[test]
fn wildcard_item_key_matches_several_items() {
    let matcher = sequence_matcher(&[("AccessionNumber", "A-?00")]);
    let items = requests();

    let matching = matcher.matching_items(&items).expect("items match");

    assert_eq!(matching.len(), 2);
}

#[test]
fn item_keys_must_match_within_one_item() {
    let across = sequence_matcher(&[
        ("RequestedProcedureID", "RP1"),
        ("ScheduledProcedureStepID", "SPS2"),
    ]);
    let within = sequence_matcher(&[
        ("RequestedProcedureID", "RP1"),
        ("ScheduledProcedureStepID", "SPS1"),
    ]);
    let items = requests();

    assert_eq!(across.matching_items(&items), None);
    assert_eq!(within.matching_items(&items).map(|m| m.len()), Some(1));
}

#[test]
fn item_key_without_match_rejects_record() {
    let matcher = sequence_matcher(&[("RequestedProcedureID", "RP9")]);

    assert_eq!(matcher.matching_items(&requests()), None);
}

#[test]
fn empty_stored_sequence_matches_only_universal() {
    let matcher = sequence_matcher(&[("RequestedProcedureID", "RP1")]);

    assert_eq!(matcher.matching_items(&[]), None);
}

#[test]
fn item_lacking_the_attribute_does_not_match() {
    let matcher = sequence_matcher(&[("CodingSchemeDesignator", "DCM")]);
    let items = vec![item(&[("CodeValue", "126000")])];

    assert_eq!(matcher.matching_items(&items), None);
}

#[test]
fn item_keys_follow_their_vr_rules() {
    let uids = sequence_matcher(&[("ReferencedSOPInstanceUID", "1.2.3\\1.2.4")]);
    let dates = sequence_matcher(&[("ScheduledProcedureStepStartDate", "20240101-20240131")]);
    let names = sequence_matcher(&[("PatientName", "doe^j*")]);

    assert!(uids.matches_item(&item(&[("ReferencedSOPInstanceUID", "1.2.4")])));
    assert!(!uids.matches_item(&item(&[("ReferencedSOPInstanceUID", "1.2.5")])));
    assert!(dates.matches_item(&item(&[("ScheduledProcedureStepStartDate", "20240115")])));
    assert!(!dates.matches_item(&item(&[("ScheduledProcedureStepStartDate", "20240201")])));
    assert!(names.matches_item(&item(&[("PatientName", "DOE^JANE")])));
}

#[test]
fn invalid_item_key_is_an_error() {
    let error = SequenceMatcher::parse(&item(&[("ReferencedSOPInstanceUID", "1.2.*")]))
        .expect_err("wildcard in a UID");

    assert!(matches!(error, MatchError::InvalidUid { .. }), "{error}");
}
