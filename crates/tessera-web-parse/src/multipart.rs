//! Streaming reader of `multipart/related` bodies (RFC 2387) on top of
//! multer, which handles the boundary scanning of RFC 2046.
//!
//! multer's own boundary helper accepts only `multipart/form-data`, so the
//! Content-Type of a STOW-RS request is checked here and the boundary handed
//! to multer directly.

use bytes::Bytes;
use futures::Stream;

use crate::media_type::MediaType;
use crate::ParseError;

/// Checks that `content_type` is `multipart/related` whose root type, when
/// given, is `expected_root`, and returns the boundary.
///
/// RFC 2387 requires the `type` parameter, but several clients leave it out;
/// a missing `type` is accepted and each part's own Content-Type decides.
pub fn related_boundary(content_type: &str, expected_root: &str) -> Result<String, ParseError> {
    let media = MediaType::parse(content_type)?;
    if media.essence() != "multipart/related" {
        return Err(ParseError::NotMultipartRelated {
            value: content_type.to_string(),
        });
    }
    if let Some(root) = media.parameter("type") {
        let root_type = MediaType::parse(root)?;
        if root_type.essence() != expected_root {
            return Err(ParseError::RootType {
                found: root.to_string(),
                expected: expected_root.to_string(),
            });
        }
    }

    let boundary = media
        .parameter("boundary")
        .ok_or(ParseError::MissingBoundary)?;
    check_boundary(boundary)?;
    Ok(boundary.to_string())
}

/// RFC 2046 section 5.1.1: 1 to 70 characters from `bchars`, not ending in a space.
fn check_boundary(boundary: &str) -> Result<(), ParseError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    let valid = (1..=70).contains(&boundary.len())
        && boundary.chars().all(allowed)
        && !boundary.ends_with(' ');
    if valid {
        Ok(())
    } else {
        Err(ParseError::InvalidBoundary {
            boundary: boundary.to_string(),
        })
    }
}

/// Reads the parts of a multipart body one at a time; a part's bytes arrive
/// in chunks, so no part needs to fit in memory.
pub struct PartReader<'r> {
    multipart: multer::Multipart<'r>,
    parts_read: usize,
}

/// One part of a multipart body being read.
pub struct Part<'r> {
    field: multer::Field<'r>,
    /// Position of the part in the body, from 1.
    pub number: usize,
}

impl<'r> PartReader<'r> {
    /// Reads `stream` as a multipart body delimited by `boundary`.
    pub fn new<S, E>(stream: S, boundary: &str) -> PartReader<'r>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'r,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'r,
    {
        PartReader {
            multipart: multer::Multipart::new(stream, boundary.to_string()),
            parts_read: 0,
        }
    }

    /// Returns the next part, or None after the closing boundary. A body that
    /// ends before its closing boundary is an error.
    ///
    /// Cancel safety: not cancel safe; dropping the future may lose the part.
    pub async fn next_part(&mut self) -> Result<Option<Part<'r>>, ParseError> {
        let number = self.parts_read + 1;
        let field = self
            .multipart
            .next_field()
            .await
            .map_err(|source| ParseError::Multipart {
                part: number,
                source,
            })?;
        let Some(field) = field else {
            if self.parts_read == 0 {
                return Err(ParseError::NoParts);
            }
            return Ok(None);
        };

        self.parts_read = number;
        Ok(Some(Part { field, number }))
    }
}

impl Part<'_> {
    /// Parses the part's Content-Type; returns None when the part has none.
    pub fn content_type(&self) -> Result<Option<MediaType>, ParseError> {
        let Some(value) = self.field.headers().get("content-type") else {
            return Ok(None);
        };
        let text = value.to_str().map_err(|_| ParseError::MediaType {
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            reason: "not visible ASCII".to_string(),
        })?;
        MediaType::parse(text).map(Some)
    }

    /// Returns the next chunk of the part's bytes, or None at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ParseError> {
        let number = self.number;
        self.field
            .chunk()
            .await
            .map_err(|source| ParseError::Multipart {
                part: number,
                source,
            })
    }
}

/// Reads every part of an in-memory body: each part's Content-Type and bytes.
/// For tests and fuzzing; servers read parts one chunk at a time instead.
pub async fn read_all_parts(
    body: Bytes,
    boundary: &str,
) -> Result<Vec<(Option<MediaType>, Vec<u8>)>, ParseError> {
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut reader = PartReader::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(mut part) = reader.next_part().await? {
        let content_type = part.content_type()?;
        let mut bytes = Vec::new();
        while let Some(chunk) = part.chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        parts.push((content_type, bytes));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(boundary: &str, parts: &[&[u8]]) -> Bytes {
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            body.extend_from_slice(b"Content-Type: application/dicom\r\n\r\n");
            body.extend_from_slice(part);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Bytes::from(body)
    }

    #[test]
    fn boundary_comes_from_quoted_or_plain_parameters() {
        let quoted = related_boundary(
            r#"multipart/related; type="application/dicom"; boundary="a'b(c)""#,
            "application/dicom",
        );
        let plain = related_boundary(
            "multipart/related;boundary=xyz;type=application/dicom",
            "application/dicom",
        );

        assert_eq!(quoted.expect("quoted"), "a'b(c)");
        assert_eq!(plain.expect("plain"), "xyz");
    }

    #[test]
    fn form_data_is_not_related() {
        let error = related_boundary("multipart/form-data; boundary=x", "application/dicom")
            .expect_err("form-data");

        assert!(
            matches!(error, ParseError::NotMultipartRelated { .. }),
            "{error}"
        );
    }

    #[test]
    fn other_root_type_is_rejected() {
        let error = related_boundary(
            "multipart/related; type=application/dicom+xml; boundary=x",
            "application/dicom",
        )
        .expect_err("xml");

        assert!(matches!(error, ParseError::RootType { .. }), "{error}");
    }

    #[test]
    fn overlong_boundary_is_rejected() {
        let header = format!("multipart/related; boundary={}", "b".repeat(71));

        let error = related_boundary(&header, "application/dicom").expect_err("too long");
        assert!(
            matches!(error, ParseError::InvalidBoundary { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn parts_come_back_with_their_bytes() {
        let data = body("frontier", &[b"first\r\npart", b"--frontie not yet"]);

        let parts = read_all_parts(data, "frontier").await.expect("reads");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].1, b"first\r\npart");
        assert_eq!(parts[1].1, b"--frontie not yet");
        let content_type = parts[0].0.as_ref().expect("content type");
        assert_eq!(content_type.essence(), "application/dicom");
    }

    #[tokio::test]
    async fn body_without_closing_boundary_is_an_error() {
        let data = Bytes::from_static(b"--x\r\nContent-Type: application/dicom\r\n\r\nabc");

        let error = read_all_parts(data, "x").await.expect_err("truncated");
        assert!(
            matches!(error, ParseError::Multipart { part: 1, .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn body_without_parts_is_an_error() {
        let data = Bytes::from_static(b"no boundary anywhere");

        let error = read_all_parts(data, "x").await.expect_err("no parts");
        assert!(
            matches!(error, ParseError::NoParts | ParseError::Multipart { .. }),
            "{error}"
        );
    }
}
