//! Storing an instance: parse and validate the header, write the blob to its
//! replicas, propose `InstanceStored`, and acknowledge only once it is
//! committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::StreamExt;
use tessera_blob::{placement, BlobId, BlobWriter, ChunkCheck, Manifest};
use tessera_catalog::{NodeId, Outcome};
use tessera_proto::internal::v1::{put_blob_request, PutBlobRequest};
use tessera_proto::v1::{actor, event, Actor, Event, IngestResult, IngestStatus, InstanceStored};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::convert::{attributes_to_proto, manifest_to_proto};
use crate::node::Node;
use crate::spool::Spool;
use crate::NodeError;

/// Time allowed for one replica write, per 64 MiB of blob, at least.
const REPLICA_TIMEOUT_PER_64MIB: Duration = Duration::from_secs(30);
/// Largest instance whose decoded data set is compared with a stored copy
/// that has other bytes; both copies are held in memory for it.
const DECODED_COMPARE_LIMIT: u64 = 256 * 1024 * 1024;

impl Node {
    /// Stores one received instance and reports the outcome. Returns no error:
    /// every problem becomes the instance's result, with a status and reason.
    /// `actor` is who sent it (a calling AE title, a user, or this node), and
    /// goes into the `InstanceStored` event for the audit trail.
    pub async fn store(
        self: &Arc<Self>,
        actor: actor::Kind,
        label: String,
        manifest: Manifest,
        spool: Spool,
    ) -> IngestResult {
        let started = Instant::now();
        let mut result = IngestResult {
            label,
            blob_id: manifest.blob_id.to_hex(),
            size: manifest.size,
            ..IngestResult::default()
        };

        let outcome = self
            .store_inner(actor, &mut result, manifest, Arc::new(spool))
            .await;
        let (status, reason) = match outcome {
            Ok(status) => (status, String::new()),
            Err(StoreFailure::Rejected(reason)) => (IngestStatus::Rejected, reason),
            Err(StoreFailure::Unavailable(error)) => (IngestStatus::Unavailable, error.to_string()),
        };
        result.status = status as i32;
        result.reason = reason;
        self.metrics
            .record_store(status, result.size, started.elapsed());
        result
    }

    async fn store_inner(
        self: &Arc<Self>,
        actor: actor::Kind,
        result: &mut IngestResult,
        manifest: Manifest,
        spool: Arc<Spool>,
    ) -> Result<IngestStatus, StoreFailure> {
        let attributes =
            tessera_dicom::read_index_attributes_with_size(spool.reader(), spool.size())
                .map_err(|e| StoreFailure::Rejected(e.to_string()))?;
        result.study_instance_uid = attributes.study_instance_uid.clone();
        result.series_instance_uid = attributes.series_instance_uid.clone();
        result.sop_instance_uid = attributes.sop_instance_uid.clone();

        let span = tracing::info_span!(
            "store",
            node_id = self.id(),
            study = %attributes.study_instance_uid,
            series = %attributes.series_instance_uid,
            instance = %attributes.sop_instance_uid,
            blob = %manifest.blob_id,
        );
        async move {
            let duplicate = self
                .check_duplicate(&attributes.sop_instance_uid, &manifest, &spool)
                .await?;
            if let Some(status) = duplicate {
                return Ok(status);
            }
            let replicas = self
                .write_replicas(&manifest, &spool)
                .await
                .map_err(StoreFailure::Unavailable)?;
            self.commit_instance(actor, result, attributes, &manifest, replicas, &spool)
                .await
        }
        .instrument(span)
        .await
    }

    /// Resolves a repeated SOP Instance UID from the local index without a new
    /// event. A race between two first stores is settled by the state machine.
    async fn check_duplicate(
        self: &Arc<Self>,
        sop_uid: &str,
        manifest: &Manifest,
        spool: &Arc<Spool>,
    ) -> Result<Option<IngestStatus>, StoreFailure> {
        let existing = self
            .catalog
            .instance(sop_uid)
            .map_err(|e| StoreFailure::Unavailable(e.into()))?;
        let Some(existing) = existing else {
            return Ok(None);
        };
        if existing.stored.blob_id == manifest.blob_id.as_bytes() {
            return Ok(Some(IngestStatus::AlreadyStored));
        }
        self.resolve_conflict(sop_uid, &existing.stored.blob_id, spool)
            .await
            .map(Some)
    }

    /// Resolves different bytes under a stored SOP Instance UID. A C-STORE SCP
    /// writes its own file meta group around the data set it receives, so when
    /// only that group differs, the instance is the one already stored.
    /// Otherwise the duplicate policy rejects it.
    async fn resolve_conflict(
        self: &Arc<Self>,
        sop_uid: &str,
        existing_blob: &[u8],
        spool: &Arc<Spool>,
    ) -> Result<IngestStatus, StoreFailure> {
        let same = self
            .same_content(existing_blob, spool)
            .await
            .map_err(StoreFailure::Unavailable)?;
        if same {
            tracing::info!(instance = %sop_uid, "same data set as the stored instance, packaged differently");
            return Ok(IngestStatus::AlreadyStored);
        }
        Err(StoreFailure::Rejected(conflict_reason(
            sop_uid,
            existing_blob,
        )))
    }

    /// Compares the transfer syntax and data set of the stored blob with the
    /// received instance, ignoring the file meta group.
    async fn same_content(
        self: &Arc<Self>,
        existing_blob: &[u8],
        spool: &Arc<Spool>,
    ) -> Result<bool, NodeError> {
        let received = spool.clone();
        let received = tokio::task::spawn_blocking(move || {
            let mut digest = tessera_dicom::ContentDigest::new();
            let mut reader = received.reader();
            let mut buffer = vec![0u8; 256 * 1024];
            loop {
                let read = std::io::Read::read(&mut reader, &mut buffer)
                    .map_err(tessera_dicom::DicomError::Io)?;
                if read == 0 {
                    break;
                }
                digest.update(&buffer[..read])?;
            }
            digest.finish()
        });

        let blob = BlobId::from_slice(existing_blob)?;
        let (sender, mut receiver) = mpsc::channel(4);
        let node = self.clone();
        let reading = tokio::spawn(async move { node.read_blob(blob, &sender).await });
        let mut stored = Ok(tessera_dicom::ContentDigest::new());
        while let Some(chunk) = receiver.recv().await {
            let chunk = chunk?;
            if let Ok(digest) = &mut stored {
                if let Err(error) = digest.update(&chunk) {
                    stored = Err(error);
                }
            }
        }
        reading.await.map_err(|e| NodeError::Raft {
            operation: "stored instance read",
            reason: e.to_string(),
        })??;

        let received = received.await.map_err(|e| NodeError::Raft {
            operation: "received instance digest",
            reason: e.to_string(),
        })?;
        // An instance that cannot be digested differs from every other one.
        let stored = stored.and_then(|digest| digest.finish());
        if matches!((received, stored), (Ok(a), Ok(b)) if a == b) {
            return Ok(true);
        }
        self.same_decoded(existing_blob, spool).await
    }

    /// Compares the decoded data sets of the stored blob and the received
    /// instance, so that a resend re-encoded between implicit and explicit
    /// VR little endian counts as the same instance. Both are read into
    /// memory, so instances above `DECODED_COMPARE_LIMIT` compare unequal.
    async fn same_decoded(
        self: &Arc<Self>,
        existing_blob: &[u8],
        spool: &Arc<Spool>,
    ) -> Result<bool, NodeError> {
        if spool.size() > DECODED_COMPARE_LIMIT {
            return Ok(false);
        }
        let blob = BlobId::from_slice(existing_blob)?;
        let (sender, mut receiver) = mpsc::channel(4);
        let node = self.clone();
        let reading = tokio::spawn(async move { node.read_blob(blob, &sender).await });
        let mut stored = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            stored.extend_from_slice(&chunk?);
            if stored.len() as u64 > DECODED_COMPARE_LIMIT {
                return Ok(false);
            }
        }
        reading.await.map_err(|e| NodeError::Raft {
            operation: "stored instance read",
            reason: e.to_string(),
        })??;

        let received = spool.clone();
        let compare = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::with_capacity(received.size() as usize);
            std::io::Read::read_to_end(&mut received.reader(), &mut bytes)?;
            Ok::<bool, std::io::Error>(tessera_dicom::same_decoded_data_set(&stored, &bytes))
        });
        match compare.await {
            Ok(Ok(same)) => Ok(same),
            Ok(Err(error)) => {
                tracing::warn!(%error, "failed to read the received instance for comparison");
                Ok(false)
            }
            Err(error) => Err(NodeError::Raft {
                operation: "decoded data set comparison",
                reason: error.to_string(),
            }),
        }
    }

    async fn commit_instance(
        self: &Arc<Self>,
        actor: actor::Kind,
        result: &mut IngestResult,
        attributes: tessera_dicom::IndexAttributes,
        manifest: &Manifest,
        replicas: Vec<NodeId>,
        spool: &Arc<Spool>,
    ) -> Result<IngestStatus, StoreFailure> {
        let sop_uid = attributes.sop_instance_uid.clone();
        let event = Event {
            actor: Some(Actor {
                kind: Some(actor),
                reason: String::new(),
            }),
            body: Some(event::Body::InstanceStored(InstanceStored {
                attributes: Some(attributes_to_proto(attributes)),
                blob_id: manifest.blob_id.as_bytes().to_vec(),
                size: manifest.size,
                replicas,
            })),
            ..Event::default()
        };

        let applied = self
            .propose(event)
            .await
            .map_err(StoreFailure::Unavailable)?;
        result.log_index = applied.log_index;
        match applied.outcome {
            Outcome::Applied => {
                tracing::info!(log_index = applied.log_index, "instance stored");
                Ok(IngestStatus::Stored)
            }
            Outcome::AlreadyStored { .. } => Ok(IngestStatus::AlreadyStored),
            Outcome::Conflict { existing_blob_id } => {
                self.resolve_conflict(&sop_uid, &existing_blob_id, spool)
                    .await
            }
            Outcome::Ignored { reason } => Err(StoreFailure::Rejected(reason)),
        }
    }

    /// Writes the blob to its placement targets in parallel, replacing each
    /// failed target with the next node in rendezvous order. Returns the nodes
    /// that hold a durable copy; fails when fewer than W do.
    pub async fn write_replicas(
        self: &Arc<Self>,
        manifest: &Manifest,
        spool: &Arc<Spool>,
    ) -> Result<Vec<NodeId>, NodeError> {
        let nodes = self.member_labels();
        let wanted = self.effective_replicas();
        let required = self.config.write_quorum_for(wanted);
        let targets = placement::place(&manifest.blob_id, &nodes, wanted);
        let mut fallbacks: Vec<NodeId> = placement::rank(&manifest.blob_id, &nodes)
            .into_iter()
            .filter(|id| !targets.contains(id))
            .collect();

        let mut stored = Vec::new();
        let mut reasons = Vec::new();
        let mut pending = targets;
        while !pending.is_empty() {
            let writes = pending
                .iter()
                .map(|id| self.put_replica(*id, manifest, spool));
            let results = join_all(writes).await;
            let mut failed = 0;
            for (id, outcome) in pending.iter().zip(results) {
                match outcome {
                    Ok(()) => stored.push(*id),
                    Err(error) => {
                        tracing::warn!(target_node = id, blob = %manifest.blob_id, %error, "replica write failed");
                        reasons.push(format!("node {id}: {error}"));
                        failed += 1;
                    }
                }
            }
            let take = failed.min(fallbacks.len());
            pending = fallbacks.drain(..take).collect();
        }

        if stored.len() >= required {
            return Ok(stored);
        }
        Err(NodeError::TooFewReplicas {
            blob_id: manifest.blob_id.to_hex(),
            stored: stored.len(),
            required,
            reasons: reasons.join("; "),
        })
    }

    /// Writes one durable copy of the blob on `target`.
    pub async fn put_replica(
        self: &Arc<Self>,
        target: NodeId,
        manifest: &Manifest,
        spool: &Arc<Spool>,
    ) -> Result<(), NodeError> {
        if target == self.id() {
            return self.put_local_replica(manifest, spool).await;
        }

        let addr = self
            .members()
            .get(&target)
            .map(|node| node.grpc_addr.clone())
            .ok_or_else(|| NodeError::InvalidRequest(format!("node {target} is not a member")))?;
        let timeout = replica_timeout(manifest.size);
        let upload = self.upload_replica(target, &addr, manifest, spool.clone());
        let result = tokio::time::timeout(timeout, upload).await;
        let reachable = matches!(result, Ok(Ok(())));
        self.note_reachability(target, reachable);
        match result {
            Ok(outcome) => outcome,
            Err(_) => Err(NodeError::PeerUnreachable {
                node_id: target,
                addr,
                reason: format!("replica write timed out after {timeout:?}"),
            }),
        }
    }

    async fn upload_replica(
        &self,
        target: NodeId,
        addr: &str,
        manifest: &Manifest,
        spool: Arc<Spool>,
    ) -> Result<(), NodeError> {
        let first = PutBlobRequest {
            part: Some(put_blob_request::Part::Manifest(manifest_to_proto(
                manifest,
            ))),
        };
        let count = spool.chunk_count();
        let chunks = futures::stream::iter(0..count).map(move |index| {
            let chunk = spool.chunk(index).unwrap_or_default();
            PutBlobRequest {
                part: Some(put_blob_request::Part::Chunk(chunk)),
            }
        });
        let stream = futures::stream::iter([first]).chain(chunks);

        let mut client = self.peers.client(addr);
        client
            .put_blob(stream)
            .await
            .map_err(|status| NodeError::PeerUnreachable {
                node_id: target,
                addr: addr.to_string(),
                reason: status.message().to_string(),
            })?;
        Ok(())
    }

    async fn put_local_replica(
        &self,
        manifest: &Manifest,
        spool: &Arc<Spool>,
    ) -> Result<(), NodeError> {
        let blobs = self.blobs.clone();
        let manifest = manifest.clone();
        let spool = spool.clone();
        tokio::task::spawn_blocking(move || {
            if blobs.contains(&manifest.blob_id)? {
                return Ok(());
            }
            // The spool's chunks are the ones this node's chunker hashed into
            // the manifest, so hashing them again would prove nothing.
            let mut writer = BlobWriter::new(blobs, manifest, ChunkCheck::LengthsOnly)?;
            for index in 0..spool.chunk_count() {
                writer.push(spool.chunk(index)?)?;
            }
            writer.finish()?;
            Ok(())
        })
        .await
        .map_err(|e| NodeError::Raft {
            operation: "local replica write",
            reason: e.to_string(),
        })?
    }
}

/// Reason an instance was not stored.
enum StoreFailure {
    /// The instance itself is unacceptable; retrying will not help.
    Rejected(String),
    /// The cluster could not store it now; the client may retry.
    Unavailable(NodeError),
}

fn conflict_reason(sop_uid: &str, existing_blob: &[u8]) -> String {
    format!(
        "SOP Instance UID {sop_uid} is already stored with another data set or transfer syntax (blob {}); \
         the stored instance is kept. Give the changed instance a new SOP Instance UID",
        hex::encode(existing_blob)
    )
}

fn replica_timeout(size: u64) -> Duration {
    let units = size / (64 * 1024 * 1024) + 1;
    REPLICA_TIMEOUT_PER_64MIB * units as u32
}
