//! `tessera serve`: one node.

use std::path::PathBuf;

use clap::Args;
use tessera_node::NodeConfig;

#[derive(Args)]
pub struct ServeArgs {
    /// TOML config file; see cluster/tessera.example.toml.
    #[arg(long, short, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "TESSERA_NODE_ID")]
    node_id: Option<u64>,
    /// gRPC listen address (host:port).
    #[arg(long, env = "TESSERA_GRPC_LISTEN")]
    grpc_listen: Option<String>,
    /// Address other nodes and clients use for this node.
    #[arg(long, env = "TESSERA_GRPC_ADVERTISE")]
    grpc_advertise: Option<String>,
    /// Metrics, health and readiness listen address (host:port).
    #[arg(long, env = "TESSERA_HTTP_LISTEN")]
    http_listen: Option<String>,
    #[arg(long, env = "TESSERA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Blob shards (RocksDB instances) on this node; fixed at first start.
    #[arg(long, env = "TESSERA_SHARDS")]
    shards: Option<usize>,
    #[arg(long, env = "TESSERA_SITE")]
    site: Option<String>,
    #[arg(long, env = "TESSERA_ZONE")]
    zone: Option<String>,
    /// Copies of every blob (R).
    #[arg(long, env = "TESSERA_REPLICATION_FACTOR")]
    replication_factor: Option<usize>,
    /// How long a node may be down before its replicas are re-created, e.g. "60s".
    #[arg(long, env = "TESSERA_REPAIR_GRACE", value_parser = humantime::parse_duration)]
    repair_grace: Option<std::time::Duration>,
    /// Raft log entries between snapshots.
    #[arg(long, env = "TESSERA_SNAPSHOT_EVERY")]
    snapshot_every: Option<u64>,
    /// Raft log entries kept behind a snapshot for lagging followers.
    #[arg(long, env = "TESSERA_SNAPSHOT_LOGS_TO_KEEP")]
    snapshot_logs_to_keep: Option<u64>,
    /// OTLP gRPC endpoint for traces, e.g. http://127.0.0.1:4317.
    #[arg(long, env = "TESSERA_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// DICOM listener address (host:port); an empty value turns DIMSE off.
    #[arg(long, env = "TESSERA_DIMSE_LISTEN")]
    dimse_listen: Option<String>,
    /// This node's DICOM AE title, 1 to 16 characters.
    #[arg(long, env = "TESSERA_DIMSE_AE_TITLE")]
    dimse_ae_title: Option<String>,
    /// Time a DICOM peer has to send its A-ASSOCIATE-RQ after connecting, e.g. "30s".
    #[arg(long, env = "TESSERA_DIMSE_ARTIM_TIMEOUT", value_parser = humantime::parse_duration)]
    dimse_artim_timeout: Option<std::time::Duration>,
    /// Time after which an association whose peer neither sends nor reads is aborted, e.g. "5m".
    #[arg(long, env = "TESSERA_DIMSE_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    dimse_idle_timeout: Option<std::time::Duration>,
}

impl ServeArgs {
    /// Defaults, then the file, then environment and flags.
    fn into_config(self) -> anyhow::Result<NodeConfig> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig::default(),
        };
        override_with(&mut config.node_id, self.node_id);
        override_with(&mut config.grpc_listen, self.grpc_listen);
        override_with(&mut config.grpc_advertise, self.grpc_advertise);
        override_with(&mut config.http_listen, self.http_listen);
        override_with(&mut config.data_dir, self.data_dir);
        override_with(&mut config.shards, self.shards);
        override_with(&mut config.site, self.site);
        override_with(&mut config.zone, self.zone);
        override_with(&mut config.replication_factor, self.replication_factor);
        override_with(&mut config.repair_grace, self.repair_grace);
        override_with(&mut config.snapshot_every, self.snapshot_every);
        override_with(
            &mut config.snapshot_logs_to_keep,
            self.snapshot_logs_to_keep,
        );
        override_with(&mut config.otlp_endpoint, self.otlp_endpoint);
        override_with(&mut config.dimse.listen, self.dimse_listen);
        override_with(&mut config.dimse.ae_title, self.dimse_ae_title);
        override_with(&mut config.dimse.artim_timeout, self.dimse_artim_timeout);
        override_with(&mut config.dimse.idle_timeout, self.dimse_idle_timeout);
        config.validate()?;
        Ok(config)
    }
}

fn override_with<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    let config = args.into_config()?;
    let _telemetry = crate::telemetry::init(
        "info,openraft=warn,h2=warn,tower=warn",
        &config.otlp_endpoint,
        config.node_id,
    )?;
    tessera_node::serve(config, shutdown_signal()).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
