//! The per-worker write-ahead log and the storage front (ARCHITECTURE.md "Durability contract").
//! OWNER: helper "storage".
//!
//! `append` writes the rows to `wal/worker-<id>-<generation>.wal` with one write() before it
//! returns (a killed process loses nothing acknowledged); a background thread fsyncs at least every
//! `fsync_interval_ms` and seals buffered rows into segments every `seal_interval_ms` or
//! `seal_rows` rows. On open, WAL files left by this worker id are replayed into segments.
//!
//! Record framing: `[u32 len LE][u32 crc32 LE][bincode(Vec<SiteRows>)]`. The in-memory buffer of
//! a generation is a copy of exactly the bytes written to its WAL file, so sealing and replay run
//! the same decoder and the hot path never clones rows.
//!
//! A generation is one WAL file and the rows in it. Sealing swaps the current generation out under
//! the lock (the next append opens a new one), writes its segments
//! `w<worker>-g<gen>-<n>.arrow` outside the lock, then deletes the WAL file. Rewriting a generation
//! (replay, retry after a failed seal) first deletes its `w<worker>-g<gen>-*` segments, so a crash
//! between "segments written" and "WAL deleted" never duplicates rows.
//!
//! Generations are nanoseconds since the epoch, forced above every generation seen before, so
//! they keep increasing across restarts.

use crate::errors::{CoreError, Result};
use crate::rows::{Row, SiteRows, Table};
use crate::segments::{create_dir_durable, sync_dir, write_segment};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HEADER: usize = 8;
/// A record longer than this is treated as garbage (a torn length field), not allocated.
const MAX_RECORD: usize = 1 << 30;
const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub worker_id: u32,
    pub fsync_interval_ms: u64,
    /// fsync before `append` returns.
    pub strict: bool,
    pub seal_interval_ms: u64,
    pub seal_rows: usize,
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
    last_error: Option<String>,
}

struct Wal {
    gen: u64,
    file: Arc<File>,
    /// Bytes durably framed in the file; a failed write is truncated back to this.
    len: u64,
    /// Copy of the file's records: what the seal decodes.
    records: Vec<u8>,
    dir_synced: bool,
    broken: bool,
}

/// One generation's records waiting to become segments.
struct Generation {
    gen: u64,
    records: Vec<u8>,
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
        let lock = lock_worker(&wal_dir, config.worker_id)?;
        let shared = Arc::new(Shared {
            config,
            wal_dir,
            seg_dir,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            sealer: Mutex::new(Vec::new()),
            lock: Mutex::new(Some(lock)),
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

    /// Durably log and buffer the rows of one or more sites. One write() per call.
    pub fn append(&self, batch: &[SiteRows]) -> Result<()> {
        let rows: usize = batch.iter().map(|s| s.rows.len()).sum();
        if rows == 0 {
            return Ok(());
        }
        for site in batch {
            check_site(&site.site)?;
        }
        let record = encode_record(batch)?;
        let to_sync = self.shared.write_locked(&record, rows)?;
        // The strict fsync runs outside the lock so concurrent appends can queue their writes;
        // if a seal deleted the file meanwhile, its rows are already durable in segments.
        if let Some(file) = to_sync {
            file.sync_data()?;
        }
        Ok(())
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

    /// The last error the background thread met (fsync or seal), if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared.state.lock().last_error.clone()
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

impl Shared {
    /// Append one framed record to the current WAL and the buffer; returns the file to fsync in
    /// strict mode.
    fn write_locked(&self, record: &[u8], rows: usize) -> Result<Option<Arc<File>>> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(CoreError::Storage("storage is closed".into()));
        }
        let wal = self.current_wal(&mut state)?;
        let written = (&*wal.file).write_all(record);
        if let Err(e) = written {
            // Cut the partial record off so later records stay readable; if even that fails,
            // retire the file (its good prefix is still sealed) and start a new generation.
            if wal.file.set_len(wal.len).is_err() {
                wal.broken = true;
            }
            return Err(CoreError::Storage(format!("WAL write failed: {e}")));
        }
        wal.len += record.len() as u64;
        wal.records.extend_from_slice(record);
        let file = Arc::clone(&wal.file);
        state.buffered_rows += rows;
        state.dirty = true;
        if state.buffered_rows >= self.config.seal_rows && !state.seal_requested {
            state.seal_requested = true;
            self.wake.notify_one();
        }
        Ok(self.config.strict.then_some(file))
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
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            // In strict mode the new file's directory entry must be durable before the ack.
            let dir_synced = self.config.strict && sync_dir(&self.wal_dir).is_ok();
            state.last_gen = gen;
            state.current = Some(Wal {
                gen,
                file: Arc::new(file),
                len: 0,
                records: Vec::new(),
                dir_synced,
                broken: false,
            });
        }
        state
            .current
            .as_mut()
            .ok_or_else(|| CoreError::Storage("no WAL".into()))
    }

    /// Background loop: fsync when due and dirty, seal when due and non-empty or requested.
    fn run(&self) {
        let fsync_every = Duration::from_millis(self.config.fsync_interval_ms.max(1));
        let seal_every = Duration::from_millis(self.config.seal_interval_ms.max(1));
        let mut next_fsync = Instant::now() + fsync_every;
        let mut next_seal = Instant::now() + seal_every;
        loop {
            let (sync_due, seal_due) = {
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
                    if sync_due || seal_due {
                        break (sync_due, seal_due);
                    }
                    let deadline = next_fsync.min(next_seal);
                    self.wake.wait_until(&mut state, deadline);
                }
            };
            if sync_due {
                self.sync_current();
            }
            if seal_due {
                if let Err(e) = self.seal_now() {
                    self.state.lock().last_error = Some(e.to_string());
                }
            }
        }
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
        let mut state = self.state.lock();
        match result {
            Ok(()) => {
                if let Some(wal) = state.current.as_mut().filter(|w| w.gen == gen) {
                    wal.dir_synced = true;
                }
            }
            Err(e) => {
                state.dirty = true;
                state.last_error = Some(e.to_string());
            }
        }
    }

    /// Swap out the buffered generations and write them (and earlier failed ones) as segments.
    fn seal_now(&self) -> Result<usize> {
        let mut failed = self.sealer.lock();
        let mut todo: Vec<Generation> = std::mem::take(&mut *failed);
        {
            let mut state = self.state.lock();
            state.seal_requested = false;
            state.retry_pending = false;
            state.buffered_rows = 0;
            let mut swapped = std::mem::take(&mut state.retired);
            swapped.extend(state.current.take());
            todo.extend(swapped.into_iter().map(|w| Generation {
                gen: w.gen,
                records: w.records,
                rewrite: false,
                file: Some(w.file),
            }));
        }
        let mut sealed = 0;
        let mut first_error = None;
        for mut generation in todo {
            let (batches, _) = decode_records(&generation.records);
            match self.seal_generation(generation.gen, &batches, generation.rewrite) {
                Ok(rows) => {
                    sealed += rows;
                    // If this fails the rows are sealed anyway; the next open rewrites them once.
                    let path = wal_path(&self.wal_dir, self.config.worker_id, generation.gen);
                    if let Err(e) = remove_if_exists(&path) {
                        first_error.get_or_insert(e);
                    }
                }
                Err(e) => {
                    // The WAL stays the durable copy until a retry succeeds: make sure it is one.
                    if let Some(file) = generation.file.take() {
                        let _ = file.sync_data();
                    }
                    generation.rewrite = true;
                    failed.push(generation);
                    first_error.get_or_insert(e);
                }
            }
        }
        if !failed.is_empty() {
            self.state.lock().retry_pending = true;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sealed),
        }
    }

    /// Write one generation's rows as segment files grouped by table, site and UTC day.
    /// With `rewrite`, segments an earlier attempt left for this generation are deleted first.
    fn seal_generation(&self, gen: u64, batches: &[SiteRows], rewrite: bool) -> Result<usize> {
        let groups = group_rows(batches);
        let prefix = segment_prefix(self.config.worker_id, gen);
        if rewrite {
            let dirs: BTreeSet<PathBuf> = groups.keys().map(|k| self.group_dir(k)).collect();
            for dir in dirs {
                remove_with_prefix(&dir, &prefix)?;
            }
        }
        let mut rows = 0;
        for (n, (key, group)) in groups.iter().enumerate() {
            let path = self.group_dir(key).join(format!("{prefix}{n}.arrow"));
            write_segment(&path, key.table, group)?;
            rows += group.len();
        }
        Ok(rows)
    }

    fn group_dir(&self, key: &GroupKey) -> PathBuf {
        self.seg_dir
            .join(key.table.dir_name())
            .join(format!("site={}", safe_site(key.site)))
            .join(format!("day={}", day_string(key.day)))
    }

    /// Seal every WAL file this worker id left behind (oldest first), then delete it.
    fn replay(&self) -> Result<()> {
        let files = list_wal_files(&self.wal_dir, self.config.worker_id)?;
        let mut state = self.state.lock();
        state.last_gen = files.iter().map(|(gen, _)| *gen).max().unwrap_or(0);
        drop(state);
        for (gen, path) in files {
            let bytes = fs::read(&path)?;
            let (batches, tail) = decode_records(&bytes);
            self.seal_generation(gen, &batches, true)?;
            if tail == Tail::Corrupt {
                // Records after a damaged one may still be readable by hand: keep them aside.
                fs::rename(&path, path.with_extension("wal.corrupt"))?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey<'a> {
    table: Table,
    site: &'a str,
    day: i64,
}

fn group_rows(batches: &[SiteRows]) -> BTreeMap<GroupKey<'_>, Vec<&Row>> {
    let mut groups: BTreeMap<GroupKey<'_>, Vec<&Row>> = BTreeMap::new();
    for batch in batches {
        for row in &batch.rows {
            let key = GroupKey {
                table: row.table(),
                site: &batch.site,
                day: row.time().div_euclid(DAY_MS),
            };
            groups.entry(key).or_default().push(row);
        }
    }
    groups
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01, UTC).
fn day_string(day: i64) -> String {
    // Out-of-range times cannot come from the pipeline (it stamps server time); file them under
    // the epoch rather than lose them.
    let date = day
        .checked_mul(86_400)
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_default();
    date.format("%Y-%m-%d").to_string()
}

/// Site ids become directory names, so only a plain token is accepted.
fn check_site(site: &str) -> Result<()> {
    let ok = !site.is_empty()
        && site.len() <= 128
        && !site.starts_with('.')
        && site
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "site",
            "must be a plain id (letters, digits, '-', '_', '.')",
        ))
    }
}

/// Defence in depth for replayed WAL files: never let a site escape its directory.
fn safe_site(site: &str) -> String {
    if check_site(site).is_ok() {
        return site.to_string();
    }
    let cleaned: String = site
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

fn encode_record(batch: &[SiteRows]) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; HEADER];
    bincode::serialize_into(&mut buf, batch).map_err(CoreError::storage)?;
    let len = buf.len() - HEADER;
    let len32 = u32::try_from(len)
        .ok()
        .filter(|l| (*l as usize) <= MAX_RECORD);
    let Some(len32) = len32 else {
        return Err(CoreError::Storage(format!(
            "batch of {len} bytes is too large for the WAL"
        )));
    };
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[0..4].copy_from_slice(&len32.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    /// Every byte belongs to a good record.
    Clean,
    /// The last record is short or fails its CRC: a write cut by a crash, never acknowledged.
    Torn,
    /// A bad record is followed by more bytes: damage, not a torn write.
    Corrupt,
}

/// Length of the prefix of whole, CRC-valid records, and what follows it.
fn valid_prefix(buf: &[u8]) -> (usize, Tail) {
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < HEADER {
            return (pos, Tail::Torn);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > MAX_RECORD || rest.len() < HEADER + len {
            return (pos, Tail::Torn);
        }
        let end = HEADER + len;
        if crc32fast::hash(&rest[HEADER..end]) != crc {
            let tail = if end == rest.len() {
                Tail::Torn
            } else {
                Tail::Corrupt
            };
            return (pos, tail);
        }
        pos += end;
    }
    (pos, Tail::Clean)
}

/// Decode the records of a buffer; stops at the first bad one.
fn decode_records(buf: &[u8]) -> (Vec<SiteRows>, Tail) {
    let (valid, tail) = valid_prefix(buf);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < valid {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        let payload = &buf[pos + HEADER..pos + HEADER + len];
        match bincode::deserialize::<Vec<SiteRows>>(payload) {
            Ok(batch) => out.extend(batch),
            // A CRC-valid record that does not decode was written by an incompatible build.
            Err(_) => return (out, Tail::Corrupt),
        }
        pos += HEADER + len;
    }
    (out, tail)
}

fn next_generation(last: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    u64::try_from(now)
        .unwrap_or(u64::MAX)
        .max(last.saturating_add(1))
}

fn wal_path(dir: &Path, worker: u32, gen: u64) -> PathBuf {
    dir.join(format!("worker-{worker}-{gen}.wal"))
}

fn segment_prefix(worker: u32, gen: u64) -> String {
    format!("w{worker}-g{gen}-")
}

/// This worker's WAL files, oldest generation first.
fn list_wal_files(dir: &Path, worker: u32) -> Result<Vec<(u64, PathBuf)>> {
    let prefix = format!("worker-{worker}-");
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let gen = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(gen) = gen {
            files.push((gen, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Delete segment files (and their temp files) of one generation in one directory.
fn remove_with_prefix(dir: &Path, prefix: &str) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let tmp_prefix = format!(".{prefix}");
    let mut removed = false;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) || name.starts_with(&tmp_prefix) {
            fs::remove_file(entry.path())?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Take the exclusive, non-blocking flock that makes a worker id single-owner.
fn lock_worker(wal_dir: &Path, worker: u32) -> Result<File> {
    let path = wal_dir.join(format!("worker-{worker}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    // SAFETY: flock on a descriptor we own; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(CoreError::Storage(format!(
            "worker id {worker} is in use by another process ({}): {e}",
            path.display()
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{Dims, EventRow, PageViewRow, SessionRow};
    use arrow_ipc::reader::FileReader;

    const DAY1: i64 = 1_700_006_400_000; // 2023-11-15T00:00:00Z
    type Counts = BTreeMap<(String, String, String), usize>;

    fn config(dir: &Path, worker_id: u32) -> StorageConfig {
        StorageConfig {
            data_dir: dir.to_path_buf(),
            worker_id,
            fsync_interval_ms: 50,
            strict: false,
            // Long enough that only the tests' own seal() calls seal.
            seal_interval_ms: 3_600_000,
            seal_rows: 1_000_000,
        }
    }

    fn dims() -> Dims {
        Dims {
            hostname: "example.com".into(),
            language: "en".into(),
            country_code: "DE".into(),
            os: "Linux".into(),
            browser: "Firefox".into(),
            browser_version: "128.0".into(),
            desktop: true,
            screen_class: "XL".into(),
            channel: "Direct".into(),
            ..Dims::default()
        }
    }

    fn page_view(time: i64) -> Row {
        Row::PageView(PageViewRow {
            visitor_id: 42,
            session_id: 7,
            time,
            path: "/pricing".into(),
            title: "Pricing".into(),
            dims: dims(),
            ..PageViewRow::default()
        })
    }

    fn session(time: i64, sign: i8) -> Row {
        Row::Session(SessionRow {
            sign,
            version: 1,
            visitor_id: 42,
            session_id: 7,
            time,
            start: time,
            page_views: 1,
            entry_path: "/pricing".into(),
            exit_path: "/pricing".into(),
            dims: dims(),
            ..SessionRow::default()
        })
    }

    fn event(time: i64) -> Row {
        Row::Event(EventRow {
            time,
            event_name: "signup".into(),
            dims: dims(),
            ..EventRow::default()
        })
    }

    /// A typical hit: the previous session state cancelled, the new state, the page view.
    fn hit(site: &str, time: i64) -> Vec<SiteRows> {
        let rows = vec![session(time, -1), session(time, 1), page_view(time)];
        vec![SiteRows {
            site: site.into(),
            rows,
        }]
    }

    /// Rows per (table, site, day) over every sealed segment file, read back with arrow-ipc.
    fn counts(data_dir: &Path) -> Counts {
        let mut out = Counts::new();
        let seg = data_dir.join("segments");
        for table in fs::read_dir(&seg).into_iter().flatten().flatten() {
            for site in fs::read_dir(table.path()).into_iter().flatten().flatten() {
                for day in fs::read_dir(site.path()).into_iter().flatten().flatten() {
                    for file in fs::read_dir(day.path()).into_iter().flatten().flatten() {
                        let name = file.file_name().to_string_lossy().to_string();
                        if name.starts_with('.') {
                            continue; // a temp file being written, as a `*.arrow` glob skips it
                        }
                        assert!(name.ends_with(".arrow"), "stray file {name}");
                        let reader =
                            FileReader::try_new(File::open(file.path()).expect("open"), None)
                                .expect("reader");
                        let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
                        let key = (
                            table.file_name().to_string_lossy().to_string(),
                            site.file_name().to_string_lossy().to_string(),
                            day.file_name().to_string_lossy().to_string(),
                        );
                        *out.entry(key).or_default() += rows;
                    }
                }
            }
        }
        out
    }

    fn key(table: &str, site: &str, day: &str) -> (String, String, String) {
        (table.into(), format!("site={site}"), format!("day={day}"))
    }

    fn wal_files(data_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(data_dir.join("wal"))
            .expect("wal dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .filter(|n| n.contains(".wal"))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn seal_writes_rows_per_table_site_and_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage
            .append(&hit("site-a", DAY1 + 1_000))
            .expect("append");
        storage
            .append(&hit("site-a", DAY1 + 2_000))
            .expect("append");
        let mixed = vec![
            SiteRows {
                site: "site-b".into(),
                rows: vec![event(DAY1 + 5), page_view(DAY1 + 6)],
            },
            SiteRows {
                site: "site-a".into(),
                rows: vec![event(DAY1 + 7)],
            },
        ];
        storage.append(&mixed).expect("append");
        assert_eq!(storage.seal().expect("seal"), 9);
        assert_eq!(storage.seal().expect("seal"), 0, "nothing left to seal");

        let expected: Counts = [
            (key("sessions", "site-a", "2023-11-15"), 4),
            (key("page_views", "site-a", "2023-11-15"), 2),
            (key("events", "site-a", "2023-11-15"), 1),
            (key("events", "site-b", "2023-11-15"), 1),
            (key("page_views", "site-b", "2023-11-15"), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts(dir.path()), expected);
        assert!(
            wal_files(dir.path()).is_empty(),
            "sealed WAL deleted: {:?}",
            wal_files(dir.path())
        );
        storage.close().expect("close");
    }

    #[test]
    fn rows_across_midnight_land_in_two_days() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        let rows = vec![page_view(DAY1 - 1), page_view(DAY1), page_view(DAY1 + 1)];
        storage
            .append(&[SiteRows {
                site: "s".into(),
                rows,
            }])
            .expect("append");
        storage.close().expect("close");
        let expected: Counts = [
            (key("page_views", "s", "2023-11-14"), 1),
            (key("page_views", "s", "2023-11-15"), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts(dir.path()), expected);
    }

    #[test]
    fn day_strings_cover_negative_and_far_times() {
        let cases = [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (19_676, "2023-11-15"),
            (i64::MAX, "1970-01-01"),
        ];
        for (day, want) in cases {
            assert_eq!(day_string(day), want, "day {day}");
        }
    }

    #[test]
    fn crash_replay_recovers_every_row_exactly_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 3)).expect("open");
        for i in 0..10 {
            storage.append(&hit("s", DAY1 + i)).expect("append");
        }
        storage.seal().expect("seal");
        for i in 0..5 {
            storage.append(&hit("s", DAY1 + 100 + i)).expect("append");
        }
        storage.abandon();
        assert_eq!(
            wal_files(dir.path()).len(),
            1,
            "unsealed generation left on disk"
        );

        let storage = Storage::open(config(dir.path(), 3)).expect("reopen");
        assert!(wal_files(dir.path()).is_empty(), "replayed WAL deleted");
        let c = counts(dir.path());
        assert_eq!(c[&key("sessions", "s", "2023-11-15")], 30);
        assert_eq!(c[&key("page_views", "s", "2023-11-15")], 15);
        storage.close().expect("close");
    }

    #[test]
    fn torn_tail_is_ignored() {
        // (name, bytes appended after two good records given a good record, .corrupt expected)
        type MakeTail = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        let cases: [(&str, MakeTail, bool); 4] = [
            ("short header", Box::new(|_| vec![1, 2, 3]), false),
            (
                "short payload",
                Box::new(|rec| rec[..rec.len() - 1].to_vec()),
                false,
            ),
            (
                "bad crc at the end",
                Box::new(|rec| {
                    let mut r = rec.to_vec();
                    r[4] ^= 0xff;
                    r
                }),
                false,
            ),
            (
                "bad crc in the middle",
                Box::new(|rec| {
                    let mut r = rec.to_vec();
                    r[4] ^= 0xff;
                    r.extend_from_slice(rec);
                    r
                }),
                true,
            ),
        ];
        for (name, tail, corrupt) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let storage = Storage::open(config(dir.path(), 1)).expect("open");
            storage.append(&hit("s", DAY1)).expect("append");
            storage.append(&hit("s", DAY1)).expect("append");
            storage.abandon();
            let wal = dir.path().join("wal").join(&wal_files(dir.path())[0]);
            let record = encode_record(&hit("s", DAY1)).expect("encode");
            let mut file = OpenOptions::new().append(true).open(&wal).expect("wal");
            file.write_all(&tail(&record)).expect("write tail");

            let storage = Storage::open(config(dir.path(), 1)).expect("reopen");
            let c = counts(dir.path());
            assert_eq!(c[&key("page_views", "s", "2023-11-15")], 2, "{name}");
            let left = wal_files(dir.path());
            assert_eq!(left.len(), usize::from(corrupt), "{name}: {left:?}");
            if corrupt {
                assert!(left[0].ends_with(".wal.corrupt"), "{name}");
            }
            storage.close().expect("close");
        }
    }

    #[test]
    fn replay_does_not_duplicate_segments_already_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 2)).expect("open");
        storage.append(&hit("s", DAY1)).expect("append");
        storage.append(&hit("s", DAY1 - 5)).expect("append");
        // Crash after the generation's segments were written but before its WAL was deleted.
        {
            let state = storage.shared.state.lock();
            let wal = state.current.as_ref().expect("current");
            let (batches, _) = decode_records(&wal.records);
            storage
                .shared
                .seal_generation(wal.gen, &batches, false)
                .expect("segments");
        }
        let before = counts(dir.path());
        assert_eq!(before[&key("page_views", "s", "2023-11-15")], 1);
        storage.abandon();

        let storage = Storage::open(config(dir.path(), 2)).expect("reopen");
        assert_eq!(
            counts(dir.path()),
            before,
            "replay rewrote the generation, not added to it"
        );
        storage.close().expect("close");
    }

    #[test]
    fn a_failed_seal_is_retried_without_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.append(&hit("s", DAY1)).expect("append");
        // A file where the page_views directory should be: sessions seal, page views fail.
        let blocker = dir.path().join("segments/page_views");
        fs::write(&blocker, b"").expect("blocker");
        assert!(storage.seal().is_err());
        assert_eq!(counts(dir.path())[&key("sessions", "s", "2023-11-15")], 2);
        assert_eq!(
            wal_files(dir.path()).len(),
            1,
            "the WAL stays until the seal succeeds"
        );

        fs::remove_file(&blocker).expect("unblock");
        storage.append(&hit("s", DAY1)).expect("append");
        assert_eq!(storage.seal().expect("retry"), 6);
        let c = counts(dir.path());
        assert_eq!(c[&key("sessions", "s", "2023-11-15")], 4);
        assert_eq!(c[&key("page_views", "s", "2023-11-15")], 2);
        assert!(wal_files(dir.path()).is_empty());
        storage.close().expect("close");
    }

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
    fn strict_mode_acknowledges_after_fsync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(StorageConfig {
            strict: true,
            ..config(dir.path(), 0)
        })
        .expect("open");
        storage.append(&hit("s", DAY1)).expect("append");
        {
            let state = storage.shared.state.lock();
            let wal = state.current.as_ref().expect("current");
            assert!(
                wal.dir_synced,
                "a new WAL's directory entry is synced in strict mode"
            );
            assert_eq!(wal.file.metadata().expect("meta").len(), wal.len);
        }
        storage.abandon();
        let storage = Storage::open(config(dir.path(), 0)).expect("reopen");
        assert_eq!(counts(dir.path())[&key("page_views", "s", "2023-11-15")], 1);
        storage.close().expect("close");
    }

    fn wait_for(mut done: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
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
            storage.append(&hit("s", DAY1)).expect("append");
            storage.append(&hit("s", DAY1)).expect("append");
            let sealed = wait_for(|| {
                counts(dir.path()).get(&key("page_views", "s", "2023-11-15")) == Some(&2)
                    && wal_files(dir.path()).is_empty()
            });
            assert!(sealed, "{name}: rows sealed by the background thread");
            assert!(storage.last_error().is_none(), "{name}");
            storage.close().expect("close");
        }
    }

    #[test]
    fn background_thread_fsyncs_dirty_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(StorageConfig {
            fsync_interval_ms: 10,
            ..config(dir.path(), 0)
        })
        .expect("open");
        storage.append(&hit("s", DAY1)).expect("append");
        let synced = wait_for(|| {
            let state = storage.shared.state.lock();
            !state.dirty && state.current.as_ref().is_some_and(|w| w.dir_synced)
        });
        assert!(synced);
        storage.close().expect("close");
    }

    #[test]
    fn generations_increase_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gen_of = |storage: &Storage| {
            storage
                .shared
                .state
                .lock()
                .current
                .as_ref()
                .map(|w| w.gen)
                .expect("gen")
        };
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.append(&hit("s", DAY1)).expect("append");
        let first = gen_of(&storage);
        storage.abandon();
        // A WAL from "the future" (clock stepped back): the next generation must still be newer.
        let future = first + 1_000_000_000_000;
        fs::rename(
            wal_path(&dir.path().join("wal"), 0, first),
            wal_path(&dir.path().join("wal"), 0, future),
        )
        .expect("rename");
        let storage = Storage::open(config(dir.path(), 0)).expect("reopen");
        storage.append(&hit("s", DAY1)).expect("append");
        assert!(gen_of(&storage) > future);
        storage.close().expect("close");
    }

    #[test]
    fn closed_storage_refuses_appends_and_drop_seals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.close().expect("close");
        storage.close().expect("second close is a no-op");
        assert!(matches!(
            storage.append(&hit("s", DAY1)),
            Err(CoreError::Storage(_))
        ));
        drop(storage);

        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.append(&hit("s", DAY1)).expect("append");
        drop(storage);
        assert_eq!(counts(dir.path())[&key("page_views", "s", "2023-11-15")], 1);
        assert!(wal_files(dir.path()).is_empty());
    }

    #[test]
    fn bad_site_ids_are_rejected_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        for site in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            let result = storage.append(&hit(site, DAY1));
            assert!(matches!(result, Err(CoreError::Invalid { .. })), "{site:?}");
        }
        assert!(wal_files(dir.path()).is_empty());
        storage.close().expect("close");
    }
}
