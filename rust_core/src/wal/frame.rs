//! Record framing: `[u32 len LE][u32 crc32 LE][bincode(Vec<SiteRows>)]`.
//!
//! A generation keeps the rows its records were made from (moved in by `append`, never cloned),
//! so sealing decodes nothing; replay decodes the file.

use crate::errors::{CoreError, Result};
use crate::rows::SiteRows;

const HEADER: usize = 8;
/// A record longer than this is treated as garbage (a torn length field), not allocated.
const MAX_RECORD: usize = 1 << 30;

/// `batch` framed as one record in `buf` (cleared first: a caller keeps one buffer).
pub(super) fn encode_record_into(batch: &[SiteRows], buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    buf.resize(HEADER, 0);
    bincode::serialize_into(&mut *buf, batch).map_err(CoreError::storage)?;
    let len = buf.len() - HEADER;
    let len32 = u32::try_from(len)
        .ok()
        .filter(|l| (*l as usize) <= MAX_RECORD);
    let Some(len32) = len32 else {
        return Err(CoreError::Storage(format!(
            "batch of {len} bytes is too large for the WAL"
        )));
    };
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[0..4].copy_from_slice(&len32.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

#[cfg(test)]
pub(super) fn encode_record(batch: &[SiteRows]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    encode_record_into(batch, &mut buf)?;
    Ok(buf)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tail {
    /// Every byte belongs to a good record.
    Clean,
    /// The last record is short or fails its CRC: a write cut by a crash, never acknowledged.
    Torn,
    /// A bad record is followed by more bytes: damage, not a torn write.
    Corrupt,
}

/// Length of the prefix of whole, CRC-valid records, and what follows it. Zeros after the
/// records are the reserved tail of a mapped WAL (mapped.rs; no record has length 0): the end,
/// and a bad record followed only by zeros is a copy cut short.
fn valid_prefix(buf: &[u8]) -> (usize, Tail) {
    let zeros = |bytes: &[u8]| bytes.iter().all(|b| *b == 0);
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < HEADER {
            return (pos, if zeros(rest) { Tail::Clean } else { Tail::Torn });
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 {
            let tail = if zeros(rest) {
                Tail::Clean
            } else {
                Tail::Corrupt
            };
            return (pos, tail);
        }
        if len > MAX_RECORD || rest.len() < HEADER + len {
            return (pos, Tail::Torn);
        }
        let end = HEADER + len;
        if crc32fast::hash(&rest[HEADER..end]) != crc {
            let tail = if zeros(&rest[end..]) {
                Tail::Torn
            } else {
                Tail::Corrupt
            };
            return (pos, tail);
        }
        pos += end;
    }
    (pos, Tail::Clean)
}

/// Decode the records of a buffer; stops at the first bad one.
pub(super) fn decode_records(buf: &[u8]) -> (Vec<SiteRows>, Tail) {
    let (valid, tail) = valid_prefix(buf);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < valid {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        let payload = &buf[pos + HEADER..pos + HEADER + len];
        match bincode::deserialize::<Vec<SiteRows>>(payload) {
            Ok(batch) => out.extend(batch),
            // A CRC-valid record that does not decode came from an incompatible build.
            Err(_) => return (out, Tail::Corrupt),
        }
        pos += HEADER + len;
    }
    (out, tail)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::hit;
    use super::*;

    #[test]
    fn decoding_stops_at_the_first_bad_record() {
        let record = encode_record(&hit("s", 0)).expect("encode");
        let two = [record.clone(), record.clone()].concat();
        let mut bad_crc = record.clone();
        bad_crc[4] ^= 0xff;
        // (name, bytes, records decoded, tail)
        let cases: Vec<(&str, Vec<u8>, usize, Tail)> = vec![
            ("empty", Vec::new(), 0, Tail::Clean),
            ("two good records", two.clone(), 2, Tail::Clean),
            (
                "short header",
                [&two[..], &[1, 2, 3]].concat(),
                2,
                Tail::Torn,
            ),
            (
                "short payload",
                [&two[..], &record[..record.len() - 1]].concat(),
                2,
                Tail::Torn,
            ),
            (
                "bad crc at the end",
                [&two[..], &bad_crc[..]].concat(),
                2,
                Tail::Torn,
            ),
            (
                "bad crc in the middle",
                [&record[..], &bad_crc[..], &record[..]].concat(),
                1,
                Tail::Corrupt,
            ),
            (
                "absurd length",
                [&record[..], &[0xff; HEADER]].concat(),
                1,
                Tail::Torn,
            ),
            // A mapped WAL's reserved tail, and copies cut short in front of it.
            (
                "zeros after the records",
                [&two[..], &[0; 100]].concat(),
                2,
                Tail::Clean,
            ),
            ("a few zeros", [&two[..], &[0; 3]].concat(), 2, Tail::Clean),
            (
                "a record cut short, then zeros",
                [
                    &two[..],
                    &record[..record.len() / 2],
                    &vec![0; record.len() + 100],
                ]
                .concat(),
                2,
                Tail::Torn,
            ),
            (
                "a header cut short, then zeros",
                [&two[..], &record[..2], &vec![0; 300]].concat(),
                2,
                Tail::Torn,
            ),
            (
                "zeros, then a record",
                [&two[..], &[0; 16], &record[..]].concat(),
                2,
                Tail::Corrupt,
            ),
        ];
        for (name, bytes, records, tail) in cases {
            let (batches, got) = decode_records(&bytes);
            assert_eq!(batches.len(), records, "{name}");
            assert_eq!(got, tail, "{name}");
        }
    }
}
