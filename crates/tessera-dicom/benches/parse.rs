//! Cost of reading the index attributes of one Part 10 file, and of the
//! length check that runs before dicom-rs allocates anything.
//!
//! Built in the dev profile (`cargo test --workspace --benches --no-run`),
//! so this crate's code runs unoptimised while dicom-rs runs at opt-level 2.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dicom_core::value::C;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// Writes a CT instance of `rows` x `rows` 16-bit pixels with the attributes
/// that a modality sends, as Explicit VR Little Endian.
fn ct_instance(rows: u16) -> Vec<u8> {
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let number = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    let pixels = vec![0x5au8; usize::from(rows) * usize::from(rows) * 2];
    let dataset = InMemDicomObject::from_element_iter([
        text(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
        text(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE),
        text(tags::SOP_INSTANCE_UID, VR::UI, "2.25.1001.1.1"),
        text(tags::STUDY_DATE, VR::DA, "20240215"),
        text(tags::STUDY_TIME, VR::TM, "101500"),
        text(tags::ACCESSION_NUMBER, VR::SH, "AX100000042"),
        text(tags::MODALITY, VR::CS, "CT"),
        text(tags::STUDY_DESCRIPTION, VR::LO, "CT CHEST ABDOMEN"),
        text(tags::SERIES_DESCRIPTION, VR::LO, "CT 1"),
        text(tags::PATIENT_NAME, VR::PN, "MÜLLER^JÜRGEN"),
        text(tags::PATIENT_ID, VR::LO, "MX1-000042"),
        text(tags::PATIENT_BIRTH_DATE, VR::DA, "19650412"),
        text(tags::PATIENT_SEX, VR::CS, "M"),
        text(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.1001"),
        text(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.1001.1"),
        text(tags::STUDY_ID, VR::SH, "1"),
        text(tags::SERIES_NUMBER, VR::IS, "1"),
        text(tags::INSTANCE_NUMBER, VR::IS, "1"),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        number(tags::SAMPLES_PER_PIXEL, 1),
        number(tags::ROWS, rows),
        number(tags::COLUMNS, rows),
        number(tags::BITS_ALLOCATED, 16),
        number(tags::BITS_STORED, 12),
        number(tags::HIGH_BIT, 11),
        number(tags::PIXEL_REPRESENTATION, 0),
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U8(C::from_vec(pixels)),
        ),
    ]);
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
        .media_storage_sop_instance_uid("2.25.1001.1.1");
    let mut bytes = Vec::new();
    dataset
        .with_meta(meta)
        .expect("the meta group is complete")
        .write_all(&mut bytes)
        .expect("writing to memory cannot fail");
    bytes
}

fn parse(c: &mut Criterion) {
    for rows in [16u16, 512] {
        let file = ct_instance(rows);
        let mut group = c.benchmark_group(format!("dicom/ct_{rows}x{rows}"));
        group.throughput(Throughput::Elements(1));

        group.bench_function("read_index_attributes", |b| {
            b.iter(|| tessera_dicom::read_index_attributes(black_box(&file)).expect("valid file"))
        });
        group.bench_function("check_lengths", |b| {
            b.iter(|| {
                let size = Some(file.len() as u64);
                tessera_dicom::check_lengths(black_box(file.as_slice()), size).expect("valid file")
            })
        });
        group.finish();
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
