//! Decodes arbitrary bytes under arbitrary SpecificCharacterSet values.
//! Decoding must return rather than panic, lossy decoding must always
//! succeed, and text that decodes strictly must encode and decode back to
//! the same text.

#![no_main]

use dicom_core::VR;
use libfuzzer_sys::fuzz_target;
use tessera_dicom::{charset, DicomError};

/// SpecificCharacterSet values that cover every code path, picked by the
/// first input byte. The rest of the input is the value to decode.
const TERMS: &[&str] = &[
    "",
    "ISO_IR 100",
    "ISO_IR 13",
    "ISO_IR 148",
    "ISO_IR 166",
    "ISO_IR 192",
    "GB18030",
    "GBK",
    "\\ISO 2022 IR 87",
    "ISO 2022 IR 13\\ISO 2022 IR 87\\ISO 2022 IR 159",
    "\\ISO 2022 IR 149",
    "\\ISO 2022 IR 58",
    "ISO 2022 IR 100\\ISO 2022 IR 144\\ISO 2022 IR 126",
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, raw)) = data.split_first() else {
        return;
    };
    let term = TERMS[usize::from(*selector) % TERMS.len()];
    let vr = if selector & 0x80 == 0 { VR::LO } else { VR::PN };

    let _ = charset::decode_value_lossy(term, vr, raw);

    let Ok(text) = charset::decode_value(term, vr, raw) else {
        return;
    };
    let encoded = match charset::encode_value(term, vr, &text) {
        Ok(encoded) => encoded,
        // encoding_rs decodes GB18030 0xA3 0xA0 to U+E5E5 but, following
        // the WHATWG Encoding Standard, never encodes U+E5E5.
        Err(DicomError::UnencodableCharacter {
            character: '\u{E5E5}',
            ..
        }) => return,
        Err(error) => panic!("decoded text does not encode: {error}"),
    };
    let decoded = charset::decode_value(term, vr, &encoded).expect("encoded text decodes");
    assert_eq!(decoded, text);
});
