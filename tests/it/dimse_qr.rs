//! C-FIND, C-MOVE, C-GET and `tessera send` across a three-node cluster:
//! instances stored through node 1 are found and retrieved through nodes 2
//! and 3, names in several character sets match and come back readable,
//! and killing node 3 leaves the other nodes serving.

use serde_json::Value;
use tessera_proto::v1::QueryLevel;

use crate::dimse_tools::*;
use crate::harness::*;

const STORESCP_PORT: u16 = 8690;
const FAILING_SCP_PORT: u16 = 8691;

/// pydicom's character set samples; chrFrenMulti repeats chrFren's SOP
/// Instance UID with other bytes, so it is stored separately.
const CHARSET_FILES: [&str; 8] = [
    "chrFren.dcm",
    "chrGerm.dcm",
    "chrH31.dcm",
    "chrI2.dcm",
    "chrX1.dcm",
    "chrX2.dcm",
    "chrKoreanMulti.dcm",
    "chrRuss.dcm",
];

fn find(node: &NodeInfo, args: &[&str]) -> Value {
    let (host, port) = host_port(&node.dimse_addr);
    let mut all = vec![host.as_str(), port.as_str(), node.ae_title.as_str()];
    all.extend_from_slice(args);
    interop("find.py", &all)
}

fn matches(result: &Value) -> Vec<Value> {
    result["matches"].as_array().cloned().unwrap_or_default()
}

fn values(result: &Value, keyword: &str) -> Vec<String> {
    let mut found: Vec<String> = matches(result)
        .iter()
        .map(|m| m[keyword].as_str().unwrap_or_default().to_string())
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimse_query_retrieve_across_nodes() {
    let storescp = format!("--dimse-peer=STORESCP@127.0.0.1:{STORESCP_PORT}");
    let failing = format!("--dimse-peer=FAILSCP@127.0.0.1:{FAILING_SCP_PORT}");
    let cluster = TestCluster::start(3, 8600, &[&storescp, &failing]);
    let (node1, node2, node3) = (cluster.node(1), cluster.node(2), cluster.node(3));

    eprintln!("phase: store charset samples and a generated patient through node 1");
    let charset_dir = pydicom_data("charset_files");
    let mut paths: Vec<String> = CHARSET_FILES
        .iter()
        .map(|name| charset_dir.join(name).display().to_string())
        .collect();
    let generated = generated(cluster.dir.path(), 86, 1, 3);
    paths.extend(generated.iter().map(|(path, _)| path.clone()));
    let (host, port) = host_port(&node1.dimse_addr);
    let mut args = vec![host.as_str(), port.as_str(), node1.ae_title.as_str()];
    args.extend(paths.iter().map(String::as_str));
    let stored = interop("store.py", &args);
    for entry in stored.as_array().expect("list") {
        assert_eq!(entry["status"], 0, "{entry}");
    }
    let studies = query(
        &node1.grpc_addr,
        QueryLevel::Study,
        &[("PatientID", "TS086000")],
    )
    .await;
    assert_eq!(studies.records.len(), 2, "generated studies");
    let study_uid = studies.records[0].attributes["StudyInstanceUID"].clone();
    let other_study = studies.records[1].attributes["StudyInstanceUID"].clone();
    let study_date = studies.records[0].attributes["StudyDate"].clone();

    eprintln!("phase: C-FIND through node 2 in several character sets");
    let latin = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--charset",
            "ISO_IR 100",
            "--key",
            "PatientName=Buc^Jérôme",
            "--key",
            "StudyInstanceUID=",
        ],
    );
    assert_eq!(latin["status"], 0, "{latin}");
    assert_eq!(values(&latin, "PatientName"), vec!["Buc^Jérôme"]);
    let german = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--charset",
            "ISO_IR 100",
            "--key",
            "PatientName=äneas*",
        ],
    );
    assert_eq!(
        values(&german, "PatientName"),
        vec!["Äneas^Rüdiger"],
        "{german}"
    );
    let utf8 = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--charset",
            "ISO_IR 192",
            "--key",
            "PatientName=*王^小東*",
        ],
    );
    assert_eq!(
        values(&utf8, "PatientName"),
        vec!["Wang^XiaoDong=王^小東"],
        "{utf8}"
    );
    let gb = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--charset",
            "GB18030",
            "--key",
            "PatientName=*王^小东*",
        ],
    );
    assert_eq!(
        values(&gb, "PatientName"),
        vec!["Wang^XiaoDong=王^小东"],
        "{gb}"
    );
    assert_eq!(values(&gb, "SpecificCharacterSet"), vec!["GB18030"], "{gb}");
    let japanese = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--charset",
            "\\ISO 2022 IR 87",
            "--key",
            "PatientName=Yamada^Tarou=山田^太郎=やまだ^たろう",
        ],
    );
    assert_eq!(
        values(&japanese, "PatientName"),
        vec!["Yamada^Tarou=山田^太郎=やまだ^たろう"],
        "{japanese}"
    );
    let korean = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--charset",
            "\\ISO 2022 IR 149",
            "--key",
            "PatientName=Hong^Gildong=洪^吉洞=홍^길동",
        ],
    );
    assert_eq!(
        values(&korean, "PatientName"),
        vec!["Hong^Gildong=洪^吉洞=홍^길동"],
        "{korean}"
    );
    let ascii_request = find(
        &node3,
        &["--level", "STUDY", "--key", "PatientName=yamada*"],
    );
    assert_eq!(
        values(&ascii_request, "PatientName"),
        vec!["Yamada^Tarou=山田^太郎=やまだ^たろう"],
        "{ascii_request}"
    );
    assert_eq!(
        values(&ascii_request, "SpecificCharacterSet"),
        vec!["ISO_IR 192"]
    );

    eprintln!("phase: C-FIND matching rules: ranges, UID lists, empty and unsupported keys");
    let range = format!("StudyDate={study_date}-{study_date}");
    let dated = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--key",
            &range,
            "--key",
            "PatientID=TS086000",
            "--key",
            "StudyInstanceUID=",
        ],
    );
    assert!(
        values(&dated, "StudyInstanceUID").contains(&study_uid),
        "{dated}"
    );
    let nothing = find(
        &node2,
        &["--level", "STUDY", "--key", "StudyDate=19000101-19000102"],
    );
    assert_eq!(matches(&nothing).len(), 0, "{nothing}");
    let list = format!("StudyInstanceUID={study_uid}\\{other_study}");
    let listed = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--key",
            &list,
            "--key",
            "AccessionNumber=",
            "--key",
            "InstitutionName=",
            "--key",
            "StudyDescription=",
        ],
    );
    assert_eq!(matches(&listed).len(), 2, "{listed}");
    for found in matches(&listed) {
        assert_eq!(
            found["InstitutionName"], "",
            "unsupported key must come back empty: {found}"
        );
        assert_eq!(found["StudyDescription"], "GENERATED CT CHEST", "{found}");
        assert!(
            !found["AccessionNumber"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{found}"
        );
    }
    let series_key = format!("StudyInstanceUID={study_uid}");
    let series = find(
        &node3,
        &[
            "--level",
            "SERIES",
            "--key",
            &series_key,
            "--key",
            "SeriesInstanceUID=",
            "--key",
            "Modality=",
        ],
    );
    assert_eq!(matches(&series).len(), 3, "{series}");
    assert_eq!(values(&series, "Modality"), vec!["CT", "CT", "CT"]);
    let images = find(
        &node3,
        &[
            "--level",
            "IMAGE",
            "--key",
            &series_key,
            "--key",
            "SOPInstanceUID=",
        ],
    );
    assert_eq!(matches(&images).len(), 9, "{images}");
    let patients = find(
        &node2,
        &[
            "--model",
            "patient",
            "--level",
            "PATIENT",
            "--key",
            "PatientID=TS086000",
            "--key",
            "PatientName=",
        ],
    );
    assert_eq!(matches(&patients).len(), 1, "{patients}");
    let wrong_level = find(
        &node2,
        &["--level", "PATIENT", "--key", "PatientID=TS086000"],
    );
    assert_eq!(wrong_level["status"], 0xA900, "{wrong_level}");

    let (host2, port2) = host_port(&node2.dimse_addr);
    let findscu = dcmtk("findscu")
        .args([
            "-S",
            "-aec",
            &node2.ae_title,
            "-k",
            "QueryRetrieveLevel=STUDY",
        ])
        .args([
            "-k",
            "PatientID=TS086000",
            "-k",
            "StudyInstanceUID",
            &host2,
            &port2,
        ])
        .output()
        .expect("findscu runs");
    assert!(findscu.status.success(), "{}", output_text(&findscu));
    assert!(
        output_text(&findscu).contains(&study_uid),
        "{}",
        output_text(&findscu)
    );

    eprintln!("phase: C-MOVE through node 2 to DCMTK's storescp");
    let receiver = StoreScp::start(STORESCP_PORT, "STORESCP");
    let movescu = dcmtk("movescu")
        .args([
            "-S",
            "-aet",
            "MOVESCU",
            "-aem",
            "STORESCP",
            "-aec",
            &node2.ae_title,
        ])
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
        .arg(format!("StudyInstanceUID={study_uid}"))
        .args([&host2, &port2])
        .output()
        .expect("movescu runs");
    assert!(movescu.status.success(), "{}", output_text(&movescu));
    let received = receiver.files();
    assert_eq!(received.len(), 9, "{}", output_text(&movescu));
    for (path, bytes) in &received {
        let original = generated
            .iter()
            .find(|(_, original)| data_set_of(original) == data_set_of(bytes));
        assert!(
            original.is_some(),
            "{path} differs from every generated instance"
        );
    }

    eprintln!("phase: C-MOVE to an unknown destination and to a failing one");
    let unknown = interop(
        "move.py",
        &[
            &host2,
            &port2,
            &node2.ae_title,
            "--level",
            "STUDY",
            "--key",
            &series_key,
            "--destination",
            "NOWHERE",
        ],
    );
    assert_eq!(unknown["status"], 0xA801, "{unknown}");
    let images_of_study: Vec<String> = values(&images, "SOPInstanceUID");
    let failing_uid = images_of_study[0].clone();
    let suffix = &failing_uid[failing_uid.len() - 12..];
    let mut failing_scp = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/store_scp.py"))
        .args([&FAILING_SCP_PORT.to_string(), "FAILSCP", suffix])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("store_scp.py starts");
    wait_for_port(FAILING_SCP_PORT);
    let partial = interop(
        "move.py",
        &[
            &host2,
            &port2,
            &node2.ae_title,
            "--level",
            "STUDY",
            "--key",
            &series_key,
            "--destination",
            "FAILSCP",
        ],
    );
    let _ = failing_scp.kill();
    let _ = failing_scp.wait();
    assert_eq!(partial["status"], 0xB000, "{partial}");
    assert_eq!(partial["completed"], 8, "{partial}");
    assert_eq!(partial["failed"], 1, "{partial}");
    assert_eq!(
        partial["failed_uids"],
        serde_json::json!([failing_uid]),
        "{partial}"
    );
    // One pending response once the sub-association's connection is open,
    // then one after each of the 9 sub-operations but the last.
    assert_eq!(partial["pending"], 9, "{partial}");

    eprintln!("phase: C-GET through node 3, with DCMTK and pynetdicom");
    let (host3, port3) = host_port(&node3.dimse_addr);
    let series_uid = values(&series, "SeriesInstanceUID")[0].clone();
    let get_dir = tempfile::tempdir().expect("temp dir");
    let getscu = dcmtk("getscu")
        .args([
            "-S",
            "-aec",
            &node3.ae_title,
            "-k",
            "QueryRetrieveLevel=SERIES",
        ])
        .arg("-k")
        .arg(format!("StudyInstanceUID={study_uid}"))
        .arg("-k")
        .arg(format!("SeriesInstanceUID={series_uid}"))
        .arg("-od")
        .arg(get_dir.path())
        .args([&host3, &port3])
        .output()
        .expect("getscu runs");
    assert!(getscu.status.success(), "{}", output_text(&getscu));
    assert_eq!(
        read_tree(get_dir.path()).len(),
        3,
        "{}",
        output_text(&getscu)
    );
    let ct = "1.2.840.10008.5.1.4.1.1.2:1.2.840.10008.1.2.1";
    let series_key_get = format!("SeriesInstanceUID={series_uid}");
    let got = interop(
        "move.py",
        &[
            &host3,
            &port3,
            &node3.ae_title,
            "--level",
            "SERIES",
            "--key",
            &series_key,
            "--key",
            &series_key_get,
            "--get",
            ct,
        ],
    );
    assert_eq!(got["status"], 0, "{got}");
    assert_eq!(got["completed"], 3, "{got}");
    assert_eq!(got["received"].as_array().map(Vec::len), Some(3), "{got}");

    let implicit_only = "1.2.840.10008.5.1.4.1.1.2:1.2.840.10008.1.2";
    let converted = interop(
        "move.py",
        &[
            &host3,
            &port3,
            &node3.ae_title,
            "--level",
            "SERIES",
            "--key",
            &series_key,
            "--key",
            &series_key_get,
            "--get",
            implicit_only,
        ],
    );
    assert_eq!(
        converted["status"], 0,
        "explicit VR instances sent as implicit VR: {converted}"
    );
    assert_eq!(
        converted["received"].as_array().map(Vec::len),
        Some(3),
        "{converted}"
    );

    eprintln!("phase: tessera send pushes a study to storescp");
    let before = receiver.files().len();
    let send = cluster.run(&[
        "send",
        "--study",
        &other_study,
        "--to",
        &format!("STORESCP@127.0.0.1:{STORESCP_PORT}"),
    ]);
    assert!(send.status.success(), "{}", output_text(&send));
    assert_eq!(receiver.files().len(), before + 9, "{}", output_text(&send));

    eprintln!("phase: kill node 3; nodes 1 and 2 keep serving");
    cluster.kill(3);
    let (host1, port1) = host_port(&node1.dimse_addr);
    let still = find(&node1, &["--level", "STUDY", "--key", "PatientID=TS086000"]);
    assert_eq!(matches(&still).len(), 2, "{still}");
    let extra = interop(
        "store.py",
        &[
            &host2,
            &port2,
            &node2.ae_title,
            &charset_dir.join("chrFrenMulti.dcm").display().to_string(),
        ],
    );
    assert_eq!(
        extra[0]["status"], 0x0111,
        "chrFrenMulti reuses chrFren's UID with other bytes: {extra}"
    );
    let echo = dcmtk("echoscu")
        .args(["-aec", &node1.ae_title, &host1, &port1])
        .output()
        .expect("echoscu runs");
    assert!(echo.status.success(), "{}", output_text(&echo));
    let dead = dcmtk("echoscu")
        .args(["-aec", &node3.ae_title, &host3, &port3])
        .output()
        .expect("echoscu runs");
    assert!(!dead.status.success(), "node 3 was killed");
}

fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
