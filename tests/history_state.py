"""The demo's state, built once per test session for the history tests (search, backtest, browse).

`earful demo --dir DIR` runs in a subprocess (it sets environment variables
for its fake services) and leaves DIR/cron.yaml, DIR/.env and DIR/state.db:
a real deployment with a hundred-odd mentions from every connector. The
tests only read it (search opens it as a run would, so the state's marker
may be rewritten; nothing else changes).
"""

from __future__ import annotations

from pathlib import Path

from .support import earful

_BUILT: dict[str, Path] = {}


def demo_state(tmp_path_factory) -> Path:
    """DIR of a finished `earful demo` run (its cron.yaml is DIR/cron.yaml)."""
    if "demo" not in _BUILT:
        directory = tmp_path_factory.mktemp("history-demo")
        done = earful("demo", "--dir", str(directory))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        _BUILT["demo"] = directory
    return _BUILT["demo"]
