//! Counting kernels for the statistics layer: exact distinct counts over u64 ids.
//!
//! Polars counts distinct u64 values with a hash table, which falls out of cache at a few
//! million random ids (visitor ids are SipHash outputs). The inputs here are concatenations of
//! per-day runs that are already sorted, so a run-adaptive stable sort merges them in
//! O(n log runs) and distinct values are adjacent afterwards. Correctness never depends on the
//! runs being sorted; only the speed does.

use std::ops::Range;

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
    /// The distinct (visitor, session) pairs of the `flagged` set (group_counts; empty from
    /// group_stats).
    pub flagged: Vec<u64>,
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
        part: None,
        visitors: &visitors[..n],
        sessions: &sessions[..n],
        times,
        sums: None,
        flagged: None,
    };
    let (groups, ties) = grouped(&rows);
    let mut out = collect_groups(groups);
    (out.tie_groups, out.tie_rows) = latest_ties(&out, &ties, rows.keys, times);
    out.flagged.clear();
    out
}

/// A set of (visitor, session) pairs.
pub type PairSet = std::collections::HashSet<(u64, u32), std::hash::BuildHasherDefault<PairHasher>>;

/// group_stats without times, and per group the distinct (visitor, session) pairs that are in
/// `flagged` (e.g. the sessions that bounced) among its rows: the `flagged` column.
pub fn group_counts(
    keys: &[u64],
    visitors: &[u64],
    sessions: &[u32],
    flagged: &PairSet,
) -> GroupStats {
    let n = keys.len().min(visitors.len()).min(sessions.len());
    let rows = Rows {
        keys: &keys[..n],
        part: None,
        visitors: &visitors[..n],
        sessions: &sessions[..n],
        times: &[],
        sums: None,
        flagged: (!flagged.is_empty()).then_some(flagged),
    };
    let (groups, _) = grouped(&rows);
    collect_groups(groups)
}

/// group_counts with each row's key `part` of its time (ms), computed as the rows are read.
pub fn time_part_counts(
    times: &[i64],
    part: TimePart,
    visitors: &[u64],
    sessions: &[u32],
    flagged: &PairSet,
) -> GroupStats {
    let n = times.len().min(visitors.len()).min(sessions.len());
    let rows = Rows {
        keys: &[],
        part: Some(part),
        visitors: &visitors[..n],
        sessions: &sessions[..n],
        times: &times[..n],
        sums: None,
        flagged: (!flagged.is_empty()).then_some(flagged),
    };
    let (groups, _) = grouped(&rows);
    collect_groups(groups)
}

/// A local time part of epoch milliseconds as arithmetic (for a zone that keeps one UTC offset
/// over the rows): ((ms + shift) div unit + add) mod modulus, rounding down (Python's // and
/// %, as Polars computes them).
#[derive(Clone, Copy, Debug)]
pub struct TimePart {
    shift: i64,
    unit: i64,
    add: i64,
    modulus: i64,
    per_unit: f64,
    per_modulus: f64,
}

impl TimePart {
    /// Errors on a unit or modulus below 1.
    pub fn new(shift: i64, unit: i64, add: i64, modulus: i64) -> Result<TimePart, String> {
        if unit < 1 || modulus < 1 {
            return Err("unit and modulus must be positive".into());
        }
        Ok(TimePart {
            shift,
            unit,
            add,
            modulus,
            per_unit: 1.0 / unit as f64,
            per_modulus: 1.0 / modulus as f64,
        })
    }

    /// The part of `ms`, in 0..modulus.
    #[inline]
    pub fn key(&self, ms: i64) -> u64 {
        let whole = floor_div(ms.saturating_add(self.shift), self.unit, self.per_unit);
        let whole = whole.saturating_add(self.add);
        if whole.unsigned_abs() >= 1 << 52 {
            return whole.rem_euclid(self.modulus) as u64;
        }
        (whole - floor_div(whole, self.modulus, self.per_modulus) * self.modulus) as u64
    }

    /// `key` of each of `times` into `out` (as long), in a loop without branches where the
    /// values allow: times from the epoch to 2^52 ms past it (after the shift), `add` not
    /// negative.
    fn keys_into(&self, times: &[i64], out: &mut [u64]) {
        // Fast where 0 <= ms + shift < 2^52 (then, with unit >= 2 and 0 <= add < 2^51, also
        // 0 <= whole < 2^52: near_div's range); a chunk with another time is done again.
        let fast = (0..1 << 51).contains(&self.add)
            && self.unit >= 2
            && self.shift.unsigned_abs() < 1 << 60;
        if fast {
            let mut outside = 0u64;
            for (o, &t) in out.iter_mut().zip(times) {
                let x = t.wrapping_add(self.shift);
                outside |= (x as u64) >> 52; // not 0 when x < 0 or x >= 2^52
                let x = x & ((1 << 52) - 1); // in near_div's range whatever it was
                let whole = near_div(x, self.unit, self.per_unit) + self.add;
                *o =
                    (whole - near_div(whole, self.modulus, self.per_modulus) * self.modulus) as u64;
            }
            if outside == 0 {
                return;
            }
        }
        for (o, &t) in out.iter_mut().zip(times) {
            *o = self.key(t);
        }
    }

    /// The greatest key.
    fn top(&self) -> Option<u64> {
        Some((self.modulus - 1) as u64)
    }
}

/// x div d for 0 <= x < 2^52 (d > 0): the estimate of floor_div, off by at most one there,
/// corrected without a branch.
#[inline(always)]
fn near_div(x: i64, d: i64, per_d: f64) -> i64 {
    debug_assert!((0..1 << 52).contains(&x) && per_d <= 1.0);
    // SAFETY: 0 <= x * per_d < 2^52 (per_d = 1 / d <= 1, rounded): finite and an i64.
    let q = unsafe { (x as f64 * per_d).to_int_unchecked::<i64>() };
    let r = x - q * d;
    q + i64::from(r >= d) - i64::from(r < 0)
}

/// x div d rounding down (d > 0), from an estimate by a multiplication with `per_d` = 1 / d:
/// a division instruction costs more than the rest of a row's work. Below 2^52 the estimate
/// (truncated: f64::floor is a library call on baseline x86-64) is off by at most two and
/// corrected exactly; larger values divide.
#[inline]
fn floor_div(x: i64, d: i64, per_d: f64) -> i64 {
    if x.unsigned_abs() >= 1 << 52 {
        return x.div_euclid(d);
    }
    let mut q = (x as f64 * per_d) as i64;
    let mut r = x - q * d;
    while r < 0 {
        q -= 1;
        r += d;
    }
    while r >= d {
        q += 1;
        r -= d;
    }
    q
}

/// Hashes a (visitor, session) pair (pair_hash, spread): visitor ids are already hashes.
#[derive(Default)]
pub struct PairHasher(u64);

impl std::hash::Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0xD6E8_FEB8_6659_FD93)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
    fn write_u32(&mut self, v: u32) {
        self.0 ^= u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Rows whose time part keys count_groups computes at a time.
const KEY_CHUNK: usize = 2048;

/// Group keys below this many are indexed directly (hours, weekday hours, minutes), not hashed.
const DENSE_KEYS: u64 = 1 << 16;

/// The groups of `rows`, in first-appearance order, and the candidate ties for their latest
/// row (see Counted::ties).
fn grouped(rows: &Rows) -> (Vec<Group>, Vec<u64>) {
    let n = rows.len();
    let multi = multi_run_visitors(rows.visitors, rows.sessions);
    let flagged = rows.flagged;
    // Without sums and times (views by a key), the loop with fewer branches.
    let plain = rows.sums.is_none() && rows.times.is_empty();
    let count_groups = if plain || rows.part.is_some() || rows.flagged.is_some() {
        count_plain
    } else {
        count_groups
    };
    if n < PARALLEL_MIN {
        let c = count_groups(rows, 0..n, &multi);
        return (count_aside(c.groups, c.aside, flagged), c.ties);
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
    let times = if rows.part.is_some() {
        &[][..]
    } else {
        rows.times
    };
    let groups = merge_groups(low.groups, high.groups, times, &mut low.ties);
    (count_aside(groups, low.aside, flagged), low.ties)
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
    /// One key per row; or, with `part`, none: the keys are `part` of the row's `times`.
    keys: &'a [u64],
    part: Option<TimePart>,
    visitors: &'a [u64],
    sessions: &'a [u32],
    times: &'a [i64],
    /// Session rows: (sign, page_views, is_bounce) to add up weighted by sign; rows with a
    /// negative sign then count in the sums only.
    sums: Option<(&'a [i8], &'a [u32], &'a [u8])>,
    /// Pairs whose distinct sessions each group also counts apart (Group::flagged).
    flagged: Option<&'a PairSet>,
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

impl Rows<'_> {
    fn len(&self) -> usize {
        self.visitors.len()
    }
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
        ..
    } = *rows;
    // (rows with a part or flagged pairs are count_plain's)
    debug_assert!(rows.part.is_none() && rows.flagged.is_none());
    let mut index = FastMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut aside: Aside = Vec::new();
    let mut ties: Vec<u64> = Vec::new();
    let mut current: Option<(u64, bool)> = None; // (visitor, is it in `multi`)
    let mut last_key: Option<(u64, usize)> = None;
    for i in range {
        let key = keys[i];
        let g = match last_key {
            Some((k, g)) if k == key => g,
            _ => {
                let g = *index.entry(key).or_insert_with(|| {
                    groups.push(Group::new(key, i as u64));
                    (groups.len() - 1) as u32
                }) as usize;
                last_key = Some((key, g));
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
            aside.push((key, v, s));
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

/// count_groups for rows without sums and times (page views by a key): the same counts,
/// with the data-dependent branches of a row turned into arithmetic (a row's visitor and
/// session are new to its group about as often as not), small keys indexed without the
/// last-key shortcut, and `multi` looked up only for visitors a small bitmap names.
fn count_plain(rows: &Rows, range: std::ops::Range<usize>, multi: &FastSet) -> Counted {
    let Rows {
        visitors,
        sessions,
        sums,
        flagged,
        ..
    } = *rows;
    debug_assert!(sums.is_none());
    let top = match rows.part {
        Some(part) => part.top(),
        None => rows.keys[range.clone()].iter().max().copied(),
    };
    let dense = match top {
        Some(top) if top < DENSE_KEYS => top as usize + 1,
        _ => 0,
    };
    let mut slots = vec![u32::MAX; dense];
    let mut index = FastMap::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut aside: Aside = Vec::new();
    let mut last_key: Option<(u64, usize)> = None;
    const FILTER_BITS: u32 = 18;
    let filter_bit =
        |v: u64| (v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS)) as usize;
    let mut filter = vec![0u64; (1 << FILTER_BITS) / 64];
    for &v in multi {
        let b = filter_bit(v);
        filter[b / 64] |= 1 << (b % 64);
    }
    let mut pair: Option<((u64, u32), bool)> = None; // (visitor, session), is it flagged
    let mut buf = vec![0u64; if rows.part.is_some() { KEY_CHUNK } else { 0 }];
    let mut at = range.start;
    while at < range.end {
        let end = (at + KEY_CHUNK).min(range.end);
        let chunk: &[u64] = match rows.part {
            Some(part) => {
                part.keys_into(&rows.times[at..end], &mut buf[..end - at]);
                &buf[..end - at]
            }
            None => &rows.keys[at..end],
        };
        for i in at..end {
            let key = chunk[i - at];
            let g = if dense > 0 {
                let slot = &mut slots[key as usize];
                if *slot == u32::MAX {
                    groups.push(Group::new(key, i as u64));
                    *slot = (groups.len() - 1) as u32;
                }
                *slot as usize
            } else {
                match last_key {
                    Some((k, g)) if k == key => g,
                    _ => {
                        let g = *index.entry(key).or_insert_with(|| {
                            groups.push(Group::new(key, i as u64));
                            (groups.len() - 1) as u32
                        }) as usize;
                        last_key = Some((key, g));
                        g
                    }
                }
            };
            let (v, s) = (visitors[i], sessions[i]);
            let group = &mut groups[g];
            group.last = i as u64;
            group.rows += 1;
            let b = filter_bit(v);
            if filter[b / 64] & (1 << (b % 64)) != 0 && multi.contains(&v) {
                aside.push((key, v, s));
                continue;
            }
            let new_visitor = !group.seen | (group.last_visitor != v);
            let new_session = new_visitor | (group.last_session != s);
            group.visitors += u64::from(new_visitor);
            group.sessions += u64::from(new_session);
            if let Some(set) = flagged {
                if new_session {
                    let is_flagged = match pair {
                        Some((p, f)) if p == (v, s) => f,
                        _ => {
                            let f = set.contains(&(v, s));
                            pair = Some(((v, s), f));
                            f
                        }
                    };
                    group.flagged += u64::from(is_flagged);
                }
            }
            group.seen = true;
            group.last_visitor = v;
            group.last_session = s;
        }
        at = end;
    }
    Counted {
        groups,
        aside,
        ties: Vec::new(),
    }
}

/// Adds the set-aside rows' distinct visitors and sessions to their groups.
fn count_aside(mut groups: Vec<Group>, mut aside: Aside, flagged: Option<&PairSet>) -> Vec<Group> {
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
            group.flagged += u64::from(flagged.is_some_and(|f| f.contains(&(t.1, t.2))));
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
        group.flagged += h.flagged;
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
        out.flagged.push(g.flagged);
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
    flagged: u64,
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
            flagged: 0,
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
    // The first row of each (run, visitor): a visitor in several runs has several. Visitor ids
    // are per-day hashes, so few do; `repeats` finds them without sorting every visitor.
    let n = visitors.len().min(sessions.len());
    let deal = |range: std::ops::Range<usize>| {
        let mut dealt = Dealt::new(n / 4, range.len() / 4);
        for i in range.clone() {
            let new_run =
                i == range.start || (visitors[i], sessions[i]) < (visitors[i - 1], sessions[i - 1]);
            if new_run || visitors[i] != visitors[i - 1] {
                dealt.add(visitors[i], i);
            }
        }
        dealt
    };
    // Two halves cut between two visitors: the first row of the upper half starts an entry
    // either way.
    let mut cut = n / 2;
    while cut > 0 && cut < n && visitors[cut] == visitors[cut - 1] {
        cut += 1;
    }
    let dealt = if n < PARALLEL_MIN {
        vec![deal(0..n)]
    } else {
        std::thread::scope(|scope| {
            let upper = scope.spawn(|| deal(cut..n));
            let low = deal(0..cut);
            vec![
                low,
                upper
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            ]
        })
    };
    repeats(&dealt, |i| visitors[i])
        .into_iter()
        .map(|(v, _)| v)
        .collect()
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
        part: None,
        visitors: rows.visitors,
        sessions: rows.sessions,
        times: &[],
        sums: Some((rows.signs, rows.page_views, rows.bounces)),
        flagged: None,
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
/// neighbours. Rows past the shortest input are ignored. Also returns the sessions (sorted, each
/// once) with two views at one time, whose pairing then follows the input order: a caller that
/// wants another order among them asks again with times that tell them apart.
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
) -> (Vec<u32>, Vec<(u64, u32)>) {
    let n = visitors
        .len()
        .min(sessions.len())
        .min(times.len())
        .min(durations.len());
    let key = |i: usize| (visitors[i], sessions[i]);
    let blocks: Vec<usize> = (0..n).filter(|&i| i == 0 || key(i) != key(i - 1)).collect();
    let keys: Vec<(u64, u32)> = blocks.iter().map(|&b| key(b)).collect();
    let mut dealt = Dealt::new(keys.len(), keys.len());
    for (j, &k) in keys.iter().enumerate() {
        dealt.add(pair_hash(k), j);
    }
    let split: FastSet = repeats(&[dealt], |j| keys[j])
        .into_iter()
        .map(|(k, _)| pair_hash(k))
        .collect();
    let mut out = vec![0u32; n];
    // Pairs within the blocks that need no sorting, in two halves of the rows cut between
    // two blocks; the rows of the other blocks are set aside.
    // Returns the rows set aside and the sessions paired here that have two views at one time.
    let pair_blocks = |range: std::ops::Range<usize>, out: &mut [u32], base: usize| {
        let (mut aside, mut tied) = (Vec::new(), Vec::new());
        for j in range {
            let (start, end) = (blocks[j], blocks.get(j + 1).copied().unwrap_or(n));
            let (ordered, tie) = order_of(&times[start..end]);
            // A hash collision only sends a session to the exact path below.
            if !ordered || split.contains(&pair_hash(keys[j])) {
                aside.extend(start..end);
                continue;
            }
            if tie {
                tied.push(keys[j]);
            }
            out[start - base..end - 1 - base].copy_from_slice(&durations[start + 1..end]);
        }
        (aside, tied)
    };
    let (mut aside, mut tied) = if blocks.len() < 2 || n < PARALLEL_MIN {
        pair_blocks(0..blocks.len(), &mut out, 0)
    } else {
        let middle = blocks.len() / 2;
        let (low, high) = out.split_at_mut(blocks[middle]);
        std::thread::scope(|scope| {
            let upper = scope.spawn(|| pair_blocks(middle..blocks.len(), high, blocks[middle]));
            let (mut aside, mut tied) = pair_blocks(0..middle, low, 0);
            let (high_aside, high_tied) = upper
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            aside.extend(high_aside);
            tied.extend(high_tied);
            (aside, tied)
        })
    };
    aside.sort_unstable_by_key(|&i| (visitors[i], sessions[i], times[i], i));
    for (j, &i) in aside.iter().enumerate() {
        if let Some(&next) = aside.get(j + 1) {
            if key(next) == key(i) {
                out[i] = durations[next];
                if times[next] == times[i] {
                    tied.push(key(i));
                }
            }
        }
    }
    tied.sort_unstable();
    tied.dedup();
    (out, tied)
}

/// Whether `times` do not decrease, and whether two neighbours are equal before one decreases.
fn order_of(times: &[i64]) -> (bool, bool) {
    let mut tie = false;
    for w in times.windows(2) {
        if w[0] > w[1] {
            return (false, tie);
        }
        tie |= w[0] == w[1];
    }
    (true, tie)
}

/// Bits of a spread hash that pick a shard within a part (see Dealt).
const SHARD_BITS: u32 = 6;

/// Keys dealt by hash into shards, for `repeats`: positions of keys in `parts` parts (1 or 2:
/// one thread each) of 2^SHARD_BITS shards, each entry one u64 (8 bytes a key: these lists
/// are as long as the rows have blocks): the 24 hash bits below the shard's, then the
/// position (below 2^40).
struct Dealt {
    parts: usize,
    shards: Vec<Vec<u64>>,
}

/// Bits of a Dealt entry that hold the position.
const POSITION_BITS: u32 = 40;

impl Dealt {
    /// For `total` keys dealt over all lists (two parts from PARALLEL_MIN, else one), about
    /// `here` of them into this one.
    fn new(total: usize, here: usize) -> Dealt {
        let parts = if total < PARALLEL_MIN { 1 } else { 2 };
        let n = parts << SHARD_BITS;
        Dealt {
            parts,
            shards: (0..n).map(|_| Vec::with_capacity(here / n + 16)).collect(),
        }
    }

    fn add(&mut self, hash: u64, position: usize) {
        debug_assert!((position as u64) < 1 << POSITION_BITS);
        let m = hash.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let part = (m as usize) & (self.parts - 1);
        let shard = (m >> (64 - SHARD_BITS)) as usize;
        let below = (m << SHARD_BITS) >> POSITION_BITS << POSITION_BITS;
        self.shards[(part << SHARD_BITS) | shard].push(below | position as u64);
    }
}

/// Every (key(position), position) dealt (into any of `dealt`, all with as many parts) whose
/// key was dealt more than once, ordered by key then position within each part. Equal keys
/// must have equal hashes; otherwise the hash does not matter for the answer (a collision
/// costs time only). One thread per part.
///
/// Without sorting every key: a shard is small enough for its bitmap (64-128 bits per key) to
/// stay in cache; a key whose bit another key of its shard also set is a candidate (the
/// repeats, and ~1.5 % others), and only the candidates are sorted to tell them apart.
fn repeats<K: Copy + Ord + Send>(
    dealt: &[Dealt],
    key: impl Fn(usize) -> K + Sync,
) -> Vec<(K, usize)> {
    let parts = dealt.first().map_or(1, |d| d.parts);
    let work = |part: usize| {
        let mut candidates: Vec<(K, usize)> = Vec::new();
        // Per 64 bits, two words: the bits set, and the bits set more than once.
        let mut words: Vec<u64> = Vec::new();
        for shard in (part << SHARD_BITS)..((part + 1) << SHARD_BITS) {
            let entries = || dealt.iter().flat_map(|d| d.shards[shard].iter().copied());
            let len: usize = dealt.iter().map(|d| d.shards[shard].len()).sum();
            // (at most the 24 hash bits an entry holds)
            let bits = (len * 64)
                .next_power_of_two()
                .clamp(64, 1 << (64 - POSITION_BITS));
            let shift = 64 - bits.trailing_zeros();
            let at = |e: u64| {
                let bit = (e >> shift) as usize;
                (bit / 64 * 2, 1u64 << (bit % 64))
            };
            words.clear();
            words.resize(bits / 64 * 2, 0);
            for e in entries() {
                let (w, mask) = at(e);
                words[w + 1] |= words[w] & mask;
                words[w] |= mask;
            }
            for e in entries() {
                let (w, mask) = at(e);
                if words[w + 1] & mask != 0 {
                    let i = (e & ((1 << POSITION_BITS) - 1)) as usize;
                    candidates.push((key(i), i));
                }
            }
        }
        candidates.sort_unstable();
        let mut out = Vec::new();
        let mut j = 0;
        while j < candidates.len() {
            let mut end = j + 1;
            while end < candidates.len() && candidates[end].0 == candidates[j].0 {
                end += 1;
            }
            if end - j > 1 {
                out.extend_from_slice(&candidates[j..end]);
            }
            j = end;
        }
        out
    };
    if parts == 1 {
        return work(0);
    }
    std::thread::scope(|scope| {
        let upper = scope.spawn(|| work(1));
        let mut out = work(0);
        out.extend(
            upper
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        );
        out
    })
}

/// times_on_page summed per bucket: a view's time goes to the bucket of the view's own time,
/// the last of `breaks` (ascending bucket starts, ms) at or before it; views before the first
/// break are left out. Returns (total seconds, views with a non-zero time) per bucket, and the
/// sessions with two views at one time (as times_on_page).
pub fn time_on_page_by_bucket(
    visitors: &[u64],
    sessions: &[u32],
    times: &[i64],
    durations: &[u32],
    breaks: &[i64],
) -> (BucketSums, Vec<(u64, u32)>) {
    let chunk = ViewChunk {
        visitors,
        sessions,
        times,
        durations,
    };
    time_on_page_by_bucket_chunks(&[chunk], breaks)
}

/// Page-view columns, one chunk of rows: e.g. one per file a scan read, so that the caller
/// need not copy them into one array first. Rows past the shortest column are ignored.
#[derive(Clone, Copy, Debug)]
pub struct ViewChunk<'a> {
    pub visitors: &'a [u64],
    pub sessions: &'a [u32],
    pub times: &'a [i64],
    pub durations: &'a [u32],
}

impl ViewChunk<'_> {
    fn len(&self) -> usize {
        self.visitors
            .len()
            .min(self.sessions.len())
            .min(self.times.len())
            .min(self.durations.len())
    }

    fn key(&self, i: usize) -> (u64, u32) {
        (self.visitors[i], self.sessions[i])
    }

    /// The end of the block (rows of one session) that starts at `start`, within `until`.
    fn block_end(&self, start: usize, until: usize) -> usize {
        let k = self.key(start);
        (start + 1..until)
            .find(|&i| self.key(i) != k)
            .unwrap_or(until)
    }
}

/// time_on_page_by_bucket over rows given in chunks, read in order as if they were one.
///
/// The blocks of times_on_page (within a chunk), summed as they are found (two threads over
/// two halves of the rows, each with its own sums), without a per-view column: a block's times
/// do not decrease, so its views' buckets are found by moving forward from the first one's.
/// The blocks of sessions found in several blocks afterwards are taken out of the sums again
/// and paired with the set-aside rows, by sorting.
pub fn time_on_page_by_bucket_chunks(
    chunks: &[ViewChunk],
    breaks: &[i64],
) -> (BucketSums, Vec<(u64, u32)>) {
    let nb = breaks.len();
    let mut offsets = vec![0usize; chunks.len() + 1];
    for (c, chunk) in chunks.iter().enumerate() {
        offsets[c + 1] = offsets[c] + chunk.len();
    }
    let n = offsets[chunks.len()];
    if nb == 0 || n == 0 {
        return ((vec![0; nb], vec![0; nb]), Vec::new());
    }
    // A row's position over all chunks -> (chunk, row in it).
    let locate = |g: usize| {
        let c = offsets.partition_point(|&o| o <= g) - 1;
        (c, g - offsets[c])
    };
    let key = |g: usize| {
        let (c, i) = locate(g);
        chunks[c].key(i)
    };
    let ordered = |t: &[i64]| t.windows(2).all(|w| w[0] <= w[1]);
    // The index of the first break after `t`; `hint`, the last answer, is often right again (a
    // chunk of a day's rows lies in one or two buckets).
    let after = |t: i64, hint: &mut usize| {
        let b = *hint;
        if !((b == 0 || breaks[b - 1] <= t) && (b == nb || t < breaks[b])) {
            *hint = breaks.partition_point(|&x| x <= t);
        }
        *hint
    };
    // Adds (`undo`: takes out) the time on page of the rows of a block whose times do not
    // decrease: row i gets the next row's duration, in the bucket of its own time.
    let add_block = |sums: &mut BucketSums,
                     ch: &ViewChunk,
                     rows: Range<usize>,
                     undo: bool,
                     hint: &mut usize| {
        if rows.len() < 2 {
            return;
        }
        let mut b = after(ch.times[rows.start], hint);
        for i in rows.start..rows.end - 1 {
            while b < nb && breaks[b] <= ch.times[i] {
                b += 1;
            }
            let seconds = u64::from(ch.durations[i + 1]);
            if seconds > 0 && b > 0 {
                if undo {
                    sums.0[b - 1] -= seconds;
                    sums.1[b - 1] -= 1;
                } else {
                    sums.0[b - 1] += seconds;
                    sums.1[b - 1] += 1;
                }
            }
        }
    };
    // Some rows (ranges of chunks): their blocks' starts dealt for `repeats`, their sums, and
    // the rows of blocks not in time order, as (visitor, session, time, duration, position).
    // One pass over the rows: a row of the same block as the previous one pairs with it; a
    // block found out of time order takes its pairs out again and is set aside whole.
    let pass = |pieces: &[(usize, Range<usize>)]| {
        let rows: usize = pieces.iter().map(|p| p.1.len()).sum();
        let mut sums: BucketSums = (vec![0; nb], vec![0; nb]);
        let mut starts = Dealt::new(n / 3, rows / 2);
        let mut aside: Vec<AsideView> = Vec::new();
        let mut tied: Vec<(u64, u32)> = Vec::new();
        let mut hint = 0;
        for (c, range) in pieces {
            if range.is_empty() {
                continue;
            }
            let (ch, base) = (&chunks[*c], offsets[*c]);
            let (v, s) = (&ch.visitors[..range.end], &ch.sessions[..range.end]);
            let (t, d) = (&ch.times[..range.end], &ch.durations[..range.end]);
            let (mut start, mut ordered_so_far) = (range.start, true);
            let mut b = after(t[start], &mut hint); // the first break after the previous row
            starts.add(pair_hash((v[start], s[start])), base + start);
            for i in range.start + 1..range.end {
                if (v[i], s[i]) != (v[i - 1], s[i - 1]) {
                    if !ordered_so_far {
                        aside.extend((start..i).map(|r| aside_view(ch, r, base)));
                    }
                    (start, ordered_so_far) = (i, true);
                    b = after(t[i], &mut hint);
                    starts.add(pair_hash((v[i], s[i])), base + i);
                    continue;
                }
                if !ordered_so_far {
                    continue;
                }
                if t[i] < t[i - 1] {
                    add_block(&mut sums, ch, start..i, true, &mut hint);
                    ordered_so_far = false;
                    continue;
                }
                if t[i] == t[i - 1] {
                    tied.push((v[i], s[i]));
                }
                // row i - 1 gets row i's duration, in the bucket of its own time
                while b < nb && breaks[b] <= t[i - 1] {
                    b += 1;
                }
                let seconds = u64::from(d[i]);
                if seconds > 0 && b > 0 {
                    sums.0[b - 1] += seconds;
                    sums.1[b - 1] += 1;
                }
            }
            if !ordered_so_far {
                aside.extend((start..range.end).map(|r| aside_view(ch, r, base)));
            }
        }
        (sums, starts, aside, tied)
    };
    let whole: Vec<(usize, Range<usize>)> =
        (0..chunks.len()).map(|c| (c, 0..chunks[c].len())).collect();
    let (mut sums, starts, mut aside, mut tied) = if n < PARALLEL_MIN {
        let (sums, starts, aside, tied) = pass(&whole);
        (sums, vec![starts], aside, tied)
    } else {
        // Two halves of the rows, cut between two blocks of a chunk.
        let (c, mut cut) = locate(n / 2);
        let ch = &chunks[c];
        while cut > 0 && cut < ch.len() && ch.key(cut) == ch.key(cut - 1) {
            cut += 1;
        }
        let mut low = whole[..c].to_vec();
        low.push((c, 0..cut));
        let mut high = vec![(c, cut..ch.len())];
        high.extend_from_slice(&whole[c + 1..]);
        std::thread::scope(|scope| {
            let upper = scope.spawn(|| pass(&high));
            let (mut sums, low_starts, mut aside, mut tied) = pass(&low);
            let (high, high_starts, high_aside, high_tied) = upper
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            for b in 0..nb {
                sums.0[b] += high.0[b];
                sums.1[b] += high.1[b];
            }
            aside.extend(high_aside);
            tied.extend(high_tied);
            (sums, vec![low_starts, high_starts], aside, tied)
        })
    };
    // Sessions in several blocks pair across them: out of the sums, into the set-aside rows.
    let mut hint = 0;
    for (_, start) in repeats(&starts, key) {
        let (c, i) = locate(start);
        let ch = &chunks[c];
        let end = ch.block_end(i, ch.len());
        if ordered(&ch.times[i..end]) {
            add_block(&mut sums, ch, i..end, true, &mut hint);
            aside.extend((i..end).map(|r| aside_view(ch, r, offsets[c])));
        } // else it is aside already
    }
    // The set-aside rows in (visitor, session, time, input order): neighbours pair.
    aside.sort_unstable_by_key(|&(v, s, t, _, g)| (v, s, t, g));
    for w in aside.windows(2) {
        let ((v, s, t, _, _), (nv, ns, nt, seconds, _)) = (w[0], w[1]);
        if (v, s) == (nv, ns) {
            let b = breaks.partition_point(|&x| x <= t);
            if seconds > 0 && b > 0 {
                sums.0[b - 1] += u64::from(seconds);
                sums.1[b - 1] += 1;
            }
            if t == nt {
                tied.push((v, s));
            }
        }
    }
    tied.sort_unstable();
    tied.dedup();
    (sums, tied)
}

/// A set-aside page view: (visitor, session, time, duration, position over all chunks).
type AsideView = (u64, u32, i64, u32, usize);

fn aside_view(ch: &ViewChunk, i: usize, base: usize) -> AsideView {
    (
        ch.visitors[i],
        ch.sessions[i],
        ch.times[i],
        ch.durations[i],
        base + i,
    )
}

/// Pairs of (visitor, combination) sorted by visitor, with a group per combination: what the
/// dimension breakdowns keep of the visitors who had several combinations over a window
/// (trail.stats.rollup_visitors).
pub struct VisitorRuns<'a, C> {
    pub visitors: &'a [i32],
    pub combos: &'a [C],
    pub combo_group: &'a [i64],
}

impl<C: Copy + Into<i64>> VisitorRuns<'_, C> {
    fn group(&self, i: usize) -> Result<usize, String> {
        let combo = self.combos[i].into();
        usize::try_from(combo)
            .ok()
            .and_then(|c| self.combo_group.get(c))
            .and_then(|&g| usize::try_from(g).ok())
            .ok_or_else(|| format!("combination {combo} has no group"))
    }

    fn check(&self) -> Result<(), String> {
        if self.visitors.len() != self.combos.len() {
            return Err("visitors and combinations differ in length".into());
        }
        if self.visitors.len() >= u32::MAX as usize {
            return Err("too many pairs".into());
        }
        if !self.visitors.is_sorted() {
            return Err("visitors must be sorted".into());
        }
        Ok(())
    }
}

/// Distinct visitors per group among the runs: a visitor counts once in each group one of its
/// combinations maps to. Linear and without branches on the data: a group remembers the last
/// run that counted it.
pub fn run_group_counts<C: Copy + Into<i64>>(
    runs: &VisitorRuns<'_, C>,
    n_groups: usize,
) -> Result<Vec<i64>, String> {
    runs.check()?;
    // each combination's group, checked once
    let group_of: Vec<u32> = runs
        .combo_group
        .iter()
        .map(|&g| {
            u32::try_from(g)
                .ok()
                .filter(|&g| (g as usize) < n_groups)
                .ok_or_else(|| format!("group {g} is not below {n_groups}"))
        })
        .collect::<Result<_, _>>()?;
    let mut counts = vec![0i64; n_groups];
    let mut counted_in = vec![u32::MAX; n_groups];
    let mut run = 0u32;
    let mut previous = runs.visitors.first().copied().unwrap_or_default();
    for (&v, &c) in runs.visitors.iter().zip(runs.combos) {
        run += u32::from(v != previous);
        previous = v;
        let combo = c.into();
        let g = usize::try_from(combo)
            .ok()
            .and_then(|c| group_of.get(c))
            .ok_or_else(|| format!("combination {combo} has no group"))?;
        let g = *g as usize;
        let new = counted_in[g] != run;
        counted_in[g] = run;
        counts[g] += i64::from(new);
    }
    Ok(counts)
}

/// Whether each (visitor, group) of `visitors` and `groups` is among the runs: the visitor has
/// a combination in that group.
pub fn runs_have<C: Copy + Into<i64>>(
    runs: &VisitorRuns<'_, C>,
    visitors: &[i64],
    groups: &[i64],
) -> Result<Vec<bool>, String> {
    runs.check()?;
    if visitors.len() != groups.len() {
        return Err("visitors and groups differ in length".into());
    }
    let mut out = Vec::with_capacity(visitors.len());
    for (&v, &g) in visitors.iter().zip(groups) {
        let mut i = runs.visitors.partition_point(|&x| i64::from(x) < v);
        let mut found = false;
        while !found && i < runs.visitors.len() && i64::from(runs.visitors[i]) == v {
            found = i64::try_from(runs.group(i)?).ok() == Some(g);
            i += 1;
        }
        out.push(found);
    }
    Ok(out)
}

/// Where each of `values` would go in `sorted` (the first position holding a value not below
/// it, as numpy.searchsorted's "left"). Each value is searched forward from the last one's
/// position in growing steps, so values that come in ascending runs (a day's sorted ids
/// against the window's union) cost a few nearby reads each instead of a binary search over
/// the whole array; a value below the last one starts over. `sorted` holds at most u32::MAX
/// values.
pub fn sorted_positions(sorted: &[u64], values: &[u64]) -> Result<Vec<u32>, String> {
    if sorted.len() > u32::MAX as usize {
        return Err("more than u32::MAX sorted values".into());
    }
    let mut out = Vec::with_capacity(values.len());
    let mut at = 0usize; // every position before `at` holds a value below the last one found
    let mut last = 0u64;
    for &v in values {
        if v < last {
            at = 0;
        }
        last = v;
        // gallop: find a step past the answer, then search the last step's range
        let mut lo = at;
        let mut step = 1usize;
        let mut hi = loop {
            let probe = lo.saturating_add(step).min(sorted.len());
            if probe == sorted.len() || sorted[probe] >= v {
                break probe;
            }
            lo = probe;
            step *= 2;
        };
        if lo == sorted.len() || sorted[lo] >= v {
            hi = lo;
        } else {
            hi = lo + 1 + sorted[lo + 1..hi].partition_point(|&x| x < v);
        }
        at = hi;
        out.push(hi as u32);
    }
    Ok(out)
}

/// Total seconds and views with a time, per bucket.
type BucketSums = (Vec<u64>, Vec<u64>);

fn pair_hash((visitor, session): (u64, u32)) -> u64 {
    visitor ^ u64::from(session).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator: next(m) is in 0..m.
    fn numbers(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |m| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        }
    }

    #[test]
    fn sorted_positions_like_partition_point() {
        let mut next = numbers(0x9e37_79b9);
        for _ in 0..300 {
            let mut sorted: Vec<u64> = (0..next(200)).map(|_| next(1000)).collect();
            sorted.sort_unstable();
            // ascending runs, restarts, repeats, values past both ends
            let values: Vec<u64> = (0..next(300)).map(|_| next(1100)).collect();
            let mut runs = values.clone();
            runs[..values.len() / 2].sort_unstable();
            for values in [values, runs] {
                let want: Vec<u32> = values
                    .iter()
                    .map(|&v| sorted.partition_point(|&x| x < v) as u32)
                    .collect();
                assert_eq!(sorted_positions(&sorted, &values).unwrap(), want);
            }
        }
        assert_eq!(sorted_positions(&[], &[3, 1]).unwrap(), vec![0, 0]);
    }

    /// Distinct (visitor, group) pairs counted per group by sorting: the definition.
    fn run_group_counts_by_sorting(v: &[i32], c: &[i16], cg: &[i64], n: usize) -> Vec<i64> {
        let mut pairs: Vec<(i32, i64)> = v
            .iter()
            .zip(c)
            .map(|(&v, &c)| (v, cg[c as usize]))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut out = vec![0; n];
        for (_, g) in pairs {
            out[g as usize] += 1;
        }
        out
    }

    #[test]
    fn run_group_counts_random() {
        let mut next = numbers(0x1234_5678);
        for _ in 0..200 {
            let n_combos = 1 + next(20) as usize;
            let n_groups = 1 + next(n_combos as u64) as usize;
            let cg: Vec<i64> = (0..n_combos)
                .map(|_| next(n_groups as u64) as i64)
                .collect();
            let len = next(300) as usize;
            let mut v: Vec<i32> = (0..len).map(|_| next(40) as i32).collect();
            v.sort_unstable();
            let c: Vec<i16> = (0..len).map(|_| next(n_combos as u64) as i16).collect();
            let runs = VisitorRuns {
                visitors: &v,
                combos: &c,
                combo_group: &cg,
            };
            assert_eq!(
                run_group_counts(&runs, n_groups).unwrap(),
                run_group_counts_by_sorting(&v, &c, &cg, n_groups)
            );
            let qv: Vec<i64> = (0..50).map(|_| next(45) as i64 - 2).collect();
            let qg: Vec<i64> = (0..50).map(|_| next(n_groups as u64 + 1) as i64).collect();
            let want: Vec<bool> = qv
                .iter()
                .zip(&qg)
                .map(|(&qv, &qg)| {
                    v.iter()
                        .zip(&c)
                        .any(|(&v, &c)| i64::from(v) == qv && cg[c as usize] == qg)
                })
                .collect();
            assert_eq!(runs_have(&runs, &qv, &qg).unwrap(), want);
        }
    }

    #[test]
    fn run_group_counts_rejects_what_does_not_fit() {
        let cg = [0i64, 1];
        let unsorted = VisitorRuns {
            visitors: &[2, 1],
            combos: &[0i16, 0],
            combo_group: &cg,
        };
        assert!(run_group_counts(&unsorted, 2).is_err());
        let combo_out = VisitorRuns {
            visitors: &[1, 2],
            combos: &[0i16, 2],
            combo_group: &cg,
        };
        assert!(run_group_counts(&combo_out, 2).is_err());
        let negative = VisitorRuns {
            visitors: &[1],
            combos: &[-1i16],
            combo_group: &cg,
        };
        assert!(run_group_counts(&negative, 2).is_err());
        let group_out = VisitorRuns {
            visitors: &[1],
            combos: &[1i16],
            combo_group: &cg,
        };
        assert!(run_group_counts(&group_out, 1).is_err());
        let lengths = VisitorRuns {
            visitors: &[1, 2],
            combos: &[0i16],
            combo_group: &cg,
        };
        assert!(run_group_counts(&lengths, 2).is_err());
    }

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

    /// The sessions with two rows at one time, sorted, each once: the definition.
    fn tied_by_sorting(v: &[u64], s: &[u32], t: &[i64]) -> Vec<(u64, u32)> {
        let mut rows: Vec<(u64, u32, i64)> = (0..v.len()).map(|i| (v[i], s[i], t[i])).collect();
        rows.sort_unstable();
        let mut tied: Vec<(u64, u32)> = rows
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| (w[0].0, w[0].1))
            .collect();
        tied.dedup();
        tied
    }

    /// times_on_page by its definition.
    fn paired_by_sorting(
        v: &[u64],
        s: &[u32],
        t: &[i64],
        d: &[u32],
    ) -> (Vec<u32>, Vec<(u64, u32)>) {
        (
            times_on_page_by_sorting(v, s, t, d),
            tied_by_sorting(v, s, t),
        )
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
            let (got, tied) = times_on_page(v, s, t, d);
            assert_eq!(got, want, "{v:?} {s:?} {t:?} {d:?}");
            assert_eq!(tied, tied_by_sorting(v, s, t));
        }
        // the sessions with two views at one time: in one ordered block, in a block out of
        // order, and across two blocks of one session
        type TieCase = (
            &'static [u64],
            &'static [u32],
            &'static [i64],
            &'static [(u64, u32)],
        );
        let cases: &[TieCase] = &[
            (&[1, 1, 2, 2], &[1, 1, 1, 1], &[0, 5, 3, 4], &[]),
            (&[1, 1, 2, 2], &[1, 1, 1, 1], &[5, 5, 3, 4], &[(1, 1)]),
            (&[1, 1, 1, 2], &[1, 1, 1, 1], &[9, 5, 9, 1], &[(1, 1)]),
            (&[1, 2, 1, 2], &[1, 1, 1, 1], &[7, 3, 7, 4], &[(1, 1)]),
            (&[1, 1, 1, 1], &[1, 2, 1, 2], &[7, 7, 8, 8], &[]),
        ];
        for &(v, s, t, want) in cases {
            let d = vec![1; v.len()];
            assert_eq!(times_on_page(v, s, t, &d).1, want, "{v:?} {s:?} {t:?}");
            assert_eq!(
                time_on_page_by_bucket(v, s, t, &d, &[0]).1,
                want,
                "{v:?} {s:?} {t:?}"
            );
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
            ((vec![20, 15], vec![1, 1]), vec![])
        );
        assert_eq!(
            time_on_page_by_bucket(&v, &s, &t, &d, &[0]),
            ((vec![45], vec![3]), vec![])
        );
        assert_eq!(
            time_on_page_by_bucket(&v, &s, &t, &d, &[]),
            ((vec![], vec![]), vec![])
        );
    }

    /// time_on_page_by_bucket by its definition: times_on_page by sorting, summed per bucket.
    fn by_bucket_by_sorting(
        v: &[u64],
        s: &[u32],
        t: &[i64],
        d: &[u32],
        breaks: &[i64],
    ) -> (Vec<u64>, Vec<u64>) {
        let spent = times_on_page_by_sorting(v, s, t, d);
        let (mut totals, mut counts) = (vec![0u64; breaks.len()], vec![0u64; breaks.len()]);
        for (i, &seconds) in spent.iter().enumerate() {
            let after = breaks.partition_point(|&b| b <= t[i]);
            if seconds > 0 && after > 0 {
                totals[after - 1] += u64::from(seconds);
                counts[after - 1] += 1;
            }
        }
        (totals, counts)
    }

    #[test]
    fn time_on_page_by_bucket_equals_sorting() {
        let mut next = xorshift(0x5DEE_CE66_D1CE_4E5B);
        for round in 0..400 {
            // small inputs, and two runs' worth of rows for the two-thread path
            let n = if round % 50 == 0 {
                PARALLEL_MIN * 2 + (next() % 100) as usize
            } else {
                (next() % 80) as usize
            };
            let visitors = 1 + next() % 12;
            let mut rows: Vec<(u64, u32, i64, u32)> = (0..n)
                .map(|i| {
                    let t = if round % 4 == 0 {
                        (next() % 40) as i64
                    } else {
                        (i as i64) / 3 + (next() % 3) as i64
                    };
                    let v = next() % visitors;
                    (v, (next() % 2) as u32, t, (next() % 5) as u32)
                })
                .collect();
            if round % 4 != 0 {
                // sorted runs, like compacted days; a session may span two runs
                let cut = rows.len() / 2;
                rows[..cut].sort();
                rows[cut..].sort();
            }
            let v: Vec<u64> = rows.iter().map(|r| r.0).collect();
            let s: Vec<u32> = rows.iter().map(|r| r.1).collect();
            let t: Vec<i64> = rows.iter().map(|r| r.2).collect();
            let d: Vec<u32> = rows.iter().map(|r| r.3).collect();
            let top = (n as i64) / 3 + 3;
            let mut breaks: Vec<i64> = (0..(next() % 6))
                .map(|_| (next() % top as u64) as i64)
                .collect();
            breaks.sort_unstable();
            let want = (
                by_bucket_by_sorting(&v, &s, &t, &d, &breaks),
                if breaks.is_empty() || n == 0 {
                    vec![]
                } else {
                    tied_by_sorting(&v, &s, &t)
                },
            );
            assert_eq!(
                time_on_page_by_bucket(&v, &s, &t, &d, &breaks),
                want,
                "round {round}"
            );
            // the same rows in chunks (cut anywhere, also inside a session's rows; some empty)
            let mut cuts: Vec<usize> = (0..next() % 5)
                .map(|_| (next() % (n as u64 + 1)) as usize)
                .collect();
            cuts.extend([0, n]);
            cuts.sort_unstable();
            let chunks: Vec<ViewChunk> = cuts
                .windows(2)
                .map(|w| ViewChunk {
                    visitors: &v[w[0]..w[1]],
                    sessions: &s[w[0]..w[1]],
                    times: &t[w[0]..w[1]],
                    durations: &d[w[0]..w[1]],
                })
                .collect();
            assert_eq!(
                time_on_page_by_bucket_chunks(&chunks, &breaks),
                want,
                "round {round} {cuts:?}"
            );
        }
    }

    #[test]
    fn repeated_finds_exactly_the_repeats() {
        let keys: Vec<(u64, u32)> = (0..100_000u64)
            .map(|i| (i * 2_654_435_761, (i % 7) as u32))
            .collect();
        let mut with_repeats = keys.clone();
        with_repeats.extend([keys[5], keys[99_999], keys[5]]);
        let mut want = vec![(keys[5], 5), (keys[5], 100_000), (keys[5], 100_002)];
        want.extend([(keys[99_999], 99_999), (keys[99_999], 100_001)]);
        want.sort_unstable();
        // one or two parts, the keys dealt into one or three lists, any hash
        let hashes: [&dyn Fn((u64, u32)) -> u64; 2] = [&pair_hash, &|_| 7];
        for expected in [10, PARALLEL_MIN] {
            for lists in [1, 3] {
                for hash in hashes {
                    let found_in = |keys: &[(u64, u32)]| {
                        let mut dealt: Vec<Dealt> =
                            (0..lists).map(|_| Dealt::new(expected, 10)).collect();
                        for (i, &k) in keys.iter().enumerate() {
                            dealt[i % lists].add(hash(k), i);
                        }
                        let mut found = repeats(&dealt, |i| keys[i]);
                        found.sort_unstable();
                        found
                    };
                    assert_eq!(found_in(&with_repeats), want, "{expected} {lists}");
                    assert!(found_in(&keys).is_empty());
                }
            }
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
            paired_by_sorting(&v, &s, &t, &d)
        );
        let mut rows: Vec<_> = (0..n).map(|i| (v[i], s[i], t[i], d[i])).collect();
        rows.sort();
        let (v, s): (Vec<u64>, Vec<u32>) = rows.iter().map(|r| (r.0, r.1)).unzip();
        let (t, d): (Vec<i64>, Vec<u32>) = rows.iter().map(|r| (r.2, r.3)).unzip();
        assert_eq!(
            times_on_page(&v, &s, &t, &d),
            paired_by_sorting(&v, &s, &t, &d)
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
                paired_by_sorting(&v, &s, &t, &d)
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
                part: None,
                visitors: &visitors,
                sessions: &sessions,
                times: t,
                sums: None,
                flagged: None,
            };
            let multi = multi_run_visitors(&visitors, &sessions);
            let c = count_groups(&rows, 0..keys.len(), &multi);
            let mut one = collect_groups(count_aside(c.groups, c.aside, None));
            (one.tie_groups, one.tie_rows) = latest_ties(&one, &c.ties, &keys, t);
            one.flagged.clear();
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
    fn time_parts_round_down() {
        let key = |shift, unit, add, modulus, ms| {
            TimePart::new(shift, unit, add, modulus).unwrap().key(ms)
        };
        // hours of the day with a +1 h shift; minute of the hour with 30 minutes added; times
        // before the epoch round down like Python
        let hour = 3_600_000;
        for (ms, want) in [
            (0, 1),
            (hour - 1, 1),
            (23 * hour, 0),
            (-1, 0),
            (-hour - 1, 23),
        ] {
            assert_eq!(key(hour, hour, 0, 24, ms), want, "{ms}");
        }
        assert_eq!(key(0, 60_000, 30, 60, 60_000 * 45), 15);
        assert_eq!(key(0, 1000, 0, 60, -1), 59);
        assert!(TimePart::new(0, 0, 0, 24).is_err());
        assert!(TimePart::new(0, 1, 0, 0).is_err());
        // against division, around multiples of the unit and far from the epoch
        let mut next = xorshift(0x1357_9BDF_2468_ACE0);
        for (unit, modulus, add) in [(hour, 24, 0), (hour, 168, 72), (60_000, 60, 7), (7, 5, -3)] {
            let part = TimePart::new(-5 * hour, unit, add, modulus).unwrap();
            for _ in 0..20_000 {
                let base = (next() % 4_000_000_000_000) as i64 - 1_000_000_000_000;
                let ms = base - base.rem_euclid(unit) + (next() % 3) as i64 - 1;
                let want = ((ms - 5 * hour).div_euclid(unit) + add).rem_euclid(modulus) as u64;
                assert_eq!(part.key(ms), want, "{ms} {unit}");
            }
            // a chunk at a time, with and without times outside the fast range
            let mut times: Vec<i64> = (0..3000).map(|_| (next() % (1 << 45)) as i64).collect();
            let mut out = vec![0u64; times.len()];
            for outlier in [None, Some(-1), Some(1 << 53), Some(i64::MAX)] {
                if let Some(t) = outlier {
                    times[1234] = t;
                }
                part.keys_into(&times, &mut out);
                let want: Vec<u64> = times.iter().map(|&t| part.key(t)).collect();
                assert_eq!(out, want, "{outlier:?}");
            }
            for ms in [i64::MIN, i64::MAX, 1 << 53, -(1 << 53)] {
                let want = (ms
                    .saturating_add(-5 * hour)
                    .div_euclid(unit)
                    .saturating_add(add))
                .rem_euclid(modulus) as u64;
                assert_eq!(part.key(ms), want, "{ms}");
            }
        }
    }

    #[test]
    fn time_part_counts_equal_given_keys() {
        let mut next = xorshift(0x2468_1357_ACE0_BDF9);
        for n in [50, PARALLEL_MIN * 2 + 5] {
            let mut rows: Vec<(u64, u32, i64)> = (0..n)
                .map(|_| {
                    (
                        next() % 5_000,
                        (next() % 2) as u32,
                        (next() % 1_000_000_000) as i64,
                    )
                })
                .collect();
            let cut = n / 3;
            rows[..cut].sort();
            rows[cut..].sort();
            let v: Vec<u64> = rows.iter().map(|r| r.0).collect();
            let s: Vec<u32> = rows.iter().map(|r| r.1).collect();
            let t: Vec<i64> = rows.iter().map(|r| r.2).collect();
            let part = TimePart::new(3_600_000, 3_600_000, 72, 168).unwrap();
            let keys: Vec<u64> = t.iter().map(|&ms| part.key(ms)).collect();
            let flagged: PairSet = rows.iter().step_by(7).map(|r| (r.0, r.1)).collect();
            assert_eq!(
                time_part_counts(&t, part, &v, &s, &flagged),
                group_counts(&keys, &v, &s, &flagged)
            );
        }
    }

    #[test]
    fn group_counts_match_hash_sets() {
        // Sorted per-day runs (some visitors in several), small keys (indexed) and large ones
        // (hashed), one thread and two, some pairs flagged.
        let mut next = xorshift(0x0DDB_1A5E_5BAD_5EED);
        for (runs, per_run, key_range) in [(3, 500, 24), (4, 30_000, 168), (4, 30_000, 1 << 40)] {
            let (mut keys, mut visitors, mut sessions) = (vec![], vec![], vec![]);
            for _ in 0..runs {
                let mut run: Vec<(u64, u32)> = (0..per_run)
                    .map(|_| (next() % 9_000, (next() % 3) as u32))
                    .collect();
                run.sort();
                for (v, s) in run {
                    keys.push(next() % key_range);
                    visitors.push(v);
                    sessions.push(s);
                }
            }
            let flagged: PairSet = (0..keys.len())
                .filter(|i| i % 11 == 0)
                .map(|i| (visitors[i], sessions[i]))
                .collect();
            let got = group_counts(&keys, &visitors, &sessions, &flagged);
            let mut truth: std::collections::HashMap<
                u64,
                [std::collections::HashSet<(u64, u32)>; 3],
            > = Default::default();
            let mut rows: std::collections::HashMap<u64, u64> = Default::default();
            for i in 0..keys.len() {
                let e = truth.entry(keys[i]).or_default();
                e[0].insert((visitors[i], 0));
                e[1].insert((visitors[i], sessions[i]));
                if flagged.contains(&(visitors[i], sessions[i])) {
                    e[2].insert((visitors[i], sessions[i]));
                }
                *rows.entry(keys[i]).or_default() += 1;
            }
            assert_eq!(got.keys.len(), truth.len());
            for (g, key) in got.keys.iter().enumerate() {
                let t = &truth[key];
                assert_eq!(got.rows[g], rows[key]);
                assert_eq!(got.visitors[g], t[0].len() as u64);
                assert_eq!(got.sessions[g], t[1].len() as u64);
                assert_eq!(got.flagged[g], t[2].len() as u64);
                assert_eq!(keys[got.first[g] as usize], *key);
            }
            let plain = group_stats(&keys, &visitors, &sessions, &[]);
            assert_eq!((plain.keys, plain.sessions), (got.keys, got.sessions));
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
