//! A digest of an instance's content, apart from how it was packaged.
//!
//! Two copies of one instance can differ only in their file meta group: the
//! implementation that wrote the file, the source AE title, the preamble. A
//! C-STORE SCP writes its own meta group around the data set it receives, so
//! an instance imported as a file and then sent again by a modality arrives
//! with different bytes. Comparing the transfer syntax and the data set bytes
//! distinguishes such a resend from a real conflict.

use sha2::{Digest, Sha256};

use dicom_core::Tag;

use crate::dimse::{DataSet, Element, Encoding, Value};
use crate::error::DicomError;

/// Data Set Trailing Padding.
const TRAILING_PADDING: Tag = Tag(0xFFFC, 0xFFFC);

/// Size of the Part 10 preamble plus the "DICM" magic code.
const PREFIX_LENGTH: usize = 132;

/// Upper bound on the meta group. A file whose group 0002 runs past it is
/// rejected rather than buffered.
const MAX_META_LENGTH: usize = 64 * 1024;

/// SHA-256 over the transfer syntax UID and the data set bytes that follow
/// the file meta group, fed with the file's bytes in any slicing.
pub struct ContentDigest {
    state: State,
}

enum State {
    /// Still reading the preamble and the meta group.
    Header(Vec<u8>),
    /// Hashing the data set.
    Body(Sha256),
}

impl Default for ContentDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl ContentDigest {
    pub fn new() -> Self {
        Self {
            state: State::Header(Vec::new()),
        }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), DicomError> {
        match &mut self.state {
            State::Body(hasher) => {
                hasher.update(bytes);
                Ok(())
            }
            State::Header(buffer) => {
                buffer.extend_from_slice(bytes);
                self.try_leave_header()
            }
        }
    }

    /// Returns the digest, or an error when the file ended inside its meta group.
    pub fn finish(mut self) -> Result<[u8; 32], DicomError> {
        if let State::Header(buffer) = &self.state {
            let (meta_end, syntax) =
                parse_meta(buffer, true)?.ok_or_else(|| DicomError::Truncated {
                    reason: "the file ends inside the file meta group".into(),
                })?;
            let mut hasher = start_hasher(&syntax);
            hasher.update(&buffer[meta_end..]);
            self.state = State::Body(hasher);
        }
        match self.state {
            State::Body(hasher) => Ok(hasher.finalize().into()),
            State::Header(_) => unreachable!("the header state was left above"),
        }
    }

    fn try_leave_header(&mut self) -> Result<(), DicomError> {
        let State::Header(buffer) = &self.state else {
            return Ok(());
        };
        let Some((meta_end, syntax)) = parse_meta(buffer, false)? else {
            return Ok(());
        };
        let mut hasher = start_hasher(&syntax);
        hasher.update(&buffer[meta_end..]);
        self.state = State::Body(hasher);
        Ok(())
    }
}

/// Computes the digest of a whole file held in memory.
pub fn content_digest(bytes: &[u8]) -> Result<[u8; 32], DicomError> {
    let mut digest = ContentDigest::new();
    digest.update(bytes)?;
    digest.finish()
}

/// Returns whether two Part 10 files contain the same data set once
/// decoded, for files in implicit or explicit VR little endian: a modality
/// may resend an instance re-encoded in the other one, which changes the
/// bytes but no value. Elements are compared by tag and value bytes,
/// sequences item by item. VRs are not compared, because an implicit VR
/// file takes them from the dictionary. Files in any other syntax, or that
/// fail to parse, compare unequal.
pub fn same_decoded_data_set(first: &[u8], second: &[u8]) -> bool {
    match (decode_native(first), decode_native(second)) {
        (Some(first), Some(second)) => same_values(&first, &second),
        _ => false,
    }
}

fn decode_native(file: &[u8]) -> Option<DataSet> {
    let (meta_end, syntax) = parse_meta(file, true).ok()??;
    let encoding = Encoding::of_transfer_syntax(&syntax)?;
    DataSet::parse(&file[meta_end..], encoding).ok()
}

fn same_values(first: &DataSet, second: &DataSet) -> bool {
    let first: Vec<_> = meaningful(first).collect();
    let second: Vec<_> = meaningful(second).collect();
    if first.len() != second.len() {
        return false;
    }
    first
        .iter()
        .zip(&second)
        .all(|((tag, element), (other_tag, other))| {
            if tag != other_tag {
                return false;
            }
            match (&element.value, &other.value) {
                (Value::Bytes(a), Value::Bytes(b)) => a == b,
                (Value::Items(a), Value::Items(b)) => {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_values(x, y))
                }
                _ => false,
            }
        })
}

/// Leaves out the elements that encoders add or drop freely: group lengths
/// (gggg,0000), which depend on the encoding, and Data Set Trailing Padding
/// (FFFC,FFFC), which PS3.10 gives no meaning. DCMTK's storescu, for one,
/// drops the padding when it re-encodes a file.
fn meaningful(set: &DataSet) -> impl Iterator<Item = (&Tag, &Element)> {
    set.elements
        .iter()
        .filter(|(tag, _)| tag.element() != 0x0000 && **tag != TRAILING_PADDING)
}

fn start_hasher(transfer_syntax: &str) -> Sha256 {
    let mut hasher = Sha256::new();
    hasher.update(transfer_syntax.as_bytes());
    hasher.update([0u8]);
    hasher
}

/// Walks group 0002 (always explicit VR little endian). Returns where the
/// data set starts and the transfer syntax, or None when more bytes are
/// needed. With `at_end`, a group that reaches the end of `bytes` ends there.
fn parse_meta(bytes: &[u8], at_end: bool) -> Result<Option<(usize, String)>, DicomError> {
    if bytes.len() < PREFIX_LENGTH {
        return if at_end {
            Err(DicomError::Truncated {
                reason: "the file ends inside the preamble".into(),
            })
        } else {
            Ok(None)
        };
    }
    if &bytes[128..132] != b"DICM" {
        return Err(DicomError::NotPart10);
    }

    let mut offset = PREFIX_LENGTH;
    let mut syntax = String::new();
    loop {
        if offset > MAX_META_LENGTH {
            return Err(DicomError::InvalidFileMeta {
                reason: format!("group 0002 runs past {MAX_META_LENGTH} bytes"),
            });
        }
        let Some(element) = read_meta_element(bytes, offset) else {
            return match (at_end, offset == bytes.len()) {
                (false, _) => Ok(None),
                (true, true) => Ok(Some((offset, syntax))),
                (true, false) => Err(DicomError::Truncated {
                    reason: format!("the file ends inside an element header at byte {offset}"),
                }),
            };
        };
        if element.group != 0x0002 {
            return Ok(Some((offset, syntax)));
        }
        let value_end = element.value_start + element.length;
        if value_end > bytes.len() {
            return if at_end {
                Err(DicomError::Truncated {
                    reason: format!(
                        "the file ends inside meta element (0002,{:04X})",
                        element.element
                    ),
                })
            } else {
                Ok(None)
            };
        }
        if element.element == 0x0010 {
            let value = &bytes[element.value_start..value_end];
            syntax = String::from_utf8_lossy(value)
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        offset = value_end;
    }
}

struct MetaElement {
    group: u16,
    element: u16,
    value_start: usize,
    length: usize,
}

/// Reads one explicit VR little endian element header at `offset`, or None
/// when the bytes end inside it.
fn read_meta_element(bytes: &[u8], offset: usize) -> Option<MetaElement> {
    let header = bytes.get(offset..offset + 8)?;
    let group = u16::from_le_bytes([header[0], header[1]]);
    let element = u16::from_le_bytes([header[2], header[3]]);
    if group != 0x0002 {
        return Some(MetaElement {
            group,
            element,
            value_start: offset,
            length: 0,
        });
    }

    let vr = &header[4..6];
    if has_long_length(vr) {
        let long = bytes.get(offset + 8..offset + 12)?;
        let length = u32::from_le_bytes([long[0], long[1], long[2], long[3]]);
        return Some(MetaElement {
            group,
            element,
            value_start: offset + 12,
            length: length as usize,
        });
    }
    Some(MetaElement {
        group,
        element,
        value_start: offset + 8,
        length: u16::from_le_bytes([header[6], header[7]]) as usize,
    })
}

/// VRs whose explicit encoding has two reserved bytes and a 32-bit length.
fn has_long_length(vr: &[u8]) -> bool {
    matches!(
        vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

#[cfg(test)]
mod tests {
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_object::meta::FileMetaTableBuilder;
    use dicom_object::InMemDicomObject as Object;
    use dicom_object::InMemDicomObject;
    use proptest::prelude::*;

    use super::*;

    fn part10(name: &str, syntax: &str, implementation: &str) -> Vec<u8> {
        let dataset = InMemDicomObject::from_element_iter([
            DataElement::new(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE),
            DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.3"),
            DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3.4.1"),
            DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.4.2"),
            DataElement::new(tags::PATIENT_NAME, VR::PN, name),
        ]);
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(syntax)
            .implementation_class_uid(implementation)
            .source_application_entity_title("MODALITY");
        let file = dataset.with_meta(meta).unwrap();
        let mut bytes = Vec::new();
        file.write_all(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn digest_ignores_meta_group() {
        let first = part10("Doe^Jane", uids::EXPLICIT_VR_LITTLE_ENDIAN, "1.2.3.100");
        let second = part10("Doe^Jane", uids::EXPLICIT_VR_LITTLE_ENDIAN, "1.2.3.200.77");
        assert_ne!(first, second);
        assert_eq!(
            content_digest(&first).unwrap(),
            content_digest(&second).unwrap()
        );
    }

    #[test]
    fn digest_covers_data_set_and_syntax() {
        let base = part10("Doe^Jane", uids::EXPLICIT_VR_LITTLE_ENDIAN, "1.2.3.100");
        let renamed = part10("Doe^John", uids::EXPLICIT_VR_LITTLE_ENDIAN, "1.2.3.100");
        let implicit = part10("Doe^Jane", uids::IMPLICIT_VR_LITTLE_ENDIAN, "1.2.3.100");
        let digest = content_digest(&base).unwrap();
        assert_ne!(digest, content_digest(&renamed).unwrap());
        assert_ne!(digest, content_digest(&implicit).unwrap());
    }

    #[test]
    fn digest_of_truncated_meta_fails() {
        let bytes = part10("Doe^Jane", uids::EXPLICIT_VR_LITTLE_ENDIAN, "1.2.3.100");
        let error = content_digest(&bytes[..150]).unwrap_err();
        assert!(matches!(error, DicomError::Truncated { .. }), "{error}");
        assert!(matches!(
            content_digest(b"short"),
            Err(DicomError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn digest_ignores_slicing(cuts in proptest::collection::vec(0usize..400, 0..6)) {
            let bytes = part10("Doe^Jane", uids::EXPLICIT_VR_LITTLE_ENDIAN, "1.2.3.100");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut digest = ContentDigest::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                digest.update(&bytes[start..cut]).unwrap();
                start = cut;
            }
            prop_assert_eq!(digest.finish().unwrap(), content_digest(&bytes).unwrap());
        }
    }

    /// Builds a file with a sequence, a private element and pixel data.
    fn rich_part10(syntax: &str, name: &str) -> Vec<u8> {
        let item =
            Object::from_element_iter([DataElement::new(tags::CODE_VALUE, VR::SH, "T-A0100")]);
        let dataset = Object::from_element_iter([
            DataElement::new(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE),
            DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.3"),
            DataElement::new(tags::PATIENT_NAME, VR::PN, name),
            DataElement::new(
                tags::ANATOMIC_REGION_SEQUENCE,
                VR::SQ,
                dicom_core::value::DataSetSequence::from(vec![item]),
            ),
            DataElement::new(dicom_core::Tag(0x0009, 0x0010), VR::LO, "PRIVATE CREATOR"),
            DataElement::new(tags::ROWS, VR::US, dicom_core::PrimitiveValue::from(2u16)),
            DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                dicom_core::PrimitiveValue::U16(dicom_core::smallvec::SmallVec::from_vec(vec![
                    1, 2, 3, 4,
                ])),
            ),
        ]);
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(syntax)
            .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
            .media_storage_sop_instance_uid("1.2.3.4.3");
        let file = dataset.with_meta(meta).unwrap();
        let mut bytes = Vec::new();
        file.write_all(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn implicit_and_explicit_copies_decode_equal() {
        let explicit = rich_part10(uids::EXPLICIT_VR_LITTLE_ENDIAN, "Doe^Jane");
        let implicit = rich_part10(uids::IMPLICIT_VR_LITTLE_ENDIAN, "Doe^Jane");

        assert_ne!(
            content_digest(&explicit).unwrap(),
            content_digest(&implicit).unwrap()
        );
        assert!(same_decoded_data_set(&explicit, &implicit));
    }

    #[test]
    fn trailing_padding_is_ignored() {
        let explicit = rich_part10(uids::EXPLICIT_VR_LITTLE_ENDIAN, "Doe^Jane");
        let mut padded = rich_part10(uids::IMPLICIT_VR_LITTLE_ENDIAN, "Doe^Jane");
        padded.extend_from_slice(&[0xFC, 0xFF, 0xFC, 0xFF, 4, 0, 0, 0, 0, 0, 0, 0]);

        assert!(same_decoded_data_set(&explicit, &padded));
    }

    #[test]
    fn changed_value_decodes_different() {
        let explicit = rich_part10(uids::EXPLICIT_VR_LITTLE_ENDIAN, "Doe^Jane");
        let implicit = rich_part10(uids::IMPLICIT_VR_LITTLE_ENDIAN, "Doe^John");

        assert!(!same_decoded_data_set(&explicit, &implicit));
    }

    #[test]
    fn big_endian_copy_is_not_compared() {
        let explicit = rich_part10(uids::EXPLICIT_VR_LITTLE_ENDIAN, "Doe^Jane");
        #[allow(deprecated)]
        let big = rich_part10(uids::EXPLICIT_VR_BIG_ENDIAN, "Doe^Jane");

        assert!(!same_decoded_data_set(&explicit, &big));
    }
}
