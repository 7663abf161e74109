//! Client-IP resolution (reference section 3, step 1).
//!
//! trail differs from Pirsch on one point: proxy headers are honoured only when the socket peer
//! is a configured trusted proxy. With no trusted proxies configured the peer is the client,
//! because otherwise any visitor could pick their own IP (and with it their fingerprint).

use crate::hit::Headers;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};

/// Trusted proxy subnets; headers are honoured only when the socket peer is inside one.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// Parse "10.0.0.0/8, 2001:db8::/32, 127.0.0.1" (a bare address is a single-host net).
    pub fn parse(list: &str) -> std::result::Result<TrustedProxies, String> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("not an IP network: {s:?}"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(TrustedProxies(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The client IP of a server-side API hit: the body's `ip`, which may be a comma-separated
/// list forwarded raw from a proxy header. Returns None when no entry is a valid IP.
/// The last valid entry wins, as in X-Forwarded-For: it was added by the nearest proxy.
pub fn ip_from_body(value: &str) -> Option<IpAddr> {
    value.rsplit(',').find_map(parse_ip)
}

/// The client IP of a browser-facing request from its socket peer and headers.
pub fn ip_from_request(peer: IpAddr, headers: &Headers, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    header_ip(headers).unwrap_or(peer)
}

/// The first proxy header, in priority order, that carries a public IP.
fn header_ip(headers: &Headers) -> Option<IpAddr> {
    let candidates = [
        last_header(headers, "cf-connecting-ip").and_then(last_list_entry),
        last_header(headers, "true-client-ip").and_then(last_list_entry),
        last_header(headers, "x-forwarded-for").and_then(last_list_entry),
        last_header(headers, "forwarded").and_then(forwarded_for),
        last_header(headers, "x-real-ip").and_then(parse_ip),
    ];
    candidates.into_iter().flatten().find(|ip| is_public(*ip))
}

/// A repeated header's entries are appended in order, so the last occurrence holds the
/// entry written by the nearest proxy.
fn last_header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .0
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn last_list_entry(value: &str) -> Option<IpAddr> {
    value.rsplit(',').next().and_then(parse_ip)
}

/// RFC 7239: `Forwarded: for=192.0.2.1;proto=https, for="[2001:db8::1]:4711"` -> the last
/// element's `for=` value.
fn forwarded_for(value: &str) -> Option<IpAddr> {
    let element = value.rsplit(',').next()?;
    element.split(';').find_map(|pair| {
        let (key, val) = pair.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("for") {
            parse_ip(val)
        } else {
            None
        }
    })
}

/// One IP from a header or body entry, tolerating quotes, `[v6]`, `[v6]:port` and `v4:port`.
/// IPv4-mapped IPv6 addresses are returned as IPv4 so one client has one address.
fn parse_ip(entry: &str) -> Option<IpAddr> {
    let s = entry.trim().trim_matches('"').trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    // "a.b.c.d:port": a single colon means IPv4 with a port (bare IPv6 parsed above).
    let (host, port) = s.split_once(':')?;
    if port.contains(':') || port.parse::<u16>().is_err() {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Whether a header-supplied IP can be a real client: not private, loopback, link-local,
/// unspecified or otherwise special-purpose local space.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            let shared = a == 100 && (64..128).contains(&b); // RFC 6598 carrier-grade NAT
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || shared)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            let unique_local = (first & 0xfe00) == 0xfc00; // fc00::/7
            let link_local = (first & 0xffc0) == 0xfe80; // fe80::/10
            !(v6.is_loopback() || v6.is_unspecified() || unique_local || link_local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
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
    fn body_ip() {
        let cases = [
            ("65.182.89.102", Some("65.182.89.102")),
            (
                "127.0.0.1, 23.21.45.67, 65.182.89.102",
                Some("65.182.89.102"),
            ),
            (" 1.2.3.4 ,garbage", Some("1.2.3.4")),
            ("1.2.3.4:8080", Some("1.2.3.4")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("\"[2001:db8::1]\"", Some("2001:db8::1")),
            ("::ffff:1.2.3.4", Some("1.2.3.4")),
            // The body is trusted (it comes from an authenticated server), so private is kept.
            ("10.0.0.1", Some("10.0.0.1")),
            ("", None),
            ("garbage", None),
            ("1.2.3.4:port", None),
            ("1.2.3.4:99999", None),
            ("999.1.1.1", None),
            (", ,", None),
        ];
        for (body, want) in cases {
            assert_eq!(ip_from_body(body), want.map(ip), "{body:?}");
        }
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse("10.0.0.0/8, ::1").expect("trusted list")
    }

    #[test]
    fn request_ip_from_trusted_proxy() {
        let peer = ip("10.0.0.1");
        let cases: &[(&[(&str, &str)], &str)] = &[
            // Scenario 6.
            (
                &[("x-forwarded-for", "127.0.0.1, 23.21.45.67, 65.182.89.102")],
                "65.182.89.102",
            ),
            // Private last entry: no header IP, the peer.
            (
                &[("x-forwarded-for", "23.21.45.67, 192.168.1.2")],
                "10.0.0.1",
            ),
            (
                &[("x-forwarded-for", "23.21.45.67, 100.64.0.1")],
                "10.0.0.1",
            ),
            (&[("x-forwarded-for", "fd00::1")], "10.0.0.1"),
            (&[("x-forwarded-for", "garbage")], "10.0.0.1"),
            (&[], "10.0.0.1"),
            // Priority order.
            (
                &[
                    ("x-forwarded-for", "1.1.1.1"),
                    ("cf-connecting-ip", "2.2.2.2"),
                ],
                "2.2.2.2",
            ),
            (
                &[("x-real-ip", "3.3.3.3"), ("true-client-ip", "4.4.4.4")],
                "4.4.4.4",
            ),
            (
                &[("x-real-ip", "3.3.3.3"), ("forwarded", "for=5.5.5.5")],
                "5.5.5.5",
            ),
            (&[("x-real-ip", "3.3.3.3")], "3.3.3.3"),
            // A rejected header falls through to the next one.
            (
                &[("cf-connecting-ip", "127.0.0.1"), ("x-real-ip", "3.3.3.3")],
                "3.3.3.3",
            ),
            // Forwarded: last element, for= in any position, quoted v6 with port.
            (
                &[(
                    "forwarded",
                    "for=6.6.6.6, proto=https;For=\"[2001:db8:cafe::17]:4711\"",
                )],
                "2001:db8:cafe::17",
            ),
            (
                &[(
                    "forwarded",
                    "for=6.6.6.6;proto=http, for=7.7.7.7;by=10.0.0.1",
                )],
                "7.7.7.7",
            ),
            (&[("forwarded", "for=unknown")], "10.0.0.1"),
            // Repeated header: the last occurrence.
            (
                &[
                    ("x-forwarded-for", "8.8.8.8"),
                    ("x-forwarded-for", "9.9.9.9"),
                ],
                "9.9.9.9",
            ),
            (
                &[("x-forwarded-for", "65.182.89.102:1234")],
                "65.182.89.102",
            ),
        ];
        for (hs, want) in cases {
            assert_eq!(
                ip_from_request(peer, &headers(hs), &trusted()),
                ip(want),
                "{hs:?}"
            );
        }
    }

    #[test]
    fn request_ip_ignores_headers_from_untrusted_peers() {
        let hs = headers(&[
            ("x-forwarded-for", "65.182.89.102"),
            ("cf-connecting-ip", "2.2.2.2"),
        ]);
        // No trusted proxies configured: trail's rule, the peer.
        assert_eq!(
            ip_from_request(ip("203.0.113.5"), &hs, &TrustedProxies::default()),
            ip("203.0.113.5")
        );
        // Peer outside the trusted nets.
        assert_eq!(
            ip_from_request(ip("203.0.113.5"), &hs, &trusted()),
            ip("203.0.113.5")
        );
        // IPv6 loopback peer is trusted; a v4-mapped peer is matched as IPv4.
        assert_eq!(ip_from_request(ip("::1"), &hs, &trusted()), ip("2.2.2.2"));
        assert_eq!(
            ip_from_request(ip("::ffff:10.1.2.3"), &hs, &trusted()),
            ip("2.2.2.2")
        );
    }

    #[test]
    fn trusted_proxy_parsing() {
        let t = TrustedProxies::parse(" 10.0.0.0/8 ,192.168.1.1,, 2001:db8::/32").expect("valid");
        assert_eq!(t.0.len(), 3);
        assert!(t.contains(ip("192.168.1.1")));
        assert!(!t.contains(ip("192.168.1.2")));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("nope").is_err());
        assert!(TrustedProxies::parse("").expect("empty").0.is_empty());
    }
}
