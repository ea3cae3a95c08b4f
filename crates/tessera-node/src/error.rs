//! Errors of the node, and their mapping to gRPC statuses at the edge.

use tessera_blob::BlobError;
use tessera_catalog::CatalogError;

/// Failures of a request or of starting the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("failed to read config file {path}: {source}")]
    ConfigRead {
        path: String,
        source: std::io::Error,
    },

    #[error("invalid config file {path}: {source}")]
    ConfigParse {
        path: String,
        source: toml::de::Error,
    },

    #[error("invalid setting {setting}: {reason}")]
    InvalidConfig { setting: String, reason: String },

    #[error("failed to bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },

    #[error(transparent)]
    Catalog(#[from] CatalogError),

    #[error(transparent)]
    Blob(#[from] BlobError),

    #[error("failed to spool incoming instance to {path}: {source}")]
    Spool {
        path: String,
        source: std::io::Error,
    },

    #[error(
        "no Raft leader is known; the cluster may be electing one or lack a quorum, retry shortly"
    )]
    NoLeader,

    #[error(
        "commit of the event timed out after {seconds} s; it may still be applied, \
         so retry the request"
    )]
    CommitTimeout { seconds: u64 },

    #[error("raft {operation} failed: {reason}")]
    Raft {
        operation: &'static str,
        reason: String,
    },

    #[error("node {node_id} at {addr} is unreachable: {reason}")]
    PeerUnreachable {
        node_id: u64,
        addr: String,
        reason: String,
    },

    #[error("only {stored} of the required {required} replicas of blob {blob_id} became durable: {reasons}")]
    TooFewReplicas {
        blob_id: String,
        stored: usize,
        required: usize,
        reasons: String,
    },

    #[error("no readable replica of blob {blob_id}: {reasons}")]
    NoReplica { blob_id: String, reasons: String },

    #[error("{what} {value} is not in the archive")]
    NotFound { what: &'static str, value: String },

    #[error("invalid request: {0}")]
    InvalidRequest(String),

    #[error("the cluster is already initialised")]
    AlreadyInitialized,
}

impl NodeError {
    /// Returns whether a client may retry the same request later and expect success.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            NodeError::NoLeader
                | NodeError::CommitTimeout { .. }
                | NodeError::PeerUnreachable { .. }
                | NodeError::TooFewReplicas { .. }
                | NodeError::NoReplica { .. }
                | NodeError::Raft { .. }
        )
    }
}

impl From<NodeError> for tonic::Status {
    fn from(error: NodeError) -> Self {
        let message = error.to_string();
        match &error {
            NodeError::NotFound { .. } => tonic::Status::not_found(message),
            NodeError::InvalidRequest(_) => tonic::Status::invalid_argument(message),
            NodeError::Catalog(CatalogError::Query { .. })
            | NodeError::Catalog(CatalogError::UnsupportedKey { .. })
            | NodeError::Catalog(CatalogError::QueryLevel) => {
                tonic::Status::invalid_argument(message)
            }
            NodeError::AlreadyInitialized => tonic::Status::already_exists(message),
            _ if error.is_retryable() => tonic::Status::unavailable(message),
            _ => {
                tracing::error!(%error, "internal error");
                tonic::Status::internal("internal error; see the node's log")
            }
        }
    }
}
