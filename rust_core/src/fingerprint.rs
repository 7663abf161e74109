//! The keyed visitor fingerprint (reference section 2).

pub fn visitor_id(salt: &[u8; 16], site: &str, user_agent: &str, ip: &str, day: &str) -> u64 {
    let _ = (salt, site, user_agent, ip, day);
    todo!()
}
