//! Background upkeep. The leader restores R copies of every blob after a node
//! stays down past the grace period, and moves copies back to the nodes that
//! placement picks. Every node scrubs its shards and sweeps uncommitted chunks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tessera_blob::placement::{self, NodeLabel};
use tessera_blob::{BlobId, Manifest};
use tessera_catalog::{BlobRecord, NodeId};
use tessera_proto::internal::v1::{DeleteBlobRequest, StatsRequest, StatsResponse};
use tessera_proto::v1::{event, Actor, Event, ReplicaAdded, ReplicaRemoved};
use tokio::sync::mpsc;

use crate::node::Node;
use crate::spool::Spool;
use crate::NodeError;

/// Blob copies made at the same time by one repair pass.
const REPAIR_PARALLELISM: usize = 4;
/// Bytes the scrubber re-hashes per second.
const SCRUB_BYTES_PER_SECOND: u64 = 32 * 1024 * 1024;
/// Age after which chunks of a write that never committed are deleted.
const UNCOMMITTED_GRACE: Duration = Duration::from_secs(3600);

/// One pass's view of the cluster.
pub struct Health {
    /// Members that responded, or have been silent for less than the grace period.
    pub healthy: BTreeSet<NodeId>,
    /// Members that responded just now, with their stats.
    pub reachable: BTreeMap<NodeId, StatsResponse>,
}

/// Replica changes that repair makes for one blob.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BlobRepair {
    pub missing: Vec<NodeId>,
    pub surplus: Vec<NodeId>,
}

impl Node {
    /// Runs repair, scrubbing and sweeping until the process ends.
    pub fn spawn_upkeep(self: &Arc<Self>) {
        let node = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(node.config.repair_interval);
            let mut metrics = node.raft.metrics();
            let mut membership = *metrics.borrow().membership_config.log_id();
            loop {
                // A membership change starts a pass at once: after a node is
                // removed its copies are missing, and the wait for the next
                // tick would add up to a whole interval to the time spent
                // with fewer than R copies.
                tokio::select! {
                    _ = tick.tick() => {}
                    changed = metrics.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let current = *metrics.borrow_and_update().membership_config.log_id();
                        if current == membership {
                            continue;
                        }
                        membership = current;
                        tracing::info!("membership changed, starting a repair pass");
                    }
                }
                if let Err(error) = node.repair_pass().await {
                    tracing::warn!(%error, "repair pass failed");
                }
            }
        });

        let node = self.clone();
        tokio::spawn(async move { node.scrub_forever().await });
    }

    /// Asks every member for its stats, and classifies it.
    pub async fn probe_members(&self) -> Health {
        let members = self.members();
        let probes = members.iter().map(|(id, addr)| async move {
            let mut client = self.peers.client(&addr.grpc_addr);
            let call = client.stats(StatsRequest {});
            let answer = tokio::time::timeout(Duration::from_secs(1), call).await;
            (
                *id,
                answer.ok().and_then(|r| r.ok()).map(|r| r.into_inner()),
            )
        });
        let answers = futures::future::join_all(probes).await;

        let mut health = Health {
            healthy: BTreeSet::new(),
            reachable: BTreeMap::new(),
        };
        for (id, answer) in answers {
            let down_for = self.note_reachability(id, answer.is_some());
            let within_grace = down_for.is_none_or(|d| d < self.config.repair_grace);
            if within_grace {
                health.healthy.insert(id);
            }
            if let Some(stats) = answer {
                health.reachable.insert(id, stats);
            }
        }
        health
    }

    /// Runs one repair pass and returns the number of blobs it acted on.
    /// Does nothing unless this node leads.
    pub async fn repair_pass(self: &Arc<Self>) -> Result<usize, NodeError> {
        if self.leader() != Some(self.id()) {
            return Ok(0);
        }
        let health = self.probe_members().await;
        let labels: Vec<NodeLabel> = self
            .member_labels()
            .into_iter()
            .filter(|n| health.healthy.contains(&n.id))
            .collect();
        let wanted = self.config.replication_factor.min(labels.len());
        let blobs = self.catalog.blobs()?;
        let under = self.count_under_replicated(&blobs, &health);
        self.metrics.under_replicated.set(under as i64);

        let work: Vec<(BlobId, BlobRepair)> = blobs
            .into_iter()
            .filter_map(|(id, record)| {
                let blob = BlobId::from_slice(&id).ok()?;
                let plan = plan_repair(&blob, &record, &labels, wanted, &health);
                (plan != BlobRepair::default()).then_some((blob, plan))
            })
            .collect();

        let count = work.len();
        futures::stream::iter(work)
            .for_each_concurrent(REPAIR_PARALLELISM, |(blob, plan)| async move {
                if let Err(error) = self.repair_blob(blob, plan).await {
                    tracing::warn!(%blob, %error, "blob repair failed");
                }
            })
            .await;
        Ok(count)
    }

    async fn repair_blob(
        self: &Arc<Self>,
        blob: BlobId,
        plan: BlobRepair,
    ) -> Result<(), NodeError> {
        if !plan.missing.is_empty() {
            let (manifest, spool) = self.fetch_blob(blob, None).await?;
            let spool = Arc::new(spool);
            for target in &plan.missing {
                self.put_replica(*target, &manifest, &spool).await?;
                self.propose(replica_event(blob, *target, true, self.id()))
                    .await?;
                tracing::info!(%blob, target_node = target, "replica added");
            }
        }
        for node in plan.surplus {
            self.propose(replica_event(blob, node, false, self.id()))
                .await?;
            self.delete_remote_replica(node, blob).await;
            tracing::info!(%blob, node_id = node, "surplus replica removed");
        }
        Ok(())
    }

    async fn delete_remote_replica(&self, node: NodeId, blob: BlobId) {
        let Some(addr) = self.members().get(&node).map(|n| n.grpc_addr.clone()) else {
            return;
        };
        if node == self.id() {
            let _ = self.blobs.delete(&blob);
            return;
        }
        let request = DeleteBlobRequest {
            blob_id: blob.as_bytes().to_vec(),
        };
        if let Err(status) = self.peers.client(&addr).delete_blob(request).await {
            tracing::warn!(%blob, node_id = node, error = %status.message(), "replica delete failed");
        }
    }

    /// Reads a blob, verified, into a spool, never from `exclude`.
    pub async fn fetch_blob(
        self: &Arc<Self>,
        blob: BlobId,
        exclude: Option<NodeId>,
    ) -> Result<(Manifest, Spool), NodeError> {
        let (sender, mut receiver) = mpsc::channel(4);
        let node = self.clone();
        let reader =
            tokio::spawn(async move { node.read_blob_excluding(blob, &sender, exclude).await });

        let mut spool = Spool::new(
            self.config.data_dir.join("spool"),
            self.config.spool_memory_limit.as_u64(),
        );
        while let Some(chunk) = receiver.recv().await {
            spool.append(chunk?)?;
        }
        let manifest = reader.await.map_err(crate::read_path::join_error)??;
        Ok((manifest, spool))
    }

    /// Replaces this node's copy of `blob` with one read from another replica.
    pub async fn repair_local_replica(self: &Arc<Self>, blob: BlobId) -> Result<(), NodeError> {
        let (manifest, spool) = self.fetch_blob(blob, Some(self.id())).await?;
        self.blobs.delete(&blob)?;
        self.put_replica(self.id(), &manifest, &Arc::new(spool))
            .await
    }

    async fn scrub_forever(self: Arc<Self>) {
        let mut cursor = None;
        let mut last_sweep = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let blobs = self.blobs.clone();
            let step = tokio::task::spawn_blocking(move || {
                blobs.scrub_step(cursor, SCRUB_BYTES_PER_SECOND)
            })
            .await;
            match step {
                Ok(Ok(step)) => {
                    for (blob, chunk) in &step.corrupt {
                        tracing::warn!(%blob, chunk, "scrubber found a corrupt chunk");
                        self.schedule_local_repair(*blob);
                    }
                    cursor = step.next_cursor;
                }
                Ok(Err(error)) => tracing::warn!(%error, "scrub step failed"),
                Err(error) => tracing::warn!(%error, "scrub task failed"),
            }
            if last_sweep.elapsed() > Duration::from_secs(600) {
                last_sweep = std::time::Instant::now();
                if let Err(error) = self.blobs.sweep_uncommitted(UNCOMMITTED_GRACE) {
                    tracing::warn!(%error, "sweeping uncommitted chunks failed");
                }
            }
        }
    }
}

/// Decides which copies of one blob to add and which to drop.
///
/// `labels` are the healthy members and `wanted` is R capped at their count.
/// Copies go to wanted nodes that respond and lack one. Copies elsewhere (on a
/// fallback node, on a node down past the grace period, on a former member)
/// are surplus, dropped only once every wanted node has a copy.
pub fn plan_repair(
    blob: &BlobId,
    record: &BlobRecord,
    labels: &[NodeLabel],
    wanted: usize,
    health: &Health,
) -> BlobRepair {
    let desired = placement::place(blob, labels, wanted);
    let missing: Vec<NodeId> = desired
        .iter()
        .copied()
        .filter(|id| !record.replicas.contains(id) && health.reachable.contains_key(id))
        .collect();

    let all_in_place = desired.iter().all(|id| record.replicas.contains(id));
    let surplus = match all_in_place {
        true => record
            .replicas
            .iter()
            .copied()
            .filter(|id| !desired.contains(id))
            .collect(),
        false => Vec::new(),
    };
    BlobRepair { missing, surplus }
}

impl Node {
    /// Counts blobs with fewer copies on responding nodes than the replication
    /// factor in force. `cluster status` and the metric both report this.
    pub fn count_under_replicated(
        &self,
        blobs: &[(Vec<u8>, BlobRecord)],
        health: &Health,
    ) -> usize {
        let wanted = self.effective_replicas();
        blobs
            .iter()
            .filter(|(_, record)| is_under_replicated(record, wanted, health))
            .count()
    }
}

/// Returns whether fewer than `wanted` copies sit on nodes that respond now.
fn is_under_replicated(record: &BlobRecord, wanted: usize, health: &Health) -> bool {
    let live = record
        .replicas
        .iter()
        .filter(|id| health.reachable.contains_key(id))
        .count();
    live < wanted
}

fn replica_event(blob: BlobId, node_id: NodeId, added: bool, actor: NodeId) -> Event {
    let blob_id = blob.as_bytes().to_vec();
    let body = if added {
        event::Body::ReplicaAdded(ReplicaAdded { blob_id, node_id })
    } else {
        event::Body::ReplicaRemoved(ReplicaRemoved { blob_id, node_id })
    };
    Event {
        actor: Some(Actor {
            kind: Some(tessera_proto::v1::actor::Kind::NodeId(actor)),
            reason: "repair".into(),
        }),
        body: Some(body),
        ..Event::default()
    }
}
