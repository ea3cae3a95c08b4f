//! Validation of Part 10 files built in memory.

use std::io::Read;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use tessera_dicom::sequences::MAX_INDEXED_ITEMS;
use tessera_dicom::{read_index_attributes, read_index_attributes_from, DicomError};

use crate::support::{
    append_pixel_data, ct_dataset, part10, part10_with_meta, SERIES_INSTANCE_UID, SOP_INSTANCE_UID,
    STUDY_INSTANCE_UID,
};

#[test]
fn complete_instance_yields_all_attributes() {
    let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    assert_eq!(attributes.sop_class_uid, uids::CT_IMAGE_STORAGE);
    assert_eq!(attributes.sop_instance_uid, SOP_INSTANCE_UID);
    assert_eq!(attributes.study_instance_uid, STUDY_INSTANCE_UID);
    assert_eq!(attributes.series_instance_uid, SERIES_INSTANCE_UID);
    assert_eq!(
        attributes.transfer_syntax_uid,
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    );
    assert_eq!(attributes.specific_character_set, "ISO_IR 100");
    assert_eq!(attributes.patient_id, "PID-1");
    assert_eq!(attributes.issuer_of_patient_id, "HOSP");
    assert_eq!(attributes.patient_name, "Doe^Jane");
    assert_eq!(attributes.patient_birth_date, "19700101");
    assert_eq!(attributes.patient_sex, "F");
    assert_eq!(attributes.study_date, "20240215");
    assert_eq!(attributes.study_time, "083015.25");
    assert_eq!(attributes.accession_number, "ACC-7");
    assert_eq!(attributes.study_description, "Chest");
    assert_eq!(attributes.study_id, "S1");
    assert_eq!(attributes.referring_physician_name, "House^Gregory");
    assert_eq!(attributes.modality, "CT");
    assert_eq!(attributes.series_description, "Axial 1mm");
    assert_eq!(attributes.series_number, "2");
    assert_eq!(attributes.instance_number, "7");
    assert_eq!(attributes.number_of_frames, 1);
    assert_eq!(attributes.rows, 4);
    assert_eq!(attributes.columns, 2);
}

#[test]
fn every_writable_transfer_syntax_reads_back() {
    let syntaxes = [
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        // Retired since 2004 but still found in archives.
        "1.2.840.10008.1.2.2",
        uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    ];

    for syntax in syntaxes {
        let bytes = part10(ct_dataset(), syntax);

        let attributes = read_index_attributes(&bytes)
            .unwrap_or_else(|error| panic!("transfer syntax {syntax}: {error}"));

        assert_eq!(attributes.transfer_syntax_uid, syntax);
        assert_eq!(
            attributes.study_instance_uid, STUDY_INSTANCE_UID,
            "{syntax}"
        );
        assert_eq!(attributes.patient_name, "Doe^Jane", "{syntax}");
        assert_eq!(attributes.rows, 4, "{syntax}");
    }
}

#[test]
fn padding_is_trimmed_but_leading_spaces_kept() {
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(tags::PATIENT_ID, VR::LO, " PID-1 \0"));
    dataset.put(DataElement::new(tags::MODALITY, VR::CS, "CT "));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    assert_eq!(attributes.patient_id, " PID-1");
    assert_eq!(attributes.modality, "CT");
}

#[test]
fn multi_valued_character_set_joins_with_backslash() {
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        dicom_core::dicom_value!(Strs, ["", "ISO 2022 IR 87"]),
    ));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    assert_eq!(attributes.specific_character_set, "\\ISO 2022 IR 87");
}

#[test]
fn latin1_patient_name_decodes_to_utf8() {
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(
        tags::PATIENT_NAME,
        VR::PN,
        "Müller^Jürgen",
    ));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let latin1 = b"M\xfcller^J\xfcrgen";

    let attributes = read_index_attributes(&bytes).unwrap();

    assert!(
        bytes.windows(latin1.len()).any(|window| window == latin1),
        "the writer should encode the name in ISO_IR 100"
    );
    assert_eq!(attributes.patient_name, "Müller^Jürgen");
}

#[test]
fn number_of_frames_read_from_integer_string() {
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(tags::NUMBER_OF_FRAMES, VR::IS, "12"));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    assert_eq!(attributes.number_of_frames, 12);
}

#[test]
fn instance_without_image_has_zero_frames() {
    let mut dataset = ct_dataset();
    dataset.remove_element(tags::ROWS);
    dataset.remove_element(tags::COLUMNS);
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    assert_eq!(attributes.number_of_frames, 0);
    assert_eq!(attributes.rows, 0);
}

#[test]
fn reader_stops_before_pixel_data() {
    let mut bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let dataset_end = bytes.len();
    append_pixel_data(&mut bytes, 4 << 20);
    let mut counting = CountingReader {
        inner: &bytes[..],
        count: 0,
    };

    let attributes = read_index_attributes_from(&mut counting).unwrap();

    assert_eq!(attributes.rows, 4);
    assert!(
        counting.count < dataset_end + (64 << 10),
        "read {} of {} bytes although Pixel Data starts at {dataset_end}",
        counting.count,
        bytes.len()
    );
}

#[test]
fn sop_class_falls_back_to_meta_group() {
    let mut dataset = ct_dataset();
    dataset.remove_element(tags::SOP_CLASS_UID);
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::MR_IMAGE_STORAGE)
        .media_storage_sop_instance_uid(SOP_INSTANCE_UID);
    let bytes = part10_with_meta(dataset, meta);

    let attributes = read_index_attributes(&bytes).unwrap();

    assert_eq!(attributes.sop_class_uid, uids::MR_IMAGE_STORAGE);
}

#[test]
fn missing_sop_class_everywhere_is_rejected() {
    let mut dataset = ct_dataset();
    dataset.remove_element(tags::SOP_CLASS_UID);
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_instance_uid(SOP_INSTANCE_UID);
    let bytes = part10_with_meta(dataset, meta);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(
            error,
            DicomError::MissingAttribute {
                keyword: "SOPClassUID"
            }
        ),
        "{error:?}"
    );
}

#[test]
fn missing_sop_instance_uid_is_rejected() {
    let mut dataset = ct_dataset();
    dataset.remove_element(tags::SOP_INSTANCE_UID);
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(
            error,
            DicomError::MissingAttribute {
                keyword: "SOPInstanceUID"
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("SOPInstanceUID"), "{error}");
}

#[test]
fn meta_sop_instance_does_not_replace_missing_one() {
    let mut dataset = ct_dataset();
    dataset.remove_element(tags::SOP_INSTANCE_UID);
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
        .media_storage_sop_instance_uid(SOP_INSTANCE_UID);
    let bytes = part10_with_meta(dataset, meta);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(
            error,
            DicomError::MissingAttribute {
                keyword: "SOPInstanceUID"
            }
        ),
        "{error:?}"
    );
}

#[test]
fn empty_study_instance_uid_is_rejected() {
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, ""));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(
            error,
            DicomError::MissingAttribute {
                keyword: "StudyInstanceUID"
            }
        ),
        "{error:?}"
    );
}

#[test]
fn missing_series_instance_uid_is_rejected() {
    let mut dataset = ct_dataset();
    dataset.remove_element(tags::SERIES_INSTANCE_UID);
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(
            error,
            DicomError::MissingAttribute {
                keyword: "SeriesInstanceUID"
            }
        ),
        "{error:?}"
    );
}

#[test]
fn uid_with_leading_zero_is_rejected() {
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        "1.2.03.4",
    ));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes).unwrap_err();

    let DicomError::InvalidUid { keyword, value } = &error else {
        panic!("expected InvalidUid, got {error:?}");
    };
    assert_eq!(*keyword, "StudyInstanceUID");
    assert_eq!(value, "1.2.03.4");
    assert!(error.to_string().contains("'1.2.03.4'"), "{error}");
}

#[test]
fn uid_with_letters_is_rejected() {
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        "1.2.abc",
    ));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(
            error,
            DicomError::InvalidUid {
                keyword: "SeriesInstanceUID",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn uid_longer_than_64_characters_is_rejected() {
    let long_uid = format!("1.2.{}", "9".repeat(61));
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        long_uid,
    ));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(
            error,
            DicomError::InvalidUid {
                keyword: "SeriesInstanceUID",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn sop_instance_mismatch_with_meta_is_rejected() {
    let meta_uid = "1.2.826.0.1.3680043.2.1125.1.99";
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
        .media_storage_sop_instance_uid(meta_uid);
    let bytes = part10_with_meta(ct_dataset(), meta);

    let error = read_index_attributes(&bytes).unwrap_err();

    let DicomError::SopInstanceUidMismatch { dataset, meta } = &error else {
        panic!("expected SopInstanceUidMismatch, got {error:?}");
    };
    assert_eq!(dataset, SOP_INSTANCE_UID);
    assert_eq!(meta, meta_uid);
    assert!(error.to_string().contains(meta_uid), "{error}");
    assert!(error.to_string().contains(SOP_INSTANCE_UID), "{error}");
}

#[test]
fn empty_input_is_not_part10() {
    let error = read_index_attributes(&[]).unwrap_err();

    assert!(matches!(error, DicomError::NotPart10), "{error:?}");
}

#[test]
fn not_part10_message_names_fix() {
    let message = DicomError::NotPart10.to_string();

    assert!(message.contains("DICM"), "{message}");
    assert!(message.contains("dcmconv"), "{message}");
}

#[test]
fn data_set_without_preamble_is_not_part10() {
    let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes[132..]).unwrap_err();

    assert!(matches!(error, DicomError::NotPart10), "{error:?}");
}

#[test]
fn random_bytes_are_not_part10() {
    let bytes = pseudo_random_bytes(4096, 7);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(matches!(error, DicomError::NotPart10), "{error:?}");
}

#[test]
fn random_bytes_after_magic_are_invalid_meta() {
    let mut bytes = vec![0; 128];
    bytes.extend_from_slice(b"DICM");
    bytes.extend(pseudo_random_bytes(4096, 11));

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(error, DicomError::InvalidFileMeta { .. }),
        "{error:?}"
    );
}

#[test]
fn file_cut_inside_preamble_is_not_part10() {
    let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes[..130]).unwrap_err();

    assert!(matches!(error, DicomError::NotPart10), "{error:?}");
}

#[test]
fn file_cut_inside_meta_group_is_rejected() {
    let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let error = read_index_attributes(&bytes[..170]).unwrap_err();

    assert!(
        matches!(error, DicomError::LengthExceedsInput { .. }),
        "{error:?}"
    );
}

#[test]
fn file_cut_inside_value_names_element() {
    let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let name_start = find(&bytes, b"Doe^Jane");

    let error = read_index_attributes(&bytes[..name_start + 3]).unwrap_err();

    let DicomError::LengthExceedsInput {
        tag,
        declared,
        remaining,
    } = error
    else {
        panic!("expected LengthExceedsInput, got {error:?}");
    };
    assert_eq!(tag, tags::PATIENT_NAME);
    assert_eq!(declared, 8);
    assert_eq!(remaining, 3);
}

#[test]
fn file_cut_inside_header_is_truncated() {
    let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let name_start = find(&bytes, b"Doe^Jane");

    // Keeps the tag of PatientName and one byte of its VR.
    let error = read_index_attributes(&bytes[..name_start - 3]).unwrap_err();

    let DicomError::Truncated { reason } = &error else {
        panic!("expected Truncated, got {error:?}");
    };
    assert!(reason.contains("fill whole buffer"), "{reason}");
    assert!(
        error.to_string().starts_with("truncated DICOM file: "),
        "{error}"
    );
}

#[test]
fn unknown_transfer_syntax_is_rejected() {
    let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let patched = replace_once(
        &bytes,
        uids::EXPLICIT_VR_LITTLE_ENDIAN.as_bytes(),
        b"1.2.3.4.5.6.7.8.9.1",
    );

    let error = read_index_attributes(&patched).unwrap_err();

    let DicomError::UnsupportedTransferSyntax { uid, .. } = &error else {
        panic!("expected UnsupportedTransferSyntax, got {error:?}");
    };
    assert_eq!(uid, "1.2.3.4.5.6.7.8.9.1");
}

#[test]
fn reader_error_is_reported_as_io() {
    let error = read_index_attributes_from(FailingReader).unwrap_err();

    assert!(matches!(error, DicomError::Io(_)), "{error:?}");
}

/// Counts the bytes that pass through, to show how far the parser reads.
struct CountingReader<'a> {
    inner: &'a [u8],
    count: usize,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count += read;
        Ok(read)
    }
}

struct FailingReader;

impl Read for FailingReader {
    fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk unplugged"))
    }
}

/// Bytes from a xorshift generator, so the input is the same on every run.
fn pseudo_random_bytes(length: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("needle is in the file")
}

/// Replaces the first occurrence of `from` with `to` of the same length, so
/// no length field of the file changes.
fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "replacement must keep the length");
    let start = find(bytes, from);

    let mut patched = bytes.to_vec();
    patched[start..start + to.len()].copy_from_slice(to);
    patched
}

#[test]
fn item_delimiter_outside_item_is_rejected() {
    let mut bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);
    // An item delimitation item at the root, then an item header. dicom-parser
    // 0.10's lazy reader panics on this sequence unless it is caught first.
    bytes.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);

    let error = read_index_attributes(&bytes).unwrap_err();

    let DicomError::InvalidDataSet { reason } = &error else {
        panic!("expected InvalidDataSet, got {error:?}");
    };
    assert!(reason.contains("(FFFE,E00D)"), "{reason}");
}

fn sequence_item(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

fn sequence_element(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

#[test]
fn sequences_are_decoded_with_the_character_set() {
    let mut dataset = ct_dataset();
    dataset.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        "\\ISO 2022 IR 87",
    ));
    // Annex H of PS3.5: "Yamada^Tarou=山田^太郎" in ISO 2022 IR 87.
    let japanese = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B".to_vec();
    let procedure = sequence_item(vec![
        DataElement::new(Tag(0x0008, 0x0100), VR::SH, "CTHEAD"),
        DataElement::new(Tag(0x0008, 0x0102), VR::SH, "LOCAL "),
        DataElement::new(Tag(0x0008, 0x0104), VR::LO, PrimitiveValue::from(japanese)),
    ]);
    let request = |id: &str| {
        sequence_item(vec![
            DataElement::new(Tag(0x0040, 0x1001), VR::SH, id),
            // Not indexed, so not kept.
            DataElement::new(Tag(0x0040, 0x0002), VR::DA, "20240215"),
        ])
    };
    dataset.put(sequence_element(Tag(0x0008, 0x1032), vec![procedure]));
    dataset.put(sequence_element(
        Tag(0x0040, 0x0275),
        vec![request("RP1"), request("RP2")],
    ));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    let keywords: Vec<&str> = attributes
        .sequences
        .iter()
        .map(|s| s.keyword.as_str())
        .collect();
    assert_eq!(
        keywords,
        ["ProcedureCodeSequence", "RequestAttributesSequence"]
    );
    let code = &attributes.sequences[0].items[0];
    assert_eq!(code["CodeValue"], "CTHEAD");
    assert_eq!(code["CodingSchemeDesignator"], "LOCAL");
    assert_eq!(code["CodeMeaning"], "Yamada^Tarou=山田^太郎");
    assert!(!code.contains_key("CodingSchemeVersion"));
    let requests = &attributes.sequences[1].items;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1]["RequestedProcedureID"], "RP2");
    assert_eq!(requests[1].len(), 1, "{:?}", requests[1]);
}

#[test]
fn sequences_read_in_implicit_vr() {
    let mut dataset = ct_dataset();
    let other_id = sequence_item(vec![
        DataElement::new(Tag(0x0010, 0x0020), VR::LO, "X-9"),
        DataElement::new(Tag(0x0010, 0x0021), VR::LO, "SITE-B"),
    ]);
    dataset.put(sequence_element(Tag(0x0010, 0x1002), vec![other_id]));
    let bytes = part10(dataset, uids::IMPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    let items = &attributes.sequences[0].items;
    assert_eq!(attributes.sequences[0].keyword, "OtherPatientIDsSequence");
    assert_eq!(items[0]["PatientID"], "X-9");
    assert_eq!(items[0]["IssuerOfPatientID"], "SITE-B");
}

#[test]
fn sequence_items_past_the_limit_are_not_indexed() {
    let mut dataset = ct_dataset();
    let items = (0..MAX_INDEXED_ITEMS + 6)
        .map(|i| {
            let id = format!("ID{i}");
            sequence_item(vec![DataElement::new(Tag(0x0010, 0x0020), VR::LO, id)])
        })
        .collect();
    dataset.put(sequence_element(Tag(0x0010, 0x1002), items));
    let bytes = part10(dataset, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    let items = &attributes.sequences[0].items;
    assert_eq!(items.len(), MAX_INDEXED_ITEMS);
    assert_eq!(
        items[MAX_INDEXED_ITEMS - 1]["PatientID"],
        format!("ID{}", MAX_INDEXED_ITEMS - 1)
    );
}

#[test]
fn instance_without_sequences_has_none() {
    let bytes = part10(ct_dataset(), uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let attributes = read_index_attributes(&bytes).unwrap();

    assert!(attributes.sequences.is_empty());
}
