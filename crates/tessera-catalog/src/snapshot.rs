//! Snapshots of the catalog as RocksDB checkpoints.
//!
//! Building one hard-links the database's table files into a directory after
//! a memtable flush, so neither its time nor its memory grows with the
//! archive. A follower receives the files one at a time and copies the state
//! column families from them in bounded batches.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rocksdb::checkpoint::Checkpoint;
use rocksdb::{IteratorMode, Options, WriteBatch, DB};
use tokio::io::AsyncWriteExt;

use crate::db::{self, STATE_CFS};
use crate::CatalogError;

/// Rows copied per write while installing, so a large snapshot never sits
/// in one batch in memory.
const INSTALL_BATCH_BYTES: usize = 8 << 20;

const FINISHED: &str = "snap-";
const BUILDING: &str = "building-";
const INCOMING: &str = "incoming-";
const RECEIVED: &str = "received-";

/// A snapshot's files: a RocksDB checkpoint of the whole catalog database.
///
/// A snapshot that arrived from a leader owns its directory: dropping it
/// removes the directory, unless installing it moved the directory first.
/// Dropping one that the state machine built or kept removes nothing.
#[derive(Debug)]
pub struct CatalogSnapshot {
    dir: PathBuf,
    owned: bool,
}

impl CatalogSnapshot {
    pub(crate) fn kept(dir: PathBuf) -> Self {
        Self { dir, owned: false }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lists the snapshot's files with their sizes, sorted by name.
    pub fn files(&self) -> std::io::Result<Vec<(String, u64)>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let metadata = entry.metadata()?;
            if metadata.is_file() {
                files.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    metadata.len(),
                ));
            }
        }
        files.sort();
        Ok(files)
    }
}

impl Drop for CatalogSnapshot {
    fn drop(&mut self) {
        if self.owned && self.dir.exists() {
            if let Err(error) = fs::remove_dir_all(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), %error, "failed to remove an unused snapshot");
            }
        }
    }
}

/// A snapshot arriving from the leader, written file by file. Dropped before
/// `finish`, it removes what it wrote.
pub struct IncomingSnapshot {
    dir: PathBuf,
    root: PathBuf,
    file: Option<(String, tokio::fs::File)>,
    finished: bool,
}

impl IncomingSnapshot {
    /// Starts the next file. Names are plain RocksDB file names: a name
    /// with a path separator or one that exists already is rejected.
    pub async fn start_file(&mut self, name: &str) -> Result<(), CatalogError> {
        self.close_file().await?;
        let valid = !name.is_empty()
            && name.len() <= 255
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(CatalogError::SnapshotFile {
                name: name.to_string(),
                reason: "not a plain file name of a RocksDB checkpoint".into(),
            });
        }

        let path = self.dir.join(name);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| snapshot_io(&path, e))?;
        self.file = Some((name.to_string(), file));
        Ok(())
    }

    /// Appends the next bytes of the file `start_file` opened.
    pub async fn append(&mut self, bytes: &[u8]) -> Result<(), CatalogError> {
        let Some((name, file)) = self.file.as_mut() else {
            return Err(CatalogError::SnapshotFile {
                name: String::new(),
                reason: "data arrived before any file name".into(),
            });
        };
        file.write_all(bytes)
            .await
            .map_err(|e| snapshot_io(&self.dir.join(name.as_str()), e))
    }

    /// Syncs every file and hands the directory over as a snapshot to install.
    pub async fn finish(mut self) -> Result<CatalogSnapshot, CatalogError> {
        self.close_file().await?;
        let received = unique_dir(&self.root, RECEIVED);
        tokio::fs::rename(&self.dir, &received)
            .await
            .map_err(|e| snapshot_io(&received, e))?;
        self.finished = true;
        Ok(CatalogSnapshot {
            dir: received,
            owned: true,
        })
    }

    async fn close_file(&mut self) -> Result<(), CatalogError> {
        if let Some((name, file)) = self.file.take() {
            file.sync_all()
                .await
                .map_err(|e| snapshot_io(&self.dir.join(name), e))?;
        }
        Ok(())
    }
}

impl Drop for IncomingSnapshot {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn snapshot_io(path: &Path, source: std::io::Error) -> CatalogError {
    CatalogError::SnapshotIo {
        path: path.display().to_string(),
        source,
    }
}

/// The directory of a node's snapshots, inside its catalog's directory.
/// The lock orders building, installing and clean-up, which may run on
/// different tasks.
#[derive(Clone)]
pub(crate) struct SnapshotDir {
    root: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl SnapshotDir {
    /// Opens the directory and removes what an interrupted build or transfer
    /// left behind.
    pub(crate) fn open(root: PathBuf) -> Result<Self, CatalogError> {
        fs::create_dir_all(&root).map_err(|e| snapshot_io(&root, e))?;
        let dir = Self {
            root,
            lock: Arc::new(Mutex::new(())),
        };
        dir.remove_where(|name| {
            [BUILDING, INCOMING, RECEIVED]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        })?;
        Ok(dir)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub(crate) fn incoming(&self) -> Result<IncomingSnapshot, CatalogError> {
        let dir = unique_dir(&self.root, INCOMING);
        fs::create_dir(&dir).map_err(|e| snapshot_io(&dir, e))?;
        Ok(IncomingSnapshot {
            dir,
            root: self.root.clone(),
            file: None,
            finished: false,
        })
    }

    /// Checkpoints `db` into a new directory and returns its path. The caller
    /// holds the lock.
    pub(crate) fn checkpoint(&self, db: &DB) -> Result<PathBuf, CatalogError> {
        let dir = unique_dir(&self.root, BUILDING);
        let checkpoint = Checkpoint::new(db).map_err(|source| CatalogError::Rocks {
            action: "start a checkpoint",
            source,
        })?;
        checkpoint
            .create_checkpoint(&dir)
            .map_err(|source| CatalogError::Rocks {
                action: "create a checkpoint",
                source,
            })?;
        Ok(dir)
    }

    /// Moves a built or received snapshot to its final name, `snap-<id>`,
    /// and returns that name. The caller holds the lock.
    pub(crate) fn adopt(&self, dir: &Path, snapshot_id: &str) -> Result<String, CatalogError> {
        let name = format!("{FINISHED}{snapshot_id}");
        let target = self.path(&name);
        if dir == target {
            return Ok(name);
        }
        if target.exists() {
            fs::remove_dir_all(&target).map_err(|e| snapshot_io(&target, e))?;
        }

        if dir.parent() == Some(self.root.as_path()) {
            fs::rename(dir, &target).map_err(|e| snapshot_io(&target, e))?;
        } else {
            copy_dir(dir, &target)?;
        }
        sync_dir(&self.root)?;
        Ok(name)
    }

    /// Removes finished snapshots other than those named in `keep`. The
    /// caller holds the lock.
    pub(crate) fn retain(&self, keep: &[&str]) -> Result<(), CatalogError> {
        self.remove_where(|name| name.starts_with(FINISHED) && !keep.contains(&name))
    }

    fn remove_where(&self, remove: impl Fn(&str) -> bool) -> Result<(), CatalogError> {
        let entries = fs::read_dir(&self.root).map_err(|e| snapshot_io(&self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| snapshot_io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if remove(&name) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(|e| snapshot_io(&path, e))?;
            }
        }
        Ok(())
    }
}

fn unique_dir(root: &Path, prefix: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let sequence = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    root.join(format!("{prefix}{nanos}-{sequence}"))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), CatalogError> {
    fs::create_dir(to).map_err(|e| snapshot_io(to, e))?;
    for entry in fs::read_dir(from).map_err(|e| snapshot_io(from, e))? {
        let entry = entry.map_err(|e| snapshot_io(from, e))?;
        let target = to.join(entry.file_name());
        fs::copy(entry.path(), &target).map_err(|e| snapshot_io(&target, e))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), CatalogError> {
    fs::File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|e| snapshot_io(dir, e))
}

/// Opens some column families of a checkpoint read-only. Opening reads the
/// index blocks of every table of the families opened, so reading metadata
/// opens the metadata family alone.
pub(crate) fn open_checkpoint(dir: &Path, families: &[&str]) -> Result<DB, CatalogError> {
    DB::open_cf_for_read_only(&Options::default(), dir, families, false).map_err(|source| {
        CatalogError::Open {
            path: dir.display().to_string(),
            source,
        }
    })
}

/// Replaces every state column family of `db` with the checkpoint's rows.
///
/// Not atomic: the caller records the snapshot being installed first and
/// runs this again after a crash before the node serves anything.
pub(crate) fn copy_state(db: &DB, dir: &Path) -> Result<u64, CatalogError> {
    let source = open_checkpoint(dir, &STATE_CFS)?;
    let rocks = CatalogError::rocks;
    let mut rows = 0;
    for name in STATE_CFS {
        clear_family(db, name).map_err(rocks("clear a column family"))?;

        let family = db::cf(db, name);
        let mut batch = WriteBatch::default();
        for item in source.iterator_cf(&db::cf(&source, name), IteratorMode::Start) {
            let (key, value) = item.map_err(rocks("read a snapshot row"))?;
            batch.put_cf(&family, key, value);
            rows += 1;
            if batch.size_in_bytes() >= INSTALL_BATCH_BYTES {
                db.write(std::mem::take(&mut batch))
                    .map_err(rocks("write snapshot rows"))?;
            }
        }
        db.write(batch).map_err(rocks("write snapshot rows"))?;
    }
    Ok(rows)
}

/// Deletes every row of a column family with one range tombstone.
fn clear_family(db: &DB, name: &str) -> Result<(), rocksdb::Error> {
    let family = db::cf(db, name);
    let mut rows = db.raw_iterator_cf(&family);
    rows.seek_to_first();
    let Some(first) = rows.key().map(<[u8]>::to_vec) else {
        return rows.status();
    };
    rows.seek_to_last();
    let mut end = rows.key().map(<[u8]>::to_vec).unwrap_or_default();
    rows.status()?;
    // The range's end is exclusive: one byte more sorts just after the last key.
    end.push(0);
    db.delete_range_cf(&family, first, end)
}
