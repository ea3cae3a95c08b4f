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

    println!("phase: same data set in another file meta group and preamble");
    let repackaged = repackage(&original);
    assert_ne!(sha256(&repackaged), sha256(&original));
    let resent = ingest(&addr, &[(label.clone(), repackaged)]).await;
    assert_eq!(
        resent[0].status(),
        IngestStatus::AlreadyStored,
        "{resent:?}"
    );

    println!("phase: same SOP Instance UID, one pixel changed");
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    let conflict = ingest(&addr, &[(label, changed)]).await;
    assert_eq!(conflict[0].status(), IngestStatus::Rejected);
    assert!(
        conflict[0]
            .reason
            .contains("already stored with another data set"),
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

/// Repackages an instance as another writer would: a different preamble and
/// Implementation Class UID, the data set unchanged.
fn repackage(file: &[u8]) -> Vec<u8> {
    let mut bytes = file.to_vec();
    bytes[..128].fill(0x20);
    let tag = [0x02, 0x00, 0x12, 0x00, b'U', b'I'];
    let at = bytes
        .windows(tag.len())
        .position(|window| window == tag)
        .expect("Implementation Class UID in the meta group");
    let length = u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]) as usize;
    let first_digit = at + 8;
    bytes[first_digit] = if bytes[first_digit] == b'1' {
        b'2'
    } else {
        b'1'
    };
    assert!(length > 0);
    bytes
}
