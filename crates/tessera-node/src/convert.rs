//! Conversions between protobuf messages and domain types.

use tessera_blob::{BlobId, Manifest};
use tessera_dicom::sequences::SequenceAttribute;
use tessera_dicom::IndexAttributes;
use tessera_proto::internal::v1::BlobManifest;
use tessera_proto::v1::{self as proto, InstanceAttributes};

use crate::NodeError;

pub fn manifest_to_proto(manifest: &Manifest) -> BlobManifest {
    BlobManifest {
        blob_id: manifest.blob_id.as_bytes().to_vec(),
        size: manifest.size,
        chunk_size: manifest.chunk_size,
        chunk_hashes: manifest.chunk_hashes.iter().map(|h| h.to_vec()).collect(),
    }
}

pub fn manifest_from_proto(proto: &BlobManifest) -> Result<Manifest, NodeError> {
    let blob_id = BlobId::from_slice(&proto.blob_id)?;
    let mut chunk_hashes = Vec::with_capacity(proto.chunk_hashes.len());
    for hash in &proto.chunk_hashes {
        let hash: [u8; 32] = hash.as_slice().try_into().map_err(|_| {
            NodeError::InvalidRequest(format!(
                "manifest of blob {blob_id} has a chunk hash of {} bytes, expected 32",
                hash.len()
            ))
        })?;
        chunk_hashes.push(hash);
    }
    Ok(Manifest {
        blob_id,
        size: proto.size,
        chunk_size: proto.chunk_size,
        chunk_hashes,
    })
}

pub fn attributes_to_proto(a: IndexAttributes) -> InstanceAttributes {
    InstanceAttributes {
        sop_class_uid: a.sop_class_uid,
        sop_instance_uid: a.sop_instance_uid,
        study_instance_uid: a.study_instance_uid,
        series_instance_uid: a.series_instance_uid,
        transfer_syntax_uid: a.transfer_syntax_uid,
        specific_character_set: a.specific_character_set,
        patient_id: a.patient_id,
        issuer_of_patient_id: a.issuer_of_patient_id,
        patient_name: a.patient_name,
        patient_birth_date: a.patient_birth_date,
        patient_sex: a.patient_sex,
        study_date: a.study_date,
        study_time: a.study_time,
        accession_number: a.accession_number,
        study_description: a.study_description,
        study_id: a.study_id,
        referring_physician_name: a.referring_physician_name,
        modality: a.modality,
        series_description: a.series_description,
        series_number: a.series_number,
        instance_number: a.instance_number,
        number_of_frames: a.number_of_frames,
        rows: a.rows,
        columns: a.columns,
        sequences: a.sequences.into_iter().map(sequence_to_proto).collect(),
    }
}

fn sequence_to_proto(sequence: SequenceAttribute) -> proto::SequenceAttribute {
    let items = sequence.items.into_iter().map(|item| proto::SequenceItem {
        attributes: item
            .into_iter()
            .map(|(keyword, value)| proto::ItemAttribute { keyword, value })
            .collect(),
    });
    proto::SequenceAttribute {
        keyword: sequence.keyword,
        items: items.collect(),
    }
}
