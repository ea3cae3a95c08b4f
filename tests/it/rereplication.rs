use std::time::{Duration, Instant};

use tessera_proto::v1::IngestStatus;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_down_past_grace_has_replicas_recreated() {
    let cluster = TestCluster::start(4, 7800, &["--repair-grace", "3s"]);
    let files = generated(cluster.dir.path(), 31, 2, 3);
    let first = cluster.nodes()[0].grpc_addr.clone();
    let results = ingest(&first, &files).await;
    assert!(
        results.iter().all(|r| r.status() == IngestStatus::Stored),
        "{results:?}"
    );

    let before = status(&first).await;
    let total_copies: u64 = before.nodes.iter().map(|n| n.blob_count).sum();
    assert_eq!(
        total_copies as usize,
        files.len() * 3,
        "R = 3 copies of every blob"
    );

    let leader = before.leader_id;
    let victim = before
        .nodes
        .iter()
        .filter(|n| n.node_id != leader)
        .max_by_key(|n| n.blob_count)
        .expect("a follower with blobs")
        .clone();
    println!(
        "phase: SIGKILL node {} holding {} blobs",
        victim.node_id, victim.blob_count
    );
    cluster.kill(victim.node_id);
    let killed_at = Instant::now();

    let leader_addr = cluster.addr_of(leader);
    let restored = eventually(Duration::from_secs(90), || async {
        let now = status(&leader_addr).await;
        let live: u64 = now
            .nodes
            .iter()
            .filter(|n| n.reachable)
            .map(|n| n.blob_count)
            .sum();
        now.under_replicated_blobs == 0 && live as usize == files.len() * 3
    })
    .await;
    assert!(
        restored,
        "three live copies of every blob were not restored"
    );
    println!(
        "re-replicated {} blobs of node {} in {:.1} s after the kill (grace 3 s)",
        victim.blob_count,
        victim.node_id,
        killed_at.elapsed().as_secs_f64()
    );

    println!("phase: every instance still byte-identical");
    for (result, (_, bytes)) in results.iter().zip(&files) {
        let fetched = retrieve_instance(&leader_addr, &result.sop_instance_uid)
            .await
            .expect("retrieve");
        assert_eq!(sha256(&fetched), sha256(bytes));
    }
}
