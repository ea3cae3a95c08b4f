//! C-STORE SCU: opens an association to a peer and sends instances, either
//! from the archive's blobs (C-MOVE sub-operations, and C-GET on the
//! requester's own association) or from bytes in memory (`tessera send`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dicom_core::VR;
use dicom_ul::pdu::{
    AssociationRQ, Pdu, PresentationContextProposed, PresentationContextResultReason,
    UserVariableItem,
};
use tessera_blob::BlobId;
use tessera_catalog::StoredInstance;
use tessera_dicom::dimse::DataSet;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::association::{AcceptedContext, Association};
use super::command::{self, status};
use super::negotiation::{peer_max_pdu, trim_uid};
use super::part10;
use super::sop_classes as classes;
use super::transcode;
use super::DimseError;
use crate::node::Node;

/// Most presentation contexts one association can carry (odd ids 1..=255).
const MAX_CONTEXTS: usize = 128;

/// A C-MOVE originator, repeated in each C-STORE sub-operation.
#[derive(Debug, Clone)]
pub struct Originator {
    pub ae_title: String,
    pub message_id: u16,
}

/// An association this node opened to send instances.
pub struct StoreScu {
    association: Association,
    next_message_id: u16,
    timeout: Duration,
}

impl StoreScu {
    /// Connects to `addr` and proposes one presentation context per
    /// (SOP class, transfer syntax) pair, each with only that transfer
    /// syntax, because instances are sent exactly as stored.
    pub async fn connect(
        addr: &str,
        calling_ae: &str,
        called_ae: &str,
        pairs: &[(String, String)],
        max_pdu_length: u32,
        timeout: Duration,
    ) -> Result<StoreScu, DimseError> {
        let stream = dial(addr, called_ae, timeout).await?;
        StoreScu::negotiate(
            stream,
            addr,
            calling_ae,
            called_ae,
            pairs,
            max_pdu_length,
            timeout,
        )
        .await
    }

    /// Proposes the contexts of [`StoreScu::connect`] over a connection
    /// that [`dial`] opened.
    pub async fn negotiate(
        stream: TcpStream,
        addr: &str,
        calling_ae: &str,
        called_ae: &str,
        pairs: &[(String, String)],
        max_pdu_length: u32,
        timeout: Duration,
    ) -> Result<StoreScu, DimseError> {
        let proposed = propose(pairs);
        let request = Request {
            calling_ae,
            called_ae,
            proposed: &proposed,
            extra: Vec::new(),
            max_pdu_length,
            timeout,
        };
        let association = request.negotiate(stream, addr).await?;

        Ok(StoreScu {
            association,
            next_message_id: 1,
            timeout,
        })
    }

    /// Splits (SOP class, transfer syntax) pairs into the batches that one
    /// association each carries; see `plan_associations`.
    pub fn plan(pairs: &[(String, String)]) -> Vec<Vec<(String, String)>> {
        plan_associations(pairs)
    }

    /// Returns the accepted context for a SOP class in a transfer syntax.
    pub fn context_for(&self, sop_class: &str, transfer_syntax: &str) -> Option<u8> {
        find_context(&self.association.contexts, sop_class, transfer_syntax)
    }

    /// Sends one data set (without file meta group) and returns the status
    /// of the C-STORE-RSP.
    pub async fn store_bytes(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        data_set: &[u8],
    ) -> Result<u16, DimseError> {
        let context_id = self.require_context(sop_class, transfer_syntax)?;
        let message_id = self.message_id();
        let request = store_request(message_id, sop_class, sop_instance, None);
        self.association
            .send(context_id, &request, Some(data_set))
            .await?;
        let (code, _) = await_store_response(&mut self.association, message_id, None).await?;
        Ok(code)
    }

    /// Sends a stored instance from its blob, read by `stream`, and returns
    /// the C-STORE status.
    pub async fn store_instance(
        &mut self,
        instance: &StoredInstance,
        stream: BlobStream,
        originator: Option<&Originator>,
    ) -> Result<u16, DimseError> {
        let attributes = instance.stored.attributes.clone().unwrap_or_default();
        let chosen = choose_context(
            &self.association.contexts,
            &attributes.sop_class_uid,
            &attributes.transfer_syntax_uid,
        );
        let Some((context_id, target_syntax)) = chosen else {
            return Ok(status::NO_SUCH_SOP_CLASS);
        };
        let message_id = self.message_id();
        let sent = send_stored(
            &mut self.association,
            (context_id, &target_syntax),
            message_id,
            instance,
            stream,
            originator,
        )
        .await?;
        if sent == Sent::NotConverted {
            return Ok(status::UNABLE_TO_PROCESS);
        }
        let (code, _) = await_store_response(&mut self.association, message_id, None).await?;
        Ok(code)
    }

    pub async fn release(self) -> Result<(), DimseError> {
        self.association.release(self.timeout).await
    }

    fn require_context(&self, sop_class: &str, transfer_syntax: &str) -> Result<u8, DimseError> {
        self.context_for(sop_class, transfer_syntax)
            .ok_or_else(|| DimseError::NoContext {
                peer: self.association.peer.clone(),
                what: format!("{sop_class} in {transfer_syntax}"),
            })
    }

    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }
}

/// Opens an association as requester and returns it with the contexts the
/// peer accepted. `extra` adds user information items such as role selection.
pub async fn open_association(
    addr: &str,
    calling_ae: &str,
    called_ae: &str,
    proposed: &[PresentationContextProposed],
    extra: Vec<UserVariableItem>,
    max_pdu_length: u32,
    timeout: Duration,
) -> Result<Association, DimseError> {
    let stream = dial(addr, called_ae, timeout).await?;
    let request = Request {
        calling_ae,
        called_ae,
        proposed,
        extra,
        max_pdu_length,
        timeout,
    };
    request.negotiate(stream, addr).await
}

/// Opens the TCP connection of an association to `called_ae` at `addr`,
/// with Nagle's algorithm off.
pub async fn dial(addr: &str, called_ae: &str, timeout: Duration) -> Result<TcpStream, DimseError> {
    let peer = format!("{called_ae}@{addr}");
    let connect = tokio::time::timeout(timeout, TcpStream::connect(addr)).await;
    let stream = match connect {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => return Err(DimseError::Io { peer, source }),
        Err(_) => {
            let seconds = timeout.as_secs();
            let waiting_for = "TCP connect";
            return Err(DimseError::Timeout {
                peer,
                seconds,
                waiting_for,
            });
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The A-ASSOCIATE-RQ of an association this node requests.
struct Request<'a> {
    calling_ae: &'a str,
    called_ae: &'a str,
    proposed: &'a [PresentationContextProposed],
    extra: Vec<UserVariableItem>,
    max_pdu_length: u32,
    timeout: Duration,
}

impl Request<'_> {
    /// Sends the request over `stream` and reads the peer's A-ASSOCIATE-AC or -RJ.
    async fn negotiate(self, stream: TcpStream, addr: &str) -> Result<Association, DimseError> {
        let peer = format!("{}@{addr}", self.called_ae);
        let mut association = Association::new(stream, peer, BytesMut::new());

        let mut user_variables = vec![
            UserVariableItem::MaxLength(self.max_pdu_length),
            UserVariableItem::ImplementationClassUID(classes::IMPLEMENTATION_CLASS_UID.into()),
            UserVariableItem::ImplementationVersionName(
                classes::IMPLEMENTATION_VERSION_NAME.into(),
            ),
        ];
        user_variables.extend(self.extra);
        let request = AssociationRQ {
            protocol_version: 1,
            calling_ae_title: self.calling_ae.to_string(),
            called_ae_title: self.called_ae.to_string(),
            application_context_name: classes::APPLICATION_CONTEXT.to_string(),
            presentation_contexts: self.proposed.to_vec(),
            user_variables,
        };
        association.write_pdu(&Pdu::AssociationRQ(request)).await?;

        let answer = association.read_pdu(self.timeout, "A-ASSOCIATE-AC").await?;
        accept_answer(&mut association, answer, self.proposed, self.max_pdu_length)?;
        association.idle_timeout = self.timeout;
        Ok(association)
    }
}

/// Splits (SOP class, transfer syntax) pairs into the batches of one
/// association each, so that no proposal exceeds 128 presentation contexts.
/// All pairs of one SOP class stay in one batch, because an instance may be
/// sent on its class's fallback context.
pub fn plan_associations(pairs: &[(String, String)]) -> Vec<Vec<(String, String)>> {
    let mut batches: Vec<Vec<(String, String)>> = Vec::new();
    let mut used = 0;
    for (class, syntaxes) in syntaxes_by_class(pairs) {
        let needed = contexts_of_class(&class, &syntaxes).len();
        if batches.is_empty() || used + needed > MAX_CONTEXTS {
            batches.push(Vec::new());
            used = 0;
        }
        used += needed;
        let batch = batches.last_mut().expect("a batch was pushed");
        batch.extend(syntaxes.into_iter().map(|ts| (class.clone(), ts)));
    }
    batches
}

/// Returns the presentation contexts proposed for a batch of pairs. More
/// than 128 are cut off with a warning, so callers plan batches first.
fn propose(pairs: &[(String, String)]) -> Vec<PresentationContextProposed> {
    let contexts: Vec<(String, Vec<String>)> = syntaxes_by_class(pairs)
        .into_iter()
        .flat_map(|(class, syntaxes)| contexts_of_class(&class, &syntaxes))
        .collect();
    if contexts.len() > MAX_CONTEXTS {
        tracing::warn!(
            contexts = contexts.len(),
            "more presentation contexts than one association carries; the rest are not proposed"
        );
    }
    contexts
        .into_iter()
        .take(MAX_CONTEXTS)
        .enumerate()
        .map(
            |(index, (class, transfer_syntaxes))| PresentationContextProposed {
                id: (index * 2 + 1) as u8,
                abstract_syntax: class,
                transfer_syntaxes,
            },
        )
        .collect()
}

/// Groups the distinct transfer syntaxes of each SOP class, in the order
/// the classes first appear.
fn syntaxes_by_class(pairs: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut classes: Vec<(String, Vec<String>)> = Vec::new();
    for (class, ts) in pairs {
        let index = match classes.iter().position(|(known, _)| known == class) {
            Some(index) => index,
            None => {
                classes.push((class.clone(), Vec::new()));
                classes.len() - 1
            }
        };
        let syntaxes = &mut classes[index].1;
        if !syntaxes.contains(ts) {
            syntaxes.push(ts.clone());
        }
    }
    classes
}

/// Returns the contexts of one SOP class: one per stored transfer syntax,
/// with only that syntax, and a fallback offering every native syntax when
/// any stored one converts to them, in case the peer accepts none of the
/// stored syntaxes.
fn contexts_of_class(class: &str, syntaxes: &[String]) -> Vec<(String, Vec<String>)> {
    let mut contexts: Vec<(String, Vec<String>)> = syntaxes
        .iter()
        .map(|ts| (class.to_string(), vec![ts.clone()]))
        .collect();
    let fallback = transcode::native_syntaxes();
    let converts = syntaxes
        .iter()
        .any(|ts| fallback.iter().any(|to| transcode::convertible(ts, to)));
    if converts {
        contexts.push((class.to_string(), fallback));
    }
    contexts
}

fn accept_answer(
    association: &mut Association,
    answer: Pdu,
    proposed: &[PresentationContextProposed],
    max_pdu_length: u32,
) -> Result<(), DimseError> {
    let accepted = match answer {
        Pdu::AssociationAC(accepted) => accepted,
        Pdu::AssociationRJ(rejected) => {
            let peer = association.peer.clone();
            let reason = format!("{:?}, {}", rejected.result, rejected.source);
            return Err(DimseError::Rejected { peer, reason });
        }
        other => {
            let peer = association.peer.clone();
            let what = other.short_description().to_string();
            return Err(DimseError::Unexpected { peer, what });
        }
    };
    association.receive_limit = max_pdu_length;
    association.send_limit = peer_max_pdu(&accepted.user_variables);
    association.contexts = accepted
        .presentation_contexts
        .iter()
        .filter(|result| result.reason == PresentationContextResultReason::Acceptance)
        .filter_map(|result| {
            let proposal = proposed.iter().find(|p| p.id == result.id)?;
            Some(AcceptedContext {
                id: result.id,
                abstract_syntax: proposal.abstract_syntax.clone(),
                transfer_syntax: trim_uid(&result.transfer_syntax).to_string(),
            })
        })
        .collect();
    Ok(())
}

pub fn find_context(
    contexts: &[AcceptedContext],
    sop_class: &str,
    transfer_syntax: &str,
) -> Option<u8> {
    contexts
        .iter()
        .find(|c| c.abstract_syntax == sop_class && c.transfer_syntax == transfer_syntax)
        .map(|c| c.id)
}

fn store_request(
    message_id: u16,
    sop_class: &str,
    sop_instance: &str,
    originator: Option<&Originator>,
) -> DataSet {
    let mut request = DataSet::default();
    request.put_text(command::AFFECTED_SOP_CLASS_UID, VR::UI, sop_class);
    request.put_u16(command::COMMAND_FIELD, command::C_STORE_RQ);
    request.put_u16(command::MESSAGE_ID, message_id);
    request.put_u16(command::PRIORITY, 0);
    request.put_u16(command::COMMAND_DATA_SET_TYPE, command::DATA_SET_PRESENT);
    request.put_text(command::AFFECTED_SOP_INSTANCE_UID, VR::UI, sop_instance);
    if let Some(originator) = originator {
        request.put_text(
            command::MOVE_ORIGINATOR_AE_TITLE,
            VR::AE,
            &originator.ae_title,
        );
        request.put_u16(command::MOVE_ORIGINATOR_MESSAGE_ID, originator.message_id);
    }
    request
}

/// A blob being read and verified on its own task, a few chunks ahead of
/// the association that sends it.
pub struct BlobStream {
    blob_id: Vec<u8>,
    reading: Result<(ChunkReceiver, ReadTask), String>,
}

type ChunkReceiver = mpsc::Receiver<Result<Bytes, crate::NodeError>>;
type ReadTask = tokio::task::JoinHandle<Result<tessera_blob::Manifest, crate::NodeError>>;

impl BlobStream {
    /// Starts reading an instance's blob. The channel holds two chunks, so
    /// a stream not yet drained keeps at most three in memory.
    pub fn start(node: &Arc<Node>, instance: &StoredInstance) -> Self {
        let blob_id = instance.stored.blob_id.clone();
        let reading = BlobId::from_slice(&blob_id)
            .map(|blob| {
                let (sender, chunks) = mpsc::channel(2);
                let node = node.clone();
                let task = tokio::spawn(async move { node.read_blob(blob, &sender).await });
                (chunks, task)
            })
            .map_err(|error| error.to_string());
        Self { blob_id, reading }
    }
}

/// Reads the blob of the next instance while the current one is sent, so
/// that reading and hash checks overlap the network and the peer's work.
#[derive(Default)]
pub struct ReadAhead {
    next: Option<BlobStream>,
}

impl ReadAhead {
    /// Returns the stream of `current` (started by the previous call when it
    /// was the upcoming instance) and starts reading `upcoming`.
    pub fn stream(
        &mut self,
        node: &Arc<Node>,
        current: &StoredInstance,
        upcoming: Option<&StoredInstance>,
    ) -> BlobStream {
        let stream = match self.next.take() {
            Some(stream) if stream.blob_id == current.stored.blob_id => stream,
            _ => BlobStream::start(node, current),
        };
        self.next = upcoming.map(|instance| BlobStream::start(node, instance));
        stream
    }
}

/// Sends a C-STORE-RQ with the data set of a stored instance, streamed from
/// its blob without the file meta group.
///
/// The first chunk is read before anything is sent, so an unreadable blob
/// fails without touching the association. A read failure later leaves a
/// data set cut short, so the caller must abort the association.
pub async fn send_stored(
    association: &mut Association,
    (context_id, target_syntax): (u8, &str),
    message_id: u16,
    instance: &StoredInstance,
    stream: BlobStream,
    originator: Option<&Originator>,
) -> Result<Sent, DimseError> {
    let attributes = instance.stored.attributes.clone().unwrap_or_default();
    let (mut chunks, reader) = stream
        .reading
        .map_err(|reason| read_failure(association, &reason))?;

    let mut header = Vec::new();
    let data_start = loop {
        let Some(chunk) = chunks.recv().await else {
            let outcome = reader.await.map(|r| r.err().map(|e| e.to_string()));
            let reason = outcome
                .ok()
                .flatten()
                .unwrap_or_else(|| "blob ended inside its header".into());
            return Err(read_failure(association, &reason));
        };
        let chunk = chunk.map_err(|error| read_failure(association, &error.to_string()))?;
        header.extend_from_slice(&chunk);
        match part10::header_length(&header) {
            None => continue,
            Some(Ok(length)) if header.len() >= length => break length,
            Some(Ok(_)) => continue,
            Some(Err(reason)) => return Err(read_failure(association, &reason)),
        }
    };

    let request = store_request(
        message_id,
        &attributes.sop_class_uid,
        &attributes.sop_instance_uid,
        originator,
    );
    if target_syntax != attributes.transfer_syntax_uid {
        let mut file = header;
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.map_err(|error| read_failure(association, &error.to_string()))?;
            file.extend_from_slice(&chunk);
        }
        let _ = reader.await;
        let stored_syntax = attributes.transfer_syntax_uid.as_str();
        let data = match convert_blocking(file, data_start, stored_syntax, target_syntax).await {
            Ok(data) => data,
            Err(error) => {
                tracing::warn!(
                    %error,
                    instance = %attributes.sop_instance_uid,
                    from = stored_syntax,
                    to = target_syntax,
                    "C-STORE sub-operation failed: the instance cannot be converted"
                );
                return Ok(Sent::NotConverted);
            }
        };
        association.send(context_id, &request, Some(&data)).await?;
        return Ok(Sent::Sent);
    }
    let mut pending = header.split_off(data_start);
    association.send(context_id, &request, None).await?;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.map_err(|error| read_failure(association, &error.to_string()))?;
        association.send_data(context_id, &pending, false).await?;
        pending = chunk.to_vec();
    }
    association.send_data(context_id, &pending, true).await?;
    let _ = reader.await;
    Ok(Sent::Sent)
}

/// Runs `transcode::convert` off the async threads, because decoding pixel
/// data takes long.
async fn convert_blocking(
    file: Vec<u8>,
    data_start: usize,
    from: &str,
    to: &str,
) -> Result<Vec<u8>, transcode::TranscodeError> {
    let (from, to) = (from.to_string(), to.to_string());
    let task =
        tokio::task::spawn_blocking(move || transcode::convert(&file, data_start, &from, &to));
    match task.await {
        Ok(result) => result,
        Err(error) => Err(transcode::TranscodeError::Decode {
            syntax: "the stored syntax".into(),
            reason: format!("conversion task failed: {error}"),
        }),
    }
}

/// Outcome of `send_stored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Sent,
    /// Conversion to the chosen transfer syntax failed before anything was
    /// sent. The association can go on, but the sub-operation fails.
    NotConverted,
}

/// Returns the accepted context to send an instance on, with its transfer
/// syntax: the stored one when accepted, else the most preferred native
/// syntax that the stored one converts to (see `transcode`). None when no
/// accepted context fits, which is logged with the syntaxes involved.
pub fn choose_context(
    contexts: &[AcceptedContext],
    sop_class: &str,
    stored_syntax: &str,
) -> Option<(u8, String)> {
    if let Some(id) = find_context(contexts, sop_class, stored_syntax) {
        return Some((id, stored_syntax.to_string()));
    }
    let chosen = contexts
        .iter()
        .filter(|c| c.abstract_syntax == sop_class)
        .filter(|c| transcode::convertible(stored_syntax, &c.transfer_syntax))
        .filter_map(|c| Some((transcode::preference(&c.transfer_syntax)?, c)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, c)| (c.id, c.transfer_syntax.clone()));
    if chosen.is_none() {
        let accepted: Vec<&str> = contexts
            .iter()
            .filter(|c| c.abstract_syntax == sop_class)
            .map(|c| c.transfer_syntax.as_str())
            .collect();
        tracing::warn!(
            sop_class,
            stored_syntax,
            ?accepted,
            "no accepted transfer syntax for this SOP class that the stored one converts to"
        );
    }
    chosen
}

fn read_failure(association: &Association, reason: &str) -> DimseError {
    DimseError::Unexpected {
        peer: association.peer.clone(),
        what: format!("failure reading the stored instance: {reason}"),
    }
}

/// Waits for the C-STORE-RSP to `message_id` and returns its status and
/// whether a C-CANCEL for `cancel_of` arrived meanwhile.
pub async fn await_store_response(
    association: &mut Association,
    message_id: u16,
    cancel_of: Option<u16>,
) -> Result<(u16, bool), DimseError> {
    let mut cancelled = false;
    loop {
        let response = association.receive_command().await?;
        let field = command::command_field(&response.set);
        let answered = response.set.u16(command::MESSAGE_ID_BEING_RESPONDED_TO);
        if field == Some(command::C_CANCEL_RQ) && cancel_of.is_some() && answered == cancel_of {
            cancelled = true;
            continue;
        }
        if field == Some(command::C_STORE_RSP) && answered == Some(message_id) {
            let code = response
                .set
                .u16(command::STATUS)
                .unwrap_or(status::UNABLE_TO_PROCESS);
            return Ok((code, cancelled));
        }
        return Err(DimseError::Unexpected {
            peer: association.peer.clone(),
            what: format!("command field {field:?} while awaiting a C-STORE-RSP"),
        });
    }
}

/// Returns whether a C-STORE status counts as success, warning or failure.
pub fn classify(code: u16) -> Outcome {
    match code {
        status::SUCCESS => Outcome::Completed,
        0xB000..=0xBFFF | 0x0001 | 0x0107 | 0x0116 => Outcome::Warning,
        _ => Outcome::Failed,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Warning,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(id: u8, class: &str, ts: &str) -> AcceptedContext {
        AcceptedContext {
            id,
            abstract_syntax: class.into(),
            transfer_syntax: ts.into(),
        }
    }

    #[test]
    fn stored_syntax_is_preferred() {
        let contexts = [
            context(1, "1.2.3", classes::IMPLICIT_VR_LITTLE_ENDIAN),
            context(3, "1.2.3", classes::EXPLICIT_VR_LITTLE_ENDIAN),
        ];

        let chosen = choose_context(&contexts, "1.2.3", classes::EXPLICIT_VR_LITTLE_ENDIAN);

        assert_eq!(
            chosen,
            Some((3, classes::EXPLICIT_VR_LITTLE_ENDIAN.to_string()))
        );
    }

    #[test]
    fn compressed_instance_is_decoded_for_native_peer() {
        let contexts = [context(1, "1.2.3", classes::IMPLICIT_VR_LITTLE_ENDIAN)];

        let chosen = choose_context(&contexts, "1.2.3", "1.2.840.10008.1.2.4.50");

        assert_eq!(
            chosen,
            Some((1, classes::IMPLICIT_VR_LITTLE_ENDIAN.to_string()))
        );
    }

    #[test]
    fn undecodable_syntax_has_no_context() {
        let contexts = [context(1, "1.2.3", classes::EXPLICIT_VR_LITTLE_ENDIAN)];

        // JPEG 2000 has no decoder among dicom-pixeldata's native codecs.
        let chosen = choose_context(&contexts, "1.2.3", "1.2.840.10008.1.2.4.90");

        assert_eq!(chosen, None);
    }

    #[test]
    fn explicit_little_endian_is_preferred_target() {
        let contexts = [
            context(1, "1.2.3", "1.2.840.10008.1.2.2"),
            context(3, "1.2.3", classes::IMPLICIT_VR_LITTLE_ENDIAN),
            context(5, "1.2.3", classes::EXPLICIT_VR_LITTLE_ENDIAN),
        ];

        let chosen = choose_context(&contexts, "1.2.3", "1.2.840.10008.1.2.1.99");

        assert_eq!(
            chosen,
            Some((5, classes::EXPLICIT_VR_LITTLE_ENDIAN.to_string()))
        );
    }

    #[test]
    fn many_classes_split_into_associations() {
        let pairs: Vec<(String, String)> = (0..150)
            .map(|n| {
                let class = format!("1.2.826.0.1.3680043.8.498.{n}");
                (class, classes::EXPLICIT_VR_LITTLE_ENDIAN.to_string())
            })
            .collect();

        let batches = plan_associations(&pairs);

        // Each class needs its stored context and a fallback: 64 per batch.
        assert_eq!(batches.len(), 3);
        let total: usize = batches.iter().map(Vec::len).sum();
        assert_eq!(total, 150);
        for batch in &batches {
            assert!(propose(batch).len() <= MAX_CONTEXTS);
        }
    }

    #[test]
    fn classes_stay_in_one_batch() {
        let mut pairs = Vec::new();
        for n in 0..70 {
            let class = format!("1.2.3.{n}");
            pairs.push((
                class.clone(),
                classes::EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
            ));
            pairs.push((class, "1.2.840.10008.1.2.5".to_string()));
        }

        let batches = plan_associations(&pairs);

        for batch in &batches {
            let proposed = propose(batch);
            assert!(proposed.len() <= MAX_CONTEXTS, "{}", proposed.len());
            for (class, _) in batch {
                let in_other = batches
                    .iter()
                    .filter(|other| other.iter().any(|(c, _)| c == class))
                    .count();
                assert_eq!(in_other, 1, "{class} split over batches");
            }
        }
    }

    #[test]
    fn implicit_instance_goes_on_explicit_context() {
        let contexts = [context(1, "1.2.3", classes::EXPLICIT_VR_LITTLE_ENDIAN)];

        let chosen = choose_context(&contexts, "1.2.3", classes::IMPLICIT_VR_LITTLE_ENDIAN);

        assert_eq!(
            chosen,
            Some((1, classes::EXPLICIT_VR_LITTLE_ENDIAN.to_string()))
        );
    }
}
