//! Errors of the DICOMweb endpoints and the HTTP status each one maps to.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_catalog::CatalogError;
use tessera_web_parse::ParseError;

use crate::NodeError;

/// A DICOMweb request that failed. The message names the offending value and
/// is sent to the client as the response body.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Parse(#[from] ParseError),

    #[error("content type {content_type:?} is not supported here; send {expected}")]
    UnsupportedMediaType {
        content_type: String,
        expected: &'static str,
    },

    #[error("none of the accepted media types can be served: {reason}")]
    NotAcceptable { reason: String },

    #[error("{what} {uid} is not in the archive")]
    NotFound { what: &'static str, uid: String },

    #[error("frame {frame} does not exist: instance {uid} has {count} frames, numbered from 1")]
    FrameOutOfRange {
        frame: u32,
        uid: String,
        count: usize,
    },

    #[error("invalid {what} {value:?}: {reason}")]
    InvalidPath {
        what: &'static str,
        value: String,
        reason: String,
    },

    #[error("invalid query: {0}")]
    Query(CatalogError),

    #[error("instance {uid} cannot be read as DICOM: {reason}")]
    Unreadable { uid: String, reason: String },

    #[error("instance {uid} cannot be rendered: {reason}")]
    Unrenderable { uid: String, reason: String },

    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<CatalogError> for WebError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Query { .. } | CatalogError::UnsupportedKey { .. } => {
                WebError::Query(error)
            }
            other => WebError::Node(NodeError::from(other)),
        }
    }
}

impl WebError {
    /// Returns the HTTP status PS3.18 gives for this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Parse(
                ParseError::NotMultipartRelated { .. } | ParseError::RootType { .. },
            ) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebError::Parse(_) | WebError::InvalidPath { .. } | WebError::Query(_) => {
                StatusCode::BAD_REQUEST
            }
            WebError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebError::NotAcceptable { .. } | WebError::Unrenderable { .. } => {
                StatusCode::NOT_ACCEPTABLE
            }
            WebError::NotFound { .. } | WebError::FrameOutOfRange { .. } => StatusCode::NOT_FOUND,
            WebError::Unreadable { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Node(NodeError::NotFound { .. }) => StatusCode::NOT_FOUND,
            WebError::Node(error) if error.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Node(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, %status, "dicomweb request failed");
        } else {
            tracing::debug!(error = %self, %status, "dicomweb request rejected");
        }
        let body = format!("{self}\n");
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}
