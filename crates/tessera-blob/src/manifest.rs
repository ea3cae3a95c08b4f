//! The record that lists a blob's chunks.

use sha2::{Digest, Sha256};

use crate::{BlobError, BlobId};

/// Chunk size used unless a caller picks another: 4 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 4 * 1024 * 1024;

/// First bytes of an encoded manifest: "TBM" and format version 1.
const MAGIC: [u8; 4] = *b"TBM\x01";

/// Bytes before the chunk hashes: magic, blob id, size, chunk size, chunk count.
const HEADER_LEN: usize = 4 + 32 + 8 + 4 + 4;

/// Bytes of the trailing checksum, a prefix of the SHA-256 of everything before it.
const CHECKSUM_LEN: usize = 8;

/// A blob's size, chunk size and the SHA-256 of each chunk.
///
/// Every chunk but the last is exactly `chunk_size` bytes. The last one contains the
/// remainder, and an empty blob has no chunk at all. A valid manifest has exactly
/// `ceil(size / chunk_size)` entries in `chunk_hashes`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub blob_id: BlobId,
    pub size: u64,
    pub chunk_size: u32,
    pub chunk_hashes: Vec<[u8; 32]>,
}

impl Manifest {
    /// Number of chunks, taken from `chunk_hashes`.
    pub fn chunk_count(&self) -> u32 {
        u32::try_from(self.chunk_hashes.len()).unwrap_or(u32::MAX)
    }

    /// Returns whether the blob is a single chunk whose listed hash is the
    /// blob id.
    ///
    /// A chunk that passes [`Manifest::verify_chunk`] then proves the whole
    /// blob, and hashing the same bytes again would cost a second SHA-256
    /// pass over most instances, which are smaller than a chunk.
    pub fn is_one_chunk(&self) -> bool {
        self.chunk_hashes.len() == 1 && self.chunk_hashes[0] == self.blob_id.0
    }

    /// Length in bytes of chunk `index`, or 0 when `index` is not below [`Manifest::chunk_count`].
    pub fn chunk_len(&self, index: u32) -> u32 {
        let count = self.chunk_count();
        if index >= count {
            return 0;
        }

        if index + 1 < count {
            return self.chunk_size;
        }

        let before_last = u64::from(count - 1) * u64::from(self.chunk_size);
        let last = self.size.saturating_sub(before_last);
        u32::try_from(last).unwrap_or(self.chunk_size)
    }

    /// Byte offset of chunk `index` within the blob.
    pub fn chunk_offset(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.chunk_size)
    }

    /// Checks that the chunk size is positive and that the number of chunk hashes
    /// matches the size.
    pub fn validate(&self) -> Result<(), BlobError> {
        if self.chunk_size == 0 {
            return Err(self.invalid("chunk size is 0".to_string()));
        }

        let expected = self.size.div_ceil(u64::from(self.chunk_size));
        if expected > u64::from(u32::MAX) {
            let reason = format!(
                "size {} needs {expected} chunks of {} bytes, above the maximum of {}",
                self.size,
                self.chunk_size,
                u32::MAX
            );
            return Err(self.invalid(reason));
        }

        if self.chunk_hashes.len() as u64 != expected {
            let reason = format!(
                "size {} with chunk size {} needs {expected} chunk hashes, found {}",
                self.size,
                self.chunk_size,
                self.chunk_hashes.len()
            );
            return Err(self.invalid(reason));
        }

        Ok(())
    }

    /// Encodes the manifest in a versioned binary form with a trailing checksum.
    ///
    /// Layout, integers big-endian: magic `TBM\x01`, blob id (32 bytes), size (u64),
    /// chunk size (u32), chunk count (u32), the chunk hashes (32 bytes each) and the
    /// first 8 bytes of the SHA-256 of all preceding bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 32 * self.chunk_hashes.len() + CHECKSUM_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(self.blob_id.as_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        out.extend_from_slice(&self.chunk_count().to_be_bytes());
        for hash in &self.chunk_hashes {
            out.extend_from_slice(hash);
        }

        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum[..CHECKSUM_LEN]);
        out
    }

    /// Decodes bytes from [`Manifest::encode`], checking the checksum and [`Manifest::validate`].
    pub fn decode(bytes: &[u8]) -> Result<Manifest, BlobError> {
        let invalid = |reason: String| BlobError::InvalidManifest { blob: None, reason };

        if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
            let reason = format!(
                "{} bytes is shorter than the minimum of {}",
                bytes.len(),
                HEADER_LEN + CHECKSUM_LEN
            );
            return Err(invalid(reason));
        }

        if bytes[..4] != MAGIC {
            return Err(invalid(format!("unknown format tag {:02x?}", &bytes[..4])));
        }

        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if Sha256::digest(body)[..CHECKSUM_LEN] != *checksum {
            return Err(invalid("checksum mismatch".to_string()));
        }

        let manifest = decode_body(body)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks that `data` has the length and SHA-256 that the manifest lists for chunk `index`.
    pub fn verify_chunk(&self, index: u32, data: &[u8]) -> Result<(), BlobError> {
        let count = self.chunk_count();
        if index >= count {
            return Err(BlobError::ChunkOutOfRange {
                blob: self.blob_id,
                index,
                count,
            });
        }

        let expected_len = self.chunk_len(index) as usize;
        if data.len() != expected_len {
            let reason = format!("expected {expected_len} bytes, found {}", data.len());
            return Err(self.corrupt(index, reason));
        }

        let actual: [u8; 32] = Sha256::digest(data).into();
        let expected = &self.chunk_hashes[index as usize];
        if actual != *expected {
            let reason = format!(
                "sha-256 {} does not match manifest hash {}",
                hex::encode(actual),
                hex::encode(expected)
            );
            return Err(self.corrupt(index, reason));
        }

        Ok(())
    }

    fn invalid(&self, reason: String) -> BlobError {
        BlobError::InvalidManifest {
            blob: Some(self.blob_id),
            reason,
        }
    }

    fn corrupt(&self, index: u32, reason: String) -> BlobError {
        BlobError::Corrupt {
            blob: self.blob_id,
            index,
            reason,
        }
    }
}

/// Reads the fields after the magic. `body` excludes the checksum.
fn decode_body(body: &[u8]) -> Result<Manifest, BlobError> {
    let blob_id = BlobId::from_slice(&body[4..36])?;
    let size = u64::from_be_bytes(body[36..44].try_into().expect("8-byte slice"));
    let chunk_size = u32::from_be_bytes(body[44..48].try_into().expect("4-byte slice"));
    let count = u32::from_be_bytes(body[48..52].try_into().expect("4-byte slice"));

    let hashes = &body[HEADER_LEN..];
    if hashes.len() != 32 * count as usize {
        return Err(BlobError::InvalidManifest {
            blob: Some(blob_id),
            reason: format!(
                "header lists {count} chunks but {} bytes of hashes follow",
                hashes.len()
            ),
        });
    }

    let chunk_hashes = hashes
        .chunks_exact(32)
        .map(|hash| hash.try_into().expect("32-byte chunk"))
        .collect();

    Ok(Manifest {
        blob_id,
        size,
        chunk_size,
        chunk_hashes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_chunk_manifest() -> Manifest {
        Manifest {
            blob_id: BlobId::of(b"0123456789"),
            size: 10,
            chunk_size: 4,
            chunk_hashes: vec![
                Sha256::digest(b"0123").into(),
                Sha256::digest(b"4567").into(),
                Sha256::digest(b"89").into(),
            ],
        }
    }

    #[test]
    fn chunk_len_of_last_chunk_is_remainder() {
        assert_eq!(three_chunk_manifest().chunk_len(2), 2);
    }

    #[test]
    fn chunk_len_of_middle_chunk_is_chunk_size() {
        assert_eq!(three_chunk_manifest().chunk_len(1), 4);
    }

    #[test]
    fn chunk_len_past_end_is_zero() {
        assert_eq!(three_chunk_manifest().chunk_len(3), 0);
    }

    #[test]
    fn verify_chunk_accepts_listed_bytes() {
        let result = three_chunk_manifest().verify_chunk(1, b"4567");
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn verify_chunk_rejects_changed_byte() {
        let result = three_chunk_manifest().verify_chunk(1, b"4568");
        assert!(matches!(result, Err(BlobError::Corrupt { index: 1, .. })));
    }

    #[test]
    fn verify_chunk_rejects_wrong_length() {
        let result = three_chunk_manifest().verify_chunk(2, b"890");
        assert!(matches!(result, Err(BlobError::Corrupt { index: 2, .. })));
    }

    #[test]
    fn verify_chunk_rejects_index_past_end() {
        let result = three_chunk_manifest().verify_chunk(3, b"");
        assert!(matches!(
            result,
            Err(BlobError::ChunkOutOfRange {
                index: 3,
                count: 3,
                ..
            })
        ));
    }

    #[test]
    fn validate_rejects_missing_hash() {
        let mut manifest = three_chunk_manifest();
        manifest.chunk_hashes.pop();
        assert!(matches!(
            manifest.validate(),
            Err(BlobError::InvalidManifest { .. })
        ));
    }

    #[test]
    fn validate_rejects_zero_chunk_size() {
        let mut manifest = three_chunk_manifest();
        manifest.chunk_size = 0;
        assert!(matches!(
            manifest.validate(),
            Err(BlobError::InvalidManifest { .. })
        ));
    }

    #[test]
    fn decode_rejects_flipped_bit() {
        let mut bytes = three_chunk_manifest().encode();
        bytes[40] ^= 0x01;
        assert!(matches!(
            Manifest::decode(&bytes),
            Err(BlobError::InvalidManifest { .. })
        ));
    }

    #[test]
    fn decode_rejects_truncated_bytes() {
        let bytes = three_chunk_manifest().encode();
        let result = Manifest::decode(&bytes[..bytes.len() - 1]);
        assert!(matches!(result, Err(BlobError::InvalidManifest { .. })));
    }

    #[test]
    fn decode_rejects_unknown_magic() {
        let mut bytes = three_chunk_manifest().encode();
        bytes[3] = 2;
        assert!(matches!(
            Manifest::decode(&bytes),
            Err(BlobError::InvalidManifest { .. })
        ));
    }
}
