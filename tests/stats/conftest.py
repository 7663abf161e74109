from __future__ import annotations

from pathlib import Path

import pytest
from segment_rows import SiteData


@pytest.fixture
def site(tmp_path: Path) -> SiteData:
    return SiteData(tmp_path)
