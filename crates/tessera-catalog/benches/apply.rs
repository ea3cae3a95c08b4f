//! Cost of applying committed InstanceStored events to the index on
//! RocksDB, one event per apply call and 100 per call, as openraft hands
//! them over after a commit.
//!
//! Built in the dev profile (`cargo test --workspace --benches --no-run`),
//! so this crate's code runs unoptimised while RocksDB runs at opt-level 2.
//! Each iteration adds new instances, so the index grows during the run.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use prost::Message;
use tessera_catalog::raft::Entry;
use tessera_catalog::{Catalog, Proposal};
use tessera_proto::v1::{event::Body, Event, InstanceAttributes, InstanceStored};

/// Instances per study and per series in the generated events.
const INSTANCES_PER_SERIES: u64 = 20;
const SERIES_PER_STUDY: u64 = 3;

/// Builds the event that stores instance number `n`, grouped into series,
/// studies and patients the way a CT archive fills.
fn stored_event(n: u64) -> Event {
    let series = n / INSTANCES_PER_SERIES;
    let study = series / SERIES_PER_STUDY;
    let patient = study / 2;
    let attributes = InstanceAttributes {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        sop_instance_uid: format!("2.25.9.{study}.{series}.{n}"),
        study_instance_uid: format!("2.25.9.{study}"),
        series_instance_uid: format!("2.25.9.{study}.{series}"),
        patient_id: format!("MX9-{patient:06}"),
        patient_name: format!("SMITH^PATIENT{patient}"),
        study_date: format!("2024{:02}{:02}", 1 + study % 12, 1 + study % 28),
        modality: "CT".into(),
        ..InstanceAttributes::default()
    };
    let mut blob_id = [0u8; 32];
    blob_id[..8].copy_from_slice(&n.to_be_bytes());
    Event {
        version: 1,
        accepted_at_ms: 1_700_000_000_000 + n as i64,
        actor: None,
        body: Some(Body::InstanceStored(InstanceStored {
            attributes: Some(attributes),
            blob_id: blob_id.to_vec(),
            size: 525_000,
            replicas: vec![1],
        })),
    }
}

fn entry(index: u64, event: &Event) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposal {
            event: event.encode_to_vec(),
        }),
    }
}

/// Encodes the events of log indexes `first..first + count`.
fn entries(first: u64, count: u64) -> Vec<Entry> {
    (first..first + count)
        .map(|index| entry(index, &stored_event(index)))
        .collect()
}

fn apply(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("catalog/apply");
    for batch in [1u64, 100] {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut opened = Catalog::open(dir.path()).expect("open catalog");
        let state_machine = &mut opened.state_machine;
        let mut next = 1;
        group.throughput(Throughput::Elements(batch));
        group.bench_function(BenchmarkId::new("instance_stored", batch), |b| {
            b.iter_batched(
                || {
                    let batch_entries = entries(next, batch);
                    next += batch;
                    batch_entries
                },
                |batch_entries| {
                    runtime
                        .block_on(state_machine.apply(batch_entries))
                        .expect("apply")
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
