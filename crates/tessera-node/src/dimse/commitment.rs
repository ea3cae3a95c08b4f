//! Storage Commitment Push Model SCP (PS3.4 annex J).
//!
//! An N-ACTION requests that the archive commit to a list of instances. An
//! instance is committed once it is in the index, because the write path
//! adds it there only after its event is committed by a Raft majority and
//! W replicas of its blob are synced. The result goes back as an
//! N-EVENT-REPORT on the same association, or on a new one to the peer's
//! configured address when the requester releases, aborts or refuses it.
//! A check that fails because the node has no Raft quorum is retried in
//! the background until `dimse.commitment_retry_limit`, and the result is
//! sent once known.

use std::sync::Arc;
use std::time::Duration;

use dicom_core::{Tag, VR};
use tessera_dicom::dimse::{DataSet, Encoding};
use tokio::sync::mpsc;
use tokio::time::Instant;

use dicom_ul::pdu::{PresentationContextProposed, RequestorRoles, UserVariableItem};

use super::association::{Association, Command, Incoming};
use super::command::{self, status};
use super::find::{unavailable, IDENTIFIER_LIMIT};
use super::scu::open_association;
use super::service::Session;
use super::sop_classes as classes;
use super::DimseError;
use crate::node::Node;

const TRANSACTION_UID: Tag = Tag(0x0008, 0x1195);
const REFERENCED_SOP_SEQUENCE: Tag = Tag(0x0008, 0x1199);
const FAILED_SOP_SEQUENCE: Tag = Tag(0x0008, 0x1198);
const REFERENCED_SOP_CLASS_UID: Tag = Tag(0x0008, 0x1150);
const REFERENCED_SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x1155);
const FAILURE_REASON: Tag = Tag(0x0008, 0x1197);

/// Failure Reason: the instance is not in the archive.
const NO_SUCH_OBJECT_INSTANCE: u16 = 0x0112;
/// Failure Reason: the archive could not check the instance.
const PROCESSING_FAILURE: u16 = 0x0110;
/// Failure Reason: the instance is stored under another SOP class.
const CLASS_INSTANCE_CONFLICT: u16 = 0x0119;

/// Event Type ID of a result where every instance is committed.
const ALL_COMMITTED: u16 = 1;
/// Event Type ID of a result with at least one failure.
const SOME_FAILED: u16 = 2;

/// Wait before the first retry of a commitment check that failed for lack
/// of quorum; each further wait doubles up to `MAX_RETRY_DELAY`.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

pub async fn handle(
    session: &Session,
    association: &mut Association,
    command: Command,
) -> Result<(), DimseError> {
    let data = match command::has_data_set(&command.set) {
        true => association.receive_data(IDENTIFIER_LIMIT).await?,
        false => Vec::new(),
    };
    let encoding = association
        .context(command.context_id)
        .and_then(|context| Encoding::of_transfer_syntax(&context.transfer_syntax))
        .unwrap_or(Encoding::ImplicitLittle);
    let request = match check_request(session, &command, &data, encoding) {
        Ok(request) => request,
        Err((code, comment)) => {
            let response = action_response(&command, code);
            let response = command::with_error_comment(response, &comment);
            return association.send(command.context_id, &response, None).await;
        }
    };
    let response = action_response(&command, status::SUCCESS);
    association
        .send(command.context_id, &response, None)
        .await?;

    let (event_type, report) = match commitment_result(&session.node, &request).await {
        Ok(result) => result,
        Err(failure) => {
            let transaction = request.text(TRANSACTION_UID).unwrap_or_default();
            tracing::warn!(
                %transaction,
                comment = %failure.1,
                "storage commitment not checked, retrying in the background"
            );
            let retry = Retry {
                node: session.node.clone(),
                calling_ae: session.calling_ae.clone(),
                outbox: session.outbox.clone(),
                context_id: command.context_id,
                encoding,
            };
            tokio::spawn(retry.run(request));
            return Ok(());
        }
    };
    let pending = PendingReport {
        context_id: command.context_id,
        encoding,
        event_type,
        report,
    };
    deliver(session, association, pending).await
}

/// A commitment result waiting to be sent to the requester.
pub struct PendingReport {
    context_id: u8,
    encoding: Encoding,
    event_type: u16,
    report: DataSet,
}

/// Sends a commitment result on the requester's association. When the
/// requester releases, aborts or refuses it there, the result goes on a new
/// association to the address configured for its AE title.
pub async fn deliver(
    session: &Session,
    association: &mut Association,
    pending: PendingReport,
) -> Result<(), DimseError> {
    let bytes = pending.report.encode(pending.encoding);
    let delivery = send_report(association, pending.context_id, pending.event_type, &bytes).await;
    if matches!(delivery, Ok(Delivery::Delivered)) {
        return Ok(());
    }
    spawn_new_association(session.node.clone(), session.calling_ae.clone(), pending);
    match delivery {
        Ok(Delivery::PeerReleasing) => Err(DimseError::Released {
            peer: association.peer.clone(),
        }),
        Ok(_) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Sends the result on a new association in the background.
pub fn spawn_new_association(node: Arc<Node>, calling_ae: String, pending: PendingReport) {
    tokio::spawn(async move {
        let sent =
            deliver_on_new_association(&node, &calling_ae, pending.event_type, &pending.report)
                .await;
        if let Err(error) = sent {
            tracing::warn!(%error, peer = %calling_ae, "storage commitment result not delivered");
        }
    });
}

/// A commitment request whose check failed for lack of a Raft quorum,
/// retried until `dimse.commitment_retry_limit` has passed.
struct Retry {
    node: Arc<Node>,
    calling_ae: String,
    outbox: mpsc::Sender<PendingReport>,
    context_id: u8,
    encoding: Encoding,
}

impl Retry {
    /// Checks the request again with exponential backoff. At the deadline
    /// every instance is reported as failed (0x0110, processing failure),
    /// so the requester learns that the archive did not commit. The result
    /// goes to the requester's association while it is open, else on a new
    /// association.
    async fn run(self, request: DataSet) {
        let transaction = request.text(TRANSACTION_UID).unwrap_or_default();
        let limit = self.node.config.dimse.commitment_retry_limit;
        let deadline = Instant::now() + limit;
        let mut delay = FIRST_RETRY_DELAY;
        let mut attempt = 1u32;
        let (event_type, report) = loop {
            if Instant::now() + delay > deadline {
                tracing::warn!(
                    %transaction,
                    attempts = attempt,
                    limit = ?limit,
                    "storage commitment not checked before the retry limit; reporting every instance as failed"
                );
                break all_failed(&request);
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
            match commitment_result(&self.node, &request).await {
                Ok(result) => break result,
                Err(failure) => {
                    tracing::info!(
                        %transaction,
                        attempt,
                        next_delay = ?(delay * 2).min(MAX_RETRY_DELAY),
                        comment = %failure.1,
                        "storage commitment retry failed"
                    );
                }
            }
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        };

        let pending = PendingReport {
            context_id: self.context_id,
            encoding: self.encoding,
            event_type,
            report,
        };
        if let Err(closed) = self.outbox.send(pending).await {
            tracing::info!(%transaction, "requester's association closed; sending the result on a new one");
            spawn_new_association(self.node, self.calling_ae, closed.0);
        }
    }
}

/// Builds a result that lists every referenced instance as failed.
fn all_failed(request: &DataSet) -> (u16, DataSet) {
    let failed: Vec<DataSet> = request
        .items(REFERENCED_SOP_SEQUENCE)
        .unwrap_or_default()
        .iter()
        .map(|item| {
            let mut reference = DataSet::default();
            let class = item.text(REFERENCED_SOP_CLASS_UID).unwrap_or_default();
            let instance = item.text(REFERENCED_SOP_INSTANCE_UID).unwrap_or_default();
            reference.put_text(REFERENCED_SOP_CLASS_UID, VR::UI, &class);
            reference.put_text(REFERENCED_SOP_INSTANCE_UID, VR::UI, &instance);
            reference.put_u16(FAILURE_REASON, PROCESSING_FAILURE);
            reference
        })
        .collect();
    let transaction = request.text(TRANSACTION_UID).unwrap_or_default();
    let mut report = DataSet::default();
    report.put_text(TRANSACTION_UID, VR::UI, &transaction);
    if !failed.is_empty() {
        report.put_items(FAILED_SOP_SEQUENCE, failed);
    }
    (SOME_FAILED, report)
}

/// Outcome of offering an N-EVENT-REPORT on the requester's association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Delivered,
    /// The requester responded with a failure status.
    Refused,
    /// The requester sent A-RELEASE-RQ instead of a response.
    PeerReleasing,
}

async fn deliver_on_new_association(
    node: &Node,
    calling_ae: &str,
    event_type: u16,
    report: &DataSet,
) -> Result<(), DimseError> {
    let config = &node.config.dimse;
    let peer = config
        .peer(calling_ae)
        .filter(|peer| peer.port != 0 && !peer.host.is_empty());
    let Some(peer) = peer else {
        return Err(DimseError::NoContext {
            peer: calling_ae.to_string(),
            what: "storage commitment results (no host and port configured)".into(),
        });
    };
    let addr = format!("{}:{}", peer.host, peer.port);
    let proposed = vec![PresentationContextProposed {
        id: 1,
        abstract_syntax: classes::STORAGE_COMMITMENT_PUSH.to_string(),
        transfer_syntaxes: classes::SERVICE_TRANSFER_SYNTAXES
            .iter()
            .map(|ts| ts.to_string())
            .collect(),
    }];
    // This node is the association requester but the Storage Commitment SCP.
    let role = UserVariableItem::ScuScpRoleSelectionSubItem(
        classes::STORAGE_COMMITMENT_PUSH.to_string(),
        RequestorRoles {
            scu: false,
            scp: true,
        },
    );
    let mut association = open_association(
        &addr,
        &config.ae_title,
        peer.ae_title.trim(),
        &proposed,
        vec![role],
        config.max_pdu_length,
        config.artim_timeout,
    )
    .await?;
    let Some(context) = association.contexts.first().cloned() else {
        return Err(DimseError::NoContext {
            peer: association.peer.clone(),
            what: "the Storage Commitment Push Model".into(),
        });
    };
    let encoding =
        Encoding::of_transfer_syntax(&context.transfer_syntax).unwrap_or(Encoding::ImplicitLittle);
    let delivery = send_report(
        &mut association,
        context.id,
        event_type,
        &report.encode(encoding),
    )
    .await?;
    tracing::info!(
        peer = %association.peer,
        ?delivery,
        "storage commitment result sent on a new association"
    );
    association.release(config.artim_timeout).await
}

fn check_request(
    session: &Session,
    command: &Command,
    data: &[u8],
    encoding: Encoding,
) -> Result<DataSet, (u16, String)> {
    if !session.rights.store {
        return Err((
            status::NOT_AUTHORIZED,
            format!("{} may not request commitment", session.calling_ae),
        ));
    }
    if command.set.u16(command::ACTION_TYPE_ID) != Some(1) {
        return Err((
            0x0123,
            "Action Type ID must be 1 (request storage commitment)".into(),
        ));
    }
    let request = DataSet::parse(data, encoding)
        .map_err(|error| (0x0110, format!("invalid action information: {error}")))?;
    if request.text(TRANSACTION_UID).unwrap_or_default().is_empty() {
        return Err((0x0120, "missing Transaction UID".into()));
    }
    Ok(request)
}

fn action_response(command: &Command, code: u16) -> DataSet {
    let mut response = command::response(&command.set, command::N_ACTION_RSP, code, false);
    response.put_text(
        command::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        classes::STORAGE_COMMITMENT_PUSH,
    );
    response.put_text(
        command::AFFECTED_SOP_INSTANCE_UID,
        VR::UI,
        classes::STORAGE_COMMITMENT_PUSH_INSTANCE,
    );
    response.put_u16(command::ACTION_TYPE_ID, 1);
    response
}

/// Checks every referenced instance against the index and builds the
/// event information: committed ones, and failed ones with their reason.
async fn commitment_result(
    node: &Node,
    request: &DataSet,
) -> Result<(u16, DataSet), (u16, String)> {
    node.read_barrier().await.map_err(unavailable)?;
    let mut committed = Vec::new();
    let mut failed = Vec::new();
    for item in request.items(REFERENCED_SOP_SEQUENCE).unwrap_or_default() {
        let class = item.text(REFERENCED_SOP_CLASS_UID).unwrap_or_default();
        let instance = item.text(REFERENCED_SOP_INSTANCE_UID).unwrap_or_default();
        let stored = node.catalog.instance(&instance).ok().flatten();
        let reason = match stored {
            None => Some(NO_SUCH_OBJECT_INSTANCE),
            Some(stored) => {
                let stored_class = stored
                    .stored
                    .attributes
                    .map(|a| a.sop_class_uid)
                    .unwrap_or_default();
                (stored_class != class).then_some(CLASS_INSTANCE_CONFLICT)
            }
        };
        let mut reference = DataSet::default();
        reference.put_text(REFERENCED_SOP_CLASS_UID, VR::UI, &class);
        reference.put_text(REFERENCED_SOP_INSTANCE_UID, VR::UI, &instance);
        match reason {
            None => committed.push(reference),
            Some(reason) => {
                reference.put_u16(FAILURE_REASON, reason);
                failed.push(reference);
            }
        }
    }

    let transaction = request.text(TRANSACTION_UID).unwrap_or_default();
    tracing::info!(
        transaction = %transaction,
        committed = committed.len(),
        failed = failed.len(),
        "storage commitment checked"
    );
    let event_type = if failed.is_empty() {
        ALL_COMMITTED
    } else {
        SOME_FAILED
    };
    let mut report = DataSet::default();
    report.put_text(TRANSACTION_UID, VR::UI, &transaction);
    if !committed.is_empty() {
        report.put_items(REFERENCED_SOP_SEQUENCE, committed);
    }
    if !failed.is_empty() {
        report.put_items(FAILED_SOP_SEQUENCE, failed);
    }
    Ok((event_type, report))
}

/// Sends the N-EVENT-REPORT-RQ and waits for its response.
async fn send_report(
    association: &mut Association,
    context_id: u8,
    event_type: u16,
    report: &[u8],
) -> Result<Delivery, DimseError> {
    // Message IDs of requests this node sends on a requester's association
    // start high, away from the requester's own small numbers.
    let message_id = 0x8000;
    let mut request = DataSet::default();
    request.put_text(
        command::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        classes::STORAGE_COMMITMENT_PUSH,
    );
    request.put_u16(command::COMMAND_FIELD, command::N_EVENT_REPORT_RQ);
    request.put_u16(command::MESSAGE_ID, message_id);
    request.put_u16(command::COMMAND_DATA_SET_TYPE, command::DATA_SET_PRESENT);
    request.put_text(
        command::AFFECTED_SOP_INSTANCE_UID,
        VR::UI,
        classes::STORAGE_COMMITMENT_PUSH_INSTANCE,
    );
    request.put_u16(command::EVENT_TYPE_ID, event_type);
    association.send(context_id, &request, Some(report)).await?;

    let response = match association.receive().await? {
        Incoming::Command(response) => response,
        Incoming::ReleaseRequest => return Ok(Delivery::PeerReleasing),
    };
    if command::has_data_set(&response.set) {
        association.receive_data(IDENTIFIER_LIMIT).await?;
    }
    let field = command::command_field(&response.set);
    if field != Some(command::N_EVENT_REPORT_RSP) {
        return Err(DimseError::Unexpected {
            peer: association.peer.clone(),
            what: format!("command field {field:?} while awaiting an N-EVENT-REPORT-RSP"),
        });
    }
    let code = response.set.u16(command::STATUS);
    tracing::debug!(status = ?code, "storage commitment result delivered");
    if code == Some(status::SUCCESS) {
        Ok(Delivery::Delivered)
    } else {
        Ok(Delivery::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(instances: &[&str]) -> DataSet {
        let items = instances
            .iter()
            .map(|uid| {
                let mut item = DataSet::default();
                item.put_text(
                    REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    "1.2.840.10008.5.1.4.1.1.7",
                );
                item.put_text(REFERENCED_SOP_INSTANCE_UID, VR::UI, uid);
                item
            })
            .collect();
        let mut request = DataSet::default();
        request.put_text(TRANSACTION_UID, VR::UI, "1.2.3.99");
        request.put_items(REFERENCED_SOP_SEQUENCE, items);
        request
    }

    #[test]
    fn deadline_reports_every_instance_failed() {
        let (event_type, report) = all_failed(&request(&["1.2.3.1", "1.2.3.2"]));

        assert_eq!(event_type, SOME_FAILED);
        assert_eq!(report.text(TRANSACTION_UID).as_deref(), Some("1.2.3.99"));
        assert!(report.items(REFERENCED_SOP_SEQUENCE).is_none());
        let failed = report.items(FAILED_SOP_SEQUENCE).expect("failed list");
        let uids: Vec<String> = failed
            .iter()
            .map(|item| item.text(REFERENCED_SOP_INSTANCE_UID).unwrap_or_default())
            .collect();
        assert_eq!(uids, ["1.2.3.1", "1.2.3.2"]);
        for item in failed {
            assert_eq!(item.u16(FAILURE_REASON), Some(PROCESSING_FAILURE));
        }
    }
}
