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
    pub dimse: DimseMetrics,
}

/// Metrics of the DICOM listener and its services.
pub struct DimseMetrics {
    pub associations_accepted: IntCounter,
    /// Connections and association requests rejected, by reason.
    pub associations_rejected: IntCounterVec,
    pub open_associations: IntGauge,
    /// DIMSE requests that got a final response, by service (C-ECHO,
    /// C-STORE, ...) and status class (success, warning, failure, cancel).
    pub operations: IntCounterVec,
    /// Data set bytes received in C-STORE requests, before any check.
    pub store_received_bytes: IntCounter,
    /// C-STORE sub-operations of C-MOVE and C-GET, by service and outcome
    /// (completed, warning, failed).
    pub sub_operations: IntCounterVec,
}

impl DimseMetrics {
    fn new() -> Self {
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        Self {
            associations_accepted: IntCounter::new(
                "tessera_dimse_associations_accepted_total",
                "DICOM associations accepted",
            )
            .expect("valid metric"),
            associations_rejected: counter_vec(
                "tessera_dimse_associations_rejected_total",
                "DICOM connections or association requests rejected, by reason",
                &["reason"],
            ),
            open_associations: IntGauge::new(
                "tessera_dimse_open_associations",
                "DICOM associations accepted and not yet ended",
            )
            .expect("valid metric"),
            operations: counter_vec(
                "tessera_dimse_operations_total",
                "DIMSE requests by service and status class of the final response",
                &["service", "status"],
            ),
            store_received_bytes: IntCounter::new(
                "tessera_dimse_store_received_bytes_total",
                "Data set bytes received in C-STORE requests",
            )
            .expect("valid metric"),
            sub_operations: counter_vec(
                "tessera_dimse_sub_operations_total",
                "C-STORE sub-operations of C-MOVE and C-GET, by service and outcome",
                &["service", "outcome"],
            ),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.associations_accepted.clone()),
            Box::new(self.associations_rejected.clone()),
            Box::new(self.open_associations.clone()),
            Box::new(self.operations.clone()),
            Box::new(self.store_received_bytes.clone()),
            Box::new(self.sub_operations.clone()),
        ]
    }

    /// Counts one request by the status code of its final response.
    /// Pending responses are not counted.
    pub fn record_operation(&self, service: &str, status: u16) {
        let class = match status {
            0x0000 => "success",
            0xFE00 => "cancel",
            0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => "warning",
            _ => "failure",
        };
        self.operations.with_label_values(&[service, class]).inc();
    }

    pub fn reject_association(&self, reason: &str) {
        self.associations_rejected
            .with_label_values(&[reason])
            .inc();
    }
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
            dimse: DimseMetrics::new(),
            registry,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let mut collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
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
        collectors.extend(self.dimse.collectors());
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
