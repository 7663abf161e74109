//! PyO3 surface, kept thin: convert arguments, release the GIL, call plain Rust, map errors.

use crate::bots::{BotFilter, BotLists};
use crate::browser::{Answer, BrowserSite, Cors, Directory, Refusal, Route, SiteKey};
use crate::errors::CoreError;
use crate::geo::Geo;
use crate::hit::{parse_items, Headers, HitKind};
use crate::imported::{Derived, Recorded};
use crate::ip::TrustedProxies;
use crate::pipeline::{Engine as CoreEngine, Origin, SiteCtx, Summary};
use crate::ratelimit::RateCount;
use crate::session::{SessionStore, StateStore, SESSION_TIMEOUT_MS};
use crate::ua::{UaParser, UaRules};
use crate::validate::{Checker, Source, TimeWindow, LIMITS};
use crate::wal::{BackgroundStatus, Storage, StorageConfig};
use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};
use std::net::IpAddr;
use std::path::PathBuf;

create_exception!(
    _core,
    InvalidInput,
    PyValueError,
    "Bad client input; args are (field, message)."
);
create_exception!(
    _core,
    StorageError,
    PyOSError,
    "Storage (LMDB, WAL, segments) failed."
);
create_exception!(
    _core,
    Unavailable,
    StorageError,
    "A shared service (the Redis session store) cannot serve now; nothing was stored."
);
create_exception!(
    _core,
    ConfigError,
    PyValueError,
    "Unusable engine configuration."
);

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        match e {
            CoreError::Invalid { field, message } => InvalidInput::new_err((field, message)),
            CoreError::Storage(m) => StorageError::new_err(m),
            CoreError::Config(m) => ConfigError::new_err(m),
            CoreError::Unavailable(m) => Unavailable::new_err(m),
        }
    }
}

const STATE_MAP_SIZE: usize = 8 << 30;
type Rule = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn opt<'py, T: pyo3::conversion::FromPyObjectOwned<'py>>(
    d: &Bound<'py, PyDict>,
    key: &str,
    default: T,
) -> PyResult<T> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => v
            .extract::<T>()
            .map_err(|e| ConfigError::new_err(format!("{key}: {}", Into::<PyErr>::into(e)))),
        _ => Ok(default),
    }
}

fn ua_rules(d: &Bound<'_, PyDict>) -> PyResult<UaRules> {
    Ok(UaRules {
        user_agent: opt::<Vec<Rule>>(d, "user_agent", Vec::new())?,
        os: opt::<Vec<Rule>>(d, "os", Vec::new())?,
        device: opt::<Vec<Rule>>(d, "device", Vec::new())?,
    })
}

fn bot_lists(d: &Bound<'_, PyDict>) -> PyResult<BotLists> {
    Ok(BotLists {
        ua_patterns: opt(d, "ua_patterns", Vec::new())?,
        ua_keywords: opt(d, "ua_keywords", Vec::new())?,
        spam_hosts: opt(d, "spam_hosts", Vec::new())?,
        ip_blocks: opt(d, "ip_blocks", Vec::new())?,
    })
}

fn trusted(list: Vec<String>) -> PyResult<TrustedProxies> {
    let nets = list
        .iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::new_err(format!(
                        "trusted_proxies: {s:?} is not an IP or CIDR range"
                    ))
                })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(TrustedProxies(nets))
}

fn kind_of(kind: &str) -> PyResult<HitKind> {
    match kind {
        "hit" | "page_view" => Ok(HitKind::PageView),
        "event" => Ok(HitKind::Event),
        "session" => Ok(HitKind::KeepAlive),
        other => Err(PyValueError::new_err(format!("unknown hit kind {other:?}"))),
    }
}

fn summary_dict<'py>(py: Python<'py>, s: &Summary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("accepted", s.accepted)?;
    d.set_item("dropped", s.dropped)?;
    let reasons = PyDict::new(py);
    for (reason, n) in &s.reasons {
        reasons.set_item(reason.as_str(), n)?;
    }
    d.set_item("reasons", reasons)?;
    Ok(d)
}

fn status_dict<'py>(py: Python<'py>, s: &BackgroundStatus) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ok", s.error.is_none())?;
    d.set_item("error", s.error.as_deref())?;
    d.set_item("last_error", s.last_error.as_deref())?;
    d.set_item("last_error_at_ms", s.last_error_at_ms)?;
    d.set_item("errors", s.errors)?;
    Ok(d)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One per worker process: the whole hot path behind a few coarse calls.
#[pyclass(frozen, module = "trail._core")]
pub struct Engine {
    inner: CoreEngine,
    max_batch: usize,
    window: TimeWindow,
    /// The browser routes' sites (filled by the Python side on a miss).
    browser_sites: Directory,
    /// The per-IP limit of the browser routes: (requests, window ms); None = off.
    collect_limit: Option<(u32, i64)>,
}

/// What `Engine.browser` answers: (outcome, cors, field or site key, message, retry-after s).
type BrowserReply = (&'static str, &'static str, String, String, i64);

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (data_dir, worker_id, options, ua_rules, bot_lists))]
    fn new(
        py: Python<'_>,
        data_dir: PathBuf,
        worker_id: u32,
        options: &Bound<'_, PyDict>,
        ua_rules: &Bound<'_, PyDict>,
        bot_lists: &Bound<'_, PyDict>,
    ) -> PyResult<Engine> {
        let rules = self::ua_rules(ua_rules)?;
        let lists = self::bot_lists(bot_lists)?;
        let geoip: Option<String> = opt(options, "geoip_db", None)?;
        let storage = StorageConfig {
            data_dir: data_dir.clone(),
            worker_id,
            fsync_interval_ms: opt(options, "fsync_interval_ms", 1000)?,
            strict: opt(options, "strict_fsync", false)?,
            seal_interval_ms: opt(options, "seal_interval_ms", 1000)?,
            seal_rows: opt(options, "seal_rows", 50_000)?,
            idle_release_ms: opt(options, "idle_release_ms", 2_000)?,
        };
        let trusted = trusted(opt(options, "trusted_proxies", Vec::new())?)?;
        let cap: u32 = opt(options, "page_view_cap", 200)?;
        let ua_cache: usize = opt(options, "ua_cache_size", 10_000)?;
        let map_size: usize = opt(options, "state_map_size", STATE_MAP_SIZE)?;
        let redis_url: Option<String> = opt(options, "redis_url", None)?;
        let max_batch: usize = opt(options, "max_batch", 1000)?;
        let collect_limit: Option<(u32, i64)> = opt(options, "rate_limit_collect", None)?;
        let window = TimeWindow::new(
            opt(options, "max_hit_age_days", 365)?,
            opt(options, "max_hit_future_seconds", 300)?,
        );
        let inner = py.detach(|| -> Result<CoreEngine, CoreError> {
            Ok(CoreEngine {
                ua: UaParser::new(&rules, ua_cache)?,
                bots: BotFilter::new(&lists)?,
                geo: Geo::open(geoip.as_deref())?,
                sessions: StateStore::open(&data_dir, map_size, redis_url.as_deref())?,
                storage: Storage::open(storage)?,
                trusted,
                page_view_cap: cap,
                drops: Default::default(),
                rules: Default::default(),
            })
        })?;
        Ok(Engine {
            inner,
            max_batch,
            window,
            browser_sites: Directory::default(),
            collect_limit,
        })
    }

    /// Ingest a Pirsch API body (`/hit`, `/event`, `/session`, or their batch forms). Raises
    /// InvalidInput naming the field (`[i].field` in a batch) for anything validate.rs refuses.
    /// `body` is `bytes` or the `str` Robyn decoded it into (read in place, see `body_bytes`).
    #[pyo3(signature = (site_id, site_hostname, kind, body, batch=false, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn ingest_api<'py>(
        &self,
        py: Python<'py>,
        site_id: String,
        site_hostname: String,
        kind: &str,
        body: &Bound<'py, PyAny>,
        batch: bool,
        now: Option<i64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let kind = kind_of(kind)?;
        let mut encoded = None;
        let body = body_bytes(body, &mut encoded)?;
        let site = SiteCtx {
            id: site_id,
            hostname: site_hostname,
        };
        let checker = self.checker(Source::Api, batch, now);
        let summary = py.detach(|| -> Result<Summary, CoreError> {
            let hits = checker.check_all(kind, parse_items(body, batch)?)?;
            self.inner.ingest(&site, kind, &hits, &Origin::Api)
        })?;
        summary_dict(py, &summary)
    }

    /// Ingest one browser-collected item; the client IP comes from the socket peer and headers.
    /// Raises InvalidInput naming the field, under the same rules as `ingest_api`.
    #[pyo3(signature = (site_id, site_hostname, kind, body, peer, headers, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn ingest_browser<'py>(
        &self,
        py: Python<'py>,
        site_id: String,
        site_hostname: String,
        kind: &str,
        body: &Bound<'py, PyBytes>,
        peer: &str,
        headers: Vec<(String, String)>,
        now: Option<i64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let kind = kind_of(kind)?;
        let peer: IpAddr = peer
            .parse()
            .map_err(|_| PyValueError::new_err(format!("bad peer address {peer:?}")))?;
        let headers = Headers(
            headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        );
        let client = crate::ip::ip_from_request(peer, &headers, &self.inner.trusted);
        let body = body.as_bytes();
        let site = SiteCtx {
            id: site_id,
            hostname: site_hostname,
        };
        let checker = self.checker(Source::Browser, false, now);
        let summary = py.detach(|| -> Result<Summary, CoreError> {
            let mut items = parse_items(body, false)?;
            for item in &mut items {
                if item.user_agent.is_none() {
                    item.user_agent = headers.get("user-agent").map(str::to_string);
                }
            }
            let hits = checker.check_all(kind, items)?;
            let origin = Origin::Browser {
                client,
                headers: &headers,
            };
            self.inner.ingest(&site, kind, &hits, &origin)
        })?;
        summary_dict(py, &summary)
    }

    /// A request of a browser route (`collect`, `pirsch_hit`, `pirsch_event`) from rate limit to
    /// stored rows in one call (see browser.rs). `body` is `bytes` or the `str` Robyn decoded
    /// it into; `query` the query string as the HTTP layer split it, a dict of name -> list of
    /// values or (name, values) pairs; `peer` the socket address; `headers` a dict of name ->
    /// value (repeated headers joined with ", ") or (name, value) pairs; `stamp` the meta
    /// store's last transaction id.
    /// Answers (outcome, cors, text, message, retry_after): outcome "accepted", "silent",
    /// "invalid" (text = field), "not_found", "limited" (retry_after in s), "not_browser", or
    /// "lookup_id" / "lookup_code" (text = the key: `put_browser_site` it, then ask again); cors
    /// "allowed", "denied" or "any_site" (allowed if the Origin is any site's host).
    #[pyo3(signature = (route, body, query, peer, headers, origin, stamp, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn browser<'py>(
        &self,
        py: Python<'py>,
        route: &str,
        body: &Bound<'_, PyAny>,
        query: &Bound<'_, PyAny>,
        peer: &str,
        headers: &Bound<'_, PyAny>,
        origin: &str,
        stamp: u64,
        now: Option<i64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let route = match route {
            "collect" => Route::Collect,
            "pirsch_hit" => Route::PirschHit,
            "pirsch_event" => Route::PirschEvent,
            other => return Err(PyValueError::new_err(format!("unknown route {other:?}"))),
        };
        let headers = request_headers(headers)?;
        let held = if route == Route::PirschHit {
            query_pairs(query)?
        } else {
            Vec::new()
        };
        // The text of the query's Python strings, read in place while they are held.
        let query = held
            .iter()
            .map(|(k, vs)| {
                Ok((
                    k.to_str()?,
                    vs.iter().map(|v| v.to_str()).collect::<PyResult<_>>()?,
                ))
            })
            .collect::<PyResult<Vec<(&str, Vec<&str>)>>>()?;
        let peer = crate::browser::peer_address(peer);
        let checker = self.checker(Source::Browser, false, now);
        let mut encoded = None;
        let body = body_bytes(body, &mut encoded)?;
        let reply = py.detach(|| -> Result<BrowserReply, CoreError> {
            let request = crate::browser::Request {
                route,
                body,
                query: &query,
                origin,
            };
            let find = |key: &SiteKey| self.browser_sites.find(key, stamp);
            let answer = crate::browser::judge(&request, find);
            self.browser_reply(answer, &checker, peer, &headers)
        })?;
        reply_tuple(py, reply)
    }

    /// Remember the site a browser request's key names (None: no such site) as of `stamp`.
    /// `site` is (id, hostname, scripts_disabled, CORS hostnames: bare, empty = any).
    #[pyo3(signature = (kind, key, site, stamp))]
    fn put_browser_site(
        &self,
        kind: &str,
        key: String,
        site: Option<(String, String, bool, Vec<String>)>,
        stamp: u64,
    ) -> PyResult<()> {
        let key = match kind {
            "id" => SiteKey::Id(key),
            "code" => SiteKey::Code(key),
            other => return Err(PyValueError::new_err(format!("unknown site key {other:?}"))),
        };
        let site = site.map(|(id, hostname, scripts_disabled, hostnames)| BrowserSite {
            id,
            hostname,
            scripts_disabled,
            hostnames,
        });
        self.browser_sites.put(key, site, stamp);
        Ok(())
    }

    /// Seal buffered rows into segment files now (tests and shutdown); returns rows sealed.
    fn seal(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(py.detach(|| self.inner.storage.seal())?)
    }

    /// Seal, fsync and stop background work. The engine must not be used afterwards.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| -> Result<(), CoreError> {
            self.inner.storage.close()?;
            self.inner.sessions.sync()
        })?;
        Ok(())
    }

    /// Swap in the GeoIP database at `path` while hits go on (they finish on the old one).
    /// Raises ConfigError when the file is not a readable MaxMind DB; the old one then stays.
    fn reload_geoip(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        Ok(py.detach(|| self.inner.geo.reload(path))?)
    }

    /// The version of a site's rules this worker holds, or None if never set.
    fn rules_version(&self, site_id: &str) -> Option<u64> {
        self.inner.rules_version(site_id)
    }

    /// Install a site's rules: allowed hostnames (empty = any) and traffic filters as
    /// (type, filter) pairs. Raises InvalidInput naming the bad filter.
    fn set_rules(
        &self,
        site_id: &str,
        version: u64,
        hostnames: Vec<String>,
        filters: Vec<(String, String)>,
    ) -> PyResult<()> {
        let rules = crate::rules::build(version, &hostnames, &filters)?;
        self.inner.set_rules(site_id, rules);
        Ok(())
    }

    /// Count a request against a limit shared by all workers: 0 if allowed, else the
    /// milliseconds until the window resets (for Retry-After).
    fn rate_limit(&self, py: Python<'_>, key: &str, limit: u32, window_ms: i64) -> PyResult<i64> {
        Ok(py.detach(|| {
            self.inner
                .sessions
                .check_rate(key, limit, window_ms, now_ms())
        })?)
    }

    /// The session store: {"backend": "lmdb" | "redis", "ok", "error"}; Redis is asked with a
    /// PING, so this answers within its timeouts.
    fn session_store_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (backend, state) = py.detach(|| self.inner.sessions.status());
        let d = PyDict::new(py);
        d.set_item("backend", backend)?;
        d.set_item("ok", state.is_ok())?;
        d.set_item("error", state.err().map(|e| e.to_string()))?;
        Ok(d)
    }

    /// Dropped hits by reason since this engine started.
    fn drop_counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let drops = self.inner.drops.lock();
        drops.iter().map(|(r, n)| (r.as_str(), *n)).collect()
    }

    /// Whether the background WAL fsyncs and segment seals work: {"ok", "error", "last_error",
    /// "last_error_at_ms", "errors"} (see wal/health.rs).
    fn background_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        status_dict(py, &self.inner.storage.background_status())
    }
}

impl Engine {
    /// Store what a browser request's answer carries, and say how it ended. Every request but
    /// a lookup is counted against the per-IP limit first, which then answers before anything
    /// else; a stored item is counted in the pipeline's own transaction.
    fn browser_reply(
        &self,
        answer: Answer,
        checker: &Checker,
        peer: IpAddr,
        headers: &Headers,
    ) -> Result<BrowserReply, CoreError> {
        if matches!(answer, Answer::Lookup(_) | Answer::NotBrowser) {
            return Ok(plain_reply(answer));
        }
        // The client IP once, for the rate key and the stored hit.
        let client = crate::ip::ip_from_request(peer, headers, &self.inner.trusted);
        let rate = self.collect_limit.map(|(limit, window_ms)| RateCount {
            key: crate::browser::rate_key(client),
            limit,
            window_ms,
            now: checker.now,
        });
        let answer = match answer {
            Answer::Ingest {
                site,
                kind,
                mut item,
                cors,
            } if !site.scripts_disabled => {
                item.user_agent = headers.get("user-agent").map(str::to_string);
                match checker.check(kind, *item, 0) {
                    Ok(hit) => {
                        let ctx = SiteCtx {
                            id: site.id.clone(),
                            hostname: site.hostname.clone(),
                        };
                        let origin = Origin::Browser { client, headers };
                        let (summary, wait) = self.inner.ingest_counted(
                            &ctx,
                            kind,
                            &[hit],
                            &origin,
                            rate.as_ref(),
                        )?;
                        let outcome = match (wait, summary.accepted) {
                            (1.., _) => return Ok(limited_reply(wait)),
                            (_, 0) => "silent",
                            _ => "accepted",
                        };
                        return Ok((outcome, cors_name(cors), String::new(), String::new(), 0));
                    }
                    Err(CoreError::Invalid { field, message }) => Answer::Refused {
                        refusal: Refusal { field, message },
                        cors,
                    },
                    Err(e) => return Err(e),
                }
            }
            other => other,
        };
        if let Some(rate) = &rate {
            let (key, limit, window_ms, now) = (&rate.key, rate.limit, rate.window_ms, rate.now);
            let wait = self.inner.sessions.check_rate(key, limit, window_ms, now)?;
            if wait > 0 {
                return Ok(limited_reply(wait));
            }
        }
        Ok(plain_reply(answer))
    }

    fn checker(&self, source: Source, batch: bool, now: Option<i64>) -> Checker {
        Checker {
            source,
            batch,
            max_batch: self.max_batch,
            now: now.unwrap_or_else(now_ms),
            window: self.window,
        }
    }
}

/// The bytes of a request body as Robyn hands it over: `bytes`, or the `str` it decoded a UTF-8
/// body into. A str's UTF-8 is read in place (CPython keeps it with the object: an ASCII str is
/// its own UTF-8), which spares the handler an `encode` and a copy per request. A str that has
/// no UTF-8 form (lone surrogates) is encoded with `surrogatepass` into `encoded`, as the
/// handlers did before, so it fails the same way its bytes would.
fn body_bytes<'a, 'py>(
    body: &'a Bound<'py, PyAny>,
    encoded: &'a mut Option<Bound<'py, PyBytes>>,
) -> PyResult<&'a [u8]> {
    if let Ok(bytes) = body.cast::<PyBytes>() {
        return Ok(bytes.as_bytes());
    }
    let text = body.cast::<PyString>().map_err(PyErr::from)?;
    if let Ok(s) = text.to_str() {
        return Ok(s.as_bytes());
    }
    let bytes = text
        .call_method1("encode", ("utf-8", "surrogatepass"))?
        .cast_into::<PyBytes>()
        .map_err(PyErr::from)?;
    let bytes: &'a Bound<'py, PyBytes> = encoded.insert(bytes);
    Ok(bytes.as_bytes())
}

/// A browser request's headers: a dict of name -> value (Robyn's `Headers.to_dict()`, names
/// lowercase, repeated headers joined with ", ") or a sequence of (name, value) pairs. Read
/// from the dict in place, without a list of tuples in between.
fn request_headers(obj: &Bound<'_, PyAny>) -> PyResult<Headers> {
    let lower = |k: &str| {
        if k.bytes().any(|b| b.is_ascii_uppercase()) {
            k.to_ascii_lowercase()
        } else {
            k.to_string()
        }
    };
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut pairs = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let (k, v) = (k.cast_into::<PyString>()?, v.cast_into::<PyString>()?);
            pairs.push((lower(k.to_str()?), v.to_str()?.to_string()));
        }
        return Ok(Headers(pairs));
    }
    let pairs: Vec<(String, String)> = obj.extract()?;
    Ok(Headers(
        pairs.into_iter().map(|(k, v)| (lower(&k), v)).collect(),
    ))
}

/// A query string as the HTTP layer split it: a dict of name -> list of values (Robyn's
/// `QueryParams.to_dict()`) or a sequence of (name, values) pairs; the strings themselves,
/// held so that their text can be read without copying it.
type HeldQuery<'py> = Vec<(Bound<'py, PyString>, Vec<Bound<'py, PyString>>)>;

fn query_pairs<'py>(obj: &Bound<'py, PyAny>) -> PyResult<HeldQuery<'py>> {
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut pairs = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            pairs.push((k.cast_into::<PyString>()?, v.extract()?));
        }
        return Ok(pairs);
    }
    obj.extract()
}

/// The reply of an answer that stores nothing (an `Ingest` here is one the site's owner
/// switched off: Pirsch's "disable scripts").
fn plain_reply(answer: Answer) -> BrowserReply {
    let none = String::new;
    match answer {
        Answer::Lookup(SiteKey::Id(key)) => ("lookup_id", "denied", key, none(), 0),
        Answer::Lookup(SiteKey::Code(key)) => ("lookup_code", "denied", key, none(), 0),
        Answer::NotBrowser => ("not_browser", "denied", none(), none(), 0),
        Answer::Refused { refusal, cors } => (
            "invalid",
            cors_name(cors),
            refusal.field,
            refusal.message,
            0,
        ),
        Answer::NotFound { cors } => ("not_found", cors_name(cors), none(), none(), 0),
        Answer::Silent { cors } | Answer::Ingest { cors, .. } => {
            ("silent", cors_name(cors), none(), none(), 0)
        }
    }
}

/// The reply as Python's tuple; its fixed words are interned strings, made once.
fn reply_tuple<'py>(py: Python<'py>, reply: BrowserReply) -> PyResult<Bound<'py, PyTuple>> {
    let word = |w: &'static str| -> Bound<'py, PyString> {
        let interned = match w {
            "accepted" => intern!(py, "accepted"),
            "silent" => intern!(py, "silent"),
            "invalid" => intern!(py, "invalid"),
            "not_found" => intern!(py, "not_found"),
            "limited" => intern!(py, "limited"),
            "allowed" => intern!(py, "allowed"),
            "denied" => intern!(py, "denied"),
            "any_site" => intern!(py, "any_site"),
            _ => return PyString::new(py, w),
        };
        interned.clone()
    };
    let text = |t: String| -> Bound<'py, PyString> {
        if t.is_empty() {
            intern!(py, "").clone()
        } else {
            PyString::new(py, &t)
        }
    };
    let (outcome, cors, field, message, retry_after) = reply;
    let items: [Bound<'py, PyAny>; 5] = [
        word(outcome).into_any(),
        word(cors).into_any(),
        text(field).into_any(),
        text(message).into_any(),
        retry_after.into_pyobject(py)?.into_any(),
    ];
    PyTuple::new(py, items)
}

/// 429: the seconds to wait, rounded up.
fn limited_reply(wait_ms: i64) -> BrowserReply {
    let seconds = ((wait_ms + 999) / 1000).max(1);
    ("limited", "any_site", String::new(), String::new(), seconds)
}

fn cors_name(cors: Cors) -> &'static str {
    match cors {
        Cors::Allowed => "allowed",
        Cors::Denied => "denied",
        Cors::AnySite => "any_site",
    }
}

/// The maintenance process's handle on session state (it opens no Engine).
#[pyclass(frozen, module = "trail._core")]
pub struct SessionState {
    inner: SessionStore,
}

#[pymethods]
impl SessionState {
    #[new]
    fn new(py: Python<'_>, data_dir: PathBuf) -> PyResult<SessionState> {
        let inner = py.detach(|| SessionStore::open(&data_dir, STATE_MAP_SIZE))?;
        Ok(SessionState { inner })
    }

    /// Delete sessions idle for longer than `max_age_ms` (default: 2 h, well past the timeout).
    #[pyo3(signature = (max_age_ms=None))]
    fn sweep(&self, py: Python<'_>, max_age_ms: Option<i64>) -> PyResult<usize> {
        let age = max_age_ms.unwrap_or(4 * SESSION_TIMEOUT_MS);
        Ok(py.detach(|| self.inner.sweep(now_ms(), age))?)
    }

    /// Delete rate-limit windows that have ended (windows up to `window_ms` long).
    fn sweep_rate_limits(&self, py: Python<'_>, window_ms: i64) -> PyResult<usize> {
        Ok(py.detach(|| crate::ratelimit::sweep(&self.inner, now_ms(), window_ms))?)
    }

    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.sync())?)
    }
}

/// Give the pages this thread's allocator heap (mimalloc, the extension's allocator) holds free
/// back to the system, and those every thread's heap has marked for it; a statistics query's
/// kernels allocate tens of MB that mimalloc would otherwise keep for reuse.
#[pyfunction]
fn release_memory() {
    crate::release_memory();
}

/// Check a `redis_url` setting at startup: the URL parses and the server answers a PING.
/// Raises ConfigError with a message that starts with `redis_url: `.
#[pyfunction]
fn redis_check(py: Python<'_>, url: &str) -> PyResult<()> {
    py.detach(|| crate::redis_store::RedisStore::open(url).map(drop))?;
    Ok(())
}

/// The client IP of a browser-facing request exactly as the engine resolves the IP it stores
/// (socket peer; proxy headers only from trusted proxies), for rate-limit keys.
#[pyfunction]
fn client_ip(
    peer: &str,
    headers: Vec<(String, String)>,
    trusted_proxies: Vec<String>,
) -> PyResult<String> {
    let peer: IpAddr = peer
        .parse()
        .map_err(|_| PyValueError::new_err(format!("bad peer address {peer:?}")))?;
    let headers = Headers(
        headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
    );
    Ok(crate::ip::ip_from_request(peer, &headers, &trusted(trusted_proxies)?).to_string())
}

/// (referrer, utm_source, user_agent, browser, browser_version, os, os_version, width).
type RecordedRow = (String, String, String, String, String, String, String, i64);

/// Session dimensions of imported rows (imported::derive), one per (referrer, utm_source,
/// user_agent, browser, browser_version, os, os_version, screen_width) tuple, as a dict of
/// columns named like the stored ones. `ua_rules` None: no User-Agent is parsed.
#[pyfunction]
#[pyo3(signature = (site_hostname, rows, ua_rules=None))]
fn imported_dims<'py>(
    py: Python<'py>,
    site_hostname: &str,
    rows: Vec<RecordedRow>,
    ua_rules: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let parser = match ua_rules {
        Some(d) => Some(UaParser::new(&self::ua_rules(d)?, 0)?),
        None => None,
    };
    let derived: Vec<Derived> = py.detach(|| {
        rows.into_iter()
            .map(
                |(
                    referrer,
                    utm_source,
                    user_agent,
                    browser,
                    browser_version,
                    os,
                    os_version,
                    width,
                )| {
                    let r = Recorded {
                        referrer,
                        utm_source,
                        user_agent,
                        browser,
                        browser_version,
                        os,
                        os_version,
                        width,
                    };
                    crate::imported::derive(parser.as_ref(), site_hostname, &r)
                },
            )
            .collect()
    });
    let out = PyDict::new(py);
    let text = |f: fn(&Derived) -> &str| derived.iter().map(f).collect::<Vec<&str>>();
    out.set_item("referrer", text(|d| &d.referrer))?;
    out.set_item("referrer_name", text(|d| &d.referrer_name))?;
    out.set_item("channel", text(|d| &d.channel))?;
    out.set_item("utm_source", text(|d| &d.utm_source))?;
    out.set_item("browser", text(|d| &d.ua.browser))?;
    out.set_item("browser_version", text(|d| &d.ua.browser_version))?;
    out.set_item("os", text(|d| &d.ua.os))?;
    out.set_item("os_version", text(|d| &d.ua.os_version))?;
    out.set_item("screen_class", text(|d| &d.screen_class))?;
    out.set_item(
        "desktop",
        derived.iter().map(|d| d.ua.desktop).collect::<Vec<bool>>(),
    )?;
    out.set_item(
        "mobile",
        derived.iter().map(|d| d.ua.mobile).collect::<Vec<bool>>(),
    )?;
    out.set_item(
        "screen_width",
        derived.iter().map(|d| d.screen_width).collect::<Vec<u32>>(),
    )?;
    Ok(out)
}

/// TinyTrail's coarse channel for a stored GA4-style channel (one table, in channel.rs).
#[pyfunction]
fn coarse_channel(channel: &str) -> &'static str {
    crate::channel::coarse_channel(channel)
}

/// Open, fully verify and probe the MaxMind DB at `path` (see geo::check): a dict with
/// database_type, build_epoch, ip_version, node_count and `locations`, one
/// (country_code, region, city) per probe. Raises ConfigError naming the problem.
#[pyfunction]
fn mmdb_check<'py>(
    py: Python<'py>,
    path: &str,
    probes: Vec<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let ips = probes
        .iter()
        .map(|p| {
            p.parse::<IpAddr>()
                .map_err(|_| PyValueError::new_err(format!("bad IP address {p:?}")))
        })
        .collect::<PyResult<Vec<IpAddr>>>()?;
    let info = py.detach(|| crate::geo::check(path, &ips))?;
    let d = PyDict::new(py);
    d.set_item("database_type", info.database_type)?;
    d.set_item("build_epoch", info.build_epoch)?;
    d.set_item("ip_version", info.ip_version)?;
    d.set_item("node_count", info.node_count)?;
    let locations: Vec<(String, String, String)> = info
        .locations
        .into_iter()
        .map(|l| (l.country_code, l.region, l.city))
        .collect();
    d.set_item("locations", locations)?;
    Ok(d)
}

/// Replay the WAL a worker id left behind into segments, e.g. after `--workers` was lowered.
/// Fails with StorageError while a live worker holds that id.
#[pyfunction]
fn recover_wal(py: Python<'_>, data_dir: PathBuf, worker_id: u32) -> PyResult<()> {
    let config = StorageConfig {
        data_dir,
        worker_id,
        fsync_interval_ms: 1000,
        strict: false,
        seal_interval_ms: 1000,
        seal_rows: 50_000,
        idle_release_ms: 0,
    };
    py.detach(|| Storage::open(config)?.close())?;
    Ok(())
}

/// A C-contiguous numpy array (or any buffer) of `T` as a slice, without copying.
fn buffer_slice<T: pyo3::buffer::Element>(buf: &PyBuffer<T>) -> PyResult<&[T]> {
    let ptr = buf
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err("expected a C-contiguous array"))?;
    // SAFETY: PyBuffer checked the element type and size; the memory stays alive and exported
    // while `buf` is borrowed (the returned slice borrows it). The arrays come from
    // trail.stats.kernels, which creates them for this call and shares them with no other
    // thread, or from trail.stats.rollup_visitors, whose indexes are read-only once made (files
    // mapped read-only, or arrays no code writes to), so nothing writes to them while the GIL
    // is released.
    Ok(unsafe { ptr.as_ref() })
}

/// Exact number of distinct values of a uint64 array (see kernels::distinct_count).
#[pyfunction]
fn distinct_u64(py: Python<'_>, values: PyBuffer<u64>) -> PyResult<u64> {
    let values = buffer_slice(&values)?;
    Ok(py.detach(|| crate::kernels::distinct_count(values)))
}

/// The time spent on each page view, the next view's duration in its session (see
/// kernels::times_on_page): one native-endian uint32 per row, as bytes (numpy.frombuffer), and
/// the (visitor, session) pairs with two views at one time.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn times_on_page<'py>(
    py: Python<'py>,
    visitors: PyBuffer<u64>,
    sessions: PyBuffer<u32>,
    times: PyBuffer<i64>,
    durations: PyBuffer<u32>,
) -> PyResult<(Bound<'py, PyBytes>, Vec<(u64, u32)>)> {
    let (v, s, t, d) = (
        buffer_slice(&visitors)?,
        buffer_slice(&sessions)?,
        buffer_slice(&times)?,
        buffer_slice(&durations)?,
    );
    let (out, tied) = py.detach(|| crate::kernels::times_on_page(v, s, t, d));
    let bytes = PyBytes::new_with(py, out.len() * 4, |buf| {
        for (chunk, v) in buf.chunks_exact_mut(4).zip(&out) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        Ok(())
    })?;
    Ok((bytes, tied))
}

/// times_on_page summed per bucket of `breaks` (ascending ms; see
/// kernels::time_on_page_by_bucket). Returns (total seconds, views with a time) per bucket and
/// the (visitor, session) pairs with two views at one time.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn time_on_page_by_bucket(
    py: Python<'_>,
    visitors: PyBuffer<u64>,
    sessions: PyBuffer<u32>,
    times: PyBuffer<i64>,
    durations: PyBuffer<u32>,
    breaks: Vec<i64>,
) -> PyResult<(Vec<u64>, Vec<u64>, Vec<(u64, u32)>)> {
    let (v, s, t, d) = (
        buffer_slice(&visitors)?,
        buffer_slice(&sessions)?,
        buffer_slice(&times)?,
        buffer_slice(&durations)?,
    );
    if !breaks.is_sorted() {
        return Err(PyValueError::new_err("breaks must be ascending"));
    }
    let ((totals, counts), tied) =
        py.detach(|| crate::kernels::time_on_page_by_bucket(v, s, t, d, &breaks));
    Ok((totals, counts, tied))
}

/// Per-group rows, distinct visitors and distinct (visitor, session) pairs, with each group's
/// first and latest row (see kernels::group_stats; `times` may be empty). Returns
/// (keys, first, last, rows, visitors, sessions), one entry per group, then
/// (tie_groups, tie_rows): the rows sharing their group's greatest time, `last` included.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn group_stats(
    py: Python<'_>,
    keys: PyBuffer<u64>,
    visitors: PyBuffer<u64>,
    sessions: PyBuffer<u32>,
    times: PyBuffer<i64>,
) -> PyResult<(
    Vec<u64>,
    Vec<u64>,
    Vec<u64>,
    Vec<u64>,
    Vec<u64>,
    Vec<u64>,
    Vec<u64>,
    Vec<u64>,
)> {
    let (k, v, s, t) = (
        buffer_slice(&keys)?,
        buffer_slice(&visitors)?,
        buffer_slice(&sessions)?,
        buffer_slice(&times)?,
    );
    let g = py.detach(|| crate::kernels::group_stats(k, v, s, t));
    Ok((
        g.keys,
        g.first,
        g.last,
        g.rows,
        g.visitors,
        g.sessions,
        g.tie_groups,
        g.tie_rows,
    ))
}

/// time_on_page_by_bucket over rows in chunks (see kernels::time_on_page_by_bucket_chunks):
/// chunk `c` is `visitors[c]`, `sessions[c]`, `times[c]`, `durations[c]`, e.g. zero-copy views
/// of the chunks of Polars columns (immutable buffers the caller holds for the call).
/// ValueError when the lists or a chunk's columns differ in length.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn time_on_page_by_bucket_chunks(
    py: Python<'_>,
    visitors: Vec<PyBuffer<u64>>,
    sessions: Vec<PyBuffer<u32>>,
    times: Vec<PyBuffer<i64>>,
    durations: Vec<PyBuffer<u32>>,
    breaks: Vec<i64>,
) -> PyResult<(Vec<u64>, Vec<u64>, Vec<(u64, u32)>)> {
    let n = visitors.len();
    if [sessions.len(), times.len(), durations.len()] != [n; 3] {
        return Err(PyValueError::new_err("column chunk lists differ in length"));
    }
    if !breaks.is_sorted() {
        return Err(PyValueError::new_err("breaks must be ascending"));
    }
    let mut chunks = Vec::with_capacity(n);
    for c in 0..n {
        let chunk = crate::kernels::ViewChunk {
            visitors: buffer_slice(&visitors[c])?,
            sessions: buffer_slice(&sessions[c])?,
            times: buffer_slice(&times[c])?,
            durations: buffer_slice(&durations[c])?,
        };
        let len = chunk.visitors.len();
        if [
            chunk.sessions.len(),
            chunk.times.len(),
            chunk.durations.len(),
        ] != [len; 3]
        {
            return Err(PyValueError::new_err("a chunk's columns differ in length"));
        }
        chunks.push(chunk);
    }
    let ((totals, counts), tied) =
        py.detach(|| crate::kernels::time_on_page_by_bucket_chunks(&chunks, &breaks));
    Ok((totals, counts, tied))
}

/// Per-group rows, distinct visitors, distinct (visitor, session) pairs and distinct pairs among
/// the flagged ones (`flag_visitors[j]`, `flag_sessions[j]`), see kernels::group_counts.
/// Returns (keys, first, rows, visitors, sessions, flagged), one entry per group.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn group_counts(
    py: Python<'_>,
    keys: PyBuffer<u64>,
    visitors: PyBuffer<u64>,
    sessions: PyBuffer<u32>,
    flag_visitors: PyBuffer<u64>,
    flag_sessions: PyBuffer<u32>,
) -> PyResult<(Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>)> {
    let (k, v, s) = (
        buffer_slice(&keys)?,
        buffer_slice(&visitors)?,
        buffer_slice(&sessions)?,
    );
    let (fv, fs) = (buffer_slice(&flag_visitors)?, buffer_slice(&flag_sessions)?);
    if fv.len() != fs.len() {
        return Err(PyValueError::new_err("flagged columns differ in length"));
    }
    let g = py.detach(|| {
        let flagged: crate::kernels::PairSet = fv.iter().copied().zip(fs.iter().copied()).collect();
        crate::kernels::group_counts(k, v, s, &flagged)
    });
    Ok((g.keys, g.first, g.rows, g.visitors, g.sessions, g.flagged))
}

/// group_counts over the keys of a local time part of `times` (see kernels::TimePart):
/// the same tuple, the keys being the parts' values. ValueError on a bad unit or modulus.
#[pyfunction]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn time_part_counts(
    py: Python<'_>,
    times: PyBuffer<i64>,
    visitors: PyBuffer<u64>,
    sessions: PyBuffer<u32>,
    flag_visitors: PyBuffer<u64>,
    flag_sessions: PyBuffer<u32>,
    shift: i64,
    unit: i64,
    add: i64,
    modulus: i64,
) -> PyResult<(Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>, Vec<u64>)> {
    let (t, v, s) = (
        buffer_slice(&times)?,
        buffer_slice(&visitors)?,
        buffer_slice(&sessions)?,
    );
    let (fv, fs) = (buffer_slice(&flag_visitors)?, buffer_slice(&flag_sessions)?);
    if fv.len() != fs.len() {
        return Err(PyValueError::new_err("flagged columns differ in length"));
    }
    let part =
        crate::kernels::TimePart::new(shift, unit, add, modulus).map_err(PyValueError::new_err)?;
    let g = py.detach(|| {
        let flagged: crate::kernels::PairSet = fv.iter().copied().zip(fs.iter().copied()).collect();
        crate::kernels::time_part_counts(t, part, v, s, &flagged)
    });
    Ok((g.keys, g.first, g.rows, g.visitors, g.sessions, g.flagged))
}

/// Session metrics per group (see kernels::session_metrics). Returns
/// (keys, first, visitors, sessions, views, bounces); ValueError when lengths differ.
#[pyfunction]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn session_metrics(
    py: Python<'_>,
    keys: PyBuffer<u64>,
    visitors: PyBuffer<u64>,
    sessions: PyBuffer<u32>,
    signs: PyBuffer<i8>,
    page_views: PyBuffer<u32>,
    bounces: PyBuffer<u8>,
) -> PyResult<(Vec<u64>, Vec<u64>, Vec<u64>, Vec<i64>, Vec<i64>, Vec<i64>)> {
    let rows = crate::kernels::SessionRows {
        keys: buffer_slice(&keys)?,
        visitors: buffer_slice(&visitors)?,
        sessions: buffer_slice(&sessions)?,
        signs: buffer_slice(&signs)?,
        page_views: buffer_slice(&page_views)?,
        bounces: buffer_slice(&bounces)?,
    };
    let m = py
        .detach(|| crate::kernels::session_metrics(&rows))
        .map_err(PyValueError::new_err)?;
    Ok((m.keys, m.first, m.visitors, m.sessions, m.views, m.bounces))
}

/// Distinct visitors per group over delta-coded per-day lists (see kernels::union_visitors).
/// ValueError when the arrays do not fit together.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn union_visitors(
    py: Python<'_>,
    ids: PyBuffer<u64>,
    id_offsets: PyBuffer<u64>,
    deltas: PyBuffer<u32>,
    lens: PyBuffer<u32>,
    days: PyBuffer<u32>,
    groups: PyBuffer<u32>,
    n_groups: usize,
) -> PyResult<Vec<u64>> {
    let (ids, offsets, deltas) = (
        buffer_slice(&ids)?,
        buffer_slice(&id_offsets)?,
        buffer_slice(&deltas)?,
    );
    let lists = crate::kernels::ListsOf {
        lens: buffer_slice(&lens)?,
        days: buffer_slice(&days)?,
        groups: buffer_slice(&groups)?,
    };
    py.detach(|| crate::kernels::union_visitors(ids, offsets, deltas, &lists, n_groups))
        .map_err(PyValueError::new_err)
}

/// Where each of `values` would go in `sorted` (numpy.searchsorted, side "left"), fast when
/// the values come in ascending runs (see kernels::sorted_positions): native-endian uint32, as
/// bytes (numpy.frombuffer).
#[pyfunction]
fn sorted_positions<'py>(
    py: Python<'py>,
    sorted: PyBuffer<u64>,
    values: PyBuffer<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let (sorted, values) = (buffer_slice(&sorted)?, buffer_slice(&values)?);
    let out = py
        .detach(|| crate::kernels::sorted_positions(sorted, values))
        .map_err(PyValueError::new_err)?;
    PyBytes::new_with(py, out.len() * 4, |buf| {
        for (chunk, v) in buf.chunks_exact_mut(4).zip(&out) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        Ok(())
    })
}

/// A buffer of int16 or int32 combinations, as a slice of either.
enum Combos {
    Small(PyBuffer<i16>),
    Wide(PyBuffer<i32>),
}

impl Combos {
    fn of(obj: &Bound<'_, PyAny>) -> PyResult<Combos> {
        match PyBuffer::<i16>::get(obj) {
            Ok(b) => Ok(Combos::Small(b)),
            Err(_) => Ok(Combos::Wide(PyBuffer::<i32>::get(obj)?)),
        }
    }
}

/// Runs the closure over the runs of (visitor, combination) pairs with either combination type.
fn with_runs<R: Send>(
    py: Python<'_>,
    visitors: &PyBuffer<i32>,
    combos: &Bound<'_, PyAny>,
    combo_group: &PyBuffer<i64>,
    small: impl FnOnce(&crate::kernels::VisitorRuns<'_, i16>) -> Result<R, String> + Send,
    wide: impl FnOnce(&crate::kernels::VisitorRuns<'_, i32>) -> Result<R, String> + Send,
) -> PyResult<R> {
    use crate::kernels::VisitorRuns;
    let (visitors, combo_group) = (buffer_slice(visitors)?, buffer_slice(combo_group)?);
    let result = match Combos::of(combos)? {
        Combos::Small(b) => {
            let combos = buffer_slice(&b)?;
            let runs = VisitorRuns {
                visitors,
                combos,
                combo_group,
            };
            py.detach(|| small(&runs))
        }
        Combos::Wide(b) => {
            let combos = buffer_slice(&b)?;
            let runs = VisitorRuns {
                visitors,
                combos,
                combo_group,
            };
            py.detach(|| wide(&runs))
        }
    };
    result.map_err(PyValueError::new_err)
}

/// Distinct visitors per group over (visitor, combination) pairs sorted by visitor, each
/// combination's group in `combo_group` (see kernels::run_group_counts). ValueError when the
/// arrays do not fit together.
#[pyfunction]
fn run_group_counts(
    py: Python<'_>,
    visitors: PyBuffer<i32>,
    combos: &Bound<'_, PyAny>,
    combo_group: PyBuffer<i64>,
    n_groups: usize,
) -> PyResult<Vec<i64>> {
    with_runs(
        py,
        &visitors,
        combos,
        &combo_group,
        |r| crate::kernels::run_group_counts(r, n_groups),
        |r| crate::kernels::run_group_counts(r, n_groups),
    )
}

/// Whether each (visitor, group) is among the pairs (see kernels::runs_have), one byte each
/// (numpy.frombuffer as bool).
#[pyfunction]
fn runs_have<'py>(
    py: Python<'py>,
    visitors: PyBuffer<i32>,
    combos: &Bound<'py, PyAny>,
    combo_group: PyBuffer<i64>,
    query_visitors: PyBuffer<i64>,
    query_groups: PyBuffer<i64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let (qv, qg) = (buffer_slice(&query_visitors)?, buffer_slice(&query_groups)?);
    let found = with_runs(
        py,
        &visitors,
        combos,
        &combo_group,
        |r| crate::kernels::runs_have(r, qv, qg),
        |r| crate::kernels::runs_have(r, qv, qg),
    )?;
    PyBytes::new_with(py, found.len(), |buf| {
        for (b, &f) in buf.iter_mut().zip(&found) {
            *b = u8::from(f);
        }
        Ok(())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Engine>()?;
    m.add_class::<SessionState>()?;
    m.add_function(wrap_pyfunction!(recover_wal, m)?)?;
    m.add_function(wrap_pyfunction!(client_ip, m)?)?;
    m.add_function(wrap_pyfunction!(redis_check, m)?)?;
    m.add_function(wrap_pyfunction!(release_memory, m)?)?;
    m.add_function(wrap_pyfunction!(mmdb_check, m)?)?;
    m.add_function(wrap_pyfunction!(distinct_u64, m)?)?;
    m.add_function(wrap_pyfunction!(group_stats, m)?)?;
    m.add_function(wrap_pyfunction!(group_counts, m)?)?;
    m.add_function(wrap_pyfunction!(time_part_counts, m)?)?;
    m.add_function(wrap_pyfunction!(times_on_page, m)?)?;
    m.add_function(wrap_pyfunction!(time_on_page_by_bucket, m)?)?;
    m.add_function(wrap_pyfunction!(time_on_page_by_bucket_chunks, m)?)?;
    m.add_function(wrap_pyfunction!(union_visitors, m)?)?;
    m.add_function(wrap_pyfunction!(run_group_counts, m)?)?;
    m.add_function(wrap_pyfunction!(runs_have, m)?)?;
    m.add_function(wrap_pyfunction!(sorted_positions, m)?)?;
    m.add_function(wrap_pyfunction!(session_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(coarse_channel, m)?)?;
    m.add_function(wrap_pyfunction!(imported_dims, m)?)?;
    let limits = PyDict::new(py);
    for (name, value) in LIMITS {
        limits.set_item(name, value)?;
    }
    m.add("LIMITS", limits)?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("Unavailable", py.get_type::<Unavailable>())?;
    Ok(())
}
