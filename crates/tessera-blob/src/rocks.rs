//! The RocksDB backend of [`ShardStore`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor,
    DBCompressionType, Direction, ErrorKind, IteratorMode, Options, WriteBatch, WriteOptions, DB,
};

use crate::{BlobError, BlobId, ShardIdentity, ShardStore};

const CHUNKS: &str = "chunks";
const MANIFESTS: &str = "manifests";
const PENDING: &str = "pending";
const META: &str = "meta";

const IDENTITY_KEY: &[u8] = b"shard-identity";

/// Chunk values at or above this size go to blob files instead of SST files.
/// Full chunks are far larger, so only the short last chunks of small blobs stay
/// in SST files. The other column families keep every value in SST files.
const MIN_BLOB_SIZE: u64 = 64 * 1024;

/// Memtable memory of one shard, all column families together. Chunks of
/// 64 KiB and more leave the memtable for blob files at each flush.
const WRITE_BUFFER_BYTES: usize = 64 << 20;

/// Block cache of one shard, holding its index and filter blocks too, so
/// that a shard's memory stays the same however many blobs it holds.
const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// A [`ShardStore`] on one RocksDB instance in its own directory.
///
/// Each record kind has its own column family. The chunk family uses integrated
/// BlobDB, so a flush writes chunk bytes to blob files and compaction rewrites only
/// keys and blob references. Blob garbage collection relocates live chunks out of
/// the oldest blob files during compaction, which reclaims the space of deleted ones.
pub struct RocksShard {
    db: DB,
    location: String,
}

impl RocksShard {
    /// Opens the shard at `dir`, creating the directory and database when missing.
    pub fn open(dir: &Path) -> Result<RocksShard, BlobError> {
        let location = dir.display().to_string();

        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let families = [
            ColumnFamilyDescriptor::new(CHUNKS, chunk_options(&cache)),
            ColumnFamilyDescriptor::new(MANIFESTS, table_options(&cache, true)),
            ColumnFamilyDescriptor::new(PENDING, table_options(&cache, false)),
            ColumnFamilyDescriptor::new(META, table_options(&cache, false)),
        ];
        let db = DB::open_cf_descriptors(&db_options(), dir, families).map_err(|source| {
            BlobError::Storage {
                action: "open rocksdb".to_string(),
                shard: location.clone(),
                source: Box::new(source),
            }
        })?;

        Ok(RocksShard { db, location })
    }

    fn family(&self, name: &str) -> Result<Arc<BoundColumnFamily<'_>>, BlobError> {
        self.db.cf_handle(name).ok_or_else(|| BlobError::Storage {
            action: format!("open column family {name}"),
            shard: self.location.clone(),
            source: "column family not found".into(),
        })
    }

    fn storage_error(&self, action: String, source: rocksdb::Error) -> BlobError {
        BlobError::Storage {
            action,
            shard: self.location.clone(),
            source: Box::new(source),
        }
    }

    fn invalid_record(&self, action: String, detail: String) -> BlobError {
        BlobError::Storage {
            action,
            shard: self.location.clone(),
            source: detail.into(),
        }
    }

    fn write_durably(
        &self,
        batch: WriteBatch,
        action: impl FnOnce() -> String,
    ) -> Result<(), BlobError> {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db
            .write_opt(batch, &options)
            .map_err(|source| self.storage_error(action(), source))
    }
}

impl ShardStore for RocksShard {
    fn location(&self) -> &str {
        &self.location
    }

    fn identity(&self) -> Result<Option<ShardIdentity>, BlobError> {
        let meta = self.family(META)?;
        let value = self
            .db
            .get_cf(&meta, IDENTITY_KEY)
            .map_err(|source| self.storage_error("read shard identity".to_string(), source))?;

        let Some(value) = value else {
            return Ok(None);
        };

        decode_identity(&value).map(Some).ok_or_else(|| {
            let detail = format!("expected 8 bytes, found {}", value.len());
            self.invalid_record("decode shard identity".to_string(), detail)
        })
    }

    fn set_identity(&self, identity: ShardIdentity) -> Result<(), BlobError> {
        let meta = self.family(META)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(&meta, IDENTITY_KEY, encode_identity(identity));
        self.write_durably(batch, || "write shard identity".to_string())
    }

    fn put_chunk(
        &self,
        blob: &BlobId,
        index: u32,
        data: &[u8],
        written_at: SystemTime,
    ) -> Result<(), BlobError> {
        let chunks = self.family(CHUNKS)?;
        let pending = self.family(PENDING)?;
        let action = || format!("write chunk {index} of blob {blob}");

        let mut batch = WriteBatch::default();
        batch.put_cf(&chunks, chunk_key(blob, index), data);

        let marked = self
            .db
            .get_pinned_cf(&pending, blob.as_bytes())
            .map_err(|source| self.storage_error(action(), source))?
            .is_some();
        if !marked {
            batch.put_cf(&pending, blob.as_bytes(), encode_time(written_at));
        }

        self.db
            .write(batch)
            .map_err(|source| self.storage_error(action(), source))
    }

    fn get_chunk(&self, blob: &BlobId, index: u32) -> Result<Option<Bytes>, BlobError> {
        let chunks = self.family(CHUNKS)?;
        match self.db.get_cf(&chunks, chunk_key(blob, index)) {
            Ok(value) => Ok(value.map(Bytes::from)),
            Err(error) if error.kind() == ErrorKind::Corruption => Err(BlobError::Corrupt {
                blob: *blob,
                index,
                reason: format!("rocksdb in shard {}: {error}", self.location),
            }),
            Err(error) => {
                Err(self.storage_error(format!("read chunk {index} of blob {blob}"), error))
            }
        }
    }

    fn put_manifest(&self, blob: &BlobId, encoded: &[u8]) -> Result<(), BlobError> {
        let manifests = self.family(MANIFESTS)?;
        let pending = self.family(PENDING)?;

        let mut batch = WriteBatch::default();
        batch.put_cf(&manifests, blob.as_bytes(), encoded);
        batch.delete_cf(&pending, blob.as_bytes());
        self.write_durably(batch, || format!("write manifest of blob {blob}"))
    }

    fn get_manifest(&self, blob: &BlobId) -> Result<Option<Bytes>, BlobError> {
        let manifests = self.family(MANIFESTS)?;
        let value = self
            .db
            .get_cf(&manifests, blob.as_bytes())
            .map_err(|source| {
                self.storage_error(format!("read manifest of blob {blob}"), source)
            })?;
        Ok(value.map(Bytes::from))
    }

    fn manifests_after(
        &self,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, Bytes)>, BlobError> {
        let manifests = self.family(MANIFESTS)?;
        let mode = match after {
            Some(cursor) => IteratorMode::From(cursor.as_bytes(), Direction::Forward),
            None => IteratorMode::Start,
        };

        let mut records = Vec::new();
        for item in self.db.iterator_cf(&manifests, mode) {
            if records.len() == limit {
                break;
            }

            let (key, value) =
                item.map_err(|source| self.storage_error("iterate manifests".to_string(), source))?;
            let blob = self.decode_key(&key, "iterate manifests")?;
            if Some(&blob) == after {
                continue;
            }

            records.push((blob, Bytes::from(value.into_vec())));
        }

        Ok(records)
    }

    fn pending(&self) -> Result<Vec<(BlobId, SystemTime)>, BlobError> {
        let pending = self.family(PENDING)?;

        let mut marks = Vec::new();
        for item in self.db.iterator_cf(&pending, IteratorMode::Start) {
            let (key, value) = item.map_err(|source| {
                self.storage_error("iterate pending marks".to_string(), source)
            })?;
            let blob = self.decode_key(&key, "iterate pending marks")?;
            let written_at = decode_time(&value).ok_or_else(|| {
                let detail = format!("time of blob {blob} is {} bytes, expected 8", value.len());
                self.invalid_record("iterate pending marks".to_string(), detail)
            })?;
            marks.push((blob, written_at));
        }

        Ok(marks)
    }

    fn pending_mark(&self, blob: &BlobId) -> Result<Option<SystemTime>, BlobError> {
        let pending = self.family(PENDING)?;
        let action = || format!("read pending mark of blob {blob}");
        let value = self
            .db
            .get_cf(&pending, blob.as_bytes())
            .map_err(|source| self.storage_error(action(), source))?;

        let Some(value) = value else {
            return Ok(None);
        };

        decode_time(&value).map(Some).ok_or_else(|| {
            let detail = format!("expected 8 bytes, found {}", value.len());
            self.invalid_record(action(), detail)
        })
    }

    fn clear_pending(&self, blob: &BlobId) -> Result<(), BlobError> {
        let pending = self.family(PENDING)?;
        self.db
            .delete_cf(&pending, blob.as_bytes())
            .map_err(|source| {
                self.storage_error(format!("clear pending mark of blob {blob}"), source)
            })
    }

    fn delete_blob(&self, blob: &BlobId) -> Result<(), BlobError> {
        let chunks = self.family(CHUNKS)?;
        let manifests = self.family(MANIFESTS)?;
        let pending = self.family(PENDING)?;

        let mut batch = WriteBatch::default();
        batch.delete_cf(&manifests, blob.as_bytes());
        batch.delete_cf(&pending, blob.as_bytes());
        batch.delete_range_cf(&chunks, &chunk_key(blob, 0)[..], &chunk_range_end(blob)[..]);
        self.write_durably(batch, || format!("delete blob {blob}"))
    }

    fn sync(&self) -> Result<(), BlobError> {
        self.db
            .flush_wal(true)
            .map_err(|source| self.storage_error("sync write-ahead log".to_string(), source))
    }

    /// Writes the chunks, the manifest and the removal of the pending mark in
    /// one synced batch. RocksDB syncs every write-ahead log file that contains
    /// unsynced writes before a synced write returns, so earlier `put_chunk`
    /// writes become durable with it.
    fn put_chunks_and_manifest(
        &self,
        blob: &BlobId,
        first_index: u32,
        chunks: &[Bytes],
        encoded: &[u8],
    ) -> Result<(), BlobError> {
        let chunk_family = self.family(CHUNKS)?;
        let manifests = self.family(MANIFESTS)?;
        let pending = self.family(PENDING)?;

        let mut batch = WriteBatch::default();
        for (offset, chunk) in chunks.iter().enumerate() {
            let index = first_index + offset as u32;
            batch.put_cf(&chunk_family, chunk_key(blob, index), chunk);
        }
        batch.put_cf(&manifests, blob.as_bytes(), encoded);
        batch.delete_cf(&pending, blob.as_bytes());
        self.write_durably(batch, || {
            format!("write chunks and manifest of blob {blob}")
        })
    }
}

impl RocksShard {
    fn decode_key(&self, key: &[u8], action: &str) -> Result<BlobId, BlobError> {
        BlobId::from_slice(key).map_err(|_| {
            let detail = format!("key {} is not a 32-byte blob id", hex::encode(key));
            self.invalid_record(action.to_string(), detail)
        })
    }
}

impl std::fmt::Debug for RocksShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksShard")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn db_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_db_write_buffer_size(WRITE_BUFFER_BYTES);
    options
}

fn chunk_options(cache: &Cache) -> Options {
    let mut options = table_options(cache, false);
    options.set_enable_blob_files(true);
    options.set_min_blob_size(MIN_BLOB_SIZE);
    options.set_enable_blob_gc(true);

    // No compression: LZ4 barely shrinks noisy 16-bit pixel data and cannot
    // shrink JPEG or other compressed transfer syntaxes, yet it cost about 8%
    // of the node's CPU during ingest. Each blob file records its own
    // compression type, so files written with LZ4 earlier stay readable.
    options.set_blob_compression_type(DBCompressionType::None);
    options
}

/// Tables with partitioned index (and, with `bloom`, filter) blocks in the
/// shard's cache; only their top level stays pinned.
fn table_options(cache: &Cache, bloom: bool) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    if bloom {
        table.set_bloom_filter(10.0, false);
        table.set_partition_filters(true);
    }
    table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_top_level_index_and_filter(true);

    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    options
}

/// Chunk keys are the blob id followed by the big-endian chunk index, so that a
/// blob's chunks sort together and in index order.
fn chunk_key(blob: &BlobId, index: u32) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(blob.as_bytes());
    key[32..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Exclusive end of the chunk keys of `blob`. It sorts after the key of index
/// `u32::MAX` because it is longer and has that key as a prefix, and before the
/// keys of every greater blob id.
fn chunk_range_end(blob: &BlobId) -> [u8; 37] {
    let mut key = [0xffu8; 37];
    key[..32].copy_from_slice(blob.as_bytes());
    key
}

fn encode_identity(identity: ShardIdentity) -> [u8; 8] {
    let mut value = [0u8; 8];
    value[..4].copy_from_slice(&identity.index.to_be_bytes());
    value[4..].copy_from_slice(&identity.count.to_be_bytes());
    value
}

fn decode_identity(value: &[u8]) -> Option<ShardIdentity> {
    let value: [u8; 8] = value.try_into().ok()?;
    Some(ShardIdentity {
        index: u32::from_be_bytes(value[..4].try_into().ok()?),
        count: u32::from_be_bytes(value[4..].try_into().ok()?),
    })
}

/// Encodes a time as big-endian milliseconds since the Unix epoch, clamping
/// earlier times to the epoch.
fn encode_time(time: SystemTime) -> [u8; 8] {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let millis = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
    millis.to_be_bytes()
}

fn decode_time(value: &[u8]) -> Option<SystemTime> {
    let millis = u64::from_be_bytes(value.try_into().ok()?);
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}
