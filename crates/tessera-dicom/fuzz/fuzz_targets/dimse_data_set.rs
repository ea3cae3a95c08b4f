//! Command sets and identifiers as the DIMSE listener reads them: any input
//! must decode or fail with an error, in both little endian encodings, and
//! what decodes must survive an encode and decode round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_dicom::dimse::{DataSet, Encoding};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::ImplicitLittle, Encoding::ExplicitLittle] {
        let Ok(set) = DataSet::parse(data, encoding) else {
            continue;
        };
        let encoded = set.encode(encoding);
        let again = DataSet::parse(&encoded, encoding).expect("encoded data set decodes");
        assert_eq!(again.elements.len(), set.elements.len());
    }
});
