//! Content-addressed blob storage for Tessera: chunking, hashing, shards on
//! RocksDB, replica placement and scrubbing.
//!
//! A blob is the exact bytes of one stored instance, and its [`BlobId`] is their
//! SHA-256. A [`Chunker`] cuts the bytes into chunks of [`DEFAULT_CHUNK_SIZE`] while
//! hashing them, so no code path keeps a multi-GiB instance in memory. The [`Manifest`]
//! lists each chunk's hash. A [`BlobStore`] keeps a node's blobs in several shards,
//! each a [`ShardStore`] ([`RocksShard`] in production). A blob exists only once
//! its manifest is committed. [`placement`] picks the nodes that hold replicas.
//!
//! ```
//! use tessera_blob::{BlobStore, Chunker};
//!
//! # fn main() -> Result<(), tessera_blob::BlobError> {
//! let dir = std::env::temp_dir().join(format!("tessera-blob-doc-{}", std::process::id()));
//! let store = BlobStore::open(&dir, 2)?;
//!
//! let mut chunker = Chunker::new(4);
//! let mut chunks = chunker.push(b"hello, world");
//! let (last, manifest) = chunker.finish();
//! chunks.extend(last);
//! for (index, chunk) in chunks.iter().enumerate() {
//!     store.write_chunk(&manifest.blob_id, index as u32, chunk)?;
//! }
//! store.commit(&manifest)?;
//!
//! assert_eq!(&store.read_chunk(&manifest, 0)?[..], b"hell");
//! # drop(store);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(())
//! # }
//! ```

mod chunker;
pub mod conformance;
mod error;
mod hasher;
mod id;
mod manifest;
mod memory;
pub mod placement;
mod rocks;
mod scrub;
mod shard;
mod store;
mod writer;

pub use chunker::Chunker;
pub use error::{BackendError, BlobError};
pub use hasher::BlobHasher;
pub use id::BlobId;
pub use manifest::{Manifest, DEFAULT_CHUNK_SIZE};
pub use memory::MemoryShard;
pub use rocks::RocksShard;
pub use scrub::ScrubStep;
pub use shard::{ShardIdentity, ShardStore};
pub use store::{BlobStats, BlobStore};
pub use writer::{BlobWriter, ChunkCheck, MAX_BUFFERED_BYTES};
