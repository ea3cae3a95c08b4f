//! Connecting client commands to a cluster.

use std::time::Duration;

use clap::Args;
use tessera_proto::v1::archive_client::ArchiveClient;
use tessera_proto::v1::cluster_client::ClusterClient;
use tonic::transport::{Channel, Endpoint};

/// Node addresses that client commands connect to.
#[derive(Args, Clone, Debug)]
pub struct ClusterAddr {
    /// Node gRPC addresses (host:port), comma-separated. The first that
    /// accepts a connection is used.
    #[arg(
        long,
        env = "TESSERA_ADDR",
        default_value = "127.0.0.1:7401",
        value_delimiter = ','
    )]
    pub addr: Vec<String>,
}

impl ClusterAddr {
    /// Connects to the first node that accepts a connection.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        let mut failures = Vec::new();
        for addr in &self.addr {
            match connect_one(addr).await {
                Ok(channel) => return Ok(channel),
                Err(error) => failures.push(format!("{addr}: {error}")),
            }
        }
        anyhow::bail!(
            "no node responded ({}); start one with `tessera cluster local` or set --addr/TESSERA_ADDR",
            failures.join("; ")
        )
    }

    pub async fn archive(&self) -> anyhow::Result<ArchiveClient<Channel>> {
        Ok(archive_client(self.connect().await?))
    }

    pub async fn cluster(&self) -> anyhow::Result<ClusterClient<Channel>> {
        Ok(ClusterClient::new(self.connect().await?))
    }
}

pub async fn connect_one(addr: &str) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    Ok(endpoint.connect().await?)
}

pub fn archive_client(channel: Channel) -> ArchiveClient<Channel> {
    ArchiveClient::new(channel)
        .max_decoding_message_size(tessera_node::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(tessera_node::MAX_MESSAGE_BYTES)
}
