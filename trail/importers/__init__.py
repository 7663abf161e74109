"""Bringing rows from elsewhere into a site: `trail import <kind>` (arguments in
trail.data_commands).

- `trail import trail` (trail.importers.trail_export): an export of trail itself.
- `trail import goatcounter` (trail.importers.goatcounter): GoatCounter's CSV export, as rows.
- `trail import plausible|fathom` (trail.importers.commands, .aggregates, .plausible, .fathom):
  daily aggregates into the imported statistics; also through the Pirsch API's import jobs
  (trail.services.imports).
"""
