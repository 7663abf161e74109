from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from segment_rows import SiteData

from trail.storage import rollups


@pytest.fixture
def site(tmp_path: Path) -> SiteData:
    return SiteData(tmp_path)


@pytest.fixture(scope="module")
def rollups_on() -> Iterator[None]:
    """For modules that compare the rollups with the rows, whatever TRAIL_ROLLUPS says
    (`pytestmark = pytest.mark.usefixtures("rollups_on")`)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rollups, "ENABLED", True)
        yield
