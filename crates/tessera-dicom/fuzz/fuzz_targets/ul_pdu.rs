//! The upper layer PDU reader of dicom-ul, as the DIMSE listener calls it on
//! one complete frame: any bytes must yield a PDU or an error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = dicom_ul::pdu::MAXIMUM_PDU_SIZE;
    let _ = dicom_ul::read_pdu(data, max, false);
    let _ = dicom_ul::read_pdu(data, 16_384, true);
});
