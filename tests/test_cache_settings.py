"""The worker cache settings: rules_cache_ms and access_key_cache_ms (TOML, TRAIL_* env, checks).

What they do to a running server is tested end to end in test_ingest_e2e.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trail.config import ConfigError, load

SETTINGS = ("rules_cache_ms", "access_key_cache_ms")


@pytest.mark.parametrize("name", SETTINGS)
def test_default_is_two_seconds(tmp_path: Path, name: str) -> None:
    assert getattr(load(env={}, flags={"data_dir": str(tmp_path)}), name) == 2000


@pytest.mark.parametrize("name", SETTINGS)
def test_toml_then_env(tmp_path: Path, name: str) -> None:
    toml = tmp_path / "trail.toml"
    toml.write_text(f"{name} = 500\n")
    flags = {"data_dir": str(tmp_path / "d")}
    assert getattr(load(str(toml), env={}, flags=flags), name) == 500
    env = {f"TRAIL_{name.upper()}": "0"}  # 0 = no cache: read every time
    assert getattr(load(str(toml), env=env, flags=flags), name) == 0


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("rules_cache_ms", "-1", "out of range"),
        ("rules_cache_ms", "3600001", "out of range"),
        ("rules_cache_ms", "2s", "not an integer"),
        ("access_key_cache_ms", "-5", "out of range"),
        ("access_key_cache_ms", "1.5", "not an integer"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(env={f"TRAIL_{name.upper()}": raw}, flags={"data_dir": str(tmp_path)})
    assert err.value.setting.split(" ")[0] == name
    assert message in err.value.message
