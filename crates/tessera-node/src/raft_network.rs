//! openraft's network over the internal gRPC service. Raft messages travel as
//! bincode inside `RaftPayload`, and so do the remote node's responses.

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{de::DeserializeOwned, Serialize};
use tessera_catalog::{NodeAddr, NodeId, TypeConfig};
use tessera_proto::internal::v1::RaftPayload;

use crate::peers::Peers;

/// Creates a connection per Raft target.
pub struct Network {
    pub peers: Arc<Peers>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> Connection {
        Connection {
            target,
            addr: node.grpc_addr.clone(),
            peers: self.peers.clone(),
        }
    }
}

pub struct Connection {
    target: NodeId,
    addr: String,
    peers: Arc<Peers>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>>;

impl Connection {
    /// Sends one Raft RPC and decodes the remote `Result`.
    async fn call<Req, Resp, E>(
        &self,
        kind: RpcKind,
        request: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let data =
            bincode::serialize(request).map_err(|e| RPCError::Network(NetworkError::new(&*e)))?;
        let payload = RaftPayload { data };
        let mut client = self.peers.client(&self.addr);

        let call = async {
            match kind {
                RpcKind::Append => client.raft_append(payload).await,
                RpcKind::Vote => client.raft_vote(payload).await,
                RpcKind::Snapshot => client.raft_snapshot(payload).await,
            }
        };
        let response = match tokio::time::timeout(option.hard_ttl(), call).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => return Err(RPCError::Unreachable(Unreachable::new(&status))),
            Err(elapsed) => return Err(RPCError::Unreachable(Unreachable::new(&elapsed))),
        };

        let remote: Result<Resp, RaftError<NodeId, E>> = bincode::deserialize(&response.data)
            .map_err(|e| RPCError::Network(NetworkError::new(&*e)))?;
        remote.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[derive(Clone, Copy)]
enum RpcKind {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call(RpcKind::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(RpcKind::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(RpcKind::Vote, &rpc, &option).await
    }
}
