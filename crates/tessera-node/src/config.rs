//! Service configuration of a node: defaults, then a TOML file, then
//! environment and flags (applied by the binary), then validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::NodeError;

/// Policy for a SOP Instance UID that arrives again with different bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicatePolicy {
    /// Keep the stored instance and reject the new one.
    #[default]
    Reject,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Unique, never reused, non-zero.
    pub node_id: u64,
    /// Address the gRPC server binds (public and internal services).
    pub grpc_listen: String,
    /// Address other nodes and clients use to reach this node; defaults to
    /// `grpc_listen`.
    pub grpc_advertise: String,
    /// Address of the HTTP server for metrics, health and readiness.
    pub http_listen: String,
    pub data_dir: PathBuf,
    /// Number of blob shards, each its own RocksDB instance. Fixed at first start.
    pub shards: usize,
    /// Optional directories for the shards (one per shard), e.g. one per disk.
    pub shard_dirs: Vec<PathBuf>,
    pub site: String,
    pub zone: String,
    /// Replicas of every blob (R). Capped at the number of nodes.
    pub replication_factor: usize,
    /// Replicas that must be durable before a store is acknowledged (W);
    /// 0 means a majority of R.
    pub write_quorum: usize,
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub election_timeout: Duration,
    /// How long a node may be unreachable before its replicas are re-created
    /// elsewhere.
    #[serde(with = "humantime_serde")]
    pub repair_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub repair_interval: Duration,
    /// Chunk size for new blobs.
    pub chunk_size: ByteSize,
    /// Instances larger than this are spooled to disk while they arrive.
    pub spool_memory_limit: ByteSize,
    /// Raft log entries between snapshots.
    pub snapshot_every: u64,
    /// Raft log entries kept behind a snapshot for lagging followers; a node
    /// further behind installs the snapshot instead.
    pub snapshot_logs_to_keep: u64,
    pub duplicate_policy: DuplicatePolicy,
    /// OTLP gRPC endpoint for traces; empty turns export off.
    pub otlp_endpoint: String,
    /// DICOMweb (STOW-RS, QIDO-RS, WADO-RS) under `/dicom-web` on the HTTP listener.
    pub web: crate::web::WebConfig,
    /// The DICOM listener (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, storage
    /// commitment) and its peers.
    pub dimse: crate::dimse::DimseConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            grpc_listen: "127.0.0.1:7401".into(),
            grpc_advertise: String::new(),
            http_listen: "127.0.0.1:7481".into(),
            data_dir: PathBuf::from("tessera-data"),
            shards: 4,
            shard_dirs: Vec::new(),
            site: String::new(),
            zone: String::new(),
            replication_factor: 3,
            write_quorum: 0,
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(500),
            repair_grace: Duration::from_secs(60),
            repair_interval: Duration::from_secs(5),
            chunk_size: ByteSize::mib(4),
            spool_memory_limit: ByteSize::mib(64),
            snapshot_every: 5000,
            snapshot_logs_to_keep: 1000,
            duplicate_policy: DuplicatePolicy::Reject,
            otlp_endpoint: String::new(),
            web: crate::web::WebConfig::default(),
            dimse: crate::dimse::DimseConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeError::ConfigRead {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| NodeError::ConfigParse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Checks values that would make the node misbehave, naming the setting.
    pub fn validate(&mut self) -> Result<(), NodeError> {
        if self.grpc_advertise.is_empty() {
            self.grpc_advertise = self.grpc_listen.clone();
        }
        let invalid = |setting: &str, reason: &str| NodeError::InvalidConfig {
            setting: setting.to_string(),
            reason: reason.to_string(),
        };
        if self.node_id == 0 {
            return Err(invalid(
                "node_id",
                "must be a positive integer, unique in the cluster",
            ));
        }
        if self.shards == 0 {
            return Err(invalid("shards", "must be at least 1"));
        }
        if !self.shard_dirs.is_empty() && self.shard_dirs.len() != self.shards {
            return Err(invalid(
                "shard_dirs",
                "must list exactly `shards` directories, or none",
            ));
        }
        if self.replication_factor == 0 {
            return Err(invalid("replication_factor", "must be at least 1"));
        }
        if self.write_quorum > self.replication_factor {
            return Err(invalid(
                "write_quorum",
                "must not exceed replication_factor",
            ));
        }
        if self.chunk_size.as_u64() < 64 * 1024 || self.chunk_size.as_u64() > 64 * 1024 * 1024 {
            return Err(invalid("chunk_size", "must be between 64KiB and 64MiB"));
        }
        self.dimse.validate()?;
        if self.election_timeout < self.heartbeat_interval * 3 {
            return Err(invalid(
                "election_timeout",
                "must be at least three heartbeat intervals",
            ));
        }
        Ok(())
    }

    /// W for a given effective R: the configured quorum or a majority of R.
    pub fn write_quorum_for(&self, replicas: usize) -> usize {
        let quorum = if self.write_quorum == 0 {
            replicas / 2 + 1
        } else {
            self.write_quorum
        };
        quorum.min(replicas).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_validates() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../cluster/tessera.example.toml"
        );
        let mut config = NodeConfig::from_file(Path::new(path)).expect("example parses");

        config.validate().expect("example validates");
        assert_eq!(config.chunk_size, ByteSize::mib(4));
        assert_eq!(config.repair_grace, Duration::from_secs(60));
        assert_eq!(config.grpc_advertise, config.grpc_listen);
    }

    #[test]
    fn zero_node_id_is_rejected() {
        let mut config = NodeConfig {
            node_id: 0,
            ..NodeConfig::default()
        };

        let error = config
            .validate()
            .expect_err("node id 0 rejected")
            .to_string();
        assert!(error.contains("node_id"), "{error}");
    }

    #[test]
    fn unknown_setting_is_named() {
        let error = toml::from_str::<NodeConfig>("replication = 3").expect_err("unknown key");
        assert!(error.to_string().contains("replication"), "{error}");
    }

    #[test]
    fn write_quorum_defaults_to_majority() {
        let config = NodeConfig::default();

        assert_eq!(config.write_quorum_for(3), 2);
        assert_eq!(config.write_quorum_for(5), 3);
        assert_eq!(config.write_quorum_for(1), 1);
    }
}
