"""`trail import plausible|fathom --site ID FILE`: an export of daily aggregates into a site's
imported statistics (trail.importers.aggregates), with a progress bar and a summary.

The progress goes to stderr (trail.importers.progress): one line redrawn in place when stderr is
a terminal, a plain line every few seconds otherwise; the archive is read twice, "checking" then
"writing", each with its bar and estimate of the time left. Safe while the server runs (imported
tables are replaced under their own lock, readers see the old rows or the new ones) and
idempotent: running the same import again, or after it was interrupted, leaves the same rows.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from trail.export import ExportError, cli_error, lookup_site
from trail.importers import aggregates
from trail.importers.archive import ImportFormatError
from trail.importers.progress import ImportProgress


class Bar:
    """The shared import progress line (trail.importers.progress), one phase per pass."""

    def __init__(self, verb: str) -> None:
        self.progress = ImportProgress(verb)
        self.phase = ""

    def __call__(self, phase: str, rows: int, done: int, total: int) -> None:
        if phase != self.phase:
            self.phase = phase
            self.progress.begin(phase, total)
        self.progress.advance(done, rows, done)

    def close(self) -> None:
        self.progress.close()


def cmd_import(args: argparse.Namespace) -> int:
    from trail.config import load

    config = load(args.config, flags={"data_dir": args.data_dir}, create_data_dir=False)
    command = f"import {args.import_kind}"
    try:
        site = lookup_site(config, args.site)
    except ExportError as e:
        return cli_error(command, e)
    bar = Bar(f"import {args.import_kind}")
    try:
        summary = aggregates.run(args.import_kind, args.file, config.data_dir, site.id, bar)
    except ImportFormatError as e:
        print(f"trail: {command}: {args.file}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"trail: {command}: {args.file}: {e.strerror or e}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    if args.json:
        print(orjson.dumps({"site": site.id, **summary.as_json()}).decode())
        return 0
    seconds = max(summary.seconds, 1e-6)
    print(
        f"imported {summary.kind} {summary.first}..{summary.last} into "
        f"{site.hostname or site.id} ({site.id}): {summary.files} files, "
        f"{summary.source_rows:,} rows in {summary.seconds:.1f} s "
        f"({summary.source_rows / seconds:,.0f} rows/s)"
    )
    for table, rows in summary.stored_rows.items():
        print(f"  {table:<14} {rows:>12,} daily rows")
    for note in summary.notes:
        print(f"  note: {note}")
    return 0
