//! Applies one committed event to the index. Pure with respect to the log:
//! the same events in the same order always give the same rows, and
//! re-applying an event already reflected in the index changes nothing.

use prost::Message;
use rocksdb::{WriteBatch, DB};
use tessera_dicom::matching::normalize_person_name;
use tessera_proto::v1::{event::Body, Event, InstanceStored};

use crate::db::{self, join_key, prefix_key};
use crate::index::Level;
use crate::records::{
    decode, encode, sequences_of, BlobRecord, InstanceRecord, PatientRecord, SeriesRecord,
    StudyRecord,
};
use crate::types::Outcome;
use crate::CatalogError;

/// Study index families: the field name is the first key part.
pub(crate) const INDEX_PATIENT_ID: &str = "pid";
pub(crate) const INDEX_STUDY_DATE: &str = "date";
pub(crate) const INDEX_ACCESSION: &str = "acc";
pub(crate) const INDEX_PATIENT_NAME: &str = "name";

/// Adds the writes of one event to `batch`, reading current rows from `db`.
pub(crate) fn apply_event(
    db: &DB,
    batch: &mut WriteBatch,
    log_index: u64,
    event: &Event,
) -> Result<Outcome, CatalogError> {
    let Some(body) = &event.body else {
        return Ok(Outcome::Ignored {
            reason: "event has no body".into(),
        });
    };

    match body {
        Body::InstanceStored(stored) => {
            store_instance(db, batch, log_index, event.accepted_at_ms, stored)
        }
        Body::InstanceDeleted(deleted) => delete_instance(
            db,
            batch,
            &deleted.study_instance_uid,
            &deleted.series_instance_uid,
            &deleted.sop_instance_uid,
        ),
        Body::SeriesDeleted(deleted) => delete_prefix(
            db,
            batch,
            &[&deleted.study_instance_uid, &deleted.series_instance_uid],
        ),
        Body::StudyDeleted(deleted) => delete_prefix(db, batch, &[&deleted.study_instance_uid]),
        Body::ReplicaAdded(added) => change_replica(db, batch, &added.blob_id, added.node_id, true),
        Body::ReplicaRemoved(removed) => {
            change_replica(db, batch, &removed.blob_id, removed.node_id, false)
        }
        Body::NodeAdded(_) | Body::NodeDecommissioned(_) | Body::AccessRecorded(_) => {
            Ok(Outcome::Applied)
        }
        Body::PatientUpdated(_) | Body::PatientsMerged(_) => Ok(Outcome::Ignored {
            // TODO: patient updates and merges are journaled but not projected; the
            // index keeps the demographics of the first stored instance.
            reason: "patient updates are not projected yet".into(),
        }),
    }
}

fn store_instance(
    db: &DB,
    batch: &mut WriteBatch,
    log_index: u64,
    accepted_at_ms: i64,
    stored: &InstanceStored,
) -> Result<Outcome, CatalogError> {
    let attributes = stored.attributes.clone().unwrap_or_default();
    let sop_uid = attributes.sop_instance_uid.as_str();
    if let Some(existing) = instance_by_sop(db, sop_uid)? {
        let existing = InstanceStored::decode(existing.stored.as_slice()).unwrap_or_default();
        if existing.blob_id == stored.blob_id {
            return Ok(Outcome::AlreadyStored {
                blob_id: existing.blob_id,
            });
        }
        return Ok(Outcome::Conflict {
            existing_blob_id: existing.blob_id,
        });
    }

    let study_uid = attributes.study_instance_uid.as_str();
    let series_uid = attributes.series_instance_uid.as_str();
    let record = InstanceRecord {
        stored: stored.encode_to_vec(),
        log_index,
        accepted_at_ms,
    };
    batch.put_cf(
        &db::cf(db, db::CF_INSTANCES),
        join_key(&[study_uid, series_uid, sop_uid]),
        encode(&record),
    );
    batch.put_cf(
        &db::cf(db, db::CF_SOP),
        sop_uid.as_bytes(),
        join_key(&[study_uid, series_uid]),
    );

    let new_series = add_to_series(db, batch, &attributes, stored.size)?;
    let new_study = add_to_study(db, batch, &attributes, stored.size, new_series)?;
    add_to_patient(db, batch, &attributes, new_study)?;
    add_blob_reference(db, batch, &stored.blob_id, stored.size, &stored.replicas)?;
    Ok(Outcome::Applied)
}

fn add_to_series(
    db: &DB,
    batch: &mut WriteBatch,
    attributes: &tessera_proto::v1::InstanceAttributes,
    size: u64,
) -> Result<bool, CatalogError> {
    let key = join_key(&[
        &attributes.study_instance_uid,
        &attributes.series_instance_uid,
    ]);
    let existing: Option<SeriesRecord> = get(db, db::CF_SERIES, "series", &key)?;
    let is_new = existing.is_none();
    let mut series = existing.unwrap_or_else(|| SeriesRecord {
        study_instance_uid: attributes.study_instance_uid.clone(),
        series_instance_uid: attributes.series_instance_uid.clone(),
        modality: attributes.modality.clone(),
        series_description: attributes.series_description.clone(),
        series_number: attributes.series_number.clone(),
        sequences: sequences_of(attributes, Level::Series.sequence_keywords()),
        ..SeriesRecord::default()
    });

    series.instance_count += 1;
    series.bytes += size;
    batch.put_cf(&db::cf(db, db::CF_SERIES), key, encode(&series));
    Ok(is_new)
}

fn add_to_study(
    db: &DB,
    batch: &mut WriteBatch,
    attributes: &tessera_proto::v1::InstanceAttributes,
    size: u64,
    new_series: bool,
) -> Result<bool, CatalogError> {
    let key = attributes.study_instance_uid.as_bytes();
    let existing: Option<StudyRecord> = get(db, db::CF_STUDIES, "study", key)?;
    let is_new = existing.is_none();
    let mut study = existing.unwrap_or_else(|| new_study_record(attributes));

    if !attributes.modality.is_empty() {
        study.modalities.insert(attributes.modality.clone());
    }
    study.series_count += u64::from(new_series);
    study.instance_count += 1;
    study.bytes += size;
    if is_new {
        put_study_index(db, batch, &study);
    }
    batch.put_cf(&db::cf(db, db::CF_STUDIES), key, encode(&study));
    Ok(is_new)
}

fn new_study_record(attributes: &tessera_proto::v1::InstanceAttributes) -> StudyRecord {
    StudyRecord {
        study_instance_uid: attributes.study_instance_uid.clone(),
        patient_id: attributes.patient_id.clone(),
        issuer_of_patient_id: attributes.issuer_of_patient_id.clone(),
        patient_name: attributes.patient_name.clone(),
        patient_birth_date: attributes.patient_birth_date.clone(),
        patient_sex: attributes.patient_sex.clone(),
        study_date: attributes.study_date.clone(),
        study_time: attributes.study_time.clone(),
        accession_number: attributes.accession_number.clone(),
        study_description: attributes.study_description.clone(),
        study_id: attributes.study_id.clone(),
        referring_physician_name: attributes.referring_physician_name.clone(),
        sequences: sequences_of(attributes, Level::Study.sequence_keywords()),
        ..StudyRecord::default()
    }
}

/// Secondary index rows of a study, keyed field, value, study UID.
///
/// The name rows hold the normalized patient name and, when it has several
/// values, one more row for each value after the first, because a query
/// matches a name through any of its values. The first value needs no row
/// of its own: the whole name starts with it.
pub(crate) fn study_index_keys(study: &StudyRecord) -> Vec<Vec<u8>> {
    let uid = study.study_instance_uid.as_str();
    let name = normalize_person_name(&study.patient_name);
    let mut keys = vec![
        join_key(&[INDEX_PATIENT_ID, &study.patient_id, uid]),
        join_key(&[INDEX_STUDY_DATE, &study.study_date, uid]),
        join_key(&[INDEX_ACCESSION, &study.accession_number, uid]),
        join_key(&[INDEX_PATIENT_NAME, &name, uid]),
    ];
    // TODO: studies indexed before these rows existed lack them, and nothing
    // adds them later, so a name query reaches such a study only through its
    // first value. A one-time pass over the studies at open would add them.
    for value in name.split('\\').skip(1).filter(|value| !value.is_empty()) {
        keys.push(join_key(&[INDEX_PATIENT_NAME, value, uid]));
    }
    keys
}

fn put_study_index(db: &DB, batch: &mut WriteBatch, study: &StudyRecord) {
    let family = db::cf(db, db::CF_STUDY_INDEX);
    for key in study_index_keys(study) {
        batch.put_cf(&family, key, b"");
    }
}

fn add_to_patient(
    db: &DB,
    batch: &mut WriteBatch,
    attributes: &tessera_proto::v1::InstanceAttributes,
    new_study: bool,
) -> Result<(), CatalogError> {
    let key = join_key(&[&attributes.issuer_of_patient_id, &attributes.patient_id]);
    let existing: Option<PatientRecord> = get(db, db::CF_PATIENTS, "patient", &key)?;
    let mut patient = existing.unwrap_or_else(|| PatientRecord {
        patient_id: attributes.patient_id.clone(),
        issuer_of_patient_id: attributes.issuer_of_patient_id.clone(),
        patient_name: attributes.patient_name.clone(),
        patient_birth_date: attributes.patient_birth_date.clone(),
        patient_sex: attributes.patient_sex.clone(),
        sequences: sequences_of(attributes, Level::Patient.sequence_keywords()),
        ..PatientRecord::default()
    });

    patient.study_count += u64::from(new_study);
    patient.instance_count += 1;
    batch.put_cf(&db::cf(db, db::CF_PATIENTS), key, encode(&patient));
    Ok(())
}

fn add_blob_reference(
    db: &DB,
    batch: &mut WriteBatch,
    blob_id: &[u8],
    size: u64,
    replicas: &[u64],
) -> Result<(), CatalogError> {
    let existing: Option<BlobRecord> = get(db, db::CF_BLOBS, "blob", blob_id)?;
    let mut blob = existing.unwrap_or_else(|| BlobRecord {
        size,
        ..BlobRecord::default()
    });

    blob.references += 1;
    blob.replicas.extend(replicas.iter().copied());
    batch.put_cf(&db::cf(db, db::CF_BLOBS), blob_id, encode(&blob));
    Ok(())
}

fn change_replica(
    db: &DB,
    batch: &mut WriteBatch,
    blob_id: &[u8],
    node_id: u64,
    add: bool,
) -> Result<Outcome, CatalogError> {
    let Some(mut blob) = get::<BlobRecord>(db, db::CF_BLOBS, "blob", blob_id)? else {
        return Ok(Outcome::Ignored {
            reason: format!("blob {} is not in the index", hex::encode(blob_id)),
        });
    };

    if add {
        blob.replicas.insert(node_id);
    } else {
        blob.replicas.remove(&node_id);
    }
    batch.put_cf(&db::cf(db, db::CF_BLOBS), blob_id, encode(&blob));
    Ok(Outcome::Applied)
}

fn delete_prefix(db: &DB, batch: &mut WriteBatch, parts: &[&str]) -> Result<Outcome, CatalogError> {
    let prefix = prefix_key(parts);
    let keys: Vec<Vec<u8>> = db
        .prefix_iterator_cf(&db::cf(db, db::CF_INSTANCES), &prefix)
        .map_while(|item| item.ok())
        .take_while(|(key, _)| key.starts_with(&prefix))
        .map(|(key, _)| key.to_vec())
        .collect();
    if keys.is_empty() {
        return Ok(Outcome::Ignored {
            reason: format!("nothing stored under {}", parts.join("/")),
        });
    }

    // Deleting instance by instance keeps every counter right; the batch is
    // written once, so each delete must see the previous ones' effects.
    let mut shadow = ShadowCounts::default();
    for key in keys {
        let text = String::from_utf8_lossy(&key).into_owned();
        let parts: Vec<&str> = text.split('\0').collect();
        delete_one(db, batch, &mut shadow, parts[0], parts[1], parts[2])?;
    }
    shadow.flush(db, batch);
    Ok(Outcome::Applied)
}

fn delete_instance(
    db: &DB,
    batch: &mut WriteBatch,
    study: &str,
    series: &str,
    sop: &str,
) -> Result<Outcome, CatalogError> {
    let mut shadow = ShadowCounts::default();
    let outcome = delete_one(db, batch, &mut shadow, study, series, sop)?;
    shadow.flush(db, batch);
    Ok(outcome)
}

/// Study, series, patient and blob rows changed by a multi-instance delete,
/// held until the end so each instance reads the counts its predecessors left.
#[derive(Default)]
struct ShadowCounts {
    studies: std::collections::BTreeMap<Vec<u8>, Option<StudyRecord>>,
    series: std::collections::BTreeMap<Vec<u8>, Option<SeriesRecord>>,
    patients: std::collections::BTreeMap<Vec<u8>, Option<PatientRecord>>,
    blobs: std::collections::BTreeMap<Vec<u8>, Option<BlobRecord>>,
}

impl ShadowCounts {
    fn flush(self, db: &DB, batch: &mut WriteBatch) {
        for (key, row) in self.studies {
            write_row(db, batch, db::CF_STUDIES, &key, row.as_ref());
        }
        for (key, row) in self.series {
            write_row(db, batch, db::CF_SERIES, &key, row.as_ref());
        }
        for (key, row) in self.patients {
            write_row(db, batch, db::CF_PATIENTS, &key, row.as_ref());
        }
        for (key, row) in self.blobs {
            write_row(db, batch, db::CF_BLOBS, &key, row.as_ref());
        }
    }
}

/// Returns the held row under `key`, reading it from `family` on first use.
fn shadow_slot<'a, T: serde::de::DeserializeOwned>(
    rows: &'a mut std::collections::BTreeMap<Vec<u8>, Option<T>>,
    db: &DB,
    family: &str,
    what: &'static str,
    key: &[u8],
) -> Result<&'a mut Option<T>, CatalogError> {
    if !rows.contains_key(key) {
        let row = get::<T>(db, family, what, key)?;
        rows.insert(key.to_vec(), row);
    }
    Ok(rows.get_mut(key).expect("inserted above"))
}

fn write_row<T: serde::Serialize>(
    db: &DB,
    batch: &mut WriteBatch,
    family: &str,
    key: &[u8],
    row: Option<&T>,
) {
    let handle = db::cf(db, family);
    match row {
        Some(row) => batch.put_cf(&handle, key, encode(row)),
        None => batch.delete_cf(&handle, key),
    }
}

fn delete_one(
    db: &DB,
    batch: &mut WriteBatch,
    shadow: &mut ShadowCounts,
    study_uid: &str,
    series_uid: &str,
    sop_uid: &str,
) -> Result<Outcome, CatalogError> {
    let key = join_key(&[study_uid, series_uid, sop_uid]);
    let Some(record) = get::<InstanceRecord>(db, db::CF_INSTANCES, "instance", &key)? else {
        return Ok(Outcome::Ignored {
            reason: format!("instance {sop_uid} is not in the index"),
        });
    };
    let stored = InstanceStored::decode(record.stored.as_slice()).unwrap_or_default();
    batch.delete_cf(&db::cf(db, db::CF_INSTANCES), &key);
    batch.delete_cf(&db::cf(db, db::CF_SOP), sop_uid.as_bytes());

    let series_key = join_key(&[study_uid, series_uid]);
    let series_gone = shrink_series(db, shadow, &series_key, stored.size)?;
    let study_gone = shrink_study(db, batch, shadow, study_uid, stored.size, series_gone)?;
    let attributes = stored.attributes.unwrap_or_default();
    let patient_key = join_key(&[&attributes.issuer_of_patient_id, &attributes.patient_id]);
    shrink_patient(db, shadow, &patient_key, study_gone)?;
    drop_blob_reference(db, shadow, &stored.blob_id)?;
    Ok(Outcome::Applied)
}

fn shrink_series(
    db: &DB,
    shadow: &mut ShadowCounts,
    key: &[u8],
    size: u64,
) -> Result<bool, CatalogError> {
    let slot = shadow_slot(&mut shadow.series, db, db::CF_SERIES, "series", key)?;
    let Some(series) = slot else { return Ok(false) };

    series.instance_count = series.instance_count.saturating_sub(1);
    series.bytes = series.bytes.saturating_sub(size);
    let gone = series.instance_count == 0;
    if gone {
        *slot = None;
    }
    Ok(gone)
}

fn shrink_study(
    db: &DB,
    batch: &mut WriteBatch,
    shadow: &mut ShadowCounts,
    uid: &str,
    size: u64,
    series_gone: bool,
) -> Result<bool, CatalogError> {
    let slot = shadow_slot(
        &mut shadow.studies,
        db,
        db::CF_STUDIES,
        "study",
        uid.as_bytes(),
    )?;
    let Some(study) = slot else { return Ok(false) };

    study.instance_count = study.instance_count.saturating_sub(1);
    study.series_count = study.series_count.saturating_sub(u64::from(series_gone));
    study.bytes = study.bytes.saturating_sub(size);
    let gone = study.instance_count == 0;
    if gone {
        let family = db::cf(db, db::CF_STUDY_INDEX);
        for key in study_index_keys(study) {
            batch.delete_cf(&family, key);
        }
        *slot = None;
    }
    Ok(gone)
}

fn shrink_patient(
    db: &DB,
    shadow: &mut ShadowCounts,
    key: &[u8],
    study_gone: bool,
) -> Result<(), CatalogError> {
    let slot = shadow_slot(&mut shadow.patients, db, db::CF_PATIENTS, "patient", key)?;
    let Some(patient) = slot else { return Ok(()) };

    patient.instance_count = patient.instance_count.saturating_sub(1);
    patient.study_count = patient.study_count.saturating_sub(u64::from(study_gone));
    if patient.instance_count == 0 {
        *slot = None;
    }
    Ok(())
}

fn drop_blob_reference(
    db: &DB,
    shadow: &mut ShadowCounts,
    blob_id: &[u8],
) -> Result<(), CatalogError> {
    let slot = shadow_slot(&mut shadow.blobs, db, db::CF_BLOBS, "blob", blob_id)?;
    let Some(blob) = slot else { return Ok(()) };

    // TODO: an unreferenced blob leaves the index here, but its replicas stay on
    // the shards until a garbage collector (not written yet) deletes them.
    blob.references = blob.references.saturating_sub(1);
    if blob.references == 0 {
        *slot = None;
    }
    Ok(())
}

pub(crate) fn instance_by_sop(
    db: &DB,
    sop_uid: &str,
) -> Result<Option<InstanceRecord>, CatalogError> {
    let location = db
        .get_cf(&db::cf(db, db::CF_SOP), sop_uid.as_bytes())
        .map_err(CatalogError::rocks("read SOP Instance UID index"))?;
    let Some(location) = location else {
        return Ok(None);
    };

    let mut key = location;
    key.push(0);
    key.extend_from_slice(sop_uid.as_bytes());
    get(db, db::CF_INSTANCES, "instance", &key)
}

pub(crate) fn get<T: serde::de::DeserializeOwned>(
    db: &DB,
    family: &str,
    what: &'static str,
    key: &[u8],
) -> Result<Option<T>, CatalogError> {
    let bytes = db
        .get_cf(&db::cf(db, family), key)
        .map_err(CatalogError::rocks("read index row"))?;
    bytes.map(|bytes| decode(what, key, &bytes)).transpose()
}
