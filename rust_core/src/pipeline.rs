//! The ingestion pipeline: an ordered list of named steps over one request's hits.
//!
//! prepare (pure, per hit): resolve the IP -> bot checks -> derive dimensions; a dropped hit
//! becomes a value carrying its reason. Then one LMDB transaction runs every hit through the
//! session machine, and one WAL append stores the rows. Drops are counted and logged to the
//! `requests` table.

use crate::bots::{self, BotFilter};
use crate::channel::channel;
use crate::dims::{self, parse_url, truncate};
use crate::errors::{CoreError, Result};
use crate::geo::Geo;
use crate::hit::{ClientHints, Headers, HitInput, HitKind};
use crate::ip::{ip_from_body, ip_from_request, TrustedProxies};
use crate::referrer;
use crate::rows::{Dims, RequestRow, SiteRows};
use crate::rules::SiteRules;
use crate::session::{SessionHit, SessionStore};
use crate::ua::UaParser;
use crate::wal::Storage;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

const MAX_TITLE: usize = 512;
const MAX_TAGS: usize = 20;
const MAX_EVENT_NAME: usize = 200;

/// The site a request was authenticated for.
#[derive(Clone, Debug)]
pub struct SiteCtx {
    pub id: String,
    pub hostname: String,
}

/// Where a hit came from: a server-side API call (IP in the body) or a browser (socket peer).
pub enum Origin<'a> {
    Api,
    Browser { peer: IpAddr, headers: &'a Headers },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub accepted: usize,
    pub dropped: usize,
    pub reasons: BTreeMap<String, usize>,
}

pub struct Engine {
    pub ua: UaParser,
    pub bots: BotFilter,
    pub geo: Geo,
    pub sessions: SessionStore,
    pub storage: Storage,
    pub trusted: TrustedProxies,
    pub page_view_cap: u32,
    /// Drop reasons counted since start, for /health and the logs.
    pub drops: Mutex<BTreeMap<String, u64>>,
    /// Owner-set rules per site id; a site without an entry accepts only its own hostname.
    pub rules: RwLock<HashMap<String, Arc<SiteRules>>>,
}

/// A hit after the pure steps: either ready for the session machine or dropped with a reason.
struct Prepared {
    hit: SessionHit,
    drop: Option<&'static str>,
}

impl Engine {
    /// Ingest validated items of one kind for one site; `times` are the items' own timestamps
    /// (batch) or `now`.
    pub fn ingest(
        &self,
        site: &SiteCtx,
        kind: HitKind,
        items: &[HitInput],
        times: &[i64],
        origin: &Origin,
    ) -> Result<Summary> {
        let rules = self.rules_for(site);
        let prepared: Vec<Prepared> = items
            .iter()
            .zip(times)
            .map(|(item, &t)| self.prepare(site, &rules, kind, item, t, origin))
            .collect();
        let mut rows = Vec::with_capacity(prepared.len() * 4);
        let mut summary = Summary::default();
        let mut txn = self.sessions.begin()?;
        for p in &prepared {
            let reason = match p.drop {
                Some(r) => Some(r),
                None => txn.process(&site.id, &p.hit, self.page_view_cap, &mut rows)?,
            };
            match reason {
                Some(r) => {
                    txn.log_drop(&site.id, &p.hit, r, &mut rows)?;
                    summary.dropped += 1;
                    *summary.reasons.entry(r.to_string()).or_default() += 1;
                }
                None => summary.accepted += 1,
            }
        }
        // The WAL write comes first: a crash between it and the LMDB commit costs at most a
        // split session, never an acknowledged hit.
        if !rows.is_empty() {
            self.storage.append(&[SiteRows {
                site: site.id.clone(),
                rows,
            }])?;
        }
        txn.commit()?;
        if summary.dropped > 0 {
            let mut drops = self.drops.lock();
            for (r, n) in &summary.reasons {
                *drops.entry(r.clone()).or_default() += *n as u64;
            }
        }
        Ok(summary)
    }

    /// The rules version this engine holds for a site (None: never set).
    pub fn rules_version(&self, site_id: &str) -> Option<u64> {
        self.rules.read().get(site_id).map(|r| r.version)
    }

    pub fn set_rules(&self, site_id: &str, rules: SiteRules) {
        self.rules
            .write()
            .insert(site_id.to_string(), Arc::new(rules));
    }

    fn rules_for(&self, site: &SiteCtx) -> Arc<SiteRules> {
        if let Some(r) = self.rules.read().get(&site.id) {
            return r.clone();
        }
        let default = SiteRules {
            hostnames: vec![site.hostname.to_lowercase()],
            ..Default::default()
        };
        Arc::new(crate::rules::build(0, &default.hostnames, &[]).unwrap_or(default))
    }

    fn prepare(
        &self,
        site: &SiteCtx,
        rules: &SiteRules,
        kind: HitKind,
        item: &HitInput,
        time: i64,
        origin: &Origin,
    ) -> Prepared {
        let url = parse_url(item.url.as_deref().unwrap_or(""));
        let user_agent = item.user_agent.clone().unwrap_or_default();
        let ip = match origin {
            Origin::Api => item.ip.as_deref().and_then(ip_from_body),
            Origin::Browser { peer, headers } => {
                Some(ip_from_request(*peer, headers, &self.trusted))
            }
        };
        let ip_text = ip.map(|i| i.to_string()).unwrap_or_default();
        let raw_referrer = item.referrer.clone().unwrap_or_default();
        let referrer = referrer::resolve(&raw_referrer, &url, &site.hostname);
        let utm = dims::utm(&url, &referrer.name);
        let mut hit = SessionHit {
            kind: Some(kind),
            time,
            user_agent: user_agent.clone(),
            ip: ip_text.clone(),
            path: if kind == HitKind::KeepAlive && item.url.is_none() {
                String::new()
            } else {
                url.path.clone()
            },
            title: truncate(item.title.as_deref().unwrap_or("").trim(), MAX_TITLE),
            request: RequestRow {
                ip: ip_text,
                user_agent: truncate(&user_agent, 1000),
                hostname: url.hostname.clone(),
                path: url.path.clone(),
                event_name: item.event_name.clone().unwrap_or_default(),
                referrer: referrer.referrer.clone(),
                utm_source: utm.source.clone(),
                utm_medium: utm.medium.clone(),
                utm_campaign: utm.campaign.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        let Some(ip) = ip else {
            return Prepared {
                hit,
                drop: Some("ip_invalid"),
            };
        };
        if let Some(r) = rules.check_request(ip, &url.hostname, &url.path, &user_agent) {
            return Prepared { hit, drop: Some(r) };
        }
        let hints = client_hints(item, origin);
        let ua = self.ua.parse(&user_agent, &hints);
        if !item.disable_bot_filter.unwrap_or(false) {
            let drop = self.bot_check(&user_agent, &ua, &referrer, &raw_referrer, ip, origin);
            if drop.is_some() {
                return Prepared { hit, drop };
            }
        }
        let location = self.geo.lookup(ip);
        if let Some(r) = rules.check_country(&location.country_code) {
            return Prepared { hit, drop: Some(r) };
        }
        let click_id = url.param("gclid").is_some() || url.param("msclkid").is_some();
        let width = screen_width(item, &hints);
        hit.dims = Dims {
            hostname: url.hostname.clone(),
            language: dims::language(&accept_language(item, origin)),
            country_code: location.country_code,
            region: location.region,
            city: location.city,
            channel: channel(&referrer, &utm, click_id).to_string(),
            referrer: referrer.referrer,
            referrer_name: referrer.name,
            os: ua.os,
            os_version: ua.os_version,
            browser: ua.browser,
            browser_version: ua.browser_version,
            desktop: ua.desktop,
            mobile: ua.mobile,
            screen_class: dims::screen_class(width).to_string(),
            screen_width: width.clamp(0, i64::from(u32::MAX)) as u32,
            utm_source: utm.source,
            utm_medium: utm.medium,
            utm_campaign: utm.campaign,
            utm_content: utm.content,
            utm_term: utm.term,
        };
        (hit.tag_keys, hit.tag_values) = dims::tags(&scalar_pairs(item.tags.as_ref()), MAX_TAGS);
        if kind == HitKind::Event {
            hit.event_name = truncate(
                item.event_name.as_deref().unwrap_or("").trim(),
                MAX_EVENT_NAME,
            );
            hit.event_duration = event_duration(item);
            hit.non_interactive = item.non_interactive.unwrap_or(false);
            (hit.event_meta_keys, hit.event_meta_values) = event_meta(&hit, item);
        }
        Prepared { hit, drop: None }
    }

    fn bot_check(
        &self,
        user_agent: &str,
        ua: &crate::ua::UaInfo,
        referrer: &referrer::Referrer,
        raw_referrer: &str,
        ip: IpAddr,
        origin: &Origin,
    ) -> Option<&'static str> {
        if let Origin::Browser { headers, .. } = origin {
            if let Some(r) = bots::check_headers(headers) {
                return Some(r);
            }
        }
        self.bots
            .check_user_agent(user_agent)
            .or_else(|| self.bots.check_referrer(&referrer.host, raw_referrer))
            .or_else(|| self.bots.check_parsed(ua))
            .or_else(|| self.bots.check_ip(ip))
    }
}

fn client_hints(item: &HitInput, origin: &Origin) -> ClientHints {
    let pick = |body: &Option<String>, header: &str| -> String {
        match (body, origin) {
            (Some(v), _) => v.clone(),
            (None, Origin::Browser { headers, .. }) => {
                headers.get(header).unwrap_or("").to_string()
            }
            (None, Origin::Api) => String::new(),
        }
    };
    ClientHints {
        ua: pick(&item.sec_ch_ua, "sec-ch-ua"),
        mobile: pick(&item.sec_ch_ua_mobile, "sec-ch-ua-mobile"),
        platform: pick(&item.sec_ch_ua_platform, "sec-ch-ua-platform"),
        platform_version: pick(
            &item.sec_ch_ua_platform_version,
            "sec-ch-ua-platform-version",
        ),
        width: pick(&item.sec_ch_width, "sec-ch-width"),
        viewport_width: pick(&item.sec_ch_viewport_width, "sec-ch-viewport-width"),
    }
}

fn accept_language(item: &HitInput, origin: &Origin) -> String {
    match (&item.accept_language, origin) {
        (Some(v), _) => v.clone(),
        (None, Origin::Browser { headers, .. }) => {
            headers.get("accept-language").unwrap_or("").to_string()
        }
        (None, Origin::Api) => String::new(),
    }
}

/// screen_width, else the Sec-CH-Width / Sec-CH-Viewport-Width hints.
fn screen_width(item: &HitInput, hints: &ClientHints) -> i64 {
    item.screen_width
        .filter(|w| *w > 0)
        .or_else(|| hints.width.trim().parse().ok())
        .or_else(|| hints.viewport_width.trim().parse().ok())
        .unwrap_or(0)
}

fn event_duration(item: &HitInput) -> u32 {
    match &item.event_duration {
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .map(|f| f.clamp(0.0, u32::MAX as f64) as u32)
            .unwrap_or(0),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(|f| f.clamp(0.0, u32::MAX as f64) as u32)
            .unwrap_or(0),
        _ => 0,
    }
}

/// Scalars as text; nested values are not metadata and are skipped.
fn scalar_pairs(map: Option<&BTreeMap<String, serde_json::Value>>) -> Vec<(String, String)> {
    let Some(map) = map else { return Vec::new() };
    map.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

/// Event metadata = page tags overridden by event meta on the same key.
fn event_meta(hit: &SessionHit, item: &HitInput) -> (Vec<String>, Vec<String>) {
    let mut merged: BTreeMap<String, String> = hit
        .tag_keys
        .iter()
        .cloned()
        .zip(hit.tag_values.iter().cloned())
        .collect();
    for (k, v) in scalar_pairs(item.event_meta.as_ref()) {
        merged.insert(k, v);
    }
    let pairs: Vec<(String, String)> = merged.into_iter().collect();
    dims::tags(&pairs, MAX_TAGS)
}

/// Check one item's required fields; `index` names batch items as `[i].field`.
pub fn validate(kind: HitKind, item: &HitInput, index: Option<usize>) -> Result<()> {
    let name = |f: &str| match index {
        Some(i) => format!("[{i}].{f}"),
        None => f.to_string(),
    };
    let blank = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").is_empty();
    if blank(&item.ip) {
        return Err(CoreError::invalid(name("ip"), "the client IP is required"));
    }
    if kind != HitKind::KeepAlive && blank(&item.url) {
        return Err(CoreError::invalid(name("url"), "the page URL is required"));
    }
    if kind == HitKind::Event && blank(&item.event_name) {
        return Err(CoreError::invalid(
            name("event_name"),
            "the event name is required",
        ));
    }
    if let Some(u) = &item.url {
        if u.len() > 8192 {
            return Err(CoreError::invalid(
                name("url"),
                "the URL is longer than 8192 bytes",
            ));
        }
    }
    Ok(())
}

/// Parse an item's RFC 3339 `time` into UTC milliseconds.
pub fn parse_time(value: &str, field: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            CoreError::invalid(
                field,
                "must be an RFC 3339 timestamp such as 2023-01-02T14:15:32Z",
            )
        })
}
