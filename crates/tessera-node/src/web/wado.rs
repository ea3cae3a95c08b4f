//! WADO-RS (PS3.18 section 10.4): instances as `multipart/related;
//! type="application/dicom"`, metadata as `application/dicom+json`, bulk
//! data, frames, and rendered images and thumbnails.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dicom_core::Tag;
use dicom_object::DefaultDicomObject;
use serde_json::Value;
use tessera_catalog::StoredInstance;
use tessera_web_parse::{parse_accept, AcceptEntry};

use super::frames::{self, FrameEncoding};
use super::instance::{self, Selection};
use super::json::{self, text_attribute};
use super::multipart_body::{BodySender, Multipart};
use super::render::{self, Format, RenderOptions};
use super::{base_url, resource_url, WebError};
use crate::node::Node;

/// Size of a thumbnail's longer side when the client gives no viewport.
const THUMBNAIL_SIZE: u32 = 128;

/// Default JPEG quality of rendered images.
const DEFAULT_QUALITY: u8 = 90;

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

fn accept_entries(headers: &HeaderMap) -> Result<Vec<AcceptEntry>, WebError> {
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
    let bytes = instance::read_all(node, stored).await?;
    let uid = &attributes.sop_instance_uid;
    // An instance whose Pixel Data cannot be parsed still has metadata.
    let object = match instance::parse(uid, &bytes) {
        Ok(object) => object,
        Err(error) => {
            tracing::debug!(instance = %uid, %error, "metadata without pixel data");
            instance::parse_header(uid, &bytes)?
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

/// Loads and parses one instance named by a request path.
async fn load(
    node: &Arc<Node>,
    (study, series, instance): (String, String, String),
) -> Result<(StoredInstance, DefaultDicomObject), WebError> {
    node.read_barrier().await?;
    let selection = Selection {
        study,
        series: Some(series),
        instance: Some(instance.clone()),
    };
    let stored = instance::select(node, &selection)?.remove(0);
    let bytes = instance::read_all(node, &stored).await?;
    let object = instance::parse(&instance, &bytes)?;
    Ok((stored, object))
}

pub async fn bulkdata(
    State(node): State<Arc<Node>>,
    Path((study, series, instance, tag)): Path<(String, String, String, String)>,
) -> Result<Response, WebError> {
    let tag = parse_tag(&tag)?;
    let uid = instance.clone();
    let (_, object) = load(&node, (study, series, instance)).await?;

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
    let (stored, object) = load(&node, (study, series, instance)).await?;
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
fn parse_frame_list(text: &str) -> Result<Vec<u32>, WebError> {
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

pub async fn rendered_instance(
    State(node): State<Arc<Node>>,
    Path(path): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    rendered(node, path, 1, query, headers, false).await
}

pub async fn thumbnail_instance(
    State(node): State<Arc<Node>>,
    Path(path): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    rendered(node, path, 1, query, headers, true).await
}

pub async fn thumbnail_study(
    State(node): State<Arc<Node>>,
    Path(study): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let selection = Selection {
        study,
        ..Selection::default()
    };
    let path = representative(&node, &selection).await?;
    rendered(node, path, 1, query, headers, true).await
}

pub async fn thumbnail_series(
    State(node): State<Arc<Node>>,
    Path((study, series)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let selection = Selection {
        study,
        series: Some(series),
        instance: None,
    };
    let path = representative(&node, &selection).await?;
    rendered(node, path, 1, query, headers, true).await
}

/// Picks the instance whose first frame stands for a study or series: the
/// first one in index order that has pixel data (Rows recorded).
async fn representative(
    node: &Arc<Node>,
    selection: &Selection,
) -> Result<(String, String, String), WebError> {
    node.read_barrier().await?;
    let instances = instance::select(node, selection)?;
    let image = instances
        .iter()
        .map(instance::attributes)
        .find(|attributes| attributes.rows > 0)
        .ok_or_else(|| WebError::Unrenderable {
            uid: selection
                .series
                .clone()
                .unwrap_or_else(|| selection.study.clone()),
            reason: "no instance has pixel data".into(),
        })?;
    Ok((
        image.study_instance_uid,
        image.series_instance_uid,
        image.sop_instance_uid,
    ))
}

pub async fn rendered_frame(
    State(node): State<Arc<Node>>,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let frame = single_frame(&list)?;
    rendered(
        node,
        (study, series, instance),
        frame,
        query,
        headers,
        false,
    )
    .await
}

pub async fn thumbnail_frame(
    State(node): State<Arc<Node>>,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let frame = single_frame(&list)?;
    rendered(node, (study, series, instance), frame, query, headers, true).await
}

fn single_frame(list: &str) -> Result<u32, WebError> {
    match parse_frame_list(list)?.as_slice() {
        [frame] => Ok(*frame),
        _ => Err(WebError::InvalidPath {
            what: "frame list",
            value: list.to_string(),
            reason: "a rendered frame takes exactly one frame number".into(),
        }),
    }
}

async fn rendered(
    node: Arc<Node>,
    path: (String, String, String),
    frame: u32,
    query: HashMap<String, String>,
    headers: HeaderMap,
    thumbnail: bool,
) -> Result<Response, WebError> {
    let options = render_options(&query, &headers, thumbnail)?;
    let uid = path.2.clone();
    let (_, object) = load(&node, path).await.map_err(|error| match error {
        WebError::Unreadable { uid, reason } => WebError::Unrenderable { uid, reason },
        other => other,
    })?;

    let image = tokio::task::spawn_blocking(move || {
        render::render(&object, frame - 1, &options).map(|b| (b, options.format))
    })
    .await
    .map_err(|error| WebError::Unrenderable {
        uid: uid.clone(),
        reason: error.to_string(),
    })?;
    let (bytes, format) = image.map_err(|reason| WebError::Unrenderable { uid, reason })?;
    Ok(([(header::CONTENT_TYPE, format.media_type())], bytes).into_response())
}

fn render_options(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    thumbnail: bool,
) -> Result<RenderOptions, WebError> {
    let invalid = |what: &'static str, value: &str, reason: String| WebError::InvalidPath {
        what,
        value: value.to_string(),
        reason,
    };
    let window = match query.get("window") {
        Some(text) => Some(render::parse_window(text).map_err(|r| invalid("window", text, r))?),
        None => None,
    };
    let mut viewport = match query.get("viewport") {
        Some(text) => Some(render::parse_viewport(text).map_err(|r| invalid("viewport", text, r))?),
        None => None,
    };
    if thumbnail && viewport.is_none() {
        viewport = Some((THUMBNAIL_SIZE, THUMBNAIL_SIZE));
    }
    let quality = match query.get("quality") {
        Some(text) => text
            .parse::<u8>()
            .ok()
            .filter(|q| (1..=100).contains(q))
            .ok_or_else(|| invalid("quality", text, "expected an integer from 1 to 100".into()))?,
        None => DEFAULT_QUALITY,
    };

    Ok(RenderOptions {
        format: negotiate_image(headers)?,
        window,
        viewport,
        quality,
    })
}

/// JPEG unless the client prefers PNG; anything else is not offered.
fn negotiate_image(headers: &HeaderMap) -> Result<Format, WebError> {
    let entries = accept_entries(headers)?;
    for entry in entries.iter().filter(|e| e.quality > 0.0) {
        if entry.media_type.covers("image", "jpeg") {
            return Ok(Format::Jpeg);
        }
        if entry.media_type.covers("image", "png") {
            return Ok(Format::Png);
        }
    }
    Err(WebError::NotAcceptable {
        reason: "rendered images are sent as image/jpeg or image/png".into(),
    })
}
