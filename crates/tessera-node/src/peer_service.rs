//! The internal gRPC service other nodes call: Raft traffic, proposals
//! forwarded to the leader, and blob replica reads and writes.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tessera_blob::{BlobError, BlobId, BlobWriter, ChunkCheck};
use tessera_proto::internal::v1::peer_server::Peer;
use tessera_proto::internal::v1::*;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{manifest_from_proto, manifest_to_proto};
use crate::node::{Node, ProposeError};
use crate::read_path::join_error;
use crate::NodeError;

pub struct PeerService {
    pub node: Arc<Node>,
}

fn decode<T: serde::de::DeserializeOwned>(payload: &RaftPayload) -> Result<T, Status> {
    bincode::deserialize(&payload.data)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Response<RaftPayload>, Status> {
    let data = bincode::serialize(value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftPayload { data }))
}

/// Maps a failure to receive a snapshot to a status for the leader, which
/// retries with its current snapshot, and logs it on this node.
fn snapshot_status(error: tessera_catalog::CatalogError) -> Status {
    tracing::warn!(%error, "failed to receive a snapshot from the leader");
    match error {
        tessera_catalog::CatalogError::SnapshotFile { .. } => {
            Status::invalid_argument(error.to_string())
        }
        other => NodeError::from(other).into(),
    }
}

fn blob_id(bytes: &[u8]) -> Result<BlobId, Status> {
    BlobId::from_slice(bytes).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// Maps a failed replica write to `DATA_LOSS` when the received bytes do not
/// match their manifest, and to the node's status for a storage failure.
fn blob_write_status(error: BlobError) -> Status {
    match error {
        BlobError::Corrupt { .. }
        | BlobError::ChunkOutOfRange { .. }
        | BlobError::MissingChunk { .. }
        | BlobError::BlobIdMismatch { .. } => Status::data_loss(error.to_string()),
        other => NodeError::from(other).into(),
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<BlobChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Peer for PeerService {
    async fn raft_append(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(request.get_ref())?;
        encode(&self.node.raft.append_entries(rpc).await)
    }

    async fn raft_vote(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc = decode(request.get_ref())?;
        encode(&self.node.raft.vote(rpc).await)
    }

    /// Writes the leader's snapshot files as they arrive and installs the
    /// snapshot at the last part. A stream that ends early leaves nothing.
    async fn raft_snapshot(
        &self,
        request: Request<Streaming<SnapshotPart>>,
    ) -> Result<Response<RaftPayload>, Status> {
        let mut parts = request.into_inner();
        let mut incoming = self
            .node
            .catalog
            .incoming_snapshot()
            .map_err(snapshot_status)?;
        while let Some(part) = parts.message().await? {
            match part.part {
                Some(snapshot_part::Part::File(name)) => {
                    incoming.start_file(&name).await.map_err(snapshot_status)?
                }
                Some(snapshot_part::Part::Data(bytes)) => {
                    incoming.append(&bytes).await.map_err(snapshot_status)?
                }
                Some(snapshot_part::Part::Install(bytes)) => {
                    let (vote, meta) = bincode::deserialize(&bytes).map_err(|error| {
                        tracing::warn!(%error, "undecodable snapshot install part");
                        Status::invalid_argument(format!(
                            "undecodable snapshot install part: {error}"
                        ))
                    })?;
                    let snapshot = incoming.finish().await.map_err(snapshot_status)?;
                    let snapshot = openraft::Snapshot {
                        meta,
                        snapshot: Box::new(snapshot),
                    };
                    return encode(&self.node.raft.install_full_snapshot(vote, snapshot).await);
                }
                None => {
                    tracing::warn!("empty snapshot part from the leader");
                    return Err(Status::invalid_argument("empty snapshot part"));
                }
            }
        }
        tracing::warn!("snapshot stream ended before its install part");
        Err(Status::aborted(
            "the snapshot stream ended before its install part; the leader sends it again",
        ))
    }

    async fn propose(
        &self,
        request: Request<ProposeRequest>,
    ) -> Result<Response<ProposeResponse>, Status> {
        let event = prost::Message::decode(request.get_ref().event.as_slice())
            .map_err(|e| Status::invalid_argument(format!("undecodable event: {e}")))?;
        let result = match self.node.propose_local(event).await {
            Ok(result) => result,
            Err(ProposeError::Forward(_)) => {
                return Err(Status::unavailable("not the leader; retry"))
            }
            Err(ProposeError::Failed(error)) => return Err(error.into()),
        };
        let response = bincode::serialize(&result).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ProposeResponse {
            log_index: result.log_index,
            response,
        }))
    }

    async fn read_index(
        &self,
        _: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        let log_id = self
            .node
            .raft
            .ensure_linearizable()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(ReadIndexResponse {
            index: log_id.map(|id| id.index).unwrap_or(0),
        }))
    }

    async fn put_blob(
        &self,
        request: Request<Streaming<PutBlobRequest>>,
    ) -> Result<Response<PutBlobResponse>, Status> {
        let mut stream = request.into_inner();
        let first = stream
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty stream"))??;
        let Some(put_blob_request::Part::Manifest(proto)) = first.part else {
            return Err(Status::invalid_argument(
                "the first message must be the manifest",
            ));
        };
        let manifest = manifest_from_proto(&proto)?;
        if self
            .node
            .blobs
            .contains(&manifest.blob_id)
            .map_err(NodeError::from)?
        {
            return Ok(Response::new(PutBlobResponse {
                already_present: true,
            }));
        }

        let mut writer = BlobWriter::new(self.node.blobs.clone(), manifest, ChunkCheck::Verify)
            .map_err(NodeError::from)?;
        while let Some(message) = stream.next().await {
            let Some(put_blob_request::Part::Chunk(chunk)) = message?.part else {
                return Err(Status::invalid_argument(
                    "expected a chunk after the manifest",
                ));
            };
            // Hashing and the occasional unsynced write of a large blob block.
            writer = tokio::task::spawn_blocking(move || writer.push(chunk).map(|()| writer))
                .await
                .map_err(join_error)?
                .map_err(blob_write_status)?;
        }

        tokio::task::spawn_blocking(move || writer.finish())
            .await
            .map_err(join_error)?
            .map_err(blob_write_status)?;
        Ok(Response::new(PutBlobResponse {
            already_present: false,
        }))
    }

    type GetBlobStream = ChunkStream;

    async fn get_blob(
        &self,
        request: Request<GetBlobRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let request = request.into_inner();
        let id = blob_id(&request.blob_id)?;
        let manifest = self
            .node
            .blobs
            .manifest(&id)
            .map_err(NodeError::from)?
            .ok_or_else(|| Status::not_found(format!("no replica of blob {id} on this node")))?;

        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let blobs = self.node.blobs.clone();
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || {
            let head = BlobChunk {
                part: Some(blob_chunk::Part::Manifest(manifest_to_proto(&manifest))),
            };
            if sender.blocking_send(Ok(head)).is_err() {
                return;
            }
            for index in request.first_chunk..manifest.chunk_count() {
                let message = match blobs.read_chunk(&manifest, index) {
                    Ok(chunk) => Ok(BlobChunk {
                        part: Some(blob_chunk::Part::Chunk(chunk)),
                    }),
                    Err(error) => {
                        tracing::warn!(blob = %manifest.blob_id, chunk = index, %error, "served replica is unreadable");
                        // Blocking-pool threads run inside the runtime, so
                        // the repair task can be spawned from here.
                        node.schedule_local_repair(manifest.blob_id);
                        Err(Status::data_loss(error.to_string()))
                    }
                };
                let failed = message.is_err();
                if sender.blocking_send(message).is_err() || failed {
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn has_blob(
        &self,
        request: Request<HasBlobRequest>,
    ) -> Result<Response<HasBlobResponse>, Status> {
        let id = blob_id(&request.get_ref().blob_id)?;
        let present = self.node.blobs.contains(&id).map_err(NodeError::from)?;
        Ok(Response::new(HasBlobResponse { present }))
    }

    /// Callers record `ReplicaRemoved` first, so no reader is sent here after.
    async fn delete_blob(
        &self,
        request: Request<DeleteBlobRequest>,
    ) -> Result<Response<DeleteBlobResponse>, Status> {
        let id = blob_id(&request.get_ref().blob_id)?;
        self.node.blobs.delete(&id).map_err(NodeError::from)?;
        Ok(Response::new(DeleteBlobResponse {}))
    }

    async fn stats(&self, _: Request<StatsRequest>) -> Result<Response<StatsResponse>, Status> {
        let blobs = self.node.blobs.clone();
        let stats = tokio::task::spawn_blocking(move || blobs.stats())
            .await
            .map_err(join_error)?
            .map_err(NodeError::from)?;
        Ok(Response::new(StatsResponse {
            node_id: self.node.id(),
            blob_count: stats.blobs,
            blob_bytes: stats.bytes,
            last_applied: self.node.catalog.applied_index(),
        }))
    }
}
