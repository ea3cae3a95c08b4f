//! The public Archive service: ingest, query, retrieve and the change feed.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use tessera_blob::BlobId;
use tessera_catalog::{Level, StoredInstance};
use tessera_proto::v1::archive_server::Archive;
use tessera_proto::v1::*;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};

use crate::node::Node;
use crate::spool::IncomingInstance;
use crate::NodeError;

pub struct ArchiveService {
    pub node: Arc<Node>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Journal events sent per read while catching up a watcher.
const WATCH_BATCH: usize = 256;

#[tonic::async_trait]
impl Archive for ArchiveService {
    type IngestStream = BoxStream<IngestResult>;

    async fn ingest(
        &self,
        request: Request<Streaming<IngestRequest>>,
    ) -> Result<Response<Self::IngestStream>, Status> {
        let (sender, receiver) = mpsc::channel(16);
        let node = self.node.clone();
        let stream = request.into_inner();
        tokio::spawn(async move {
            if let Err(status) = ingest_stream(node, stream, &sender).await {
                let _ = sender.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<QueryResponse>, Status> {
        let request = request.into_inner();
        let level = level_from_proto(request.level())?;
        if !request.allow_stale {
            self.node.read_barrier().await?;
        }

        let keys: BTreeMap<String, String> = request.keys.into_iter().collect();
        let page = self
            .node
            .catalog
            .query(
                level,
                &keys,
                request.offset as usize,
                request.limit as usize,
            )
            .map_err(NodeError::from)?;
        // TODO: the gRPC QueryRecord has no sequences, so sequence keys
        // narrow the matches but their items are not returned here.
        let records = page
            .records
            .into_iter()
            .map(|record| QueryRecord {
                attributes: record.attributes.into_iter().collect(),
            })
            .collect();
        Ok(Response::new(QueryResponse {
            records,
            total: page.total,
        }))
    }

    type RetrieveStream = BoxStream<RetrieveResponse>;

    async fn retrieve(
        &self,
        request: Request<RetrieveRequest>,
    ) -> Result<Response<Self::RetrieveStream>, Status> {
        let request = request.into_inner();
        self.node.read_barrier().await?;
        let instances = select_instances(&self.node, &request)?;

        let (sender, receiver) = mpsc::channel(4);
        let node = self.node.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            for instance in instances {
                if let Err(status) = send_instance(&node, instance, &sender).await {
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            }
            node.metrics
                .retrieve_seconds
                .observe(started.elapsed().as_secs_f64());
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    type WatchStream = BoxStream<JournalEntry>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let from = request.into_inner().from_index.max(1);
        let (sender, receiver) = mpsc::channel(WATCH_BATCH);
        let node = self.node.clone();
        tokio::spawn(async move { follow_journal(node, from, sender).await });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }
}

/// Instances of one ingest stream that may be stored at the same time, so
/// that the stream receives the next instance while earlier ones are synced
/// and committed. Each keeps its spool, at most `spool_memory_limit` of memory.
const INGEST_IN_FLIGHT: usize = 4;

/// Receives instances from one ingest stream and returns a result for each, in order.
async fn ingest_stream(
    node: Arc<Node>,
    stream: Streaming<IngestRequest>,
    sender: &mpsc::Sender<Result<IngestResult, Status>>,
) -> Result<(), Status> {
    let (pending, stores) = mpsc::channel(INGEST_IN_FLIGHT);
    let receiving = receive_instances(node, stream, pending);
    let forwarding = forward_results(stores, sender.clone());
    let (received, ()) = tokio::join!(receiving, forwarding);
    received
}

/// Reads the stream and starts storing each instance as soon as it ends.
/// Returns when the stream ends, fails, or the client stops reading results.
async fn receive_instances(
    node: Arc<Node>,
    mut stream: Streaming<IngestRequest>,
    pending: mpsc::Sender<JoinHandle<IngestResult>>,
) -> Result<(), Status> {
    let mut current: Option<(String, IncomingInstance)> = None;
    while let Some(message) = stream.next().await {
        match message?.part {
            Some(ingest_request::Part::Begin(begin)) => {
                let incoming = IncomingInstance::new(
                    node.config.chunk_size.as_u64() as u32,
                    &node.config.data_dir.join("spool"),
                    node.config.spool_memory_limit.as_u64(),
                );
                current = Some((begin.label, incoming));
            }
            Some(ingest_request::Part::Data(data)) => {
                let (_, incoming) = current
                    .as_mut()
                    .ok_or_else(|| Status::invalid_argument("data before begin"))?;
                incoming.push(&data)?;
            }
            Some(ingest_request::Part::End(_)) => {
                let (label, incoming) = current
                    .take()
                    .ok_or_else(|| Status::invalid_argument("end before begin"))?;
                let (manifest, spool) = incoming.finish()?;
                // Clients do not authenticate yet, so the receiving node is the actor.
                let actor = actor::Kind::NodeId(node.id());
                let node = node.clone();
                let store =
                    tokio::spawn(async move { node.store(actor, label, manifest, spool).await });
                if pending.send(store).await.is_err() {
                    return Ok(());
                }
            }
            None => return Err(Status::invalid_argument("empty ingest message")),
        }
    }
    Ok(())
}

/// Sends the result of each started store in the order the instances arrived.
async fn forward_results(
    mut stores: mpsc::Receiver<JoinHandle<IngestResult>>,
    sender: mpsc::Sender<Result<IngestResult, Status>>,
) {
    while let Some(store) = stores.recv().await {
        let result = store.await.map_err(|error| {
            tracing::error!(%error, "ingest store task failed");
            Status::internal(format!("store task failed: {error}"))
        });
        let failed = result.is_err();
        if sender.send(result).await.is_err() || failed {
            return;
        }
    }
}

fn level_from_proto(level: QueryLevel) -> Result<Level, Status> {
    match level {
        QueryLevel::Patient => Ok(Level::Patient),
        QueryLevel::Study => Ok(Level::Study),
        QueryLevel::Series => Ok(Level::Series),
        QueryLevel::Instance => Ok(Level::Instance),
        QueryLevel::Unspecified => {
            Err(NodeError::from(tessera_catalog::CatalogError::QueryLevel).into())
        }
    }
}

fn select_instances(node: &Node, request: &RetrieveRequest) -> Result<Vec<StoredInstance>, Status> {
    if !request.sop_instance_uid.is_empty() {
        let instance = node
            .catalog
            .instance(&request.sop_instance_uid)
            .map_err(NodeError::from)?;
        let instance = instance.ok_or_else(|| NodeError::NotFound {
            what: "SOP Instance UID",
            value: request.sop_instance_uid.clone(),
        })?;
        return Ok(vec![instance]);
    }
    if request.study_instance_uid.is_empty() {
        return Err(Status::invalid_argument(
            "retrieve needs a Study Instance UID or a SOP Instance UID",
        ));
    }

    let series = Some(request.series_instance_uid.as_str()).filter(|s| !s.is_empty());
    let instances = node
        .catalog
        .instances_of(&request.study_instance_uid, series)
        .map_err(NodeError::from)?;
    if instances.is_empty() {
        let (what, value) = match series {
            Some(series) => ("series", series.to_string()),
            None => ("study", request.study_instance_uid.clone()),
        };
        return Err(NodeError::NotFound { what, value }.into());
    }
    Ok(instances)
}

async fn send_instance(
    node: &Arc<Node>,
    instance: StoredInstance,
    sender: &mpsc::Sender<Result<RetrieveResponse, Status>>,
) -> Result<(), Status> {
    let stored = instance.stored;
    let attributes = stored.attributes.unwrap_or_default();
    let blob = BlobId::from_slice(&stored.blob_id).map_err(NodeError::from)?;
    let header = RetrievedInstance {
        study_instance_uid: attributes.study_instance_uid,
        series_instance_uid: attributes.series_instance_uid,
        sop_instance_uid: attributes.sop_instance_uid,
        transfer_syntax_uid: attributes.transfer_syntax_uid,
        size: stored.size,
        blob_id: blob.to_hex(),
    };
    let header_uids = (
        header.study_instance_uid.clone(),
        header.series_instance_uid.clone(),
        header.sop_instance_uid.clone(),
    );
    let head = RetrieveResponse {
        part: Some(retrieve_response::Part::Instance(header)),
    };
    if sender.send(Ok(head)).await.is_err() {
        return Ok(());
    }

    let span = tracing::debug_span!(
        "retrieve",
        node_id = node.id(),
        study = %header_uids.0,
        series = %header_uids.1,
        instance = %header_uids.2,
        %blob,
    );
    let (chunks, mut received) = mpsc::channel(2);
    let reader_node = node.clone();
    let read = async move { reader_node.read_blob(blob, &chunks).await };
    let reader = tokio::spawn(tracing::Instrument::instrument(read, span));
    while let Some(chunk) = received.recv().await {
        let part = RetrieveResponse {
            part: Some(retrieve_response::Part::Data(chunk?)),
        };
        if sender.send(Ok(part)).await.is_err() {
            return Ok(());
        }
    }
    reader.await.map_err(crate::read_path::join_error)??;
    node.metrics.retrieved_bytes.inc_by(stored.size);
    Ok(())
}

/// Sends journal events from `from` on, then new ones as they are applied.
async fn follow_journal(
    node: Arc<Node>,
    mut from: u64,
    sender: mpsc::Sender<Result<JournalEntry, Status>>,
) {
    let mut applied = node.catalog.subscribe_applied();
    loop {
        let events = match node.catalog.journal_from(from, WATCH_BATCH) {
            Ok(events) => events,
            Err(error) => {
                let _ = sender.send(Err(NodeError::from(error).into())).await;
                return;
            }
        };
        let caught_up = events.len() < WATCH_BATCH;
        for (index, bytes) in events {
            let event = prost::Message::decode(bytes.as_slice()).ok();
            from = index + 1;
            if sender
                .send(Ok(JournalEntry { index, event }))
                .await
                .is_err()
            {
                return;
            }
        }
        if caught_up && applied.changed().await.is_err() {
            return;
        }
    }
}
