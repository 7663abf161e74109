//! The append path and the background thread that fsyncs and seals.

use super::files::{next_generation, wal_path};
use super::health::Task;
use super::{Shared, State, Wal};
use crate::errors::{CoreError, Result};
use crate::rows::SiteRows;
use crate::segments::sync_dir;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far past its records `reserve_ahead` keeps a WAL file's blocks reserved: more than a
/// request's record, so an append rarely reserves under the caller's lock.
pub(super) const AHEAD: u64 = 64 << 10;

impl Shared {
    /// Append one framed record to the current WAL and its rows (`batch`, `rows` of them) to
    /// the generation; returns the file to fsync in strict mode.
    pub(super) fn write_locked(
        &self,
        record: &[u8],
        batch: Vec<SiteRows>,
        rows: usize,
    ) -> Result<Option<Arc<File>>> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(CoreError::Storage("storage is closed".into()));
        }
        let wal = self.current_wal(&mut state)?;
        let copied = wal
            .map
            .as_mut()
            .is_some_and(|m| m.append(&wal.file, wal.len, record));
        let written = if copied {
            Ok(())
        } else {
            // No blocks left to reserve (a full disk) or the mapped span used up: write() from
            // here on, which says why if it fails too.
            wal.map = None;
            wal.file.write_all_at(record, wal.len)
        };
        if let Err(e) = written {
            // Cut the partial record off so later records stay readable; if even that fails,
            // retire the file (its good prefix is still sealed) and start a new generation.
            if wal.file.set_len(wal.len).is_err() {
                wal.broken = true;
            }
            return Err(CoreError::Storage(format!("WAL write failed: {e}")));
        }
        wal.len += record.len() as u64;
        wal.rows.extend(batch);
        let file = Arc::clone(&wal.file);
        state.buffered_rows += rows;
        state.dirty = true;
        if state.buffered_rows >= self.config.seal_rows && !state.seal_requested {
            state.seal_requested = true;
            self.wake.notify_one();
        }
        Ok(self.config.strict.then_some(file))
    }

    /// Reserve the current WAL file's blocks `AHEAD` bytes past its records (see
    /// `Storage::reserve_ahead`); nothing when there is no mapped file yet.
    pub(super) fn reserve_ahead(&self) {
        let mut state = self.state.lock();
        let Some(wal) = state.current.as_mut().filter(|w| !w.broken) else {
            return;
        };
        let end = (wal.len + AHEAD).min(super::mapped::SPAN as u64);
        if let Some(map) = wal.map.as_mut().filter(|m| m.reserved() < end) {
            // A refusal is met again, and answered, by the append itself.
            let _ = map.reserve(&wal.file, end);
        }
    }

    /// The WAL to append to, opening a new generation when there is none (or it broke).
    fn current_wal<'a>(&self, state: &'a mut State) -> Result<&'a mut Wal> {
        if state.current.as_ref().is_some_and(|w| w.broken) {
            if let Some(broken) = state.current.take() {
                state.retired.push(broken);
            }
        }
        if state.current.is_none() {
            let gen = next_generation(state.last_gen);
            let path = wal_path(&self.wal_dir, self.config.worker_id, gen);
            // Written at offsets (the mapping's reserved tail is past the records' end).
            let file = OpenOptions::new()
                .create_new(true)
                .read(true)
                .write(true)
                .open(&path)?;
            let map = super::mapped::Mapped::new(&file);
            // In strict mode the new file's directory entry must be durable before the ack.
            let dir_synced = self.config.strict && sync_dir(&self.wal_dir).is_ok();
            state.last_gen = gen;
            state.current = Some(Wal {
                gen,
                file: Arc::new(file),
                len: 0,
                rows: Vec::new(),
                dir_synced,
                broken: false,
                map,
            });
        }
        state
            .current
            .as_mut()
            .ok_or_else(|| CoreError::Storage("no WAL".into()))
    }

    /// Background loop: fsync when due and dirty, seal when due and non-empty or requested,
    /// and once ingestion has paused (`idle_release_ms` after the last seal), give back the
    /// memory the seals freed.
    pub(super) fn run(&self) {
        let fsync_every = Duration::from_millis(self.config.fsync_interval_ms.max(1));
        let seal_every = Duration::from_millis(self.config.seal_interval_ms.max(1));
        let idle_after = Duration::from_millis(self.config.idle_release_ms);
        let mut next_fsync = Instant::now() + fsync_every;
        let mut next_seal = Instant::now() + seal_every;
        let mut release_at: Option<Instant> = None;
        loop {
            let (sync_due, seal_due, release_due) = {
                let mut state = self.state.lock();
                loop {
                    if state.stop {
                        return;
                    }
                    let now = Instant::now();
                    let has_rows = state.buffered_rows > 0 || state.retry_pending;
                    let sync_due = state.dirty && now >= next_fsync;
                    let seal_due = state.seal_requested || (has_rows && now >= next_seal);
                    if now >= next_fsync {
                        next_fsync = now + fsync_every;
                    }
                    if now >= next_seal {
                        next_seal = now + seal_every;
                    }
                    let release_due = !has_rows && release_at.is_some_and(|t| now >= t);
                    if sync_due || seal_due || release_due {
                        if release_due {
                            state.idle_releases += 1;
                        }
                        break (sync_due, seal_due, release_due);
                    }
                    let deadline = next_fsync.min(next_seal);
                    let deadline = release_at.map_or(deadline, |t| deadline.min(t));
                    self.wake.wait_until(&mut state, deadline);
                }
            };
            if sync_due {
                self.sync_current();
            }
            if seal_due {
                // The outcome is recorded in `health` by seal_now itself.
                let _ = self.seal_now();
                release_at = (!idle_after.is_zero()).then(|| Instant::now() + idle_after);
            }
            if release_due {
                // A seal builds and compresses a segment in tens of MB that this thread's heap
                // keeps; under load the next seal reuses them, so they go back only now.
                release_at = None;
                crate::release_memory();
            }
        }
    }

    /// How often the background thread gave memory back after ingestion paused.
    #[cfg(test)]
    pub(super) fn idle_releases(&self) -> u64 {
        self.state.lock().idle_releases
    }

    /// fdatasync the current WAL outside the lock (appends keep going meanwhile).
    fn sync_current(&self) {
        let target = {
            let mut state = self.state.lock();
            state.dirty = false;
            state
                .current
                .as_ref()
                .map(|w| (w.gen, Arc::clone(&w.file), w.dir_synced))
        };
        let Some((gen, file, dir_synced)) = target else {
            return;
        };
        let mut result = file.sync_data().map_err(CoreError::from);
        if result.is_ok() && !dir_synced {
            result = sync_dir(&self.wal_dir);
        }
        match result {
            Ok(()) => {
                let mut state = self.state.lock();
                if let Some(wal) = state.current.as_mut().filter(|w| w.gen == gen) {
                    wal.dir_synced = true;
                }
                drop(state);
                self.record(Task::Fsync, Ok(()));
            }
            Err(e) => {
                self.state.lock().dirty = true;
                self.record(Task::Fsync, Err(&e));
            }
        }
    }

    /// Note the outcome of a background task in `health`.
    pub(super) fn record(&self, task: Task, outcome: std::result::Result<(), &CoreError>) {
        let worker = self.config.worker_id;
        let mut health = self.health.lock();
        match outcome {
            Ok(()) => health.succeeded(worker, task),
            Err(CoreError::Storage(message)) => health.failed(worker, task, message, now_ms()),
            Err(e) => health.failed(worker, task, &e.to_string(), now_ms()),
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::super::files::wal_path;
    use super::super::testkit::*;
    use super::super::{Storage, StorageConfig};
    use std::fs;
    use std::path::Path;

    #[test]
    fn strict_mode_acknowledges_after_fsync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(StorageConfig {
            strict: true,
            ..config(dir.path(), 0)
        })
        .expect("open");
        storage.append(hit("s", DAY1)).expect("append");
        {
            let state = storage.shared.state.lock();
            let wal = state.current.as_ref().expect("current");
            assert!(
                wal.dir_synced,
                "a new WAL's directory entry is synced in strict mode"
            );
            let on_disk =
                std::fs::read(wal_path(&dir.path().join("wal"), 0, wal.gen)).expect("read");
            let records = super::super::frame::encode_record(&wal.rows).expect("encode");
            assert_eq!(on_disk[..wal.len as usize], records[..], "the one record");
            assert!(
                on_disk[wal.len as usize..].iter().all(|b| *b == 0),
                "a zero tail"
            );
        }
        storage.abandon();
        let storage = Storage::open(config(dir.path(), 0)).expect("reopen");
        assert_eq!(counts(dir.path())[&key("page_views", "s", "2023-11-15")], 1);
        storage.close().expect("close");
    }

    #[test]
    fn appends_by_copy_and_by_write_replay_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        let len = |s: &Storage| s.shared.state.lock().current.as_ref().map_or(0, |w| w.len);
        // Past the first reserved chunk, by copies into the mapping.
        let mut appended = 0;
        while len(&storage) < super::super::mapped::CHUNK + 1_000 {
            storage.append(hit("s", DAY1 + appended)).expect("append");
            appended += 1;
        }
        {
            let state = storage.shared.state.lock();
            let wal = state.current.as_ref().expect("current");
            assert!(wal.map.is_some(), "appended through the mapping");
            let size = wal.file.metadata().expect("meta").len();
            assert_eq!(size, 2 * super::super::mapped::CHUNK, "two chunks reserved");
        }
        // As after a failed reservation: the rest by write(), into the reserved zeros.
        storage
            .shared
            .state
            .lock()
            .current
            .as_mut()
            .expect("current")
            .map = None;
        for _ in 0..10 {
            storage.append(hit("s", DAY1 + appended)).expect("append");
            appended += 1;
        }
        storage.abandon(); // as kill -9 would leave it: records, then zeros
        let storage = Storage::open(config(dir.path(), 0)).expect("reopen");
        let c = counts(dir.path());
        assert_eq!(c[&key("page_views", "s", "2023-11-15")], appended as usize);
        assert!(
            wal_files(dir.path()).is_empty(),
            "replayed cleanly, not set aside"
        );
        storage.close().expect("close");
    }

    #[test]
    fn records_of_every_size_from_one_thread_replay_exactly() {
        // The encoding buffer is kept between appends of a thread, and dropped after a batch
        // past KEPT_RECORD_BYTES: small, big, small again.
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.append(hit("s", DAY1)).expect("append");
        let big: Vec<_> = (0..1_000).flat_map(|i| hit("s", DAY1 + i)).collect();
        let big_rows: usize = big.iter().map(|s| s.rows.len()).sum();
        storage.append(big).expect("append");
        let size = storage
            .shared
            .state
            .lock()
            .current
            .as_ref()
            .map_or(0, |w| w.len);
        assert!(size > 2 * super::super::KEPT_RECORD_BYTES as u64, "{size}");
        storage.append(hit("s", DAY1)).expect("append");
        storage.abandon();
        let storage = Storage::open(config(dir.path(), 0)).expect("reopen");
        let c = counts(dir.path());
        let rows: usize = c.values().sum();
        assert_eq!(rows, big_rows + 2 * 3);
        assert_eq!(c[&key("page_views", "s", "2023-11-15")], 1_000 + 2);
        storage.close().expect("close");
    }

    #[test]
    fn background_thread_seals_on_interval_and_on_row_count() {
        let cases = [
            (
                "interval",
                StorageConfig {
                    seal_interval_ms: 50,
                    ..config(Path::new("."), 0)
                },
            ),
            (
                "row count",
                StorageConfig {
                    seal_rows: 5,
                    ..config(Path::new("."), 0)
                },
            ),
        ];
        for (name, cfg) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let storage = Storage::open(StorageConfig {
                data_dir: dir.path().to_path_buf(),
                ..cfg
            })
            .expect("open");
            storage.append(hit("s", DAY1)).expect("append");
            storage.append(hit("s", DAY1)).expect("append");
            let sealed = wait_for(|| {
                counts(dir.path()).get(&key("page_views", "s", "2023-11-15")) == Some(&2)
                    && wal_files(dir.path()).is_empty()
            });
            assert!(sealed, "{name}: rows sealed by the background thread");
            assert_eq!(storage.background_status().errors, 0, "{name}");
            storage.close().expect("close");
        }
    }

    #[test]
    fn memory_is_given_back_once_ingestion_pauses() {
        use std::time::Duration;
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(StorageConfig {
            seal_interval_ms: 20,
            idle_release_ms: 300,
            ..config(dir.path(), 0)
        })
        .expect("open");
        let shared = &storage.shared;
        let pause = Duration::from_millis(500);
        std::thread::sleep(pause);
        assert_eq!(
            shared.idle_releases(),
            0,
            "nothing sealed: nothing to give back"
        );
        // Rows every 10 ms for 900 ms: seals, but never a pause long enough.
        for _ in 0..90 {
            storage.append(hit("s", DAY1)).expect("append");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            shared.idle_releases(),
            0,
            "no release while rows keep coming"
        );
        assert!(
            wait_for(|| shared.idle_releases() == 1),
            "released after the pause"
        );
        std::thread::sleep(pause);
        assert_eq!(shared.idle_releases(), 1, "once per pause");
        storage.append(hit("s", DAY1)).expect("append");
        assert!(
            wait_for(|| shared.idle_releases() == 2),
            "and again after the next one"
        );
        storage.close().expect("close");
    }

    #[test]
    fn background_thread_fsyncs_dirty_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(StorageConfig {
            fsync_interval_ms: 10,
            ..config(dir.path(), 0)
        })
        .expect("open");
        storage.append(hit("s", DAY1)).expect("append");
        let synced = wait_for(|| {
            let state = storage.shared.state.lock();
            !state.dirty && state.current.as_ref().is_some_and(|w| w.dir_synced)
        });
        assert!(synced);
        storage.close().expect("close");
    }

    #[test]
    fn a_failing_background_seal_is_reported_until_it_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(StorageConfig {
            seal_interval_ms: 20,
            ..config(dir.path(), 0)
        })
        .expect("open");
        // A file where the page_views directory should be: every seal of a page view fails.
        let blocker = dir.path().join("segments/page_views");
        fs::write(&blocker, b"").expect("blocker");
        storage.append(hit("s", DAY1)).expect("append");
        assert!(wait_for(|| storage.background_status().error.is_some()));
        let status = storage.background_status();
        let error = status.error.expect("error");
        assert!(error.starts_with("segment seal failed: "), "{error}");
        assert_eq!(status.last_error.as_deref(), Some(error.as_str()));
        assert!(status.last_error_at_ms.is_some_and(|t| t > 0));
        assert!(status.errors >= 1);

        fs::remove_file(&blocker).expect("unblock");
        assert!(wait_for(|| storage.background_status().error.is_none()));
        assert_eq!(counts(dir.path())[&key("page_views", "s", "2023-11-15")], 1);
        let status = storage.background_status();
        assert_eq!(status.last_error.as_deref(), Some(error.as_str()));
        storage.close().expect("close");
    }

    #[test]
    fn a_failing_background_fsync_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Long enough that the first fsync comes after the directory is gone.
        let storage = Storage::open(StorageConfig {
            fsync_interval_ms: 300,
            ..config(dir.path(), 0)
        })
        .expect("open");
        // The WAL directory vanishes under a new WAL file: the file still takes writes, but
        // making its directory entry durable fails, as it would on a broken disk.
        storage.append(hit("s", DAY1)).expect("append");
        fs::remove_dir_all(dir.path().join("wal")).expect("remove wal dir");
        assert!(wait_for(|| storage.background_status().error.is_some()));
        let status = storage.background_status();
        let error = status.error.expect("error");
        assert!(error.starts_with("WAL fsync failed: "), "{error}");
        storage.abandon();
    }
}
