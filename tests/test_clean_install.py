"""The wheel, installed without extras into a fresh virtual environment (as `cluster.yaml` installs it),
imports every runtime module and runs `auralis config` and `auralis render`."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.install

IMPORT_EVERY_RUNTIME_MODULE = """
import importlib, pkgutil, auralis_ray
names = [m.name for m in pkgutil.walk_packages(auralis_ray.__path__, "auralis_ray.")
         if not m.name.startswith("auralis_ray.tools")]
for name in names:
    importlib.import_module(name)
for dev_only in ("httpx", "pytest", "playwright", "hypothesis"):
    try:
        importlib.import_module(dev_only)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"{dev_only} is importable: the environment is not a clean install")
print(len(names))
"""


# the fresh environment sees nothing of the one running the tests
CLEAN_ENV = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def run(*command, cwd=None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=cwd, env=CLEAN_ENV)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.timeout(1200)
def test_the_wheel_without_extras_imports_every_runtime_module_and_renders(tmp_path):
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python, auralis = venv / "bin" / "python", venv / "bin" / "auralis"
    (wheel,) = wheels.glob("auralis_ray-*.whl")
    # no bytecode compiled ahead (half the install's time): what the checks import compiles as it loads
    run(python, "-m", "pip", "install", "-q", "--no-compile", "-c", str(REPO / "constraints-cpu.txt"), str(wheel))

    imported = run(python, "-c", IMPORT_EVERY_RUNTIME_MODULE, cwd=tmp_path)
    assert int(imported.stdout.strip()) > 40
    config = run(auralis, "config", cwd=tmp_path)
    assert '"stations"' in config.stdout
    out = tmp_path / "two-seconds.wav"
    run(auralis, "render", "--seconds", "2", "--quiet", "--out", str(out), cwd=tmp_path)
    with wave.open(str(out)) as rendered:
        assert (rendered.getnchannels(), rendered.getframerate()) == (2, 44100)
        assert rendered.getnframes() == 2 * 44100
