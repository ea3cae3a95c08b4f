//! Text of DICOM string values in the character sets that Specific
//! Character Set (0008,0005) declares.
//!
//! Every function takes the (0008,0005) value with its values joined by
//! '\\', as `IndexAttributes::specific_character_set` stores it. An empty
//! value means the default repertoire (ISO_IR 6).
//!
//! The defined terms of PS3.3 C.12.1.1.2 are supported. These are the
//! single-byte sets ISO_IR 6, 13, 100, 101, 109, 110, 126, 127, 138, 144, 148
//! and 166, then ISO_IR 192 (UTF-8), GB18030 and GBK. The ISO 2022 code
//! extensions cover those single-byte sets and ISO-IR 87, 159, 149 and 58.
//! Under code extensions, escape sequences switch sets within a value as
//! PS3.5 6.1.2.5 describes. Control characters and value delimiters ('\\',
//! plus '^' and '=' in person names) return to the sets of value 1.
//!
//! Decode a whole value, all its values together, and split the result on
//! '\\' afterwards: in GB18030, GBK and the two-byte ISO 2022 sets, the byte
//! 0x5C can be part of a character.
//!
//! # Example
//!
//! ```
//! use tessera_dicom::charset;
//!
//! // PS3.5 Annex H: a Japanese name in romaji, kanji and hiragana.
//! let raw = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\
//!             \x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
//! let name = charset::decode_person_name("\\ISO 2022 IR 87", raw).unwrap();
//! assert_eq!(name, "Yamada^Tarou=山田^太郎=やまだ^たろう");
//!
//! let encoded = charset::encode_person_name("\\ISO 2022 IR 87", &name).unwrap();
//! assert_eq!(encoded, raw);
//! ```

mod decode;
mod encode;
mod repertoire;
mod terms;

use dicom_core::VR;
use encoding_rs::{Encoding, GB18030, GBK};

use crate::error::DicomError;
use decode::{Invalid, Iso2022Decoder, OnInvalid};
use encode::Iso2022Encoder;
use terms::CharacterSet;

/// The bytes that return the code elements to the sets of value 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delimiters {
    /// '\\' between values.
    Values,
    /// '\\' between values, '^' between name components and '=' between
    /// component groups.
    PersonName,
}

impl Delimiters {
    fn for_vr(vr: VR) -> Self {
        if vr == VR::PN {
            Delimiters::PersonName
        } else {
            Delimiters::Values
        }
    }

    fn contains(self, byte: u8) -> bool {
        match self {
            Delimiters::Values => byte == b'\\',
            Delimiters::PersonName => matches!(byte, b'\\' | b'^' | b'='),
        }
    }
}

/// Decodes a value of a text VR other than PN (SH, LO, ST, LT, UC, UT, CS,
/// ...).
///
/// # Errors
///
/// [`DicomError::UnsupportedCharacterSet`] when a value of
/// `specific_character_set` is not a defined term, and
/// [`DicomError::InvalidText`] with the byte offset when `raw` contains a
/// byte sequence that the declared sets do not define.
pub fn decode_text(specific_character_set: &str, raw: &[u8]) -> Result<String, DicomError> {
    decode_value(specific_character_set, VR::LO, raw)
}

/// Decodes a PN value, whose component groups (alphabetic, ideographic,
/// phonetic) may each switch character sets. Errors as for [`decode_text`].
pub fn decode_person_name(specific_character_set: &str, raw: &[u8]) -> Result<String, DicomError> {
    decode_value(specific_character_set, VR::PN, raw)
}

/// Decodes a value of the given VR. Errors as for [`decode_text`].
pub fn decode_value(
    specific_character_set: &str,
    vr: VR,
    raw: &[u8],
) -> Result<String, DicomError> {
    let set = CharacterSet::parse(specific_character_set)?;

    decode_with(&set, Delimiters::for_vr(vr), raw, OnInvalid::Fail).map_err(|invalid| {
        DicomError::InvalidText {
            character_set: specific_character_set.to_owned(),
            offset: invalid.offset,
            reason: invalid.reason,
        }
    })
}

/// Decodes a value without failing: each undecodable byte becomes U+FFFD,
/// and an unsupported `specific_character_set` is read as the default
/// repertoire, so only ASCII survives.
///
/// For callers that must keep a value they cannot fully read, such as an
/// index entry for an instance from a misconfigured modality.
pub fn decode_value_lossy(specific_character_set: &str, vr: VR, raw: &[u8]) -> String {
    let set = CharacterSet::parse(specific_character_set)
        .or_else(|_| CharacterSet::parse(""))
        .expect("the default repertoire always parses");

    decode_with(&set, Delimiters::for_vr(vr), raw, OnInvalid::Replace)
        .expect("replacement decoding never fails")
}

/// Encodes a value of a text VR other than PN.
///
/// # Errors
///
/// [`DicomError::UnsupportedCharacterSet`] as for [`decode_text`], and
/// [`DicomError::UnencodableCharacter`] for the first character that none
/// of the declared sets contains.
pub fn encode_text(specific_character_set: &str, text: &str) -> Result<Vec<u8>, DicomError> {
    encode_value(specific_character_set, VR::LO, text)
}

/// Encodes a PN value. Under code extensions, the sets of value 1 are
/// designated again before each '^', '=' and '\\', as PS3.5 6.1.2.5.3
/// requires. Errors as for [`encode_text`].
pub fn encode_person_name(specific_character_set: &str, text: &str) -> Result<Vec<u8>, DicomError> {
    encode_value(specific_character_set, VR::PN, text)
}

/// Encodes a value of the given VR. Errors as for [`encode_text`].
pub fn encode_value(
    specific_character_set: &str,
    vr: VR,
    text: &str,
) -> Result<Vec<u8>, DicomError> {
    let set = CharacterSet::parse(specific_character_set)?;

    encode_with(&set, Delimiters::for_vr(vr), text).map_err(|character| {
        DicomError::UnencodableCharacter {
            character,
            character_set: specific_character_set.to_owned(),
        }
    })
}

fn decode_with(
    set: &CharacterSet,
    delimiters: Delimiters,
    raw: &[u8],
    on_invalid: OnInvalid,
) -> Result<String, Invalid> {
    match set {
        CharacterSet::SingleByte { g0, g1 } => {
            let initial = terms::Designations { g0: *g0, g1: *g1 };
            Iso2022Decoder::new(raw, initial, &[], delimiters).run(on_invalid)
        }
        CharacterSet::Extended { initial, declared } => {
            Iso2022Decoder::new(raw, *initial, declared, delimiters).run(on_invalid)
        }
        CharacterSet::Utf8 => decode_whole(encoding_rs::UTF_8, raw, on_invalid),
        CharacterSet::Gb18030 => decode_whole(GB18030, raw, on_invalid),
        CharacterSet::Gbk => decode_gbk(raw, on_invalid),
    }
}

/// Decodes GBK, the two-byte subset of GB18030. encoding_rs decodes GBK
/// labels as full GB18030, so four-byte sequences are rejected here first.
fn decode_gbk(raw: &[u8], on_invalid: OnInvalid) -> Result<String, Invalid> {
    let four_byte = four_byte_sequence_offset(raw);

    match four_byte {
        Some(offset) if on_invalid == OnInvalid::Fail => Err(Invalid {
            offset,
            reason: "four-byte GB18030 sequence, which GBK does not define".to_owned(),
        }),
        _ => decode_whole(GBK, raw, on_invalid),
    }
}

/// Finds the first four-byte GB18030 sequence: a lead byte (0x81..=0xFE)
/// followed by a digit (0x30..=0x39).
fn four_byte_sequence_offset(raw: &[u8]) -> Option<usize> {
    let mut offset = 0;

    while offset < raw.len() {
        if raw[offset] < 0x81 || raw[offset] == 0xFF {
            offset += 1;
            continue;
        }
        if raw
            .get(offset + 1)
            .is_some_and(|byte| byte.is_ascii_digit())
        {
            return Some(offset);
        }
        offset += 2;
    }

    None
}

fn encode_with(set: &CharacterSet, delimiters: Delimiters, text: &str) -> Result<Vec<u8>, char> {
    match set {
        CharacterSet::SingleByte { g0, g1 } => {
            let initial = terms::Designations { g0: *g0, g1: *g1 };
            Iso2022Encoder::new(initial, &[], delimiters).run(text)
        }
        CharacterSet::Extended { initial, declared } => {
            Iso2022Encoder::new(*initial, declared, delimiters).run(text)
        }
        CharacterSet::Utf8 => Ok(text.as_bytes().to_vec()),
        CharacterSet::Gb18030 => encode_whole(GB18030, text),
        CharacterSet::Gbk => encode_whole(GBK, text),
    }
}

/// Decodes with an encoding that needs no escape handling, reporting the
/// offset of the first malformed sequence.
fn decode_whole(
    encoding: &'static Encoding,
    raw: &[u8],
    on_invalid: OnInvalid,
) -> Result<String, Invalid> {
    if on_invalid == OnInvalid::Replace {
        return Ok(encoding.decode_without_bom_handling(raw).0.into_owned());
    }
    if let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(raw) {
        return Ok(text.into_owned());
    }

    Err(Invalid {
        offset: malformed_offset(encoding, raw),
        reason: format!("malformed {} byte sequence", encoding.name()),
    })
}

/// Finds where the first malformed sequence of `raw` starts.
fn malformed_offset(encoding: &'static Encoding, raw: &[u8]) -> usize {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut output = String::with_capacity(raw.len() * 3 + 16);

    let (result, read) = decoder.decode_to_string_without_replacement(raw, &mut output, true);
    match result {
        encoding_rs::DecoderResult::Malformed(length, consumed_after) => {
            read.saturating_sub(usize::from(length) + usize::from(consumed_after))
        }
        _ => raw.len(),
    }
}

fn encode_whole(encoding: &'static Encoding, text: &str) -> Result<Vec<u8>, char> {
    let mut encoder = encoding.new_encoder();
    let mut output = vec![0; text.len() * 4 + 16];

    let (result, read, written) =
        encoder.encode_from_utf8_without_replacement(text, &mut output, true);
    match result {
        encoding_rs::EncoderResult::Unmappable(character) => Err(character),
        _ => {
            debug_assert!(read == text.len());
            output.truncate(written);
            Ok(output)
        }
    }
}
