//! User-Agent and client-hint parsing (reference section 4) over the uap-core rules (matched in
//! `uap`, as the `ua-parser` crate matches them), behind a cache.
//!
//! uap names families precisely ("Chrome Mobile iOS", "Mac OS X"); reports want the coarser
//! Pirsch-style names ("Chrome", "Mac"), so the uap result is mapped, then client hints (which
//! Chromium browsers send instead of a truthful UA) override it.

use crate::errors::{CoreError, Result};
use crate::hit::ClientHints;
use quick_cache::sync::Cache;
use std::borrow::Cow;
use std::fmt::Write as _;
use uap::{Browsers, Devices, Systems};

mod uap;

/// uap-core rules as handed over from Python (`ua_parser_builtins`): each entry is
/// (regex, replacement fields...) exactly as the YAML/`regexes.py` carries them.
#[derive(Clone, Debug, Default)]
pub struct UaRules {
    /// (regex, family_replacement, v1_replacement, v2_replacement, v3_replacement)
    pub user_agent: Vec<Rule>,
    /// (regex, os_replacement, os_v1_replacement, os_v2_replacement, os_v3_replacement)
    pub os: Vec<Rule>,
    /// (regex, regex_flag, device_replacement, brand_replacement, model_replacement)
    pub device: Vec<Rule>,
}

/// One uap rule: the regex and four optional replacement fields (see `UaRules`).
pub type Rule = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UaInfo {
    pub browser: String,
    /// major.minor
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub desktop: bool,
    pub mobile: bool,
    /// A Sec-CH-UA brand said "headless" (a bot).
    pub headless_hint: bool,
    /// uap's device rules call this client a crawler (device family "Spider").
    pub spider: bool,
}

pub struct UaParser {
    ua: Browsers,
    os: Systems,
    device: Devices,
    /// None when the configured size is 0 (tests, or a deliberate opt-out).
    cache: Option<Cache<String, UaInfo>>,
    skipped_rules: usize,
}

/// Longest client-hint value we look at; real ones are well under 200 bytes.
const MAX_HINT_LEN: usize = 512;
/// Only this much of a UA is parsed: browsers' UAs are far shorter, and it bounds regex work.
const MAX_UA_LEN: usize = 1024;
/// UAs longer than this are dropped as bots anyway (bots::UA_MAX_LEN), so not worth caching.
const MAX_CACHED_UA_LEN: usize = 512;

impl UaParser {
    pub fn new(rules: &UaRules, cache_size: usize) -> Result<UaParser> {
        let config = |e: String| CoreError::Config(format!("uap rules: {e}"));
        let (ua, skipped_ua) = Browsers::new(&rules.user_agent).map_err(config)?;
        let (os, skipped_os) = Systems::new(&rules.os).map_err(config)?;
        let (device, skipped_dev) = Devices::new(&rules.device).map_err(config)?;
        let cache = (cache_size > 0).then(|| Cache::new(cache_size));
        let skipped_rules = skipped_ua + skipped_os + skipped_dev;
        Ok(UaParser {
            ua,
            os,
            device,
            cache,
            skipped_rules,
        })
    }

    /// Rules that could not be used and were left out (0 with today's uap-core).
    pub fn skipped_rules(&self) -> usize {
        self.skipped_rules + self.ua.failed() + self.os.failed() + self.device.failed()
    }

    /// Rules whose regex has been compiled so far: the rules are compiled when first needed.
    pub fn compiled_rules(&self) -> usize {
        self.ua.compiled() + self.os.compiled() + self.device.compiled()
    }

    pub fn parse(&self, user_agent: &str, hints: &ClientHints) -> UaInfo {
        let user_agent = truncate(user_agent, MAX_UA_LEN);
        let Some(cache) = &self.cache else {
            return self.parse_uncached(user_agent, hints);
        };
        // Oversized inputs are bots or junk; caching them would let a flood of distinct
        // megabyte-sized strings fill memory.
        if user_agent.len() > MAX_CACHED_UA_LEN || hints_len(hints) > MAX_HINT_LEN * 2 {
            return self.parse_uncached(user_agent, hints);
        }
        let key = cache_key(user_agent, hints);
        if let Some(info) = cache.get(&key) {
            return info;
        }
        let info = self.parse_uncached(user_agent, hints);
        cache.insert(key, info.clone());
        info
    }

    fn parse_uncached(&self, user_agent: &str, hints: &ClientHints) -> UaInfo {
        let mut info = UaInfo::default();
        if let Some(v) = self.ua.find(user_agent) {
            info.browser = browser_name(&v.name).into_owned();
            info.browser_version = major_minor(v.major.as_deref(), v.minor.as_deref());
        }
        if let Some(v) = self.os.find(user_agent) {
            let (name, version) = os_name(&v.name, v.major.as_deref(), v.minor.as_deref());
            info.os = name.into_owned();
            info.os_version = version;
        }
        info.spider = self.device.name(user_agent).is_some_and(|d| d == "Spider");
        apply_platform_hint(&mut info, hints);
        apply_brand_hint(&mut info, hints);
        set_platform(&mut info, hints);
        info
    }
}

/// Browser and OS names another tool recorded ("Chrome" "86.0.4240", "macOS" "10.15.7"),
/// mapped to the names and major.minor versions reports group by, as a parsed UA's are.
pub fn named(browser: &str, browser_version: &str, os: &str, os_version: &str) -> UaInfo {
    let mut parts = browser_version.trim().split('.');
    let (b_major, b_minor) = (parts.next(), parts.next());
    let mut parts = os_version.trim().split('.');
    let (o_major, o_minor) = (parts.next(), parts.next());
    let (os, os_version) = os_name(os.trim(), o_major, o_minor);
    let mut info = UaInfo {
        browser: browser_name(browser.trim()).into_owned(),
        browser_version: major_minor(b_major, b_minor),
        os: os.into_owned(),
        os_version,
        ..UaInfo::default()
    };
    if info.browser.is_empty() {
        info.browser_version.clear();
    }
    set_platform(&mut info, &ClientHints::default());
    info
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn hints_len(h: &ClientHints) -> usize {
    h.ua.len() + h.mobile.len() + h.platform.len() + h.platform_version.len()
}

/// Unambiguous key: every part is length-prefixed, so no UA can collide with another's hints.
fn cache_key(user_agent: &str, hints: &ClientHints) -> String {
    let parts = [
        user_agent,
        &hints.ua,
        &hints.mobile,
        &hints.platform,
        &hints.platform_version,
    ];
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 6).sum());
    for p in parts {
        let _ = write!(key, "{}:{p}", p.len());
    }
    key
}

fn major_minor(major: Option<&str>, minor: Option<&str>) -> String {
    match (major, minor) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => format!("{a}.{b}"),
        (Some(a), _) => a.to_string(),
        _ => String::new(),
    }
}

/// uap family -> the name reports group by. Unlisted families keep uap's name.
fn browser_name(family: &str) -> Cow<'_, str> {
    let name = match family {
        "Chrome"
        | "Chrome Mobile"
        | "Chrome Mobile iOS"
        | "Chrome Mobile WebView"
        | "Chromium"
        | "CriOS"
        | "Chrome Frame" => "Chrome",
        "Safari" | "Mobile Safari" | "Mobile Safari UI/WKWebView" => "Safari",
        "Edge" | "Edge Mobile" => "Edge",
        "IE" | "IE Mobile" => "Internet Explorer",
        // Opera Mini and Touch have their own small version numbers; only these two share
        // Opera's (Chromium-based) numbering that the too-old check relies on.
        "Opera" | "Opera Mobile" => "Opera",
        "DuckDuckGo Mobile" => "DuckDuckGo",
        "Other" => "",
        f if f.starts_with("Firefox") => "Firefox",
        f => return Cow::Borrowed(f),
    };
    Cow::Borrowed(name)
}

const LINUX_DISTROS: &[&str] = &[
    "Linux",
    "Ubuntu",
    "Kubuntu",
    "Xubuntu",
    "Lubuntu",
    "Debian",
    "Fedora",
    "Red Hat",
    "CentOS",
    "SUSE",
    "openSUSE",
    "Gentoo",
    "Mandriva",
    "Slackware",
    "Linux Mint",
    "Arch Linux",
    "Mageia",
    "PCLinuxOS",
    "Knoppix",
    "Puppy",
    "Raspbian",
];

/// uap OS -> report name and version. Linux has no meaningful version across distros.
fn os_name<'a>(
    family: &'a str,
    major: Option<&str>,
    minor: Option<&str>,
) -> (Cow<'a, str>, String) {
    let version = major_minor(major, minor);
    let name = match family {
        "Windows" | "Windows RT" => "Windows",
        "Mac OS X" | "Mac OS" | "macOS" => "Mac",
        "Windows Phone" | "Windows Mobile" | "Windows CE" => "Windows Mobile",
        "Chrome OS" | "Chromium OS" => "Chrome OS",
        "Other" => return (Cow::Borrowed(""), String::new()),
        f if LINUX_DISTROS.contains(&f) => return (Cow::Borrowed("Linux"), String::new()),
        f => return (Cow::Borrowed(f), version),
    };
    (Cow::Borrowed(name), version)
}

/// Structured-header strings arrive quoted (`"macOS"`); tolerate the unquoted form too.
fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: &str = &s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())];
    digits.parse().ok()
}

/// Sec-CH-UA-Platform (+ version) replaces the OS the UA claims.
fn apply_platform_hint(info: &mut UaInfo, hints: &ClientHints) {
    let platform = unquote(&hints.platform);
    if platform.is_empty() || platform.eq_ignore_ascii_case("unknown") || platform.len() > 64 {
        return;
    }
    let os = match platform {
        "macOS" => "Mac",
        "Chromium OS" | "Chrome OS" => "Chrome OS",
        p => p,
    };
    let hint_version = unquote(&hints.platform_version);
    let same_os = info.os == os;
    let version = if os == "Windows" {
        // The platform version is the UniversalApiContract version: 13+ is Windows 11, 1-12 is
        // Windows 10, 0.x is 7/8/8.1, where the UA's NT version is the better answer.
        match leading_number(hint_version) {
            Some(n) if n >= 13 => "11".to_string(),
            Some(n) if n >= 1 => "10".to_string(),
            _ if same_os => std::mem::take(&mut info.os_version),
            _ => String::new(),
        }
    } else if !hint_version.is_empty() && hint_version.len() <= 64 {
        let mut parts = hint_version.split('.');
        major_minor(parts.next(), parts.next())
    } else if same_os {
        std::mem::take(&mut info.os_version)
    } else {
        String::new()
    };
    info.os = os.to_string();
    info.os_version = version;
}

/// (brand, version) pairs of a Sec-CH-UA list such as
/// `"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"`.
/// GREASE brands may contain `;` and `=` but never `"` or `,`, so scanning quotes is enough.
fn parse_brands(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    while out.len() < 16 {
        let Some(start) = rest.find('"') else { break };
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let name = &after[..end];
        rest = &after[end + 1..];
        let item_end = rest.find(',').unwrap_or(rest.len());
        let params = &rest[..item_end];
        let version = params
            .find("v=\"")
            .map(|p| &params[p + 3..])
            .map(|v| &v[..v.find('"').unwrap_or(v.len())])
            .unwrap_or("");
        out.push((name, version));
        rest = &rest[item_end..];
    }
    out
}

fn is_grease_or_engine(brand: &str) -> bool {
    brand.contains("Not") || brand.contains("Brand") || brand == "Chromium"
}

/// Sec-CH-UA names the real browser where the UA string is frozen to "Chrome".
fn apply_brand_hint(info: &mut UaInfo, hints: &ClientHints) {
    if hints.ua.is_empty() || hints.ua.len() > MAX_HINT_LEN {
        return;
    }
    let brands = parse_brands(&hints.ua);
    info.headless_hint = brands
        .iter()
        .any(|(b, _)| b.to_ascii_lowercase().contains("headless"));
    let known = brands.iter().find_map(|&(b, v)| {
        let name = match b {
            "Google Chrome" => "Chrome",
            "Microsoft Edge" => "Edge",
            "Opera" => "Opera",
            "Arc" => "Arc",
            _ => return None,
        };
        Some((name, v))
    });
    let chosen = known.or_else(|| {
        brands
            .iter()
            .copied()
            .find(|(b, _)| !is_grease_or_engine(b))
    });
    let Some((name, version)) = chosen else {
        return;
    };
    // Sec-CH-UA carries only the major version; keep the UA's major.minor when it agrees.
    let mut parts = version.split('.');
    let (major, minor) = (parts.next(), parts.next());
    let ua_major = info.browser_version.split('.').next();
    if info.browser != name || ua_major != major {
        info.browser_version = major_minor(major, minor);
    }
    info.browser = name.to_string();
}

/// Sec-CH-UA-Mobile decides; without it the OS does. Chrome OS and unknown OSes are neither.
fn set_platform(info: &mut UaInfo, hints: &ClientHints) {
    let (desktop, mobile) = match unquote(&hints.mobile) {
        "?1" => (false, true),
        "?0" => (true, false),
        _ => match info.os.as_str() {
            "Windows" | "Mac" | "Linux" => (true, false),
            "Android" | "iOS" | "Windows Mobile" => (false, true),
            _ => (false, false),
        },
    };
    info.desktop = desktop;
    info.mobile = mobile;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real uap-core rules, dumped by tests/fixtures/dump_datalists.py.
    pub(crate) fn real_rules() -> UaRules {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/uap_rules.json");
        let text = std::fs::read_to_string(path).expect("uap_rules.json (run dump_datalists.py)");
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let list = |k: &str| -> Vec<Rule> {
            serde_json::from_value(v[k].clone()).expect("list of 5-tuples")
        };
        UaRules {
            user_agent: list("user_agent"),
            os: list("os"),
            device: list("device"),
        }
    }

    fn parser() -> &'static UaParser {
        static P: std::sync::OnceLock<UaParser> = std::sync::OnceLock::new();
        P.get_or_init(|| UaParser::new(&real_rules(), 1000).expect("rules compile"))
    }

    const WIN_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    // (user agent, browser, browser version, os, os version, desktop, mobile)
    const UA_CASES: &[(&str, &str, &str, &str, &str, bool, bool)] = &[
        (WIN_CHROME, "Chrome", "124.0", "Windows", "10", true, false),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "124.0", "Mac", "10.15", true, false),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36", "Chrome", "123.0", "Linux", "", true, false),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", "Chrome", "124.0", "Android", "10", false, true),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", "Chrome", "124.0", "iOS", "17.4", false, true),
        ("Mozilla/5.0 (Linux; Android 13; SM-A536B; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36", "Chrome", "124.0", "Android", "13", false, true),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "125.0", "Windows", "10", true, false),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox", "125.0", "Mac", "10.15", true, false),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0", "Firefox", "124.0", "Linux", "", true, false),
        ("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "Firefox", "125.0", "Android", "14", false, true),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15", "Firefox", "125.0", "iOS", "17.4", false, true),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", "Safari", "17.4", "Mac", "10.15", true, false),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", "Safari", "17.4", "iOS", "17.4", false, true),
        ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", "Safari", "16.6", "iOS", "16.6", false, true),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "Safari", "", "iOS", "16.6", false, true),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", "Edge", "124.0", "Windows", "10", true, false),
        ("Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 EdgA/124.0.2478.64", "Edge", "124.0", "Android", "10", false, true),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/124.0.2478.71 Mobile/15E148 Safari/605.1.15", "Edge", "124.0", "iOS", "17.4", false, true),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0", "Opera", "109.0", "Windows", "10", true, false),
        ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer", "11.0", "Windows", "7", true, false),
        ("Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36", "Chrome", "109.0", "Windows", "8.1", true, false),
        ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", "Samsung Internet", "24.0", "Android", "14", false, true),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 DuckDuckGo/7 Safari/605.1.15", "DuckDuckGo", "7", "iOS", "17.4", false, true),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "Chrome", "124.0", "Chrome OS", "14541.0", false, false),
        ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063", "Edge", "15.15063", "Windows Mobile", "10.0", false, true),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", "HeadlessChrome", "124.0", "Linux", "", true, false),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", "2.1", "", "", false, false),
        ("curl/8.5.0", "curl", "8.5", "", "", false, false),
        ("python-requests/2.31.0", "Python Requests", "2.31", "", "", false, false),
        ("", "", "", "", "", false, false),
        ("\u{0}\u{ffff} garbage ((((", "", "", "", "", false, false),
    ];

    #[test]
    fn parses_real_user_agents() {
        let p = parser();
        assert_eq!(p.skipped_rules(), 0);
        for &(ua, browser, bv, os, ov, desktop, mobile) in UA_CASES {
            let got = p.parse(ua, &ClientHints::default());
            let want = (browser, bv, os, ov, desktop, mobile);
            let have = (
                got.browser.as_str(),
                got.browser_version.as_str(),
                got.os.as_str(),
                got.os_version.as_str(),
                got.desktop,
                got.mobile,
            );
            assert_eq!(have, want, "UA {ua}");
        }
    }

    #[test]
    fn uap_spider_devices_are_flagged() {
        let p = parser();
        let bot = p.parse(UA_CASES[26].0, &ClientHints::default());
        assert!(bot.spider);
        assert!(!p.parse(WIN_CHROME, &ClientHints::default()).spider);
    }

    fn hints(ua: &str, mobile: &str, platform: &str, version: &str) -> ClientHints {
        ClientHints {
            ua: ua.into(),
            mobile: mobile.into(),
            platform: platform.into(),
            platform_version: version.into(),
            ..Default::default()
        }
    }

    const CHROME_BRANDS: &str =
        r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#;

    type HintCase = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            bool,
            bool,
            bool,
        ),
    );

    // (Sec-CH-UA, -Mobile, -Platform, -Platform-Version) on a Windows Chrome UA ->
    // (browser, browser version, os, os version, desktop, mobile, headless)
    #[rustfmt::skip]
    const HINT_CASES: &[HintCase] = &[
        // Windows 11 hides behind "NT 10.0"; only the platform version tells.
        (CHROME_BRANDS, "?0", r#""Windows""#, r#""15.0.0""#, ("Chrome", "124.0", "Windows", "11", true, false, false)),
        (CHROME_BRANDS, "?0", r#""Windows""#, r#""10.0.0""#, ("Chrome", "124.0", "Windows", "10", true, false, false)),
        (CHROME_BRANDS, "?0", r#""Windows""#, r#""0.3.0""#, ("Chrome", "124.0", "Windows", "10", true, false, false)),
        (CHROME_BRANDS, "?0", r#""macOS""#, r#""14.4.1""#, ("Chrome", "124.0", "Mac", "14.4", true, false, false)),
        (CHROME_BRANDS, "?0", r#""Linux""#, "", ("Chrome", "124.0", "Linux", "", true, false, false)),
        (CHROME_BRANDS, "?1", r#""Android""#, r#""14.0.0""#, ("Chrome", "124.0", "Android", "14.0", false, true, false)),
        (CHROME_BRANDS, "", r#""Chrome OS""#, "", ("Chrome", "124.0", "Chrome OS", "", false, false, false)),
        (CHROME_BRANDS, "", r#""Unknown""#, "", ("Chrome", "124.0", "Windows", "10", true, false, false)),
        (r#""Not/A)Brand";v="8", "Chromium";v="126", "Microsoft Edge";v="126""#, "?0", "", "", ("Edge", "126", "Windows", "10", true, false, false)),
        (r#""Microsoft Edge";v="126.0.2592.87", "Chromium";v="126.0.6478.127""#, "", "", "", ("Edge", "126.0", "Windows", "10", true, false, false)),
        (r#""Opera";v="109", "Not:A-Brand";v="8", "Chromium";v="123""#, "", "", "", ("Opera", "109", "Windows", "10", true, false, false)),
        (r#""Chromium";v="124", "Arc";v="124", "Not-A.Brand";v="99""#, "", "", "", ("Arc", "124", "Windows", "10", true, false, false)),
        (r#""Not)A;Brand";v="99", "Brave";v="124", "Chromium";v="124""#, "", "", "", ("Brave", "124", "Windows", "10", true, false, false)),
        (r#""Chromium";v="124", "Not-A.Brand";v="99""#, "", "", "", ("Chrome", "124.0", "Windows", "10", true, false, false)),
        (r#""HeadlessChrome";v="124", "Chromium";v="124""#, "?0", "", "", ("HeadlessChrome", "124", "Windows", "10", true, false, true)),
        // Malformed hints never panic and leave the UA's answer alone.
        ("garbage, no quotes", "?x", r#"""#, "abc", ("Chrome", "124.0", "Windows", "10", true, false, false)),
    ];

    #[test]
    fn client_hints_override_the_user_agent() {
        let p = parser();
        for &(brands, mobile, platform, version, want) in HINT_CASES {
            let h = hints(brands, mobile, platform, version);
            let got = p.parse(WIN_CHROME, &h);
            let have = (
                got.browser.as_str(),
                got.browser_version.as_str(),
                got.os.as_str(),
                got.os_version.as_str(),
                got.desktop,
                got.mobile,
                got.headless_hint,
            );
            assert_eq!(have, want, "hints {h:?}");
        }
    }

    #[test]
    fn cache_returns_what_a_fresh_parse_returns() {
        let p = parser();
        let h = hints(CHROME_BRANDS, "?0", r#""Windows""#, r#""15.0.0""#);
        let first = p.parse(WIN_CHROME, &h);
        assert_eq!(p.parse(WIN_CHROME, &h), first);
        assert_eq!(p.parse_uncached(WIN_CHROME, &h), first);
        // Same UA without hints is a different key.
        assert_eq!(
            p.parse(WIN_CHROME, &ClientHints::default()).os_version,
            "10"
        );
    }

    #[test]
    fn oversized_input_is_parsed_but_not_cached() {
        let p = UaParser::new(&real_rules(), 100).expect("rules compile");
        let huge = format!("{WIN_CHROME} {}", "é".repeat(1000));
        assert_eq!(p.parse(&huge, &ClientHints::default()).browser, "Chrome");
        assert_eq!(p.cache.as_ref().map(|c| c.len()), Some(0));
        assert_eq!(truncate("aé", 2), "a");
    }

    #[test]
    fn cache_keys_are_unambiguous() {
        let a = cache_key("ab", &hints("c", "", "", ""));
        let b = cache_key("a", &hints("bc", "", "", ""));
        assert_ne!(a, b);
    }

    #[test]
    fn a_bad_rule_is_skipped_and_counted() {
        let mut rules = UaRules::default();
        rules
            .user_agent
            .push(("(Good)/(\\d+)".into(), None, None, None, None));
        rules
            .user_agent
            .push(("(unclosed".into(), None, None, None, None));
        let p = UaParser::new(&rules, 0).expect("builds without the bad rule");
        assert_eq!(p.skipped_rules(), 1);
        assert_eq!(p.parse("Good/5", &ClientHints::default()).browser, "Good");
    }

    #[test]
    fn timing_of_uncached_and_cached_parse() {
        let p = parser();
        let n = 2000;
        // Warm up: the regex engines build their lazy DFA states on first use.
        for (ua, ..) in UA_CASES {
            std::hint::black_box(p.parse_uncached(ua, &ClientHints::default()));
        }
        let t = std::time::Instant::now();
        for (ua, ..) in UA_CASES.iter().cycle().take(n) {
            std::hint::black_box(p.parse_uncached(ua, &ClientHints::default()));
        }
        let uncached = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(p.parse(WIN_CHROME, &ClientHints::default()));
        }
        let cached = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        eprintln!("ua parse: uncached {uncached:.1} µs, cached {cached:.2} µs");
    }
}
