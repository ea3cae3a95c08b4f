//! C-MOVE and C-GET SCP: resolve the identifier to stored instances, then
//! send each with a C-STORE sub-operation, to the configured destination
//! (C-MOVE) or back on the requester's association (C-GET), reporting
//! remaining, completed, failed and warning counts as they change.

use std::collections::BTreeMap;

use dicom_core::{Tag, VR};
use tessera_catalog::{Level, StoredInstance};
use tessera_dicom::dimse::{DataSet, Encoding};

use super::association::{Association, Command};
use super::command::{self, status, SubOperations};
use super::find::{self, decode_identifier, unavailable, Failure, Identifier, IDENTIFIER_LIMIT};
use super::scu::{self, choose_context, classify, Originator, Outcome, ReadAhead, Sent, StoreScu};
use super::service::Session;
use super::DimseError;
use crate::metrics::DimseMetrics;
use crate::NodeError;

const FAILED_SOP_INSTANCE_UID_LIST: Tag = Tag(0x0008, 0x0058);

/// A retrieve in progress: its request, counts and failed instances.
struct Progress<'a> {
    command: &'a Command,
    metrics: &'a DimseMetrics,
    /// "C-MOVE" or "C-GET", the service label of the metrics.
    service: &'static str,
    response_field: u16,
    counts: SubOperations,
    failed_uids: Vec<String>,
    encoding: Encoding,
}

pub async fn handle_move(
    session: &Session,
    association: &mut Association,
    command: Command,
) -> Result<(), DimseError> {
    let (encoding, resolved) = resolve(session, association, &command).await?;
    let mut progress = Progress::new(session, &command, command::C_MOVE_RSP, encoding);
    let instances = match resolved
        .and_then(|instances| destination(session, &command).map(|d| (instances, d)))
    {
        Ok(found) => found,
        Err((code, comment)) => return progress.fail(association, code, &comment).await,
    };
    let (instances, (peer_addr, peer_ae)) = instances;
    progress.counts.remaining = count(instances.len());
    if instances.is_empty() {
        return progress.finish(association).await;
    }

    let originator = Originator {
        ae_title: session.calling_ae.clone(),
        message_id: command::message_id(&command.set),
    };
    let target = Destination {
        addr: peer_addr,
        ae_title: peer_ae,
        originator,
    };
    // One association carries at most 128 presentation contexts, so the
    // instances go over as many associations as their SOP class and
    // transfer syntax pairs need, one after the other.
    let batches = scu::plan_associations(&context_pairs(&instances));
    if batches.len() > 1 {
        tracing::info!(
            associations = batches.len(),
            destination = %target.ae_title,
            "C-MOVE needs more than one association"
        );
    }
    for batch in &batches {
        let members: Vec<&StoredInstance> = instances
            .iter()
            .filter(|instance| batch.contains(&context_pair(instance)))
            .collect();
        let cancelled = move_batch(
            session,
            association,
            &target,
            batch,
            &members,
            &mut progress,
        )
        .await?;
        if cancelled {
            return progress.cancel(association).await;
        }
    }
    progress.finish(association).await
}

/// The C-MOVE destination and the originator its sub-operations name.
struct Destination {
    addr: String,
    ae_title: String,
    originator: Originator,
}

/// Sends the instances of one batch on a new association to the C-MOVE
/// destination and returns whether the requester cancelled. A destination
/// that cannot be reached, or an association that fails, fails the batch's
/// remaining instances, and the next batch is still attempted.
async fn move_batch(
    session: &Session,
    association: &mut Association,
    target: &Destination,
    batch: &[(String, String)],
    members: &[&StoredInstance],
    progress: &mut Progress<'_>,
) -> Result<bool, DimseError> {
    let node = &session.node;
    let config = &node.config.dimse;
    let connected = match scu::dial(&target.addr, &target.ae_title, config.artim_timeout).await {
        Ok(stream) => {
            // DCMTK's movescu waits for a response on this association with a
            // one-second timeout and checks for an incoming association only
            // between those waits (`selectReadable` in dcmnet's dimmove.cc).
            // A pending response sent once the connection is open wakes it,
            // so it accepts the sub-association at once.
            progress.pending(association).await?;
            StoreScu::negotiate(
                stream,
                &target.addr,
                &config.ae_title,
                &target.ae_title,
                batch,
                config.max_pdu_length,
                config.artim_timeout,
            )
            .await
        }
        Err(error) => Err(error),
    };
    let mut scu = match connected {
        Ok(scu) => scu,
        Err(error) => {
            tracing::warn!(%error, destination = %target.ae_title, "C-MOVE destination unreachable");
            progress.fail_all(members);
            progress.pending_if_remaining(association).await?;
            return Ok(false);
        }
    };

    let mut read_ahead = ReadAhead::default();
    for (index, instance) in members.iter().enumerate() {
        if find::cancelled(association, progress.command).await? {
            let _ = scu.release().await;
            return Ok(true);
        }
        let upcoming = members.get(index + 1).copied();
        let stream = read_ahead.stream(node, instance, upcoming);
        let stored = scu
            .store_instance(instance, stream, Some(&target.originator))
            .await;
        let code = match stored {
            Ok(code) => code,
            Err(error) => {
                tracing::warn!(%error, destination = %target.ae_title, "C-MOVE sub-association failed");
                progress.fail_all(&members[index..]);
                progress.pending_if_remaining(association).await?;
                return Ok(false);
            }
        };
        progress.record(instance, code);
        progress.pending_if_remaining(association).await?;
    }
    if let Err(error) = scu.release().await {
        tracing::debug!(%error, "C-MOVE sub-association release failed");
    }
    Ok(false)
}

pub async fn handle_get(
    session: &Session,
    association: &mut Association,
    command: Command,
) -> Result<(), DimseError> {
    let (encoding, resolved) = resolve(session, association, &command).await?;
    let mut progress = Progress::new(session, &command, command::C_GET_RSP, encoding);
    let instances = match resolved {
        Ok(instances) => instances,
        Err((code, comment)) => return progress.fail(association, code, &comment).await,
    };
    progress.counts.remaining = count(instances.len());

    let request_id = command::message_id(&command.set);
    let mut next_id = request_id.wrapping_add(1).max(1);
    let mut read_ahead = ReadAhead::default();
    for (index, instance) in instances.iter().enumerate() {
        if find::cancelled(association, &command).await? {
            return progress.cancel(association).await;
        }
        let attributes = instance.stored.attributes.clone().unwrap_or_default();
        let chosen = choose_context(
            &association.contexts,
            &attributes.sop_class_uid,
            &attributes.transfer_syntax_uid,
        );
        let Some((context_id, target_syntax)) = chosen else {
            progress.record(instance, status::NO_SUCH_SOP_CLASS);
            progress.pending_if_remaining(association).await?;
            continue;
        };
        let message_id = next_id;
        next_id = next_id.wrapping_add(1).max(1);
        let stream = read_ahead.stream(&session.node, instance, instances.get(index + 1));
        let sent = scu::send_stored(
            association,
            (context_id, &target_syntax),
            message_id,
            instance,
            stream,
            None,
        )
        .await?;
        if sent == Sent::NotConverted {
            progress.record(instance, status::UNABLE_TO_PROCESS);
            progress.pending_if_remaining(association).await?;
            continue;
        }
        let (code, cancelled) =
            scu::await_store_response(association, message_id, Some(request_id)).await?;
        progress.record(instance, code);
        if cancelled {
            return progress.cancel(association).await;
        }
        if progress.counts.remaining > 0 {
            progress.pending(association).await?;
        }
    }
    progress.finish(association).await
}

/// Reads and resolves the identifier. The outer error ends the association;
/// the inner one is a failure status for this request.
async fn resolve(
    session: &Session,
    association: &mut Association,
    command: &Command,
) -> Result<(Encoding, Result<Vec<StoredInstance>, Failure>), DimseError> {
    let data = match command::has_data_set(&command.set) {
        true => association.receive_data(IDENTIFIER_LIMIT).await?,
        false => Vec::new(),
    };
    let encoding = association
        .context(command.context_id)
        .and_then(|context| Encoding::of_transfer_syntax(&context.transfer_syntax));
    if !session.rights.retrieve {
        let failure = (
            status::NOT_AUTHORIZED,
            format!("{} may not retrieve", session.calling_ae),
        );
        return Ok((encoding.unwrap_or(Encoding::ImplicitLittle), Err(failure)));
    }
    let identifier = decode_identifier(&data, encoding);
    let resolved = match identifier {
        Ok(identifier) => instances_of(session, &identifier).await,
        Err(failure) => Err(failure),
    };
    Ok((encoding.unwrap_or(Encoding::ImplicitLittle), resolved))
}

/// Returns the stored instances an identifier selects, by the unique keys
/// of its level (lists of UIDs allowed).
async fn instances_of(
    session: &Session,
    identifier: &Identifier,
) -> Result<Vec<StoredInstance>, Failure> {
    let node = &session.node;
    node.read_barrier().await.map_err(unavailable)?;
    let key = |keyword: &str| {
        identifier
            .keys
            .get(keyword)
            .map(String::as_str)
            .unwrap_or("")
    };
    let uids = |keyword: &str| -> Vec<String> {
        key(keyword)
            .split('\\')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect()
    };
    let catalog = &node.catalog;
    let failed = |error| unavailable(NodeError::from(error));
    let mut instances = Vec::new();
    match identifier.level {
        Level::Patient => {
            let patient = key("PatientID");
            if patient.is_empty() {
                return Err(missing_key("PatientID"));
            }
            let keys = BTreeMap::from([("PatientID".to_string(), patient.to_string())]);
            let studies = catalog.query(Level::Study, &keys, 0, 0).map_err(failed)?;
            for study in studies.records {
                let uid = study
                    .attributes
                    .get("StudyInstanceUID")
                    .cloned()
                    .unwrap_or_default();
                instances.extend(catalog.instances_of(&uid, None).map_err(failed)?);
            }
        }
        Level::Study => {
            let studies = non_empty(uids("StudyInstanceUID"), "StudyInstanceUID")?;
            for study in studies {
                instances.extend(catalog.instances_of(&study, None).map_err(failed)?);
            }
        }
        Level::Series => {
            for series in non_empty(uids("SeriesInstanceUID"), "SeriesInstanceUID")? {
                let keys = BTreeMap::from([("SeriesInstanceUID".to_string(), series.clone())]);
                let found = catalog.query(Level::Series, &keys, 0, 0).map_err(failed)?;
                for record in found.records {
                    let study = record
                        .attributes
                        .get("StudyInstanceUID")
                        .cloned()
                        .unwrap_or_default();
                    instances.extend(
                        catalog
                            .instances_of(&study, Some(&series))
                            .map_err(failed)?,
                    );
                }
            }
        }
        Level::Instance => {
            for uid in non_empty(uids("SOPInstanceUID"), "SOPInstanceUID")? {
                instances.extend(catalog.instance(&uid).map_err(failed)?);
            }
        }
    }
    Ok(instances)
}

fn non_empty(uids: Vec<String>, keyword: &str) -> Result<Vec<String>, Failure> {
    if uids.is_empty() {
        return Err(missing_key(keyword));
    }
    Ok(uids)
}

fn missing_key(keyword: &str) -> Failure {
    (
        status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
        format!("missing unique key {keyword}"),
    )
}

/// Returns the address and AE title of the C-MOVE destination, or 0xA801.
fn destination(session: &Session, command: &Command) -> Result<(String, String), Failure> {
    let wanted = command
        .set
        .text(command::MOVE_DESTINATION)
        .unwrap_or_default();
    let config = &session.node.config.dimse;
    let peer = config
        .peer(&wanted)
        .filter(|peer| peer.move_destination && peer.port != 0 && !peer.host.is_empty());
    match peer {
        Some(peer) => Ok((
            format!("{}:{}", peer.host, peer.port),
            peer.ae_title.trim().to_string(),
        )),
        None => Err((
            status::MOVE_DESTINATION_UNKNOWN,
            format!("unknown move destination {wanted}"),
        )),
    }
}

fn context_pairs(instances: &[StoredInstance]) -> Vec<(String, String)> {
    instances.iter().map(context_pair).collect()
}

fn context_pair(instance: &StoredInstance) -> (String, String) {
    let attributes = instance.stored.attributes.clone().unwrap_or_default();
    (attributes.sop_class_uid, attributes.transfer_syntax_uid)
}

fn count(n: usize) -> u16 {
    n.min(u16::MAX as usize) as u16
}

impl<'a> Progress<'a> {
    fn new(
        session: &'a Session,
        command: &'a Command,
        response_field: u16,
        encoding: Encoding,
    ) -> Self {
        let service = match response_field {
            command::C_MOVE_RSP => "C-MOVE",
            _ => "C-GET",
        };
        Self {
            command,
            metrics: &session.node.metrics.dimse,
            service,
            response_field,
            counts: SubOperations::default(),
            failed_uids: Vec::new(),
            encoding,
        }
    }

    fn record(&mut self, instance: &StoredInstance, code: u16) {
        self.counts.remaining = self.counts.remaining.saturating_sub(1);
        let outcome = match classify(code) {
            Outcome::Completed => {
                self.counts.completed += 1;
                "completed"
            }
            Outcome::Warning => {
                self.counts.warning += 1;
                "warning"
            }
            Outcome::Failed => {
                self.counts.failed += 1;
                self.failed_uids.push(sop_uid(instance));
                "failed"
            }
        };
        self.metrics
            .sub_operations
            .with_label_values(&[self.service, outcome])
            .inc();
    }

    fn fail_all(&mut self, instances: &[&StoredInstance]) {
        for instance in instances {
            self.record(instance, status::UNABLE_TO_PROCESS);
        }
    }

    async fn pending_if_remaining(&self, association: &mut Association) -> Result<(), DimseError> {
        if self.counts.remaining == 0 {
            return Ok(());
        }
        self.pending(association).await
    }

    async fn pending(&self, association: &mut Association) -> Result<(), DimseError> {
        let mut response = command::response(
            &self.command.set,
            self.response_field,
            status::PENDING,
            false,
        );
        self.counts.write(&mut response, true);
        association
            .send(self.command.context_id, &response, None)
            .await
    }

    async fn finish(&self, association: &mut Association) -> Result<(), DimseError> {
        let code = self.counts.final_status();
        self.send_final(association, code).await
    }

    async fn cancel(&self, association: &mut Association) -> Result<(), DimseError> {
        self.send_final(association, status::CANCEL).await
    }

    async fn send_final(&self, association: &mut Association, code: u16) -> Result<(), DimseError> {
        let identifier = self.failed_identifier();
        let mut response = command::response(
            &self.command.set,
            self.response_field,
            code,
            identifier.is_some(),
        );
        self.counts.write(&mut response, false);
        tracing::info!(
            status = code,
            completed = self.counts.completed,
            failed = self.counts.failed,
            "retrieve finished"
        );
        association
            .send(self.command.context_id, &response, identifier.as_deref())
            .await
    }

    /// A failure before any sub-operation: the status and Error Comment only.
    async fn fail(
        &self,
        association: &mut Association,
        code: u16,
        comment: &str,
    ) -> Result<(), DimseError> {
        tracing::info!(status = code, %comment, "retrieve rejected");
        let response = command::response(&self.command.set, self.response_field, code, false);
        let response = command::with_error_comment(response, comment);
        association
            .send(self.command.context_id, &response, None)
            .await
    }

    fn failed_identifier(&self) -> Option<Vec<u8>> {
        if self.failed_uids.is_empty() {
            return None;
        }
        let mut set = DataSet::default();
        set.put_text(
            FAILED_SOP_INSTANCE_UID_LIST,
            VR::UI,
            &self.failed_uids.join("\\"),
        );
        Some(set.encode(self.encoding))
    }
}

fn sop_uid(instance: &StoredInstance) -> String {
    instance
        .stored
        .attributes
        .as_ref()
        .map(|a| a.sop_instance_uid.clone())
        .unwrap_or_default()
}
