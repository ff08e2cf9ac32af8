"""A tick that finds another run working exits before loading the configuration:
an overrun at a thousand monitors must not cost every overlapping tick a full load."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from earful.monitors.idle import run_in_progress

from .deploy import write_deployment
from .support import RULES, atom, earful


def deployment(tmp_path: Path, feeds) -> Path:
    feeds.set_feed("/a.atom", atom([("1", "Acme is broken", "acme broken again")]))
    write_deployment(tmp_path, {"forum": {"connector": "rss", "url": feeds.feed_url("/a.atom"), "schedule": "* * * * *"}},
                     RULES)
    return tmp_path / "cron.yaml"


def hold_lock(state: Path) -> int:
    fd = os.open(f"{state}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_the_probe_sees_a_held_lock_and_leaves_a_free_one_free(tmp_path, feeds) -> None:
    config = deployment(tmp_path, feeds)
    assert not run_in_progress(config)  # no lock file yet
    fd = hold_lock(tmp_path / "state.db")
    try:
        assert run_in_progress(config)
    finally:
        os.close(fd)
    assert not run_in_progress(config)
    again = hold_lock(tmp_path / "state.db")  # the probe released what it took
    os.close(again)


def test_a_locked_out_tick_loads_nothing_and_exits_quietly(tmp_path, feeds) -> None:
    config = deployment(tmp_path, feeds)
    broken = tmp_path / "rules" / "acme.yaml"
    fd = hold_lock(tmp_path / "state.db")
    try:
        broken.write_text("rules: [unclosed\n")  # loading the config now would be exit 2: it is never loaded
        plain = earful("run", "--config", str(config), cwd=tmp_path)
        quiet = earful("run", "--quiet", "--config", str(config), cwd=tmp_path)
    finally:
        os.close(fd)
    assert (plain.returncode, plain.stderr) == (0, "")
    assert "another earful run is still working" in plain.stdout
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert not (tmp_path / "state.db").exists()
    code = "import sys; from earful.monitors import cli; print(sorted({'typer', 'pydantic', 'sqlite_utils'} & set(sys.modules)))"
    import subprocess

    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert modules == "[]"
