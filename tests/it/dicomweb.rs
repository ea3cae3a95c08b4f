//! DICOMweb against a 3-node cluster: STOW-RS to one node, QIDO-RS and
//! WADO-RS from the others, with curl replaying the requests a viewer such as
//! OHIF makes, bad input, CORS, and dicomweb-client over pydicom's corpus.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

const CURL_MISSING: &str = "curl is missing; run tests/setup.sh";

/// One HTTP exchange as curl saw it.
struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> String {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.headers
            .lines()
            .filter(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_string())
            .next_back()
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl with `args` and returns status, headers and body.
fn curl(args: &[&str]) -> Reply {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = dir.path().join("body");
    let headers = dir.path().join("headers");
    let output = Command::new("curl")
        .args(["-sS", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&headers)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .expect(CURL_MISSING);
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Reply {
        status: String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("status code"),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn get(url: &str, accept: &str) -> Reply {
    curl(&["-H", &format!("Accept: {accept}"), url])
}

/// POSTs a body from a file with the given Content-Type, chunked.
fn post(url: &str, content_type: &str, body: &[u8]) -> Reply {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), body).expect("write body");
    let data = format!("@{}", file.path().display());
    curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Content-Type: {content_type}"),
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        url,
    ])
}

fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (content_type, data) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// Splits a multipart/related reply into its parts with tessera-web-parse.
async fn parts_of(reply: &Reply) -> Vec<(String, Vec<u8>)> {
    let content_type = reply.header("content-type");
    let media = tessera_web_parse::MediaType::parse(&content_type).expect("content type");
    assert_eq!(media.essence(), "multipart/related", "{content_type}");
    let boundary = media.parameter("boundary").expect("boundary").to_string();
    let parts =
        tessera_web_parse::read_all_parts(bytes::Bytes::from(reply.body.clone()), &boundary)
            .await
            .expect("multipart body parses");
    parts
        .into_iter()
        .map(|(media, data)| (media.map(|m| m.essence()).unwrap_or_default(), data))
        .collect()
}

fn pydicom_file(name: &str) -> (PathBuf, Vec<u8>) {
    let output = Command::new("python3")
        .args([
            "-c",
            "import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "pydicom missing; run tests/setup.sh"
    );
    let path = Path::new(String::from_utf8_lossy(&output.stdout).trim()).join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, bytes)
}

fn web_root(base_port: u16, node_id: u16) -> String {
    format!("http://127.0.0.1:{}/dicom-web", base_port + 80 + node_id)
}

/// Returns the first value of `tag` in a DICOM JSON object.
fn first<'a>(object: &'a Value, tag: &str) -> &'a Value {
    &object[tag]["Value"][0]
}

const BASE: u16 = 8800;
const DICOM: &str = r#"multipart/related; type="application/dicom""#;
const CT: &str = "CT_small.dcm";
const RLE_MR: &str = "MR_small_RLE.dcm";
const JPEG_RGB: &str = "SC_rgb_jpeg_dcmtk.dcm";
const JPEG_MULTIFRAME: &str = "examples_ybr_color.dcm";
const RLE_TWO_FRAMES: &str = "SC_rgb_rle_2frame.dcm";
const JPEG_2000: &str = "JPEG2000.dcm";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dicomweb_serves_stores_queries_and_viewer_requests() {
    println!("phase: start a 3-node cluster");
    let cluster = TestCluster::start(3, BASE, &[]);
    let node_a = web_root(BASE, 1);
    let node_b = web_root(BASE, 2);
    let node_c = web_root(BASE, 3);

    println!("phase: STOW-RS to node 1 with a rejected part");
    let files: Vec<(PathBuf, Vec<u8>)> = [
        CT,
        RLE_MR,
        JPEG_RGB,
        JPEG_MULTIFRAME,
        RLE_TWO_FRAMES,
        JPEG_2000,
    ]
    .iter()
    .map(|name| pydicom_file(name))
    .collect();
    let mut parts: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(_, bytes)| ("application/dicom", bytes.as_slice()))
        .collect();
    parts.push(("application/dicom", b"not a DICOM file"));
    let boundary = "b0undary'(+_,-./:=?";
    let body = multipart(boundary, &parts);
    let reply = post(
        &format!("{node_a}/studies"),
        &format!("{DICOM}; boundary=\"{boundary}\""),
        &body,
    );
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "application/dicom+json");
    let response = reply.json();
    let referenced = response["00081199"]["Value"]
        .as_array()
        .expect("referenced");
    let failed = response["00081198"]["Value"].as_array().expect("failed");
    assert_eq!(referenced.len(), files.len(), "{response}");
    assert_eq!(failed.len(), 1, "{response}");
    assert_eq!(first(&failed[0], "00081197"), &Value::from(0xC000));
    let reason = first(&failed[0], "00000902").as_str().expect("reason text");
    assert!(reason.contains("part 7"), "{reason}");

    let urls: Vec<String> = referenced
        .iter()
        .map(|item| {
            first(item, "00081190")
                .as_str()
                .expect("RetrieveURL")
                .to_string()
        })
        .collect();
    let path_of = |url: &str| url.split("/dicom-web").nth(1).expect("path").to_string();
    let ct_path = path_of(&urls[0]);
    let ct_study = ct_path.split('/').nth(2).expect("study uid").to_string();

    println!("phase: WADO-RS instance from node 2 is byte-identical");
    for ((path, bytes), url) in files.iter().zip(&urls) {
        let reply = get(
            &format!("{node_b}{}", path_of(url)),
            r#"multipart/related; type="application/dicom"; transfer-syntax=*"#,
        );
        assert_eq!(reply.status, 200, "{}: {}", path.display(), reply.text());
        let parts = parts_of(&reply).await;
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0, "application/dicom");
        assert_eq!(sha256(&parts[0].1), sha256(bytes), "{}", path.display());
    }

    println!("phase: WADO-RS study from node 3 streams every instance");
    let reply = get(&format!("{node_c}/studies/{ct_study}"), DICOM);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(parts_of(&reply).await.len(), 1);

    println!("phase: transfer syntax negotiation");
    let stored_syntax = "1.2.840.10008.1.2.1";
    let reply = get(
        &format!("{node_b}{ct_path}"),
        &format!("{DICOM}; transfer-syntax={stored_syntax}"),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let jpeg_path = path_of(&urls[2]);
    let reply = get(
        &format!("{node_b}{jpeg_path}"),
        &format!("{DICOM}; transfer-syntax={stored_syntax}"),
    );
    assert_eq!(reply.status, 406);
    assert!(
        reply.text().contains("1.2.840.10008.1.2.4.50"),
        "{}",
        reply.text()
    );
    let reply = get(&format!("{node_b}{ct_path}"), "application/pdf");
    assert_eq!(reply.status, 406);

    println!("phase: OHIF study list: QIDO studies with includefield, paging and a date range");
    let reply = get(
        &format!("{node_b}/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060&StudyDate=20040101-20041231"),
        "application/dicom+json",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "application/dicom+json");
    let studies = reply.json();
    let studies = studies.as_array().expect("array");
    assert_eq!(
        studies.len(),
        3,
        "CT, MR and NM studies of 2004: {studies:?}"
    );
    for study in studies {
        assert_eq!(study["00100010"]["vr"], "PN");
        assert!(
            study["00100010"]["Value"][0]["Alphabetic"].is_string(),
            "{study}"
        );
        assert!(
            first(study, "00201206").is_u64(),
            "series count is a number: {study}"
        );
        assert!(
            first(study, "00201208").is_u64(),
            "instance count is a number: {study}"
        );
        assert!(first(study, "00081190")
            .as_str()
            .expect("url")
            .contains("/dicom-web/studies/"));
        assert!(
            study.get("00081030").is_some(),
            "includefield StudyDescription: {study}"
        );
    }
    let reply = get(
        &format!("{node_b}/studies?limit=1&offset=1"),
        "application/dicom+json",
    );
    assert_eq!(reply.json().as_array().expect("array").len(), 1);
    let reply = get(
        &format!("{node_b}/studies?limit=1"),
        "application/dicom+json",
    );
    assert!(
        reply.header("warning").contains("additional results"),
        "{}",
        reply.headers
    );
    let reply = get(
        &format!("{node_c}/studies?PatientName=compressedsamples&fuzzymatching=true"),
        "application/dicom+json",
    );
    assert_eq!(
        reply.json().as_array().expect("array").len(),
        3,
        "fuzzy name match"
    );
    let reply = get(
        &format!("{node_c}/studies?00100010=Lestrade*"),
        "application/json",
    );
    assert_eq!(
        reply.json().as_array().expect("array").len(),
        1,
        "match by tag"
    );

    println!("phase: OHIF study view: series, series metadata, frames, thumbnail");
    let reply = get(
        &format!("{node_c}/studies/{ct_study}/series"),
        "application/dicom+json",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let series = reply.json();
    let series_uid = first(&series[0], "0020000E")
        .as_str()
        .expect("series uid")
        .to_string();
    assert_eq!(first(&series[0], "00201209"), &Value::from(1), "{series}");
    let reply = get(
        &format!("{node_c}/studies/{ct_study}/series/{series_uid}/metadata"),
        "application/dicom+json",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let metadata = reply.json();
    let instance = &metadata[0];
    assert_eq!(
        first(instance, "00280010"),
        &Value::from(128),
        "Rows as a number"
    );
    assert!(
        first(instance, "00280030").is_number(),
        "DS PixelSpacing: {}",
        instance["00280030"]
    );
    let bulk = instance["7FE00010"]["BulkDataURI"]
        .as_str()
        .expect("pixel data bulk uri");
    assert!(bulk.ends_with("/bulkdata/7FE00010"), "{bulk}");
    let reply = get(bulk, "multipart/related; type=\"application/octet-stream\"");
    assert_eq!(parts_of(&reply).await[0].1.len(), 128 * 128 * 2);
    let reply = get(
        &format!("{node_c}{ct_path}/frames/1"),
        "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let frames = parts_of(&reply).await;
    assert_eq!(frames[0].0, "application/octet-stream");
    assert_eq!(frames[0].1.len(), 128 * 128 * 2);
    let reply = get(
        &format!("{node_c}{ct_path}/thumbnail?viewport=64,64"),
        "image/jpeg",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "image/jpeg");
    assert_eq!(&reply.body[..3], &[0xFF, 0xD8, 0xFF]);
    let reply = get(
        &format!("{node_c}/studies/{ct_study}/series/{series_uid}/thumbnail"),
        "image/png",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(&reply.body[..8], b"\x89PNG\r\n\x1a\n");
    let reply = get(&format!("{node_c}/studies/{ct_study}/thumbnail"), "*/*");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "image/jpeg");
    let reply = get(
        &format!("{node_c}{ct_path}/rendered?window=40,400,LINEAR"),
        "image/png",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(&reply.body[..8], b"\x89PNG\r\n\x1a\n");

    println!("phase: frames of compressed multi-frame instances");
    let multiframe = path_of(&urls[3]);
    let reply = get(
        &format!("{node_a}{multiframe}/frames/2,30"),
        "multipart/related; type=\"image/jpeg\"",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let frames = parts_of(&reply).await;
    assert_eq!(frames.len(), 2);
    for (media, data) in &frames {
        assert_eq!(media, "image/jpeg");
        assert_eq!(&data[..2], &[0xFF, 0xD8], "each frame starts a JPEG stream");
    }
    let reply = get(
        &format!("{node_a}{multiframe}/frames/31"),
        "multipart/related; type=\"image/jpeg\"",
    );
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert!(reply.text().contains("has 30 frames"), "{}", reply.text());
    let reply = get(
        &format!("{node_a}{multiframe}/frames/1"),
        "multipart/related; type=\"application/octet-stream\"",
    );
    assert_eq!(reply.status, 406, "compressed frames are not decompressed");
    let rle = path_of(&urls[4]);
    let reply = get(
        &format!("{node_a}{rle}/frames/2"),
        "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(parts_of(&reply).await[0].0, "image/dicom-rle");

    println!("phase: rendering native, RLE and JPEG; JPEG 2000 is rejected");
    for url in [&urls[1], &urls[2], &urls[4]] {
        let reply = get(&format!("{node_b}{}/rendered", path_of(url)), "image/png");
        assert_eq!(reply.status, 200, "{url}: {}", reply.text());
        assert_eq!(&reply.body[..8], b"\x89PNG\r\n\x1a\n");
    }
    let reply = get(
        &format!("{node_b}{}/frames/2/rendered", path_of(&urls[3])),
        "image/jpeg",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = get(
        &format!("{node_b}{}/rendered", path_of(&urls[5])),
        "image/png",
    );
    assert_eq!(reply.status, 406);
    assert!(
        reply.text().contains("cannot be rendered"),
        "{}",
        reply.text()
    );
    let reply = get(&format!("{node_b}{ct_path}/rendered"), "image/gif");
    assert_eq!(reply.status, 406);
    let reply = get(
        &format!("{node_b}{ct_path}/rendered?window=40"),
        "image/png",
    );
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("window"), "{}", reply.text());

    println!("phase: QIDO instance level, nested and with study keys");
    let reply = get(
        &format!("{node_a}/instances?PatientName=Lestrade*&includefield=all"),
        "application/dicom+json",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let instances = reply.json();
    let instances = instances.as_array().expect("array");
    assert_eq!(instances.len(), 2, "two Lestrade instances: {instances:?}");
    assert!(instances
        .iter()
        .all(|i| i["00100010"]["Value"][0]["Alphabetic"] == "Lestrade^G"));
    let reply = get(
        &format!("{node_a}/studies/{ct_study}/instances"),
        "application/dicom+json",
    );
    assert_eq!(reply.json().as_array().expect("array").len(), 1);

    println!("phase: bad input is rejected and stores nothing");
    check_bad_input(&node_a, &node_b, &files[0].1).await;

    println!("phase: CORS for a configured viewer origin");
    check_cors(&cluster, &node_b);
}

async fn check_bad_input(node_a: &str, node_b: &str, valid: &[u8]) {
    let count_before = get(&format!("{node_b}/instances"), "application/dicom+json")
        .json()
        .as_array()
        .expect("array")
        .len();

    let cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "form data",
            "multipart/form-data; boundary=x".into(),
            multipart("x", &[("application/dicom", valid)]),
            415,
            "multipart/related",
        ),
        (
            "xml root",
            "multipart/related; type=\"application/dicom+xml\"; boundary=x".into(),
            multipart("x", &[("application/dicom", valid)]),
            415,
            "root type",
        ),
        (
            "no boundary",
            DICOM.into(),
            multipart("x", &[("application/dicom", valid)]),
            400,
            "boundary",
        ),
        (
            "truncated body",
            format!("{DICOM}; boundary=x"),
            {
                let mut body = multipart("x", &[("application/dicom", valid)]);
                body.truncate(body.len() - 10);
                body
            },
            400,
            "malformed multipart",
        ),
        (
            "no parts",
            format!("{DICOM}; boundary=x"),
            b"nothing here".to_vec(),
            400,
            "multipart",
        ),
    ];
    for (name, content_type, body, status, words) in cases {
        let reply = post(&format!("{node_a}/studies"), &content_type, &body);
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        assert!(reply.text().contains(words), "{name}: {}", reply.text());
    }

    let reply = post(
        &format!("{node_a}/studies/1.2.3.4"),
        &format!("{DICOM}; boundary=x"),
        &multipart("x", &[("application/dicom", valid)]),
    );
    assert_eq!(
        reply.status,
        409,
        "instance of another study: {}",
        reply.text()
    );
    assert!(
        reply.text().contains("not to the target study"),
        "{}",
        reply.text()
    );

    let reply = post(
        &format!("{node_a}/studies/..%2F..%2Fetc"),
        &format!("{DICOM}; boundary=x"),
        &multipart("x", &[("application/dicom", valid)]),
    );
    assert_eq!(
        reply.status,
        400,
        "target study not a UID: {}",
        reply.text()
    );
    assert!(
        reply.text().contains("invalid study UID"),
        "{}",
        reply.text()
    );
    assert!(reply.text().contains("../../etc"), "{}", reply.text());

    let reply = post(
        &format!("{node_a}/studies"),
        &format!("{DICOM}; boundary=x"),
        &multipart("x", &[("text/plain", b"hello")]),
    );
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert!(reply.text().contains("text/plain"), "{}", reply.text());

    let not_found = [
        format!("{node_b}/studies/1.2.3.4"),
        format!("{node_b}/studies/1.2.3.4/series/5.6/instances/7.8/metadata"),
    ];
    for url in &not_found {
        let reply = get(url, "*/*");
        assert_eq!(reply.status, 404, "{url}: {}", reply.text());
        assert!(
            reply.text().contains("not in the archive"),
            "{}",
            reply.text()
        );
    }
    let bad_queries = [
        ("limit=ten", "limit"),
        ("PatientNickname=x", "PatientNickname"),
        ("StudyDate=2024", "StudyDate"),
        ("PatientAge=030Y", "PatientAge"),
    ];
    for (query, words) in bad_queries {
        let reply = get(
            &format!("{node_b}/studies?{query}"),
            "application/dicom+json",
        );
        assert_eq!(reply.status, 400, "{query}: {}", reply.text());
        assert!(reply.text().contains(words), "{query}: {}", reply.text());
    }
    let reply = get(&format!("{node_b}/studies"), "application/dicom+xml");
    assert_eq!(reply.status, 406, "{}", reply.text());

    let count_after = get(&format!("{node_b}/instances"), "application/dicom+json")
        .json()
        .as_array()
        .expect("array")
        .len();
    assert_eq!(count_before, count_after, "bad requests stored nothing");
}

/// Configures an allowed origin on node 2, restarts it and checks the
/// preflight and the response headers a browser reads.
fn check_cors(cluster: &TestCluster, node_b: &str) {
    let config = cluster.cluster_dir().join("node-2").join("tessera.toml");
    let mut text = std::fs::read_to_string(&config).expect("node config");
    text.push_str("\n[web]\ncors_allowed_origins = [\"http://viewer.example\"]\n");
    std::fs::write(&config, text).expect("write config");
    cluster.kill(2);
    cluster.restart(2);

    let ready = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let reply = get(
            &format!("{node_b}/studies?limit=1"),
            "application/dicom+json",
        );
        reply.status == 200
    });
    assert!(ready, "node 2 serves DICOMweb again after the restart");

    let reply = curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: http://viewer.example",
        "-H",
        "Access-Control-Request-Method: GET",
        &format!("{node_b}/studies"),
    ]);
    assert_eq!(reply.status, 200, "{}", reply.headers);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "http://viewer.example"
    );
    let reply = curl(&[
        "-H",
        "Origin: http://other.example",
        &format!("{node_b}/studies"),
    ]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "",
        "other origins get no CORS grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dicomweb_client_round_trips_pydicom_corpus() {
    println!("phase: start a 3-node cluster");
    let _cluster = TestCluster::start(3, 8900, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/dicomweb_corpus.py");

    println!("phase: dicomweb-client stores through node 1 and reads through node 2");
    let output = Command::new("python3")
        .arg(script)
        .arg(web_root(8900, 1))
        .arg(web_root(8900, 2))
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "dicomweb-client or pydicom missing; run tests/setup.sh: {stderr}"
    );
    assert!(output.status.success(), "interop script failed: {stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).expect("summary JSON");
    println!("dicomweb corpus: {summary}");

    let stored = summary["stored"].as_u64().expect("stored");
    assert!(stored >= 50, "only {stored} corpus files stored");
    assert_eq!(summary["retrieved_identical"].as_u64(), Some(stored));
    assert_eq!(summary["metadata_checked"].as_u64(), Some(stored));
    assert!(summary["instances_found"].as_u64().expect("found") >= stored);
    let rejected = summary["rejected"].as_array().expect("rejected");
    assert!(!rejected.is_empty(), "the corpus holds invalid files");
    for entry in rejected {
        assert!(!entry[2].as_str().unwrap_or("").is_empty(), "{entry}");
    }
    let vrs: Vec<&str> = summary["vrs_seen"]
        .as_array()
        .expect("vrs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for vr in ["PN", "DS", "IS", "US", "SQ", "OB", "UI", "DA", "AT"] {
        assert!(vrs.contains(&vr), "no {vr} attribute checked: {vrs:?}");
    }
    let with_pixels = summary["with_pixel_data"].as_u64().expect("count");
    let frames_ok = summary["frames_ok"].as_u64().expect("frames");
    let rendered_ok = summary["rendered_ok"].as_u64().expect("rendered");
    assert!(
        frames_ok * 2 >= with_pixels,
        "frames of {frames_ok} of {with_pixels}"
    );
    assert!(
        rendered_ok * 2 >= with_pixels,
        "rendered {rendered_ok} of {with_pixels}"
    );
    for entry in summary["rendered_rejected"]
        .as_array()
        .expect("rejected list")
    {
        assert!(!entry[2].as_str().unwrap_or("").is_empty(), "{entry}");
    }
}
