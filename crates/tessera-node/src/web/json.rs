//! The DICOM JSON model (PS3.18 Annex F): attributes keyed by `GGGGEEEE`,
//! each with its VR and either `Value`, `InlineBinary` or `BulkDataURI`.
//!
//! dicom-json 0.10 writes IS and DS values as strings and cannot substitute
//! bulk data URIs, so the model is written here. PN values are objects with
//! `Alphabetic`/`Ideographic`/`Phonetic`, IS/DS and binary numbers are JSON
//! numbers and AT values are hex strings. An empty value is null, and an
//! attribute without a value has no `Value` key at all.

use std::collections::BTreeMap;

use base64::Engine;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::{PrimitiveValue, Value as DicomValue};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::InMemDicomObject;
use serde_json::{json, Map, Value};

/// Binary values longer than this, at the top level of an instance, are sent
/// as a BulkDataURI instead of inline.
const BULK_DATA_THRESHOLD: usize = 1024;

/// Formats a tag as the eight upper-case hex digits used as JSON keys.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// Encodes a data set. With `bulk_data_url`, large top-level binary values
/// become `{bulk_data_url}/{GGGGEEEE}` references.
///
/// TODO: binary values inside sequences stay inline whatever their size,
/// because the bulk data endpoint addresses top-level attributes only.
pub fn dataset(object: &InMemDicomObject, bulk_data_url: Option<&str>) -> Map<String, Value> {
    let mut map = Map::new();
    for element in object {
        let tag = element.header().tag;
        let bulk_uri = bulk_data_url.map(|base| format!("{base}/{}", tag_key(tag)));
        let vr = element.header().vr();
        let json = match element.value() {
            DicomValue::Primitive(value) if vr == VR::UN => {
                unknown(tag, value).unwrap_or_else(|| primitive(vr, value, bulk_uri.as_deref()))
            }
            DicomValue::Primitive(value) => primitive(vr, value, bulk_uri.as_deref()),
            DicomValue::Sequence(sequence) => {
                let items: Vec<Value> = sequence
                    .items()
                    .iter()
                    .map(|item| Value::Object(dataset(item, None)))
                    .collect();
                with_values(VR::SQ, items)
            }
            DicomValue::PixelSequence(_) => bulk_reference(vr, bulk_uri.as_deref()),
        };
        map.insert(tag_key(tag), json);
    }
    map
}

/// Encodes one attribute given as text, as the catalog keeps it: keyword,
/// and values separated by `\`. Unknown keywords are skipped.
pub fn text_attribute(map: &mut Map<String, Value>, keyword: &str, text: &str) {
    let Some(entry) = StandardDataDictionary.by_name(keyword) else {
        return;
    };
    let vr = entry.vr().relaxed();
    let values: Vec<String> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\\').map(str::to_string).collect()
    };
    let json = with_values(vr, string_values(vr, &values));
    map.insert(tag_key(entry.tag_range().inner()), json);
}

/// Encodes a record of keyword → text attributes (a catalog query row).
pub fn record(attributes: &BTreeMap<String, String>) -> Map<String, Value> {
    let mut map = Map::new();
    for (keyword, text) in attributes {
        text_attribute(&mut map, keyword, text);
    }
    map
}

/// Encodes a sequence as the catalog keeps it: keyword, and items of
/// keyword → text attributes. Unknown keywords are skipped.
pub fn sequence_attribute(
    map: &mut Map<String, Value>,
    keyword: &str,
    items: &[BTreeMap<String, String>],
) {
    let Some(entry) = StandardDataDictionary.by_name(keyword) else {
        return;
    };
    let items: Vec<Value> = items
        .iter()
        .map(|item| Value::Object(record(item)))
        .collect();
    map.insert(
        tag_key(entry.tag_range().inner()),
        with_values(VR::SQ, items),
    );
}

/// Builds an attribute with the given VR and values, without a `Value` key when there are none.
pub fn with_values(vr: VR, values: Vec<Value>) -> Value {
    let mut attribute = Map::new();
    attribute.insert("vr".into(), Value::String(vr.to_string().into()));
    if !values.is_empty() {
        attribute.insert("Value".into(), Value::Array(values));
    }
    Value::Object(attribute)
}

fn bulk_reference(vr: VR, uri: Option<&str>) -> Value {
    match uri {
        Some(uri) => json!({ "vr": vr.to_string(), "BulkDataURI": uri }),
        None => json!({ "vr": vr.to_string() }),
    }
}

fn primitive(vr: VR, value: &PrimitiveValue, bulk_uri: Option<&str>) -> Value {
    if matches!(value, PrimitiveValue::Empty) {
        return with_values(vr, Vec::new());
    }
    match vr {
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => binary(vr, value, bulk_uri),
        VR::AT => with_values(vr, tags(value)),
        VR::FL | VR::FD | VR::SL | VR::SS | VR::SV | VR::UL | VR::US | VR::UV => {
            with_values(vr, binary_numbers(value))
        }
        _ => with_values(vr, string_values(vr, &value.to_multi_str())),
    }
}

/// Decodes a UN value (an explicit VR file that did not know the VR) with
/// the VR the standard dictionary gives its tag, as clients expect PS3.18's
/// typed JSON for standard attributes. None keeps it as UN binary.
fn unknown(tag: Tag, value: &PrimitiveValue) -> Option<Value> {
    let vr = StandardDataDictionary.by_tag(tag)?.vr().exact()?;
    let bytes = value.to_bytes();
    let numbers = |size: usize, read: &dyn Fn(&[u8]) -> Value| -> Vec<Value> {
        bytes.chunks_exact(size).map(read).collect()
    };
    let values = match vr {
        VR::AE
        | VR::AS
        | VR::CS
        | VR::DA
        | VR::DS
        | VR::DT
        | VR::IS
        | VR::LO
        | VR::LT
        | VR::PN
        | VR::SH
        | VR::ST
        | VR::TM
        | VR::UC
        | VR::UI
        | VR::UR
        | VR::UT => {
            let text = String::from_utf8_lossy(&bytes);
            let parts: Vec<String> = text.split('\\').map(str::to_string).collect();
            string_values(vr, &parts)
        }
        VR::US => numbers(2, &|b| json!(u16::from_le_bytes([b[0], b[1]]))),
        VR::SS => numbers(2, &|b| json!(i16::from_le_bytes([b[0], b[1]]))),
        VR::UL => numbers(4, &|b| json!(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        VR::SL => numbers(4, &|b| json!(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        VR::AT => numbers(4, &|b| {
            let tag = Tag(
                u16::from_le_bytes([b[0], b[1]]),
                u16::from_le_bytes([b[2], b[3]]),
            );
            Value::String(tag_key(tag))
        }),
        _ => return None,
    };
    Some(with_values(vr, values))
}

fn binary(vr: VR, value: &PrimitiveValue, bulk_uri: Option<&str>) -> Value {
    let bytes = value.to_bytes();
    if let Some(uri) = bulk_uri.filter(|_| bytes.len() > BULK_DATA_THRESHOLD) {
        return bulk_reference(vr, Some(uri));
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    json!({ "vr": vr.to_string(), "InlineBinary": encoded })
}

fn tags(value: &PrimitiveValue) -> Vec<Value> {
    match value {
        PrimitiveValue::Tags(tags) => tags.iter().map(|t| Value::String(tag_key(*t))).collect(),
        other => other
            .to_multi_str()
            .iter()
            .map(|text| Value::String(text.clone()))
            .collect(),
    }
}

fn binary_numbers(value: &PrimitiveValue) -> Vec<Value> {
    let number = |n: f64| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number);
    match value {
        PrimitiveValue::U8(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::I16(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::U16(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::I32(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::U32(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::I64(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::U64(v) => v.iter().map(|n| json!(n)).collect(),
        PrimitiveValue::F32(v) => v.iter().map(|n| number(f64::from(*n))).collect(),
        PrimitiveValue::F64(v) => v.iter().map(|n| number(*n)).collect(),
        other => string_values(VR::DS, &other.to_multi_str()),
    }
}

/// JSON values of a string-encoded attribute. Padding is trimmed, an empty
/// value is null, PN values are objects and IS/DS values are numbers (a
/// value that is not a valid number is kept as a string rather than lost).
fn string_values(vr: VR, values: &[String]) -> Vec<Value> {
    let values: Vec<Value> = values
        .iter()
        .map(|raw| raw.trim_matches([' ', '\0']))
        .map(|text| match text {
            "" => Value::Null,
            text => match vr {
                VR::PN => person_name(text),
                VR::IS | VR::DS => number(text),
                _ => Value::String(text.to_string()),
            },
        })
        .collect();
    if values.iter().all(Value::is_null) {
        return Vec::new();
    }
    values
}

fn person_name(text: &str) -> Value {
    let mut name = Map::new();
    let groups = ["Alphabetic", "Ideographic", "Phonetic"];
    for (group, component) in groups.iter().zip(text.split('=')) {
        if !component.is_empty() {
            name.insert((*group).into(), Value::String(component.to_string()));
        }
    }
    Value::Object(name)
}

fn number(text: &str) -> Value {
    if let Ok(integer) = text.parse::<i64>() {
        return json!(integer);
    }
    match text
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Some(number) => Value::Number(number),
        None => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue};
    use dicom_dictionary_std::tags;

    fn element(tag: Tag, vr: VR, value: PrimitiveValue) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, vr, value)
    }

    #[test]
    fn person_names_become_component_groups() {
        let mut map = Map::new();

        text_attribute(
            &mut map,
            "PatientName",
            "Yamada^Tarou=山田^太郎=やまだ^たろう",
        );
        let name = &map["00100010"]["Value"][0];
        assert_eq!(map["00100010"]["vr"], "PN");
        assert_eq!(name["Alphabetic"], "Yamada^Tarou");
        assert_eq!(name["Ideographic"], "山田^太郎");
        assert_eq!(name["Phonetic"], "やまだ^たろう");
    }

    #[test]
    fn integer_and_decimal_strings_become_numbers() {
        let mut map = Map::new();

        text_attribute(&mut map, "NumberOfStudyRelatedSeries", "3");
        text_attribute(&mut map, "SliceThickness", "2.50");
        assert_eq!(map["00201206"]["Value"][0], json!(3));
        assert_eq!(map["00180050"]["Value"][0], json!(2.5));
    }

    #[test]
    fn empty_attribute_has_no_value_key() {
        let mut map = Map::new();

        text_attribute(&mut map, "AccessionNumber", "");
        assert_eq!(map["00080050"], json!({ "vr": "SH" }));
    }

    #[test]
    fn empty_value_in_list_is_null() {
        let mut map = Map::new();

        text_attribute(&mut map, "ModalitiesInStudy", "CT\\\\MR");
        assert_eq!(map["00080061"]["Value"], json!(["CT", null, "MR"]));
    }

    #[test]
    fn binary_values_are_inline_or_bulk() {
        let mut object = InMemDicomObject::new_empty();
        object.put(element(
            Tag(0x0009, 0x1001),
            VR::OB,
            PrimitiveValue::U8(vec![0, 1].into()),
        ));
        object.put(element(
            Tag(0x0009, 0x1002),
            VR::OB,
            PrimitiveValue::U8(vec![7; 2048].into()),
        ));

        let map = dataset(&object, Some("http://x/bulkdata"));
        assert_eq!(map["00091001"]["InlineBinary"], "AAE=");
        assert_eq!(map["00091002"]["BulkDataURI"], "http://x/bulkdata/00091002");
        assert!(map["00091002"].get("InlineBinary").is_none());
    }

    #[test]
    fn attribute_tags_are_hex_strings() {
        let mut object = InMemDicomObject::new_empty();
        let pointer = PrimitiveValue::Tags(vec![tags::PATIENT_NAME].into());
        object.put(element(tags::FRAME_INCREMENT_POINTER, VR::AT, pointer));

        let map = dataset(&object, None);
        assert_eq!(map["00280009"]["Value"], json!(["00100010"]));
    }

    #[test]
    fn sequences_nest_data_sets() {
        let mut item = InMemDicomObject::new_empty();
        item.put(element(
            tags::CODE_VALUE,
            VR::SH,
            PrimitiveValue::from("T-A0100"),
        ));
        let mut object = InMemDicomObject::new_empty();
        object.put(DataElement::new(
            tags::ANATOMIC_REGION_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![item]),
        ));

        let map = dataset(&object, None);
        assert_eq!(map["00082218"]["vr"], "SQ");
        assert_eq!(
            map["00082218"]["Value"][0]["00080100"]["Value"],
            json!(["T-A0100"])
        );
    }

    #[test]
    fn unknown_vr_of_standard_tag_uses_dictionary_vr() {
        let mut object = InMemDicomObject::new_empty();
        let uid = PrimitiveValue::U8(b"1.2.3\0".to_vec().into());
        object.put(element(tags::SOP_INSTANCE_UID, VR::UN, uid));
        object.put(element(
            tags::ROWS,
            VR::UN,
            PrimitiveValue::U8(vec![0, 2].into()),
        ));

        let map = dataset(&object, None);
        assert_eq!(map["00080018"], json!({ "vr": "UI", "Value": ["1.2.3"] }));
        assert_eq!(map["00280010"], json!({ "vr": "US", "Value": [512] }));
    }

    #[test]
    fn unsigned_shorts_stay_numbers() {
        let mut object = InMemDicomObject::new_empty();
        object.put(element(
            tags::ROWS,
            VR::US,
            PrimitiveValue::U16(vec![512].into()),
        ));

        let map = dataset(&object, None);
        assert_eq!(map["00280010"], json!({ "vr": "US", "Value": [512] }));
    }
}
