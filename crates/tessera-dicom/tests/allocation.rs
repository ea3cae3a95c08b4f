//! Peak heap allocation of the Part 10 reader on malformed input.
//!
//! This is a test binary of its own because it installs a counting global
//! allocator, which would otherwise measure every other test too. The tests
//! take a lock so that only one of them allocates at a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use tessera_dicom::{
    check_lengths, read_index_attributes, read_index_attributes_from, DicomError, MAX_NESTING_DEPTH,
};

/// Wraps the system allocator, tracking the bytes in use and their peak.
struct CountingAllocator;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            record_allocation(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            record_allocation(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
            record_allocation(new_size);
        }
        moved
    }
}

fn record_allocation(size: usize) {
    let in_use = IN_USE.fetch_add(size, Ordering::SeqCst) + size;
    PEAK.fetch_max(in_use, Ordering::SeqCst);
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes the lock even after another test failed while holding it.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` and returns its result with the peak number of heap bytes
/// allocated above what was in use when it started.
fn peak_allocation<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let baseline = IN_USE.load(Ordering::SeqCst);
    PEAK.store(baseline, Ordering::SeqCst);

    let result = work();

    let peak = PEAK.load(Ordering::SeqCst);
    (result, peak.saturating_sub(baseline))
}

const ONE_MIB: usize = 1 << 20;

/// The largest 32-bit length that is not the undefined length 0xFFFFFFFF.
const FOUR_GIB: u32 = 0xFFFF_FFFE;

/// Builds a Part 10 file with the three UIDs the index needs, then one
/// OB element whose length field claims `declared` bytes, followed by
/// `present` bytes only.
fn file_declaring(declared: u32, present: usize, transfer_syntax: &str) -> Vec<u8> {
    let dataset = InMemDicomObject::from_element_iter([
        DataElement::new(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE),
        DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3"),
    ]);
    let meta = FileMetaTableBuilder::new().transfer_syntax(transfer_syntax);
    let file = dataset.with_meta(meta).expect("meta group builds");

    let mut bytes = Vec::new();
    file.write_all(&mut bytes).expect("file writes to memory");
    bytes.extend_from_slice(&oversized_element(declared, present));
    bytes
}

/// Encodes (0009,1010) OB in Explicit VR Little Endian.
fn oversized_element(declared: u32, present: usize) -> Vec<u8> {
    let mut element = vec![0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0];
    element.extend_from_slice(&declared.to_le_bytes());
    element.resize(element.len() + present, 0xAB);
    element
}

#[test]
fn four_gib_length_in_small_file_is_rejected() {
    let _lock = one_at_a_time();
    let bytes = file_declaring(FOUR_GIB, 8, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    assert!(bytes.len() < 400, "file is {} bytes", bytes.len());

    let (result, peak) = peak_allocation(|| read_index_attributes(&bytes));

    let error = result.unwrap_err();
    let DicomError::LengthExceedsInput {
        tag,
        declared,
        remaining,
    } = error
    else {
        panic!("expected LengthExceedsInput, got {error:?}");
    };
    assert_eq!(tag, dicom_core::Tag(0x0009, 0x1010));
    assert_eq!(declared, FOUR_GIB);
    assert_eq!(remaining, 8);
    assert!(peak < ONE_MIB, "peak allocation {peak} bytes");
}

#[test]
fn four_gib_length_in_stream_is_rejected() {
    let _lock = one_at_a_time();
    let bytes = file_declaring(FOUR_GIB, 8, uids::EXPLICIT_VR_LITTLE_ENDIAN);

    let (result, peak) = peak_allocation(|| read_index_attributes_from(bytes.as_slice()));

    let error = result.unwrap_err();
    assert!(
        matches!(error, DicomError::LengthExceedsInput { remaining: 8, .. }),
        "{error:?}"
    );
    assert!(peak < ONE_MIB, "peak allocation {peak} bytes");
}

#[test]
fn four_gib_length_in_implicit_vr_is_rejected() {
    let _lock = one_at_a_time();
    let mut bytes = file_declaring(0, 0, uids::IMPLICIT_VR_LITTLE_ENDIAN);
    let element_start = bytes.len() - 12;
    bytes.truncate(element_start);
    // Implicit VR: tag, then a 4-byte length.
    bytes.extend_from_slice(&[0x09, 0x00, 0x10, 0x10]);
    bytes.extend_from_slice(&FOUR_GIB.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);

    let (result, peak) = peak_allocation(|| read_index_attributes(&bytes));

    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            DicomError::LengthExceedsInput {
                declared: FOUR_GIB,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(peak < ONE_MIB, "peak allocation {peak} bytes");
}

#[test]
fn four_gib_length_in_deflated_data_set_is_rejected() {
    let _lock = one_at_a_time();
    let bytes = deflated_file_declaring(FOUR_GIB, 8);

    let (result, peak) = peak_allocation(|| read_index_attributes(&bytes));

    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            DicomError::LengthExceedsInput {
                declared: FOUR_GIB,
                remaining: 8,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(peak < ONE_MIB, "peak allocation {peak} bytes");
}

#[test]
fn four_gib_length_in_big_endian_is_rejected() {
    let _lock = one_at_a_time();
    let mut bytes = file_declaring(0, 0, "1.2.840.10008.1.2.2");
    bytes.truncate(bytes.len() - 12);
    // (0009,1010) OB with the group, element and length big-endian.
    bytes.extend_from_slice(&[0x00, 0x09, 0x10, 0x10, b'O', b'B', 0, 0]);
    bytes.extend_from_slice(&FOUR_GIB.to_be_bytes());
    bytes.extend_from_slice(&[0; 8]);

    let (result, peak) = peak_allocation(|| read_index_attributes(&bytes));

    let error = result.unwrap_err();
    assert!(
        matches!(
            error,
            DicomError::LengthExceedsInput {
                declared: FOUR_GIB,
                remaining: 8,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(peak < ONE_MIB, "peak allocation {peak} bytes");
}

#[test]
fn four_gib_length_in_nested_item_is_rejected() {
    let _lock = one_at_a_time();
    let mut bytes = file_with_sop_uids_only();
    append_nested_sequences(&mut bytes, 2, false);
    bytes.extend_from_slice(&oversized_element(FOUR_GIB, 8));

    let (result, peak) = peak_allocation(|| read_index_attributes(&bytes));

    let error = result.unwrap_err();
    let DicomError::LengthExceedsInput { tag, declared, .. } = error else {
        panic!("expected LengthExceedsInput, got {error:?}");
    };
    assert_eq!(tag, dicom_core::Tag(0x0009, 0x1010));
    assert_eq!(declared, FOUR_GIB);
    assert!(peak < ONE_MIB, "peak allocation {peak} bytes");
}

/// dicom-object reads encapsulated Pixel Data nested in a sequence, such as
/// an icon image, even though it stops before the root-level Pixel Data.
#[test]
fn four_gib_fragment_in_nested_pixel_data_is_rejected() {
    let _lock = one_at_a_time();
    let mut bytes = file_with_sop_uids_only();
    // (0088,0200) Icon Image Sequence and one item, both of undefined length.
    bytes.extend_from_slice(&[
        0x88, 0x00, 0x00, 0x02, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    // Encapsulated (7FE0,0010), an empty offset table, then a fragment.
    bytes.extend_from_slice(&[
        0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
    bytes.extend_from_slice(&FOUR_GIB.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);

    let (result, peak) = peak_allocation(|| read_index_attributes(&bytes));

    let error = result.unwrap_err();
    let DicomError::LengthExceedsInput { tag, declared, .. } = error else {
        panic!("expected LengthExceedsInput, got {error:?}");
    };
    assert_eq!(tag, dicom_core::Tag(0xFFFE, 0xE000));
    assert_eq!(declared, FOUR_GIB);
    assert!(peak < ONE_MIB, "peak allocation {peak} bytes");
}

/// Builds a Deflated Explicit VR Little Endian file whose inflated data set
/// ends with the oversized element.
fn deflated_file_declaring(declared: u32, present: usize) -> Vec<u8> {
    let plain = file_declaring(declared, present, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let deflated_uid = uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN;
    let meta_only = file_declaring(0, 0, deflated_uid);

    // The meta group ends where the data set of the plain file starts,
    // which is where both files first differ in length.
    let meta_length = meta_group_length(&meta_only);
    let data_set = &plain[meta_group_length(&plain)..];

    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data_set).unwrap();

    let mut bytes = meta_only[..meta_length].to_vec();
    bytes.extend_from_slice(&encoder.finish().unwrap());
    bytes
}

/// Returns the offset of the first byte after the file meta group.
fn meta_group_length(file: &[u8]) -> usize {
    let group_length = u32::from_le_bytes(file[140..144].try_into().unwrap());
    144 + group_length as usize
}

/// Appends `depth` nested sequences of undefined length, each with one item
/// of undefined length, and closes them when `close` is set.
fn append_nested_sequences(bytes: &mut Vec<u8>, depth: usize, close: bool) {
    for _ in 0..depth {
        // (0040,A730) Content Sequence, SQ, undefined length.
        bytes.extend_from_slice(&[0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0]);
        bytes.extend_from_slice(&[0xFF; 4]);
        // Item, undefined length.
        bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    }
    if !close {
        return;
    }
    for _ in 0..depth {
        // Item delimitation, then sequence delimitation.
        bytes.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    }
}

/// Returns a file with the SOP UIDs and no other element.
fn file_with_sop_uids_only() -> Vec<u8> {
    let mut bytes = file_declaring(0, 0, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    bytes.truncate(bytes.len() - 12);
    bytes
}

#[test]
fn deeply_nested_sequences_are_rejected() {
    let _lock = one_at_a_time();
    let mut bytes = file_with_sop_uids_only();
    append_nested_sequences(&mut bytes, MAX_NESTING_DEPTH + 1, true);

    let error = read_index_attributes(&bytes).unwrap_err();

    assert!(
        matches!(error, DicomError::NestingTooDeep { .. }),
        "{error:?}"
    );
}

/// The deepest nesting that the check lets through must not overflow the
/// stack of a test thread (2 MiB by default) in dicom-object's recursion.
#[test]
fn nesting_at_limit_is_parsed() {
    let _lock = one_at_a_time();
    let mut bytes = file_with_sop_uids_only();
    append_nested_sequences(&mut bytes, MAX_NESTING_DEPTH, true);

    let error = read_index_attributes(&bytes).unwrap_err();

    // The data set parses. It lacks the study and series UIDs.
    assert!(
        matches!(error, DicomError::MissingAttribute { .. }),
        "{error:?}"
    );
}

#[test]
fn pydicom_samples_stay_within_allocation_bound() {
    let _lock = one_at_a_time();
    let directory = pydicom_test_files();
    let mut checked = 0;

    for entry in std::fs::read_dir(&directory).expect("pydicom test files are readable") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "dcm") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();

        let (_, check_peak) = peak_allocation(|| check_lengths(bytes.as_slice(), None));
        let (_, read_peak) = peak_allocation(|| read_index_attributes(&bytes));

        // The length check buffers nothing but the inflater's window and a
        // few headers. The reader copies the bytes before Pixel Data and
        // builds dicom-object's tree of them; 8 times the file size is a
        // loose bound for that, far below the gigabytes that declared
        // lengths could claim.
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            check_peak < ONE_MIB,
            "{name}: length check peak {check_peak} bytes"
        );
        assert!(
            read_peak < 8 * bytes.len() + ONE_MIB,
            "{name}: reader peak {read_peak} bytes for {} bytes",
            bytes.len()
        );
        checked += 1;
    }

    assert!(checked > 50, "only {checked} pydicom samples found");
}

/// Locates pydicom's test files as the `it` tests do.
fn pydicom_test_files() -> std::path::PathBuf {
    if let Some(directory) = std::env::var_os("TESSERA_PYDICOM_DIR") {
        return directory.into();
    }

    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import pydicom, os; \
             print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))",
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .unwrap_or_else(|| {
            panic!(
                "pydicom test files not found: run `pip install pydicom`, \
                 or set TESSERA_PYDICOM_DIR to a copy of pydicom/data/test_files"
            )
        });
    String::from_utf8_lossy(&output.stdout).trim().into()
}
