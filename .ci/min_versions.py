"""Pip constraints that pin every direct dependency in pyproject.toml to its floor, for the lowest-versions CI job."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

FLOOR = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)\s*$")


def floors(pyproject: Path) -> dict[str, str]:
    """{name: floor} for the base dependencies and every extra; a dependency without a `>=` floor is an error."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pins: dict[str, str] = {}
    for requirement in requirements:
        if requirement.startswith(f"{project['name']}["):  # an extra that includes other extras
            continue
        match = FLOOR.match(requirement)
        if match is None:
            raise SystemExit(f"{pyproject}: {requirement!r} needs a floor of the form 'name>=version'")
        name, version = match.group(1).lower(), match.group(3)
        if pins.setdefault(name, version) != version:
            raise SystemExit(f"{pyproject}: {name} has two floors, {pins[name]} and {version}")
    return pins


def main() -> None:
    pyproject = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(f"{name}=={version}" for name, version in sorted(floors(pyproject).items())))


if __name__ == "__main__":
    main()
