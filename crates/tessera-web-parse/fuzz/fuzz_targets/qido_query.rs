//! Feeds arbitrary query strings and Accept headers to the QIDO-RS and
//! media-type parsers, which must return an error rather than panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let _ = tessera_web_parse::QidoQuery::parse(&text);
    let _ = tessera_web_parse::parse_accept(&text);
});
