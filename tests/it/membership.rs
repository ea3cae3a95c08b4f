use std::process::Command;
use std::time::Duration;

use tessera_proto::v1::{IngestStatus, QueryLevel};

use crate::harness::*;

/// Snapshot often and keep no log behind it, so a new node must install a
/// snapshot to catch up.
const SNAPSHOT_ENV: [(&str, &str); 2] = [
    ("TESSERA_SNAPSHOT_EVERY", "10"),
    ("TESSERA_SNAPSHOT_LOGS_TO_KEEP", "0"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_node_installs_snapshot_then_leaves() {
    let cluster = TestCluster::start_with_env(3, 8400, &[], &SNAPSHOT_ENV);
    let files = generated(cluster.dir.path(), 71, 2, 3);
    let first = cluster.nodes()[0].grpc_addr.clone();
    let results = ingest(&first, &files).await;
    assert!(
        results.iter().all(|r| r.status() == IngestStatus::Stored),
        "{results:?}"
    );

    println!("phase: start node 4 outside the cluster");
    let data = cluster.dir.path().join("node-4");
    let addr = "127.0.0.1:8404";
    let log = std::fs::File::create(cluster.dir.path().join("node-4.log")).expect("log");
    let mut node4 = Command::new(tessera_bin())
        .args([
            "serve",
            "--node-id",
            "4",
            "--grpc-listen",
            addr,
            "--http-listen",
            "127.0.0.1:8484",
        ])
        .arg("--data-dir")
        .arg(&data)
        .envs(SNAPSHOT_ENV)
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("node 4 starts");
    let up = eventually(Duration::from_secs(30), || async {
        tonic::transport::Endpoint::from_static("http://127.0.0.1:8404")
            .connect()
            .await
            .is_ok()
    })
    .await;
    assert!(up, "node 4 did not listen");

    println!("phase: a malformed address is rejected by name");
    let output = cluster.run(&["cluster", "add-node", "5=no-port-here"]);
    let error = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success());
    assert!(error.contains("no-port-here"), "{error}");

    println!("phase: add node 4 as learner, then voter");
    let output = cluster.run(&["cluster", "add-node", &format!("4={addr}")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let membership = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(membership.contains("voters [1, 2, 3, 4]"), "{membership}");

    println!("phase: node 4 serves the whole index");
    let caught_up = eventually(Duration::from_secs(60), || async {
        let page = try_query(addr, QueryLevel::Instance, &[]).await;
        page.map(|p| p.total as usize == files.len())
            .unwrap_or(false)
    })
    .await;
    assert!(caught_up, "node 4 did not index every instance");
    let node4_log =
        std::fs::read_to_string(cluster.dir.path().join("node-4.log")).unwrap_or_default();
    assert!(
        node4_log.contains("installed snapshot"),
        "node 4 replayed the log instead:\n{node4_log}"
    );
    for (result, (_, bytes)) in results.iter().zip(&files).take(5) {
        let fetched = retrieve_instance(addr, &result.sop_instance_uid)
            .await
            .expect("retrieve via node 4");
        assert_eq!(sha256(&fetched), sha256(bytes));
    }

    println!("phase: remove node 4");
    let output = cluster.run(&["cluster", "remove-node", "4"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let membership = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(membership.contains("voters [1, 2, 3]"), "{membership}");
    let still_writable = ingest(&first, &generated(cluster.dir.path(), 72, 1, 1)).await;
    assert!(still_writable
        .iter()
        .all(|r| r.status() == IngestStatus::Stored));

    let _ = node4.kill();
    let _ = node4.wait();
}
