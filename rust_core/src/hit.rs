//! What arrives from a client: one Pirsch hit/event/session item, or a browser collect.
//! Deserialised from JSON by serde (type errors name the field); validate.rs checks the values.

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
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
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

/// Parse a request body into items: one object, or an array of objects for batches.
/// Type errors name the field (`[3].screen_width`), so the client learns what to fix.
pub fn parse_items(body: &[u8], batch: bool) -> crate::errors::Result<Vec<HitInput>> {
    use crate::errors::CoreError;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(CoreError::invalid("body", "the request body is empty"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = if batch {
        serde_path_to_error::deserialize::<_, Vec<HitInput>>(&mut de)
    } else {
        serde_path_to_error::deserialize::<_, HitInput>(&mut de).map(|h| vec![h])
    };
    match parsed {
        Ok(items) => Ok(items),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(CoreError::invalid(
                    "body",
                    format!("malformed JSON: {inner}"),
                ));
            }
            let field = if matches!(path.as_str(), "." | "?" | "") {
                "body".to_string()
            } else {
                path
            };
            let message = inner.to_string();
            Err(CoreError::invalid(field, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::CoreError;

    fn field_of(body: &str, batch: bool) -> String {
        match parse_items(body.as_bytes(), batch) {
            Err(CoreError::Invalid { field, .. }) => field,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (r#"{"url": 5}"#, false, "url"),
            (r#"{"screen_width": "wide"}"#, false, "screen_width"),
            (
                r#"[{"url": "https://a.b/"}, {"tags": [1]}]"#,
                true,
                "[1].tags",
            ),
            (r#"{"url": "x""#, false, "body"),
            ("", false, "body"),
            (r#"{"url": "x"}"#, true, "body"),
            ("[1]", true, "[0]"),
        ];
        for (body, batch, want) in cases {
            assert_eq!(field_of(body, batch), want, "{body}");
        }
    }

    #[test]
    fn ignores_unknown_fields_and_nulls() {
        let items = parse_items(
            br#"{"Hostname": "x", "url": "https://a.b/", "tags": null}"#,
            false,
        )
        .unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].url.as_deref(), Some("https://a.b/"));
        assert!(items[0].tags.is_none());
    }
}
