//! Errors of the catalog.

/// A failure of the catalog's own storage or encoding.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("failed to open catalog database at {path}: {source}")]
    Open {
        path: String,
        source: rocksdb::Error,
    },

    #[error("failed to {action} in catalog: {source}")]
    Rocks {
        action: &'static str,
        source: rocksdb::Error,
    },

    #[error("failed to decode {what} stored under key {key}: {reason}")]
    Decode {
        what: &'static str,
        key: String,
        reason: String,
    },

    #[error("failed to decode event at log index {index}: {source}")]
    Event {
        index: u64,
        source: prost::DecodeError,
    },

    #[error("invalid query key {keyword}: {source}")]
    Query {
        keyword: String,
        source: tessera_dicom::matching::MatchError,
    },

    #[error("{keyword} is not a {level}-level query key; use one of: {supported}")]
    UnsupportedKey {
        keyword: String,
        level: String,
        supported: String,
    },

    #[error(
        "sequence key {keyword} has the value '{value}', but a sequence matches through \
         its items: send it empty, or match on an item attribute such as {keyword}.CodeValue"
    )]
    SequenceValue { keyword: String, value: String },

    #[error("query level is unspecified: use patient, study, series or instance")]
    QueryLevel,

    #[error("snapshot file '{name}' rejected: {reason}")]
    SnapshotFile { name: String, reason: String },

    #[error("snapshot file system operation on {path} failed: {source}")]
    SnapshotIo {
        path: String,
        source: std::io::Error,
    },
}

impl CatalogError {
    pub(crate) fn rocks(action: &'static str) -> impl FnOnce(rocksdb::Error) -> CatalogError {
        move |source| CatalogError::Rocks { action, source }
    }
}
