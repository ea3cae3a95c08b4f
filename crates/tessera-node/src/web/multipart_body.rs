//! Writing `multipart/related` response bodies part by part, so a study goes
//! out as its blobs' chunks arrive and is never held in memory.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Channel end that a producer task fills with body bytes. An error ends the
/// response abruptly, so the client sees that the body is incomplete.
pub type BodySender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// The delimiters of one multipart body.
pub struct Multipart {
    boundary: String,
}

impl Multipart {
    pub fn new() -> Self {
        Multipart {
            boundary: format!("tessera-{:032x}", rand::random::<u128>()),
        }
    }

    /// Returns the delimiter and headers that open a part.
    pub fn part_head(&self, content_type: &str, location: Option<&str>) -> Bytes {
        let mut head = format!(
            "\r\n--{}\r\nContent-Type: {content_type}\r\n",
            self.boundary
        );
        if let Some(location) = location {
            head.push_str(&format!("Content-Location: {location}\r\n"));
        }
        head.push_str("\r\n");
        Bytes::from(head)
    }

    /// Returns the closing delimiter.
    pub fn close(&self) -> Bytes {
        Bytes::from(format!("\r\n--{}--\r\n", self.boundary))
    }

    /// Starts a streamed 200 response with the type `multipart/related;
    /// type="{root_type}"`; the returned sender feeds its body.
    pub fn response(&self, root_type: &str, extra: &str) -> (Response, BodySender) {
        let (sender, receiver) = mpsc::channel(4);
        let content_type = format!(
            "multipart/related; type=\"{root_type}\"{extra}; boundary={}",
            self.boundary
        );
        let body = Body::from_stream(ReceiverStream::new(receiver));
        let response = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body);
        (response.into_response(), sender)
    }
}
