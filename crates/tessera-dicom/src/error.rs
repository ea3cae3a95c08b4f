//! Reasons why a file cannot be indexed.

/// A DICOM file that cannot be indexed, with the reason and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// The input has no "DICM" magic code after a 128-byte preamble. Empty
    /// input and raw data sets written without a file meta group fail this way.
    #[error(
        "not a DICOM Part 10 file: no DICM prefix at byte 128; \
         write it with a file meta group, e.g. with dcmconv"
    )]
    NotPart10,

    /// The reader failed for a reason other than reaching the end of its data.
    #[error("failed to read DICOM input: {0}")]
    Io(#[source] std::io::Error),

    /// The input ends inside the file meta group or inside an attribute read
    /// before Pixel Data. Besides a file cut short, a wrong length field does
    /// this, as does a data set encoded in another VR mode than its transfer
    /// syntax declares.
    #[error(
        "truncated DICOM file: {reason}; send the complete file again, \
         or re-encode it if its transfer syntax does not match its encoding, e.g. with dcmconv"
    )]
    Truncated { reason: String },

    /// The file meta group (group 0002) cannot be parsed.
    #[error("invalid file meta group: {reason}; rewrite the file with a valid meta group, e.g. with dcmconv")]
    InvalidFileMeta { reason: String },

    /// The data set before Pixel Data cannot be parsed.
    #[error(
        "invalid data set: {reason}; check the file with dciodvfy and re-export it from its source"
    )]
    InvalidDataSet { reason: String },

    /// The data set is encoded in a transfer syntax that dicom-rs cannot read.
    #[error("unsupported transfer syntax {uid}: {reason}; convert the file to Explicit VR Little Endian, e.g. with dcmconv +te")]
    UnsupportedTransferSyntax { uid: String, reason: String },

    /// A UID that the index keys on is absent or empty.
    #[error("missing {keyword}: the instance must have a non-empty {keyword} to be archived")]
    MissingAttribute { keyword: &'static str },

    /// A UID that the index keys on breaks the UID syntax of PS3.5 section 9.1.
    #[error(
        "invalid UID '{value}' in {keyword}: expected digits and dots, \
         no leading zeros in components and at most 64 characters; fix the value at its source"
    )]
    InvalidUid {
        keyword: &'static str,
        value: String,
    },

    /// The data set and its file meta group name different instances, so
    /// the file was most likely edited without rewriting its meta group.
    #[error(
        "SOPInstanceUID '{dataset}' differs from MediaStorageSOPInstanceUID '{meta}' \
         in the file meta group; rewrite the meta group to match the data set"
    )]
    SopInstanceUidMismatch { dataset: String, meta: String },

    /// An index attribute has a value that cannot be read as text, such as
    /// a sequence where a string is expected.
    #[error("invalid value in {keyword}: {reason}; fix the attribute at its source")]
    InvalidValue {
        keyword: &'static str,
        reason: String,
    },

    /// A value of SpecificCharacterSet (0008,0005) that is not a defined
    /// term of PS3.3 C.12.1.1.2, or defined terms that cannot be combined.
    #[error(
        "unsupported SpecificCharacterSet '{term}': {reason}; use the defined terms of \
         PS3.3 C.12.1.1.2, e.g. ISO_IR 100, ISO_IR 192 or \\ISO 2022 IR 87"
    )]
    UnsupportedCharacterSet { term: String, reason: String },

    /// Text bytes that the declared character sets do not define.
    #[error(
        "invalid text for SpecificCharacterSet '{character_set}' at byte offset {offset}: \
         {reason}; fix the value or its SpecificCharacterSet at the source"
    )]
    InvalidText {
        character_set: String,
        offset: usize,
        reason: String,
    },

    /// A character that none of the declared character sets contains.
    #[error(
        "character '{character}' (U+{:04X}) is not in SpecificCharacterSet '{character_set}'; \
         add a character set that contains it, or use ISO_IR 192 (UTF-8)",
        u32::from(*character)
    )]
    UnencodableCharacter {
        character: char,
        character_set: String,
    },

    /// A declared element or item length that exceeds the bytes left in the
    /// input. dicom-parser would allocate the declared length before reading.
    #[error(
        "element {tag} declares a length of {declared} bytes but only {remaining} bytes \
         remain in the input; the file is truncated or the length is corrupt, \
         so send the complete file or re-export it from its source"
    )]
    LengthExceedsInput {
        tag: dicom_core::Tag,
        declared: u32,
        remaining: u64,
    },

    /// Sequences nested deeper than the reader accepts.
    #[error(
        "sequences nest more than {max} levels deep at {tag}; \
         check the file with dciodvfy and re-export it from its source"
    )]
    NestingTooDeep { tag: dicom_core::Tag, max: usize },
}
