//! Arrow IPC segment files: `segments/<table>/site=<id>/day=<YYYY-MM-DD>/<name>.arrow`, written to
//! a temp file and renamed into place.
//!
//! Schema: one column per field of the row structs in `rows.rs`, in the struct's field order, with
//! `Dims` flattened into top-level columns at the place of the `dims` field (always last):
//!
//! | Rust type     | Arrow type                        | Polars dtype               |
//! |---------------|-----------------------------------|----------------------------|
//! | `time`,`start`| Timestamp(Millisecond, "UTC")     | Datetime(ms, "UTC")        |
//! | `u64`         | UInt64                            | UInt64                     |
//! | `u32`         | UInt32                            | UInt32                     |
//! | `i8`          | Int8                              | Int8                       |
//! | `bool`        | Boolean                           | Boolean                    |
//! | `String`      | Utf8                              | String                     |
//! | `Vec<String>` | List<Utf8> (item field "item")    | List(String)               |
//!
//! No column is nullable. The site and the day are not columns: they are the hive partition
//! directories (`site=...`, `day=...`), which Polars adds with `hive_partitioning=True`.
//! Files are IPC files (FileWriter, metadata V5) whose buffers are zstd-compressed (the IPC
//! format's own `BodyCompression`, which Polars and pyarrow read). The small files of a live day
//! are merged into zstd Parquet parts every few minutes by the maintenance process
//! (trail/tasks/live_merge.py), and compacted once the day closes.

use crate::errors::{CoreError, Result};
use crate::rows::{Dims, Row, Table};
use arrow_array::builder::{
    BooleanBuilder, Int8Builder, ListBuilder, StringBuilder, TimestampMillisecondBuilder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_ipc::CompressionType;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

/// A column: its name and kind.
type Column = (&'static str, Kind);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Time,
    U64,
    U32,
    I8,
    Bool,
    Str,
    StrList,
}

use Kind::*;

const SESSION_COLUMNS: &[Column] = &[
    ("sign", I8),
    ("version", U32),
    ("visitor_id", U64),
    ("session_id", U32),
    ("time", Time),
    ("start", Time),
    ("duration_seconds", U32),
    ("is_bounce", Bool),
    ("page_views", U32),
    ("extended", U32),
    ("entry_path", Str),
    ("exit_path", Str),
    ("entry_title", Str),
    ("exit_title", Str),
];

const PAGE_VIEW_COLUMNS: &[Column] = &[
    ("visitor_id", U64),
    ("session_id", U32),
    ("time", Time),
    ("duration_seconds", U32),
    ("path", Str),
    ("title", Str),
    ("tag_keys", StrList),
    ("tag_values", StrList),
];

const EVENT_COLUMNS: &[Column] = &[
    ("visitor_id", U64),
    ("session_id", U32),
    ("time", Time),
    ("duration_seconds", U32),
    ("path", Str),
    ("title", Str),
    ("event_name", Str),
    ("event_meta_keys", StrList),
    ("event_meta_values", StrList),
];

const REQUEST_COLUMNS: &[Column] = &[
    ("visitor_id", U64),
    ("time", Time),
    ("ip", Str),
    ("user_agent", Str),
    ("hostname", Str),
    ("path", Str),
    ("event_name", Str),
    ("referrer", Str),
    ("utm_source", Str),
    ("utm_medium", Str),
    ("utm_campaign", Str),
    ("bot", Bool),
    ("bot_reason", Str),
];

const DIMS_COLUMNS: &[Column] = &[
    ("hostname", Str),
    ("language", Str),
    ("country_code", Str),
    ("region", Str),
    ("city", Str),
    ("referrer", Str),
    ("referrer_name", Str),
    ("os", Str),
    ("os_version", Str),
    ("browser", Str),
    ("browser_version", Str),
    ("desktop", Bool),
    ("mobile", Bool),
    ("screen_class", Str),
    ("screen_width", U32),
    ("utm_source", Str),
    ("utm_medium", Str),
    ("utm_campaign", Str),
    ("utm_content", Str),
    ("utm_term", Str),
    ("channel", Str),
];

/// The columns of a table in file order, with their kinds.
fn columns(table: Table) -> impl Iterator<Item = &'static Column> {
    let (own, dims): (&[Column], &[Column]) = match table {
        Table::Sessions => (SESSION_COLUMNS, DIMS_COLUMNS),
        Table::PageViews => (PAGE_VIEW_COLUMNS, DIMS_COLUMNS),
        Table::Events => (EVENT_COLUMNS, DIMS_COLUMNS),
        Table::Requests => (REQUEST_COLUMNS, &[]),
    };
    own.iter().chain(dims.iter())
}

/// Column names of a table in file order (the query layer's source of truth for column lists).
pub fn table_columns(table: Table) -> Vec<&'static str> {
    columns(table).map(|(name, _)| *name).collect()
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Time => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        U64 => DataType::UInt64,
        U32 => DataType::UInt32,
        I8 => DataType::Int8,
        Bool => DataType::Boolean,
        Str => DataType::Utf8,
        StrList => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
    }
}

/// The Arrow schema of a table's segment files.
pub fn schema(table: Table) -> SchemaRef {
    let fields: Vec<Field> = columns(table)
        .map(|(name, kind)| Field::new(*name, data_type(*kind), false))
        .collect();
    Arc::new(Schema::new(fields))
}

enum Builder {
    Time(TimestampMillisecondBuilder),
    U64(UInt64Builder),
    U32(UInt32Builder),
    I8(Int8Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    StrList(ListBuilder<StringBuilder>),
}

impl Builder {
    fn new(kind: Kind, capacity: usize) -> Builder {
        match kind {
            Time => Builder::Time(
                TimestampMillisecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            U64 => Builder::U64(UInt64Builder::with_capacity(capacity)),
            U32 => Builder::U32(UInt32Builder::with_capacity(capacity)),
            I8 => Builder::I8(Int8Builder::with_capacity(capacity)),
            Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            Str => Builder::Str(StringBuilder::with_capacity(capacity, capacity * 16)),
            StrList => Builder::StrList(ListBuilder::with_capacity(StringBuilder::new(), capacity)),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Time(mut b) => Arc::new(b.finish()),
            Builder::U64(mut b) => Arc::new(b.finish()),
            Builder::U32(mut b) => Arc::new(b.finish()),
            Builder::I8(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Str(mut b) => Arc::new(b.finish()),
            Builder::StrList(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Column builders filled one row at a time, in schema order. A push whose type does not match
/// the schema column marks the batch bad instead of panicking (a bug caught by the tests).
struct Columns {
    builders: Vec<Builder>,
    next: usize,
    mismatch: bool,
}

macro_rules! push_fn {
    ($name:ident, $variant:ident, $ty:ty) => {
        fn $name(&mut self, v: $ty) {
            match self.builders.get_mut(self.next) {
                Some(Builder::$variant(b)) => b.append_value(v),
                _ => self.mismatch = true,
            }
            self.next += 1;
        }
    };
}

impl Columns {
    fn new(table: Table, capacity: usize) -> Columns {
        let builders = columns(table)
            .map(|(_, kind)| Builder::new(*kind, capacity))
            .collect();
        Columns {
            builders,
            next: 0,
            mismatch: false,
        }
    }

    push_fn!(time, Time, i64);
    push_fn!(u64, U64, u64);
    push_fn!(u32, U32, u32);
    push_fn!(i8, I8, i8);
    push_fn!(bool, Bool, bool);
    push_fn!(str, Str, &str);

    fn list(&mut self, values: &[String]) {
        match self.builders.get_mut(self.next) {
            Some(Builder::StrList(b)) => {
                for v in values {
                    b.values().append_value(v);
                }
                b.append(true);
            }
            _ => self.mismatch = true,
        }
        self.next += 1;
    }

    fn dims(&mut self, d: &Dims) {
        self.str(&d.hostname);
        self.str(&d.language);
        self.str(&d.country_code);
        self.str(&d.region);
        self.str(&d.city);
        self.str(&d.referrer);
        self.str(&d.referrer_name);
        self.str(&d.os);
        self.str(&d.os_version);
        self.str(&d.browser);
        self.str(&d.browser_version);
        self.bool(d.desktop);
        self.bool(d.mobile);
        self.str(&d.screen_class);
        self.u32(d.screen_width);
        self.str(&d.utm_source);
        self.str(&d.utm_medium);
        self.str(&d.utm_campaign);
        self.str(&d.utm_content);
        self.str(&d.utm_term);
        self.str(&d.channel);
    }

    fn row(&mut self, row: &Row) {
        self.next = 0;
        match row {
            Row::Session(r) => {
                self.i8(r.sign);
                self.u32(r.version);
                self.u64(r.visitor_id);
                self.u32(r.session_id);
                self.time(r.time);
                self.time(r.start);
                self.u32(r.duration_seconds);
                self.bool(r.is_bounce);
                self.u32(r.page_views);
                self.u32(r.extended);
                self.str(&r.entry_path);
                self.str(&r.exit_path);
                self.str(&r.entry_title);
                self.str(&r.exit_title);
                self.dims(&r.dims);
            }
            Row::PageView(r) => {
                self.u64(r.visitor_id);
                self.u32(r.session_id);
                self.time(r.time);
                self.u32(r.duration_seconds);
                self.str(&r.path);
                self.str(&r.title);
                self.list(&r.tag_keys);
                self.list(&r.tag_values);
                self.dims(&r.dims);
            }
            Row::Event(r) => {
                self.u64(r.visitor_id);
                self.u32(r.session_id);
                self.time(r.time);
                self.u32(r.duration_seconds);
                self.str(&r.path);
                self.str(&r.title);
                self.str(&r.event_name);
                self.list(&r.event_meta_keys);
                self.list(&r.event_meta_values);
                self.dims(&r.dims);
            }
            Row::Request(r) => {
                self.u64(r.visitor_id);
                self.time(r.time);
                self.str(&r.ip);
                self.str(&r.user_agent);
                self.str(&r.hostname);
                self.str(&r.path);
                self.str(&r.event_name);
                self.str(&r.referrer);
                self.str(&r.utm_source);
                self.str(&r.utm_medium);
                self.str(&r.utm_campaign);
                self.bool(r.bot);
                self.str(&r.bot_reason);
            }
        }
        if self.next != self.builders.len() {
            self.mismatch = true;
        }
    }
}

/// Build the record batch of one table from its rows (all rows must belong to `table`).
pub fn record_batch(table: Table, rows: &[&Row]) -> Result<RecordBatch> {
    let mut cols = Columns::new(table, rows.len());
    for row in rows {
        if row.table() != table {
            return Err(CoreError::Storage(format!(
                "a {:?} row was given to the {} segment writer",
                row.table(),
                table.dir_name()
            )));
        }
        cols.row(row);
    }
    if cols.mismatch {
        return Err(CoreError::Storage(format!(
            "segment columns of {} do not match its schema",
            table.dir_name()
        )));
    }
    let arrays = cols.builders.into_iter().map(Builder::finish).collect();
    RecordBatch::try_new(schema(table), arrays).map_err(CoreError::storage)
}

/// Write rows of one table/site/day to `path` atomically (temp file + rename + fsync).
///
/// The temp file is `.<name>.tmp` in the same directory, so a reader globbing `*.arrow` never
/// sees a half-written file, and the rename is atomic. The file is fsynced before the rename and
/// the directory after it, so once this returns the segment survives a power loss.
pub fn write_segment(path: &Path, table: Table, rows: &[&Row]) -> Result<()> {
    let batch = record_batch(table, rows)?;
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name.to_string_lossy()),
        _ => {
            return Err(CoreError::Storage(format!(
                "bad segment path {}",
                path.display()
            )))
        }
    };
    create_dir_durable(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = write_ipc_file(&tmp, &batch).and_then(|()| {
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// zstd level of segment buffers: the cheapest, because the seal runs on every worker's
/// background thread and a segment only lives until the next live merge rewrites it.
const ZSTD_LEVEL: i32 = 1;

fn write_options() -> Result<IpcWriteOptions> {
    IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::ZSTD))
        .and_then(|o| o.try_with_compression_level(Some(ZSTD_LEVEL)))
        .map_err(CoreError::storage)
}

fn write_ipc_file(path: &Path, batch: &RecordBatch) -> Result<()> {
    let file = File::create(path)?;
    let mut writer =
        FileWriter::try_new_with_options(BufWriter::new(file), &batch.schema(), write_options()?)
            .map_err(CoreError::storage)?;
    writer.write(batch).map_err(CoreError::storage)?;
    let buffered = writer.into_inner().map_err(CoreError::storage)?;
    let file = buffered
        .into_inner()
        .map_err(|e| CoreError::storage(e.error()))?;
    file.sync_all()?;
    Ok(())
}

/// fsync a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// `create_dir_all` that also fsyncs the parent of every directory it creates.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            create_dir_durable(parent)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another thread or process created it in between: fine.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{EventRow, PageViewRow, RequestRow, SessionRow};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{TimestampMillisecondType, UInt64Type};
    use arrow_ipc::reader::FileReader;

    fn sample(table: Table) -> Row {
        let dims = Dims {
            hostname: "example.com".into(),
            mobile: true,
            ..Dims::default()
        };
        match table {
            Table::Sessions => Row::Session(SessionRow {
                sign: -1,
                time: 1_700_000_000_123,
                start: 1_700_000_000_000,
                dims,
                ..SessionRow::default()
            }),
            Table::PageViews => Row::PageView(PageViewRow {
                visitor_id: u64::MAX,
                time: 1_700_000_000_123,
                tag_keys: vec!["a".into(), "b".into()],
                tag_values: vec!["1".into(), "2".into()],
                dims,
                ..PageViewRow::default()
            }),
            Table::Events => Row::Event(EventRow {
                event_name: "signup".into(),
                time: 1_700_000_000_123,
                dims,
                ..EventRow::default()
            }),
            Table::Requests => Row::Request(RequestRow {
                bot: true,
                bot_reason: "ua".into(),
                time: 1_700_000_000_123,
                ..RequestRow::default()
            }),
        }
    }

    #[test]
    fn every_table_builds_a_batch_matching_its_schema() {
        let expected_widths = [
            (Table::Sessions, SESSION_COLUMNS.len() + DIMS_COLUMNS.len()),
            (
                Table::PageViews,
                PAGE_VIEW_COLUMNS.len() + DIMS_COLUMNS.len(),
            ),
            (Table::Events, EVENT_COLUMNS.len() + DIMS_COLUMNS.len()),
            (Table::Requests, REQUEST_COLUMNS.len()),
        ];
        for (table, width) in expected_widths {
            let row = sample(table);
            let batch = record_batch(table, &[&row, &row]).expect("batch");
            assert_eq!(batch.num_columns(), width, "{table:?}");
            assert_eq!(batch.num_rows(), 2);
            assert_eq!(table_columns(table).len(), width);
        }
    }

    #[test]
    fn a_row_of_another_table_is_an_error() {
        let row = sample(Table::Events);
        assert!(matches!(
            record_batch(Table::PageViews, &[&row]),
            Err(CoreError::Storage(_))
        ));
    }

    #[test]
    fn written_file_reads_back_with_types_and_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("page_views/site=s1/day=2023-11-14/x.arrow");
        let row = sample(Table::PageViews);
        write_segment(&path, Table::PageViews, &[&row]).expect("write");
        let names: Vec<_> = fs::read_dir(path.parent().expect("parent"))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("x.arrow")],
            "no temp file is left"
        );

        let reader = FileReader::try_new(File::open(&path).expect("open"), None).expect("reader");
        assert_eq!(reader.schema(), schema(Table::PageViews));
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        let batch = &batches[0];
        let visitor = batch.column_by_name("visitor_id").expect("col");
        assert_eq!(visitor.as_primitive::<UInt64Type>().value(0), u64::MAX);
        let time = batch.column_by_name("time").expect("col");
        assert_eq!(
            time.as_primitive::<TimestampMillisecondType>().value(0),
            1_700_000_000_123
        );
        let tags = batch
            .column_by_name("tag_keys")
            .expect("col")
            .as_list::<i32>()
            .value(0);
        assert_eq!(tags.as_string::<i32>().value(1), "b");
        let mobile = batch
            .column_by_name("mobile")
            .expect("col")
            .as_boolean()
            .value(0);
        assert!(mobile);
    }

    fn page_views(n: usize) -> Vec<Row> {
        let paths = ["/", "/pricing", "/blog/post-1", "/docs"];
        (0..n)
            .map(|i| {
                Row::PageView(PageViewRow {
                    visitor_id: (i as u64 / 3).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    session_id: 7,
                    time: 1_700_000_000_000 + i as i64 * 250,
                    path: paths[i % paths.len()].into(),
                    title: "A page".into(),
                    dims: Dims {
                        hostname: "example.com".into(),
                        browser: "Firefox".into(),
                        country_code: "de".into(),
                        channel: "Direct".into(),
                        ..Dims::default()
                    },
                    ..PageViewRow::default()
                })
            })
            .collect()
    }

    fn plain_ipc_size(batch: &RecordBatch) -> usize {
        let mut out = Vec::new();
        let mut writer = FileWriter::try_new(&mut out, &batch.schema()).expect("writer");
        writer.write(batch).expect("write");
        writer.finish().expect("finish");
        drop(writer);
        out.len()
    }

    #[test]
    fn segments_are_zstd_compressed_and_read_back_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir
            .path()
            .join("page_views/site=s1/day=2023-11-14/big.arrow");
        let rows = page_views(5_000);
        let refs: Vec<&Row> = rows.iter().collect();
        write_segment(&path, Table::PageViews, &refs).expect("write");

        let written = record_batch(Table::PageViews, &refs).expect("batch");
        let size = fs::metadata(&path).expect("stat").len() as usize;
        let plain = plain_ipc_size(&written);
        assert!(
            size * 4 < plain,
            "compressed {size} bytes, plain {plain} bytes"
        );
        let reader = FileReader::try_new(File::open(&path).expect("open"), None).expect("reader");
        let read: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        assert_eq!(read, vec![written]);
    }
}
