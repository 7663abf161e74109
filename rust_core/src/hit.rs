//! What arrives from a client: one Pirsch hit/event/session item, or a browser collect.
//! Deserialised from JSON by serde; `validate` turns it into field-named errors.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HitKind {
    PageView,
    Event,
    KeepAlive,
}

/// A Pirsch API item (`/hit`, `/event`, `/session` and their batch forms).
/// Unknown fields are ignored (the Go SDK sends a stray `Hostname`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct HitInput {
    pub url: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub accept_language: Option<String>,
    pub sec_ch_ua: Option<String>,
    pub sec_ch_ua_mobile: Option<String>,
    pub sec_ch_ua_platform: Option<String>,
    pub sec_ch_ua_platform_version: Option<String>,
    pub sec_ch_width: Option<String>,
    pub sec_ch_viewport_width: Option<String>,
    pub title: Option<String>,
    pub referrer: Option<String>,
    pub screen_width: Option<i64>,
    pub screen_height: Option<i64>,
    pub tags: Option<BTreeMap<String, serde_json::Value>>,
    pub disable_bot_filter: Option<bool>,
    /// RFC 3339; only honoured on batch items.
    pub time: Option<String>,
    pub event_name: Option<String>,
    pub event_duration: Option<serde_json::Value>,
    pub event_meta: Option<BTreeMap<String, serde_json::Value>>,
    pub non_interactive: Option<bool>,
}

/// Request headers of a browser-facing request, names lowercased.
#[derive(Clone, Debug, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Client hints, from the body (API) or the headers (browser).
#[derive(Clone, Debug, Default)]
pub struct ClientHints {
    pub ua: String,
    pub mobile: String,
    pub platform: String,
    pub platform_version: String,
    pub width: String,
    pub viewport_width: String,
}
