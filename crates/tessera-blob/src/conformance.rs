//! The conformance suite that every [`ShardStore`] backend must pass.
//!
//! Call [`run`] from a test with a function that opens the backend at a directory.
//! Each case gets its own subdirectory of `base`, and a case that reopens a store
//! drops the old one first. A failed check panics with the case name.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{BlobError, BlobId, ShardIdentity, ShardStore};

/// Runs every case of the suite, panicking on the first failed check.
///
/// `open(dir)` must open the store at `dir`, creating it when missing, and see
/// every durable write of a store previously opened at `dir`.
pub fn run<S, F>(base: &Path, open: F)
where
    S: ShardStore,
    F: Fn(&Path) -> Result<S, BlobError>,
{
    let cases: [(&str, fn(&Opener<'_, S>)); 10] = [
        ("location", location_is_not_empty),
        ("chunk_round_trip", chunk_round_trip),
        ("chunk_overwrite", chunk_overwrite_replaces_bytes),
        ("chunk_sizes", chunk_sizes_round_trip),
        ("manifest_round_trip", manifest_round_trip),
        ("manifest_order", manifests_after_pages_in_id_order),
        ("pending_marks", pending_marks_follow_first_write),
        ("delete_blob", delete_blob_removes_only_that_blob),
        ("durability", durable_writes_survive_reopen),
        ("concurrency", concurrent_writers_all_land),
    ];

    for (name, case) in cases {
        let opener = Opener {
            dir: &base.join(name),
            open: &open,
            case: name,
        };
        case(&opener);
    }
}

/// Opens the store of one case and labels its failures.
struct Opener<'a, S> {
    dir: &'a Path,
    open: &'a dyn Fn(&Path) -> Result<S, BlobError>,
    case: &'a str,
}

impl<S: ShardStore> Opener<'_, S> {
    fn open(&self) -> S {
        (self.open)(self.dir).unwrap_or_else(|error| {
            panic!(
                "{}: open store at {}: {error}",
                self.case,
                self.dir.display()
            )
        })
    }

    fn ok<T>(&self, result: Result<T, BlobError>, action: &str) -> T {
        result.unwrap_or_else(|error| panic!("{}: {action}: {error}", self.case))
    }
}

/// Returns a fixed, millisecond-exact time, because backends may round to milliseconds.
fn time(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + millis)
}

/// Builds a blob id whose bytes are all `fill` except the last, so that neighbors
/// differ only in the last byte.
fn blob(fill: u8, last: u8) -> BlobId {
    let mut id = [fill; 32];
    id[31] = last;
    BlobId(id)
}

fn location_is_not_empty<S: ShardStore>(t: &Opener<'_, S>) {
    let store = t.open();
    assert!(
        !store.location().is_empty(),
        "{}: location is empty",
        t.case
    );
}

fn chunk_round_trip<S: ShardStore>(t: &Opener<'_, S>) {
    let store = t.open();
    let a = blob(1, 0);
    let b = blob(2, 0);
    t.ok(store.put_chunk(&a, 0, b"a0", time(0)), "put chunk a0");
    t.ok(store.put_chunk(&a, 1, b"a1", time(0)), "put chunk a1");
    t.ok(store.put_chunk(&b, 0, b"b0", time(0)), "put chunk b0");

    let a0 = t.ok(store.get_chunk(&a, 0), "get chunk a0");
    let a1 = t.ok(store.get_chunk(&a, 1), "get chunk a1");
    let b0 = t.ok(store.get_chunk(&b, 0), "get chunk b0");
    let a2 = t.ok(store.get_chunk(&a, 2), "get absent chunk a2");
    let c0 = t.ok(store.get_chunk(&blob(3, 0), 0), "get chunk of absent blob");
    assert_eq!(a0.as_deref(), Some(&b"a0"[..]), "{}: chunk a0", t.case);
    assert_eq!(a1.as_deref(), Some(&b"a1"[..]), "{}: chunk a1", t.case);
    assert_eq!(b0.as_deref(), Some(&b"b0"[..]), "{}: chunk b0", t.case);
    assert_eq!(a2, None, "{}: absent index", t.case);
    assert_eq!(c0, None, "{}: absent blob", t.case);
}

fn chunk_overwrite_replaces_bytes<S: ShardStore>(t: &Opener<'_, S>) {
    let store = t.open();
    let a = blob(1, 0);
    t.ok(
        store.put_chunk(&a, 0, b"old bytes", time(0)),
        "put first chunk",
    );
    t.ok(
        store.put_chunk(&a, 0, b"new", time(1)),
        "put replacement chunk",
    );

    let stored = t.ok(store.get_chunk(&a, 0), "get chunk");
    assert_eq!(
        stored.as_deref(),
        Some(&b"new"[..]),
        "{}: replaced chunk",
        t.case
    );
}

fn chunk_sizes_round_trip<S: ShardStore>(t: &Opener<'_, S>) {
    let store = t.open();
    let sizes = [
        0usize,
        1,
        64 * 1024 - 1,
        64 * 1024,
        100_000,
        4 * 1024 * 1024 + 1,
    ];
    for (index, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size).map(|i| (i % 251) as u8).collect();
        let index = index as u32;
        t.ok(
            store.put_chunk(&blob(9, 0), index, &data, time(0)),
            "put chunk",
        );

        let stored = t.ok(store.get_chunk(&blob(9, 0), index), "get chunk");
        let stored =
            stored.unwrap_or_else(|| panic!("{}: chunk of {size} bytes not found", t.case));
        assert_eq!(
            stored.len(),
            *size,
            "{}: length of {size}-byte chunk",
            t.case
        );
        assert!(
            stored[..] == data[..],
            "{}: bytes of {size}-byte chunk",
            t.case
        );
    }
}

fn manifest_round_trip<S: ShardStore>(t: &Opener<'_, S>) {
    let store = t.open();
    let a = blob(1, 0);
    let absent = t.ok(store.get_manifest(&a), "get absent manifest");
    assert_eq!(absent, None, "{}: manifest before put", t.case);

    t.ok(store.put_manifest(&a, b"first"), "put manifest");
    let first = t.ok(store.get_manifest(&a), "get manifest");
    assert_eq!(
        first.as_deref(),
        Some(&b"first"[..]),
        "{}: stored manifest",
        t.case
    );

    t.ok(store.put_manifest(&a, b"second"), "replace manifest");
    let second = t.ok(store.get_manifest(&a), "get replaced manifest");
    assert_eq!(
        second.as_deref(),
        Some(&b"second"[..]),
        "{}: replaced manifest",
        t.case
    );
}

fn manifests_after_pages_in_id_order<S: ShardStore>(t: &Opener<'_, S>) {
    let store = t.open();
    let ids: Vec<BlobId> = [7u8, 1, 9, 3, 5].iter().map(|&n| blob(n, 0)).collect();
    for id in &ids {
        t.ok(store.put_manifest(id, id.as_bytes()), "put manifest");
    }
    t.ok(
        store.put_chunk(&blob(4, 0), 0, b"chunk", time(0)),
        "put unrelated chunk",
    );

    let mut sorted = ids.clone();
    sorted.sort();
    let page_ids = |after: Option<&BlobId>, limit: usize| -> Vec<BlobId> {
        let page = t.ok(store.manifests_after(after, limit), "list manifests");
        page.into_iter().map(|(id, _)| id).collect()
    };

    let all = t.ok(store.manifests_after(None, 100), "list all manifests");
    let values_match = all.iter().all(|(id, value)| value[..] == id.as_bytes()[..]);
    assert!(
        values_match,
        "{}: each record carries its own value",
        t.case
    );
    assert_eq!(page_ids(None, 100), sorted, "{}: all ids ascending", t.case);
    assert_eq!(
        page_ids(None, 2),
        sorted[..2],
        "{}: first page of two",
        t.case
    );
    assert_eq!(
        page_ids(Some(&sorted[1]), 2),
        sorted[2..4],
        "{}: page after a stored id",
        t.case
    );
    assert_eq!(
        page_ids(Some(&blob(4, 0)), 100),
        sorted[2..],
        "{}: page after an absent id",
        t.case
    );
    assert_eq!(
        page_ids(Some(&sorted[4]), 100),
        vec![],
        "{}: page after the last id",
        t.case
    );
    assert_eq!(page_ids(None, 0), vec![], "{}: page of limit 0", t.case);
}

fn pending_marks_follow_first_write<S: ShardStore>(t: &Opener<'_, S>) {
    let store = t.open();
    let a = blob(1, 0);
    let b = blob(2, 0);
    t.ok(
        store.put_chunk(&a, 0, b"a0", time(10)),
        "put first chunk of a",
    );
    t.ok(
        store.put_chunk(&a, 1, b"a1", time(20)),
        "put second chunk of a",
    );
    t.ok(store.put_chunk(&b, 0, b"b0", time(30)), "put chunk of b");

    let mut marks = t.ok(store.pending(), "list pending marks");
    marks.sort();
    assert_eq!(
        marks,
        vec![(a, time(10)), (b, time(30))],
        "{}: marks after writes",
        t.case
    );

    let mark_a = t.ok(store.pending_mark(&a), "read mark of a");
    let mark_c = t.ok(store.pending_mark(&blob(3, 0)), "read mark of absent blob");
    assert_eq!(
        mark_a,
        Some(time(10)),
        "{}: mark keeps first write time",
        t.case
    );
    assert_eq!(mark_c, None, "{}: absent blob has no mark", t.case);

    t.ok(store.put_manifest(&a, b"manifest"), "put manifest of a");
    t.ok(store.clear_pending(&b), "clear mark of b");
    let remaining = t.ok(store.pending(), "list pending marks after commit");
    let a0 = t.ok(store.get_chunk(&a, 0), "get chunk of a");
    let b0 = t.ok(store.get_chunk(&b, 0), "get chunk of b");
    assert_eq!(
        remaining,
        vec![],
        "{}: put_manifest and clear_pending drop marks",
        t.case
    );
    assert!(a0.is_some(), "{}: put_manifest keeps chunks", t.case);
    assert!(b0.is_some(), "{}: clear_pending keeps chunks", t.case);
}

fn delete_blob_removes_only_that_blob<S: ShardStore>(t: &Opener<'_, S>) {
    let store = t.open();
    let target = blob(5, 5);
    let below = blob(5, 4);
    let above = blob(5, 6);
    for id in [below, target, above] {
        for index in [0, 1, u32::MAX] {
            t.ok(store.put_chunk(&id, index, b"chunk", time(0)), "put chunk");
        }
        t.ok(store.put_manifest(&id, b"manifest"), "put manifest");
    }
    t.ok(
        store.put_chunk(&target, 2, b"uncommitted", time(0)),
        "put late chunk",
    );

    t.ok(store.delete_blob(&target), "delete blob");

    for index in [0, 1, 2, u32::MAX] {
        let chunk = t.ok(store.get_chunk(&target, index), "get deleted chunk");
        assert_eq!(chunk, None, "{}: chunk {index} of deleted blob", t.case);
    }
    let manifest = t.ok(store.get_manifest(&target), "get deleted manifest");
    let mark = t.ok(store.pending_mark(&target), "read mark of deleted blob");
    assert_eq!(manifest, None, "{}: manifest of deleted blob", t.case);
    assert_eq!(mark, None, "{}: pending mark of deleted blob", t.case);

    for id in [below, above] {
        for index in [0, 1, u32::MAX] {
            let chunk = t.ok(store.get_chunk(&id, index), "get neighbor chunk");
            assert!(
                chunk.is_some(),
                "{}: chunk {index} of neighbor {id}",
                t.case
            );
        }
        let manifest = t.ok(store.get_manifest(&id), "get neighbor manifest");
        assert!(manifest.is_some(), "{}: manifest of neighbor {id}", t.case);
    }

    let again = store.delete_blob(&target);
    assert!(
        again.is_ok(),
        "{}: deleting an absent blob: {again:?}",
        t.case
    );
}

fn durable_writes_survive_reopen<S: ShardStore>(t: &Opener<'_, S>) {
    let a = blob(1, 0);
    let b = blob(2, 0);
    let identity = ShardIdentity { index: 2, count: 3 };
    {
        let store = t.open();
        let before = t.ok(store.identity(), "read identity of new store");
        assert_eq!(before, None, "{}: identity of new store", t.case);

        t.ok(store.set_identity(identity), "set identity");
        t.ok(store.put_chunk(&a, 0, b"synced", time(0)), "put chunk");
        t.ok(store.sync(), "sync");
        t.ok(store.put_manifest(&b, b"manifest"), "put manifest");
    }

    let store = t.open();
    let stored_identity = t.ok(store.identity(), "read identity after reopen");
    let chunk = t.ok(store.get_chunk(&a, 0), "get chunk after reopen");
    let manifest = t.ok(store.get_manifest(&b), "get manifest after reopen");
    let mark = t.ok(store.pending_mark(&a), "read mark after reopen");
    assert_eq!(
        stored_identity,
        Some(identity),
        "{}: identity after reopen",
        t.case
    );
    assert_eq!(
        chunk.as_deref(),
        Some(&b"synced"[..]),
        "{}: chunk after reopen",
        t.case
    );
    assert_eq!(
        manifest.as_deref(),
        Some(&b"manifest"[..]),
        "{}: manifest after reopen",
        t.case
    );
    assert_eq!(mark, Some(time(0)), "{}: pending mark after reopen", t.case);
}

fn concurrent_writers_all_land<S: ShardStore>(t: &Opener<'_, S>) {
    const THREADS: u8 = 4;
    const CHUNKS: u32 = 16;

    let store = Arc::new(t.open());
    let writers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || -> Result<(), BlobError> {
                for index in 0..CHUNKS {
                    let data = [thread; 100];
                    store.put_chunk(&blob(thread, 0), index, &data, time(0))?;
                }
                store.sync()
            })
        })
        .collect();
    for writer in writers {
        let result = writer.join().expect("writer thread panicked");
        t.ok(result, "write from thread");
    }

    for thread in 0..THREADS {
        for index in 0..CHUNKS {
            let chunk = t.ok(store.get_chunk(&blob(thread, 0), index), "get chunk");
            let expected = [thread; 100];
            assert_eq!(
                chunk.as_deref(),
                Some(&expected[..]),
                "{}: chunk {index} of thread {thread}",
                t.case
            );
        }
    }
}
