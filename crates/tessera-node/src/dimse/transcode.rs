//! Transfer syntax conversion for C-STORE sub-operations of C-MOVE and
//! C-GET, when the destination accepts none of the syntaxes an instance is
//! stored in.
//!
//! PS3.4 lets the SCP convert. The stored blob is never changed: each
//! conversion works on a copy in memory and produces the data set to send.
//! Native syntaxes (implicit and explicit VR little endian, explicit VR big
//! endian, deflated explicit VR little endian) convert into each other.
//! Encapsulated pixel data that dicom-pixeldata's native codecs decode
//! (JPEG baseline, extended and lossless, RLE) converts into any native
//! syntax. Nothing is ever compressed.

use std::io::Cursor;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::uids;
use dicom_encoding::transfer_syntax::{Codec, TransferSyntax, TransferSyntaxIndex};
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use tessera_dicom::dimse::{DataSet, Encoding};

const SAMPLES_PER_PIXEL: Tag = Tag(0x0028, 0x0002);
const PLANAR_CONFIGURATION: Tag = Tag(0x0028, 0x0006);
const BITS_ALLOCATED: Tag = Tag(0x0028, 0x0100);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
/// Explicit VR Big Endian, retired by the standard but still stored by old
/// modalities.
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// Native target syntaxes in order of preference: the cheapest to produce
/// and the most widely accepted first.
const NATIVE_TARGETS: [&str; 4] = [
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
];

/// Failure to convert a stored instance into a destination's syntax.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("transfer syntax {0} is unknown to this node, so it cannot be converted")]
    UnknownSyntax(String),

    #[error("cannot convert from {from} to {to}: only native syntaxes and JPEG or RLE pixel data decode to a native syntax")]
    Unsupported { from: String, to: String },

    #[error("failed to read the stored instance in {syntax}: {reason}")]
    Read { syntax: String, reason: String },

    #[error("failed to decode the pixel data of {syntax}: {reason}")]
    Decode { syntax: String, reason: String },

    #[error("failed to write the data set in {syntax}: {reason}")]
    Write { syntax: String, reason: String },
}

/// Returns the native syntaxes in order of preference, as proposed in a
/// fallback presentation context for instances that need conversion.
pub fn native_syntaxes() -> Vec<String> {
    NATIVE_TARGETS.iter().map(|uid| uid.to_string()).collect()
}

/// Returns whether an instance stored in `from` can be sent in `to`.
pub fn convertible(from: &str, to: &str) -> bool {
    let (from, to) = (trim(from), trim(to));
    if from == to {
        return true;
    }
    if !NATIVE_TARGETS.contains(&to) {
        return false;
    }
    match TransferSyntaxRegistry.get(from) {
        Some(syntax) => is_native(syntax) || is_decodable(syntax),
        None => false,
    }
}

/// Returns the rank of `to` among the native targets (lower is preferred),
/// or None when it is not a native target.
pub fn preference(to: &str) -> Option<usize> {
    NATIVE_TARGETS.iter().position(|uid| *uid == trim(to))
}

/// Converts a stored Part 10 file into the data set bytes of `to`, without
/// preamble and file meta group.
pub fn convert(
    file: &[u8],
    header_length: usize,
    from: &str,
    to: &str,
) -> Result<Vec<u8>, TranscodeError> {
    let (from, to) = (trim(from), trim(to));
    if let (Some(source), Some(target)) = (
        Encoding::of_transfer_syntax(from),
        Encoding::of_transfer_syntax(to),
    ) {
        return reencode_little_endian(&file[header_length..], source, target, from);
    }
    if !convertible(from, to) {
        return Err(TranscodeError::Unsupported {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    let target = TransferSyntaxRegistry
        .get(to)
        .ok_or_else(|| TranscodeError::UnknownSyntax(to.to_string()))?;

    let mut object = read_file(file, from)?;
    let encapsulated = TransferSyntaxRegistry
        .get(from)
        .is_some_and(TransferSyntax::is_encapsulated_pixel_data);
    if encapsulated {
        decode_pixel_data(&mut object, from)?;
    }
    write_data_set(&object, target)
}

/// Re-encodes between implicit and explicit VR little endian with the
/// archive's own parser. Values keep their bytes, so only the element
/// headers change; implicit VRs come from the standard dictionary (UN for
/// private tags).
fn reencode_little_endian(
    data: &[u8],
    from: Encoding,
    to: Encoding,
    syntax: &str,
) -> Result<Vec<u8>, TranscodeError> {
    let set = DataSet::parse(data, from).map_err(|error| TranscodeError::Read {
        syntax: syntax.to_string(),
        reason: error.to_string(),
    })?;
    Ok(set.encode(to))
}

fn read_file(file: &[u8], syntax: &str) -> Result<DefaultDicomObject, TranscodeError> {
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(Cursor::new(file))
        .map_err(|error| TranscodeError::Read {
            syntax: syntax.to_string(),
            reason: error.to_string(),
        })
}

/// Decodes encapsulated pixel data in place into native explicit VR
/// little endian. The decoder returns interleaved samples (and RGB for
/// colour JPEG), so Planar Configuration is set to 0 to match.
fn decode_pixel_data(object: &mut DefaultDicomObject, syntax: &str) -> Result<(), TranscodeError> {
    let explicit = TransferSyntaxRegistry
        .get(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .ok_or_else(|| TranscodeError::UnknownSyntax(uids::EXPLICIT_VR_LITTLE_ENDIAN.into()))?;
    object
        .transcode(explicit)
        .map_err(|error| TranscodeError::Decode {
            syntax: syntax.to_string(),
            reason: error.to_string(),
        })?;

    // dicom-pixeldata stores decoded 8-bit samples as OW. OB is the VR for
    // them: in big endian, OW would be read as byte-swapped 16-bit words.
    if number(object, BITS_ALLOCATED) == Some(8) {
        let decode_error = |reason: String| TranscodeError::Decode {
            syntax: syntax.to_string(),
            reason,
        };
        let pixels = object
            .take_element(PIXEL_DATA)
            .map_err(|error| decode_error(error.to_string()))?;
        let bytes = pixels
            .to_bytes()
            .map_err(|error| decode_error(error.to_string()))?
            .to_vec();
        object.put(DataElement::new(
            PIXEL_DATA,
            VR::OB,
            PrimitiveValue::from(bytes),
        ));
    }
    if number(object, SAMPLES_PER_PIXEL).unwrap_or(1) > 1 {
        object.put(DataElement::new(
            PLANAR_CONFIGURATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    }
    Ok(())
}

fn number(object: &DefaultDicomObject, tag: Tag) -> Option<u16> {
    let element = object.element(tag).ok()?;
    element.to_int::<u16>().ok()
}

fn write_data_set(
    object: &DefaultDicomObject,
    target: &TransferSyntax,
) -> Result<Vec<u8>, TranscodeError> {
    let mut bytes = Vec::new();
    object
        .write_dataset_with_ts(&mut bytes, target)
        .map_err(|error| TranscodeError::Write {
            syntax: target.uid().to_string(),
            reason: error.to_string(),
        })?;
    Ok(bytes)
}

/// Returns whether dicom-rs reads and writes a syntax's data sets without
/// a pixel codec.
fn is_native(syntax: &TransferSyntax) -> bool {
    matches!(syntax.codec(), Codec::None | Codec::Dataset(Some(_)))
}

/// Returns whether a syntax is encapsulated and has a pixel data decoder
/// in this build.
fn is_decodable(syntax: &TransferSyntax) -> bool {
    matches!(syntax.codec(), Codec::EncapsulatedPixelData(Some(_), _))
}

fn trim(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

    const MR: &str = "1.2.840.10008.5.1.4.1.1.4";

    fn file_in(syntax: &str) -> (Vec<u8>, usize) {
        let mut object = InMemDicomObject::new_empty();
        object.put(DataElement::new(Tag(0x0008, 0x0016), VR::UI, MR));
        object.put(DataElement::new(Tag(0x0008, 0x0018), VR::UI, "1.2.3.4"));
        object.put(DataElement::new(Tag(0x0010, 0x0010), VR::PN, "Doe^Jane"));
        object.put(DataElement::new(
            Tag(0x0028, 0x0010),
            VR::US,
            PrimitiveValue::from(2u16),
        ));
        object.put(DataElement::new(
            Tag(0x7FE0, 0x0010),
            VR::OW,
            PrimitiveValue::U16([0x0102, 0x0304].into()),
        ));
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(syntax)
            .media_storage_sop_class_uid(MR)
            .media_storage_sop_instance_uid("1.2.3.4");
        let file = object.with_meta(meta).unwrap();
        let mut bytes = Vec::new();
        file.write_all(&mut bytes).unwrap();
        let header = crate::dimse::part10::header_length(&bytes)
            .unwrap()
            .unwrap();
        (bytes, header)
    }

    fn parse(data: &[u8], syntax: &str) -> InMemDicomObject {
        let ts = TransferSyntaxRegistry.get(syntax).unwrap();
        InMemDicomObject::read_dataset_with_ts(data, ts).unwrap()
    }

    #[test]
    fn reencoding_keeps_values() {
        let mut set = DataSet::default();
        set.put_text(Tag(0x0010, 0x0010), VR::PN, "Doe^Jane");
        set.put_bytes(Tag(0x7FE0, 0x0010), VR::OW, vec![1, 2, 3, 4]);
        let implicit = set.encode(Encoding::ImplicitLittle);
        let mut file = crate::dimse::part10::file_header(&crate::dimse::part10::MetaFields {
            sop_class: MR,
            sop_instance: "1.2.3",
            transfer_syntax: uids::IMPLICIT_VR_LITTLE_ENDIAN,
            source_ae_title: None,
        });
        let header = file.len();
        file.extend_from_slice(&implicit);

        let explicit = convert(
            &file,
            header,
            uids::IMPLICIT_VR_LITTLE_ENDIAN,
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
        )
        .unwrap();

        let decoded = DataSet::parse(&explicit, Encoding::ExplicitLittle).unwrap();
        assert_eq!(decoded.elements[&Tag(0x0010, 0x0010)].vr, VR::PN);
        assert_eq!(
            decoded.bytes(Tag(0x7FE0, 0x0010)),
            Some(&[1u8, 2, 3, 4][..])
        );
    }

    #[test]
    fn big_endian_converts_to_little_endian() {
        let (file, header) = file_in(EXPLICIT_VR_BIG_ENDIAN);

        let data = convert(
            &file,
            header,
            EXPLICIT_VR_BIG_ENDIAN,
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
        )
        .unwrap();

        let decoded = DataSet::parse(&data, Encoding::ExplicitLittle).unwrap();
        assert_eq!(
            decoded.bytes(Tag(0x7FE0, 0x0010)),
            Some(&[0x02u8, 0x01, 0x04, 0x03][..])
        );
        assert_eq!(decoded.bytes(Tag(0x0028, 0x0010)), Some(&[2u8, 0][..]));
        assert_eq!(
            decoded.text(Tag(0x0010, 0x0010)).as_deref(),
            Some("Doe^Jane")
        );
    }

    #[test]
    fn little_endian_converts_to_big_endian_and_deflated() {
        let (file, header) = file_in(uids::EXPLICIT_VR_LITTLE_ENDIAN);

        for target in [
            EXPLICIT_VR_BIG_ENDIAN,
            uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        ] {
            let data = convert(&file, header, uids::EXPLICIT_VR_LITTLE_ENDIAN, target).unwrap();

            let object = parse(&data, target);
            let pixels = object.element(Tag(0x7FE0, 0x0010)).unwrap();
            assert_eq!(
                pixels.to_multi_int::<u16>().unwrap(),
                vec![0x0102, 0x0304],
                "{target}"
            );
            let name = object.element(Tag(0x0010, 0x0010)).unwrap();
            assert_eq!(name.to_str().unwrap(), "Doe^Jane", "{target}");
        }
    }

    #[test]
    fn undecodable_syntax_is_unsupported() {
        let (file, header) = file_in(uids::EXPLICIT_VR_LITTLE_ENDIAN);

        let error = convert(
            &file,
            header,
            uids::JPEG2000_LOSSLESS,
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
        )
        .unwrap_err();

        assert!(
            matches!(error, TranscodeError::Unsupported { .. }),
            "{error}"
        );
    }
}
