//! Parsing of the sample files that ship with pydicom.
//!
//! The directory comes from `TESSERA_PYDICOM_DIR`, or else from the installed
//! pydicom package. Expected values were read from the files with pydicom
//! 3.0.2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tessera_dicom::{read_index_attributes, DicomError, IndexAttributes};

const FIND_TEST_FILES: &str = "import pydicom, os; \
     print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))";

/// Files that must parse.
const EXPECTED_TO_PARSE: &[&str] = &[
    "693_J2KI.dcm",
    "CT_small.dcm",
    "ExplVR_BigEnd.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG-lossy.dcm",
    "JPEG2000-embedded-sequence-delimiter.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
    // Cut inside Pixel Data, which is never read.
    "MR_truncated.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_32bit.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_jpeg2k.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "examples_ybr_color.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "liver_expb_1frame.dcm",
    "reportsi.dcm",
    "reportsi_with_empty_number_tags.dcm",
    // Every attribute is stored with VR UN.
    "rtdose_rle.dcm",
    "rtdose_rle_1frame.dcm",
    "test-SR.dcm",
    "waveform_ecg.dcm",
];

/// The error each file that must fail is rejected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    NotPart10,
    Missing(&'static str),
    Truncated,
    LengthExceedsInput,
    InvalidFileMeta,
    SopInstanceUidMismatch,
}

const EXPECTED_TO_FAIL: &[(&str, Rejection)] = &[
    // Raw data sets without preamble and meta group.
    ("ExplVR_BigEndNoMeta.dcm", Rejection::NotPart10),
    ("ExplVR_LitEndNoMeta.dcm", Rejection::NotPart10),
    ("no_meta.dcm", Rejection::NotPart10),
    ("rtstruct.dcm", Rejection::NotPart10),
    // Pixel data samples stripped of their study and series.
    (
        "JPEGLSNearLossless_08.dcm",
        Rejection::Missing("StudyInstanceUID"),
    ),
    (
        "JPEGLSNearLossless_16.dcm",
        Rejection::Missing("StudyInstanceUID"),
    ),
    (
        "SC_rgb_jls_lossy_line.dcm",
        Rejection::Missing("StudyInstanceUID"),
    ),
    (
        "SC_rgb_jls_lossy_sample.dcm",
        Rejection::Missing("StudyInstanceUID"),
    ),
    // Data sets reduced to a few private or charset attributes.
    ("empty_charset_LEI.dcm", Rejection::Missing("SOPClassUID")),
    ("nested_priv_SQ.dcm", Rejection::Missing("SOPClassUID")),
    ("priv_SQ.dcm", Rejection::Missing("SOPInstanceUID")),
    // Declares JPEG Baseline (explicit VR) but encodes the data set in
    // implicit VR, so the explicit VR reader takes length bytes for a VR and
    // finds a length of 1.2 GB.
    ("SC_rgb_jpeg.dcm", Rejection::LengthExceedsInput),
    // A sequence stored as UN with undefined length, which dicom-rs 0.10
    // reads as a value of length 0xE000FFFE in a 674-byte file.
    ("UN_sequence.dcm", Rejection::LengthExceedsInput),
    ("rtplan_truncated.dcm", Rejection::LengthExceedsInput),
    ("meta_missing_tsyntax.dcm", Rejection::InvalidFileMeta),
    // dicom-rs 0.10 requires FileMetaInformationGroupLength, a Type 1 attribute.
    ("no_meta_group_length.dcm", Rejection::InvalidFileMeta),
    // pydicom samples whose SOPInstanceUID was edited without the meta group.
    ("badVR.dcm", Rejection::SopInstanceUidMismatch),
    ("rtdose.dcm", Rejection::SopInstanceUidMismatch),
    ("rtdose_1frame.dcm", Rejection::SopInstanceUidMismatch),
    ("rtdose_expb.dcm", Rejection::SopInstanceUidMismatch),
    ("rtdose_expb_1frame.dcm", Rejection::SopInstanceUidMismatch),
    ("rtplan.dcm", Rejection::SopInstanceUidMismatch),
];

fn rejection_of(error: &DicomError) -> Option<Rejection> {
    match error {
        DicomError::NotPart10 => Some(Rejection::NotPart10),
        DicomError::MissingAttribute { keyword } => Some(Rejection::Missing(keyword)),
        DicomError::Truncated { .. } => Some(Rejection::Truncated),
        DicomError::LengthExceedsInput { .. } => Some(Rejection::LengthExceedsInput),
        DicomError::InvalidFileMeta { .. } => Some(Rejection::InvalidFileMeta),
        DicomError::SopInstanceUidMismatch { .. } => Some(Rejection::SopInstanceUidMismatch),
        _ => None,
    }
}

/// Locates pydicom's test files, failing the test when they cannot be found.
pub fn test_files_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();

    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("TESSERA_PYDICOM_DIR") {
            return PathBuf::from(dir);
        }

        let output = Command::new("python3")
            .args(["-c", FIND_TEST_FILES])
            .output();
        match output {
            Ok(output) if output.status.success() => {
                PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
            }
            _ => panic!(
                "pydicom test files not found: run `pip install pydicom`, \
                 or set TESSERA_PYDICOM_DIR to a copy of pydicom/data/test_files"
            ),
        }
    })
}

fn parse(name: &str) -> Result<IndexAttributes, DicomError> {
    let path = test_files_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; the expectations were written for pydicom 3.0.2",
            path.display()
        )
    });
    read_index_attributes(&bytes)
}

fn parse_ok(name: &str) -> IndexAttributes {
    parse(name).unwrap_or_else(|error| panic!("{name} should parse: {error}"))
}

type CorpusResults = BTreeMap<String, Result<IndexAttributes, DicomError>>;

/// Parses every `*.dcm` file in the directory once, keyed by file name.
fn parse_all() -> &'static CorpusResults {
    static RESULTS: OnceLock<CorpusResults> = OnceLock::new();

    RESULTS.get_or_init(|| {
        let entries = std::fs::read_dir(test_files_dir()).expect("pydicom test files are readable");

        entries
            .map(|entry| entry.expect("directory entry is readable").path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "dcm"))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let bytes = std::fs::read(&path).expect("test file is readable");
                (name, read_index_attributes(&bytes))
            })
            .collect()
    })
}

#[test]
fn corpus_outcomes_match_expectations() {
    let results = parse_all();
    let parsed = results.values().filter(|result| result.is_ok()).count();
    eprintln!(
        "pydicom corpus: {parsed} parsed, {} rejected, of {} files",
        results.len() - parsed,
        results.len()
    );
    for (name, result) in results {
        if let Err(error) = result {
            eprintln!("  {name}: {error}");
        }
    }

    for name in EXPECTED_TO_PARSE {
        let result = results
            .get(*name)
            .unwrap_or_else(|| panic!("{name} is missing"));

        assert!(
            result.is_ok(),
            "{name} should parse: {:?}",
            result.as_ref().err()
        );
    }

    for (name, expected) in EXPECTED_TO_FAIL {
        let result = results
            .get(*name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        let error = result.as_ref().err();

        assert_eq!(
            error.and_then(rejection_of),
            Some(*expected),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn corpus_has_no_unexpected_files() {
    let results = parse_all();
    let known: Vec<&str> = EXPECTED_TO_PARSE
        .iter()
        .copied()
        .chain(EXPECTED_TO_FAIL.iter().map(|(name, _)| *name))
        .collect();

    let unknown: Vec<&String> = results
        .keys()
        .filter(|name| !known.contains(&name.as_str()))
        .collect();

    assert!(
        unknown.is_empty(),
        "new pydicom sample files, add them to the expectations: {unknown:?}"
    );
}

#[test]
fn ct_small_yields_known_attributes() {
    let attributes = parse_ok("CT_small.dcm");

    assert_eq!(attributes.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
    assert_eq!(
        attributes.sop_instance_uid,
        "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    );
    assert_eq!(
        attributes.study_instance_uid,
        "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    );
    assert_eq!(
        attributes.series_instance_uid,
        "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
    );
    assert_eq!(attributes.transfer_syntax_uid, "1.2.840.10008.1.2.1");
    assert_eq!(attributes.specific_character_set, "ISO_IR 100");
    assert_eq!(attributes.patient_id, "1CT1");
    assert_eq!(attributes.patient_name, "CompressedSamples^CT1");
    assert_eq!(attributes.patient_sex, "O");
    assert_eq!(attributes.study_date, "20040119");
    assert_eq!(attributes.study_time, "072730");
    assert_eq!(attributes.study_id, "1CT1");
    assert_eq!(attributes.study_description, "e+1");
    assert_eq!(attributes.modality, "CT");
    assert_eq!(attributes.series_number, "1");
    assert_eq!(attributes.instance_number, "1");
    assert_eq!(attributes.rows, 128);
    assert_eq!(attributes.columns, 128);
    assert_eq!(attributes.number_of_frames, 1);
}

#[test]
fn mr_small_yields_known_attributes() {
    let attributes = parse_ok("MR_small.dcm");

    assert_eq!(attributes.sop_class_uid, "1.2.840.10008.5.1.4.1.1.4");
    assert_eq!(
        attributes.study_instance_uid,
        "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"
    );
    assert_eq!(attributes.patient_name, "CompressedSamples^MR1");
    assert_eq!(attributes.modality, "MR");
    assert_eq!(attributes.specific_character_set, "");
    assert_eq!(attributes.rows, 64);
}

#[test]
fn mr_small_encodings_agree() {
    let reference = parse_ok("MR_small.dcm");
    let variants = [
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ];

    for name in variants {
        let attributes = parse_ok(name);

        assert_eq!(
            attributes.sop_instance_uid, reference.sop_instance_uid,
            "{name}"
        );
        assert_eq!(attributes.patient_name, reference.patient_name, "{name}");
        assert_eq!(attributes.study_time, reference.study_time, "{name}");
        assert_eq!(attributes.rows, reference.rows, "{name}");
    }
}

#[test]
fn big_endian_file_yields_known_attributes() {
    let attributes = parse_ok("MR_small_bigendian.dcm");

    assert_eq!(attributes.transfer_syntax_uid, "1.2.840.10008.1.2.2");
    assert_eq!(
        attributes.series_instance_uid,
        "1.3.6.1.4.1.5962.1.3.4.1.20040826185059.5457"
    );
    assert_eq!(attributes.columns, 64);
}

#[test]
fn jpeg2000_file_yields_known_attributes() {
    let attributes = parse_ok("JPEG2000.dcm");

    assert_eq!(attributes.transfer_syntax_uid, "1.2.840.10008.1.2.4.91");
    assert_eq!(
        attributes.sop_instance_uid,
        "1.3.6.1.4.1.5962.1.1.8.1.3.20040826185059.5457"
    );
    assert_eq!(
        attributes.study_instance_uid,
        "1.3.6.1.4.1.5962.1.2.8.20040826185059.5457"
    );
    assert_eq!(attributes.study_description, "Whole Body Bone");
    assert_eq!(attributes.modality, "NM");
    assert_eq!(attributes.instance_number, "3");
    assert_eq!(attributes.number_of_frames, 1);
    assert_eq!(attributes.rows, 1024);
    assert_eq!(attributes.columns, 256);
}

#[test]
fn deflated_file_yields_known_attributes() {
    let attributes = parse_ok("image_dfl.dcm");

    assert_eq!(attributes.transfer_syntax_uid, "1.2.840.10008.1.2.1.99");
    assert_eq!(
        attributes.study_instance_uid,
        "1.3.6.1.4.1.5962.1.2.0.977067310.6001.0"
    );
    assert_eq!(attributes.patient_name, "^^^^");
    assert_eq!(attributes.modality, "OT");
    assert_eq!(attributes.rows, 512);
}

#[test]
fn multi_frame_file_counts_frames() {
    assert_eq!(parse_ok("SC_rgb_rle_2frame.dcm").number_of_frames, 2);
    assert_eq!(parse_ok("examples_ybr_color.dcm").number_of_frames, 30);
}

#[test]
fn utf8_file_yields_known_attributes() {
    let attributes = parse_ok("SC_rgb_rle_2frame.dcm");

    assert_eq!(attributes.specific_character_set, "ISO_IR 192");
    assert_eq!(attributes.patient_name, "Lestrade^G");
    assert_eq!(attributes.referring_physician_name, "Moriarty^James");
}

#[test]
fn legacy_date_format_is_kept_as_stored() {
    let attributes = parse_ok("ExplVR_BigEnd.dcm");

    assert_eq!(attributes.study_date, "1997.04.24");
    assert_eq!(attributes.study_time, "14:04:38");
}

#[test]
fn structured_report_has_no_frames() {
    let attributes = parse_ok("test-SR.dcm");

    assert_eq!(attributes.sop_class_uid, "1.2.840.10008.5.1.4.1.1.88.33");
    assert_eq!(attributes.number_of_frames, 0);
    assert_eq!(attributes.rows, 0);
}

#[test]
fn attributes_stored_as_unknown_vr_are_decoded() {
    let attributes = parse_ok("rtdose_rle.dcm");

    assert_eq!(attributes.sop_class_uid, "1.2.840.10008.5.1.4.1.1.481.2");
    assert_eq!(attributes.study_instance_uid, "1.2.999.999.99.9.9999.8888");
    assert_eq!(attributes.patient_name, "Lastname^Firstname");
    assert_eq!(attributes.modality, "RTDOSE");
    assert_eq!(attributes.number_of_frames, 15);
    assert_eq!(attributes.rows, 10);
    assert_eq!(attributes.columns, 10);
}

#[test]
fn file_without_preamble_is_not_part10() {
    let error = parse("no_meta.dcm").unwrap_err();

    assert!(matches!(error, DicomError::NotPart10), "{error:?}");
}

#[test]
fn edited_sop_instance_is_rejected() {
    let error = parse("rtplan.dcm").unwrap_err();

    let DicomError::SopInstanceUidMismatch { dataset, meta } = &error else {
        panic!("expected SopInstanceUidMismatch, got {error:?}");
    };
    assert_eq!(dataset, "1.2.777.777.77.7.7777.7777.20030903150023");
    assert_eq!(meta, "1.2.999.999.99.9.9999.9999.20030903150023");
}
