//! Rows of the index projection, stored bincode-encoded.

use std::collections::BTreeSet;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::CatalogError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientRecord {
    pub patient_id: String,
    pub issuer_of_patient_id: String,
    pub patient_name: String,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub study_count: u64,
    pub instance_count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyRecord {
    pub study_instance_uid: String,
    pub patient_id: String,
    pub issuer_of_patient_id: String,
    pub patient_name: String,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub study_description: String,
    pub study_id: String,
    pub referring_physician_name: String,
    pub modalities: BTreeSet<String>,
    pub series_count: u64,
    pub instance_count: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesRecord {
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub modality: String,
    pub series_description: String,
    pub series_number: String,
    pub instance_count: u64,
    pub bytes: u64,
}

/// One stored instance: the encoded `InstanceStored` event that created it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub stored: Vec<u8>,
    pub log_index: u64,
    pub accepted_at_ms: i64,
}

/// Locations of the copies of one blob, and the number of instances using it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: u64,
    pub replicas: BTreeSet<u64>,
    pub references: u64,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("in-memory records always serialize")
}

pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, CatalogError> {
    bincode::deserialize(bytes).map_err(|error| CatalogError::Decode {
        what,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: error.to_string(),
    })
}
