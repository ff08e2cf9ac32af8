"""2. Pipeline throughput: mentions -> rules -> dedupe -> SQLite -> outbox, no network.

The measured path is earful's own monitor run, `earful.monitors.runner.run_monitor`,
unchanged: start the run, fetch, classify every mention (`runner.classify`:
brand accounts, `Matcher.match`, destinations), `Store.ingest` (dedupe by
key, canonical URL and text fingerprint; matches; outbox rows; reply
tracking; cursor) in one transaction, finish the run. Only the source is
replaced: a connector registered in-process (`bench-replay`) hands out
pre-generated mentions, `BATCH` per run, as a busy source would.

The configuration is real: `cron.yaml` and two rule packs of generated
rules (`benchmarks.workload`) in a temporary directory, loaded with
`load_config`; state.db is a real file in WAL mode.

The stream: 10% of the items match at least one rule, 5% are duplicates
(half re-fetched with the same id, half re-posted under another id with the
same URL and text). Correctness: the run must report exactly the number of
new items, store exactly the distinct items, and leave exactly one outbox row
per matching item cluster.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from earful import connectors
from earful.connectors.base import Connector, ConnectorOptions, FetchResult
from earful.core import Mention

from . import workload
from .common import Section, fmt_rate

REPLAY = "bench-replay"
BATCH = 500
RULES = 1_000
ITEMS = 30_000
QUICK_ITEMS = 2_000
MATCHING = 0.10
DUPLICATES = 0.05
TARGET = 20_000  # items/s

_QUEUE: list[list[Mention]] = []


class ReplayConnector(Connector):
    """Hands out the next queued batch; the cursor counts what was handed out."""

    name = REPLAY
    Options = ConnectorOptions

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        batch = _QUEUE.pop(0) if _QUEUE else []
        offset = int((cursor or {}).get("offset", 0)) + len(batch)
        return FetchResult(mentions=batch, cursor={"offset": offset}, requests=0)


CONNECTOR = ReplayConnector


def register() -> None:
    connectors.CONNECTORS.setdefault(REPLAY, __name__)


def write_config(directory: Path, rules: int = RULES, state: str = "state.db") -> Path:
    """cron.yaml with one `bench-replay` monitor over `rules` generated rules."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules").mkdir(exist_ok=True)
    packs = workload.rule_packs(rules)
    for pack in packs:
        (directory / "rules" / f"{pack.name}.yaml").write_text(workload.pack_yaml(pack), encoding="utf-8")
    names = ", ".join(p.name for p in packs)
    (directory / "cron.yaml").write_text(
        f"state: {state}\ntimezone: UTC\n"
        "destinations:\n  support:\n    type: console\n"
        "monitors:\n  replay:\n    connector: bench-replay\n    schedule: \"0 0 1 1 *\"\n"
        f"    rules: [{names}]\n    notify: [support]\n",
        encoding="utf-8",
    )
    return directory / "cron.yaml"


def load(directory: Path) -> Any:
    from earful.monitors.config import load_config

    register()
    return load_config(directory / "cron.yaml")


def stream(config: Any, items: int, seed: int = 5) -> tuple[list[Mention], dict[str, int]]:
    """`items` mentions: MATCHING of the originals match, DUPLICATES of the items are duplicates.

    Returns the mentions and the counts the run must reproduce. Originals
    are distinct items for earful's dedupe (distinct canonical URLs and text
    fingerprints), so each must come out "new"."""
    from earful.monitors.dedupe import canonical_url, text_fingerprint

    matcher = config.matcher
    rng = random.Random(seed)
    duplicates = round(items * DUPLICATES)
    originals = items - duplicates
    want_matching = round(originals * MATCHING)
    matching: list[Mention] = []
    other: list[Mention] = []
    urls: set[str] = set()
    prints: set[str] = set()
    chunk = 0
    while len(matching) < want_matching or len(other) < originals - want_matching:
        for post in workload.posts(max(1000, originals), seed=seed * 1000 + chunk):
            url, fingerprint = canonical_url(post.url), text_fingerprint(post.title, post.text)
            if url in urls or (fingerprint and fingerprint in prints):
                continue
            urls.add(url)
            prints.add(fingerprint)
            (matching if matcher.match(post) else other).append(post)
        chunk += 1
    chosen = matching[:want_matching] + other[: originals - want_matching]
    rng.shuffle(chosen)
    out: list[Mention] = list(chosen)
    cluster = {m.key: m.key for m in chosen}
    refetched = reposted = 0
    for i in range(duplicates):
        position = rng.randrange(len(chosen) // 10, len(out) + 1)
        source = out[rng.randrange(0, position)]
        if i % 2 == 0:  # fetched again: the same item
            copy = source
            refetched += 1
        else:  # posted again elsewhere: same URL and text, another id (and source)
            copy = replace(source, source="rss" if source.source != "rss" else "reddit", external_id=f"repost-{i}")
            cluster[copy.key] = cluster[source.key]
            reposted += 1
        out.insert(position, copy)
    # One outbox row per cluster any of whose mentions matches (a repost from
    # another source can match a rule the original did not, e.g. -source:...).
    matched = [m for m in out if matcher.match(m)]
    expected = {
        "items": len(out),
        "new": originals,
        "refetched": refetched,
        "reposted": reposted,
        "stored": originals + reposted,
        "outbox": len({cluster[m.key] for m in matched}),
        "matching_share_pct": round(100 * len(matched) / len(out)),
    }
    return out, expected


def scan(config: Any, mentions: list[Mention], batch: int = BATCH) -> dict[str, Any]:
    """Run the monitor once per `batch` mentions; returns timings and what the runs reported."""
    from earful.core import utcnow
    from earful.monitors.runner import run_monitor
    from earful.monitors.store import Store

    monitor = config.monitors["replay"]
    _QUEUE[:] = [mentions[i:i + batch] for i in range(0, len(mentions), batch)]
    runs = len(_QUEUE)
    store = Store(config.state_path)
    new_items = alerts = failures = 0
    errors: list[str] = []
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(runs):
            outcome = run_monitor(config, store, monitor, utcnow())
            new_items += outcome.new_items
            alerts += outcome.alerts
            if not outcome.ok:
                failures += 1
                errors.append(outcome.error or "")
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu
        stored, outbox = store.count("items", monitor="replay"), store.count("outbox", monitor="replay")
    finally:
        store.close()
    return {"seconds": seconds, "items_per_s": len(mentions) / seconds, "cpu_items_per_s": len(mentions) / max(cpu_seconds, 1e-9),
            "runs": runs, "new": new_items,
            "alerts": alerts, "stored": stored, "outbox": outbox, "failures": failures, "errors": errors[:3]}


def classify_rate(config: Any, mentions: list[Mention]) -> float:
    from earful.monitors.runner import classify

    monitor = config.monitors["replay"]
    start = time.perf_counter()
    for mention in mentions:
        classify(mention, monitor, config)
    return len(mentions) / (time.perf_counter() - start)


def verify(section: Section, label: str, result: dict[str, Any], expected: dict[str, int]) -> None:
    ok = (result["failures"] == 0 and result["new"] == expected["new"] and result["stored"] == expected["stored"]
          and result["outbox"] == expected["outbox"] and result["alerts"] == expected["outbox"])
    section.check(
        f"{label}: every item stored once, one outbox row per matching cluster", ok,
        f"new {result['new']}/{expected['new']}, stored {result['stored']}/{expected['stored']}, "
        f"outbox {result['outbox']}/{expected['outbox']}, alerts {result['alerts']}, failed runs {result['failures']} "
        f"{result['errors']}",
    )


def run(quick: bool = False) -> Section:
    section = Section("pipeline", "2. Pipeline throughput (mentions -> rules -> dedupe -> SQLite -> outbox)")
    items = QUICK_ITEMS if quick else ITEMS
    with tempfile.TemporaryDirectory(prefix="earful-bench-pipeline-") as tmp:
        directory = Path(tmp)
        write_config(directory, RULES)
        start = time.perf_counter()
        config = load(directory)
        load_s = time.perf_counter() - start
        mentions, expected = stream(config, items)
        match_rate = classify_rate(config, mentions)
        result = scan(config, mentions)
    verify(section, f"{items:,} items", result, expected)
    rate = result["items_per_s"]
    section.row(f"{RULES:,} rules, {items:,} items", fmt_rate(rate), "items/s", f">= {TARGET:,}", rate >= TARGET,
                f"{expected['matching_share_pct']}% matching, {expected['refetched'] + expected['reposted']:,} duplicates; "
                f"{result['runs']} monitor runs of {BATCH}; {fmt_rate(result['cpu_items_per_s'])} by CPU time")
    section.row("of which classify alone", fmt_rate(match_rate), "items/s", "", None,
                f"{rate / match_rate:.0%} of the time is matching, the rest storing")
    section.notes.append(f"config loaded and {RULES:,} rules compiled in {load_s:.2f} s (once per process).")
    return section
