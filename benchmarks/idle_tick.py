"""4. Idle tick: `earful run` with nothing due, as a whole process.

cron starts `earful run` every minute and most ticks find nothing due; that
tick is what earful costs on a quiet machine. It is compared with a process
that only imports earful's dependencies (pydantic, typer, rich, ruamel.yaml,
croniter, sqlite_utils, slack_sdk, feedparser, requests, ahocorasick,
dotenv), which is what any Python bot built on them pays before doing
anything.

Set-up: a configuration with one feed monitor (a local fake feed) scheduled
yearly, run once for real (`earful run`, which records its state and the
idle cache); every later tick is idle. The installed console script is
timed (`earful`, as cron calls it), falling back to `python -m
earful.monitors.cli`. Runs alternate (tick, imports, tick, ...) and the
median of each is compared. Correctness: every idle tick exits 0, prints
nothing and records no run in state.db.

For context: the full `earful check` (parses and validates everything,
compiles the rules) and a bare `python -c pass`.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import Section

RUNS = 11
QUICK_RUNS = 3
TARGET = 0.3
DEPENDENCIES = "import pydantic, typer, rich, ruamel.yaml, croniter, sqlite_utils, slack_sdk, feedparser, requests, ahocorasick, dotenv"
RULES = """\
rules:
  - id: complaint
    query: 'acme (broken OR refund OR "never respond*") -"job offer"'
    labels: [complaint]
"""
FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:bench</id><title>bench</title><updated>2026-01-01T00:00:00Z</updated>
<entry><id>urn:bench:1</id><title>hello</title><link href="https://forum.example/t/1"/>
<updated>2026-01-01T00:00:00Z</updated><summary>nothing to see</summary></entry></feed>"""


def earful_command() -> list[str]:
    script = Path(sys.executable).parent / "earful"
    if script.exists():
        return [str(script)]
    found = shutil.which("earful")
    return [found] if found else [sys.executable, "-m", "earful.monitors.cli"]


def _timed(argv: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, done


def _runs(state: Path) -> int:
    from earful.monitors.store import Store

    store = Store(state)
    try:
        return store.count("runs")
    finally:
        store.close()


def run(quick: bool = False) -> Section:
    from earful.sandbox.feeds import FeedServer

    section = Section("idle", "4. Idle tick (`earful run` with nothing due, whole process)")
    runs = QUICK_RUNS if quick else RUNS
    earful = earful_command()
    with tempfile.TemporaryDirectory(prefix="earful-bench-idle-") as tmp, FeedServer() as feeds:
        directory = Path(tmp)
        feeds.set_feed("/feed.atom", FEED)
        (directory / "rules").mkdir()
        (directory / "rules" / "acme.yaml").write_text(RULES, encoding="utf-8")
        (directory / "cron.yaml").write_text(
            "state: state.db\ntimezone: UTC\ndestinations:\n  terminal:\n    type: console\n"
            f"monitors:\n  feed:\n    connector: rss\n    schedule: \"0 3 1 1 *\"\n    url: {feeds.feed_url('/feed.atom')}\n"
            "    rules: [acme]\n    notify: [terminal]\n",
            encoding="utf-8",
        )
        first_s, first = _timed(earful + ["run"], directory)
        if not section.check("the first (full) `earful run` succeeds", first.returncode == 0, first.stderr[-500:]):
            return section
        before = _runs(directory / "state.db")
        ticks, imports, outputs, codes = [], [], [], []
        for _ in range(runs):
            seconds, done = _timed(earful + ["run"], directory)
            ticks.append(seconds)
            outputs.append(done.stdout + done.stderr)
            codes.append(done.returncode)
            seconds, done = _timed([sys.executable, "-c", DEPENDENCIES], directory)
            imports.append(seconds)
            if done.returncode != 0:
                raise RuntimeError(f"importing the dependencies failed: {done.stderr[-500:]}")
        after = _runs(directory / "state.db")
        section.check(f"{runs} idle ticks exit 0, print nothing and record no run",
                      all(c == 0 for c in codes) and not any(outputs) and after == before,
                      f"exit codes {sorted(set(codes))}, runs recorded {after - before}, output {next((o for o in outputs if o), '')[:200]!r}")
        check_s = statistics.median(_timed(earful + ["check"], directory)[0] for _ in range(max(1, runs // 5)))
        bare = statistics.median(_timed([sys.executable, "-c", "pass"], directory)[0] for _ in range(max(1, runs // 3)))
    tick, deps = statistics.median(ticks), statistics.median(imports)
    ratio = tick / deps
    section.row("idle `earful run`", f"{tick * 1000:.0f}", "ms", "", None,
                f"median of {runs}; " + ("the installed console script" if len(earful) == 1 else "python -m earful.monitors.cli"))
    section.row("importing the dependencies only", f"{deps * 1000:.0f}", "ms", "", None, f"median of {runs}")
    section.row("idle tick / dependency imports", f"{ratio:.2f}x", "", f"<= {TARGET}x", ratio <= TARGET)
    section.row("full `earful check` (context)", f"{check_s * 1000:.0f}", "ms", "", None, "parses, validates, compiles the rules")
    section.row("`python -c pass` (floor)", f"{bare * 1000:.0f}", "ms")
    section.notes.append(f"first, full `earful run` (fetch one feed, store, deliver nothing): {first_s * 1000:.0f} ms.")
    return section
