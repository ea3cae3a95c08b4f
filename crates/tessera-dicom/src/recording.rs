//! A reader that keeps a copy of what it reads, so the same bytes can be
//! parsed twice from a stream that cannot seek.

use std::io::Read;

pub(crate) struct RecordingReader<R> {
    inner: R,
    recorded: Vec<u8>,
}

impl<R: Read> RecordingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        RecordingReader {
            inner,
            recorded: Vec::new(),
        }
    }

    /// Returns every byte read so far, in order.
    pub(crate) fn into_recorded(self) -> Vec<u8> {
        self.recorded
    }
}

impl<R: Read> Read for RecordingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.recorded.extend_from_slice(&buffer[..read]);
        Ok(read)
    }
}
