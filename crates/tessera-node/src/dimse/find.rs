//! C-FIND SCP for the Patient Root and Study Root information models.
//!
//! Request values are decoded with the identifier's Specific Character Set
//! and matched by the catalog (PS3.4 C.2.2.2). A sequence key becomes the
//! catalog key `Sequence` plus one key `Sequence.Attribute` per item key.
//! Each match goes back as a pending response in the request's character
//! set, or in ISO_IR 192 when that set cannot encode a value. A C-CANCEL is
//! checked between responses.

use std::collections::BTreeMap;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use tessera_catalog::{CatalogError, Level, QueryRecord};
use tessera_dicom::charset;
use tessera_dicom::dimse::{DataSet, Encoding, Value};
use tessera_dicom::sequences::{indexed_sequence, SequenceItem};

use super::association::{Association, Command};
use super::command::{self, status};
use super::service::Session;
use super::sop_classes as classes;
use super::DimseError;
use crate::NodeError;

/// Largest identifier accepted in a C-FIND, C-MOVE or C-GET request.
pub const IDENTIFIER_LIMIT: usize = 1 << 20;

pub const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);
pub const QUERY_RETRIEVE_LEVEL: Tag = Tag(0x0008, 0x0052);
const RETRIEVE_AE_TITLE: Tag = Tag(0x0008, 0x0054);

/// A request that cannot be served, as the status and Error Comment to send.
pub type Failure = (u16, String);

/// A decoded C-FIND, C-MOVE or C-GET identifier.
pub struct Identifier {
    pub level: Level,
    pub level_name: String,
    pub character_set: String,
    pub set: DataSet,
    /// Matching keys by keyword, decoded to UTF-8. Item keys of a sequence
    /// key are named `Sequence.Attribute`.
    pub keys: BTreeMap<String, String>,
}

pub async fn handle(
    session: &Session,
    association: &mut Association,
    command: Command,
) -> Result<(), DimseError> {
    let data = match command::has_data_set(&command.set) {
        true => association.receive_data(IDENTIFIER_LIMIT).await?,
        false => Vec::new(),
    };
    let encoding = association
        .context(command.context_id)
        .and_then(|context| Encoding::of_transfer_syntax(&context.transfer_syntax));
    let model = association
        .context(command.context_id)
        .map(|context| context.abstract_syntax.clone())
        .unwrap_or_default();

    let matches = match find_matches(session, &data, encoding, &model).await {
        Ok(found) => found,
        Err((code, comment)) => return send_final(association, &command, code, &comment).await,
    };
    stream_matches(
        session,
        association,
        &command,
        matches,
        encoding.expect("checked"),
    )
    .await
}

async fn find_matches(
    session: &Session,
    data: &[u8],
    encoding: Option<Encoding>,
    model: &str,
) -> Result<(Identifier, Vec<QueryRecord>), Failure> {
    if !session.rights.query {
        return Err((
            status::NOT_AUTHORIZED,
            format!("{} may not query", session.calling_ae),
        ));
    }
    let identifier = decode_identifier(data, encoding)?;
    if identifier.level == Level::Patient && model == classes::STUDY_ROOT_FIND {
        let comment = "PATIENT level is not part of the Study Root model".to_string();
        return Err((status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, comment));
    }
    session.node.read_barrier().await.map_err(unavailable)?;
    let records = query(session, identifier.level, identifier.keys.clone())?;
    Ok((identifier, records))
}

/// Decodes an identifier: its level, its character set and its matching keys.
pub fn decode_identifier(data: &[u8], encoding: Option<Encoding>) -> Result<Identifier, Failure> {
    let Some(encoding) = encoding else {
        return Err((
            status::CANNOT_UNDERSTAND,
            "identifier in an unsupported transfer syntax".into(),
        ));
    };
    let set = DataSet::parse(data, encoding).map_err(|error| {
        (
            status::CANNOT_UNDERSTAND,
            format!("invalid identifier: {error}"),
        )
    })?;
    let level_name = set.text(QUERY_RETRIEVE_LEVEL).unwrap_or_default();
    let level = match level_name.as_str() {
        "PATIENT" => Level::Patient,
        "STUDY" => Level::Study,
        "SERIES" => Level::Series,
        "IMAGE" => Level::Instance,
        other => {
            let comment = format!("invalid Query/Retrieve Level {other:?}");
            return Err((status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, comment));
        }
    };
    let character_set = character_set_of(&set);
    let keys = matching_keys(&set, &character_set)?;
    Ok(Identifier {
        level,
        level_name,
        character_set,
        set,
        keys,
    })
}

/// Returns (0008,0005) with its values joined by '\\', as the charset module takes it.
fn character_set_of(set: &DataSet) -> String {
    let raw = set.bytes(SPECIFIC_CHARACTER_SET).unwrap_or_default();
    let text = String::from_utf8_lossy(raw);
    let values: Vec<&str> = text.split('\\').map(str::trim).collect();
    values.join("\\").trim_end_matches('\\').to_string()
}

fn matching_keys(set: &DataSet, character_set: &str) -> Result<BTreeMap<String, String>, Failure> {
    let mut keys = BTreeMap::new();
    for (tag, element) in &set.elements {
        if *tag == SPECIFIC_CHARACTER_SET || *tag == QUERY_RETRIEVE_LEVEL || tag.group() <= 0x0002 {
            continue;
        }
        let Some(keyword) = keyword_of(*tag) else {
            continue;
        };
        match &element.value {
            Value::Bytes(raw) => {
                let value = decode_key(character_set, &keyword, element.vr, raw)?;
                keys.insert(keyword, value);
            }
            Value::Items(items) => sequence_keys(&mut keys, character_set, &keyword, items)?,
        }
    }
    Ok(keys)
}

/// Adds a sequence key: the sequence itself, and the item keys of its one
/// item (PS3.4 C.2.2.2.6). Sequences nested in that item are not matched.
fn sequence_keys(
    keys: &mut BTreeMap<String, String>,
    character_set: &str,
    keyword: &str,
    items: &[DataSet],
) -> Result<(), Failure> {
    if items.len() > 1 {
        let comment = format!(
            "{keyword} has {} items, but a sequence key has at most one item of item keys",
            items.len()
        );
        return Err((status::CANNOT_UNDERSTAND, comment));
    }

    keys.insert(keyword.to_string(), String::new());
    for (tag, element) in items.iter().flat_map(|item| &item.elements) {
        let (Some(item_keyword), Value::Bytes(raw)) = (keyword_of(*tag), &element.value) else {
            continue;
        };
        let path = format!("{keyword}.{item_keyword}");
        let value = decode_key(character_set, &path, element.vr, raw)?;
        keys.insert(path, value);
    }
    Ok(())
}

fn decode_key(character_set: &str, keyword: &str, vr: VR, raw: &[u8]) -> Result<String, Failure> {
    let value = charset::decode_value(character_set, vr, raw)
        .map_err(|error| (status::CANNOT_UNDERSTAND, format!("{keyword}: {error}")))?;
    Ok(value.trim_end_matches(['\0', ' ']).trim_start().to_string())
}

/// Runs the query, dropping keys the catalog does not index at this level:
/// PS3.4 C.2.2.1 lets an SCP ignore optional keys it does not support, and
/// they come back empty.
fn query(
    session: &Session,
    level: Level,
    mut keys: BTreeMap<String, String>,
) -> Result<Vec<QueryRecord>, Failure> {
    loop {
        match session.node.catalog.query(level, &keys, 0, 0) {
            Ok(page) => return Ok(page.records),
            Err(CatalogError::UnsupportedKey { keyword, .. })
                if keys.remove(&keyword).is_some() =>
            {
                continue;
            }
            Err(CatalogError::Query { keyword, source }) => {
                return Err((status::CANNOT_UNDERSTAND, format!("{keyword}: {source}")));
            }
            Err(error) => return Err(unavailable(NodeError::from(error))),
        }
    }
}

pub fn unavailable(error: NodeError) -> Failure {
    tracing::warn!(%error, "request failed, archive unavailable");
    (
        status::OUT_OF_RESOURCES,
        "archive unavailable, retry later".into(),
    )
}

async fn stream_matches(
    session: &Session,
    association: &mut Association,
    command: &Command,
    (identifier, records): (Identifier, Vec<QueryRecord>),
    encoding: Encoding,
) -> Result<(), DimseError> {
    tracing::debug!(level = %identifier.level_name, matches = records.len(), "C-FIND");
    for record in records {
        if cancelled(association, command).await? {
            return send_final(association, command, status::CANCEL, "").await;
        }
        let response = response_identifier(session, &identifier, &record);
        let data = response.encode(encoding);
        let pending = command::response(&command.set, command::C_FIND_RSP, status::PENDING, true);
        association
            .send(command.context_id, &pending, Some(&data))
            .await?;
    }
    send_final(association, command, status::SUCCESS, "").await
}

/// Returns whether the peer sent a C-CANCEL for this request. Any other
/// command while responses are outstanding is a protocol error.
pub async fn cancelled(
    association: &mut Association,
    request: &Command,
) -> Result<bool, DimseError> {
    let Some(next) = association.poll_command().await? else {
        return Ok(false);
    };
    let is_cancel = command::command_field(&next.set) == Some(command::C_CANCEL_RQ);
    let same = next.set.u16(command::MESSAGE_ID_BEING_RESPONDED_TO)
        == Some(command::message_id(&request.set));
    if is_cancel && same {
        return Ok(true);
    }
    Err(DimseError::Unexpected {
        peer: association.peer.clone(),
        what: "request while another was in progress".into(),
    })
}

async fn send_final(
    association: &mut Association,
    command: &Command,
    code: u16,
    comment: &str,
) -> Result<(), DimseError> {
    let mut response = command::response(&command.set, command::C_FIND_RSP, code, false);
    if !comment.is_empty() {
        tracing::info!(status = code, %comment, "C-FIND failed");
        response = command::with_error_comment(response, comment);
    }
    association.send(command.context_id, &response, None).await
}

/// Values of one response item or data set: tag, VR and text.
type Values = Vec<(Tag, VR, String)>;

/// Builds one match: every requested key, with the record's value or empty,
/// plus the level's unique key. A requested sequence has the record's
/// matching items, each with the requested item keys, or no items when the
/// catalog does not index it.
fn response_identifier(
    session: &Session,
    identifier: &Identifier,
    record: &QueryRecord,
) -> DataSet {
    let mut values: Values = Vec::new();
    let mut sequences: Vec<(Tag, Vec<Values>)> = Vec::new();
    for (tag, element) in &identifier.set.elements {
        if *tag == SPECIFIC_CHARACTER_SET || *tag == QUERY_RETRIEVE_LEVEL || tag.group() <= 0x0002 {
            continue;
        }
        if let Value::Items(key_items) = &element.value {
            sequences.push((*tag, response_items(*tag, key_items, record)));
            continue;
        }
        let value = match keyword_of(*tag) {
            Some(keyword) => record.attributes.get(&keyword).cloned().unwrap_or_default(),
            None => String::new(),
        };
        let value = if *tag == RETRIEVE_AE_TITLE {
            session.node.config.dimse.ae_title.clone()
        } else {
            value
        };
        values.push((*tag, element.vr, value));
    }
    if let Some((tag, keyword)) = unique_key(identifier.level) {
        if !identifier.set.elements.contains_key(&tag) {
            let value = record.attributes.get(keyword).cloned().unwrap_or_default();
            values.push((tag, VR::UI, value));
        }
    }

    let item_values = sequences.iter().flat_map(|(_, items)| items).flatten();
    let all_values: Values = values.iter().chain(item_values).cloned().collect();
    let character_set = response_character_set(&identifier.character_set, &all_values);
    let mut set = DataSet::default();
    if !character_set.is_empty() {
        set.put_text(SPECIFIC_CHARACTER_SET, VR::CS, &character_set);
    }
    set.put_text(QUERY_RETRIEVE_LEVEL, VR::CS, &identifier.level_name);
    put_values(&mut set, &character_set, values);
    for (tag, items) in sequences {
        let items = items
            .into_iter()
            .map(|values| {
                let mut item = DataSet::default();
                put_values(&mut item, &character_set, values);
                item
            })
            .collect();
        set.put_items(tag, items);
    }
    set
}

fn put_values(set: &mut DataSet, character_set: &str, values: Values) {
    for (tag, vr, value) in values {
        let bytes =
            charset::encode_value(character_set, vr, &value).unwrap_or_else(|_| value.into_bytes());
        set.put_bytes(tag, vr, bytes);
    }
}

/// Returns the items of a requested sequence: the record's items that the
/// catalog returned, each with the item keys of the request, or with every
/// indexed item attribute when the request had no item keys.
fn response_items(tag: Tag, key_items: &[DataSet], record: &QueryRecord) -> Vec<Values> {
    let Some(keyword) = keyword_of(tag) else {
        return Vec::new();
    };
    let Some(items) = record.sequences.get(&keyword) else {
        return Vec::new();
    };

    let requested: Vec<(Tag, VR, String)> = match key_items.first() {
        Some(key_item) if !key_item.elements.is_empty() => key_item
            .elements
            .iter()
            .filter(|(_, element)| matches!(element.value, Value::Bytes(_)))
            .filter_map(|(tag, element)| Some((*tag, element.vr, keyword_of(*tag)?)))
            .collect(),
        _ => indexed_sequence(&keyword)
            .map(|indexed| indexed.item_attributes.iter())
            .into_iter()
            .flatten()
            .map(|(tag, vr, keyword)| (*tag, *vr, keyword.to_string()))
            .collect(),
    };
    items
        .iter()
        .map(|item| item_values(item, &requested))
        .collect()
}

fn item_values(item: &SequenceItem, requested: &[(Tag, VR, String)]) -> Values {
    requested
        .iter()
        .map(|(tag, vr, keyword)| (*tag, *vr, item.get(keyword).cloned().unwrap_or_default()))
        .collect()
}

/// Keeps the request's character set when it can encode every value, else
/// responds in ISO_IR 192 (UTF-8), which can.
fn response_character_set(requested: &str, values: &[(Tag, VR, String)]) -> String {
    let all_ascii = values.iter().all(|(_, _, value)| value.is_ascii());
    if all_ascii {
        return requested.to_string();
    }
    let encodable = !requested.is_empty()
        && values
            .iter()
            .all(|(_, vr, value)| charset::encode_value(requested, *vr, value).is_ok());
    if encodable {
        requested.to_string()
    } else {
        "ISO_IR 192".to_string()
    }
}

fn unique_key(level: Level) -> Option<(Tag, &'static str)> {
    match level {
        Level::Patient => None,
        Level::Study => Some((Tag(0x0020, 0x000D), "StudyInstanceUID")),
        Level::Series => Some((Tag(0x0020, 0x000E), "SeriesInstanceUID")),
        Level::Instance => Some((Tag(0x0008, 0x0018), "SOPInstanceUID")),
    }
}

pub fn keyword_of(tag: Tag) -> Option<String> {
    StandardDataDictionary
        .by_tag(tag)
        .map(|entry| entry.alias().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identifier(level: &str, charset_value: &str, name: &[u8]) -> Vec<u8> {
        let mut set = DataSet::default();
        if !charset_value.is_empty() {
            set.put_text(SPECIFIC_CHARACTER_SET, VR::CS, charset_value);
        }
        set.put_text(QUERY_RETRIEVE_LEVEL, VR::CS, level);
        set.put_bytes(Tag(0x0010, 0x0010), VR::PN, name.to_vec());
        set.put_text(Tag(0x0020, 0x000D), VR::UI, "");
        set.encode(Encoding::ExplicitLittle)
    }

    #[test]
    fn latin1_name_is_decoded() {
        let data = identifier("STUDY", "ISO_IR 100", b"M\xfcller*");

        let decoded = decode_identifier(&data, Some(Encoding::ExplicitLittle)).unwrap();

        assert_eq!(decoded.keys["PatientName"], "Müller*");
        assert_eq!(decoded.keys["StudyInstanceUID"], "");
        assert_eq!(decoded.level, Level::Study);
    }

    #[test]
    fn bad_level_is_identifier_mismatch() {
        let data = identifier("WORKLIST", "", b"DOE");

        let (code, comment) = decode_identifier(&data, Some(Encoding::ExplicitLittle))
            .err()
            .unwrap();

        assert_eq!(code, status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS);
        assert!(comment.contains("WORKLIST"), "{comment}");
    }

    const REQUEST_ATTRIBUTES: Tag = Tag(0x0040, 0x0275);
    const REQUESTED_PROCEDURE_ID: Tag = Tag(0x0040, 0x1001);
    const SCHEDULED_STEP_ID: Tag = Tag(0x0040, 0x0009);

    fn sequence_identifier(items: Vec<DataSet>) -> Vec<u8> {
        let mut set = DataSet::default();
        set.put_text(SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
        set.put_text(QUERY_RETRIEVE_LEVEL, VR::CS, "SERIES");
        set.put_items(REQUEST_ATTRIBUTES, items);
        set.encode(Encoding::ExplicitLittle)
    }

    fn request_key(id: &[u8]) -> DataSet {
        let mut item = DataSet::default();
        item.put_bytes(REQUESTED_PROCEDURE_ID, VR::SH, id.to_vec());
        item.put_text(SCHEDULED_STEP_ID, VR::SH, "");
        item
    }

    #[test]
    fn sequence_key_becomes_item_keys() {
        let data = sequence_identifier(vec![request_key(b"R\xd6NTGEN ")]);

        let decoded = decode_identifier(&data, Some(Encoding::ExplicitLittle)).unwrap();

        assert_eq!(decoded.keys["RequestAttributesSequence"], "");
        assert_eq!(
            decoded.keys["RequestAttributesSequence.RequestedProcedureID"],
            "RÖNTGEN"
        );
        assert_eq!(
            decoded.keys["RequestAttributesSequence.ScheduledProcedureStepID"],
            ""
        );
    }

    #[test]
    fn sequence_key_without_items_is_universal() {
        let data = sequence_identifier(Vec::new());

        let decoded = decode_identifier(&data, Some(Encoding::ExplicitLittle)).unwrap();

        assert_eq!(decoded.keys.len(), 1, "{:?}", decoded.keys);
        assert_eq!(decoded.keys["RequestAttributesSequence"], "");
    }

    #[test]
    fn sequence_key_with_two_items_is_rejected() {
        let data = sequence_identifier(vec![request_key(b"RP1"), request_key(b"RP2")]);

        let (code, comment) = decode_identifier(&data, Some(Encoding::ExplicitLittle))
            .err()
            .unwrap();

        assert_eq!(code, status::CANNOT_UNDERSTAND);
        assert!(comment.contains("RequestAttributesSequence"), "{comment}");
    }

    fn record_with_requests() -> QueryRecord {
        let item = |id: &str, step: &str| {
            SequenceItem::from([
                ("RequestedProcedureID".to_string(), id.to_string()),
                ("ScheduledProcedureStepID".to_string(), step.to_string()),
                ("AccessionNumber".to_string(), "A-1".to_string()),
            ])
        };
        QueryRecord {
            attributes: BTreeMap::new(),
            sequences: BTreeMap::from([(
                "RequestAttributesSequence".to_string(),
                vec![item("RP1", "SPS1"), item("RP2", "SPS2")],
            )]),
        }
    }

    #[test]
    fn response_items_carry_requested_keys() {
        let key_items = [request_key(b"RP*")];

        let items = response_items(REQUEST_ATTRIBUTES, &key_items, &record_with_requests());

        assert_eq!(items.len(), 2);
        let tags: Vec<Tag> = items[1].iter().map(|(tag, _, _)| *tag).collect();
        assert_eq!(tags, [SCHEDULED_STEP_ID, REQUESTED_PROCEDURE_ID]);
        assert_eq!(items[1][0].2, "SPS2");
        assert_eq!(items[1][1].2, "RP2");
    }

    #[test]
    fn universal_key_returns_every_item_attribute() {
        let items = response_items(REQUEST_ATTRIBUTES, &[], &record_with_requests());

        assert_eq!(items.len(), 2);
        let accession = items[0]
            .iter()
            .find(|(tag, _, _)| *tag == Tag(0x0008, 0x0050))
            .expect("AccessionNumber is indexed");
        assert_eq!(accession.2, "A-1");
        assert_eq!(items[0].len(), 6, "{:?}", items[0]);
    }

    #[test]
    fn response_items_of_unindexed_sequence_are_empty() {
        let items = response_items(Tag(0x0040, 0x0260), &[], &record_with_requests());

        assert!(items.is_empty());
    }

    #[test]
    fn unencodable_values_switch_to_utf8() {
        let values = vec![(Tag(0x0010, 0x0010), VR::PN, "王^小明".to_string())];

        assert_eq!(response_character_set("ISO_IR 100", &values), "ISO_IR 192");
        assert_eq!(response_character_set("GB18030", &values), "GB18030");
        assert_eq!(response_character_set("", &values), "ISO_IR 192");
    }
}
