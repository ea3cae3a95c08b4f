//! Decoding of values under ISO 2022 code extensions (PS3.5 6.1.2.5) and of
//! single-byte sets, which are the same state machine without escapes.

use super::repertoire::{Element, Repertoire};
use super::terms::Designations;
use super::Delimiters;

const ESC: u8 = 0x1B;

/// Handling of a byte sequence that the character sets cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnInvalid {
    Fail,
    Replace,
}

/// An undecodable byte sequence: its offset in the value and why it failed.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

/// Decodes a value byte by byte. G0 covers 0x21..=0x7E and G1 covers
/// 0xA0..=0xFF, each as one-byte or two-byte codes of its repertoire.
pub(crate) struct Iso2022Decoder<'a> {
    raw: &'a [u8],
    position: usize,
    initial: Designations,
    current: Designations,
    /// Repertoires that escape sequences may designate. Empty when ESC is
    /// an ordinary control character.
    declared: &'a [Repertoire],
    delimiters: Delimiters,
    output: String,
}

impl<'a> Iso2022Decoder<'a> {
    /// Prepares to decode `raw`. With no `declared` repertoires, ESC is an
    /// ordinary control character and the designations never change.
    pub(crate) fn new(
        raw: &'a [u8],
        initial: Designations,
        declared: &'a [Repertoire],
        delimiters: Delimiters,
    ) -> Self {
        Iso2022Decoder {
            raw,
            position: 0,
            initial,
            current: initial,
            declared,
            delimiters,
            output: String::with_capacity(raw.len()),
        }
    }

    pub(crate) fn run(mut self, on_invalid: OnInvalid) -> Result<String, Invalid> {
        while self.position < self.raw.len() {
            let Err(invalid) = self.step() else {
                continue;
            };
            if on_invalid == OnInvalid::Fail {
                return Err(invalid);
            }

            self.output.push(char::REPLACEMENT_CHARACTER);
            self.position = invalid.offset + 1;
        }

        Ok(self.output)
    }

    fn step(&mut self) -> Result<(), Invalid> {
        let byte = self.raw[self.position];

        match byte {
            ESC if !self.declared.is_empty() => self.designate(),
            0x00..=0x20 | 0x7F => {
                self.push_single(byte);
                Ok(())
            }
            0x21..=0x7E => self.decode_g0(byte),
            0x80..=0xFF => self.decode_g1(byte),
        }
    }

    /// Applies the escape sequence at the current position.
    fn designate(&mut self) -> Result<(), Invalid> {
        let rest = &self.raw[self.position + 1..];
        let Some((repertoire, length)) = Repertoire::from_escape(rest) else {
            let escape_bytes: Vec<String> =
                rest.iter().take(3).map(|b| format!("{b:02X}")).collect();
            return Err(self.invalid(format!(
                "escape sequence 1B {} designates no character set of PS3.3 C.12.1.1.2",
                escape_bytes.join(" ")
            )));
        };

        // Only declared sets may be designated. ESC ( B is accepted anyway
        // because it returns G0 to the default repertoire.
        if repertoire != Repertoire::Ascii && !self.declared.contains(&repertoire) {
            return Err(self.invalid(format!(
                "escape sequence designates {}, which SpecificCharacterSet does not declare",
                repertoire.name()
            )));
        }

        match repertoire.element() {
            Element::G0 => self.current.g0 = repertoire,
            Element::G1 => self.current.g1 = Some(repertoire),
        }
        self.position += 1 + length;
        Ok(())
    }

    fn decode_g0(&mut self, byte: u8) -> Result<(), Invalid> {
        let repertoire = self.current.g0;
        if !repertoire.is_two_byte() {
            self.push_single(byte);
            return Ok(());
        }

        self.decode_pair(repertoire, 0x21..=0x7E)
    }

    fn decode_g1(&mut self, byte: u8) -> Result<(), Invalid> {
        let Some(repertoire) = self.current.g1 else {
            return Err(self.invalid(format!(
                "byte 0x{byte:02X} is outside the declared character sets"
            )));
        };

        if repertoire.is_two_byte() {
            return self.decode_pair(repertoire, 0xA1..=0xFE);
        }

        // C1 controls, which every ISO 8859 part places at 0x80..=0x9F.
        let decoded = match (byte, repertoire) {
            (0x80..=0x9F, Repertoire::Latin(_)) => char::from_u32(u32::from(byte)),
            _ => repertoire.decode_high_byte(byte),
        };
        let Some(character) = decoded else {
            return Err(self.invalid(format!(
                "byte 0x{byte:02X} is not a character of {}",
                repertoire.name()
            )));
        };

        self.output.push(character);
        self.position += 1;
        Ok(())
    }

    fn decode_pair(
        &mut self,
        repertoire: Repertoire,
        range: std::ops::RangeInclusive<u8>,
    ) -> Result<(), Invalid> {
        let first = self.raw[self.position];
        let second = self.raw.get(self.position + 1).copied();

        let Some(second) = second.filter(|byte| range.contains(byte)) else {
            return Err(self.invalid(format!(
                "byte 0x{first:02X} starts a two-byte {} character that is cut short",
                repertoire.name()
            )));
        };
        let Some(character) = repertoire.decode_pair(first, second) else {
            return Err(self.invalid(format!(
                "bytes 0x{first:02X} 0x{second:02X} are not a character of {}",
                repertoire.name()
            )));
        };

        self.output.push(character);
        self.position += 2;
        Ok(())
    }

    /// Emits a byte of a one-byte G0 set or a control character. Control
    /// characters and value delimiters return G0 and G1 to the sets of
    /// value 1 (PS3.5 6.1.2.5.3).
    fn push_single(&mut self, byte: u8) {
        self.output.push(char::from(byte));
        self.position += 1;

        let resets = byte < 0x20 || self.delimiters.contains(byte);
        if resets {
            self.current = self.initial;
        }
    }

    fn invalid(&self, reason: String) -> Invalid {
        Invalid {
            offset: self.position,
            reason,
        }
    }
}
