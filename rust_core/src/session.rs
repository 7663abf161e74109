//! The session state machine in LMDB (reference section 2).
//!
//! State lives in the `state/` env (heed), shared by every worker process: one write transaction
//! per request (a hit or a whole batch), so two workers can never fork one session. The state is
//! soft (NO_SYNC): the WAL is the durable record, a lost session only splits a visit in two.
//! The daily salts that key visitor ids are not soft: they live in their own synced env
//! (salts.rs).
//!
//! Keys: `sessions`: site id + visitor_id (big endian) -> the session's current state row.
//!
//! With `session_store = "redis"` the same machine keeps sessions, salts and rate-limit windows
//! in a Redis server shared by several nodes (redis_store.rs); `StateStore` is chosen at open and
//! `SessionTxn` hands each read and write to the backend it began on.

use crate::counters::{self, Counters};
use crate::drops::DropReason;
use crate::errors::Result;
use crate::fingerprint::{day_key, visitor_id};
use crate::hit::HitKind;
use crate::ratelimit::RateCount;
use crate::redis_store::{RedisStore, RedisTxn};
use crate::rows::{Dims, EventRow, PageViewRow, RequestRow, Row, SessionRow};
use crate::salts::{Legacy, Salt, Salts};
use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, RwTxn, WithoutTls};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
/// A session ends 30 minutes after its last hit.
pub const SESSION_TIMEOUT_MS: i64 = 30 * MINUTE_MS;
const EXTENDED_CAP: u32 = 65_534;

/// Everything the state machine needs to know about an accepted hit.
#[derive(Clone, Debug, Default)]
pub struct SessionHit {
    pub kind: Option<HitKind>,
    pub time: i64,
    pub user_agent: String,
    pub ip: String,
    /// Empty for keep-alives without a URL: the exit path is then left as it is.
    pub path: String,
    pub title: String,
    pub dims: Dims,
    pub tag_keys: Vec<String>,
    pub tag_values: Vec<String>,
    pub event_name: String,
    pub event_meta_keys: Vec<String>,
    pub event_meta_values: Vec<String>,
    pub event_duration: u32,
    pub non_interactive: bool,
    /// The request-log row, filled in except for visitor_id, time and bot fields.
    pub request: RequestRow,
}

pub struct SessionStore {
    pub(crate) env: Env<WithoutTls>,
    sessions: Database<'static, Bytes, Bytes>,
    salts: Salts,
    /// Rate-limit windows (see `ratelimit.rs`); here because it is the same soft, shared state.
    pub(crate) limits: Database<'static, Bytes, Bytes>,
    /// The same counts without a write transaction while they fit (counters.rs).
    pub(crate) counters: Counters,
}

impl SessionStore {
    /// Open `<data_dir>/state` and `<data_dir>/salts` (moving salts an earlier build kept in
    /// `state/` over to `salts/`).
    pub fn open(data_dir: &Path, map_size: usize) -> Result<SessionStore> {
        let dir = data_dir.join("state");
        std::fs::create_dir_all(&dir)?;
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(map_size).max_dbs(4).max_readers(256);
        // SAFETY: the env is opened once per process (the glue owns one SessionStore), and
        // NO_SYNC is acceptable because session state is soft (see module docs). WRITE_MAP makes
        // a commit a memory write instead of a pwrite() per dirty page, which keeps the
        // cross-process writer lock short.
        let env = unsafe {
            opts.flags(
                EnvFlags::NO_SYNC
                    | EnvFlags::NO_META_SYNC
                    | EnvFlags::WRITE_MAP
                    | EnvFlags::MAP_ASYNC,
            );
            opts.open(&dir)?
        };
        let wtxn = env.write_txn()?;
        let (sessions, legacy_salts, limits) = env
            .create_databases_and_commit(
                wtxn,
                |dbs, wtxn| -> std::result::Result<_, heed::Error> {
                    let sessions = dbs.create_database::<Bytes, Bytes>(wtxn, Some("sessions"))?;
                    // Where earlier builds kept the salts; read once, to move them to salts/.
                    let salts = dbs.create_database::<Bytes, Bytes>(wtxn, Some("salts"))?;
                    let limits = dbs.create_database::<Bytes, Bytes>(wtxn, Some("ratelimits"))?;
                    Ok(CommitOrAbort::<_, ()>::Commit((sessions, salts, limits)))
                },
            )?
            .unwrap_commit();
        let legacy = Legacy {
            env: &env,
            db: legacy_salts,
        };
        let salts = Salts::open(&data_dir.join("salts"), legacy)?;
        let counters = Counters::open(&dir.join("rate-counters"), counters::DEFAULT_SLOTS)?;
        Ok(SessionStore {
            env,
            sessions,
            salts,
            limits,
            counters,
        })
    }

    pub fn begin(&self) -> Result<SessionTxn<'_>> {
        let hint = self.counters.writer_hint();
        let began = wait_for_writer(hint, monotonic_us);
        let txn = self.env.write_txn()?;
        Ok(SessionTxn {
            txn: Txn::Lmdb {
                store: self,
                txn,
                _writing: Writing::mark(hint, began),
            },
            salts: HashMap::new(),
        })
    }

    /// Delete sessions whose last hit is older than `max_age_ms` before `now`; returns the count.
    pub fn sweep(&self, now: i64, max_age_ms: i64) -> Result<usize> {
        let mut txn = self.env.write_txn()?;
        let mut stale = Vec::new();
        for item in self.sessions.iter(&txn)? {
            let (key, value) = item?;
            match bincode::deserialize::<SessionRow>(value) {
                Ok(s) if s.time >= now - max_age_ms => {}
                _ => stale.push(key.to_vec()),
            }
        }
        for key in &stale {
            self.sessions.delete(&mut txn, key)?;
        }
        txn.commit()?;
        Ok(stale.len())
    }

    /// Flush the soft state to disk (called periodically and on shutdown).
    pub fn sync(&self) -> Result<()> {
        Ok(self.env.force_sync()?)
    }
}

/// Where the state machine keeps its state, chosen once at open.
pub enum StateStore {
    /// `<data_dir>/state` and `<data_dir>/salts`: one box, every worker process.
    Lmdb(SessionStore),
    /// A Redis server shared by several nodes.
    Redis(Box<RedisStore>),
}

impl From<SessionStore> for StateStore {
    fn from(store: SessionStore) -> Self {
        StateStore::Lmdb(store)
    }
}

impl StateStore {
    /// Redis when `redis_url` is given (a `Config` error if it is unusable), else LMDB in
    /// `data_dir`.
    pub fn open(data_dir: &Path, map_size: usize, redis_url: Option<&str>) -> Result<StateStore> {
        Ok(match redis_url {
            Some(url) => StateStore::Redis(Box::new(RedisStore::open(url)?)),
            None => StateStore::Lmdb(SessionStore::open(data_dir, map_size)?),
        })
    }

    pub fn begin(&self) -> Result<SessionTxn<'_>> {
        match self {
            StateStore::Lmdb(store) => store.begin(),
            StateStore::Redis(store) => Ok(SessionTxn {
                txn: Txn::Redis(store.begin()?),
                salts: HashMap::new(),
            }),
        }
    }

    /// Count one request against a limit on its own (see ratelimit.rs).
    pub fn check_rate(&self, key: &str, limit: u32, window_ms: i64, now: i64) -> Result<i64> {
        match self {
            StateStore::Lmdb(store) => crate::ratelimit::check(store, key, limit, window_ms, now),
            StateStore::Redis(store) => store.check_rate(key, limit, window_ms, now),
        }
    }

    /// The backend's name, and whether it can serve now (Redis: one PING).
    pub fn status(&self) -> (&'static str, Result<()>) {
        match self {
            StateStore::Lmdb(_) => ("lmdb", Ok(())),
            StateStore::Redis(store) => ("redis", store.ping()),
        }
    }

    /// Flush the soft state to disk (LMDB; Redis persists on its own terms).
    pub fn sync(&self) -> Result<()> {
        match self {
            StateStore::Lmdb(store) => store.sync(),
            StateStore::Redis(_) => Ok(()),
        }
    }
}

// -- The writer hint ------------------------------------------------------------------------
//
// Every request takes the state env's write transaction, so two workers under load often want
// it at once. LMDB's writer mutex puts the second one to sleep in the kernel and the first
// wakes it on commit: two system calls, two context switches and a core idle meanwhile, for a
// transaction that lasts a few µs. A shared word (counters.rs `writer_hint`) says since when a
// transaction has been open; a writer that finds a recent one spins for up to `SPIN_US`
// before asking LMDB, which still does the locking. The hint is advisory: a writer that died
// holding it leaves a stale time (ignored after `STALE_US`), never a wait longer than the spin.

/// How long a writer spins on another process's transaction before blocking in LMDB.
const SPIN_US: u64 = 40;
/// A hint older than this is from a writer that stopped without clearing it.
const STALE_US: u64 = 2_000;

/// µs on the monotonic clock (shared by every process), never 0 (0 means "no writer").
fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the struct passed to it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000 + 1
}

/// Wait while the hint shows another writer's recent transaction, for at most `SPIN_US`;
/// returns the time it stopped waiting (`now`: the clock).
fn wait_for_writer(hint: &AtomicU64, mut now: impl FnMut() -> u64) -> u64 {
    let start = now();
    let mut at = start;
    loop {
        let held = hint.load(Ordering::Acquire);
        if held == 0 || at.saturating_sub(held) > STALE_US || at - start >= SPIN_US {
            return at;
        }
        for _ in 0..32 {
            std::hint::spin_loop();
        }
        at = now();
    }
}

/// The hint set for one write transaction: cleared when it commits or is dropped, unless a
/// later writer has set its own since.
struct Writing<'e> {
    hint: &'e AtomicU64,
    began: u64,
}

impl<'e> Writing<'e> {
    fn mark(hint: &'e AtomicU64, began: u64) -> Writing<'e> {
        hint.store(began, Ordering::Release);
        Writing { hint, began }
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let _ = self
            .hint
            .compare_exchange(self.began, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// One write transaction over the session state: process any number of hits, then commit.
pub struct SessionTxn<'e> {
    txn: Txn<'e>,
    /// Salts this transaction has used, by day.
    salts: HashMap<String, Salt>,
}

enum Txn<'e> {
    Lmdb {
        store: &'e SessionStore,
        txn: RwTxn<'e>,
        _writing: Writing<'e>,
    },
    Redis(RedisTxn<'e>),
}

impl<'e> SessionTxn<'e> {
    pub fn commit(self) -> Result<()> {
        match self.txn {
            Txn::Lmdb { txn, _writing, .. } => {
                let done = txn.commit();
                drop(_writing); // LMDB's writer lock is free again
                Ok(done?)
            }
            Txn::Redis(txn) => txn.commit(),
        }
    }

    /// Count one request against a rate limit in this transaction (see ratelimit.rs): 0, or
    /// milliseconds until the window ends.
    pub fn count_rate(&mut self, rate: &RateCount) -> Result<i64> {
        let (key, limit, window_ms, now) = (&rate.key, rate.limit, rate.window_ms, rate.now);
        match &mut self.txn {
            Txn::Lmdb { store, txn, .. } => {
                crate::ratelimit::count(store, txn, key, limit, window_ms, now)
            }
            Txn::Redis(txn) => txn.count_rate(key, limit, window_ms, now),
        }
    }

    /// The salt of a UTC day (`YYYYMMDD`), created on first use when `create`.
    fn salt(&mut self, day: &str, create: bool) -> Result<Option<Salt>> {
        if let Some(s) = self.salts.get(day) {
            return Ok(Some(*s));
        }
        let salt = match &mut self.txn {
            Txn::Lmdb { store, .. } if create => Some(store.salts.get_or_create(day)?),
            Txn::Lmdb { store, .. } => store.salts.get(day)?,
            Txn::Redis(txn) => txn.salt(day, create)?,
        };
        if let Some(s) = salt {
            self.salts.insert(day.to_string(), s);
        }
        Ok(salt)
    }

    pub fn visitor_id(&mut self, site: &str, user_agent: &str, ip: &str, time: i64) -> Result<u64> {
        let day = day_key(time);
        let salt = self.salt(&day, true)?.unwrap_or_default();
        Ok(visitor_id(&salt, site, user_agent, ip, &day))
    }

    /// Log a dropped hit in the request table, with its reason.
    pub fn log_drop(
        &mut self,
        site: &str,
        hit: &SessionHit,
        reason: DropReason,
        out: &mut Vec<Row>,
    ) -> Result<()> {
        let mut req = hit.request.clone();
        req.visitor_id = self.visitor_id(site, &hit.user_agent, &hit.ip, hit.time)?;
        req.time = hit.time;
        req.bot = true;
        req.bot_reason = reason.as_str().to_string();
        out.push(Row::Request(req));
        Ok(())
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<SessionRow>> {
        let bytes = match &mut self.txn {
            Txn::Lmdb { store, txn, .. } => {
                return Ok(store
                    .sessions
                    .get(txn, key)?
                    .and_then(|v| bincode::deserialize(v).ok()))
            }
            Txn::Redis(txn) => txn.get(key)?,
        };
        Ok(bytes.and_then(|v| bincode::deserialize(&v).ok()))
    }

    fn put(&mut self, key: &[u8], s: &SessionRow) -> Result<()> {
        let bytes = bincode::serialize(s).map_err(crate::errors::CoreError::storage)?;
        match &mut self.txn {
            Txn::Lmdb { store, txn, .. } => Ok(store.sessions.put(txn, key, &bytes)?),
            Txn::Redis(txn) => txn.put(key, bytes),
        }
    }

    fn delete(&mut self, key: &[u8]) -> Result<()> {
        match &mut self.txn {
            Txn::Lmdb { store, txn, .. } => {
                store.sessions.delete(txn, key)?;
                Ok(())
            }
            Txn::Redis(txn) => txn.delete(key),
        }
    }

    /// Find the live session of this visitor, applying the 30-minute timeout and the midnight
    /// rule. Returns the session and the key it was stored under.
    fn find(
        &mut self,
        site: &str,
        hit: &SessionHit,
        today_key: &[u8],
    ) -> Result<Option<(SessionRow, Vec<u8>)>> {
        if let Some(s) = self.get(today_key)? {
            if hit.time - s.time <= SESSION_TIMEOUT_MS {
                return Ok(Some((s, today_key.to_vec())));
            }
            return Ok(None);
        }
        let before = hit.time - SESSION_TIMEOUT_MS;
        let yesterday = day_key(before);
        if yesterday == day_key(hit.time) {
            return Ok(None);
        }
        let Some(salt) = self.salt(&yesterday, false)? else {
            return Ok(None);
        };
        let id = visitor_id(&salt, site, &hit.user_agent, &hit.ip, &yesterday);
        let key = session_key(site, id);
        match self.get(&key)? {
            Some(s) if hit.time - s.time <= SESSION_TIMEOUT_MS && s.start > hit.time - DAY_MS => {
                Ok(Some((s, key)))
            }
            _ => Ok(None),
        }
    }

    /// Run one accepted hit through the state machine, appending its rows to `out`.
    /// Returns the reason when the hit is dropped here (no session for a keep-alive, view cap).
    pub fn process(
        &mut self,
        site: &str,
        hit: &SessionHit,
        cap: u32,
        out: &mut Vec<Row>,
    ) -> Result<Option<DropReason>> {
        let kind = hit.kind.unwrap_or(HitKind::PageView);
        let vid = self.visitor_id(site, &hit.user_agent, &hit.ip, hit.time)?;
        let key = session_key(site, vid);
        let mut found = self.find(site, hit, &key)?;
        if let Some((s, _)) = &found {
            if kind != HitKind::KeepAlive && starts_new_session(s, &hit.dims) {
                found = None;
            }
        }
        let Some((prev, old_key)) = found else {
            if kind == HitKind::KeepAlive {
                return Ok(Some(DropReason::NoSession));
            }
            let s = new_session(vid, hit);
            self.put(&key, &s)?;
            emit_new(s, hit, kind, out);
            return Ok(None);
        };
        if kind != HitKind::KeepAlive && prev.page_views >= cap {
            return Ok(Some(DropReason::PageViewCap));
        }
        let next = advance(&prev, hit, kind);
        if old_key != key {
            // Midnight: the session continues under today's key, keeping yesterday's visitor_id.
            self.delete(&old_key)?;
        }
        self.put(&key, &next)?;
        // The rows take `prev` and `next` themselves (a row is some 30 strings): the cancel row
        // is `prev` signed -1, and `next` goes out after its page view or event copied it.
        let extra = match kind {
            HitKind::PageView => Some(Row::PageView(page_view(
                &next,
                hit,
                gap_seconds(prev.time, hit.time),
            ))),
            HitKind::Event => Some(Row::Event(event(&next, hit, next.time))),
            HitKind::KeepAlive => None,
        };
        let mut cancel = prev;
        cancel.sign = -1;
        out.push(Row::Session(cancel));
        out.push(Row::Session(next));
        out.extend(extra);
        Ok(None)
    }
}

pub fn session_key(site: &str, visitor_id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(site.len() + 8);
    k.extend_from_slice(site.as_bytes());
    k.extend_from_slice(&visitor_id.to_be_bytes());
    k
}

/// A non-empty referrer, referrer name or UTM value that differs from the session's starts a
/// new session (a new campaign visit), for the same visitor.
fn starts_new_session(s: &SessionRow, d: &Dims) -> bool {
    let pairs = [
        (&d.referrer, &s.dims.referrer),
        (&d.referrer_name, &s.dims.referrer_name),
        (&d.utm_source, &s.dims.utm_source),
        (&d.utm_medium, &s.dims.utm_medium),
        (&d.utm_campaign, &s.dims.utm_campaign),
        (&d.utm_content, &s.dims.utm_content),
        (&d.utm_term, &s.dims.utm_term),
    ];
    pairs.iter().any(|(new, old)| !new.is_empty() && new != old)
}

fn gap_seconds(from: i64, to: i64) -> u32 {
    ((to - from).max(0) / 1000) as u32
}

fn new_session(vid: u64, hit: &SessionHit) -> SessionRow {
    SessionRow {
        sign: 1,
        version: 1,
        visitor_id: vid,
        session_id: rand::random(),
        time: hit.time,
        start: hit.time,
        duration_seconds: 0,
        is_bounce: true,
        page_views: 1,
        extended: 0,
        entry_path: hit.path.clone(),
        exit_path: hit.path.clone(),
        entry_title: hit.title.clone(),
        exit_title: hit.title.clone(),
        dims: hit.dims.clone(),
    }
}

/// The rows of a hit that opened a session: a lone event also gets its page view.
fn emit_new(s: SessionRow, hit: &SessionHit, kind: HitKind, out: &mut Vec<Row>) {
    let view = page_view(&s, hit, 0);
    let event = (kind == HitKind::Event).then(|| event(&s, hit, s.time));
    let mut req = hit.request.clone();
    req.visitor_id = s.visitor_id;
    req.time = hit.time;
    req.bot = false;
    out.push(Row::Session(s));
    out.push(Row::PageView(view));
    out.extend(event.map(Row::Event));
    out.push(Row::Request(req));
}

/// The next state of a live session after `hit` (reference section 2, the state table).
fn advance(prev: &SessionRow, hit: &SessionHit, kind: HitKind) -> SessionRow {
    let mut s = prev.clone();
    s.sign = 1;
    s.version += 1;
    match kind {
        HitKind::PageView => {
            s.time = hit.time.max(prev.time);
            s.page_views += 1;
            // A reload (same path as the exit page) does not un-bounce the session.
            s.is_bounce = prev.is_bounce && hit.path == prev.exit_path;
            s.exit_path = hit.path.clone();
            s.exit_title = hit.title.clone();
        }
        HitKind::Event => {
            // Events don't keep a session alive: time moves by 1 ms only.
            s.time = prev.time + 1;
            if !hit.non_interactive {
                s.is_bounce = false;
            }
            if !hit.path.is_empty() {
                s.exit_path = hit.path.clone();
            }
        }
        HitKind::KeepAlive => {
            s.time = hit.time.max(prev.time);
            s.extended = (prev.extended + 1).min(EXTENDED_CAP);
            if !hit.path.is_empty() {
                s.exit_path = hit.path.clone();
                s.exit_title = hit.title.clone();
            }
        }
    }
    s.duration_seconds = gap_seconds(s.start, s.time);
    s
}

fn page_view(s: &SessionRow, hit: &SessionHit, duration: u32) -> PageViewRow {
    PageViewRow {
        visitor_id: s.visitor_id,
        session_id: s.session_id,
        time: hit.time,
        duration_seconds: duration,
        path: hit.path.clone(),
        title: hit.title.clone(),
        tag_keys: hit.tag_keys.clone(),
        tag_values: hit.tag_values.clone(),
        dims: s.dims.clone(),
    }
}

fn event(s: &SessionRow, hit: &SessionHit, time: i64) -> EventRow {
    EventRow {
        visitor_id: s.visitor_id,
        session_id: s.session_id,
        time,
        duration_seconds: hit.event_duration,
        path: if hit.path.is_empty() {
            s.exit_path.clone()
        } else {
            hit.path.clone()
        },
        title: hit.title.clone(),
        event_name: hit.event_name.clone(),
        event_meta_keys: hit.event_meta_keys.clone(),
        event_meta_values: hit.event_meta_values.clone(),
        dims: s.dims.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{EventRow, PageViewRow};

    const T0: i64 = 1_767_268_800_000; // 2026-01-01T12:00:00Z
    const SITE: &str = "site-a";

    fn store() -> (tempfile::TempDir, SessionStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SessionStore::open(dir.path(), 1 << 26).unwrap();
        (dir, s)
    }

    fn hit(kind: HitKind, time: i64, path: &str) -> SessionHit {
        SessionHit {
            kind: Some(kind),
            time,
            user_agent: "Mozilla/5.0 test".into(),
            ip: "81.2.69.142".into(),
            path: path.into(),
            ..Default::default()
        }
    }

    /// Run hits in one transaction each (as separate requests would) and collect all rows.
    fn run(store: &SessionStore, hits: &[SessionHit]) -> (Vec<Row>, Vec<Option<DropReason>>) {
        let mut rows = Vec::new();
        let mut drops = Vec::new();
        for h in hits {
            let mut txn = store.begin().unwrap();
            drops.push(txn.process(SITE, h, 200, &mut rows).unwrap());
            txn.commit().unwrap();
        }
        (rows, drops)
    }

    fn last_session(rows: &[Row]) -> SessionRow {
        rows.iter()
            .rev()
            .find_map(|r| match r {
                Row::Session(s) if s.sign == 1 => Some(s.clone()),
                _ => None,
            })
            .unwrap()
    }

    fn page_views(rows: &[Row]) -> Vec<&PageViewRow> {
        rows.iter()
            .filter_map(|r| {
                if let Row::PageView(p) = r {
                    Some(p)
                } else {
                    None
                }
            })
            .collect()
    }

    fn events(rows: &[Row]) -> Vec<&EventRow> {
        rows.iter()
            .filter_map(|r| if let Row::Event(e) = r { Some(e) } else { None })
            .collect()
    }

    /// Collapsing: the sum of signs per session is 1, like the queries rely on.
    fn sign_sum(rows: &[Row]) -> i64 {
        rows.iter()
            .map(|r| {
                if let Row::Session(s) = r {
                    s.sign as i64
                } else {
                    0
                }
            })
            .sum()
    }

    #[test]
    fn scenario_1_durations() {
        let (_d, st) = store();
        let mut t = T0;
        let mut hits = vec![hit(HitKind::PageView, t, "/")];
        for (i, gap) in [9, 2, 5, 3, 10, 7].iter().enumerate() {
            t += gap * 1000;
            hits.push(hit(HitKind::PageView, t, &format!("/p{i}")));
        }
        let (rows, _) = run(&st, &hits);
        let s = last_session(&rows);
        assert_eq!(s.page_views, 7);
        assert_eq!(s.duration_seconds, 36);
        assert!(!s.is_bounce);
        let durations: Vec<u32> = page_views(&rows)
            .iter()
            .map(|p| p.duration_seconds)
            .collect();
        assert_eq!(durations, vec![0, 9, 2, 5, 3, 10, 7]);
        assert_eq!(sign_sum(&rows), 1);
        let sessions: std::collections::HashSet<u32> =
            page_views(&rows).iter().map(|p| p.session_id).collect();
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn scenario_2_bounce() {
        let (_d, st) = store();
        let (rows, _) = run(
            &st,
            &[
                hit(HitKind::PageView, T0, "/"),
                hit(HitKind::Event, T0 + 1000, "/"),
                hit(HitKind::PageView, T0 + 2000, "/"),
            ],
        );
        let s = last_session(&rows);
        assert_eq!(
            (s.page_views, s.duration_seconds, s.is_bounce),
            (2, 2, false)
        );
        assert_eq!((page_views(&rows).len(), events(&rows).len()), (2, 1));

        // A lone event: a bounced session plus a page view.
        let (_d, st) = store();
        let (rows, _) = run(&st, &[hit(HitKind::Event, T0, "/e")]);
        let s = last_session(&rows);
        assert!(s.is_bounce);
        assert_eq!((page_views(&rows).len(), events(&rows).len()), (1, 1));
        // A second event adds no page view and clears the bounce.
        let (more, _) = run(&st, &[hit(HitKind::Event, T0 + 5000, "/e")]);
        assert!(!last_session(&more).is_bounce);
        assert_eq!((page_views(&more).len(), events(&more).len()), (0, 1));

        // A non-interactive event keeps the session bounced.
        let (_d, st) = store();
        let mut ni = hit(HitKind::Event, T0 + 1000, "/");
        ni.non_interactive = true;
        let (rows, _) = run(&st, &[hit(HitKind::PageView, T0, "/"), ni]);
        assert!(last_session(&rows).is_bounce);
    }

    #[test]
    fn reload_does_not_unbounce() {
        let (_d, st) = store();
        let (rows, _) = run(
            &st,
            &[
                hit(HitKind::PageView, T0, "/a"),
                hit(HitKind::PageView, T0 + 3000, "/a"),
            ],
        );
        let s = last_session(&rows);
        assert_eq!((s.page_views, s.is_bounce), (2, true));
    }

    #[test]
    fn scenario_3_keep_alive() {
        let (_d, st) = store();
        let (rows, _) = run(
            &st,
            &[
                hit(HitKind::PageView, T0, "/"),
                hit(HitKind::KeepAlive, T0 + 2000, ""),
                hit(HitKind::KeepAlive, T0 + 4000, ""),
            ],
        );
        let s = last_session(&rows);
        assert_eq!((s.extended, s.duration_seconds, s.page_views), (2, 4, 1));
        assert_eq!(s.exit_path, "/");
        // A ping without a session is dropped.
        let (_d, st) = store();
        let (rows, drops) = run(&st, &[hit(HitKind::KeepAlive, T0, "")]);
        assert_eq!(drops, vec![Some(DropReason::NoSession)]);
        assert!(rows.is_empty());
    }

    #[test]
    fn scenario_4_campaign_change_starts_new_session() {
        let (_d, st) = store();
        let mut first = hit(HitKind::PageView, T0, "/");
        first.dims.referrer_name = "Google".into();
        first.dims.utm_medium = "(gclid)".into();
        let mut second = hit(HitKind::PageView, T0 + 60_000, "/b");
        second.dims.utm_medium = "Medium".into();
        let (rows, _) = run(&st, &[first, second]);
        let pvs = page_views(&rows);
        assert_eq!(pvs.len(), 2);
        assert_eq!(pvs[0].visitor_id, pvs[1].visitor_id);
        assert_ne!(pvs[0].session_id, pvs[1].session_id);
        assert_eq!(pvs[1].dims.utm_medium, "Medium");
        // Same values again continue the session.
        let mut third = hit(HitKind::PageView, T0 + 120_000, "/c");
        third.dims.utm_medium = "Medium".into();
        let (rows, _) = run(&st, &[third]);
        assert_eq!(page_views(&rows)[0].session_id, pvs[1].session_id);
    }

    #[test]
    fn timeout_starts_new_session() {
        let (_d, st) = store();
        let (rows, _) = run(
            &st,
            &[
                hit(HitKind::PageView, T0, "/"),
                hit(HitKind::PageView, T0 + SESSION_TIMEOUT_MS + 1, "/"),
            ],
        );
        let pvs = page_views(&rows);
        assert_ne!(pvs[0].session_id, pvs[1].session_id);
        assert_eq!(pvs[1].duration_seconds, 0);
    }

    #[test]
    fn midnight_rule_continues_yesterdays_session() {
        let (_d, st) = store();
        let before = 1_767_311_400_000; // 2026-01-01T23:50:00Z
        let after = before + 20 * 60_000; // 00:10 the next day
        let (rows, _) = run(
            &st,
            &[
                hit(HitKind::PageView, before, "/a"),
                hit(HitKind::PageView, after, "/b"),
            ],
        );
        let pvs = page_views(&rows);
        assert_eq!(pvs[0].visitor_id, pvs[1].visitor_id);
        assert_eq!(pvs[0].session_id, pvs[1].session_id);
        assert_eq!(last_session(&rows).page_views, 2);
        // A later hit the same night finds it under today's key.
        let (rows2, _) = run(&st, &[hit(HitKind::PageView, after + 25 * 60_000, "/c")]);
        assert_eq!(page_views(&rows2)[0].session_id, pvs[0].session_id);
    }

    #[test]
    fn page_view_cap_drops() {
        let (_d, st) = store();
        let mut rows = Vec::new();
        let mut txn = st.begin().unwrap();
        for i in 0..3 {
            let r = txn
                .process(
                    SITE,
                    &hit(HitKind::PageView, T0 + i * 1000, "/"),
                    2,
                    &mut rows,
                )
                .unwrap();
            assert_eq!(
                r,
                if i < 2 {
                    None
                } else {
                    Some(DropReason::PageViewCap)
                }
            );
        }
        txn.commit().unwrap();
    }

    #[test]
    fn sites_are_separate() {
        let (_d, st) = store();
        let mut rows = Vec::new();
        let mut txn = st.begin().unwrap();
        txn.process("a", &hit(HitKind::PageView, T0, "/"), 200, &mut rows)
            .unwrap();
        txn.process("b", &hit(HitKind::PageView, T0, "/"), 200, &mut rows)
            .unwrap();
        txn.commit().unwrap();
        let pvs = page_views(&rows);
        assert_ne!(pvs[0].visitor_id, pvs[1].visitor_id);
    }

    #[test]
    fn salts_rotate_keeping_yesterday() {
        let (_d, st) = store();
        let day = 86_400_000;
        let mut txn = st.begin().unwrap();
        for i in 0..4 {
            txn.visitor_id(SITE, "ua", "1.2.3.4", T0 + i * day).unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(st.salts.days().unwrap(), vec!["20260103", "20260104"]);
    }

    fn visitor_of(st: &SessionStore) -> u64 {
        let mut txn = st.begin().unwrap();
        let id = txn.visitor_id(SITE, "ua", "1.2.3.4", T0).unwrap();
        txn.commit().unwrap();
        id
    }

    #[test]
    fn salts_survive_reopen_in_their_own_env() {
        let (dir, st) = store();
        let before = visitor_of(&st);
        drop(st);
        assert!(dir.path().join("salts/data.mdb").is_file());
        let st = SessionStore::open(dir.path(), 1 << 26).unwrap();
        assert_eq!(visitor_of(&st), before);
    }

    #[test]
    fn salts_in_the_old_place_are_migrated() {
        let (dir, st) = store();
        // What an earlier build left: today's salt in the `salts` table of the state env.
        let old_salt = [9u8; 16];
        let wtxn = st.env.write_txn().unwrap();
        st.env
            .create_databases_and_commit(wtxn, |dbs, wtxn| -> heed::Result<_> {
                let legacy = dbs.create_database::<Bytes, Bytes>(wtxn, Some("salts"))?;
                legacy.put(wtxn, b"20260101", &old_salt)?;
                Ok(CommitOrAbort::<_, ()>::Commit(()))
            })
            .unwrap();
        drop(st);
        std::fs::remove_dir_all(dir.path().join("salts")).unwrap();

        let st = SessionStore::open(dir.path(), 1 << 26).unwrap();
        let want = visitor_id(&old_salt, SITE, "ua", "1.2.3.4", "20260101");
        assert_eq!(visitor_of(&st), want, "the visitor keeps its id");
        assert_eq!(st.salts.days().unwrap(), vec!["20260101"]);
        let rtxn = st.env.read_txn().unwrap();
        let legacy = st
            .env
            .open_databases_and_commit(rtxn, |dbs, rtxn| -> heed::Result<_> {
                let db = dbs.open_database::<Bytes, Bytes>(rtxn, Some("salts"))?;
                Ok(CommitOrAbort::<_, ()>::Commit(db))
            })
            .unwrap()
            .unwrap_commit()
            .expect("the old table");
        let rtxn = st.env.read_txn().unwrap();
        assert!(legacy.is_empty(&rtxn).unwrap(), "the old copy is gone");
    }

    #[test]
    fn sweep_deletes_idle_sessions() {
        let (_d, st) = store();
        run(&st, &[hit(HitKind::PageView, T0, "/")]);
        assert_eq!(st.sweep(T0 + 60_000, SESSION_TIMEOUT_MS).unwrap(), 0);
        assert_eq!(
            st.sweep(T0 + 2 * SESSION_TIMEOUT_MS, SESSION_TIMEOUT_MS)
                .unwrap(),
            1
        );
    }

    /// A clock for `wait_for_writer` that moves 1 µs a call from `start`, counting its calls.
    fn ticking(start: u64, calls: &std::cell::Cell<u64>) -> impl FnMut() -> u64 + '_ {
        move || {
            calls.set(calls.get() + 1);
            start + calls.get() - 1
        }
    }

    #[test]
    fn a_free_or_stale_hint_is_not_waited_for() {
        let calls = std::cell::Cell::new(0);
        let free = AtomicU64::new(0);
        assert_eq!(
            wait_for_writer(&free, ticking(1_000_000, &calls)),
            1_000_000
        );
        assert_eq!(calls.get(), 1);
        let stale = AtomicU64::new(1_000_000 - STALE_US - 1);
        calls.set(0);
        assert_eq!(
            wait_for_writer(&stale, ticking(1_000_000, &calls)),
            1_000_000
        );
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_held_hint_is_waited_for_at_most_the_spin() {
        let calls = std::cell::Cell::new(0);
        let held = AtomicU64::new(1_000_000);
        let end = wait_for_writer(&held, ticking(1_000_000, &calls));
        assert_eq!(end, 1_000_000 + SPIN_US);
        // and no longer than until the other writer clears it
        let held = AtomicU64::new(1_000_000);
        let calls = std::cell::Cell::new(0);
        let mut clock = ticking(1_000_000, &calls);
        let end = wait_for_writer(&held, || {
            let t = clock();
            if t == 1_000_005 {
                held.store(0, Ordering::Release);
            }
            t
        });
        assert_eq!(end, 1_000_005);
    }

    #[test]
    fn a_transaction_sets_the_hint_until_it_ends() {
        let (_d, st) = store();
        let hint = st.counters.writer_hint();
        assert_eq!(hint.load(Ordering::Acquire), 0);
        let txn = st.begin().unwrap();
        assert!(hint.load(Ordering::Acquire) > 0);
        txn.commit().unwrap();
        assert_eq!(hint.load(Ordering::Acquire), 0);
        let txn = st.begin().unwrap();
        assert!(hint.load(Ordering::Acquire) > 0);
        drop(txn); // aborted
        assert_eq!(hint.load(Ordering::Acquire), 0);
        // a writer that began after this one's mark keeps its own
        let mark = Writing::mark(hint, 5);
        hint.store(9, Ordering::Release);
        drop(mark);
        assert_eq!(hint.load(Ordering::Acquire), 9);
    }
}
