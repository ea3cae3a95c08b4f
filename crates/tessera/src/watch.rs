//! `tessera watch`: follow the change feed.

use clap::Args;
use futures::StreamExt;
use tessera_proto::v1::{event::Body, WatchRequest};

use crate::client::ClusterAddr;

#[derive(Args)]
pub struct WatchArgs {
    /// First log index to print.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Print each event as JSON-like debug output instead of one line.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    cluster: ClusterAddr,
}

pub async fn run(args: WatchArgs) -> anyhow::Result<std::process::ExitCode> {
    let request = WatchRequest {
        from_index: args.from,
    };
    let mut stream = args
        .cluster
        .archive()
        .await?
        .watch(request)
        .await?
        .into_inner();
    while let Some(entry) = stream.next().await {
        let entry = entry?;
        let Some(event) = entry.event else {
            println!("{:>8}  (undecodable event)", entry.index);
            continue;
        };
        if args.verbose {
            println!("{:>8}  {event:?}", entry.index);
            continue;
        }
        println!(
            "{:>8}  {}  {}",
            entry.index,
            event.accepted_at_ms,
            describe(event.body)
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Formats one line per event, with UIDs but no patient data.
fn describe(body: Option<Body>) -> String {
    match body {
        Some(Body::InstanceStored(e)) => {
            let a = e.attributes.unwrap_or_default();
            format!(
                "InstanceStored study={} series={} instance={} size={} replicas={:?}",
                a.study_instance_uid, a.series_instance_uid, a.sop_instance_uid, e.size, e.replicas
            )
        }
        Some(Body::ReplicaAdded(e)) => format!(
            "ReplicaAdded blob={} node={}",
            hex::encode(e.blob_id),
            e.node_id
        ),
        Some(Body::ReplicaRemoved(e)) => {
            format!(
                "ReplicaRemoved blob={} node={}",
                hex::encode(e.blob_id),
                e.node_id
            )
        }
        Some(other) => format!("{other:?}"),
        None => "(empty event)".into(),
    }
}
