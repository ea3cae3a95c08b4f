//! A running node: its Raft instance, catalog, blob shards and peer clients.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use prost::Message;
use tessera_blob::placement::NodeLabel;
use tessera_blob::BlobStore;
use tessera_catalog::{ApplyResult, Catalog, NodeAddr, NodeId, Proposal, Raft};
use tessera_proto::internal::v1::{ProposeRequest, ReadIndexRequest};
use tessera_proto::v1::Event;

use crate::metrics::Metrics;
use crate::peers::Peers;
use crate::raft_network::Network;
use crate::{NodeConfig, NodeError};

/// How long a write waits for a leader before it fails as unavailable.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(10);

/// How long one proposal waits to be committed and applied before the write
/// fails as unavailable. A leader without a quorum would otherwise keep the
/// caller waiting for ever. The entry may still commit later, so a client
/// that stores the same instance again finds it stored.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

// A proposal that timed out is past PROPOSE_DEADLINE, so `propose` does not
// append the same event a second time.
const _: () = assert!(COMMIT_TIMEOUT.as_secs() > PROPOSE_DEADLINE.as_secs());

pub struct Node {
    pub config: NodeConfig,
    pub raft: Raft,
    pub catalog: Catalog,
    pub blobs: Arc<BlobStore>,
    pub peers: Arc<Peers>,
    pub metrics: Metrics,
    /// When each peer was first seen unreachable, for the repair grace period.
    pub(crate) unreachable_since: Mutex<HashMap<NodeId, Instant>>,
}

impl Node {
    /// Opens the node's storage and starts its Raft instance. The cluster is
    /// formed separately, by `initialize` on one node.
    pub async fn start(mut config: NodeConfig) -> Result<Arc<Node>, NodeError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::Spool {
            path: config.data_dir.display().to_string(),
            source,
        })?;

        let opened = Catalog::open(&config.data_dir.join("catalog"))?;
        let blobs = open_blob_store(&config)?;
        let peers = Arc::new(Peers::default());
        let network = Network {
            peers: peers.clone(),
        };
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config(&config)?),
            network,
            opened.log_store,
            opened.state_machine,
        )
        .await
        .map_err(|e| NodeError::Raft {
            operation: "start",
            reason: e.to_string(),
        })?;

        tracing::info!(node_id = config.node_id, addr = %config.grpc_advertise, "node started");
        Ok(Arc::new(Node {
            config,
            raft,
            catalog: opened.catalog,
            blobs: Arc::new(blobs),
            peers,
            metrics: Metrics::new(),
            unreachable_since: Mutex::new(HashMap::new()),
        }))
    }

    pub fn id(&self) -> NodeId {
        self.config.node_id
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Voters and learners with their addresses, from the applied membership.
    pub fn members(&self) -> BTreeMap<NodeId, NodeAddr> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.clone()))
            .collect()
    }

    /// Members with the site and zone labels that placement uses.
    pub fn member_labels(&self) -> Vec<NodeLabel> {
        self.members()
            .into_iter()
            .map(|(id, node)| NodeLabel {
                id,
                site: node.site,
                zone: node.zone,
            })
            .collect()
    }

    /// Replication factor in force: the configured R capped at the member count.
    pub fn effective_replicas(&self) -> usize {
        self.config
            .replication_factor
            .min(self.members().len())
            .max(1)
    }

    /// Proposes an event, forwarding to the leader when this node is not it,
    /// and returns once the event is committed and applied on the leader.
    ///
    /// Fails with [`NodeError::CommitTimeout`] when that takes longer than
    /// `COMMIT_TIMEOUT`, and the event may then still be applied later.
    pub async fn propose(&self, event: Event) -> Result<ApplyResult, NodeError> {
        let deadline = Instant::now() + PROPOSE_DEADLINE;
        loop {
            let error = match self.try_propose_within(&event, COMMIT_TIMEOUT).await {
                Ok(result) => return Ok(result),
                Err(error) => error,
            };
            if !error.is_retryable() || Instant::now() > deadline {
                return Err(error);
            }
            tracing::debug!(%error, "retrying proposal");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs one proposal attempt, local or forwarded, for at most `timeout`.
    async fn try_propose_within(
        &self,
        event: &Event,
        timeout: Duration,
    ) -> Result<ApplyResult, NodeError> {
        match tokio::time::timeout(timeout, self.try_propose(event)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(NodeError::CommitTimeout {
                seconds: timeout.as_secs(),
            }),
        }
    }

    async fn try_propose(&self, event: &Event) -> Result<ApplyResult, NodeError> {
        match self.propose_local(event.clone()).await {
            Err(ProposeError::Forward(Some(leader))) => self.forward(leader, event).await,
            Err(ProposeError::Forward(None)) => Err(NodeError::NoLeader),
            Err(ProposeError::Failed(error)) => Err(error),
            Ok(result) => Ok(result),
        }
    }

    /// Proposes on this node, which must be the leader. Stamps the time the
    /// leader accepted the event.
    pub(crate) async fn propose_local(
        &self,
        mut event: Event,
    ) -> Result<ApplyResult, ProposeError> {
        event.version = tessera_proto::EVENT_VERSION;
        event.accepted_at_ms = now_ms();
        let proposal = Proposal {
            event: event.encode_to_vec(),
        };

        match self.raft.client_write(proposal).await {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(ProposeError::Forward(forward.leader_node))
            }
            Err(error) => Err(ProposeError::Failed(NodeError::Raft {
                operation: "write",
                reason: error.to_string(),
            })),
        }
    }

    async fn forward(&self, leader: NodeAddr, event: &Event) -> Result<ApplyResult, NodeError> {
        let mut client = self.peers.client(&leader.grpc_addr);
        let request = ProposeRequest {
            event: event.encode_to_vec(),
        };
        let response =
            client
                .propose(request)
                .await
                .map_err(|status| NodeError::PeerUnreachable {
                    node_id: 0,
                    addr: leader.grpc_addr.clone(),
                    reason: status.message().to_string(),
                })?;

        bincode::deserialize(&response.into_inner().response).map_err(|e| NodeError::Raft {
            operation: "forward",
            reason: e.to_string(),
        })
    }

    /// Waits until the local index reflects every write committed before the
    /// call: the leader confirms it still leads, and this node applies up to
    /// the leader's commit index.
    ///
    /// Retries while the cluster elects a leader, up to the proposal deadline.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let deadline = Instant::now() + PROPOSE_DEADLINE;
        let index = loop {
            match self.read_index().await {
                Ok(index) => break index,
                Err(error) if error.is_retryable() && Instant::now() < deadline => {
                    tracing::debug!(%error, "retrying read barrier");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(error),
            }
        };
        if self.catalog.wait_applied(index, PROPOSE_DEADLINE).await {
            return Ok(());
        }
        Err(NodeError::Raft {
            operation: "read barrier",
            reason: format!("local index did not reach log index {index} in time"),
        })
    }

    async fn read_index(&self) -> Result<u64, NodeError> {
        match self.raft.ensure_linearizable().await {
            Ok(log_id) => return Ok(log_id.map(|id| id.index).unwrap_or(0)),
            Err(RaftError::APIError(_)) => {}
            Err(error) => {
                return Err(NodeError::Raft {
                    operation: "read barrier",
                    reason: error.to_string(),
                })
            }
        }

        let leader = self.leader().ok_or(NodeError::NoLeader)?;
        let addr = self
            .members()
            .get(&leader)
            .ok_or(NodeError::NoLeader)?
            .grpc_addr
            .clone();
        let mut client = self.peers.client(&addr);
        let response = client
            .read_index(ReadIndexRequest {})
            .await
            .map_err(|status| NodeError::PeerUnreachable {
                node_id: leader,
                addr,
                reason: status.message().to_string(),
            })?;
        Ok(response.into_inner().index)
    }

    /// Records a peer as reachable or not; returns how long it has been down.
    pub(crate) fn note_reachability(&self, node: NodeId, reachable: bool) -> Option<Duration> {
        let mut since = self
            .unreachable_since
            .lock()
            .expect("reachability lock poisoned");
        if reachable {
            since.remove(&node);
            return None;
        }
        let first = *since.entry(node).or_insert_with(Instant::now);
        Some(first.elapsed())
    }
}

/// Reason a local proposal did not happen.
pub(crate) enum ProposeError {
    /// This node is not the leader; the leader, if one is known.
    Forward(Option<NodeAddr>),
    Failed(NodeError),
}

fn raft_config(config: &NodeConfig) -> Result<openraft::Config, NodeError> {
    let election = config.election_timeout.as_millis() as u64;
    let raft = openraft::Config {
        cluster_name: "tessera".into(),
        heartbeat_interval: config.heartbeat_interval.as_millis() as u64,
        election_timeout_min: election,
        election_timeout_max: election * 2,
        install_snapshot_timeout: 10_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
        max_in_snapshot_log_to_keep: config.snapshot_logs_to_keep,
        purge_batch_size: 1,
        ..Default::default()
    };
    raft.validate().map_err(|e| NodeError::InvalidConfig {
        setting: "raft".into(),
        reason: e.to_string(),
    })
}

fn open_blob_store(config: &NodeConfig) -> Result<BlobStore, NodeError> {
    if config.shard_dirs.is_empty() {
        return Ok(BlobStore::open(
            &config.data_dir.join("blobs"),
            config.shards,
        )?);
    }
    Ok(BlobStore::open_dirs(config.shard_dirs.clone())?)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
