//! Reading a blob: from the local replica when there is one, else the nearest
//! healthy one (same site first), verifying every chunk against the manifest.
//! A replica that fails or returns corrupt data is skipped and the read
//! resumes at the same chunk on the next one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tessera_blob::{BlobHasher, BlobId, Manifest};
use tessera_catalog::NodeId;
use tessera_proto::internal::v1::{blob_chunk, GetBlobRequest};
use tokio::sync::mpsc;

use crate::convert::manifest_from_proto;
use crate::node::Node;
use crate::NodeError;

/// Time a replica may take to send the next part of a blob (its manifest or
/// one chunk of at most 64 MiB) before the read moves on to the next replica.
/// A peer that stalls while its connection stays up would otherwise hold the
/// read, and a store that compares a resent instance, for ever.
const REPLICA_PART_TIMEOUT: Duration = Duration::from_secs(30);

/// Progress of a read: chunks already delivered and the hash so far.
struct ReadProgress {
    next_chunk: u32,
    manifest: Option<Manifest>,
    hasher: BlobHasher,
    failures: Vec<String>,
}

impl Node {
    /// Streams the verified bytes of `blob` into `sink`, chunk by chunk, and
    /// returns the manifest. Fails when no replica can deliver the rest; the
    /// caller has then received only a prefix.
    pub async fn read_blob(
        self: &Arc<Self>,
        blob: BlobId,
        sink: &mpsc::Sender<Result<Bytes, NodeError>>,
    ) -> Result<Manifest, NodeError> {
        self.read_blob_excluding(blob, sink, None).await
    }

    /// Like `read_blob`, never reading from `exclude`.
    pub async fn read_blob_excluding(
        self: &Arc<Self>,
        blob: BlobId,
        sink: &mpsc::Sender<Result<Bytes, NodeError>>,
        exclude: Option<NodeId>,
    ) -> Result<Manifest, NodeError> {
        let mut progress = ReadProgress {
            next_chunk: 0,
            manifest: None,
            hasher: BlobHasher::new(),
            failures: Vec::new(),
        };

        for replica in self.replica_order(&blob)? {
            if Some(replica) == exclude {
                continue;
            }
            let outcome = if replica == self.id() {
                self.read_local(&blob, &mut progress, sink).await
            } else {
                self.read_remote(replica, &blob, &mut progress, sink).await
            };
            match outcome {
                Ok(()) => return finish(&blob, progress),
                Err(error) => {
                    tracing::warn!(replica, %blob, %error, "replica read failed, trying the next one");
                    progress.failures.push(format!("node {replica}: {error}"));
                }
            }
        }

        Err(NodeError::NoReplica {
            blob_id: blob.to_hex(),
            reasons: progress.failures.join("; "),
        })
    }

    /// Replica nodes to try: this node, then same-site nodes, then the rest;
    /// indexed replicas before other members (a copy may sit on a fallback node).
    fn replica_order(&self, blob: &BlobId) -> Result<Vec<NodeId>, NodeError> {
        let record = self.catalog.blob(blob.as_bytes())?;
        let indexed: Vec<NodeId> = record
            .map(|r| r.replicas.into_iter().collect())
            .unwrap_or_default();
        let members = self.members();
        let site_of = |id: &NodeId| members.get(id).map(|n| n.site.clone()).unwrap_or_default();
        let my_site = self.config.site.clone();

        let mut order: Vec<NodeId> = indexed.clone();
        order.sort_by_key(|id| (*id != self.id(), site_of(id) != my_site));
        let others = tessera_blob::placement::rank(blob, &self.member_labels());
        order.extend(others.into_iter().filter(|id| !indexed.contains(id)));
        Ok(order)
    }

    async fn read_local(
        self: &Arc<Self>,
        blob: &BlobId,
        progress: &mut ReadProgress,
        sink: &mpsc::Sender<Result<Bytes, NodeError>>,
    ) -> Result<(), NodeError> {
        let blobs = self.blobs.clone();
        let id = *blob;
        let manifest = tokio::task::spawn_blocking(move || blobs.manifest(&id))
            .await
            .map_err(join_error)??
            .ok_or_else(|| NodeError::NotFound {
                what: "local replica of blob",
                value: blob.to_hex(),
            })?;
        let manifest = adopt_manifest(progress, manifest)?;

        while progress.next_chunk < manifest.chunk_count() {
            let blobs = self.blobs.clone();
            let (m, index) = (manifest.clone(), progress.next_chunk);
            let chunk = tokio::task::spawn_blocking(move || blobs.read_chunk(&m, index))
                .await
                .map_err(join_error)?;
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    self.schedule_local_repair(*blob);
                    return Err(error.into());
                }
            };
            deliver(progress, chunk, sink).await?;
        }
        Ok(())
    }

    async fn read_remote(
        &self,
        replica: NodeId,
        blob: &BlobId,
        progress: &mut ReadProgress,
        sink: &mpsc::Sender<Result<Bytes, NodeError>>,
    ) -> Result<(), NodeError> {
        let addr = self
            .members()
            .get(&replica)
            .map(|n| n.grpc_addr.clone())
            .ok_or_else(|| NodeError::InvalidRequest(format!("node {replica} is not a member")))?;
        let unreachable = |reason: String| NodeError::PeerUnreachable {
            node_id: replica,
            addr: addr.clone(),
            reason,
        };
        let request = GetBlobRequest {
            blob_id: blob.as_bytes().to_vec(),
            first_chunk: progress.next_chunk,
        };
        let stalled = || unreachable(format!("sent nothing for {REPLICA_PART_TIMEOUT:?}"));
        let mut client = self.peers.client(&addr);
        let mut stream = tokio::time::timeout(REPLICA_PART_TIMEOUT, client.get_blob(request))
            .await
            .map_err(|_| stalled())?
            .map_err(|s| unreachable(s.message().to_string()))?
            .into_inner();

        let mut manifest = None;
        loop {
            let next = tokio::time::timeout(REPLICA_PART_TIMEOUT, stream.next()).await;
            let Some(message) = next.map_err(|_| stalled())? else {
                break;
            };
            let message = message.map_err(|s| unreachable(s.message().to_string()))?;
            match message.part {
                Some(blob_chunk::Part::Manifest(proto)) => {
                    manifest = Some(adopt_manifest(progress, manifest_from_proto(&proto)?)?);
                }
                Some(blob_chunk::Part::Chunk(chunk)) => {
                    let manifest = manifest
                        .as_ref()
                        .ok_or_else(|| unreachable("sent a chunk before the manifest".into()))?;
                    manifest.verify_chunk(progress.next_chunk, &chunk)?;
                    deliver(progress, chunk, sink).await?;
                }
                None => {}
            }
        }

        let complete = manifest.is_some_and(|m| progress.next_chunk == m.chunk_count());
        if complete {
            return Ok(());
        }
        Err(unreachable("stream ended before the last chunk".into()))
    }

    /// Rewrites the local replica of `blob` from a healthy one, in the background.
    pub(crate) fn schedule_local_repair(self: &Arc<Self>, blob: BlobId) {
        let node = self.clone();
        tokio::spawn(async move {
            match node.repair_local_replica(blob).await {
                Ok(()) => tracing::info!(%blob, "repaired corrupt local replica"),
                Err(error) => tracing::warn!(%blob, %error, "local replica repair failed"),
            }
        });
    }
}

/// Checks a replica's manifest against the one already in use.
fn adopt_manifest(progress: &mut ReadProgress, manifest: Manifest) -> Result<Manifest, NodeError> {
    match &progress.manifest {
        Some(current) if current.chunk_hashes != manifest.chunk_hashes => {
            Err(NodeError::InvalidRequest(format!(
                "replica manifest of blob {} disagrees with the first one read",
                manifest.blob_id
            )))
        }
        Some(current) => Ok(current.clone()),
        None => {
            progress.manifest = Some(manifest.clone());
            Ok(manifest)
        }
    }
}

async fn deliver(
    progress: &mut ReadProgress,
    chunk: Bytes,
    sink: &mpsc::Sender<Result<Bytes, NodeError>>,
) -> Result<(), NodeError> {
    if !chunk_is_whole_blob(progress) {
        progress.hasher.update(&chunk);
    }
    progress.next_chunk += 1;
    sink.send(Ok(chunk))
        .await
        .map_err(|_| NodeError::InvalidRequest("the reader went away".into()))
}

/// See `Manifest::is_one_chunk`: its chunk was verified before delivery.
fn chunk_is_whole_blob(progress: &ReadProgress) -> bool {
    progress
        .manifest
        .as_ref()
        .is_some_and(Manifest::is_one_chunk)
}

/// Checks that the delivered bytes hash to the blob id.
fn finish(blob: &BlobId, progress: ReadProgress) -> Result<Manifest, NodeError> {
    if chunk_is_whole_blob(&progress)
        && progress.manifest.as_ref().map(|m| &m.blob_id) == Some(blob)
    {
        return Ok(progress.manifest.expect("checked"));
    }
    let actual = progress.hasher.finish();
    if let (true, Some(manifest)) = (actual == *blob, progress.manifest) {
        return Ok(manifest);
    }
    Err(NodeError::NoReplica {
        blob_id: blob.to_hex(),
        reasons: format!("bytes read hash to {actual}, not to the blob id"),
    })
}

pub(crate) fn join_error(error: tokio::task::JoinError) -> NodeError {
    NodeError::Raft {
        operation: "blocking task",
        reason: error.to_string(),
    }
}
