//! Per-site ingestion rules set by the site's owner: which hostnames may send hits (the site's
//! own and its alternative domains) and traffic filters (IP/CIDR, path, user agent, hostname,
//! country). A matching hit is dropped with a reason naming the rule kind.

use crate::drops::DropReason;
use crate::errors::{CoreError, Result};
use ipnet::IpNet;
use regex::Regex;
use std::net::IpAddr;

#[derive(Clone, Debug, Default)]
pub struct SiteRules {
    /// Bumped by the meta store on every change; workers re-send rules when it moves.
    pub version: u64,
    /// Lowercase hostnames without "www."; empty = any hostname is accepted.
    pub hostnames: Vec<String>,
    pub ips: Vec<IpNet>,
    pub paths: Vec<Regex>,
    /// Lowercase substrings.
    pub user_agents: Vec<String>,
    /// Lowercase hostnames without "www.".
    pub blocked_hostnames: Vec<String>,
    /// Lowercase ISO codes.
    pub countries: Vec<String>,
}

/// A filter as the API stores it: `type` and `filter` text.
pub fn build(
    version: u64,
    hostnames: &[String],
    filters: &[(String, String)],
) -> Result<SiteRules> {
    let mut rules = SiteRules {
        version,
        hostnames: hostnames
            .iter()
            .map(|h| bare_host(h))
            .filter(|h| !h.is_empty())
            .collect(),
        ..Default::default()
    };
    for (kind, value) in filters {
        let value = value.trim();
        let bad = |m: &str| CoreError::invalid("filter", format!("{kind} filter {value:?}: {m}"));
        match kind.as_str() {
            "ip" => rules.ips.push(
                value
                    .parse::<IpNet>()
                    .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| bad("not an IP address or CIDR range"))?,
            ),
            "path" => rules
                .paths
                .push(glob_regex(value).map_err(|_| bad("not a valid pattern"))?),
            "user_agent" => rules.user_agents.push(value.to_lowercase()),
            "hostname" => rules.blocked_hostnames.push(bare_host(value)),
            "country" => rules.countries.push(value.to_lowercase()),
            _ => {
                return Err(bad(
                    "unknown filter type (ip, path, user_agent, hostname, country)",
                ))
            }
        }
    }
    Ok(rules)
}

/// A path filter: `*` any run of characters, everything else literal, anchored.
fn glob_regex(glob: &str) -> std::result::Result<Regex, regex::Error> {
    let body: Vec<String> = glob.split('*').map(regex::escape).collect();
    Regex::new(&format!("(?i)^{}$", body.join(".*")))
}

fn bare_host(h: &str) -> String {
    let h = h.trim().to_lowercase();
    h.strip_prefix("www.").map(str::to_string).unwrap_or(h)
}

impl SiteRules {
    /// The reason a hit is refused by its site's rules, checked before any parsing work.
    pub fn check_request(
        &self,
        ip: IpAddr,
        hostname: &str,
        path: &str,
        user_agent: &str,
    ) -> Option<DropReason> {
        let host = bare_host(hostname);
        if !host.is_empty() && !self.hostnames.is_empty() && !self.hostnames.contains(&host) {
            return Some(DropReason::HostnameNotAllowed);
        }
        if self.ips.iter().any(|n| n.contains(&ip)) {
            return Some(DropReason::FilterIp);
        }
        if !host.is_empty() && self.blocked_hostnames.contains(&host) {
            return Some(DropReason::FilterHostname);
        }
        if self.paths.iter().any(|r| r.is_match(path)) {
            return Some(DropReason::FilterPath);
        }
        if !self.user_agents.is_empty() {
            let ua = user_agent.to_lowercase();
            if self.user_agents.iter().any(|s| ua.contains(s.as_str())) {
                return Some(DropReason::FilterUserAgent);
            }
        }
        None
    }

    /// Country filters need the GeoIP lookup, so they run after it.
    pub fn check_country(&self, country_code: &str) -> Option<DropReason> {
        (!country_code.is_empty() && self.countries.iter().any(|c| c == country_code))
            .then_some(DropReason::FilterCountry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(filters: &[(&str, &str)]) -> SiteRules {
        let f: Vec<(String, String)> = filters
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        build(1, &["example.com".into(), "www.alt.example.org".into()], &f).unwrap()
    }

    #[test]
    fn request_checks() {
        let r = rules(&[
            ("ip", "10.1.0.0/16"),
            ("ip", "81.2.69.7"),
            ("path", "/admin/*"),
            ("user_agent", "UptimeRobot"),
            ("hostname", "staging.example.com"),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let ua = "Mozilla/5.0";
        let cases = [
            (ip("81.2.69.1"), "example.com", "/", ua, None),
            (ip("81.2.69.1"), "www.example.com", "/", ua, None),
            (ip("81.2.69.1"), "alt.example.org", "/", ua, None),
            (ip("81.2.69.1"), "", "/", ua, None),
            (
                ip("81.2.69.1"),
                "evil.com",
                "/",
                ua,
                Some(DropReason::HostnameNotAllowed),
            ),
            (
                ip("10.1.2.3"),
                "example.com",
                "/",
                ua,
                Some(DropReason::FilterIp),
            ),
            (
                ip("81.2.69.7"),
                "example.com",
                "/",
                ua,
                Some(DropReason::FilterIp),
            ),
            (
                ip("81.2.69.1"),
                "example.com",
                "/admin/users",
                ua,
                Some(DropReason::FilterPath),
            ),
            (
                ip("81.2.69.1"),
                "example.com",
                "/ADMIN/x",
                ua,
                Some(DropReason::FilterPath),
            ),
            (ip("81.2.69.1"), "example.com", "/administrator", ua, None),
            (
                ip("81.2.69.1"),
                "example.com",
                "/",
                "x uptimerobot/2.0",
                Some(DropReason::FilterUserAgent),
            ),
        ];
        for (i, (addr, host, path, agent, want)) in cases.into_iter().enumerate() {
            assert_eq!(r.check_request(addr, host, path, agent), want, "case {i}");
        }
    }

    #[test]
    fn blocked_hostname_needs_to_be_allowed_first() {
        let r = build(1, &[], &[("hostname".into(), "staging.example.com".into())]).unwrap();
        let ip: IpAddr = "81.2.69.1".parse().unwrap();
        assert_eq!(
            r.check_request(ip, "staging.example.com", "/", "ua"),
            Some(DropReason::FilterHostname)
        );
        assert_eq!(r.check_request(ip, "anything.org", "/", "ua"), None);
    }

    #[test]
    fn countries_and_bad_filters() {
        let r = rules(&[("country", "DE")]);
        assert_eq!(r.check_country("de"), Some(DropReason::FilterCountry));
        assert_eq!(r.check_country("fr"), None);
        assert_eq!(r.check_country(""), None);
        for (kind, value) in [("ip", "not-an-ip"), ("colour", "red")] {
            let err = build(1, &[], &[(kind.into(), value.into())]).unwrap_err();
            assert!(matches!(err, CoreError::Invalid { .. }), "{kind}");
        }
    }
}
