//! Counting kernels for the statistics layer: exact distinct counts over u64 ids.
//!
//! Polars counts distinct u64 values with a hash table, which falls out of cache at a few
//! million random ids (visitor ids are SipHash outputs). The inputs here are concatenations of
//! per-day runs that are already sorted, so a run-adaptive stable sort merges them in
//! O(n log runs) and distinct values are adjacent afterwards. Correctness never depends on the
//! runs being sorted; only the speed does.

/// Number of distinct values.
pub fn distinct_count(values: &[u64]) -> u64 {
    // Equal values fall in the same half, so the two halves are counted apart, one per thread
    // (the machine this targets has two cores). Splitting keeps each run's order.
    let (mut low, mut high): (Vec<u64>, Vec<u64>) =
        values.iter().copied().partition(|&v| half_of(v) == 0);
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

/// Which of two halves an id goes to: the top bit after a multiplication by an odd constant,
/// so ids from any range (not only uniform hashes) split about evenly.
fn half_of(v: u64) -> u64 {
    v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 63
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
    /// A row with the greatest time: the first such row in scan order (the last row without
    /// times). Which of several rows sharing that time is "the latest" is the caller's rule
    /// (e.g. the greatest title): `tie_groups`/`tie_rows` name them all.
    pub last: Vec<u64>,
    pub rows: Vec<u64>,
    pub visitors: Vec<u64>,
    pub sessions: Vec<u64>,
    /// (group index, row) of every row that shares its group's greatest time with another
    /// row, `last` included, ordered by group then row. Empty without times.
    pub tie_groups: Vec<u64>,
    pub tie_rows: Vec<u64>,
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
/// `times` (one per row, or empty) picks each group's latest row and lists the rows tied for
/// it, so the result does not depend on the order of rows that share a time.
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
    let rows = Rows {
        keys: &keys[..n],
        visitors: &visitors[..n],
        sessions: &sessions[..n],
        times,
        sums: None,
    };
    let (groups, ties) = grouped(&rows);
    let mut out = collect_groups(groups);
    (out.tie_groups, out.tie_rows) = latest_ties(&out, &ties, rows.keys, times);
    out
}

/// The groups of `rows`, in first-appearance order, and the candidate ties for their latest
/// row (see Counted::ties).
fn grouped(rows: &Rows) -> (Vec<Group>, Vec<u64>) {
    let n = rows.keys.len();
    let multi = multi_run_visitors(rows.visitors, rows.sessions);
    if n < PARALLEL_MIN {
        let c = count_groups(rows, 0..n, &multi);
        return (count_aside(c.groups, c.aside), c.ties);
    }
    // Two threads over two contiguous halves, cut between two visitors: a visitor outside
    // `multi` has all its rows in one run, so in one half, and the halves count disjoint
    // visitors; the rows of visitors in `multi` are set aside by both and counted once.
    let mut cut = n / 2;
    while cut < n && rows.visitors[cut] == rows.visitors[cut - 1] {
        cut += 1;
    }
    let (mut low, high) = std::thread::scope(|scope| {
        let upper = scope.spawn(|| count_groups(rows, cut..n, &multi));
        let low = count_groups(rows, 0..cut, &multi);
        let high = upper
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (low, high)
    });
    low.aside.extend(high.aside);
    low.ties.extend(high.ties);
    let groups = merge_groups(low.groups, high.groups, rows.times, &mut low.ties);
    (count_aside(groups, low.aside), low.ties)
}

/// The rows of each group that share its greatest time with another row (`last` included),
/// as (group index, row) columns ordered by group then row. `candidates` are rows that had
/// their group's greatest time so far when counted (a superset of the ties but `last`).
fn latest_ties(
    out: &GroupStats,
    candidates: &[u64],
    keys: &[u64],
    times: &[i64],
) -> (Vec<u64>, Vec<u64>) {
    if candidates.is_empty() || times.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let index: FastMap = out
        .keys
        .iter()
        .enumerate()
        .map(|(g, &k)| (k, g as u32))
        .collect();
    let mut pairs: Vec<(u64, u64)> = Vec::new();
    let mut tied = vec![false; out.keys.len()];
    for &r in candidates {
        let g = index[&keys[r as usize]] as usize;
        let last = out.last[g];
        if r != last && times[r as usize] == times[last as usize] {
            pairs.push((g as u64, r));
            tied[g] = true;
        }
    }
    for (g, _) in tied.iter().enumerate().filter(|(_, &t)| t) {
        pairs.push((g as u64, out.last[g]));
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs.into_iter().unzip()
}

#[derive(Clone, Copy)]
struct Rows<'a> {
    keys: &'a [u64],
    visitors: &'a [u64],
    sessions: &'a [u32],
    times: &'a [i64],
    /// Session rows: (sign, page_views, is_bounce) to add up weighted by sign; rows with a
    /// negative sign then count in the sums only.
    sums: Option<(&'a [i8], &'a [u32], &'a [u8])>,
}

/// Rows of `multi` visitors, as (group key, visitor, session), counted by count_aside.
type Aside = Vec<(u64, u64, u32)>;

/// What count_groups found over a range of rows.
struct Counted {
    /// In first-appearance order.
    groups: Vec<Group>,
    /// The rows of visitors in `multi`, counted by count_aside.
    aside: Aside,
    /// Rows whose time equalled their group's greatest time so far (that row being `last`):
    /// the candidates latest_ties checks against each group's final `last`.
    ties: Vec<u64>,
}

/// group_stats over rows `range`, groups in first-appearance order; the rows of visitors in
/// `multi` are returned apart instead of counted.
fn count_groups(rows: &Rows, range: std::ops::Range<usize>, multi: &FastSet) -> Counted {
    let Rows {
        keys,
        visitors,
        sessions,
        times,
        sums,
    } = *rows;
    let mut index = FastMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut aside: Aside = Vec::new();
    let mut ties: Vec<u64> = Vec::new();
    let mut current: Option<(u64, bool)> = None; // (visitor, is it in `multi`)
    let mut last_key: Option<(u64, usize)> = None;
    for i in range {
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
        if let Some((signs, page_views, bounces)) = sums {
            let group = &mut groups[g];
            let sign = i64::from(signs[i]);
            group.sign_sum += sign;
            group.views += i64::from(page_views[i]) * sign;
            group.bounces += i64::from(bounces[i] != 0) * sign;
            if sign < 0 {
                continue;
            }
        }
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
            Some(&t) if group.rows > 0 => {
                let latest = times[group.last as usize];
                if t > latest {
                    group.last = i as u64;
                } else if t == latest {
                    ties.push(i as u64);
                }
            }
            _ => group.last = i as u64,
        }
        group.rows += 1;
        if in_multi {
            aside.push((keys[i], v, s));
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
    Counted {
        groups,
        aside,
        ties,
    }
}

/// Adds the set-aside rows' distinct visitors and sessions to their groups.
fn count_aside(mut groups: Vec<Group>, mut aside: Aside) -> Vec<Group> {
    if aside.is_empty() {
        return groups;
    }
    let index: FastMap = groups
        .iter()
        .enumerate()
        .map(|(g, group)| (group.key, g as u32))
        .collect();
    aside.sort_unstable();
    for (i, t) in aside.iter().enumerate() {
        let prev = if i == 0 { None } else { Some(aside[i - 1]) };
        let group = &mut groups[index[&t.0] as usize];
        if prev.is_none_or(|p| (p.0, p.1) != (t.0, t.1)) {
            group.visitors += 1;
        }
        if prev != Some(*t) {
            group.sessions += 1;
        }
    }
    groups
}

/// The groups of two halves as one list in first-appearance order: counts add up, the first
/// row is the earlier one, the latest row the one with the greater time (the earlier on a tie,
/// the other one then joining `ties`).
fn merge_groups(
    low: Vec<Group>,
    high: Vec<Group>,
    times: &[i64],
    ties: &mut Vec<u64>,
) -> Vec<Group> {
    let mut index: FastMap = FastMap::default();
    let mut groups = low;
    for (g, group) in groups.iter().enumerate() {
        index.insert(group.key, g as u32);
    }
    for h in high {
        let Some(&g) = index.get(&h.key) else {
            groups.push(h);
            continue;
        };
        let group = &mut groups[g as usize];
        group.first = group.first.min(h.first);
        match (times.get(h.last as usize), times.get(group.last as usize)) {
            (Some(th), Some(tg)) if th > tg => group.last = h.last,
            (Some(th), Some(tg)) if th == tg => ties.push(h.last),
            (Some(_), Some(_)) => {}
            _ => group.last = group.last.max(h.last),
        }
        group.rows += h.rows;
        group.visitors += h.visitors;
        group.sessions += h.sessions;
        group.sign_sum += h.sign_sum;
        group.views += h.views;
        group.bounces += h.bounces;
    }
    groups.sort_unstable_by_key(|g| g.first);
    groups
}

fn collect_groups(groups: Vec<Group>) -> GroupStats {
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
    // Sums weighted by sign (session rows only).
    sign_sum: i64,
    views: i64,
    bounces: i64,
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
            sign_sum: 0,
            views: 0,
            bounces: 0,
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
    /// is_bounce as 0 or 1 (any non-zero byte is a bounce).
    pub bounces: &'a [u8],
}

/// One pass (two threads) for the sums and the visitors of the rows with sign >= 0.
pub fn session_metrics(rows: &SessionRows) -> Result<SessionMetrics, String> {
    let n = rows.keys.len();
    let lens = [
        rows.visitors.len(),
        rows.sessions.len(),
        rows.signs.len(),
        rows.page_views.len(),
        rows.bounces.len(),
    ];
    if lens.iter().any(|&l| l != n) {
        return Err("session columns differ in length".into());
    }
    let (groups, _) = grouped(&Rows {
        keys: rows.keys,
        visitors: rows.visitors,
        sessions: rows.sessions,
        times: &[],
        sums: Some((rows.signs, rows.page_views, rows.bounces)),
    });
    let mut out = SessionMetrics::default();
    for g in groups {
        out.keys.push(g.key);
        out.first.push(g.first);
        out.visitors.push(g.visitors);
        out.sessions.push(g.sign_sum);
        out.views.push(g.views);
        out.bounces.push(g.bounces);
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

/// The time spent on each page view: the duration of the next view of the same (visitor,
/// session) in time order (the duration a view carries is the time since the session's
/// previous activity), 0 for a session's last view. Views with equal times keep their input
/// order, so the answer is that of a stable sort by (visitor, session, time) pairing
/// neighbours. Rows past the shortest input are ignored.
///
/// Without sorting the views for how compacted parts are stored (sorted by visitor, session,
/// time within a day): the input is cut into blocks, maximal stretches of one session's rows.
/// A session with one block whose times do not decrease pairs neighbours where they are. The
/// rows of the rest (sessions across midnight, fresh segments written as hits arrive) are set
/// aside and paired by sorting them.
pub fn times_on_page(
    visitors: &[u64],
    sessions: &[u32],
    times: &[i64],
    durations: &[u32],
) -> Vec<u32> {
    let n = visitors
        .len()
        .min(sessions.len())
        .min(times.len())
        .min(durations.len());
    let key = |i: usize| (visitors[i], sessions[i]);
    let blocks: Vec<usize> = (0..n).filter(|&i| i == 0 || key(i) != key(i - 1)).collect();
    let keys: Vec<(u64, u32)> = blocks.iter().map(|&b| key(b)).collect();
    let split = in_parts(keys.len(), |part, parts| repeated(&keys, part, parts));
    let mut out = vec![0u32; n];
    // Pairs within the blocks that need no sorting, in two halves of the rows cut between
    // two blocks; the rows of the other blocks are set aside.
    let pair_blocks = |range: std::ops::Range<usize>, out: &mut [u32], base: usize| {
        let mut aside = Vec::new();
        for j in range {
            let (start, end) = (blocks[j], blocks.get(j + 1).copied().unwrap_or(n));
            let ordered = times[start..end].windows(2).all(|w| w[0] <= w[1]);
            // A hash collision only sends a session to the exact path below.
            if !ordered || split.contains(&pair_hash(keys[j])) {
                aside.extend(start..end);
                continue;
            }
            out[start - base..end - 1 - base].copy_from_slice(&durations[start + 1..end]);
        }
        aside
    };
    let mut aside = if blocks.len() < 2 || n < PARALLEL_MIN {
        pair_blocks(0..blocks.len(), &mut out, 0)
    } else {
        let middle = blocks.len() / 2;
        let (low, high) = out.split_at_mut(blocks[middle]);
        std::thread::scope(|scope| {
            let upper = scope.spawn(|| pair_blocks(middle..blocks.len(), high, blocks[middle]));
            let mut aside = pair_blocks(0..middle, low, 0);
            aside.extend(
                upper
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            );
            aside
        })
    };
    aside.sort_unstable_by_key(|&i| (visitors[i], sessions[i], times[i], i));
    for (j, &i) in aside.iter().enumerate() {
        if let Some(&next) = aside.get(j + 1) {
            if key(next) == key(i) {
                out[i] = durations[next];
            }
        }
    }
    out
}

/// `work(part, parts)` for each part of `len` items, one thread a part (one part when few),
/// the sets it returns joined.
fn in_parts(len: usize, work: impl Fn(u64, u64) -> FastSet + Sync) -> FastSet {
    if len < PARALLEL_MIN {
        return work(0, 1);
    }
    std::thread::scope(|scope| {
        let upper = scope.spawn(|| work(1, 2));
        let mut out = work(0, 2);
        out.extend(
            upper
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        );
        out
    })
}

/// The pair_hash of every key that occurs more than once, among the keys of part `part` of
/// `parts` (a power of two; parts split the keys by hash). A bitmap of ~16 bits per key finds
/// the keys whose bit was already set (the repeats, and ~6 % others whose bits collide): only
/// the keys among those are sorted to tell them apart, not all of them.
fn repeated(keys: &[(u64, u32)], part: u64, parts: u64) -> FastSet {
    let spread = |k: (u64, u32)| pair_hash(k).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    let mine = |m: u64| m & (parts - 1) == part;
    let bits = (keys.len() * 16 / parts as usize)
        .next_power_of_two()
        .max(64);
    let shift = 64 - bits.trailing_zeros();
    let mut seen = vec![0u64; bits / 64];
    let mut maybe = FastSet::default();
    for &k in keys {
        let m = spread(k);
        if !mine(m) {
            continue;
        }
        let bit = (m >> shift) as usize;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if seen[word] & mask != 0 {
            maybe.insert(pair_hash(k));
        } else {
            seen[word] |= mask;
        }
    }
    if maybe.is_empty() {
        return maybe;
    }
    let mut candidates: Vec<(u64, u32)> = keys
        .iter()
        .copied()
        .filter(|&k| maybe.contains(&pair_hash(k)))
        .collect();
    candidates.sort_unstable();
    candidates
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| pair_hash(w[0]))
        .collect()
}

/// times_on_page summed per bucket: a view's time goes to the bucket of the view's own time,
/// the last of `breaks` (ascending bucket starts, ms) at or before it; views before the first
/// break are left out. Returns (total seconds, views with a non-zero time) per bucket.
pub fn time_on_page_by_bucket(
    visitors: &[u64],
    sessions: &[u32],
    times: &[i64],
    durations: &[u32],
    breaks: &[i64],
) -> (Vec<u64>, Vec<u64>) {
    let spent = times_on_page(visitors, sessions, times, durations);
    let (mut totals, mut counts) = (vec![0u64; breaks.len()], vec![0u64; breaks.len()]);
    for (i, &seconds) in spent.iter().enumerate() {
        if seconds == 0 {
            continue;
        }
        let after = breaks.partition_point(|&b| b <= times[i]);
        if after > 0 {
            totals[after - 1] += u64::from(seconds);
            counts[after - 1] += 1;
        }
    }
    (totals, counts)
}

fn pair_hash((visitor, session): (u64, u32)) -> u64 {
    visitor ^ u64::from(session).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stable sort by (visitor, session, time), neighbours paired: the definition.
    fn times_on_page_by_sorting(v: &[u64], s: &[u32], t: &[i64], d: &[u32]) -> Vec<u32> {
        let mut rows: Vec<usize> = (0..v.len()).collect();
        rows.sort_by_key(|&i| (v[i], s[i], t[i]));
        let mut out = vec![0; v.len()];
        for w in rows.windows(2) {
            if (v[w[0]], s[w[0]]) == (v[w[1]], s[w[1]]) {
                out[w[0]] = d[w[1]];
            }
        }
        out
    }

    #[test]
    fn times_on_page_table() {
        // (visitors, sessions, times, durations) -> time on page per row
        type Case = (
            &'static [u64],
            &'static [u32],
            &'static [i64],
            &'static [u32],
            &'static [u32],
        );
        let cases: &[Case] = &[
            (&[], &[], &[], &[], &[]),
            (&[1], &[1], &[5], &[0], &[0]),
            // one session in order, then another
            (
                &[1, 1, 1, 2],
                &[1, 1, 1, 1],
                &[0, 10, 30, 0],
                &[0, 10, 20, 0],
                &[10, 20, 0, 0],
            ),
            // two sessions of one visitor interleaved with another visitor
            (
                &[1, 2, 1, 2, 1],
                &[1, 1, 2, 1, 1],
                &[0, 0, 5, 7, 9],
                &[0, 0, 0, 7, 9],
                &[9, 7, 0, 0, 0],
            ),
            // a view older than the one before it: paired by time
            (
                &[1, 1, 1],
                &[1, 1, 1],
                &[20, 0, 10],
                &[10, 0, 10],
                &[0, 10, 10],
            ),
            // equal times keep the input order
            (&[1, 1, 1], &[1, 1, 1], &[0, 5, 5], &[0, 3, 4], &[3, 4, 0]),
        ];
        for &(v, s, t, d, want) in cases {
            assert_eq!(times_on_page(v, s, t, d), want, "{v:?} {s:?} {t:?} {d:?}");
        }
    }

    #[test]
    fn time_on_page_by_bucket_table() {
        // one session: views at 0, 10, 30 (next durations 10, 20); another at 25, 40 (15)
        let v = [1, 1, 2, 1, 2];
        let s = [1, 1, 1, 1, 1];
        let t = [0, 10, 25, 30, 40];
        let d = [0, 10, 0, 20, 15];
        // buckets [5, 20), [20, ...): the view at 0 is before the first break
        assert_eq!(
            time_on_page_by_bucket(&v, &s, &t, &d, &[5, 20]),
            (vec![20, 15], vec![1, 1])
        );
        assert_eq!(
            time_on_page_by_bucket(&v, &s, &t, &d, &[0]),
            (vec![45], vec![3])
        );
        assert_eq!(
            time_on_page_by_bucket(&v, &s, &t, &d, &[]),
            (vec![], vec![])
        );
    }

    #[test]
    fn repeated_finds_exactly_the_repeats() {
        let keys: Vec<(u64, u32)> = (0..100_000u64)
            .map(|i| (i * 2_654_435_761, (i % 7) as u32))
            .collect();
        let mut with_repeats = keys.clone();
        with_repeats.extend([keys[5], keys[99_999], keys[5]]);
        let want: FastSet = [pair_hash(keys[5]), pair_hash(keys[99_999])]
            .into_iter()
            .collect();
        for parts in [1, 2, 4] {
            let found: FastSet = (0..parts)
                .flat_map(|part| repeated(&with_repeats, part, parts))
                .collect();
            assert_eq!(found, want, "{parts} parts");
            assert!((0..parts).all(|part| repeated(&keys, part, parts).is_empty()));
        }
    }

    #[test]
    fn times_on_page_many_rows_equal_sorting() {
        let n = PARALLEL_MIN * 2 + 17;
        let v: Vec<u64> = (0..n).map(|i| (i as u64 * 7919) % 5003).collect();
        let s: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let t: Vec<i64> = (0..n).map(|i| (i as i64 * 31) % 1000).collect();
        let d: Vec<u32> = (0..n).map(|i| (i % 97) as u32).collect();
        assert_eq!(
            times_on_page(&v, &s, &t, &d),
            times_on_page_by_sorting(&v, &s, &t, &d)
        );
        let mut rows: Vec<_> = (0..n).map(|i| (v[i], s[i], t[i], d[i])).collect();
        rows.sort();
        let (v, s): (Vec<u64>, Vec<u32>) = rows.iter().map(|r| (r.0, r.1)).unzip();
        let (t, d): (Vec<i64>, Vec<u32>) = rows.iter().map(|r| (r.2, r.3)).unzip();
        assert_eq!(
            times_on_page(&v, &s, &t, &d),
            times_on_page_by_sorting(&v, &s, &t, &d)
        );
    }

    #[test]
    fn times_on_page_equals_sorting_for_random_rows() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for round in 0..300 {
            let n = (next(60) + 1) as usize;
            let shuffle = round % 3 == 0;
            let mut v = Vec::new();
            let (mut s, mut t, mut d) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..n {
                v.push(next(4));
                s.push(next(2) as u32);
                // mostly increasing times with ties; some rows out of order
                t.push(if shuffle {
                    next(20) as i64
                } else {
                    (i as i64) / 2
                });
                d.push(next(100) as u32);
            }
            if round % 3 == 1 {
                // as compacted parts store them: sorted by (visitor, session, time)
                let mut rows: Vec<_> = (0..n).map(|i| (v[i], s[i], t[i], d[i])).collect();
                rows.sort();
                v = rows.iter().map(|r| r.0).collect();
                s = rows.iter().map(|r| r.1).collect();
                t = rows.iter().map(|r| r.2).collect();
                d = rows.iter().map(|r| r.3).collect();
            }
            assert_eq!(
                times_on_page(&v, &s, &t, &d),
                times_on_page_by_sorting(&v, &s, &t, &d)
            );
        }
    }

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

    /// A xorshift generator: deterministic pseudo-random u64s for the table-free tests.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn two_threads_count_what_one_thread_counts() {
        // Sorted per-"day" runs of (visitor, session) over the two halves the rows are cut
        // into, some visitors in several runs, few keys, and times with many ties.
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        let (mut keys, mut visitors, mut sessions, mut times) = (vec![], vec![], vec![], vec![]);
        for _day in 0..6 {
            let mut run: Vec<(u64, u32)> = (0..30_000)
                .map(|_| {
                    let v = next() % 4_000; // shared across runs
                    (
                        v.wrapping_mul(0x8000_0000_0000_0001 | (v << 40)),
                        (next() % 3) as u32,
                    )
                })
                .collect();
            run.sort();
            for (v, s) in run {
                keys.push(next() % 7);
                visitors.push(v);
                sessions.push(s);
                times.push((next() % 50) as i64);
            }
        }
        assert!(keys.len() >= PARALLEL_MIN);
        assert!(!multi_run_visitors(&visitors, &sessions).is_empty()); // rows set aside too
        for t in [&times[..], &[][..]] {
            let rows = Rows {
                keys: &keys,
                visitors: &visitors,
                sessions: &sessions,
                times: t,
                sums: None,
            };
            let multi = multi_run_visitors(&visitors, &sessions);
            let c = count_groups(&rows, 0..keys.len(), &multi);
            let mut one = collect_groups(count_aside(c.groups, c.aside));
            (one.tie_groups, one.tie_rows) = latest_ties(&one, &c.ties, &keys, t);
            assert_eq!(group_stats(&keys, &visitors, &sessions, t), one);
            assert_eq!(one.keys.len(), 7);
            assert_eq!(one.tie_rows.is_empty(), t.is_empty());
        }
        // The latest row and its ties, against a scan: the first row of the greatest time.
        let got = group_stats(&keys, &visitors, &sessions, &times);
        for (g, key) in got.keys.iter().enumerate() {
            let rows: Vec<u64> = (0..keys.len() as u64)
                .filter(|&i| keys[i as usize] == *key)
                .collect();
            let top = rows.iter().map(|&i| times[i as usize]).max().unwrap();
            let tied: Vec<u64> = rows
                .into_iter()
                .filter(|&i| times[i as usize] == top)
                .collect();
            assert_eq!(got.last[g], tied[0]);
            let listed: Vec<u64> = (0..got.tie_rows.len())
                .filter(|&j| got.tie_groups[j] == g as u64)
                .map(|j| got.tie_rows[j])
                .collect();
            assert_eq!(listed, if tied.len() > 1 { tied } else { vec![] });
        }
        type Sets = (
            std::collections::HashSet<u64>,
            std::collections::HashSet<(u64, u32)>,
        );
        let mut truth: std::collections::HashMap<u64, Sets> = Default::default();
        for i in 0..keys.len() {
            let e = truth.entry(keys[i]).or_default();
            e.0.insert(visitors[i]);
            e.1.insert((visitors[i], sessions[i]));
        }
        let got = group_stats(&keys, &visitors, &sessions, &times);
        for (g, key) in got.keys.iter().enumerate() {
            assert_eq!(got.visitors[g], truth[key].0.len() as u64);
            assert_eq!(got.sessions[g], truth[key].1.len() as u64);
        }
        // Session metrics through the same two-thread pass: sums by sign, visitors of sign >= 0.
        let signs: Vec<i8> = (0..keys.len()).map(|i| [1, 1, 0, -1][i % 4]).collect();
        let page_views: Vec<u32> = (0..keys.len()).map(|i| (i % 5) as u32).collect();
        let bounces: Vec<u8> = (0..keys.len())
            .map(|i| u8::from(i.is_multiple_of(3)))
            .collect();
        let mut want: std::collections::HashMap<u64, (std::collections::HashSet<u64>, [i64; 3])> =
            Default::default();
        for i in 0..keys.len() {
            let e = want.entry(keys[i]).or_default();
            let sign = i64::from(signs[i]);
            e.1[0] += sign;
            e.1[1] += i64::from(page_views[i]) * sign;
            e.1[2] += i64::from(bounces[i]) * sign;
            if sign >= 0 {
                e.0.insert(visitors[i]);
            }
        }
        let rows = SessionRows {
            keys: &keys,
            visitors: &visitors,
            sessions: &sessions,
            signs: &signs,
            page_views: &page_views,
            bounces: &bounces,
        };
        let got = session_metrics(&rows).unwrap();
        assert_eq!(got.keys.len(), want.len());
        for (g, key) in got.keys.iter().enumerate() {
            let (v, sums) = &want[key];
            assert_eq!(got.visitors[g], v.len() as u64);
            assert_eq!([got.sessions[g], got.views[g], got.bounces[g]], *sums);
        }
    }

    #[test]
    fn matches_a_hash_set_on_pseudo_random_runs() {
        let mut next = xorshift(0x2545F4914F6CDD1D);
        let mut runs = Vec::new();
        for _ in 0..5 {
            let mut run: Vec<u64> = (0..1000).map(|_| next() % 3000).collect();
            run.sort();
            runs.extend(run);
        }
        let want = runs.iter().collect::<std::collections::HashSet<_>>().len() as u64;
        assert_eq!(distinct_count(&runs), want);
    }

    #[test]
    fn distinct_count_of_many_values_uses_both_halves() {
        let mut next = xorshift(0x853c49e6748fea9b);
        let values: Vec<u64> = (0..200_000)
            .map(|_| {
                let x = next();
                (x % 50_000) | (x & (1 << 63)) // many repeats, spread over both halves
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
            bounces: &[0, 1, 1, 1, 1],
        };
        let got = session_metrics(&rows).unwrap();
        assert_eq!(got.keys, vec![7, 9]);
        assert_eq!(got.first, vec![0, 4]);
        assert_eq!(got.visitors, vec![2, 0]);
        assert_eq!(got.sessions, vec![1, -1]);
        assert_eq!(got.views, vec![3, -4]);
        assert_eq!(got.bounces, vec![0, -1]);
        let short = SessionRows {
            bounces: &[1],
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
                ..GroupStats::default()
            };
            assert_eq!(got, want, "{k:?} {v:?} {s:?}");
        }
    }

    #[test]
    fn group_stats_matches_hash_sets_on_many_groups() {
        let mut rnd = xorshift(88172645463325252);
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
        // group 1: times 5, 9, 9, 2 -> the first of the two 9s (row 1), both listed as ties;
        // group 2: one row, no tie.
        let got = group_stats(
            &[1, 1, 1, 2, 1],
            &[1, 2, 3, 4, 5],
            &[1; 5],
            &[5, 9, 9, 1, 2],
        );
        assert_eq!(got.last, vec![1, 3]);
        assert_eq!((got.tie_groups, got.tie_rows), (vec![0, 0], vec![1, 2]));
        // A later time ends a tie: 4, 4, 6 -> row 2 alone.
        let got = group_stats(&[1, 1, 1], &[1, 2, 3], &[1; 3], &[4, 4, 6]);
        assert_eq!(got.last, vec![2]);
        assert!(got.tie_rows.is_empty());
        // too few times: ignored, the last row wins, no ties
        let got = group_stats(&[1, 1], &[1, 2], &[1, 1], &[7]);
        assert_eq!(got.last, vec![1]);
        assert!(got.tie_rows.is_empty());
    }

    #[test]
    fn group_stats_ties_do_not_depend_on_row_order() {
        // Two threads' worth of rows where every group ends on a tie; the same rows reversed
        // name the same tied rows (by their original index), so a caller's tie rule (the
        // greatest title) picks the same row whatever the order.
        let mut next = xorshift(0x1234_5678_9ABC_DEF1);
        let n = PARALLEL_MIN * 2 + 17;
        let keys: Vec<u64> = (0..n).map(|_| next() % 11).collect();
        let visitors: Vec<u64> = (0..n as u64).collect();
        let sessions = vec![1u32; n];
        let times: Vec<i64> = (0..n).map(|_| (next() % 1000) as i64).collect();
        let tied = |keys: &[u64], times: &[i64], index: &dyn Fn(u64) -> u64| {
            let got = group_stats(keys, &visitors, &sessions, times);
            let mut out: Vec<(u64, u64)> = got
                .tie_groups
                .iter()
                .zip(&got.tie_rows)
                .map(|(&g, &r)| (got.keys[g as usize], index(r)))
                .collect();
            out.sort_unstable();
            out
        };
        let forward = tied(&keys, &times, &|r| r);
        let (rk, rt): (Vec<u64>, Vec<i64>) = keys
            .iter()
            .copied()
            .zip(times.iter().copied())
            .rev()
            .unzip();
        let backward = tied(&rk, &rt, &|r| (n - 1) as u64 - r);
        assert_eq!(forward, backward);
        let groups: std::collections::HashSet<u64> = forward.iter().map(|p| p.0).collect();
        assert_eq!(groups.len(), 11); // ~n/11/1000 rows per time: every group ends on a tie
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
        let mut rnd = xorshift(0x9E3779B97F4A7C15);
        // 4 days of ids drawn from 0..500, 6 groups, each day lists a random subset per group.
        let (mut ids, mut offsets) = (Vec::new(), vec![0u64]);
        let (mut deltas, mut lens, mut days, mut groups) = (vec![], vec![], vec![], vec![]);
        let mut want: Vec<std::collections::HashSet<u64>> = vec![Default::default(); 6];
        for d in 0..4u32 {
            let mut day: Vec<u64> = (0..200).map(|_| rnd() % 500).collect();
            day.sort();
            day.dedup();
            for g in 0..6u32 {
                let picked: Vec<usize> =
                    (0..day.len()).filter(|_| rnd().is_multiple_of(3)).collect();
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
