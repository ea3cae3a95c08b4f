//! A token-level pass over a Part 10 file that rejects declared lengths the
//! input cannot hold, before dicom-object reads the file.
//!
//! dicom-parser 0.10 allocates and zero-fills a value's declared length
//! before it reads the value, so without this pass a malformed file costs
//! memory in proportion to the lengths it declares. A 674-byte sample from
//! pydicom (UN_sequence.dcm) declares 3.7 GB: dicom-object 0.10 allocated
//! 3.76 GB and spent 6.9 s before it rejected the file (release build,
//! counting allocator, 2-core machine). With this pass the reader allocates
//! about 15 kB.
//!
//! The pass walks the same tokens that dicom-object will read, with
//! dicom-parser's lazy reader: the meta group, then the data set up to the
//! root-level Pixel Data (or any later root-level tag), where dicom-object
//! stops too. It skips values in bounded chunks without allocating them.
//! On the way it keeps the raw bytes of the root-level attributes that the
//! caller lists, and of the listed attributes in the items of root-level
//! sequences, so their text can be decoded with the character sets of the
//! file rather than with what dicom-rs supports.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;

use dicom_core::header::{HasLength, Header};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_encoding::decode::{file_header_decoder, Decode};
use dicom_encoding::transfer_syntax::Codec;
use dicom_encoding::TransferSyntaxIndex;
use dicom_parser::dataset::lazy_read::{LazyDataSetReader, LazyDataSetReaderOptions};
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::stateful::decode::{CharacterSetOverride, DynStatefulDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::DicomError;
use crate::sequences::MAX_INDEXED_ITEMS;

/// Offset of the file meta group: the preamble and the "DICM" magic code.
const META_OFFSET: u64 = 132;

/// The tag of a sequence item or an encapsulated pixel data fragment.
const ITEM: Tag = Tag(0xFFFE, 0xE000);

const ITEM_DELIMITATION: Tag = Tag(0xFFFE, 0xE00D);

const SEQUENCE_DELIMITATION: Tag = Tag(0xFFFE, 0xE0DD);

/// Maximum nesting of sequences and items. dicom-object builds nested
/// sequences by recursion, so a file of a few megabytes that nests every
/// item in the next could overflow the stack.
///
/// NOTE: the limit is a judgment, not a figure from the standard. Structured
/// report content trees nest deepest in practice, and 128 levels leave them
/// wide room while keeping dicom-object's recursion far from the stack limit.
pub const MAX_NESTING_DEPTH: usize = 128;

/// Values that the pass kept on its way through the file.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Raw value bytes of the requested root-level attributes, by tag.
    pub(crate) raw_values: BTreeMap<Tag, Vec<u8>>,
    /// Raw value bytes of the requested item attributes, by sequence tag,
    /// item index (from 0) and attribute tag.
    pub(crate) raw_item_values: BTreeMap<(Tag, usize, Tag), Vec<u8>>,
}

/// The values that the pass keeps.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Keep<'a> {
    /// Root-level attributes.
    pub(crate) root: &'a [Tag],
    /// Attributes of the first [`MAX_INDEXED_ITEMS`] items of root-level
    /// sequences, as pairs of sequence tag and item attribute tag.
    pub(crate) in_items: &'a [(Tag, Tag)],
}

/// Checks that no length declared in a Part 10 file exceeds the bytes that
/// remain after it, without allocating any value.
///
/// `reader` must be positioned at the start of the file, preamble included.
/// With `size`, the total length of the file in bytes, an oversized length is
/// rejected before any byte of its value is read. Without it, or in a
/// deflated data set whose inflated size is unknown, values are skipped in
/// bounded chunks and the check fails where the input ends early.
///
/// The pass stops without an error at the first token that it cannot parse,
/// because dicom-object then rejects the file at the same token with its own
/// error, having read only checked lengths before it. Input without the
/// preamble and "DICM" passes unchecked for the same reason.
///
/// # Errors
///
/// [`DicomError::LengthExceedsInput`] names the first element or item whose
/// declared length is too large, and [`DicomError::NestingTooDeep`] reports
/// sequences nested beyond [`MAX_NESTING_DEPTH`]. [`DicomError::InvalidDataSet`]
/// reports an item or sequence delimiter that closes nothing, which makes
/// dicom-parser 0.10's lazy reader panic if it reads on.
pub fn check_lengths<R: Read>(mut reader: R, size: Option<u64>) -> Result<(), DicomError> {
    let mut preamble = [0; META_OFFSET as usize];
    if reader.read_exact(&mut preamble).is_err() || &preamble[128..] != b"DICM" {
        return Ok(());
    }

    scan(reader, size, Keep::default()).map(|_| ())
}

/// Runs the pass over a reader positioned just after "DICM", keeping the
/// raw values that `keep` lists. `size` counts the whole file.
pub(crate) fn scan<R: Read>(
    reader: R,
    size: Option<u64>,
    keep: Keep<'_>,
) -> Result<Scan, DicomError> {
    let mut source = CountingReader::new(reader, META_OFFSET);

    let Some(transfer_syntax) = check_meta_group(&mut source, size)? else {
        return Ok(Scan::default());
    };

    let remaining = size.map(|size| size.saturating_sub(source.count()));
    check_data_set(source, &transfer_syntax, remaining, keep)
}

/// Checks the meta group as dicom-object reads it: the group length first,
/// then elements until that many bytes are read. Returns the transfer
/// syntax UID, or `None` when dicom-object will reject the meta group.
fn check_meta_group<R: Read>(
    source: &mut CountingReader<R>,
    size: Option<u64>,
) -> Result<Option<String>, DicomError> {
    let decoder = file_header_decoder();
    let Ok((header, _)) = decoder.decode_header(&mut *source) else {
        return Ok(None);
    };
    if header.tag() != tags::FILE_META_INFORMATION_GROUP_LENGTH || header.length().0 != 4 {
        return Ok(None);
    }

    let mut group_length = [0; 4];
    if source.read_exact(&mut group_length).is_err() {
        return Ok(None);
    }
    let group_length = u64::from(u32::from_le_bytes(group_length));
    let group_start = source.count();
    let mut transfer_syntax = None;

    while source.count() - group_start < group_length {
        let Ok((header, _)) = decoder.decode_header(&mut *source) else {
            return Ok(None);
        };
        let Some(length) = header.length().get() else {
            return Ok(None);
        };
        let remaining = size.map(|size| size.saturating_sub(source.count()));
        check_fits(header.tag(), length, remaining)?;

        let mut value = Vec::new();
        source.copy_value(
            header.tag(),
            length,
            &mut value,
            header.tag() == tags::TRANSFER_SYNTAX_UID,
        )?;
        if header.tag() == tags::TRANSFER_SYNTAX_UID {
            transfer_syntax = Some(
                String::from_utf8_lossy(&value)
                    .trim_end_matches(['\0', ' '])
                    .to_owned(),
            );
        }
    }

    Ok(transfer_syntax)
}

/// Walks the data set with dicom-parser's lazy reader. `remaining` is the
/// number of bytes after the meta group, when known.
fn check_data_set<R: Read>(
    source: CountingReader<R>,
    transfer_syntax_uid: &str,
    remaining: Option<u64>,
    keep: Keep<'_>,
) -> Result<Scan, DicomError> {
    let Some(transfer_syntax) = TransferSyntaxRegistry.get(transfer_syntax_uid) else {
        return Ok(Scan::default());
    };

    let counter = Rc::new(Cell::new(0));
    let (data_set, remaining): (Box<dyn Read + '_>, _) = match transfer_syntax.codec() {
        // The data set codecs of dicom-rs 0.10 are all raw deflate.
        Codec::Dataset(_) => {
            let inflated = flate2::read::DeflateDecoder::new(source);
            (
                Box::new(SharedCounter::new(inflated, counter.clone())),
                None,
            )
        }
        _ => (
            Box::new(SharedCounter::new(source, counter.clone())),
            remaining,
        ),
    };

    let Ok(decoder) = DynStatefulDecoder::new_with_override(
        data_set,
        transfer_syntax,
        Default::default(),
        CharacterSetOverride::default(),
        0,
    ) else {
        return Ok(Scan::default());
    };
    let reader = LazyDataSetReader::new_with_options(decoder, LazyDataSetReaderOptions::default());

    let walk = DataSetWalk {
        counter,
        size: remaining,
        open: Vec::new(),
        keep,
        root_sequence: None,
        items_seen: 0,
        scan: Scan::default(),
    };
    walk.run(reader)
}

/// State of the walk over the data set tokens.
struct DataSetWalk<'a> {
    /// Bytes of the data set consumed so far (inflated, when deflated).
    counter: Rc<Cell<u64>>,
    /// Bytes of the data set, when known.
    size: Option<u64>,
    /// Open sequences (`false`) and items (`true`), innermost last. The
    /// lazy reader keeps the same stack, and panics when it is
    /// inconsistent, so the walk rejects a delimiter that does not match.
    open: Vec<bool>,
    keep: Keep<'a>,
    /// The root-level sequence being walked, if any.
    root_sequence: Option<Tag>,
    /// Items of `root_sequence` started so far.
    items_seen: usize,
    scan: Scan,
}

impl DataSetWalk<'_> {
    fn run<S>(mut self, mut reader: LazyDataSetReader<S>) -> Result<Scan, DicomError>
    where
        S: dicom_parser::stateful::decode::StatefulDecode,
    {
        while let Some(token) = reader.advance() {
            let Ok(token) = token else {
                break;
            };
            if self.reaches_pixel_data(&token) {
                break;
            }

            match token {
                LazyDataToken::ElementHeader(header) => {
                    self.check_declared(header.tag, header.len.0)?;
                }
                LazyDataToken::LazyValue { header, decoder } => {
                    let destination = self.destination(header.tag);
                    let kept =
                        self.consume(header.tag, header.len.0, destination.is_some(), |out| {
                            LazyDataToken::LazyValue { header, decoder }
                                .read_value_into(out)
                                .is_ok()
                        })?;
                    self.store(destination, kept);
                }
                LazyDataToken::SequenceStart { tag, len } => {
                    if self.open.is_empty() {
                        self.root_sequence = Some(tag);
                        self.items_seen = 0;
                    }
                    self.enter(tag, len.get())?;
                }
                LazyDataToken::PixelSequenceStart => {
                    self.enter(tags::PIXEL_DATA, None)?;
                }
                LazyDataToken::ItemStart { len } => {
                    if let Some(length) = len.get() {
                        self.check_declared(ITEM, length)?;
                    }
                    if self.open.len() == 1 {
                        self.items_seen += 1;
                    }
                    self.open.push(true);
                }
                LazyDataToken::ItemEnd => self.close(true, ITEM_DELIMITATION)?,
                LazyDataToken::LazyItemValue { len, decoder } => {
                    self.consume(ITEM, len, false, |out| {
                        LazyDataToken::LazyItemValue { len, decoder }
                            .read_value_into(out)
                            .is_ok()
                    })?;
                }
                LazyDataToken::SequenceEnd => self.close(false, SEQUENCE_DELIMITATION)?,
                _ => {}
            }
        }

        Ok(self.scan)
    }

    /// Returns where a value with this tag at the current position is kept,
    /// or None when the pass skips it.
    fn destination(&self, tag: Tag) -> Option<Destination> {
        if self.open.is_empty() {
            return self
                .keep
                .root
                .contains(&tag)
                .then_some(Destination::Root(tag));
        }

        // Items past the index's limit are skipped, so a file with a huge
        // sequence costs no more memory here than one with a short one.
        let sequence = self.root_sequence?;
        let in_root_item = self.open.len() == 2 && self.items_seen > 0;
        let indexed_item = self.items_seen <= MAX_INDEXED_ITEMS;
        let listed = self.keep.in_items.contains(&(sequence, tag));
        (in_root_item && indexed_item && listed).then_some(Destination::Item(
            sequence,
            self.items_seen - 1,
            tag,
        ))
    }

    fn store(&mut self, destination: Option<Destination>, value: Option<Vec<u8>>) {
        match (destination, value) {
            (Some(Destination::Root(tag)), Some(value)) => {
                self.scan.raw_values.insert(tag, value);
            }
            (Some(Destination::Item(sequence, index, tag)), Some(value)) => {
                self.scan
                    .raw_item_values
                    .insert((sequence, index, tag), value);
            }
            _ => {}
        }
    }

    /// Tells whether dicom-object stops before this token: at a root-level
    /// tag at or after Pixel Data, as `OpenFileOptions::read_until` does.
    fn reaches_pixel_data<D>(&self, token: &LazyDataToken<D>) -> bool {
        if !self.open.is_empty() {
            return false;
        }

        match token {
            LazyDataToken::ElementHeader(header) => header.tag >= tags::PIXEL_DATA,
            LazyDataToken::SequenceStart { tag, .. } => *tag >= tags::PIXEL_DATA,
            LazyDataToken::PixelSequenceStart => true,
            _ => false,
        }
    }

    fn enter(&mut self, tag: Tag, length: Option<u32>) -> Result<(), DicomError> {
        if let Some(length) = length {
            self.check_declared(tag, length)?;
        }

        self.open.push(false);
        let depth = self.open.iter().filter(|is_item| !**is_item).count();
        if depth > MAX_NESTING_DEPTH {
            return Err(DicomError::NestingTooDeep {
                tag,
                max: MAX_NESTING_DEPTH,
            });
        }
        Ok(())
    }

    /// Closes the innermost item (`item`) or sequence, rejecting a
    /// delimiter that closes nothing or the wrong kind.
    fn close(&mut self, item: bool, delimiter: Tag) -> Result<(), DicomError> {
        if self.open.pop() == Some(item) {
            return Ok(());
        }

        Err(DicomError::InvalidDataSet {
            reason: format!(
                "delimiter {delimiter} at data set offset {} closes no open {}",
                self.counter.get().saturating_sub(8),
                if item { "item" } else { "sequence" }
            ),
        })
    }

    fn check_declared(&self, tag: Tag, length: u32) -> Result<(), DicomError> {
        let remaining = self
            .size
            .map(|size| size.saturating_sub(self.counter.get()));
        check_fits(tag, length, remaining)
    }

    /// Reads or skips a value and checks that the input held all of it.
    /// Returns the value when `keep` is set.
    fn consume(
        &mut self,
        tag: Tag,
        length: u32,
        keep: bool,
        read: impl FnOnce(&mut dyn std::io::Write) -> bool,
    ) -> Result<Option<Vec<u8>>, DicomError> {
        self.check_declared(tag, length)?;

        let start = self.counter.get();
        let mut value = Vec::new();
        let read_ok = if keep {
            read(&mut value)
        } else {
            read(&mut std::io::sink())
        };

        let read_bytes = self.counter.get() - start;
        if !read_ok || read_bytes < u64::from(length) {
            return Err(DicomError::LengthExceedsInput {
                tag,
                declared: length,
                remaining: read_bytes,
            });
        }

        Ok(keep.then_some(value))
    }
}

/// The place of a kept value: the root, or an item of a root-level sequence
/// (sequence tag, item index, attribute tag).
#[derive(Debug, Clone, Copy)]
enum Destination {
    Root(Tag),
    Item(Tag, usize, Tag),
}

fn check_fits(tag: Tag, length: u32, remaining: Option<u64>) -> Result<(), DicomError> {
    match remaining {
        Some(remaining) if u64::from(length) > remaining => Err(DicomError::LengthExceedsInput {
            tag,
            declared: length,
            remaining,
        }),
        _ => Ok(()),
    }
}

/// A reader that tracks the file offset of the next byte it reads.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> CountingReader<R> {
    /// Wraps a reader whose first byte is at file offset `offset`.
    fn new(inner: R, offset: u64) -> Self {
        CountingReader {
            inner,
            count: offset,
        }
    }

    fn count(&self) -> u64 {
        self.count
    }

    /// Copies a meta group value into `out` when `keep` is set, or skips it,
    /// failing when the input ends first.
    fn copy_value(
        &mut self,
        tag: Tag,
        length: u32,
        out: &mut Vec<u8>,
        keep: bool,
    ) -> Result<(), DicomError> {
        let mut limited = self.by_ref().take(u64::from(length));
        let copied = if keep {
            std::io::copy(&mut limited, out)
        } else {
            std::io::copy(&mut limited, &mut std::io::sink())
        };

        match copied {
            Ok(copied) if copied == u64::from(length) => Ok(()),
            Ok(copied) => Err(DicomError::LengthExceedsInput {
                tag,
                declared: length,
                remaining: copied,
            }),
            Err(error) => Err(DicomError::Io(error)),
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count += read as u64;
        Ok(read)
    }
}

/// A reader that adds the bytes read through it to a counter that stays
/// readable while the decoder owns the reader.
struct SharedCounter<R> {
    inner: R,
    counter: Rc<Cell<u64>>,
}

impl<R> SharedCounter<R> {
    fn new(inner: R, counter: Rc<Cell<u64>>) -> Self {
        SharedCounter { inner, counter }
    }
}

impl<R: Read> Read for SharedCounter<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.counter.set(self.counter.get() + read as u64);
        Ok(read)
    }
}
