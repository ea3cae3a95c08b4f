//! The catalog's state machine driven through openraft's storage traits, on
//! RocksDB in temporary directories.

use std::collections::BTreeMap;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use proptest::prelude::*;
use prost::Message;
use tessera_catalog::raft::Entry;
use tessera_catalog::{Catalog, Level, Outcome, Proposal};
use tessera_proto::v1::{event::Body, *};

fn entry(index: u64, event: &Event) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposal {
            event: event.encode_to_vec(),
        }),
    }
}

fn stored(study: u8, series: u8, sop: u8, content: u8) -> Event {
    let attributes = InstanceAttributes {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        sop_instance_uid: format!("1.2.3.{study}.{series}.{sop}"),
        study_instance_uid: format!("1.2.3.{study}"),
        series_instance_uid: format!("1.2.3.{study}.{series}"),
        patient_id: format!("P-{}", study % 3),
        patient_name: format!("DOE^PATIENT{}", study % 3),
        study_date: format!("202401{:02}", study + 1),
        modality: if series % 2 == 0 {
            "CT".into()
        } else {
            "MR".into()
        },
        ..InstanceAttributes::default()
    };
    Event {
        version: 1,
        accepted_at_ms: 1_700_000_000_000,
        actor: None,
        body: Some(Body::InstanceStored(InstanceStored {
            attributes: Some(attributes),
            blob_id: vec![content; 32],
            size: 1000 + u64::from(content),
            replicas: vec![1, 2, 3],
        })),
    }
}

fn deleted(study: u8, series: u8, sop: u8) -> Event {
    Event {
        body: Some(Body::InstanceDeleted(InstanceDeleted {
            study_instance_uid: format!("1.2.3.{study}"),
            series_instance_uid: format!("1.2.3.{study}.{series}"),
            sop_instance_uid: format!("1.2.3.{study}.{series}.{sop}"),
        })),
        ..Event::default()
    }
}

fn study_deleted(study: u8) -> Event {
    Event {
        body: Some(Body::StudyDeleted(StudyDeleted {
            study_instance_uid: format!("1.2.3.{study}"),
        })),
        ..Event::default()
    }
}

/// Collects every query result, blob and journal entry into one comparable value.
fn dump(catalog: &Catalog) -> Vec<String> {
    let mut lines = Vec::new();
    for level in [Level::Patient, Level::Study, Level::Series, Level::Instance] {
        let page = catalog.query(level, &BTreeMap::new(), 0, 0).expect("query");
        lines.push(format!("{level:?} {:?}", page.records));
    }
    lines.push(format!("blobs {:?}", catalog.blobs().expect("blobs")));
    lines.push(format!(
        "journal {:?}",
        catalog.journal_from(0, usize::MAX).expect("journal")
    ));
    lines
}

fn event_strategy() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (0u8..4, 0u8..3, 0u8..4, 0u8..3).prop_map(|(a, b, c, d)| stored(a, b, c, d)),
        1 => (0u8..4, 0u8..3, 0u8..4).prop_map(|(a, b, c)| deleted(a, b, c)),
        1 => (0u8..4).prop_map(study_deleted),
    ]
}

async fn apply_all(catalog_dir: &std::path::Path, events: &[Event], one_by_one: bool) -> Catalog {
    let mut opened = Catalog::open(catalog_dir).expect("open catalog");
    let entries: Vec<Entry> = events
        .iter()
        .enumerate()
        .map(|(i, e)| entry(i as u64 + 1, e))
        .collect();
    if one_by_one {
        for entry in entries {
            opened.state_machine.apply([entry]).await.expect("apply");
        }
    } else {
        opened.state_machine.apply(entries).await.expect("apply");
    }
    opened.catalog
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn same_log_gives_same_index(events in proptest::collection::vec(event_strategy(), 1..40)) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (a, b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
        let batched = runtime.block_on(apply_all(a.path(), &events, false));
        let single = runtime.block_on(apply_all(b.path(), &events, true));
        prop_assert_eq!(dump(&batched), dump(&single));
    }

    #[test]
    fn event_encoding_round_trips(event in event_strategy()) {
        let bytes = event.encode_to_vec();
        let decoded = Event::decode(bytes.as_slice()).expect("decodes");
        prop_assert_eq!(decoded, event);
    }
}

#[tokio::test]
async fn counts_follow_stores_and_deletes() {
    let dir = tempfile::tempdir().expect("dir");
    let events = vec![
        stored(1, 1, 1, 1),
        stored(1, 1, 2, 2),
        stored(1, 2, 1, 3),
        deleted(1, 1, 2),
    ];
    let catalog = apply_all(dir.path(), &events, false).await;

    let studies = catalog
        .query(Level::Study, &BTreeMap::new(), 0, 0)
        .expect("query");
    assert_eq!(studies.total, 1);
    let study = &studies.records[0];
    assert_eq!(study.attributes["NumberOfStudyRelatedInstances"], "2");
    assert_eq!(study.attributes["NumberOfStudyRelatedSeries"], "2");
    assert_eq!(study.attributes["ModalitiesInStudy"], "CT\\MR");
    assert_eq!(catalog.blobs().expect("blobs").len(), 2);
}

#[tokio::test]
async fn study_delete_removes_every_row() {
    let dir = tempfile::tempdir().expect("dir");
    let events = vec![
        stored(1, 1, 1, 1),
        stored(1, 2, 1, 2),
        stored(2, 1, 1, 3),
        study_deleted(1),
    ];
    let catalog = apply_all(dir.path(), &events, false).await;

    let studies = catalog
        .query(Level::Study, &BTreeMap::new(), 0, 0)
        .expect("query");
    assert_eq!(studies.total, 1);
    let series = catalog
        .query(Level::Series, &BTreeMap::new(), 0, 0)
        .expect("query");
    assert_eq!(series.total, 1);
    assert!(catalog.instance("1.2.3.1.1.1").expect("lookup").is_none());
    assert_eq!(catalog.blobs().expect("blobs").len(), 1);
}

#[tokio::test]
async fn duplicate_uid_outcomes_depend_on_bytes() {
    let dir = tempfile::tempdir().expect("dir");
    let mut opened = Catalog::open(dir.path()).expect("open");
    let entries = vec![
        entry(1, &stored(1, 1, 1, 7)),
        entry(2, &stored(1, 1, 1, 7)),
        entry(3, &stored(1, 1, 1, 8)),
    ];
    let results = opened.state_machine.apply(entries).await.expect("apply");

    assert_eq!(results[0].outcome, Outcome::Applied);
    assert_eq!(
        results[1].outcome,
        Outcome::AlreadyStored {
            blob_id: vec![7; 32]
        }
    );
    assert_eq!(
        results[2].outcome,
        Outcome::Conflict {
            existing_blob_id: vec![7; 32]
        }
    );
    let instance = opened
        .catalog
        .instance("1.2.3.1.1.1")
        .expect("lookup")
        .expect("stored");
    assert_eq!(instance.stored.blob_id, vec![7; 32]);
}

#[tokio::test]
async fn snapshot_installs_the_same_index_and_journal() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let events: Vec<Event> = (0..20).map(|i| stored(i % 4, i % 3, i, i % 5)).collect();
    let mut source = Catalog::open(a.path()).expect("open");
    let entries: Vec<Entry> = events
        .iter()
        .enumerate()
        .map(|(i, e)| entry(i as u64 + 1, e))
        .collect();
    source.state_machine.apply(entries).await.expect("apply");

    let mut builder = source.state_machine.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("snapshot");
    let mut target = Catalog::open(b.path()).expect("open");
    target
        .state_machine
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");

    assert_eq!(dump(&target.catalog), dump(&source.catalog));
    assert_eq!(target.catalog.applied_index(), 20);
}

#[tokio::test]
async fn index_queries_use_dicom_matching() {
    let dir = tempfile::tempdir().expect("dir");
    let events: Vec<Event> = (0..6).map(|i| stored(i, 0, 0, i)).collect();
    let catalog = apply_all(dir.path(), &events, false).await;
    let find = |key: &str, value: &str| {
        let keys = BTreeMap::from([(key.to_string(), value.to_string())]);
        catalog
            .query(Level::Study, &keys, 0, 0)
            .expect("query")
            .total
    };

    assert_eq!(find("PatientID", "P-1"), 2);
    assert_eq!(find("PatientID", "P-"), 0);
    assert_eq!(find("PatientName", "doe^patient1"), 2);
    assert_eq!(find("PatientName", "DOE^PAT*"), 6);
    assert_eq!(find("StudyDate", "20240102-20240104"), 3);
    assert_eq!(find("StudyDate", "20240105-"), 2);
    assert_eq!(find("StudyDate", "-20240101"), 1);
    assert_eq!(find("StudyInstanceUID", "1.2.3.1\\1.2.3.2"), 2);
    assert_eq!(find("ModalitiesInStudy", "CT"), 6);
}
