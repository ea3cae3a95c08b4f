//! The public Cluster service: status, forming the cluster, membership.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use tessera_catalog::{NodeAddr, NodeId};
use tessera_proto::v1::cluster_client::ClusterClient;
use tessera_proto::v1::cluster_server::Cluster;
use tessera_proto::v1::*;
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::NodeError;

pub struct ClusterService {
    pub node: Arc<Node>,
}

fn node_addr(spec: &NodeSpec) -> Result<NodeAddr, Status> {
    if spec.node_id == 0 || spec.grpc_addr.is_empty() {
        return Err(Status::invalid_argument(format!(
            "node {} needs a positive node id and a gRPC address",
            spec.node_id
        )));
    }
    let uri = format!("http://{}", spec.grpc_addr).parse::<tonic::transport::Uri>();
    let has_port = uri
        .as_ref()
        .is_ok_and(|uri| uri.port_u16().is_some() && uri.path() == "/");
    if !has_port {
        return Err(Status::invalid_argument(format!(
            "gRPC address {:?} of node {} is not HOST:PORT, e.g. 10.0.0.4:7401",
            spec.grpc_addr, spec.node_id
        )));
    }
    Ok(NodeAddr {
        grpc_addr: spec.grpc_addr.clone(),
        site: spec.site.clone(),
        zone: spec.zone.clone(),
    })
}

impl ClusterService {
    /// Returns a Cluster client for the leader, or None when this node leads.
    fn leader_client(&self) -> Result<Option<ClusterClient<tonic::transport::Channel>>, Status> {
        let leader = self.node.leader().ok_or(NodeError::NoLeader)?;
        if leader == self.node.id() {
            return Ok(None);
        }
        let addr = self
            .node
            .members()
            .get(&leader)
            .ok_or(NodeError::NoLeader)?
            .grpc_addr
            .clone();
        Ok(Some(ClusterClient::new(crate::peers::connect_lazy(&addr))))
    }

    fn membership(&self) -> MembershipResponse {
        let metrics = self.node.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        MembershipResponse {
            voters: voters.iter().copied().collect(),
            learners: membership.learner_ids().collect(),
        }
    }
}

fn write_error(
    operation: &'static str,
    error: RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>,
) -> Status {
    NodeError::Raft {
        operation,
        reason: error.to_string(),
    }
    .into()
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<ClusterStatus>, Status> {
        let metrics = self.node.raft.metrics().borrow().clone();
        let health = self.node.probe_members().await;
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last_log = metrics.last_log_index.unwrap_or(0);

        let nodes = membership
            .nodes()
            .map(|(id, addr)| {
                let stats = health.reachable.get(id);
                let applied = stats.map(|s| s.last_applied).unwrap_or(0);
                NodeStatus {
                    node_id: *id,
                    grpc_addr: addr.grpc_addr.clone(),
                    site: addr.site.clone(),
                    zone: addr.zone.clone(),
                    voter: voters.contains(id),
                    reachable: stats.is_some(),
                    last_applied: applied,
                    lag: if stats.is_some() {
                        last_log.saturating_sub(applied)
                    } else {
                        0
                    },
                    blob_count: stats.map(|s| s.blob_count).unwrap_or(0),
                    blob_bytes: stats.map(|s| s.blob_bytes).unwrap_or(0),
                }
            })
            .collect();

        let blobs = self.node.catalog.blobs().map_err(NodeError::from)?;
        let under = self.node.count_under_replicated(&blobs, &health);
        Ok(Response::new(ClusterStatus {
            leader_id: metrics.current_leader.unwrap_or(0),
            term: metrics.current_term,
            last_log_index: last_log,
            last_applied: metrics.last_applied.map(|id| id.index).unwrap_or(0),
            nodes,
            under_replicated_blobs: under as u64,
            instances: self
                .node
                .catalog
                .instance_count()
                .map_err(NodeError::from)?,
            replication_factor: self.node.effective_replicas() as u64,
            answering_node_id: self.node.id(),
        }))
    }

    async fn initialize(
        &self,
        request: Request<InitializeRequest>,
    ) -> Result<Response<InitializeResponse>, Status> {
        let mut members = BTreeMap::new();
        for spec in &request.get_ref().nodes {
            members.insert(spec.node_id, node_addr(spec)?);
        }
        if members.is_empty() {
            return Err(Status::invalid_argument(
                "initialize needs at least one node",
            ));
        }

        match self.node.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(node_id = self.node.id(), "cluster initialised");
                Ok(Response::new(InitializeResponse {}))
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                Err(NodeError::AlreadyInitialized.into())
            }
            Err(error) => Err(NodeError::Raft {
                operation: "initialize",
                reason: error.to_string(),
            }
            .into()),
        }
    }

    async fn add_node(
        &self,
        request: Request<AddNodeRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        if let Some(mut leader) = self.leader_client()? {
            return leader.add_node(request.into_inner()).await;
        }
        let spec = request
            .into_inner()
            .node
            .ok_or_else(|| Status::invalid_argument("add node needs a node"))?;
        let addr = node_addr(&spec)?;

        // A learner first: it catches up from the log or a snapshot before it
        // can vote, so a slow newcomer never stalls commits.
        self.node
            .raft
            .add_learner(spec.node_id, addr, true)
            .await
            .map_err(|e| write_error("add learner", e))?;
        let mut voters: BTreeSet<NodeId> = self.membership().voters.into_iter().collect();
        voters.insert(spec.node_id);
        self.node
            .raft
            .change_membership(voters, false)
            .await
            .map_err(|e| write_error("change membership", e))?;
        tracing::info!(node_id = spec.node_id, "node added as voter");
        Ok(Response::new(self.membership()))
    }

    async fn remove_node(
        &self,
        request: Request<RemoveNodeRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        if let Some(mut leader) = self.leader_client()? {
            return leader.remove_node(request.into_inner()).await;
        }
        let node_id = request.into_inner().node_id;
        let mut voters: BTreeSet<NodeId> = self.membership().voters.into_iter().collect();
        if !voters.remove(&node_id) {
            return Err(NodeError::NotFound {
                what: "voter",
                value: node_id.to_string(),
            }
            .into());
        }
        if voters.is_empty() {
            return Err(Status::failed_precondition("cannot remove the last voter"));
        }

        // TODO: removal does not drain the node first; its blobs are re-created
        // elsewhere by repair only after it leaves, so until then R-1 copies exist.
        self.node
            .raft
            .change_membership(voters, false)
            .await
            .map_err(|e| write_error("change membership", e))?;
        tracing::info!(node_id, "node removed");
        Ok(Response::new(self.membership()))
    }
}
