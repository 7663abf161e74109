//! Counting kernels for the statistics layer: exact distinct counts over u64 ids.
//!
//! Polars counts distinct u64 values with a hash table, which falls out of cache at a few
//! million random ids (visitor ids are SipHash outputs). The inputs here are concatenations of
//! per-day runs that are already sorted, so a run-adaptive stable sort merges them in
//! O(n log runs) and distinct values are adjacent afterwards. Correctness never depends on the
//! runs being sorted; only the speed does.

/// Number of distinct values.
pub fn distinct_count(values: &[u64]) -> u64 {
    // Equal values share their top bit, so the two halves are counted apart, one per thread
    // (the machine this targets has two cores). Splitting keeps each run's order.
    let (mut low, mut high): (Vec<u64>, Vec<u64>) =
        values.iter().copied().partition(|&v| v >> 63 == 0);
    if values.len() < PARALLEL_MIN {
        return sorted_distinct(&mut low) + sorted_distinct(&mut high);
    }
    std::thread::scope(|scope| {
        let upper = scope.spawn(|| sorted_distinct(&mut high));
        sorted_distinct(&mut low)
            + upper
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Below this many values a second thread costs more than it saves.
const PARALLEL_MIN: usize = 1 << 16;

fn sorted_distinct(values: &mut [u64]) -> u64 {
    // Stable sort: detects the sorted per-day runs and merges them instead of re-sorting.
    values.sort();
    count_sorted_distinct(values)
}

fn count_sorted_distinct(sorted: &[u64]) -> u64 {
    match sorted.first() {
        None => 0,
        Some(_) => 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() as u64,
    }
}

/// Per-group counts over rows: the row count, the distinct `visitors`, the distinct
/// (visitor, session) pairs, and the first and latest row index of each group.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// The group key of each group, in order of first appearance.
    pub keys: Vec<u64>,
    pub first: Vec<u64>,
    /// The row with the greatest time (the later row on a tie; the last row without times).
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
/// `times` (one per row, or empty) picks each group's latest row.
///
/// Fast path for how compacted page views are stored: sorted by (visitor, session) within
/// each day. The input is cut into maximal runs where (visitor, session) does not decrease.
/// A visitor that occurs in one run only has all its rows contiguous there, so counting it
/// per group needs no set: "differs from the last visitor this group saw" is exact. Visitors
/// found in several runs (sessions across midnight, or an unsorted input) are rare; their rows
/// are set aside and counted exactly by sorting.
pub fn group_stats(keys: &[u64], visitors: &[u64], sessions: &[u32], times: &[i64]) -> GroupStats {
    let n = keys.len().min(visitors.len()).min(sessions.len());
    let times = if times.len() >= n {
        &times[..n]
    } else {
        &[][..]
    };
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
        match times.get(i) {
            Some(&t) if group.rows > 0 && t < times[group.last as usize] => {}
            _ => group.last = i as u64,
        }
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

/// Session metrics per group over session rows (see trail.stats.metrics): visitors are the
/// distinct ids of rows with sign >= 0; sessions, views and bounces are sums weighted by sign.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SessionMetrics {
    /// The group key of each group, in order of first appearance, and that first row.
    pub keys: Vec<u64>,
    pub first: Vec<u64>,
    pub visitors: Vec<u64>,
    pub sessions: Vec<i64>,
    pub views: Vec<i64>,
    pub bounces: Vec<i64>,
}

/// The per-row columns of session_metrics, all of one length.
#[derive(Clone, Copy)]
pub struct SessionRows<'a> {
    pub keys: &'a [u64],
    pub visitors: &'a [u64],
    pub sessions: &'a [u32],
    pub signs: &'a [i8],
    pub page_views: &'a [u32],
    pub bounces: &'a [bool],
}

/// One pass for the sums, group_stats over the rows with sign >= 0 for the visitors.
pub fn session_metrics(rows: &SessionRows) -> Result<SessionMetrics, String> {
    let n = rows.keys.len();
    let lens = [
        rows.visitors.len(),
        rows.sessions.len(),
        rows.signs.len(),
        rows.page_views.len(),
    ];
    if lens.iter().any(|&l| l != n) || rows.bounces.len() != n {
        return Err("session columns differ in length".into());
    }
    let mut index = FastMap::default();
    let mut out = SessionMetrics::default();
    let (mut keys, mut visitors, mut sessions) = (Vec::new(), Vec::new(), Vec::new());
    let mut last: Option<(u64, usize)> = None;
    for i in 0..n {
        let key = rows.keys[i];
        let g = match last {
            Some((k, g)) if k == key => g,
            _ => {
                let g = *index.entry(key).or_insert_with(|| {
                    out.keys.push(key);
                    out.first.push(i as u64);
                    out.sessions.push(0);
                    out.views.push(0);
                    out.bounces.push(0);
                    (out.keys.len() - 1) as u32
                }) as usize;
                last = Some((key, g));
                g
            }
        };
        let sign = i64::from(rows.signs[i]);
        out.sessions[g] += sign;
        out.views[g] += i64::from(rows.page_views[i]) * sign;
        out.bounces[g] += i64::from(rows.bounces[i]) * sign;
        if sign >= 0 {
            keys.push(key);
            visitors.push(rows.visitors[i]);
            sessions.push(rows.sessions[i]);
        }
    }
    let counted = group_stats(&keys, &visitors, &sessions, &[]);
    out.visitors = vec![0; out.keys.len()];
    for (key, v) in counted.keys.iter().zip(counted.visitors) {
        if let Some(&g) = index.get(key) {
            out.visitors[g as usize] = v;
        }
    }
    Ok(out)
}

/// Distinct visitors per group over per-day visitor lists (the page rollups of
/// trail.storage.rollups): exact, without reading page-view rows.
///
/// `ids` holds each day's sorted distinct visitor ids back to back: day `d` is
/// `ids[id_offsets[d]..id_offsets[d + 1]]`. List `j` (one path on one day) names `lens[j]`
/// visitors of day `days[j]` as ascending positions in that day's ids, delta-coded in `deltas`
/// (consumed in order; the first delta of a list is its first position), and belongs to group
/// `groups[j]` (the path). Returns the distinct ids of each of the `n_groups` groups.
///
/// An input that does not fit together (a position past its day, a group or day out of range,
/// too few deltas) is an error, so the caller can fall back to reading rows.
pub fn union_visitors(
    ids: &[u64],
    id_offsets: &[u64],
    deltas: &[u32],
    lists: &ListsOf,
    n_groups: usize,
) -> Result<Vec<u64>, String> {
    let ListsOf { lens, days, groups } = *lists;
    if lens.len() != days.len() || lens.len() != groups.len() {
        return Err("list columns differ in length".into());
    }
    // Bucket the ids by group (a counting sort), then count each bucket's distinct values.
    let mut starts = vec![0usize; n_groups + 1];
    for (j, &g) in groups.iter().enumerate() {
        let g = g as usize;
        if g >= n_groups {
            return Err(format!("group {g} out of range"));
        }
        starts[g + 1] += lens[j] as usize;
    }
    for g in 0..n_groups {
        starts[g + 1] += starts[g];
    }
    if starts[n_groups] > deltas.len() {
        return Err("fewer deltas than the lists name".into());
    }
    let mut cursor = starts.clone();
    let mut bucketed = vec![0u64; starts[n_groups]];
    let mut next = 0usize;
    for j in 0..lens.len() {
        let d = days[j] as usize;
        let (Some(&lo), Some(&hi)) = (id_offsets.get(d), id_offsets.get(d + 1)) else {
            return Err(format!("day {d} out of range"));
        };
        let (lo, hi) = (lo as usize, hi as usize);
        if lo > hi || hi > ids.len() {
            return Err(format!("day {d} has a bad id range"));
        }
        let day_ids = &ids[lo..hi];
        let g = groups[j] as usize;
        let mut pos = 0usize;
        for &delta in &deltas[next..next + lens[j] as usize] {
            pos += delta as usize;
            let Some(&id) = day_ids.get(pos) else {
                return Err(format!(
                    "position {pos} past the {} ids of day {d}",
                    day_ids.len()
                ));
            };
            bucketed[cursor[g]] = id;
            cursor[g] += 1;
        }
        next += lens[j] as usize;
    }
    // Two threads, each with about half of the ids (the machine this targets has two cores;
    // sorting is most of the time).
    let half = starts[n_groups] / 2;
    let mid = starts.partition_point(|&start| start < half).min(n_groups);
    let (low, high) = bucketed.split_at_mut(starts[mid]);
    let count = |buckets: &mut [u64], groups: std::ops::Range<usize>, base: usize| -> Vec<u64> {
        groups
            .map(|g| {
                let bucket = &mut buckets[starts[g] - base..starts[g + 1] - base];
                // Each list is an ascending run: the stable sort merges the runs.
                bucket.sort();
                count_sorted_distinct(bucket)
            })
            .collect()
    };
    let (mut out, rest) = std::thread::scope(|scope| {
        let upper = scope.spawn(|| count(high, mid..n_groups, starts[mid]));
        let lower = count(low, 0..mid, 0);
        (lower, upper.join())
    });
    out.extend(rest.map_err(|_| "a counting thread panicked".to_string())?);
    Ok(out)
}

/// The per-list columns of union_visitors.
#[derive(Clone, Copy)]
pub struct ListsOf<'a> {
    pub lens: &'a [u32],
    pub days: &'a [u32],
    pub groups: &'a [u32],
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
    fn distinct_count_of_many_values_uses_both_halves() {
        let mut x: u64 = 0x853c49e6748fea9b;
        let values: Vec<u64> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 50_000) | (x & (1 << 63)) // both halves, many repeats
            })
            .collect();
        let want = values
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len() as u64;
        assert_eq!(distinct_count(&values), want);
    }

    #[test]
    fn session_metrics_table() {
        // group 7: a live session (+1), a cancelled state (+1/-1) and a presence row (0) of
        // visitor 2; group 9: only a cancel row (visitor 3 counts nowhere).
        let rows = SessionRows {
            keys: &[7, 7, 7, 7, 9],
            visitors: &[1, 2, 2, 2, 3],
            sessions: &[1, 1, 1, 1, 1],
            signs: &[1, 1, -1, 0, -1],
            page_views: &[3, 2, 2, 1, 4],
            bounces: &[false, true, true, true, true],
        };
        let got = session_metrics(&rows).unwrap();
        assert_eq!(got.keys, vec![7, 9]);
        assert_eq!(got.first, vec![0, 4]);
        assert_eq!(got.visitors, vec![2, 0]);
        assert_eq!(got.sessions, vec![1, -1]);
        assert_eq!(got.views, vec![3, -4]);
        assert_eq!(got.bounces, vec![0, -1]);
        let short = SessionRows {
            bounces: &[true],
            ..rows
        };
        assert!(session_metrics(&short).is_err());
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
            let got = group_stats(k, v, s, &[]);
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
        let got = group_stats(&keys, &visitors, &sessions, &[]);
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

    #[test]
    fn group_stats_latest_row_by_time() {
        // group 1: times 5, 9, 9, 2 -> the later of the two 9s (row 2); group 2: one row.
        let got = group_stats(
            &[1, 1, 1, 2, 1],
            &[1, 2, 3, 4, 5],
            &[1; 5],
            &[5, 9, 9, 1, 2],
        );
        assert_eq!(got.last, vec![2, 3]);
        // too few times: ignored, the last row wins
        assert_eq!(group_stats(&[1, 1], &[1, 2], &[1, 1], &[7]).last, vec![1]);
    }

    #[test]
    fn union_visitors_table() {
        // day 0 ids [10, 20, 30], day 1 ids [20, 40]
        let ids = [10, 20, 30, 20, 40];
        let offsets = [0, 3, 5];
        // group 0: day 0 positions {0, 2} (deltas 0, 2) and day 1 positions {0, 1} (0, 1)
        //   -> ids {10, 30} u {20, 40} = 4 distinct
        // group 1: day 0 position {1} (id 20) and day 1 position {0} (id 20) -> 1
        // group 2: no lists -> 0
        let deltas = [0, 2, 0, 1, 1, 0];
        let lists = ListsOf {
            lens: &[2, 2, 1, 1],
            days: &[0, 1, 0, 1],
            groups: &[0, 0, 1, 1],
        };
        assert_eq!(
            union_visitors(&ids, &offsets, &deltas, &lists, 3),
            Ok(vec![4, 1, 0])
        );
        let bad = ListsOf {
            lens: &[1],
            days: &[1],
            groups: &[0],
        };
        // position 5 is past day 1's two ids; day 7 and group 9 do not exist
        assert!(union_visitors(&ids, &offsets, &[5], &bad, 1).is_err());
        let no_day = ListsOf { days: &[7], ..bad };
        assert!(union_visitors(&ids, &offsets, &[0], &no_day, 1).is_err());
        let no_group = ListsOf {
            groups: &[9],
            ..bad
        };
        assert!(union_visitors(&ids, &offsets, &[0], &no_group, 1).is_err());
        assert!(union_visitors(&ids, &offsets, &[], &bad, 1).is_err()); // too few deltas
    }

    #[test]
    fn union_visitors_matches_hash_sets() {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // 4 days of ids drawn from 0..500, 6 groups, each day lists a random subset per group.
        let (mut ids, mut offsets) = (Vec::new(), vec![0u64]);
        let (mut deltas, mut lens, mut days, mut groups) = (vec![], vec![], vec![], vec![]);
        let mut want: Vec<std::collections::HashSet<u64>> = vec![Default::default(); 6];
        for d in 0..4u32 {
            let mut day: Vec<u64> = (0..200).map(|_| rnd() % 500).collect();
            day.sort();
            day.dedup();
            for g in 0..6u32 {
                let picked: Vec<usize> = (0..day.len()).filter(|_| rnd() % 3 == 0).collect();
                let mut prev = 0usize;
                for &p in &picked {
                    deltas.push((p - prev) as u32);
                    prev = p;
                    want[g as usize].insert(day[p]);
                }
                lens.push(picked.len() as u32);
                days.push(d);
                groups.push(g);
            }
            ids.extend(&day);
            offsets.push(ids.len() as u64);
        }
        let lists = ListsOf {
            lens: &lens,
            days: &days,
            groups: &groups,
        };
        let got = union_visitors(&ids, &offsets, &deltas, &lists, 6).unwrap();
        let want: Vec<u64> = want.iter().map(|s| s.len() as u64).collect();
        assert_eq!(got, want);
    }
}
