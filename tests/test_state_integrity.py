"""The state under faults (issue 14): private files, an emptied or replaced state.db, a full disk, a read-only
directory, a corrupt file. Each fault is one line on stderr and exit 1, never a traceback; nothing already
delivered is posted again, and the run after the fault delivers what was pending exactly once.

The real `earful` runs in a subprocess; a fault that cannot be staged for real here (a full disk, a read-only
file system: the tests run as root) is injected by a few lines run before the CLI's `main`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from earful.monitors.store import Store

from .support import MATCHING, POSTS, atom, earful

MORE = [("6", "Acme broken once more", "acme is broken today"), ("7", "Refund for Acme", "acme refund now")]
CONFIG_FILES = {"cron.yaml", "rules", ".env"}  # what the tests wrote; everything else in the directory is earful's


def run(deployment: Path, *args: str, fault: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`earful run --config <deployment> *args`; `fault` is Python run in that process first (an injected fault)."""
    argv = ["run", *args, "--config", str(deployment)]
    if not fault:
        return earful(*argv, env=env)
    script = textwrap.dedent(fault) + "\nimport sys\nfrom earful.monitors.cli import main\nmain(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def one_line_failure(result: subprocess.CompletedProcess, *words: str) -> str:
    """Assert exit 1 with the cause on one `earful:` line (and no traceback); return that line."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("earful: ")]
    assert len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


def exactly_once(slack, expected: int) -> None:
    keys = slack.posted_keys()
    assert len(keys) == len(set(keys)) == expected, keys


@pytest.fixture
def delivered(deployment, feeds, slack) -> Path:
    """A deployment whose first run delivered its 4 matching posts."""
    feeds.set_feed("/latest.atom", atom(POSTS))
    result = run(deployment)
    assert result.returncode == 0, result
    exactly_once(slack, len(MATCHING))
    return deployment


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(directory: Path) -> dict[str, str]:
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in directory.iterdir() if p.name not in CONFIG_FILES}


# -- files are private ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_every_file_earful_creates_is_0600_whatever_the_umask(mask, deployment, feeds, slack):
    directory = deployment.parent
    feeds.set_feed("/latest.atom", atom(POSTS))
    with umask(mask):
        killed = run(deployment, env={"EARFUL_FAULT": "after_store"})  # SIGKILL with the database open: -wal, -shm stay
        assert killed.returncode == -9, killed
        assert {"state.db", "state.db-wal", "state.db-shm", "state.db.lock", "state.db.id"} <= set(modes(directory))
        assert set(modes(directory).values()) == {"0o600"}, modes(directory)
        assert run(deployment).returncode == 0
    created = modes(directory)
    assert {"state.db", "state.db.lock", "state.db.idle.json", "state.db.id"} <= set(created)
    assert set(created.values()) == {"0o600"}, created
    exactly_once(slack, len(MATCHING))


def test_a_lock_file_an_older_version_left_0644_becomes_0600(delivered):
    lock = delivered.parent / "state.db.lock"
    lock.chmod(0o644)
    assert run(delivered, "--all").returncode == 0
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode, warned", [(0o600, False), (0o400, False), (0o644, True), (0o640, True), (0o602, True)])
def test_a_dotenv_others_can_read_or_write_gets_a_one_line_warning(mode, warned, deployment):
    env_file = deployment.parent / ".env"
    env_file.chmod(mode)
    result = earful("check", "--config", str(deployment))
    assert result.returncode == 0, result
    if warned:
        assert result.stderr.count("\n") == 1 and ".env" in result.stderr, result.stderr
        assert f"mode {mode:04o}" in result.stderr and "chmod 600" in result.stderr
    else:
        assert result.stderr == ""


# -- an emptied, missing or replaced state is refused ---------------------------------------------------------

@pytest.mark.parametrize("damage", ["emptied", "deleted"])
def test_an_emptied_or_missing_state_is_refused_and_nothing_is_posted_again(damage, delivered, slack):
    state = delivered.parent / "state.db"
    if damage == "emptied":
        state.write_bytes(b"")
    else:
        state.unlink()
    for attempt in (run(delivered), run(delivered, "--all")):
        line = one_line_failure(attempt, "state.db is", "delivered alerts before", "earful state reset")
        assert ("empty" if damage == "emptied" else "missing") in line
    exactly_once(slack, len(MATCHING))
    assert (state.stat().st_size == 0) if damage == "emptied" else not state.exists(), "a refused run writes nothing"


def test_state_reset_is_the_deliberate_way_to_start_over(delivered, slack):
    state = delivered.parent / "state.db"
    state.write_bytes(b"")
    one_line_failure(run(delivered, "--all"), "earful state reset")
    reset = earful("state", "reset", "--config", str(delivered))
    assert reset.returncode == 0 and "forgot the delivery history" in reset.stdout, reset
    assert run(delivered, "--all").returncode == 0  # deliberately fresh: the posts go out again, once
    assert len(slack.posted_keys()) == 2 * len(MATCHING)
    again = earful("state", "reset", "--config", str(delivered))
    assert again.returncode == 0 and "nothing to reset" not in again.stdout  # the new state has a history too


def test_a_replaced_state_is_refused(delivered, slack, tmp_path):
    other = tmp_path / "elsewhere" / "state.db"
    other.parent.mkdir()
    Store(other).close()
    shutil.copy(other, delivered.parent / "state.db")
    one_line_failure(run(delivered, "--all"), "not the state this deployment delivered alerts from", "replaced",
                     "earful state reset")
    exactly_once(slack, len(MATCHING))


def test_without_a_delivery_history_a_new_state_is_simply_used(deployment, feeds, slack):
    feeds.set_feed("/latest.atom", atom([("3", "Lunch ideas", "nothing to do with the brand")]))
    assert run(deployment).returncode == 0
    (deployment.parent / "state.db").write_bytes(b"")
    result = run(deployment, "--all")
    assert result.returncode == 0 and result.stderr == "", result
    exactly_once(slack, 0)


def test_a_state_from_before_the_marker_gets_one_with_its_history(delivered, slack):
    marker = delivered.parent / "state.db.id"
    marker.unlink()  # as an older earful left it
    assert run(delivered, "--all").returncode == 0
    assert '"delivered": true' in marker.read_text()
    (delivered.parent / "state.db").write_bytes(b"")
    one_line_failure(run(delivered, "--all"), "earful state reset")
    exactly_once(slack, len(MATCHING))


def test_a_damaged_marker_is_refused_with_the_way_out(delivered):
    (delivered.parent / "state.db.id").write_text("{not json")
    one_line_failure(run(delivered, "--all"), "state.db.id is damaged", "earful state reset")
    assert earful("state", "reset", "--config", str(delivered)).returncode == 0
    assert run(delivered, "--all").returncode == 0


def test_a_corrupt_state_is_one_line_and_the_way_out_starts_over(delivered, slack):
    state = delivered.parent / "state.db"
    state.write_bytes(b"this is not a database, it is a grocery list" * 200)
    for command in (["run", "--all"], ["status"]):
        one_line_failure(earful(*command, "--config", str(delivered)), "cannot open the state database",
                         "earful state reset")
    state.rename(state.with_name("state.db.damaged"))
    one_line_failure(run(delivered), "missing", "earful state reset")
    exactly_once(slack, len(MATCHING))
    assert earful("state", "reset", "--config", str(delivered)).returncode == 0
    assert run(delivered).returncode == 0


# -- disk full, read-only directory: one line, then nothing lost ----------------------------------------------

def fail_call(method: str, nth: int, error: str) -> str:
    """Fault code: the `nth` call of Store.`method` raises `error` (a Python expression)."""
    return f"""
        import errno, sqlite3
        from earful.monitors.store import Store
        calls = []
        original = Store.{method}
        def failing(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == {nth}:
                raise {error}
            return original(self, *args, **kwargs)
        Store.{method} = failing
    """


DISK_FULL = 'sqlite3.OperationalError("database or disk is full")'


@pytest.mark.parametrize("method, nth", [("mark_sending", 2), ("mark_delivered", 1)])
def test_disk_full_in_the_outbox_is_one_line_and_the_next_run_delivers_exactly_once(method, nth, delivered, feeds,
                                                                                   slack):
    feeds.set_feed("/latest.atom", atom(POSTS + MORE))
    full = run(delivered, "--all", fault=fail_call(method, nth, DISK_FULL))
    one_line_failure(full, "database or disk is full", "free some space")
    recovered = run(delivered, "--all")
    assert recovered.returncode == 0, recovered
    exactly_once(slack, len(MATCHING) + len(MORE))


def test_disk_full_while_storing_fails_the_monitor_and_keeps_its_cursor(delivered, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS + MORE))
    full = run(delivered, "--all", fault=fail_call("ingest", 1, DISK_FULL))
    assert full.returncode == 1 and "Traceback" not in full.stderr, full
    assert "database or disk is full" in full.stderr
    exactly_once(slack, len(MATCHING))
    assert run(delivered, "--all").returncode == 0
    exactly_once(slack, len(MATCHING) + len(MORE))


def test_disk_full_writing_the_idle_file_is_one_line_and_leaves_no_stale_idle_file(delivered, feeds, slack):
    fault = """
        import errno
        from earful.monitors.store import files
        real = files.write_private
        def write_private(path, text):
            if path.name.endswith(".idle.json"):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real(path, text)
        files.write_private = write_private
    """
    idle = delivered.parent / "state.db.idle.json"
    assert idle.exists()
    feeds.set_feed("/latest.atom", atom(POSTS + MORE))
    one_line_failure(run(delivered, "--all", fault=fault), "state.db.idle.json", "No space left on device")
    assert not idle.exists(), "a stale 'nothing due until ...' would hold back the next ticks"
    assert not idle.with_name(idle.name + ".tmp").exists()
    exactly_once(slack, len(MATCHING) + len(MORE))  # the run itself had delivered before the write failed
    assert run(delivered, "--all").returncode == 0
    exactly_once(slack, len(MATCHING) + len(MORE))
    assert idle.exists()


READ_ONLY = """
    import errno, os
    root = os.environ["EARFUL_TEST_READ_ONLY"]
    real_open = os.open
    def read_only_open(path, flags, *args, **kwargs):
        if str(path).startswith(root) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)
    os.open = read_only_open
"""


def test_a_read_only_directory_is_one_line_and_the_next_run_catches_up(delivered, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS + MORE))
    result = run(delivered, "--all", fault=READ_ONLY, env={"EARFUL_TEST_READ_ONLY": str(delivered.parent)})
    one_line_failure(result, "state.db.lock", "Read-only file system", "writable")
    exactly_once(slack, len(MATCHING))
    assert run(delivered, "--all").returncode == 0
    exactly_once(slack, len(MATCHING) + len(MORE))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 directory anyway (the test above injects it)")
def test_a_real_read_only_directory_is_one_line(deployment, tmp_path):
    directory = deployment.parent
    directory.chmod(0o555)
    try:
        one_line_failure(run(deployment), "state.db")
    finally:
        directory.chmod(0o755)
