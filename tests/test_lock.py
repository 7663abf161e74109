"""requirements.lock pins a version that satisfies every requirement in pyproject.toml.

`make install` installs from the lock only, so a dependency added to pyproject.toml without
`make lock` would be missing from every fresh install (and from CI).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _requirements() -> list[str]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = doc["project"]
    return (
        project["dependencies"]
        + project["optional-dependencies"]["dev"]
        + doc["build-system"]["requires"]
    )


def _pins() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


@pytest.mark.parametrize("spec", _requirements())
def test_the_lock_satisfies_pyproject(spec: str) -> None:
    req = Requirement(spec)
    pinned = _pins().get(canonicalize_name(req.name))
    assert pinned is not None, f"{req.name} is not in requirements.lock: run `make lock`"
    assert req.specifier.contains(pinned, prereleases=True), (
        f"requirements.lock has {req.name}=={pinned}, pyproject.toml wants {spec}: run `make lock`"
    )


def test_every_pin_has_hashes() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    unhashed = [b.split()[0] for b in blocks if PIN.match(b) and "--hash=sha256:" not in b]
    assert not unhashed, f"pins without hashes (pip --require-hashes refuses them): {unhashed}"
