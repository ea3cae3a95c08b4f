//! Encoding of values under ISO 2022 code extensions and of single-byte sets.

use super::repertoire::{Element, Repertoire};
use super::terms::Designations;
use super::Delimiters;

const ESC: u8 = 0x1B;

/// Encodes characters with the fewest switches that a greedy choice gives:
/// a character stays in the current G0 or G1 set when it can, and otherwise
/// goes to the first declared repertoire that contains it.
pub(crate) struct Iso2022Encoder<'a> {
    initial: Designations,
    current: Designations,
    declared: &'a [Repertoire],
    delimiters: Delimiters,
    output: Vec<u8>,
}

impl<'a> Iso2022Encoder<'a> {
    /// Prepares an encoder. An empty `declared` list allows no escape
    /// sequences, so only the initial designations are used.
    pub(crate) fn new(
        initial: Designations,
        declared: &'a [Repertoire],
        delimiters: Delimiters,
    ) -> Self {
        Iso2022Encoder {
            initial,
            current: initial,
            declared,
            delimiters,
            output: Vec::new(),
        }
    }

    /// Encodes `text`, or returns the first character that none of the
    /// repertoires contains.
    pub(crate) fn run(mut self, text: &str) -> Result<Vec<u8>, char> {
        for character in text.chars() {
            self.push(character)?;
        }

        self.return_to_initial();
        Ok(self.output)
    }

    fn push(&mut self, character: char) -> Result<(), char> {
        let is_control = u32::from(character) < 0x20 || character == '\u{7F}';
        let is_delimiter = u8::try_from(character).is_ok_and(|b| self.delimiters.contains(b));

        if is_control || is_delimiter {
            // PS3.5 6.1.2.5.3: the sets of value 1 must be active again
            // before a delimiter or control character.
            self.return_to_initial();
            self.output.push(character as u8);
            return Ok(());
        }
        if character == ' ' {
            self.output.push(b' ');
            return Ok(());
        }

        self.push_graphic(character)
    }

    fn push_graphic(&mut self, character: char) -> Result<(), char> {
        let active = [Some(self.current.g0), self.current.g1];
        for repertoire in active.into_iter().flatten() {
            if let Some(bytes) = repertoire.encode_char(character) {
                self.output.extend_from_slice(&bytes);
                return Ok(());
            }
        }

        for repertoire in self.declared {
            if let Some(bytes) = repertoire.encode_char(character) {
                self.designate(*repertoire);
                self.output.extend_from_slice(&bytes);
                return Ok(());
            }
        }

        Err(character)
    }

    fn designate(&mut self, repertoire: Repertoire) {
        self.output.push(ESC);
        self.output.extend_from_slice(repertoire.escape());

        match repertoire.element() {
            Element::G0 => self.current.g0 = repertoire,
            Element::G1 => self.current.g1 = Some(repertoire),
        }
    }

    /// Designates the sets of value 1 again. When value 1 leaves G1 empty, a
    /// later G1 designation stays: no byte below 0x80 can invoke it.
    fn return_to_initial(&mut self) {
        if self.current.g0 != self.initial.g0 {
            self.designate(self.initial.g0);
        }
        if let Some(g1) = self.initial.g1.filter(|g1| self.current.g1 != Some(*g1)) {
            self.designate(g1);
        }

        self.current = self.initial;
    }
}
