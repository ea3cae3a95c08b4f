//! The shard conformance suite against each backend.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tessera_blob::{conformance, MemoryShard, RocksShard};

#[test]
fn rocks_shard_passes_conformance() {
    let base = tempfile::tempdir().unwrap();
    conformance::run(base.path(), RocksShard::open);
}

#[test]
fn memory_shard_passes_conformance() {
    let base = tempfile::tempdir().unwrap();
    let shards: Mutex<HashMap<PathBuf, MemoryShard>> = Mutex::default();

    // Returning a clone for a known directory acts as reopening that shard.
    conformance::run(base.path(), |dir: &Path| {
        let mut shards = shards.lock().unwrap();
        let shard = shards
            .entry(dir.to_path_buf())
            .or_insert_with(|| MemoryShard::new(dir.display().to_string()));
        Ok(shard.clone())
    });
}
