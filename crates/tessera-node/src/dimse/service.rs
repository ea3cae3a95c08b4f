//! The DICOM listener: accepts connections, negotiates associations and
//! dispatches their commands to the service handlers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use dicom_ul::pdu::{AbortRQServiceProviderReason, AssociationRJ, AssociationRJSource, Pdu};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::association::{read_first_pdu, Association, Command, Incoming};
use super::command::{self, status};
use super::commitment::PendingReport;
use super::config::Rights;
use super::negotiation::{invalid_context_ids, negotiate, reject_busy};
use super::{commitment, find, retrieve, store, DimseError};
use crate::node::Node;

/// The node, the caller and its rights, shared by the handlers of one association.
pub struct Session {
    pub node: Arc<Node>,
    pub calling_ae: String,
    pub rights: Rights,
    /// Storage commitment results found in the background, sent on this
    /// association between commands.
    pub outbox: mpsc::Sender<PendingReport>,
}

/// Accepts associations until the listener fails; each runs in its own
/// task, so a slow or stuck peer holds up no other.
pub async fn run_listener(node: Arc<Node>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(node.config.dimse.max_associations));
    let per_address = AddressSlots::new(node.config.dimse.max_associations_per_address);
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "failed to accept a DICOM connection");
                continue;
            }
        };
        // One host's connections, silent or not, must not take every slot,
        // so a connection over its address's limit is closed at once.
        let Some(address_slot) = per_address.acquire(addr.ip()) else {
            tracing::warn!(
                node_id = node.id(),
                peer = %addr,
                limit = node.config.dimse.max_associations_per_address,
                "DICOM connection closed, too many connections from this address"
            );
            node.metrics.dimse.reject_association("address_limit");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let permit = slots.clone().try_acquire_owned().ok();
        let span = tracing::info_span!("association", node_id = node.id(), peer = %addr);
        let connection = handle_connection(node.clone(), stream, addr, permit);
        tokio::spawn(
            async move {
                connection.await;
                drop(address_slot);
            }
            .instrument(span),
        );
    }
}

/// Counts the open connections of each remote IP address.
#[derive(Clone)]
struct AddressSlots {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection of an address; dropping it frees the slot.
struct AddressSlot {
    slots: AddressSlots,
    ip: IpAddr,
}

impl AddressSlots {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes a slot for `ip`, or returns None when it has `limit` open.
    fn acquire(&self, ip: IpAddr) -> Option<AddressSlot> {
        let mut open = self.open.lock().expect("address slots lock");
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("address slots lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
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
    let metrics = &node.metrics.dimse;
    if let Some(problem) = invalid_context_ids(&request) {
        tracing::info!(calling_ae = %request.calling_ae_title, %problem, "association aborted");
        metrics.reject_association("invalid_request");
        association
            .abort(AbortRQServiceProviderReason::InvalidPduParameter)
            .await;
        return;
    }
    if permit.is_none() {
        tracing::warn!(limit = config.max_associations, "association limit reached");
        metrics.reject_association("association_limit");
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
            metrics.reject_association(rejection_label(&rejection));
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
    metrics.associations_accepted.inc();
    metrics.open_associations.inc();

    let (outbox, mut reports) = mpsc::channel(4);
    let session = Session {
        node: node.clone(),
        calling_ae,
        rights: negotiated.rights,
        outbox,
    };
    serve_association(&session, association, &mut reports).await;
    metrics.open_associations.dec();
    drop(permit);

    // Results that arrived as the association ended go on a new one.
    reports.close();
    while let Ok(pending) = reports.try_recv() {
        commitment::spawn_new_association(node.clone(), session.calling_ae.clone(), pending);
    }
}

/// The listener's next step on an association.
enum Next {
    Read,
    Report(PendingReport),
    Idle,
}

async fn serve_association(
    session: &Session,
    mut association: Association,
    reports: &mut mpsc::Receiver<PendingReport>,
) {
    loop {
        let idle_timeout = association.idle_timeout;
        let next = tokio::select! {
            ready = association.readable() => match ready {
                Ok(()) => Next::Read,
                Err(error) => return end_with_error(association, error).await,
            },
            Some(pending) = reports.recv() => Next::Report(pending),
            _ = tokio::time::sleep(idle_timeout) => Next::Idle,
        };
        match next {
            Next::Read => {}
            Next::Report(pending) => {
                match commitment::deliver(session, &mut association, pending).await {
                    Ok(()) => {}
                    Err(DimseError::Released { .. }) => {
                        let _ = association.confirm_release().await;
                        return;
                    }
                    Err(error) => return end_with_error(association, error).await,
                }
                continue;
            }
            Next::Idle => {
                let error = DimseError::Timeout {
                    peer: association.peer.clone(),
                    seconds: idle_timeout.as_secs(),
                    waiting_for: "a request",
                };
                return end_with_error(association, error).await;
            }
        }
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
        let dispatched = dispatch(session, &mut association, command).await;
        if let Some((field, code)) = association.last_response.take() {
            let metrics = &session.node.metrics.dimse;
            metrics.record_operation(service_name(field), code);
        }
        match dispatched {
            Ok(()) => {}
            Err(DimseError::Released { .. }) => {
                let _ = association.confirm_release().await;
                return;
            }
            Err(error) => return end_with_error(association, error).await,
        }
    }
}

/// Names the service of a response's command field, as in PS3.7.
fn service_name(response_field: u16) -> &'static str {
    match response_field {
        command::C_ECHO_RSP => "C-ECHO",
        command::C_STORE_RSP => "C-STORE",
        command::C_FIND_RSP => "C-FIND",
        command::C_MOVE_RSP => "C-MOVE",
        command::C_GET_RSP => "C-GET",
        command::N_ACTION_RSP => "N-ACTION",
        _ => "other",
    }
}

/// Label of an A-ASSOCIATE-RJ reason in the rejection metric.
fn rejection_label(rejection: &AssociationRJ) -> &'static str {
    use dicom_ul::pdu::AssociationRJServiceUserReason as User;
    match &rejection.source {
        AssociationRJSource::ServiceUser(User::CalledAETitleNotRecognized) => "called_ae_title",
        AssociationRJSource::ServiceUser(User::CallingAETitleNotRecognized) => "calling_ae_title",
        AssociationRJSource::ServiceUser(User::ApplicationContextNameNotSupported) => {
            "application_context"
        }
        AssociationRJSource::ServiceProviderASCE(_) => "protocol_version",
        _ => "other",
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
