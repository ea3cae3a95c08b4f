//! SOP classes and transfer syntaxes that the listener negotiates.

pub use super::storage_classes::STORAGE_SOP_CLASSES;

pub const VERIFICATION: &str = "1.2.840.10008.1.1";
pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";
pub const STORAGE_COMMITMENT_PUSH: &str = "1.2.840.10008.1.20.1";
/// The well-known SOP instance of the Storage Commitment Push Model.
pub const STORAGE_COMMITMENT_PUSH_INSTANCE: &str = "1.2.840.10008.1.20.1.1";

pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

pub const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// Implementation Class UID of Tessera, a 2.25 UUID-derived UID (PS3.5 B.2).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.101013097471779490601018593843243999553";
pub const IMPLEMENTATION_VERSION_NAME: &str = "TESSERA_0_1";

/// Transfer syntaxes accepted for storage. Instances are stored exactly as
/// received, so any encoding that dicom-rs can read the header of will do.
pub const STORAGE_TRANSFER_SYNTAXES: &[&str] = &[
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    "1.2.840.10008.1.2.2",     // Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.1.99",  // Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  // JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  // JPEG Extended (Process 2 and 4)
    "1.2.840.10008.1.2.4.57",  // JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70",  // JPEG Lossless, First-Order Prediction (Process 14 SV1)
    "1.2.840.10008.1.2.4.80",  // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  // JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91",  // JPEG 2000
    "1.2.840.10008.1.2.4.92",  // JPEG 2000 Part 2 Multi-component Lossless Only
    "1.2.840.10008.1.2.4.93",  // JPEG 2000 Part 2 Multi-component
    "1.2.840.10008.1.2.4.201", // High-Throughput JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.202", // High-Throughput JPEG 2000 with RPCL Lossless Only
    "1.2.840.10008.1.2.4.203", // High-Throughput JPEG 2000
    "1.2.840.10008.1.2.5",     // RLE Lossless
    "1.2.840.10008.1.2.4.100", // MPEG2 Main Profile / Main Level
    "1.2.840.10008.1.2.4.102", // MPEG-4 AVC/H.264 High Profile / Level 4.1
    "1.2.840.10008.1.2.4.107", // HEVC/H.265 Main Profile / Level 5.1
];

/// Transfer syntaxes accepted for verification, query, retrieve and
/// storage commitment, whose bodies this node decodes itself.
pub const SERVICE_TRANSFER_SYNTAXES: &[&str] =
    &[EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN];

/// Services other than storage that the listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Verification,
    Find,
    Move,
    Get,
    Commitment,
}

/// Returns the service of a non-storage abstract syntax.
pub fn service_of(abstract_syntax: &str) -> Option<Service> {
    match abstract_syntax {
        VERIFICATION => Some(Service::Verification),
        PATIENT_ROOT_FIND | STUDY_ROOT_FIND => Some(Service::Find),
        PATIENT_ROOT_MOVE | STUDY_ROOT_MOVE => Some(Service::Move),
        PATIENT_ROOT_GET | STUDY_ROOT_GET => Some(Service::Get),
        STORAGE_COMMITMENT_PUSH => Some(Service::Commitment),
        _ => None,
    }
}

pub fn is_standard_storage_class(uid: &str) -> bool {
    STORAGE_SOP_CLASSES.contains(&uid)
}

/// Returns whether a UID could be a private or newer storage class: any
/// syntactically valid UID that is not one of the standard's service, meta
/// or transfer syntax UIDs (which all sit under 1.2.840.10008.1 and .3).
pub fn could_be_storage_class(uid: &str) -> bool {
    tessera_dicom::is_valid_uid(uid)
        && !uid.starts_with("1.2.840.10008.1.")
        && !uid.starts_with("1.2.840.10008.3.")
        && !uid.starts_with("1.2.840.10008.5.1.4.1.2.")
        && !uid.starts_with("1.2.840.10008.5.1.4.31")
}
