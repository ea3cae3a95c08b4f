//! DIMSE services beyond plain storage against a three-node cluster:
//! transfer syntax conversion in C-GET and C-MOVE, a C-MOVE of more SOP
//! classes than one association carries, the per-address connection limit,
//! the DIMSE metrics, and storage commitment retried after quorum loss.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::dimse_tools::*;
use crate::harness::*;

const BASE_PORT: u16 = 9300;
/// syntax_scp.py, a C-MOVE destination that accepts explicit VR LE only.
const EXPLICIT_ONLY_PORT: u16 = 9390;
/// DCMTK's storescp, accepting any SOP class.
const STORESCP_PORT: u16 = 9391;
/// Where commit.py listens for results sent on a new association.
const COMMIT_LISTEN_PORT: u16 = 9392;

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
/// JPEG-LS has no decoder among dicom-pixeldata's native codecs.
const JPEG_LS: &str = "1.2.840.10008.1.2.4.80";
const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";

/// Largest pixel difference allowed after decoding JPEG baseline: dicom-rs
/// and Pillow use different inverse DCT and colour conversion code, so a
/// lossy image may differ by a few levels. Lossless syntaxes must match.
const LOSSY_TOLERANCE: i64 = 3;

/// A prepared sample: its path, SOP Instance UID and stored syntax.
struct Sample {
    path: String,
    uid: String,
    syntax: String,
}

fn prepare_samples(dir: &Path) -> (String, Vec<Sample>) {
    let out = dir.join("samples");
    std::fs::create_dir_all(&out).expect("samples dir");
    let prepared = interop("syntaxes.py", &["prepare", &out.display().to_string()]);
    let samples = prepared["files"]
        .as_array()
        .expect("file list")
        .iter()
        .map(|file| Sample {
            path: file["path"].as_str().expect("path").to_string(),
            uid: file["uid"].as_str().expect("uid").to_string(),
            syntax: file["syntax"].as_str().expect("syntax").to_string(),
        })
        .collect();
    let study = prepared["study"].as_str().expect("study").to_string();
    (study, samples)
}

/// Runs a C-GET through move.py that accepts only `syntax`, saving what
/// arrives in a new folder under `dir`.
fn get_in(node: &NodeInfo, study: &str, syntax: &str, dir: &Path) -> (Value, std::path::PathBuf) {
    let out = dir.join(format!("get-{syntax}"));
    std::fs::create_dir_all(&out).expect("get dir");
    let (host, port) = host_port(&node.dimse_addr);
    let study_key = format!("StudyInstanceUID={study}");
    let mr = format!("{MR}:{syntax}");
    let sc = format!("{SECONDARY_CAPTURE}:{syntax}");
    let out_text = out.display().to_string();
    let result = interop(
        "move.py",
        &[
            &host,
            &port,
            &node.ae_title,
            "--level",
            "STUDY",
            "--key",
            &study_key,
            "--get",
            &mr,
            "--get",
            &sc,
            "--save",
            &out_text,
        ],
    );
    (result, out)
}

/// Compares every received file with its original through pydicom.
fn check_received(samples: &[Sample], received_dir: &Path, expected_syntax: &str) {
    for sample in samples.iter().filter(|s| s.syntax != JPEG_LS) {
        let received = received_dir.join(format!("{}.dcm", sample.uid));
        assert!(
            received.exists(),
            "{} ({}) was not received in {expected_syntax}",
            sample.path,
            sample.syntax
        );
        let received_text = received.display().to_string();
        let compared = interop("syntaxes.py", &["compare", &sample.path, &received_text]);
        let context = format!("{} in {expected_syntax}: {compared}", sample.path);
        let expected = if sample.syntax == expected_syntax {
            &sample.syntax
        } else {
            expected_syntax
        };
        assert_eq!(compared["syntax"], *expected, "{context}");
        assert_eq!(compared["shape"], compared["expected_shape"], "{context}");
        let difference = compared["max_difference"].as_i64().expect("a difference");
        let tolerance = if sample.syntax == JPEG_BASELINE {
            LOSSY_TOLERANCE
        } else {
            0
        };
        assert!(difference <= tolerance, "pixels differ: {context}");
        assert_eq!(compared["differing"], serde_json::json!([]), "{context}");
    }
}

/// Returns the value of meta element (0002,`element`) of a Part 10 file,
/// without padding.
fn meta_text(file: &[u8], element: u16) -> Option<String> {
    let meta_end = file.len() - data_set_of(file).len();
    let mut offset = 132;
    while offset + 8 <= meta_end {
        let tag_element = u16::from_le_bytes([file[offset + 2], file[offset + 3]]);
        let vr = &file[offset + 4..offset + 6];
        let long = matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT" | b"UC" | b"UR");
        let (length, start) = if long {
            let bytes = file[offset + 8..offset + 12]
                .try_into()
                .expect("four bytes");
            (u32::from_le_bytes(bytes) as usize, offset + 12)
        } else {
            let bytes = file[offset + 6..offset + 8].try_into().expect("two bytes");
            (u16::from_le_bytes(bytes) as usize, offset + 8)
        };
        if tag_element == element {
            let value = String::from_utf8_lossy(&file[start..start + length]);
            return Some(value.trim_end_matches(['\0', ' ']).to_string());
        }
        offset = start + length;
    }
    None
}

fn start_script(script: &str, args: &[&str]) -> Child {
    Command::new("python3")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("interop")
                .join(script),
        )
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{script} starts: {e}"))
}

fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads /metrics with curl and returns each sample line's value by its
/// name and labels as printed.
fn metrics(node_id: u16) -> BTreeMap<String, f64> {
    let url = format!("http://127.0.0.1:{}/metrics", BASE_PORT + 80 + node_id);
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", &url])
        .output()
        .expect("curl runs");
    assert!(output.status.success(), "{}", output_text(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn metric(all: &BTreeMap<String, f64>, name: &str) -> f64 {
    all.get(name).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimse_conversion_limits_and_commitment() {
    let explicit_only = format!("--dimse-peer=LESCP@127.0.0.1:{EXPLICIT_ONLY_PORT}");
    let storescp = format!("--dimse-peer=STORESCP@127.0.0.1:{STORESCP_PORT}");
    let committer = format!("--dimse-peer=COMMITSCU@127.0.0.1:{COMMIT_LISTEN_PORT}");
    let cluster = TestCluster::start(3, BASE_PORT, &[&explicit_only, &storescp, &committer]);
    let (node1, node2) = (cluster.node(1), cluster.node(2));
    let (host1, port1) = host_port(&node1.dimse_addr);
    let (host2, port2) = host_port(&node2.dimse_addr);
    let dir = cluster.dir.path().to_path_buf();
    let before = metrics(2);

    eprintln!("phase: store samples in six transfer syntaxes through node 1");
    let (study, samples) = prepare_samples(&dir);
    let mut args = vec![host1.as_str(), port1.as_str(), node1.ae_title.as_str()];
    args.extend(samples.iter().map(|s| s.path.as_str()));
    let stored = interop("store.py", &args);
    for entry in stored.as_array().expect("list") {
        assert_eq!(entry["status"], 0, "{entry}");
    }
    let after_store = metrics(1);
    let syntaxes: Vec<&str> = samples.iter().map(|s| s.syntax.as_str()).collect();
    for expected in [EXPLICIT_LE, EXPLICIT_BE, DEFLATED, JPEG_BASELINE, JPEG_LS] {
        assert!(
            syntaxes.contains(&expected),
            "{expected} among {syntaxes:?}"
        );
    }
    let convertible = samples.len() - 1;

    eprintln!("phase: a resend re-encoded in implicit VR LE counts as already stored");
    let explicit_sample = samples
        .iter()
        .find(|s| s.syntax == EXPLICIT_LE)
        .expect("explicit VR LE sample");
    let resend = dcmtk("storescu")
        .args(["-xi", "-aec", &node1.ae_title, &host1, &port1])
        .arg(&explicit_sample.path)
        .output()
        .expect("storescu runs");
    let resend_text = output_text(&resend);
    assert!(resend.status.success(), "{resend_text}");
    assert!(!resend_text.contains("0x0111"), "{resend_text}");
    assert!(!resend_text.contains("Error"), "{resend_text}");
    let stored_once = retrieve_instance(&node1.grpc_addr, &explicit_sample.uid)
        .await
        .expect("stored instance");
    assert_eq!(
        meta_text(&stored_once, 0x0010).as_deref(),
        Some(EXPLICIT_LE),
        "the first copy is kept"
    );

    eprintln!("phase: C-GET through node 2 into each native syntax");
    for target in [EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE, DEFLATED] {
        let (result, received_dir) = get_in(&node2, &study, target, &dir);
        assert_eq!(result["completed"], convertible, "{target}: {result}");
        assert_eq!(result["failed"], 1, "JPEG-LS cannot be decoded: {result}");
        assert_eq!(result["status"], 0xB000, "{target}: {result}");
        let jpeg_ls = samples
            .iter()
            .find(|s| s.syntax == JPEG_LS)
            .expect("JPEG-LS");
        assert_eq!(
            result["failed_uids"],
            serde_json::json!([jpeg_ls.uid]),
            "{target}: {result}"
        );
        check_received(&samples, &received_dir, target);
    }

    eprintln!("phase: C-MOVE with DCMTK to a destination accepting explicit VR LE only");
    let received_dir = dir.join("explicit-only");
    std::fs::create_dir_all(&received_dir).expect("receive dir");
    let received_text = received_dir.display().to_string();
    let port_text = EXPLICIT_ONLY_PORT.to_string();
    let mut scp = start_script(
        "syntax_scp.py",
        &[&port_text, "LESCP", &received_text, EXPLICIT_LE],
    );
    wait_for_port(EXPLICIT_ONLY_PORT);
    let movescu = dcmtk("movescu")
        .args(["-S", "-aet", "MOVESCU", "-aem", "LESCP", "-aec"])
        .arg(&node2.ae_title)
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
        .arg(format!("StudyInstanceUID={study}"))
        .args([&host2, &port2])
        .output()
        .expect("movescu runs");
    let _ = scp.kill();
    let _ = scp.wait();
    let move_text = output_text(&movescu);
    assert_eq!(
        read_tree(&received_dir).len(),
        convertible,
        "every decodable sample arrives: {move_text}"
    );
    check_received(&samples, &received_dir, EXPLICIT_LE);

    eprintln!("phase: the stored blobs keep their syntaxes and the calling AE title");
    let mut stored_data_set_bytes = 0;
    for sample in &samples {
        let stored = retrieve_instance(&node2.grpc_addr, &sample.uid)
            .await
            .expect("stored instance");
        stored_data_set_bytes += data_set_of(&stored).len();
        let syntax = meta_text(&stored, 0x0010);
        assert_eq!(
            syntax.as_deref(),
            Some(sample.syntax.as_str()),
            "{}",
            sample.path
        );
        let source = meta_text(&stored, 0x0016);
        assert_eq!(source.as_deref(), Some("PYNETDICOM"), "{}", sample.path);
    }

    eprintln!("phase: C-MOVE of 150 SOP classes, more than one association carries");
    let classes_dir = dir.join("classes");
    std::fs::create_dir_all(&classes_dir).expect("classes dir");
    let classes = interop(
        "syntaxes.py",
        &["classes", &classes_dir.display().to_string(), "150"],
    );
    let class_study = classes["study"].as_str().expect("study").to_string();
    let files: Vec<(String, Vec<u8>)> = classes["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| {
            let path = p.as_str().expect("path").to_string();
            let bytes = std::fs::read(&path).expect("generated file");
            (path, bytes)
        })
        .collect();
    let ingested = ingest(&node1.grpc_addr, &files).await;
    assert_eq!(ingested.len(), 150);
    let receiver = StoreScp::start(STORESCP_PORT, "STORESCP");
    let many = interop(
        "move.py",
        &[
            &host2,
            &port2,
            &node2.ae_title,
            "--level",
            "STUDY",
            "--key",
            &format!("StudyInstanceUID={class_study}"),
            "--destination",
            "STORESCP",
        ],
    );
    assert_eq!(many["status"], 0, "{many}");
    assert_eq!(many["completed"], 150, "{many}");
    assert_eq!(many["failed"], 0, "{many}");
    assert_eq!(receiver.files().len(), 150, "{many}");
    drop(receiver);

    eprintln!("phase: tessera send of the 150 SOP classes");
    let receiver = StoreScp::start(STORESCP_PORT, "STORESCP");
    let send = cluster.run(&[
        "send",
        "--study",
        &class_study,
        "--to",
        &format!("STORESCP@127.0.0.1:{STORESCP_PORT}"),
    ]);
    let send_text = output_text(&send);
    assert!(send.status.success(), "{send_text}");
    assert!(send_text.contains("sent 150 of 150"), "{send_text}");
    assert_eq!(receiver.files().len(), 150, "{send_text}");
    drop(receiver);

    eprintln!("phase: DIMSE metrics of node 2 count the operations above");
    let after = metrics(2);
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let get_completed = (4 * convertible) as f64;
    let move_completed = (convertible + 150) as f64;
    assert_eq!(
        delta(r#"tessera_dimse_sub_operations_total{outcome="completed",service="C-GET"}"#),
        get_completed
    );
    assert_eq!(
        delta(r#"tessera_dimse_sub_operations_total{outcome="failed",service="C-GET"}"#),
        4.0
    );
    assert_eq!(
        delta(r#"tessera_dimse_sub_operations_total{outcome="completed",service="C-MOVE"}"#),
        move_completed
    );
    assert_eq!(
        delta(r#"tessera_dimse_operations_total{service="C-GET",status="warning"}"#),
        4.0
    );
    assert_eq!(
        delta(r#"tessera_dimse_operations_total{service="C-MOVE",status="success"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"tessera_dimse_operations_total{service="C-MOVE",status="warning"}"#),
        1.0
    );
    assert_eq!(delta("tessera_dimse_associations_accepted_total"), 6.0);
    assert_eq!(metric(&after, "tessera_dimse_open_associations"), 0.0);
    let store_bytes = metric(&after_store, "tessera_dimse_store_received_bytes_total");
    assert_eq!(store_bytes, stored_data_set_bytes as f64);
    let stores = r#"tessera_dimse_operations_total{service="C-STORE",status="success"}"#;
    assert_eq!(metric(&after_store, stores), samples.len() as f64);
    assert_eq!(
        metric(&metrics(1), stores),
        (samples.len() + 1) as f64,
        "the resend counts as a success"
    );

    eprintln!("phase: 16 silent connections from one address use up its limit");
    let silent: Vec<std::net::TcpStream> = (0..16)
        .map(|_| std::net::TcpStream::connect(&node2.dimse_addr).expect("connects"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut extra = std::net::TcpStream::connect(&node2.dimse_addr).expect("connects");
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut byte = [0u8; 1];
    let read = std::io::Read::read(&mut extra, &mut byte);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "the 17th connection is closed: {read:?}"
    );
    let echo = dcmtk("echoscu")
        .args(["-aec", &node2.ae_title, &host2, &port2])
        .output()
        .expect("echoscu runs");
    assert!(!echo.status.success(), "{}", output_text(&echo));
    let other_node = dcmtk("echoscu")
        .args(["-aec", &node1.ae_title, &host1, &port1])
        .output()
        .expect("echoscu runs");
    assert!(other_node.status.success(), "{}", output_text(&other_node));
    drop(silent);
    let freed = eventually(Duration::from_secs(10), || async {
        dcmtk("echoscu")
            .args(["-aec", &node2.ae_title, &host2, &port2])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
    .await;
    assert!(freed, "the address gets connections again once they close");
    let limited = metrics(2);
    assert!(
        metric(
            &limited,
            r#"tessera_dimse_associations_rejected_total{reason="address_limit"}"#
        ) >= 2.0
    );

    eprintln!("phase: storage commitment on node 1 while nodes 2 and 3 are down");
    let uids: Vec<String> = samples.iter().take(2).map(|s| s.uid.clone()).collect();
    let references: Vec<String> = samples
        .iter()
        .take(2)
        .map(|s| {
            let class = if s.path.contains("MR_") {
                MR
            } else {
                SECONDARY_CAPTURE
            };
            format!("{class}:{}", s.uid)
        })
        .collect();
    cluster.kill(2);
    cluster.kill(3);
    let mut commit_args = vec![
        host1.clone(),
        port1.clone(),
        node1.ae_title.clone(),
        "--wait".to_string(),
        "120".to_string(),
    ];
    commit_args.extend(references.iter().cloned());
    let commit = std::thread::spawn(move || {
        let args: Vec<&str> = commit_args.iter().map(String::as_str).collect();
        interop("commit.py", &args)
    });
    // The first check fails after the 10 s read barrier deadline, and the
    // retry a second later fails too while nodes 2 and 3 stay down.
    tokio::time::sleep(Duration::from_secs(25)).await;
    cluster.restart(2);
    cluster.restart(3);
    let commitment = commit.join().expect("commit.py thread");
    assert_eq!(commitment["action_status"], 0, "{commitment}");
    let reports = commitment["reports"].as_array().expect("reports");
    assert_eq!(
        reports.len(),
        1,
        "one N-EVENT-REPORT after quorum returns: {commitment}"
    );
    let report = &reports[0];
    assert_eq!(report["event_type"], 1, "{commitment}");
    assert_eq!(report["transaction"], commitment["transaction"]);
    let mut committed: Vec<String> = report["committed"]
        .as_array()
        .expect("committed")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    committed.sort();
    let mut expected = uids.clone();
    expected.sort();
    assert_eq!(committed, expected, "{commitment}");
    let log_path = cluster.cluster_dir().join("node-1").join("node.log");
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert!(
        log.contains("storage commitment not checked, retrying in the background"),
        "node 1 logs the failed check"
    );
    assert!(
        log.contains("storage commitment retry failed"),
        "node 1 logs each failed retry"
    );
}
