//! WADO-RS metadata (PS3.18 section 10.4.1.1.2): one DICOM JSON data set
//! per instance of a study, series or instance, streamed as a JSON array.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tessera_catalog::StoredInstance;

use super::instance::{self, Selection};
use super::json::{self, text_attribute};
use super::wado::accept_entries;
use super::{base_url, resource_url, WebError};
use crate::node::Node;

pub async fn study_metadata(
    State(node): State<Arc<Node>>,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let selection = Selection {
        study,
        ..Selection::default()
    };
    metadata(node, selection, headers).await
}

pub async fn series_metadata(
    State(node): State<Arc<Node>>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let selection = Selection {
        study,
        series: Some(series),
        instance: None,
    };
    metadata(node, selection, headers).await
}

pub async fn instance_metadata(
    State(node): State<Arc<Node>>,
    Path((study, series, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let selection = Selection {
        study,
        series: Some(series),
        instance: Some(instance),
    };
    metadata(node, selection, headers).await
}

/// Checks that the client accepts DICOM JSON (or plain JSON).
pub fn negotiate_json(headers: &HeaderMap) -> Result<(), WebError> {
    let entries = accept_entries(headers)?;
    let acceptable = entries.iter().any(|entry| {
        let media = &entry.media_type;
        entry.quality > 0.0
            && (media.covers("application", "dicom+json") || media.covers("application", "json"))
    });
    if acceptable {
        Ok(())
    } else {
        Err(WebError::NotAcceptable {
            reason: "metadata and query results are sent as application/dicom+json".into(),
        })
    }
}

/// Streams a JSON array with one data set per instance, parsing one
/// instance at a time.
async fn metadata(
    node: Arc<Node>,
    selection: Selection,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    negotiate_json(&headers)?;
    node.read_barrier().await?;
    let instances = instance::select(&node, &selection)?;
    let base = base_url(&node, &headers);

    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut separator = "[";
        for stored in instances {
            let item = match instance_json(&node, &base, &stored).await {
                Ok(item) => item,
                Err(error) => {
                    tracing::warn!(%error, "wado-rs metadata failed mid-stream");
                    let _ = sender
                        .send(Err(std::io::Error::other(error.to_string())))
                        .await;
                    return;
                }
            };
            let text = format!("{separator}{item}");
            separator = ",";
            if sender.send(Ok(Bytes::from(text))).await.is_err() {
                return;
            }
        }
        let end = if separator == "[" { "[]" } else { "]" };
        let _ = sender.send(Ok(Bytes::from_static(end.as_bytes()))).await;
    });

    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    Ok(([(header::CONTENT_TYPE, "application/dicom+json")], body).into_response())
}

async fn instance_json(
    node: &Arc<Node>,
    base: &str,
    stored: &StoredInstance,
) -> Result<Value, WebError> {
    let attributes = instance::attributes(stored);
    let whole = instance::read_all(node, stored).await?;
    let uid = &attributes.sop_instance_uid;
    // An instance whose Pixel Data cannot be parsed still has metadata.
    let object = match instance::parse(uid, &whole.bytes) {
        Ok(object) => object,
        Err(error) => {
            tracing::debug!(instance = %uid, %error, "metadata without pixel data");
            instance::parse_header(uid, &whole.bytes)?
        }
    };

    let url = resource_url(
        base,
        &attributes.study_instance_uid,
        Some(&attributes.series_instance_uid),
        Some(&attributes.sop_instance_uid),
    );
    let mut map = json::dataset(&object, Some(&format!("{url}/bulkdata")));
    text_attribute(
        &mut map,
        "TransferSyntaxUID",
        &attributes.transfer_syntax_uid,
    );
    text_attribute(&mut map, "RetrieveURL", &url);
    Ok(Value::Object(map))
}
