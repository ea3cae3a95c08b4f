use std::process::Command;

use crate::harness::*;

/// Writes a copy of `source` without its SOP Instance UID (0008,0018), with
/// pydicom through python3 (installed by the test setup) as the DICOM writer.
fn write_without_sop_uid(source: &std::path::Path, target: &std::path::Path) {
    let script = "import sys, pydicom\n\
                  ds = pydicom.dcmread(sys.argv[1])\n\
                  del ds.SOPInstanceUID\n\
                  ds.save_as(sys.argv[2])\n";
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(source)
        .arg(target)
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "pydicom could not write the test file; run tests/setup.sh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_rejected_with_reasons_and_batch_continues() {
    let cluster = TestCluster::start(3, 7900, &[]);
    let good = generated(cluster.dir.path(), 41, 1, 2);
    let batch = cluster.dir.path().join("batch");
    std::fs::create_dir_all(&batch).expect("batch dir");
    for (index, (_, bytes)) in good.iter().enumerate() {
        std::fs::write(batch.join(format!("good-{index:02}.dcm")), bytes).expect("write");
    }
    let sample = &good[0].1;
    std::fs::write(
        batch.join("bad-random.dcm"),
        b"this is not DICOM at all, just text",
    )
    .expect("write");
    std::fs::write(batch.join("bad-empty.dcm"), b"").expect("write");
    std::fs::write(batch.join("bad-truncated.dcm"), &sample[..200]).expect("write");
    let source = cluster.dir.path().join("source.dcm");
    std::fs::write(&source, sample).expect("write");
    write_without_sop_uid(&source, &batch.join("bad-no-sop-uid.dcm"));

    let output = cluster.run(&["store", "--json", batch.to_str().expect("utf-8 path")]);
    assert!(
        !output.status.success(),
        "store exits non-zero when a file is rejected"
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "json summary: {e}\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });

    assert_eq!(
        summary["stored"].as_u64(),
        Some(good.len() as u64),
        "{summary}"
    );
    let rejected = summary["rejected"].as_array().expect("rejected list");
    assert_eq!(rejected.len(), 4, "{summary}");
    let reason_for = |name: &str| -> String {
        rejected
            .iter()
            .find(|r| r[0].as_str().unwrap_or("").ends_with(name))
            .map(|r| r[1].as_str().unwrap_or("").to_lowercase())
            .unwrap_or_else(|| panic!("{name} not rejected: {summary}"))
    };
    assert!(reason_for("bad-random.dcm").contains("part 10"));
    assert!(reason_for("bad-empty.dcm").contains("part 10"));
    assert!(
        reason_for("bad-truncated.dcm").contains("truncated")
            || reason_for("bad-truncated.dcm").contains("parse")
    );
    assert!(reason_for("bad-no-sop-uid.dcm").contains("sopinstanceuid"));

    println!("phase: the good files are all there and nothing else");
    let addr = cluster.nodes()[0].grpc_addr.clone();
    let page = query(&addr, tessera_proto::v1::QueryLevel::Instance, &[]).await;
    assert_eq!(page.total as usize, good.len());
}
