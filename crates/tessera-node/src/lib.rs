//! The Tessera server.
//!
//! A node runs the public gRPC services (`Archive`, `Cluster`), the internal
//! `Peer` service for Raft and blob replicas, and an HTTP endpoint for metrics,
//! health and readiness. The write path validates an instance, writes its blob
//! to R replicas and acknowledges only after `InstanceStored` commits. The read
//! path streams verified chunks from the nearest healthy replica. Upkeep
//! re-replicates, scrubs and sweeps.
//!
//! ```no_run
//! # async fn run() -> Result<(), tessera_node::NodeError> {
//! let mut config = tessera_node::NodeConfig::default();
//! config.node_id = 1;
//! config.data_dir = "/var/lib/tessera".into();
//! tessera_node::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod archive_service;
mod cluster_service;
mod config;
mod convert;
pub mod dimse;
mod error;
mod http;
mod metrics;
mod node;
mod peer_service;
mod peers;
mod raft_network;
mod read_path;
pub mod repair;
mod server;
mod spool;
pub mod web;
mod write_path;

pub use config::{DuplicatePolicy, NodeConfig};
pub use error::NodeError;
pub use node::Node;
pub use server::serve;

/// Largest gRPC message clients should accept from a node.
pub use peers::MAX_MESSAGE_BYTES;
