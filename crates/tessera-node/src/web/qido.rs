//! QIDO-RS (PS3.18 section 10.6): studies, series and instances, at the top
//! level and nested, with the catalog's C-FIND matching rules.
//!
//! The catalog indexes a few attributes per level. Series and instance
//! queries may also match on study attributes (and instance queries on
//! series attributes): those keys select the parent records first, and
//! the parents' attributes are merged into the results for `includefield`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tessera_catalog::Level;
use tessera_web_parse::{IncludeFields, QidoQuery};

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

type Record = BTreeMap<String, String>;

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
    let page: Vec<Record> = records
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
    /// Match keys as the catalog takes them, fuzzy person names widened.
    fn keys(&self) -> Record {
        let mut keys = Record::new();
        for (attribute, value) in &self.query.matches {
            let mut value = value.clone();
            let fuzzy = self.query.fuzzy
                && PERSON_NAME_KEYS.contains(&attribute.keyword.as_str())
                && !value.is_empty()
                && !value.contains(['*', '?']);
            if fuzzy {
                // NOTE: fuzzy matching is implementation-defined in PS3.18;
                // here it is a case-insensitive substring match.
                value = format!("*{value}*");
            }
            keys.insert(attribute.keyword.clone(), value);
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

    /// Runs the query and returns every matching record with the attributes
    /// of its study (and series) merged in.
    fn run(&self, node: &Node) -> Result<Vec<Record>, WebError> {
        let keys = self.keys();
        let own = self.level_keys();
        let parent_keys = |parent: &[&str]| -> Record {
            keys.iter()
                .filter(|(k, _)| !own.contains(&k.as_str()) && parent.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let study_keys = parent_keys(Level::Study.keywords());
        let series_keys = match self.level {
            Level::Instance => parent_keys(Level::Series.keywords()),
            _ => Record::new(),
        };
        let level_keys: Record = keys
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
                for (keyword, value) in parent {
                    record
                        .entry(keyword.clone())
                        .or_insert_with(|| value.clone());
                }
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
    fn to_json(&self, base: &str, record: &Record) -> serde_json::Map<String, Value> {
        let own = self.level_keys();
        let keys = self.keys();
        let selected: Record = record
            .iter()
            .filter(|(keyword, _)| {
                let keyword = keyword.as_str();
                own.contains(&keyword)
                    || keys.contains_key(keyword)
                    || match &self.query.include {
                        IncludeFields::Default => false,
                        IncludeFields::All => true,
                        IncludeFields::Attributes(list) => {
                            list.iter().any(|a| a.keyword == keyword)
                        }
                    }
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        let mut map = json::record(&selected);
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

fn uid_of<'a>(record: &'a Record, keyword: &str) -> &'a str {
    record.get(keyword).map(String::as_str).unwrap_or("")
}

/// Parent records (studies or series) of `records` that match `keys`, by UID.
fn parents(
    node: &Node,
    level: Level,
    keys: &Record,
    records: &[Record],
    uid_keyword: &str,
) -> Result<HashMap<String, Record>, WebError> {
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
