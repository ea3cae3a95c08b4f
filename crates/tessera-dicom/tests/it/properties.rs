//! Property tests of matching and of the parser's robustness.

use dicom_dictionary_std::uids;
use proptest::prelude::*;
use tessera_dicom::matching::{normalize_person_name, Matcher};
use tessera_dicom::read_index_attributes;

use crate::support::{ct_dataset, part10};

/// Text that a string attribute may hold, without wildcards or value separators.
fn plain_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9^._ -]{0,24}[A-Za-z0-9]"
}

fn date() -> impl Strategy<Value = String> {
    (1900_u32..2100, 1_u32..=12, 1_u32..=28)
        .prop_map(|(year, month, day)| format!("{year:04}{month:02}{day:02}"))
}

fn time() -> impl Strategy<Value = String> {
    (
        0_u32..24,
        0_u32..60,
        0_u32..60,
        proptest::option::of(0_u32..1_000_000),
    )
        .prop_map(|(hour, minute, second, fraction)| match fraction {
            Some(fraction) => format!("{hour:02}{minute:02}{second:02}.{fraction:06}"),
            None => format!("{hour:02}{minute:02}{second:02}"),
        })
}

fn sorted<T: Ord>(mut values: [T; 3]) -> [T; 3] {
    values.sort();
    values
}

proptest! {
    /// The catalog scans its name index from `person_name_prefix`, so a
    /// stored name that matches but lacks the prefix would be missed.
    #[test]
    fn name_prefix_starts_each_match(
        key in "[AbC^=*? ]{1,8}",
        stored in "[AbC^= \\\\]{0,12}",
    ) {
        let matcher = Matcher::parse("PatientName", &key).unwrap();
        if let Some(prefix) = matcher.person_name_prefix() {
            if matcher.matches(&stored) {
                let starts = stored
                    .split('\\')
                    .map(normalize_person_name)
                    .any(|value| value.starts_with(prefix));
                prop_assert!(starts, "{stored:?} matches {key:?} but lacks {prefix:?}");
            }
        }
    }

    #[test]
    fn star_matches_any_stored_value(stored in any::<String>()) {
        let pn = Matcher::parse("PatientName", "*").unwrap();
        let lo = Matcher::parse("StudyDescription", "*").unwrap();

        prop_assert!(pn.matches(&stored));
        prop_assert!(lo.matches(&stored));
    }

    #[test]
    fn star_pattern_matches_prefix(prefix in "[A-Za-z]{1,8}", rest in plain_text()) {
        let m = Matcher::parse("StudyDescription", &format!("{prefix}*")).unwrap();
        let stored = format!("{prefix}{rest}");

        prop_assert!(m.matches(&stored));
    }

    #[test]
    fn text_matches_itself_as_single(value in plain_text()) {
        let m = Matcher::parse("StudyDescription", &value).unwrap();

        prop_assert!(m.matches(&value), "{:?} against {:?}", m, value);
    }

    #[test]
    fn person_name_matches_itself_in_any_case(value in plain_text()) {
        let m = Matcher::parse("PatientName", &value).unwrap();

        prop_assert!(m.matches(&value), "{:?}", m);
        prop_assert!(m.matches(&value.to_lowercase()), "{:?}", m);
    }

    #[test]
    fn date_matches_itself_as_single(value in date()) {
        let m = Matcher::parse("StudyDate", &value).unwrap();

        prop_assert!(m.matches(&value));
    }

    #[test]
    fn time_matches_itself_as_single(value in time()) {
        let m = Matcher::parse("StudyTime", &value).unwrap();

        prop_assert!(m.matches(&value));
    }

    #[test]
    fn date_inside_range_matches(dates in [date(), date(), date()]) {
        let [from, x, to] = sorted(dates);
        let m = Matcher::parse("StudyDate", &format!("{from}-{to}")).unwrap();

        prop_assert!(m.matches(&x), "{} not in {}-{}", x, from, to);
    }

    #[test]
    fn date_outside_range_does_not_match(dates in [date(), date(), date()]) {
        let [x, from, to] = sorted(dates);
        prop_assume!(x < from);
        let m = Matcher::parse("StudyDate", &format!("{from}-{to}")).unwrap();

        prop_assert!(!m.matches(&x), "{} in {}-{}", x, from, to);
    }

    #[test]
    fn time_inside_range_matches(times in [time(), time(), time()]) {
        let [from, x, to] = sorted(times);
        let m = Matcher::parse("StudyTime", &format!("{from}-{to}")).unwrap();

        prop_assert!(m.matches(&x), "{} not in {}-{}", x, from, to);
    }

    #[test]
    fn open_date_ranges_match_inside(dates in [date(), date()]) {
        let [from, x] = {
            let mut pair = dates;
            pair.sort();
            pair
        };
        let from_only = Matcher::parse("StudyDate", &format!("{from}-")).unwrap();
        let to_only = Matcher::parse("StudyDate", &format!("-{x}")).unwrap();

        prop_assert!(from_only.matches(&x));
        prop_assert!(to_only.matches(&from));
    }

    #[test]
    fn matcher_parse_never_panics(keyword in "[A-Za-z]{0,24}", value in any::<String>()) {
        let _ = Matcher::parse(&keyword, &value);
    }

    #[test]
    fn matching_never_panics(value in any::<String>(), stored in any::<String>()) {
        for keyword in ["PatientName", "StudyDate", "StudyTime", "AcquisitionDateTime", "StudyInstanceUID", "SeriesNumber"] {
            if let Ok(m) = Matcher::parse(keyword, &value) {
                let _ = m.matches(&stored);
            }
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_index_attributes(&bytes);
    }

    #[test]
    fn parser_never_panics_after_magic_code(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = vec![0; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend(tail);

        let _ = read_index_attributes(&bytes);
    }

    #[test]
    fn parser_never_panics_on_truncated_file(cut in 0_usize..2048) {
        let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);
        let cut = cut.min(bytes.len());

        let _ = read_index_attributes(&bytes[..cut]);
    }
}
