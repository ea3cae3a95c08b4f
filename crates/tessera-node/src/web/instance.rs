//! Finding stored instances by their UIDs and reading their bytes through
//! [`Node::read_blob`], which verifies every chunk against the blob's hash.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use tessera_blob::BlobId;
use tessera_catalog::StoredInstance;
use tessera_proto::v1::InstanceAttributes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::WebError;
use crate::node::Node;
use crate::NodeError;

/// UIDs from a request path; `series` and `instance` narrow the selection.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub study: String,
    pub series: Option<String>,
    pub instance: Option<String>,
}

/// Returns the attributes recorded for a stored instance.
pub fn attributes(instance: &StoredInstance) -> InstanceAttributes {
    instance.stored.attributes.clone().unwrap_or_default()
}

/// Returns the stored instances that `selection` names, in index order.
/// A UID that is not in the archive, or an instance outside the named study
/// or series, is [`WebError::NotFound`].
pub fn select(node: &Node, selection: &Selection) -> Result<Vec<StoredInstance>, WebError> {
    if let Some(uid) = &selection.instance {
        return select_one(node, selection, uid).map(|found| vec![found]);
    }

    let series = selection.series.as_deref();
    let instances = node.catalog.instances_of(&selection.study, series)?;
    if !instances.is_empty() {
        return Ok(instances);
    }
    Err(match series {
        Some(series) => WebError::NotFound {
            what: "series",
            uid: series.to_string(),
        },
        None => WebError::NotFound {
            what: "study",
            uid: selection.study.clone(),
        },
    })
}

fn select_one(node: &Node, selection: &Selection, uid: &str) -> Result<StoredInstance, WebError> {
    let not_found = || WebError::NotFound {
        what: "instance",
        uid: uid.to_string(),
    };
    let found = node.catalog.instance(uid)?.ok_or_else(not_found)?;

    let attributes = attributes(&found);
    let in_study = attributes.study_instance_uid == selection.study;
    let in_series = selection
        .series
        .as_ref()
        .is_none_or(|series| *series == attributes.series_instance_uid);
    if in_study && in_series {
        Ok(found)
    } else {
        Err(not_found())
    }
}

/// Starts streaming the verified bytes of `instance` and returns the chunk
/// receiver. A failure after some chunks arrives as the last item.
pub fn stream(
    node: &Arc<Node>,
    instance: &StoredInstance,
) -> mpsc::Receiver<Result<Bytes, NodeError>> {
    let (sender, receiver) = mpsc::channel(2);
    let blob = BlobId::from_slice(&instance.stored.blob_id);
    let node = node.clone();
    tokio::spawn(async move {
        let blob = match blob {
            Ok(blob) => blob,
            Err(error) => {
                let _ = sender.send(Err(NodeError::from(error))).await;
                return;
            }
        };
        if let Err(error) = node.read_blob(blob, &sender).await {
            let _ = sender.send(Err(error)).await;
        }
    });
    receiver
}

/// Maximum number of MiB of whole instances, counted with what is parsed
/// from them, that the requests of one node process may hold in memory
/// together. Without a bound, memory grew with every concurrent request.
///
/// NOTE: a fixed size, not yet a configuration setting. An instance larger
/// than it still loads, alone.
const WHOLE_INSTANCE_BUDGET_MIB: u32 = 1024;

/// The node-wide budget of [`WHOLE_INSTANCE_BUDGET_MIB`], one permit per MiB.
fn whole_instance_budget() -> Arc<Semaphore> {
    static BUDGET: OnceLock<Arc<Semaphore>> = OnceLock::new();
    let budget =
        BUDGET.get_or_init(|| Arc::new(Semaphore::new(WHOLE_INSTANCE_BUDGET_MIB as usize)));
    budget.clone()
}

/// The bytes of one whole instance and its share of the node's memory
/// budget, which returns once this and what was parsed from it are dropped.
pub struct WholeInstance {
    pub bytes: Vec<u8>,
    pub permit: OwnedSemaphorePermit,
}

/// Reads a whole instance into memory, for the paths that must parse it
/// (metadata, frames, rendering); one instance at a time, never a study.
/// Waits while other requests hold the node's whole-instance budget.
///
/// TODO: a multi-GiB multi-frame instance is held whole in memory to serve
/// one frame or its metadata. Reading up to Pixel Data and then seeking to
/// the frame's fragments would bound that.
pub async fn read_all(
    node: &Arc<Node>,
    instance: &StoredInstance,
) -> Result<WholeInstance, WebError> {
    let permit = whole_instance_budget()
        .acquire_many_owned(budget_share(instance.stored.size))
        .await
        .expect("the whole-instance budget is never closed");

    let mut bytes = Vec::with_capacity(instance.stored.size as usize);
    let mut chunks = stream(node, instance);
    while let Some(chunk) = chunks.recv().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(WholeInstance { bytes, permit })
}

/// Returns the MiB of the budget that an instance of `size` bytes takes:
/// twice its size, because its bytes and the object parsed from them are in
/// memory together. The share is at most the whole budget, so that an
/// instance larger than the budget waits for the others instead of forever.
fn budget_share(size: u64) -> u32 {
    let mib = 2 * size.div_ceil(1024 * 1024).max(1);
    mib.min(WHOLE_INSTANCE_BUDGET_MIB as u64) as u32
}

/// Parses a Part 10 instance, including its Pixel Data.
pub fn parse(uid: &str, bytes: &[u8]) -> Result<DefaultDicomObject, WebError> {
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .from_reader(bytes)
        .map_err(|error| WebError::Unreadable {
            uid: uid.to_string(),
            reason: error.to_string(),
        })
}

/// Parses a Part 10 instance up to, not including, Pixel Data; for
/// instances whose Pixel Data cannot be parsed.
pub fn parse_header(uid: &str, bytes: &[u8]) -> Result<DefaultDicomObject, WebError> {
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .read_until(dicom_dictionary_std::tags::PIXEL_DATA)
        .from_reader(bytes)
        .map_err(|error| WebError::Unreadable {
            uid: uid.to_string(),
            reason: error.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_share_is_twice_the_size_in_whole_mib() {
        assert_eq!(budget_share(0), 2);
        assert_eq!(budget_share(1), 2);
        assert_eq!(budget_share(1024 * 1024 + 1), 4);
    }

    #[test]
    fn oversized_instance_takes_the_whole_budget() {
        let size = (WHOLE_INSTANCE_BUDGET_MIB as u64 + 500) * 1024 * 1024;

        assert_eq!(budget_share(size), WHOLE_INSTANCE_BUDGET_MIB);
    }

    #[tokio::test]
    async fn budget_is_returned_with_the_permit() {
        let share = budget_share(300 * 1024 * 1024);
        let first = whole_instance_budget().acquire_many_owned(share).await;
        let taken = whole_instance_budget().available_permits();
        drop(first);

        assert_eq!(taken, (WHOLE_INSTANCE_BUDGET_MIB - share) as usize);
        assert_eq!(
            whole_instance_budget().available_permits(),
            WHOLE_INSTANCE_BUDGET_MIB as usize
        );
    }
}
