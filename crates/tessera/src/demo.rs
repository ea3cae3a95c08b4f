//! `tessera demo`: the tour of node-loss survival on real files.
//!
//! Starts three local node processes, stores the pydicom test corpus and
//! generated studies, SIGKILLs the leader, shows that every instance is still
//! found and returned byte-identical and that stores go on, restarts the node
//! and shows that it caught up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sha2::{Digest, Sha256};
use tessera_proto::v1::cluster_client::ClusterClient;
use tessera_proto::v1::{QueryLevel, QueryRequest, RetrieveRequest, StatusRequest};

use crate::client::ClusterAddr;
use crate::cluster::{self, LocalArgs, LocalCluster};
use crate::generate::GenerateArgs;
use crate::store::{self, StoreSummary};

#[derive(Args)]
pub struct DemoArgs {
    /// Working folder; emptied first.
    #[arg(long, default_value = "tessera-demo")]
    dir: PathBuf,
    /// Folders or files to store; defaults to the test files of the installed
    /// pydicom package.
    #[arg(long)]
    corpus: Vec<PathBuf>,
    /// First port; node i uses BASE+i for gRPC and BASE+80+i for HTTP.
    #[arg(long, default_value_t = 7500)]
    base_port: u16,
}

/// Figures gathered along the way for the closing summary.
#[derive(Default)]
struct Figures {
    files: usize,
    first_store: StoreSummary,
    verified_before: usize,
    killed_node: u64,
    write_gap: Duration,
    verified_during: usize,
    stored_during: usize,
    caught_up_after: Duration,
    verified_after: usize,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    let corpus = match args.corpus.is_empty() {
        true => vec![pydicom_test_files()?],
        false => args.corpus.clone(),
    };
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    std::fs::create_dir_all(&args.dir)?;

    step("starting a local cluster of 3 nodes (R = 3)");
    let local = LocalArgs {
        nodes: 3,
        dir: args.dir.join("cluster"),
        base_port: args.base_port,
        replication_factor: 3,
        repair_grace: Duration::from_secs(30),
        dimse_peers: Vec::new(),
        dimse_reject_unknown: false,
        dimse_max_associations_per_address: None,
    };
    let mut cluster = cluster::start_local(&local).await?;
    let everyone = ClusterAddr {
        addr: cluster.file()?.addrs(),
    };
    print_status(&everyone).await?;

    let mut figures = Figures::default();
    let result = tour(&args, &corpus, &mut cluster, &everyone, &mut figures).await;
    step("stopping the cluster");
    cluster.shutdown();
    result?;

    print_summary(&figures);
    Ok(std::process::ExitCode::SUCCESS)
}

async fn tour(
    args: &DemoArgs,
    corpus: &[PathBuf],
    cluster: &mut LocalCluster,
    everyone: &ClusterAddr,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    step("generating 3 studies of 3 series (UTF-8 names included)");
    let generated = generate(&args.dir.join("generated"), 1, 2)?;
    let mut files = store::collect_files(corpus)?;
    files.extend(generated);
    figures.files = files.len();

    step(&format!(
        "storing {} files over 4 parallel streams",
        files.len()
    ));
    figures.first_store = store::store_files(everyone, files, 4, true).await?;
    store::print_summary_brief(&figures.first_store);
    let rejections = args.dir.join("rejected.tsv");
    write_rejections(&rejections, &figures.first_store)?;
    println!(
        "  every rejection with its reason: {}",
        rejections.display()
    );
    let stored = figures.first_store.instances.clone();

    step("retrieving every stored instance and comparing bytes with its source file");
    figures.verified_before = verify_all(everyone, &stored).await?;
    println!(
        "  {} of {} instances byte-identical",
        figures.verified_before,
        stored.len()
    );

    let status = ClusterClient::new(everyone.connect().await?)
        .status(StatusRequest {})
        .await?
        .into_inner();
    let leader = status.leader_id;
    let file = cluster.file()?;
    let victim = file
        .nodes
        .iter()
        .find(|n| n.node_id == leader)
        .expect("leader is a member")
        .clone();
    let survivors = ClusterAddr {
        addr: file
            .nodes
            .iter()
            .filter(|n| n.node_id != leader)
            .map(|n| n.grpc_addr.clone())
            .collect(),
    };

    step(&format!(
        "SIGKILL of the leader, node {leader} (pid {})",
        victim.pid
    ));
    figures.killed_node = leader;
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )?;

    let late = generate(&args.dir.join("generated-late"), 2, 1)?;
    let (first, rest) = late.split_first().expect("generated at least one file");
    let first_write = store::store_files(&survivors, vec![first.clone()], 1, false).await?;
    anyhow::ensure!(
        first_write.stored == 1,
        "store after the kill failed: {:?}",
        first_write.unavailable
    );
    figures.write_gap = killed_at.elapsed();
    let new_status = cluster::wait_for_leader(&survivors.addr, Duration::from_secs(30)).await?;
    println!(
        "  node {} leads now (term {}); the first write after the kill was acknowledged {:.2} s after it",
        new_status.leader_id,
        new_status.term,
        figures.write_gap.as_secs_f64()
    );

    step("with the node down: querying and retrieving everything from the two survivors");
    let studies = count_studies(&survivors).await?;
    println!("  {studies} studies found");
    figures.verified_during = verify_all(&survivors, &stored).await?;
    println!(
        "  {} of {} instances byte-identical",
        figures.verified_during,
        stored.len()
    );

    step("with the node down: storing a new study");
    let during = store::store_files(&survivors, rest.to_vec(), 2, false).await?;
    figures.stored_during = during.stored + first_write.stored;
    println!("  stored {} more instances", figures.stored_during);
    print_status(&survivors).await?;

    step(&format!("restarting node {leader}"));
    let restarted_at = Instant::now();
    cluster::start_node(&cluster.dir, leader).await?;
    // The status comes from a survivor, because the restarted node's own view
    // lags until it has caught up.
    wait_caught_up(&survivors, leader, Duration::from_secs(120)).await?;
    figures.caught_up_after = restarted_at.elapsed();
    println!(
        "  node {leader} caught up in {:.1} s",
        figures.caught_up_after.as_secs_f64()
    );
    print_status(&survivors).await?;

    step(&format!(
        "retrieving everything through node {leader} alone"
    ));
    let only_restarted = ClusterAddr {
        addr: vec![victim.grpc_addr.clone()],
    };
    let mut all = stored.clone();
    all.extend(during.instances.iter().cloned());
    all.extend(first_write.instances.iter().cloned());
    figures.verified_after = verify_all(&only_restarted, &all).await?;
    println!(
        "  {} of {} instances byte-identical",
        figures.verified_after,
        all.len()
    );
    anyhow::ensure!(
        figures.verified_after == all.len(),
        "some instances were not returned intact"
    );
    Ok(())
}

fn step(text: &str) {
    println!("\n==> {text}");
}

fn generate(out: &Path, seed: u64, patients: u32) -> anyhow::Result<Vec<PathBuf>> {
    crate::generate::generate(&GenerateArgs {
        out: out.to_path_buf(),
        seed,
        patients,
        studies_per_patient: if patients > 1 { 2 } else { 1 },
        series_per_study: 3,
        instances_per_series: 6,
        size: 128,
    })
}

/// Finds the test files folder of the pydicom package that python3 imports.
fn pydicom_test_files() -> anyhow::Result<PathBuf> {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), 'data', 'test_files'))",
        ])
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        _ => anyhow::bail!(
            "pydicom is not installed for python3; run `pip install pydicom` or pass --corpus DIR"
        ),
    };
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    anyhow::ensure!(
        path.is_dir(),
        "pydicom test files not found at {}",
        path.display()
    );
    Ok(path)
}

/// Retrieves each instance and checks that its bytes hash to one of the
/// source files stored under its SOP Instance UID. pydicom ships several
/// encodings of one data set under one UID; the archive keeps the file that
/// arrived first and accepts the others as already stored, so which one
/// comes back depends on the order of the parallel stores.
async fn verify_all(
    cluster: &ClusterAddr,
    instances: &[(String, String, String)],
) -> anyhow::Result<usize> {
    let mut sources: HashMap<&str, Vec<String>> = HashMap::new();
    for (path, sop_uid, _) in instances {
        let source = hex::encode(Sha256::digest(std::fs::read(path)?));
        sources.entry(sop_uid.as_str()).or_default().push(source);
    }

    let scratch = tempfile::tempdir()?;
    let mut identical = 0;
    for (path, sop_uid, blob_id) in instances {
        let request = RetrieveRequest {
            header: None,
            study_instance_uid: String::new(),
            series_instance_uid: String::new(),
            sop_instance_uid: sop_uid.clone(),
        };
        let retrieved = crate::get::retrieve_to(cluster, request, scratch.path()).await?;
        let source = hex::encode(Sha256::digest(std::fs::read(path)?));
        let matches = retrieved.len() == 1
            && &retrieved[0].sop_instance_uid == sop_uid
            && sources[sop_uid.as_str()].contains(&retrieved[0].sha256)
            && &source == blob_id;
        if matches {
            identical += 1;
        } else {
            println!("  MISMATCH {path} ({sop_uid})");
        }
        std::fs::remove_file(&retrieved[0].path).ok();
    }
    Ok(identical)
}

async fn count_studies(cluster: &ClusterAddr) -> anyhow::Result<u64> {
    let request = QueryRequest {
        level: QueryLevel::Study as i32,
        ..QueryRequest::default()
    };
    let response = cluster.archive().await?.query(request).await?.into_inner();
    Ok(response.total)
}

async fn print_status(cluster: &ClusterAddr) -> anyhow::Result<()> {
    let status = ClusterClient::new(cluster.connect().await?)
        .status(StatusRequest {})
        .await?
        .into_inner();
    cluster::print_status(&status);
    Ok(())
}

/// Waits until `node` has applied the leader's log and no blob lacks a copy.
async fn wait_caught_up(cluster: &ClusterAddr, node: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = ClusterClient::new(cluster.connect().await?)
            .status(StatusRequest {})
            .await?
            .into_inner();
        let target = status.nodes.iter().find(|n| n.node_id == node);
        let applied = target.is_some_and(|n| n.reachable && n.last_applied >= status.last_applied);
        if applied && status.under_replicated_blobs == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("node {node} did not catch up within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes one line per rejected file: its path, a tab, the reason.
fn write_rejections(path: &Path, summary: &StoreSummary) -> anyhow::Result<()> {
    let lines: String = summary
        .rejected
        .iter()
        .map(|(file, reason)| format!("{file}\t{reason}\n"))
        .collect();
    std::fs::write(path, lines)
        .with_context(|| format!("failed to write the rejection list {}", path.display()))
}

fn print_summary(f: &Figures) {
    let s = &f.first_store;
    println!("\n================ summary ================");
    println!("files offered            {}", f.files);
    println!(
        "stored                   {} instances, {:.1} MB in {:.1} s ({} already stored)",
        s.stored,
        s.bytes as f64 / 1e6,
        s.seconds,
        s.already_stored
    );
    println!(
        "rejected                 {} files, each with a reason (rejected.tsv)",
        s.rejected.len()
    );
    println!("byte-identical, 3 nodes  {}", f.verified_before);
    println!(
        "killed                   node {} (the leader) with SIGKILL",
        f.killed_node
    );
    println!(
        "first write after kill   {:.2} s",
        f.write_gap.as_secs_f64()
    );
    println!("byte-identical, 2 nodes  {}", f.verified_during);
    println!("stored while down        {}", f.stored_during);
    println!(
        "caught up after restart  {:.1} s",
        f.caught_up_after.as_secs_f64()
    );
    println!("byte-identical via it    {}", f.verified_after);
    println!("=========================================");
}
