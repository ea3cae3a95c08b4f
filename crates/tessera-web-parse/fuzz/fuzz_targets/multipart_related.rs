//! Feeds arbitrary bytes to the multipart/related reader: the first line is
//! taken as the Content-Type header and the rest as the body. Every input
//! must end in parts or an error, never a panic.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let header = String::from_utf8_lossy(&data[..split]);
    let body = Bytes::copy_from_slice(data.get(split + 1..).unwrap_or_default());

    let Ok(boundary) = tessera_web_parse::related_boundary(&header, "application/dicom") else {
        return;
    };
    let _ = futures::executor::block_on(tessera_web_parse::read_all_parts(body, &boundary));
});
