//! Converting between the data sets of C-STORE and the Part 10 files that
//! the archive stores.
//!
//! The file meta group written here depends only on the SOP class, SOP
//! instance and transfer syntax, so the same data set received twice, from
//! any caller, becomes the same bytes and the same blob.

use dicom_core::{Tag, VR};
use tessera_dicom::dimse::{DataSet, Encoding};

use super::sop_classes::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

const PREAMBLE: usize = 128;
/// Preamble, "DICM" and the (0002,0000) element in explicit VR little endian.
const GROUP_LENGTH_END: usize = PREAMBLE + 4 + 12;

/// Returns the preamble, magic code and file meta group for a data set.
pub fn file_header(sop_class: &str, sop_instance: &str, transfer_syntax: &str) -> Vec<u8> {
    let mut meta = DataSet::default();
    meta.put_bytes(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
    meta.put_text(Tag(0x0002, 0x0002), VR::UI, sop_class);
    meta.put_text(Tag(0x0002, 0x0003), VR::UI, sop_instance);
    meta.put_text(Tag(0x0002, 0x0010), VR::UI, transfer_syntax);
    meta.put_text(Tag(0x0002, 0x0012), VR::UI, IMPLEMENTATION_CLASS_UID);
    meta.put_text(Tag(0x0002, 0x0013), VR::SH, IMPLEMENTATION_VERSION_NAME);
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

    #[test]
    fn header_is_deterministic_and_measurable() {
        let first = file_header("1.2.840.10008.5.1.4.1.1.7", "1.2.3", "1.2.840.10008.1.2");
        let second = file_header("1.2.840.10008.5.1.4.1.1.7", "1.2.3", "1.2.840.10008.1.2");

        assert_eq!(first, second);
        assert_eq!(header_length(&first), Some(Ok(first.len())));
    }

    #[test]
    fn header_is_read_by_dicom_rs() {
        let mut file = file_header(
            "1.2.840.10008.5.1.4.1.1.7",
            "1.2.3.4",
            "1.2.840.10008.1.2.1",
        );
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
