//! DIMSE: every node is a DICOM peer on top of the archive.
//!
//! The listener negotiates associations itself on top of the PDU codec of
//! `dicom-ul`, so that it controls rejection reasons, role selection, PDU
//! limits and timeouts. Services: C-ECHO; C-STORE, acknowledged only once
//! the write path reports the instance durable; C-FIND at every level of
//! the Patient Root and Study Root models; C-MOVE to configured
//! destinations and C-GET on the requester's association; and the Storage
//! Commitment Push Model. The C-STORE SCU used by C-MOVE is public for
//! `tessera send`.

mod association;
mod command;
mod commitment;
mod config;
mod error;
mod find;
mod negotiation;
mod part10;
mod retrieve;
mod scu;
mod service;
mod sop_classes;
mod storage_classes;
mod store;
mod transcode;

use std::sync::Arc;

pub use command::status;
pub use config::{DimseConfig, DimsePeer};
pub use error::DimseError;
pub use part10::header_length;
pub use scu::StoreScu;

use crate::node::Node;
use crate::NodeError;

/// Binds the DICOM listener and serves associations in the background;
/// does nothing when `dimse.listen` is empty.
pub async fn spawn_listener(node: Arc<Node>) -> Result<(), NodeError> {
    let listen = node.config.dimse.listen.clone();
    if listen.is_empty() {
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|source| NodeError::Bind {
            addr: listen.clone(),
            source,
        })?;
    let ae_title = node.config.dimse.ae_title.clone();
    tracing::info!(node_id = node.id(), addr = %listen, %ae_title, "DICOM listener started");
    tokio::spawn(service::run_listener(node, listener));
    Ok(())
}
