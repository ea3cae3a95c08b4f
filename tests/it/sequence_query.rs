//! Sequence matching across a three-node cluster. Instances with Request
//! Attributes, Procedure Code, Other Patient IDs, Referenced Study and
//! Concept Name Code sequences are stored through node 1. Node 2 finds them
//! by item keys for DCMTK's findscu and pynetdicom, and node 3 for QIDO-RS.
//! Only the matching items come back.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::dimse_tools::*;
use crate::harness::*;

/// Ports 10211-10213, 10251-10253 and 10291-10293.
const BASE: u16 = 10210;

const REQUEST_ATTRIBUTES: &str = "(0040,0275)";

/// The instances that tests/interop/sequences.py writes.
struct Written {
    ct_series: String,
    mr_series: String,
    sr_instance: String,
}

fn write_instances(dir: &Path) -> (Written, Vec<String>) {
    let listed = interop("sequences.py", &[dir.to_str().expect("UTF-8 path")]);
    let listed = listed.as_array().expect("list of files").clone();
    let field = |index: usize, key: &str| listed[index][key].as_str().expect(key).to_string();
    let written = Written {
        ct_series: field(0, "series"),
        mr_series: field(1, "series"),
        sr_instance: field(2, "sop"),
    };
    let paths = (0..listed.len()).map(|i| field(i, "path")).collect();
    (written, paths)
}

fn find(node: &NodeInfo, args: &[&str]) -> Value {
    let (host, port) = host_port(&node.dimse_addr);
    let mut all = vec![host.as_str(), port.as_str(), node.ae_title.as_str()];
    all.extend_from_slice(args);
    interop("find.py", &all)
}

fn matches(result: &Value) -> Vec<Value> {
    result["matches"].as_array().cloned().unwrap_or_default()
}

/// Runs findscu with `keys` at the series level, and returns the number of
/// responses and the dcmdump output of all of them.
fn findscu_series(node: &NodeInfo, out: &Path, keys: &[&str]) -> (usize, String) {
    std::fs::create_dir_all(out).expect("output folder");
    let (host, port) = host_port(&node.dimse_addr);
    let mut command = dcmtk("findscu");
    command.args(["-S", "-X", "-od"]).arg(out);
    command.args(["-aec", &node.ae_title, "-k", "QueryRetrieveLevel=SERIES"]);
    command.args(["-k", "SeriesInstanceUID"]);
    for key in keys {
        command.args(["-k", key]);
    }
    let output = command
        .arg(&host)
        .arg(&port)
        .output()
        .expect("findscu runs");
    assert!(output.status.success(), "{}", output_text(&output));

    let mut responses: Vec<_> = std::fs::read_dir(out)
        .expect("output folder")
        .map(|entry| entry.expect("folder entry").path())
        .collect();
    responses.sort();
    let mut dumps = String::new();
    for response in &responses {
        let dump = dcmtk("dcmdump")
            .arg(response)
            .output()
            .expect("dcmdump runs");
        dumps.push_str(&output_text(&dump));
    }
    (responses.len(), dumps)
}

fn qido(node: u16, path_and_query: &str) -> Value {
    let url = format!(
        "http://127.0.0.1:{}/dicom-web/{path_and_query}",
        BASE + 80 + node
    );
    let output = Command::new("curl")
        .args(["-sS", "-f", "-H", "Accept: application/dicom+json"])
        .arg(&url)
        .output()
        .expect("curl runs; run tests/setup.sh");
    assert!(output.status.success(), "{url}: {}", output_text(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn qido_status(node: u16, path_and_query: &str) -> String {
    let url = format!(
        "http://127.0.0.1:{}/dicom-web/{path_and_query}",
        BASE + 80 + node
    );
    let output = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(&url)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Returns the first value of attribute `tag` of a DICOM JSON object.
fn json_text<'a>(object: &'a Value, tag: &str) -> &'a str {
    object[tag]["Value"][0].as_str().unwrap_or_default()
}

fn json_items<'a>(object: &'a Value, tag: &str) -> Vec<&'a Value> {
    let items = object[tag]["Value"].as_array();
    items
        .map(|items| items.iter().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_keys_match_items_across_nodes() {
    let cluster = TestCluster::start(3, BASE, &[]);
    let (node1, node2) = (cluster.node(1), cluster.node(2));

    eprintln!("phase: store instances with sequences through node 1");
    let (written, paths) = write_instances(cluster.dir.path());
    let (host, port) = host_port(&node1.dimse_addr);
    let mut args = vec![host.as_str(), port.as_str(), node1.ae_title.as_str()];
    args.extend(paths.iter().map(String::as_str));
    let stored = interop("store.py", &args);
    for entry in stored.as_array().expect("list") {
        assert_eq!(entry["status"], 0, "{entry}");
    }

    eprintln!("phase: findscu through node 2 with item keys");
    let out = cluster.dir.path().join("findscu");
    let rp2 = format!("{REQUEST_ATTRIBUTES}[0].(0040,1001)=RP2");
    let sps = format!("{REQUEST_ATTRIBUTES}[0].(0040,0009)");
    let (responses, log) = findscu_series(&node2, &out.join("rp2"), &[&rp2, &sps]);
    assert_eq!(responses, 1, "{log}");
    assert!(log.contains(&written.ct_series), "{log}");
    assert!(log.contains("[RP2]"), "{log}");
    assert!(log.contains("[SPS2]"), "{log}");
    assert!(
        !log.contains("[RP1]"),
        "only the matching item returns: {log}"
    );
    assert!(
        !log.contains("[SPS1]"),
        "only the matching item returns: {log}"
    );

    let rp1 = format!("{REQUEST_ATTRIBUTES}[0].(0040,1001)=RP1");
    let sps2 = format!("{REQUEST_ATTRIBUTES}[0].(0040,0009)=SPS2");
    let (responses, log) = findscu_series(&node2, &out.join("across"), &[&rp1, &sps2]);
    assert_eq!(
        responses, 0,
        "keys in different items must not match: {log}"
    );

    let wildcard = format!("{REQUEST_ATTRIBUTES}[0].(0040,1001)=RP*");
    let (responses, log) = findscu_series(&node2, &out.join("wildcard"), &[&wildcard]);
    assert_eq!(responses, 2, "{log}");

    eprintln!("phase: pynetdicom through node 2");
    let series = find(
        &node2,
        &[
            "--level",
            "SERIES",
            "--key",
            "SeriesInstanceUID=",
            "--key",
            "RequestAttributesSequence=",
        ],
    );
    assert_eq!(series["status"], 0, "{series}");
    assert_eq!(
        matches(&series).len(),
        3,
        "universal keeps the SR: {series}"
    );
    let ct = matches(&series)
        .into_iter()
        .find(|m| m["SeriesInstanceUID"] == written.ct_series.as_str())
        .expect("CT series");
    let items = ct["RequestAttributesSequence"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{ct}");
    assert_eq!(items[1]["RequestedProcedureID"], "RP2", "{ct}");
    assert_eq!(items[1]["ScheduledProcedureStepID"], "SPS2", "{ct}");

    let latin = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--charset",
            "ISO_IR 100",
            "--key",
            "StudyInstanceUID=",
            "--key",
            "ProcedureCodeSequence.CodeMeaning=Schädel*",
            "--key",
            "ProcedureCodeSequence.CodeValue=",
        ],
    );
    assert_eq!(matches(&latin).len(), 1, "{latin}");
    let code = &matches(&latin)[0]["ProcedureCodeSequence"][0];
    assert_eq!(code["CodeMeaning"], "Schädel CT", "{latin}");
    assert_eq!(code["CodeValue"], "CTHEAD", "{latin}");

    let default_charset = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--key",
            "ProcedureCodeSequence.CodeValue=CTHEAD",
            "--key",
            "ProcedureCodeSequence.CodeMeaning=",
        ],
    );
    let found = matches(&default_charset);
    assert_eq!(found.len(), 1, "{default_charset}");
    assert_eq!(
        found[0]["SpecificCharacterSet"], "ISO_IR 192",
        "an item value outside ASCII switches the response to UTF-8: {default_charset}"
    );
    assert_eq!(
        found[0]["ProcedureCodeSequence"][0]["CodeMeaning"], "Schädel CT",
        "{default_charset}"
    );

    let utf8 = find(
        &node2,
        &[
            "--level",
            "STUDY",
            "--charset",
            "ISO_IR 192",
            "--key",
            "ProcedureCodeSequence.CodeMeaning=schädel ct",
        ],
    );
    assert_eq!(
        matches(&utf8).len(),
        0,
        "LO matches case-sensitively: {utf8}"
    );

    let patients = find(
        &node2,
        &[
            "--level",
            "PATIENT",
            "--model",
            "patient",
            "--key",
            "PatientID=",
            "--key",
            "OtherPatientIDsSequence.PatientID=X-9",
            "--key",
            "OtherPatientIDsSequence.IssuerOfPatientID=SITE-B",
        ],
    );
    assert_eq!(matches(&patients).len(), 1, "{patients}");
    assert_eq!(matches(&patients)[0]["PatientID"], "SEQ-1", "{patients}");

    let reports = find(
        &node2,
        &[
            "--level",
            "IMAGE",
            "--key",
            "StudyInstanceUID=1.2.826.0.1.3680043.8.498.7.2",
            "--key",
            "SeriesInstanceUID=",
            "--key",
            "SOPInstanceUID=",
            "--key",
            "ConceptNameCodeSequence.CodeValue=18748-4",
            "--key",
            "ConceptNameCodeSequence.CodingSchemeDesignator=LN",
        ],
    );
    assert_eq!(matches(&reports).len(), 1, "{reports}");
    assert_eq!(
        matches(&reports)[0]["SOPInstanceUID"],
        written.sr_instance.as_str(),
        "{reports}"
    );

    eprintln!("phase: QIDO-RS through node 3");
    let found = qido(
        3,
        "series?RequestAttributesSequence.RequestedProcedureID=RP3",
    );
    let found = found.as_array().expect("array");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(json_text(&found[0], "0020000E"), written.mr_series);
    let items = json_items(&found[0], "00400275");
    assert_eq!(items.len(), 1, "{found:?}");
    assert_eq!(json_text(items[0], "00401001"), "RP3");

    let by_tag = qido(3, "studies?00081032.00080100=CTHEAD&includefield=00101002");
    let by_tag = by_tag.as_array().expect("array");
    assert_eq!(by_tag.len(), 1, "{by_tag:?}");
    let code = json_items(&by_tag[0], "00081032");
    assert_eq!(json_text(code[0], "00080104"), "Schädel CT", "{by_tag:?}");
    let other_ids = json_items(&by_tag[0], "00101002");
    assert_eq!(json_text(other_ids[0], "00100021"), "SITE-B", "{by_tag:?}");

    let parent = qido(3, "series?ProcedureCodeSequence.CodeValue=MRKNEE");
    let parent = parent.as_array().expect("array");
    assert_eq!(
        parent.len(),
        2,
        "the MR and SR series of study 2: {parent:?}"
    );
    for series in parent {
        let code = json_items(series, "00081032");
        assert_eq!(json_text(code[0], "00080100"), "MRKNEE", "{series}");
    }

    let across = qido(
        3,
        "series?RequestAttributesSequence.RequestedProcedureID=RP1\
         &RequestAttributesSequence.ScheduledProcedureStepID=SPS2",
    );
    assert_eq!(across, Value::Array(Vec::new()));

    let included = qido(
        3,
        "series?Modality=CT&includefield=RequestAttributesSequence",
    );
    let included = included.as_array().expect("array");
    assert_eq!(
        json_items(&included[0], "00400275").len(),
        2,
        "{included:?}"
    );
    let plain = qido(3, "series?Modality=CT");
    assert!(plain[0].get("00400275").is_none(), "{plain}");

    let instances = qido(
        3,
        "studies/1.2.826.0.1.3680043.8.498.7.2/instances?ConceptNameCodeSequence.CodeValue=18748-4",
    );
    assert_eq!(instances.as_array().map(Vec::len), Some(1), "{instances}");

    let nested = qido_status(
        3,
        "series?RequestAttributesSequence.RequestedProcedureCodeSequence.CodeValue=1",
    );
    assert_eq!(nested, "400");
}
