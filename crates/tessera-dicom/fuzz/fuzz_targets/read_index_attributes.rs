//! Feeds arbitrary bytes to the Part 10 reader, which must return an error
//! rather than panic on any input.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tessera_dicom::read_index_attributes(data);
});
