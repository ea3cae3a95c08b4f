//! QIDO-RS (PS3.18 section 10.6): studies, series and instances, at the top
//! level and nested, with the catalog's C-FIND matching rules.
//!
//! The catalog indexes a few attributes per level. Series and instance
//! queries may also match on study attributes (and instance queries on
//! series attributes): those keys select the parent records first, and
//! the parents' attributes are merged into the results for `includefield`.
//!
//! A sequence is matched through its item attributes, named by paths such
//! as `RequestAttributesSequence.RequestedProcedureID`, and returned with
//! its matching items when a key or `includefield` names it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tessera_catalog::{Level, QueryRecord};
use tessera_web_parse::{Attribute, IncludeFields, QidoQuery};

use super::json;
use super::metadata::negotiate_json;
use super::{base_url, resource_url, WebError};
use crate::node::Node;

/// Attributes the catalog matches at the instance level.
const INSTANCE_KEYS: &[&str] = &[
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

/// Person name attributes that `fuzzymatching=true` widens.
const PERSON_NAME_KEYS: &[&str] = &["PatientName", "ReferringPhysicianName"];

type Keys = BTreeMap<String, String>;

/// A QIDO-RS search: its level, the UIDs of the path, and the query.
struct Search {
    level: Level,
    study: Option<String>,
    series: Option<String>,
    query: QidoQuery,
}

pub async fn studies(
    State(node): State<Arc<Node>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    search(node, Level::Study, None, None, raw, headers).await
}

pub async fn all_series(
    State(node): State<Arc<Node>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    search(node, Level::Series, None, None, raw, headers).await
}

pub async fn all_instances(
    State(node): State<Arc<Node>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    search(node, Level::Instance, None, None, raw, headers).await
}

pub async fn study_series(
    State(node): State<Arc<Node>>,
    Path(study): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    search(node, Level::Series, Some(study), None, raw, headers).await
}

pub async fn study_instances(
    State(node): State<Arc<Node>>,
    Path(study): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    search(node, Level::Instance, Some(study), None, raw, headers).await
}

pub async fn series_instances(
    State(node): State<Arc<Node>>,
    Path((study, series)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    search(
        node,
        Level::Instance,
        Some(study),
        Some(series),
        raw,
        headers,
    )
    .await
}

async fn search(
    node: Arc<Node>,
    level: Level,
    study: Option<String>,
    series: Option<String>,
    raw: Option<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    negotiate_json(&headers)?;
    let query = QidoQuery::parse(raw.as_deref().unwrap_or(""))?;
    let search = Search {
        level,
        study,
        series,
        query,
    };
    node.read_barrier().await?;

    let records = search.run(&node)?;
    let total = records.len();
    let page: Vec<QueryRecord> = records
        .into_iter()
        .skip(search.query.offset)
        .take(search.query.limit.unwrap_or(usize::MAX))
        .collect();
    let remaining = total.saturating_sub(search.query.offset + page.len());

    let base = base_url(&node, &headers);
    let body: Vec<Value> = page
        .iter()
        .map(|r| Value::Object(search.to_json(&base, r)))
        .collect();
    let mut response = (
        [(header::CONTENT_TYPE, "application/dicom+json")],
        Value::Array(body).to_string(),
    )
        .into_response();
    if remaining > 0 {
        let warning = format!(
            "299 tessera \"There are {remaining} additional results that can be requested\""
        );
        if let Ok(value) = HeaderValue::from_str(&warning) {
            response.headers_mut().insert(header::WARNING, value);
        }
    }
    Ok(response)
}

impl Search {
    /// Match keys as the catalog takes them, fuzzy person names widened,
    /// with an empty key for each sequence that `includefield` requests, so
    /// that the catalog returns it.
    fn keys(&self) -> Keys {
        let mut keys = Keys::new();
        for sequence in self.included_sequences() {
            keys.insert(sequence.to_string(), String::new());
        }
        for (attribute, value) in &self.query.matches {
            let mut value = value.clone();
            let fuzzy = self.query.fuzzy
                && attribute.sequence.is_none()
                && PERSON_NAME_KEYS.contains(&attribute.keyword.as_str())
                && !value.is_empty()
                && !value.contains(['*', '?']);
            if fuzzy {
                // NOTE: fuzzy matching is implementation-defined in PS3.18;
                // here it is a case-insensitive substring match.
                value = format!("*{value}*");
            }
            keys.insert(attribute.path(), value);
        }
        if let Some(study) = &self.study {
            keys.insert("StudyInstanceUID".into(), study.clone());
        }
        if let Some(series) = &self.series {
            keys.insert("SeriesInstanceUID".into(), series.clone());
        }
        keys
    }

    fn level_keys(&self) -> &'static [&'static str] {
        match self.level {
            Level::Study | Level::Patient => Level::Study.keywords(),
            Level::Series => Level::Series.keywords(),
            Level::Instance => INSTANCE_KEYS,
        }
    }

    /// Returns the catalog levels whose records this search reads: its own
    /// level and the parent levels whose attributes it merges in.
    fn searched_levels(&self) -> &'static [Level] {
        match self.level {
            Level::Study | Level::Patient => &[Level::Study],
            Level::Series => &[Level::Series, Level::Study],
            Level::Instance => &[Level::Instance, Level::Series, Level::Study],
        }
    }

    /// Returns the keywords of the indexed sequences that `includefield`
    /// requests: every one of the searched levels for `all`, else those
    /// named, alone or as the sequence of a path.
    fn included_sequences(&self) -> Vec<&'static str> {
        let indexed = self
            .searched_levels()
            .iter()
            .flat_map(|level| level.sequence_keywords().iter().copied());
        let named = |keyword: &str| match &self.query.include {
            IncludeFields::Default => false,
            IncludeFields::All => true,
            IncludeFields::Attributes(list) => {
                list.iter().any(|a: &Attribute| a.top_keyword() == keyword)
            }
        };
        let mut sequences: Vec<&'static str> = indexed.filter(|k| named(k)).collect();
        sequences.sort_unstable();
        sequences.dedup();
        sequences
    }

    /// Runs the query and returns every matching record with the attributes
    /// of its study (and series) merged in.
    fn run(&self, node: &Node) -> Result<Vec<QueryRecord>, WebError> {
        let keys = self.keys();
        let own_level = match self.level {
            Level::Patient => Level::Study,
            level => level,
        };
        let is_own = |key: &str| belongs_to(own_level, self.level_keys(), key);
        let parent_keys = |parent: Level| -> Keys {
            keys.iter()
                .filter(|(k, _)| !is_own(k) && belongs_to(parent, parent.keywords(), k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let study_keys = parent_keys(Level::Study);
        let series_keys = match self.level {
            Level::Instance => parent_keys(Level::Series),
            _ => Keys::new(),
        };
        let level_keys: Keys = keys
            .iter()
            .filter(|(k, _)| !study_keys.contains_key(*k) && !series_keys.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        let mut records = node.catalog.query(self.level, &level_keys, 0, 0)?.records;
        if self.level == Level::Study {
            return Ok(records);
        }
        let studies = parents(
            node,
            Level::Study,
            &study_keys,
            &records,
            "StudyInstanceUID",
        )?;
        records.retain(|r| studies.contains_key(uid_of(r, "StudyInstanceUID")));
        let series = if self.level == Level::Instance {
            parents(
                node,
                Level::Series,
                &series_keys,
                &records,
                "SeriesInstanceUID",
            )?
        } else {
            HashMap::new()
        };
        if self.level == Level::Instance {
            records.retain(|r| series.contains_key(uid_of(r, "SeriesInstanceUID")));
        }

        for record in &mut records {
            let parent_series = series.get(uid_of(record, "SeriesInstanceUID"));
            let parent_study = studies.get(uid_of(record, "StudyInstanceUID"));
            for parent in parent_series.into_iter().chain(parent_study) {
                merge_parent(record, parent);
            }
        }
        Ok(records)
    }

    /// Encodes one result with the attributes `includefield` selects: the
    /// level's own attributes, the match keys, and the requested parent ones.
    ///
    /// TODO: only attributes the catalog indexes can be returned, so an
    /// `includefield` naming another one (PatientAge, BodyPartExamined, ...)
    /// is accepted but absent from the results.
    ///
    /// Sequences are in the record only when a key or `includefield` named
    /// them, so all of them are encoded, each with its matching items.
    fn to_json(&self, base: &str, record: &QueryRecord) -> serde_json::Map<String, Value> {
        let own = self.level_keys();
        let keys = self.keys();
        let selected: Keys = record
            .attributes
            .iter()
            .filter(|(keyword, _)| {
                let keyword = keyword.as_str();
                own.contains(&keyword)
                    || keys.contains_key(keyword)
                    || match &self.query.include {
                        IncludeFields::Default => false,
                        IncludeFields::All => true,
                        IncludeFields::Attributes(list) => list
                            .iter()
                            .any(|a| a.sequence.is_none() && a.keyword == keyword),
                    }
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        let mut map = json::record(&selected);
        for (keyword, items) in &record.sequences {
            json::sequence_attribute(&mut map, keyword, items);
        }
        let study = uid_of(record, "StudyInstanceUID");
        let url = match self.level {
            Level::Study | Level::Patient => resource_url(base, study, None, None),
            Level::Series => {
                resource_url(base, study, Some(uid_of(record, "SeriesInstanceUID")), None)
            }
            Level::Instance => resource_url(
                base,
                study,
                Some(uid_of(record, "SeriesInstanceUID")),
                Some(uid_of(record, "SOPInstanceUID")),
            ),
        };
        json::text_attribute(&mut map, "RetrieveURL", &url);
        map
    }
}

/// Tells whether a catalog key (a keyword or a `Sequence.Attribute` path)
/// names an attribute or sequence of `level`, whose attributes are `keywords`.
fn belongs_to(level: Level, keywords: &[&str], key: &str) -> bool {
    let top = key.split('.').next().unwrap_or(key);
    keywords.contains(&top) || level.sequence_keywords().contains(&top)
}

/// Adds a parent's attributes and sequences that the record lacks.
fn merge_parent(record: &mut QueryRecord, parent: &QueryRecord) {
    for (keyword, value) in &parent.attributes {
        let entry = record.attributes.entry(keyword.clone());
        entry.or_insert_with(|| value.clone());
    }
    for (keyword, items) in &parent.sequences {
        let entry = record.sequences.entry(keyword.clone());
        entry.or_insert_with(|| items.clone());
    }
}

fn uid_of<'a>(record: &'a QueryRecord, keyword: &str) -> &'a str {
    let value = record.attributes.get(keyword);
    value.map(String::as_str).unwrap_or("")
}

/// Parent records (studies or series) of `records` that match `keys`, by UID.
fn parents(
    node: &Node,
    level: Level,
    keys: &Keys,
    records: &[QueryRecord],
    uid_keyword: &str,
) -> Result<HashMap<String, QueryRecord>, WebError> {
    let mut found = HashMap::new();
    let mut uids: Vec<&str> = records.iter().map(|r| uid_of(r, uid_keyword)).collect();
    uids.sort_unstable();
    uids.dedup();
    for uid in uids {
        let mut parent_keys = keys.clone();
        parent_keys.insert(uid_keyword.to_string(), uid.to_string());
        let page = node.catalog.query(level, &parent_keys, 0, 1)?;
        if let Some(parent) = page.records.into_iter().next() {
            found.insert(uid.to_string(), parent);
        }
    }
    Ok(found)
}
