"""The versions of Ray and uvicorn that Auralis runs with, checked at start.

`serve/direct.py` and `serve/shared_port.py` reach into private parts of Ray Serve and uvicorn, so
Auralis supports exactly the ranges its package declares (pyproject.toml) and refuses to start on
others with one line that names the package, the version found and the range.
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.requirements import Requirement

DISTRIBUTION = "auralis-ray"
# packages whose private internals Auralis uses: their declared ranges are enforced at start
PINNED = ("ray", "uvicorn")


class UnsupportedVersion(RuntimeError):
    """An installed package is outside the range Auralis is tested with."""


def declared_ranges() -> dict[str, Requirement]:
    """The requirements this installation of Auralis declares for the pinned packages."""
    ranges = {}
    for line in metadata.requires(DISTRIBUTION) or ():
        requirement = Requirement(line)
        if requirement.name in PINNED and requirement.marker is None:
            ranges[requirement.name] = requirement
    return ranges


def check_versions(installed=metadata.version) -> None:
    """Raise UnsupportedVersion, one line, if a pinned package is missing or outside its range."""
    for name, requirement in declared_ranges().items():
        try:
            found = installed(name)
        except metadata.PackageNotFoundError:
            raise UnsupportedVersion(f"Auralis needs {name}{requirement.specifier}, which is not installed") from None
        if not requirement.specifier.contains(found, prereleases=True):
            raise UnsupportedVersion(
                f"Auralis needs {name}{requirement.specifier} (its private hooks are tested with that range), "
                f"found {name} {found}: install a supported version, e.g. pip install '{name}{requirement.specifier}'")


def main() -> int:
    try:
        check_versions()
    except UnsupportedVersion as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
