//! Holds an arriving instance until its blob id is known, in memory while it
//! is small and in a temporary file once it passes the configured limit, so no
//! path keeps a multi-GiB instance in memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use tessera_blob::{Chunker, Manifest};

use crate::NodeError;

/// An instance being received: chunked and hashed as its bytes arrive.
pub struct IncomingInstance {
    chunker: Chunker,
    spool: Spool,
}

impl IncomingInstance {
    pub fn new(chunk_size: u32, dir: &Path, memory_limit: u64) -> Self {
        Self {
            chunker: Chunker::new(chunk_size),
            spool: Spool::new(dir.to_path_buf(), memory_limit),
        }
    }

    pub fn push(&mut self, data: &[u8]) -> Result<(), NodeError> {
        for chunk in self.chunker.push(data) {
            self.spool.append(chunk)?;
        }
        Ok(())
    }

    /// Ends the instance: returns its manifest and the spooled chunks.
    pub fn finish(mut self) -> Result<(Manifest, Spool), NodeError> {
        let (last, manifest) = self.chunker.finish();
        if let Some(chunk) = last {
            self.spool.append(chunk)?;
        }
        Ok((manifest, self.spool))
    }
}

/// Chunks of one blob in order, in memory or in an unlinked temporary file.
pub struct Spool {
    dir: PathBuf,
    memory_limit: u64,
    memory: Vec<Bytes>,
    file: Option<Mutex<File>>,
    /// Offset and length of each chunk in `file`.
    extents: Vec<(u64, usize)>,
    size: u64,
}

impl Spool {
    pub fn new(dir: PathBuf, memory_limit: u64) -> Self {
        Self {
            dir,
            memory_limit,
            memory: Vec::new(),
            file: None,
            extents: Vec::new(),
            size: 0,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn chunk_count(&self) -> usize {
        self.memory.len().max(self.extents.len())
    }

    pub fn append(&mut self, chunk: Bytes) -> Result<(), NodeError> {
        self.size += chunk.len() as u64;
        if self.file.is_none() && self.size <= self.memory_limit {
            self.memory.push(chunk);
            return Ok(());
        }
        if self.file.is_none() {
            self.move_to_file()?;
        }
        self.write_to_file(&chunk)
    }

    fn move_to_file(&mut self) -> Result<(), NodeError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io_error(e))?;
        let file = tempfile::tempfile_in(&self.dir).map_err(|e| self.io_error(e))?;
        self.file = Some(Mutex::new(file));
        for chunk in std::mem::take(&mut self.memory) {
            self.write_to_file(&chunk)?;
        }
        Ok(())
    }

    fn write_to_file(&mut self, chunk: &[u8]) -> Result<(), NodeError> {
        let offset = self.extents.last().map(|(o, l)| o + *l as u64).unwrap_or(0);
        let file = self.file.as_ref().expect("file exists once spilled");
        let result = file.lock().expect("spool lock poisoned").write_all(chunk);
        result.map_err(|e| self.io_error(e))?;
        self.extents.push((offset, chunk.len()));
        Ok(())
    }

    /// Chunk `index`, read back from memory or the file.
    pub fn chunk(&self, index: usize) -> Result<Bytes, NodeError> {
        let Some(file) = &self.file else {
            return Ok(self.memory[index].clone());
        };
        let (offset, len) = self.extents[index];
        let mut buffer = vec![0u8; len];
        let mut file = file.lock().expect("spool lock poisoned");
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut buffer))
            .map_err(|e| self.io_error(e))?;
        Ok(Bytes::from(buffer))
    }

    /// Returns a reader over the chunks in order, one in memory at a time.
    pub fn reader(&self) -> SpoolReader<'_> {
        SpoolReader {
            spool: self,
            index: 0,
            current: Bytes::new(),
        }
    }

    fn io_error(&self, source: std::io::Error) -> NodeError {
        NodeError::Spool {
            path: self.dir.display().to_string(),
            source,
        }
    }
}

/// Reads a spool's bytes in order, one chunk in memory at a time.
pub struct SpoolReader<'a> {
    spool: &'a Spool,
    index: usize,
    current: Bytes,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.index >= self.spool.chunk_count() {
                return Ok(0);
            }
            self.current = self
                .spool
                .chunk(self.index)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            self.index += 1;
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
