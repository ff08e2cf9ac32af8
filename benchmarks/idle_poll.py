"""5. Requests per idle poll: what a monitor costs a source when nothing is new.

The bundled fake servers (`earful.sandbox`: feeds with real ETag /
Last-Modified semantics, the Hacker News Algolia API, and Reddit when that
connector is present) are started with their demo data, a configuration
points one monitor at each, and the real runner (`runner.run(config,
force_all=True)`) runs two ticks. The first fetches everything; the second
finds nothing new. The requests each fake recorded during the second tick
are counted per monitor, with the paths they asked for and whether a feed
request was conditional and answered 304 (`not_modified`).

The rule pack matches nothing in the demo data on purpose: no alert, so no
reply re-checks, and every request counted is a poll.

Targets: one request per feed (conditional, answered 304) and one per
search-API monitor. Sources without 304 support (Algolia, Reddit's API)
answer 200 with nothing new.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .common import Section

SOURCES = [
    ("earful.sandbox.feeds", "earful.connectors.rss"),
    ("earful.sandbox.hackernews", "earful.connectors.hackernews"),
    ("earful.sandbox.reddit", "earful.connectors.reddit"),  # may land later: included when present
]
RULES = """\
rules:
  - id: never
    query: 'zzbenchnevermatches'
"""


def _available(fake: str, connector: str) -> bool:
    try:
        return importlib.util.find_spec(fake) is not None and importlib.util.find_spec(connector) is not None
    except ImportError:
        return False


def run(quick: bool = False) -> Section:
    from ruamel.yaml import YAML

    from earful.monitors.config import load_config
    from earful.monitors.runner import run as run_tick

    section = Section("polls", "5. Requests per idle poll (second tick, nothing new)")
    present = [(fake, connector) for fake, connector in SOURCES if _available(fake, connector)]
    missing = [fake.rsplit(".", 1)[-1] for fake, connector in SOURCES if (fake, connector) not in present]
    if missing:
        section.notes.append(f"not measured (connector or fake not in this tree): {', '.join(missing)}")
    sources = [importlib.import_module(fake).demo_source(time.time()) for fake, _ in present]
    saved_env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="earful-bench-polls-") as tmp, contextlib.ExitStack() as running:
        for source in sources:
            running.enter_context(source.server)
            os.environ.update(source.env)
        directory = Path(tmp)
        (directory / "rules").mkdir()
        (directory / "rules" / "none.yaml").write_text(RULES, encoding="utf-8")
        monitors: dict[str, Any] = {}
        for source in sources:
            monitor = {k: v.replace("{url}", source.server.url) if isinstance(v, str) else v for k, v in source.monitor.items()}
            monitors[source.name] = {**monitor, "rules": ["none"], "notify": ["terminal"]}
        config_data = {"state": "state.db", "timezone": "UTC",
                       "destinations": {"terminal": {"type": "console", "stream": "stderr"}}, "monitors": monitors}
        with open(directory / "cron.yaml", "w", encoding="utf-8") as out:
            YAML().dump(config_data, out)
        try:
            config = load_config(directory / "cron.yaml")
            first = run_tick(config, force_all=True)
            section.check("first tick: every monitor ran", all(m.ok for m in first.monitors),
                          "; ".join(m.error or "" for m in first.monitors if not m.ok))
            before = {s.name: len(s.server.requests) for s in sources}
            second = run_tick(config, force_all=True)
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
        outcomes = {m.name: m for m in second.monitors}
        section.check("second tick: every monitor ran and found nothing new",
                      all(m.ok and m.new_items == 0 for m in second.monitors),
                      "; ".join(f"{m.name}: ok={m.ok} new={m.new_items} {m.error or ''}" for m in second.monitors))
        for source in sources:
            requests = source.server.requests[before[source.name]:]
            outcome = outcomes.get(source.name)
            paths = Counter(r.path for r in requests)
            shown = ", ".join(f"{path}" + (f" x{n}" if n > 1 else "") for path, n in paths.most_common())
            connector = source.monitor.get("connector")
            if connector == "rss":
                feeds = len(source.monitor.get("urls") or []) or 1
                conditional = all("if-none-match" in r.headers or "if-modified-since" in r.headers for r in requests)
                met = len(requests) == feeds and conditional and bool(outcome and outcome.not_modified)
                section.row(f"{source.name} (rss, {feeds} feeds)", f"{len(requests) / feeds:g}", "requests/feed/tick",
                            "1, conditional, 304", met,
                            f"{len(requests)} requests, " + ("all conditional, " if conditional else "NOT all conditional, ")
                            + ("answered 304 (not parsed)" if outcome and outcome.not_modified else "not 304"))
            else:
                met = len(requests) == 1
                section.row(f"{source.name} ({connector})", f"{len(requests)}", "requests/tick", "1", met,
                            shown + ("; no 304 in this API: 200 with no new items" if requests else ""))
    return section
