//! Request validation: every rule an ingested item must pass, defined once for every path (the
//! Pirsch API and its batches, the Pirsch browser SDK, TinyTrail collect). The glue runs a
//! `Checker` over a request's items before the pipeline, which then trusts the `ValidHit`s it
//! gets. Python's early checks (trail/services/collect.py) read the same numbers from
//! `_core.LIMITS`, exported from `LIMITS` below.
//!
//! A refusal is `CoreError::Invalid` naming the field (`url`, or `[3].url` in a batch), which
//! both APIs answer with a 400.
//!
//! Hit times. Only batch items carry a `time` (Pirsch: "the time the request was made to your
//! server", for servers that buffer hits). Pirsch's ingest library records whatever time it is
//! given (a zero time means now; no bound). trail refuses a `time` more than `max_age_ms` in
//! the past or `max_future_ms` in the future (settings `limits.max_hit_age_days` and
//! `limits.max_hit_future_seconds`): a year-0 or year-9999 row would land in a day directory no
//! report ever reads and break compaction, and a hit from the future would hold its session
//! open. A time without a timezone is not RFC 3339 and is refused too, never guessed.

use crate::errors::{CoreError, Result};
use crate::hit::{HitInput, HitKind};
use crate::ip::ip_from_body;
use serde_json::Value;
use std::net::IpAddr;

/// Longest `url` or `referrer`, in characters.
pub const MAX_URL: usize = 8192;
/// Longest hostname in a URL (RFC 1035: 253 characters, labels of at most 63).
pub const MAX_HOSTNAME: usize = 253;
const MAX_LABEL: usize = 63;
/// Longest title kept. Longer titles are cut, not refused, as Pirsch does.
pub const MAX_TITLE: usize = 512;
/// Largest `screen_width` / `screen_height`, in pixels.
pub const MAX_SCREEN: i64 = 100_000;
/// Longest `event_duration`, in seconds: a day, longer than any session lasts.
pub const MAX_EVENT_DURATION: u32 = 86_400;
/// Longest event name kept (cut, not refused).
pub const MAX_EVENT_NAME: usize = 200;
/// Most tags (and event metadata pairs) kept per hit.
pub const MAX_TAGS: usize = 20;

/// The limits Python reads as `_core.LIMITS`.
pub const LIMITS: [(&str, i64); 7] = [
    ("url", MAX_URL as i64),
    ("hostname", MAX_HOSTNAME as i64),
    ("title", MAX_TITLE as i64),
    ("screen", MAX_SCREEN),
    ("event_duration", MAX_EVENT_DURATION as i64),
    ("event_name", MAX_EVENT_NAME as i64),
    ("tags", MAX_TAGS as i64),
];

const DAY_MS: i64 = 86_400_000;

/// Where items come from, which decides where the client IP is and what counts as a URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A server-side API call: the client IP is the body's `ip`, and a rooted path is a URL
    /// (the Go SDK sends `r.URL.String()`, which is "/path?query" in a server).
    Api,
    /// A browser: the IP comes from the connection, the URL is the page's full address.
    Browser,
}

/// How far from now a batch item's `time` may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    pub max_age_ms: i64,
    pub max_future_ms: i64,
}

impl TimeWindow {
    pub fn new(max_age_days: u32, max_future_seconds: u32) -> TimeWindow {
        TimeWindow {
            max_age_ms: i64::from(max_age_days) * DAY_MS,
            max_future_ms: i64::from(max_future_seconds) * 1000,
        }
    }
}

impl Default for TimeWindow {
    fn default() -> TimeWindow {
        TimeWindow::new(365, 300)
    }
}

/// An item that passed validation, with the values validation had to parse anyway.
#[derive(Clone, Debug)]
pub struct ValidHit {
    pub input: HitInput,
    /// The item's own `time` (batch items) or the request's arrival.
    pub time: i64,
    /// The client IP of an API item; browser items take theirs from the connection.
    pub ip: Option<IpAddr>,
    pub event_duration: u32,
}

/// The rules for one request's items.
#[derive(Clone, Debug)]
pub struct Checker {
    pub source: Source,
    /// Items come as a JSON array: they may carry a `time`, and fields are named `[i].field`.
    pub batch: bool,
    pub max_batch: usize,
    pub now: i64,
    pub window: TimeWindow,
}

impl Checker {
    /// Check every item of a request; the first refusal names its field.
    pub fn check_all(&self, kind: HitKind, items: Vec<HitInput>) -> Result<Vec<ValidHit>> {
        if items.len() > self.max_batch {
            let message = format!("at most {} items per batch", self.max_batch);
            return Err(CoreError::invalid("body", message));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| self.check(kind, item, i))
            .collect()
    }

    /// Check one item; `index` is its place in a batch.
    pub fn check(&self, kind: HitKind, input: HitInput, index: usize) -> Result<ValidHit> {
        let fail = |name: &str| {
            let field = if self.batch {
                format!("[{index}].{name}")
            } else {
                name.to_string()
            };
            move |message: String| CoreError::invalid(field, message)
        };
        let ip = match self.source {
            Source::Api => Some(client_ip(input.ip.as_deref()).map_err(fail("ip"))?),
            Source::Browser => None,
        };
        let url_required = kind != HitKind::KeepAlive;
        url(input.url.as_deref(), url_required, self.source).map_err(fail("url"))?;
        referrer(input.referrer.as_deref()).map_err(fail("referrer"))?;
        screen(input.screen_width).map_err(fail("screen_width"))?;
        screen(input.screen_height).map_err(fail("screen_height"))?;
        if kind == HitKind::Event {
            event_name(input.event_name.as_deref()).map_err(fail("event_name"))?;
        }
        let event_duration =
            event_duration(input.event_duration.as_ref()).map_err(fail("event_duration"))?;
        let time = match (&input.time, self.batch) {
            (Some(t), true) => hit_time(t, self.now, self.window).map_err(fail("time"))?,
            _ => self.now,
        };
        Ok(ValidHit {
            input,
            time,
            ip,
            event_duration,
        })
    }
}

type Rule<T> = std::result::Result<T, String>;

fn blank(value: Option<&str>) -> bool {
    value.map(str::trim).unwrap_or("").is_empty()
}

/// The body's `ip`: one address, or a list forwarded raw from X-Forwarded-For.
fn client_ip(value: Option<&str>) -> Rule<IpAddr> {
    if blank(value) {
        return Err("the client IP is required".into());
    }
    ip_from_body(value.unwrap_or("")).ok_or_else(|| "must be an IP address".into())
}

fn too_long(value: &str, max: usize) -> Rule<()> {
    if value.chars().count() > max {
        return Err(format!("longer than {max} characters"));
    }
    Ok(())
}

fn url(value: Option<&str>, required: bool, source: Source) -> Rule<()> {
    let value = value.map(str::trim).unwrap_or("");
    if value.is_empty() {
        if required {
            return Err("the page URL is required".into());
        }
        return Ok(());
    }
    too_long(value, MAX_URL)?;
    if source == Source::Api && value.starts_with('/') {
        return Ok(());
    }
    let wanted = match source {
        Source::Api => "must be an absolute http(s) URL or a path starting with /",
        Source::Browser => "must be an absolute http(s) URL",
    };
    let parsed = url::Url::parse(value).map_err(|_| wanted.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(wanted.into());
    }
    hostname(parsed.host_str().unwrap_or(""))
}

/// A URL's host: present, at most 253 characters, labels of at most 63.
fn hostname(host: &str) -> Rule<()> {
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return Err("has no hostname".into());
    }
    if host.len() > MAX_HOSTNAME {
        return Err(format!("hostname longer than {MAX_HOSTNAME} characters"));
    }
    if host.split('.').any(|label| label.len() > MAX_LABEL) {
        return Err(format!(
            "hostname has a label longer than {MAX_LABEL} characters"
        ));
    }
    Ok(())
}

/// Referrers are free text (an app id, a newsletter name) as often as URLs: only the length.
fn referrer(value: Option<&str>) -> Rule<()> {
    too_long(value.unwrap_or(""), MAX_URL)
}

fn screen(value: Option<i64>) -> Rule<()> {
    match value {
        Some(v) if !(0..=MAX_SCREEN).contains(&v) => {
            Err(format!("must be between 0 and {MAX_SCREEN}"))
        }
        _ => Ok(()),
    }
}

fn event_name(value: Option<&str>) -> Rule<()> {
    if blank(value) {
        return Err("the event name is required".into());
    }
    Ok(())
}

/// Seconds, as a number or a numeric string; absent, null or "" is 0. Fractions are cut.
fn event_duration(value: Option<&Value>) -> Rule<u32> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(0),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let max = f64::from(MAX_EVENT_DURATION);
    match seconds {
        Some(s) if (0.0..=max).contains(&s) => Ok(s as u32),
        _ => Err(format!(
            "must be a number of seconds between 0 and {MAX_EVENT_DURATION}"
        )),
    }
}

/// An RFC 3339 time with a timezone, within `window` of `now`; UTC milliseconds.
fn hit_time(value: &str, now: i64, window: TimeWindow) -> Rule<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            "must be an RFC 3339 timestamp with a timezone, such as 2023-01-02T14:15:32Z"
                .to_string()
        })?;
    if t < now.saturating_sub(window.max_age_ms) {
        let days = window.max_age_ms / DAY_MS;
        return Err(format!("is more than {days} days in the past"));
    }
    if t > now.saturating_add(window.max_future_ms) {
        let seconds = window.max_future_ms / 1000;
        return Err(format!("is more than {seconds} seconds in the future"));
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
