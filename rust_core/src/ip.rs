//! Client-IP resolution (reference section 3, step 1). OWNER: helper "dims".

use crate::hit::Headers;
use ipnet::IpNet;
use std::net::IpAddr;

/// Trusted proxy subnets; headers are honoured only when the socket peer is inside one.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

/// The client IP of a server-side API hit: the body's `ip`, which may be a comma-separated
/// list forwarded raw from a proxy header. Returns None when no entry is a valid IP.
pub fn ip_from_body(value: &str) -> Option<IpAddr> {
    let _ = value;
    todo!()
}

/// The client IP of a browser-facing request from its socket peer and headers.
pub fn ip_from_request(peer: IpAddr, headers: &Headers, trusted: &TrustedProxies) -> IpAddr {
    let _ = (peer, headers, trusted);
    todo!()
}
