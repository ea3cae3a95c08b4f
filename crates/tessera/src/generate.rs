//! `tessera generate`: deterministic multi-series studies for demos, tests
//! and benchmarks. The same seed and sizes always give the same bytes.
//! CT-only studies are the default, and `--mix` writes a modality mix sized
//! in megabytes (see [`mix`]).

mod mix;

use std::path::PathBuf;

use clap::Args;
use dicom_core::value::C;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// The `tessera generate` command line: the CT-only study flags, and the
/// mix flags that replace them when `--mix` is given.
#[derive(Args, Clone)]
pub struct GenerateCommand {
    #[command(flatten)]
    pub studies: GenerateArgs,
    #[command(flatten)]
    pub mix: mix::MixArgs,
}

#[derive(Args, Clone)]
pub struct GenerateArgs {
    /// Output folder.
    #[arg(long, short)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 2)]
    pub patients: u32,
    #[arg(long, default_value_t = 2)]
    pub studies_per_patient: u32,
    #[arg(long, default_value_t = 3)]
    pub series_per_study: u32,
    #[arg(long, default_value_t = 5)]
    pub instances_per_series: u32,
    /// Rows and columns of each CT image.
    #[arg(long, default_value_t = 128)]
    pub size: u16,
}

/// Patient names, some outside ASCII, written as UTF-8 (ISO_IR 192).
const NAMES: [&str; 6] = [
    "DOE^JANE",
    "MÜLLER^JÜRGEN",
    "GARCÍA^JOSÉ",
    "山田^太郎",
    "SMITH^JOHN^A",
    "ØSTERGÅRD^SØREN",
];

pub fn run(command: GenerateCommand) -> anyhow::Result<std::process::ExitCode> {
    let args = &command.studies;
    let files = if command.mix.mix {
        mix::generate(&args.out, args.seed, &command.mix)?
    } else {
        generate(args)?
    };
    println!(
        "wrote {} instances under {}",
        files.len(),
        args.out.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Writes the studies and returns the files in order.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<Vec<PathBuf>> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut files = Vec::new();
    for patient in 0..args.patients {
        for study in 0..args.studies_per_patient {
            let context = StudyContext::new(args, patient, study, &mut rng);
            for series in 0..args.series_per_study {
                for instance in 0..args.instances_per_series {
                    let path = write_instance(args, &context, series, instance, &mut rng)?;
                    files.push(path);
                }
            }
        }
    }
    Ok(files)
}

/// Derives a UID under the 2.25 root (PS3.5 B.2) from the seed and a path.
fn uid(seed: u64, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_be_bytes());
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[0] &= 0x7f;
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

struct StudyContext {
    seed: u64,
    patient_id: String,
    patient_name: String,
    birth_date: String,
    study_uid: String,
    study_date: String,
    accession: String,
    key: String,
}

impl StudyContext {
    fn new(args: &GenerateArgs, patient: u32, study: u32, rng: &mut ChaCha8Rng) -> Self {
        let key = format!("p{patient}s{study}");
        let day = rng.gen_range(1..=28);
        let month = rng.gen_range(1..=12);
        Self {
            seed: args.seed,
            patient_id: format!("TS{:06}", args.seed * 1000 + u64::from(patient)),
            patient_name: NAMES[(patient as usize + args.seed as usize) % NAMES.len()].to_string(),
            birth_date: format!("19{:02}0{}15", 40 + patient % 50, 1 + patient % 9),
            study_uid: uid(args.seed, &["study", &key]),
            study_date: format!("2024{month:02}{day:02}"),
            accession: format!("A{}{:04}", args.seed, patient * 100 + study),
            key,
        }
    }
}

fn write_instance(
    args: &GenerateArgs,
    study: &StudyContext,
    series: u32,
    instance: u32,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<PathBuf> {
    let series_key = format!("{}r{series}", study.key);
    let series_uid = uid(study.seed, &["series", &series_key]);
    let sop_uid = uid(
        study.seed,
        &["instance", &series_key, &instance.to_string()],
    );
    let modality = "CT";

    let mut object = InMemDicomObject::new_empty();
    let text = |object: &mut InMemDicomObject, tag, vr, value: &str| {
        object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    };
    text(
        &mut object,
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        "ISO_IR 192",
    );
    text(
        &mut object,
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::CT_IMAGE_STORAGE,
    );
    text(&mut object, tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
    text(&mut object, tags::STUDY_DATE, VR::DA, &study.study_date);
    text(&mut object, tags::STUDY_TIME, VR::TM, "083000");
    text(
        &mut object,
        tags::ACCESSION_NUMBER,
        VR::SH,
        &study.accession,
    );
    text(&mut object, tags::MODALITY, VR::CS, modality);
    text(
        &mut object,
        tags::STUDY_DESCRIPTION,
        VR::LO,
        "GENERATED CT CHEST",
    );
    text(
        &mut object,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &format!("AXIAL {series}"),
    );
    text(&mut object, tags::PATIENT_NAME, VR::PN, &study.patient_name);
    text(&mut object, tags::PATIENT_ID, VR::LO, &study.patient_id);
    text(
        &mut object,
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        &study.birth_date,
    );
    text(
        &mut object,
        tags::PATIENT_SEX,
        VR::CS,
        if series % 2 == 0 { "F" } else { "M" },
    );
    text(
        &mut object,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        &study.study_uid,
    );
    text(&mut object, tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
    text(&mut object, tags::STUDY_ID, VR::SH, "1");
    text(
        &mut object,
        tags::SERIES_NUMBER,
        VR::IS,
        &(series + 1).to_string(),
    );
    text(
        &mut object,
        tags::INSTANCE_NUMBER,
        VR::IS,
        &(instance + 1).to_string(),
    );
    text(
        &mut object,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    let number = |object: &mut InMemDicomObject, tag, value: u16| {
        object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    };
    number(&mut object, tags::SAMPLES_PER_PIXEL, 1);
    number(&mut object, tags::ROWS, args.size);
    number(&mut object, tags::COLUMNS, args.size);
    number(&mut object, tags::BITS_ALLOCATED, 16);
    number(&mut object, tags::BITS_STORED, 12);
    number(&mut object, tags::HIGH_BIT, 11);
    number(&mut object, tags::PIXEL_REPRESENTATION, 0);
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U8(C::from_vec(pixels(args.size, instance, rng))),
    ));

    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
        .media_storage_sop_instance_uid(&sop_uid);
    let file = object.with_meta(meta)?;
    let dir = args.out.join(&study.key).join(format!("series-{series}"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{instance:04}.dcm"));
    file.write_to_file(&path)?;
    Ok(path)
}

/// Draws a 12-bit phantom: a disc that moves with the slice, plus noise.
fn pixels(size: u16, slice: u32, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let n = size as i32;
    let centre = n / 2 + (slice as i32 % 7) - 3;
    let mut bytes = Vec::with_capacity((n * n * 2) as usize);
    for y in 0..n {
        for x in 0..n {
            let inside = (x - centre).pow(2) + (y - n / 2).pow(2) < (n / 3).pow(2);
            let base: u16 = if inside { 1800 } else { 200 };
            let value = base + rng.gen_range(0..64);
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    bytes
}
