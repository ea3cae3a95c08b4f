//! Character sets: the examples of PS3.5 Annexes H to K, pydicom's character
//! set samples, and round trips.

use dicom_core::VR;
use proptest::prelude::*;
use tessera_dicom::charset::{
    decode_person_name, decode_text, decode_value, decode_value_lossy, encode_person_name,
    encode_text, encode_value,
};
use tessera_dicom::{read_index_attributes, DicomError};

/// Parses space-separated hex bytes, as the annexes print them.
fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).expect("test data is hex"))
        .collect()
}

/// PS3.5 H.3.1: romaji in G0, then JIS X 0208 through ESC $ B.
const ANNEX_H1_NAME: &str = "Yamada^Tarou=山田^太郎=やまだ^たろう";
const ANNEX_H1_BYTES: &str = "59 61 6D 61 64 61 5E 54 61 72 6F 75 3D 1B 24 42 3B 33 45 44 \
    1B 28 42 5E 1B 24 42 42 40 4F 3A 1B 28 42 3D 1B 24 42 24 64 24 5E 24 40 1B 28 42 5E \
    1B 24 42 24 3F 24 6D 24 26 1B 28 42";

/// PS3.5 H.3.2: half-width katakana in G1 from value 1, kanji through ESC $ B,
/// and ESC ( J back to JIS X 0201 Roman.
const ANNEX_H2_NAME: &str = "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう";
const ANNEX_H2_BYTES: &str = "D4 CF C0 DE 5E C0 DB B3 3D 1B 24 42 3B 33 45 44 1B 28 4A 5E \
    1B 24 42 42 40 4F 3A 1B 28 4A 3D 1B 24 42 24 64 24 5E 24 40 1B 28 4A 5E 1B 24 42 24 3F \
    24 6D 24 26 1B 28 4A";

/// PS3.5 I.2: KS X 1001 in G1, designated again after each delimiter.
const ANNEX_I2_NAME: &str = "Hong^Gildong=洪^吉洞=홍^길동";
const ANNEX_I2_BYTES: &str = "48 6F 6E 67 5E 47 69 6C 64 6F 6E 67 3D 1B 24 29 43 FB F3 5E \
    1B 24 29 43 D1 CE D4 D7 3D 1B 24 29 43 C8 AB 5E 1B 24 29 43 B1 E6 B5 BF";

/// PS3.5 K.2: GB 2312 in G1.
const ANNEX_K2_NAME: &str = "Zhang^XiaoDong=张^小东=";
const ANNEX_K2_BYTES: &str = "5A 68 61 6E 67 5E 58 69 61 6F 44 6F 6E 67 3D 1B 24 29 41 D5 \
    C5 5E 1B 24 29 41 D0 A1 B6 AB 3D";

#[test]
fn annex_h_japanese_names_decode() {
    let romaji = decode_person_name("\\ISO 2022 IR 87", &hex(ANNEX_H1_BYTES)).unwrap();
    let katakana =
        decode_person_name("ISO 2022 IR 13\\ISO 2022 IR 87", &hex(ANNEX_H2_BYTES)).unwrap();

    assert_eq!(romaji, ANNEX_H1_NAME);
    assert_eq!(katakana, ANNEX_H2_NAME);
}

#[test]
fn annex_h_japanese_names_encode() {
    let romaji = encode_person_name("\\ISO 2022 IR 87", ANNEX_H1_NAME).unwrap();
    let katakana = encode_person_name("ISO 2022 IR 13\\ISO 2022 IR 87", ANNEX_H2_NAME).unwrap();

    assert_eq!(romaji, hex(ANNEX_H1_BYTES));
    assert_eq!(katakana, hex(ANNEX_H2_BYTES));
}

#[test]
fn annex_i_korean_name_round_trips() {
    let name = decode_person_name("\\ISO 2022 IR 149", &hex(ANNEX_I2_BYTES)).unwrap();
    let encoded = encode_person_name("\\ISO 2022 IR 149", ANNEX_I2_NAME).unwrap();

    assert_eq!(name, ANNEX_I2_NAME);
    assert_eq!(encoded, hex(ANNEX_I2_BYTES));
}

/// PS3.5 I.3: a long text whose lines each designate KS X 1001 first.
#[test]
fn annex_i_korean_text_decodes() {
    let raw = hex(
        "1B 24 29 43 54 68 65 20 31 73 74 20 6C 69 6E 65 20 69 6E 63 6C 75 64 65 73 20 \
         B1 E6 B5 BF 2E 0D 0A 1B 24 29 43 54 68 65 20 32 6E 64 20 6C 69 6E 65 20 69 6E 63 \
         6C 75 64 65 73 20 B1 E6 B5 BF 2C 20 74 6F 6F 2E 0D 0A 54 68 65 20 33 72 64 20 6C \
         69 6E 65 2E 0D 0A",
    );

    let text = decode_value("\\ISO 2022 IR 149", VR::LT, &raw).unwrap();

    assert_eq!(
        text,
        "The 1st line includes 길동.\r\nThe 2nd line includes 길동, too.\r\nThe 3rd line.\r\n"
    );
}

#[test]
fn annex_j_chinese_names_round_trip() {
    let gb18030 = hex("57 61 6E 67 5E 58 69 61 6F 44 6F 6E 67 3D CD F5 5E D0 A1 B6 AB 3D");
    let utf8_name = "Wang^XiaoDong=王^小東=";

    let decoded_gb18030 = decode_person_name("GB18030", &gb18030).unwrap();
    let decoded_utf8 = decode_person_name("ISO_IR 192", utf8_name.as_bytes()).unwrap();

    assert_eq!(decoded_gb18030, "Wang^XiaoDong=王^小东=");
    assert_eq!(decoded_utf8, utf8_name);
    assert_eq!(
        encode_person_name("GB18030", &decoded_gb18030).unwrap(),
        gb18030
    );
}

#[test]
fn annex_k_chinese_name_round_trips() {
    let name = decode_person_name("\\ISO 2022 IR 58", &hex(ANNEX_K2_BYTES)).unwrap();
    let encoded = encode_person_name("\\ISO 2022 IR 58", ANNEX_K2_NAME).unwrap();

    assert_eq!(name, ANNEX_K2_NAME);
    assert_eq!(encoded, hex(ANNEX_K2_BYTES));
}

/// PS3.5 K.3: three lines of GB 2312 text, each designating G1 again after
/// the CR LF of the previous line.
#[test]
fn annex_k_chinese_text_round_trips() {
    let raw = hex(
        "31 2E 1B 24 29 41 B5 DA D2 BB D0 D0 CE C4 D7 D6 A1 A3 0D 0A \
         32 2E 1B 24 29 41 B5 DA B6 FE D0 D0 CE C4 D7 D6 A1 A3 0D 0A \
         33 2E 1B 24 29 41 B5 DA C8 FD D0 D0 CE C4 D7 D6 A1 A3 0D 0A",
    );
    let expected = "1.第一行文字。\r\n2.第二行文字。\r\n3.第三行文字。\r\n";

    let text = decode_value("\\ISO 2022 IR 58", VR::LT, &raw).unwrap();
    let encoded = encode_value("\\ISO 2022 IR 58", VR::LT, expected).unwrap();

    assert_eq!(text, expected);
    assert_eq!(encoded, raw);
}

#[test]
fn single_byte_sets_decode_known_letters() {
    let cases = [
        ("ISO_IR 100", vec![0xC4, 0xFC], "Äü"),
        ("ISO_IR 101", vec![0xA3, 0xB1], "Łą"),
        ("ISO_IR 109", vec![0xA1, 0xFD], "Ħŭ"),
        ("ISO_IR 110", vec![0xA1, 0xF9], "Ąų"),
        ("ISO_IR 144", vec![0xBB, 0xEE], "Лю"),
        ("ISO_IR 127", vec![0xC7, 0xE4], "ال"),
        ("ISO_IR 126", vec![0xC4, 0xE9], "Δι"),
        ("ISO_IR 138", vec![0xF9, 0xF8], "שר"),
        ("ISO_IR 148", vec![0xD0, 0xFE], "Ğş"),
        ("ISO_IR 166", vec![0xA1, 0xB9], "กน"),
        ("ISO_IR 13", vec![0xB1, 0x41], "ｱA"),
    ];

    for (term, raw, expected) in cases {
        let decoded = decode_text(term, &raw).unwrap();
        let encoded = encode_text(term, expected).unwrap();

        assert_eq!(decoded, expected, "{term}");
        assert_eq!(encoded, raw, "{term}");
    }
}

#[test]
fn single_byte_term_with_extensions_is_accepted() {
    // Some writers put "ISO_IR 100" where "ISO 2022 IR 100" belongs.
    let raw = b"Buc^J\xe9r\xf4me=\x1b$B;3ED\x1b(B";

    let name = decode_person_name("ISO_IR 100\\ISO 2022 IR 87", raw).unwrap();

    assert_eq!(name, "Buc^Jérôme=山田");
}

#[test]
fn g1_escape_switches_single_byte_set() {
    let raw = b"abc\x1b-L\xbb\xee\xda";

    let text = decode_text("ISO 2022 IR 6\\ISO 2022 IR 144", raw).unwrap();

    assert_eq!(text, "abcЛюк");
}

#[test]
fn jis_x0212_round_trips() {
    // U+4E02 is in JIS X 0212 but not in JIS X 0208.
    let text = "A丂B";

    let encoded = encode_text("\\ISO 2022 IR 87\\ISO 2022 IR 159", text).unwrap();
    let decoded = decode_text("\\ISO 2022 IR 87\\ISO 2022 IR 159", &encoded).unwrap();

    assert_eq!(&encoded[1..5], b"\x1b$(D");
    assert_eq!(decoded, text);
}

#[test]
fn delimiter_resets_g1_to_value_one() {
    // ESC - L puts Cyrillic in G1. After '\\', G1 is Latin-1 again, as
    // value 1 declares, so the same byte 0xBB decodes differently.
    let raw = b"\x1b-L\xbb\\\xbb";

    let text = decode_text("ISO 2022 IR 100\\ISO 2022 IR 144", raw).unwrap();

    assert_eq!(text, "Л\\»");
}

#[test]
fn multi_byte_value_keeps_backslash_bytes() {
    // 0x5C is the second byte of this GBK character, not a delimiter.
    let raw = [0x81, 0x5C];

    let text = decode_text("GBK", &raw).unwrap();

    assert_eq!(text, "乗");
}

#[test]
fn unsupported_term_names_the_term() {
    let error = decode_text("ISO_IR 999", b"abc").unwrap_err();

    let DicomError::UnsupportedCharacterSet { term, .. } = &error else {
        panic!("expected UnsupportedCharacterSet, got {error:?}");
    };
    assert_eq!(term, "ISO_IR 999");
    assert!(error.to_string().contains("ISO_IR 999"), "{error}");
}

#[test]
fn utf8_combined_with_extensions_is_rejected() {
    let error = decode_text("ISO_IR 192\\ISO 2022 IR 87", b"abc").unwrap_err();

    assert!(
        matches!(error, DicomError::UnsupportedCharacterSet { .. }),
        "{error:?}"
    );
}

#[test]
fn two_byte_value_one_is_rejected() {
    let error = decode_text("ISO 2022 IR 87", b"abc").unwrap_err();

    assert!(
        matches!(error, DicomError::UnsupportedCharacterSet { .. }),
        "{error:?}"
    );
}

#[test]
fn invalid_byte_reports_its_offset() {
    let cases: [(&str, &[u8], usize); 6] = [
        ("", b"ab\xe9", 2),
        ("ISO_IR 192", b"abc\xff", 3),
        ("GB18030", b"a\x81", 1),
        ("\\ISO 2022 IR 87", b"a\x1b$B;", 4),
        ("\\ISO 2022 IR 87", b"a\x1b%G", 1),
        ("ISO_IR 109", b"x\xa5", 1),
    ];

    for (term, raw, expected_offset) in cases {
        let error = decode_text(term, raw).unwrap_err();

        let DicomError::InvalidText { offset, .. } = error else {
            panic!("{term}: expected InvalidText, got {error:?}");
        };
        assert_eq!(offset, expected_offset, "{term} {raw:?}");
    }
}

#[test]
fn undeclared_escape_is_rejected() {
    // ESC $ ) C designates KS X 1001, but only Japanese sets are declared.
    let raw = b"a\x1b$)C\xb1\xe6";

    let error = decode_text("\\ISO 2022 IR 87", raw).unwrap_err();

    let DicomError::InvalidText { offset, reason, .. } = &error else {
        panic!("expected InvalidText, got {error:?}");
    };
    assert_eq!(*offset, 1);
    assert!(reason.contains("KS X 1001"), "{reason}");
}

#[test]
fn gbk_rejects_four_byte_sequences() {
    // 0x81 0x30 0x81 0x30 is U+0080 in GB18030 and undefined in GBK.
    let raw = [b'a', 0x81, 0x30, 0x81, 0x30];

    let gb18030 = decode_text("GB18030", &raw).unwrap();
    let error = decode_text("GBK", &raw).unwrap_err();

    assert_eq!(gb18030, "a\u{80}");
    assert!(
        matches!(error, DicomError::InvalidText { offset: 1, .. }),
        "{error:?}"
    );
}

#[test]
fn lossy_decode_replaces_invalid_bytes() {
    let text = decode_value_lossy("", VR::PN, b"Doe^J\xf6rg");
    let unknown_term = decode_value_lossy("ISO_IR 999", VR::PN, b"Doe^J\xf6rg");

    assert_eq!(text, "Doe^J\u{FFFD}rg");
    assert_eq!(unknown_term, "Doe^J\u{FFFD}rg");
}

#[test]
fn unencodable_character_is_named() {
    let error = encode_text("ISO_IR 100", "Łódź").unwrap_err();

    let DicomError::UnencodableCharacter { character, .. } = error else {
        panic!("expected UnencodableCharacter, got {error:?}");
    };
    assert_eq!(character, 'Ł');
}

/// One file of the fixture recorded by `record_pydicom_charsets.py`.
#[derive(serde::Deserialize)]
struct RecordedFile {
    file: String,
    specific_character_set: String,
    attributes: std::collections::BTreeMap<String, RecordedValue>,
}

#[derive(serde::Deserialize)]
struct RecordedValue {
    raw_hex: String,
    pydicom: String,
}

#[derive(serde::Deserialize)]
struct Recording {
    files: Vec<RecordedFile>,
}

fn pydicom_recording() -> Recording {
    let json = include_str!("../fixtures/pydicom_charsets.json");
    serde_json::from_str(json).expect("fixture is valid JSON")
}

fn vr_of(keyword: &str) -> VR {
    match keyword {
        "PatientName" | "ReferringPhysicianName" => VR::PN,
        _ => VR::LO,
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("fixture is hex"))
        .collect()
}

/// Trims padding as pydicom does, and for PN also the empty trailing
/// component groups, which pydicom 3.0 leaves out when it prints a name.
fn as_pydicom_prints(text: &str, vr: VR) -> &str {
    let trimmed = text.trim_end_matches([' ', '\0']);
    if vr == VR::PN {
        trimmed.trim_end_matches('=')
    } else {
        trimmed
    }
}

#[test]
fn pydicom_samples_decode_like_pydicom() {
    let recording = pydicom_recording();
    assert!(recording.files.len() >= 15, "fixture lists too few files");

    for file in &recording.files {
        for (keyword, value) in &file.attributes {
            let raw = unhex(&value.raw_hex);

            let decoded = decode_value(&file.specific_character_set, vr_of(keyword), &raw)
                .unwrap_or_else(|error| panic!("{} {keyword}: {error}", file.file));

            assert_eq!(
                as_pydicom_prints(&decoded, vr_of(keyword)),
                value.pydicom,
                "{} {keyword}",
                file.file
            );
        }
    }
}

/// Reads pydicom's character set samples through the index reader, which
/// must decode the same text as pydicom, ISO 2022 files included.
#[test]
fn index_reads_pydicom_samples_like_pydicom() {
    let directory = crate::corpus::test_files_dir()
        .parent()
        .expect("test_files has a parent")
        .join("charset_files");
    let mut indexed = 0;

    for file in pydicom_recording().files {
        let bytes = std::fs::read(directory.join(&file.file))
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.file));

        let attributes = match read_index_attributes(&bytes) {
            Ok(attributes) => attributes,
            // chrJapMulti*.dcm disagree with their meta group, and
            // chrSQEncoding*.dcm have no UIDs: they cannot be archived.
            Err(
                DicomError::SopInstanceUidMismatch { .. } | DicomError::MissingAttribute { .. },
            ) => {
                continue;
            }
            Err(error) => panic!("{}: {error}", file.file),
        };
        indexed += 1;

        let indexed_values = [
            ("PatientName", &attributes.patient_name),
            ("PatientID", &attributes.patient_id),
            (
                "ReferringPhysicianName",
                &attributes.referring_physician_name,
            ),
            ("StudyDescription", &attributes.study_description),
            ("AccessionNumber", &attributes.accession_number),
            ("StudyID", &attributes.study_id),
        ];
        for (keyword, value) in indexed_values {
            let Some(recorded) = file.attributes.get(keyword) else {
                continue;
            };
            assert_eq!(
                as_pydicom_prints(value, vr_of(keyword)),
                recorded.pydicom,
                "{} {keyword}",
                file.file
            );
        }
    }

    assert!(indexed >= 12, "only {indexed} samples were indexed");
}

/// Encodes each name that pydicom decoded and checks that it decodes back.
/// The bytes may differ from the file's, because some writers designate a
/// set again where nothing changed (chrKoreanMulti.dcm ends with ESC ( B).
#[test]
fn pydicom_sample_names_round_trip() {
    let recording = pydicom_recording();

    for file in &recording.files {
        let Some(name) = file.attributes.get("PatientName") else {
            continue;
        };

        let encoded = encode_person_name(&file.specific_character_set, &name.pydicom)
            .unwrap_or_else(|error| panic!("{}: {error}", file.file));
        let decoded = decode_person_name(&file.specific_character_set, &encoded).unwrap();

        assert_eq!(decoded, name.pydicom, "{}", file.file);
    }
}

/// Strings of romaji, kana, kanji and the PN delimiters, which exercise
/// the escape switching of ISO 2022 IR 87.
fn japanese_name() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "Yamada",
        "^",
        "=",
        "山田",
        "太郎",
        "やまだ",
        "たろう",
        " ",
        "\\",
        "ー",
        "Ａ",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn utf8_round_trips(text in any::<String>()) {
        let encoded = encode_text("ISO_IR 192", &text).unwrap();
        let decoded = decode_text("ISO_IR 192", &encoded).unwrap();

        prop_assert_eq!(decoded, text);
    }

    #[test]
    fn gb18030_round_trips(text in any::<String>()) {
        // The WHATWG GB18030 encoder, which encoding_rs implements, maps
        // every scalar value except U+E5E5.
        prop_assume!(!text.contains('\u{E5E5}'));

        let encoded = encode_text("GB18030", &text).unwrap();
        let decoded = decode_text("GB18030", &encoded).unwrap();

        prop_assert_eq!(decoded, text);
    }

    #[test]
    fn iso2022_japanese_round_trips(name in japanese_name()) {
        let encoded = encode_person_name("\\ISO 2022 IR 87", &name).unwrap();
        let decoded = decode_person_name("\\ISO 2022 IR 87", &encoded).unwrap();

        prop_assert_eq!(decoded, name);
    }

    #[test]
    fn decode_never_panics(raw in prop::collection::vec(any::<u8>(), 0..64)) {
        for term in ["", "ISO_IR 100", "\\ISO 2022 IR 87\\ISO 2022 IR 159", "ISO 2022 IR 13\\ISO 2022 IR 149", "GBK"] {
            let _ = decode_person_name(term, &raw);
            let lossy = decode_value_lossy(term, VR::PN, &raw);
            prop_assert!(lossy.chars().count() <= raw.len());
        }
    }
}
