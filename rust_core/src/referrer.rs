//! Referrer resolution and naming (reference section 4, scenario 5). OWNER: helper "dims".

use crate::dims::UrlParts;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Referrer {
    /// Normalised referrer URL ("" for names and dropped values).
    pub referrer: String,
    pub name: String,
    /// Lowercased host ("" when not a URL); used by spam and channel checks.
    pub host: String,
}

/// The referrer of a hit: `ref`/`referer`/`referrer` query params override the header,
/// `source`/`utm_source` only when the header is empty; a self-referrer (www-stripped host equal
/// to the site's hostname) is dropped.
pub fn resolve(header: &str, url: &UrlParts, site_hostname: &str) -> Referrer {
    let _ = (header, url, site_hostname);
    todo!()
}
