//! What browsers send without an API key, judged in one pass: tracker.js's `POST /api/v1/collect`
//! body, pa.js's `GET /api/v1/hit?code=...` query and a `POST /api/v1/event` carrying an
//! `identification_code`. Each route's steps run in the order the HTTP API answers them (the
//! request's own fields, the site, the site's CORS), and end in an `Answer`: an item for the
//! pipeline or the reason there is none. The glue then runs validate.rs and the pipeline on the
//! item, as for the Pirsch API, and counts the request against the per-IP limit, which comes
//! before any other answer (in the pipeline's transaction when the item is stored).
//!
//! Sites are found in a `Directory` the Python side fills on a miss (`Answer::Lookup`) and empties
//! whenever the meta store changed (its `stamp`), so a request never sees an outdated site.
//! The Python reference of these rules is trail/services/collect.py (`parse_collect`) and
//! trail/api/browser.py (`hit_item`); tests compare the two on generated bodies.

use crate::dims::truncate;
use crate::hit::{HitInput, HitKind};
use crate::validate::{MAX_HOSTNAME, MAX_SCREEN, MAX_TAGS, MAX_TITLE, MAX_URL};
use parking_lot::RwLock;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

/// A collect body is a few hundred bytes; anything bigger is abuse.
pub const MAX_COLLECT_BODY: usize = 16 * 1024;
/// Other free text: UTM fields, ids, property names.
const MAX_TEXT: usize = 1024;
const MAX_CODE: usize = 64;
/// Site keys remembered as unknown before the directory starts over (random ids from a client).
const MAX_ENTRIES: usize = 4096;

const EVENT_TYPES: [&str; 7] = [
    "page_view",
    "close_tab",
    "scroll_25",
    "scroll_50",
    "scroll_75",
    "outbound_link",
    "custom",
];
const UTM_FIELDS: [&str; 3] = ["utm_source", "utm_medium", "utm_campaign"];
/// Fields a browser may set in a Pirsch browser-SDK body; the rest (ip, user_agent, client hints,
/// disable_bot_filter) come from the request itself, never from an unauthenticated body.
const BROWSER_ITEM_FIELDS: [&str; 10] = [
    "url",
    "title",
    "referrer",
    "screen_width",
    "screen_height",
    "tags",
    "event_name",
    "event_duration",
    "event_meta",
    "non_interactive",
];

/// The browser-facing routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Collect,
    PirschHit,
    PirschEvent,
}

/// How a request names its site.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SiteKey {
    Id(String),
    Code(String),
}

/// What the browser routes need of a site.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BrowserSite {
    pub id: String,
    pub hostname: String,
    /// The owner switched the browser snippet off: hits are dropped silently.
    pub scripts_disabled: bool,
    /// Bare hostnames an Origin may have to read the answers; empty = any.
    pub hostnames: Vec<String>,
}

/// Sites by id and by identification code, as of the meta store's `stamp`.
#[derive(Default)]
pub struct Directory {
    inner: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    stamp: u64,
    /// None: looked up, no such site.
    sites: HashMap<SiteKey, Option<Arc<BrowserSite>>>,
}

/// A directory answer: the site, no such site, or "not known yet".
pub enum Found {
    Site(Arc<BrowserSite>),
    Unknown,
    Miss,
}

impl Directory {
    pub fn find(&self, key: &SiteKey, stamp: u64) -> Found {
        let entries = self.inner.read();
        if entries.stamp != stamp {
            return Found::Miss;
        }
        match entries.sites.get(key) {
            Some(Some(site)) => Found::Site(site.clone()),
            Some(None) => Found::Unknown,
            None => Found::Miss,
        }
    }

    /// Remember what `key` names as of `stamp`; a newer stamp forgets everything older.
    pub fn put(&self, key: SiteKey, site: Option<BrowserSite>, stamp: u64) {
        let mut entries = self.inner.write();
        if entries.stamp != stamp || entries.sites.len() >= MAX_ENTRIES {
            entries.sites.clear();
            entries.stamp = stamp;
        }
        entries.sites.insert(key, site.map(Arc::new));
    }
}

/// Whether the page's script may read the answer (the `Origin` is one of the site's hosts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cors {
    Allowed,
    Denied,
    /// No site is known yet: allowed when the Origin is one of any site's hosts (a set the
    /// Python side keeps, since only error answers need it).
    AnySite,
}

/// A field the client must fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

fn refuse(field: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        field: field.to_string(),
        message: message.into(),
    }
}

/// How a browser request ends, before validate.rs and the pipeline see its item.
#[derive(Debug)]
pub enum Answer {
    /// The directory does not know this key at the current stamp: look it up and ask again.
    Lookup(SiteKey),
    /// Not a browser request after all (a `POST /event` without a usable code): the
    /// authenticated route answers it.
    NotBrowser,
    /// 400 naming the field.
    Refused { refusal: Refusal, cors: Cors },
    /// The identification code names no site (Pirsch answers 404).
    NotFound { cors: Cors },
    /// Nothing to record, and nothing the client should learn (an unknown website id).
    Silent { cors: Cors },
    /// An item for the pipeline.
    Ingest {
        site: Arc<BrowserSite>,
        kind: HitKind,
        item: Box<HitInput>,
        cors: Cors,
    },
}

/// One browser request as it arrived.
pub struct Request<'a> {
    pub route: Route,
    pub body: &'a [u8],
    /// The query string as the HTTP layer split it (names and values still percent-encoded
    /// as Python's `query_params` receives them; they are decoded here once more, the same way).
    pub query: &'a [(&'a str, Vec<&'a str>)],
    pub origin: &'a str,
}

/// Judge a request; `find` looks a site up.
pub fn judge(req: &Request, find: impl Fn(&SiteKey) -> Found) -> Answer {
    let answer = match req.route {
        Route::Collect => judge_collect(req, find),
        Route::PirschHit => judge_pirsch_hit(req, find),
        Route::PirschEvent => judge_pirsch_event(req, find),
    };
    answer.unwrap_or_else(|early| early)
}

/// The site `key` names (None: no key, or no such site); Err(Lookup) while not known yet.
fn site_of(
    key: Option<SiteKey>,
    find: &impl Fn(&SiteKey) -> Found,
) -> Result<Option<Arc<BrowserSite>>, Answer> {
    let Some(key) = key else { return Ok(None) };
    match find(&key) {
        Found::Site(site) => Ok(Some(site)),
        Found::Unknown => Ok(None),
        Found::Miss => Err(Answer::Lookup(key)),
    }
}

fn judge_collect(req: &Request, find: impl Fn(&SiteKey) -> Found) -> Result<Answer, Answer> {
    let parsed = parse_collect(req.body);
    let key = match &parsed {
        Ok(c) if is_uuid(&c.website_id) => Some(SiteKey::Id(c.website_id.clone())),
        _ => None,
    };
    let site = site_of(key, &find)?;
    let collect = match parsed {
        Ok(c) => c,
        Err(refusal) => {
            return Ok(Answer::Refused {
                refusal,
                cors: Cors::AnySite,
            })
        }
    };
    let Some(site) = site else {
        return Ok(Answer::Silent { cors: Cors::Denied });
    };
    let cors = cors_for(&site, req.origin);
    Ok(Answer::Ingest {
        site,
        kind: collect.kind,
        item: Box::new(collect.item),
        cors,
    })
}

fn judge_pirsch_hit(req: &Request, find: impl Fn(&SiteKey) -> Found) -> Result<Answer, Answer> {
    let params = decode_query(req.query);
    let code = query_value(&params, "code");
    let key = code_key(code);
    let site = site_of(key, &find)?;
    let cors = site
        .as_ref()
        .map_or(Cors::Denied, |s| cors_for(s, req.origin));
    if code.is_empty() {
        let refusal = refuse("code", "is required");
        return Ok(Answer::Refused { refusal, cors });
    }
    let Some(site) = site else {
        return Ok(Answer::NotFound { cors });
    };
    match hit_item(&params) {
        Ok(item) => Ok(Answer::Ingest {
            site,
            kind: HitKind::PageView,
            item: Box::new(item),
            cors,
        }),
        Err(refusal) => Ok(Answer::Refused { refusal, cors }),
    }
}

fn judge_pirsch_event(req: &Request, find: impl Fn(&SiteKey) -> Found) -> Result<Answer, Answer> {
    let Ok(doc) = json_object(req.body) else {
        return Ok(Answer::NotBrowser);
    };
    let code = match doc.get("identification_code") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        _ => return Ok(Answer::NotBrowser),
    };
    let key = code_key(code);
    let site = site_of(key, &find)?;
    let cors = site
        .as_ref()
        .map_or(Cors::Denied, |s| cors_for(s, req.origin));
    let Some(site) = site else {
        return Ok(Answer::NotFound { cors });
    };
    let fields: Map<String, Value> = BROWSER_ITEM_FIELDS
        .iter()
        .filter_map(|k| match doc.get(*k) {
            None | Some(Value::Null) => None,
            Some(v) => Some((k.to_string(), v.clone())),
        })
        .collect();
    if !matches!(fields.get("event_name"), Some(Value::String(s)) if !s.trim().is_empty()) {
        let refusal = refuse("event_name", "is required");
        return Ok(Answer::Refused { refusal, cors });
    }
    match serde_path_to_error::deserialize::<_, HitInput>(Value::Object(fields)) {
        Ok(item) => Ok(Answer::Ingest {
            site,
            kind: HitKind::Event,
            item: Box::new(item),
            cors,
        }),
        Err(e) => {
            let field = e.path().to_string();
            let refusal = refuse(&field, e.into_inner().to_string());
            Ok(Answer::Refused { refusal, cors })
        }
    }
}

fn code_key(code: &str) -> Option<SiteKey> {
    let ok = !code.is_empty() && code.chars().count() <= MAX_CODE;
    ok.then(|| SiteKey::Code(code.to_string()))
}

/// A website id: a UUID in its 36-character text form.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

// -- CORS ------------------------------------------------------------------------------------

/// The bare hostname of an Origin ("https://www.shop.test:8080" -> "shop.test"), "" if none.
pub fn origin_host(origin: &str) -> String {
    match split_url(origin.trim()) {
        Some((scheme, host)) if matches!(scheme.as_str(), "http" | "https") && !host.is_empty() => {
            bare_host(&host)
        }
        _ => String::new(),
    }
}

pub fn bare_host(host: &str) -> String {
    let host = host.trim().to_lowercase();
    let host = host.trim_end_matches('.');
    host.strip_prefix("www.").unwrap_or(host).to_string()
}

/// An Origin may read a site's answers when its host is one of the site's (port ignored).
pub fn cors_for(site: &BrowserSite, origin: &str) -> Cors {
    let allowed = match plain_origin_host(origin) {
        Some(host) => site.hostnames.is_empty() || site.hostnames.iter().any(|h| h == host),
        None => {
            let host = origin_host(origin);
            !host.is_empty() && (site.hostnames.is_empty() || site.hostnames.contains(&host))
        }
    };
    if allowed {
        Cors::Allowed
    } else {
        Cors::Denied
    }
}

/// The bare host of an Origin as browsers send it, "http(s)://" and a lowercase ASCII host with
/// no port, read without allocating; None for anything else (`origin_host` reads those), and
/// for a host that is empty once bare.
fn plain_origin_host(origin: &str) -> Option<&str> {
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let plain = host
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !plain {
        return None;
    }
    let host = host.trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    (!host.is_empty()).then_some(host)
}

/// (lowercase scheme, lowercase hostname) of an absolute URL, read the way Python's `urlsplit`
/// reads it: scheme up to the first ':', netloc after "//" up to '/', '?' or '#', host after
/// the last '@', without the port and the IPv6 brackets. None when the netloc is malformed.
fn split_url(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once(':')?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Some((String::new(), String::new()));
    }
    let scheme = scheme.to_ascii_lowercase();
    let Some(after) = rest.strip_prefix("//") else {
        return Some((scheme, String::new()));
    };
    let netloc = after.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        if host_port.contains(']') {
            return None;
        }
        host_port.split(':').next().unwrap_or("")
    };
    Some((scheme, host.to_lowercase()))
}

// -- fields ----------------------------------------------------------------------------------

/// The body as a JSON object, the way every browser route reads it.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if body.len() > MAX_COLLECT_BODY {
        return Err(refuse(
            "body",
            format!("larger than {MAX_COLLECT_BODY} bytes"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(refuse("body", "a JSON object is required"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(refuse("body", "must be a JSON object")),
        Err(e) => Err(refuse("body", format!("malformed JSON: {e}"))),
    }
}

/// A string field, stripped; "" when absent. Longer than `limit` characters is refused.
fn string(
    field: &Field,
    name: &str,
    required: bool,
    limit: Option<usize>,
) -> Result<String, Refusal> {
    let value = match field {
        Field::Absent | Field::Null if required => return Err(refuse(name, "is required")),
        Field::Absent | Field::Null => return Ok(String::new()),
        Field::Str(s) => s,
        _ => return Err(refuse(name, "must be a string")),
    };
    if required && value.trim().is_empty() {
        return Err(refuse(name, "must not be empty"));
    }
    if let Some(limit) = limit {
        if value.chars().count() > limit {
            return Err(refuse(name, format!("longer than {limit} characters")));
        }
    }
    Ok(value.trim().to_string())
}

fn screen(field: &Field, name: &str) -> Result<Option<i64>, Refusal> {
    let value = match field {
        Field::Absent | Field::Null => return Ok(None),
        Field::Num(n) => *n,
        _ => return Err(refuse(name, "must be a number")),
    };
    screen_value(name, value)
}

fn screen_value(name: &str, value: f64) -> Result<Option<i64>, Refusal> {
    if !(0.0..=MAX_SCREEN as f64).contains(&value) {
        return Err(refuse(name, format!("must be between 0 and {MAX_SCREEN}")));
    }
    Ok(Some(value as i64))
}

/// An absolute http(s) URL, as the engine requires of a browser's page URL.
fn http_url(value: &str, name: &str) -> Result<(), Refusal> {
    let host = match split_url(value) {
        Some((scheme, host)) if matches!(scheme.as_str(), "http" | "https") => host,
        _ => String::new(),
    };
    if host.is_empty() {
        return Err(refuse(name, "must be an absolute http(s) URL"));
    }
    if host.trim_end_matches('.').chars().count() > MAX_HOSTNAME {
        return Err(refuse(
            name,
            format!("hostname longer than {MAX_HOSTNAME} characters"),
        ));
    }
    Ok(())
}

// -- TinyTrail collect -----------------------------------------------------------------------

/// A collect body: which website, and the engine item of its event.
#[derive(Debug)]
pub struct Collect {
    pub website_id: String,
    pub kind: HitKind,
    pub item: HitInput,
}

/// Validate a TinyTrail collect body; the refusal names the field (trail/services/collect.py
/// `parse_collect` is the same rules in Python).
pub fn parse_collect(body: &[u8]) -> Result<Collect, Refusal> {
    let doc = collect_doc(body)?;
    let website_id = string(&doc.website_id, "website_id", true, Some(64))?;
    let event_type = string(&doc.event_type, "event_type", true, Some(64))?;
    if !EVENT_TYPES.contains(&event_type.as_str()) {
        let message = format!("must be one of {}", EVENT_TYPES.join(", "));
        return Err(refuse("event_type", message));
    }
    let url = string(&doc.url, "url", true, Some(MAX_URL))?;
    http_url(&url, "url")?;
    let path = string(&doc.path, "path", true, Some(MAX_URL))?;
    if !path.starts_with('/') {
        return Err(refuse("path", "must start with /"));
    }
    let props = match doc.properties {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(refuse("properties", "must be an object")),
    };
    let url = with_utm(&url, &doc.utm)?;
    let mut item = HitInput {
        url: Some(url),
        referrer: Some(string(&doc.referrer, "referrer", false, Some(MAX_URL))?),
        title: Some(truncate(
            &string(&doc.title, "title", false, None)?,
            MAX_TITLE,
        )),
        screen_width: screen(&doc.screen_width, "screen_width")?,
        screen_height: screen(&doc.screen_height, "screen_height")?,
        ..Default::default()
    };
    let kind = match event_type.as_str() {
        "page_view" => HitKind::PageView,
        "close_tab" => HitKind::KeepAlive,
        _ => HitKind::Event,
    };
    if kind == HitKind::Event {
        event_fields(&event_type, &props, &mut item)?;
    }
    Ok(Collect {
        website_id,
        kind,
        item,
    })
}

/// A top-level field of a collect body as far as the rules look at it.
#[derive(Debug, Default)]
enum Field<'a> {
    #[default]
    Absent,
    Null,
    /// Borrowed from the body unless the JSON string has escapes.
    Str(std::borrow::Cow<'a, str>),
    Num(f64),
    /// A bool, array or object.
    Other,
}

/// A collect body's fields, read in one pass over the JSON without building a tree of it. What
/// it accepts and refuses is what parsing it into a `serde_json::Value` did: the values the
/// rules do not look at (unknown fields, arrays, objects) are still parsed as `Value`s and
/// dropped, so a malformed one fails the same way; a repeated name keeps its last value.
#[derive(Debug, Default)]
struct CollectDoc<'a> {
    website_id: Field<'a>,
    event_type: Field<'a>,
    url: Field<'a>,
    path: Field<'a>,
    referrer: Field<'a>,
    title: Field<'a>,
    screen_width: Field<'a>,
    screen_height: Field<'a>,
    /// utm_source, utm_medium, utm_campaign (UTM_FIELDS' order).
    utm: [Field<'a>; 3],
    properties: Option<Value>,
}

/// The body as a collect document, under `json_object`'s rules.
fn collect_doc(body: &[u8]) -> Result<CollectDoc<'_>, Refusal> {
    let starts_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if body.len() > MAX_COLLECT_BODY || !starts_object {
        // Too big, empty, or not an object: json_object's answer, whatever it is.
        return Err(json_object(body)
            .err()
            .unwrap_or_else(|| refuse("body", "must be a JSON object")));
    }
    match serde_json::from_slice::<CollectDoc>(body) {
        Ok(doc) => Ok(doc),
        Err(e) => Err(refuse("body", format!("malformed JSON: {e}"))),
    }
}

impl<'de> serde::Deserialize<'de> for Field<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> serde::de::Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(std::borrow::Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(std::borrow::Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Field<'de>, E> {
        Ok(Field::Str(std::borrow::Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Field<'de>, E> {
        Ok(Field::Null)
    }
    fn visit_u64<E>(self, v: u64) -> Result<Field<'de>, E> {
        Ok(Field::Num(v as f64))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Field<'de>, E> {
        Ok(Field::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Field<'de>, E> {
        Ok(Field::Num(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        Ok(Field::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
        while map.next_entry::<String, Value>()?.is_some() {}
        Ok(Field::Other)
    }
}

/// An object key, borrowed from the body unless it has escapes.
struct Key<'a>(std::borrow::Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for CollectDoc<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct DocVisitor;
        impl<'de> serde::de::Visitor<'de> for DocVisitor {
            type Value = CollectDoc<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CollectDoc<'de>, A::Error> {
                let mut doc = CollectDoc::default();
                while let Some(Key(key)) = map.next_key::<Key>()? {
                    let slot = match key.as_ref() {
                        "website_id" => &mut doc.website_id,
                        "event_type" => &mut doc.event_type,
                        "url" => &mut doc.url,
                        "path" => &mut doc.path,
                        "referrer" => &mut doc.referrer,
                        "title" => &mut doc.title,
                        "screen_width" => &mut doc.screen_width,
                        "screen_height" => &mut doc.screen_height,
                        "utm_source" => &mut doc.utm[0],
                        "utm_medium" => &mut doc.utm[1],
                        "utm_campaign" => &mut doc.utm[2],
                        "properties" => {
                            doc.properties = Some(map.next_value::<Value>()?);
                            continue;
                        }
                        _ => {
                            map.next_value::<Value>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<Field>()?;
                }
                Ok(doc)
            }
        }
        de.deserialize_map(DocVisitor)
    }
}

/// Event types map onto events: scrolls are non-interactive (scrolling alone does not turn a
/// bounce into an engaged visit), `custom` is named by `properties.name`.
fn event_fields(
    event_type: &str,
    props: &Map<String, Value>,
    item: &mut HitInput,
) -> Result<(), Refusal> {
    if event_type == "custom" {
        let name = match props.get("name") {
            None | Some(Value::Null) => "custom".to_string(),
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(_) => return Err(refuse("properties.name", "must be a non-empty string")),
        };
        item.event_name = Some(name);
        item.event_meta = Some(scalars(props, Some("name")));
        return Ok(());
    }
    item.event_name = Some(event_type.to_string());
    item.event_meta = Some(scalars(props, None));
    item.non_interactive = Some(event_type.starts_with("scroll_"));
    Ok(())
}

/// Event metadata is flat: scalar properties as given, nested values left out.
fn scalars(props: &Map<String, Value>, skip: Option<&str>) -> BTreeMap<String, Value> {
    props
        .iter()
        .filter(|(k, v)| {
            Some(k.as_str()) != skip
                && matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
                && k.chars().count() <= 100
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Add UTM fields given beside the URL to its query, unless the URL carries them already.
fn with_utm(url: &str, utm: &[Field; 3]) -> Result<String, Refusal> {
    let mut extra = Vec::new();
    for (name, field) in UTM_FIELDS.into_iter().zip(utm) {
        let value = string(field, name, false, Some(MAX_TEXT))?;
        if !value.is_empty() {
            extra.push((name, value));
        }
    }
    if extra.is_empty() {
        return Ok(url.to_string());
    }
    let (base, fragment) = url
        .split_once('#')
        .map_or((url, None), |(b, f)| (b, Some(f)));
    let (head, query) = base.split_once('?').unwrap_or((base, ""));
    let present: Vec<String> = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .map(unquote_plus)
        .collect();
    let mut query = query.to_string();
    for (name, value) in extra {
        if present.iter().any(|p| p == name) {
            continue;
        }
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&quote_plus(&value));
    }
    let mut out = format!("{head}?{query}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Ok(out)
}

fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Python's `unquote_plus`: '+' is a space, %XX a byte, bad UTF-8 replaced.
pub fn unquote_plus(s: &str) -> String {
    let raw = s.as_bytes();
    if !raw.iter().any(|&b| b == b'+' || b == b'%') {
        return s.to_string(); // most names and many values: nothing to decode
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let escaped = match (b, raw.get(i + 1), raw.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (b, escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// -- Pirsch browser SDK (pa.js) --------------------------------------------------------------

type Params = Vec<(String, Vec<String>)>;

/// The query decoded as trail/api/http.py `query_params` does: names and values unquoted,
/// values of equal names joined in order.
fn decode_query<K: AsRef<str>, V: AsRef<str>>(raw: &[(K, Vec<V>)]) -> Params {
    let mut out: Params = Vec::with_capacity(raw.len());
    for (key, values) in raw {
        let key = unquote_plus(key.as_ref());
        let values = values.iter().map(|v| unquote_plus(v.as_ref()));
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.extend(values),
            None => out.push((key, values.collect())),
        }
    }
    out
}

/// The first non-empty value of `name`, stripped, or "" (SDKs send empty parameters).
fn query_value<'a>(params: &'a Params, name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, vs)| vs.iter().map(|v| v.trim()).find(|v| !v.is_empty()))
        .unwrap_or("")
}

fn query_screen(params: &Params, name: &str) -> Result<Option<i64>, Refusal> {
    let text = query_value(params, name);
    if text.is_empty() {
        return Ok(None);
    }
    // Digits alone (what pa.js sends) read as the integer they are, without float parsing.
    if text.len() <= 9 && text.bytes().all(|b| b.is_ascii_digit()) {
        let value: u32 = text.parse().unwrap_or(u32::MAX);
        return screen_value(name, f64::from(value));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => screen_value(name, v.trunc()),
        _ => Err(refuse(name, "must be a number")),
    }
}

/// The engine item of a pa.js page view query; the refusal names the parameter.
pub fn hit_item(params: &Params) -> Result<HitInput, Refusal> {
    let url = query_value(params, "url");
    if url.is_empty() {
        return Err(refuse("url", "is required"));
    }
    let url = truncate(url, MAX_URL);
    http_url(&url, "url")?;
    let tags: BTreeMap<String, Value> = params
        .iter()
        .filter(|(k, v)| k.len() > 4 && k.starts_with("tag_") && !v.is_empty())
        .take(MAX_TAGS)
        .map(|(k, v)| (k[4..].to_string(), Value::String(v[0].clone())))
        .collect();
    Ok(HitInput {
        url: Some(url),
        title: Some(truncate(query_value(params, "t"), MAX_TITLE)),
        referrer: Some(truncate(query_value(params, "ref"), MAX_URL)),
        screen_width: query_screen(params, "w")?,
        screen_height: query_screen(params, "h")?,
        tags: (!tags.is_empty()).then_some(tags),
        ..Default::default()
    })
}

/// The socket peer as an IP ("127.0.0.1:5555", "[::1]:80" and bare forms); 0.0.0.0 if none.
pub fn peer_address(raw: &str) -> IpAddr {
    let text = raw.trim();
    let no_port = text.rsplit_once(':').map_or(text, |(head, _)| head);
    let bare = |s: &str| -> Option<IpAddr> {
        s.trim_start_matches('[').trim_end_matches(']').parse().ok()
    };
    text.parse()
        .ok()
        .or_else(|| no_port.parse().ok())
        .or_else(|| bare(text))
        .or_else(|| bare(no_port))
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The rate-limit key of a client IP in the shared `collect` bucket; the IP itself is not
/// stored, only a keyed digest of its text form.
pub fn rate_key(ip: IpAddr) -> String {
    use std::hash::Hasher;
    let mut text = [0u8; 64]; // the longest IPv6 text is 45 bytes
    let len = ip_text(ip, &mut text);
    let mut h =
        siphasher::sip::SipHasher24::new_with_keys(0x7472_6169_6c5f_7261, 0x7465_5f6c_696d_6974);
    h.write(&text[..len]);
    let digest = h.finish();
    let mut key = String::with_capacity(24);
    key.push_str("collect:");
    for shift in (0..16).rev() {
        let nibble = (digest >> (shift * 4)) & 0xf;
        key.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
    }
    key
}

/// The text form of `ip` (as `Display` writes it) into `buf`; its length. IPv4, most clients,
/// without the formatting machinery.
fn ip_text(ip: IpAddr, buf: &mut [u8; 64]) -> usize {
    use std::io::Write;
    let IpAddr::V4(v4) = ip else {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = write!(cursor, "{ip}");
        return cursor.position() as usize;
    };
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for d in &digits[skip..] {
            buf[len] = b'0' + d;
            len += 1;
        }
    }
    len
}

#[cfg(test)]
mod tests;
