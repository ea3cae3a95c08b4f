//! A local cluster of real `tessera serve` processes for one test, and gRPC
//! helpers against it. Each test takes its own port range.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tessera_proto::v1::archive_client::ArchiveClient;
use tessera_proto::v1::cluster_client::ClusterClient;
use tessera_proto::v1::*;
use tonic::transport::Channel;

/// Locates the `tessera` binary under test: TESSERA_BIN, or beside the test binary.
pub fn tessera_bin() -> PathBuf {
    if let Ok(path) = std::env::var("TESSERA_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("tessera");
    assert!(
        bin.exists(),
        "{} is missing; run `cargo build --bin tessera` first",
        bin.display()
    );
    bin
}

pub struct TestCluster {
    pub dir: tempfile::TempDir,
    supervisor: Child,
}

#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node_id: u64,
    pub pid: u32,
    pub grpc_addr: String,
    /// Address of the node's DICOM listener.
    pub dimse_addr: String,
    pub ae_title: String,
}

impl TestCluster {
    /// Starts `tessera cluster local` and waits for a leader.
    pub fn start(nodes: u64, base_port: u16, extra: &[&str]) -> TestCluster {
        Self::start_with_env(nodes, base_port, extra, &[])
    }

    /// Like `start`, with environment variables that the nodes inherit.
    pub fn start_with_env(
        nodes: u64,
        base_port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("supervisor.log")).expect("log file");
        let supervisor = Command::new(tessera_bin())
            .args(["cluster", "local", "--nodes", &nodes.to_string()])
            .arg("--dir")
            .arg(dir.path().join("cluster"))
            .args(["--base-port", &base_port.to_string()])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("tessera cluster local starts");
        let cluster = TestCluster { dir, supervisor };
        cluster.wait_for_file(nodes);
        cluster
    }

    fn wait_for_file(&self, nodes: u64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            let log =
                std::fs::read_to_string(self.dir.path().join("supervisor.log")).unwrap_or_default();
            if log.contains("cluster ready") && self.nodes().len() as u64 == nodes {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log =
            std::fs::read_to_string(self.dir.path().join("supervisor.log")).unwrap_or_default();
        panic!("cluster did not become ready in 90 s; supervisor log:\n{log}");
    }

    pub fn cluster_dir(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    pub fn nodes(&self) -> Vec<NodeInfo> {
        let Ok(text) = std::fs::read_to_string(self.cluster_dir().join("cluster.json")) else {
            return Vec::new();
        };
        let value: serde_json::Value = serde_json::from_str(&text).expect("cluster.json parses");
        value["nodes"]
            .as_array()
            .expect("nodes array")
            .iter()
            .map(|n| NodeInfo {
                node_id: n["node_id"].as_u64().expect("node_id"),
                pid: n["pid"].as_u64().expect("pid") as u32,
                grpc_addr: n["grpc_addr"].as_str().expect("grpc_addr").to_string(),
                dimse_addr: n["dimse_addr"].as_str().unwrap_or_default().to_string(),
                ae_title: n["ae_title"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }

    pub fn addr_of(&self, node_id: u64) -> String {
        self.nodes()
            .into_iter()
            .find(|n| n.node_id == node_id)
            .expect("known node")
            .grpc_addr
    }

    pub fn node(&self, node_id: u64) -> NodeInfo {
        self.nodes()
            .into_iter()
            .find(|n| n.node_id == node_id)
            .expect("known node")
    }

    pub fn kill(&self, node_id: u64) {
        let node = self
            .nodes()
            .into_iter()
            .find(|n| n.node_id == node_id)
            .expect("known node");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(node.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("SIGKILL delivered");
    }

    pub fn restart(&self, node_id: u64) {
        let status = Command::new(tessera_bin())
            .args(["cluster", "start-node", "--node-id", &node_id.to_string()])
            .arg("--dir")
            .arg(self.cluster_dir())
            .stdout(Stdio::null())
            .status()
            .expect("start-node runs");
        assert!(
            status.success(),
            "tessera cluster start-node {node_id} failed"
        );
    }

    /// Runs a `tessera` client command against every node.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let addrs: Vec<String> = self.nodes().into_iter().map(|n| n.grpc_addr).collect();
        Command::new(tessera_bin())
            .args(args)
            .env("TESSERA_ADDR", addrs.join(","))
            .output()
            .expect("tessera command runs")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.supervisor.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.supervisor.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.supervisor.kill();
        for node in self.nodes() {
            let pid = nix::unistd::Pid::from_raw(node.pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

pub async fn channel(addr: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

pub async fn archive(addr: &str) -> ArchiveClient<Channel> {
    ArchiveClient::new(channel(addr).await).max_decoding_message_size(80 << 20)
}

pub async fn status(addr: &str) -> ClusterStatus {
    let mut client = ClusterClient::new(channel(addr).await);
    client
        .status(StatusRequest {})
        .await
        .expect("status answers")
        .into_inner()
}

/// Stores files over one ingest stream; one result per file.
pub async fn ingest(addr: &str, files: &[(String, Vec<u8>)]) -> Vec<IngestResult> {
    let mut requests = Vec::new();
    for (label, bytes) in files {
        requests.push(IngestRequest {
            part: Some(ingest_request::Part::Begin(IngestBegin {
                label: label.clone(),
                header: None,
            })),
        });
        for piece in bytes.chunks(256 * 1024) {
            requests.push(IngestRequest {
                part: Some(ingest_request::Part::Data(piece.to_vec().into())),
            });
        }
        requests.push(IngestRequest {
            part: Some(ingest_request::Part::End(IngestEnd {})),
        });
    }
    let mut client = archive(addr).await;
    let response = client
        .ingest(futures::stream::iter(requests))
        .await
        .expect("ingest call accepted");
    let mut stream = response.into_inner();
    let mut results = Vec::new();
    while let Some(result) = stream.next().await {
        results.push(result.expect("ingest result"));
    }
    results
}

/// Retrieves one instance's bytes.
pub async fn retrieve_instance(addr: &str, sop_uid: &str) -> Result<Vec<u8>, tonic::Status> {
    let request = RetrieveRequest {
        sop_instance_uid: sop_uid.to_string(),
        ..RetrieveRequest::default()
    };
    let mut stream = archive(addr).await.retrieve(request).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(message) = stream.next().await {
        if let Some(retrieve_response::Part::Data(data)) = message?.part {
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

pub async fn query(addr: &str, level: QueryLevel, keys: &[(&str, &str)]) -> QueryResponse {
    try_query(addr, level, keys).await.expect("query succeeds")
}

pub async fn try_query(
    addr: &str,
    level: QueryLevel,
    keys: &[(&str, &str)],
) -> Result<QueryResponse, tonic::Status> {
    let request = QueryRequest {
        level: level as i32,
        keys: keys
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..QueryRequest::default()
    };
    Ok(archive(addr).await.query(request).await?.into_inner())
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Generated Part 10 files from `tessera generate`, read into memory.
pub fn generated(dir: &Path, seed: u64, patients: u32, per_series: u32) -> Vec<(String, Vec<u8>)> {
    let out = dir.join(format!("generated-{seed}"));
    let status = Command::new(tessera_bin())
        .args([
            "generate",
            "--seed",
            &seed.to_string(),
            "--patients",
            &patients.to_string(),
        ])
        .args([
            "--instances-per-series",
            &per_series.to_string(),
            "--size",
            "64",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("tessera generate runs");
    assert!(status.success(), "tessera generate failed");
    read_tree(&out)
}

pub fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("readable dir") {
                stack.push(entry.expect("dir entry").path());
            }
        } else {
            let bytes = std::fs::read(&path).expect("readable file");
            files.push((path.display().to_string(), bytes));
        }
    }
    files.sort();
    files
}

/// Polls `check` until it returns true or the timeout passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
