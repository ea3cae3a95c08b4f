//! pynetdicom and DCMTK against the DIMSE listener: many associations
//! storing at once (some the same instance), storage commitment, C-CANCEL
//! and a small maximum PDU length in both directions.

use std::collections::BTreeSet;

use tessera_proto::v1::QueryLevel;

use crate::dimse_tools::*;
use crate::harness::*;

const ASSOCIATIONS: usize = 32;
/// Where commit.py listens for results sent on a new association.
const COMMIT_LISTEN_PORT: u16 = 8790;
/// Where reactor_race.py runs its own Storage SCP.
const REACTOR_RACE_PORT: u16 = 8791;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimse_concurrency_commitment_and_cancel() {
    let listener = format!("--dimse-peer=COMMITSCU@127.0.0.1:{COMMIT_LISTEN_PORT}");
    // Every association comes from 127.0.0.1, above the default limit of
    // 16 connections per address.
    let cluster = TestCluster::start(
        3,
        8700,
        &[&listener, "--dimse-max-associations-per-address=64"],
    );
    let (node1, node2) = (cluster.node(1), cluster.node(2));
    let (host1, port1) = host_port(&node1.dimse_addr);
    let (host2, port2) = host_port(&node2.dimse_addr);

    eprintln!("phase: {ASSOCIATIONS} associations store at once, all repeating one instance");
    let generated = generated(cluster.dir.path(), 87, 2, 4);
    let (shared, rest) = generated.split_first().expect("generated files");
    let associations = ASSOCIATIONS.to_string();
    let mut args = vec![
        host1.as_str(),
        port1.as_str(),
        node1.ae_title.as_str(),
        "--associations",
        &associations,
        "--repeat",
        shared.0.as_str(),
    ];
    args.extend(rest.iter().map(|(path, _)| path.as_str()));
    let results = interop("store.py", &args);
    let results = results.as_array().expect("list");
    assert_eq!(
        results.len(),
        rest.len() + ASSOCIATIONS,
        "one result per store"
    );
    for entry in results {
        assert_eq!(entry["status"], 0, "{entry}");
    }
    let stored = query(&node2.grpc_addr, QueryLevel::Instance, &[]).await;
    assert_eq!(stored.records.len(), generated.len(), "every instance once");

    eprintln!("phase: storage commitment through node 2 for stored and unknown instances");
    let committed_uids: Vec<String> = stored
        .records
        .iter()
        .take(5)
        .map(|r| r.attributes["SOPInstanceUID"].clone())
        .collect();
    let class = stored.records[0].attributes["SOPClassUID"].clone();
    let missing = "1.2.826.0.1.3680043.8.498.87999999";
    let mut references: Vec<String> = committed_uids
        .iter()
        .map(|uid| format!("{class}:{uid}"))
        .collect();
    references.push(format!("{class}:{missing}"));
    let mut args = vec![host2.as_str(), port2.as_str(), node2.ae_title.as_str()];
    args.extend(references.iter().map(String::as_str));
    let commitment = interop("commit.py", &args);
    assert_eq!(commitment["action_status"], 0, "{commitment}");
    let report = &commitment["reports"][0];
    assert_eq!(report["event_type"], 2, "one failure: {commitment}");
    assert_eq!(report["transaction"], commitment["transaction"]);
    let committed: BTreeSet<String> = report["committed"]
        .as_array()
        .expect("committed list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        committed,
        committed_uids.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        report["failed"],
        serde_json::json!([{"uid": missing, "reason": 0x0112}])
    );

    eprintln!("phase: the result goes on a new association once the requester released");
    let listen_port = COMMIT_LISTEN_PORT.to_string();
    let mut args = vec![
        host2.as_str(),
        port2.as_str(),
        node2.ae_title.as_str(),
        "--listen",
        &listen_port,
    ];
    args.extend(references.iter().take(2).map(String::as_str));
    let later = interop("commit.py", &args);
    assert_eq!(later["action_status"], 0, "{later}");
    let report = &later["reports"][0];
    assert_eq!(report["event_type"], 1, "all committed: {later}");
    assert_eq!(report["transaction"], later["transaction"]);
    assert_eq!(
        report["committed"].as_array().map(Vec::len),
        Some(2),
        "{later}"
    );

    eprintln!("phase: C-CANCEL sent with the C-FIND stops the matches");
    let cancelled = interop(
        "cancel.py",
        &[
            &host2,
            &port2,
            &node2.ae_title,
            "CANCELSCU",
            "IMAGE",
            "SOPInstanceUID=",
        ],
    );
    assert_eq!(cancelled["status"], 0xFE00, "{cancelled}");
    assert_eq!(cancelled["pending"], 0, "{cancelled}");

    eprintln!("phase: a 4 KiB maximum PDU length in both directions");
    let small_dir = tempfile::tempdir().expect("temp dir");
    let study = &stored.records[0].attributes["StudyInstanceUID"];
    let getscu = dcmtk("getscu")
        .args(["-S", "--max-pdu", "4096", "-aec", &node2.ae_title])
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
        .arg(format!("StudyInstanceUID={study}"))
        .arg("-od")
        .arg(small_dir.path())
        .args([&host2, &port2])
        .output()
        .expect("getscu runs");
    assert!(getscu.status.success(), "{}", output_text(&getscu));
    let fetched = read_tree(small_dir.path());
    assert!(!fetched.is_empty(), "{}", output_text(&getscu));
    for (path, bytes) in &fetched {
        let original = generated
            .iter()
            .find(|(_, original)| data_set_of(original) == data_set_of(bytes));
        assert!(
            original.is_some(),
            "{path} differs from every generated instance"
        );
    }
    let storescu = dcmtk("storescu")
        .args([
            "--max-send-pdu",
            "4096",
            "-aec",
            &node1.ae_title,
            &host1,
            &port1,
        ])
        .arg(&shared.0)
        .output()
        .expect("storescu runs");
    assert!(storescu.status.success(), "{}", output_text(&storescu));
}

/// store.py keeps pynetdicom's reactor thread from taking a C-STORE response
/// off the queue before send_c_store does. Without that, a response that came
/// back fast was dropped now and then, and the store waited for its DIMSE
/// timeout although the node had sent the response. The script forces the
/// schedule that loses the response, against an SCP of its own.
#[test]
fn pynetdicom_store_response_reaches_caller() {
    let port = REACTOR_RACE_PORT.to_string();

    let race = interop("reactor_race.py", &[&port]);

    assert_eq!(race["lost_with_workaround"], 0, "{race}");
    let lost = race["lost_without_workaround"].as_u64().unwrap_or(0);
    assert!(
        lost > 0,
        "the forced schedule lost no response without the workaround, so this \
         pynetdicom may no longer need scu_reactor.py: {race}"
    );
}
