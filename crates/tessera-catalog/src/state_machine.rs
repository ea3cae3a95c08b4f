//! openraft's state machine: applies committed events to the index and the
//! journal, and builds and installs snapshots of both.

use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, OptionalSend, StorageIOError};
use prost::Message;
use rocksdb::{WriteBatch, DB};
use serde::{Deserialize, Serialize};
use tessera_proto::v1::Event;
use tokio::sync::watch;

use crate::db::{self, index_key, CF_JOURNAL, CF_META, CF_SNAPSHOT};
use crate::projection::apply_event;
use crate::snapshot::{self, CatalogSnapshot, SnapshotDir};
use crate::types::{
    ApplyResult, Entry, LogId, Outcome, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::CatalogError;

const KEY_APPLIED: &[u8] = b"applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
/// Key under which versions before checkpoint snapshots kept a whole
/// snapshot as one value; removed at open.
const KEY_LEGACY_SNAPSHOT: &[u8] = b"current";
const KEY_CHECKPOINT: &[u8] = b"checkpoint";
const KEY_INSTALLING: &[u8] = b"installing";

/// Applies the log to the catalog database. `applied` publishes the last
/// applied index to readers (the change feed, read barriers).
pub struct StateMachine {
    db: Arc<DB>,
    applied: watch::Sender<u64>,
    snapshots: SnapshotDir,
}

/// The current snapshot: its metadata and the name of its checkpoint's
/// directory under the snapshot directory.
#[derive(Serialize, Deserialize)]
struct StoredCheckpoint {
    meta: SnapshotMeta,
    dir: String,
}

impl StateMachine {
    /// Opens the state machine, first finishing a snapshot install that a
    /// crash interrupted: until then the index mixes two states.
    pub(crate) fn new(
        db: Arc<DB>,
        snapshots: SnapshotDir,
    ) -> Result<(Self, watch::Receiver<u64>), CatalogError> {
        if let Some(name) = get_meta::<String>(&db, CF_SNAPSHOT, KEY_INSTALLING)
            .map_err(|e| decode_error("snapshot being installed", e))?
        {
            tracing::warn!(snapshot = %name, "finishing an interrupted snapshot install");
            snapshot::copy_state(&db, &snapshots.path(&name))?;
            db.delete_cf(&db::cf(&db, CF_SNAPSHOT), KEY_INSTALLING)
                .map_err(CatalogError::rocks("clear the install marker"))?;
        }
        db.delete_cf(&db::cf(&db, CF_SNAPSHOT), KEY_LEGACY_SNAPSHOT)
            .map_err(CatalogError::rocks("remove a legacy snapshot"))?;

        let applied = read_applied(&db)
            .map_err(|e| decode_error("applied log id", e))?
            .map(|id| id.index)
            .unwrap_or(0);
        let (sender, receiver) = watch::channel(applied);
        let machine = Self {
            db,
            applied: sender,
            snapshots,
        };
        Ok((machine, receiver))
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

fn decode_error(what: &'static str, error: StorageError) -> CatalogError {
    CatalogError::Decode {
        what,
        key: "meta".into(),
        reason: error.to_string(),
    }
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

        // No sync here: the entries are durable in the log, which shares
        // this write-ahead log, so a crash loses at most index rows that the
        // entries rebuild at restart. The synced purge of the log syncs these
        // writes first, because they precede it in the write-ahead log.
        if let Some(index) = last {
            self.applied.send_replace(index);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    /// Unused: snapshots arrive through `Catalog::incoming_snapshot`, which
    /// writes the leader's files as they stream in.
    async fn begin_receiving_snapshot(&mut self) -> Result<Box<CatalogSnapshot>, StorageError> {
        let incoming = self
            .snapshots
            .incoming()
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        let snapshot = incoming
            .finish()
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        Ok(Box::new(snapshot))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<CatalogSnapshot>,
    ) -> Result<(), StorageError> {
        let rows =
            db::blocking(|| install(&self.db, &self.snapshots, meta, &snapshot)).map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        let applied = meta.last_log_id.map(|id| id.index).unwrap_or(0);
        self.applied.send_replace(applied);
        tracing::info!(snapshot_id = %meta.snapshot_id, applied, rows, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored: Option<StoredCheckpoint> = get_meta(&self.db, CF_SNAPSHOT, KEY_CHECKPOINT)?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let dir = self.snapshots.path(&stored.dir);
        if !dir.is_dir() {
            tracing::warn!(dir = %dir.display(), "the current snapshot's directory is missing");
            return Ok(None);
        }
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(CatalogSnapshot::kept(dir)),
        }))
    }
}

/// Installs a snapshot: moves its checkpoint under the snapshot directory,
/// marks it as being installed, replaces the state column families with its
/// rows and records it as the current snapshot. Returns the rows copied.
/// The applied log id and membership come with the rows: `build` read the
/// metadata from the same checkpoint.
fn install(
    db: &DB,
    snapshots: &SnapshotDir,
    meta: &SnapshotMeta,
    snapshot: &CatalogSnapshot,
) -> Result<u64, CatalogError> {
    let _guard = snapshots.lock();
    let previous = current_dir(db)?;
    let name = snapshots.adopt(snapshot.dir(), &meta.snapshot_id)?;
    write_synced(db, |batch| {
        batch.put_cf(&db::cf(db, CF_SNAPSHOT), KEY_INSTALLING, encode(&name));
    })?;

    let rows = snapshot::copy_state(db, &snapshots.path(&name))?;

    let stored = StoredCheckpoint {
        meta: meta.clone(),
        dir: name.clone(),
    };
    write_synced(db, |batch| {
        let family = db::cf(db, CF_SNAPSHOT);
        batch.put_cf(&family, KEY_CHECKPOINT, encode(&stored));
        batch.delete_cf(&family, KEY_INSTALLING);
    })?;
    snapshots.retain(&[name.as_str(), previous.as_deref().unwrap_or_default()])?;
    Ok(rows)
}

fn current_dir(db: &DB) -> Result<Option<String>, CatalogError> {
    let stored: Option<StoredCheckpoint> = get_meta(db, CF_SNAPSHOT, KEY_CHECKPOINT)
        .map_err(|e| decode_error("current snapshot", e))?;
    Ok(stored.map(|stored| stored.dir))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("snapshot metadata always serializes")
}

fn write_synced(db: &DB, fill: impl FnOnce(&mut WriteBatch)) -> Result<(), CatalogError> {
    let mut batch = WriteBatch::default();
    fill(&mut batch);
    let mut options = rocksdb::WriteOptions::default();
    options.set_sync(true);
    db.write_opt(batch, &options)
        .map_err(CatalogError::rocks("write snapshot metadata"))
}

/// Builds a snapshot as a checkpoint of the database while applying goes on.
pub struct SnapshotBuilder {
    db: Arc<DB>,
    snapshots: SnapshotDir,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (meta, dir) = db::blocking(|| build(&self.db, &self.snapshots))
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        tracing::info!(snapshot_id = %meta.snapshot_id, dir = %dir.display(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(CatalogSnapshot::kept(dir)),
        })
    }
}

/// Checkpoints the database and reads the applied log id and membership
/// from the checkpoint itself, so the metadata matches the rows exactly
/// even though applying went on meanwhile.
fn build(
    db: &DB,
    snapshots: &SnapshotDir,
) -> Result<(SnapshotMeta, std::path::PathBuf), CatalogError> {
    let _guard = snapshots.lock();
    let previous = current_dir(db)?;
    let building = snapshots.checkpoint(db)?;

    let (applied, membership) = {
        let checkpoint = snapshot::open_checkpoint(&building, &[CF_META])?;
        let applied = read_applied(&checkpoint).map_err(|e| decode_error("applied log id", e))?;
        let membership: StoredMembership = get_meta(&checkpoint, CF_META, KEY_MEMBERSHIP)
            .map_err(|e| decode_error("membership", e))?
            .unwrap_or_default();
        (applied, membership)
    };
    let snapshot_id = match applied {
        Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, now_ms()),
        None => format!("0-0-{}", now_ms()),
    };
    let meta = SnapshotMeta {
        last_log_id: applied,
        last_membership: membership,
        snapshot_id,
    };

    let name = snapshots.adopt(&building, &meta.snapshot_id)?;
    let stored = StoredCheckpoint {
        meta: meta.clone(),
        dir: name.clone(),
    };
    write_synced(db, |batch| {
        batch.put_cf(&db::cf(db, CF_SNAPSHOT), KEY_CHECKPOINT, encode(&stored));
    })?;
    // The previous snapshot stays until the next one: a follower may be
    // receiving it right now.
    snapshots.retain(&[name.as_str(), previous.as_deref().unwrap_or_default()])?;
    Ok((meta, snapshots.path(&name)))
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{CF_PATIENTS, CF_STUDIES, STATE_CFS};

    type Rows = Vec<(&'static str, Vec<u8>, Vec<u8>)>;

    fn open(path: &std::path::Path) -> (Arc<DB>, StateMachine) {
        let db = db::open_db(path).expect("open db");
        let snapshots = SnapshotDir::open(path.join("snapshots")).expect("snapshot dir");
        let (machine, _) = StateMachine::new(db.clone(), snapshots).expect("state machine");
        (db, machine)
    }

    fn rows(db: &DB) -> Rows {
        let mut rows = Vec::new();
        for name in STATE_CFS {
            for item in db.iterator_cf(&db::cf(db, name), rocksdb::IteratorMode::Start) {
                let (key, value) = item.expect("row");
                rows.push((name, key.to_vec(), value.to_vec()));
            }
        }
        rows
    }

    fn put(db: &DB, family: &str, key: &[u8], value: &[u8]) {
        db.put_cf(&db::cf(db, family), key, value).expect("put");
    }

    fn applied_at(db: &DB, index: u64) {
        let log_id = LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
        let mut batch = WriteBatch::default();
        put_meta(db, &mut batch, KEY_APPLIED, &Some(log_id));
        db.write(batch).expect("write applied");
    }

    async fn build_now(machine: &mut StateMachine) -> Snapshot<TypeConfig> {
        let mut builder = machine.get_snapshot_builder().await;
        builder.build_snapshot().await.expect("build snapshot")
    }

    /// Builds a source catalog with rows in several families and snapshots it.
    async fn source_snapshot(path: &std::path::Path) -> (Rows, Snapshot<TypeConfig>) {
        let (db, mut machine) = open(path);
        for i in 0..500u32 {
            put(&db, CF_PATIENTS, &i.to_be_bytes(), &[7; 100]);
            put(&db, CF_JOURNAL, &index_key(u64::from(i)), &[i as u8; 300]);
        }
        applied_at(&db, 500);
        let snapshot = build_now(&mut machine).await;
        (rows(&db), snapshot)
    }

    #[tokio::test]
    async fn install_replaces_every_state_row() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (source_rows, snapshot) = source_snapshot(a.path()).await;
        let (db, mut machine) = open(b.path());
        put(&db, CF_STUDIES, b"stale study", b"must go");
        put(&db, CF_PATIENTS, &9999u32.to_be_bytes(), b"must go too");

        machine
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .expect("install");

        assert_eq!(rows(&db), source_rows);
        assert_eq!(read_applied(&db).unwrap().map(|id| id.index), Some(500));
        let current = machine.get_current_snapshot().await.unwrap().expect("kept");
        assert_eq!(current.meta, snapshot.meta);
        assert!(!current.snapshot.files().unwrap().is_empty());
    }

    #[tokio::test]
    async fn install_cut_short_finishes_at_open() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (source_rows, snapshot) = source_snapshot(a.path()).await;
        {
            let (db, machine) = open(b.path());
            put(&db, CF_STUDIES, b"stale study", b"must go");
            // What `install` does before a crash cuts it short: the
            // checkpoint adopted and the marker written, rows half copied.
            let name = machine
                .snapshots
                .adopt(snapshot.snapshot.dir(), &snapshot.meta.snapshot_id)
                .unwrap();
            write_synced(&db, |batch| {
                batch.put_cf(&db::cf(&db, CF_SNAPSHOT), KEY_INSTALLING, encode(&name));
            })
            .unwrap();
            put(&db, CF_PATIENTS, &3u32.to_be_bytes(), &[7; 100]);
        }

        let (db, _machine) = open(b.path());

        assert_eq!(rows(&db), source_rows);
        let marker = db
            .get_cf(&db::cf(&db, CF_SNAPSHOT), KEY_INSTALLING)
            .unwrap();
        assert_eq!(marker, None);
    }

    #[tokio::test]
    async fn build_keeps_two_latest_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let (db, mut machine) = open(dir.path());
        let mut built = Vec::new();
        for index in 1..=4 {
            applied_at(&db, index);
            let snapshot = build_now(&mut machine).await;
            assert_eq!(snapshot.meta.last_log_id.map(|id| id.index), Some(index));
            built.push(snapshot.snapshot.dir().to_path_buf());
        }

        let present: Vec<bool> = built.iter().map(|dir| dir.is_dir()).collect();
        assert_eq!(present, [false, false, true, true]);
        let current = machine
            .get_current_snapshot()
            .await
            .unwrap()
            .expect("current");
        assert_eq!(current.snapshot.dir(), built[3]);
    }
}
