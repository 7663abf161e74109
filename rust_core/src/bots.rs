//! Bot and spam filtering (reference section 3, steps 3-8). Every check returns the reason of a
//! drop, never a bare bool. OWNER: helper "ua".

use crate::errors::Result;
use crate::hit::Headers;
use crate::ua::UaInfo;
use std::net::IpAddr;

/// Data lists read at startup (from package dependencies or our curated files).
#[derive(Clone, Debug, Default)]
pub struct BotLists {
    /// Regex patterns (crawler-user-agents JSON `pattern` fields), matched case-insensitively.
    pub ua_patterns: Vec<String>,
    /// Lowercase substrings.
    pub ua_keywords: Vec<String>,
    /// Referrer-spam hosts (registrable domain, lowercase).
    pub spam_hosts: Vec<String>,
    /// Blocked IPs / CIDR ranges as strings.
    pub ip_blocks: Vec<String>,
}

pub struct BotFilter {
    _private: (),
}

impl BotFilter {
    pub fn new(lists: &BotLists) -> Result<BotFilter> {
        let _ = lists;
        todo!()
    }

    /// UA shape, keyword and regex checks.
    pub fn check_user_agent(&self, user_agent: &str) -> Option<&'static str> {
        let _ = user_agent;
        todo!()
    }

    /// Browser floor and bot-like browser names, after parsing.
    pub fn check_parsed(&self, ua: &UaInfo) -> Option<&'static str> {
        let _ = ua;
        todo!()
    }

    /// Referrer spam: host cut to its last two labels in the spam list, or SQL-like text.
    pub fn check_referrer(&self, referrer_host: &str, raw_referrer: &str) -> Option<&'static str> {
        let _ = (referrer_host, raw_referrer);
        todo!()
    }

    pub fn check_ip(&self, ip: IpAddr) -> Option<&'static str> {
        let _ = ip;
        todo!()
    }
}

/// Prefetch/preview header checks, for browser-facing routes only.
pub fn check_headers(headers: &Headers) -> Option<&'static str> {
    let _ = headers;
    todo!()
}
