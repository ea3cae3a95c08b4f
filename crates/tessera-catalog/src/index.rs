//! Read side of the catalog: queries, instance lookups, the journal and blob
//! placement records, all served from the local projection.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rocksdb::{IteratorMode, DB};
use tessera_dicom::matching::{Matcher, SequenceMatcher};
use tessera_dicom::sequences::indexed_sequence;
use tessera_proto::v1::InstanceStored;
use tokio::sync::watch;

use crate::db::{self, index_key, join_key, prefix_key};
use crate::projection::{
    self, INDEX_ACCESSION, INDEX_PATIENT_ID, INDEX_PATIENT_NAME, INDEX_STUDY_DATE,
};
use crate::records::{
    decode, sequences_of, BlobRecord, InstanceRecord, PatientRecord, Sequences, SeriesRecord,
    StudyRecord,
};
use crate::snapshot::{IncomingSnapshot, SnapshotDir};
use crate::{CatalogError, LogStore, StateMachine};

/// Query and retrieve level, as in the DICOM Query/Retrieve information models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Patient,
    Study,
    Series,
    Instance,
}

/// One page of query results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryPage {
    pub records: Vec<QueryRecord>,
    /// Matches before `offset` and `limit` were applied.
    pub total: u64,
}

/// One query result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryRecord {
    /// Every attribute of the level, by DICOM keyword, several values joined by a backslash.
    pub attributes: BTreeMap<String, String>,
    /// The sequences that the query keys name, by keyword. Each has the items
    /// that matched (PS3.4 C.2.2.2.6), with every indexed item attribute.
    pub sequences: Sequences,
}

/// A stored instance as recorded in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInstance {
    pub stored: InstanceStored,
    pub log_index: u64,
    pub accepted_at_ms: i64,
}

/// The read handle of the catalog. Cheap to clone, and every clone reads writes as
/// soon as the state machine applies them.
#[derive(Clone)]
pub struct Catalog {
    db: Arc<DB>,
    applied: watch::Receiver<u64>,
    snapshots: SnapshotDir,
}

/// Everything a node needs from one catalog database.
pub struct OpenedCatalog {
    pub catalog: Catalog,
    pub log_store: LogStore,
    pub state_machine: StateMachine,
}

impl Catalog {
    /// Opens the catalog database at `path` with its log store and state
    /// machine. Snapshots live in `path/snapshots`.
    pub fn open(path: &Path) -> Result<OpenedCatalog, CatalogError> {
        let db = db::open_db(path)?;
        let snapshots = SnapshotDir::open(path.join("snapshots"))?;
        let (state_machine, applied) = StateMachine::new(db.clone(), snapshots.clone())?;
        Ok(OpenedCatalog {
            catalog: Catalog {
                db: db.clone(),
                applied,
                snapshots,
            },
            log_store: LogStore::new(db),
            state_machine,
        })
    }

    /// Starts receiving a snapshot from the leader; hand the finished one to
    /// `Raft::install_full_snapshot`.
    pub fn incoming_snapshot(&self) -> Result<IncomingSnapshot, CatalogError> {
        self.snapshots.incoming()
    }

    /// Log index of the last event applied to the local index.
    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the local index has applied `index`; false on timeout.
    ///
    /// Cancel safe: dropping the future only stops waiting.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        let mut receiver = self.applied.clone();
        let outcome = tokio::time::timeout(timeout, receiver.wait_for(|a| *a >= index)).await;
        let reached = matches!(outcome, Ok(Ok(_)));
        reached
    }

    /// Returns a receiver that changes whenever an event is applied, for change feeds.
    pub fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    pub fn instance(&self, sop_uid: &str) -> Result<Option<StoredInstance>, CatalogError> {
        let record = projection::instance_by_sop(&self.db, sop_uid)?;
        Ok(record.map(to_stored_instance))
    }

    /// Instances of a study, or of one series when `series_uid` is given, in
    /// series then SOP Instance UID order.
    pub fn instances_of(
        &self,
        study_uid: &str,
        series_uid: Option<&str>,
    ) -> Result<Vec<StoredInstance>, CatalogError> {
        let prefix = match series_uid {
            Some(series) => prefix_key(&[study_uid, series]),
            None => prefix_key(&[study_uid]),
        };
        let rows = self.scan_prefix(db::CF_INSTANCES, &prefix)?;
        rows.into_iter()
            .map(|(key, value)| {
                decode::<InstanceRecord>("instance", &key, &value).map(to_stored_instance)
            })
            .collect()
    }

    /// Journal events from `from_index` on, at most `max` of them.
    pub fn journal_from(
        &self,
        from_index: u64,
        max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, CatalogError> {
        let family = db::cf(&self.db, db::CF_JOURNAL);
        let start = index_key(from_index);
        let mode = IteratorMode::From(&start, rocksdb::Direction::Forward);
        let mut events = Vec::new();
        for item in self.db.iterator_cf(&family, mode).take(max) {
            let (key, value) = item.map_err(CatalogError::rocks("read journal"))?;
            events.push((db::index_from_key(&key), value.to_vec()));
        }
        Ok(events)
    }

    /// Lists every blob the index references, with its replica set.
    pub fn blobs(&self) -> Result<Vec<(Vec<u8>, BlobRecord)>, CatalogError> {
        let family = db::cf(&self.db, db::CF_BLOBS);
        let mut blobs = Vec::new();
        for item in self.db.iterator_cf(&family, IteratorMode::Start) {
            let (key, value) = item.map_err(CatalogError::rocks("read blob records"))?;
            blobs.push((key.to_vec(), decode("blob", &key, &value)?));
        }
        Ok(blobs)
    }

    pub fn blob(&self, blob_id: &[u8]) -> Result<Option<BlobRecord>, CatalogError> {
        projection::get(&self.db, db::CF_BLOBS, "blob", blob_id)
    }

    /// Number of instances in the index.
    pub fn instance_count(&self) -> Result<u64, CatalogError> {
        let family = db::cf(&self.db, db::CF_SOP);
        let mut count = 0;
        for item in self.db.iterator_cf(&family, IteratorMode::Start) {
            item.map_err(CatalogError::rocks("count instances"))?;
            count += 1;
        }
        Ok(count)
    }

    /// Finds records at `level` whose attributes match every key, with the
    /// matching rules of DICOM C-FIND (PS3.4 C.2.2.2).
    ///
    /// A key `Sequence.Attribute` (e.g. `RequestAttributesSequence.RequestedProcedureID`)
    /// is an item key of a sequence key, and a key `Sequence` with an empty
    /// value requests the sequence. The item keys of one sequence must all
    /// match within the same item, and only matching items are returned.
    pub fn query(
        &self,
        level: Level,
        keys: &BTreeMap<String, String>,
        offset: usize,
        limit: usize,
    ) -> Result<QueryPage, CatalogError> {
        let parsed = ParsedKeys::parse(level, keys)?;
        let candidates = match level {
            Level::Patient => self.patient_rows()?,
            Level::Study => self.study_rows(keys)?,
            Level::Series => self.series_rows(keys)?,
            Level::Instance => self.instance_rows(keys)?,
        };

        let matching: Vec<QueryRecord> = candidates
            .into_iter()
            .filter_map(|record| parsed.select(record))
            .collect();
        let total = matching.len() as u64;
        let limit = if limit == 0 { usize::MAX } else { limit };
        let records = matching.into_iter().skip(offset).take(limit).collect();
        Ok(QueryPage { records, total })
    }

    fn patient_rows(&self) -> Result<Vec<QueryRecord>, CatalogError> {
        let rows = self.scan_prefix(db::CF_PATIENTS, &[])?;
        rows.into_iter()
            .map(|(key, value)| decode("patient", &key, &value).map(|p| patient_attributes(&p)))
            .collect()
    }

    fn study_rows(
        &self,
        keys: &BTreeMap<String, String>,
    ) -> Result<Vec<QueryRecord>, CatalogError> {
        let uids = match self.study_candidates(keys)? {
            Some(uids) => uids,
            None => {
                let rows = self.scan_prefix(db::CF_STUDIES, &[])?;
                return rows
                    .into_iter()
                    .map(|(key, value)| decode("study", &key, &value).map(|s| study_attributes(&s)))
                    .collect();
            }
        };

        let mut records = Vec::new();
        for uid in uids {
            let study: Option<StudyRecord> =
                projection::get(&self.db, db::CF_STUDIES, "study", uid.as_bytes())?;
            records.extend(study.map(|s| study_attributes(&s)));
        }
        Ok(records)
    }

    /// Study UIDs from the most selective secondary index that applies, or
    /// None when only a full scan can serve the query.
    fn study_candidates(
        &self,
        keys: &BTreeMap<String, String>,
    ) -> Result<Option<Vec<String>>, CatalogError> {
        if let Some(uids) = exact_value(keys, "StudyInstanceUID") {
            return Ok(Some(distinct_uids(uids)));
        }
        if let Some(value) = exact_value(keys, "PatientID") {
            return self.study_index_scan(&prefix_key(&[INDEX_PATIENT_ID, value]), None);
        }
        if let Some(value) = exact_value(keys, "AccessionNumber") {
            return self.study_index_scan(&prefix_key(&[INDEX_ACCESSION, value]), None);
        }
        if let Some((from, to)) = keys.get("StudyDate").and_then(|v| date_bounds(v)) {
            let start = join_key(&[INDEX_STUDY_DATE, &from]);
            let mut end = prefix_key(&[INDEX_STUDY_DATE, &to]);
            end.push(0xff);
            return self.study_index_scan(&start, Some(end));
        }
        if let Some(prefix) = name_prefix(keys) {
            let start = join_key(&[INDEX_PATIENT_NAME, &prefix]);
            let uids = self.study_index_scan(&start, None)?;
            return Ok(uids.map(distinct));
        }
        Ok(None)
    }

    /// Study UIDs from index rows starting at `start`: those with the prefix
    /// `start` when `end` is None, else those before `end`.
    fn study_index_scan(
        &self,
        start: &[u8],
        end: Option<Vec<u8>>,
    ) -> Result<Option<Vec<String>>, CatalogError> {
        let family = db::cf(&self.db, db::CF_STUDY_INDEX);
        let mode = IteratorMode::From(start, rocksdb::Direction::Forward);
        let mut uids = Vec::new();
        for item in self.db.iterator_cf(&family, mode) {
            let (key, _) = item.map_err(CatalogError::rocks("scan study index"))?;
            let in_range = match &end {
                Some(end) => key.as_ref() < end.as_slice(),
                None => key.starts_with(start),
            };
            if !in_range {
                break;
            }
            let text = String::from_utf8_lossy(&key);
            uids.extend(text.rsplit('\0').next().map(str::to_string));
        }
        Ok(Some(uids))
    }

    fn series_rows(
        &self,
        keys: &BTreeMap<String, String>,
    ) -> Result<Vec<QueryRecord>, CatalogError> {
        let prefix = match exact_value(keys, "StudyInstanceUID") {
            Some(study) if !study.contains('\\') => prefix_key(&[study]),
            _ => Vec::new(),
        };
        let rows = self.scan_prefix(db::CF_SERIES, &prefix)?;
        rows.into_iter()
            .map(|(key, value)| decode("series", &key, &value).map(|s| series_attributes(&s)))
            .collect()
    }

    fn instance_rows(
        &self,
        keys: &BTreeMap<String, String>,
    ) -> Result<Vec<QueryRecord>, CatalogError> {
        if let Some(sop) = exact_value(keys, "SOPInstanceUID").filter(|v| !v.contains('\\')) {
            let found = self.instance(sop)?;
            return Ok(found.iter().map(instance_attributes).collect());
        }

        let study = exact_value(keys, "StudyInstanceUID").filter(|v| !v.contains('\\'));
        let series = exact_value(keys, "SeriesInstanceUID").filter(|v| !v.contains('\\'));
        let prefix = match (study, series) {
            (Some(study), Some(series)) => prefix_key(&[study, series]),
            (Some(study), None) => prefix_key(&[study]),
            _ => Vec::new(),
        };
        let rows = self.scan_prefix(db::CF_INSTANCES, &prefix)?;
        rows.into_iter()
            .map(|(key, value)| {
                let record = decode::<InstanceRecord>("instance", &key, &value)?;
                Ok(instance_attributes(&to_stored_instance(record)))
            })
            .collect()
    }

    fn scan_prefix(
        &self,
        family: &str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, CatalogError> {
        let family = db::cf(&self.db, family);
        let mode = IteratorMode::From(prefix, rocksdb::Direction::Forward);
        let mut rows = Vec::new();
        for item in self.db.iterator_cf(&family, mode) {
            let (key, value) = item.map_err(CatalogError::rocks("scan index"))?;
            if !key.starts_with(prefix) {
                break;
            }
            rows.push((key.to_vec(), value.to_vec()));
        }
        Ok(rows)
    }
}

fn to_stored_instance(record: InstanceRecord) -> StoredInstance {
    StoredInstance {
        stored: InstanceStored::decode(record.stored.as_slice()).unwrap_or_default(),
        log_index: record.log_index,
        accepted_at_ms: record.accepted_at_ms,
    }
}

/// The value of `keyword` when it selects by single value (or, for UIDs, a
/// list). A hyphen is literal here: only dates and times match by range, and
/// hyphens are common in patient IDs and accession numbers.
fn exact_value<'a>(keys: &'a BTreeMap<String, String>, keyword: &str) -> Option<&'a str> {
    let value = keys.get(keyword)?.as_str();
    let exact = !value.is_empty() && !value.contains(['*', '?']);
    exact.then_some(value)
}

/// Splits a UID list key into its UIDs without padding, each once, so that
/// a UID named twice does not return its study twice.
fn distinct_uids(list: &str) -> Vec<String> {
    let mut uids: Vec<String> = Vec::new();
    for uid in list.split('\\').map(|uid| uid.trim_matches([' ', '\0'])) {
        if !uid.is_empty() && !uids.iter().any(|seen| seen == uid) {
            uids.push(uid.to_string());
        }
    }
    uids
}

/// Leading text of the normalized names that a PatientName key can match,
/// or None when the key leaves the start open (or is not a valid key, which
/// parsing the query reports).
fn name_prefix(keys: &BTreeMap<String, String>) -> Option<String> {
    let value = keys.get("PatientName")?;
    let matcher = Matcher::parse("PatientName", value).ok()?;
    matcher.person_name_prefix().map(str::to_string)
}

/// Keeps the first occurrence of each UID, in order: a study whose name has
/// several values can have more than one name row under one prefix.
fn distinct(uids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    uids.into_iter()
        .filter(|uid| seen.insert(uid.clone()))
        .collect()
}

/// Inclusive bounds of a DA match value, with open ends widened.
fn date_bounds(value: &str) -> Option<(String, String)> {
    if value.is_empty() || value.contains(['*', '?', '\\']) {
        return None;
    }
    let (from, to) = match value.split_once('-') {
        Some((from, to)) => (from, to),
        None => (value, value),
    };
    let from = if from.is_empty() { "0" } else { from };
    let to = if to.is_empty() { "99999999" } else { to };
    Some((from.to_string(), to.to_string()))
}

/// The keys of one query, parsed once and tested against every candidate.
struct ParsedKeys {
    /// Matchers of the attribute keys that are not universal.
    attributes: Vec<(String, Matcher)>,
    /// Every sequence that the keys name, universal ones included, because
    /// those are returned too.
    sequences: Vec<(String, SequenceMatcher)>,
}

impl ParsedKeys {
    fn parse(level: Level, keys: &BTreeMap<String, String>) -> Result<ParsedKeys, CatalogError> {
        let mut attributes = Vec::new();
        let mut item_keys: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (keyword, value) in keys {
            if let Some((sequence, item)) = keyword.split_once('.') {
                check_item_key(level, keyword, sequence, item)?;
                let items = item_keys.entry(sequence.to_string()).or_default();
                items.insert(item.to_string(), value.clone());
            } else if level.sequence_keywords().contains(&keyword.as_str()) {
                check_sequence_value(keyword, value)?;
                item_keys.entry(keyword.clone()).or_default();
            } else {
                attributes.extend(parse_attribute_key(level, keyword, value)?);
            }
        }

        let mut sequences = Vec::new();
        for (sequence, items) in item_keys {
            let matcher = SequenceMatcher::parse(&items).map_err(|source| CatalogError::Query {
                keyword: sequence.clone(),
                source,
            })?;
            sequences.push((sequence, matcher));
        }
        Ok(ParsedKeys {
            attributes,
            sequences,
        })
    }

    /// Returns the record with only the requested sequences and their
    /// matching items, or None when it does not match.
    fn select(&self, record: QueryRecord) -> Option<QueryRecord> {
        let attributes_match = self.attributes.iter().all(|(keyword, matcher)| {
            let value = record.attributes.get(keyword).map(String::as_str);
            matcher.matches(value.unwrap_or(""))
        });
        if !attributes_match {
            return None;
        }

        let mut sequences = Sequences::new();
        for (keyword, matcher) in &self.sequences {
            let items = record.sequences.get(keyword).map(Vec::as_slice);
            let matching = matcher.matching_items(items.unwrap_or(&[]))?;
            sequences.insert(keyword.clone(), matching.into_iter().cloned().collect());
        }
        Some(QueryRecord {
            attributes: record.attributes,
            sequences,
        })
    }
}

/// Parses a key of a plain attribute, or returns None when it is universal.
fn parse_attribute_key(
    level: Level,
    keyword: &str,
    value: &str,
) -> Result<Option<(String, Matcher)>, CatalogError> {
    if !level.keywords().contains(&keyword) {
        return Err(unsupported_key(level, keyword, supported_keys(level)));
    }

    let matcher = Matcher::parse(keyword, value).map_err(|source| CatalogError::Query {
        keyword: keyword.to_string(),
        source,
    })?;
    Ok((!matcher.is_universal()).then(|| (keyword.to_string(), matcher)))
}

/// Rejects an item key of a sequence that the level does not index, or of
/// an attribute that the index does not keep in that sequence's items.
fn check_item_key(
    level: Level,
    path: &str,
    sequence: &str,
    item: &str,
) -> Result<(), CatalogError> {
    let indexed = level
        .sequence_keywords()
        .contains(&sequence)
        .then(|| indexed_sequence(sequence))
        .flatten();
    let Some(indexed) = indexed else {
        return Err(unsupported_key(level, path, supported_keys(level)));
    };

    if indexed.item_vr(item).is_none() {
        let items: Vec<String> = indexed
            .item_attributes
            .iter()
            .map(|(_, _, keyword)| format!("{sequence}.{keyword}"))
            .collect();
        return Err(unsupported_key(level, path, items.join(", ")));
    }
    Ok(())
}

/// Rejects a value on a sequence key itself: a sequence matches through the
/// keys of its item.
fn check_sequence_value(keyword: &str, value: &str) -> Result<(), CatalogError> {
    if value.trim_matches([' ', '\0']).is_empty() {
        return Ok(());
    }
    Err(CatalogError::SequenceValue {
        keyword: keyword.to_string(),
        value: value.to_string(),
    })
}

fn unsupported_key(level: Level, keyword: &str, supported: String) -> CatalogError {
    CatalogError::UnsupportedKey {
        keyword: keyword.to_string(),
        level: format!("{level:?}").to_lowercase(),
        supported,
    }
}

/// Lists the attribute and sequence keywords of a level, for error messages.
fn supported_keys(level: Level) -> String {
    let keywords = level.keywords().iter().chain(level.sequence_keywords());
    keywords.copied().collect::<Vec<&str>>().join(", ")
}

const PATIENT_KEYS: [&str; 7] = [
    "PatientID",
    "IssuerOfPatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "NumberOfPatientRelatedStudies",
    "NumberOfPatientRelatedInstances",
];

const STUDY_KEYS: [&str; 15] = [
    "PatientID",
    "IssuerOfPatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyDescription",
    "StudyID",
    "ReferringPhysicianName",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
];

const SERIES_KEYS: [&str; 6] = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "NumberOfSeriesRelatedInstances",
];

const INSTANCE_KEYS: [&str; 9] = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "Modality",
];

/// Indexed sequences by level. Study rows carry the patient's sequence as
/// they carry the patient's other attributes, because Study Root queries
/// match on patient attributes at the study level.
const PATIENT_SEQUENCES: [&str; 1] = ["OtherPatientIDsSequence"];

const STUDY_SEQUENCES: [&str; 3] = [
    "OtherPatientIDsSequence",
    "ProcedureCodeSequence",
    "ReferencedStudySequence",
];

const SERIES_SEQUENCES: [&str; 1] = ["RequestAttributesSequence"];

const INSTANCE_SEQUENCES: [&str; 1] = ["ConceptNameCodeSequence"];

impl Level {
    /// Keywords of the attributes that queries at this level match and return.
    pub fn keywords(self) -> &'static [&'static str] {
        match self {
            Level::Patient => &PATIENT_KEYS,
            Level::Study => &STUDY_KEYS,
            Level::Series => &SERIES_KEYS,
            Level::Instance => &INSTANCE_KEYS,
        }
    }

    /// Keywords of the sequences that queries at this level match and
    /// return. [`tessera_dicom::sequences`] lists their item attributes.
    pub fn sequence_keywords(self) -> &'static [&'static str] {
        match self {
            Level::Patient => &PATIENT_SEQUENCES,
            Level::Study => &STUDY_SEQUENCES,
            Level::Series => &SERIES_SEQUENCES,
            Level::Instance => &INSTANCE_SEQUENCES,
        }
    }
}

fn record(pairs: &[(&str, String)], sequences: &Sequences) -> QueryRecord {
    let attributes = pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.clone()))
        .collect();
    QueryRecord {
        attributes,
        sequences: sequences.clone(),
    }
}

fn patient_attributes(p: &PatientRecord) -> QueryRecord {
    record(
        &[
            ("PatientID", p.patient_id.clone()),
            ("IssuerOfPatientID", p.issuer_of_patient_id.clone()),
            ("PatientName", p.patient_name.clone()),
            ("PatientBirthDate", p.patient_birth_date.clone()),
            ("PatientSex", p.patient_sex.clone()),
            ("NumberOfPatientRelatedStudies", p.study_count.to_string()),
            (
                "NumberOfPatientRelatedInstances",
                p.instance_count.to_string(),
            ),
        ],
        &p.sequences,
    )
}

fn study_attributes(s: &StudyRecord) -> QueryRecord {
    let modalities: Vec<&str> = s.modalities.iter().map(String::as_str).collect();
    record(
        &[
            ("PatientID", s.patient_id.clone()),
            ("IssuerOfPatientID", s.issuer_of_patient_id.clone()),
            ("PatientName", s.patient_name.clone()),
            ("PatientBirthDate", s.patient_birth_date.clone()),
            ("PatientSex", s.patient_sex.clone()),
            ("StudyInstanceUID", s.study_instance_uid.clone()),
            ("StudyDate", s.study_date.clone()),
            ("StudyTime", s.study_time.clone()),
            ("AccessionNumber", s.accession_number.clone()),
            ("StudyDescription", s.study_description.clone()),
            ("StudyID", s.study_id.clone()),
            ("ReferringPhysicianName", s.referring_physician_name.clone()),
            ("ModalitiesInStudy", modalities.join("\\")),
            ("NumberOfStudyRelatedSeries", s.series_count.to_string()),
            (
                "NumberOfStudyRelatedInstances",
                s.instance_count.to_string(),
            ),
        ],
        &s.sequences,
    )
}

fn series_attributes(s: &SeriesRecord) -> QueryRecord {
    record(
        &[
            ("StudyInstanceUID", s.study_instance_uid.clone()),
            ("SeriesInstanceUID", s.series_instance_uid.clone()),
            ("Modality", s.modality.clone()),
            ("SeriesDescription", s.series_description.clone()),
            ("SeriesNumber", s.series_number.clone()),
            (
                "NumberOfSeriesRelatedInstances",
                s.instance_count.to_string(),
            ),
        ],
        &s.sequences,
    )
}

fn instance_attributes(instance: &StoredInstance) -> QueryRecord {
    let a = instance.stored.attributes.clone().unwrap_or_default();
    let sequences = sequences_of(&a, Level::Instance.sequence_keywords());
    let count = |n: u32| if n == 0 { String::new() } else { n.to_string() };
    record(
        &[
            ("StudyInstanceUID", a.study_instance_uid),
            ("SeriesInstanceUID", a.series_instance_uid),
            ("SOPInstanceUID", a.sop_instance_uid),
            ("SOPClassUID", a.sop_class_uid),
            ("InstanceNumber", a.instance_number),
            ("NumberOfFrames", count(a.number_of_frames)),
            ("Rows", count(a.rows)),
            ("Columns", count(a.columns)),
            ("Modality", a.modality),
        ],
        &sequences,
    )
}

#[cfg(test)]
mod exact_value_tests {
    use super::*;

    fn keys(keyword: &str, value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(keyword.to_string(), value.to_string())])
    }

    #[test]
    fn hyphenated_patient_id_is_exact() {
        let keys = keys("PatientID", "MX100-000003");
        assert_eq!(exact_value(&keys, "PatientID"), Some("MX100-000003"));
    }

    #[test]
    fn wildcard_or_empty_is_not_exact() {
        assert_eq!(exact_value(&keys("PatientID", "MX*"), "PatientID"), None);
        assert_eq!(exact_value(&keys("PatientID", "MX10?"), "PatientID"), None);
        assert_eq!(exact_value(&keys("PatientID", ""), "PatientID"), None);
        assert_eq!(
            exact_value(&keys("PatientID", "A"), "AccessionNumber"),
            None
        );
    }
}
