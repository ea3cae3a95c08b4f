//! Runs the built tessera-bench-plot binary on small results files.

use std::path::Path;
use std::process::Command;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn run(results: &serde_json::Value, dir: &Path) -> std::process::Output {
    let path = dir.join("results.json");
    std::fs::write(&path, results.to_string()).expect("write results.json");
    Command::new(env!("CARGO_BIN_EXE_tessera-bench-plot"))
        .arg("--results")
        .arg(&path)
        .arg("--out-dir")
        .arg(dir.join("out"))
        .output()
        .expect("run tessera-bench-plot")
}

/// Reads width and height from the IHDR chunk of a PNG file.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let width = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
    (width, height)
}

#[test]
fn charts_become_png_files() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let results = serde_json::json!({
        "plots": [
            {
                "file": "latency.png", "title": "PatientID (C-FIND)",
                "x_label": "instances", "y_label": "ms", "log_x": true, "log_y": true,
                "series": [
                    {"name": "Orthanc p50", "points": [[10000, 6.5], [100000, 9.0]]},
                    {"name": "Tessera 1n R=1 p50", "points": [[10000, 4.0], [100000, 4.2]]}
                ]
            },
            {
                "file": "ingest.png", "title": "Ingest", "x_label": "clients",
                "y_label": "MB/s",
                "series": [{"name": "Tessera", "points": [[1, 20.0], [4, 41.5]]}]
            }
        ]
    });

    let output = run(&results, dir.path());

    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for name in ["latency.png", "ingest.png"] {
        let bytes = std::fs::read(dir.path().join("out").join(name)).expect("PNG written");
        assert_eq!(&bytes[..8], PNG_SIGNATURE, "{name} is not a PNG file");
        assert_eq!(png_size(&bytes), (960, 600), "{name} has another size");
    }
}

#[test]
fn chart_without_points_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let results = serde_json::json!({
        "plots": [{"file": "empty.png", "title": "Nothing", "x_label": "x", "y_label": "y",
                   "series": [{"name": "none", "points": []}]}]
    });

    let output = run(&results, dir.path());

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no points"), "stderr: {stderr}");
}

#[test]
fn zero_on_log_axis_is_rejected() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let results = serde_json::json!({
        "plots": [{"file": "zero.png", "title": "Zero", "x_label": "x", "y_label": "y",
                   "log_y": true,
                   "series": [{"name": "s", "points": [[1, 0.0], [2, 3.0]]}]}]
    });

    let output = run(&results, dir.path());

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("logarithmic axis"), "stderr: {stderr}");
}
