//! Frames of an instance's Pixel Data (PS3.18 section 10.4.1.1.4): slices of
//! native data, or groups of fragments of encapsulated data located with the
//! Basic Offset Table, or without one by frame count and JPEG start markers.

use dicom_core::value::Value as DicomValue;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::DefaultDicomObject;

const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// Media type family of the frames of a transfer syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEncoding {
    /// Uncompressed frames as application/octet-stream.
    Native { syntax: String },
    /// Compressed frames in the media type of their codec.
    Compressed { media: &'static str, syntax: String },
}

impl FrameEncoding {
    /// Returns the encoding of frames stored in `syntax`. Syntaxes not listed
    /// as compressed are treated as native.
    pub fn of(syntax: &str) -> FrameEncoding {
        let media = match syntax {
            "1.2.840.10008.1.2.4.50"
            | "1.2.840.10008.1.2.4.51"
            | "1.2.840.10008.1.2.4.57"
            | "1.2.840.10008.1.2.4.70" => Some("image/jpeg"),
            "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => Some("image/jls"),
            "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => Some("image/jp2"),
            "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => Some("image/jpx"),
            "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
                Some("image/jphc")
            }
            "1.2.840.10008.1.2.5" => Some("image/dicom-rle"),
            _ => None,
        };
        match media {
            Some(media) => FrameEncoding::Compressed {
                media,
                syntax: syntax.to_string(),
            },
            None => FrameEncoding::Native {
                syntax: syntax.to_string(),
            },
        }
    }

    pub fn media_type(&self) -> &str {
        match self {
            FrameEncoding::Native { .. } => "application/octet-stream",
            FrameEncoding::Compressed { media, .. } => media,
        }
    }

    /// Returns the Content-Type of one frame part.
    pub fn part_type(&self) -> String {
        match self {
            FrameEncoding::Native { .. } => {
                format!("application/octet-stream; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}")
            }
            FrameEncoding::Compressed { media, syntax } => {
                format!("{media}; transfer-syntax={syntax}")
            }
        }
    }

    /// Tells whether an Accept entry with root type `root` and the given
    /// transfer-syntax parameter admits these frames as they are stored.
    pub fn accepts(&self, root: &str, syntax: Option<&str>) -> bool {
        let any_syntax = matches!(syntax, None | Some("*"));
        match self {
            FrameEncoding::Native { syntax: stored } => {
                let root_ok = root == "application/octet-stream" || root == "*/*";
                let syntax_ok = any_syntax
                    || syntax == Some(EXPLICIT_VR_LITTLE_ENDIAN)
                    || syntax == Some(stored.as_str());
                root_ok && syntax_ok
            }
            FrameEncoding::Compressed {
                media,
                syntax: stored,
            } => {
                let own = (root == *media || root == "*/*")
                    && (any_syntax || syntax == Some(stored.as_str()));
                let wildcard = root == "application/octet-stream" && syntax == Some("*");
                own || wildcard
            }
        }
    }
}

/// Returns every frame of `object`'s Pixel Data, in order.
pub fn extract(
    object: &DefaultDicomObject,
    encoding: &FrameEncoding,
) -> Result<Vec<Vec<u8>>, String> {
    let element = object
        .element(tags::PIXEL_DATA)
        .map_err(|_| "the instance has no Pixel Data".to_string())?;
    let frame_count = integer(object, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);

    match (element.value(), encoding) {
        (DicomValue::PixelSequence(sequence), _) => {
            fragments_to_frames(sequence.offset_table(), sequence.fragments(), frame_count)
        }
        (DicomValue::Primitive(value), FrameEncoding::Native { .. }) => {
            native_frames(object, &value.to_bytes(), frame_count)
        }
        _ => {
            Err("Pixel Data is not encapsulated although the transfer syntax is compressed".into())
        }
    }
}

/// Returns the parts of a bulk data attribute: its bytes, or for
/// encapsulated Pixel Data one part per frame in its media type.
pub fn element_parts(
    object: &DefaultDicomObject,
    element: &InMemElement,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    match element.value() {
        DicomValue::Primitive(value) => Ok(vec![(
            "application/octet-stream".to_string(),
            value.to_bytes().into_owned(),
        )]),
        DicomValue::PixelSequence(_) => {
            let syntax = object
                .meta()
                .transfer_syntax()
                .trim_end_matches('\0')
                .to_string();
            let encoding = FrameEncoding::of(&syntax);
            let frames = extract(object, &encoding)?;
            Ok(frames
                .into_iter()
                .map(|f| (encoding.part_type(), f))
                .collect())
        }
        DicomValue::Sequence(_) => Err("the attribute is a sequence, not bulk data".into()),
    }
}

fn integer(object: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<usize> {
    let element = object.element(tag).ok()?;
    element
        .to_int::<i64>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

fn native_frames(
    object: &DefaultDicomObject,
    data: &[u8],
    frames: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let rows = integer(object, tags::ROWS).ok_or("Rows is missing")?;
    let columns = integer(object, tags::COLUMNS).ok_or("Columns is missing")?;
    let samples = integer(object, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let bits = integer(object, tags::BITS_ALLOCATED).ok_or("Bits Allocated is missing")?;

    let frame_bits = rows * columns * samples * bits;
    if frame_bits % 8 != 0 && frames > 1 {
        return Err("frames of bit-packed Pixel Data do not start on byte boundaries".into());
    }
    let frame_len = frame_bits.div_ceil(8);
    if frame_len == 0 || data.len() < frame_len * frames {
        return Err(format!(
            "Pixel Data holds {} bytes, fewer than {frames} frames of {frame_len} bytes",
            data.len()
        ));
    }
    Ok(data
        .chunks(frame_len)
        .take(frames)
        .map(<[u8]>::to_vec)
        .collect())
}

/// Groups fragments into frames: one fragment per frame when the counts
/// agree, else by the Basic Offset Table, else (JPEG family) by the start
/// of image marker that begins each frame.
pub fn fragments_to_frames(
    offsets: &[u32],
    fragments: &[Vec<u8>],
    frames: usize,
) -> Result<Vec<Vec<u8>>, String> {
    if frames == 1 {
        return Ok(vec![fragments.concat()]);
    }
    if fragments.len() == frames {
        return Ok(fragments.to_vec());
    }
    if offsets.len() == frames {
        return group_by_offsets(offsets, fragments);
    }
    let starts: Vec<usize> = fragments
        .iter()
        .enumerate()
        .filter(|(_, f)| f.starts_with(&[0xFF, 0xD8]))
        .map(|(i, _)| i)
        .collect();
    if starts.len() == frames && starts.first() == Some(&0) {
        return Ok(group_by_starts(&starts, fragments));
    }
    Err(format!(
        "{} fragments cannot be split into {frames} frames without a Basic Offset Table",
        fragments.len()
    ))
}

/// Offsets count bytes from the first fragment's item tag; each fragment
/// item takes 8 header bytes plus its length.
fn group_by_offsets(offsets: &[u32], fragments: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
    let mut starts = Vec::with_capacity(offsets.len());
    let mut position = 0u64;
    let mut next = offsets.iter().peekable();
    for (index, fragment) in fragments.iter().enumerate() {
        if next.peek().is_some_and(|o| u64::from(**o) == position) {
            starts.push(index);
            next.next();
        }
        position += 8 + fragment.len() as u64;
    }
    if starts.len() != offsets.len() {
        return Err("the Basic Offset Table does not point at fragment boundaries".into());
    }
    Ok(group_by_starts(&starts, fragments))
}

fn group_by_starts(starts: &[usize], fragments: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut frames = Vec::with_capacity(starts.len());
    for (i, start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(fragments.len());
        frames.push(fragments[*start..end].concat());
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragments() -> Vec<Vec<u8>> {
        vec![
            vec![0xFF, 0xD8, 1, 2],
            vec![3, 4],
            vec![0xFF, 0xD8, 5, 6],
            vec![7],
        ]
    }

    #[test]
    fn offset_table_groups_fragments() {
        let frames = fragments_to_frames(&[0, 22], &fragments(), 2).expect("groups");

        assert_eq!(
            frames,
            vec![vec![0xFF, 0xD8, 1, 2, 3, 4], vec![0xFF, 0xD8, 5, 6, 7]]
        );
    }

    #[test]
    fn start_markers_group_fragments_without_offset_table() {
        let frames = fragments_to_frames(&[], &fragments(), 2).expect("groups");

        assert_eq!(frames[1], vec![0xFF, 0xD8, 5, 6, 7]);
    }

    #[test]
    fn single_frame_joins_all_fragments() {
        let frames = fragments_to_frames(&[], &fragments(), 1).expect("joins");

        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), 11);
    }

    #[test]
    fn offset_table_off_boundary_is_an_error() {
        let error = fragments_to_frames(&[0, 5], &fragments(), 2).expect_err("bad table");

        assert!(error.contains("Basic Offset Table"), "{error}");
    }

    #[test]
    fn wildcard_accepts_compressed_frames() {
        let jpeg = FrameEncoding::of("1.2.840.10008.1.2.4.50");

        assert!(jpeg.accepts("application/octet-stream", Some("*")));
        assert!(jpeg.accepts("image/jpeg", None));
        assert!(!jpeg.accepts("application/octet-stream", None));
        assert_eq!(
            jpeg.part_type(),
            "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
        );
    }

    #[test]
    fn native_frames_accept_explicit_little_endian() {
        let native = FrameEncoding::of("1.2.840.10008.1.2");

        assert!(native.accepts("application/octet-stream", Some(EXPLICIT_VR_LITTLE_ENDIAN)));
        assert!(!native.accepts("image/jpeg", None));
    }
}
