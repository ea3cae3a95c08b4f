//! DICOMweb (PS3.18) on the node's HTTP listener under `/dicom-web`:
//! STOW-RS stores through [`Node::store`], QIDO-RS queries the catalog behind
//! the read barrier, WADO-RS streams blobs through [`Node::read_blob`].
//!
//! Every node serves the whole archive, so an instance stored through one
//! node is found and retrieved through any other once it is acknowledged.
//! Request parsing lives in `tessera-web-parse`, where it is fuzzed.

mod config;
mod error;
mod frames;
mod instance;
mod json;
mod metadata;
mod multipart_body;
mod qido;
mod render;
mod rendered;
mod spool_budget;
mod stow;
mod wado;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;

use crate::node::Node;
use spool_budget::SpoolBudget;

pub use config::WebConfig;
pub use error::WebError;

/// Path prefix of every DICOMweb resource.
pub const PREFIX: &str = "/dicom-web";

/// Builds the DICOMweb routes, nested under [`PREFIX`] by the caller.
pub fn router(node: Arc<Node>) -> Router {
    let cors = node.config.web.cors_layer();
    let spool_budget = SpoolBudget::new(node.config.spool_memory_limit.as_u64());
    let routes = Router::new()
        .route("/studies", post(stow::store_any).get(qido::studies))
        .route(
            "/studies/{study}",
            post(stow::store_in_study).get(wado::study),
        )
        .route("/series", get(qido::all_series))
        .route("/instances", get(qido::all_instances))
        .route("/studies/{study}/series", get(qido::study_series))
        .route("/studies/{study}/instances", get(qido::study_instances))
        .route(
            "/studies/{study}/series/{series}/instances",
            get(qido::series_instances),
        )
        .route("/studies/{study}/metadata", get(metadata::study_metadata))
        .route("/studies/{study}/series/{series}", get(wado::series))
        .route(
            "/studies/{study}/series/{series}/metadata",
            get(metadata::series_metadata),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}",
            get(wado::instance),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(metadata::instance_metadata),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
            get(wado::bulkdata),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            get(wado::frames),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/rendered",
            get(rendered::rendered_instance),
        )
        .route("/studies/{study}/thumbnail", get(rendered::thumbnail_study))
        .route(
            "/studies/{study}/series/{series}/thumbnail",
            get(rendered::thumbnail_series),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/thumbnail",
            get(rendered::thumbnail_instance),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
            get(rendered::rendered_frame),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail",
            get(rendered::thumbnail_frame),
        )
        // STOW-RS bodies are streamed part by part and spooled, never buffered whole.
        .layer(DefaultBodyLimit::disable())
        .layer(Extension(spool_budget))
        .with_state(node);

    match cors {
        Some(cors) => routes.layer(cors),
        None => routes,
    }
}

/// Returns the public URL of the DICOMweb root for RetrieveURL and
/// BulkDataURI values: the configured `base_url`, else one built from the
/// request's Host header.
pub(crate) fn base_url(node: &Node, headers: &axum::http::HeaderMap) -> String {
    let configured = node.config.web.base_url.trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or(&node.config.http_listen);
    format!("http://{host}{PREFIX}")
}

/// Returns the URL of a study, series or instance resource under `base`.
pub(crate) fn resource_url(
    base: &str,
    study: &str,
    series: Option<&str>,
    instance: Option<&str>,
) -> String {
    let mut url = format!("{base}/studies/{study}");
    if let Some(series) = series {
        url.push_str(&format!("/series/{series}"));
        if let Some(instance) = instance {
            url.push_str(&format!("/instances/{instance}"));
        }
    }
    url
}
