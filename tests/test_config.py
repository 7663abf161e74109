"""Configuration: precedence of the sources and one clear error per bad setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trail.config import Config, ConfigError, load


def test_defaults(tmp_path: Path) -> None:
    config = load(env={}, flags={"data_dir": str(tmp_path / "d")})
    assert (config.host, config.port, config.fsync_interval_ms, config.strict_fsync) == (
        "127.0.0.1",
        8000,
        1000,
        False,
    )
    assert config.workers == (os.cpu_count() or 1)
    assert config.limits.max_body_bytes == 1 << 20 and config.limits.max_batch == 1000
    assert (config.limits.max_hit_age_days, config.limits.max_hit_future_seconds) == (365, 300)
    assert config.data_dir == str((tmp_path / "d").resolve()) and (tmp_path / "d").is_dir()


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    toml = tmp_path / "trail.toml"
    toml.write_text(
        f'port = 9000\nworkers = 3\ndata_dir = "{tmp_path / "a"}"\ntrusted_proxies = ["10.0.0.0/8"]\n'
        "[limits]\nmax_batch = 10\n"
    )
    env = {
        "TRAIL_PORT": "9100",
        "TRAIL_TRUSTED_PROXIES": "192.168.0.0/16, ::1",
        "TRAIL_STRICT_FSYNC": "yes",
    }
    config = load(str(toml), env=env, flags={"port": 9200, "host": None})
    assert config.port == 9200  # flag beats env beats file
    assert config.workers == 3 and config.limits.max_batch == 10
    assert config.trusted_proxies == ("192.168.0.0/16", "::1")
    assert config.strict_fsync is True


def test_round_trips_as_json(tmp_path: Path) -> None:
    config = load(env={"TRAIL_TRUSTED_PROXIES": "10.0.0.0/8"}, flags={"data_dir": str(tmp_path)})
    assert Config.from_json(config.to_json()) == config


def _mmdb_like(tmp_path: Path) -> str:
    p = tmp_path / "geo.mmdb"
    p.write_bytes(b"\0" * 64 + b"\xab\xcd\xefMaxMind.com" + b"\0" * 16)
    return str(p)


CASES = [
    # (source, values, setting named in the error)
    ("flags", {"host": "example.com"}, "host"),
    ("flags", {"host": "999.1.1.1"}, "host"),
    ("flags", {"port": 0}, "port"),
    ("flags", {"port": 70000}, "port"),
    ("flags", {"workers": 0}, "workers"),
    ("env", {"TRAIL_PORT": "eighty"}, "port (TRAIL_PORT)"),
    ("env", {"TRAIL_WORKERS": "-1"}, "workers"),
    ("env", {"TRAIL_FSYNC_INTERVAL_MS": "0"}, "fsync_interval_ms"),
    ("env", {"TRAIL_TRUSTED_PROXIES": "10.0.0.0/8,not-a-net"}, "trusted_proxies"),
    ("env", {"TRAIL_STRICT_FSYNC": "maybe"}, "strict_fsync (TRAIL_STRICT_FSYNC)"),
    ("env", {"TRAIL_GEOIP_DB": "/nonexistent/GeoLite2-City.mmdb"}, "geoip_db"),
    ("env", {"TRAIL_MAX_BODY_BYTES": "10"}, "limits.max_body_bytes"),
    ("env", {"TRAIL_MAX_HIT_AGE_DAYS": "0"}, "limits.max_hit_age_days"),
    ("env", {"TRAIL_MAX_HIT_FUTURE_SECONDS": "-1"}, "limits.max_hit_future_seconds"),
    ("toml", "[limits]\nmax_hit_age_days = 100000\n", "limits.max_hit_age_days"),
    ("env", {"TRAIL_LOG_LEVEL": "loud"}, "log_level"),
    ("toml", "prot = 8000\n", "prot"),
    ("toml", "[limits]\nmax_bach = 3\n", "limits.max_bach"),
    ("toml", 'port = "8000"\n', "port"),
    ("toml", "workers = true\n", "workers"),
    ("toml", "port = \n", "config"),
    ("env", {"TRAIL_SESSION_LIFETIME_S": "0"}, "session_lifetime_s"),
    ("env", {"TRAIL_PASSWORD_LINK_LIFETIME_S": "99999999"}, "password_link_lifetime_s"),
    ("env", {"TRAIL_RATE_LIMIT_SIGNIN_IP": "ten"}, "rate_limit_signin_ip"),
    ("env", {"TRAIL_RATE_LIMIT_SIGNIN_ACCOUNT": "5/0"}, "rate_limit_signin_account"),
    ("env", {"TRAIL_COOKIE_SECURE": "sometimes"}, "cookie_secure (TRAIL_COOKIE_SECURE)"),
    ("env", {"TRAIL_PUBLIC_URL": "trail.example.com"}, "public_url"),
    ("toml", 'public_url = "https://trail.example.com/?x=1"\n', "public_url"),
]


@pytest.mark.parametrize(("source", "values", "setting"), CASES)
def test_bad_settings_name_the_setting(
    tmp_path: Path, source: str, values: object, setting: str
) -> None:
    env: dict[str, str] = {}
    flags: dict[str, object] = {"data_dir": str(tmp_path / "d")}
    config_file = None
    if source == "flags":
        flags.update(values)  # type: ignore[arg-type]
    elif source == "env":
        env.update(values)  # type: ignore[arg-type]
    else:
        config_file = tmp_path / "trail.toml"
        config_file.write_text(str(values))
    with pytest.raises(ConfigError) as err:
        load(str(config_file) if config_file else None, env=env, flags=flags)
    assert err.value.setting == setting


def test_geoip_file_must_be_an_mmdb(tmp_path: Path) -> None:
    not_mmdb = tmp_path / "x.mmdb"
    not_mmdb.write_bytes(b"hello")
    with pytest.raises(ConfigError, match="not a MaxMind"):
        load(env={"TRAIL_GEOIP_DB": str(not_mmdb)}, flags={"data_dir": str(tmp_path)})
    config = load(env={"TRAIL_GEOIP_DB": _mmdb_like(tmp_path)}, flags={"data_dir": str(tmp_path)})
    assert config.geoip_db and config.geoip_db.endswith("geo.mmdb")


def test_data_dir_not_writable(tmp_path: Path) -> None:
    # /proc/self is a directory nobody can create files in, root included (CI runs as root,
    # where a chmod 0500 directory would still be writable).
    with pytest.raises(ConfigError) as err:
        load(env={}, flags={"data_dir": "/proc/self"})
    assert err.value.setting == "data_dir"


def test_data_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError) as err:
        load(env={}, flags={"data_dir": str(tmp_path / "file" / "data")})
    assert err.value.setting == "data_dir"


def test_cli_prints_the_setting_and_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trail", "serve", "--port", "70000", "--data-dir", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("trail: config: port: 70000 is out of range")


def test_public_url_is_kept_without_its_trailing_slash(tmp_path: Path) -> None:
    env = {"TRAIL_PUBLIC_URL": "https://trail.example.com/analytics/"}
    config = load(env=env, flags={"data_dir": str(tmp_path)})
    assert config.public_url == "https://trail.example.com/analytics"
    assert load(env={}, flags={"data_dir": str(tmp_path)}).public_url == ""
