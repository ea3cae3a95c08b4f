//! Cost of content addressing (the SHA-256 blob id) and of cutting a blob
//! into chunks, which hashes every byte a second time per chunk.
//!
//! Built in the dev profile (`cargo test --workspace --benches --no-run`),
//! so this crate's code runs unoptimised while sha2 runs at opt-level 2.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tessera_blob::{BlobHasher, BlobId, Chunker, DEFAULT_CHUNK_SIZE};

/// Size of each piece handed to the hasher or chunker, as a network read
/// would hand it.
const PIECE: usize = 64 * 1024;

/// Bytes that look like noisy pixel data, so nothing is special about them.
fn payload(size: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("blob/hash");
    for size in [64 * 1024, 4 * 1024 * 1024] {
        let data = payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("blob_id_of", size), &data, |b, data| {
            b.iter(|| BlobId::of(black_box(data)))
        });
        group.bench_with_input(
            BenchmarkId::new("hasher_64k_pieces", size),
            &data,
            |b, data| {
                b.iter(|| {
                    let mut hasher = BlobHasher::new();
                    for piece in data.chunks(PIECE) {
                        hasher.update(black_box(piece));
                    }
                    hasher.finish()
                })
            },
        );
    }
    group.finish();
}

fn chunking(c: &mut Criterion) {
    let size = 16 * 1024 * 1024;
    let data = payload(size);
    let mut group = c.benchmark_group("blob/chunk");
    group.throughput(Throughput::Bytes(size as u64));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("chunker_default_size", size), |b| {
        b.iter(|| {
            let mut chunker = Chunker::new(DEFAULT_CHUNK_SIZE);
            let mut chunks = 0;
            for piece in data.chunks(PIECE) {
                chunks += chunker.push(black_box(piece)).len();
            }
            let (last, manifest) = chunker.finish();
            (chunks + usize::from(last.is_some()), manifest.blob_id)
        })
    });
    group.finish();
}

criterion_group!(benches, hashing, chunking);
criterion_main!(benches);
