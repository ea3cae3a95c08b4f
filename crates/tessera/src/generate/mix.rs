//! `tessera generate --mix`: a corpus shaped like a hospital's daily intake,
//! sized in megabytes, for benchmarks.
//!
//! Studies draw their modality from a fixed weighting: CT (512x512, 16-bit),
//! MR (256x256, 16-bit, Implicit VR Little Endian), CR and DX (about
//! 2500x2000, 16-bit) and multi-frame ultrasound (640x480 RGB). Patient
//! names come from lists that include non-ASCII names, written as UTF-8
//! (ISO_IR 192). Everything derives from the seed, so a seed always gives
//! the same bytes.

use std::path::{Path, PathBuf};

use clap::Args;
use dicom_core::value::C;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::uid;

#[derive(Args, Clone, Debug, Default)]
pub struct MixArgs {
    /// Write a mix of CT, MR, CR, DX and multi-frame US studies, some in
    /// Implicit VR, instead of CT-only studies. The count and --size flags
    /// are then ignored.
    #[arg(long)]
    pub mix: bool,
    /// With --mix: stop once the files written reach this many megabytes
    /// (10^6 bytes).
    #[arg(long, value_name = "MB", default_value_t = 300)]
    pub total_mb: u64,
    /// With --mix: stop after this many studies, even below --total-mb.
    #[arg(long, value_name = "N")]
    pub max_studies: Option<u32>,
    /// With --mix: stop after this many instances, even within a study or
    /// below --total-mb. A smaller limit gives a prefix of the same corpus.
    #[arg(long, value_name = "N")]
    pub max_instances: Option<usize>,
    /// With --mix: write every image as 16x16 with one frame and at most two
    /// instances per series, keeping patients, studies and attributes. Fills
    /// a query index quickly.
    #[arg(long)]
    pub thumbnails: bool,
}

/// Geometry and encoding of the series of one modality.
struct Plan {
    modality: &'static str,
    sop_class: &'static str,
    description: &'static str,
    series: (u32, u32),
    instances: (u32, u32),
    rows: u16,
    columns: u16,
    frames: (u32, u32),
    rgb: bool,
    implicit_vr: bool,
    /// Relative frequency among studies.
    weight: u32,
}

const PLANS: [Plan; 5] = [
    Plan {
        modality: "CT",
        sop_class: uids::CT_IMAGE_STORAGE,
        description: "CT CHEST ABDOMEN",
        series: (1, 3),
        instances: (10, 30),
        rows: 512,
        columns: 512,
        frames: (1, 1),
        rgb: false,
        implicit_vr: false,
        weight: 35,
    },
    Plan {
        modality: "MR",
        sop_class: uids::MR_IMAGE_STORAGE,
        description: "MR BRAIN",
        series: (3, 5),
        instances: (16, 24),
        rows: 256,
        columns: 256,
        frames: (1, 1),
        rgb: false,
        implicit_vr: true,
        weight: 30,
    },
    Plan {
        modality: "CR",
        sop_class: uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
        description: "CR CHEST",
        series: (1, 2),
        instances: (1, 1),
        rows: 2048,
        columns: 2500,
        frames: (1, 1),
        rgb: false,
        implicit_vr: false,
        weight: 15,
    },
    Plan {
        modality: "DX",
        sop_class: uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        description: "DX KNEE",
        series: (1, 2),
        instances: (1, 1),
        rows: 2500,
        columns: 2000,
        frames: (1, 1),
        rgb: false,
        implicit_vr: false,
        weight: 10,
    },
    Plan {
        modality: "US",
        sop_class: uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
        description: "US ABDOMEN",
        series: (1, 1),
        instances: (1, 3),
        rows: 480,
        columns: 640,
        frames: (10, 20),
        rgb: true,
        implicit_vr: false,
        weight: 10,
    },
];

const FAMILY_NAMES: [&str; 24] = [
    "SMITH",
    "JOHNSON",
    "MÜLLER",
    "SCHMIDT",
    "GARCÍA",
    "MARTÍNEZ",
    "DUBOIS",
    "LEFÈVRE",
    "ROSSI",
    "BIANCHI",
    "NOWAK",
    "KOWALSKI",
    "JANSSEN",
    "PEETERS",
    "ØSTERGÅRD",
    "NIELSEN",
    "山田",
    "佐藤",
    "김",
    "O'BRIEN",
    "NGUYEN",
    "DOE",
    "ÅBERG",
    "SØRENSEN",
];

const GIVEN_NAMES: [&str; 16] = [
    "JANE", "JOHN", "JÜRGEN", "JOSÉ", "MARIE", "LUCA", "ANNA", "PIOTR", "SØREN", "太郎", "花子",
    "민준", "ÉLODIE", "PETER", "SARA", "OMAR",
];

/// Patient-level attributes shared by every study of one patient.
struct Patient {
    id: String,
    name: String,
    birth_date: String,
    sex: &'static str,
}

/// Study-level attributes and the folder the study is written to.
struct Study<'a> {
    seed: u64,
    patient: &'a Patient,
    key: String,
    uid: String,
    date: String,
    time: String,
    accession: String,
    plan: &'a Plan,
    thumbnails: bool,
}

/// Writes studies under `out` until the size or study limit is reached and
/// returns the files in order.
pub fn generate(out: &Path, seed: u64, args: &MixArgs) -> anyhow::Result<Vec<PathBuf>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let budget = args.total_mb.saturating_mul(1_000_000);
    let max_studies = args.max_studies.unwrap_or(u32::MAX);
    let max_instances = args.max_instances.unwrap_or(usize::MAX);
    let (mut files, mut bytes, mut studies) = (Vec::new(), 0u64, 0u32);

    let mut patient_number = 0u32;
    while bytes < budget && studies < max_studies && files.len() < max_instances {
        let patient = draw_patient(seed, patient_number, &mut rng);
        let study_count = rng.gen_range(1..=3).min(max_studies - studies);
        for index in 0..study_count {
            if bytes >= budget || files.len() >= max_instances {
                break;
            }
            let study = draw_study(seed, &patient, index, args.thumbnails, &mut rng);
            let room = max_instances - files.len();
            let written = write_study(out, &study, room, &mut rng)?;
            bytes += written.iter().map(|(_, size)| size).sum::<u64>();
            files.extend(written.into_iter().map(|(path, _)| path));
            studies += 1;
        }
        patient_number += 1;
    }
    Ok(files)
}

fn draw_patient(seed: u64, number: u32, rng: &mut ChaCha8Rng) -> Patient {
    let family = FAMILY_NAMES[rng.gen_range(0..FAMILY_NAMES.len())];
    let given = GIVEN_NAMES[rng.gen_range(0..GIVEN_NAMES.len())];
    Patient {
        id: format!("MX{seed}-{number:06}"),
        name: format!("{family}^{given}"),
        birth_date: draw_date(rng, 1930, 2015),
        sex: if rng.gen_bool(0.5) { "F" } else { "M" },
    }
}

fn draw_study<'a>(
    seed: u64,
    patient: &'a Patient,
    index: u32,
    thumbnails: bool,
    rng: &mut ChaCha8Rng,
) -> Study<'a> {
    let key = format!("{}/study-{index}", patient.id);
    let plan = draw_plan(rng);
    Study {
        seed,
        patient,
        uid: uid(seed, &["mix-study", &key]),
        date: draw_date(rng, 2019, 2025),
        time: format!(
            "{:02}{:02}{:02}",
            rng.gen_range(7..20),
            rng.gen_range(0..60),
            rng.gen_range(0..60)
        ),
        accession: format!("AX{}{:08}", seed, rng.gen_range(0..100_000_000u32)),
        key,
        plan,
        thumbnails,
    }
}

fn draw_plan(rng: &mut ChaCha8Rng) -> &'static Plan {
    let total: u32 = PLANS.iter().map(|p| p.weight).sum();
    let mut pick = rng.gen_range(0..total);
    for plan in &PLANS {
        if pick < plan.weight {
            return plan;
        }
        pick -= plan.weight;
    }
    unreachable!("pick is below the sum of the weights")
}

/// Draws a calendar date as YYYYMMDD between the first and last year.
/// Days stop at 28 so that every month has them.
fn draw_date(rng: &mut ChaCha8Rng, first_year: u32, last_year: u32) -> String {
    let year = rng.gen_range(first_year..=last_year);
    let month = rng.gen_range(1..=12);
    let day = rng.gen_range(1..=28);
    format!("{year}{month:02}{day:02}")
}

/// Writes every series of a study, or its first `room` instances, and
/// returns each file with its size.
fn write_study(
    out: &Path,
    study: &Study,
    room: usize,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<Vec<(PathBuf, u64)>> {
    let plan = study.plan;
    let series_count = rng.gen_range(plan.series.0..=plan.series.1);
    let mut files = Vec::new();
    for series in 0..series_count {
        let mut instances = rng.gen_range(plan.instances.0..=plan.instances.1);
        if study.thumbnails {
            instances = instances.min(2);
        }
        for instance in 0..instances {
            if files.len() == room {
                return Ok(files);
            }
            files.push(write_instance(out, study, series, instance, rng)?);
        }
    }
    Ok(files)
}

fn write_instance(
    out: &Path,
    study: &Study,
    series: u32,
    instance: u32,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<(PathBuf, u64)> {
    let plan = study.plan;
    let series_key = format!("{}/series-{series}", study.key);
    let series_uid = uid(study.seed, &["mix-series", &series_key]);
    let sop_uid = uid(
        study.seed,
        &["mix-instance", &series_key, &instance.to_string()],
    );

    let mut object = InMemDicomObject::new_empty();
    put_identity(&mut object, study, &series_uid, &sop_uid);
    put_series(&mut object, study, series, instance);
    put_image(&mut object, study, instance, rng);

    let transfer_syntax = if plan.implicit_vr {
        uids::IMPLICIT_VR_LITTLE_ENDIAN
    } else {
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    };
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(transfer_syntax)
        .media_storage_sop_class_uid(plan.sop_class)
        .media_storage_sop_instance_uid(&sop_uid);
    let file = object.with_meta(meta)?;

    let dir = out.join(&series_key);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{instance:04}.dcm"));
    file.write_to_file(&path)?;
    let size = std::fs::metadata(&path)?.len();
    Ok((path, size))
}

fn put_text(object: &mut InMemDicomObject, tag: dicom_core::Tag, vr: VR, value: &str) {
    object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn put_number(object: &mut InMemDicomObject, tag: dicom_core::Tag, value: u16) {
    object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

/// Puts the patient, study and SOP identity attributes. The character set
/// is declared only for names outside ASCII, as modalities do, so both kinds
/// appear.
fn put_identity(object: &mut InMemDicomObject, study: &Study, series_uid: &str, sop_uid: &str) {
    let patient = study.patient;
    if !patient.name.is_ascii() {
        put_text(object, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    }
    put_text(object, tags::SOP_CLASS_UID, VR::UI, study.plan.sop_class);
    put_text(object, tags::SOP_INSTANCE_UID, VR::UI, sop_uid);
    put_text(object, tags::STUDY_DATE, VR::DA, &study.date);
    put_text(object, tags::STUDY_TIME, VR::TM, &study.time);
    put_text(object, tags::ACCESSION_NUMBER, VR::SH, &study.accession);
    put_text(object, tags::MODALITY, VR::CS, study.plan.modality);
    put_text(
        object,
        tags::STUDY_DESCRIPTION,
        VR::LO,
        study.plan.description,
    );
    put_text(object, tags::PATIENT_NAME, VR::PN, &patient.name);
    put_text(object, tags::PATIENT_ID, VR::LO, &patient.id);
    put_text(
        object,
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        &patient.birth_date,
    );
    put_text(object, tags::PATIENT_SEX, VR::CS, patient.sex);
    put_text(object, tags::STUDY_INSTANCE_UID, VR::UI, &study.uid);
    put_text(object, tags::SERIES_INSTANCE_UID, VR::UI, series_uid);
    put_text(object, tags::STUDY_ID, VR::SH, "1");
}

fn put_series(object: &mut InMemDicomObject, study: &Study, series: u32, instance: u32) {
    let description = format!("{} {}", study.plan.modality, series + 1);
    put_text(object, tags::SERIES_DESCRIPTION, VR::LO, &description);
    put_text(
        object,
        tags::SERIES_NUMBER,
        VR::IS,
        &(series + 1).to_string(),
    );
    put_text(
        object,
        tags::INSTANCE_NUMBER,
        VR::IS,
        &(instance + 1).to_string(),
    );
}

/// Puts the image pixel attributes and the pixel data.
fn put_image(object: &mut InMemDicomObject, study: &Study, instance: u32, rng: &mut ChaCha8Rng) {
    let plan = study.plan;
    let (rows, columns, frames) = if study.thumbnails {
        (16, 16, 1)
    } else {
        let frames = rng.gen_range(plan.frames.0..=plan.frames.1);
        (plan.rows, plan.columns, frames)
    };

    if plan.rgb {
        put_text(object, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB");
        put_number(object, tags::SAMPLES_PER_PIXEL, 3);
        put_number(object, tags::PLANAR_CONFIGURATION, 0);
        put_number(object, tags::BITS_ALLOCATED, 8);
        put_number(object, tags::BITS_STORED, 8);
        put_number(object, tags::HIGH_BIT, 7);
    } else {
        put_text(
            object,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2",
        );
        put_number(object, tags::SAMPLES_PER_PIXEL, 1);
        put_number(object, tags::BITS_ALLOCATED, 16);
        put_number(object, tags::BITS_STORED, 12);
        put_number(object, tags::HIGH_BIT, 11);
    }
    if plan.frames.1 > 1 {
        put_text(object, tags::NUMBER_OF_FRAMES, VR::IS, &frames.to_string());
        put_text(object, tags::FRAME_TIME, VR::DS, "33.3");
    }
    put_number(object, tags::ROWS, rows);
    put_number(object, tags::COLUMNS, columns);
    put_number(object, tags::PIXEL_REPRESENTATION, 0);

    let pixels = if plan.rgb {
        rgb_frames(rows, columns, frames, rng)
    } else {
        grey_image(rows, columns, instance, rng)
    };
    let vr = if plan.rgb { VR::OB } else { VR::OW };
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        vr,
        PrimitiveValue::U8(C::from_vec(pixels)),
    ));
}

/// Draws a 12-bit phantom, little endian: a disc that moves with the slice
/// number, plus six bits of noise.
fn grey_image(rows: u16, columns: u16, slice: u32, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (rows, columns) = (i64::from(rows), i64::from(columns));
    let mut bytes = vec![0u8; (rows * columns * 2) as usize];
    rng.fill_bytes(&mut bytes);

    let centre_x = columns / 2 + i64::from(slice % 7) - 3;
    let centre_y = rows / 2;
    let radius_squared = (rows.min(columns) / 3).pow(2);
    for (index, pixel) in bytes.chunks_exact_mut(2).enumerate() {
        let (y, x) = (index as i64 / columns, index as i64 % columns);
        let inside = (x - centre_x).pow(2) + (y - centre_y).pow(2) < radius_squared;
        let base: u16 = if inside { 1800 } else { 200 };
        let value = base + u16::from(pixel[0] & 63);
        pixel.copy_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Draws RGB frames (interleaved samples): a grey fan on black with noise,
/// as an ultrasound sector looks.
fn rgb_frames(rows: u16, columns: u16, frames: u32, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let (rows, columns) = (i64::from(rows), i64::from(columns));
    let frame_pixels = (rows * columns) as usize;
    let mut bytes = vec![0u8; frame_pixels * 3 * frames as usize];
    rng.fill_bytes(&mut bytes);

    for (index, pixel) in bytes.chunks_exact_mut(3).enumerate() {
        let within_frame = (index % frame_pixels) as i64;
        let (y, x) = (within_frame / columns, within_frame % columns);
        let in_fan = (x - columns / 2).abs() < y;
        let level = if in_fan {
            64 + (pixel[0] >> 1)
        } else {
            pixel[0] >> 5
        };
        pixel.fill(level);
    }
    bytes
}
