//! The session state in Redis, for several trail nodes behind one load balancer.
//!
//! The state machine is session.rs's; this module only keeps what it reads and writes in a Redis
//! server every node shares, so a visitor whose hits land on different nodes stays one session:
//!
//! - `trail:s:<site><visitor_id>`: the session row (bincode, as in LMDB), expiring after
//!   `SESSION_IDLE_MS` without a hit, as the LMDB sweep deletes idle sessions.
//! - `trail:l:<site><visitor_id>`: the visitor's lock, `SET NX PX` with a token per transaction.
//!   A transaction takes the lock when it first reads a visitor and holds it until its commit,
//!   which comes after the WAL write: the order of the LMDB path (WAL write, then the state), so a
//!   crash in between costs at most a split session, never an acknowledged hit. The commit script
//!   writes a row only while the lock still carries the transaction's token; a holder that stalled
//!   past `LOCK_TTL_MS` (its rows already in its WAL) loses the write, with the same outcome.
//! - `trail:salt:<YYYYMMDD>`: the day's salt, created once with `SET NX` and read back, so every
//!   node keys a visitor identically. Kept until the end of the following day (the midnight rule
//!   needs yesterday's) and at least a day. Each node remembers the salts it has seen and offers
//!   them again with `SET NX` every `SALT_RECHECK`, so a Redis restart without persistence does
//!   not give the nodes different salts.
//! - `trail:rl:<window>:<key>`: a rate-limit window's counter (`INCR`), expiring a window after
//!   it ends.
//!
//! Every Redis error is `CoreError::Unavailable` (HTTP 503): the request stored nothing.

use crate::errors::{CoreError, Result};
use crate::ratelimit;
use crate::salts::Salt;
use parking_lot::Mutex;
use redis::io::tcp::TcpSettings;
use redis::{Client, Connection, IntoConnectionInfo, Script};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A session is dropped after this long without a hit (the maintenance sweep's default age).
pub const SESSION_IDLE_MS: i64 = 2 * 3600 * 1000;
/// A lock outlives any sane request; it only matters when its holder died.
pub const LOCK_TTL_MS: i64 = 5_000;
/// How long a request waits for a visitor another request holds before answering 503. Shorter
/// than the lock's life, so two batches waiting on each other's visitors give up, not stall.
const LOCK_WAIT: Duration = Duration::from_secs(2);
const SALT_RECHECK: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const IO_TIMEOUT: Duration = Duration::from_secs(2);
const DAY_MS: i64 = 86_400_000;

/// KEYS: (state, lock) pairs; ARGV: token, ttl, then per pair an op (`s` set, `d` delete,
/// `k` keep) and a value. Writes only under locks still held; returns how many were not.
const COMMIT: &str = r"
local token, ttl, lost = ARGV[1], ARGV[2], 0
for i = 1, #KEYS, 2 do
  if redis.call('GET', KEYS[i + 1]) == token then
    local op = ARGV[i + 2]
    if op == 's' then
      redis.call('SET', KEYS[i], ARGV[i + 3], 'PX', ttl)
    elseif op == 'd' then
      redis.call('DEL', KEYS[i])
    end
    redis.call('DEL', KEYS[i + 1])
  else
    lost = lost + 1
  end
end
return lost
";

/// KEYS: locks; ARGV: the token. Releases those still held by it.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
";

pub struct RedisStore {
    client: Client,
    pool: Mutex<Vec<Connection>>,
    /// Salts seen, by day, with when Redis last confirmed them.
    salts: Mutex<HashMap<String, (Salt, Instant)>>,
    commit: Script,
    release: Script,
}

impl From<redis::RedisError> for CoreError {
    fn from(e: redis::RedisError) -> Self {
        CoreError::Unavailable(format!("redis session store: {e}"))
    }
}

impl RedisStore {
    /// Parse `url` and check that the server answers; a `Config` error naming `redis_url` if not.
    pub fn open(url: &str) -> Result<RedisStore> {
        let config = |m: String| CoreError::Config(format!("redis_url: {m}"));
        let info = url
            .into_connection_info()
            .map_err(|e| config(format!("not a Redis URL ({e})")))?;
        // Each hit is a few small request/reply exchanges: Nagle's algorithm would hold every
        // second write back for the delayed ACK (~40 ms).
        let info = info.set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = Client::open(info).map_err(|e| config(format!("not a Redis URL ({e})")))?;
        let store = RedisStore {
            client,
            pool: Mutex::new(Vec::new()),
            salts: Mutex::new(HashMap::new()),
            commit: Script::new(COMMIT),
            release: Script::new(RELEASE),
        };
        store.ping().map_err(|e| {
            let why = match e {
                CoreError::Unavailable(m) => m.replace("redis session store: ", ""),
                other => other.to_string(),
            };
            config(format!("the Redis server does not answer ({why})"))
        })?;
        Ok(store)
    }

    /// One round trip to the server: Ok, or why it cannot serve. A second try on a new
    /// connection, because after a Redis restart the pooled ones fail once.
    pub fn ping(&self) -> Result<()> {
        self.ping_once().or_else(|_| self.ping_once())
    }

    fn ping_once(&self) -> Result<()> {
        let mut con = self.connection()?;
        redis::cmd("PING").query::<String>(con.get())?;
        con.keep();
        Ok(())
    }

    /// A pooled connection, or a new one (returned to the pool only when it worked).
    fn connection(&self) -> Result<Pooled<'_>> {
        let con = match self.pool.lock().pop() {
            Some(con) => con,
            None => {
                let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
                con.set_read_timeout(Some(IO_TIMEOUT))?;
                con.set_write_timeout(Some(IO_TIMEOUT))?;
                con
            }
        };
        Ok(Pooled {
            store: self,
            con: Some(con),
            ok: false,
        })
    }

    pub fn begin(&self) -> Result<RedisTxn<'_>> {
        Ok(RedisTxn {
            con: self.connection()?,
            store: self,
            token: rand::random::<u64>().to_string(),
            held: Vec::new(),
        })
    }

    /// Count one request against a limit shared by every node (ratelimit.rs has the rules).
    pub fn check_rate(&self, key: &str, limit: u32, window_ms: i64, now: i64) -> Result<i64> {
        let mut con = self.connection()?;
        let wait = count_rate(con.get(), key, limit, window_ms, now)?;
        con.keep();
        Ok(wait)
    }

    /// The salt of a UTC day (`YYYYMMDD`), created on first use when `create`.
    fn salt(&self, con: &mut Connection, day: &str, create: bool) -> Result<Option<Salt>> {
        let known = self.salts.lock().get(day).copied();
        if let Some((salt, checked)) = known {
            if checked.elapsed() < SALT_RECHECK {
                return Ok(Some(salt));
            }
        }
        let key = format!("trail:salt:{day}");
        let offer = known.map(|k| k.0).or_else(|| create.then(rand::random));
        let found: Option<Vec<u8>> = match offer {
            Some(offer) => {
                let (found,): (Option<Vec<u8>>,) = redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(&offer[..])
                    .arg("NX")
                    .arg("PXAT")
                    .arg(salt_expiry(day))
                    .ignore()
                    .cmd("GET")
                    .arg(&key)
                    .query(con)?;
                found
            }
            None => redis::cmd("GET").arg(&key).query(con)?,
        };
        let salt = found.and_then(|v| Salt::try_from(v.as_slice()).ok());
        if let Some(s) = salt {
            let mut salts = self.salts.lock();
            salts.retain(|_, (_, at)| at.elapsed() < 4 * SALT_RECHECK);
            salts.insert(day.to_string(), (s, Instant::now()));
        }
        Ok(salt)
    }
}

/// When a day's salt expires: the end of the following day, and not within a day from now.
fn salt_expiry(day: &str) -> i64 {
    let start = chrono::NaiveDate::parse_from_str(day, "%Y%m%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0);
    let now = chrono::Utc::now().timestamp_millis();
    (start + 2 * DAY_MS).max(now + DAY_MS)
}

fn count_rate(
    con: &mut Connection,
    key: &str,
    limit: u32,
    window_ms: i64,
    now: i64,
) -> Result<i64> {
    let window_ms = window_ms.max(1);
    let window = now.div_euclid(window_ms);
    let k = format!("trail:rl:{window}:{key}");
    let (count,): (u64,) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg(&k)
        .cmd("PEXPIREAT")
        .arg(&k)
        .arg((window + 2) * window_ms)
        .ignore()
        .query(con)?;
    Ok(ratelimit::wait_ms(count, limit, window, window_ms, now))
}

/// A connection borrowed from the pool; it goes back only if `keep` was called (a connection
/// that failed mid-command may hold an unread reply). A failure empties the pool: when the server
/// went away, every idle connection is as dead as this one.
struct Pooled<'s> {
    store: &'s RedisStore,
    con: Option<Connection>,
    ok: bool,
}

impl Pooled<'_> {
    fn get(&mut self) -> &mut Connection {
        self.con.as_mut().expect("a pooled connection until drop")
    }

    fn keep(&mut self) {
        self.ok = true;
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        match (self.ok, self.con.take()) {
            (true, Some(con)) => self.store.pool.lock().push(con),
            _ => self.store.pool.lock().clear(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Keep,
    Set,
    Delete,
}

/// A visitor this transaction has locked: its value as the transaction sees it, and what the
/// commit does with it.
struct Held {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    op: Op,
}

/// One request's view of the Redis state: the visitors it read stay locked until commit or drop.
pub struct RedisTxn<'s> {
    store: &'s RedisStore,
    con: Pooled<'s>,
    token: String,
    held: Vec<Held>,
}

impl RedisTxn<'_> {
    /// The stored row of a session key (site + visitor id), locking the visitor first.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(h) = self.held.iter().find(|h| h.key == key) {
            return Ok(h.value.clone());
        }
        let value = self.lock(key)?;
        self.held.push(Held {
            key: key.to_vec(),
            value: value.clone(),
            op: Op::Keep,
        });
        Ok(value)
    }

    /// Store a row at commit; the key must have been read (and so locked) first.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>) -> Result<()> {
        self.write(key, Some(value), Op::Set)
    }

    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.write(key, None, Op::Delete)
    }

    fn write(&mut self, key: &[u8], value: Option<Vec<u8>>, op: Op) -> Result<()> {
        if !self.held.iter().any(|h| h.key == key) {
            self.get(key)?;
        }
        let h = self
            .held
            .iter_mut()
            .find(|h| h.key == key)
            .expect("locked just now");
        (h.value, h.op) = (value, op);
        Ok(())
    }

    pub fn salt(&mut self, day: &str, create: bool) -> Result<Option<Salt>> {
        self.store.salt(self.con.get(), day, create)
    }

    pub fn count_rate(&mut self, key: &str, limit: u32, window_ms: i64, now: i64) -> Result<i64> {
        count_rate(self.con.get(), key, limit, window_ms, now)
    }

    /// Write what changed and release every lock, in one script run.
    pub fn commit(mut self) -> Result<()> {
        if !self.held.is_empty() {
            let mut call = self.store.commit.prepare_invoke();
            call.arg(&self.token).arg(SESSION_IDLE_MS);
            for h in &self.held {
                call.key(prefixed(b"trail:s:", &h.key))
                    .key(prefixed(b"trail:l:", &h.key));
                let op = match h.op {
                    Op::Keep => "k",
                    Op::Set => "s",
                    Op::Delete => "d",
                };
                call.arg(op).arg(h.value.as_deref().unwrap_or_default());
            }
            // A lost lock (see the module docs) is not an error: the rows are stored.
            let _lost: u64 = call.invoke(self.con.get())?;
            self.held.clear();
        }
        self.con.keep();
        Ok(())
    }

    /// Take the visitor's lock and read its row, in one round trip; wait while another request
    /// holds it.
    fn lock(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (state, lock) = (prefixed(b"trail:s:", key), prefixed(b"trail:l:", key));
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_micros(100);
        loop {
            let (taken, value): (Option<String>, Option<Vec<u8>>) = redis::pipe()
                .cmd("SET")
                .arg(&lock)
                .arg(&self.token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL_MS)
                .cmd("GET")
                .arg(&state)
                .query(self.con.get())?;
            if taken.is_some() {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                return Err(CoreError::Unavailable(
                    "redis session store: a visitor's session stayed locked by another request"
                        .into(),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

impl Drop for RedisTxn<'_> {
    /// Not committed (an error on the way): release the locks now rather than at their expiry.
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let mut call = self.store.release.prepare_invoke();
        call.arg(&self.token);
        for h in &self.held {
            call.key(prefixed(b"trail:l:", &h.key));
        }
        if call.invoke::<u64>(self.con.get()).is_ok() {
            self.con.keep();
        }
    }
}

fn prefixed(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + key.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(key);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_live_until_the_end_of_the_next_day() {
        let now = chrono::Utc::now().timestamp_millis();
        // A day far in the future: two days from its start.
        assert_eq!(salt_expiry("29990101") % DAY_MS, 0);
        assert!(salt_expiry("29990101") > now + 300 * DAY_MS);
        // A past day (a backfilled hit): still a day from now, not gone at once.
        let past = salt_expiry("20200101");
        assert!(past >= now + DAY_MS && past < now + DAY_MS + 60_000);
    }

    #[test]
    fn bad_urls_name_the_setting() {
        for url in ["http://localhost:6379", "not a url", "redis://[::1"] {
            match RedisStore::open(url) {
                Err(CoreError::Config(m)) => assert!(m.starts_with("redis_url: "), "{url}: {m}"),
                _ => panic!("{url} accepted"),
            }
        }
    }

    #[test]
    fn unreachable_server_is_a_config_error_at_open() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match RedisStore::open(&format!("redis://127.0.0.1:{port}/0")) {
            Err(CoreError::Config(m)) => assert!(m.contains("does not answer"), "{m}"),
            _ => panic!("opened"),
        }
    }
}
