//! The per-worker write-ahead log and the storage front (ARCHITECTURE.md "Durability contract").
//!
//! `append` writes the rows to `wal/worker-<id>-<generation>.wal` before it returns (one copy
//! into the file's shared mapping, or one write(): either way in the page cache, so a killed
//! process loses nothing acknowledged); a background thread fsyncs at least every
//! `fsync_interval_ms` and seals buffered rows into segments every `seal_interval_ms` or
//! `seal_rows` rows. On open, WAL files left by this worker id are replayed into segments.
//!
//! A generation is one WAL file and the rows in it. Sealing swaps the current generation out under
//! the lock (the next append opens a new one), writes its segments
//! `w<worker>-g<gen>-<n>.arrow` outside the lock, then deletes the WAL file. Rewriting a generation
//! (replay, retry after a failed seal) first deletes its `w<worker>-g<gen>-*` segments, so a crash
//! between "segments written" and "WAL deleted" never duplicates rows.
//!
//! Generations are nanoseconds since the epoch, forced above every generation seen before, so
//! they keep increasing across restarts.
//!
//! The parts: `frame` (record framing and decoding), `writer` (appends and the background
//! thread), `seal` (generations into segment files), `replay` (leftover WAL files on open),
//! `files` (names, locks, deletions), `health` (what the background thread failed at).

mod files;
mod frame;
mod health;
mod mapped;
mod replay;
mod seal;
#[cfg(test)]
mod testkit;
mod writer;

use crate::errors::{CoreError, Result};
use crate::rows::SiteRows;
use crate::segments::create_dir_durable;
use parking_lot::{Condvar, Mutex};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use health::BackgroundStatus;

thread_local! {
    /// The encoding buffer of this thread's appends, kept between calls.
    static RECORD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
/// A buffer that grew past this for a big batch is dropped after the call.
const KEPT_RECORD_BYTES: usize = 64 << 10;

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub worker_id: u32,
    pub fsync_interval_ms: u64,
    /// fsync before `append` returns.
    pub strict: bool,
    pub seal_interval_ms: u64,
    pub seal_rows: usize,
    /// Once this long has passed since the last seal with no rows to seal since, the
    /// background thread gives the memory its seals freed back to the system (0: never).
    pub idle_release_ms: u64,
}

pub struct Storage {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    config: StorageConfig,
    wal_dir: PathBuf,
    seg_dir: PathBuf,
    state: Mutex<State>,
    /// Wakes the background thread: seal requested (row threshold) or stop.
    wake: Condvar,
    /// Serialises sealing (background thread, `seal()`, `close()`); holds failed generations.
    sealer: Mutex<Vec<Generation>>,
    /// The flock on `wal/worker-<id>.lock`; dropped (released) by close or abandon.
    lock: Mutex<Option<File>>,
    /// Failures of background fsyncs and seals, kept apart from the hot `state` lock.
    health: Mutex<health::Health>,
}

#[derive(Default)]
struct State {
    current: Option<Wal>,
    /// Generations swapped out because their file broke; sealed with the next seal.
    retired: Vec<Wal>,
    buffered_rows: usize,
    /// Written since the last background fsync.
    dirty: bool,
    seal_requested: bool,
    retry_pending: bool,
    stop: bool,
    closed: bool,
    last_gen: u64,
    /// How often the background thread gave memory back after ingestion paused.
    idle_releases: u64,
}

struct Wal {
    gen: u64,
    file: Arc<File>,
    /// Bytes durably framed in the file; a failed write is truncated back to this.
    len: u64,
    /// The rows of the file's records, as they were handed in: what the seal writes.
    rows: Vec<SiteRows>,
    dir_synced: bool,
    broken: bool,
    /// The file mapped for appends by copy (mapped.rs); None: appends by write().
    map: Option<mapped::Mapped>,
}

/// One generation's rows waiting to become segments.
struct Generation {
    gen: u64,
    rows: Vec<SiteRows>,
    /// Segments of this generation may already exist and must be deleted first.
    rewrite: bool,
    /// The WAL file while it may still hold rows not yet fsynced.
    file: Option<Arc<File>>,
}

impl Storage {
    /// Lock the worker id, replay its leftover WAL files into segments, start the background thread.
    pub fn open(config: StorageConfig) -> Result<Storage> {
        let wal_dir = config.data_dir.join("wal");
        let seg_dir = config.data_dir.join("segments");
        create_dir_durable(&wal_dir)?;
        create_dir_durable(&seg_dir)?;
        let lock = files::lock_worker(&wal_dir, config.worker_id)?;
        let shared = Arc::new(Shared {
            config,
            wal_dir,
            seg_dir,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            sealer: Mutex::new(Vec::new()),
            lock: Mutex::new(Some(lock)),
            health: Mutex::new(health::Health::default()),
        });
        shared.replay()?;
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("trail-wal-{}", shared.config.worker_id))
            .spawn(move || worker.run())
            .map_err(CoreError::storage)?;
        Ok(Storage {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Durably log and buffer the rows of one or more sites. One copy or write() per call.
    pub fn append(&self, batch: Vec<SiteRows>) -> Result<()> {
        let rows: usize = batch.iter().map(|s| s.rows.len()).sum();
        if rows == 0 {
            return Ok(());
        }
        for site in &batch {
            seal::check_site(&site.site)?;
        }
        let to_sync = RECORD.with_borrow_mut(|record| -> Result<_> {
            frame::encode_record_into(&batch, record)?;
            let to_sync = self.shared.write_locked(record, batch, rows);
            if record.capacity() > KEPT_RECORD_BYTES {
                *record = Vec::new(); // a big batch's buffer is not kept
            }
            to_sync
        })?;
        // The strict fsync runs outside the lock so concurrent appends can queue their writes;
        // if a seal deleted the file meanwhile, its rows are already durable in segments.
        if let Some(file) = to_sync {
            file.sync_data()?;
        }
        Ok(())
    }

    /// Reserve blocks for the next appends now, so that growing the WAL file (fallocate and
    /// faulting its pages in, ~1 MiB at a time) happens before the caller takes a lock that
    /// `append` then runs under (the session state's write transaction), not inside it.
    pub fn reserve_ahead(&self) {
        self.shared.reserve_ahead();
    }

    /// Seal buffered rows into segment files now; returns the number of rows sealed.
    pub fn seal(&self) -> Result<usize> {
        self.shared.seal_now()
    }

    /// Seal, fsync and stop the background thread. Later appends fail; calling it again is a no-op.
    pub fn close(&self) -> Result<()> {
        self.stop_thread();
        let sealed = self.shared.seal_now().map(|_| ());
        // Release the worker id even if sealing failed: the WAL files stay for the next open.
        self.shared.lock.lock().take();
        sealed
    }

    /// Stop without sealing, as a killed process would (after its last write()): the WAL files
    /// stay for the next open to replay. For tests of the recovery path.
    #[doc(hidden)]
    pub fn abandon(&self) {
        self.stop_thread();
        let mut state = self.shared.state.lock();
        state.current = None;
        state.retired.clear();
        drop(state);
        self.shared.lock.lock().take();
    }

    /// Whether the background fsyncs and seals are working, and the last failure they met.
    pub fn background_status(&self) -> BackgroundStatus {
        self.shared.health.lock().status()
    }

    fn stop_thread(&self) {
        {
            let mut state = self.shared.state.lock();
            state.stop = true;
            state.closed = true;
        }
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        // A storage dropped without close (e.g. an exception path) still seals what it buffered.
        if self.shared.lock.lock().is_some() {
            let _ = self.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn a_worker_id_has_one_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Storage::open(config(dir.path(), 5)).expect("open");
        match Storage::open(config(dir.path(), 5)) {
            Err(CoreError::Storage(msg)) => assert!(msg.contains("in use"), "{msg}"),
            other => panic!("second open must fail, got ok={}", other.is_ok()),
        }
        let other_id = Storage::open(config(dir.path(), 6)).expect("another worker id");
        first.close().expect("close");
        let again = Storage::open(config(dir.path(), 5)).expect("free after close");
        again.close().expect("close");
        other_id.close().expect("close");
    }

    #[test]
    fn closed_storage_refuses_appends_and_drop_seals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.close().expect("close");
        storage.close().expect("second close is a no-op");
        assert!(matches!(
            storage.append(hit("s", DAY1)),
            Err(CoreError::Storage(_))
        ));
        drop(storage);

        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.append(hit("s", DAY1)).expect("append");
        drop(storage);
        assert_eq!(counts(dir.path())[&key("page_views", "s", "2023-11-15")], 1);
        assert!(wal_files(dir.path()).is_empty());
    }

    #[test]
    fn reserve_ahead_grows_the_file_before_an_append_needs_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.reserve_ahead(); // no WAL file yet: none is made for it
        assert!(wal_files(dir.path()).is_empty());
        let state = |s: &Storage| {
            let st = s.shared.state.lock();
            let wal = st.current.as_ref().expect("a current WAL");
            let reserved = wal.map.as_ref().expect("mapped").reserved();
            (wal.len, reserved, wal.file.metadata().expect("stat").len())
        };
        storage.append(hit("s", DAY1)).expect("append");
        let (_, first, on_disk) = state(&storage);
        assert_eq!(first, mapped::CHUNK);
        assert_eq!(on_disk, first);
        // Append until fewer than AHEAD bytes are left reserved, then reserve ahead.
        let mut n = 1;
        while state(&storage).1 - state(&storage).0 >= writer::AHEAD {
            storage.append(hit("s", DAY1)).expect("append");
            n += 1;
            assert!(n < 100_000, "records do not fill the reserved blocks");
        }
        assert_eq!(
            state(&storage).1,
            first,
            "appends alone reserve only when they must"
        );
        storage.reserve_ahead();
        let (len, reserved, on_disk) = state(&storage);
        assert_eq!(reserved, 2 * mapped::CHUNK);
        assert_eq!(on_disk, reserved);
        assert!(reserved >= len + writer::AHEAD);
        storage.reserve_ahead(); // enough reserved: nothing changes
        assert_eq!(state(&storage).1, reserved);
        storage.close().expect("close");
        assert_eq!(counts(dir.path())[&key("page_views", "s", "2023-11-15")], n);
    }
}
