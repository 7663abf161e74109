"""The statistics reference model: a naive, obviously-correct Pirsch, and what checks trail with it.

- `sessions`: accepted hits -> the stored rows (sessions with their collapsing signs, page views,
  events), as the ingest state machine makes them.
- `filters`: the filter language (query parameters) -> a `Query` with row predicates.
- `selection`: which rows a report reads for a filter, and the four core metrics over them.
- `reports` (totals, series, durations, growth), `breakdowns` (by a session dimension, filter
  options), `pages` (pages, entry/exit, tags, active, sessions), `events`: one function per
  `/api/v1/statistics/*` endpoint.
- `model`: the endpoint table, `answer(tables, site_tz, endpoint, params, now)`.
- `traffic`: Hypothesis strategies for realistic accepted traffic and for filters.
- `harness`: sends traffic through a real server and diffs every endpoint against the model.
- `test_model.py`: the model pinned by hand-worked examples; `test_differential.py`: the model
  against a real server on generated traffic, before and after compaction; `explore.py`: many
  examples, disagreements tallied by class.

    .venv/bin/pytest tests/oracle/test_model.py
    TRAIL_ORACLE_EXAMPLES=1000 .venv/bin/pytest tests/oracle/test_differential.py
    .venv/bin/python -m tests.oracle.explore 1000 1 --compacted

Everything cites Pirsch's statistics semantics ("§5" = section 5 of trail's reference notes on
how Pirsch computes each number) or, for what the notes leave open, the trail or Pirsch source it
was read from.

Where trail deliberately differs from Pirsch, the model follows trail and says so (selection.py:
sessions are counted in the window of their final state).
"""
