//! The openraft type configuration and the application data carried in the log.

use serde::{Deserialize, Serialize};

/// Identifier of a node. Never reused: a replaced node gets a new id.
pub type NodeId = u64;

/// Cluster map entry of a node: where to reach it and where it sits,
/// so that placement can spread replicas over sites and zones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    pub grpc_addr: String,
    pub site: String,
    pub zone: String,
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (site {:?}, zone {:?})",
            self.grpc_addr, self.site, self.zone
        )
    }
}

/// One proposed event: an encoded `tessera.v1.Event`. The leader stamps the
/// acceptance time before proposing, so applying it stays deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub event: Vec<u8>,
}

/// Effect of applying one event to the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The event changed the index.
    Applied,
    /// An instance with this SOP Instance UID and the same bytes exists.
    AlreadyStored { blob_id: Vec<u8> },
    /// An instance with this SOP Instance UID but other bytes exists; the
    /// stored one is left untouched.
    Conflict { existing_blob_id: Vec<u8> },
    /// The event was valid Raft data but meaningless for the index (unknown
    /// instance, undecodable payload); it stays in the journal.
    Ignored { reason: String },
}

/// The state machine's response to a committed proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResult {
    pub log_index: u64,
    pub outcome: Outcome,
}

openraft::declare_raft_types!(
    /// Tessera's Raft types: events as application data, RocksDB checkpoints as snapshots.
    pub TypeConfig:
        D = Proposal,
        R = ApplyResult,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::snapshot::CatalogSnapshot,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeAddr>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeAddr>;
pub type Entry = openraft::Entry<TypeConfig>;
