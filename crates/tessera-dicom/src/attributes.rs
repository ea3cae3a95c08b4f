//! Reading and validating the attributes that the index stores for an instance.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io::{Cursor, Read};

use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_object::file::ReadPreamble;
use dicom_object::mem::InMemElement;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions, ReadError};

use crate::charset;
use crate::error::DicomError;
use crate::length_check;
use crate::recording::RecordingReader;
use crate::sequences::{
    IndexedSequence, SequenceAttribute, SequenceItem, INDEXED_SEQUENCES, MAX_INDEXED_ITEMS,
};
use crate::uid::is_valid_uid;

/// Size of the Part 10 preamble that precedes the "DICM" magic code.
const PREAMBLE_LENGTH: usize = 128;

const MAGIC_CODE: &[u8; 4] = b"DICM";

/// The text attributes whose values depend on SpecificCharacterSet. Their
/// raw bytes are decoded with [`charset`], which handles the ISO 2022 code
/// extensions that dicom-rs 0.10 does not.
const TEXT_ATTRIBUTES: &[(Tag, VR, &str)] = &[
    (tags::PATIENT_ID, VR::LO, "PatientID"),
    (tags::ISSUER_OF_PATIENT_ID, VR::LO, "IssuerOfPatientID"),
    (tags::PATIENT_NAME, VR::PN, "PatientName"),
    (tags::ACCESSION_NUMBER, VR::SH, "AccessionNumber"),
    (tags::STUDY_DESCRIPTION, VR::LO, "StudyDescription"),
    (tags::STUDY_ID, VR::SH, "StudyID"),
    (
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        "ReferringPhysicianName",
    ),
    (tags::SERIES_DESCRIPTION, VR::LO, "SeriesDescription"),
];

/// Index attributes of one instance, as strings exactly as stored (trailing
/// padding spaces/NULs trimmed), empty string when absent.
///
/// Multi-valued attributes keep their values joined with '\\'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexAttributes {
    /// SOPClassUID, or MediaStorageSOPClassUID when the data set lacks it.
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    /// TransferSyntaxUID from the file meta group.
    pub transfer_syntax_uid: String,
    /// SpecificCharacterSet, multi-valued joined with '\\'.
    pub specific_character_set: String,
    pub patient_id: String,
    pub issuer_of_patient_id: String,
    /// PatientName decoded to UTF-8 according to SpecificCharacterSet.
    pub patient_name: String,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub study_description: String,
    pub study_id: String,
    pub referring_physician_name: String,
    pub modality: String,
    pub series_description: String,
    pub series_number: String,
    pub instance_number: String,
    /// NumberOfFrames, or 1 when it is absent or empty and Rows is non-zero,
    /// because a single-frame image need not carry NumberOfFrames. It is 0
    /// for instances without an image and when the value is not a number.
    pub number_of_frames: u32,
    /// Rows, 0 when absent or not a number.
    pub rows: u32,
    /// Columns, 0 when absent or not a number.
    pub columns: u32,
    /// The indexed sequences ([`INDEXED_SEQUENCES`]) that the instance
    /// contains, in that order, with at most [`MAX_INDEXED_ITEMS`] items
    /// each. An item keeps the indexed attributes it contains, decoded like
    /// the text attributes above.
    pub sequences: Vec<SequenceAttribute>,
}

/// Parses a DICOM Part 10 file (128-byte preamble + "DICM" + file meta group) from memory,
/// reading the dataset only up to (not including) Pixel Data so large instances cost little.
///
/// The file is rejected when SOPInstanceUID, StudyInstanceUID,
/// SeriesInstanceUID or SOPClassUID is missing or not a valid UID, or when
/// SOPInstanceUID differs from MediaStorageSOPInstanceUID. It is also
/// rejected, before any value is allocated, when an element declares a
/// length beyond the end of the input (see [`check_lengths`](crate::check_lengths)).
pub fn read_index_attributes(bytes: &[u8]) -> Result<IndexAttributes, DicomError> {
    read_index_attributes_sized(bytes, Some(bytes.len() as u64))
}

/// Same from any reader positioned at the start of the file (preamble included).
///
/// Without the total size, an oversized length is detected when the input
/// ends before the declared value does. Memory use stays bounded by the
/// bytes actually present before Pixel Data, plus one copy of them.
///
/// The reader is left positioned somewhere after the last attribute read,
/// so it cannot be reused to read Pixel Data.
pub fn read_index_attributes_from<R: Read>(reader: R) -> Result<IndexAttributes, DicomError> {
    read_index_attributes_sized(reader, None)
}

/// Same from a reader with the total size of the file in bytes, which a
/// write path has from its spool, so that an oversized length is rejected
/// before any of its value is read.
pub fn read_index_attributes_with_size<R: Read>(
    reader: R,
    size: u64,
) -> Result<IndexAttributes, DicomError> {
    read_index_attributes_sized(reader, Some(size))
}

/// Checks the declared lengths, then parses with dicom-object.
///
/// The bytes that the length check consumes are recorded and fed to
/// dicom-object again, followed by the rest of the reader.
fn read_index_attributes_sized<R: Read>(
    mut reader: R,
    size: Option<u64>,
) -> Result<IndexAttributes, DicomError> {
    let mut recorder = RecordingReader::new(&mut reader);
    check_preamble(&mut recorder)?;

    let root: Vec<Tag> = TEXT_ATTRIBUTES.iter().map(|(tag, _, _)| *tag).collect();
    let in_items: Vec<(Tag, Tag)> = INDEXED_SEQUENCES
        .iter()
        .flat_map(|sequence| {
            let attributes = sequence.item_attributes.iter();
            attributes.map(|(tag, _, _)| (sequence.tag, *tag))
        })
        .collect();
    let keep = length_check::Keep {
        root: &root,
        in_items: &in_items,
    };
    let scan = length_check::scan(&mut recorder, size, keep)?;

    let recorded = recorder.into_recorded();
    let source = Cursor::new(&recorded[PREAMBLE_LENGTH..]).chain(reader);
    let file = parse_until_pixel_data(source)?;
    let attributes = collect_attributes(&file, &scan)?;

    validate(&attributes, file.meta().media_storage_sop_instance_uid())?;
    Ok(attributes)
}

/// Consumes the preamble and the magic code, rejecting input without them.
fn check_preamble<R: Read>(reader: &mut R) -> Result<(), DicomError> {
    let mut head = Vec::with_capacity(PREAMBLE_LENGTH + MAGIC_CODE.len());
    reader
        .take((PREAMBLE_LENGTH + MAGIC_CODE.len()) as u64)
        .read_to_end(&mut head)
        .map_err(DicomError::Io)?;

    if head.get(PREAMBLE_LENGTH..) == Some(&MAGIC_CODE[..]) {
        Ok(())
    } else {
        Err(DicomError::NotPart10)
    }
}

/// Parses the file meta group and the data set up to Pixel Data from a
/// reader positioned at the "DICM" magic code, which dicom-object checks.
fn parse_until_pixel_data<R: Read>(source: R) -> Result<DefaultDicomObject, DicomError> {
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(source)
        .map_err(classify_read_error)
}

fn classify_read_error(error: ReadError) -> DicomError {
    let reason = describe_chain(&error);

    if ends_early(&error) {
        return DicomError::Truncated { reason };
    }

    match error {
        ReadError::ParseMetaDataSet { .. } => DicomError::InvalidFileMeta { reason },
        ReadError::ReadUnrecognizedTransferSyntax { uid, .. } => {
            DicomError::UnsupportedTransferSyntax {
                uid,
                reason: "not a known transfer syntax".to_owned(),
            }
        }
        ReadError::ReadUnsupportedTransferSyntax { uid, .. }
        | ReadError::ReadUnsupportedTransferSyntaxWithSuggestion { uid, .. } => {
            DicomError::UnsupportedTransferSyntax {
                uid: uid.to_owned(),
                reason,
            }
        }
        _ => DicomError::InvalidDataSet { reason },
    }
}

/// Joins the messages of an error and all its sources, because dicom-rs
/// errors print only their own level and the cause is usually further down.
fn describe_chain(error: &(dyn StdError + 'static)) -> String {
    let mut messages = vec![error.to_string()];
    let mut source = error.source();

    while let Some(cause) = source {
        messages.push(cause.to_string());
        source = cause.source();
    }

    messages.join(": ")
}

/// Tells whether the input ended before the parser expected it to.
fn ends_early(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);

    while let Some(cause) = current {
        let io_error = cause.downcast_ref::<std::io::Error>();
        if io_error.is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof) {
            return true;
        }
        current = cause.source();
    }

    false
}

fn collect_attributes(
    file: &DefaultDicomObject,
    scan: &length_check::Scan,
) -> Result<IndexAttributes, DicomError> {
    let dataset = DataSetView::new(file, &scan.raw_values)?;
    let text = |tag, keyword| dataset.text(tag, keyword);

    let mut sop_class_uid = text(tags::SOP_CLASS_UID, "SOPClassUID")?;
    if sop_class_uid.is_empty() {
        sop_class_uid = file.meta().media_storage_sop_class_uid().to_owned();
    }

    let rows = dataset.count(tags::ROWS, "Rows")?.unwrap_or(0);
    let number_of_frames = match dataset.count(tags::NUMBER_OF_FRAMES, "NumberOfFrames")? {
        None if rows > 0 => 1,
        frames => frames.unwrap_or(0),
    };

    Ok(IndexAttributes {
        sop_class_uid,
        sop_instance_uid: text(tags::SOP_INSTANCE_UID, "SOPInstanceUID")?,
        study_instance_uid: text(tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?,
        series_instance_uid: text(tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?,
        transfer_syntax_uid: file.meta().transfer_syntax().to_owned(),
        specific_character_set: text(tags::SPECIFIC_CHARACTER_SET, "SpecificCharacterSet")?,
        patient_id: text(tags::PATIENT_ID, "PatientID")?,
        issuer_of_patient_id: text(tags::ISSUER_OF_PATIENT_ID, "IssuerOfPatientID")?,
        patient_name: text(tags::PATIENT_NAME, "PatientName")?,
        patient_birth_date: text(tags::PATIENT_BIRTH_DATE, "PatientBirthDate")?,
        patient_sex: text(tags::PATIENT_SEX, "PatientSex")?,
        study_date: text(tags::STUDY_DATE, "StudyDate")?,
        study_time: text(tags::STUDY_TIME, "StudyTime")?,
        accession_number: text(tags::ACCESSION_NUMBER, "AccessionNumber")?,
        study_description: text(tags::STUDY_DESCRIPTION, "StudyDescription")?,
        study_id: text(tags::STUDY_ID, "StudyID")?,
        referring_physician_name: text(tags::REFERRING_PHYSICIAN_NAME, "ReferringPhysicianName")?,
        modality: text(tags::MODALITY, "Modality")?,
        series_description: text(tags::SERIES_DESCRIPTION, "SeriesDescription")?,
        series_number: text(tags::SERIES_NUMBER, "SeriesNumber")?,
        instance_number: text(tags::INSTANCE_NUMBER, "InstanceNumber")?,
        number_of_frames,
        rows,
        columns: dataset.count(tags::COLUMNS, "Columns")?.unwrap_or(0),
        sequences: dataset.sequences(&scan.raw_item_values)?,
    })
}

/// Read access to the root data set that also understands attributes stored
/// with VR UN.
///
/// Some converters write every attribute as UN in explicit VR files, and
/// dicom-rs then keeps the raw bytes. Those bytes are read here as the
/// attribute's standard VR would store them.
struct DataSetView<'a> {
    dataset: &'a InMemDicomObject,
    charset: SpecificCharacterSet,
    /// SpecificCharacterSet with all its values, for [`charset`].
    specific_character_set: String,
    raw_values: &'a BTreeMap<Tag, Vec<u8>>,
}

impl<'a> DataSetView<'a> {
    fn new(
        dataset: &'a InMemDicomObject,
        raw_values: &'a BTreeMap<Tag, Vec<u8>>,
    ) -> Result<Self, DicomError> {
        let mut view = DataSetView {
            dataset,
            charset: SpecificCharacterSet::default(),
            specific_character_set: String::new(),
            raw_values,
        };

        // dicom-rs decodes text with the first value of SpecificCharacterSet
        // and so does this view.
        let declared = view.text(tags::SPECIFIC_CHARACTER_SET, "SpecificCharacterSet")?;
        let first = declared.split('\\').next().unwrap_or_default();
        view.charset = SpecificCharacterSet::from_code(first).unwrap_or_default();
        view.specific_character_set = declared;

        Ok(view)
    }

    /// Reads an attribute as text with trailing spaces and NULs of each value
    /// removed, or an empty string when the attribute is absent.
    fn text(&self, tag: Tag, keyword: &'static str) -> Result<String, DicomError> {
        let Some(element) = self.dataset.get(tag) else {
            return Ok(String::new());
        };

        if let Some(text) = self.decode_raw(tag) {
            return Ok(text);
        }
        if let Some(bytes) = unknown_vr_bytes(element) {
            return self.decode_unknown(bytes, keyword);
        }

        element
            .value()
            .to_str()
            .map(Cow::into_owned)
            .map_err(|error| DicomError::InvalidValue {
                keyword,
                reason: describe_chain(&error),
            })
    }

    /// Reads the first value of a numeric attribute (US or IS). It is `None`
    /// when the attribute is absent or empty, and 0 when it is not a
    /// non-negative integer.
    fn count(&self, tag: Tag, keyword: &'static str) -> Result<Option<u32>, DicomError> {
        // An US value stored as UN is two little-endian bytes, not text.
        // NOTE: explicit VR big endian files are read as little endian here
        // too. No such file with UN attributes was available to check.
        let us_as_unknown = self
            .dataset
            .get(tag)
            .and_then(unknown_vr_bytes)
            .filter(|_| tag == tags::ROWS || tag == tags::COLUMNS);
        if let Some(bytes) = us_as_unknown {
            return Ok(match *bytes {
                [low, high] => Some(u16::from_le_bytes([low, high]).into()),
                _ => Some(0),
            });
        }

        let text = self.text(tag, keyword)?;
        let first = text.split('\\').next().unwrap_or_default().trim();

        if first.is_empty() {
            return Ok(None);
        }
        Ok(Some(first.parse().unwrap_or(0)))
    }

    /// Decodes a text attribute from the raw bytes that the length check
    /// kept, with all values of SpecificCharacterSet.
    ///
    /// Bytes that the declared character sets do not define become U+FFFD,
    /// so that an instance from a misconfigured modality is still archived
    /// and found by its other attributes.
    fn decode_raw(&self, tag: Tag) -> Option<String> {
        let (_, vr, _) = TEXT_ATTRIBUTES.iter().find(|(known, _, _)| *known == tag)?;
        let raw = self.raw_values.get(&tag)?;
        Some(self.decode_text(*vr, raw))
    }

    /// Reads the indexed sequences that the data set contains.
    fn sequences(
        &self,
        raw_item_values: &BTreeMap<(Tag, usize, Tag), Vec<u8>>,
    ) -> Result<Vec<SequenceAttribute>, DicomError> {
        let mut sequences = Vec::new();
        for indexed in INDEXED_SEQUENCES {
            let Some(element) = self.dataset.get(indexed.tag) else {
                continue;
            };
            let Value::Sequence(sequence) = element.value() else {
                continue;
            };

            let mut items = Vec::new();
            for (index, item) in sequence.items().iter().take(MAX_INDEXED_ITEMS).enumerate() {
                items.push(self.sequence_item(indexed, index, item, raw_item_values)?);
            }
            sequences.push(SequenceAttribute {
                keyword: indexed.keyword.to_owned(),
                items,
            });
        }
        Ok(sequences)
    }

    /// Reads the indexed attributes of one item. Values come from the raw
    /// bytes that the length check kept when it has them, decoded with all
    /// values of SpecificCharacterSet, and from dicom-rs otherwise.
    ///
    /// NOTE: an item that declares its own SpecificCharacterSet is still
    /// decoded with the one of the data set.
    fn sequence_item(
        &self,
        indexed: &IndexedSequence,
        index: usize,
        item: &InMemDicomObject,
        raw_item_values: &BTreeMap<(Tag, usize, Tag), Vec<u8>>,
    ) -> Result<SequenceItem, DicomError> {
        let mut attributes = SequenceItem::new();
        for &(tag, vr, keyword) in indexed.item_attributes {
            let Some(element) = item.get(tag) else {
                continue;
            };

            let value = match raw_item_values.get(&(indexed.tag, index, tag)) {
                Some(raw) => self.decode_text(vr, raw),
                None => match unknown_vr_bytes(element) {
                    Some(bytes) => self.decode_unknown(bytes, keyword)?,
                    None => trim_values(&element.value().to_str().map_err(|error| {
                        DicomError::InvalidValue {
                            keyword,
                            reason: describe_chain(&error),
                        }
                    })?),
                },
            };
            attributes.insert(keyword.to_owned(), value);
        }
        Ok(attributes)
    }

    /// Decodes raw text bytes with all values of SpecificCharacterSet, with
    /// U+FFFD for bytes that the declared character sets do not define.
    fn decode_text(&self, vr: VR, raw: &[u8]) -> String {
        let decoded = charset::decode_value(&self.specific_character_set, vr, raw)
            .unwrap_or_else(|_| charset::decode_value_lossy(&self.specific_character_set, vr, raw));
        trim_values(&decoded)
    }

    fn decode_unknown(&self, bytes: &[u8], keyword: &'static str) -> Result<String, DicomError> {
        let decoded = self
            .charset
            .decode(bytes)
            .map_err(|error| DicomError::InvalidValue {
                keyword,
                reason: describe_chain(&error),
            })?;

        Ok(trim_values(&decoded))
    }
}

/// Removes trailing spaces and NULs from each of the '\\'-separated values.
fn trim_values(decoded: &str) -> String {
    let values: Vec<&str> = decoded
        .split('\\')
        .map(|value| value.trim_end_matches([' ', '\0']))
        .collect();
    values.join("\\")
}

/// Returns the raw bytes of an attribute stored with VR UN, or `None` for any other VR.
fn unknown_vr_bytes(element: &InMemElement) -> Option<&[u8]> {
    if element.vr() != VR::UN {
        return None;
    }

    match element.value() {
        Value::Primitive(PrimitiveValue::U8(bytes)) => Some(bytes),
        _ => None,
    }
}

fn validate(attributes: &IndexAttributes, meta_sop_instance_uid: &str) -> Result<(), DicomError> {
    let required = [
        ("SOPClassUID", &attributes.sop_class_uid),
        ("SOPInstanceUID", &attributes.sop_instance_uid),
        ("StudyInstanceUID", &attributes.study_instance_uid),
        ("SeriesInstanceUID", &attributes.series_instance_uid),
    ];

    for (keyword, value) in required {
        if value.is_empty() {
            return Err(DicomError::MissingAttribute { keyword });
        }
    }

    for (keyword, value) in required {
        if !is_valid_uid(value) {
            return Err(DicomError::InvalidUid {
                keyword,
                value: value.clone(),
            });
        }
    }

    // dicom-object copies SOPInstanceUID into an empty meta group field,
    // so a difference here means both were present and disagree.
    if meta_sop_instance_uid != attributes.sop_instance_uid {
        return Err(DicomError::SopInstanceUidMismatch {
            dataset: attributes.sop_instance_uid.clone(),
            meta: meta_sop_instance_uid.to_owned(),
        });
    }

    Ok(())
}
