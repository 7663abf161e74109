//! The ingestion pipeline: an ordered list of small named steps over one request's hits.
//!
//! Hits arrive validated (validate.rs). `Draft::new` resolves what every hit needs, even a
//! dropped one for its `requests` row (client IP, URL parts, referrer, UTM); then each hit runs
//! through `STEPS` in order. A `drop_*` step may stop the hit with a `DropReason`; a `put_*`
//! step derives dimensions. After the pure steps, one state transaction (LMDB or Redis) runs
//! every remaining hit through the session machine (which may drop too: `no_session`,
//! `page_view_cap`), each dropped hit becomes a `requests` row carrying its reason, one WAL
//! append stores all rows, and the reasons are counted.

use crate::bots::{self, BotFilter};
use crate::channel::channel;
use crate::dims::{self, parse_hit_url, truncate, UrlParts, Utm};
use crate::drops::DropReason;
use crate::errors::Result;
use crate::geo::{Geo, Location};
use crate::hit::{ClientHints, Headers, HitInput, HitKind};
use crate::ip::TrustedProxies;
use crate::ratelimit::RateCount;
use crate::referrer::{self, Referrer};
use crate::rows::{Dims, RequestRow, SiteRows};
use crate::rules::SiteRules;
use crate::session::{SessionHit, StateStore};
use crate::ua::{UaInfo, UaParser};
use crate::validate::{ValidHit, MAX_EVENT_NAME, MAX_TAGS, MAX_TITLE};
use crate::wal::Storage;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

/// The site a request was authenticated for.
#[derive(Clone, Debug)]
pub struct SiteCtx {
    pub id: String,
    pub hostname: String,
}

/// Where a hit came from: a server-side API call (IP in the body) or a browser, with its client
/// IP as `ip::ip_from_request` resolved it from the socket peer and the headers.
pub enum Origin<'a> {
    Api,
    Browser {
        client: IpAddr,
        headers: &'a Headers,
    },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub accepted: usize,
    pub dropped: usize,
    pub reasons: BTreeMap<DropReason, usize>,
}

pub struct Engine {
    pub ua: UaParser,
    pub bots: BotFilter,
    pub geo: Geo,
    pub sessions: StateStore,
    pub storage: Storage,
    pub trusted: TrustedProxies,
    pub page_view_cap: u32,
    /// Drop reasons counted since start, for /health and the logs.
    pub drops: Mutex<BTreeMap<DropReason, u64>>,
    /// Owner-set rules per site id; a site without an entry accepts only its own hostname.
    pub rules: RwLock<HashMap<String, Arc<SiteRules>>>,
}

/// What a step decides: go on, or drop the hit for a reason.
type Verdict = ControlFlow<DropReason>;
type Step = fn(&Engine, &mut Draft) -> Verdict;

/// Every hit's steps, in order. Site rules run before any parsing work; the bot checks run
/// cheapest first; the GeoIP lookup only for hits that survived them.
const STEPS: [(&str, Step); 12] = [
    ("drop_by_site_rules", drop_by_site_rules),
    ("put_user_agent", put_user_agent),
    ("drop_prefetch", drop_prefetch),
    ("drop_bot_user_agent", drop_bot_user_agent),
    ("drop_referrer_spam", drop_referrer_spam),
    ("drop_bot_browser", drop_bot_browser),
    ("drop_blocked_ip", drop_blocked_ip),
    ("put_location", put_location),
    ("drop_by_country", drop_by_country),
    ("put_dimensions", put_dimensions),
    ("put_tags", put_tags),
    ("put_event", put_event),
];

/// One hit on its way through the steps: its input, what the steps derived so far, and the
/// hit for the session machine (with its `requests` row filled in from the start).
struct Draft<'a> {
    rules: &'a SiteRules,
    kind: HitKind,
    input: &'a ValidHit,
    origin: &'a Origin<'a>,
    ip: IpAddr,
    url: UrlParts,
    raw_referrer: String,
    referrer: Referrer,
    utm: Utm,
    hints: ClientHints,
    ua: UaInfo,
    location: Location,
    hit: SessionHit,
}

/// A hit after the pure steps: ready for the session machine, or dropped with its reason.
struct Prepared {
    hit: SessionHit,
    drop: Option<DropReason>,
}

impl Engine {
    /// Ingest validated hits of one kind for one site.
    pub fn ingest(
        &self,
        site: &SiteCtx,
        kind: HitKind,
        hits: &[ValidHit],
        origin: &Origin,
    ) -> Result<Summary> {
        Ok(self.ingest_counted(site, kind, hits, origin, None)?.0)
    }

    /// `ingest`, first counting the request against `rate` in the same state transaction (one
    /// commit per request): over the limit, nothing is stored and the milliseconds to wait
    /// come back; else 0.
    pub fn ingest_counted(
        &self,
        site: &SiteCtx,
        kind: HitKind,
        hits: &[ValidHit],
        origin: &Origin,
        rate: Option<&RateCount>,
    ) -> Result<(Summary, i64)> {
        let rules = self.rules_for(site);
        let prepared: Vec<Prepared> = hits
            .iter()
            .map(|hit| self.prepare(Draft::new(site, &rules, kind, hit, origin)))
            .collect();
        let mut rows = Vec::with_capacity(prepared.len() * 4);
        let mut summary = Summary::default();
        self.storage.reserve_ahead(); // outside the transaction, which other workers wait for
        let mut txn = self.sessions.begin()?;
        if let Some(rate) = rate {
            let wait = txn.count_rate(rate)?;
            if wait > 0 {
                txn.commit()?;
                return Ok((summary, wait));
            }
        }
        for p in &prepared {
            let reason = match p.drop {
                Some(r) => Some(r),
                None => txn.process(&site.id, &p.hit, self.page_view_cap, &mut rows)?,
            };
            match reason {
                Some(r) => {
                    txn.log_drop(&site.id, &p.hit, r, &mut rows)?;
                    summary.dropped += 1;
                    *summary.reasons.entry(r).or_default() += 1;
                }
                None => summary.accepted += 1,
            }
        }
        // The WAL write comes first: a crash between it and the state commit (LMDB, or the
        // Redis script under the visitors' locks) costs at most a split session, never an
        // acknowledged hit.
        if !rows.is_empty() {
            self.storage.append(vec![SiteRows {
                site: site.id.clone(),
                rows,
            }])?;
        }
        txn.commit()?;
        if summary.dropped > 0 {
            let mut drops = self.drops.lock();
            for (r, n) in &summary.reasons {
                *drops.entry(*r).or_default() += *n as u64;
            }
        }
        Ok((summary, 0))
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

    /// Run the steps until one drops the hit.
    fn prepare(&self, mut draft: Draft) -> Prepared {
        for (_, step) in STEPS {
            if let ControlFlow::Break(reason) = step(self, &mut draft) {
                return Prepared {
                    hit: draft.hit,
                    drop: Some(reason),
                };
            }
        }
        Prepared {
            hit: draft.hit,
            drop: None,
        }
    }
}

impl<'a> Draft<'a> {
    fn new(
        site: &SiteCtx,
        rules: &'a SiteRules,
        kind: HitKind,
        input: &'a ValidHit,
        origin: &'a Origin<'a>,
    ) -> Draft<'a> {
        let item = &input.input;
        let ip = match origin {
            // Validation refuses an API item without a valid IP; 0.0.0.0 is never reached.
            Origin::Api => input.ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
            Origin::Browser { client, .. } => *client,
        };
        // A path-only URL (server SDKs) is on the site's hostname: allowed, filtered, stored
        // and told apart from a referrer under that name.
        let url = parse_hit_url(item.url.as_deref().unwrap_or(""), &site.hostname);
        let raw_referrer = item.referrer.clone().unwrap_or_default();
        let referrer = referrer::resolve(&raw_referrer, &url, &site.hostname);
        let utm = dims::utm(&url, &referrer.name);
        let user_agent = item.user_agent.clone().unwrap_or_default();
        let ip_text = ip.to_string();
        let hit = SessionHit {
            kind: Some(kind),
            time: input.time,
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
            user_agent,
            ..Default::default()
        };
        Draft {
            rules,
            kind,
            input,
            origin,
            ip,
            url,
            raw_referrer,
            referrer,
            utm,
            hints: ClientHints::default(),
            ua: UaInfo::default(),
            location: Location::default(),
            hit,
        }
    }

    fn bot_filter_on(&self) -> bool {
        !self.input.input.disable_bot_filter.unwrap_or(false)
    }
}

fn verdict(reason: Option<DropReason>) -> Verdict {
    match reason {
        Some(r) => ControlFlow::Break(r),
        None => ControlFlow::Continue(()),
    }
}

/// The site's hostnames and its IP, hostname, path and user-agent filters.
fn drop_by_site_rules(_: &Engine, d: &mut Draft) -> Verdict {
    let ua = &d.hit.user_agent;
    verdict(
        d.rules
            .check_request(d.ip, &d.url.hostname, &d.url.path, ua),
    )
}

fn put_user_agent(e: &Engine, d: &mut Draft) -> Verdict {
    d.hints = client_hints(&d.input.input, d.origin);
    d.ua = e.ua.parse(&d.hit.user_agent, &d.hints);
    ControlFlow::Continue(())
}

/// Prefetches and forged navigations, told by a browser's own request headers.
fn drop_prefetch(_: &Engine, d: &mut Draft) -> Verdict {
    match d.origin {
        Origin::Browser { headers, .. } if d.bot_filter_on() => {
            verdict(bots::check_headers(headers))
        }
        _ => ControlFlow::Continue(()),
    }
}

fn drop_bot_user_agent(e: &Engine, d: &mut Draft) -> Verdict {
    if !d.bot_filter_on() {
        return ControlFlow::Continue(());
    }
    verdict(e.bots.check_user_agent(&d.hit.user_agent))
}

fn drop_referrer_spam(e: &Engine, d: &mut Draft) -> Verdict {
    if !d.bot_filter_on() {
        return ControlFlow::Continue(());
    }
    verdict(e.bots.check_referrer(&d.referrer.host, &d.raw_referrer))
}

/// Headless and crawler clients, bot-like browser names and browsers too old for a human.
fn drop_bot_browser(e: &Engine, d: &mut Draft) -> Verdict {
    if !d.bot_filter_on() {
        return ControlFlow::Continue(());
    }
    verdict(e.bots.check_parsed(&d.ua))
}

/// The configured `blocked_ips` (data centres, known scanners).
fn drop_blocked_ip(e: &Engine, d: &mut Draft) -> Verdict {
    if !d.bot_filter_on() {
        return ControlFlow::Continue(());
    }
    verdict(e.bots.check_ip(d.ip))
}

fn put_location(e: &Engine, d: &mut Draft) -> Verdict {
    d.location = e.geo.lookup(d.ip);
    ControlFlow::Continue(())
}

/// Country filters need the GeoIP lookup, so they run after it.
fn drop_by_country(_: &Engine, d: &mut Draft) -> Verdict {
    verdict(d.rules.check_country(&d.location.country_code))
}

fn put_dimensions(_: &Engine, d: &mut Draft) -> Verdict {
    let click_id = d.url.param("gclid").is_some() || d.url.param("msclkid").is_some();
    let width = screen_width(&d.input.input, &d.hints);
    let location = std::mem::take(&mut d.location);
    let ua = std::mem::take(&mut d.ua);
    let utm = std::mem::take(&mut d.utm);
    let referrer = std::mem::take(&mut d.referrer);
    d.hit.dims = Dims {
        hostname: d.url.hostname.clone(),
        language: dims::language(&accept_language(&d.input.input, d.origin)),
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
    ControlFlow::Continue(())
}

fn put_tags(_: &Engine, d: &mut Draft) -> Verdict {
    let tags = scalar_pairs(d.input.input.tags.as_ref());
    (d.hit.tag_keys, d.hit.tag_values) = dims::tags(&tags, MAX_TAGS);
    ControlFlow::Continue(())
}

/// Event name, duration and metadata (page tags overridden by event meta on the same key).
fn put_event(_: &Engine, d: &mut Draft) -> Verdict {
    if d.kind != HitKind::Event {
        return ControlFlow::Continue(());
    }
    let item = &d.input.input;
    d.hit.event_name = truncate(
        item.event_name.as_deref().unwrap_or("").trim(),
        MAX_EVENT_NAME,
    );
    d.hit.event_duration = d.input.event_duration;
    d.hit.non_interactive = item.non_interactive.unwrap_or(false);
    let mut merged: BTreeMap<String, String> = d
        .hit
        .tag_keys
        .iter()
        .cloned()
        .zip(d.hit.tag_values.iter().cloned())
        .collect();
    merged.extend(scalar_pairs(item.event_meta.as_ref()));
    let pairs: Vec<(String, String)> = merged.into_iter().collect();
    (d.hit.event_meta_keys, d.hit.event_meta_values) = dims::tags(&pairs, MAX_TAGS);
    ControlFlow::Continue(())
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

#[cfg(test)]
mod tests;
