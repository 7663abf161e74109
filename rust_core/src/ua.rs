//! User-Agent and client-hint parsing (reference section 4) with the `ua-parser` crate over the
//! uap-core rules, behind a cache. OWNER: helper "ua".

use crate::errors::Result;
use crate::hit::ClientHints;

/// uap-core rules as handed over from Python (`ua_parser_builtins`): each entry is
/// (regex, replacement fields...) exactly as the YAML/`regexes.py` carries them.
#[derive(Clone, Debug, Default)]
pub struct UaRules {
    /// (regex, family_replacement, v1_replacement, v2_replacement, v3_replacement)
    pub user_agent: Vec<(String, Option<String>, Option<String>, Option<String>, Option<String>)>,
    /// (regex, os_replacement, os_v1_replacement, os_v2_replacement, os_v3_replacement)
    pub os: Vec<(String, Option<String>, Option<String>, Option<String>, Option<String>)>,
    /// (regex, regex_flag, device_replacement, brand_replacement, model_replacement)
    pub device: Vec<(String, Option<String>, Option<String>, Option<String>, Option<String>)>,
}

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
}

pub struct UaParser {
    _private: (),
}

impl UaParser {
    pub fn new(rules: &UaRules, cache_size: usize) -> Result<UaParser> {
        let _ = (rules, cache_size);
        todo!()
    }

    pub fn parse(&self, user_agent: &str, hints: &ClientHints) -> UaInfo {
        let _ = (user_agent, hints);
        todo!()
    }
}
