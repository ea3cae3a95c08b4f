//! WADO-RS rendered resources (PS3.18 section 10.4.1.1.3 and 9.5): rendered
//! instances and frames, and thumbnails of instances, series and studies.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::instance::{self, Selection};
use super::render::{self, Format, RenderOptions};
use super::wado::{accept_entries, load, parse_frame_list};
use super::WebError;
use crate::node::Node;

/// Size of a thumbnail's longer side when the client gives no viewport.
const THUMBNAIL_SIZE: u32 = 128;

/// Default JPEG quality of rendered images.
const DEFAULT_QUALITY: u8 = 90;

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
    let (_, object, _permit) = load(&node, path).await.map_err(|error| match error {
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
