//! Streaming reader of `multipart/related` bodies (RFC 2387) on top of
//! multer, which handles the boundary scanning of RFC 2046.
//!
//! multer's own boundary helper accepts only `multipart/form-data`, so the
//! Content-Type of a STOW-RS request is checked here and the boundary handed
//! to multer directly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures::{Stream, StreamExt};

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

/// Maximum number of bytes that may arrive while the next part's delimiter
/// and headers are sought, not counting the first chunk. multer keeps these bytes in memory
/// until it finds the blank line that ends the headers, so without a limit a
/// single endless header line filled the node's memory.
pub const MAX_PART_HEADER_BYTES: u64 = 4 * 1024 * 1024;

/// Reads the parts of a multipart body one at a time; a part's bytes arrive
/// in chunks, so no part needs to fit in memory.
pub struct PartReader<'r> {
    multipart: multer::Multipart<'r>,
    parts_read: usize,
    header_guard: Arc<HeaderGuard>,
}

/// Counts the body bytes that arrive while [`PartReader::next_part`] looks
/// for the next part's headers, and fails the stream past the limit.
#[derive(Default)]
struct HeaderGuard {
    active: AtomicBool,
    chunks: AtomicU64,
    bytes: AtomicU64,
}

impl HeaderGuard {
    fn start(&self) {
        self.chunks.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.active.store(true, Ordering::Relaxed);
    }

    fn stop(&self) {
        self.active.store(false, Ordering::Relaxed);
    }

    /// Counts one chunk and returns whether the limit is passed. The first
    /// chunk is free because it is in memory already, whatever its size.
    fn exceeded_by(&self, chunk: &Bytes) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        if self.chunks.fetch_add(1, Ordering::Relaxed) == 0 {
            return false;
        }
        let bytes = self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        bytes + chunk.len() as u64 > MAX_PART_HEADER_BYTES
    }

    fn exceeded(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) > MAX_PART_HEADER_BYTES
    }
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
        let header_guard = Arc::new(HeaderGuard::default());
        let guard = header_guard.clone();
        let guarded = one_chunk_per_poll(stream).map(move |item| {
            let chunk = item.map_err(Into::into)?;
            if guard.exceeded_by(&chunk) {
                return Err("part headers exceed the limit".into());
            }
            Ok::<Bytes, Box<dyn std::error::Error + Send + Sync>>(chunk)
        });
        PartReader {
            multipart: multer::Multipart::new(guarded, boundary.to_string()),
            parts_read: 0,
            header_guard,
        }
    }

    /// Returns the next part, or None after the closing boundary. A body that
    /// ends before its closing boundary is an error.
    ///
    /// Cancel safety: not cancel safe; dropping the future may lose the part.
    pub async fn next_part(&mut self) -> Result<Option<Part<'r>>, ParseError> {
        let number = self.parts_read + 1;
        self.header_guard.start();
        let field = self.multipart.next_field().await;
        self.header_guard.stop();

        let field = field.map_err(|source| {
            if self.header_guard.exceeded() {
                ParseError::PartHeadersTooLarge {
                    part: number,
                    limit: MAX_PART_HEADER_BYTES,
                }
            } else {
                ParseError::Multipart {
                    part: number,
                    source,
                }
            }
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

/// Returns `stream` with a pause after each chunk. multer pulls chunks until
/// its source has none ready, so without the pause a fast client could have
/// it buffer many megabytes, and the header limit would count part data that
/// multer had not yet asked for.
fn one_chunk_per_poll<'r, S, E>(stream: S) -> impl Stream<Item = Result<Bytes, E>> + Send + 'r
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'r,
{
    let mut stream = Box::pin(stream);
    let mut paused = false;
    futures::stream::poll_fn(move |cx| {
        if paused {
            paused = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let item = stream.as_mut().poll_next(cx);
        paused = matches!(item, Poll::Ready(Some(_)));
        item
    })
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
    async fn endless_part_header_is_rejected() {
        let mut chunks = vec![Ok::<_, std::convert::Infallible>(Bytes::from_static(
            b"--x\r\nX-Long: ",
        ))];
        let line = Bytes::from(vec![b'a'; 64 * 1024]);
        let count = MAX_PART_HEADER_BYTES as usize / line.len() + 2;
        chunks.extend(std::iter::repeat_n(Ok(line), count));
        let mut reader = PartReader::new(futures::stream::iter(chunks), "x");

        let error = reader.next_part().await.err().expect("too large");
        assert!(
            matches!(error, ParseError::PartHeadersTooLarge { part: 1, .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn large_part_data_is_not_counted_as_headers() {
        let data = vec![7u8; 3 * MAX_PART_HEADER_BYTES as usize];
        let body = body("x", &[&data, b"second"]);
        let chunks: Vec<Result<Bytes, std::convert::Infallible>> = body
            .chunks(64 * 1024)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        let mut reader = PartReader::new(futures::stream::iter(chunks), "x");

        let mut sizes = Vec::new();
        while let Some(mut part) = reader.next_part().await.expect("reads") {
            let mut size = 0;
            while let Some(chunk) = part.chunk().await.expect("chunk") {
                size += chunk.len();
            }
            sizes.push(size);
        }
        assert_eq!(sizes, [data.len(), 6]);
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
