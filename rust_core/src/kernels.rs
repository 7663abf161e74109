//! Counting kernels for the statistics layer: exact distinct counts over u64 ids.
//!
//! Polars counts distinct u64 values with a hash table, which falls out of cache at a few
//! million random ids (visitor ids are SipHash outputs). The inputs here are concatenations of
//! per-day runs that are already sorted, so a run-adaptive stable sort merges them in
//! O(n log runs) and distinct values are adjacent afterwards. Correctness never depends on the
//! runs being sorted; only the speed does.

/// Number of distinct values.
pub fn distinct_count(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    // Stable sort: detects the sorted per-day runs and merges them instead of re-sorting.
    // (Splitting the work over two threads did not pay: this is memory-bound.)
    sorted.sort();
    count_sorted_distinct(&sorted)
}

fn count_sorted_distinct(sorted: &[u64]) -> u64 {
    match sorted.first() {
        None => 0,
        Some(_) => 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() as u64,
    }
}

/// Per-group counts over rows: the row count, the distinct `visitors`, the distinct
/// (visitor, session) pairs, and the first and last row index of each group.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// The group key of each group, in order of first appearance.
    pub keys: Vec<u64>,
    pub first: Vec<u64>,
    pub last: Vec<u64>,
    pub rows: Vec<u64>,
    pub visitors: Vec<u64>,
    pub sessions: Vec<u64>,
}

/// Group keys are already hashes (e.g. Polars' string hash): a pass-through hasher avoids
/// hashing them again with SipHash, which would dominate the run time.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        // Spread the bits: hashbrown takes the top 7 bits as a tag and the low bits as a slot.
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type FastMap = std::collections::HashMap<u64, u32, std::hash::BuildHasherDefault<PassThrough>>;

/// Groups rows by `keys` and counts, per group, rows, distinct visitors and distinct
/// (visitor, session) pairs. Rows past the shortest input are ignored. Exact for any input.
///
/// Fast path for how compacted page views are stored: sorted by (visitor, session) within
/// each day. The input is cut into maximal runs where (visitor, session) does not decrease.
/// A visitor that occurs in one run only has all its rows contiguous there, so counting it
/// per group needs no set: "differs from the last visitor this group saw" is exact. Visitors
/// found in several runs (sessions across midnight, or an unsorted input) are rare; their rows
/// are set aside and counted exactly by sorting.
pub fn group_stats(keys: &[u64], visitors: &[u64], sessions: &[u32]) -> GroupStats {
    let n = keys.len().min(visitors.len()).min(sessions.len());
    let (keys, visitors, sessions) = (&keys[..n], &visitors[..n], &sessions[..n]);
    let multi = multi_run_visitors(visitors, sessions);
    let mut index = FastMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut aside: Vec<(u32, u64, u32)> = Vec::new();
    let mut current: Option<(u64, bool)> = None; // (visitor, is it in `multi`)
    let mut last_key: Option<(u64, usize)> = None;
    for i in 0..n {
        let g = match last_key {
            Some((k, g)) if k == keys[i] => g,
            _ => {
                let g = *index.entry(keys[i]).or_insert_with(|| {
                    groups.push(Group::new(keys[i], i as u64));
                    (groups.len() - 1) as u32
                }) as usize;
                last_key = Some((keys[i], g));
                g
            }
        };
        let (v, s) = (visitors[i], sessions[i]);
        let in_multi = match current {
            Some((cv, m)) if cv == v => m,
            _ => {
                let m = !multi.is_empty() && multi.contains(&v);
                current = Some((v, m));
                m
            }
        };
        let group = &mut groups[g];
        group.last = i as u64;
        group.rows += 1;
        if in_multi {
            aside.push((g as u32, v, s));
            continue;
        }
        if !group.seen || group.last_visitor != v {
            group.visitors += 1;
            group.sessions += 1;
        } else if group.last_session != s {
            group.sessions += 1;
        }
        group.seen = true;
        group.last_visitor = v;
        group.last_session = s;
    }
    aside.sort_unstable();
    for (i, t) in aside.iter().enumerate() {
        let prev = if i == 0 { None } else { Some(aside[i - 1]) };
        let group = &mut groups[t.0 as usize];
        if prev.is_none_or(|p| (p.0, p.1) != (t.0, t.1)) {
            group.visitors += 1;
        }
        if prev != Some(*t) {
            group.sessions += 1;
        }
    }
    let mut out = GroupStats::default();
    for g in groups {
        out.keys.push(g.key);
        out.first.push(g.first);
        out.last.push(g.last);
        out.rows.push(g.rows);
        out.visitors.push(g.visitors);
        out.sessions.push(g.sessions);
    }
    out
}

/// One group's counters, kept together so a row touches one cache line.
struct Group {
    key: u64,
    first: u64,
    last: u64,
    rows: u64,
    visitors: u64,
    sessions: u64,
    // The last (visitor, session) counted on the fast path.
    seen: bool,
    last_visitor: u64,
    last_session: u32,
}

impl Group {
    fn new(key: u64, first: u64) -> Group {
        Group {
            key,
            first,
            last: first,
            rows: 0,
            visitors: 0,
            sessions: 0,
            seen: false,
            last_visitor: 0,
            last_session: 0,
        }
    }
}

type FastSet = std::collections::HashSet<u64, std::hash::BuildHasherDefault<PassThrough>>;

/// Visitors with rows in more than one run (see group_stats).
fn multi_run_visitors(visitors: &[u64], sessions: &[u32]) -> FastSet {
    // One entry per (run, visitor): each run is sorted, so the list is a series of sorted runs.
    let mut seen: Vec<u64> = Vec::new();
    for i in 0..visitors.len() {
        let new_run = i == 0 || (visitors[i], sessions[i]) < (visitors[i - 1], sessions[i - 1]);
        if new_run || visitors[i] != visitors[i - 1] {
            seen.push(visitors[i]);
        }
    }
    seen.sort(); // run-adaptive: merges the sorted runs
    let mut multi = FastSet::default();
    for w in seen.windows(2) {
        if w[0] == w[1] {
            multi.insert(w[0]);
        }
    }
    multi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_table() {
        let cases: &[(&[u64], u64)] = &[
            (&[], 0),
            (&[7], 1),
            (&[1, 1, 1], 1),
            (&[3, 1, 2, 1, 3], 3),
            (&[1, 5, 9, 2, 5, 10], 5), // two sorted runs sharing 5
            (&[u64::MAX, 0, u64::MAX], 2),
        ];
        for (input, want) in cases {
            let v = input.to_vec();
            assert_eq!(distinct_count(&v), *want, "{input:?}");
        }
    }

    #[test]
    fn matches_a_hash_set_on_pseudo_random_runs() {
        let mut x: u64 = 0x2545F4914F6CDD1D;
        let mut runs = Vec::new();
        for _ in 0..5 {
            let mut run: Vec<u64> = (0..1000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % 3000
                })
                .collect();
            run.sort();
            runs.extend(run);
        }
        let want = runs.iter().collect::<std::collections::HashSet<_>>().len() as u64;
        assert_eq!(distinct_count(&runs), want);
    }

    #[test]
    fn group_stats_table() {
        // keys, visitors, sessions -> (keys, first, last, rows, visitors, sessions)
        type Col = &'static [u64];
        type Want = (Col, Col, Col, Col, Col, Col);
        type Case = (Col, Col, &'static [u32], Want);
        let cases: &[Case] = &[
            (&[], &[], &[], (&[], &[], &[], &[], &[], &[])),
            (
                &[7, 9, 7, 7, 9],
                &[1, 1, 1, 2, 1],
                &[1, 1, 2, 1, 1],
                (&[7, 9], &[0, 1], &[3, 4], &[3, 2], &[2, 1], &[3, 1]),
            ),
            // two sorted "days" of one group sharing visitor 5 and pair (5, 1)
            (
                &[3, 3, 3, 3, 3],
                &[1, 5, 2, 5, 5],
                &[1, 1, 1, 1, 2],
                (&[3], &[0], &[4], &[5], &[3], &[4]),
            ),
            // a key input longer than the values: extra rows ignored
            (
                &[1, 1, 2],
                &[4, 4],
                &[1, 1],
                (&[1], &[0], &[1], &[2], &[1], &[1]),
            ),
        ];
        for (k, v, s, want) in cases {
            let got = group_stats(k, v, s);
            let want = GroupStats {
                keys: want.0.to_vec(),
                first: want.1.to_vec(),
                last: want.2.to_vec(),
                rows: want.3.to_vec(),
                visitors: want.4.to_vec(),
                sessions: want.5.to_vec(),
            };
            assert_eq!(got, want, "{k:?} {v:?} {s:?}");
        }
    }

    #[test]
    fn group_stats_matches_hash_sets_on_many_groups() {
        let mut x: u64 = 88172645463325252;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 20_000;
        let keys: Vec<u64> = (0..n).map(|_| rnd() % 300).collect();
        let visitors: Vec<u64> = (0..n).map(|_| rnd() % 2000).collect();
        let sessions: Vec<u32> = (0..n).map(|_| (rnd() % 3) as u32).collect();
        let got = group_stats(&keys, &visitors, &sessions);
        for (g, key) in got.keys.iter().enumerate() {
            let rows: Vec<usize> = (0..n).filter(|&i| keys[i] == *key).collect();
            let v: std::collections::HashSet<_> = rows.iter().map(|&i| visitors[i]).collect();
            let s: std::collections::HashSet<_> =
                rows.iter().map(|&i| (visitors[i], sessions[i])).collect();
            assert_eq!(got.rows[g], rows.len() as u64);
            assert_eq!(got.first[g], rows[0] as u64);
            assert_eq!(got.last[g], *rows.last().unwrap() as u64);
            assert_eq!(got.visitors[g], v.len() as u64);
            assert_eq!(got.sessions[g], s.len() as u64);
        }
    }
}
