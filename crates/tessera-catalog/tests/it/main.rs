//! The catalog's state machine driven through openraft's storage traits, on
//! RocksDB in temporary directories.

use std::collections::BTreeMap;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use proptest::prelude::*;
use prost::Message;
use tessera_catalog::raft::Entry;
use tessera_catalog::{Catalog, CatalogError, Level, Outcome, Proposal};
use tessera_dicom::matching::Matcher;
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

fn named(study: u8, name: &str) -> Event {
    let mut event = stored(study, 0, 0, study);
    if let Some(Body::InstanceStored(stored)) = &mut event.body {
        stored.attributes.as_mut().expect("attributes").patient_name = name.to_string();
    }
    event
}

#[tokio::test]
async fn name_query_matches_full_scan() {
    let dir = tempfile::tempdir().expect("dir");
    let names = [
        "Doe^Jane",
        "doe^john",
        "Smith^Anna\\Doe^Alias",
        "Yamada^Tarou=山田^太郎",
        "DOUGH^X",
        "Dodd^Y",
    ];
    let mut events: Vec<Event> = (0u8..).zip(names).map(|(i, n)| named(i, n)).collect();
    let mut catalog = apply_all(dir.path(), &events, false).await;
    let find = |catalog: &Catalog, key: &str| {
        let keys = BTreeMap::from([("PatientName".to_string(), key.to_string())]);
        let page = catalog.query(Level::Study, &keys, 0, 0).expect("query");
        let mut uids: Vec<String> = page
            .records
            .iter()
            .map(|r| r.attributes["StudyInstanceUID"].clone())
            .collect();
        uids.sort();
        uids
    };
    let expected = |key: &str| {
        let matcher = Matcher::parse("PatientName", key).expect("key");
        let mut uids: Vec<String> = (0u8..)
            .zip(names)
            .filter(|(_, name)| matcher.matches(name))
            .map(|(i, _)| format!("1.2.3.{i}"))
            .collect();
        uids.sort();
        uids
    };

    for key in [
        "DOE*", "do*", "Doe^Jane", "D?E*", "*ALIAS", "Yamada*", "=山田*", "S*",
    ] {
        let found = find(&catalog, key);
        assert_eq!(found, expected(key), "key {key}");
        assert!(!found.is_empty(), "key {key} should match a study");
    }

    events.push(deleted(2, 0, 0));
    let after = tempfile::tempdir().expect("dir");
    catalog = apply_all(after.path(), &events, true).await;
    assert_eq!(
        find(&catalog, "DOE^A*"),
        Vec::<String>::new(),
        "deleted study"
    );
    assert_eq!(find(&catalog, "DOE*").len(), 2);
}

#[tokio::test]
async fn study_uid_list_returns_each_study_once() {
    let dir = tempfile::tempdir().expect("dir");
    let events: Vec<Event> = (0..3).map(|i| stored(i, 0, 0, i)).collect();
    let catalog = apply_all(dir.path(), &events, false).await;
    let find = |value: &str| {
        let keys = BTreeMap::from([("StudyInstanceUID".to_string(), value.to_string())]);
        catalog.query(Level::Study, &keys, 0, 0).expect("query")
    };

    let repeated = find("1.2.3.1\\1.2.3.2\\1.2.3.1");
    let padded = find("1.2.3.1 \\1.2.3.2");

    assert_eq!(repeated.total, 2, "{:?}", repeated.records);
    assert_eq!(repeated.records.len(), 2);
    assert_eq!(padded.total, 2, "{:?}", padded.records);
}

fn sequence(keyword: &str, items: &[&[(&str, &str)]]) -> SequenceAttribute {
    let items = items.iter().map(|pairs| SequenceItem {
        attributes: pairs
            .iter()
            .map(|(keyword, value)| ItemAttribute {
                keyword: keyword.to_string(),
                value: value.to_string(),
            })
            .collect(),
    });
    SequenceAttribute {
        keyword: keyword.to_string(),
        items: items.collect(),
    }
}

/// Builds an instance event of study `study`, series 1, with `sequences`.
fn stored_with(study: u8, sequences: Vec<SequenceAttribute>) -> Event {
    let mut event = stored(study, 1, 1, study);
    if let Some(Body::InstanceStored(stored)) = &mut event.body {
        stored.attributes.as_mut().expect("attributes").sequences = sequences;
    }
    event
}

/// Two series with requests: the first with RP1/SPS1 and RP2/SPS2, the
/// second with RP3/SPS3, and a third series without the sequence.
fn request_events() -> Vec<Event> {
    let two = sequence(
        "RequestAttributesSequence",
        &[
            &[
                ("RequestedProcedureID", "RP1"),
                ("ScheduledProcedureStepID", "SPS1"),
            ],
            &[
                ("RequestedProcedureID", "RP2"),
                ("ScheduledProcedureStepID", "SPS2"),
            ],
        ],
    );
    let one = sequence(
        "RequestAttributesSequence",
        &[&[
            ("RequestedProcedureID", "RP3"),
            ("ScheduledProcedureStepID", "SPS3"),
        ]],
    );
    vec![
        stored_with(1, vec![two]),
        stored_with(2, vec![one]),
        stored_with(3, Vec::new()),
    ]
}

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn requested_ids(record: &tessera_catalog::QueryRecord) -> Vec<String> {
    record.sequences["RequestAttributesSequence"]
        .iter()
        .map(|item| item["RequestedProcedureID"].clone())
        .collect()
}

#[tokio::test]
async fn sequence_item_key_returns_matching_items() {
    let dir = tempfile::tempdir().expect("dir");
    let catalog = apply_all(dir.path(), &request_events(), false).await;

    let page = catalog
        .query(
            Level::Series,
            &keys(&[("RequestAttributesSequence.RequestedProcedureID", "RP2")]),
            0,
            0,
        )
        .expect("query");

    assert_eq!(page.total, 1);
    assert_eq!(page.records[0].attributes["SeriesInstanceUID"], "1.2.3.1.1");
    assert_eq!(requested_ids(&page.records[0]), ["RP2"]);
    let item = &page.records[0].sequences["RequestAttributesSequence"][0];
    assert_eq!(item["ScheduledProcedureStepID"], "SPS2");
}

#[tokio::test]
async fn sequence_item_keys_match_within_one_item() {
    let dir = tempfile::tempdir().expect("dir");
    let catalog = apply_all(dir.path(), &request_events(), false).await;
    let find = |pairs: &[(&str, &str)]| {
        catalog
            .query(Level::Series, &keys(pairs), 0, 0)
            .expect("query")
            .total
    };

    let same_item = find(&[
        ("RequestAttributesSequence.RequestedProcedureID", "RP1"),
        ("RequestAttributesSequence.ScheduledProcedureStepID", "SPS1"),
    ]);
    let across_items = find(&[
        ("RequestAttributesSequence.RequestedProcedureID", "RP1"),
        ("RequestAttributesSequence.ScheduledProcedureStepID", "SPS2"),
    ]);
    let no_item = find(&[("RequestAttributesSequence.RequestedProcedureID", "RP9")]);

    assert_eq!(same_item, 1);
    assert_eq!(across_items, 0);
    assert_eq!(no_item, 0);
}

#[tokio::test]
async fn universal_sequence_key_returns_every_item() {
    let dir = tempfile::tempdir().expect("dir");
    let catalog = apply_all(dir.path(), &request_events(), false).await;

    let page = catalog
        .query(
            Level::Series,
            &keys(&[("RequestAttributesSequence", "")]),
            0,
            0,
        )
        .expect("query");

    assert_eq!(
        page.total, 3,
        "universal matching keeps series without items"
    );
    let by_series: BTreeMap<&str, Vec<String>> = page
        .records
        .iter()
        .map(|r| (r.attributes["SeriesInstanceUID"].as_str(), requested_ids(r)))
        .collect();
    assert_eq!(by_series["1.2.3.1.1"], ["RP1", "RP2"]);
    assert_eq!(by_series["1.2.3.2.1"], ["RP3"]);
    assert!(by_series["1.2.3.3.1"].is_empty());
}

#[tokio::test]
async fn wildcard_item_key_and_other_keys_combine() {
    let dir = tempfile::tempdir().expect("dir");
    let catalog = apply_all(dir.path(), &request_events(), false).await;

    let page = catalog
        .query(
            Level::Series,
            &keys(&[
                ("RequestAttributesSequence.RequestedProcedureID", "RP*"),
                ("StudyInstanceUID", "1.2.3.2"),
            ]),
            0,
            0,
        )
        .expect("query");

    assert_eq!(page.total, 1);
    assert_eq!(requested_ids(&page.records[0]), ["RP3"]);
}

#[tokio::test]
async fn sequences_are_not_returned_unless_requested() {
    let dir = tempfile::tempdir().expect("dir");
    let catalog = apply_all(dir.path(), &request_events(), false).await;

    let page = catalog
        .query(Level::Series, &BTreeMap::new(), 0, 0)
        .expect("query");

    assert_eq!(page.total, 3);
    assert!(page.records.iter().all(|r| r.sequences.is_empty()));
}

#[tokio::test]
async fn sequences_are_indexed_per_level() {
    let dir = tempfile::tempdir().expect("dir");
    let event = stored_with(
        1,
        vec![
            sequence(
                "OtherPatientIDsSequence",
                &[&[("PatientID", "X-9"), ("IssuerOfPatientID", "SITE-B")]],
            ),
            sequence(
                "ProcedureCodeSequence",
                &[&[("CodeValue", "CTHEAD"), ("CodingSchemeDesignator", "LOCAL")]],
            ),
            sequence(
                "ReferencedStudySequence",
                &[&[("ReferencedSOPInstanceUID", "1.2.9")]],
            ),
            sequence("ConceptNameCodeSequence", &[&[("CodeValue", "18748-4")]]),
        ],
    );
    let catalog = apply_all(dir.path(), &[event], false).await;
    let total = |level: Level, pairs: &[(&str, &str)]| {
        catalog
            .query(level, &keys(pairs), 0, 0)
            .expect("query")
            .total
    };

    let patient = [("OtherPatientIDsSequence.IssuerOfPatientID", "SITE-B")];
    assert_eq!(total(Level::Patient, &patient), 1);
    assert_eq!(total(Level::Study, &patient), 1);
    let code = [
        ("ProcedureCodeSequence.CodeValue", "CTHEAD"),
        ("ProcedureCodeSequence.CodingSchemeDesignator", "LOCAL"),
    ];
    assert_eq!(total(Level::Study, &code), 1);
    let reference = [(
        "ReferencedStudySequence.ReferencedSOPInstanceUID",
        "1.2.8\\1.2.9",
    )];
    assert_eq!(total(Level::Study, &reference), 1);
    let title = [("ConceptNameCodeSequence.CodeValue", "18748-4")];
    assert_eq!(total(Level::Instance, &title), 1);
    assert_eq!(
        total(
            Level::Instance,
            &[("ConceptNameCodeSequence.CodeValue", "11528-7")]
        ),
        0
    );
}

#[tokio::test]
async fn sequence_keys_outside_the_index_are_rejected() {
    let dir = tempfile::tempdir().expect("dir");
    let catalog = apply_all(dir.path(), &request_events(), false).await;
    let query = |pairs: &[(&str, &str)]| catalog.query(Level::Series, &keys(pairs), 0, 0);

    let other_level = query(&[("ProcedureCodeSequence.CodeValue", "X")]).expect_err("study");
    let other_item = query(&[("RequestAttributesSequence.PatientName", "X")]).expect_err("item");
    let with_value = query(&[("RequestAttributesSequence", "RP1")]).expect_err("value");

    assert!(
        matches!(other_level, CatalogError::UnsupportedKey { ref keyword, .. }
            if keyword == "ProcedureCodeSequence.CodeValue"),
        "{other_level}"
    );
    assert!(
        other_item
            .to_string()
            .contains("RequestAttributesSequence.RequestedProcedureID"),
        "{other_item}"
    );
    assert!(
        matches!(with_value, CatalogError::SequenceValue { .. }),
        "{with_value}"
    );
}

#[tokio::test]
async fn events_without_sequences_still_apply() {
    let dir = tempfile::tempdir().expect("dir");
    // An event as written before sequences were indexed: field 50 absent.
    let old = stored(1, 1, 1, 1);
    let bytes = old.encode_to_vec();
    let decoded = Event::decode(bytes.as_slice()).expect("decodes");
    let catalog = apply_all(dir.path(), &[decoded], false).await;

    let page = catalog
        .query(
            Level::Series,
            &keys(&[("RequestAttributesSequence", "")]),
            0,
            0,
        )
        .expect("query");
    let filtered = catalog
        .query(
            Level::Series,
            &keys(&[("RequestAttributesSequence.RequestedProcedureID", "RP1")]),
            0,
            0,
        )
        .expect("query");

    assert_eq!(page.total, 1);
    assert!(page.records[0].sequences["RequestAttributesSequence"].is_empty());
    assert_eq!(filtered.total, 0);
}

fn request_item_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    let keyword = proptest::sample::select(vec![
        "RequestedProcedureID".to_string(),
        "ScheduledProcedureStepID".to_string(),
        "AccessionNumber".to_string(),
    ]);
    proptest::collection::btree_map(keyword, "[A-Z0-9]{1,6}", 0..3)
}

fn to_proto_item(item: &BTreeMap<String, String>) -> SequenceItem {
    let attributes = item.iter().map(|(keyword, value)| ItemAttribute {
        keyword: keyword.clone(),
        value: value.clone(),
    });
    SequenceItem {
        attributes: attributes.collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn stored_sequences_come_back_from_queries(
        items in proptest::collection::vec(request_item_strategy(), 0..5),
    ) {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("dir");
        let sequence = SequenceAttribute {
            keyword: "RequestAttributesSequence".into(),
            items: items.iter().map(to_proto_item).collect(),
        };
        let event = stored_with(1, vec![sequence]);
        let decoded = Event::decode(event.encode_to_vec().as_slice()).expect("decodes");
        prop_assert_eq!(&decoded, &event);
        let catalog = runtime.block_on(apply_all(dir.path(), &[decoded], false));

        let universal = keys(&[("RequestAttributesSequence", "")]);
        let page = catalog.query(Level::Series, &universal, 0, 0).expect("query");
        prop_assert_eq!(&page.records[0].sequences["RequestAttributesSequence"], &items);

        for item in &items {
            let Some(id) = item.get("RequestedProcedureID") else { continue };
            let key = keys(&[("RequestAttributesSequence.RequestedProcedureID", id)]);
            let page = catalog.query(Level::Series, &key, 0, 0).expect("query");
            let returned = &page.records[0].sequences["RequestAttributesSequence"];
            prop_assert!(returned.contains(item));
            prop_assert!(returned.iter().all(|i| i.get("RequestedProcedureID") == Some(id)));
        }
    }
}
