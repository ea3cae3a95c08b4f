//! BlobStore over RocksDB shards in temporary directories.

use std::time::Duration;

use tempfile::TempDir;
use tessera_blob::{
    BlobError, BlobHasher, BlobId, BlobStats, BlobStore, Chunker, Manifest, MemoryShard,
    ShardStore, DEFAULT_CHUNK_SIZE,
};

const MIB: usize = 1024 * 1024;

/// Deterministic bytes that differ between seeds and offsets.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Cuts `data` into chunks of `chunk_size` and returns them with the manifest.
fn chunk(data: &[u8], chunk_size: u32) -> (Vec<bytes::Bytes>, Manifest) {
    let mut chunker = Chunker::new(chunk_size);
    let mut chunks = chunker.push(data);
    let (last, manifest) = chunker.finish();
    chunks.extend(last);
    (chunks, manifest)
}

fn write_all(store: &BlobStore, manifest: &Manifest, chunks: &[bytes::Bytes]) {
    for (index, chunk) in chunks.iter().enumerate() {
        store
            .write_chunk(&manifest.blob_id, index as u32, chunk)
            .unwrap();
    }
}

/// Writes and commits `data` in chunks of `chunk_size`.
fn store_blob(store: &BlobStore, data: &[u8], chunk_size: u32) -> Manifest {
    let (chunks, manifest) = chunk(data, chunk_size);
    write_all(store, &manifest, &chunks);
    store.commit(&manifest).unwrap();
    manifest
}

fn read_all(store: &BlobStore, manifest: &Manifest) -> Vec<u8> {
    let mut data = Vec::new();
    for index in 0..manifest.chunk_count() {
        data.extend_from_slice(&store.read_chunk(manifest, index).unwrap());
    }
    data
}

fn open_store(shards: usize) -> (TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path(), shards).unwrap();
    (dir, store)
}

#[test]
fn committed_blob_reads_back_exactly() {
    let (_dir, store) = open_store(3);
    let data = pattern(1, 10_000);
    let manifest = store_blob(&store, &data, 1024);

    assert_eq!(read_all(&store, &manifest), data);
    assert!(store.contains(&manifest.blob_id).unwrap());
    assert_eq!(store.manifest(&manifest.blob_id).unwrap(), Some(manifest));
}

#[test]
fn empty_blob_commits_without_chunks() {
    let (_dir, store) = open_store(2);
    let manifest = store_blob(&store, b"", 1024);

    assert_eq!(manifest.chunk_count(), 0);
    assert!(store.contains(&BlobId::of(b"")).unwrap());
}

#[test]
fn commit_with_missing_chunk_fails() {
    let (_dir, store) = open_store(2);
    let (chunks, manifest) = chunk(&pattern(2, 5000), 1024);
    for (index, data) in chunks.iter().enumerate() {
        if index != 2 {
            store
                .write_chunk(&manifest.blob_id, index as u32, data)
                .unwrap();
        }
    }

    let result = store.commit(&manifest);
    assert!(
        matches!(result, Err(BlobError::MissingChunk { index: 2, .. })),
        "{result:?}"
    );
    assert!(!store.contains(&manifest.blob_id).unwrap());
    assert_eq!(store.manifest(&manifest.blob_id).unwrap(), None);
}

#[test]
fn commit_with_wrong_blob_id_fails() {
    let (_dir, store) = open_store(2);
    let (chunks, mut manifest) = chunk(&pattern(3, 3000), 1024);
    manifest.blob_id = BlobId::of(b"some other blob");
    write_all(&store, &manifest, &chunks);

    let result = store.commit(&manifest);
    assert!(
        matches!(result, Err(BlobError::BlobIdMismatch { .. })),
        "{result:?}"
    );
    assert!(!store.contains(&manifest.blob_id).unwrap());
}

#[test]
fn commit_with_changed_chunk_fails() {
    let (_dir, store) = open_store(1);
    let (mut chunks, manifest) = chunk(&pattern(4, 3000), 1024);
    chunks[1] = bytes::Bytes::from(pattern(5, 1024));
    write_all(&store, &manifest, &chunks);

    let result = store.commit(&manifest);
    assert!(
        matches!(result, Err(BlobError::Corrupt { index: 1, .. })),
        "{result:?}"
    );
}

#[test]
fn commit_of_same_manifest_twice_succeeds() {
    let (_dir, store) = open_store(2);
    let manifest = store_blob(&store, &pattern(6, 3000), 1024);

    let again = store.commit(&manifest);
    assert!(again.is_ok(), "{again:?}");
}

#[test]
fn commit_with_other_chunk_size_conflicts() {
    let (_dir, store) = open_store(2);
    let data = pattern(7, 3000);
    store_blob(&store, &data, 1024);

    let (chunks, rechunked) = chunk(&data, 512);
    write_all(&store, &rechunked, &chunks);
    let result = store.commit(&rechunked);
    assert!(
        matches!(result, Err(BlobError::ManifestConflict { .. })),
        "{result:?}"
    );
}

#[test]
fn write_to_committed_blob_keeps_its_chunks() {
    let (_dir, store) = open_store(2);
    let data = pattern(8, 3000);
    let manifest = store_blob(&store, &data, 1024);

    store
        .write_chunk(&manifest.blob_id, 0, &pattern(9, 512))
        .unwrap();
    assert_eq!(read_all(&store, &manifest), data);
}

#[test]
fn corrupt_chunk_read_fails() {
    let (_dir, store) = open_store(2);
    let manifest = store_blob(&store, &pattern(10, 3000), 1024);
    store.corrupt_chunk_for_test(&manifest.blob_id, 1).unwrap();

    let result = store.read_chunk(&manifest, 1);
    assert!(
        matches!(result, Err(BlobError::Corrupt { index: 1, .. })),
        "{result:?}"
    );
    assert!(store.read_chunk(&manifest, 0).is_ok());
}

#[test]
fn scrub_reports_corrupt_chunk() {
    let (_dir, store) = open_store(2);
    let damaged = store_blob(&store, &pattern(11, 3000), 1024);
    store_blob(&store, &pattern(12, 3000), 1024);
    store.corrupt_chunk_for_test(&damaged.blob_id, 2).unwrap();

    let step = store.scrub_step(None, u64::MAX).unwrap();
    assert_eq!(step.corrupt, vec![(damaged.blob_id, 2)]);
    assert!(step.missing.is_empty());
    assert_eq!(step.blobs_checked, 2);
    assert_eq!(step.bytes_checked, 6000);
    assert_eq!(step.next_cursor, None);
}

#[test]
fn scrub_of_clean_store_is_clean() {
    let (_dir, store) = open_store(2);
    store_blob(&store, &pattern(13, 3000), 1024);

    let step = store.scrub_step(None, u64::MAX).unwrap();
    assert!(step.is_clean(), "{step:?}");
}

#[test]
fn scrub_steps_visit_each_blob_once() {
    let (_dir, store) = open_store(3);
    let mut expected: Vec<BlobId> = (0..20)
        .map(|seed| store_blob(&store, &pattern(100 + seed, 700), 256).blob_id)
        .collect();
    expected.sort();
    for blob in &expected {
        store.corrupt_chunk_for_test(blob, 0).unwrap();
    }

    // Each step stops once it has checked 1500 bytes, which is after 3 blobs of 700.
    let mut cursor = None;
    let mut steps = 0;
    let mut reported = Vec::new();
    loop {
        let step = store.scrub_step(cursor, 1500).unwrap();
        steps += 1;
        reported.extend(step.corrupt.iter().map(|(blob, _)| *blob));
        cursor = step.next_cursor;
        if cursor.is_none() || steps > 100 {
            break;
        }
    }

    assert_eq!(reported, expected);
    assert_eq!(steps, 7);
}

#[test]
fn reopened_store_keeps_committed_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(14, 5000);
    let manifest = {
        let store = BlobStore::open(dir.path(), 4).unwrap();
        store_blob(&store, &data, 1024)
    };

    let store = BlobStore::open(dir.path(), 4).unwrap();
    assert_eq!(
        store.manifest(&manifest.blob_id).unwrap(),
        Some(manifest.clone())
    );
    assert_eq!(read_all(&store, &manifest), data);
}

#[test]
fn open_with_other_shard_count_fails() {
    let dir = tempfile::tempdir().unwrap();
    drop(BlobStore::open(dir.path(), 2).unwrap());

    let result = BlobStore::open(dir.path(), 3);
    assert!(
        matches!(
            result,
            Err(BlobError::ShardLayoutMismatch {
                stored_count: 2,
                count: 3,
                ..
            })
        ),
        "{result:?}"
    );
    let message = result.unwrap_err().to_string();
    assert!(message.contains("original shard count"), "{message}");
}

#[test]
fn open_dirs_in_other_order_fails() {
    let base = tempfile::tempdir().unwrap();
    let dirs = vec![base.path().join("disk-a"), base.path().join("disk-b")];
    drop(BlobStore::open_dirs(dirs.clone()).unwrap());

    let swapped = vec![dirs[1].clone(), dirs[0].clone()];
    let result = BlobStore::open_dirs(swapped);
    assert!(
        matches!(
            result,
            Err(BlobError::ShardLayoutMismatch {
                stored_index: 1,
                index: 0,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn open_with_zero_shards_fails() {
    let dir = tempfile::tempdir().unwrap();
    let result = BlobStore::open(dir.path(), 0);
    assert!(matches!(result, Err(BlobError::NoShards)), "{result:?}");
}

#[test]
fn sweep_removes_only_uncommitted_chunks() {
    let (_dir, store) = open_store(2);
    let committed_data = pattern(15, 3000);
    let committed = store_blob(&store, &committed_data, 1024);
    let (chunks, orphan) = chunk(&pattern(16, 3000), 1024);
    write_all(&store, &orphan, &chunks[..2]);

    let swept = store.sweep_uncommitted(Duration::ZERO).unwrap();

    assert_eq!(swept, 1);
    let orphan_read = store.read_chunk(&orphan, 0);
    assert!(
        matches!(orphan_read, Err(BlobError::MissingChunk { index: 0, .. })),
        "{orphan_read:?}"
    );
    assert_eq!(read_all(&store, &committed), committed_data);
}

#[test]
fn sweep_keeps_chunks_within_grace() {
    let (_dir, store) = open_store(2);
    let (chunks, manifest) = chunk(&pattern(17, 3000), 1024);
    write_all(&store, &manifest, &chunks);

    let swept = store.sweep_uncommitted(Duration::from_secs(3600)).unwrap();

    assert_eq!(swept, 0);
    let commit = store.commit(&manifest);
    assert!(commit.is_ok(), "{commit:?}");
}

#[test]
fn sweep_after_corrupt_hook_keeps_committed_blob() {
    let (_dir, store) = open_store(1);
    let manifest = store_blob(&store, &pattern(18, 2000), 1024);
    store.corrupt_chunk_for_test(&manifest.blob_id, 0).unwrap();

    let swept = store.sweep_uncommitted(Duration::ZERO).unwrap();

    assert_eq!(swept, 0);
    assert!(store.contains(&manifest.blob_id).unwrap());
}

#[test]
fn delete_removes_blob() {
    let (_dir, store) = open_store(2);
    let manifest = store_blob(&store, &pattern(19, 3000), 1024);

    store.delete(&manifest.blob_id).unwrap();

    assert!(!store.contains(&manifest.blob_id).unwrap());
    let read = store.read_chunk(&manifest, 0);
    assert!(
        matches!(read, Err(BlobError::MissingChunk { .. })),
        "{read:?}"
    );
    assert!(store.delete(&manifest.blob_id).is_ok());
}

#[test]
fn list_and_stats_cover_all_shards() {
    let (_dir, store) = open_store(3);
    let sizes = [0usize, 1, 1024, 5000, 70_000];
    let mut expected: Vec<BlobId> = sizes
        .iter()
        .enumerate()
        .map(|(seed, &size)| store_blob(&store, &pattern(seed as u64 + 20, size), 1024).blob_id)
        .collect();
    expected.sort();

    let total: u64 = sizes.iter().map(|&size| size as u64).sum();
    assert_eq!(store.list().unwrap(), expected);
    assert_eq!(
        store.list_after(Some(expected[1]), 2).unwrap(),
        expected[2..4]
    );
    assert_eq!(
        store.stats().unwrap(),
        BlobStats {
            blobs: 5,
            bytes: total
        }
    );
}

#[test]
fn read_chunk_past_end_fails() {
    let (_dir, store) = open_store(1);
    let manifest = store_blob(&store, &pattern(30, 100), 1024);

    let result = store.read_chunk(&manifest, 1);
    assert!(
        matches!(
            result,
            Err(BlobError::ChunkOutOfRange {
                index: 1,
                count: 1,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn memory_shards_back_a_store() {
    let shards: Vec<Box<dyn ShardStore>> = vec![
        Box::new(MemoryShard::new("memory-0")),
        Box::new(MemoryShard::new("memory-1")),
    ];
    let store = BlobStore::from_shards(shards).unwrap();
    let data = pattern(31, 5000);
    let manifest = store_blob(&store, &data, 1024);

    assert_eq!(read_all(&store, &manifest), data);
}

/// Writes and reads a 40 MiB blob one 1 MiB piece and one chunk at a time, so no
/// buffer contains the whole blob.
///
/// Chunks are keyed by blob id, so the writer hashes the stream in a first pass, as
/// a node would over a spooled upload, and writes each chunk as it completes in the
/// second pass.
#[test]
fn forty_mib_blob_streams_through() {
    const PIECES: usize = 40;
    let (_dir, store) = open_store(2);
    let piece = |index: usize| pattern(1000 + index as u64, MIB);

    let mut first_pass = BlobHasher::new();
    for index in 0..PIECES {
        first_pass.update(&piece(index));
    }
    let blob = first_pass.finish();

    let mut chunker = Chunker::new(DEFAULT_CHUNK_SIZE);
    let mut next_index = 0u32;
    for index in 0..PIECES {
        for chunk in chunker.push(&piece(index)) {
            store.write_chunk(&blob, next_index, &chunk).unwrap();
            next_index += 1;
        }
    }
    let (last, manifest) = chunker.finish();
    assert_eq!(last, None);
    assert_eq!(manifest.blob_id, blob);
    store.commit(&manifest).unwrap();

    assert_eq!(manifest.size, (PIECES * MIB) as u64);
    assert_eq!(manifest.chunk_count(), 10);

    let mut read_hasher = BlobHasher::new();
    let pieces_per_chunk = DEFAULT_CHUNK_SIZE as usize / MIB;
    for index in 0..manifest.chunk_count() {
        let chunk = store.read_chunk(&manifest, index).unwrap();
        for (offset, stored_piece) in chunk.chunks(MIB).enumerate() {
            let piece_index = index as usize * pieces_per_chunk + offset;
            assert!(
                stored_piece == &piece(piece_index)[..],
                "piece {piece_index}"
            );
        }
        read_hasher.update(&chunk);
    }
    assert_eq!(read_hasher.finish(), blob);
}
