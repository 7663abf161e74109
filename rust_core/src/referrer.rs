//! Referrer resolution and naming (reference section 4, scenario 5).

use crate::dims::{truncate, UrlParts};
use percent_encoding::percent_decode_str;
use std::collections::HashMap;
use std::sync::LazyLock;
use url::{Host, Url};

const ANDROID: &str = "android-app://";

/// Longest referrer and referrer name kept.
pub const MAX_REFERRER: usize = 200;

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
/// to the site's hostname, or a path without a host, which is on the site as a path-only hit
/// URL is: dims::parse_hit_url) is dropped.
pub fn resolve(header: &str, url: &UrlParts, site_hostname: &str) -> Referrer {
    let raw = pick_raw(header, url);
    if raw.is_empty() {
        return Referrer::default();
    }
    // Some clients send the referrer percent-encoded as a whole ("http%3A%2F%2F...").
    let decoded;
    let raw = if !raw.contains("://") && raw.contains('%') {
        decoded = percent_decode_str(raw).decode_utf8_lossy().into_owned();
        decoded.trim()
    } else {
        raw
    };
    if raw.starts_with('/') && !raw.starts_with("//") {
        return Referrer::default(); // "/previous-page": the site itself
    }
    if raw
        .get(..ANDROID.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ANDROID))
    {
        return android_app(raw);
    }
    match Url::parse(raw) {
        Ok(u) if u.host().is_some() => from_url(&u, site_hostname),
        Ok(u) if is_junk_scheme(u.scheme()) => Referrer::default(),
        // Looks like a URL but is broken ("http://", "https://%zz"): nothing to name.
        Err(_) if raw.contains("://") => Referrer::default(),
        _ => from_text(raw, site_hostname),
    }
}

/// The raw referrer string by precedence; "" when there is none.
fn pick_raw<'a>(header: &'a str, url: &'a UrlParts) -> &'a str {
    let param = |keys: &[&str]| {
        keys.iter()
            .filter_map(|k| url.param(k))
            .map(str::trim)
            .find(|v| !v.is_empty())
    };
    if let Some(v) = param(&["ref", "referer", "referrer"]) {
        return v;
    }
    let header = header.trim();
    if !header.is_empty() {
        return header;
    }
    param(&["source", "utm_source"]).unwrap_or_default()
}

/// Browser-internal pages are not traffic sources.
fn is_junk_scheme(scheme: &str) -> bool {
    matches!(
        scheme,
        "about"
            | "javascript"
            | "data"
            | "file"
            | "blob"
            | "chrome"
            | "chrome-extension"
            | "moz-extension"
    )
}

fn from_url(u: &Url, site_hostname: &str) -> Referrer {
    let host = match u.host() {
        Some(Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        // An IP says nothing about where the visitor came from and may identify a person.
        _ => return Referrer::default(),
    };
    if is_self(&host, site_hostname) {
        return Referrer::default();
    }
    let path = percent_decode_str(u.path()).decode_utf8_lossy();
    let path = if path == "/" { "" } else { &path };
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let referrer = format!("{}://{host}{port}{path}", u.scheme());
    let name = lookup(&host, path).map_or_else(|| strip_www(&host).to_string(), |e| e.name.clone());
    Referrer {
        referrer: truncate(&referrer, MAX_REFERRER),
        name: truncate(&name, MAX_REFERRER),
        host,
    }
}

/// Non-URL text: a bare domain ("google.com") is named like a URL but has no referrer URL;
/// anything else ("My Newsletter") is a name.
fn from_text(text: &str, site_hostname: &str) -> Referrer {
    if let Some(host) = bare_host(text) {
        return match host {
            Host::Domain(d) if is_self(&d, site_hostname) => Referrer::default(),
            Host::Domain(d) => {
                let d = d.to_ascii_lowercase();
                let name =
                    lookup(&d, "").map_or_else(|| strip_www(&d).to_string(), |e| e.name.clone());
                Referrer {
                    referrer: String::new(),
                    name: truncate(&name, MAX_REFERRER),
                    host: d,
                }
            }
            _ => Referrer::default(),
        };
    }
    Referrer {
        referrer: String::new(),
        name: truncate(text, MAX_REFERRER),
        host: String::new(),
    }
}

/// "google.com", "www.example.co.uk/x" or "1.2.3.4" -> its host; None for free text.
fn bare_host(text: &str) -> Option<Host<String>> {
    if text.contains(char::is_whitespace) || !text.contains('.') {
        return None;
    }
    let u = Url::parse(&format!("http://{text}")).ok()?;
    match u.host()? {
        Host::Domain(d)
            if d.split('.').all(|l| !l.is_empty())
                && !d.ends_with(|c: char| c.is_ascii_digit()) =>
        {
            Some(Host::Domain(d.to_string()))
        }
        Host::Domain(_) => None,
        Host::Ipv4(ip) => Some(Host::Ipv4(ip)),
        Host::Ipv6(ip) => Some(Host::Ipv6(ip)),
    }
}

/// `android-app://com.google.android.gm/` is kept raw; the package id names it.
fn android_app(raw: &str) -> Referrer {
    let package = raw
        .get(ANDROID.len()..)
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = lookup(&package, "").map_or_else(|| package.clone(), |e| e.name.clone());
    Referrer {
        referrer: truncate(raw, MAX_REFERRER),
        name: truncate(&name, MAX_REFERRER),
        host: package,
    }
}

fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

/// Subdomains are different sites, so only the www. prefix is ignored.
fn is_self(host: &str, site_hostname: &str) -> bool {
    let site = site_hostname
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    !site.is_empty() && strip_www(host) == strip_www(&site)
}

/// One row of trail/data/referrers.tsv.
#[derive(Debug)]
pub struct Entry {
    /// Path prefix ("" for the whole host).
    pub path: String,
    pub name: String,
    pub category: Category,
}

/// What kind of site a referrer is; the channel grouping reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Search,
    Social,
    Video,
    Shopping,
    Email,
    Ai,
    None,
}

impl Category {
    fn parse(s: &str) -> Category {
        match s {
            "search" => Category::Search,
            "social" => Category::Social,
            "video" => Category::Video,
            "shopping" => Category::Shopping,
            "email" => Category::Email,
            "ai" => Category::Ai,
            _ => Category::None,
        }
    }
}

struct Table {
    /// Host key ("google.com", or "google.*" for any TLD) -> entries, longest path first.
    hosts: HashMap<String, Vec<Entry>>,
    /// Lowercased name and host first label ("google", "hacker news") -> category, so a bare
    /// utm_source such as "facebook" classifies like its site.
    sources: HashMap<String, Category>,
}

static TABLE: LazyLock<Table> =
    LazyLock::new(|| load(include_str!("../../trail/data/referrers.tsv")));

/// Common utm_source shorthands that are neither a site name nor a domain label.
/// "meta" is Meta's ad platform (Facebook/Instagram), not the meta.ai assistant.
const SOURCE_ALIASES: [(&str, Category); 7] = [
    ("fb", Category::Social),
    ("ig", Category::Social),
    ("meta", Category::Social),
    ("tw", Category::Social),
    ("li", Category::Social),
    ("yt", Category::Video),
    ("ddg", Category::Search),
];

fn load(tsv: &str) -> Table {
    let mut hosts: HashMap<String, Vec<Entry>> = HashMap::new();
    let mut sources: HashMap<String, Category> = SOURCE_ALIASES
        .iter()
        .map(|(s, c)| (s.to_string(), *c))
        .collect();
    let mut labels = Vec::new();
    for line in tsv
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let mut cols = line.split('\t').map(str::trim);
        let (Some(key), Some(name), Some(cat)) = (cols.next(), cols.next(), cols.next()) else {
            continue; // a malformed data line must not take the process down
        };
        let (host, path) = key.split_once('/').map_or((key, ""), |(h, p)| (h, p));
        let category = Category::parse(cat);
        sources.entry(name.to_ascii_lowercase()).or_insert(category);
        // "youtube" from youtube.com; deeper hosts start with generic labels (m., mail., com.).
        if let Some((label, tld)) = host.split_once('.') {
            if label.len() >= 2 && !tld.contains('.') {
                labels.push((label.to_string(), category));
            }
        }
        let path = if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        };
        hosts.entry(host.to_string()).or_default().push(Entry {
            path,
            name: name.to_string(),
            category,
        });
    }
    // Names first: a label never overrides a site name.
    for (label, category) in labels {
        sources.entry(label).or_insert(category);
    }
    for entries in hosts.values_mut() {
        entries.sort_by_key(|e| std::cmp::Reverse(e.path.len()));
    }
    Table { hosts, sources }
}

/// The curated entry for a host and path: the host itself, then its parent domains
/// (l.facebook.com -> facebook.com), each also against "label.*" rows when the rest is a TLD.
pub fn lookup(host: &str, path: &str) -> Option<&'static Entry> {
    let table = &*TABLE;
    let host = strip_www(host);
    let mut candidate = host;
    loop {
        if let Some(e) = match_entries(table.hosts.get(candidate), path) {
            return Some(e);
        }
        if let Some((label, rest)) = candidate.split_once('.') {
            if is_tld_like(rest) {
                if let Some(e) = match_entries(table.hosts.get(&format!("{label}.*")), path) {
                    return Some(e);
                }
            }
            // Stop at two labels: "co.uk" or "com" alone names nothing.
            if !rest.contains('.') {
                return None;
            }
            candidate = rest;
        } else {
            return None;
        }
    }
}

fn match_entries<'a>(entries: Option<&'a Vec<Entry>>, path: &str) -> Option<&'a Entry> {
    entries?.iter().find(|e| {
        e.path.is_empty()
            || path
                .strip_prefix(e.path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// "de", "com", "co.uk", "com.br": what may follow "google." in a "google.*" row.
fn is_tld_like(rest: &str) -> bool {
    let labels: Vec<&str> = rest.split('.').collect();
    let alpha = |l: &str| (2..=6).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase());
    match labels.as_slice() {
        [tld] => alpha(tld),
        [sld, cc] => {
            matches!(
                *sld,
                "co" | "com" | "net" | "org" | "ac" | "gov" | "edu" | "ne" | "or" | "go"
            ) && cc.len() == 2
                && alpha(cc)
        }
        _ => false,
    }
}

/// The category of a resolved referrer (by host, else by its text name).
pub fn referrer_category(r: &Referrer) -> Category {
    if !r.host.is_empty() {
        return lookup(&r.host, referrer_path(&r.referrer)).map_or(Category::None, |e| e.category);
    }
    source_category(&r.name)
}

/// The category of a utm_source-like value: a host ("m.facebook.com"), a site name
/// ("Facebook", "hacker news") or a host's first label ("youtube").
pub fn source_category(source: &str) -> Category {
    let s = source.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Category::None;
    }
    if let Some(e) = lookup(&s, "") {
        return e.category;
    }
    TABLE.sources.get(&s).copied().unwrap_or(Category::None)
}

/// The path part of a normalised referrer URL ("https://host/path" -> "/path").
fn referrer_path(referrer: &str) -> &str {
    let after_scheme = referrer.split_once("://").map_or("", |(_, rest)| rest);
    after_scheme.find('/').map_or("", |i| &after_scheme[i..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dims::parse_url;

    fn r(referrer: &str, name: &str, host: &str) -> Referrer {
        Referrer {
            referrer: referrer.into(),
            name: name.into(),
            host: host.into(),
        }
    }

    #[test]
    fn header_referrers() {
        let site = parse_url("https://mysite.com/page");
        let cases = [
            // Scenario 5.
            (
                "https://www.google.pl/products",
                r(
                    "https://www.google.pl/products",
                    "Google Product Search",
                    "www.google.pl",
                ),
            ),
            (
                "http%3A%2F%2Finstagram.com%2F",
                r("http://instagram.com", "Instagram", "instagram.com"),
            ),
            (
                "https://www.example.com/",
                r("https://www.example.com", "example.com", "www.example.com"),
            ),
            ("ReferrerName", r("", "ReferrerName", "")),
            ("https://1.2.3.4/page", Referrer::default()),
            ("http://[2001:db8::1]/", Referrer::default()),
            ("1.2.3.4", Referrer::default()),
            // Names from the table.
            (
                "https://www.google.com/",
                r("https://www.google.com", "Google", "www.google.com"),
            ),
            (
                "https://www.google.co.uk/search?q=x",
                r(
                    "https://www.google.co.uk/search",
                    "Google",
                    "www.google.co.uk",
                ),
            ),
            (
                "https://scholar.google.de/",
                r("https://scholar.google.de", "Google", "scholar.google.de"),
            ),
            ("https://t.co/abc", r("https://t.co/abc", "Twitter", "t.co")),
            (
                "https://news.ycombinator.com/item?id=1",
                r(
                    "https://news.ycombinator.com/item",
                    "Hacker News",
                    "news.ycombinator.com",
                ),
            ),
            (
                "https://l.facebook.com/l.php?u=x",
                r("https://l.facebook.com/l.php", "Facebook", "l.facebook.com"),
            ),
            (
                "https://lm.facebook.com/",
                r("https://lm.facebook.com", "Facebook", "lm.facebook.com"),
            ),
            (
                "https://old.reddit.com/r/rust/",
                r("https://old.reddit.com/r/rust/", "Reddit", "old.reddit.com"),
            ),
            (
                "https://www.perplexity.ai/",
                r(
                    "https://www.perplexity.ai",
                    "Perplexity",
                    "www.perplexity.ai",
                ),
            ),
            (
                "https://gemini.google.com/app",
                r(
                    "https://gemini.google.com/app",
                    "Gemini",
                    "gemini.google.com",
                ),
            ),
            (
                "https://google.evil.com/",
                r(
                    "https://google.evil.com",
                    "google.evil.com",
                    "google.evil.com",
                ),
            ),
            // Normalisation: lowercase host, drop query and fragment, keep port and path.
            (
                "HTTPS://Blog.Example.COM:8080/a/b/?x=1#top",
                r(
                    "https://blog.example.com:8080/a/b/",
                    "blog.example.com",
                    "blog.example.com",
                ),
            ),
            (
                "https://example.com/caf%C3%A9",
                r("https://example.com/café", "example.com", "example.com"),
            ),
            // Android apps kept raw.
            (
                "android-app://com.google.android.gm",
                r(
                    "android-app://com.google.android.gm",
                    "Gmail",
                    "com.google.android.gm",
                ),
            ),
            (
                "android-app://org.example.app/",
                r(
                    "android-app://org.example.app/",
                    "org.example.app",
                    "org.example.app",
                ),
            ),
            // Junk.
            ("about:blank", Referrer::default()),
            ("   ", Referrer::default()),
            ("", Referrer::default()),
            // Self-referrers, with and without www; subdomains are other sites.
            ("https://www.mysite.com/other", Referrer::default()),
            ("https://mysite.com/", Referrer::default()),
            (
                "https://blog.mysite.com/",
                r(
                    "https://blog.mysite.com",
                    "blog.mysite.com",
                    "blog.mysite.com",
                ),
            ),
        ];
        for (header, want) in cases {
            assert_eq!(resolve(header, &site, "mysite.com"), want, "{header:?}");
        }
    }

    #[test]
    fn query_params_and_precedence() {
        let cases = [
            // ?ref= overrides the header (scenario 5).
            (
                "https://mysite.com/?ref=google.com",
                "https://bing.com/",
                r("", "Google", "google.com"),
            ),
            (
                "https://mysite.com/?referer=https%3A%2F%2Fnews.ycombinator.com%2F",
                "",
                r(
                    "https://news.ycombinator.com",
                    "Hacker News",
                    "news.ycombinator.com",
                ),
            ),
            (
                "https://mysite.com/?referrer=Newsletter",
                "https://bing.com/",
                r("", "Newsletter", ""),
            ),
            (
                "https://mysite.com/?ref=My+Referrer",
                "",
                r("", "My Referrer", ""),
            ),
            (
                "https://mysite.com/?ref=",
                "https://bing.com/",
                r("https://bing.com", "Bing", "bing.com"),
            ),
            // utm_source/source do not override a header (scenario 5) ...
            (
                "https://mysite.com/?utm_source=x",
                "https://bing.com/",
                r("https://bing.com", "Bing", "bing.com"),
            ),
            (
                "https://mysite.com/?source=x",
                "https://bing.com/",
                r("https://bing.com", "Bing", "bing.com"),
            ),
            // ... but fill an empty one.
            (
                "https://mysite.com/?utm_source=newsletter",
                "",
                r("", "newsletter", ""),
            ),
            (
                "https://mysite.com/?source=x&utm_source=y",
                "",
                r("", "x", ""),
            ),
            (
                "https://mysite.com/?ref=www.mysite.com",
                "",
                Referrer::default(),
            ),
            ("https://mysite.com/?ref=8.8.8.8", "", Referrer::default()),
            // A path without a host is on the site, like a path-only hit URL (and not the
            // host "blog" that "http:///blog/post.html" would make of it).
            ("/blog?x=1", "/previous", Referrer::default()),
            ("/", "/blog/post.html", Referrer::default()),
            ("/", "%2Fblog%2Fpost.html", Referrer::default()),
            (
                "https://mysite.com/?ref=%2Fpricing",
                "",
                Referrer::default(),
            ),
            // "//host" is a host without a scheme, as before.
            ("/", "//google.com/", r("", "Google", "google.com")),
        ];
        for (url, header, want) in cases {
            assert_eq!(
                resolve(header, &parse_url(url), "www.mysite.com"),
                want,
                "{url} {header}"
            );
        }
    }

    #[test]
    fn limits() {
        let long_name = "n".repeat(300);
        let got = resolve(&long_name, &parse_url("https://s.com/"), "s.com");
        assert_eq!(got.name.len(), MAX_REFERRER);
        let long_url = format!("https://example.com/{}", "p".repeat(300));
        let got = resolve(&long_url, &parse_url("https://s.com/"), "s.com");
        assert_eq!(got.referrer.len(), MAX_REFERRER);
        // Never panics on odd input.
        for odd in [
            "%",
            "%%%",
            "%ff%fe",
            "http://",
            "://",
            "http://%zz",
            "android-app://",
            "ANDROID-APP://X",
            "é.com",
            "a..b",
        ] {
            let _ = resolve(odd, &parse_url("https://s.com/"), "s.com");
        }
    }

    #[test]
    fn table_loads_and_categorises() {
        assert!(TABLE.hosts.len() >= 100, "{}", TABLE.hosts.len());
        let cases = [
            ("google", Category::Search),
            ("Google", Category::Search),
            ("facebook", Category::Social),
            ("m.facebook.com", Category::Social),
            ("youtube", Category::Video),
            ("chatgpt.com", Category::Ai),
            ("perplexity", Category::Ai),
            ("amazon.de", Category::Shopping),
            ("gmail", Category::Email),
            ("github.com", Category::None),
            ("newsletter", Category::None),
            ("", Category::None),
        ];
        for (source, want) in cases {
            assert_eq!(source_category(source), want, "{source}");
        }
        assert_eq!(
            referrer_category(&r("https://www.google.de/shopping/x", "", "www.google.de")),
            Category::Shopping
        );
        assert_eq!(
            referrer_category(&r("https://www.google.de/search", "", "www.google.de")),
            Category::Search
        );
        assert_eq!(referrer_category(&r("", "Instagram", "")), Category::Social);
    }

    #[test]
    fn tld_shapes() {
        for (rest, want) in [
            ("de", true),
            ("co.uk", true),
            ("com.br", true),
            ("evil.com", false),
            ("a.b.c", false),
            ("x", false),
        ] {
            assert_eq!(is_tld_like(rest), want, "{rest}");
        }
    }
}
