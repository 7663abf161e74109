"""The rows of a GoatCounter export (read by trail.importers.goatcounter) as trail's page
views, sessions and events (docs/import.md, section GoatCounter):

- Bot rows are skipped (and counted). The rows of one GoatCounter session are one visitor,
  its id a keyed hash of (site, session id), so a rerun gives the same ids; a row without a
  session id is a visitor of its own. They split into trail sessions where 30 minutes pass
  between two page views (trail's session timeout, rust_core/src/session.rs); session ids
  number them from 1 within the visitor.
- A session is built from its page views: start, final time and duration from their times,
  entry and exit page, page views, bounce when one page was viewed (reloads count as one),
  and its earlier states as presence rows (`sign` 0), as trail writes them, so visitors per
  hour count it in every hour it was seen. Each page view's duration is the time since the
  session's previous one.
- An event row (Event true) becomes an event named after its Path, on the page of the latest
  page view of its visitor at or before it, in that view's session.
- The dimensions of a session come from its first row and are derived by trail's own rules
  (trail.core.imported_dims: referrer name, channel, browser and OS names, platform, screen
  class): browser and OS from the Browser and System cells, or parsed from UserAgent when both
  are blank. The country is Location's first two letters; the region, when Location names a
  subdivision (GoatCounter records its ISO 3166-2 code, `US-CA`), its English name as collected
  rows have it ("California"; the code when pycountry does not know it); no city or language.
"""

from __future__ import annotations

import hashlib
from typing import Any

import polars as pl

from trail.core import LIMITS, imported_dims
from trail.importers.plausible import region_name
from trail.storage.schema import STRINGS, TABLES

SESSION_GAP_MS = 30 * 60_000  # trail's session timeout (SESSION_TIMEOUT_MS in session.rs)
SESSION_KEYS = ["visitor_id", "session_id"]
MAX_PATH = 2000  # dims::MAX_PATH: trail keeps paths up to this many characters
EMPTY = pl.lit([], dtype=STRINGS)
# The inputs of trail.core.imported_dims, in its order, and what it answers.
DIM_INPUTS = ["in_referrer", "in_utm", "user_agent", "b_name", "b_version", "o_name",
              "o_version", "width"]  # fmt: skip
DERIVED = {
    "referrer": pl.String(), "referrer_name": pl.String(), "channel": pl.String(),
    "utm_source": pl.String(), "browser": pl.String(), "browser_version": pl.String(),
    "os": pl.String(), "os_version": pl.String(), "screen_class": pl.String(),
    "desktop": pl.Boolean(), "mobile": pl.Boolean(), "screen_width": pl.UInt32(),
}  # fmt: skip


def visitor_ids(site_id: str, sessions: pl.Series) -> pl.DataFrame:
    """A stable 64-bit visitor id per GoatCounter session, keyed by the site."""
    ids = [
        int.from_bytes(
            hashlib.blake2b(f"{site_id}\0{s}".encode(), digest_size=8, person=b"goatcntr").digest()
        )
        for s in sessions
    ]
    return pl.DataFrame({"gc": sessions, "visitor_id": pl.Series(ids, dtype=pl.UInt64)})


def run_start(keys: list[str]) -> pl.Expr:
    """True on the first row of each run of equal `keys` (rows sorted by them)."""
    return pl.any_horizontal([pl.col(k) != pl.col(k).shift(1) for k in keys]).fill_null(True)


def at_start(expr: pl.Expr, first: str = "first") -> pl.Expr:
    """`expr` as on the first row of its run, on every row of the run."""
    return pl.when(pl.col(first)).then(expr).forward_fill()


# Rows are sorted by visitor and time, so each session is a run of rows: its values come from
# shifts and forward fills over the run starts, linear passes that are much faster than
# window functions over hundreds of thousands of small groups.


def sessions_of(rows: pl.DataFrame, site_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(page views, events), each with visitor_id and session_id (see the module doc)."""
    gc = pl.when(pl.col("session") == "").then(pl.format("row:{}", "row"))
    rows = rows.with_columns(gc=gc.otherwise(pl.col("session")))
    rows = rows.join(visitor_ids(site_id, rows["gc"].unique(maintain_order=True)), on="gc")
    t = pl.col("time").dt.epoch("ms")
    views = (
        rows.filter(~pl.col("is_event"))
        .sort(["visitor_id", "time", "row"])
        .with_columns(first=run_start(["visitor_id"]))
        .with_columns(n=(pl.col("first") | (t - t.shift(1) > SESSION_GAP_MS)).cum_sum())
        .with_columns(session_id=(pl.col("n") - at_start(pl.col("n")) + 1).cast(pl.UInt32))
        .drop("first", "n")
    )
    anchor = views.select("visitor_id", "time", "session_id", view_path="path").sort("time")
    events = (
        rows.filter(pl.col("is_event"))
        .sort("time")
        .join_asof(anchor, on="time", by="visitor_id", strategy="backward", check_sortedness=False)
        .with_columns(pl.col("session_id").fill_null(1), pl.col("view_path").fill_null(""))
    )
    return views, events


def session_dims(views: pl.DataFrame, events: pl.DataFrame, hostname: str) -> pl.DataFrame:
    """The dimensions of each (visitor_id, session_id), from its first row."""
    cols = [*SESSION_KEYS, "time", "row", "referrer", "scheme", "user_agent", "browser",
            "system", "width", "location"]  # fmt: skip
    first = (
        pl.concat([views.select(cols), events.select(cols)])
        .sort([*SESSION_KEYS, "time", "row"])
        .unique(subset=SESSION_KEYS, keep="first", maintain_order=True)
    )
    ref, scheme = pl.col("referrer"), pl.col("scheme")
    url = pl.when(ref.str.contains("://") | (ref == "")).then(ref).otherwise("https://" + ref)
    version = r"\s+(\d\S*)$"
    first = first.with_columns(
        in_referrer=pl.when(scheme == "c").then(pl.lit("")).when(scheme == "h").then(url)
        .otherwise(ref),
        in_utm=pl.when(scheme == "c").then(ref).otherwise(pl.lit("")),
        b_name=pl.col("browser").str.replace(version, ""),
        b_version=pl.col("browser").str.extract(version, 1).fill_null(""),
        o_name=pl.col("system").str.replace(version, ""),
        o_version=pl.col("system").str.extract(version, 1).fill_null(""),
        country_code=pl.col("location").str.slice(0, 2).str.to_lowercase(),
        region=pl.when(pl.col("location").str.contains("-")).then(pl.col("location"))
        .otherwise(pl.lit("")),
    )  # fmt: skip
    codes = [c for c in first.get_column("region").unique().to_list() if c]
    first = first.with_columns(pl.col("region").replace({c: region_name(c) for c in codes}))
    inputs = first.select(DIM_INPUTS).unique()
    parse_ua = inputs.filter(
        (pl.col("b_name") == "") & (pl.col("o_name") == "") & (pl.col("user_agent") != "")
    ).height
    derived = imported_dims(hostname, inputs.rows(), _ua_rules() if parse_ua else None)
    inputs = pl.concat([inputs, pl.DataFrame(derived, schema=DERIVED)], how="horizontal")
    first = first.select(*SESSION_KEYS, "country_code", "region", *DIM_INPUTS)
    return first.join(inputs, on=DIM_INPUTS, nulls_equal=True).select(
        *SESSION_KEYS, "country_code", "region", *DERIVED,
        hostname=pl.lit(hostname), language=pl.lit(""), city=pl.lit(""), utm_medium=pl.lit(""),
        utm_campaign=pl.lit(""), utm_content=pl.lit(""), utm_term=pl.lit(""),
    )  # fmt: skip


def _ua_rules() -> Any:
    from trail.datalists import load_ua_rules

    return load_ua_rules()


def clean_path(col: str) -> pl.Expr:
    """As trail stores a path: without query or fragment, "/" when empty, at most MAX_PATH."""
    path = pl.col(col).str.replace(r"[?#].*$", "").str.slice(0, MAX_PATH)
    return pl.when(path == "").then(pl.lit("/")).otherwise(path)


def page_view_rows(views: pl.DataFrame) -> pl.DataFrame:
    """`views` (sorted by visitor and time) as trail's page views."""
    gap = (pl.col("time") - pl.col("time").shift(1)).dt.total_seconds()
    return views.with_columns(
        duration_seconds=pl.when(run_start(SESSION_KEYS)).then(0).otherwise(gap),
        path=clean_path("path"),
        title=pl.col("title").str.slice(0, LIMITS["title"]),
        tag_keys=EMPTY,
        tag_values=EMPTY,
    )


def session_rows(page_views: pl.DataFrame) -> pl.DataFrame:
    """Each session's final state (sign 1) and its earlier states (sign 0, presence rows)."""
    index = pl.int_range(pl.len(), dtype=pl.UInt32)
    states = page_views.with_columns(first=run_start(SESSION_KEYS), i=index).with_columns(
        version=pl.col("i") - at_start(pl.col("i")) + 1,
        final=pl.col("first").shift(-1).fill_null(True),
        start=at_start(pl.col("time")),
        entry_path=at_start(pl.col("path")),
        entry_title=at_start(pl.col("title")),
        exit_path=pl.col("path"),
        exit_title=pl.col("title"),
    )
    # One page viewed so far; a reload (the same path again) keeps the bounce.
    other_pages = (pl.col("path") != pl.col("entry_path")).cast(pl.UInt32).cum_sum()
    return states.with_columns(
        page_views=pl.col("version"),
        is_bounce=other_pages - at_start(other_pages) == 0,
        sign=pl.when(pl.col("final")).then(1).otherwise(0),
        duration_seconds=(pl.col("time") - pl.col("start")).dt.total_seconds(),
        extended=pl.lit(0),
    )


def event_rows(events: pl.DataFrame) -> pl.DataFrame:
    return events.with_columns(
        duration_seconds=pl.lit(0),
        event_name=pl.col("path").str.slice(0, LIMITS["event_name"]),
        path=pl.when(pl.col("view_path") == "").then(pl.lit("")).otherwise(clean_path("view_path")),
        title=pl.col("title").str.slice(0, LIMITS["title"]),
        event_meta_keys=EMPTY,
        event_meta_values=EMPTY,
    )


def build(rows: pl.DataFrame, site_id: str, hostname: str) -> dict[str, pl.DataFrame]:
    """trail's rows, per export file stem (trail.export.FILES), in the stored types."""
    views, events = sessions_of(rows, site_id)
    dims = session_dims(views, events, hostname)
    page_views = page_view_rows(views)
    states = session_rows(page_views)
    # The GoatCounter cells of the same names (referrer, browser, ...) give way to the
    # session's derived dimensions.
    raw = [c for c in dims.columns if c not in SESSION_KEYS]

    def with_dims(df: pl.DataFrame) -> pl.DataFrame:
        return df.drop(raw, strict=False).join(dims, on=SESSION_KEYS, how="left")

    tables = {
        "page_views": with_dims(page_views),
        "sessions": with_dims(states.filter(pl.col("sign") == 1)),
        "session_presence": with_dims(states.filter(pl.col("sign") == 0)),
        "events": with_dims(event_rows(events)),
    }
    table_of = {"session_presence": "sessions"}
    return {
        stem: df.select([pl.col(c).cast(t) for c, t in TABLES[table_of.get(stem, stem)].items()])
        for stem, df in tables.items()
    }
