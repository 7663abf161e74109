"""Print the runtime and dev dependencies from pyproject.toml, one per line, for pip."""

import tomllib
from pathlib import Path

project = tomllib.loads(Path(__file__).resolve().parent.parent.joinpath("pyproject.toml").read_text())["project"]
for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
    print(dep)
