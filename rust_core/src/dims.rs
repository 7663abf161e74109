//! Small derived dimensions: URL parts, screen class, language, UTM, tags (reference section 4).

use percent_encoding::percent_decode_str;
use url::Url;

/// Longest path kept; longer paths are cut (reference: 2,000 chars).
pub const MAX_PATH: usize = 2000;
/// Longest UTM value kept.
pub const MAX_UTM: usize = 200;
/// Longest tag / event-meta key or value kept.
pub const MAX_TAG: usize = 50;

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
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Split a hit URL into hostname, decoded path and decoded query pairs. Never fails: a
/// path-only URL ("/blog?x=1") keeps its path and query with an empty hostname, and anything
/// unparseable gives hostname "" and path "/", because a hit must not be lost over its URL.
/// A hit's URL goes through parse_hit_url, which puts an empty hostname on the site's.
pub fn parse_url(url: &str) -> UrlParts {
    let url = url.trim();
    let parsed = if url.starts_with('/') {
        // A request path as a server sees it (Go's `r.URL.String()`): all path, even when it
        // starts with "//", which a URL parser would take for a host ("//x/y" is the path
        // "//x/y", not host x). Only a rooted path is worth rescuing; "foo bar" has none.
        Url::parse(&format!("http://relative.invalid{url}")).ok()
    } else {
        Url::parse(url).ok()
    };
    let Some(u) = parsed else {
        return UrlParts {
            path: "/".into(),
            ..UrlParts::default()
        };
    };
    let hostname = if url.starts_with('/') {
        String::new()
    } else {
        u.host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    UrlParts {
        hostname,
        path: decoded_path(u.path()),
        query: u.query_pairs().into_owned().collect(),
    }
}

/// A hit's URL (parse_url) on the site it was sent for: a URL without a hostname, which is
/// what server SDKs send ("/blog?x=1", the path of the request they handle), is on the
/// site's hostname, so it is stored, filtered and allowed under that name.
pub fn parse_hit_url(url: &str, site_hostname: &str) -> UrlParts {
    let mut parts = parse_url(url);
    if parts.hostname.is_empty() {
        parts.hostname = site_hostname
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
    }
    parts
}

/// The path as the visitor saw it: percent-decoded (lossy on bad UTF-8), "/" when empty.
fn decoded_path(raw: &str) -> String {
    let path = percent_decode_str(raw).decode_utf8_lossy();
    if path.is_empty() || !path.starts_with('/') {
        // Cannot-be-a-base URLs (mailto:x) have no rooted path; report the root.
        return "/".into();
    }
    truncate(&path, MAX_PATH)
}

/// Screen class from a width in pixels; 0 or negative -> "".
/// Thresholds are the minimum width of each class (as Pirsch's engine does, not its docs).
pub fn screen_class(width: i64) -> &'static str {
    const CLASSES: [(i64, &str); 10] = [
        (5120, "UHD 5K"),
        (3840, "UHD 4K"),
        (2560, "WQHD"),
        (1920, "Full HD"),
        (1280, "HD"),
        (1024, "XL"),
        (800, "L"),
        (600, "M"),
        (415, "S"),
        (1, "XS"),
    ];
    CLASSES
        .iter()
        .find(|(min, _)| width >= *min)
        .map_or("", |(_, class)| class)
}

/// ISO 639-1 two-letter language codes (184, the standard's full list; a fact, see
/// trail/data/SOURCES.md). Sorted, for binary search.
const ISO_639_1: [&str; 184] = [
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// First Accept-Language entry as a valid ISO-639-1 code, else "".
/// The entry is cut at `;`, `,`, `-` (and `_`, which some clients send as "en_US").
pub fn language(accept_language: &str) -> String {
    let first = accept_language
        .split([',', ';', '-', '_'])
        .next()
        .unwrap_or_default();
    let code = first.trim().to_ascii_lowercase();
    if ISO_639_1.binary_search(&code.as_str()).is_ok() {
        code
    } else {
        String::new()
    }
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
    let get = |key: &str| truncate(url.param(key).unwrap_or_default().trim(), MAX_UTM);
    let mut utm = Utm {
        source: get("utm_source"),
        medium: get("utm_medium"),
        campaign: get("utm_campaign"),
        content: get("utm_content"),
        term: get("utm_term"),
    };
    // An ad click without UTM tagging is still paid traffic; mark it so the channel and the
    // session-change rule can see it (reference scenario 4).
    if utm.medium.is_empty() {
        if has_param(url, "gclid") && referrer_name == "Google" {
            utm.medium = "(gclid)".into();
        } else if has_param(url, "msclkid") && referrer_name == "Bing" {
            utm.medium = "(msclkid)".into();
        }
    }
    utm
}

/// Whether the URL carries a non-empty click id such as `gclid`.
pub fn has_param(url: &UrlParts, key: &str) -> bool {
    url.param(key).is_some_and(|v| !v.trim().is_empty())
}

/// Whether the URL carries an ad click id (Google or Microsoft Ads).
pub fn has_click_id(url: &UrlParts) -> bool {
    has_param(url, "gclid") || has_param(url, "msclkid")
}

/// Tags/meta normalised: keys and values trimmed, empty dropped, at most `max_pairs` pairs,
/// keys and values cut to 50 chars. Returns parallel (keys, values).
pub fn tags(pairs: &[(String, String)], max_pairs: usize) -> (Vec<String>, Vec<String>) {
    let kept = pairs
        .iter()
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .take(max_pairs);
    kept.map(|(k, v)| (truncate(k, MAX_TAG), truncate(v, MAX_TAG)))
        .unzip()
}

/// Truncate to at most `max` chars on a char boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string(); // no more characters than bytes
    }
    match s.char_indices().nth(max) {
        Some((end, _)) => s[..end].to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn truncate_keeps_the_first_max_characters() {
        for (text, max) in [
            ("", 3),
            ("abc", 3),
            ("abcd", 3),
            ("äöüß", 2),
            ("äöüß", 4),
            ("a€b", 2),
            ("€€€", 8),
        ] {
            let want: String = text.chars().take(max).collect();
            assert_eq!(truncate(text, max), want, "{text} {max}");
        }
    }

    #[test]
    fn parse_url_cases() {
        type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (
                "https://Example.COM/blog/post?a=1&b=x%20y",
                "example.com",
                "/blog/post",
                &[("a", "1"), ("b", "x y")],
            ),
            ("https://example.com", "example.com", "/", &[]),
            (
                "https://example.com:8443/p?q=a+b#frag",
                "example.com",
                "/p",
                &[("q", "a b")],
            ),
            ("https://example.com/caf%C3%A9", "example.com", "/café", &[]),
            ("https://example.com./x", "example.com", "/x", &[]),
            ("http://[2001:db8::1]/x", "[2001:db8::1]", "/x", &[]),
            (
                "/relative/path?utm_source=x",
                "",
                "/relative/path",
                &[("utm_source", "x")],
            ),
            ("/", "", "/", &[]),
            ("/blog?x=1#top", "", "/blog", &[("x", "1")]),
            // A path starting with "//" is a path (a server's request URI), not a host.
            ("//", "", "//", &[]),
            ("//evil.com/x?a=1", "", "//evil.com/x", &[("a", "1")]),
            ("/caf%C3%A9/../x", "", "/x", &[]),
            ("not a url", "", "/", &[]),
            ("", "", "/", &[]),
            ("mailto:someone@example.com", "", "/", &[]),
        ];
        for (url, host, path, query) in cases {
            let got = parse_url(url);
            assert_eq!(got.hostname, *host, "{url}");
            assert_eq!(got.path, *path, "{url}");
            assert_eq!(got.query, q(query), "{url}");
        }
    }

    #[test]
    fn hit_urls_without_a_hostname_are_on_the_site() {
        // (url, site hostname) -> (hostname, path)
        let cases = [
            ("/blog?x=1", "example.com", "example.com", "/blog"),
            ("/", "Example.COM.", "example.com", "/"),
            ("//evil.com/x", "example.com", "example.com", "//evil.com/x"),
            // a keep-alive without a URL
            ("", "example.com", "example.com", "/"),
            // an absolute URL keeps its own hostname
            (
                "https://blog.example.com/p",
                "example.com",
                "blog.example.com",
                "/p",
            ),
            ("https://other.org/", "example.com", "other.org", "/"),
        ];
        for (url, site, host, path) in cases {
            let got = parse_hit_url(url, site);
            assert_eq!(
                (got.hostname.as_str(), got.path.as_str()),
                (host, path),
                "{url}"
            );
            assert_eq!(got.query, parse_url(url).query, "{url}");
        }
    }

    #[test]
    fn parse_url_caps_path() {
        let url = format!("https://example.com/{}", "a".repeat(3000));
        let got = parse_url(&url);
        assert_eq!(got.path.chars().count(), MAX_PATH);
        assert!(got.path.starts_with("/aaa"));
    }

    #[test]
    fn screen_classes() {
        // Reference scenario 6 plus each boundary.
        let cases = [
            (42, "XS"),
            (1024, "XL"),
            (1919, "HD"),
            (2559, "Full HD"),
            (5120, "UHD 5K"),
            (9000, "UHD 5K"),
            (3840, "UHD 4K"),
            (2560, "WQHD"),
            (1920, "Full HD"),
            (1280, "HD"),
            (800, "L"),
            (600, "M"),
            (415, "S"),
            (414, "XS"),
            (1, "XS"),
            (0, ""),
            (-5, ""),
        ];
        for (w, want) in cases {
            assert_eq!(screen_class(w), want, "{w}");
        }
    }

    #[test]
    fn languages() {
        let cases = [
            ("en-us, en", "en"), // scenario 6
            ("fr-CH, fr;q=0.9, en;q=0.8", "fr"),
            ("DE", "de"),
            ("de;q=1", "de"),
            ("en_US", "en"),
            ("  pt-BR", "pt"),
            ("invalid", ""),
            ("xx", ""),
            ("*", ""),
            ("", ""),
            ("zh-Hant-TW", "zh"),
            ("é", ""),
        ];
        for (header, want) in cases {
            assert_eq!(language(header), want, "{header}");
        }
    }

    #[test]
    fn iso_list_is_sorted_and_unique() {
        assert!(ISO_639_1.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn utm_values() {
        let url = parse_url(
            "https://x.com/?utm_source=%20News%20&utm_medium=email&utm_campaign=spring&utm_content=a&utm_term=b",
        );
        let want = Utm {
            source: "News".into(),
            medium: "email".into(),
            campaign: "spring".into(),
            content: "a".into(),
            term: "b".into(),
        };
        assert_eq!(utm(&url, ""), want);
        let long = parse_url(&format!("https://x.com/?utm_campaign={}", "c".repeat(300)));
        assert_eq!(utm(&long, "").campaign.len(), MAX_UTM);
    }

    #[test]
    fn click_ids_set_medium() {
        let cases = [
            ("https://x.com/?gclid=abc", "Google", "(gclid)"),
            ("https://x.com/?gclid=abc", "Bing", ""),
            ("https://x.com/?gclid=", "Google", ""),
            (
                "https://x.com/?gclid=abc&utm_medium=Medium",
                "Google",
                "Medium",
            ),
            ("https://x.com/?msclkid=abc", "Bing", "(msclkid)"),
            ("https://x.com/?msclkid=abc", "Google", ""),
            ("https://x.com/", "Google", ""),
        ];
        for (url, name, want) in cases {
            assert_eq!(utm(&parse_url(url), name).medium, want, "{url} {name}");
        }
        assert!(has_click_id(&parse_url("https://x.com/?msclkid=1")));
        assert!(!has_click_id(&parse_url("https://x.com/?gclid=")));
    }

    #[test]
    fn tag_normalisation() {
        let long = "k".repeat(60);
        let pairs = q(&[
            (" a ", " 1 "),
            ("", "x"),
            ("b", "  "),
            (&long, &long),
            ("c", "3"),
            ("d", "4"),
        ]);
        let (keys, values) = tags(&pairs, 3);
        assert_eq!(keys, vec!["a".to_string(), "k".repeat(50), "c".to_string()]);
        assert_eq!(
            values,
            vec!["1".to_string(), "k".repeat(50), "3".to_string()]
        );
        assert_eq!(tags(&[], 20), (vec![], vec![]));
    }

    #[test]
    fn truncate_respects_chars() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("ab", 5), "ab");
    }
}
