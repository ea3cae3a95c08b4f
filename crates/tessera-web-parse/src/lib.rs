//! Parsers for DICOMweb (PS3.18) requests, kept apart from the node so that
//! fuzz targets can drive them without linking RocksDB.
//!
//! ```
//! use tessera_web_parse::{related_boundary, QidoQuery};
//!
//! let boundary = related_boundary(
//!     r#"multipart/related; type="application/dicom"; boundary=b1"#,
//!     "application/dicom",
//! )
//! .unwrap();
//! assert_eq!(boundary, "b1");
//!
//! let query = QidoQuery::parse("PatientName=DOE*&limit=10").unwrap();
//! assert_eq!(query.match_value("PatientName"), Some("DOE*"));
//! ```

mod media_type;
mod multipart;
mod qido;

pub use media_type::{parse_accept, AcceptEntry, MediaType};
pub use multipart::{read_all_parts, related_boundary, Part, PartReader};
pub use qido::{resolve_attribute, Attribute, IncludeFields, QidoQuery};

/// A request that cannot be parsed. Each message names the offending value.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("invalid media type {value:?}: {reason}")]
    MediaType { value: String, reason: String },

    #[error("content type {value:?} is not multipart/related; send multipart/related; type=\"application/dicom\"")]
    NotMultipartRelated { value: String },

    #[error("multipart/related root type {found:?} is not supported; expected {expected}")]
    RootType { found: String, expected: String },

    #[error("multipart/related content type has no boundary parameter")]
    MissingBoundary,

    #[error("boundary {boundary:?} is invalid: use 1 to 70 characters allowed by RFC 2046, not ending in a space")]
    InvalidBoundary { boundary: String },

    #[error("malformed multipart body at part {part}: {source}")]
    Multipart { part: usize, source: multer::Error },

    #[error("multipart body contains no part")]
    NoParts,

    #[error("part {part} of the multipart body has more than {limit} bytes of headers or preamble; send short part headers")]
    PartHeadersTooLarge { part: usize, limit: u64 },

    #[error("invalid {parameter} {value:?}: expected {expected}")]
    InvalidParameter {
        parameter: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("{name:?} is neither a DICOM keyword nor a tag in the standard dictionary")]
    UnknownAttribute { name: String },

    #[error("{keyword} appears more than once in the query; give one value, or several separated by '\\' for UIDs")]
    RepeatedMatch { keyword: String },

    #[error(
        "{name:?} nests more than one sequence; name an attribute of a sequence's items \
         as Sequence.Attribute, e.g. RequestAttributesSequence.RequestedProcedureID"
    )]
    NestedSequence { name: String },

    #[error("{name:?} names {keyword} as a sequence, but its VR is {vr}, not SQ")]
    NotASequence {
        name: String,
        keyword: String,
        vr: String,
    },
}
