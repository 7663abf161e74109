//! The rows trail stores: one struct per table, as in the reference data model.
//!
//! All times are UTC milliseconds. The site is not a column: it is the partition
//! directory (`segments/<table>/site=<id>/day=<YYYY-MM-DD>/`).

use serde::{Deserialize, Serialize};

/// Session-level dimensions, derived once per hit and repeated on every row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dims {
    pub hostname: String,
    pub language: String,
    pub country_code: String,
    pub region: String,
    pub city: String,
    pub referrer: String,
    pub referrer_name: String,
    pub os: String,
    pub os_version: String,
    pub browser: String,
    pub browser_version: String,
    pub desktop: bool,
    pub mobile: bool,
    pub screen_class: String,
    /// Pixels, 0 = unknown; the class above is derived from it, TinyTrail buckets need it raw.
    pub screen_width: u32,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    pub channel: String,
}

/// A collapsing session row: `sign` +1 is a state, -1 cancels the previous state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub sign: i8,
    pub version: u32,
    pub visitor_id: u64,
    pub session_id: u32,
    pub time: i64,
    pub start: i64,
    pub duration_seconds: u32,
    pub is_bounce: bool,
    pub page_views: u32,
    pub extended: u32,
    pub entry_path: String,
    pub exit_path: String,
    pub entry_title: String,
    pub exit_title: String,
    pub dims: Dims,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PageViewRow {
    pub visitor_id: u64,
    pub session_id: u32,
    pub time: i64,
    /// Seconds since the previous hit of the same session (time spent on the previous page).
    pub duration_seconds: u32,
    pub path: String,
    pub title: String,
    pub tag_keys: Vec<String>,
    pub tag_values: Vec<String>,
    pub dims: Dims,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub visitor_id: u64,
    pub session_id: u32,
    pub time: i64,
    /// The user-supplied event duration in seconds.
    pub duration_seconds: u32,
    pub path: String,
    pub title: String,
    pub event_name: String,
    pub event_meta_keys: Vec<String>,
    pub event_meta_values: Vec<String>,
    pub dims: Dims,
}

/// The bot-analysis log: one bot=false row per new session, one bot=true row per drop.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    pub visitor_id: u64,
    pub time: i64,
    pub ip: String,
    pub user_agent: String,
    pub hostname: String,
    pub path: String,
    pub event_name: String,
    pub referrer: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub bot: bool,
    pub bot_reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Row {
    Session(SessionRow),
    PageView(PageViewRow),
    Event(EventRow),
    Request(RequestRow),
}

/// The four tables; the name is the directory under `segments/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Sessions,
    PageViews,
    Events,
    Requests,
}

impl Table {
    pub const ALL: [Table; 4] = [
        Table::Sessions,
        Table::PageViews,
        Table::Events,
        Table::Requests,
    ];

    pub fn dir_name(self) -> &'static str {
        match self {
            Table::Sessions => "sessions",
            Table::PageViews => "page_views",
            Table::Events => "events",
            Table::Requests => "requests",
        }
    }
}

impl Row {
    pub fn table(&self) -> Table {
        match self {
            Row::Session(_) => Table::Sessions,
            Row::PageView(_) => Table::PageViews,
            Row::Event(_) => Table::Events,
            Row::Request(_) => Table::Requests,
        }
    }

    pub fn time(&self) -> i64 {
        match self {
            Row::Session(r) => r.time,
            Row::PageView(r) => r.time,
            Row::Event(r) => r.time,
            Row::Request(r) => r.time,
        }
    }
}

/// Rows of one site, the unit the WAL and the segment writer take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteRows {
    pub site: String,
    pub rows: Vec<Row>,
}
