//! An in-memory backend of [`ShardStore`] for tests.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;

use crate::{BlobError, BlobId, ShardIdentity, ShardStore};

/// A [`ShardStore`] that keeps every record in memory.
///
/// Clones share the same records, so a test reopens the shard by cloning it.
/// Every write counts as durable at once, so this backend cannot model a crash.
#[derive(Clone, Debug)]
pub struct MemoryShard {
    location: String,
    records: Arc<Mutex<Records>>,
}

#[derive(Debug, Default)]
struct Records {
    identity: Option<ShardIdentity>,
    chunks: BTreeMap<(BlobId, u32), Bytes>,
    manifests: BTreeMap<BlobId, Bytes>,
    pending: BTreeMap<BlobId, SystemTime>,
}

impl MemoryShard {
    /// Creates an empty shard. The `location` only appears in error messages.
    pub fn new(location: impl Into<String>) -> MemoryShard {
        MemoryShard {
            location: location.into(),
            records: Arc::default(),
        }
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        // Writes below are map operations that do not panic midway, so the
        // records behind a poisoned lock are still consistent.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ShardStore for MemoryShard {
    fn location(&self) -> &str {
        &self.location
    }

    fn identity(&self) -> Result<Option<ShardIdentity>, BlobError> {
        Ok(self.records().identity)
    }

    fn set_identity(&self, identity: ShardIdentity) -> Result<(), BlobError> {
        self.records().identity = Some(identity);
        Ok(())
    }

    fn put_chunk(
        &self,
        blob: &BlobId,
        index: u32,
        data: &[u8],
        written_at: SystemTime,
    ) -> Result<(), BlobError> {
        let mut records = self.records();
        records
            .chunks
            .insert((*blob, index), Bytes::copy_from_slice(data));
        records.pending.entry(*blob).or_insert(written_at);
        Ok(())
    }

    fn get_chunk(&self, blob: &BlobId, index: u32) -> Result<Option<Bytes>, BlobError> {
        Ok(self.records().chunks.get(&(*blob, index)).cloned())
    }

    fn put_manifest(&self, blob: &BlobId, encoded: &[u8]) -> Result<(), BlobError> {
        let mut records = self.records();
        records
            .manifests
            .insert(*blob, Bytes::copy_from_slice(encoded));
        records.pending.remove(blob);
        Ok(())
    }

    fn get_manifest(&self, blob: &BlobId) -> Result<Option<Bytes>, BlobError> {
        Ok(self.records().manifests.get(blob).cloned())
    }

    fn manifests_after(
        &self,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, Bytes)>, BlobError> {
        let start = match after {
            Some(cursor) => Bound::Excluded(*cursor),
            None => Bound::Unbounded,
        };

        let records = self.records();
        let page = records
            .manifests
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|(blob, encoded)| (*blob, encoded.clone()))
            .collect();
        Ok(page)
    }

    fn pending(&self) -> Result<Vec<(BlobId, SystemTime)>, BlobError> {
        let records = self.records();
        Ok(records
            .pending
            .iter()
            .map(|(blob, at)| (*blob, *at))
            .collect())
    }

    fn pending_mark(&self, blob: &BlobId) -> Result<Option<SystemTime>, BlobError> {
        Ok(self.records().pending.get(blob).copied())
    }

    fn clear_pending(&self, blob: &BlobId) -> Result<(), BlobError> {
        self.records().pending.remove(blob);
        Ok(())
    }

    fn delete_blob(&self, blob: &BlobId) -> Result<(), BlobError> {
        let mut records = self.records();
        records.manifests.remove(blob);
        records.pending.remove(blob);

        let first = (*blob, 0);
        let last = (*blob, u32::MAX);
        let indexes: Vec<_> = records
            .chunks
            .range(first..=last)
            .map(|(key, _)| *key)
            .collect();
        for key in indexes {
            records.chunks.remove(&key);
        }

        Ok(())
    }

    fn sync(&self) -> Result<(), BlobError> {
        Ok(())
    }
}
