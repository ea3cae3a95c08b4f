//! openraft's log storage on the catalog database. Votes and appends are
//! synced to disk before they are reported to openraft as done.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, StorageIOError};
use rocksdb::{WriteBatch, WriteOptions, DB};

use crate::db::{self, index_key, CF_LOG, CF_RAFT};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const KEY_VOTE: &[u8] = b"vote";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
const KEY_COMMITTED: &[u8] = b"committed";

/// The Raft log. Cloning shares the database; clones serve as log readers.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
}

impl LogStore {
    pub fn new(db: Arc<DB>) -> Self {
        Self { db }
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        let bytes = self
            .db
            .get_cf(&db::cf(&self.db, CF_RAFT), key)
            .map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let value =
            bincode::deserialize(&bytes).map_err(|e| StorageIOError::read(AnyError::new(&*e)))?;
        Ok(Some(value))
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        self.write_meta(key, value, true)
    }

    /// Writes a metadata value, synced when `sync` is set.
    fn write_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        sync: bool,
    ) -> Result<(), StorageError> {
        let bytes = bincode::serialize(value).expect("raft metadata always serializes");
        let family = db::cf(&self.db, CF_RAFT);
        let written = if sync {
            db::blocking(|| self.db.put_cf_opt(&family, key, bytes, &synced()))
        } else {
            self.db.put_cf(&family, key, bytes)
        };
        written.map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        Ok(())
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let mut iter = self
            .db
            .iterator_cf(&db::cf(&self.db, CF_LOG), rocksdb::IteratorMode::End);
        let Some(item) = iter.next() else {
            return Ok(None);
        };
        let (_, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
        let entry: Entry = decode_entry(&value)?;
        Ok(Some(entry.log_id))
    }
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

fn decode_entry(bytes: &[u8]) -> Result<Entry, StorageError> {
    bincode::deserialize(bytes).map_err(|e| StorageIOError::read_logs(AnyError::new(&*e)).into())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            std::ops::Bound::Included(i) => *i,
            std::ops::Bound::Excluded(i) => *i + 1,
            std::ops::Bound::Unbounded => 0,
        };
        let mode = rocksdb::IteratorMode::From(&index_key(start), rocksdb::Direction::Forward);

        let mut entries = Vec::new();
        for item in self.db.iterator_cf(&db::cf(&self.db, CF_LOG), mode) {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            if !range.contains(&db::index_from_key(&key)) {
                break;
            }
            entries.push(decode_entry(&value)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.get_meta(KEY_LAST_PURGED)?;
        let last = self.last_log_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta(KEY_VOTE, vote)
            .map_err(|_| StorageIOError::write_vote(AnyError::error("failed to sync vote")).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(KEY_VOTE)
    }

    /// Saves the commit index without a sync, because openraft treats it as
    /// optional. A stale one only means that a restarted node applies fewer
    /// entries until it learns the commit index again, and the next synced
    /// log write persists it anyway.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_meta(KEY_COMMITTED, &committed, false)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let family = db::cf(&self.db, CF_LOG);
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = bincode::serialize(&entry).expect("log entries always serialize");
            batch.put_cf(&family, index_key(entry.log_id.index), bytes);
        }

        let result = db::blocking(|| self.db.write_opt(batch, &synced()));
        let io_result = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io_result);
        result.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let family = db::cf(&self.db, CF_LOG);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(&family, index_key(log_id.index), index_key(u64::MAX));
        self.db
            .write_opt(batch, &synced())
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.put_meta(KEY_LAST_PURGED, &log_id)?;

        let family = db::cf(&self.db, CF_LOG);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(&family, index_key(0), index_key(log_id.index + 1));
        self.db.write_opt(batch, &synced()).map_err(|e| {
            StorageIOError::new(ErrorSubject::Logs, ErrorVerb::Delete, AnyError::new(&e)).into()
        })
    }
}
