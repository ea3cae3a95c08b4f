//! The catalog's RocksDB instance: Raft log, vote, state machine and index,
//! each in its own column family, so one WAL orders them all.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{BlockBasedIndexType, BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options, DB};

use crate::CatalogError;

pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_RAFT: &str = "raft";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_SNAPSHOT: &str = "snapshot";
pub(crate) const CF_PATIENTS: &str = "patients";
pub(crate) const CF_STUDIES: &str = "studies";
pub(crate) const CF_SERIES: &str = "series";
pub(crate) const CF_INSTANCES: &str = "instances";
pub(crate) const CF_SOP: &str = "sop";
pub(crate) const CF_BLOBS: &str = "blobs";
pub(crate) const CF_JOURNAL: &str = "journal";
pub(crate) const CF_STUDY_INDEX: &str = "study_index";

/// Column families that make up the state machine, and so the snapshot.
pub(crate) const STATE_CFS: [&str; 9] = [
    CF_META,
    CF_PATIENTS,
    CF_STUDIES,
    CF_SERIES,
    CF_INSTANCES,
    CF_SOP,
    CF_BLOBS,
    CF_JOURNAL,
    CF_STUDY_INDEX,
];

const ALL_CFS: [&str; 12] = [
    CF_LOG,
    CF_RAFT,
    CF_META,
    CF_SNAPSHOT,
    CF_PATIENTS,
    CF_STUDIES,
    CF_SERIES,
    CF_INSTANCES,
    CF_SOP,
    CF_BLOBS,
    CF_JOURNAL,
    CF_STUDY_INDEX,
];

/// Memtable memory of all column families together. Without a shared
/// limit each family may hold two 64 MiB memtables.
const WRITE_BUFFER_BYTES: usize = 128 << 20;

/// Block cache shared by all column families. Index and filter blocks live
/// in it too, so that their memory does not grow with the catalog.
const BLOCK_CACHE_BYTES: usize = 128 << 20;

/// Opens (or creates) the catalog database with every column family.
pub fn open_db(path: &Path) -> Result<Arc<DB>, CatalogError> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_db_write_buffer_size(WRITE_BUFFER_BYTES);
    // One write batch spans several column families; flushing them together
    // keeps a checkpoint (a snapshot) consistent across them.
    options.set_atomic_flush(true);

    let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let descriptors = ALL_CFS
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, family_options(&cache)));
    let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(|source| {
        CatalogError::Open {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(Arc::new(db))
}

/// Partitioned index and filter blocks in the shared cache, with only their
/// top level pinned: a catalog of hundreds of millions of instances then
/// keeps a small part of its index in memory.
fn family_options(cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_top_level_index_and_filter(true);

    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    options
}

/// Key of a log entry or journal event: big-endian so keys sort by index.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(crate) fn index_from_key(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&key[..8]);
    u64::from_be_bytes(bytes)
}

/// Joins key parts with NUL, which no UID or index value contains.
pub(crate) fn join_key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// Builds the prefix that selects every key starting with these parts.
pub(crate) fn prefix_key(parts: &[&str]) -> Vec<u8> {
    let mut key = join_key(parts);
    key.push(0);
    key
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> Arc<rocksdb::BoundColumnFamily<'a>> {
    db.cf_handle(name)
        .unwrap_or_else(|| panic!("column family {name} is created at open"))
}

/// Runs a blocking RocksDB call (a synced write, a WAL flush) so that the
/// other tasks of a multi-threaded runtime move to another worker meanwhile.
/// Falls back to a plain call on a current-thread runtime or outside one.
pub(crate) fn blocking<T>(call: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .map(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        .unwrap_or(false);
    if multi_thread {
        tokio::task::block_in_place(call)
    } else {
        call()
    }
}
