//! The `tessera` command line as a user runs it, without a cluster.

use std::process::Command;

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

#[test]
fn help_lists_every_command() {
    let output = tessera().arg("--help").output().expect("tessera runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for command in [
        "serve", "store", "find", "get", "watch", "cluster", "generate", "demo",
    ] {
        assert!(text.contains(command), "--help lacks {command}:\n{text}");
    }
}

#[test]
fn find_rejects_key_without_equals() {
    let output = tessera()
        .args(["find", "-k", "PatientID"])
        .output()
        .expect("tessera runs");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(text.contains("KEYWORD=VALUE"), "{text}");
}

#[test]
fn store_names_missing_path() {
    let output = tessera()
        .args([
            "store",
            "/nonexistent/tessera-input",
            "--addr",
            "127.0.0.1:1",
        ])
        .output()
        .expect("tessera runs");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        text.contains("/nonexistent/tessera-input does not exist"),
        "{text}"
    );
}

#[test]
fn client_without_cluster_says_how_to_start_one() {
    let output = tessera()
        .args(["cluster", "status", "--addr", "127.0.0.1:1"])
        .output()
        .expect("tessera runs");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(text.contains("tessera cluster local"), "{text}");
}

#[test]
fn generate_is_deterministic_for_a_seed() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    for dir in [a.path(), b.path()] {
        let status = tessera()
            .args([
                "generate",
                "--seed",
                "7",
                "--patients",
                "1",
                "--instances-per-series",
                "2",
            ])
            .arg("--out")
            .arg(dir)
            .status()
            .expect("tessera runs");
        assert!(status.success());
    }
    let read = |root: &std::path::Path| {
        let mut files: Vec<(String, Vec<u8>)> = walk(root)
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(root)
                        .expect("under root")
                        .display()
                        .to_string(),
                    std::fs::read(&p).expect("read"),
                )
            })
            .collect();
        files.sort();
        files
    };
    let first = read(a.path());
    // One patient, two studies (the default), three series, two instances each.
    assert_eq!(first.len(), 2 * 3 * 2);
    assert_eq!(first, read(b.path()));
}

#[test]
fn generate_mix_is_deterministic_and_mixed() {
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    for dir in [a.path(), b.path()] {
        let status = tessera()
            .args(["generate", "--mix", "--thumbnails", "--max-studies", "40"])
            .args(["--seed", "3", "--out"])
            .arg(dir)
            .status()
            .expect("tessera runs");
        assert!(status.success());
    }
    let mut first = walk(a.path());
    first.sort();
    assert_eq!(first.len(), walk(b.path()).len());
    for left in &first {
        let right = b
            .path()
            .join(left.strip_prefix(a.path()).expect("under root"));
        let bytes = std::fs::read(left).expect("read");
        assert_eq!(
            bytes,
            std::fs::read(&right).expect("read"),
            "{}",
            right.display()
        );
    }

    let mut modalities = std::collections::BTreeSet::new();
    let mut implicit = 0;
    for path in &first {
        let object = dicom_object::open_file(path).expect("generated file parses");
        let modality = object.element_by_name("Modality").expect("Modality");
        modalities.insert(modality.to_str().expect("text").trim().to_string());
        if object.meta().transfer_syntax() == "1.2.840.10008.1.2" {
            implicit += 1;
        }
    }
    assert!(modalities.len() >= 4, "40 studies gave only {modalities:?}");
    assert!(implicit > 0, "no Implicit VR file among {}", first.len());
}

#[test]
fn generate_mix_stops_at_max_instances() {
    let (small, large) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    for (dir, limit) in [(small.path(), "37"), (large.path(), "60")] {
        let status = tessera()
            .args([
                "generate",
                "--mix",
                "--thumbnails",
                "--max-instances",
                limit,
            ])
            .args(["--seed", "5", "--out"])
            .arg(dir)
            .status()
            .expect("tessera runs");
        assert!(status.success());
    }

    let mut first = walk(small.path());
    first.sort();
    assert_eq!(first.len(), 37);
    assert_eq!(walk(large.path()).len(), 60);
    for left in &first {
        let right = large
            .path()
            .join(left.strip_prefix(small.path()).expect("under root"));
        let bytes = std::fs::read(left).expect("read");
        assert_eq!(
            bytes,
            std::fs::read(&right).expect("the larger corpus has the same file"),
            "{}",
            right.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
