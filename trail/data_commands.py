"""The arguments of `trail export` and `trail import trail` (docs/export.md), kept apart from the
work (trail.export, trail.importers.trail_export) so that building the `trail` parser imports
neither Polars nor the storage layer."""

from __future__ import annotations

import argparse
from typing import Any

FORMATS = ("parquet", "csv")  # trail.export.FORMATS


def add_commands(commands: Any) -> None:
    """`trail export ...` and `trail import trail ...` on the subcommands of `trail`."""
    p = commands.add_parser(
        "export",
        help="export a site's raw rows (Parquet or CSV) with a manifest",
        description="Write the page views, sessions and events of a site's local dates "
        "FROM..TO into OUT, one file per table plus manifest.json (docs/export.md). "
        "Works while the server runs.",
    )
    p.add_argument("--config", help="TOML config file (for data_dir)")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--site", required=True, help="the site's id (or its hostname, if unique)")
    p.add_argument("--from", dest="from_date", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="to_date", required=True, metavar="YYYY-MM-DD")
    p.add_argument(
        "--format",
        choices=(*FORMATS, "plausible"),
        default="parquet",
        help="parquet or csv: the raw rows; plausible: daily aggregates as Plausible CE's CSV "
        "export (docs/import.md)",
    )
    p.add_argument("--out", required=True, help="directory to write (new or empty)")
    p.add_argument("--force", action="store_true", help="write into a directory that is not empty")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON at the end")

    add_migrate(commands)
    kinds = commands.add_parser("import", help="import rows into a site").add_subparsers(
        dest="import_kind", required=True
    )
    i = kinds.add_parser(
        "trail",
        help="import an export of trail (a directory or zip) into a site",
        description="Import the rows of a `trail export` (or of GET /api/v1/export) into an "
        "existing site, with their visitor and session ids, so every report answers as it did "
        "in the source. Re-importing replaces the sessions it brings (docs/export.md). Works "
        "while the server runs.",
    )
    _import_arguments(i, "source", "the export directory or zip file")
    g = kinds.add_parser(
        "goatcounter",
        help="import a GoatCounter CSV export (.csv or .csv.gz) into a site",
        description="Import the page views and events of a GoatCounter CSV export (format "
        "version 2) as real rows with their own times: every report works on them. Bot rows "
        "are skipped. Re-importing replaces what an earlier import of the same rows brought "
        "(docs/import.md). Works while the server runs.",
    )
    _import_arguments(g, "source", "the export: a .csv or .csv.gz file")
    for kind, what in (
        ("plausible", "Plausible CE's CSV export"),
        ("fathom", "Fathom's CSV export"),
    ):
        a = kinds.add_parser(
            kind,
            help=f"import {what} (a zip) as a site's imported daily statistics",
            description=f"Check {what} (a zip) completely, then replace the site's imported "
            "statistics of the days it covers with its daily aggregates (docs/import.md). "
            "Shows a progress bar on stderr. Works while the server runs; running it again "
            "leaves the same rows.",
        )
        _import_arguments(a, "file", "the export's zip file")


def _import_arguments(p: argparse.ArgumentParser, source: str, what: str) -> None:
    """The arguments every `trail import` kind takes, and its input named `source`."""
    p.add_argument("--config", help="TOML config file (for data_dir)")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--site", required=True, help="the target site's id (or unique hostname)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(source, help=what)


def add_migrate(commands: Any) -> None:
    """`trail migrate clickhouse` (docs/clickhouse.md, "History") and `trail migrate postgres`
    (docs/scale-out.md)."""
    kinds = commands.add_parser("migrate", help="move data to another backend").add_subparsers(
        dest="migrate_kind", required=True
    )
    p = kinds.add_parser(
        "clickhouse",
        help="ship the compacted history of a data directory to ClickHouse",
        description="Ship the Parquet parts that were compacted before ClickHouse shipping "
        "began (the rest is the shipper's). Idempotent: run it again after a failure.",
    )
    p.add_argument("--config", help="TOML config file (for data_dir and clickhouse_url)")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--url", help="the clickhouse_url (default: from the configuration)")
    p = kinds.add_parser(
        "postgres",
        help="copy a data directory's LMDB meta store into PostgreSQL",
        description="Copy every record of the LMDB meta store (users, keys, sites, clients, "
        "goals, settings, ...) and the user-key secret into a PostgreSQL meta store, then let "
        'the data directory start with meta_store = "postgres" (docs/scale-out.md). '
        "Idempotent: run it again after a failure, or after the LMDB store changed.",
    )
    p.add_argument("--config", help="TOML config file (for data_dir and postgres_url)")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--url", help="the postgres_url (default: from the configuration)")


def run(args: argparse.Namespace) -> int | None:
    """The exit code of `trail export` or `trail import ...`; None for any other command."""
    if args.command == "migrate" and args.migrate_kind == "postgres":
        from trail.storage.pg_migrate import cmd_migrate as migrate_postgres

        return migrate_postgres(args)
    if args.command == "migrate":
        from trail.clickhouse.migrate import cmd_migrate

        return cmd_migrate(args)
    if args.command == "export":
        from trail.export import cmd_export

        return cmd_export(args)
    if args.command == "import" and args.import_kind in ("plausible", "fathom"):
        from trail.importers.commands import cmd_import as cmd_import_statistics

        return cmd_import_statistics(args)
    if args.command == "import" and args.import_kind == "goatcounter":
        from trail.importers.goatcounter import cmd_import as goatcounter_import

        return goatcounter_import(args)
    if args.command == "import":
        from trail.importers.trail_export import cmd_import

        return cmd_import(args)
    return None
