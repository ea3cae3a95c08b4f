//! The content address of a blob.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::BlobError;

/// SHA-256 of a blob's exact bytes, which names the blob everywhere in the system.
///
/// `Display`, `Debug` and serde all use 64 lowercase hex digits. The order is the
/// byte order of the digest, which is also the order of listings and scrub passes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// Hashes `bytes` in one call. Use [`crate::BlobHasher`] for data that arrives in pieces.
    pub fn of(bytes: &[u8]) -> BlobId {
        BlobId(Sha256::digest(bytes).into())
    }

    /// Copies a 32-byte digest, rejecting any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<BlobId, BlobError> {
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| BlobError::InvalidIdLength { len: bytes.len() })?;
        Ok(BlobId(digest))
    }

    /// Parses 64 hex digits in either case.
    pub fn parse_hex(text: &str) -> Result<BlobId, BlobError> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text, &mut digest).map_err(|_| BlobError::InvalidIdHex {
            input: text.to_string(),
        })?;
        Ok(BlobId(digest))
    }

    /// Formats the id as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for BlobId {
    type Err = BlobError;

    fn from_str(text: &str) -> Result<BlobId, BlobError> {
        BlobId::parse_hex(text)
    }
}

impl serde::Serialize for BlobId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for BlobId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<BlobId, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        BlobId::parse_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn of_empty_matches_known_digest() {
        assert_eq!(BlobId::of(b"").to_hex(), EMPTY_SHA256);
    }

    #[test]
    fn parse_hex_round_trips_display() {
        let id = BlobId::of(b"tessera");
        let parsed = BlobId::parse_hex(&id.to_string()).unwrap();
        assert_eq!(parsed, id);
    }

    #[test]
    fn parse_hex_accepts_uppercase() {
        let parsed = BlobId::parse_hex(&EMPTY_SHA256.to_uppercase()).unwrap();
        assert_eq!(parsed.to_hex(), EMPTY_SHA256);
    }

    #[test]
    fn parse_hex_rejects_short_input() {
        let result = BlobId::parse_hex("abcd");
        assert!(matches!(result, Err(BlobError::InvalidIdHex { .. })));
    }

    #[test]
    fn parse_hex_rejects_non_hex_digit() {
        let text = format!("{}zz", &EMPTY_SHA256[..62]);
        let result = BlobId::parse_hex(&text);
        assert!(matches!(result, Err(BlobError::InvalidIdHex { .. })));
    }

    #[test]
    fn from_slice_rejects_wrong_length() {
        let result = BlobId::from_slice(&[0u8; 31]);
        assert!(matches!(
            result,
            Err(BlobError::InvalidIdLength { len: 31 })
        ));
    }

    #[test]
    fn debug_is_plain_hex() {
        let id = BlobId::of(b"");
        assert_eq!(format!("{id:?}"), EMPTY_SHA256);
    }
}
