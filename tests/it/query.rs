use futures::StreamExt;
use tessera_proto::v1::{IngestStatus, QueryLevel, WatchRequest};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_follow_dicom_matching_at_every_level() {
    let cluster = TestCluster::start(3, 8200, &[]);
    // Seed 61 with 3 patients: names DOE^JANE... rotate by seed, see `tessera generate`.
    let files = generated(cluster.dir.path(), 61, 3, 2);
    let addr = cluster.nodes()[2].grpc_addr.clone();
    let results = ingest(&addr, &files).await;
    assert!(results.iter().all(|r| r.status() == IngestStatus::Stored));

    let studies = query(&addr, QueryLevel::Study, &[]).await;
    assert_eq!(studies.total, 6, "3 patients with 2 studies each");
    let patients = query(&addr, QueryLevel::Patient, &[]).await;
    assert_eq!(patients.total, 3);
    let series = query(&addr, QueryLevel::Series, &[]).await;
    assert_eq!(series.total, 18);

    println!("phase: PatientID exact and via index");
    let some_study = &studies.records[0].attributes;
    let patient_id = some_study["PatientID"].clone();
    let by_id = query(&addr, QueryLevel::Study, &[("PatientID", &patient_id)]).await;
    assert_eq!(by_id.total, 2);
    assert!(by_id
        .records
        .iter()
        .all(|r| r.attributes["PatientID"] == patient_id));

    println!("phase: PatientName wildcard is case-insensitive");
    let name = some_study["PatientName"].clone();
    let prefix: String = name.chars().take(2).collect::<String>().to_lowercase();
    let by_name = query(
        &addr,
        QueryLevel::Study,
        &[("PatientName", &format!("{prefix}*"))],
    )
    .await;
    assert!(by_name.total >= 2, "{prefix}* matched {}", by_name.total);
    assert!(by_name.records.iter().all(|r| r.attributes["PatientName"]
        .to_lowercase()
        .starts_with(&prefix)));

    println!("phase: StudyDate range with open end");
    let date = some_study["StudyDate"].clone();
    let from_date = query(
        &addr,
        QueryLevel::Study,
        &[("StudyDate", &format!("{date}-"))],
    )
    .await;
    assert!(from_date
        .records
        .iter()
        .all(|r| r.attributes["StudyDate"] >= date));
    assert!(from_date.total >= 1);
    let exact_date = query(
        &addr,
        QueryLevel::Study,
        &[("StudyDate", &format!("{date}-{date}"))],
    )
    .await;
    assert!(exact_date
        .records
        .iter()
        .all(|r| r.attributes["StudyDate"] == date));

    println!("phase: counts, modalities, paging");
    assert_eq!(some_study["NumberOfStudyRelatedSeries"], "3");
    assert_eq!(some_study["NumberOfStudyRelatedInstances"], "6");
    let ct = query(&addr, QueryLevel::Study, &[("ModalitiesInStudy", "CT")]).await;
    assert_eq!(ct.total, 6);
    let mr = query(&addr, QueryLevel::Study, &[("ModalitiesInStudy", "MR")]).await;
    assert_eq!(mr.total, 0);
    let request = tessera_proto::v1::QueryRequest {
        level: QueryLevel::Study as i32,
        limit: 4,
        offset: 4,
        ..Default::default()
    };
    let page = archive(&addr)
        .await
        .query(request)
        .await
        .expect("paged query")
        .into_inner();
    assert_eq!(page.records.len(), 2);
    assert_eq!(page.total, 6);

    println!("phase: a bad key names itself");
    let bad = try_query(&addr, QueryLevel::Study, &[("Nonsense", "x")]).await;
    let status = bad.expect_err("unknown key rejected");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("Nonsense"),
        "{}",
        status.message()
    );

    println!("phase: metrics and readiness over HTTP");
    // Node 3 took the ingest stream, so it has counted stores.
    let metrics = http_get("127.0.0.1:8283", "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("tessera_stores_total"), "{metrics}");
    assert!(metrics.contains("tessera_raft_term"), "{metrics}");
    let ready = http_get("127.0.0.1:8282", "/ready");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    println!("phase: the change feed replays the stores");
    let mut feed = archive(&addr)
        .await
        .watch(WatchRequest { from_index: 1 })
        .await
        .expect("watch")
        .into_inner();
    let mut stored_events = 0;
    while stored_events < files.len() {
        let entry = feed.next().await.expect("feed continues").expect("entry");
        if let Some(tessera_proto::v1::event::Body::InstanceStored(_)) =
            entry.event.and_then(|e| e.body)
        {
            stored_events += 1;
        }
    }
    assert_eq!(stored_events, files.len());
}

/// Sends a plain HTTP/1.1 GET, so the test needs no HTTP client crate.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};

    let mut stream = std::net::TcpStream::connect(addr).expect("http port open");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    response
}
