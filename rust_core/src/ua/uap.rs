//! The uap-core rule lists (user agent, OS, device), matched as the `ua-parser` crate matches
//! them, with each rule's regex compiled the first time it is needed.
//!
//! Compiling all 1,270 rules up front, as the crate does, costs every worker ~20 MiB of heap
//! (30-50 MiB resident, with what the compilation freed); the browsers and bots of real
//! traffic reach a few dozen of them (bench/RESULTS-memory.md). A rule is tried only when its
//! literal "atoms" occur in the UA (an Aho-Corasick prefilter from `regex-filtered`, the
//! crate's own), in list order, the first match wins, and its fields are filled in as uap-core
//! specifies: the answer is the crate's (the tests below compare).

use aho_corasick::AhoCorasick;
use regex::{Captures, Regex, RegexBuilder};
use regex_filtered::mapper;
use regex_filtered::model::Model;
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::Rule;

/// Regexes tried in list order behind a literal prefilter, each compiled on first use.
pub(crate) struct RuleSet {
    patterns: Vec<(Box<str>, bool)>,
    /// None: the regex did not compile (the crate would have left the rule out: it never matches).
    compiled: Vec<OnceLock<Option<Regex>>>,
    mapper: mapper::Mapper,
    prefilter: AhoCorasick,
    failed: AtomicUsize,
}

pub(crate) struct RuleSetBuilder {
    patterns: Vec<(Box<str>, bool)>,
    mapper: mapper::Builder,
}

/// A pattern checked and ready to be added: rewritten, with its prefilter model and its number
/// of capture groups.
struct Parsed {
    pattern: Box<str>,
    case_insensitive: bool,
    model: Model,
    groups: usize,
}

fn parse(pattern: &str, case_insensitive: bool) -> Result<Parsed, String> {
    let pattern = rewrite(pattern);
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(case_insensitive)
        .build()
        .parse(&pattern)
        .map_err(|e| e.to_string())?;
    Ok(Parsed {
        model: Model::new(&hir).map_err(|e| e.to_string())?,
        groups: hir.properties().explicit_captures_len(),
        pattern: pattern.into_owned().into_boxed_str(),
        case_insensitive,
    })
}

impl RuleSetBuilder {
    /// `min_atom_len` as the crate sets it: 3 for user agents and OSes, 2 for devices.
    fn new(min_atom_len: usize) -> Self {
        RuleSetBuilder {
            patterns: Vec::new(),
            mapper: mapper::Builder::new(min_atom_len),
        }
    }

    fn push(&mut self, p: Parsed) {
        self.mapper.push(p.model);
        self.patterns.push((p.pattern, p.case_insensitive));
    }

    fn build(self) -> Result<RuleSet, String> {
        let (mapper, atoms) = self.mapper.build();
        let prefilter = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .prefilter(true)
            .build(atoms)
            .map_err(|e| e.to_string())?;
        let compiled = self.patterns.iter().map(|_| OnceLock::new()).collect();
        Ok(RuleSet {
            patterns: self.patterns,
            compiled,
            mapper,
            prefilter,
            failed: AtomicUsize::new(0),
        })
    }
}

impl RuleSet {
    /// The first rule that matches `haystack`, with its captures.
    fn first_match<'h>(&self, haystack: &'h str) -> Option<(usize, Captures<'h>)> {
        let atoms = self
            .prefilter
            .find_overlapping_iter(haystack)
            .map(|m| m.pattern().as_usize());
        let (i, re) = self
            .mapper
            .atom_to_re(atoms)
            .into_iter()
            .filter_map(|i| Some((i, self.regex(i)?)))
            .find(|(_, re)| re.is_match(haystack))?;
        Some((i, re.captures(haystack)?))
    }

    fn regex(&self, i: usize) -> Option<&Regex> {
        self.compiled[i]
            .get_or_init(|| {
                let (pattern, case_insensitive) = &self.patterns[i];
                let built = RegexBuilder::new(pattern)
                    .case_insensitive(*case_insensitive)
                    .build();
                if built.is_err() {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
                built.ok()
            })
            .as_ref()
    }

    /// Rules whose regex has been compiled so far (successfully or not).
    pub(crate) fn compiled(&self) -> usize {
        self.compiled.iter().filter(|c| c.get().is_some()).count()
    }

    /// Rules that parsed but whose regex did not compile (too large): they never match.
    fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }
}

/// A capture group, None when it did not take part or matched the empty string.
fn group<'h>(c: &Captures<'h>, i: usize) -> Option<&'h str> {
    c.get(i).map(|m| m.as_str()).filter(|s| !s.is_empty())
}

fn has_substitution(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'$' && w[1].is_ascii_digit())
}

/// An OS or device field: a fixed value, `$n` references expanded (and trimmed), or capture
/// group `n` when no replacement is given.
pub(crate) enum Field {
    None,
    Fixed(Box<str>),
    Template(Box<str>),
    Capture(usize),
}

impl Field {
    fn new(replacement: Option<&str>, groups: usize, index: usize) -> Field {
        match replacement.filter(|s| !s.trim().is_empty()) {
            Some(s) if has_substitution(s) => Field::Template(s.into()),
            Some(s) => Field::Fixed(s.into()),
            None if groups >= index => Field::Capture(index),
            None => Field::None,
        }
    }

    fn resolve<'a>(&'a self, c: &Captures<'a>) -> Option<Cow<'a, str>> {
        match self {
            Field::None => None,
            Field::Fixed(s) => Some(Cow::Borrowed(s)),
            Field::Capture(i) => group(c, *i).map(Cow::Borrowed),
            Field::Template(t) => {
                let mut out = String::new();
                c.expand(t, &mut out);
                let trimmed = out.trim();
                if trimmed.is_empty() {
                    None
                } else if trimmed.len() == out.len() {
                    Some(Cow::Owned(out))
                } else {
                    Some(Cow::Owned(trimmed.to_string()))
                }
            }
        }
    }
}

/// A user agent's family: only `$1` is substituted, and nothing is trimmed.
pub(crate) enum Family {
    Fixed(Box<str>),
    Template(Box<str>),
    Capture,
}

impl Family {
    fn new(replacement: Option<&str>, groups: usize) -> Result<Family, String> {
        match replacement {
            Some(s) if s.contains("$1") && groups < 1 => Err(format!("{s:?} without a group")),
            Some(s) if s.contains("$1") => Ok(Family::Template(s.into())),
            Some(s) if !s.is_empty() => Ok(Family::Fixed(s.into())),
            _ if groups >= 1 => Ok(Family::Capture),
            _ => Ok(Family::Fixed("".into())),
        }
    }

    fn resolve<'a>(&'a self, c: &Captures<'a>) -> Cow<'a, str> {
        match self {
            Family::Fixed(s) => Cow::Borrowed(s),
            Family::Capture => Cow::Borrowed(group(c, 1).unwrap_or("")),
            Family::Template(t) => Cow::Owned(t.replace("$1", group(c, 1).unwrap_or(""))),
        }
    }
}

/// A user agent's version part: the replacement as given, else capture group `n`.
pub(crate) enum Version {
    None,
    Fixed(Box<str>),
    Capture(usize),
}

impl Version {
    fn new(replacement: Option<&str>, groups: usize, index: usize) -> Version {
        match replacement.filter(|s| !s.is_empty()) {
            Some(s) => Version::Fixed(s.into()),
            None if groups >= index => Version::Capture(index),
            None => Version::None,
        }
    }

    fn resolve<'a>(&'a self, c: &Captures<'a>) -> Option<&'a str> {
        match self {
            Version::None => None,
            Version::Fixed(s) => Some(s),
            Version::Capture(i) => group(c, *i),
        }
    }
}

/// What a rule list answers for one UA: a name and the first two version parts.
pub(crate) struct Found<'a> {
    pub name: Cow<'a, str>,
    pub major: Option<Cow<'a, str>>,
    pub minor: Option<Cow<'a, str>>,
}

/// One rule list and what each rule fills in.
pub(crate) struct Rules<F> {
    set: RuleSet,
    fields: Vec<F>,
}

/// The user-agent rules: (family, major, minor) per rule.
pub(crate) type Browsers = Rules<(Family, Version, Version)>;
/// The OS rules: (os, major, minor) per rule.
pub(crate) type Systems = Rules<(Field, Field, Field)>;
/// The device rules: only the device name is read (uap's "Spider" marks crawlers).
pub(crate) type Devices = Rules<Field>;

impl<F> Rules<F> {
    /// Builds one rule list, leaving out (and counting) the rules that cannot be used: the
    /// rule set is upgraded independently of this code.
    fn build(
        rules: &[Rule],
        min_atom_len: usize,
        case_insensitive: impl Fn(&Rule) -> bool,
        fields: impl Fn(&Rule, usize) -> Result<F, String>,
    ) -> Result<(Rules<F>, usize), String> {
        let mut set = RuleSetBuilder::new(min_atom_len);
        let mut kept = Vec::with_capacity(rules.len());
        let mut skipped = 0;
        for rule in rules {
            let parsed = parse(&rule.0, case_insensitive(rule));
            match parsed.and_then(|p| Ok((fields(rule, p.groups)?, p))) {
                Ok((f, p)) => {
                    set.push(p);
                    kept.push(f);
                }
                Err(_) => skipped += 1,
            }
        }
        let rules = Rules {
            set: set.build()?,
            fields: kept,
        };
        Ok((rules, skipped))
    }

    /// Rules whose regex has been compiled so far.
    pub(crate) fn compiled(&self) -> usize {
        self.set.compiled()
    }

    /// Rules whose regex did not compile: they never match.
    pub(crate) fn failed(&self) -> usize {
        self.set.failed()
    }
}

impl Browsers {
    pub(crate) fn new(rules: &[Rule]) -> Result<(Browsers, usize), String> {
        Rules::build(
            rules,
            3,
            |_| false,
            |r, groups| {
                Ok((
                    Family::new(r.1.as_deref(), groups)?,
                    Version::new(r.2.as_deref(), groups, 2),
                    Version::new(r.3.as_deref(), groups, 3),
                ))
            },
        )
    }

    pub(crate) fn find<'a>(&'a self, ua: &'a str) -> Option<Found<'a>> {
        let (i, c) = self.set.first_match(ua)?;
        let (family, major, minor) = &self.fields[i];
        Some(Found {
            name: family.resolve(&c),
            major: major.resolve(&c).map(Cow::Borrowed),
            minor: minor.resolve(&c).map(Cow::Borrowed),
        })
    }
}

impl Systems {
    pub(crate) fn new(rules: &[Rule]) -> Result<(Systems, usize), String> {
        Rules::build(
            rules,
            3,
            |_| false,
            |r, groups| {
                Ok((
                    Field::new(r.1.as_deref(), groups, 1),
                    Field::new(r.2.as_deref(), groups, 2),
                    Field::new(r.3.as_deref(), groups, 3),
                ))
            },
        )
    }

    pub(crate) fn find<'a>(&'a self, ua: &'a str) -> Option<Found<'a>> {
        let (i, c) = self.set.first_match(ua)?;
        let (os, major, minor) = &self.fields[i];
        Some(Found {
            name: os.resolve(&c).unwrap_or_default(),
            major: major.resolve(&c),
            minor: minor.resolve(&c),
        })
    }
}

impl Devices {
    pub(crate) fn new(rules: &[Rule]) -> Result<(Devices, usize), String> {
        Rules::build(
            rules,
            2,
            |r| r.1.as_deref() == Some("i"),
            |r, groups| Ok(Field::new(r.2.as_deref(), groups, 1)),
        )
    }

    /// The device name of the first matching rule.
    pub(crate) fn name<'a>(&'a self, ua: &'a str) -> Option<Cow<'a, str>> {
        let (i, c) = self.set.first_match(ua)?;
        Some(self.fields[i].resolve(&c).unwrap_or_default())
    }
}

/// The crate's rewriting of a uap pattern, which the regex and the prefilter both see: `\d`,
/// `\D`, `\w` and `\W` become ASCII classes (what uap means; `regex` would read Unicode),
/// and outside classes `{0,N}` / `{1,N}` with N of three or more digits become `*` / `+`
/// (as large a bound costs far more memory and changes nothing for a UA).
fn rewrite(pattern: &str) -> Cow<'_, str> {
    let bytes = pattern.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut class_depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        let replace = match bytes[i] {
            b'\\' => {
                // The escaped character is never special; only the four classes change.
                let class = bytes.get(i + 1).and_then(|&c| ascii_class(c));
                i += 2;
                class.map(|c| (i - 2, i, c))
            }
            b'[' => {
                class_depth += 1;
                i += 1;
                None
            }
            b']' => {
                class_depth -= 1;
                i += 1;
                None
            }
            b'{' if class_depth == 0 => {
                if i == 0 {
                    return Cow::Borrowed(pattern);
                }
                let start = i;
                i += 1;
                long_bound(&bytes[start..]).map(|(len, with)| {
                    i = start + len;
                    (start, i, with)
                })
            }
            _ => {
                i += 1;
                None
            }
        };
        if let Some((from, to, with)) = replace {
            out.push_str(&pattern[copied..from]);
            out.push_str(with);
            copied = to;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(pattern);
    }
    out.push_str(&pattern[copied..]);
    Cow::Owned(out)
}

fn ascii_class(escaped: u8) -> Option<&'static str> {
    match escaped {
        b'd' => Some("[0-9]"),
        b'D' => Some("[^0-9]"),
        b'w' => Some("[A-Za-z0-9_]"),
        b'W' => Some("[^A-Za-z0-9_]"),
        _ => None,
    }
}

/// `{0,NNN}` or `{1,NNN}` (three or more digits) at the start of `b`: its length and what
/// replaces it.
fn long_bound(b: &[u8]) -> Option<(usize, &'static str)> {
    let with = match b.get(1..3)? {
        b"0," => "*",
        b"1," => "+",
        _ => return None,
    };
    let digits = b[3..].iter().take_while(|c| c.is_ascii_digit()).count();
    (digits > 2 && b.get(3 + digits) == Some(&b'}')).then_some((4 + digits, with))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ua_parser::{device, os, user_agent};

    fn rules() -> &'static super::super::UaRules {
        static R: OnceLock<super::super::UaRules> = OnceLock::new();
        R.get_or_init(super::super::tests::real_rules)
    }

    /// uap-core's test user agents, one answered by each rule (tests/fixtures/sample_user_agents.py),
    /// and a few odd ones.
    fn user_agents() -> Vec<String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/uap_user_agents.txt"
        );
        let text = std::fs::read_to_string(path).expect("uap_user_agents.txt");
        let mut uas: Vec<String> = text.lines().map(String::from).collect();
        uas.extend(
            [
                "",
                " ",
                "\u{0}\u{ffff} garbage ((((",
                "Mozilla/5.0 (Linux; Android 10; Spider Build/QP1A) AppleWebKit/537.36",
                "MOZILLA/5.0 (WINDOWS NT 10.0) GOOGLEBOT/2.1",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 é日本",
            ]
            .map(String::from),
        );
        uas
    }

    fn cow(s: &str) -> Option<Cow<'static, str>> {
        Some(Cow::Owned(s.to_string()))
    }

    /// The crate, compiling every rule up front: what `Rules` must answer.
    fn oracle() -> (
        user_agent::Extractor<'static>,
        os::Extractor<'static>,
        device::Extractor<'static>,
    ) {
        let r = rules();
        let mut ua = user_agent::Builder::new();
        for (regex, family, v1, v2, v3) in &r.user_agent {
            ua = ua
                .push(user_agent::Parser {
                    regex: Cow::Owned(regex.clone()),
                    family_replacement: family.as_deref().and_then(cow),
                    v1_replacement: v1.as_deref().and_then(cow),
                    v2_replacement: v2.as_deref().and_then(cow),
                    v3_replacement: v3.as_deref().and_then(cow),
                    v4_replacement: None,
                })
                .expect("ua rule");
        }
        let mut oss = os::Builder::new();
        for (regex, name, v1, v2, v3) in &r.os {
            oss = oss
                .push(os::Parser {
                    regex: Cow::Owned(regex.clone()),
                    os_replacement: name.as_deref().and_then(cow),
                    os_v1_replacement: v1.as_deref().and_then(cow),
                    os_v2_replacement: v2.as_deref().and_then(cow),
                    os_v3_replacement: v3.as_deref().and_then(cow),
                    os_v4_replacement: None,
                })
                .expect("os rule");
        }
        let mut dev = device::Builder::new();
        for (regex, flag, name, brand, model) in &r.device {
            dev = dev
                .push(device::Parser {
                    regex: Cow::Owned(regex.clone()),
                    regex_flag: (flag.as_deref() == Some("i")).then_some(device::Flag::IgnoreCase),
                    device_replacement: name.as_deref().and_then(cow),
                    brand_replacement: brand.as_deref().and_then(cow),
                    model_replacement: model.as_deref().and_then(cow),
                })
                .expect("device rule");
        }
        (
            ua.build().expect("ua rules"),
            oss.build().expect("os rules"),
            dev.build().expect("device rules"),
        )
    }

    #[test]
    fn every_rule_answers_what_the_ua_parser_crate_answers() {
        let r = rules();
        let (browsers, skipped_b) = Browsers::new(&r.user_agent).expect("ua rules");
        let (systems, skipped_s) = Systems::new(&r.os).expect("os rules");
        let (devices, skipped_d) = Devices::new(&r.device).expect("device rules");
        assert_eq!((skipped_b, skipped_s, skipped_d), (0, 0, 0));
        let (want_b, want_s, want_d) = oracle();
        let uas = user_agents();
        assert!(uas.len() > 900, "{} user agents", uas.len());
        for ua in &uas {
            let have = browsers.find(ua).map(|f| (f.name, f.major, f.minor));
            let want = want_b.extract(ua).map(|v| {
                (
                    v.family,
                    v.major.map(Cow::Borrowed),
                    v.minor.map(Cow::Borrowed),
                )
            });
            assert_eq!(have, want, "user agent rules on {ua:?}");
            let have = systems.find(ua).map(|f| (f.name, f.major, f.minor));
            let want = want_s.extract(ua).map(|v| (v.os, v.major, v.minor));
            assert_eq!(have, want, "OS rules on {ua:?}");
            let want = want_d.extract(ua).map(|v| v.device);
            assert_eq!(devices.name(ua), want, "device rules on {ua:?}");
        }
        // The sample reaches most rules (1,074 of 1,270 with uap-core 202610), so most patterns
        // were compiled, and compared, here.
        let total = r.user_agent.len() + r.os.len() + r.device.len();
        let compiled = browsers.compiled() + systems.compiled() + devices.compiled();
        assert!(compiled * 5 > total * 4, "{compiled} of {total} compiled");
        assert_eq!(browsers.failed() + systems.failed() + devices.failed(), 0);
    }

    #[test]
    fn a_rule_is_compiled_when_first_needed() {
        let r = rules();
        let (browsers, _) = Browsers::new(&r.user_agent).expect("ua rules");
        let (devices, _) = Devices::new(&r.device).expect("device rules");
        assert_eq!(browsers.compiled() + devices.compiled(), 0);
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let found = browsers.find(chrome).expect("a browser");
        assert_eq!(
            (found.name.as_ref(), found.major.as_deref()),
            ("Chrome", Some("131"))
        );
        assert_eq!(devices.name(chrome), None);
        let after_one = browsers.compiled() + devices.compiled();
        assert!((1..40).contains(&after_one), "{after_one} compiled");
        browsers.find(chrome);
        devices.name(chrome);
        assert_eq!(browsers.compiled() + devices.compiled(), after_one);
    }

    #[test]
    fn a_rule_that_cannot_be_used_is_left_out() {
        let rule = |re: &str, family: Option<&str>| -> Rule {
            (re.into(), family.map(String::from), None, None, None)
        };
        let list = [
            rule("(unclosed", None),
            rule("NoGroup", Some("$1 Browser")),
            rule("(Good)/(\\d+)", None),
        ];
        let (browsers, skipped) = Browsers::new(&list).expect("builds without the bad rules");
        assert_eq!(skipped, 2);
        let found = browsers.find("NoGroup Good/5").expect("the good rule");
        assert_eq!(
            (found.name.as_ref(), found.major.as_deref()),
            ("Good", Some("5"))
        );
    }

    #[test]
    fn a_regex_too_large_to_compile_never_matches() {
        // Parses, so it is kept, but exceeds `regex`'s size limit once compiled.
        let list = [
            (
                "(Huge)(?:[a-z]{100}){10000}".to_string(),
                None,
                None,
                None,
                None,
            ),
            (
                "(Huge)".to_string(),
                Some("Fallback".to_string()),
                None,
                None,
                None,
            ),
        ];
        let (browsers, skipped) = Browsers::new(&list).expect("builds");
        assert_eq!(skipped, 0);
        let haystack = format!("Huge{}", "a".repeat(100));
        assert_eq!(
            browsers.find(&haystack).map(|f| f.name),
            Some("Fallback".into())
        );
        assert_eq!(browsers.failed(), 1);
    }

    #[test]
    fn rewrites_patterns_as_the_crate_does() {
        let cases = [
            (r"\dx", "[0-9]x"),
            (r"\D\w\W", "[^0-9][A-Za-z0-9_][^A-Za-z0-9_]"),
            (r"[\d.]+", "[[0-9].]+"),
            (r"\\d", r"\\d"),
            (r"\.\d", r"\.[0-9]"),
            (".{0,2}x", ".{0,2}x"),
            (".{0,20}x", ".{0,20}x"),
            ("(.{0,100})", "(.*)"),
            (".{1,300}?x", ".+?x"),
            (".{2,300}x", ".{2,300}x"),
            ("[^;/]{1,100}", "[^;/]+"),
            ("[.{1,100}]", "[.{1,100}]"),
            (r"\{1,100}", r"\{1,100}"),
            ("{1,100}", "{1,100}"),
            ("é{1,100}日", "é+日"),
            ("plain", "plain"),
        ];
        for (pattern, want) in cases {
            assert_eq!(rewrite(pattern), want, "{pattern}");
        }
    }
}
