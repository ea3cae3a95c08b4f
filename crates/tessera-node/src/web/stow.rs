//! STOW-RS (PS3.18 section 10.5): `POST /studies[/{study}]` with a
//! `multipart/related; type="application/dicom"` body.
//!
//! The whole body is read and each part spooled (to disk past the memory
//! budget) before anything is stored, so a malformed body is rejected with
//! 400 and stores nothing. Each valid part then goes through [`Node::store`],
//! which acknowledges only once the instance is durable.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use dicom_core::VR;
use serde_json::{json, Map, Value};
use tessera_blob::Manifest;
use tessera_proto::v1::{IngestResult, IngestStatus};
use tessera_web_parse::{related_boundary, PartReader};

use super::json::{text_attribute, with_values};
use super::spool_budget::{Grant, SpoolBudget};
use super::{base_url, resource_url, WebError};
use crate::node::Node;
use crate::spool::{IncomingInstance, Spool};

/// Failure Reason (0008,1197) values of PS3.18 Table 10.5.3-2 that Tessera sends.
mod failure_reason {
    /// The instance could not be stored for lack of replicas or quorum.
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// The part is not a valid DICOM instance, or belongs to another study.
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
}

/// A part read from the body, ready to store, or why it cannot be.
enum ReceivedPart {
    Spooled(Manifest, Spool, Grant),
    Invalid(String),
}

/// The outcome of one part, as listed in the response.
struct PartOutcome {
    sop_class_uid: String,
    sop_instance_uid: String,
    study_instance_uid: String,
    series_instance_uid: String,
    failure: Option<(u16, String)>,
}

pub async fn store_any(
    State(node): State<Arc<Node>>,
    Extension(budget): Extension<SpoolBudget>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    store(node, &budget, None, headers, body).await
}

pub async fn store_in_study(
    State(node): State<Arc<Node>>,
    Extension(budget): Extension<SpoolBudget>,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    check_study_uid(&study)?;

    store(node, &budget, Some(study), headers, body).await
}

/// Rejects a target study that is not a UID before the body is read, so a
/// client learns of a typo in the URL without uploading every part and
/// getting each one back as a conflict.
fn check_study_uid(study: &str) -> Result<(), WebError> {
    if tessera_dicom::is_valid_uid(study) {
        return Ok(());
    }
    Err(WebError::InvalidPath {
        what: "study UID",
        value: study.to_string(),
        reason: "expected at most 64 digits and dots, as in 1.2.840.113619.2.55".to_string(),
    })
}

async fn store(
    node: Arc<Node>,
    budget: &SpoolBudget,
    study: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .ok_or(WebError::UnsupportedMediaType {
            content_type: String::new(),
            expected: "multipart/related; type=\"application/dicom\"",
        })?;
    let boundary = related_boundary(content_type, "application/dicom")?;

    let parts = receive_parts(&node, budget, body, &boundary).await?;
    let mut outcomes = Vec::with_capacity(parts.len());
    for (number, part) in parts.into_iter().enumerate() {
        outcomes.push(store_part(&node, study.as_deref(), number + 1, part).await);
    }

    let base = base_url(&node, &headers);
    Ok(response(&base, study.as_deref(), &outcomes))
}

/// Reads and spools every part. Parts in memory share the node's spool
/// memory budget with the parts of concurrent requests; a part goes to disk
/// once it outgrows what was free of the budget when it began.
async fn receive_parts(
    node: &Node,
    budget: &SpoolBudget,
    body: Body,
    boundary: &str,
) -> Result<Vec<ReceivedPart>, WebError> {
    let mut reader = PartReader::new(body.into_data_stream(), boundary);
    let mut parts = Vec::new();

    while let Some(mut part) = reader.next_part().await? {
        let content_type = part.content_type()?;
        if let Some(media) = content_type.filter(|m| m.essence() != "application/dicom") {
            // Read past the part here, so its bytes do not count as the
            // next part's headers.
            while part.chunk().await?.is_some() {}
            parts.push(ReceivedPart::Invalid(format!(
                "part {} has content type {}; only application/dicom parts can be stored",
                part.number,
                media.essence()
            )));
            continue;
        }

        let grant = budget.take();
        let mut incoming = IncomingInstance::new(
            node.config.chunk_size.as_u64() as u32,
            &node.config.data_dir.join("spool"),
            grant.bytes(),
        );
        while let Some(chunk) = part.chunk().await? {
            incoming.push(&chunk)?;
        }
        let (manifest, spool) = incoming.finish()?;
        let grant = grant.keep(spool.size());
        parts.push(ReceivedPart::Spooled(manifest, spool, grant));
    }
    Ok(parts)
}

async fn store_part(
    node: &Arc<Node>,
    study: Option<&str>,
    number: usize,
    part: ReceivedPart,
) -> PartOutcome {
    // The grant lives to the end of this function, as long as the spool.
    let (manifest, spool, _grant) = match part {
        ReceivedPart::Spooled(manifest, spool, grant) => (manifest, spool, grant),
        ReceivedPart::Invalid(reason) => return failed_unread(reason),
    };

    let attributes = match tessera_dicom::read_index_attributes_from(spool.reader()) {
        Ok(attributes) => attributes,
        Err(error) => return failed_unread(format!("part {number}: {error}")),
    };
    let mut outcome = PartOutcome {
        sop_class_uid: attributes.sop_class_uid.clone(),
        sop_instance_uid: attributes.sop_instance_uid.clone(),
        study_instance_uid: attributes.study_instance_uid.clone(),
        series_instance_uid: attributes.series_instance_uid.clone(),
        failure: None,
    };
    if let Some(study) = study.filter(|study| *study != attributes.study_instance_uid) {
        let reason = format!(
            "part {number}: instance belongs to study {}, not to the target study {study}",
            attributes.study_instance_uid
        );
        outcome.failure = Some((failure_reason::CANNOT_UNDERSTAND, reason));
        return outcome;
    }

    let actor = tessera_proto::v1::actor::Kind::NodeId(node.id());
    let result = node
        .store(actor, format!("part {number}"), manifest, spool)
        .await;
    outcome.failure = failure_of(&result);
    outcome
}

fn failed_unread(reason: String) -> PartOutcome {
    PartOutcome {
        sop_class_uid: String::new(),
        sop_instance_uid: String::new(),
        study_instance_uid: String::new(),
        series_instance_uid: String::new(),
        failure: Some((failure_reason::CANNOT_UNDERSTAND, reason)),
    }
}

fn failure_of(result: &IngestResult) -> Option<(u16, String)> {
    let reason = format!("{}: {}", result.label, result.reason);
    match result.status() {
        IngestStatus::Stored | IngestStatus::AlreadyStored => None,
        IngestStatus::Unavailable => Some((failure_reason::OUT_OF_RESOURCES, reason)),
        IngestStatus::Rejected | IngestStatus::Unspecified => {
            Some((failure_reason::CANNOT_UNDERSTAND, reason))
        }
    }
}

/// Builds the Store Instances Response Module (PS3.18 Table 10.5.3-1) with
/// the status for full success (200), partial success (202) or failure (409).
///
/// Each failed item carries the reason as text in Error Comment (0000,0902)
/// beside the Failure Reason code, so a client can show what went wrong.
fn response(base: &str, study: Option<&str>, outcomes: &[PartOutcome]) -> Response {
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    for outcome in outcomes {
        match &outcome.failure {
            None => referenced.push(Value::Object(referenced_item(base, outcome))),
            Some((code, reason)) => failed.push(Value::Object(failed_item(outcome, *code, reason))),
        }
    }

    let status = match (referenced.is_empty(), failed.is_empty()) {
        (false, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        (true, _) => StatusCode::CONFLICT,
    };
    tracing::info!(stored = referenced.len(), failed = failed.len(), %status, "stow-rs request done");

    let mut body = Map::new();
    if let Some(study) = study.or_else(|| single_study(outcomes)) {
        let url = resource_url(base, study, None, None);
        text_attribute(&mut body, "RetrieveURL", &url);
    }
    if !failed.is_empty() {
        body.insert("00081198".into(), with_values(VR::SQ, failed));
    }
    if !referenced.is_empty() {
        body.insert("00081199".into(), with_values(VR::SQ, referenced));
    }
    let headers = [(header::CONTENT_TYPE, "application/dicom+json")];
    (status, headers, Value::Object(body).to_string()).into_response()
}

/// Returns the study of every stored instance, when they all belong to one.
fn single_study(outcomes: &[PartOutcome]) -> Option<&str> {
    let mut studies = outcomes
        .iter()
        .filter(|o| o.failure.is_none())
        .map(|o| o.study_instance_uid.as_str());
    let first = studies.next()?;
    studies.all(|s| s == first).then_some(first)
}

fn referenced_item(base: &str, outcome: &PartOutcome) -> Map<String, Value> {
    let mut item = Map::new();
    text_attribute(&mut item, "ReferencedSOPClassUID", &outcome.sop_class_uid);
    text_attribute(
        &mut item,
        "ReferencedSOPInstanceUID",
        &outcome.sop_instance_uid,
    );
    let url = resource_url(
        base,
        &outcome.study_instance_uid,
        Some(&outcome.series_instance_uid),
        Some(&outcome.sop_instance_uid),
    );
    text_attribute(&mut item, "RetrieveURL", &url);
    item
}

fn failed_item(outcome: &PartOutcome, code: u16, reason: &str) -> Map<String, Value> {
    let mut item = Map::new();
    text_attribute(&mut item, "ReferencedSOPClassUID", &outcome.sop_class_uid);
    text_attribute(
        &mut item,
        "ReferencedSOPInstanceUID",
        &outcome.sop_instance_uid,
    );
    item.insert("00081197".into(), json!({ "vr": "US", "Value": [code] }));
    item.insert("00000902".into(), json!({ "vr": "LO", "Value": [reason] }));
    item
}
