//! Starts a node's gRPC and HTTP servers and its background upkeep.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_stream::StreamExt;

use tessera_proto::internal::v1::peer_server::PeerServer;
use tessera_proto::v1::archive_server::ArchiveServer;
use tessera_proto::v1::cluster_server::ClusterServer;

use crate::archive_service::ArchiveService;
use crate::cluster_service::ClusterService;
use crate::node::Node;
use crate::peer_service::PeerService;
use crate::peers::MAX_MESSAGE_BYTES;
use crate::{NodeConfig, NodeError};

/// Runs a node until `shutdown` completes.
pub async fn serve(
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    let node = Node::start(config).await?;
    let grpc_addr = parse_addr("grpc_listen", &node.config.grpc_listen)?;
    let http_addr = parse_addr("http_listen", &node.config.http_listen)?;

    let grpc = tokio::net::TcpListener::bind(grpc_addr)
        .await
        .map_err(|source| bind_error(grpc_addr, source))?;
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|source| bind_error(http_addr, source))?;
    tracing::info!(node_id = node.id(), %grpc_addr, %http_addr, "listening");

    node.spawn_upkeep();
    crate::dimse::spawn_listener(node.clone()).await?;
    let router = crate::http::router(node.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(http, router).await {
            tracing::error!(%error, "http server stopped");
        }
    });

    // Each accepted connection needs TCP_NODELAY itself: the server builder's
    // setting covers only listeners it binds, and Nagle's algorithm would add
    // up to 40 ms to every small message.
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc).map(|stream| {
        let stream = stream?;
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>(stream)
    });
    let result = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(archive_server(&node))
        .add_service(ClusterServer::new(ClusterService { node: node.clone() }))
        .add_service(
            PeerServer::new(PeerService { node: node.clone() })
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;

    tracing::info!(node_id = node.id(), "shutting down");
    let _ = node.raft.shutdown().await;
    result.map_err(|e| NodeError::Raft {
        operation: "serve",
        reason: e.to_string(),
    })
}

fn archive_server(node: &Arc<Node>) -> ArchiveServer<ArchiveService> {
    ArchiveServer::new(ArchiveService { node: node.clone() })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn parse_addr(setting: &str, value: &str) -> Result<SocketAddr, NodeError> {
    value.parse().map_err(|_| NodeError::InvalidConfig {
        setting: setting.to_string(),
        reason: format!("{value:?} is not an IP:port address"),
    })
}

fn bind_error(addr: SocketAddr, source: std::io::Error) -> NodeError {
    NodeError::Bind {
        addr: addr.to_string(),
        source,
    }
}
