//! Properties of chunking and manifest encoding.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use tessera_blob::{BlobId, Chunker, Manifest};

/// Generates a stream length near the interesting points for `chunk_size`: empty, one byte,
/// around one chunk, around a multiple of chunks, or anywhere up to four chunks.
fn stream_len(chunk_size: u32) -> impl Strategy<Value = usize> {
    let size = chunk_size as usize;
    prop_oneof![
        Just(0),
        Just(1),
        Just(size - 1),
        Just(size),
        Just(size + 1),
        (2usize..4).prop_map(move |k| k * size - 1),
        (2usize..4).prop_map(move |k| k * size),
        (2usize..4).prop_map(move |k| k * size + 1),
        0..=4 * size,
    ]
}

fn stream_case() -> impl Strategy<Value = (u32, Vec<u8>, Vec<usize>)> {
    (1u32..=2048)
        .prop_flat_map(|chunk_size| (Just(chunk_size), stream_len(chunk_size)))
        .prop_flat_map(|(chunk_size, len)| {
            let data = proptest::collection::vec(any::<u8>(), len);
            let pieces = proptest::collection::vec(1usize..3000, 0..8);
            (Just(chunk_size), data, pieces)
        })
}

/// Pushes `data` in pieces of the given lengths, then the rest, and collects every chunk.
fn chunk_stream(chunk_size: u32, data: &[u8], pieces: &[usize]) -> (Vec<bytes::Bytes>, Manifest) {
    let mut chunker = Chunker::new(chunk_size);
    let mut chunks = Vec::new();
    let mut rest = data;
    for &piece in pieces {
        let (head, tail) = rest.split_at(piece.min(rest.len()));
        chunks.extend(chunker.push(head));
        rest = tail;
    }
    chunks.extend(chunker.push(rest));

    let (last, manifest) = chunker.finish();
    chunks.extend(last);
    (chunks, manifest)
}

proptest! {
    #[test]
    fn chunks_reassemble_exactly((chunk_size, data, pieces) in stream_case()) {
        let (chunks, _) = chunk_stream(chunk_size, &data, &pieces);
        let joined: Vec<u8> = chunks.iter().flat_map(|chunk| chunk.iter().copied()).collect();
        prop_assert_eq!(joined, data);
    }

    #[test]
    fn chunks_are_full_except_last((chunk_size, data, pieces) in stream_case()) {
        let (chunks, _) = chunk_stream(chunk_size, &data, &pieces);
        let expected_count = data.len().div_ceil(chunk_size as usize);
        prop_assert_eq!(chunks.len(), expected_count);
        if let Some((last, full)) = chunks.split_last() {
            prop_assert!(full.iter().all(|chunk| chunk.len() == chunk_size as usize));
            prop_assert!(!last.is_empty());
            prop_assert!(last.len() <= chunk_size as usize);
        }
    }

    #[test]
    fn manifest_describes_stream((chunk_size, data, pieces) in stream_case()) {
        let (chunks, manifest) = chunk_stream(chunk_size, &data, &pieces);
        prop_assert_eq!(manifest.blob_id, BlobId::of(&data));
        prop_assert_eq!(manifest.size, data.len() as u64);
        prop_assert_eq!(manifest.chunk_count() as usize, chunks.len());
        prop_assert!(manifest.validate().is_ok());
        for (index, chunk) in chunks.iter().enumerate() {
            let index = index as u32;
            prop_assert_eq!(manifest.chunk_len(index) as usize, chunk.len());
            prop_assert!(manifest.verify_chunk(index, chunk).is_ok());
        }
    }

    #[test]
    fn manifest_encoding_round_trips(
        blob in any::<[u8; 32]>(),
        chunk_size in 1u32..=5000,
        size in 0u64..=20_000,
        seed in any::<u64>(),
    ) {
        // Hashes derived from the seed keep generation cheap for thousands of chunks.
        let count = size.div_ceil(u64::from(chunk_size));
        let chunk_hashes = (0..count)
            .map(|i| Sha256::digest([seed.to_be_bytes(), i.to_be_bytes()].concat()).into())
            .collect();
        let manifest = Manifest { blob_id: BlobId(blob), size, chunk_size, chunk_hashes };

        let decoded = Manifest::decode(&manifest.encode());
        prop_assert_eq!(decoded.ok(), Some(manifest));
    }
}
