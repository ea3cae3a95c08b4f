//! Streaming computation of a blob id.

use sha2::{Digest, Sha256};

use crate::BlobId;

/// Computes a [`BlobId`] from data fed in pieces, so that a caller never needs
/// the whole blob in one buffer.
#[derive(Clone, Debug, Default)]
pub struct BlobHasher {
    state: Sha256,
}

impl BlobHasher {
    pub fn new() -> BlobHasher {
        BlobHasher::default()
    }

    /// Appends `data` to the bytes hashed so far.
    pub fn update(&mut self, data: &[u8]) {
        self.state.update(data);
    }

    /// Returns the id of all bytes passed to [`BlobHasher::update`].
    pub fn finish(self) -> BlobId {
        BlobId(self.state.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hash_like_whole() {
        let mut hasher = BlobHasher::new();
        hasher.update(b"tes");
        hasher.update(b"");
        hasher.update(b"sera");
        assert_eq!(hasher.finish(), BlobId::of(b"tessera"));
    }
}
