//! C-STORE SCP: the data set is streamed into the archive's write path and
//! the response is sent only once `Node::store` has decided, so success
//! means the instance is durable.

use dicom_core::VR;
use tessera_dicom::DicomError;
use tessera_proto::v1::{IngestResult, IngestStatus};

use super::association::{Association, Command};
use super::command::{self, status};
use super::part10;
use super::service::Session;
use super::DimseError;
use crate::spool::{IncomingInstance, Spool};

pub async fn handle(
    session: &Session,
    association: &mut Association,
    command: Command,
) -> Result<(), DimseError> {
    let request = &command.set;
    let sop_class = request
        .text(command::AFFECTED_SOP_CLASS_UID)
        .unwrap_or_default();
    let sop_instance = request
        .text(command::AFFECTED_SOP_INSTANCE_UID)
        .unwrap_or_default();
    let transfer_syntax = association
        .context(command.context_id)
        .map(|context| context.transfer_syntax.clone());

    let node = &session.node;
    let mut incoming = IncomingInstance::new(
        node.config.chunk_size.as_u64() as u32,
        &node.config.data_dir.join("spool"),
        node.config.spool_memory_limit.as_u64(),
    );
    let header = part10::file_header(&part10::MetaFields {
        sop_class: &sop_class,
        sop_instance: &sop_instance,
        transfer_syntax: transfer_syntax.as_deref().unwrap_or(""),
        source_ae_title: Some(&session.calling_ae),
    });
    let mut spool_error = incoming.push(&header).err();
    if command::has_data_set(request) {
        loop {
            let (fragment, last) = association.receive_data_fragment().await?;
            node.metrics
                .dimse
                .store_received_bytes
                .inc_by(fragment.len() as u64);
            if spool_error.is_none() {
                spool_error = incoming.push(&fragment).err();
            }
            if last {
                break;
            }
        }
    }

    let (code, comment) = if transfer_syntax.is_none() {
        (
            status::CANNOT_UNDERSTAND,
            format!("no accepted presentation context {}", command.context_id),
        )
    } else if !session.rights.store {
        (
            status::NOT_AUTHORIZED,
            format!("{} may not store instances", session.calling_ae),
        )
    } else if let Some(missing) = missing_affected_uid(&sop_class, &sop_instance) {
        (
            status::CANNOT_UNDERSTAND,
            format!("C-STORE-RQ lacks {missing}"),
        )
    } else if let Some(error) = spool_error {
        tracing::error!(%error, instance = %sop_instance, "failed to spool C-STORE data set");
        (
            status::OUT_OF_RESOURCES,
            "failed to spool the data set; retry later".into(),
        )
    } else {
        store_instance(session, incoming, &sop_class, &sop_instance).await
    };

    let mut response = command::response(request, command::C_STORE_RSP, code, false);
    response.put_text(command::AFFECTED_SOP_INSTANCE_UID, VR::UI, &sop_instance);
    if !comment.is_empty() {
        response = command::with_error_comment(response, &comment);
    }
    association.send(command.context_id, &response, None).await
}

async fn store_instance(
    session: &Session,
    incoming: IncomingInstance,
    sop_class: &str,
    sop_instance: &str,
) -> (u16, String) {
    let (manifest, spool) = match incoming.finish() {
        Ok(finished) => finished,
        Err(error) => {
            tracing::error!(%error, instance = %sop_instance, "failed to spool C-STORE data set");
            return (
                status::OUT_OF_RESOURCES,
                "failed to spool the data set; retry later".into(),
            );
        }
    };
    if let Some(mismatch) = data_set_mismatch(&spool, sop_class, sop_instance) {
        tracing::info!(instance = %sop_instance, %mismatch, "C-STORE rejected");
        return (status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS, mismatch);
    }

    let label = format!("C-STORE from {}", session.calling_ae);
    let actor = tessera_proto::v1::actor::Kind::AeTitle(session.calling_ae.clone());
    let result = session.node.store(actor, label, manifest, spool).await;
    tracing::debug!(instance = %sop_instance, status = result.status, "C-STORE finished");
    status_of(session, &result, sop_instance)
}

/// Names the mandatory UID that a C-STORE-RQ lacks. Without both, the
/// stored file meta group would carry an empty UID.
fn missing_affected_uid(sop_class: &str, sop_instance: &str) -> Option<&'static str> {
    if sop_class.is_empty() {
        return Some("Affected SOP Class UID (0000,0002)");
    }
    if sop_instance.is_empty() {
        return Some("Affected SOP Instance UID (0000,1000)");
    }
    None
}

/// Compares the data set's SOP Class and SOP Instance UIDs with those of
/// the request. A difference gets the storage status 0xA900 (Data Set does
/// not match SOP Class). The file meta group carries the request's UIDs, so
/// the parser reports a differing instance UID as a meta group mismatch. A
/// data set that does not parse for another reason returns None here, and
/// the write path rejects it with that reason.
fn data_set_mismatch(spool: &Spool, sop_class: &str, sop_instance: &str) -> Option<String> {
    let parsed = tessera_dicom::read_index_attributes_with_size(spool.reader(), spool.size());
    let differing_instance = |dataset: &str| {
        format!("SOP Instance UID {dataset} differs from Affected SOP Instance UID {sop_instance}")
    };
    let attributes = match parsed {
        Ok(attributes) => attributes,
        Err(DicomError::SopInstanceUidMismatch { dataset, .. }) => {
            return Some(differing_instance(&dataset))
        }
        Err(_) => return None,
    };

    if attributes.sop_class_uid != sop_class {
        return Some(format!(
            "SOP Class UID {} differs from Affected SOP Class UID {sop_class}",
            attributes.sop_class_uid
        ));
    }
    if attributes.sop_instance_uid != sop_instance {
        return Some(differing_instance(&attributes.sop_instance_uid));
    }
    None
}

/// Maps the write path's outcome to a C-STORE status and Error Comment.
fn status_of(session: &Session, result: &IngestResult, sop_instance: &str) -> (u16, String) {
    match IngestStatus::try_from(result.status).unwrap_or(IngestStatus::Unavailable) {
        IngestStatus::Stored | IngestStatus::AlreadyStored => (status::SUCCESS, String::new()),
        IngestStatus::Unavailable => {
            tracing::warn!(
                reason = %result.reason,
                instance = %sop_instance,
                "C-STORE failed, archive unavailable"
            );
            (
                status::OUT_OF_RESOURCES,
                format!("archive unavailable, retry later: {sop_instance}"),
            )
        }
        _ if is_conflict(session, result, sop_instance) => {
            tracing::info!(
                reason = %result.reason,
                instance = %sop_instance,
                "C-STORE rejected, another data set is stored under this SOP Instance UID"
            );
            (
                status::DUPLICATE_SOP_INSTANCE,
                format!("another data set is already stored for {sop_instance}"),
            )
        }
        _ => {
            tracing::info!(reason = %result.reason, instance = %sop_instance, "C-STORE rejected");
            (status::CANNOT_UNDERSTAND, result.reason.clone())
        }
    }
}

fn is_conflict(session: &Session, result: &IngestResult, sop_instance: &str) -> bool {
    let existing = session.node.catalog.instance(sop_instance).ok().flatten();
    existing.is_some_and(|existing| hex::encode(&existing.stored.blob_id) != result.blob_id)
}
