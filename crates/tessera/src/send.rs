//! `tessera send`: push a study, series or instance from the archive to
//! any DICOM peer with C-STORE, each instance exactly as stored.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use tessera_node::dimse::{header_length, status, StoreScu};
use tessera_proto::v1::RetrieveRequest;

use crate::client::ClusterAddr;

#[derive(Args)]
pub struct SendArgs {
    #[arg(long)]
    study: Option<String>,
    #[arg(long)]
    series: Option<String>,
    #[arg(long)]
    instance: Option<String>,
    /// The receiving peer as AE@HOST:PORT, e.g. PACS@10.0.0.5:104.
    #[arg(long)]
    to: String,
    /// Calling AE title of this command.
    #[arg(long, default_value = "TESSERA_SEND")]
    calling_ae: String,
    /// Maximum PDU length announced to the peer, in bytes.
    #[arg(long, default_value_t = 65_536)]
    max_pdu: u32,
    #[command(flatten)]
    cluster: ClusterAddr,
}

/// One instance ready to send: its UIDs, transfer syntax and Part 10 bytes.
struct Outgoing {
    sop_class: String,
    sop_instance: String,
    transfer_syntax: String,
    file: Vec<u8>,
}

pub async fn run(args: SendArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.study.is_none() && args.instance.is_none() {
        anyhow::bail!("give --study (optionally with --series) or --instance");
    }
    let (called_ae, addr) = args
        .to
        .split_once('@')
        .ok_or_else(|| anyhow::anyhow!("invalid --to {:?}: expected AE@HOST:PORT", args.to))?;

    let folder = tempfile::tempdir()?;
    let request = RetrieveRequest {
        header: None,
        study_instance_uid: args.study.clone().unwrap_or_default(),
        series_instance_uid: args.series.clone().unwrap_or_default(),
        sop_instance_uid: args.instance.clone().unwrap_or_default(),
    };
    let files = crate::get::retrieve_to(&args.cluster, request, folder.path()).await?;
    let outgoing = files
        .iter()
        .map(|file| read_outgoing(&file.path))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let pairs: Vec<(String, String)> = outgoing
        .iter()
        .map(|o| (o.sop_class.clone(), o.transfer_syntax.clone()))
        .collect();
    let timeout = Duration::from_secs(30);
    // One association carries at most 128 presentation contexts, so many
    // SOP classes go over several associations in turn.
    let mut failed = 0;
    for batch in StoreScu::plan(&pairs) {
        let members: Vec<&Outgoing> = outgoing
            .iter()
            .filter(|o| batch.contains(&(o.sop_class.clone(), o.transfer_syntax.clone())))
            .collect();
        let mut scu = StoreScu::connect(
            addr,
            &args.calling_ae,
            called_ae,
            &batch,
            args.max_pdu,
            timeout,
        )
        .await?;
        failed += send_all(&mut scu, &members).await?;
        scu.release().await?;
    }

    println!(
        "sent {} of {} instances to {}",
        outgoing.len() - failed,
        outgoing.len(),
        args.to
    );
    Ok(if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

async fn send_all(scu: &mut StoreScu, outgoing: &[&Outgoing]) -> anyhow::Result<usize> {
    let mut failed = 0;
    for instance in outgoing {
        let header = match header_length(&instance.file) {
            Some(Ok(length)) => length,
            _ => anyhow::bail!("instance {} is not a Part 10 file", instance.sop_instance),
        };
        let code = if scu
            .context_for(&instance.sop_class, &instance.transfer_syntax)
            .is_some()
        {
            scu.store_bytes(
                &instance.sop_class,
                &instance.sop_instance,
                &instance.transfer_syntax,
                &instance.file[header..],
            )
            .await?
        } else {
            status::NO_SUCH_SOP_CLASS
        };
        if code != status::SUCCESS {
            failed += 1;
            eprintln!("{}: C-STORE status 0x{code:04X}", instance.sop_instance);
        }
    }
    Ok(failed)
}

fn read_outgoing(path: &Path) -> anyhow::Result<Outgoing> {
    let file = std::fs::read(path)?;
    let attributes = tessera_dicom::read_index_attributes(&file)?;
    Ok(Outgoing {
        sop_class: attributes.sop_class_uid,
        sop_instance: attributes.sop_instance_uid,
        transfer_syntax: attributes.transfer_syntax_uid,
        file,
    })
}
