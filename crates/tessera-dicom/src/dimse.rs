//! DIMSE message bodies: command sets and the flat identifiers of C-FIND,
//! C-MOVE, C-GET and storage commitment, kept as raw element values.
//!
//! Values stay as the bytes that arrived, because the text of an identifier
//! can only be decoded once its Specific Character Set is known, and the
//! charsets of ISO 2022 need the whole value at once. Only little endian
//! encodings are read and written: command sets are always implicit VR little
//! endian (PS3.7 section 6.3.1), and the archive negotiates query and
//! retrieve contexts in little endian only.
//!
//! ```
//! use dicom_core::{Tag, VR};
//! use tessera_dicom::dimse::{DataSet, Encoding};
//!
//! let mut command = DataSet::default();
//! command.put_u16(Tag(0x0000, 0x0100), 0x0030);
//! let bytes = tessera_dicom::dimse::encode_command(&command);
//!
//! let decoded = DataSet::parse(&bytes, Encoding::ImplicitLittle).unwrap();
//! assert_eq!(decoded.u16(Tag(0x0000, 0x0100)), Some(0x0030));
//! ```

use std::collections::BTreeMap;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// Deepest nesting of sequences accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 16;

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: Tag = Tag(0xFFFE, 0xE0DD);
const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;

/// A data set that cannot be decoded, with the byte offset where decoding stopped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DimseDecodeError {
    #[error("data set ends at byte {offset} inside an element header or value")]
    Truncated { offset: usize },

    #[error("element {tag} at byte {offset} has an undefined length but is not a sequence")]
    UndefinedLength { tag: String, offset: usize },

    #[error("unexpected {tag} at byte {offset} where an item or delimiter was expected")]
    UnexpectedTag { tag: String, offset: usize },

    #[error("sequences nest deeper than {MAX_DEPTH} levels at byte {offset}")]
    TooDeep { offset: usize },

    #[error("invalid value representation {vr:?} at byte {offset}")]
    InvalidVr { vr: [u8; 2], offset: usize },
}

/// Little endian encodings that DIMSE bodies are read and written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    ImplicitLittle,
    ExplicitLittle,
}

impl Encoding {
    /// Returns the encoding of a transfer syntax, or None when its data sets
    /// are not plain little endian (big endian, deflated, or unknown).
    pub fn of_transfer_syntax(uid: &str) -> Option<Encoding> {
        match uid.trim_end_matches(['\0', ' ']) {
            "1.2.840.10008.1.2" => Some(Encoding::ImplicitLittle),
            "1.2.840.10008.1.2.1" => Some(Encoding::ExplicitLittle),
            _ => None,
        }
    }
}

/// The value of one element: bytes as received, or the items of a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bytes(Vec<u8>),
    Items(Vec<DataSet>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub vr: VR,
    pub value: Value,
}

/// Elements ordered by tag, as the standard requires on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSet {
    pub elements: BTreeMap<Tag, Element>,
}

impl DataSet {
    /// Decodes a whole data set. Every byte must belong to an element.
    pub fn parse(bytes: &[u8], encoding: Encoding) -> Result<DataSet, DimseDecodeError> {
        let mut reader = Reader {
            bytes,
            offset: 0,
            encoding,
        };
        reader.data_set(bytes.len(), 0)
    }

    /// Encodes the data set, with every value padded to an even length.
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        let mut out = Vec::new();
        write_data_set(&mut out, self, encoding);
        out
    }

    pub fn bytes(&self, tag: Tag) -> Option<&[u8]> {
        match &self.elements.get(&tag)?.value {
            Value::Bytes(bytes) => Some(bytes),
            Value::Items(_) => None,
        }
    }

    pub fn items(&self, tag: Tag) -> Option<&[DataSet]> {
        match &self.elements.get(&tag)?.value {
            Value::Items(items) => Some(items),
            Value::Bytes(_) => None,
        }
    }

    /// Returns a value as text without its padding, for values that are ASCII
    /// by definition (UIDs, AE titles, codes, numbers as strings).
    pub fn text(&self, tag: Tag) -> Option<String> {
        let bytes = self.bytes(tag)?;
        let text = String::from_utf8_lossy(bytes);
        Some(text.trim_end_matches(['\0', ' ']).trim_start().to_string())
    }

    pub fn u16(&self, tag: Tag) -> Option<u16> {
        let bytes = self.bytes(tag)?;
        Some(u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?))
    }

    pub fn put_u16(&mut self, tag: Tag, value: u16) {
        self.put_bytes(tag, VR::US, value.to_le_bytes().to_vec());
    }

    pub fn put_u32(&mut self, tag: Tag, value: u32) {
        self.put_bytes(tag, VR::UL, value.to_le_bytes().to_vec());
    }

    /// Stores a text value, padded as its VR requires: UI with NUL, the rest with a space.
    pub fn put_text(&mut self, tag: Tag, vr: VR, value: &str) {
        self.put_bytes(tag, vr, value.as_bytes().to_vec());
    }

    pub fn put_bytes(&mut self, tag: Tag, vr: VR, bytes: Vec<u8>) {
        let value = Value::Bytes(bytes);
        self.elements.insert(tag, Element { vr, value });
    }

    pub fn put_items(&mut self, tag: Tag, items: Vec<DataSet>) {
        let value = Value::Items(items);
        self.elements.insert(tag, Element { vr: VR::SQ, value });
    }
}

/// Encodes a command set in implicit VR little endian with its Command Group
/// Length (0000,0000) computed, as PS3.7 section 6.3.1 requires.
pub fn encode_command(command: &DataSet) -> Vec<u8> {
    let mut body = command.clone();
    body.elements.remove(&Tag(0x0000, 0x0000));
    let encoded = body.encode(Encoding::ImplicitLittle);

    let mut with_length = DataSet::default();
    with_length.put_u32(Tag(0x0000, 0x0000), encoded.len() as u32);
    let mut out = with_length.encode(Encoding::ImplicitLittle);
    out.extend_from_slice(&encoded);
    out
}

/// Returns the VR the standard dictionary gives a tag, UN when it has none.
pub fn dictionary_vr(tag: Tag) -> VR {
    if tag.element() == 0x0000 {
        return VR::UL;
    }
    match StandardDataDictionary.by_tag(tag).map(|entry| entry.vr()) {
        Some(VirtualVr::Exact(vr)) => vr,
        Some(VirtualVr::Xs) => VR::US,
        Some(VirtualVr::Ox) | Some(VirtualVr::Px) => VR::OW,
        _ => VR::UN,
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    encoding: Encoding,
}

impl Reader<'_> {
    fn data_set(&mut self, end: usize, depth: usize) -> Result<DataSet, DimseDecodeError> {
        let mut set = DataSet::default();
        while self.offset < end {
            let start = self.offset;
            let tag = self.tag()?;
            if tag == ITEM_DELIMITER && depth > 0 {
                self.u32()?;
                return Ok(set);
            }
            if tag.group() == 0xFFFE {
                let tag = tag.to_string();
                return Err(DimseDecodeError::UnexpectedTag { tag, offset: start });
            }
            let (vr, length) = self.header(tag)?;
            let value = self.value(tag, vr, length, depth, start)?;
            set.elements.insert(tag, Element { vr, value });
        }
        Ok(set)
    }

    fn header(&mut self, tag: Tag) -> Result<(VR, u32), DimseDecodeError> {
        if self.encoding == Encoding::ImplicitLittle || tag.group() == 0xFFFE {
            return Ok((dictionary_vr(tag), self.u32()?));
        }
        let offset = self.offset;
        let chars: [u8; 2] = self.take(2)?.try_into().expect("two bytes");
        let vr = VR::from_binary(chars).ok_or(DimseDecodeError::InvalidVr { vr: chars, offset })?;
        if has_long_length(vr) {
            self.take(2)?;
            return Ok((vr, self.u32()?));
        }
        Ok((vr, self.u16()? as u32))
    }

    fn value(
        &mut self,
        tag: Tag,
        vr: VR,
        length: u32,
        depth: usize,
        start: usize,
    ) -> Result<Value, DimseDecodeError> {
        let is_sequence = vr == VR::SQ || (vr == VR::UN && length == UNDEFINED_LENGTH);
        if is_sequence {
            if depth >= MAX_DEPTH {
                return Err(DimseDecodeError::TooDeep { offset: start });
            }
            return self.items(length, depth + 1).map(Value::Items);
        }
        if length == UNDEFINED_LENGTH {
            let tag = tag.to_string();
            return Err(DimseDecodeError::UndefinedLength { tag, offset: start });
        }
        Ok(Value::Bytes(self.take(length as usize)?.to_vec()))
    }

    fn items(&mut self, length: u32, depth: usize) -> Result<Vec<DataSet>, DimseDecodeError> {
        let end = match length {
            UNDEFINED_LENGTH => None,
            length => Some(self.end_of(length)?),
        };
        let mut items = Vec::new();
        while end.is_none_or(|end| self.offset < end) {
            let offset = self.offset;
            let tag = self.tag()?;
            let item_length = self.u32()?;
            if tag == SEQUENCE_DELIMITER && end.is_none() {
                return Ok(items);
            }
            if tag != ITEM {
                let tag = tag.to_string();
                return Err(DimseDecodeError::UnexpectedTag { tag, offset });
            }
            let item_end = match item_length {
                UNDEFINED_LENGTH => end.unwrap_or(self.bytes.len()),
                length => self.end_of(length)?,
            };
            items.push(self.data_set(item_end, depth)?);
        }
        Ok(items)
    }

    fn end_of(&self, length: u32) -> Result<usize, DimseDecodeError> {
        let end = self.offset.checked_add(length as usize);
        end.filter(|end| *end <= self.bytes.len())
            .ok_or(DimseDecodeError::Truncated {
                offset: self.bytes.len(),
            })
    }

    fn tag(&mut self) -> Result<Tag, DimseDecodeError> {
        let group = self.u16()?;
        let element = self.u16()?;
        Ok(Tag(group, element))
    }

    fn u16(&mut self) -> Result<u16, DimseDecodeError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes(bytes.try_into().expect("two bytes")))
    }

    fn u32(&mut self) -> Result<u32, DimseDecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("four bytes")))
    }

    fn take(&mut self, count: usize) -> Result<&[u8], DimseDecodeError> {
        let end = self.end_of(count as u32)?;
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }
}

fn has_long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    )
}

fn write_data_set(out: &mut Vec<u8>, set: &DataSet, encoding: Encoding) {
    for (tag, element) in &set.elements {
        match &element.value {
            Value::Bytes(bytes) => write_bytes(out, *tag, element.vr, bytes, encoding),
            Value::Items(items) => write_sequence(out, *tag, items, encoding),
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, tag: Tag, vr: VR, bytes: &[u8], encoding: Encoding) {
    let mut value = bytes.to_vec();
    if value.len() % 2 == 1 {
        value.push(if vr == VR::UI || is_binary(vr) {
            0
        } else {
            b' '
        });
    }
    write_header(out, tag, vr, value.len() as u32, encoding);
    out.extend_from_slice(&value);
}

/// Writes a sequence with undefined lengths, so no item length must be known up front.
fn write_sequence(out: &mut Vec<u8>, tag: Tag, items: &[DataSet], encoding: Encoding) {
    write_header(out, tag, VR::SQ, UNDEFINED_LENGTH, encoding);
    for item in items {
        write_tag(out, ITEM);
        out.extend_from_slice(&UNDEFINED_LENGTH.to_le_bytes());
        write_data_set(out, item, encoding);
        write_tag(out, ITEM_DELIMITER);
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    write_tag(out, SEQUENCE_DELIMITER);
    out.extend_from_slice(&0u32.to_le_bytes());
}

fn write_header(out: &mut Vec<u8>, tag: Tag, vr: VR, length: u32, encoding: Encoding) {
    write_tag(out, tag);
    if encoding == Encoding::ImplicitLittle {
        out.extend_from_slice(&length.to_le_bytes());
        return;
    }
    out.extend_from_slice(vr.to_string().as_bytes());
    if has_long_length(vr) {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&length.to_le_bytes());
    } else {
        out.extend_from_slice(&(length as u16).to_le_bytes());
    }
}

fn write_tag(out: &mut Vec<u8>, tag: Tag) {
    out.extend_from_slice(&tag.group().to_le_bytes());
    out.extend_from_slice(&tag.element().to_le_bytes());
}

fn is_binary(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN | VR::US | VR::UL | VR::SS
    ) || matches!(vr, VR::SL | VR::FL | VR::FD | VR::AT | VR::SV | VR::UV)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DataSet {
        let mut item = DataSet::default();
        item.put_text(Tag(0x0008, 0x1150), VR::UI, "1.2.840.10008.5.1.4.1.1.2");
        item.put_text(Tag(0x0008, 0x1155), VR::UI, "1.2.3");
        let mut set = DataSet::default();
        set.put_text(Tag(0x0008, 0x0052), VR::CS, "STUDY");
        set.put_text(Tag(0x0010, 0x0010), VR::PN, "Doe^Jane");
        set.put_items(Tag(0x0008, 0x1199), vec![item]);
        set
    }

    #[test]
    fn explicit_round_trip_keeps_sequences() {
        let set = sample();

        let bytes = set.encode(Encoding::ExplicitLittle);
        let decoded = DataSet::parse(&bytes, Encoding::ExplicitLittle).unwrap();

        let items = decoded.items(Tag(0x0008, 0x1199)).expect("sequence");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].text(Tag(0x0008, 0x1155)).as_deref(), Some("1.2.3"));
        assert_eq!(
            decoded.text(Tag(0x0010, 0x0010)).as_deref(),
            Some("Doe^Jane")
        );
    }

    #[test]
    fn implicit_round_trip_uses_dictionary_vr() {
        let bytes = sample().encode(Encoding::ImplicitLittle);

        let decoded = DataSet::parse(&bytes, Encoding::ImplicitLittle).unwrap();

        assert_eq!(decoded.elements[&Tag(0x0010, 0x0010)].vr, VR::PN);
        assert_eq!(decoded.text(Tag(0x0008, 0x0052)).as_deref(), Some("STUDY"));
        assert_eq!(decoded.items(Tag(0x0008, 0x1199)).map(<[_]>::len), Some(1));
    }

    #[test]
    fn odd_uid_is_padded_with_nul() {
        let mut set = DataSet::default();
        set.put_text(Tag(0x0008, 0x0018), VR::UI, "1.2.3");

        let bytes = set.encode(Encoding::ImplicitLittle);

        assert_eq!(&bytes[8..], b"1.2.3\0");
    }

    #[test]
    fn command_group_length_counts_following_bytes() {
        let mut command = DataSet::default();
        command.put_u16(Tag(0x0000, 0x0100), 0x0030);
        command.put_u16(Tag(0x0000, 0x0800), 0x0101);

        let bytes = encode_command(&command);
        let decoded = DataSet::parse(&bytes, Encoding::ImplicitLittle).unwrap();

        let length = decoded.bytes(Tag(0x0000, 0x0000)).unwrap();
        let length = u32::from_le_bytes(length.try_into().unwrap());
        assert_eq!(length as usize, bytes.len() - 12);
    }

    #[test]
    fn truncated_value_is_an_error() {
        let bytes = sample().encode(Encoding::ExplicitLittle);

        let error = DataSet::parse(&bytes[..bytes.len() - 3], Encoding::ExplicitLittle);

        assert!(error.is_err());
    }

    #[test]
    fn huge_length_is_truncated_not_allocated() {
        let bytes = [0x10, 0x00, 0x10, 0x00, 0xF0, 0xFF, 0xFF, 0x7F];

        let error = DataSet::parse(&bytes, Encoding::ImplicitLittle).unwrap_err();

        assert_eq!(error, DimseDecodeError::Truncated { offset: 8 });
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut set = DataSet::default();
        for _ in 0..(MAX_DEPTH + 2) {
            let mut outer = DataSet::default();
            outer.put_items(Tag(0x0040, 0xA730), vec![set]);
            set = outer;
        }

        let bytes = set.encode(Encoding::ExplicitLittle);
        let error = DataSet::parse(&bytes, Encoding::ExplicitLittle).unwrap_err();

        assert!(matches!(error, DimseDecodeError::TooDeep { .. }), "{error}");
    }
}
