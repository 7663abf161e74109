//! Small derived dimensions: URL parts, screen class, language, UTM, tags (reference section 4).
//! OWNER: helper "dims".

/// The parts of a hit's URL that trail stores or looks at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UrlParts {
    pub hostname: String,
    /// Path, default "/", max 2,000 chars.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
}

impl UrlParts {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

pub fn parse_url(url: &str) -> UrlParts {
    let _ = url;
    todo!()
}

/// Screen class from a width in pixels; 0 or negative -> "".
pub fn screen_class(width: i64) -> &'static str {
    let _ = width;
    todo!()
}

/// First Accept-Language entry as a valid ISO-639-1 code, else "".
pub fn language(accept_language: &str) -> String {
    let _ = accept_language;
    todo!()
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Utm {
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub content: String,
    pub term: String,
}

/// UTM values from the URL query, trimmed; gclid/msclkid set medium when it is empty and the
/// referrer name is Google/Bing.
pub fn utm(url: &UrlParts, referrer_name: &str) -> Utm {
    let _ = (url, referrer_name);
    todo!()
}

/// Tags/meta normalised: keys and values trimmed, empty dropped, at most `max_pairs` pairs,
/// keys and values cut to 50 chars. Returns parallel (keys, values).
pub fn tags(pairs: &[(String, String)], max_pairs: usize) -> (Vec<String>, Vec<String>) {
    let _ = (pairs, max_pairs);
    todo!()
}

/// Truncate to at most `max` chars on a char boundary.
pub fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
