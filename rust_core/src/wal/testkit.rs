//! Fixtures for the storage tests: typical rows, a test configuration, and readers of what
//! ended up on disk.

use super::StorageConfig;
use crate::rows::{Dims, EventRow, PageViewRow, Row, SessionRow, SiteRows};
use arrow_ipc::reader::FileReader;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

pub(super) const DAY1: i64 = 1_700_006_400_000; // 2023-11-15T00:00:00Z
pub(super) type Counts = BTreeMap<(String, String, String), usize>;

pub(super) fn config(dir: &Path, worker_id: u32) -> StorageConfig {
    StorageConfig {
        data_dir: dir.to_path_buf(),
        worker_id,
        fsync_interval_ms: 50,
        strict: false,
        // Long enough that only the tests' own seal() calls seal.
        seal_interval_ms: 3_600_000,
        seal_rows: 1_000_000,
        idle_release_ms: 0,
    }
}

pub(super) fn dims() -> Dims {
    Dims {
        hostname: "example.com".into(),
        language: "en".into(),
        country_code: "DE".into(),
        os: "Linux".into(),
        browser: "Firefox".into(),
        browser_version: "128.0".into(),
        desktop: true,
        screen_class: "XL".into(),
        channel: "Direct".into(),
        ..Dims::default()
    }
}

pub(super) fn page_view(time: i64) -> Row {
    Row::PageView(PageViewRow {
        visitor_id: 42,
        session_id: 7,
        time,
        path: "/pricing".into(),
        title: "Pricing".into(),
        dims: dims(),
        ..PageViewRow::default()
    })
}

pub(super) fn session(time: i64, sign: i8) -> Row {
    Row::Session(SessionRow {
        sign,
        version: 1,
        visitor_id: 42,
        session_id: 7,
        time,
        start: time,
        page_views: 1,
        entry_path: "/pricing".into(),
        exit_path: "/pricing".into(),
        dims: dims(),
        ..SessionRow::default()
    })
}

pub(super) fn event(time: i64) -> Row {
    Row::Event(EventRow {
        time,
        event_name: "signup".into(),
        dims: dims(),
        ..EventRow::default()
    })
}

/// A typical hit: the previous session state cancelled, the new state, the page view.
pub(super) fn hit(site: &str, time: i64) -> Vec<SiteRows> {
    let rows = vec![session(time, -1), session(time, 1), page_view(time)];
    vec![SiteRows {
        site: site.into(),
        rows,
    }]
}

/// Rows per (table, site, day) over every sealed segment file, read back with arrow-ipc.
pub(super) fn counts(data_dir: &Path) -> Counts {
    let mut out = Counts::new();
    let seg = data_dir.join("segments");
    for table in fs::read_dir(&seg).into_iter().flatten().flatten() {
        for site in fs::read_dir(table.path()).into_iter().flatten().flatten() {
            for day in fs::read_dir(site.path()).into_iter().flatten().flatten() {
                for file in fs::read_dir(day.path()).into_iter().flatten().flatten() {
                    let name = file.file_name().to_string_lossy().to_string();
                    if name.starts_with('.') {
                        continue; // a temp file being written, as a `*.arrow` glob skips it
                    }
                    assert!(name.ends_with(".arrow"), "stray file {name}");
                    let reader = FileReader::try_new(File::open(file.path()).expect("open"), None)
                        .expect("reader");
                    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
                    let key = (
                        table.file_name().to_string_lossy().to_string(),
                        site.file_name().to_string_lossy().to_string(),
                        day.file_name().to_string_lossy().to_string(),
                    );
                    *out.entry(key).or_default() += rows;
                }
            }
        }
    }
    out
}

pub(super) fn key(table: &str, site: &str, day: &str) -> (String, String, String) {
    (table.into(), format!("site={site}"), format!("day={day}"))
}

pub(super) fn wal_files(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(data_dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".wal"))
        .collect();
    names.sort();
    names
}

/// Poll `done` for up to five seconds.
pub(super) fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
