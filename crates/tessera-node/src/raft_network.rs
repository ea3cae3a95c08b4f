//! openraft's network over the internal gRPC service. Raft messages travel as
//! bincode inside `RaftPayload`, and so do the remote node's responses.
//! Snapshots stream as the files of a RocksDB checkpoint.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, Snapshot};
use serde::{de::DeserializeOwned, Serialize};
use tessera_catalog::raft::Vote;
use tessera_catalog::{CatalogSnapshot, NodeAddr, NodeId, TypeConfig};
use tessera_proto::internal::v1::snapshot_part::Part;
use tessera_proto::internal::v1::{RaftPayload, SnapshotPart};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

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
}

/// Bytes per `data` part of a streamed snapshot file.
const SNAPSHOT_PART_BYTES: usize = 1 << 20;

type SnapshotResult = Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>>;

impl Connection {
    /// Streams a snapshot's files and its install part in one call and
    /// decodes the follower's install result. No deadline covers the whole
    /// call, because copying a large catalog can take minutes; instead the
    /// follower must take each part within the soft TTL.
    async fn send_snapshot(
        &self,
        vote: Vote,
        snapshot: Snapshot<TypeConfig>,
        option: &RPCOption,
    ) -> SnapshotResult {
        let install = bincode::serialize(&(vote, snapshot.meta.clone()))
            .map_err(|e| StreamingError::Network(NetworkError::new(&*e)))?;
        let (parts, receiver) = mpsc::channel(4);
        let reader = tokio::spawn(stream_snapshot(
            snapshot.snapshot,
            install,
            parts,
            option.soft_ttl(),
        ));

        let mut client = self.peers.client(&self.addr);
        let response = client.raft_snapshot(ReceiverStream::new(receiver)).await;
        reader.abort();
        let response = response
            .map_err(|status| StreamingError::Unreachable(Unreachable::new(&status)))?
            .into_inner();

        let remote: Result<SnapshotResponse<NodeId>, Fatal<NodeId>> =
            bincode::deserialize(&response.data)
                .map_err(|e| StreamingError::Network(NetworkError::new(&*e)))?;
        remote.map_err(|e| StreamingError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Sends every file of the snapshot, then the install part. All files are
/// opened first: the state machine may remove an older snapshot's directory
/// while this one is still on its way, and open files stay readable.
async fn stream_snapshot(
    snapshot: Box<CatalogSnapshot>,
    install: Vec<u8>,
    parts: mpsc::Sender<SnapshotPart>,
    part_timeout: Duration,
) {
    let send = |part: Part| {
        let parts = parts.clone();
        async move {
            let sent =
                tokio::time::timeout(part_timeout, parts.send(SnapshotPart { part: Some(part) }));
            matches!(sent.await, Ok(Ok(())))
        }
    };

    let mut files = Vec::new();
    let listed = match snapshot.files() {
        Ok(listed) => listed,
        Err(error) => {
            tracing::warn!(dir = %snapshot.dir().display(), %error, "cannot list snapshot files");
            return;
        }
    };
    for (name, _) in listed {
        match tokio::fs::File::open(snapshot.dir().join(&name)).await {
            Ok(file) => files.push((name, file)),
            Err(error) => {
                tracing::warn!(file = %name, %error, "cannot open a snapshot file");
                return;
            }
        }
    }

    for (name, mut file) in files {
        if !send(Part::File(name.clone())).await {
            return;
        }
        loop {
            let mut buffer = Vec::with_capacity(SNAPSHOT_PART_BYTES);
            match (&mut file)
                .take(SNAPSHOT_PART_BYTES as u64)
                .read_to_end(&mut buffer)
                .await
            {
                Ok(0) => break,
                Ok(_) => {
                    if !send(Part::Data(buffer)).await {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(file = %name, %error, "cannot read a snapshot file");
                    return;
                }
            }
        }
    }
    send(Part::Install(install)).await;
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call(RpcKind::Append, &rpc, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> SnapshotResult {
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = self.send_snapshot(vote, snapshot, &option) => result,
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(RpcKind::Vote, &rpc, &option).await
    }
}
