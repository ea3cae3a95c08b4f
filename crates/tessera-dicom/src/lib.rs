//! DICOM knowledge shared by the Tessera archive: reading the attributes that
//! the index stores from a DICOM Part 10 file, rejecting files that the
//! archive cannot index, and the C-FIND matching rules used by queries.
//!
//! Parsing is done by dicom-rs. Reading stops before Pixel Data, so indexing a
//! large multi-frame instance costs about as much as indexing a small one.
//! Before dicom-rs reads a file, [`check_lengths`] rejects any declared length
//! that exceeds the input, because dicom-rs allocates declared lengths
//! up front. Text attributes are decoded with [`charset`], which implements
//! every character set of SpecificCharacterSet, ISO 2022 switching included.
//!
//! # Example
//!
//! ```
//! use dicom_core::{DataElement, VR};
//! use dicom_dictionary_std::{tags, uids};
//! use dicom_object::{meta::FileMetaTableBuilder, InMemDicomObject};
//! use tessera_dicom::matching::Matcher;
//!
//! // Build a small CT instance and write it as a Part 10 file.
//! let dataset = InMemDicomObject::from_element_iter([
//!     DataElement::new(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE),
//!     DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.3"),
//!     DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3.4.1"),
//!     DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.4.2"),
//!     DataElement::new(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
//!     DataElement::new(tags::STUDY_DATE, VR::DA, "20240215"),
//! ]);
//! let file = dataset
//!     .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
//!     .unwrap();
//! let mut bytes = Vec::new();
//! file.write_all(&mut bytes).unwrap();
//!
//! let attributes = tessera_dicom::read_index_attributes(&bytes).unwrap();
//! assert_eq!(attributes.study_instance_uid, "1.2.3.4.1");
//!
//! let in_february = Matcher::parse("StudyDate", "20240201-20240229").unwrap();
//! assert!(in_february.matches(&attributes.study_date));
//!
//! let doe = Matcher::parse("PatientName", "doe^*").unwrap();
//! assert!(doe.matches(&attributes.patient_name));
//! ```

mod attributes;
pub mod charset;
mod content;
pub mod dimse;
mod error;
mod length_check;
pub mod matching;
mod recording;
pub mod sequences;
mod uid;

pub use attributes::{
    read_index_attributes, read_index_attributes_from, read_index_attributes_with_size,
    IndexAttributes,
};
pub use content::{content_digest, same_decoded_data_set, ContentDigest};
pub use error::DicomError;
pub use length_check::{check_lengths, MAX_NESTING_DEPTH};
pub use uid::is_valid_uid;
