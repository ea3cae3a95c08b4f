//! The coded character sets that DICOM designates with ISO 2022 escape
//! sequences, with the conversion of single characters in and out of them.
//!
//! The code tables come from `encoding_rs`: a two-byte set is reached through
//! the EUC form that embeds it (EUC-JP for JIS X 0208 and JIS X 0212, EUC-KR
//! for KS X 1001, GBK for GB 2312), and a 96-character set through the ISO
//! 8859 part or Windows code page that agrees with it on bytes 0xA0 to 0xFF.

use std::collections::HashMap;
use std::sync::OnceLock;

use encoding_rs::{
    Encoding, EUC_JP, EUC_KR, GBK, ISO_8859_2, ISO_8859_3, ISO_8859_4, ISO_8859_5, ISO_8859_6,
    ISO_8859_7, ISO_8859_8, SHIFT_JIS, WINDOWS_1254, WINDOWS_874,
};

/// Prefix of a JIS X 0212 character in EUC-JP (single shift 3).
const EUC_JP_SS3: u8 = 0x8F;

/// A coded character set that a code element G0 or G1 can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repertoire {
    /// ISO-IR 6, US-ASCII, in G0.
    Ascii,
    /// ISO-IR 14, the JIS X 0201 Roman set, in G0.
    ///
    /// It differs from ASCII only at 0x5C (YEN SIGN) and 0x7E (OVERLINE).
    /// Both bytes decode as in ASCII, as pydicom and DCMTK do, because 0x5C
    /// is also the DICOM value delimiter.
    JisRoman,
    /// ISO-IR 13, the JIS X 0201 Katakana set, in G1.
    Katakana,
    /// The right half of a single-byte set (ISO-IR 100 to 166), in G1.
    Latin(LatinSet),
    /// ISO-IR 87, JIS X 0208 kanji and kana, two bytes in G0.
    JisX0208,
    /// ISO-IR 159, JIS X 0212 supplementary kanji, two bytes in G0.
    JisX0212,
    /// ISO-IR 149, KS X 1001 hangul and hanja, two bytes in G1.
    KsX1001,
    /// ISO-IR 58, GB 2312 simplified Chinese, two bytes in G1.
    Gb2312,
}

/// The right halves of the ISO 8859 parts and TIS 620 that DICOM names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LatinSet {
    /// ISO-IR 100, ISO 8859-1, which maps each byte to the code point of
    /// the same number, so it needs no table.
    Latin1,
    /// One of the other parts, decoded through `encoding_rs`.
    Table(&'static Encoding),
}

/// The code element that a repertoire is designated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Element {
    G0,
    G1,
}

impl Repertoire {
    pub(crate) fn element(self) -> Element {
        match self {
            Repertoire::Ascii | Repertoire::JisRoman | Repertoire::JisX0208 => Element::G0,
            Repertoire::JisX0212 => Element::G0,
            Repertoire::Katakana | Repertoire::Latin(_) => Element::G1,
            Repertoire::KsX1001 | Repertoire::Gb2312 => Element::G1,
        }
    }

    pub(crate) fn is_two_byte(self) -> bool {
        matches!(
            self,
            Repertoire::JisX0208 | Repertoire::JisX0212 | Repertoire::KsX1001 | Repertoire::Gb2312
        )
    }

    /// Name used in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Repertoire::Ascii => "ISO-IR 6 (ASCII)",
            Repertoire::JisRoman => "ISO-IR 14 (JIS X 0201 Roman)",
            Repertoire::Katakana => "ISO-IR 13 (JIS X 0201 Katakana)",
            Repertoire::Latin(LatinSet::Latin1) => "ISO-IR 100 (ISO 8859-1)",
            Repertoire::Latin(LatinSet::Table(encoding)) => encoding.name(),
            Repertoire::JisX0208 => "ISO-IR 87 (JIS X 0208)",
            Repertoire::JisX0212 => "ISO-IR 159 (JIS X 0212)",
            Repertoire::KsX1001 => "ISO-IR 149 (KS X 1001)",
            Repertoire::Gb2312 => "ISO-IR 58 (GB 2312)",
        }
    }

    /// The escape sequence (without the leading ESC) that designates this
    /// repertoire, from PS3.3 Tables C.12-3 and C.12-4.
    pub(crate) fn escape(self) -> &'static [u8] {
        match self {
            Repertoire::Ascii => b"(B",
            Repertoire::JisRoman => b"(J",
            Repertoire::Katakana => b")I",
            Repertoire::Latin(set) => latin_escape(set),
            Repertoire::JisX0208 => b"$B",
            Repertoire::JisX0212 => b"$(D",
            Repertoire::KsX1001 => b"$)C",
            Repertoire::Gb2312 => b"$)A",
        }
    }

    /// Finds the repertoire that an escape sequence designates. `rest` starts
    /// after the ESC byte. Returns the repertoire and the sequence length
    /// without ESC.
    pub(crate) fn from_escape(rest: &[u8]) -> Option<(Repertoire, usize)> {
        ALL_ESCAPES
            .iter()
            .find(|repertoire| rest.starts_with(repertoire.escape()))
            .map(|repertoire| (*repertoire, repertoire.escape().len()))
    }

    /// Decodes one byte (0xA0..=0xFF) of a single-byte G1 set.
    pub(crate) fn decode_high_byte(self, byte: u8) -> Option<char> {
        match self {
            Repertoire::Katakana if (0xA1..=0xDF).contains(&byte) => {
                decode_single(SHIFT_JIS, &[byte])
            }
            Repertoire::Latin(LatinSet::Latin1) => Some(char::from(byte)),
            Repertoire::Latin(LatinSet::Table(encoding)) => decode_single(encoding, &[byte]),
            _ => None,
        }
    }

    /// Decodes one two-byte character. The bytes are given as they appear in
    /// the value: 0x21..=0x7E for a G0 set, 0xA1..=0xFE for a G1 set.
    pub(crate) fn decode_pair(self, first: u8, second: u8) -> Option<char> {
        let high = [first | 0x80, second | 0x80];
        if !high.iter().all(|byte| (0xA1..=0xFE).contains(byte)) {
            return None;
        }

        match self {
            Repertoire::JisX0208 => decode_single(EUC_JP, &high),
            Repertoire::JisX0212 => decode_single(EUC_JP, &[EUC_JP_SS3, high[0], high[1]]),
            Repertoire::KsX1001 => decode_single(EUC_KR, &high),
            Repertoire::Gb2312 => decode_single(GBK, &high),
            _ => None,
        }
    }

    /// Encodes a character into this repertoire, as the bytes that follow
    /// its designation: 7-bit bytes for G0 sets, 8-bit bytes for G1 sets.
    pub(crate) fn encode_char(self, character: char) -> Option<Vec<u8>> {
        let encoded = match self {
            Repertoire::Ascii | Repertoire::JisRoman => {
                return (character.is_ascii_graphic()).then(|| vec![character as u8]);
            }
            Repertoire::Katakana => encode_single(SHIFT_JIS, character)
                .filter(|bytes| matches!(bytes[..], [0xA1..=0xDF])),
            Repertoire::Latin(set) => encode_latin(set, character),
            Repertoire::JisX0208 => encode_high_pair(EUC_JP, character),
            Repertoire::JisX0212 => jis_x0212_reverse()
                .get(&character)
                .map(|pair| pair.to_vec()),
            Repertoire::KsX1001 => encode_high_pair(EUC_KR, character),
            Repertoire::Gb2312 => encode_high_pair(GBK, character),
        }?;

        match self.element() {
            Element::G0 => Some(encoded.iter().map(|byte| byte & 0x7F).collect()),
            Element::G1 => Some(encoded),
        }
    }
}

/// Every repertoire that has an escape sequence, for escape lookup.
const ALL_ESCAPES: &[Repertoire] = &[
    Repertoire::Ascii,
    Repertoire::JisRoman,
    Repertoire::Katakana,
    Repertoire::Latin(LatinSet::Latin1),
    Repertoire::Latin(LatinSet::Table(ISO_8859_2)),
    Repertoire::Latin(LatinSet::Table(ISO_8859_3)),
    Repertoire::Latin(LatinSet::Table(ISO_8859_4)),
    Repertoire::Latin(LatinSet::Table(ISO_8859_5)),
    Repertoire::Latin(LatinSet::Table(ISO_8859_6)),
    Repertoire::Latin(LatinSet::Table(ISO_8859_7)),
    Repertoire::Latin(LatinSet::Table(ISO_8859_8)),
    Repertoire::Latin(LatinSet::Table(WINDOWS_1254)),
    Repertoire::Latin(LatinSet::Table(WINDOWS_874)),
    Repertoire::JisX0208,
    Repertoire::JisX0212,
    Repertoire::KsX1001,
    Repertoire::Gb2312,
];

/// Returns the right half of the single-byte set that an ISO-IR number names.
///
/// ISO 8859-9 (ISO-IR 148) and TIS 620 (ISO-IR 166) are read through
/// windows-1254 and windows-874, which agree with them on 0xA0 to 0xFF.
/// The callers handle 0x80 to 0x9F, where they differ, as C1 controls.
pub(crate) fn latin_set(iso_ir: u16) -> Option<LatinSet> {
    let encoding = match iso_ir {
        100 => return Some(LatinSet::Latin1),
        101 => ISO_8859_2,
        109 => ISO_8859_3,
        110 => ISO_8859_4,
        144 => ISO_8859_5,
        127 => ISO_8859_6,
        126 => ISO_8859_7,
        138 => ISO_8859_8,
        148 => WINDOWS_1254,
        166 => WINDOWS_874,
        _ => return None,
    };
    Some(LatinSet::Table(encoding))
}

fn latin_escape(set: LatinSet) -> &'static [u8] {
    let LatinSet::Table(encoding) = set else {
        return b"-A";
    };

    match encoding.name() {
        "ISO-8859-2" => b"-B",
        "ISO-8859-3" => b"-C",
        "ISO-8859-4" => b"-D",
        "ISO-8859-5" => b"-L",
        "ISO-8859-6" => b"-G",
        "ISO-8859-7" => b"-F",
        "ISO-8859-8" => b"-H",
        "windows-1254" => b"-M",
        _ => b"-T",
    }
}

/// Decodes bytes that must form exactly one character.
fn decode_single(encoding: &'static Encoding, bytes: &[u8]) -> Option<char> {
    let text = encoding.decode_without_bom_handling_and_without_replacement(bytes)?;
    let mut characters = text.chars();

    let character = characters.next()?;
    characters.next().is_none().then_some(character)
}

fn encode_single(encoding: &'static Encoding, character: char) -> Option<Vec<u8>> {
    let mut buffer = [0; 4];
    let (bytes, _, had_errors) = encoding.encode(character.encode_utf8(&mut buffer));

    (!had_errors).then(|| bytes.into_owned())
}

/// Encodes into a two-byte EUC form whose bytes are both in 0xA1..=0xFE,
/// which excludes the single-byte and four-byte forms of the encoding.
fn encode_high_pair(encoding: &'static Encoding, character: char) -> Option<Vec<u8>> {
    encode_single(encoding, character)
        .filter(|bytes| bytes.len() == 2 && bytes.iter().all(|byte| (0xA1..=0xFE).contains(byte)))
}

/// Encodes into a G1 byte. C1 controls (U+0080 to U+009F) keep their
/// number, as in every ISO 8859 part.
fn encode_latin(set: LatinSet, character: char) -> Option<Vec<u8>> {
    let code = u32::from(character);
    if (0x80..=0x9F).contains(&code) {
        return Some(vec![code as u8]);
    }

    let byte = match set {
        LatinSet::Latin1 => u8::try_from(code).ok().filter(|byte| *byte >= 0xA0),
        LatinSet::Table(encoding) => match encode_single(encoding, character)?[..] {
            [byte] if byte >= 0xA0 => Some(byte),
            _ => None,
        },
    }?;
    Some(vec![byte])
}

/// Maps characters to JIS X 0212 byte pairs (with the high bit set).
///
/// encoding_rs decodes JIS X 0212 in EUC-JP but never encodes into it, so
/// the reverse map is built once by decoding all 94 x 94 positions.
fn jis_x0212_reverse() -> &'static HashMap<char, [u8; 2]> {
    static REVERSE: OnceLock<HashMap<char, [u8; 2]>> = OnceLock::new();

    REVERSE.get_or_init(|| {
        let mut reverse = HashMap::new();
        for first in 0xA1..=0xFE_u8 {
            for second in 0xA1..=0xFE_u8 {
                if let Some(character) = decode_single(EUC_JP, &[EUC_JP_SS3, first, second]) {
                    reverse.entry(character).or_insert([first, second]);
                }
            }
        }
        reverse
    })
}
