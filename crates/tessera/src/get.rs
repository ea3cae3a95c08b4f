//! `tessera get`: retrieve instances as Part 10 files.

use std::path::{Path, PathBuf};

use clap::Args;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tessera_proto::v1::{retrieve_response, RetrieveRequest, RetrievedInstance};
use tokio::io::AsyncWriteExt;

use crate::client::ClusterAddr;

#[derive(Args)]
pub struct GetArgs {
    #[arg(long)]
    study: Option<String>,
    #[arg(long)]
    series: Option<String>,
    #[arg(long)]
    instance: Option<String>,
    /// Folder for the files, laid out as STUDY/SERIES/SOP.dcm.
    #[arg(long, short, default_value = ".")]
    out: PathBuf,
    #[command(flatten)]
    cluster: ClusterAddr,
}

/// One retrieved file and the SHA-256 of its bytes.
pub struct Retrieved {
    pub path: PathBuf,
    pub sop_instance_uid: String,
    pub sha256: String,
    pub size: u64,
}

pub async fn run(args: GetArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.study.is_none() && args.instance.is_none() {
        anyhow::bail!("give --study (optionally with --series) or --instance");
    }
    let request = RetrieveRequest {
        header: None,
        study_instance_uid: args.study.unwrap_or_default(),
        series_instance_uid: args.series.unwrap_or_default(),
        sop_instance_uid: args.instance.unwrap_or_default(),
    };
    let files = retrieve_to(&args.cluster, request, &args.out).await?;
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    println!(
        "wrote {} files, {} bytes, under {}",
        files.len(),
        bytes,
        args.out.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Streams a retrieve into files under `out`, hashing as it writes.
pub async fn retrieve_to(
    cluster: &ClusterAddr,
    request: RetrieveRequest,
    out: &Path,
) -> anyhow::Result<Vec<Retrieved>> {
    let mut stream = cluster
        .archive()
        .await?
        .retrieve(request)
        .await?
        .into_inner();
    let mut files = Vec::new();
    let mut current: Option<(RetrievedInstance, tokio::fs::File, Sha256, u64, PathBuf)> = None;

    while let Some(message) = stream.next().await {
        match message?.part {
            Some(retrieve_response::Part::Instance(instance)) => {
                if let Some(open) = current.take() {
                    files.push(close(open).await?);
                }
                let path = out
                    .join(&instance.study_instance_uid)
                    .join(&instance.series_instance_uid)
                    .join(format!("{}.dcm", instance.sop_instance_uid));
                tokio::fs::create_dir_all(path.parent().expect("has a parent")).await?;
                let file = tokio::fs::File::create(&path).await?;
                current = Some((instance, file, Sha256::new(), 0, path));
            }
            Some(retrieve_response::Part::Data(data)) => {
                let Some((_, file, hasher, written, _)) = current.as_mut() else {
                    anyhow::bail!("the node sent data before an instance header");
                };
                file.write_all(&data).await?;
                hasher.update(&data);
                *written += data.len() as u64;
            }
            None => {}
        }
    }
    if let Some(open) = current.take() {
        files.push(close(open).await?);
    }
    Ok(files)
}

async fn close(
    (instance, mut file, hasher, written, path): (
        RetrievedInstance,
        tokio::fs::File,
        Sha256,
        u64,
        PathBuf,
    ),
) -> anyhow::Result<Retrieved> {
    file.flush().await?;
    if written != instance.size {
        anyhow::bail!(
            "instance {} ended after {written} of {} bytes",
            instance.sop_instance_uid,
            instance.size
        );
    }
    let sha256 = hex::encode(hasher.finalize());
    if sha256 != instance.blob_id {
        anyhow::bail!(
            "instance {} arrived with SHA-256 {sha256}, expected {}",
            instance.sop_instance_uid,
            instance.blob_id
        );
    }
    Ok(Retrieved {
        path,
        sop_instance_uid: instance.sop_instance_uid,
        sha256,
        size: written,
    })
}
