//! Writing a whole blob with one durable write per shard where it fits.

use std::sync::Arc;

use bytes::Bytes;

use crate::{BlobError, BlobHasher, BlobStore, Manifest};

/// Chunk bytes that a [`BlobWriter`] buffers before it writes them without a
/// sync. Smaller blobs reach the shard in a single synced batch together with
/// their manifest, so memory per writer stays below this plus one chunk.
pub const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;

/// Check that a [`BlobWriter`] applies to each chunk it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkCheck {
    /// Hash every chunk and the whole blob, for bytes from another process.
    Verify,
    /// Check only chunk count and lengths. For chunks that a [`crate::Chunker`]
    /// in this process cut and hashed into this very manifest, because hashing
    /// them again would cost one more SHA-256 pass for nothing.
    LengthsOnly,
}

/// Writes one blob chunk by chunk and commits it with its manifest.
///
/// Compared with [`BlobStore::write_chunk`] followed by [`BlobStore::commit`],
/// a blob of up to [`MAX_BUFFERED_BYTES`] costs one synced write instead of
/// two, and the chunks are checked as they pass instead of being read back.
/// A blob that [`BlobWriter::finish`] does not commit leaves at most chunks
/// with a pending mark, which [`BlobStore::sweep_uncommitted`] removes.
pub struct BlobWriter {
    store: Arc<BlobStore>,
    manifest: Manifest,
    check: ChunkCheck,
    hasher: BlobHasher,
    next_index: u32,
    buffered: Vec<Bytes>,
    buffered_bytes: usize,
    /// Index of the first chunk in `buffered`.
    buffered_from: u32,
}

impl BlobWriter {
    /// Starts writing the blob that `manifest` describes, after checking that
    /// the manifest is consistent.
    pub fn new(
        store: Arc<BlobStore>,
        manifest: Manifest,
        check: ChunkCheck,
    ) -> Result<BlobWriter, BlobError> {
        manifest.validate()?;
        Ok(BlobWriter {
            store,
            manifest,
            check,
            hasher: BlobHasher::new(),
            next_index: 0,
            buffered: Vec::new(),
            buffered_bytes: 0,
            buffered_from: 0,
        })
    }

    /// Adds the next chunk in order. Rejects a chunk beyond the manifest's
    /// count, of the wrong length or, with [`ChunkCheck::Verify`], of another
    /// hash, naming the chunk in [`BlobError::Corrupt`] or
    /// [`BlobError::ChunkOutOfRange`].
    pub fn push(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let index = self.next_index;
        self.check_chunk(index, &chunk)?;
        self.next_index += 1;

        self.buffered_bytes += chunk.len();
        self.buffered.push(chunk);
        if self.buffered_bytes > MAX_BUFFERED_BYTES {
            self.write_buffered()?;
        }
        Ok(())
    }

    /// Checks that every chunk arrived and, with [`ChunkCheck::Verify`], that
    /// they hash to the blob id, then writes the buffered chunks and the
    /// manifest durably. Succeeds without a write when the blob is already
    /// committed with an equal manifest.
    pub fn finish(self) -> Result<(), BlobError> {
        let count = self.manifest.chunk_count();
        if self.next_index != count {
            return Err(BlobError::MissingChunk {
                blob: self.manifest.blob_id,
                index: self.next_index,
                shard: self
                    .store
                    .shard(&self.manifest.blob_id)
                    .location()
                    .to_string(),
            });
        }

        if self.check == ChunkCheck::Verify && !self.manifest.is_one_chunk() {
            let actual = self.hasher.finish();
            if actual != self.manifest.blob_id {
                return Err(BlobError::BlobIdMismatch {
                    blob: self.manifest.blob_id,
                    actual,
                });
            }
        }

        self.store
            .commit_chunks(&self.manifest, self.buffered_from, &self.buffered)
    }

    fn check_chunk(&mut self, index: u32, chunk: &[u8]) -> Result<(), BlobError> {
        if self.check == ChunkCheck::Verify {
            self.manifest.verify_chunk(index, chunk)?;
            if !self.manifest.is_one_chunk() {
                self.hasher.update(chunk);
            }
            return Ok(());
        }

        let count = self.manifest.chunk_count();
        if index >= count {
            return Err(BlobError::ChunkOutOfRange {
                blob: self.manifest.blob_id,
                index,
                count,
            });
        }
        let expected = self.manifest.chunk_len(index) as usize;
        if chunk.len() != expected {
            return Err(BlobError::Corrupt {
                blob: self.manifest.blob_id,
                index,
                reason: format!("expected {expected} bytes, found {}", chunk.len()),
            });
        }
        Ok(())
    }

    /// Writes the buffered chunks without a sync. The synced write in
    /// [`BlobWriter::finish`] makes them durable.
    fn write_buffered(&mut self) -> Result<(), BlobError> {
        let blob = self.manifest.blob_id;
        for (offset, chunk) in self.buffered.iter().enumerate() {
            let index = self.buffered_from + offset as u32;
            self.store.write_chunk(&blob, index, chunk)?;
        }

        self.buffered_from = self.next_index;
        self.buffered.clear();
        self.buffered_bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlobId, Chunker, MemoryShard, ShardStore};

    fn memory_store() -> Arc<BlobStore> {
        let shards: Vec<Box<dyn ShardStore>> = vec![Box::new(MemoryShard::new("memory"))];
        Arc::new(BlobStore::from_shards(shards).unwrap())
    }

    fn chunked(data: &[u8], chunk_size: u32) -> (Vec<Bytes>, Manifest) {
        let mut chunker = Chunker::new(chunk_size);
        let mut chunks = chunker.push(data);
        let (last, manifest) = chunker.finish();
        chunks.extend(last);
        (chunks, manifest)
    }

    #[test]
    fn writer_commits_readable_blob() {
        let store = memory_store();
        let (chunks, manifest) = chunked(b"hello, world", 5);
        let mut writer =
            BlobWriter::new(store.clone(), manifest.clone(), ChunkCheck::Verify).unwrap();
        for chunk in chunks {
            writer.push(chunk).unwrap();
        }
        writer.finish().unwrap();

        assert_eq!(
            store.manifest(&manifest.blob_id).unwrap(),
            Some(manifest.clone())
        );
        assert_eq!(&store.read_chunk(&manifest, 2).unwrap()[..], b"ld");
    }

    #[test]
    fn verify_rejects_changed_chunk() {
        let store = memory_store();
        let (_, manifest) = chunked(b"hello, world", 5);
        let mut writer = BlobWriter::new(store, manifest, ChunkCheck::Verify).unwrap();
        let result = writer.push(Bytes::from_static(b"HELLO"));
        assert!(matches!(result, Err(BlobError::Corrupt { index: 0, .. })));
    }

    #[test]
    fn lengths_only_rejects_short_chunk() {
        let store = memory_store();
        let (_, manifest) = chunked(b"hello, world", 5);
        let mut writer = BlobWriter::new(store, manifest, ChunkCheck::LengthsOnly).unwrap();
        let result = writer.push(Bytes::from_static(b"hell"));
        assert!(matches!(result, Err(BlobError::Corrupt { index: 0, .. })));
    }

    #[test]
    fn finish_rejects_missing_chunk() {
        let store = memory_store();
        let (chunks, manifest) = chunked(b"hello, world", 5);
        let blob = manifest.blob_id;
        let mut writer = BlobWriter::new(store.clone(), manifest, ChunkCheck::Verify).unwrap();
        writer.push(chunks[0].clone()).unwrap();

        let result = writer.finish();
        assert!(matches!(
            result,
            Err(BlobError::MissingChunk { index: 1, .. })
        ));
        assert!(!store.contains(&blob).unwrap());
    }

    #[test]
    fn verify_rejects_wrong_blob_id() {
        let store = memory_store();
        let (chunks, mut manifest) = chunked(b"hello, world", 5);
        manifest.blob_id = BlobId::of(b"something else");
        let blob = manifest.blob_id;
        let mut writer = BlobWriter::new(store.clone(), manifest, ChunkCheck::Verify).unwrap();
        for chunk in chunks {
            writer.push(chunk).unwrap();
        }

        let result = writer.finish();
        assert!(matches!(result, Err(BlobError::BlobIdMismatch { .. })));
        assert!(!store.contains(&blob).unwrap());
    }

    #[test]
    fn verify_rejects_one_chunk_under_another_blob_id() {
        let store = memory_store();
        let (chunks, mut manifest) = chunked(b"hello", 5);
        manifest.blob_id = BlobId::of(b"something else");
        let mut writer = BlobWriter::new(store.clone(), manifest, ChunkCheck::Verify).unwrap();
        writer.push(chunks[0].clone()).unwrap();

        let result = writer.finish();
        assert!(matches!(result, Err(BlobError::BlobIdMismatch { .. })));
    }

    #[test]
    fn large_blob_is_written_in_parts() {
        let store = memory_store();
        let chunk_size = 4 * 1024 * 1024;
        let data: Vec<u8> = (0..MAX_BUFFERED_BYTES + 3 * chunk_size)
            .map(|i| (i % 251) as u8)
            .collect();
        let (chunks, manifest) = chunked(&data, chunk_size as u32);
        let mut writer =
            BlobWriter::new(store.clone(), manifest.clone(), ChunkCheck::Verify).unwrap();
        for chunk in chunks {
            writer.push(chunk).unwrap();
        }
        writer.finish().unwrap();

        let last = manifest.chunk_count() - 1;
        let read = store.read_chunk(&manifest, last).unwrap();
        let offset = manifest.chunk_offset(last) as usize;
        assert_eq!(&read[..], &data[offset..]);
        assert!(store.contains(&manifest.blob_id).unwrap());
    }

    #[test]
    fn finish_accepts_committed_blob() {
        let store = memory_store();
        let (chunks, manifest) = chunked(b"hello, world", 5);
        for _ in 0..2 {
            let mut writer =
                BlobWriter::new(store.clone(), manifest.clone(), ChunkCheck::LengthsOnly).unwrap();
            for chunk in &chunks {
                writer.push(chunk.clone()).unwrap();
            }
            writer.finish().unwrap();
        }
        assert_eq!(store.list().unwrap(), vec![manifest.blob_id]);
    }
}
