//! Errors of DIMSE associations.

use tessera_dicom::dimse::DimseDecodeError;

/// Why an association or one of its operations failed.
#[derive(Debug, thiserror::Error)]
pub enum DimseError {
    #[error("connection to {peer} failed: {source}")]
    Io {
        peer: String,
        source: std::io::Error,
    },

    #[error("{peer} sent nothing for {seconds} s while {waiting_for}")]
    Timeout {
        peer: String,
        seconds: u64,
        waiting_for: &'static str,
    },

    #[error("{peer} read nothing for {seconds} s while this node was sending a PDU")]
    WriteTimeout { peer: String, seconds: u64 },

    #[error("{peer} sent a PDU of {length} bytes, more than the limit of {limit}")]
    PduTooLarge {
        peer: String,
        length: u32,
        limit: u32,
    },

    #[error("{peer} sent a malformed PDU: {reason}")]
    MalformedPdu { peer: String, reason: String },

    #[error("{peer} sent an unexpected {what}")]
    Unexpected { peer: String, what: String },

    #[error("{peer} aborted the association")]
    Aborted { peer: String },

    #[error("{peer} released the association")]
    Released { peer: String },

    #[error("{peer} sent a malformed command or data set: {source}")]
    Decode {
        peer: String,
        source: DimseDecodeError,
    },

    #[error("{peer} rejected the association: {reason}")]
    Rejected { peer: String, reason: String },

    #[error("{peer} accepted no presentation context for {what}")]
    NoContext { peer: String, what: String },

    #[error("message of {peer} is larger than {limit} bytes")]
    MessageTooLarge { peer: String, limit: usize },

    #[error("failed to encode PDU: {0}")]
    Encode(String),
}
