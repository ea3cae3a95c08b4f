//! Feeds arbitrary bytes to the length check, which must return rather than
//! panic, and must agree with the reader: a file the check rejects is also
//! rejected by `read_index_attributes`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sized = tessera_dicom::check_lengths(data, Some(data.len() as u64));
    let streamed = tessera_dicom::check_lengths(data, None);

    if sized.is_err() || streamed.is_err() {
        assert!(tessera_dicom::read_index_attributes(data).is_err());
    }
});
