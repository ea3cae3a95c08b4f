use std::collections::{BTreeMap, BTreeSet};
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

    // Files sharing a SOP Instance UID are one instance: the archive keeps
    // the bytes that arrived first, accepts a re-encoding of the same data
    // set in another transfer syntax as already stored, and rejects other
    // bytes. So each instance comes back as one of its files, byte for byte,
    // and as the same file whichever node serves it.
    let mut sources: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for entry in instances {
        let (path, sop) = (
            entry[0].as_str().expect("path"),
            entry[1].as_str().expect("sop"),
        );
        let source = std::fs::read(path).expect("source file");
        sources.entry(sop).or_default().push(sha256(&source));
    }
    let addrs: Vec<String> = cluster.nodes().into_iter().map(|n| n.grpc_addr).collect();
    for (i, (sop, hashes)) in sources.iter().enumerate() {
        let mut served = BTreeSet::new();
        for addr in [&addrs[i % addrs.len()], &addrs[(i + 1) % addrs.len()]] {
            let fetched = retrieve_instance(addr, sop).await.expect("retrieve");
            served.insert(sha256(&fetched));
        }
        assert_eq!(served.len(), 1, "{sop} differs between nodes");
        let served = served.into_iter().next().expect("one");
        assert!(
            hashes.contains(&served),
            "{sop}: {served} is none of {hashes:?}"
        );
    }
    let single = sources.values().filter(|hashes| hashes.len() == 1).count();
    assert!(single >= 40, "only {single} instances with one source file");
}
