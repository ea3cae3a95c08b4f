//! One established association: PDU framing with length limits and timeouts,
//! P-DATA fragmentation and reassembly, release and abort. Both the listener
//! and the C-STORE SCU drive their associations through this type.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::BytesMut;
use dicom_ul::pdu::{AbortRQServiceProviderReason, AbortRQSource, PDataValue, PDataValueType, Pdu};
use futures::FutureExt;
use tessera_dicom::dimse::{DataSet, Encoding};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::DimseError;

/// Largest PDU accepted before an association is established: an
/// A-ASSOCIATE-RQ with all 128 presentation contexts fits easily.
pub const ASSOCIATE_PDU_LIMIT: u32 = 1 << 20;

/// Largest P-DATA fragment sent when the peer announced no limit (0).
const UNLIMITED_SEND_FRAGMENT: u32 = 1 << 20;

/// Largest command set accepted; real ones are a few hundred bytes.
const COMMAND_LIMIT: usize = 64 * 1024;

/// Time allowed for an A-ABORT to leave. A peer that takes no 10-byte PDU
/// in this time has stopped reading, and the connection closes without it.
const ABORT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

const PDU_HEADER: usize = 6;
const PDV_HEADER: u32 = 6;

/// A presentation context that both sides accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedContext {
    pub id: u8,
    pub abstract_syntax: String,
    pub transfer_syntax: String,
}

/// A DIMSE command with the presentation context it arrived on.
#[derive(Debug, Clone)]
pub struct Command {
    pub context_id: u8,
    pub set: DataSet,
}

/// What the peer sent next on an established association.
#[derive(Debug)]
pub enum Incoming {
    Command(Command),
    ReleaseRequest,
}

/// Either end of an association after negotiation.
pub struct Association {
    stream: TcpStream,
    buffer: BytesMut,
    pending: VecDeque<PDataValue>,
    /// Name of the peer in errors and logs: its AE title and address.
    pub peer: String,
    /// Maximum PDU length this side receives.
    pub receive_limit: u32,
    /// Maximum PDU length the peer receives; 0 means no limit.
    pub send_limit: u32,
    pub contexts: Vec<AcceptedContext>,
    pub idle_timeout: Duration,
    /// Presentation context of the last command received. Its data set
    /// must arrive on the same context.
    message_context: u8,
    /// Command field and status of the last final response sent (pending
    /// responses excluded), taken by the listener for its metrics.
    pub last_response: Option<(u16, u16)>,
}

impl Association {
    pub fn new(stream: TcpStream, peer: String, buffer: BytesMut) -> Self {
        Self {
            stream,
            buffer,
            pending: VecDeque::new(),
            peer,
            receive_limit: ASSOCIATE_PDU_LIMIT,
            send_limit: 0,
            contexts: Vec::new(),
            idle_timeout: Duration::from_secs(300),
            message_context: 0,
            last_response: None,
        }
    }

    pub fn context(&self, id: u8) -> Option<&AcceptedContext> {
        self.contexts.iter().find(|context| context.id == id)
    }

    /// Reads the next PDU, waiting at most `timeout` for it to complete.
    ///
    /// Cancel safety: bytes read before a cancellation stay buffered, so a
    /// later call continues with the same PDU.
    pub async fn read_pdu(
        &mut self,
        timeout: Duration,
        waiting_for: &'static str,
    ) -> Result<Pdu, DimseError> {
        match tokio::time::timeout(timeout, self.read_pdu_untimed()).await {
            Ok(result) => result,
            Err(_) => Err(DimseError::Timeout {
                peer: self.peer.clone(),
                seconds: timeout.as_secs(),
                waiting_for,
            }),
        }
    }

    async fn read_pdu_untimed(&mut self) -> Result<Pdu, DimseError> {
        loop {
            if let Some(pdu) = self.parse_buffered()? {
                return Ok(pdu);
            }
            self.fill().await?;
        }
    }

    /// Returns a PDU that is already complete in the buffer, checking its
    /// declared length before waiting for its body.
    fn parse_buffered(&mut self) -> Result<Option<Pdu>, DimseError> {
        if self.buffer.len() < PDU_HEADER {
            return Ok(None);
        }
        let length = u32::from_be_bytes(self.buffer[2..6].try_into().expect("four bytes"));
        if length > self.receive_limit {
            return Err(DimseError::PduTooLarge {
                peer: self.peer.clone(),
                length,
                limit: self.receive_limit,
            });
        }
        let total = PDU_HEADER + length as usize;
        if self.buffer.len() < total {
            return Ok(None);
        }

        let frame = self.buffer.split_to(total).freeze();
        let max = dicom_ul::pdu::MAXIMUM_PDU_SIZE;
        match dicom_ul::read_pdu(frame, max, false) {
            Ok(Some(pdu)) => Ok(Some(pdu)),
            Ok(None) => Err(self.malformed("PDU shorter than its length field")),
            Err(error) => Err(self.malformed(&error.to_string())),
        }
    }

    async fn fill(&mut self) -> Result<(), DimseError> {
        self.buffer.reserve(64 * 1024);
        let read = self.stream.read_buf(&mut self.buffer).await;
        match read {
            Ok(0) => Err(DimseError::Io {
                peer: self.peer.clone(),
                source: std::io::ErrorKind::UnexpectedEof.into(),
            }),
            Ok(_) => Ok(()),
            Err(source) => Err(self.io_error(source)),
        }
    }

    /// Writes one PDU, giving up after `idle_timeout` when the peer stops
    /// reading, so that a stalled peer cannot hold the association (and its
    /// slot under `max_associations`) forever.
    pub async fn write_pdu(&mut self, pdu: &Pdu) -> Result<(), DimseError> {
        self.write_pdu_within(pdu, self.idle_timeout).await
    }

    async fn write_pdu_within(&mut self, pdu: &Pdu, timeout: Duration) -> Result<(), DimseError> {
        let mut bytes = Vec::new();
        dicom_ul::pdu::write_pdu(&mut bytes, pdu).map_err(|e| DimseError::Encode(e.to_string()))?;

        let written = tokio::time::timeout(timeout, self.stream.write_all(&bytes)).await;
        match written {
            Ok(result) => result.map_err(|source| self.io_error(source)),
            Err(_) => Err(DimseError::WriteTimeout {
                peer: self.peer.clone(),
                seconds: timeout.as_secs(),
            }),
        }
    }

    /// Waits for the next command, or the peer's A-RELEASE-RQ.
    pub async fn receive(&mut self) -> Result<Incoming, DimseError> {
        let first = match self.next_pdv().await? {
            Some(pdv) => pdv,
            None => return Ok(Incoming::ReleaseRequest),
        };
        let command = self.collect_command(first).await?;
        Ok(Incoming::Command(command))
    }

    /// Waits until bytes from the peer are buffered or can be read, without
    /// consuming them. Cancel safe, so the listener can wait for this and
    /// for its own work at once.
    pub async fn readable(&mut self) -> Result<(), DimseError> {
        if !self.pending.is_empty() || !self.buffer.is_empty() {
            return Ok(());
        }
        self.stream
            .readable()
            .await
            .map_err(|source| self.io_error(source))
    }

    /// Reads the next command while its reply is awaited; a release request
    /// there is a protocol error.
    pub async fn receive_command(&mut self) -> Result<Command, DimseError> {
        match self.receive().await? {
            Incoming::Command(command) => Ok(command),
            Incoming::ReleaseRequest => Err(DimseError::Unexpected {
                peer: self.peer.clone(),
                what: "A-RELEASE-RQ while a response was outstanding".into(),
            }),
        }
    }

    async fn collect_command(&mut self, first: PDataValue) -> Result<Command, DimseError> {
        let context_id = first.presentation_context_id;
        let mut bytes = Vec::new();
        let mut pdv = first;
        loop {
            if pdv.value_type != PDataValueType::Command {
                return Err(self.unexpected("data fragment where a command was expected"));
            }
            if pdv.presentation_context_id != context_id {
                return Err(self.context_switch(context_id, pdv.presentation_context_id));
            }
            bytes.extend_from_slice(&pdv.data);
            if bytes.len() > COMMAND_LIMIT {
                return Err(DimseError::MessageTooLarge {
                    peer: self.peer.clone(),
                    limit: COMMAND_LIMIT,
                });
            }
            if pdv.is_last {
                break;
            }
            pdv = self.require_pdv().await?;
        }

        let set = DataSet::parse(&bytes, Encoding::ImplicitLittle).map_err(|source| {
            DimseError::Decode {
                peer: self.peer.clone(),
                source,
            }
        })?;
        self.message_context = context_id;
        Ok(Command { context_id, set })
    }

    /// Returns the next data set fragment and whether it is the last one.
    pub async fn receive_data_fragment(&mut self) -> Result<(Vec<u8>, bool), DimseError> {
        let pdv = self.require_pdv().await?;
        if pdv.value_type != PDataValueType::Data {
            return Err(self.unexpected("command fragment where a data set was expected"));
        }
        if pdv.presentation_context_id != self.message_context {
            return Err(self.context_switch(self.message_context, pdv.presentation_context_id));
        }
        Ok((pdv.data, pdv.is_last))
    }

    /// Reads a whole data set of at most `limit` bytes.
    pub async fn receive_data(&mut self, limit: usize) -> Result<Vec<u8>, DimseError> {
        let mut bytes = Vec::new();
        loop {
            let (fragment, last) = self.receive_data_fragment().await?;
            bytes.extend_from_slice(&fragment);
            if bytes.len() > limit {
                let peer = self.peer.clone();
                return Err(DimseError::MessageTooLarge { peer, limit });
            }
            if last {
                return Ok(bytes);
            }
        }
    }

    /// Reads a data set to its end without keeping it, so that its size
    /// costs no memory.
    pub async fn discard_data(&mut self) -> Result<(), DimseError> {
        loop {
            let (_, last) = self.receive_data_fragment().await?;
            if last {
                return Ok(());
            }
        }
    }

    async fn require_pdv(&mut self) -> Result<PDataValue, DimseError> {
        match self.next_pdv().await? {
            Some(pdv) => Ok(pdv),
            None => Err(self.unexpected("A-RELEASE-RQ inside a message")),
        }
    }

    /// Returns the next P-DATA value, or None on A-RELEASE-RQ.
    async fn next_pdv(&mut self) -> Result<Option<PDataValue>, DimseError> {
        loop {
            if let Some(pdv) = self.pending.pop_front() {
                return Ok(Some(pdv));
            }
            let pdu = self.read_pdu(self.idle_timeout, "a request").await?;
            match pdu {
                Pdu::PData { data } => self.pending.extend(data),
                Pdu::ReleaseRQ => return Ok(None),
                Pdu::AbortRQ { .. } => {
                    return Err(DimseError::Aborted {
                        peer: self.peer.clone(),
                    })
                }
                other => {
                    let what = other.short_description().to_string();
                    return Err(self.unexpected(&what));
                }
            }
        }
    }

    /// Checks, without waiting, whether the peer has sent a command (such
    /// as C-CANCEL) while this side streams responses.
    ///
    /// The read is polled once rather than raced against a zero timeout:
    /// tokio rounds timer deadlines up to the next millisecond, so such a
    /// timeout waited up to a millisecond per C-FIND match and per C-GET or
    /// C-MOVE sub-operation.
    pub async fn poll_command(&mut self) -> Result<Option<Command>, DimseError> {
        if self.pending.is_empty() {
            // `fill` is cancel safe: a pending read has consumed nothing.
            if let Some(result) = self.fill().now_or_never() {
                result?;
            }
            while let Some(pdu) = self.parse_buffered()? {
                match pdu {
                    Pdu::PData { data } => self.pending.extend(data),
                    Pdu::AbortRQ { .. } => {
                        let peer = self.peer.clone();
                        return Err(DimseError::Aborted { peer });
                    }
                    other => {
                        let what = other.short_description().to_string();
                        return Err(self.unexpected(&what));
                    }
                }
            }
        }
        let Some(first) = self.pending.pop_front() else {
            return Ok(None);
        };
        Ok(Some(self.collect_command(first).await?))
    }

    /// Sends a command and, when given, its data set, split into P-DATA
    /// fragments that respect the peer's maximum PDU length.
    pub async fn send(
        &mut self,
        context_id: u8,
        command: &DataSet,
        data: Option<&[u8]>,
    ) -> Result<(), DimseError> {
        self.note_response(command);
        let encoded = tessera_dicom::dimse::encode_command(command);
        self.send_fragments(context_id, PDataValueType::Command, &encoded, true)
            .await?;
        if let Some(data) = data {
            self.send_fragments(context_id, PDataValueType::Data, data, true)
                .await?;
        }
        Ok(())
    }

    fn note_response(&mut self, command: &DataSet) {
        let field = command.u16(super::command::COMMAND_FIELD);
        let code = command.u16(super::command::STATUS);
        if let (Some(field), Some(code)) = (field, code) {
            let pending = matches!(code, 0xFF00 | 0xFF01);
            if field & 0x8000 != 0 && !pending {
                self.last_response = Some((field, code));
            }
        }
    }

    /// Sends part of a data set; `last` marks its final part.
    pub async fn send_data(
        &mut self,
        context_id: u8,
        data: &[u8],
        last: bool,
    ) -> Result<(), DimseError> {
        self.send_fragments(context_id, PDataValueType::Data, data, last)
            .await
    }

    async fn send_fragments(
        &mut self,
        context_id: u8,
        value_type: PDataValueType,
        bytes: &[u8],
        last: bool,
    ) -> Result<(), DimseError> {
        let size = self.fragment_size();
        let mut chunks = bytes.chunks(size).peekable();
        if chunks.peek().is_none() && last {
            return self
                .send_pdv(context_id, value_type, Vec::new(), true)
                .await;
        }
        while let Some(chunk) = chunks.next() {
            let is_last = last && chunks.peek().is_none();
            self.send_pdv(context_id, value_type.clone(), chunk.to_vec(), is_last)
                .await?;
        }
        Ok(())
    }

    async fn send_pdv(
        &mut self,
        context_id: u8,
        value_type: PDataValueType,
        data: Vec<u8>,
        is_last: bool,
    ) -> Result<(), DimseError> {
        let pdv = PDataValue {
            presentation_context_id: context_id,
            value_type,
            is_last,
            data,
        };
        self.write_pdu(&Pdu::PData { data: vec![pdv] }).await
    }

    /// Largest fragment whose P-DATA-TF fits the peer's maximum PDU length.
    ///
    /// TODO: any announced maximum is accepted. Below 8 bytes no fragment
    /// fits, so 2-byte fragments exceed it, and a small maximum costs one
    /// write per few bytes: a C-GET of 60 MB to a peer announcing 8 takes
    /// 30 million PDUs.
    pub fn fragment_size(&self) -> usize {
        let limit = match self.send_limit {
            0 => UNLIMITED_SEND_FRAGMENT,
            limit => limit.min(UNLIMITED_SEND_FRAGMENT),
        };
        limit.saturating_sub(PDV_HEADER).max(2) as usize & !1
    }

    /// Replies to the peer's A-RELEASE-RQ and closes the connection.
    pub async fn confirm_release(mut self) -> Result<(), DimseError> {
        self.write_pdu(&Pdu::ReleaseRP).await?;
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    /// Releases the association this side requested, waiting up to
    /// `timeout` for the A-RELEASE-RP.
    pub async fn release(mut self, timeout: Duration) -> Result<(), DimseError> {
        self.write_pdu(&Pdu::ReleaseRQ).await?;
        loop {
            match self.read_pdu(timeout, "A-RELEASE-RP").await? {
                Pdu::ReleaseRP => break,
                Pdu::PData { .. } => continue,
                Pdu::AbortRQ { .. } => break,
                other => {
                    let what = other.short_description().to_string();
                    return Err(self.unexpected(&what));
                }
            }
        }
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    /// Sends an A-ABORT as service provider and closes the connection.
    pub async fn abort(mut self, reason: AbortRQServiceProviderReason) {
        let source = AbortRQSource::ServiceProvider(reason);
        let _ = self
            .write_pdu_within(&Pdu::AbortRQ { source }, ABORT_WRITE_TIMEOUT)
            .await;
        let _ = self.stream.shutdown().await;
    }

    fn malformed(&self, reason: &str) -> DimseError {
        DimseError::MalformedPdu {
            peer: self.peer.clone(),
            reason: reason.to_string(),
        }
    }

    fn unexpected(&self, what: &str) -> DimseError {
        DimseError::Unexpected {
            peer: self.peer.clone(),
            what: what.to_string(),
        }
    }

    fn context_switch(&self, expected: u8, received: u8) -> DimseError {
        let what = format!(
            "fragment on presentation context {received} inside a message on context {expected}"
        );
        self.unexpected(&what)
    }

    fn io_error(&self, source: std::io::Error) -> DimseError {
        DimseError::Io {
            peer: self.peer.clone(),
            source,
        }
    }
}

/// Reads the first PDU of a connection under the ARTIM timer.
pub async fn read_first_pdu(
    stream: TcpStream,
    peer: String,
    timeout: Duration,
) -> Result<(Association, Pdu), (Option<Association>, DimseError)> {
    let mut association = Association::new(stream, peer, BytesMut::new());
    match association.read_pdu(timeout, "A-ASSOCIATE-RQ").await {
        Ok(pdu) => Ok((association, pdu)),
        Err(error) => Err((Some(association), error)),
    }
}
