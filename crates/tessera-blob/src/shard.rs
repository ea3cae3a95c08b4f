//! The storage contract of one shard, free of any particular database.

use std::time::SystemTime;

use bytes::Bytes;

use crate::{BlobError, BlobId};

/// Position of a shard in its blob store, stored in the shard so that a
/// reopen with another shard count or directory order is detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardIdentity {
    pub index: u32,
    pub count: u32,
}

/// Record storage of one shard: chunks, manifests, pending marks and a shard identity.
///
/// The store keeps raw bytes and does not interpret manifests. A chunk record is
/// keyed by blob id and chunk index. A manifest record is keyed by blob id. A
/// pending mark records when a blob's first chunk was written, so that writes which
/// never committed can be found and swept. [`crate::conformance::run`] checks
/// every rule stated here, and every backend must pass it.
///
/// Writes from [`ShardStore::put_chunk`] may be lost in a crash until a later
/// [`ShardStore::sync`] returns. The other writes are durable when they return.
/// Writes that return are visible to every later read from any thread.
pub trait ShardStore: Send + Sync + 'static {
    /// Location of the shard, such as its directory, shown in error messages.
    fn location(&self) -> &str;

    /// Reads the identity written by [`ShardStore::set_identity`], or `None` for a new shard.
    fn identity(&self) -> Result<Option<ShardIdentity>, BlobError>;

    /// Stores the shard identity durably, replacing any previous one.
    fn set_identity(&self, identity: ShardIdentity) -> Result<(), BlobError>;

    /// Stores chunk `index` of `blob`, replacing any previous bytes.
    ///
    /// When `blob` has no pending mark, the same atomic write adds one with time
    /// `written_at`, which a backend may round down to whole milliseconds. An
    /// existing mark keeps its earlier time, though concurrent first writes of one
    /// blob may keep either time. The write is not durable until [`ShardStore::sync`].
    fn put_chunk(
        &self,
        blob: &BlobId,
        index: u32,
        data: &[u8],
        written_at: SystemTime,
    ) -> Result<(), BlobError>;

    /// Reads chunk `index` of `blob`, or `None` when it is not stored.
    ///
    /// A backend that detects damaged bytes itself returns [`BlobError::Corrupt`].
    fn get_chunk(&self, blob: &BlobId, index: u32) -> Result<Option<Bytes>, BlobError>;

    /// Stores the encoded manifest of `blob` and removes its pending mark in one
    /// atomic, durable write.
    fn put_manifest(&self, blob: &BlobId, encoded: &[u8]) -> Result<(), BlobError>;

    /// Reads the encoded manifest of `blob`, or `None` when it is not stored.
    fn get_manifest(&self, blob: &BlobId) -> Result<Option<Bytes>, BlobError>;

    /// Returns up to `limit` manifest records in ascending blob id order, starting
    /// after `after` (exclusive), or from the first one when `after` is `None`.
    fn manifests_after(
        &self,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, Bytes)>, BlobError>;

    /// Returns every pending mark as the blob id and the time of its first chunk write.
    fn pending(&self) -> Result<Vec<(BlobId, SystemTime)>, BlobError>;

    /// Reads the pending mark of `blob`, or `None` when it has none.
    fn pending_mark(&self, blob: &BlobId) -> Result<Option<SystemTime>, BlobError>;

    /// Removes the pending mark of `blob` and keeps its chunks.
    fn clear_pending(&self, blob: &BlobId) -> Result<(), BlobError>;

    /// Removes the manifest, every chunk at any index and the pending mark of
    /// `blob` in one atomic, durable write. Removing an absent blob succeeds.
    fn delete_blob(&self, blob: &BlobId) -> Result<(), BlobError>;

    /// Makes every write that returned before this call durable.
    fn sync(&self) -> Result<(), BlobError>;

    /// Stores `chunks` as chunks `first_index`, `first_index + 1` and so on of
    /// `blob`, stores its encoded manifest and removes its pending mark.
    ///
    /// The chunks and the manifest land together or not at all, and every
    /// [`ShardStore::put_chunk`] write that returned before this call is durable
    /// once it returns. The default runs [`ShardStore::put_chunk`] for each
    /// chunk, [`ShardStore::sync`] and [`ShardStore::put_manifest`], which is
    /// not atomic, so a backend that can write them in one batch should.
    fn put_chunks_and_manifest(
        &self,
        blob: &BlobId,
        first_index: u32,
        chunks: &[Bytes],
        encoded: &[u8],
    ) -> Result<(), BlobError> {
        let now = SystemTime::now();
        for (offset, chunk) in chunks.iter().enumerate() {
            self.put_chunk(blob, first_index + offset as u32, chunk, now)?;
        }
        self.sync()?;
        self.put_manifest(blob, encoded)
    }
}
