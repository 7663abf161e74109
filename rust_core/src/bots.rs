//! Bot and spam filtering (reference section 3, steps 3-8). Every check returns the reason of a
//! drop, never a bare bool.
//!
//! The User-Agent check runs on every hit, so the lists are compiled once into matchers that
//! scan the UA a small, fixed number of times: one Aho-Corasick automaton for our keywords and
//! for every crawler pattern that is a plain literal (most of them), and one alternation for
//! the few crawler patterns that really are regexes.

use crate::drops::DropReason;
use crate::errors::{CoreError, Result};
use crate::hit::Headers;
use crate::ua::UaInfo;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use ipnet::IpNet;
use regex::bytes::{Regex, RegexBuilder};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// Data lists read at startup (from package dependencies or our curated files).
#[derive(Clone, Debug, Default)]
pub struct BotLists {
    /// Regex patterns (crawler-user-agents JSON `pattern` fields), matched case-insensitively.
    pub ua_patterns: Vec<String>,
    /// Lowercase substrings. An entry starting with `!` is an exception: a longer token that
    /// contains a keyword but is no bot (the phone brand "cubot" contains "bot").
    pub ua_keywords: Vec<String>,
    /// Referrer-spam hosts (registrable domain, lowercase).
    pub spam_hosts: Vec<String>,
    /// Blocked IPs / CIDR ranges as strings.
    pub ip_blocks: Vec<String>,
}

pub struct BotFilter {
    /// Our keywords plus their exceptions; `keyword_is_exception[pattern id]`.
    keywords: AhoCorasick,
    keyword_is_exception: Vec<bool>,
    /// Crawler patterns that are plain literals.
    pattern_literals: AhoCorasick,
    /// Crawler patterns that are real regexes; None when there are none.
    patterns: Option<Regex>,
    skipped_patterns: usize,
    spam_hosts: HashSet<String>,
    sql: AhoCorasick,
    /// Sorted, merged, inclusive ranges.
    blocked_v4: Ranges<u32>,
    blocked_v6: Ranges<u128>,
    /// Verdicts of `check_user_agent` for recent UAs: most traffic repeats a few hundred UAs,
    /// and the pattern scan is the costliest bot check.
    verdicts: quick_cache::sync::Cache<String, Option<DropReason>>,
}

const UA_MIN_LEN: usize = 16;
const UA_MAX_LEN: usize = 500;

/// Substrings of SQL injection probes. No bare "--" or "union ": punycode hosts ("xn--") and
/// text referrers ("ref=Credit Union") are legitimate.
const SQL_MARKERS: &[&str] = &[
    "union select",
    "union all select",
    "union+select",
    "union%20select",
    "select * from",
    "(select ",
    "select%20",
    "select+",
    "' or ",
    "' and ",
    "\" or ",
    "or 1=1",
    "%27%20or",
    "%27+or",
    "%27--",
    "' --",
    "'--",
    "\"--",
    ";--",
    "sleep(",
    "sleep%28",
    "pg_sleep",
    "benchmark(",
    "waitfor delay",
    "information_schema",
    "xp_cmdshell",
    "drop table",
    "concat(0x",
    "extractvalue(",
    "updatexml(",
];

/// Browser names (after mapping) that no human browses with.
const BOT_BROWSER_WORDS: &[&str] = &[
    "headless",
    "bot",
    "spider",
    "crawler",
    "python",
    "curl",
    "wget",
    "java",
    "go-http",
    "phantom",
    "selenium",
    "puppeteer",
    "scrapy",
    "okhttp",
    "httpclient",
    "libwww",
];

/// Oldest major version a human plausibly still runs (reference section 3, step 6).
const MIN_VERSIONS: &[(&str, u32)] = &[
    ("Chrome", 70),
    ("Firefox", 68),
    ("Safari", 12),
    ("Opera", 65),
    ("Edge", 88),
    ("Internet Explorer", 11),
];

impl BotFilter {
    pub fn new(lists: &BotLists) -> Result<BotFilter> {
        let (regexes, literals) = split_patterns(&lists.ua_patterns);
        let mut words = Vec::new();
        let mut keyword_is_exception = Vec::new();
        for k in lists.ua_keywords.iter().map(|k| k.trim()) {
            let (word, exception) = match k.strip_prefix('!') {
                Some(e) => (e, true),
                None => (k, false),
            };
            if !word.is_empty() {
                words.push(word.to_ascii_lowercase());
                keyword_is_exception.push(exception);
            }
        }
        let keywords = case_insensitive_automaton(&words)?;
        let pattern_literals = case_insensitive_automaton(&literals)?;
        let (patterns, skipped_patterns) = compile_patterns(&regexes)?;
        let spam_hosts = lists
            .spam_hosts
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let sql = case_insensitive_automaton(SQL_MARKERS)?;
        let (blocked_v4, blocked_v6) = parse_ip_blocks(&lists.ip_blocks)?;
        Ok(BotFilter {
            keywords,
            keyword_is_exception,
            pattern_literals,
            patterns,
            skipped_patterns,
            spam_hosts,
            sql,
            blocked_v4,
            blocked_v6,
            verdicts: quick_cache::sync::Cache::new(10_000),
        })
    }

    /// Crawler patterns the regex crate could not compile (look-arounds etc.), left out.
    pub fn skipped_patterns(&self) -> usize {
        self.skipped_patterns
    }

    /// UA shape, keyword and regex checks.
    pub fn check_user_agent(&self, user_agent: &str) -> Option<DropReason> {
        if user_agent.len() > UA_MAX_LEN {
            return Some(DropReason::UaTooLong);
        }
        if let Some(v) = self.verdicts.get(user_agent) {
            return v;
        }
        let verdict = self.scan_user_agent(user_agent);
        self.verdicts.insert(user_agent.to_string(), verdict);
        verdict
    }

    fn scan_user_agent(&self, user_agent: &str) -> Option<DropReason> {
        let ua = user_agent.trim();
        if ua.is_empty() {
            return Some(DropReason::UaEmpty);
        }
        if ua.len() <= UA_MIN_LEN {
            return Some(DropReason::UaTooShort);
        }
        if ua.len() > UA_MAX_LEN {
            return Some(DropReason::UaTooLong);
        }
        if !ua.is_ascii() {
            return Some(DropReason::UaNonAscii);
        }
        if is_ip_or_socket(ua) {
            return Some(DropReason::UaIp);
        }
        if is_uuid(ua) {
            return Some(DropReason::UaUuid);
        }
        if self.has_keyword(ua) {
            return Some(DropReason::UaKeyword);
        }
        if self.pattern_literals.is_match(ua) {
            return Some(DropReason::UaPattern);
        }
        match &self.patterns {
            Some(re) if re.is_match(ua.as_bytes()) => Some(DropReason::UaPattern),
            _ => None,
        }
    }

    fn has_keyword(&self, ua: &str) -> bool {
        // Leftmost-longest: an exception ("cubot") wins over the keyword inside it ("bot").
        self.keywords.find_iter(ua).any(|m| {
            !self
                .keyword_is_exception
                .get(m.pattern().as_usize())
                .copied()
                .unwrap_or(true)
        })
    }

    /// Browser floor and bot-like browser names, after parsing.
    pub fn check_parsed(&self, ua: &UaInfo) -> Option<DropReason> {
        if ua.headless_hint {
            return Some(DropReason::Headless);
        }
        if ua.spider {
            return Some(DropReason::UaSpider);
        }
        let name = ua.browser.to_ascii_lowercase();
        if BOT_BROWSER_WORDS.iter().any(|w| name.contains(w)) {
            return Some(DropReason::BrowserBotName);
        }
        let major = leading_number(&ua.browser_version)?;
        let floor = MIN_VERSIONS
            .iter()
            .find(|(b, _)| *b == ua.browser)
            .map(|(_, v)| *v)?;
        (major < floor).then_some(DropReason::BrowserTooOld)
    }

    /// Referrer spam: host cut to its last two labels in the spam list, or SQL-like text.
    pub fn check_referrer(&self, referrer_host: &str, raw_referrer: &str) -> Option<DropReason> {
        let host = referrer_host
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if !host.is_empty() {
            let host = host.strip_prefix("www.").unwrap_or(&host);
            // Also the full host: some spam lives on hosts under a public suffix like co.uk.
            if self.spam_hosts.contains(last_two_labels(host)) || self.spam_hosts.contains(host) {
                return Some(DropReason::ReferrerSpam);
            }
        }
        self.sql
            .is_match(raw_referrer)
            .then_some(DropReason::ReferrerSql)
    }

    pub fn check_ip(&self, ip: IpAddr) -> Option<DropReason> {
        let blocked = match ip.to_canonical() {
            IpAddr::V4(v4) => in_ranges(&self.blocked_v4, u32::from(v4)),
            IpAddr::V6(v6) => in_ranges(&self.blocked_v6, u128::from(v6)),
        };
        blocked.then_some(DropReason::IpBlocked)
    }
}

/// Prefetch/preview header checks, for browser-facing routes only.
pub fn check_headers(headers: &Headers) -> Option<DropReason> {
    let is = |name: &str, want: &str| {
        headers
            .get(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
    };
    let mentions = |name: &str, word: &str| {
        headers
            .get(name)
            .is_some_and(|v| v.to_ascii_lowercase().contains(word))
    };
    if is("x-moz", "prefetch") {
        return Some(DropReason::HeaderPrefetch);
    }
    for name in ["x-purpose", "purpose"] {
        if mentions(name, "prefetch") || mentions(name, "preview") {
            return Some(DropReason::HeaderPrefetch);
        }
    }
    // A user-typed navigation ("none") carries no Referer; one that does is forged.
    let has_referer = headers.get("referer").is_some_and(|v| !v.trim().is_empty());
    if is("sec-fetch-site", "none") && has_referer {
        return Some(DropReason::HeaderFetchSite);
    }
    // Upgrade-Insecure-Requests is sent on navigations only, never on fetch()/XHR requests.
    if is("upgrade-insecure-requests", "1")
        && (is("sec-fetch-mode", "cors") || is("sec-fetch-dest", "empty"))
    {
        return Some(DropReason::HeaderFetchMismatch);
    }
    None
}

fn case_insensitive_automaton<P: AsRef<[u8]>>(patterns: &[P]) -> Result<AhoCorasick> {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .map_err(|e| CoreError::Config(format!("bot keyword automaton: {e}")))
}

/// Splits crawler patterns into plain literals (unescaped) and real regexes.
fn split_patterns(patterns: &[String]) -> (Vec<String>, Vec<String>) {
    let mut regexes = Vec::new();
    let mut literals = Vec::new();
    for p in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        match as_literal(p) {
            Some(l) if !l.is_empty() => literals.push(l),
            _ => regexes.push(p.to_string()),
        }
    }
    (regexes, literals)
}

/// The text a regex matches if it is a plain literal (`Googlebot\/` -> `Googlebot/`), else None.
fn as_literal(pattern: &str) -> Option<String> {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() || e == ' ' => out.push(e),
                _ => return None, // \d, \s, \b ... are classes or assertions
            },
            '.' | '^' | '$' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' => {
                return None
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// One case-insensitive alternation over the real regexes (measured faster than a RegexSet,
/// as only "any match" matters); patterns the crate rejects are left out and counted.
/// Bytes mode without Unicode keeps the automaton small; the UA is ASCII by the time it runs.
fn compile_patterns(regexes: &[String]) -> Result<(Option<Regex>, usize)> {
    let mut ok = Vec::new();
    for p in regexes {
        let group = format!("(?:{p})");
        if Regex::new(&format!("(?i-u){group}")).is_ok() {
            ok.push(group);
        }
    }
    let skipped = regexes.len() - ok.len();
    if ok.is_empty() {
        return Ok((None, skipped));
    }
    let re = RegexBuilder::new(&format!("(?i-u){}", ok.join("|")))
        .size_limit(64 << 20)
        .build()
        .map_err(|e| CoreError::Config(format!("crawler patterns: {e}")))?;
    Ok((Some(re), skipped))
}

fn is_ip_or_socket(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok() || s.parse::<SocketAddr>().is_ok()
}

fn is_uuid(s: &str) -> bool {
    let s = s.trim_start_matches('{').trim_end_matches('}');
    let b = s.as_bytes();
    match b.len() {
        36 => b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        }),
        32 => b.iter().all(u8::is_ascii_hexdigit),
        _ => false,
    }
}

fn leading_number(s: &str) -> Option<u32> {
    s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())]
        .parse()
        .ok()
}

fn last_two_labels(host: &str) -> &str {
    match host.rmatch_indices('.').nth(1) {
        Some((i, _)) => &host[i + 1..],
        None => host,
    }
}

type Ranges<T> = Vec<(T, T)>;

fn parse_ip_blocks(entries: &[String]) -> Result<(Ranges<u32>, Ranges<u128>)> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for e in entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
    {
        let net: IpNet = match e.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => e
                .parse::<IpAddr>()
                .map(IpNet::from)
                .map_err(|_| CoreError::Config(format!("ip block list: not an IP or CIDR: {e}")))?,
        };
        match net {
            IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
            IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
        }
    }
    Ok((merge_ranges(v4), merge_ranges(v6)))
}

fn merge_ranges<T: Ord + Copy>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn in_ranges<T: Ord + Copy>(ranges: &[(T, T)], ip: T) -> bool {
    let i = ranges.partition_point(|(start, _)| *start <= ip);
    i > 0 && ranges[i - 1].1 >= ip
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(path: &str) -> String {
        let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    /// Same rules as trail/datalists.py `read_list`.
    fn list(path: &str) -> Vec<String> {
        data(path)
            .lines()
            .map(|l| l.trim().to_ascii_lowercase())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    fn real_lists() -> BotLists {
        BotLists {
            ua_patterns: serde_json::from_str(&data("tests/data/crawler_patterns.json"))
                .expect("crawler_patterns.json (run tests/fixtures/dump_datalists.py)"),
            ua_keywords: list("../trail/data/bot_keywords.txt"),
            spam_hosts: list("../trail/data/referrer_spam.txt"),
            ip_blocks: vec![
                "203.0.113.0/24".into(),
                "198.51.100.7".into(),
                "2001:db8::/32".into(),
            ],
        }
    }

    fn filter() -> &'static BotFilter {
        static F: std::sync::OnceLock<BotFilter> = std::sync::OnceLock::new();
        F.get_or_init(|| BotFilter::new(&real_lists()).expect("lists compile"))
    }

    const HUMANS: &[&str] = &[
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-A536B; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.37.106;FBBV/581010154;FBDV/iPhone15,3;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Vivaldi/6.7",
    ];

    #[test]
    fn real_browsers_pass_the_user_agent_check() {
        let f = filter();
        for ua in HUMANS {
            assert_eq!(f.check_user_agent(ua), None, "false positive: {ua}");
        }
    }

    #[test]
    fn user_agent_check_reasons() {
        let f = filter();
        let cases: &[(&str, &str)] = &[
            ("", "ua_empty"),
            ("   ", "ua_empty"),
            ("curl/8.5.0", "ua_too_short"),
            ("Mozilla/5.0 (x)", "ua_too_short"),
            (&"Mozilla/5.0 ".repeat(50), "ua_too_long"),
            ("Mozilla/5.0 (Windows NT 10.0) Chrome/124.0 Safari/537.36 ünïcode", "ua_non_ascii"),
            ("203.0.113.254:443", "ua_ip"),
            ("2001:db8:85a3::8a2e:370:7334", "ua_ip"),
            ("[2001:db8::1]:8080", "ua_ip"),
            ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", "ua_uuid"),
            ("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", "ua_uuid"),
            ("python-requests/2.31.0", "ua_keyword"),
            ("Wget/1.21.4 (linux-gnu)", "ua_keyword"),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "ua_keyword"),
            ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "ua_keyword"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36", "ua_keyword"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 CUBOT-Crawler", "ua_keyword"),
            ("Mozilla/5.0 (compatible; Qwantify/2.4w; +https://www.qwant.com/)/2.4w", "ua_keyword"),
            ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "ua_keyword"),
            // Found only by crawler-user-agents' patterns (literal, then regex), not our keywords.
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Daum/4.1 (KHTML, like Gecko) Chrome/124.0", "ua_pattern"),
            ("Mozilla/5.0 (X11; Linux) AppleWebKit/537.36 Chrome/124.0 Safari/537.36 Google Favicon", "ua_pattern"),
            ("Mozilla/5.0 (Linux) GoogleAssociationService", "ua_pattern"),
        ];
        for (ua, want) in cases {
            assert_eq!(
                f.check_user_agent(ua).map(DropReason::as_str),
                Some(*want),
                "UA {ua}"
            );
        }
    }

    #[test]
    fn crawler_patterns_mostly_compile_and_split() {
        let lists = real_lists();
        let (regexes, literals) = split_patterns(&lists.ua_patterns);
        assert!(
            literals.len() > regexes.len(),
            "{} literals, {} regexes",
            literals.len(),
            regexes.len()
        );
        let f = filter();
        assert!(
            f.skipped_patterns() < 10,
            "skipped {}",
            f.skipped_patterns()
        );
        eprintln!(
            "crawler patterns: {} literals, {} regexes, {} skipped",
            literals.len(),
            regexes.len(),
            f.skipped_patterns()
        );
    }

    #[test]
    fn literal_extraction() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Googlebot\\/", Some("Googlebot/")),
            ("Google Favicon", Some("Google Favicon")),
            ("[wW]get", None),
            ("^Mozilla$", None),
            ("bot\\d", None),
            ("a\\.b", Some("a.b")),
        ];
        for (p, want) in cases {
            assert_eq!(as_literal(p).as_deref(), *want, "{p}");
        }
    }

    fn info(browser: &str, version: &str) -> UaInfo {
        UaInfo {
            browser: browser.into(),
            browser_version: version.into(),
            ..Default::default()
        }
    }

    #[test]
    fn parsed_checks() {
        let f = filter();
        let cases: &[(UaInfo, Option<DropReason>)] = &[
            (info("Chrome", "124.0"), None),
            (info("Chrome", "69.0"), Some(DropReason::BrowserTooOld)),
            (info("Chrome", "70.0"), None),
            (info("Firefox", "67.0"), Some(DropReason::BrowserTooOld)),
            (info("Firefox", "68.0"), None),
            (info("Safari", "11.1"), Some(DropReason::BrowserTooOld)),
            (info("Safari", ""), None),
            (info("Opera", "64.0"), Some(DropReason::BrowserTooOld)),
            (info("Edge", "18.17763"), Some(DropReason::BrowserTooOld)),
            (info("Edge", "126"), None),
            (
                info("Internet Explorer", "10.0"),
                Some(DropReason::BrowserTooOld),
            ),
            (info("Internet Explorer", "11.0"), None),
            (info("Samsung Internet", "3.0"), None),
            (
                info("HeadlessChrome", "124.0"),
                Some(DropReason::BrowserBotName),
            ),
            (info("Googlebot", "2.1"), Some(DropReason::BrowserBotName)),
            (
                info("Python Requests", "2.31"),
                Some(DropReason::BrowserBotName),
            ),
            (
                UaInfo {
                    headless_hint: true,
                    ..info("Chrome", "124.0")
                },
                Some(DropReason::Headless),
            ),
            (
                UaInfo {
                    spider: true,
                    ..info("Chrome", "124.0")
                },
                Some(DropReason::UaSpider),
            ),
        ];
        for (ua, want) in cases {
            assert_eq!(f.check_parsed(ua), *want, "{ua:?}");
        }
    }

    #[test]
    fn referrer_checks() {
        let f = filter();
        let cases: &[(&str, &str, Option<DropReason>)] = &[
            ("google.com", "https://www.google.com/", None),
            (
                "semalt.com",
                "https://semalt.com/",
                Some(DropReason::ReferrerSpam),
            ),
            (
                "www.semalt.com",
                "http://www.semalt.com",
                Some(DropReason::ReferrerSpam),
            ),
            (
                "forum.darodar.com",
                "http://forum.darodar.com/x",
                Some(DropReason::ReferrerSpam),
            ),
            (
                "BUTTONS-FOR-WEBSITE.COM.",
                "",
                Some(DropReason::ReferrerSpam),
            ),
            ("xn--mnchen-3ya.de", "https://xn--mnchen-3ya.de/a--b", None),
            ("", "Credit Union Newsletter", None),
            (
                "example.com",
                "https://example.com/?q=1' or '1'='1",
                Some(DropReason::ReferrerSql),
            ),
            (
                "example.com",
                "https://example.com/?id=1 UNION SELECT password",
                Some(DropReason::ReferrerSql),
            ),
            (
                "example.com",
                "https://example.com/?id=1%27%20OR%201=1",
                Some(DropReason::ReferrerSql),
            ),
            (
                "example.com",
                "https://example.com/?x=sleep(5)",
                Some(DropReason::ReferrerSql),
            ),
            ("", "", None),
        ];
        for (host, raw, want) in cases {
            assert_eq!(f.check_referrer(host, raw), *want, "{host} {raw}");
        }
    }

    #[test]
    fn ip_checks() {
        let f = filter();
        let cases: &[(&str, bool)] = &[
            ("203.0.113.0", true),
            ("203.0.113.255", true),
            ("203.0.114.0", false),
            ("198.51.100.7", true),
            ("198.51.100.8", false),
            ("::ffff:198.51.100.7", true),
            ("2001:db8::1", true),
            ("2001:db9::1", false),
            ("8.8.8.8", false),
        ];
        for (ip, blocked) in cases {
            let ip: IpAddr = ip.parse().expect("test IP");
            assert_eq!(f.check_ip(ip).is_some(), *blocked, "{ip}");
        }
        let bad = BotLists {
            ip_blocks: vec!["not-an-ip".into()],
            ..Default::default()
        };
        assert!(BotFilter::new(&bad).is_err());
    }

    #[test]
    fn range_merging() {
        assert_eq!(
            merge_ranges(vec![(5, 9), (1, 3), (2, 6), (20, 20)]),
            vec![(1, 9), (20, 20)]
        );
        assert!(!in_ranges::<u32>(&[], 1));
    }

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn header_checks() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<DropReason>);
        let cases: &[Case] = &[
            (&[], None),
            (&[("x-moz", "prefetch")], Some(DropReason::HeaderPrefetch)),
            (
                &[("x-purpose", "preview")],
                Some(DropReason::HeaderPrefetch),
            ),
            (&[("purpose", "prefetch")], Some(DropReason::HeaderPrefetch)),
            (&[("sec-purpose", "prefetch")], None),
            (
                &[
                    ("sec-fetch-site", "none"),
                    ("referer", "https://a.example/"),
                ],
                Some(DropReason::HeaderFetchSite),
            ),
            (&[("sec-fetch-site", "none")], None),
            (
                &[
                    ("sec-fetch-site", "same-origin"),
                    ("referer", "https://a.example/"),
                ],
                None,
            ),
            (
                &[
                    ("upgrade-insecure-requests", "1"),
                    ("sec-fetch-mode", "cors"),
                ],
                Some(DropReason::HeaderFetchMismatch),
            ),
            (
                &[
                    ("upgrade-insecure-requests", "1"),
                    ("sec-fetch-dest", "empty"),
                ],
                Some(DropReason::HeaderFetchMismatch),
            ),
            (
                &[
                    ("upgrade-insecure-requests", "1"),
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-dest", "document"),
                ],
                None,
            ),
            (
                &[("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty")],
                None,
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(check_headers(&headers(pairs)), *want, "{pairs:?}");
        }
    }

    #[test]
    fn timing_of_a_browser_user_agent_check() {
        let f = filter();
        let n = 20_000;
        // Warm up: the regex engine builds its lazy DFA states on first use.
        for ua in HUMANS {
            std::hint::black_box(f.check_user_agent(ua));
        }
        let t = std::time::Instant::now();
        for ua in HUMANS.iter().cycle().take(n) {
            std::hint::black_box(f.check_user_agent(ua));
        }

        let per = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        eprintln!("check_user_agent on browser UAs: {per:.2} µs");
    }
}
