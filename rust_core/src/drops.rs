//! Why a hit was dropped. Every pipeline step that refuses a hit names one of these; the reason
//! is counted per engine and stored as `bot_reason` in the `requests` table, as the string
//! `as_str()` gives (those strings are part of the stored data: never rename one).

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    // The site's own rules (rules.rs).
    HostnameNotAllowed,
    FilterIp,
    FilterHostname,
    FilterPath,
    FilterUserAgent,
    FilterCountry,
    // Browser request headers (bots::check_headers).
    HeaderPrefetch,
    HeaderFetchSite,
    HeaderFetchMismatch,
    // The User-Agent string (bots::BotFilter::check_user_agent).
    UaTooLong,
    UaEmpty,
    UaTooShort,
    UaNonAscii,
    UaIp,
    UaUuid,
    UaKeyword,
    UaPattern,
    // The parsed User-Agent (bots::BotFilter::check_parsed).
    Headless,
    UaSpider,
    BrowserBotName,
    BrowserTooOld,
    // Referrer and IP lists.
    ReferrerSpam,
    ReferrerSql,
    IpBlocked,
    // The session machine (session.rs).
    NoSession,
    PageViewCap,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: [DropReason; 26] = [
        DropReason::HostnameNotAllowed,
        DropReason::FilterIp,
        DropReason::FilterHostname,
        DropReason::FilterPath,
        DropReason::FilterUserAgent,
        DropReason::FilterCountry,
        DropReason::HeaderPrefetch,
        DropReason::HeaderFetchSite,
        DropReason::HeaderFetchMismatch,
        DropReason::UaTooLong,
        DropReason::UaEmpty,
        DropReason::UaTooShort,
        DropReason::UaNonAscii,
        DropReason::UaIp,
        DropReason::UaUuid,
        DropReason::UaKeyword,
        DropReason::UaPattern,
        DropReason::Headless,
        DropReason::UaSpider,
        DropReason::BrowserBotName,
        DropReason::BrowserTooOld,
        DropReason::ReferrerSpam,
        DropReason::ReferrerSql,
        DropReason::IpBlocked,
        DropReason::NoSession,
        DropReason::PageViewCap,
    ];

    /// The reason as stored in the `requests` log and reported in drop counts.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::HostnameNotAllowed => "hostname_not_allowed",
            DropReason::FilterIp => "filter_ip",
            DropReason::FilterHostname => "filter_hostname",
            DropReason::FilterPath => "filter_path",
            DropReason::FilterUserAgent => "filter_user_agent",
            DropReason::FilterCountry => "filter_country",
            DropReason::HeaderPrefetch => "header_prefetch",
            DropReason::HeaderFetchSite => "header_fetch_site",
            DropReason::HeaderFetchMismatch => "header_fetch_mismatch",
            DropReason::UaTooLong => "ua_too_long",
            DropReason::UaEmpty => "ua_empty",
            DropReason::UaTooShort => "ua_too_short",
            DropReason::UaNonAscii => "ua_non_ascii",
            DropReason::UaIp => "ua_ip",
            DropReason::UaUuid => "ua_uuid",
            DropReason::UaKeyword => "ua_keyword",
            DropReason::UaPattern => "ua_pattern",
            DropReason::Headless => "headless",
            DropReason::UaSpider => "ua_spider",
            DropReason::BrowserBotName => "browser_bot_name",
            DropReason::BrowserTooOld => "browser_too_old",
            DropReason::ReferrerSpam => "referrer_spam",
            DropReason::ReferrerSql => "referrer_sql",
            DropReason::IpBlocked => "ip_blocked",
            DropReason::NoSession => "no_session",
            DropReason::PageViewCap => "page_view_cap",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn wire_names_are_unique_snake_case() {
        let names: HashSet<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), DropReason::ALL.len());
        for name in names {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
    }
}
