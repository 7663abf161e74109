//! Fixed-window rate limits shared by every worker process through `state/`.
//!
//! One counter per (key, window), counted in the shared counter file (counters.rs: one atomic
//! compare-and-swap) or, for a key it has no slot for, in the LMDB env's `ratelimits` database
//! (LMDB's single writer makes that increment atomic across processes). Either way N workers
//! enforce one limit, not N. With the Redis session store the counters live in Redis instead
//! (redis_store.rs), and N nodes enforce one limit.

use crate::errors::Result;
use crate::session::SessionStore;
use heed::RwTxn;

/// One request to count: its key, the limit and window, and its time.
#[derive(Clone, Debug)]
pub struct RateCount {
    pub key: String,
    pub limit: u32,
    pub window_ms: i64,
    pub now: i64,
}

/// Count one request for `key`; returns 0 when allowed, else milliseconds until the window ends.
pub fn check(store: &SessionStore, key: &str, limit: u32, window_ms: i64, now: i64) -> Result<i64> {
    if let Some(wait) = shared(store, key, limit, window_ms, now) {
        return Ok(wait);
    }
    let mut txn = store.env.write_txn()?;
    let wait = lmdb_count(store, &mut txn, key, limit, window_ms, now)?;
    txn.commit()?;
    Ok(wait)
}

/// The answer from the shared counter file, None when it has no slot for the key.
fn shared(store: &SessionStore, key: &str, limit: u32, window_ms: i64, now: i64) -> Option<i64> {
    let count = store.counters.count(key, window_ms, now)?;
    let window_ms = window_ms.max(1);
    Some(wait_ms(
        count,
        limit,
        now.div_euclid(window_ms),
        window_ms,
        now,
    ))
}

/// `check` inside a write transaction the caller commits (with the hits of the same request,
/// so that a request costs one commit); the transaction is only written to when the counter
/// file has no slot for the key.
pub fn count(
    store: &SessionStore,
    txn: &mut RwTxn,
    key: &str,
    limit: u32,
    window_ms: i64,
    now: i64,
) -> Result<i64> {
    if let Some(wait) = shared(store, key, limit, window_ms, now) {
        return Ok(wait);
    }
    lmdb_count(store, txn, key, limit, window_ms, now)
}

fn lmdb_count(
    store: &SessionStore,
    txn: &mut RwTxn,
    key: &str,
    limit: u32,
    window_ms: i64,
    now: i64,
) -> Result<i64> {
    let window_ms = window_ms.max(1);
    let window = now.div_euclid(window_ms);
    let mut k = Vec::with_capacity(key.len() + 9);
    k.extend_from_slice(&window.to_be_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    let count = store
        .limits
        .get(txn, &k)?
        .and_then(|v| v.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0)
        .saturating_add(1);
    store.limits.put(txn, &k, &count.to_be_bytes())?;
    Ok(wait_ms(count.into(), limit, window, window_ms, now))
}

/// The answer for the `count`th request of a window: 0 when allowed, else the milliseconds until
/// the window ends (the same rule for the Redis store, redis_store.rs).
pub fn wait_ms(count: u64, limit: u32, window: i64, window_ms: i64, now: i64) -> i64 {
    if count > u64::from(limit) {
        return (window + 1) * window_ms - now;
    }
    0
}

/// Delete windows that ended before `now` (keys start with the big-endian window number, so
/// the expired ones sort first). Only windows of the same length compare meaningfully; a key
/// is removed once its window number is below now/window_ms for the shortest window in use.
pub fn sweep(store: &SessionStore, now: i64, window_ms: i64) -> Result<usize> {
    let current = now.div_euclid(window_ms.max(1));
    let mut txn = store.env.write_txn()?;
    let old: Vec<Vec<u8>> = store
        .limits
        .iter(&txn)?
        .filter_map(|r| r.ok())
        .filter(|(k, _)| {
            k.len() >= 8 && i64::from_be_bytes(k[..8].try_into().unwrap_or([0; 8])) < current - 1
        })
        .map(|(k, _)| k.to_vec())
        .collect();
    for k in &old {
        store.limits.delete(&mut txn, k)?;
    }
    txn.commit()?;
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_window() {
        let dir = tempfile::tempdir().unwrap();
        let st = SessionStore::open(dir.path(), 1 << 24).unwrap();
        let now = 1_000_000;
        for i in 0..10 {
            assert_eq!(
                check(&st, "ip:1.2.3.4", 10, 10_000, now + i).unwrap(),
                0,
                "request {i}"
            );
        }
        // The 11th in the same 10 s window is refused until the window ends at 1_010_000.
        assert_eq!(
            check(&st, "ip:1.2.3.4", 10, 10_000, now + 10).unwrap(),
            9_990
        );
        assert_eq!(check(&st, "ip:5.6.7.8", 10, 10_000, now + 10).unwrap(), 0);
        assert_eq!(
            check(&st, "ip:1.2.3.4", 10, 10_000, now + 10_000).unwrap(),
            0
        );
    }

    #[test]
    fn keys_the_counter_file_has_no_slot_for_are_counted_in_lmdb_exactly() {
        let dir = tempfile::tempdir().unwrap();
        // A counter file of 16 slots, kept at that size by the store that opens it.
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        crate::counters::write_fixed(&dir.path().join("state/rate-counters"), 16);
        let st = SessionStore::open(dir.path(), 1 << 24).unwrap();
        let now = 1_000_000;
        for round in 0..3 {
            for k in 0..100 {
                let wait = check(&st, &format!("ip:{k}"), 2, 10_000, now + round).unwrap();
                assert_eq!(wait > 0, round == 2, "key {k}, request {}", round + 1);
            }
        }
        let txn = st.env.read_txn().unwrap();
        let in_lmdb = st.limits.len(&txn).unwrap();
        assert!(in_lmdb >= 84, "{in_lmdb} keys counted in LMDB");
        drop(txn);
        assert_eq!(sweep(&st, now + 40_000, 10_000).unwrap() as u64, in_lmdb);
    }

    #[test]
    fn shared_between_two_handles_of_one_env() {
        // Two processes open the env separately; two threads with their own handles stand in.
        let dir = tempfile::tempdir().unwrap();
        let st = SessionStore::open(dir.path(), 1 << 24).unwrap();
        let refused: i64 = std::thread::scope(|s| {
            let a = s.spawn(|| {
                (0..15)
                    .map(|i| (check(&st, "k", 20, 60_000, 5 + i).unwrap() > 0) as i64)
                    .sum::<i64>()
            });
            let b = s.spawn(|| {
                (0..15)
                    .map(|i| (check(&st, "k", 20, 60_000, 5 + i).unwrap() > 0) as i64)
                    .sum::<i64>()
            });
            a.join().unwrap() + b.join().unwrap()
        });
        assert_eq!(refused, 10);
    }
}
