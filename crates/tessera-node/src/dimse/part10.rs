//! Converting between the data sets of C-STORE and the Part 10 files that
//! the archive stores.
//!
//! The file meta group written here depends only on the SOP class, SOP
//! instance, transfer syntax and calling AE title, so the same data set
//! received twice from one caller becomes the same bytes and the same
//! blob. From another caller it differs only in Source Application Entity
//! Title, and the write path recognises it by its content digest, which
//! leaves out the meta group.

use dicom_core::{Tag, VR};
use tessera_dicom::dimse::{DataSet, Encoding};

use super::sop_classes::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

const SOURCE_APPLICATION_ENTITY_TITLE: Tag = Tag(0x0002, 0x0016);
const PREAMBLE: usize = 128;
/// Preamble, "DICM" and the (0002,0000) element in explicit VR little endian.
const GROUP_LENGTH_END: usize = PREAMBLE + 4 + 12;

/// Identity of a data set for its file meta group.
pub struct MetaFields<'a> {
    pub sop_class: &'a str,
    pub sop_instance: &'a str,
    pub transfer_syntax: &'a str,
    /// Calling AE title of the association that sent the data set, stored
    /// as Source Application Entity Title (0002,0016); None leaves it out.
    pub source_ae_title: Option<&'a str>,
}

/// Returns the preamble, magic code and file meta group for a data set.
pub fn file_header(fields: &MetaFields) -> Vec<u8> {
    let MetaFields {
        sop_class,
        sop_instance,
        transfer_syntax,
        source_ae_title,
    } = *fields;
    let mut meta = DataSet::default();
    meta.put_bytes(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
    meta.put_text(Tag(0x0002, 0x0002), VR::UI, sop_class);
    meta.put_text(Tag(0x0002, 0x0003), VR::UI, sop_instance);
    meta.put_text(Tag(0x0002, 0x0010), VR::UI, transfer_syntax);
    meta.put_text(Tag(0x0002, 0x0012), VR::UI, IMPLEMENTATION_CLASS_UID);
    meta.put_text(Tag(0x0002, 0x0013), VR::SH, IMPLEMENTATION_VERSION_NAME);
    if let Some(title) = source_ae_title.map(str::trim).filter(|t| !t.is_empty()) {
        meta.put_text(SOURCE_APPLICATION_ENTITY_TITLE, VR::AE, title);
    }
    let body = meta.encode(Encoding::ExplicitLittle);

    let mut length = DataSet::default();
    length.put_u32(Tag(0x0002, 0x0000), body.len() as u32);
    let mut out = vec![0u8; PREAMBLE];
    out.extend_from_slice(b"DICM");
    out.extend_from_slice(&length.encode(Encoding::ExplicitLittle));
    out.extend_from_slice(&body);
    out
}

/// Returns the length of a Part 10 file's preamble and meta group, once
/// `prefix` contains enough bytes to decide; None while it is too short.
pub fn header_length(prefix: &[u8]) -> Option<Result<usize, String>> {
    if prefix.len() < GROUP_LENGTH_END {
        return None;
    }
    if &prefix[PREAMBLE..PREAMBLE + 4] != b"DICM" {
        return Some(Err("stored blob lacks the DICM prefix".into()));
    }
    let element = &prefix[PREAMBLE + 4..GROUP_LENGTH_END];
    if element[..6] != [0x02, 0x00, 0x00, 0x00, b'U', b'L'] {
        return Some(Err(
            "stored blob lacks a File Meta Information Group Length".into(),
        ));
    }
    let length = u32::from_le_bytes(element[8..12].try_into().expect("four bytes"));
    Some(Ok(GROUP_LENGTH_END + length as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(sop_instance: &'a str, transfer_syntax: &'a str) -> MetaFields<'a> {
        MetaFields {
            sop_class: "1.2.840.10008.5.1.4.1.1.7",
            sop_instance,
            transfer_syntax,
            source_ae_title: Some("MODALITY"),
        }
    }

    #[test]
    fn header_is_deterministic_and_measurable() {
        let first = file_header(&fields("1.2.3", "1.2.840.10008.1.2"));
        let second = file_header(&fields("1.2.3", "1.2.840.10008.1.2"));

        assert_eq!(first, second);
        assert_eq!(header_length(&first), Some(Ok(first.len())));
    }

    #[test]
    fn source_ae_title_is_in_meta_group() {
        let header = file_header(&fields("1.2.3", "1.2.840.10008.1.2"));
        let start = 128 + 4;

        let meta = DataSet::parse(&header[start..], Encoding::ExplicitLittle).unwrap();

        let title = meta.text(SOURCE_APPLICATION_ENTITY_TITLE);
        assert_eq!(title.as_deref(), Some("MODALITY"));
        assert_eq!(meta.elements[&SOURCE_APPLICATION_ENTITY_TITLE].vr, VR::AE);
    }

    #[test]
    fn source_ae_title_leaves_content_digest() {
        let data = [0x08u8, 0x00, 0x16, 0x00, 2, 0, 0, 0, b'1', 0];
        let mut from_modality = file_header(&fields("1.2.3", "1.2.840.10008.1.2"));
        let mut without = file_header(&MetaFields {
            source_ae_title: None,
            ..fields("1.2.3", "1.2.840.10008.1.2")
        });
        from_modality.extend_from_slice(&data);
        without.extend_from_slice(&data);

        let first = tessera_dicom::content_digest(&from_modality).unwrap();
        let second = tessera_dicom::content_digest(&without).unwrap();

        assert_ne!(from_modality, without);
        assert_eq!(first, second);
    }

    #[test]
    fn header_is_read_by_dicom_rs() {
        let mut file = file_header(&fields("1.2.3.4", "1.2.840.10008.1.2.1"));
        let mut data = DataSet::default();
        data.put_text(Tag(0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.7");
        data.put_text(Tag(0x0008, 0x0018), VR::UI, "1.2.3.4");
        data.put_text(Tag(0x0020, 0x000D), VR::UI, "1.2.3.1");
        data.put_text(Tag(0x0020, 0x000E), VR::UI, "1.2.3.2");
        file.extend_from_slice(&data.encode(Encoding::ExplicitLittle));

        let attributes = tessera_dicom::read_index_attributes(&file).unwrap();

        assert_eq!(attributes.sop_instance_uid, "1.2.3.4");
        assert_eq!(attributes.transfer_syntax_uid, "1.2.840.10008.1.2.1");
    }

    #[test]
    fn short_prefix_needs_more_bytes() {
        assert_eq!(header_length(&[0u8; 100]), None);
    }
}
