//! `tessera store`: send files to the archive over parallel ingest streams.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tessera_proto::v1::{
    ingest_request, IngestBegin, IngestEnd, IngestRequest, IngestResult, IngestStatus,
};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::client::{archive_client, ClusterAddr};

#[derive(Args)]
pub struct StoreArgs {
    /// Files and folders; folders are walked recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    cluster: ClusterAddr,
    /// Ingest streams used at the same time.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Outcome of each file of a batch.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct StoreSummary {
    pub stored: usize,
    pub already_stored: usize,
    pub rejected: Vec<(String, String)>,
    pub unavailable: Vec<(String, String)>,
    pub bytes: u64,
    pub seconds: f64,
    /// SOP Instance UID and blob id of every file that is now in the archive.
    pub instances: Vec<(String, String, String)>,
}

/// Piece size for sending file contents.
const SEND_PIECE: usize = 1024 * 1024;
/// Attempts for an instance the cluster could not take right now.
const ATTEMPTS: u32 = 6;

pub async fn run(args: StoreArgs) -> anyhow::Result<std::process::ExitCode> {
    let files = collect_files(&args.paths)?;
    let summary = store_files(&args.cluster, files, args.parallel, true).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    let clean = summary.rejected.is_empty() && summary.unavailable.is_empty();
    Ok(if clean {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// Lists every regular file under the given paths, in a stable order.
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.exists() {
            anyhow::bail!("{} does not exist", path.display());
        }
        for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
            let entry = entry?;
            if entry.file_type().is_file() {
                files.push(entry.into_path());
            }
        }
    }
    Ok(files)
}

fn counts_line(summary: &StoreSummary) -> String {
    format!(
        "stored {}, already stored {}, rejected {}, unavailable {}; {:.1} MB in {:.1} s",
        summary.stored,
        summary.already_stored,
        summary.rejected.len(),
        summary.unavailable.len(),
        summary.bytes as f64 / 1e6,
        summary.seconds
    )
}

pub fn print_summary(summary: &StoreSummary) {
    println!("{}", counts_line(summary));
    for (path, reason) in &summary.rejected {
        println!("  rejected {path}: {reason}");
    }
    for (path, reason) in &summary.unavailable {
        println!("  not stored {path}: {reason}");
    }
}

/// Counts only, with the first few rejections, for the demo.
pub fn print_summary_brief(summary: &StoreSummary) {
    println!("  {}", counts_line(summary));
    for (path, reason) in summary.rejected.iter().take(8) {
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        println!("  rejected {name}: {reason}");
    }
    if summary.rejected.len() > 8 {
        println!("  ... and {} more rejected", summary.rejected.len() - 8);
    }
}

/// Stores `files` over `parallel` streams, retrying instances the cluster
/// could not take, reconnecting to another node when one goes away.
pub async fn store_files(
    cluster: &ClusterAddr,
    files: Vec<PathBuf>,
    parallel: usize,
    show_progress: bool,
) -> anyhow::Result<StoreSummary> {
    let started = Instant::now();
    let progress = if show_progress {
        ProgressBar::new(files.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} files {per_sec} [{elapsed_precise}] {msg}",
    )?);

    let queue = Arc::new(Mutex::new(files.into_iter().rev().collect::<Vec<_>>()));
    let summary = Arc::new(Mutex::new(StoreSummary::default()));
    let workers = (0..parallel.max(1)).map(|_| {
        let (queue, summary, progress) = (queue.clone(), summary.clone(), progress.clone());
        async move { worker(cluster, queue, summary, progress).await }
    });
    for result in futures::future::join_all(workers).await {
        result?;
    }
    progress.finish_and_clear();

    let mut summary = summary.lock().expect("summary lock").clone();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

async fn worker(
    cluster: &ClusterAddr,
    queue: Arc<Mutex<Vec<PathBuf>>>,
    summary: Arc<Mutex<StoreSummary>>,
    progress: ProgressBar,
) -> anyhow::Result<()> {
    let mut stream: Option<IngestStream> = None;
    loop {
        let Some(path) = queue.lock().expect("queue lock").pop() else {
            return Ok(());
        };
        let result = store_with_retries(cluster, &mut stream, &path).await;
        record(&summary, &path, result);
        progress.inc(1);
    }
}

fn record(summary: &Mutex<StoreSummary>, path: &Path, result: IngestResult) {
    let mut summary = summary.lock().expect("summary lock");
    let label = path.display().to_string();
    match result.status() {
        IngestStatus::Stored => summary.stored += 1,
        IngestStatus::AlreadyStored => summary.already_stored += 1,
        IngestStatus::Rejected => summary.rejected.push((label, result.reason.clone())),
        _ => summary.unavailable.push((label, result.reason.clone())),
    }
    if matches!(
        result.status(),
        IngestStatus::Stored | IngestStatus::AlreadyStored
    ) {
        summary.bytes += result.size;
        summary.instances.push((
            path.display().to_string(),
            result.sop_instance_uid,
            result.blob_id,
        ));
    }
}

/// One open ingest call: requests go in, one result per instance comes out.
struct IngestStream {
    requests: mpsc::Sender<IngestRequest>,
    results: tonic::Streaming<IngestResult>,
}

async fn open_stream(cluster: &ClusterAddr) -> anyhow::Result<IngestStream> {
    let mut client = archive_client(cluster.connect().await?);
    let (requests, receiver) = mpsc::channel(4);
    let response = client
        .ingest(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await?;
    Ok(IngestStream {
        requests,
        results: response.into_inner(),
    })
}

async fn store_with_retries(
    cluster: &ClusterAddr,
    stream: &mut Option<IngestStream>,
    path: &Path,
) -> IngestResult {
    let mut last = IngestResult::default();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
        }
        match send_one(cluster, stream, path).await {
            Ok(result) if result.status() == IngestStatus::Unavailable => last = result,
            Ok(result) => return result,
            Err(error) => {
                *stream = None;
                last = IngestResult {
                    label: path.display().to_string(),
                    status: IngestStatus::Unavailable as i32,
                    reason: format!("{error:#}"),
                    ..IngestResult::default()
                };
            }
        }
    }
    last
}

async fn send_one(
    cluster: &ClusterAddr,
    stream: &mut Option<IngestStream>,
    path: &Path,
) -> anyhow::Result<IngestResult> {
    if stream.is_none() {
        *stream = Some(open_stream(cluster).await?);
    }
    let open = stream.as_mut().expect("opened above");
    let label = path.display().to_string();

    let begin = ingest_request::Part::Begin(IngestBegin {
        label: label.clone(),
        header: None,
    });
    open.requests
        .send(IngestRequest { part: Some(begin) })
        .await?;
    let mut file = tokio::fs::File::open(path).await?;
    let mut buffer = vec![0u8; SEND_PIECE];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        let data = ingest_request::Part::Data(buffer[..n].to_vec().into());
        open.requests
            .send(IngestRequest { part: Some(data) })
            .await?;
    }
    let end = ingest_request::Part::End(IngestEnd {});
    open.requests
        .send(IngestRequest { part: Some(end) })
        .await?;

    match open.results.next().await {
        Some(result) => Ok(result?),
        None => anyhow::bail!("the node closed the ingest stream"),
    }
}
