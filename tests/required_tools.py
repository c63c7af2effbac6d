"""Tools the suite drives from outside Python (Chromium, Prometheus, promtool, ffmpeg): a test without
one is skipped on a developer's machine and fails under CI=true, where a skip would hide it."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, install: str) -> str:
    """The tool's path; otherwise skip, or fail under CI, naming how to install it."""
    path = shutil.which(name) if not os.path.isabs(name) else (name if os.path.exists(name) else None)
    if path:
        return path
    message = f"{name} is missing: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: a missing tool fails the run)", pytrace=False)
    pytest.skip(message)
