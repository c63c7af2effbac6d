"""The development tools stay outside the serving path, and `auralis` says how to get them."""

import subprocess
import sys

import pytest

from auralis_ray import cli
from auralis_ray.tools.loadtest.cli import run_cli

SERVING_ENTRY_POINTS = (
    "auralis_ray.serve.app",
    "auralis_ray.actors.station",
    "auralis_ray.actors.synthesis",
    "auralis_ray.actors.registry",
)


def _run_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter, which must exit 0."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_serving_modules_import_no_tool_module():
    code = (
        "import importlib, pkgutil, sys\n"
        f"for name in {SERVING_ENTRY_POINTS!r}:\n"
        "    importlib.import_module(name)\n"
        "for package in ('auralis_ray.serve', 'auralis_ray.actors'):\n"
        "    for module in pkgutil.iter_modules(importlib.import_module(package).__path__, package + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('auralis_ray.tools')))\n"
    )
    result = _run_python(code)
    assert result.stdout.strip() == "[]"


def test_tool_subcommands_exist():
    parser = cli.build_parser()
    loadtest = parser.parse_args(["loadtest", "--listeners", "3"])
    assert loadtest.func is run_cli and loadtest.listeners == 3
    soak = parser.parse_args(["soak", "--hours-equivalent", "0.5"])
    assert soak.hours_equivalent == 0.5


def test_missing_third_party_module_prints_the_install_hint_and_exits_2():
    # `None` in sys.modules makes `import websockets` raise ModuleNotFoundError, as if it were not installed
    code = (
        "import sys\n"
        "sys.modules['websockets'] = None\n"
        "from auralis_ray.cli import main\n"
        "print(main(['loadtest', '--listeners', '3']), main(['loadtest', '--help']), main(['soak']))\n"
    )
    result = _run_python(code)
    assert result.stdout.split() == ["2", "2", "2"]
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    for line, command in zip(lines, ("loadtest", "loadtest", "soak")):
        assert line == (f"auralis {command} needs the module 'websockets', which is not installed: "
                        "pip install 'auralis-ray[tools]'")


def test_missing_module_of_auralis_itself_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "auralis_ray.tools.soak", None)
    with pytest.raises(ModuleNotFoundError) as raised:
        cli.build_parser()
    assert raised.value.name == "auralis_ray.tools.soak"
