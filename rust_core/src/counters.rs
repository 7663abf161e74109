//! Fixed-window request counters in a memory-mapped file that every worker process maps.
//!
//! A count is one compare-and-swap on a shared 64-bit slot instead of a read and a write in the
//! `state/` LMDB env's write transaction (ratelimit.rs keeps that path for what does not fit
//! here). The file `state/rate-counters`: a 64-byte header (magic, slot count, hash keys)
//! and a power-of-two number of slots. A slot packs
//!
//! ```text
//! [ fingerprint: 20 bits | window: 12 bits | count: 32 bits ]
//! ```
//!
//! `fingerprint` is the top of a keyed hash of (key, window length) that also chooses where
//! the key's slot is searched (linear probing over `PROBES` slots); `window` is the low 12
//! bits of the window number. A slot of an earlier window is free (any but the current one and
//! the next two, `is_free`), so windows expire without a sweep and a new window's first request
//! claims a slot. When the probed slots hold neither the key nor a free slot (more busy keys in
//! one window than the table takes), `count` answers None and the caller counts in LMDB.
//!
//! Exact for one key under any number of processes: every change is a CAS on the one slot, and
//! a key is claimed in the first free slot of its probe sequence after a full search, so two
//! processes claiming the same key race for the same slot. Two keys share a count only if
//! their 20-bit fingerprints match within one probe run in the same window.

use crate::errors::{CoreError, Result};
use std::fs::{File, OpenOptions};
use std::hash::Hasher;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: u64 = u64::from_le_bytes(*b"TRLRATE1");
const HEADER: usize = 64;
/// 2^17 slots (1 MiB): ~100k keys busy in one window before counts spill into LMDB.
pub const DEFAULT_SLOTS: usize = 1 << 17;
const PROBES: usize = 16;
const WINDOW_BITS: u32 = 12;
const WINDOW_MASK: u64 = (1 << WINDOW_BITS) - 1;
const COUNT_BITS: u32 = 32;
/// Header bytes 32..40: the state env's writer hint (`writer_hint`); zero in every file.
const WRITER_HINT: usize = 32;

pub struct Counters {
    map: NonNull<u8>,
    map_len: usize,
    slots: usize,
    keys: (u64, u64),
}

// SAFETY: the mapping is only accessed through atomics (slots) or read once at open (header),
// and it lives until Drop; sharing it between threads is what it is for.
unsafe impl Send for Counters {}
unsafe impl Sync for Counters {}

impl Counters {
    /// Map `path`, creating it with `slots` slots (a power of two) when it does not exist yet;
    /// an existing file keeps its own size and keys, so every process counts in the same slots.
    pub fn open(path: &Path, slots: usize) -> Result<Counters> {
        if !slots.is_power_of_two() {
            return Err(CoreError::Storage(format!(
                "rate counters: {slots} slots is not a power of two"
            )));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let fd = file.as_raw_fd();
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let header = init_or_read(&file, slots);
        // Unlocked by hand: the mapping below keeps the open file (and so a flock) alive.
        // SAFETY: as above.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
        let (slots, keys) = header
            .map_err(|e| CoreError::Storage(format!("rate counters {}: {e}", path.display())))?;
        let map_len = HEADER + slots * 8;
        // SAFETY: a shared read-write mapping of a file at least `map_len` long (checked in
        // init_or_read); the pointer is checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().into());
        }
        let map = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| {
            CoreError::Storage("rate counters: mmap returned a null pointer".into())
        })?;
        Ok(Counters {
            map,
            map_len,
            slots,
            keys,
        })
    }

    /// A word every process sees: when the state env's write transaction was last begun (µs
    /// on the monotonic clock, 0 once it ended). Advisory only (session.rs, `wait_for_writer`).
    pub fn writer_hint(&self) -> &AtomicU64 {
        // SAFETY: the header is mapped, 8-byte aligned and only accessed atomically here.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(WRITER_HINT).cast::<u64>()) }
    }

    fn slot(&self, index: usize) -> &AtomicU64 {
        debug_assert!(index < self.slots);
        // SAFETY: HEADER and the mapping are 8-byte aligned (a page), index < slots, and the
        // slots are only ever accessed atomically, by this and other processes.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(HEADER + index * 8).cast::<u64>()) }
    }

    /// Count one request for `key` in the window of `window_ms` that holds `now`; the count so
    /// far in that window, this request included, or None when the table has no slot for it.
    pub fn count(&self, key: &str, window_ms: i64, now: i64) -> Option<u64> {
        let window_ms = window_ms.max(1);
        let window = (now.div_euclid(window_ms) as u64) & WINDOW_MASK;
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        h.write(key.as_bytes());
        h.write_i64(window_ms);
        let hash = h.finish();
        let fingerprint = (hash >> (64 - 20)).max(1);
        let tag = fingerprint << (WINDOW_BITS + COUNT_BITS) | window << COUNT_BITS;
        let start = hash as usize & (self.slots - 1);
        'search: loop {
            let mut free = None;
            for i in 0..PROBES {
                let index = (start + i) & (self.slots - 1);
                let slot = self.slot(index);
                let mut seen = slot.load(Ordering::Acquire);
                if seen >> COUNT_BITS == tag >> COUNT_BITS {
                    loop {
                        let count = (seen & u64::from(u32::MAX)).saturating_add(1);
                        let next = tag | count.min(u64::from(u32::MAX));
                        match slot.compare_exchange_weak(
                            seen,
                            next,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => return Some(count),
                            Err(now_there) if now_there >> COUNT_BITS == tag >> COUNT_BITS => {
                                seen = now_there
                            }
                            Err(_) => continue 'search, // the slot expired and was taken
                        }
                    }
                }
                if free.is_none() && is_free(seen, window) {
                    free = Some((slot, seen));
                }
            }
            let (slot, seen) = free?;
            if slot
                .compare_exchange(seen, tag | 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Some(1);
            }
            // Another process took the slot (maybe for this key): search again.
        }
    }
}

/// Empty, or holding an earlier window than `window`: not this one, nor one of the next
/// `AHEAD` (written by a process whose clock is a little ahead). The 12-bit window numbers wrap,
/// so a slot left alone for 4096 windows looks current again for those few windows.
fn is_free(slot: u64, window: u64) -> bool {
    if slot == 0 {
        return true;
    }
    let theirs = (slot >> COUNT_BITS) & WINDOW_MASK;
    let ahead = theirs.wrapping_sub(window) & WINDOW_MASK;
    ahead > AHEAD
}

const AHEAD: u64 = 2;

/// Under the file lock: write a new header (an empty or never-finished file) or read the one
/// there. Returns the slot count and hash keys.
fn init_or_read(file: &File, slots: usize) -> std::io::Result<(usize, (u64, u64))> {
    use std::os::unix::fs::FileExt;
    let mut header = [0u8; HEADER];
    let len = file.metadata()?.len();
    if len >= HEADER as u64 {
        file.read_exact_at(&mut header, 0)?;
    }
    let word = |i: usize| u64::from_le_bytes(header[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    if word(0) == MAGIC {
        let have = word(1) as usize;
        if !have.is_power_of_two() || len < (HEADER + have * 8) as u64 {
            return Err(std::io::Error::other(format!(
                "header names {have} slots but the file is {len} bytes"
            )));
        }
        return Ok((have, (word(2), word(3))));
    }
    if header.iter().any(|b| *b != 0) {
        return Err(std::io::Error::other("not a rate counter file"));
    }
    // New, or cut short by a crash before its magic was written (nobody maps such a file).
    let keys: (u64, u64) = (rand::random(), rand::random());
    file.set_len(0)?;
    file.set_len((HEADER + slots * 8) as u64)?;
    let mut fresh = [0u8; HEADER];
    fresh[8..16].copy_from_slice(&(slots as u64).to_le_bytes());
    fresh[16..24].copy_from_slice(&keys.0.to_le_bytes());
    fresh[24..32].copy_from_slice(&keys.1.to_le_bytes());
    file.write_all_at(&fresh, 0)?;
    file.sync_all()?;
    file.write_all_at(&MAGIC.to_le_bytes(), 0)?;
    file.sync_all()?;
    Ok((slots, keys))
}

/// A counter file with fixed hash keys, so that which keys share a probe run is the same in
/// every test run.
#[cfg(test)]
pub(crate) fn write_fixed(path: &Path, slots: usize) {
    let mut header = vec![0u8; HEADER + slots * 8];
    header[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    header[8..16].copy_from_slice(&(slots as u64).to_le_bytes());
    header[16..24].copy_from_slice(&1u64.to_le_bytes());
    header[24..32].copy_from_slice(&2u64.to_le_bytes());
    std::fs::write(path, header).unwrap();
}

impl Drop for Counters {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`, unmapped once.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(dir: &Path, slots: usize) -> Counters {
        let path = dir.join("fixed");
        write_fixed(&path, slots);
        Counters::open(&path, 1 << 20).unwrap()
    }

    #[test]
    fn counts_per_key_and_window_and_expires_old_windows() {
        let dir = tempfile::tempdir().unwrap();
        let c = Counters::open(&dir.path().join("c"), 64).unwrap();
        for i in 1..=5 {
            assert_eq!(c.count("a", 10_000, 1_000_000 + i), Some(i as u64));
        }
        assert_eq!(c.count("b", 10_000, 1_000_000), Some(1));
        // Another window length is another counter.
        assert_eq!(c.count("a", 60_000, 1_000_000), Some(1));
        // The next window starts over, and its first request takes the expired slot.
        assert_eq!(c.count("a", 10_000, 1_010_000), Some(1));
        assert_eq!(c.count("a", 10_000, 1_010_001), Some(2));
    }

    #[test]
    fn a_clock_ahead_window_is_not_free_but_an_older_one_is() {
        let tag = |w: u64| (1u64 << 44) | (w << 32) | 7;
        assert!(is_free(0, 5));
        assert!(is_free(tag(4), 5));
        assert!(!is_free(tag(5), 5));
        assert!(
            !is_free(tag(6), 5),
            "the next window (a clock a little ahead)"
        );
        assert!(!is_free(tag(7), 5), "the one after");
        assert!(
            is_free(tag(8), 5),
            "further ahead is an old window, wrapped"
        );
        assert!(is_free(tag(4095), 0), "the window before, across the wrap");
        assert!(!is_free(tag(1), 4095), "the next window, across the wrap");
        assert!(is_free(tag(5 + 2048), 5), "half the range back is old, too");
    }

    #[test]
    fn a_full_table_answers_none() {
        let dir = tempfile::tempdir().unwrap();
        let c = fixed(dir.path(), 16);
        assert_eq!(c.slots, 16, "an existing file keeps its size");
        let counted = (0..40)
            .filter(|i| c.count(&format!("k{i}"), 1000, 5).is_some())
            .count();
        assert_eq!(counted, 16, "16 slots, 16 keys");
        for i in 0..40 {
            let again = c.count(&format!("k{i}"), 1000, 6);
            assert!(again.is_none() || again == Some(2), "key {i}: {again:?}");
        }
    }

    #[test]
    fn separate_mappings_share_counts_exactly() {
        // Each thread maps the file itself, as worker processes do.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let threads = 4;
        let per = 5_000;
        let keys = ["x", "y", "z"];
        // All mapped at once (a mapping must not keep the file locked for the others).
        let mapped: Vec<Counters> = (0..threads)
            .map(|_| Counters::open(&path, 1 << 10).unwrap())
            .collect();
        std::thread::scope(|s| {
            for (t, c) in mapped.iter().enumerate() {
                s.spawn(move || {
                    for i in 0..per {
                        c.count(keys[(i + t) % keys.len()], 60_000, 123).unwrap();
                    }
                });
            }
        });
        let c = Counters::open(&path, 1 << 4).unwrap();
        let total: u64 = keys
            .iter()
            .map(|k| c.count(k, 60_000, 123).unwrap() - 1)
            .sum();
        assert_eq!(total, (threads * per) as u64);
        assert_eq!(c.slots, 1 << 10, "the file keeps the size it was made with");
    }

    #[test]
    fn refuses_a_file_that_is_not_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        std::fs::write(&path, vec![1u8; 200]).unwrap();
        let err = Counters::open(&path, 16).err().unwrap().to_string();
        assert!(err.contains("not a rate counter file"), "{err}");
        // A file cut short before its magic (all zero) is made again.
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        assert_eq!(
            Counters::open(&path, 16).unwrap().count("k", 10, 0),
            Some(1)
        );
    }
}
