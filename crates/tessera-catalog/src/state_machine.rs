//! openraft's state machine: applies committed events to the index and the
//! journal, and builds and installs snapshots of both.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, OptionalSend, StorageIOError};
use prost::Message;
use rocksdb::{WriteBatch, DB};
use serde::{Deserialize, Serialize};
use tessera_proto::v1::Event;
use tokio::sync::watch;

use crate::db::{self, index_key, CF_JOURNAL, CF_META, CF_SNAPSHOT, STATE_CFS};
use crate::projection::apply_event;
use crate::types::{
    ApplyResult, Entry, LogId, Outcome, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const KEY_APPLIED: &[u8] = b"applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_CURRENT: &[u8] = b"current";

/// Applies the log to the catalog database. `applied` publishes the last
/// applied index to readers (the change feed, read barriers).
pub struct StateMachine {
    db: Arc<DB>,
    applied: watch::Sender<u64>,
}

/// Contents of a snapshot: every state column family, row by row.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    families: Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>,
}

/// A snapshot kept on disk so that it survives a restart.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl StateMachine {
    pub fn new(db: Arc<DB>) -> Result<(Self, watch::Receiver<u64>), StorageError> {
        let applied = read_applied(&db)?.map(|id| id.index).unwrap_or(0);
        let (sender, receiver) = watch::channel(applied);
        Ok((
            Self {
                db,
                applied: sender,
            },
            receiver,
        ))
    }

    fn apply_entry(&self, entry: &Entry) -> Result<ApplyResult, StorageError> {
        let mut batch = WriteBatch::default();
        let index = entry.log_id.index;
        let outcome = match &entry.payload {
            EntryPayload::Blank => Outcome::Applied,
            EntryPayload::Normal(proposal) => {
                self.apply_proposal(&mut batch, index, &proposal.event)?
            }
            EntryPayload::Membership(membership) => {
                let stored = StoredMembership::new(Some(entry.log_id), membership.clone());
                put_meta(&self.db, &mut batch, KEY_MEMBERSHIP, &stored);
                Outcome::Applied
            }
        };

        put_meta(&self.db, &mut batch, KEY_APPLIED, &Some(entry.log_id));
        self.db
            .write(batch)
            .map_err(|e| StorageIOError::apply(entry.log_id, AnyError::new(&e)))?;
        Ok(ApplyResult {
            log_index: index,
            outcome,
        })
    }

    fn apply_proposal(
        &self,
        batch: &mut WriteBatch,
        index: u64,
        bytes: &[u8],
    ) -> Result<Outcome, StorageError> {
        batch.put_cf(&db::cf(&self.db, CF_JOURNAL), index_key(index), bytes);
        let event = match Event::decode(bytes) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(log_index = index, %error, "journaled an undecodable event");
                return Ok(Outcome::Ignored {
                    reason: format!("undecodable event: {error}"),
                });
            }
        };

        apply_event(&self.db, batch, index, &event)
            .map_err(|e| StorageIOError::write_state_machine(AnyError::error(e.to_string())).into())
    }
}

fn put_meta<T: Serialize>(db: &DB, batch: &mut WriteBatch, key: &[u8], value: &T) {
    let bytes = bincode::serialize(value).expect("state machine metadata always serializes");
    batch.put_cf(&db::cf(db, CF_META), key, bytes);
}

fn get_meta<T: serde::de::DeserializeOwned>(
    db: &DB,
    family: &str,
    key: &[u8],
) -> Result<Option<T>, StorageError> {
    let bytes = db
        .get_cf(&db::cf(db, family), key)
        .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let value = bincode::deserialize(&bytes)
        .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&*e)))?;
    Ok(Some(value))
}

fn read_applied(db: &DB) -> Result<Option<LogId>, StorageError> {
    Ok(get_meta::<Option<LogId>>(db, CF_META, KEY_APPLIED)?.flatten())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = read_applied(&self.db)?;
        let membership = get_meta(&self.db, CF_META, KEY_MEMBERSHIP)?.unwrap_or_default();
        Ok((applied, membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        let mut last = None;
        for entry in entries {
            results.push(self.apply_entry(&entry)?);
            last = Some(entry.log_id.index);
        }

        // One WAL sync for the whole batch: the index must not lag the log
        // openraft may purge after a snapshot.
        db::blocking(|| self.db.flush_wal(true))
            .map_err(|e| StorageIOError::write_state_machine(AnyError::new(&e)))?;
        if let Some(index) = last {
            self.applied.send_replace(index);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = bincode::deserialize(&bytes).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&*e))
        })?;

        replace_state(&self.db, &data).map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        save_snapshot(&self.db, meta, bytes)?;
        let applied = meta.last_log_id.map(|id| id.index).unwrap_or(0);
        self.applied.send_replace(applied);
        tracing::info!(snapshot_id = %meta.snapshot_id, applied, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored: Option<StoredSnapshot> = get_meta(&self.db, CF_SNAPSHOT, KEY_CURRENT)?;
        Ok(stored.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

/// Replaces every state column family with the snapshot's rows, atomically.
fn replace_state(db: &DB, data: &SnapshotData) -> Result<(), rocksdb::Error> {
    let mut batch = WriteBatch::default();
    for name in STATE_CFS {
        let family = db::cf(db, name);
        for item in db.iterator_cf(&family, rocksdb::IteratorMode::Start) {
            let (key, _) = item?;
            batch.delete_cf(&family, key);
        }
    }
    for (name, rows) in &data.families {
        let family = db::cf(db, name);
        for (key, value) in rows {
            batch.put_cf(&family, key, value);
        }
    }

    let mut options = rocksdb::WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options)
}

fn save_snapshot(db: &DB, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), StorageError> {
    let stored = StoredSnapshot {
        meta: meta.clone(),
        data,
    };
    let bytes = bincode::serialize(&stored).expect("snapshots always serialize");
    db.put_cf(&db::cf(db, CF_SNAPSHOT), KEY_CURRENT, bytes)
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
    Ok(())
}

/// Builds a snapshot from a consistent RocksDB view while applying goes on.
pub struct SnapshotBuilder {
    db: Arc<DB>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    // TODO: the snapshot is one in-memory buffer of the whole index and journal.
    // Past a few GiB of catalog it should stream RocksDB checkpoint files instead.
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let view = self.db.snapshot();
        let read = |key: &[u8]| -> Result<Option<Vec<u8>>, StorageError> {
            view.get_cf(&db::cf(&self.db, CF_META), key)
                .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)).into())
        };
        let applied: Option<LogId> = read(KEY_APPLIED)?
            .and_then(|b| bincode::deserialize::<Option<LogId>>(&b).ok())
            .flatten();
        let membership: StoredMembership = read(KEY_MEMBERSHIP)?
            .and_then(|b| bincode::deserialize(&b).ok())
            .unwrap_or_default();

        let mut data = SnapshotData {
            families: Vec::new(),
        };
        for name in STATE_CFS {
            let family = db::cf(&self.db, name);
            let mut rows = Vec::new();
            for item in view.iterator_cf(&family, rocksdb::IteratorMode::Start) {
                let (key, value) =
                    item.map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
                rows.push((key.to_vec(), value.to_vec()));
            }
            data.families.push((name.to_string(), rows));
        }

        let bytes = bincode::serialize(&data).expect("snapshots always serialize");
        let snapshot_id = match applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, now_ms()),
            None => format!("0-0-{}", now_ms()),
        };
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id,
        };
        save_snapshot(&self.db, &meta, bytes.clone())?;
        tracing::debug!(snapshot_id = %meta.snapshot_id, bytes = bytes.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
