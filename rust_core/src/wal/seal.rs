//! Sealing: a generation's rows become segment files, one per table, site and UTC day.

use super::files::{remove_if_exists, remove_with_prefix, segment_prefix, wal_path};
use super::health::Task;
use super::{Generation, Shared};
use crate::errors::{CoreError, Result};
use crate::rows::{Row, SiteRows, Table};
use crate::segments::write_segment;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const DAY_MS: i64 = 86_400_000;

impl Shared {
    /// Swap out the buffered generations and write them (and earlier failed ones) as segments.
    pub(super) fn seal_now(&self) -> Result<usize> {
        let result = self.seal_buffered();
        self.record(Task::Seal, result.as_ref().map(|_| ()));
        result
    }

    fn seal_buffered(&self) -> Result<usize> {
        let mut failed = self.sealer.lock();
        let mut todo: Vec<Generation> = std::mem::take(&mut *failed);
        {
            let mut state = self.state.lock();
            state.seal_requested = false;
            state.retry_pending = false;
            state.buffered_rows = 0;
            let mut swapped = std::mem::take(&mut state.retired);
            swapped.extend(state.current.take());
            todo.extend(swapped.into_iter().map(|w| Generation {
                gen: w.gen,
                rows: w.rows,
                rewrite: false,
                file: Some(w.file),
            }));
        }
        let mut sealed = 0;
        let mut first_error = None;
        for mut generation in todo {
            match self.seal_generation(generation.gen, &generation.rows, generation.rewrite) {
                Ok(rows) => {
                    sealed += rows;
                    // If this fails the rows are sealed anyway; the next open rewrites them once.
                    let path = wal_path(&self.wal_dir, self.config.worker_id, generation.gen);
                    if let Err(e) = remove_if_exists(&path) {
                        first_error.get_or_insert(e);
                    }
                }
                Err(e) => {
                    // The WAL stays the durable copy until a retry succeeds: make sure it is one.
                    if let Some(file) = generation.file.take() {
                        let _ = file.sync_data();
                    }
                    generation.rewrite = true;
                    failed.push(generation);
                    first_error.get_or_insert(e);
                }
            }
        }
        if !failed.is_empty() {
            self.state.lock().retry_pending = true;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sealed),
        }
    }

    /// Write one generation's rows as segment files grouped by table, site and UTC day.
    /// With `rewrite`, segments an earlier attempt left for this generation are deleted first.
    pub(super) fn seal_generation(
        &self,
        gen: u64,
        batches: &[SiteRows],
        rewrite: bool,
    ) -> Result<usize> {
        let groups = group_rows(batches);
        let prefix = segment_prefix(self.config.worker_id, gen);
        if rewrite {
            let dirs: BTreeSet<PathBuf> = groups.keys().map(|k| self.group_dir(k)).collect();
            for dir in dirs {
                remove_with_prefix(&dir, &prefix)?;
            }
        }
        let mut rows = 0;
        for (n, (key, group)) in groups.iter().enumerate() {
            let path = self.group_dir(key).join(format!("{prefix}{n}.arrow"));
            write_segment(&path, key.table, group)?;
            rows += group.len();
        }
        Ok(rows)
    }

    fn group_dir(&self, key: &GroupKey) -> PathBuf {
        self.seg_dir
            .join(key.table.dir_name())
            .join(format!("site={}", safe_site(key.site)))
            .join(format!("day={}", day_string(key.day)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct GroupKey<'a> {
    table: Table,
    site: &'a str,
    day: i64,
}

fn group_rows(batches: &[SiteRows]) -> BTreeMap<GroupKey<'_>, Vec<&Row>> {
    let mut groups: BTreeMap<GroupKey<'_>, Vec<&Row>> = BTreeMap::new();
    for batch in batches {
        for row in &batch.rows {
            let key = GroupKey {
                table: row.table(),
                site: &batch.site,
                day: row.time().div_euclid(DAY_MS),
            };
            groups.entry(key).or_default().push(row);
        }
    }
    groups
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01, UTC).
fn day_string(day: i64) -> String {
    // Validation keeps hit times within a window around now; a row outside chrono's range can
    // only come from a damaged WAL: file it under the epoch rather than lose it.
    let date = day
        .checked_mul(86_400)
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_default();
    date.format("%Y-%m-%d").to_string()
}

/// Site ids become directory names, so only a plain token is accepted.
pub(super) fn check_site(site: &str) -> Result<()> {
    let ok = !site.is_empty()
        && site.len() <= 128
        && !site.starts_with('.')
        && site
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "site",
            "must be a plain id (letters, digits, '-', '_', '.')",
        ))
    }
}

/// Defence in depth for replayed WAL files: never let a site escape its directory.
fn safe_site(site: &str) -> String {
    if check_site(site).is_ok() {
        return site.to_string();
    }
    let cleaned: String = site
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::Storage;
    use super::*;
    use crate::rows::SiteRows;
    use std::fs;

    #[test]
    fn seal_writes_rows_per_table_site_and_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.append(hit("site-a", DAY1 + 1_000)).expect("append");
        storage.append(hit("site-a", DAY1 + 2_000)).expect("append");
        let mixed = vec![
            SiteRows {
                site: "site-b".into(),
                rows: vec![event(DAY1 + 5), page_view(DAY1 + 6)],
            },
            SiteRows {
                site: "site-a".into(),
                rows: vec![event(DAY1 + 7)],
            },
        ];
        storage.append(mixed).expect("append");
        assert_eq!(storage.seal().expect("seal"), 9);
        assert_eq!(storage.seal().expect("seal"), 0, "nothing left to seal");

        let expected: Counts = [
            (key("sessions", "site-a", "2023-11-15"), 4),
            (key("page_views", "site-a", "2023-11-15"), 2),
            (key("events", "site-a", "2023-11-15"), 1),
            (key("events", "site-b", "2023-11-15"), 1),
            (key("page_views", "site-b", "2023-11-15"), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts(dir.path()), expected);
        assert!(
            wal_files(dir.path()).is_empty(),
            "sealed WAL deleted: {:?}",
            wal_files(dir.path())
        );
        storage.close().expect("close");
    }

    #[test]
    fn rows_across_midnight_land_in_two_days() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        let rows = vec![page_view(DAY1 - 1), page_view(DAY1), page_view(DAY1 + 1)];
        storage
            .append(vec![SiteRows {
                site: "s".into(),
                rows,
            }])
            .expect("append");
        storage.close().expect("close");
        let expected: Counts = [
            (key("page_views", "s", "2023-11-14"), 1),
            (key("page_views", "s", "2023-11-15"), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts(dir.path()), expected);
    }

    #[test]
    fn day_strings_cover_negative_and_far_times() {
        let cases = [
            (0, "1970-01-01"),
            (-1, "1969-12-31"),
            (19_676, "2023-11-15"),
            (i64::MAX, "1970-01-01"),
        ];
        for (day, want) in cases {
            assert_eq!(day_string(day), want, "day {day}");
        }
    }

    #[test]
    fn a_failed_seal_is_retried_without_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        storage.append(hit("s", DAY1)).expect("append");
        // A file where the page_views directory should be: sessions seal, page views fail.
        let blocker = dir.path().join("segments/page_views");
        fs::write(&blocker, b"").expect("blocker");
        assert!(storage.seal().is_err());
        assert_eq!(counts(dir.path())[&key("sessions", "s", "2023-11-15")], 2);
        assert_eq!(
            wal_files(dir.path()).len(),
            1,
            "the WAL stays until the seal succeeds"
        );

        fs::remove_file(&blocker).expect("unblock");
        storage.append(hit("s", DAY1)).expect("append");
        assert_eq!(storage.seal().expect("retry"), 6);
        let c = counts(dir.path());
        assert_eq!(c[&key("sessions", "s", "2023-11-15")], 4);
        assert_eq!(c[&key("page_views", "s", "2023-11-15")], 2);
        assert!(wal_files(dir.path()).is_empty());
        storage.close().expect("close");
    }

    #[test]
    fn bad_site_ids_are_rejected_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(config(dir.path(), 0)).expect("open");
        for site in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            let result = storage.append(hit(site, DAY1));
            assert!(matches!(result, Err(CoreError::Invalid { .. })), "{site:?}");
        }
        assert!(wal_files(dir.path()).is_empty());
        storage.close().expect("close");
    }
}
