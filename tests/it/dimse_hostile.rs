//! Peers that misbehave against the DIMSE listener: silent and idle
//! connections, a C-GET requester that stops reading, and C-STORE requests
//! whose command and data set disagree. The nodes run with 2 s ARTIM and
//! idle timeouts, so each misbehaving connection must be closed by the node
//! well within the 30 s that the script waits.

use std::process::{Command, Stdio};

use tessera_proto::v1::{IngestStatus, QueryLevel};

use crate::dimse_tools::*;
use crate::harness::*;

const SHORT_TIMEOUTS: [(&str, &str); 2] = [
    ("TESSERA_DIMSE_ARTIM_TIMEOUT", "2s"),
    ("TESSERA_DIMSE_IDLE_TIMEOUT", "2s"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimse_hostile_peers_are_cut_off() {
    let cluster = TestCluster::start_with_env(3, 10200, &[], &SHORT_TIMEOUTS);
    let node1 = cluster.node(1);
    let (host, port) = host_port(&node1.dimse_addr);
    let hostile = |case: &str, args: &[&str]| {
        let mut all = vec![host.as_str(), port.as_str(), node1.ae_title.as_str(), case];
        all.extend_from_slice(args);
        interop("hostile.py", &all)
    };

    eprintln!("phase: a connection that never sends an A-ASSOCIATE-RQ is closed");
    let silent = hostile("silent", &[]);
    assert_ne!(
        silent["event"], "timeout",
        "ARTIM timer did not fire: {silent}"
    );

    eprintln!("phase: an association that goes quiet is aborted");
    let idle = hostile("idle", &[]);
    assert_eq!(idle["event"], "abort", "idle association kept: {idle}");

    eprintln!("phase: C-STORE whose data set names another SOP Instance UID fails with 0xA900");
    let command_uid = "1.2.826.0.1.3680043.8.498.102001";
    let data_uid = "1.2.826.0.1.3680043.8.498.102002";
    let result = hostile("mismatch", &[command_uid, data_uid]);
    assert_eq!(result["status"], 0xA900, "{result}");
    let comment = result["comment"].as_str().unwrap_or_default();
    assert!(comment.contains(command_uid), "{comment}");
    for uid in [command_uid, data_uid] {
        let stored = query(
            &node1.grpc_addr,
            QueryLevel::Instance,
            &[("SOPInstanceUID", uid)],
        )
        .await;
        assert_eq!(stored.records.len(), 0, "{uid} stored despite the mismatch");
    }

    eprintln!("phase: C-STORE without Affected SOP Instance UID fails with 0xC000");
    let data_uid = "1.2.826.0.1.3680043.8.498.102003";
    let result = hostile("no_instance_uid", &[data_uid]);
    assert_eq!(result["status"], 0xC000, "{result}");
    let comment = result["comment"].as_str().unwrap_or_default();
    assert!(comment.contains("Affected SOP Instance UID"), "{comment}");
    let stored = query(
        &node1.grpc_addr,
        QueryLevel::Instance,
        &[("SOPInstanceUID", data_uid)],
    )
    .await;
    assert_eq!(
        stored.records.len(),
        0,
        "stored without an Affected SOP Instance UID"
    );

    eprintln!("phase: a data set on another presentation context than its command aborts");
    let data_uid = "1.2.826.0.1.3680043.8.498.102004";
    let result = hostile("context_switch", &[data_uid]);
    assert_eq!(result["event"], "abort", "{result}");
    let stored = query(
        &node1.grpc_addr,
        QueryLevel::Instance,
        &[("SOPInstanceUID", data_uid)],
    )
    .await;
    assert_eq!(
        stored.records.len(),
        0,
        "stored from a mixed-context message"
    );

    eprintln!("phase: an unsupported command with a 20 MB data set gets 0x0211");
    let result = hostile("unknown_command", &["20"]);
    assert_eq!(result["status"], 0x0211, "{result}");

    eprintln!("phase: a C-GET requester that stops reading is cut off");
    let study = store_large_study(&cluster).await;
    let stalled = hostile("stalled_get", &[&study]);
    assert_ne!(
        stalled["state"], "established",
        "node still writing: {stalled}"
    );

    eprintln!("phase: every node still serves other associations");
    for node in cluster.nodes() {
        let (host, port) = host_port(&node.dimse_addr);
        let output = dcmtk("echoscu")
            .args(["-aec", &node.ae_title, &host, &port])
            .output()
            .expect("echoscu runs");
        assert!(output.status.success(), "{}", output_text(&output));
    }
}

/// Stores a study with one instance of about 19 MB, more than the socket
/// buffers between a stalled requester and the node hold, so that the node's
/// C-STORE sub-operation cannot be written in full. Returns the Study
/// Instance UID.
async fn store_large_study(cluster: &TestCluster) -> String {
    let out = cluster.dir.path().join("large-study");
    let status = Command::new(tessera_bin())
        .args(["generate", "--seed", "102", "--patients", "1"])
        .args(["--studies-per-patient", "1", "--series-per-study", "1"])
        .args(["--instances-per-series", "1", "--size", "3072"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("tessera generate runs");
    assert!(status.success(), "tessera generate failed");

    let files = read_tree(&out);
    let results = ingest(&cluster.node(1).grpc_addr, &files).await;
    for result in &results {
        assert_eq!(result.status, IngestStatus::Stored as i32, "{result:?}");
    }
    results[0].study_instance_uid.clone()
}
