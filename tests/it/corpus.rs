use std::process::Command;

use crate::harness::*;

fn pydicom_test_files() -> std::path::PathBuf {
    let output = Command::new("python3")
        .args(["-c", "import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))"])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "pydicom missing; run tests/setup.sh"
    );
    std::path::PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pydicom_corpus_round_trips_byte_identical() {
    let cluster = TestCluster::start(3, 8300, &[]);
    let corpus = pydicom_test_files();
    let output = cluster.run(&[
        "store",
        "--json",
        "--parallel",
        "4",
        corpus.to_str().expect("utf-8"),
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "json summary: {e}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });

    let unavailable = summary["unavailable"].as_array().expect("list");
    assert!(unavailable.is_empty(), "{unavailable:?}");
    let instances = summary["instances"].as_array().expect("instances");
    let stored = summary["stored"].as_u64().expect("stored")
        + summary["already_stored"].as_u64().expect("dup");
    assert_eq!(instances.len() as u64, stored);
    assert!(stored >= 50, "only {stored} corpus files stored: {summary}");
    let rejected = summary["rejected"].as_array().expect("rejected");
    for entry in rejected {
        assert!(
            !entry[1].as_str().unwrap_or("").is_empty(),
            "rejection without a reason: {entry}"
        );
    }
    println!("corpus: {stored} stored, {} rejected", rejected.len());

    let addrs: Vec<String> = cluster.nodes().into_iter().map(|n| n.grpc_addr).collect();
    for (i, entry) in instances.iter().enumerate() {
        let path = entry[0].as_str().expect("path");
        let sop = entry[1].as_str().expect("sop");
        let source = std::fs::read(path).expect("source file");
        let fetched = retrieve_instance(&addrs[i % addrs.len()], sop)
            .await
            .expect("retrieve");
        // Files sharing a SOP Instance UID with identical bytes are one instance;
        // with other bytes the later one is rejected, so every pair must match.
        assert_eq!(sha256(&fetched), sha256(&source), "{path}");
    }
}
