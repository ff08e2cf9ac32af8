"""A test that needs chromium never silently does not run: a developer without it
sees a loud skip, CI fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_BROWSER_TEST = "tests/test_reviews.py::test_registry_finds_the_connectors"


def pytest_run(ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["EARFUL_CHROMIUM"] = "/nonexistent/chromium"
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", ONE_BROWSER_TEST],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_missing_chromium_is_a_loud_skip_for_a_developer() -> None:
    done = pytest_run(ci=False)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 skipped" in done.stdout and "SKIPPED: needs Debian's chromium" in done.stdout


def test_missing_chromium_fails_in_ci() -> None:
    done = pytest_run(ci=True)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "CI must run every test" in done.stdout
