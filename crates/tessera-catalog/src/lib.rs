//! The replicated catalog of a Tessera node.
//!
//! Every change to the archive is an event (`tessera.v1.Event`) in a Raft log
//! run by openraft. This crate stores that log, the vote and the state machine
//! in one RocksDB database. It applies committed events to the index projection
//! (patients, studies, series, instances, blob placement). It keeps every event
//! in the journal by log index, even after openraft purges its own log behind a
//! snapshot. Applying the same log always gives the same index.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use tessera_catalog::{Catalog, Level};
//!
//! let opened = Catalog::open(std::path::Path::new("/var/lib/tessera/catalog")).unwrap();
//! let mut keys = BTreeMap::new();
//! keys.insert("PatientName".to_string(), "DOE^*".to_string());
//! let page = opened.catalog.query(Level::Study, &keys, 0, 50).unwrap();
//! println!("{} studies match", page.total);
//! ```

mod db;
mod error;
mod index;
mod log_store;
mod projection;
mod records;
mod snapshot;
mod state_machine;
mod types;

pub use error::CatalogError;
pub use index::{Catalog, Level, OpenedCatalog, QueryPage, QueryRecord, StoredInstance};
pub use log_store::LogStore;
pub use records::{BlobRecord, PatientRecord, Sequences, SeriesRecord, StudyRecord};
pub use snapshot::{CatalogSnapshot, IncomingSnapshot};
pub use state_machine::StateMachine;
pub use types::{ApplyResult, NodeAddr, NodeId, Outcome, Proposal, Raft, TypeConfig};

/// Raft types re-exported for the node's network layer.
pub mod raft {
    pub use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, Vote};
}
