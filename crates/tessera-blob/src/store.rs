//! A node's local blob storage over several shards.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tracing::{debug, warn};

use crate::{BlobError, BlobHasher, BlobId, Manifest, RocksShard, ShardIdentity, ShardStore};

/// Number of locks that serialize writes, commits, deletes and sweeps of one blob.
/// Blobs share a lock when their ids agree in the last byte.
const LOCK_STRIPES: usize = 256;

/// Manifest records read from each shard per call while listing.
const LIST_PAGE: usize = 1024;

/// Count and total size of the committed blobs in a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobStats {
    pub blobs: u64,
    /// Sum of the blob sizes in the manifests, before any compression on disk.
    pub bytes: u64,
}

/// A node's local blob storage over N shards. The shard of a blob is chosen from its id.
///
/// A blob is written chunk by chunk with [`BlobStore::write_chunk`] and exists only
/// once [`BlobStore::commit`] has stored its manifest. Chunks of blobs that never
/// commit are removed by [`BlobStore::sweep_uncommitted`].
pub struct BlobStore {
    shards: Vec<Box<dyn ShardStore>>,
    locks: Vec<Mutex<()>>,
}

impl BlobStore {
    /// Opens or creates `shard_count` RocksDB shards at `root/shard-000`, `root/shard-001`
    /// and so on.
    ///
    /// Each shard stores its position and the shard count, so a reopen with another
    /// count fails with [`BlobError::ShardLayoutMismatch`] before any data moves.
    pub fn open(root: &Path, shard_count: usize) -> Result<BlobStore, BlobError> {
        if shard_count == 0 {
            return Err(BlobError::NoShards);
        }

        std::fs::create_dir_all(root).map_err(|source| BlobError::Io {
            action: "create blob store directory".to_string(),
            path: root.display().to_string(),
            source,
        })?;

        let dirs = (0..shard_count)
            .map(|index| root.join(format!("shard-{index:03}")))
            .collect();
        BlobStore::open_dirs(dirs)
    }

    /// Opens or creates one RocksDB shard in each of `dirs`, in this order.
    ///
    /// The order and count must stay the same across restarts, which the stored
    /// shard identity checks.
    pub fn open_dirs(dirs: Vec<PathBuf>) -> Result<BlobStore, BlobError> {
        if dirs.is_empty() {
            return Err(BlobError::NoShards);
        }

        let count = shard_count_u32(dirs.len());
        let mut shards: Vec<Box<dyn ShardStore>> = Vec::with_capacity(dirs.len());
        for (index, dir) in dirs.iter().enumerate() {
            let shard = RocksShard::open(dir)?;
            claim_identity(&shard, index as u32, count)?;
            shards.push(Box::new(shard));
        }

        Ok(BlobStore::assemble(shards))
    }

    /// Builds a store over shards of any backend, checking or storing each shard's identity.
    pub fn from_shards(shards: Vec<Box<dyn ShardStore>>) -> Result<BlobStore, BlobError> {
        if shards.is_empty() {
            return Err(BlobError::NoShards);
        }

        let count = shard_count_u32(shards.len());
        for (index, shard) in shards.iter().enumerate() {
            claim_identity(shard.as_ref(), index as u32, count)?;
        }

        Ok(BlobStore::assemble(shards))
    }

    fn assemble(shards: Vec<Box<dyn ShardStore>>) -> BlobStore {
        let locks = (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        BlobStore { shards, locks }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Returns the index of the shard that stores `blob`, from the first 8 bytes of its id.
    pub fn shard_index(&self, blob: &BlobId) -> usize {
        let prefix = u64::from_be_bytes(blob.0[..8].try_into().expect("8-byte prefix"));
        (prefix % self.shards.len() as u64) as usize
    }

    pub(crate) fn shard(&self, blob: &BlobId) -> &dyn ShardStore {
        self.shards[self.shard_index(blob)].as_ref()
    }

    fn lock(&self, blob: &BlobId) -> MutexGuard<'_, ()> {
        let stripe = blob.0[31] as usize % LOCK_STRIPES;

        // The mutex guards no data, so a poisoned one is still a valid lock.
        self.locks[stripe]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores chunk `index` of `blob`. The chunk is not durable until [`BlobStore::commit`].
    ///
    /// A write to a blob that is already committed is skipped, because the blob's
    /// bytes are stored already and its committed chunks must not change.
    ///
    /// NOTE: chunks are keyed by blob id, so a writer must know the id before its
    /// first chunk. A single-pass upload has to be hashed first, for example from a
    /// spool file, or its chunks buffered until the id is known.
    pub fn write_chunk(&self, blob: &BlobId, index: u32, data: &[u8]) -> Result<(), BlobError> {
        if u32::try_from(data.len()).is_err() {
            return Err(BlobError::ChunkTooLarge {
                blob: *blob,
                index,
                len: data.len(),
                max: u32::MAX,
            });
        }

        let _guard = self.lock(blob);
        let shard = self.shard(blob);
        if shard.get_manifest(blob)?.is_some() {
            debug!(%blob, index, "chunk write skipped: blob already committed");
            return Ok(());
        }

        shard.put_chunk(blob, index, data, SystemTime::now())
    }

    /// Verifies every chunk is present and matches the manifest hash, makes all
    /// previous writes durable (WAL sync), then writes the manifest durably.
    ///
    /// Only a blob with a committed manifest exists. The chunks must also hash to
    /// the manifest's blob id as one stream. A commit of a blob that is already
    /// committed succeeds without reading chunks when the manifests are equal, and
    /// fails with [`BlobError::ManifestConflict`] otherwise.
    pub fn commit(&self, manifest: &Manifest) -> Result<(), BlobError> {
        manifest.validate()?;

        let blob = &manifest.blob_id;
        let _guard = self.lock(blob);
        if self.is_committed(manifest)? {
            return Ok(());
        }

        let shard = self.shard(blob);
        verify_stored_chunks(shard, manifest)?;
        shard.sync()?;
        shard.put_manifest(blob, &manifest.encode())?;

        debug!(%blob, size = manifest.size, chunks = manifest.chunk_count(), "blob committed");
        Ok(())
    }

    /// Returns whether `manifest` is already committed, failing with
    /// [`BlobError::ManifestConflict`] when another manifest is stored under
    /// its blob id.
    fn is_committed(&self, manifest: &Manifest) -> Result<bool, BlobError> {
        match self.manifest(&manifest.blob_id)? {
            Some(existing) if existing == *manifest => Ok(true),
            Some(_) => Err(BlobError::ManifestConflict {
                blob: manifest.blob_id,
            }),
            None => Ok(false),
        }
    }

    /// Commits `manifest` together with its chunks from `first_index` on, in one
    /// durable write. Chunks before `first_index` must have been written with
    /// [`BlobStore::write_chunk`], and each is read back and checked against the
    /// manifest, because a sweep may have removed them meanwhile.
    ///
    /// The caller has checked the lengths and hashes of `chunks`, as
    /// [`crate::BlobWriter`] does.
    pub(crate) fn commit_chunks(
        &self,
        manifest: &Manifest,
        first_index: u32,
        chunks: &[Bytes],
    ) -> Result<(), BlobError> {
        let blob = &manifest.blob_id;
        let _guard = self.lock(blob);
        if self.is_committed(manifest)? {
            return Ok(());
        }

        let shard = self.shard(blob);
        verify_chunks_before(shard, manifest, first_index)?;
        shard.put_chunks_and_manifest(blob, first_index, chunks, &manifest.encode())?;

        debug!(%blob, size = manifest.size, chunks = manifest.chunk_count(), "blob committed");
        Ok(())
    }

    /// Reads the committed manifest of `blob`, or `None` when the blob does not exist.
    pub fn manifest(&self, blob: &BlobId) -> Result<Option<Manifest>, BlobError> {
        let shard = self.shard(blob);
        let Some(encoded) = shard.get_manifest(blob)? else {
            return Ok(None);
        };

        decode_stored_manifest(shard, blob, &encoded).map(Some)
    }

    /// Returns whether `blob` has a committed manifest.
    pub fn contains(&self, blob: &BlobId) -> Result<bool, BlobError> {
        Ok(self.shard(blob).get_manifest(blob)?.is_some())
    }

    /// Reads one chunk and verifies it against the manifest. Corrupt data gives
    /// [`BlobError::Corrupt`] and a missing chunk [`BlobError::MissingChunk`].
    pub fn read_chunk(&self, manifest: &Manifest, index: u32) -> Result<Bytes, BlobError> {
        let blob = &manifest.blob_id;
        let count = manifest.chunk_count();
        if index >= count {
            return Err(BlobError::ChunkOutOfRange {
                blob: *blob,
                index,
                count,
            });
        }

        let shard = self.shard(blob);
        let data = match shard.get_chunk(blob, index)? {
            Some(data) => data,
            None => return Err(missing_chunk(shard, blob, index)),
        };

        if let Err(error) = manifest.verify_chunk(index, &data) {
            warn!(%blob, index, shard = shard.location(), %error, "corrupt chunk read");
            return Err(error);
        }

        Ok(data)
    }

    /// Removes the manifest and every chunk of `blob` durably. Deleting an absent blob succeeds.
    pub fn delete(&self, blob: &BlobId) -> Result<(), BlobError> {
        let _guard = self.lock(blob);
        self.shard(blob).delete_blob(blob)?;
        debug!(%blob, "blob deleted");
        Ok(())
    }

    /// Returns the ids of all committed blobs in ascending order.
    ///
    /// The whole list is held in memory (32 bytes per blob). Use
    /// [`BlobStore::list_after`] to page through a large store.
    pub fn list(&self) -> Result<Vec<BlobId>, BlobError> {
        let mut ids = Vec::new();
        for shard in &self.shards {
            let mut cursor = None;
            loop {
                let page = shard.manifests_after(cursor.as_ref(), LIST_PAGE)?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                cursor = Some(*last);
                ids.extend(page.into_iter().map(|(blob, _)| blob));
            }
        }

        ids.sort_unstable();
        Ok(ids)
    }

    /// Returns up to `limit` committed blob ids in ascending order, starting after
    /// `after` (exclusive), or from the first one when `after` is `None`.
    pub fn list_after(
        &self,
        after: Option<BlobId>,
        limit: usize,
    ) -> Result<Vec<BlobId>, BlobError> {
        let page = self.manifest_page(after.as_ref(), limit)?;
        Ok(page.into_iter().map(|(blob, _)| blob).collect())
    }

    /// Merges up to `limit` manifest records after `after` from all shards in id order.
    pub(crate) fn manifest_page(
        &self,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, Bytes)>, BlobError> {
        let mut merged = Vec::new();
        for shard in &self.shards {
            merged.extend(shard.manifests_after(after, limit)?);
        }

        merged.sort_unstable_by_key(|(blob, _)| *blob);
        merged.truncate(limit);
        Ok(merged)
    }

    /// Counts the committed blobs and adds up their sizes by reading every manifest.
    pub fn stats(&self) -> Result<BlobStats, BlobError> {
        let mut stats = BlobStats::default();
        for shard in &self.shards {
            let mut cursor = None;
            loop {
                let page = shard.manifests_after(cursor.as_ref(), LIST_PAGE)?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                cursor = Some(*last);

                for (blob, encoded) in &page {
                    let manifest = decode_stored_manifest(shard.as_ref(), blob, encoded)?;
                    stats.blobs += 1;
                    stats.bytes += manifest.size;
                }
            }
        }

        Ok(stats)
    }

    /// Deletes chunks that have no committed manifest and were first written more
    /// than `grace` ago, which are writes that never committed.
    ///
    /// Returns the number of uncommitted blobs whose chunks were deleted. The grace
    /// period must exceed the longest upload, because an upload whose first chunk is
    /// older than `grace` loses its chunks and then fails to commit.
    pub fn sweep_uncommitted(&self, grace: Duration) -> Result<u64, BlobError> {
        let now = SystemTime::now();
        let mut swept = 0;
        for shard in &self.shards {
            for (blob, _) in shard.pending()? {
                if self.sweep_blob(shard.as_ref(), &blob, now, grace)? {
                    swept += 1;
                }
            }
        }

        debug!(swept, "uncommitted blobs swept");
        Ok(swept)
    }

    /// Deletes the chunks of one blob if it is still uncommitted and its pending
    /// mark is older than `grace`. Returns whether it deleted them.
    fn sweep_blob(
        &self,
        shard: &dyn ShardStore,
        blob: &BlobId,
        now: SystemTime,
        grace: Duration,
    ) -> Result<bool, BlobError> {
        let _guard = self.lock(blob);

        // The mark is read again under the lock, because a commit or a delete
        // and a new upload may have replaced it since the listing.
        let Some(first_written) = shard.pending_mark(blob)? else {
            return Ok(false);
        };
        let age = now.duration_since(first_written).unwrap_or(Duration::ZERO);
        if age < grace {
            return Ok(false);
        }

        if shard.get_manifest(blob)?.is_some() {
            shard.clear_pending(blob)?;
            return Ok(false);
        }

        shard.delete_blob(blob)?;
        debug!(%blob, age_secs = age.as_secs(), "uncommitted chunks deleted");
        Ok(true)
    }

    /// Test hook: overwrites a stored chunk's bytes to simulate disk corruption.
    ///
    /// The first byte is inverted, and an empty chunk becomes one byte long.
    pub fn corrupt_chunk_for_test(&self, blob: &BlobId, index: u32) -> Result<(), BlobError> {
        let _guard = self.lock(blob);
        let shard = self.shard(blob);
        let Some(data) = shard.get_chunk(blob, index)? else {
            return Err(missing_chunk(shard, blob, index));
        };

        let mut damaged = data.to_vec();
        match damaged.first_mut() {
            Some(byte) => *byte = !*byte,
            None => damaged.push(0),
        }

        shard.put_chunk(blob, index, &damaged, SystemTime::now())
    }
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let locations: Vec<&str> = self.shards.iter().map(|shard| shard.location()).collect();
        f.debug_struct("BlobStore")
            .field("shards", &locations)
            .finish_non_exhaustive()
    }
}

/// Checks the stored identity of a shard, or stores one in a new shard.
fn claim_identity(shard: &dyn ShardStore, index: u32, count: u32) -> Result<(), BlobError> {
    let expected = ShardIdentity { index, count };
    match shard.identity()? {
        None => shard.set_identity(expected),
        Some(stored) if stored == expected => Ok(()),
        Some(stored) => Err(BlobError::ShardLayoutMismatch {
            shard: shard.location().to_string(),
            stored_index: stored.index,
            stored_count: stored.count,
            index,
            count,
        }),
    }
}

fn shard_count_u32(count: usize) -> u32 {
    u32::try_from(count).expect("shard count fits in u32")
}

/// Reads every chunk of `manifest` once, checking each chunk and the whole-blob hash.
fn verify_stored_chunks(shard: &dyn ShardStore, manifest: &Manifest) -> Result<(), BlobError> {
    let blob = &manifest.blob_id;
    let mut hasher = BlobHasher::new();
    for index in 0..manifest.chunk_count() {
        let Some(data) = shard.get_chunk(blob, index)? else {
            return Err(missing_chunk(shard, blob, index));
        };
        manifest.verify_chunk(index, &data)?;
        hasher.update(&data);
    }

    let actual = hasher.finish();
    if actual != *blob {
        return Err(BlobError::BlobIdMismatch {
            blob: *blob,
            actual,
        });
    }

    Ok(())
}

/// Reads chunks `0..end` of `manifest` and checks each against its hash.
fn verify_chunks_before(
    shard: &dyn ShardStore,
    manifest: &Manifest,
    end: u32,
) -> Result<(), BlobError> {
    let blob = &manifest.blob_id;
    for index in 0..end {
        let Some(data) = shard.get_chunk(blob, index)? else {
            return Err(missing_chunk(shard, blob, index));
        };
        manifest.verify_chunk(index, &data)?;
    }
    Ok(())
}

/// Decodes a stored manifest and checks that it names the blob it is stored under.
pub(crate) fn decode_stored_manifest(
    shard: &dyn ShardStore,
    blob: &BlobId,
    encoded: &[u8],
) -> Result<Manifest, BlobError> {
    let corrupt = |reason: String| {
        warn!(%blob, shard = shard.location(), %reason, "corrupt manifest found");
        BlobError::CorruptManifest {
            blob: *blob,
            shard: shard.location().to_string(),
            reason,
        }
    };

    let manifest = Manifest::decode(encoded).map_err(|error| corrupt(error.to_string()))?;
    if manifest.blob_id != *blob {
        return Err(corrupt(format!("record names blob {}", manifest.blob_id)));
    }

    Ok(manifest)
}

fn missing_chunk(shard: &dyn ShardStore, blob: &BlobId, index: u32) -> BlobError {
    BlobError::MissingChunk {
        blob: *blob,
        index,
        shard: shard.location().to_string(),
    }
}
