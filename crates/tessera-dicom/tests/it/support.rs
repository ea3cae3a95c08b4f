//! Builders of small Part 10 files for the tests.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

pub const SOP_INSTANCE_UID: &str = "1.2.826.0.1.3680043.2.1125.1.3";
pub const STUDY_INSTANCE_UID: &str = "1.2.826.0.1.3680043.2.1125.1.1";
pub const SERIES_INSTANCE_UID: &str = "1.2.826.0.1.3680043.2.1125.1.2";

/// Builds a CT data set with every index attribute set and no Pixel Data.
pub fn ct_dataset() -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
        DataElement::new(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE),
        DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, SOP_INSTANCE_UID),
        DataElement::new(tags::STUDY_DATE, VR::DA, "20240215"),
        DataElement::new(tags::STUDY_TIME, VR::TM, "083015.25"),
        DataElement::new(tags::ACCESSION_NUMBER, VR::SH, "ACC-7"),
        DataElement::new(tags::MODALITY, VR::CS, "CT"),
        DataElement::new(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "House^Gregory"),
        DataElement::new(tags::STUDY_DESCRIPTION, VR::LO, "Chest"),
        DataElement::new(tags::SERIES_DESCRIPTION, VR::LO, "Axial 1mm"),
        DataElement::new(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
        DataElement::new(tags::PATIENT_ID, VR::LO, "PID-1"),
        DataElement::new(tags::ISSUER_OF_PATIENT_ID, VR::LO, "HOSP"),
        DataElement::new(tags::PATIENT_BIRTH_DATE, VR::DA, "19700101"),
        DataElement::new(tags::PATIENT_SEX, VR::CS, "F"),
        DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, STUDY_INSTANCE_UID),
        DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, SERIES_INSTANCE_UID),
        DataElement::new(tags::STUDY_ID, VR::SH, "S1"),
        DataElement::new(tags::SERIES_NUMBER, VR::IS, "2"),
        DataElement::new(tags::INSTANCE_NUMBER, VR::IS, "7"),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(4_u16)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(2_u16)),
    ])
}

/// Writes a data set as a Part 10 file whose meta group is filled from the
/// data set's SOP Class and Instance UIDs.
pub fn part10(dataset: InMemDicomObject, transfer_syntax: &str) -> Vec<u8> {
    let meta = FileMetaTableBuilder::new().transfer_syntax(transfer_syntax);
    let file = dataset.with_meta(meta).expect("meta group builds");

    let mut bytes = Vec::new();
    file.write_all(&mut bytes).expect("file writes to memory");
    bytes
}

/// Writes a data set as a Part 10 file with the meta group exactly as given,
/// so the meta group can disagree with the data set.
pub fn part10_with_meta(dataset: InMemDicomObject, meta: FileMetaTableBuilder) -> Vec<u8> {
    let file = dataset.with_exact_meta(meta.build().expect("meta group builds"));

    let mut bytes = Vec::new();
    file.write_all(&mut bytes).expect("file writes to memory");
    bytes
}

/// Appends a native Pixel Data element of `length` zero bytes in Explicit VR
/// Little Endian, so the bytes after it can be large without building a value.
pub fn append_pixel_data(bytes: &mut Vec<u8>, length: u32) {
    bytes.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
    bytes.extend_from_slice(b"OW\0\0");
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes.resize(bytes.len() + length as usize, 0);
}
