use std::time::{Duration, Instant};

use tessera_proto::v1::{IngestStatus, QueryLevel};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_loses_nothing_and_node_catches_up() {
    let cluster = TestCluster::start(3, 7600, &[]);
    let files = generated(cluster.dir.path(), 11, 2, 4);
    let first = cluster.nodes()[0].grpc_addr.clone();

    println!("phase: store {} instances", files.len());
    let results = ingest(&first, &files).await;
    let stored = results
        .iter()
        .filter(|r| r.status() == IngestStatus::Stored)
        .count();
    assert_eq!(
        stored,
        files.len(),
        "every generated instance stored: {results:?}"
    );

    let leader = status(&first).await.leader_id;
    println!("phase: SIGKILL leader {leader}");
    cluster.kill(leader);
    let killed_at = Instant::now();
    let survivor = cluster
        .nodes()
        .into_iter()
        .find(|n| n.node_id != leader)
        .expect("survivor");

    println!("phase: every acknowledged instance is found and byte-identical on survivors");
    for (result, (_, bytes)) in results.iter().zip(&files) {
        let fetched = retrieve_instance(&survivor.grpc_addr, &result.sop_instance_uid).await;
        let fetched =
            fetched.unwrap_or_else(|s| panic!("retrieve {} failed: {s}", result.sop_instance_uid));
        assert_eq!(
            sha256(&fetched),
            sha256(bytes),
            "instance {}",
            result.sop_instance_uid
        );
    }
    let instances = query(&survivor.grpc_addr, QueryLevel::Instance, &[]).await;
    assert_eq!(instances.total as usize, files.len());

    println!("phase: new stores succeed with the leader down");
    let late = generated(cluster.dir.path(), 12, 1, 2);
    let late_results = ingest(&survivor.grpc_addr, &late).await;
    let late_stored = late_results
        .iter()
        .filter(|r| r.status() == IngestStatus::Stored)
        .count();
    assert_eq!(
        late_stored,
        late.len(),
        "stores after the kill: {late_results:?}"
    );
    println!(
        "first stores after leader kill done {:.2} s after it",
        killed_at.elapsed().as_secs_f64()
    );

    println!("phase: restart node {leader}; it catches up");
    cluster.restart(leader);
    let restarted = cluster.addr_of(leader);
    let total = files.len() + late.len();
    let caught_up = eventually(Duration::from_secs(60), || async {
        let page = try_query(&restarted, QueryLevel::Instance, &[]).await;
        page.map(|p| p.total as usize == total).unwrap_or(false)
    })
    .await;
    assert!(
        caught_up,
        "restarted node did not index all {total} instances"
    );
    for (result, (_, bytes)) in late_results.iter().zip(&late) {
        let fetched = retrieve_instance(&restarted, &result.sop_instance_uid)
            .await
            .expect("retrieve");
        assert_eq!(sha256(&fetched), sha256(bytes));
    }

    println!("phase: the restarted node receives the copies it missed");
    let repaired = eventually(Duration::from_secs(60), || async {
        status(&restarted).await.under_replicated_blobs == 0
    })
    .await;
    assert!(
        repaired,
        "blobs stored while the node was down stayed under-replicated"
    );
    let node_status = status(&restarted).await;
    let me = node_status
        .nodes
        .iter()
        .find(|n| n.node_id == leader)
        .expect("restarted node listed");
    assert_eq!(
        me.blob_count as usize, total,
        "restarted node holds a copy of every blob"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_sigkill_keeps_writes_going() {
    let cluster = TestCluster::start(3, 7700, &[]);
    let first = cluster.nodes()[0].grpc_addr.clone();
    let leader = status(&first).await.leader_id;
    let follower = cluster
        .nodes()
        .into_iter()
        .find(|n| n.node_id != leader)
        .expect("a follower");

    println!("phase: SIGKILL follower {}", follower.node_id);
    cluster.kill(follower.node_id);
    let files = generated(cluster.dir.path(), 21, 1, 3);
    let leader_addr = cluster.addr_of(leader);
    let results = ingest(&leader_addr, &files).await;
    let stored = results
        .iter()
        .filter(|r| r.status() == IngestStatus::Stored)
        .count();
    assert_eq!(stored, files.len(), "{results:?}");

    println!("phase: the cluster reports blobs lacking their third copy");
    let under = status(&leader_addr).await.under_replicated_blobs;
    assert_eq!(under as usize, files.len());
}
