use tessera_proto::v1::{IngestStatus, QueryLevel};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_uid_same_bytes_once_different_bytes_rejected() {
    let cluster = TestCluster::start(3, 8000, &[]);
    let files = generated(cluster.dir.path(), 51, 1, 1);
    let (label, original) = files[0].clone();
    let addr = cluster.nodes()[1].grpc_addr.clone();

    let first = ingest(&addr, &[(label.clone(), original.clone())]).await;
    assert_eq!(first[0].status(), IngestStatus::Stored);
    let again = ingest(&addr, &[(label.clone(), original.clone())]).await;
    assert_eq!(again[0].status(), IngestStatus::AlreadyStored);
    let index_after_first = first[0].log_index;

    println!("phase: same SOP Instance UID, one pixel changed");
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    let conflict = ingest(&addr, &[(label, changed)]).await;
    assert_eq!(conflict[0].status(), IngestStatus::Rejected);
    assert!(
        conflict[0]
            .reason
            .contains("already stored with different bytes"),
        "{}",
        conflict[0].reason
    );

    let fetched = retrieve_instance(&addr, &first[0].sop_instance_uid)
        .await
        .expect("retrieve");
    assert_eq!(
        sha256(&fetched),
        sha256(&original),
        "stored instance untouched"
    );
    let page = query(&addr, QueryLevel::Instance, &[]).await;
    assert_eq!(page.total, 1);
    assert!(index_after_first > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_stores_have_one_winner() {
    let cluster = TestCluster::start(3, 8100, &[]);
    let files = generated(cluster.dir.path(), 52, 1, 1);
    let file = files[0].clone();
    let addrs: Vec<String> = cluster.nodes().into_iter().map(|n| n.grpc_addr).collect();

    let attempts = (0..9).map(|i| {
        let addr = addrs[i % addrs.len()].clone();
        let file = file.clone();
        tokio::spawn(async move { ingest(&addr, &[file]).await.remove(0) })
    });
    let results: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task finished"))
        .collect();

    let stored = results
        .iter()
        .filter(|r| r.status() == IngestStatus::Stored)
        .count();
    let already = results
        .iter()
        .filter(|r| r.status() == IngestStatus::AlreadyStored)
        .count();
    assert_eq!(stored, 1, "{results:?}");
    assert_eq!(already, 8, "{results:?}");
    let page = query(&addrs[0], QueryLevel::Instance, &[]).await;
    assert_eq!(page.total, 1);
}
