//! HTTP endpoints for operators: Prometheus metrics, health and readiness.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use prometheus::Encoder;

use crate::node::Node;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(node.clone())
        .nest(crate::web::PREFIX, crate::web::router(node))
}

async fn metrics(State(node): State<Arc<Node>>) -> (StatusCode, String) {
    refresh_gauges(&node);
    let mut buffer = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode(&node.metrics.registry.gather(), &mut buffer) {
        Ok(()) => (
            StatusCode::OK,
            String::from_utf8_lossy(&buffer).into_owned(),
        ),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

fn refresh_gauges(node: &Node) {
    let raft = node.raft.metrics().borrow().clone();
    let m = &node.metrics;
    m.raft_term.set(raft.current_term as i64);
    m.raft_last_log_index
        .set(raft.last_log_index.unwrap_or(0) as i64);
    m.raft_last_applied
        .set(raft.last_applied.map(|id| id.index).unwrap_or(0) as i64);
    m.raft_is_leader
        .set(i64::from(raft.current_leader == Some(node.id())));
    if let Ok(stats) = node.blobs.stats() {
        m.local_blobs.set(stats.blobs as i64);
        m.local_blob_bytes.set(stats.bytes as i64);
    }
}

/// Alive: the process serves HTTP.
async fn health() -> &'static str {
    "ok\n"
}

/// Ready: the node is in a cluster that has a leader, so it can serve writes.
async fn ready(State(node): State<Arc<Node>>) -> (StatusCode, String) {
    match node.leader() {
        Some(leader) => (StatusCode::OK, format!("ready; leader is node {leader}\n")),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no leader known (cluster not initialised, or no quorum)\n".into(),
        ),
    }
}
