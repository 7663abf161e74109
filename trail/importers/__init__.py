"""Bringing rows from elsewhere into a site: `trail import <kind>` (arguments in
trail.data_commands).

One kind so far: `trail import trail` (trail.importers.trail_export), an export of trail itself.
"""
