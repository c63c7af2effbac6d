"""Start-up refuses Ray or uvicorn versions outside the ranges the package declares."""

import pytest

from auralis_ray import versions


def test_the_installed_versions_are_supported():
    versions.check_versions()
    assert set(versions.declared_ranges()) == set(versions.PINNED)


@pytest.mark.parametrize("name, found", [("ray", "2.61.0"), ("ray", "2.59.1"), ("uvicorn", "0.56.0")])
def test_a_version_outside_the_range_stops_start_up_with_one_line(name, found):
    from importlib import metadata

    def installed(package):
        return found if package == name else metadata.version(package)

    with pytest.raises(versions.UnsupportedVersion) as raised:
        versions.check_versions(installed)
    message = str(raised.value)
    assert "\n" not in message
    assert f"found {name} {found}" in message and str(versions.declared_ranges()[name].specifier) in message


def test_a_missing_package_is_named():
    from importlib import metadata

    def installed(package):
        raise metadata.PackageNotFoundError(package)

    with pytest.raises(versions.UnsupportedVersion, match="not installed"):
        versions.check_versions(installed)
