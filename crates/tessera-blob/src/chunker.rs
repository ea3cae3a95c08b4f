//! Splitting of a byte stream into fixed-size chunks.

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::{BlobHasher, BlobId, Manifest, DEFAULT_CHUNK_SIZE};

/// Splits a byte stream into chunks of `chunk_size` while hashing both the whole
/// blob and each chunk.
///
/// The chunker keeps at most one partial chunk, so memory stays bounded by the
/// chunk size plus whatever the caller passes to one [`Chunker::push`].
#[derive(Debug)]
pub struct Chunker {
    chunk_size: u32,
    partial: BytesMut,
    blob_hasher: BlobHasher,
    chunk_hashes: Vec<[u8; 32]>,
    size: u64,
}

impl Chunker {
    /// Creates a chunker that cuts chunks of exactly `chunk_size` bytes.
    ///
    /// # Panics
    ///
    /// Panics if `chunk_size` is 0, because no stream can be cut into empty chunks.
    pub fn new(chunk_size: u32) -> Chunker {
        assert!(chunk_size > 0, "chunk size must be positive");
        Chunker {
            chunk_size,
            partial: BytesMut::new(),
            blob_hasher: BlobHasher::new(),
            chunk_hashes: Vec::new(),
            size: 0,
        }
    }

    /// Appends `data` and returns the chunks it completed, in stream order.
    pub fn push(&mut self, data: &[u8]) -> Vec<Bytes> {
        self.size += data.len() as u64;

        let mut completed = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let room = self.chunk_size as usize - self.partial.len();
            let (head, tail) = rest.split_at(room.min(rest.len()));
            self.partial.extend_from_slice(head);
            rest = tail;

            if self.partial.len() == self.chunk_size as usize {
                completed.push(self.seal_chunk(true));
            }
        }

        completed
    }

    /// Bytes pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Ends the stream and returns the last partial chunk, if any, and the manifest.
    ///
    /// The partial chunk is `None` when the stream ended on a chunk boundary,
    /// including an empty stream.
    pub fn finish(mut self) -> (Option<Bytes>, Manifest) {
        // A blob of one partial chunk, the common case for an instance, is
        // hashed once: its chunk hash is its blob id.
        let single = self.chunk_hashes.is_empty() && !self.partial.is_empty();
        let last = if self.partial.is_empty() {
            None
        } else {
            Some(self.seal_chunk(!single))
        };
        let blob_id = match single {
            true => BlobId(self.chunk_hashes[0]),
            false => self.blob_hasher.finish(),
        };

        let manifest = Manifest {
            blob_id,
            size: self.size,
            chunk_size: self.chunk_size,
            chunk_hashes: self.chunk_hashes,
        };
        (last, manifest)
    }

    /// Cuts the partial chunk and records its hash, adding its bytes to the
    /// whole-blob hash when `into_blob_hash`.
    fn seal_chunk(&mut self, into_blob_hash: bool) -> Bytes {
        let chunk = std::mem::take(&mut self.partial).freeze();
        if into_blob_hash {
            self.blob_hasher.update(&chunk);
        }
        self.chunk_hashes.push(Sha256::digest(&chunk).into());
        chunk
    }
}

impl Default for Chunker {
    /// Creates a chunker with [`DEFAULT_CHUNK_SIZE`].
    fn default() -> Chunker {
        Chunker::new(DEFAULT_CHUNK_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_across_boundary_completes_chunk() {
        let mut chunker = Chunker::new(4);
        let first = chunker.push(b"abc");
        let second = chunker.push(b"def");
        assert!(first.is_empty());
        assert_eq!(second, vec![Bytes::from_static(b"abcd")]);
    }

    #[test]
    fn finish_returns_remainder_and_blob_id() {
        let mut chunker = Chunker::new(4);
        chunker.push(b"abcdef");
        let (last, manifest) = chunker.finish();
        assert_eq!(last, Some(Bytes::from_static(b"ef")));
        assert_eq!(manifest.blob_id, BlobId::of(b"abcdef"));
        assert_eq!(manifest.chunk_count(), 2);
    }

    #[test]
    fn empty_stream_has_no_chunk() {
        let (last, manifest) = Chunker::new(4).finish();
        assert_eq!(last, None);
        assert_eq!(manifest.chunk_count(), 0);
    }

    #[test]
    fn blob_id_at_every_size() {
        for data in [&b""[..], b"abc", b"abcd", b"abcdefgh", b"abcdefghi"] {
            let mut chunker = Chunker::new(4);
            chunker.push(data);
            let (_, manifest) = chunker.finish();
            assert_eq!(manifest.blob_id, BlobId::of(data), "{data:?}");
            assert_eq!(manifest.is_one_chunk(), data.len() == 3 || data.len() == 4);
        }
    }

    #[test]
    #[should_panic(expected = "chunk size must be positive")]
    fn new_rejects_zero_chunk_size() {
        Chunker::new(0);
    }
}
