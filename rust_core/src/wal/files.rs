//! File names, the worker-id lock, and deletions inside `wal/` and `segments/`.

use crate::errors::{CoreError, Result};
use crate::segments::sync_dir;
use std::fs::{self, File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn next_generation(last: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    u64::try_from(now)
        .unwrap_or(u64::MAX)
        .max(last.saturating_add(1))
}

pub(super) fn wal_path(dir: &Path, worker: u32, gen: u64) -> PathBuf {
    dir.join(format!("worker-{worker}-{gen}.wal"))
}

pub(super) fn segment_prefix(worker: u32, gen: u64) -> String {
    format!("w{worker}-g{gen}-")
}

/// This worker's WAL files, oldest generation first.
pub(super) fn list_wal_files(dir: &Path, worker: u32) -> Result<Vec<(u64, PathBuf)>> {
    let prefix = format!("worker-{worker}-");
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let gen = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(gen) = gen {
            files.push((gen, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Delete segment files (and their temp files) of one generation in one directory.
pub(super) fn remove_with_prefix(dir: &Path, prefix: &str) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let tmp_prefix = format!(".{prefix}");
    let mut removed = false;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) || name.starts_with(&tmp_prefix) {
            fs::remove_file(entry.path())?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

pub(super) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Take the exclusive, non-blocking flock that makes a worker id single-owner.
pub(super) fn lock_worker(wal_dir: &Path, worker: u32) -> Result<File> {
    let path = wal_dir.join(format!("worker-{worker}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    // SAFETY: flock on a descriptor we own; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(CoreError::Storage(format!(
            "worker id {worker} is in use by another process ({}): {e}",
            path.display()
        )));
    }
    Ok(file)
}
