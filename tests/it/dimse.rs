//! DIMSE associations and C-STORE against a three-node cluster: DCMTK and
//! pynetdicom as modalities, peer checks, every storage transfer syntax
//! stored as received, duplicates, and hostile input on raw sockets.

use std::collections::BTreeMap;

use tessera_proto::v1::QueryLevel;

use crate::dimse_tools::*;
use crate::harness::*;

/// pydicom samples in the transfer syntaxes the listener must store as
/// received, each with the storescu option that proposes its transfer
/// syntax. Several samples are one image in different transfer syntaxes
/// under a single SOP Instance UID, so SC_rgb_rle.dcm is sent as a copy
/// with a new UID.
const SAMPLES: [(&str, &str); 10] = [
    ("-xe", "CT_small.dcm"),
    ("-xi", "rtplan.dcm"),
    ("-xb", "ExplVR_BigEnd.dcm"),
    ("-xd", "image_dfl.dcm"),
    ("-xy", "SC_jpeg_no_color_transform.dcm"),
    ("-xs", "SC_rgb_jpeg_gdcm.dcm"),
    ("-xt", "MR_small_jpeg_ls_lossless.dcm"),
    ("-xr", "SC_rgb_rle.dcm"),
    ("-xv", "GDCMJ2K_TextGBR.dcm"),
    ("-xw", "693_J2KI.dcm"),
];

fn echo(node: &NodeInfo, calling: &str, called: &str) -> std::process::Output {
    let (host, port) = host_port(&node.dimse_addr);
    dcmtk("echoscu")
        .args(["-aet", calling, "-aec", called, &host, &port])
        .output()
        .expect("echoscu runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimse_store_peers_and_bad_input() {
    let peers = ["ECHOSCU", "STORESCU", "PYNETDICOM", "BADINPUT"]
        .map(|ae| format!("--dimse-peer={ae}@127.0.0.1:9"));
    let mut extra: Vec<&str> = peers.iter().map(String::as_str).collect();
    extra.push("--dimse-reject-unknown");
    let cluster = TestCluster::start(3, 8500, &extra);
    let node1 = cluster.node(1);
    let node2 = cluster.node(2);

    eprintln!("phase: C-ECHO on every node, then rejected callers");
    for node in cluster.nodes() {
        assert_eq!(
            node.dimse_addr,
            format!("127.0.0.1:{}", 8540 + node.node_id)
        );
        let output = echo(&node, "ECHOSCU", &node.ae_title);
        assert!(
            output.status.success(),
            "echo {}: {}",
            node.ae_title,
            output_text(&output)
        );
    }
    let stranger = echo(&node1, "STRANGER", &node1.ae_title);
    assert!(!stranger.status.success());
    let text = output_text(&stranger).to_lowercase();
    assert!(text.contains("calling ae title not recognized"), "{text}");
    let wrong_called = echo(&node1, "ECHOSCU", "NOT_TESSERA");
    let text = output_text(&wrong_called).to_lowercase();
    assert!(!wrong_called.status.success());
    assert!(text.contains("called ae title not recognized"), "{text}");

    eprintln!("phase: storescu sends every transfer syntax through node 1");
    let samples = pydicom_data("test_files");
    let generated = generated(cluster.dir.path(), 85, 1, 3);
    let (host, port) = host_port(&node1.dimse_addr);
    let mut paths = Vec::new();
    for (option, name) in SAMPLES {
        let mut path = samples.join(name).display().to_string();
        if name == "SC_rgb_rle.dcm" {
            path = copy_with_new_uid(
                &path,
                cluster.dir.path(),
                "1.2.826.0.1.3680043.8.498.85000002",
            );
        }
        let output = dcmtk("storescu")
            .args([
                option,
                "-aet",
                "STORESCU",
                "-aec",
                &node1.ae_title,
                &host,
                &port,
                &path,
            ])
            .output()
            .expect("storescu runs");
        assert!(
            output.status.success(),
            "storescu {name}: {}",
            output_text(&output)
        );
        paths.push(path);
    }
    let generated_paths: Vec<&str> = generated.iter().map(|(path, _)| path.as_str()).collect();
    let output = dcmtk("storescu")
        .args(["-aet", "STORESCU", "-aec", &node1.ae_title, &host, &port])
        .args(&generated_paths)
        .output()
        .expect("storescu runs");
    assert!(
        output.status.success(),
        "storescu: {}",
        output_text(&output)
    );
    paths.extend(generated_paths.iter().map(|path| path.to_string()));

    eprintln!("phase: node 2 returns each instance in the transfer syntax it arrived in");
    for path in &paths {
        let original = std::fs::read(path).expect("sample readable");
        let attributes = tessera_dicom_attributes(&original);
        let stored = retrieve_instance(&node2.grpc_addr, &attributes["sop"])
            .await
            .unwrap_or_else(|e| panic!("{path} not stored: {e}"));
        let stored_attributes = tessera_dicom_attributes(&stored);
        assert_eq!(stored_attributes["ts"], attributes["ts"], "{path}");
    }

    eprintln!("phase: the change feed names the calling AE title of each C-STORE");
    let actors = stored_event_actors(&node2.grpc_addr).await;
    assert_eq!(actors.len(), paths.len(), "{actors:?}");
    for actor in &actors {
        assert_eq!(actor, "STORESCU", "{actors:?}");
    }

    eprintln!("phase: data sets sent byte for byte come back byte for byte");
    let raw_copies: Vec<String> = [
        ("JPGExtended.dcm", "85000003"),
        ("MR_small_bigendian.dcm", "85000004"),
        ("MR_small_RLE.dcm", "85000005"),
    ]
    .iter()
    .map(|(name, suffix)| {
        let source = samples.join(name).display().to_string();
        let uid = format!("1.2.826.0.1.3680043.8.498.{suffix}");
        copy_with_new_uid(&source, cluster.dir.path(), &uid)
    })
    .collect();
    let mut args = vec![
        host.as_str(),
        port.as_str(),
        node1.ae_title.as_str(),
        "BADINPUT",
    ];
    args.extend(raw_copies.iter().map(String::as_str));
    let sent = interop("send_raw.py", &args);
    for (entry, path) in sent.as_array().expect("list").iter().zip(&raw_copies) {
        assert_eq!(entry["status"], 0, "{entry}");
        let original = std::fs::read(path).expect("copy readable");
        let uid = tessera_dicom_attributes(&original)["sop"].clone();
        let stored = retrieve_instance(&node2.grpc_addr, &uid)
            .await
            .expect("stored");
        assert_eq!(
            sha256(data_set_of(&stored)),
            sha256(data_set_of(&original)),
            "{path}: data set changed"
        );
    }

    eprintln!("phase: duplicates: same bytes succeed, different bytes fail naming the UID");
    let ct = samples.join("CT_small.dcm").display().to_string();
    let modified = cluster.dir.path().join("CT_small_modified.dcm");
    let script = format!(
        "import pydicom; ds = pydicom.dcmread({ct:?}); ds.PatientName = 'Changed^Name'; ds.save_as({:?})",
        modified.display().to_string()
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let (host2, port2) = host_port(&node2.dimse_addr);
    let again = interop(
        "send_raw.py",
        &[&host2, &port2, &node2.ae_title, "BADINPUT", &raw_copies[0]],
    );
    assert_eq!(again[0]["status"], 0x0000, "same bytes again: {again}");
    let results = interop(
        "store.py",
        &[
            &host2,
            &port2,
            &node2.ae_title,
            modified.to_str().expect("utf-8"),
        ],
    );
    let ct_uid = tessera_dicom_attributes(&std::fs::read(&ct).expect("readable"))["sop"].clone();
    assert_eq!(results[0]["status"], 0x0111, "{results}");
    let comment = results[0]["comment"].as_str().unwrap_or_default();
    assert!(comment.contains(&ct_uid), "{comment}");

    eprintln!("phase: a data set without Study Instance UID fails with 0xC000");
    let no_study = cluster.dir.path().join("no_study.dcm");
    let script = format!(
        "import pydicom; ds = pydicom.dcmread({ct:?}); del ds.StudyInstanceUID; \
         ds.SOPInstanceUID = '1.2.826.0.1.3680043.8.498.85000006'; \
         ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID; ds.save_as({:?})",
        no_study.display().to_string()
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3 runs");
    assert!(status.success());
    let results = interop(
        "store.py",
        &[
            &host2,
            &port2,
            &node2.ae_title,
            no_study.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(results[0]["status"], 0xC000, "{results}");
    let comment = results[0]["comment"].as_str().unwrap_or_default();
    assert!(comment.contains("StudyInstanceUID"), "{comment}");

    eprintln!("phase: garbage, oversized PDUs and a dropped C-STORE on raw sockets");
    let partial_uid = "1.2.826.0.1.3680043.8.498.85000001";
    let (host, port) = host_port(&node1.dimse_addr);
    let outcome = interop(
        "bad_input.py",
        &[&host, &port, &node1.ae_title, partial_uid],
    );
    assert_eq!(outcome["garbage"], "abort", "{outcome}");
    assert_eq!(outcome["huge_associate"], "abort", "{outcome}");
    assert_eq!(outcome["oversized_pdata"], "abort", "{outcome}");
    assert_eq!(outcome["disconnect_mid_store"], "sent", "{outcome}");

    let after = echo(&node1, "ECHOSCU", &node1.ae_title);
    assert!(
        after.status.success(),
        "node 1 stopped serving: {}",
        output_text(&after)
    );
    let results = interop(
        "send_raw.py",
        &[&host, &port, &node1.ae_title, "BADINPUT", &raw_copies[1]],
    );
    assert_eq!(results[0]["status"], 0x0000, "{results}");
    let partial = query(
        &node1.grpc_addr,
        QueryLevel::Instance,
        &[("SOPInstanceUID", partial_uid)],
    )
    .await;
    assert_eq!(partial.records.len(), 0, "a partial C-STORE was stored");
}

/// A leader that lost its quorum cannot commit. A C-STORE to it fails with
/// 0xA700 and an Error Comment that names the instance once the commit
/// timeout of 30 s has passed, rather than leaving the requester waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimse_store_without_quorum_times_out() {
    // With one copy of each blob, the leader stores the blob alone and the
    // store waits for the commit, not for replicas.
    let cluster = TestCluster::start(3, 9500, &["--replication-factor", "1"]);
    let first = cluster.nodes()[0].grpc_addr.clone();
    let leader = cluster.node(status(&first).await.leader_id);

    eprintln!("phase: SIGKILL both followers of leader {}", leader.node_id);
    for node in cluster.nodes() {
        if node.node_id != leader.node_id {
            cluster.kill(node.node_id);
        }
    }

    eprintln!("phase: C-STORE to the leader fails once the commit times out");
    let generated = generated(cluster.dir.path(), 95, 1, 1);
    let uid = "1.2.826.0.1.3680043.8.498.85000095";
    let file = copy_with_new_uid(&generated[0].0, cluster.dir.path(), uid);
    let (host, port) = host_port(&leader.dimse_addr);
    let started = std::time::Instant::now();
    let results = interop("store.py", &[&host, &port, &leader.ae_title, &file]);
    let elapsed = started.elapsed();

    assert_eq!(results[0]["status"], 0xA700, "{results}");
    let comment = results[0]["comment"].as_str().unwrap_or_default();
    assert!(comment.ends_with(uid), "{comment}");
    assert!(
        elapsed < std::time::Duration::from_secs(90),
        "the C-STORE took {elapsed:?}"
    );
}

/// Writes a copy of a Part 10 file under a new SOP Instance UID, keeping
/// its transfer syntax and pixel data, and returns the copy's path.
fn copy_with_new_uid(path: &str, dir: &std::path::Path, uid: &str) -> String {
    let copy = dir.join(format!("{uid}.dcm")).display().to_string();
    let script = format!(
        "import pydicom; ds = pydicom.dcmread({path:?}); ds.SOPInstanceUID = {uid:?}; \
         ds.file_meta.MediaStorageSOPInstanceUID = {uid:?}; ds.save_as({copy:?})"
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "pydicom could not copy {path}");
    copy
}

/// Reads the SOP Instance UID and transfer syntax of a Part 10 file with pydicom.
fn tessera_dicom_attributes(file: &[u8]) -> BTreeMap<&'static str, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("file.dcm");
    std::fs::write(&path, file).expect("writable");
    let script = format!(
        "import pydicom; ds = pydicom.dcmread({:?}, stop_before_pixels=True); \
         print(ds.SOPInstanceUID); print(ds.file_meta.TransferSyntaxUID)",
        path.display().to_string()
    );
    let output = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let mut lines = text.lines();
    BTreeMap::from([
        ("sop", lines.next().unwrap_or_default().trim().to_string()),
        ("ts", lines.next().unwrap_or_default().trim().to_string()),
    ])
}

/// Calling AE titles recorded on the InstanceStored events applied so far,
/// "(not an AE title)" for any other kind of actor.
async fn stored_event_actors(addr: &str) -> Vec<String> {
    use futures::StreamExt;
    use tessera_proto::v1::{actor, event, WatchRequest};

    let applied = status(addr).await.last_applied;
    let mut feed = archive(addr)
        .await
        .watch(WatchRequest { from_index: 1 })
        .await
        .expect("watch")
        .into_inner();
    let mut actors = Vec::new();
    loop {
        let entry = feed.next().await.expect("feed continues").expect("entry");
        let kind = match entry.event {
            Some(event) if matches!(event.body, Some(event::Body::InstanceStored(_))) => {
                Some(event.actor.and_then(|a| a.kind))
            }
            _ => None,
        };
        if let Some(kind) = kind {
            actors.push(match kind {
                Some(actor::Kind::AeTitle(ae)) => ae,
                _ => "(not an AE title)".to_string(),
            });
        }
        if entry.index >= applied {
            return actors;
        }
    }
}
