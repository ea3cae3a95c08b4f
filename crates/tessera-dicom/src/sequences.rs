//! The sequence attributes that the index stores, with the string attributes
//! of their items.
//!
//! PS3.4 Annex C lists sequences as optional keys of the Query/Retrieve
//! information models. The index keeps those that hospital systems query
//! most: identity cross-references (Other Patient IDs), the ordered
//! procedure (Procedure Code, Referenced Study, Request Attributes) and the
//! title of structured reports (Concept Name Code). Only the listed item
//! attributes are kept, and nested sequences inside the items are not.

use std::collections::BTreeMap;

use dicom_core::{Tag, VR};

/// Maximum number of items kept per sequence. Items past it are not indexed,
/// so that one instance with a huge sequence cannot bloat the catalog.
///
/// NOTE: the limit is a judgment: real instances carry one to a few items in
/// these sequences, and a request with more than 64 procedures is unheard of.
pub const MAX_INDEXED_ITEMS: usize = 64;

/// One item of a sequence attribute: its indexed attributes by keyword,
/// decoded to UTF-8 with the instance's character set and without padding.
pub type SequenceItem = BTreeMap<String, String>;

/// A sequence attribute as the index stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SequenceAttribute {
    /// The sequence's keyword, e.g. `RequestAttributesSequence`.
    pub keyword: String,
    pub items: Vec<SequenceItem>,
}

/// An indexed sequence: its tag and keyword, and the item attributes kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedSequence {
    pub tag: Tag,
    pub keyword: &'static str,
    /// Item attributes as tag, VR and keyword.
    pub item_attributes: &'static [(Tag, VR, &'static str)],
}

impl IndexedSequence {
    /// Returns the VR of an indexed item attribute, or None when the index
    /// does not keep that attribute in this sequence's items.
    pub fn item_vr(&self, keyword: &str) -> Option<VR> {
        self.item_attributes
            .iter()
            .find(|(_, _, known)| *known == keyword)
            .map(|(_, vr, _)| *vr)
    }
}

/// Item attributes of a code sequence (PS3.3 Table 8.8-1, Basic Code
/// Sequence Macro).
const CODE_ITEM: &[(Tag, VR, &str)] = &[
    (Tag(0x0008, 0x0100), VR::SH, "CodeValue"),
    (Tag(0x0008, 0x0102), VR::SH, "CodingSchemeDesignator"),
    (Tag(0x0008, 0x0103), VR::SH, "CodingSchemeVersion"),
    (Tag(0x0008, 0x0104), VR::LO, "CodeMeaning"),
];

/// Other Patient IDs Sequence (0010,1002), a patient attribute.
pub const OTHER_PATIENT_IDS: IndexedSequence = IndexedSequence {
    tag: Tag(0x0010, 0x1002),
    keyword: "OtherPatientIDsSequence",
    item_attributes: &[
        (Tag(0x0010, 0x0020), VR::LO, "PatientID"),
        (Tag(0x0010, 0x0021), VR::LO, "IssuerOfPatientID"),
        (Tag(0x0010, 0x0022), VR::CS, "TypeOfPatientID"),
    ],
};

/// Procedure Code Sequence (0008,1032), a study attribute.
pub const PROCEDURE_CODE: IndexedSequence = IndexedSequence {
    tag: Tag(0x0008, 0x1032),
    keyword: "ProcedureCodeSequence",
    item_attributes: CODE_ITEM,
};

/// Referenced Study Sequence (0008,1110), a study attribute.
pub const REFERENCED_STUDY: IndexedSequence = IndexedSequence {
    tag: Tag(0x0008, 0x1110),
    keyword: "ReferencedStudySequence",
    item_attributes: &[
        (Tag(0x0008, 0x1150), VR::UI, "ReferencedSOPClassUID"),
        (Tag(0x0008, 0x1155), VR::UI, "ReferencedSOPInstanceUID"),
    ],
};

/// Request Attributes Sequence (0040,0275), a series attribute.
pub const REQUEST_ATTRIBUTES: IndexedSequence = IndexedSequence {
    tag: Tag(0x0040, 0x0275),
    keyword: "RequestAttributesSequence",
    item_attributes: &[
        (Tag(0x0008, 0x0050), VR::SH, "AccessionNumber"),
        (Tag(0x0020, 0x000D), VR::UI, "StudyInstanceUID"),
        (Tag(0x0032, 0x1060), VR::LO, "RequestedProcedureDescription"),
        (
            Tag(0x0040, 0x0007),
            VR::LO,
            "ScheduledProcedureStepDescription",
        ),
        (Tag(0x0040, 0x0009), VR::SH, "ScheduledProcedureStepID"),
        (Tag(0x0040, 0x1001), VR::SH, "RequestedProcedureID"),
    ],
};

/// Concept Name Code Sequence (0040,A043), an instance attribute that
/// names the document of a structured report.
pub const CONCEPT_NAME_CODE: IndexedSequence = IndexedSequence {
    tag: Tag(0x0040, 0xA043),
    keyword: "ConceptNameCodeSequence",
    item_attributes: CODE_ITEM,
};

/// Every sequence that the index stores.
pub const INDEXED_SEQUENCES: &[IndexedSequence] = &[
    OTHER_PATIENT_IDS,
    PROCEDURE_CODE,
    REFERENCED_STUDY,
    REQUEST_ATTRIBUTES,
    CONCEPT_NAME_CODE,
];

/// Looks up an indexed sequence by keyword.
pub fn indexed_sequence(keyword: &str) -> Option<&'static IndexedSequence> {
    INDEXED_SEQUENCES
        .iter()
        .find(|sequence| sequence.keyword == keyword)
}
