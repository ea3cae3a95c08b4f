//! The `[web]` section of the node configuration.

use axum::http::{HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Settings of the DICOMweb endpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Origins (`scheme://host:port`) of browser viewers allowed to call the
    /// endpoints from another origin. Empty sends no CORS headers; `*` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// Public URL of the DICOMweb root (ending in `/dicom-web`) used in
    /// RetrieveURL and BulkDataURI values, for nodes behind a proxy. Empty
    /// derives it from the request's Host header.
    pub base_url: String,
}

impl WebConfig {
    /// Builds the CORS layer for the configured origins; None when there are none.
    ///
    /// Origins that are not valid header values are skipped with a warning.
    pub fn cors_layer(&self) -> Option<CorsLayer> {
        if self.cors_allowed_origins.is_empty() {
            return None;
        }
        let origin = if self.cors_allowed_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(self.cors_allowed_origins.iter().filter_map(|origin| {
                let value = HeaderValue::from_str(origin);
                if value.is_err() {
                    tracing::warn!(%origin, "ignoring CORS origin that is not a valid header value");
                }
                value.ok()
            }))
        };
        let layer = CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                HeaderName::from_static("accept"),
                HeaderName::from_static("content-type"),
                HeaderName::from_static("authorization"),
            ])
            .expose_headers([HeaderName::from_static("content-type")]);
        Some(layer)
    }
}
