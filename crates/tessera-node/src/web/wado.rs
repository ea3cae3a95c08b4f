//! WADO-RS (PS3.18 section 10.4): studies, series and instances as
//! `multipart/related; type="application/dicom"`, bulk data and frames.
//! Metadata and rendered resources have their own modules.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use bytes::Bytes;
use dicom_core::Tag;
use dicom_object::DefaultDicomObject;
use tessera_catalog::StoredInstance;
use tessera_web_parse::{parse_accept, AcceptEntry};
use tokio::sync::OwnedSemaphorePermit;

use super::frames::{self, FrameEncoding};
use super::instance::{self, Selection};
use super::json;
use super::multipart_body::{BodySender, Multipart};
use super::WebError;
use crate::node::Node;

pub async fn study(
    State(node): State<Arc<Node>>,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let selection = Selection {
        study,
        ..Selection::default()
    };
    retrieve(node, selection, &headers).await
}

pub async fn series(
    State(node): State<Arc<Node>>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let selection = Selection {
        study,
        series: Some(series),
        instance: None,
    };
    retrieve(node, selection, &headers).await
}

pub async fn instance(
    State(node): State<Arc<Node>>,
    Path((study, series, instance)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let selection = Selection {
        study,
        series: Some(series),
        instance: Some(instance),
    };
    retrieve(node, selection, &headers).await
}

/// Returns the transfer syntax a client accepts for instances: None for any
/// (the `*` parameter, or no parameter), else one UID.
///
/// NOTE: PS3.18 makes Explicit VR Little Endian the default when the
/// parameter is absent; Tessera has no transcoder, so it sends the stored
/// syntax then, as it does for `*`.
fn negotiate_instances(headers: &HeaderMap) -> Result<Option<String>, WebError> {
    let entries = accept_entries(headers)?;
    for entry in &entries {
        let media = &entry.media_type;
        if entry.quality <= 0.0 || !media.covers("multipart", "related") {
            continue;
        }
        let root = media.parameter("type").unwrap_or("application/dicom");
        if root != "application/dicom" && root != "*/*" {
            continue;
        }
        return Ok(match media.parameter("transfer-syntax") {
            None | Some("*") => None,
            Some(uid) => Some(uid.to_string()),
        });
    }
    Err(WebError::NotAcceptable {
        reason: "instances are sent as multipart/related; type=\"application/dicom\"".into(),
    })
}

pub(super) fn accept_entries(headers: &HeaderMap) -> Result<Vec<AcceptEntry>, WebError> {
    let accept = headers
        .get(header::ACCEPT)
        .map(|value| value.to_str().unwrap_or(""))
        .unwrap_or("");
    Ok(parse_accept(accept)?)
}

async fn retrieve(
    node: Arc<Node>,
    selection: Selection,
    headers: &HeaderMap,
) -> Result<Response, WebError> {
    let syntax = negotiate_instances(headers)?;
    node.read_barrier().await?;
    let instances = instance::select(&node, &selection)?;
    if let Some(requested) = &syntax {
        check_stored_syntax(&instances, requested)?;
    }

    let multipart = Multipart::new();
    let extra = syntax
        .as_ref()
        .map(|uid| format!("; transfer-syntax={uid}"))
        .unwrap_or_default();
    let (response, sender) = multipart.response("application/dicom", &extra);
    tokio::spawn(async move { send_instances(node, instances, multipart, sender).await });
    Ok(response)
}

/// Tessera cannot transcode, so a specific transfer syntax is served only
/// when every selected instance is stored in it.
fn check_stored_syntax(instances: &[StoredInstance], requested: &str) -> Result<(), WebError> {
    for stored in instances {
        let attributes = instance::attributes(stored);
        if attributes.transfer_syntax_uid != requested {
            return Err(WebError::NotAcceptable {
                reason: format!(
                    "instance {} is stored as {}, and transcoding to {requested} is not supported; \
                     ask for transfer-syntax=* or {}",
                    attributes.sop_instance_uid,
                    attributes.transfer_syntax_uid,
                    attributes.transfer_syntax_uid
                ),
            });
        }
    }
    Ok(())
}

async fn send_instances(
    node: Arc<Node>,
    instances: Vec<StoredInstance>,
    multipart: Multipart,
    sender: BodySender,
) {
    for stored in instances {
        let attributes = instance::attributes(&stored);
        let content_type = format!(
            "application/dicom; transfer-syntax={}",
            attributes.transfer_syntax_uid
        );
        if sender
            .send(Ok(multipart.part_head(&content_type, None)))
            .await
            .is_err()
        {
            return;
        }
        let mut chunks = instance::stream(&node, &stored);
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.map_err(|error| {
                tracing::warn!(instance = %attributes.sop_instance_uid, %error, "wado-rs retrieve failed mid-stream");
                std::io::Error::other(error.to_string())
            });
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                return;
            }
        }
        node.metrics.retrieved_bytes.inc_by(stored.stored.size);
    }
    let _ = sender.send(Ok(multipart.close())).await;
}

/// Loads and parses one instance named by a request path. The permit keeps
/// the instance's share of the node's memory budget while the object lives.
pub(super) async fn load(
    node: &Arc<Node>,
    (study, series, instance): (String, String, String),
) -> Result<(StoredInstance, DefaultDicomObject, OwnedSemaphorePermit), WebError> {
    node.read_barrier().await?;
    let selection = Selection {
        study,
        series: Some(series),
        instance: Some(instance.clone()),
    };
    let stored = instance::select(node, &selection)?.remove(0);
    let whole = instance::read_all(node, &stored).await?;
    let object = instance::parse(&instance, &whole.bytes)?;
    Ok((stored, object, whole.permit))
}

pub async fn bulkdata(
    State(node): State<Arc<Node>>,
    Path((study, series, instance, tag)): Path<(String, String, String, String)>,
) -> Result<Response, WebError> {
    let tag = parse_tag(&tag)?;
    let uid = instance.clone();
    let (_, object, _permit) = load(&node, (study, series, instance)).await?;

    let element = object.element(tag).map_err(|_| WebError::NotFound {
        what: "bulk data attribute",
        uid: format!("{}/{}", uid, json::tag_key(tag)),
    })?;
    let parts = frames::element_parts(&object, element)
        .map_err(|reason| WebError::Unreadable { uid, reason })?;
    Ok(multipart_parts(parts))
}

fn parse_tag(text: &str) -> Result<Tag, WebError> {
    let invalid = || WebError::InvalidPath {
        what: "tag",
        value: text.to_string(),
        reason: "expected eight hex digits such as 7FE00010".into(),
    };
    if text.len() != 8 {
        return Err(invalid());
    }
    let group = u16::from_str_radix(&text[..4], 16).map_err(|_| invalid())?;
    let element = u16::from_str_radix(&text[4..], 16).map_err(|_| invalid())?;
    Ok(Tag(group, element))
}

/// Sends already extracted parts, each with its media type, as one body.
fn multipart_parts(parts: Vec<(String, Vec<u8>)>) -> Response {
    let multipart = Multipart::new();
    let root = parts
        .first()
        .map(|(media, _)| media.split(';').next().unwrap_or("").to_string())
        .unwrap_or_else(|| "application/octet-stream".into());
    let (response, sender) = multipart.response(&root, "");
    tokio::spawn(async move {
        for (media, data) in parts {
            if sender
                .send(Ok(multipart.part_head(&media, None)))
                .await
                .is_err()
            {
                return;
            }
            if sender.send(Ok(Bytes::from(data))).await.is_err() {
                return;
            }
        }
        let _ = sender.send(Ok(multipart.close())).await;
    });
    response
}

pub async fn frames(
    State(node): State<Arc<Node>>,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let numbers = parse_frame_list(&list)?;
    let uid = instance.clone();
    let (stored, object, _permit) = load(&node, (study, series, instance)).await?;
    let syntax = instance::attributes(&stored).transfer_syntax_uid;
    let encoding = FrameEncoding::of(&syntax);
    negotiate_frames(&headers, &encoding)?;

    let all = frames::extract(&object, &encoding).map_err(|reason| WebError::Unreadable {
        uid: uid.clone(),
        reason,
    })?;
    let mut parts = Vec::with_capacity(numbers.len());
    for number in numbers {
        let data = all
            .get(number as usize - 1)
            .ok_or_else(|| WebError::FrameOutOfRange {
                frame: number,
                uid: uid.clone(),
                count: all.len(),
            })?;
        parts.push((encoding.part_type(), data.clone()));
    }
    Ok(multipart_parts(parts))
}

/// Parses `1,3,5`: frame numbers from 1.
pub(super) fn parse_frame_list(text: &str) -> Result<Vec<u32>, WebError> {
    let invalid = || WebError::InvalidPath {
        what: "frame list",
        value: text.to_string(),
        reason: "expected frame numbers from 1, separated by commas".into(),
    };
    let numbers: Vec<u32> = text
        .split(',')
        .map(|n| n.trim().parse::<u32>().map_err(|_| invalid()))
        .collect::<Result<_, _>>()?;
    if numbers.contains(&0) {
        return Err(invalid());
    }
    Ok(numbers)
}

/// Native frames go out as application/octet-stream; compressed ones in
/// their own media type, which a client accepts directly or through
/// `transfer-syntax=*`.
fn negotiate_frames(headers: &HeaderMap, encoding: &FrameEncoding) -> Result<(), WebError> {
    let entries = accept_entries(headers)?;
    for entry in entries.iter().filter(|e| e.quality > 0.0) {
        let media = &entry.media_type;
        if !media.covers("multipart", "related") {
            continue;
        }
        let root = media
            .parameter("type")
            .unwrap_or("application/octet-stream");
        let syntax = media.parameter("transfer-syntax");
        if encoding.accepts(root, syntax) {
            return Ok(());
        }
    }
    Err(WebError::NotAcceptable {
        reason: format!(
            "frames of this instance are sent as multipart/related; type=\"{}\"; \
             Tessera does not transcode frames",
            encoding.media_type()
        ),
    })
}
