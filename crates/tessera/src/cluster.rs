//! `tessera cluster`: run a local cluster, form one, change and inspect it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use tessera_proto::v1::cluster_client::ClusterClient;
use tessera_proto::v1::{
    AddNodeRequest, ClusterStatus, InitializeRequest, NodeSpec, RemoveNodeRequest, StatusRequest,
};

use crate::client::{connect_one, ClusterAddr};

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Run N node processes on 127.0.0.1 in the foreground until interrupted.
    Local(LocalArgs),
    /// Start (or restart) one node of a local cluster from its DIR/cluster.json.
    StartNode(StartNodeArgs),
    /// Show nodes, leader, term, lag, blob counts and under-replicated blobs.
    Status(StatusArgs),
    /// Form a new cluster from nodes given as ID=HOST:PORT[@SITE[/ZONE]].
    Init(InitArgs),
    /// Add a node: it joins as a learner, catches up, then becomes a voter.
    AddNode(AddNodeArgs),
    /// Remove a node from the voters.
    RemoveNode(RemoveNodeArgs),
}

#[derive(Args, Clone)]
pub struct LocalArgs {
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Folder for node data, logs and cluster.json.
    #[arg(long, default_value = "tessera-local")]
    pub dir: PathBuf,
    /// Node i listens for gRPC on BASE+i and for HTTP on BASE+80+i.
    #[arg(long, default_value_t = 7400)]
    pub base_port: u16,
    #[arg(long, default_value_t = 3)]
    pub replication_factor: usize,
    /// How long a node may be down before its replicas are re-created.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub repair_grace: Duration,
    /// A DICOM peer every node knows, as AE@HOST:PORT (repeatable); it may
    /// store, query, retrieve and be a C-MOVE destination. Node i listens
    /// for DICOM on BASE+40+i with AE title TESSERAi.
    #[arg(long = "dimse-peer", value_parser = parse_dimse_peer)]
    pub dimse_peers: Vec<DimsePeerSpec>,
    /// Reject DICOM callers that are not listed with --dimse-peer (by
    /// default a local cluster accepts any caller).
    #[arg(long)]
    pub dimse_reject_unknown: bool,
    /// DICOM connections each node accepts at once from one IP address
    /// (dimse.max_associations_per_address). Every local client connects
    /// from 127.0.0.1, so a test with many parallel associations raises it.
    #[arg(long)]
    pub dimse_max_associations_per_address: Option<usize>,
}

/// A DICOM peer given on the command line.
#[derive(Debug, Clone)]
pub struct DimsePeerSpec {
    pub ae_title: String,
    pub host: String,
    pub port: u16,
}

fn parse_dimse_peer(text: &str) -> Result<DimsePeerSpec, String> {
    let invalid = || {
        format!("invalid DICOM peer {text:?}: expected AE@HOST:PORT, e.g. STORESCP@127.0.0.1:11113")
    };
    let (ae_title, addr) = text.split_once('@').ok_or_else(invalid)?;
    let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
    let port = port.parse().map_err(|_| invalid())?;
    if ae_title.is_empty() || ae_title.len() > 16 || host.is_empty() {
        return Err(invalid());
    }
    Ok(DimsePeerSpec {
        ae_title: ae_title.to_string(),
        host: host.to_string(),
        port,
    })
}

#[derive(Args)]
pub struct StartNodeArgs {
    #[arg(long, default_value = "tessera-local")]
    dir: PathBuf,
    #[arg(long)]
    node_id: u64,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    cluster: ClusterAddr,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct InitArgs {
    #[arg(required = true, value_parser = parse_spec)]
    nodes: Vec<NodeSpec>,
    #[command(flatten)]
    cluster: ClusterAddr,
}

#[derive(Args)]
pub struct AddNodeArgs {
    #[arg(value_parser = parse_spec)]
    node: NodeSpec,
    #[command(flatten)]
    cluster: ClusterAddr,
}

#[derive(Args)]
pub struct RemoveNodeArgs {
    node_id: u64,
    #[command(flatten)]
    cluster: ClusterAddr,
}

/// One node of a local cluster, as written to DIR/cluster.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalNode {
    pub node_id: u64,
    pub pid: u32,
    pub grpc_addr: String,
    pub http_addr: String,
    /// Address of the DICOM listener.
    #[serde(default)]
    pub dimse_addr: String,
    #[serde(default)]
    pub ae_title: String,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    pub nodes: Vec<LocalNode>,
}

impl ClusterFile {
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("cluster.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e}; is a local cluster running there?",
                path.display()
            )
        })?;
        Ok(serde_json::from_str(&text)?)
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join("cluster.json");
        let temporary = dir.join("cluster.json.tmp");
        std::fs::write(&temporary, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(temporary, path)?;
        Ok(())
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.grpc_addr.clone()).collect()
    }
}

fn parse_spec(text: &str) -> Result<NodeSpec, String> {
    let usage =
        || format!("{text:?} is not ID=HOST:PORT[@SITE[/ZONE]], e.g. 4=10.0.0.4:7401@east/a");
    let (id, rest) = text.split_once('=').ok_or_else(usage)?;
    let node_id = id.parse().map_err(|_| usage())?;
    let (addr, labels) = rest.split_once('@').unwrap_or((rest, ""));
    let (site, zone) = labels.split_once('/').unwrap_or((labels, ""));
    Ok(NodeSpec {
        node_id,
        grpc_addr: addr.to_string(),
        site: site.to_string(),
        zone: zone.to_string(),
    })
}

pub async fn run(command: ClusterCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        ClusterCommand::Local(args) => run_local(args).await?,
        ClusterCommand::StartNode(args) => {
            let node = start_node(&args.dir, args.node_id).await?;
            println!(
                "node {} started, pid {}, gRPC {}",
                node.node_id, node.pid, node.grpc_addr
            );
        }
        ClusterCommand::Status(args) => {
            let status = args
                .cluster
                .cluster()
                .await?
                .status(StatusRequest {})
                .await?
                .into_inner();
            if args.json {
                println!("{}", status_json(&status));
            } else {
                print_status(&status);
            }
        }
        ClusterCommand::Init(args) => {
            let request = InitializeRequest { nodes: args.nodes };
            args.cluster.cluster().await?.initialize(request).await?;
            println!("cluster initialised");
        }
        ClusterCommand::AddNode(args) => {
            let request = AddNodeRequest {
                node: Some(args.node),
            };
            let membership = args
                .cluster
                .cluster()
                .await?
                .add_node(request)
                .await?
                .into_inner();
            println!(
                "voters {:?}, learners {:?}",
                membership.voters, membership.learners
            );
        }
        ClusterCommand::RemoveNode(args) => {
            let request = RemoveNodeRequest {
                node_id: args.node_id,
            };
            let membership = args
                .cluster
                .cluster()
                .await?
                .remove_node(request)
                .await?
                .into_inner();
            println!(
                "voters {:?}, learners {:?}",
                membership.voters, membership.learners
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// A local cluster whose first processes are children of this one.
pub struct LocalCluster {
    pub dir: PathBuf,
    children: Vec<Child>,
}

impl LocalCluster {
    pub fn file(&self) -> anyhow::Result<ClusterFile> {
        ClusterFile::read(&self.dir)
    }

    /// Stops every node listed in cluster.json, including restarted ones.
    pub fn shutdown(&mut self) {
        if let Ok(file) = self.file() {
            for node in &file.nodes {
                let pid = nix::unistd::Pid::from_raw(node.pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for child in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Reaps children that exited and returns their pids and exit statuses.
    /// Returns the node processes that exited since the last call, each once,
    /// and stops tracking them.
    fn exited(&mut self) -> Vec<(u32, String)> {
        let mut gone = Vec::new();
        self.children.retain_mut(|child| match child.try_wait() {
            Ok(Some(status)) => {
                gone.push((child.id(), status.to_string()));
                false
            }
            _ => true,
        });
        gone
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Writes configs, starts N nodes, forms the cluster and writes cluster.json.
pub async fn start_local(args: &LocalArgs) -> anyhow::Result<LocalCluster> {
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let mut file = ClusterFile { nodes: Vec::new() };
    let mut cluster = LocalCluster {
        dir: dir.clone(),
        children: Vec::new(),
    };

    for node_id in 1..=args.nodes {
        let mut node = write_node_config(&dir, node_id, args)?;
        let child = spawn_node(&node)?;
        node.pid = child.id();
        cluster.children.push(child);
        file.nodes.push(node);
    }
    file.write(&dir)?;
    for node in &file.nodes {
        wait_for_grpc(&node.grpc_addr, Duration::from_secs(60)).await?;
    }

    let specs = file
        .nodes
        .iter()
        .map(|n| NodeSpec {
            node_id: n.node_id,
            grpc_addr: n.grpc_addr.clone(),
            site: String::new(),
            zone: String::new(),
        })
        .collect();
    let mut client = ClusterClient::new(connect_one(&file.nodes[0].grpc_addr).await?);
    match client.initialize(InitializeRequest { nodes: specs }).await {
        Ok(_) => {}
        Err(status) if status.code() == tonic::Code::AlreadyExists => {}
        Err(status) => return Err(status.into()),
    }
    wait_for_leader(&file.addrs(), Duration::from_secs(30)).await?;
    Ok(cluster)
}

fn write_node_config(dir: &Path, node_id: u64, args: &LocalArgs) -> anyhow::Result<LocalNode> {
    let node_dir = dir.join(format!("node-{node_id}"));
    std::fs::create_dir_all(&node_dir)?;
    let grpc_addr = format!("127.0.0.1:{}", args.base_port + node_id as u16);
    let http_addr = format!("127.0.0.1:{}", args.base_port + 80 + node_id as u16);
    let data_dir = node_dir.join("data");
    let config = node_dir.join("tessera.toml");
    let text = format!(
        "node_id = {node_id}\n\
         grpc_listen = \"{grpc_addr}\"\n\
         http_listen = \"{http_addr}\"\n\
         data_dir = \"{}\"\n\
         replication_factor = {}\n\
         repair_grace = \"{}\"\n\
         repair_interval = \"2s\"\n",
        data_dir.display(),
        args.replication_factor,
        humantime::format_duration(args.repair_grace),
    );
    let (dimse_addr, ae_title) = local_dimse_identity(args.base_port, node_id);
    let text = text + &dimse_section(args, &dimse_addr, &ae_title);
    std::fs::write(&config, text)?;
    Ok(LocalNode {
        node_id,
        pid: 0,
        grpc_addr,
        http_addr,
        dimse_addr,
        ae_title,
        data_dir,
        config,
        log: node_dir.join("node.log"),
    })
}

fn local_dimse_identity(base_port: u16, node_id: u64) -> (String, String) {
    let addr = format!("127.0.0.1:{}", base_port + 40 + node_id as u16);
    (addr, format!("TESSERA{node_id}"))
}

/// The `[dimse]` section of a local node: every other node and every
/// --dimse-peer is a known peer, so C-MOVE works between them.
fn dimse_section(args: &LocalArgs, listen: &str, ae_title: &str) -> String {
    let mut text = format!(
        "\n[dimse]\n\
         listen = \"{listen}\"\n\
         ae_title = \"{ae_title}\"\n\
         accept_unknown_callers = {}\n",
        !args.dimse_reject_unknown
    );
    if let Some(limit) = args.dimse_max_associations_per_address {
        text += &format!("max_associations_per_address = {limit}\n");
    }
    let nodes = (1..=args.nodes).map(|id| {
        let (addr, ae) = local_dimse_identity(args.base_port, id);
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        (ae, host.to_string(), port.to_string())
    });
    let extra = args
        .dimse_peers
        .iter()
        .map(|p| (p.ae_title.clone(), p.host.clone(), p.port.to_string()));
    for (ae, host, port) in nodes.chain(extra) {
        text +=
            &format!("\n[[dimse.peers]]\nae_title = \"{ae}\"\nhost = \"{host}\"\nport = {port}\n");
    }
    text
}

fn spawn_node(node: &LocalNode) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&node.log)?;
    let child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg("--config")
        .arg(&node.config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    Ok(child)
}

/// Starts a node of an existing local cluster again and records its new pid.
pub async fn start_node(dir: &Path, node_id: u64) -> anyhow::Result<LocalNode> {
    let mut file = ClusterFile::read(dir)?;
    let node = file
        .nodes
        .iter_mut()
        .find(|n| n.node_id == node_id)
        .ok_or_else(|| {
            anyhow::anyhow!("node {node_id} is not in {}/cluster.json", dir.display())
        })?;
    let child = spawn_node(node)?;
    node.pid = child.id();
    // The child outlives this command when run from the CLI; nothing waits on it.
    std::mem::forget(child);
    let node = node.clone();
    file.write(dir)?;
    wait_for_grpc(&node.grpc_addr, Duration::from_secs(60)).await?;
    Ok(node)
}

pub async fn wait_for_grpc(addr: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(channel) = connect_one(addr).await {
            if ClusterClient::new(channel)
                .status(StatusRequest {})
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("node at {addr} did not respond within {timeout:?}; see its node.log");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a node among `addrs` reports a leader; returns its status.
pub async fn wait_for_leader(addrs: &[String], timeout: Duration) -> anyhow::Result<ClusterStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        for addr in addrs {
            let Ok(channel) = connect_one(addr).await else {
                continue;
            };
            if let Ok(status) = ClusterClient::new(channel).status(StatusRequest {}).await {
                let status = status.into_inner();
                if status.leader_id != 0 {
                    return Ok(status);
                }
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("no leader elected within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_local(args: LocalArgs) -> anyhow::Result<()> {
    println!("starting {} nodes under {}", args.nodes, args.dir.display());
    let mut cluster = start_local(&args).await?;
    let file = cluster.file()?;
    for node in &file.nodes {
        println!(
            "node {}  pid {:>7}  gRPC {}  HTTP {}  DICOM {}@{}  log {}",
            node.node_id,
            node.pid,
            node.grpc_addr,
            node.http_addr,
            node.ae_title,
            node.dimse_addr,
            node.log.display()
        );
    }
    println!(
        "cluster ready; wrote {}/cluster.json",
        cluster.dir.display()
    );
    println!(
        "try: TESSERA_ADDR={} tessera cluster status",
        file.addrs().join(",")
    );
    println!("press Ctrl-C to stop every node");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {
                for (pid, status) in cluster.exited() {
                    println!("node process {pid} exited ({status}); restart it with `tessera cluster start-node`");
                }
            }
        }
    }
    println!("stopping nodes");
    cluster.shutdown();
    Ok(())
}

pub fn print_status(status: &ClusterStatus) {
    println!(
        "leader {}  term {}  last log index {}  instances {}  R {}  under-replicated blobs {}  (answered by node {})",
        status.leader_id,
        status.term,
        status.last_log_index,
        status.instances,
        status.replication_factor,
        status.under_replicated_blobs,
        status.answering_node_id
    );
    println!(
        "{:>5}  {:<21}  {:<6}  {:<11}  {:>8}  {:>5}  {:>7}  {:>12}",
        "node", "gRPC", "role", "state", "applied", "lag", "blobs", "bytes"
    );
    for node in &status.nodes {
        let role = if node.node_id == status.leader_id {
            "leader"
        } else if node.voter {
            "voter"
        } else {
            "learner"
        };
        let state = if node.reachable { "up" } else { "unreachable" };
        println!(
            "{:>5}  {:<21}  {:<6}  {:<11}  {:>8}  {:>5}  {:>7}  {:>12}",
            node.node_id,
            node.grpc_addr,
            role,
            state,
            node.last_applied,
            node.lag,
            node.blob_count,
            node.blob_bytes
        );
    }
}

fn status_json(status: &ClusterStatus) -> String {
    let nodes: Vec<_> = status
        .nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "node_id": n.node_id, "grpc_addr": n.grpc_addr, "site": n.site, "zone": n.zone,
                "voter": n.voter, "reachable": n.reachable, "last_applied": n.last_applied,
                "lag": n.lag, "blob_count": n.blob_count, "blob_bytes": n.blob_bytes,
            })
        })
        .collect();
    let value = serde_json::json!({
        "leader_id": status.leader_id, "term": status.term, "last_log_index": status.last_log_index,
        "last_applied": status.last_applied, "instances": status.instances,
        "replication_factor": status.replication_factor,
        "under_replicated_blobs": status.under_replicated_blobs,
        "answering_node_id": status.answering_node_id, "nodes": nodes,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
