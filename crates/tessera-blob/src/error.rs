//! The error type of every fallible operation in this crate.

use crate::BlobId;

/// Boxed source error of a storage backend, so that the contract stays free of
/// any one backend's error type.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of blob ids, manifests, shard stores and the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A blob id was built from a byte slice of the wrong length.
    #[error("invalid blob id: expected 32 bytes, got {len}")]
    InvalidIdLength { len: usize },

    /// A blob id string is not 64 hexadecimal digits.
    #[error("invalid blob id {input:?}: expected 64 hex digits")]
    InvalidIdHex { input: String },

    /// Manifest bytes or fields are inconsistent.
    #[error("invalid manifest{}: {reason}", describe_blob(.blob))]
    InvalidManifest {
        blob: Option<BlobId>,
        reason: String,
    },

    /// A stored manifest record cannot be decoded or belongs to another blob.
    #[error("corrupt manifest of blob {blob} in shard {shard}: {reason}")]
    CorruptManifest {
        blob: BlobId,
        shard: String,
        reason: String,
    },

    /// A chunk's bytes do not match the length or hash in its manifest.
    #[error("corrupt chunk {index} of blob {blob}: {reason}")]
    Corrupt {
        blob: BlobId,
        index: u32,
        reason: String,
    },

    /// A chunk that the manifest lists is not stored.
    #[error("chunk {index} of blob {blob} not found in shard {shard}")]
    MissingChunk {
        blob: BlobId,
        index: u32,
        shard: String,
    },

    /// A chunk index is not below the manifest's chunk count.
    #[error("chunk index {index} out of range for blob {blob} with {count} chunks")]
    ChunkOutOfRange {
        blob: BlobId,
        index: u32,
        count: u32,
    },

    /// A chunk passed to a write is longer than a manifest can describe.
    #[error("chunk {index} of blob {blob} is {len} bytes, above the maximum of {max}")]
    ChunkTooLarge {
        blob: BlobId,
        index: u32,
        len: usize,
        max: u32,
    },

    /// The chunks of a commit hash to another blob id than the manifest names.
    #[error("commit of blob {blob} rejected: its chunks hash to blob {actual}")]
    BlobIdMismatch { blob: BlobId, actual: BlobId },

    /// A commit named a blob that is already committed with a different manifest.
    #[error(
        "commit of blob {blob} rejected: it is already committed with a different chunk layout"
    )]
    ManifestConflict { blob: BlobId },

    /// A shard directory was created for another position or shard count.
    #[error(
        "shard {shard} was created as shard {stored_index} of {stored_count} but was opened as \
         shard {index} of {count}; reopen with the original shard count and directory order"
    )]
    ShardLayoutMismatch {
        shard: String,
        stored_index: u32,
        stored_count: u32,
        index: u32,
        count: u32,
    },

    /// A blob store was opened with no shard at all.
    #[error("blob store needs at least one shard, got 0")]
    NoShards,

    /// A storage backend failed while doing `action` on one shard.
    #[error("{action} failed in shard {shard}: {source}")]
    Storage {
        action: String,
        shard: String,
        #[source]
        source: BackendError,
    },

    /// A file system call outside any backend failed.
    #[error("{action} failed on {path}: {source}")]
    Io {
        action: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn describe_blob(blob: &Option<BlobId>) -> String {
    match blob {
        Some(id) => format!(" of blob {id}"),
        None => String::new(),
    }
}
