//! The keyed visitor fingerprint (reference section 2).
//!
//! SipHash-2-4 keyed by a secret per-day salt. Inputs are length-framed so that moving bytes
//! between fields ("ab"+"c" vs "a"+"bc") can never produce the same hash. The site id is hashed
//! in, so one person is a different visitor on every site.

use siphasher::sip::SipHasher24;
use std::hash::Hasher;

pub fn visitor_id(salt: &[u8; 16], site: &str, user_agent: &str, ip: &str, day: &str) -> u64 {
    let mut h = SipHasher24::new_with_key(salt);
    for part in [site, user_agent, ip, day] {
        h.write_u64(part.len() as u64);
        h.write(part.as_bytes());
    }
    h.finish()
}

/// The UTC day of a millisecond timestamp as `YYYYMMDD`, the salt's key.
pub fn day_key(time_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(time_ms)
        .unwrap_or_default()
        .format("%Y%m%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 16] = [7; 16];

    #[test]
    fn same_inputs_same_id() {
        let a = visitor_id(&SALT, "s", "Mozilla/5.0", "1.2.3.4", "20260101");
        let b = visitor_id(&SALT, "s", "Mozilla/5.0", "1.2.3.4", "20260101");
        assert_eq!(a, b);
    }

    #[test]
    fn every_input_changes_the_id() {
        let base = visitor_id(&SALT, "s", "ua", "1.2.3.4", "20260101");
        let cases = [
            visitor_id(&[8; 16], "s", "ua", "1.2.3.4", "20260101"),
            visitor_id(&SALT, "t", "ua", "1.2.3.4", "20260101"),
            visitor_id(&SALT, "s", "ub", "1.2.3.4", "20260101"),
            visitor_id(&SALT, "s", "ua", "1.2.3.5", "20260101"),
            visitor_id(&SALT, "s", "ua", "1.2.3.4", "20260102"),
        ];
        for (i, c) in cases.iter().enumerate() {
            assert_ne!(*c, base, "case {i}");
        }
    }

    #[test]
    fn framing_separates_fields() {
        let a = visitor_id(&SALT, "s", "ab", "c", "d");
        let b = visitor_id(&SALT, "s", "a", "bc", "d");
        assert_ne!(a, b);
    }

    #[test]
    fn day_key_is_utc_date() {
        assert_eq!(day_key(0), "19700101");
        assert_eq!(day_key(1_767_225_599_999), "20251231");
        assert_eq!(day_key(1_767_225_600_000), "20260101");
    }
}
