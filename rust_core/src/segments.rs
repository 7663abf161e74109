//! Arrow IPC segment files: `segments/<table>/site=<id>/day=<YYYY-MM-DD>/<name>.arrow`, written to
//! a temp file and renamed into place. OWNER: helper "storage".
//!
//! Schema: one column per field of the row structs in `rows.rs`, `Dims` flattened into top-level
//! columns; `time` and `start` are Timestamp(Millisecond, "UTC"); u64/u32/i8 keep their widths;
//! bool is Boolean; `Vec<String>` is List<Utf8>; strings are Utf8.

use crate::errors::Result;
use crate::rows::{Row, Table};
use std::path::Path;

/// Write rows of one table/site/day to `path` atomically (temp file + rename + fsync).
pub fn write_segment(path: &Path, table: Table, rows: &[&Row]) -> Result<()> {
    let _ = (path, table, rows);
    todo!()
}
