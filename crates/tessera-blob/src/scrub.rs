//! Incremental re-hashing of committed chunks.

use tracing::warn;

use crate::store::decode_stored_manifest;
use crate::{BlobError, BlobId, BlobStore, ShardStore};

/// Manifest records fetched from each shard per page during a scrub step.
const SCRUB_PAGE: usize = 64;

/// Findings and progress of one [`BlobStore::scrub_step`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubStep {
    /// Chunks whose bytes do not match their manifest, as blob id and chunk index.
    pub corrupt: Vec<(BlobId, u32)>,
    /// Chunks that a committed manifest lists but the shard does not store.
    pub missing: Vec<(BlobId, u32)>,
    /// Blobs whose manifest record cannot be decoded, so their chunks went unchecked.
    pub corrupt_manifests: Vec<BlobId>,
    pub blobs_checked: u64,
    /// Chunk bytes read and hashed in this step.
    pub bytes_checked: u64,
    /// Cursor for the next step, or `None` when this step reached the last blob
    /// and the pass is complete.
    pub next_cursor: Option<BlobId>,
}

impl ScrubStep {
    /// Returns whether the step found no damage.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty() && self.corrupt_manifests.is_empty()
    }
}

impl BlobStore {
    /// Re-hashes up to `max_bytes` of committed chunks of the blobs after `cursor`
    /// in id order, and returns the damage found and the next cursor. This is one
    /// step of a rate-limited scrubber.
    ///
    /// A step checks whole blobs, so it checks at least one blob and may exceed
    /// `max_bytes` by up to one blob's size. Damage is reported in the result and
    /// logged as a warning. Only failures to read the shards are returned as errors.
    pub fn scrub_step(
        &self,
        cursor: Option<BlobId>,
        max_bytes: u64,
    ) -> Result<ScrubStep, BlobError> {
        let mut step = ScrubStep::default();
        let mut position = cursor;
        loop {
            let page = self.manifest_page(position.as_ref(), SCRUB_PAGE)?;
            if page.is_empty() {
                step.next_cursor = None;
                return Ok(step);
            }

            for (blob, encoded) in page {
                self.scrub_blob(&blob, &encoded, &mut step)?;
                position = Some(blob);
                if step.bytes_checked >= max_bytes {
                    step.next_cursor = position;
                    return Ok(step);
                }
            }
        }
    }

    fn scrub_blob(
        &self,
        blob: &BlobId,
        encoded: &[u8],
        step: &mut ScrubStep,
    ) -> Result<(), BlobError> {
        let shard = self.shard(blob);
        step.blobs_checked += 1;

        let manifest = match decode_stored_manifest(shard, blob, encoded) {
            Ok(manifest) => manifest,
            Err(_) => {
                step.corrupt_manifests.push(*blob);
                return Ok(());
            }
        };

        for index in 0..manifest.chunk_count() {
            let data = match shard.get_chunk(blob, index) {
                Ok(Some(data)) => data,
                Ok(None) => {
                    report_missing(shard, blob, index, step);
                    continue;
                }
                Err(error @ BlobError::Corrupt { .. }) => {
                    report_corrupt(shard, &error, blob, index, step);
                    continue;
                }
                Err(error) => return Err(error),
            };

            step.bytes_checked += data.len() as u64;
            if let Err(error) = manifest.verify_chunk(index, &data) {
                report_corrupt(shard, &error, blob, index, step);
            }
        }

        Ok(())
    }
}

fn report_missing(shard: &dyn ShardStore, blob: &BlobId, index: u32, step: &mut ScrubStep) {
    warn!(%blob, index, shard = shard.location(), "scrub found missing chunk");
    step.missing.push((*blob, index));
}

fn report_corrupt(
    shard: &dyn ShardStore,
    error: &BlobError,
    blob: &BlobId,
    index: u32,
    step: &mut ScrubStep,
) {
    warn!(%blob, index, shard = shard.location(), %error, "scrub found corrupt chunk");
    step.corrupt.push((*blob, index));
}
