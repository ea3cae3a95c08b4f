//! Prometheus metrics of a node.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tessera_proto::v1::IngestStatus;

pub struct Metrics {
    pub registry: Registry,
    pub stores: IntCounterVec,
    pub stored_bytes: IntCounter,
    pub store_seconds: Histogram,
    pub retrieve_seconds: Histogram,
    pub retrieved_bytes: IntCounter,
    pub under_replicated: IntGauge,
    pub raft_term: IntGauge,
    pub raft_last_log_index: IntGauge,
    pub raft_last_applied: IntGauge,
    pub raft_is_leader: IntGauge,
    pub local_blobs: IntGauge,
    pub local_blob_bytes: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let stores = IntCounterVec::new(
            Opts::new("tessera_stores_total", "Instances received, by result"),
            &["result"],
        )
        .expect("valid metric");
        let buckets = prometheus::exponential_buckets(0.001, 2.0, 16).expect("valid buckets");
        let store_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "tessera_store_seconds",
                "Time to store one instance durably",
            )
            .buckets(buckets.clone()),
        )
        .expect("valid metric");
        let retrieve_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "tessera_retrieve_seconds",
                "Time to stream one retrieve request",
            )
            .buckets(buckets),
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");

        let metrics = Self {
            stores,
            stored_bytes: counter("tessera_stored_bytes_total", "Bytes of instances stored"),
            store_seconds,
            retrieve_seconds,
            retrieved_bytes: counter(
                "tessera_retrieved_bytes_total",
                "Bytes of instances retrieved",
            ),
            under_replicated: gauge(
                "tessera_under_replicated_blobs",
                "Blobs with fewer live copies than the replication factor, as the leader last saw",
            ),
            raft_term: gauge("tessera_raft_term", "Current Raft term"),
            raft_last_log_index: gauge("tessera_raft_last_log_index", "Last Raft log index"),
            raft_last_applied: gauge("tessera_raft_last_applied", "Last applied Raft log index"),
            raft_is_leader: gauge("tessera_raft_is_leader", "1 when this node leads"),
            local_blobs: gauge("tessera_local_blobs", "Blob replicas on this node"),
            local_blob_bytes: gauge(
                "tessera_local_blob_bytes",
                "Bytes of blob replicas on this node",
            ),
            registry,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.stores.clone()),
            Box::new(self.stored_bytes.clone()),
            Box::new(self.store_seconds.clone()),
            Box::new(self.retrieve_seconds.clone()),
            Box::new(self.retrieved_bytes.clone()),
            Box::new(self.under_replicated.clone()),
            Box::new(self.raft_term.clone()),
            Box::new(self.raft_last_log_index.clone()),
            Box::new(self.raft_last_applied.clone()),
            Box::new(self.raft_is_leader.clone()),
            Box::new(self.local_blobs.clone()),
            Box::new(self.local_blob_bytes.clone()),
        ];
        for collector in collectors {
            self.registry
                .register(collector)
                .expect("metric names are unique");
        }
    }

    pub fn record_store(&self, status: IngestStatus, bytes: u64, elapsed: Duration) {
        let label = match status {
            IngestStatus::Stored => "stored",
            IngestStatus::AlreadyStored => "already_stored",
            IngestStatus::Rejected => "rejected",
            IngestStatus::Unavailable => "unavailable",
            IngestStatus::Unspecified => "unspecified",
        };
        self.stores.with_label_values(&[label]).inc();
        if status == IngestStatus::Stored {
            self.stored_bytes.inc_by(bytes);
            self.store_seconds.observe(elapsed.as_secs_f64());
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
