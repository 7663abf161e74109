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
    use chrono::Datelike;
    let date = chrono::DateTime::from_timestamp_millis(time_ms)
        .unwrap_or_default()
        .date_naive();
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return date.format("%Y%m%d").to_string(); // signed or five-digit years
    }
    // The digits `format("%Y%m%d")` writes, without parsing a format string per hit.
    let number = year as u32 * 10_000 + date.month() * 100 + date.day();
    let mut digits = [b'0'; 8];
    let mut rest = number;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    digits.iter().map(|d| char::from(*d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 16] = [7; 16];

    #[test]
    fn day_key_writes_what_the_chrono_format_writes() {
        let format = |t: i64| {
            chrono::DateTime::from_timestamp_millis(t)
                .unwrap_or_default()
                .format("%Y%m%d")
                .to_string()
        };
        let mut t: i64 = 0x2545_f491_4f6c_dd1d;
        let mut times = vec![0, -1, 1, 86_399_999, 86_400_000, -62_167_219_200_001];
        times.extend([253_402_300_799_999, 253_402_300_800_000, i64::MIN, i64::MAX]);
        for _ in 0..20_000 {
            t ^= t << 13;
            t ^= t >> 7;
            t ^= t << 17;
            times.push(t % 400_000_000_000_000); // about +-12,700 years
            times.push(t % 4_000_000_000_000); // 1843-2096
        }
        for t in times {
            assert_eq!(day_key(t), format(t), "{t}");
        }
    }

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
