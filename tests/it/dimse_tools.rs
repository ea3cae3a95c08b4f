//! Helpers for the DIMSE tests: DCMTK tools, the pynetdicom scripts under
//! tests/interop, pydicom's sample files and Part 10 data set comparison.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Returns a DCMTK tool. DCMTK lives in /usr/bin on Debian; pynetdicom
/// installs Python tools with the same names that may come first in PATH.
pub fn dcmtk(tool: &str) -> Command {
    let path = PathBuf::from("/usr/bin").join(tool);
    assert!(
        path.exists(),
        "DCMTK's {tool} is missing at {}; run tests/setup.sh",
        path.display()
    );
    Command::new(path)
}

pub fn output_text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a script of tests/interop with python3 and parses its JSON output.
pub fn interop(script: &str, args: &[&str]) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join(script);
    let output = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 runs; run tests/setup.sh");
    assert!(
        output.status.success(),
        "{script} failed: {}",
        output_text(&output)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {}", output_text(&output)))
}

/// Returns a folder of pydicom's test data: "test_files" or "charset_files".
pub fn pydicom_data(folder: &str) -> PathBuf {
    let output = Command::new("python3")
        .args([
            "-c",
            "import os, pydicom.data; print(os.path.dirname(pydicom.data.__file__))",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "pydicom missing; run tests/setup.sh"
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join(folder)
}

pub fn host_port(addr: &str) -> (String, String) {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    (host.to_string(), port.to_string())
}

/// Returns the data set of a Part 10 file: the bytes after its file meta group.
pub fn data_set_of(file: &[u8]) -> &[u8] {
    assert_eq!(&file[128..132], b"DICM", "not a Part 10 file");
    let length = u32::from_le_bytes(file[140..144].try_into().expect("group length"));
    &file[144 + length as usize..]
}

/// DCMTK's storescp receiving into a folder, stopped on drop.
pub struct StoreScp {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl StoreScp {
    pub fn start(port: u16, ae_title: &str) -> StoreScp {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = dcmtk("storescp")
            .args(["-aet", ae_title, "--promiscuous", "-od"])
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("storescp starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "storescp did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        StoreScp { child, dir }
    }

    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        crate::harness::read_tree(self.dir.path())
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
