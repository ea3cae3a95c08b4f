//! The DICOM listener: accepts connections, negotiates associations and
//! dispatches their commands to the service handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use dicom_ul::pdu::{AbortRQServiceProviderReason, Pdu};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::association::{read_first_pdu, Association, Command, Incoming};
use super::command::{self, status};
use super::config::Rights;
use super::negotiation::{invalid_context_ids, negotiate, reject_busy};
use super::{commitment, find, retrieve, store, DimseError};
use crate::node::Node;

/// The node, the caller and its rights, shared by the handlers of one association.
pub struct Session {
    pub node: Arc<Node>,
    pub calling_ae: String,
    pub rights: Rights,
}

/// Accepts associations until the listener fails; each runs in its own
/// task, so a slow or stuck peer holds up no other.
pub async fn run_listener(node: Arc<Node>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(node.config.dimse.max_associations));
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "failed to accept a DICOM connection");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let permit = slots.clone().try_acquire_owned().ok();
        let span = tracing::info_span!("association", node_id = node.id(), peer = %addr);
        tokio::spawn(handle_connection(node.clone(), stream, addr, permit).instrument(span));
    }
}

async fn handle_connection(
    node: Arc<Node>,
    stream: TcpStream,
    addr: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
) {
    let config = &node.config.dimse;
    let (mut association, first) =
        match read_first_pdu(stream, addr.to_string(), config.artim_timeout).await {
            Ok(read) => read,
            Err((association, error)) => {
                tracing::debug!(%error, "connection closed before an association");
                if let Some(association) = association {
                    association.abort(abort_reason(&error)).await;
                }
                return;
            }
        };
    association.idle_timeout = config.idle_timeout;
    let Pdu::AssociationRQ(request) = first else {
        tracing::debug!(pdu = %first.short_description(), "first PDU is not an A-ASSOCIATE-RQ");
        association
            .abort(AbortRQServiceProviderReason::UnexpectedPdu)
            .await;
        return;
    };
    if let Some(problem) = invalid_context_ids(&request) {
        tracing::info!(calling_ae = %request.calling_ae_title, %problem, "association aborted");
        association
            .abort(AbortRQServiceProviderReason::InvalidPduParameter)
            .await;
        return;
    }
    if permit.is_none() {
        tracing::warn!(limit = config.max_associations, "association limit reached");
        let _ = association
            .write_pdu(&Pdu::AssociationRJ(reject_busy()))
            .await;
        return;
    }

    let negotiated = match negotiate(&request, config) {
        Ok(negotiated) => negotiated,
        Err(rejection) => {
            tracing::info!(
                calling_ae = %request.calling_ae_title,
                reason = %rejection.source,
                "association rejected"
            );
            let _ = association.write_pdu(&Pdu::AssociationRJ(rejection)).await;
            return;
        }
    };
    if let Err(error) = association
        .write_pdu(&Pdu::AssociationAC(negotiated.response))
        .await
    {
        tracing::debug!(%error, "failed to send A-ASSOCIATE-AC");
        return;
    }

    let calling_ae = request.calling_ae_title.trim().to_string();
    association.peer = format!("{calling_ae}@{addr}");
    association.receive_limit = config.max_pdu_length;
    association.send_limit = negotiated.peer_max_pdu;
    association.contexts = negotiated.contexts;
    tracing::debug!(%calling_ae, contexts = association.contexts.len(), "association accepted");

    let session = Session {
        node: node.clone(),
        calling_ae,
        rights: negotiated.rights,
    };
    serve_association(&session, association).await;
    drop(permit);
}

async fn serve_association(session: &Session, mut association: Association) {
    loop {
        let incoming = match association.receive().await {
            Ok(incoming) => incoming,
            Err(error) => return end_with_error(association, error).await,
        };
        let command = match incoming {
            Incoming::Command(command) => command,
            Incoming::ReleaseRequest => {
                let _ = association.confirm_release().await;
                return;
            }
        };
        match dispatch(session, &mut association, command).await {
            Ok(()) => {}
            Err(DimseError::Released { .. }) => {
                let _ = association.confirm_release().await;
                return;
            }
            Err(error) => return end_with_error(association, error).await,
        }
    }
}

async fn end_with_error(association: Association, error: DimseError) {
    match &error {
        DimseError::Aborted { .. } | DimseError::Io { .. } => {
            tracing::info!(%error, "association ended by the peer");
        }
        _ => {
            tracing::warn!(%error, "aborting association");
            association.abort(abort_reason(&error)).await;
        }
    }
}

fn abort_reason(error: &DimseError) -> AbortRQServiceProviderReason {
    match error {
        DimseError::PduTooLarge { .. } | DimseError::MessageTooLarge { .. } => {
            AbortRQServiceProviderReason::InvalidPduParameter
        }
        DimseError::MalformedPdu { .. } => AbortRQServiceProviderReason::UnrecognizedPdu,
        DimseError::Unexpected { .. } => AbortRQServiceProviderReason::UnexpectedPdu,
        DimseError::Decode { .. } => AbortRQServiceProviderReason::InvalidPduParameter,
        _ => AbortRQServiceProviderReason::ReasonNotSpecified,
    }
}

async fn dispatch(
    session: &Session,
    association: &mut Association,
    command: Command,
) -> Result<(), DimseError> {
    let field = command::command_field(&command.set);
    match field {
        Some(command::C_ECHO_RQ) => echo(association, &command).await,
        Some(command::C_STORE_RQ) => store::handle(session, association, command).await,
        Some(command::C_FIND_RQ) => find::handle(session, association, command).await,
        Some(command::C_MOVE_RQ) => retrieve::handle_move(session, association, command).await,
        Some(command::C_GET_RQ) => retrieve::handle_get(session, association, command).await,
        Some(command::N_ACTION_RQ) => commitment::handle(session, association, command).await,
        // A C-CANCEL for an operation that already finished needs no response.
        Some(command::C_CANCEL_RQ) => Ok(()),
        other => unrecognized(association, &command, other).await,
    }
}

async fn echo(association: &mut Association, command: &Command) -> Result<(), DimseError> {
    if command::has_data_set(&command.set) {
        association.receive_data(1 << 16).await?;
    }
    let response = command::response(&command.set, command::C_ECHO_RSP, status::SUCCESS, false);
    association.send(command.context_id, &response, None).await
}

async fn unrecognized(
    association: &mut Association,
    command: &Command,
    field: Option<u16>,
) -> Result<(), DimseError> {
    if command::has_data_set(&command.set) {
        association.discard_data().await?;
    }
    let Some(field) = field.filter(|f| f & 0x8000 == 0) else {
        return Err(DimseError::Unexpected {
            peer: association.peer.clone(),
            what: format!("command field {field:?} where a request was expected"),
        });
    };
    tracing::info!(command_field = field, "unsupported DIMSE command");
    let response = command::response(
        &command.set,
        field | 0x8000,
        status::UNRECOGNIZED_OPERATION,
        false,
    );
    association.send(command.context_id, &response, None).await
}
