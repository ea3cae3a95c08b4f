//! Rows of the index projection, stored bincode-encoded.
//!
//! bincode writes fields in order with no names, so a field can only be
//! added at the end of a row, and a row written before it existed ends
//! before it. Such a field is read with [`trailing_or_default`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize};
use tessera_dicom::sequences::SequenceItem;
use tessera_proto::v1::InstanceAttributes;

use crate::CatalogError;

/// Sequence attributes of a row by keyword, each with its items.
pub type Sequences = BTreeMap<String, Vec<SequenceItem>>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientRecord {
    pub patient_id: String,
    pub issuer_of_patient_id: String,
    pub patient_name: String,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub study_count: u64,
    pub instance_count: u64,
    /// The patient-level indexed sequences of the patient's first instance.
    #[serde(deserialize_with = "trailing_or_default")]
    pub sequences: Sequences,
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
    /// The study-level indexed sequences of the study's first instance.
    #[serde(deserialize_with = "trailing_or_default")]
    pub sequences: Sequences,
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
    /// The series-level indexed sequences of the series' first instance.
    #[serde(deserialize_with = "trailing_or_default")]
    pub sequences: Sequences,
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

/// Reads the last field of a row, or its default when the row ends before
/// it because it was written before the field existed.
///
/// NOTE: bincode reports a row that ends early and a damaged last field with
/// the same error, so a damaged last field also reads as the default.
fn trailing_or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(T::deserialize(deserializer).unwrap_or_default())
}

/// Returns the sequences of an instance that `keywords` names, as a row keeps them.
pub(crate) fn sequences_of(attributes: &InstanceAttributes, keywords: &[&str]) -> Sequences {
    let mut sequences = Sequences::new();
    for sequence in &attributes.sequences {
        if !keywords.contains(&sequence.keyword.as_str()) {
            continue;
        }
        let items = sequence.items.iter().map(|item| {
            let attributes = item.attributes.iter();
            attributes
                .map(|attribute| (attribute.keyword.clone(), attribute.value.clone()))
                .collect()
        });
        sequences.insert(sequence.keyword.clone(), items.collect());
    }
    sequences
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A study row as it was written before sequences were indexed.
    #[derive(Serialize)]
    struct StudyRecordWithoutSequences {
        study_instance_uid: String,
        patient_id: String,
        issuer_of_patient_id: String,
        patient_name: String,
        patient_birth_date: String,
        patient_sex: String,
        study_date: String,
        study_time: String,
        accession_number: String,
        study_description: String,
        study_id: String,
        referring_physician_name: String,
        modalities: BTreeSet<String>,
        series_count: u64,
        instance_count: u64,
        bytes: u64,
    }

    #[test]
    fn row_without_sequences_decodes() {
        let old = StudyRecordWithoutSequences {
            study_instance_uid: "1.2.3".into(),
            patient_id: "P1".into(),
            issuer_of_patient_id: String::new(),
            patient_name: "DOE^JANE".into(),
            patient_birth_date: String::new(),
            patient_sex: "F".into(),
            study_date: "20240101".into(),
            study_time: String::new(),
            accession_number: "A1".into(),
            study_description: String::new(),
            study_id: String::new(),
            referring_physician_name: String::new(),
            modalities: BTreeSet::from(["CT".to_string()]),
            series_count: 1,
            instance_count: 2,
            bytes: 300,
        };

        let row: StudyRecord = decode("study", b"1.2.3", &encode(&old)).expect("decodes");

        assert_eq!(row.study_instance_uid, "1.2.3");
        assert_eq!(row.accession_number, "A1");
        assert_eq!(row.bytes, 300);
        assert!(row.sequences.is_empty());
    }

    #[test]
    fn row_with_sequences_round_trips() {
        let item = SequenceItem::from([("CodeValue".to_string(), "CTHEAD".to_string())]);
        let study = StudyRecord {
            study_instance_uid: "1.2.3".into(),
            bytes: 7,
            sequences: Sequences::from([("ProcedureCodeSequence".to_string(), vec![item])]),
            ..StudyRecord::default()
        };

        let row: StudyRecord = decode("study", b"1.2.3", &encode(&study)).expect("decodes");

        assert_eq!(row, study);
    }

    #[test]
    fn truncated_fixed_field_is_an_error() {
        let study = StudyRecord::default();
        let bytes = encode(&study);

        let error = decode::<StudyRecord>("study", b"k", &bytes[..bytes.len() - 12]);

        assert!(
            error.is_err(),
            "a row cut inside its counters must not decode"
        );
    }
}
