//! The per-worker write-ahead log and the storage front (ARCHITECTURE.md "Durability contract").
//! OWNER: helper "storage".
//!
//! `append` writes the rows to `wal/worker-<id>-<generation>.wal` with one write() before it
//! returns (a killed process loses nothing acknowledged); a background thread fsyncs at least every
//! `fsync_interval_ms` and seals buffered rows into segments every `seal_interval_ms` or
//! `seal_rows` rows. On open, WAL files left by this worker id are replayed into segments.

use crate::errors::Result;
use crate::rows::SiteRows;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub worker_id: u32,
    pub fsync_interval_ms: u64,
    /// fsync before `append` returns.
    pub strict: bool,
    pub seal_interval_ms: u64,
    pub seal_rows: usize,
}

pub struct Storage {
    _private: (),
}

impl Storage {
    pub fn open(config: StorageConfig) -> Result<Storage> {
        let _ = config;
        todo!()
    }

    /// Durably log and buffer the rows of one or more sites. One write() per call.
    pub fn append(&self, batch: &[SiteRows]) -> Result<()> {
        let _ = batch;
        todo!()
    }

    /// Seal buffered rows into segment files now; returns the number of rows sealed.
    pub fn seal(&self) -> Result<usize> {
        todo!()
    }

    /// Seal, fsync and stop the background thread.
    pub fn close(&self) -> Result<()> {
        todo!()
    }
}
