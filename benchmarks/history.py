"""3. History growth: the same scan against 1,000 and 1,000,000 items of history.

state.db is seeded through the store's bulk load (`Store.bulk_load`: one
transaction, secondary indexes dropped during the load and rebuilt after) with rows shaped like real ones: keys, canonical URLs and text
fingerprints in earful's formats, first-seen times spread over 60 days, text
from generated posts, plus matches and delivered outbox rows for one item in
ten. The schema itself comes from earful's migrations (`Store(path)`).

Then the pipeline benchmark's scan (`benchmarks.pipeline.scan`: real monitor
runs, real `Store.ingest`) runs in a fresh child process per database, which
reports its own peak memory (VmHWM from /proc/self/status; see `peak_rss_mb`
for why not `ru_maxrss`). Every
lookup of the scan (by key, by canonical URL, by fingerprint) and every
insert goes through indexes that hold the whole history.

Order: small, large, small again (a fresh copy), so a slower phase of the
machine shows up as a difference between the two small runs; the ratio uses
their mean. The databases live in a temporary directory for this run only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from . import pipeline, workload
from .common import Section, fmt_rate, python_env

SMALL = 1_000
LARGE = 1_000_000
QUICK_LARGE = 20_000
SCAN = 10_000
QUICK_SCAN = 600
TARGET_RATIO = 1.3
TARGET_MB = 200


def _history_rows(count: int, now: datetime, columns: list[str]) -> Iterator[tuple[Any, ...]]:
    """`count` item rows, as tuples in the order of `columns` (unknown columns are NULL)."""
    pool = workload.posts(2_000, seed=99)
    sources = ["reddit", "hackernews", "rss", "x", "g2"]
    hosts = ["www.reddit.com", "news.ycombinator.com", "medium.com", "example.com", "github.com"]
    # First-seen times every 5 s back from now over 60 days, formatted like `store.iso`
    # without a datetime per row: day strings and time-of-day strings are precomputed.
    start = now.replace(microsecond=0)
    days = [(start - timedelta(days=d)).date().isoformat() for d in range(61)]
    clock = start.hour * 3600 + start.minute * 60 + start.second
    times = [f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}" for t in range(86400)]
    position = {name: i for i, name in enumerate(columns)}
    template: list[Any] = [None] * len(columns)
    for name, value in (("monitor", "history"), ("author_is_brand", 0), ("link_url", ""), ("raw", "{}")):
        if name in position:
            template[position[name]] = value
    fields = [name for name in ("key", "source", "external_id", "url", "canonical_url", "fingerprint", "cluster", "author",
                                "title", "text", "created_at", "kind", "rating", "language", "site", "first_seen_at",
                                "last_seen_at") if name in position]
    slots = [position[name] for name in fields]
    blake2b = hashlib.blake2b
    for i in range(count):
        post = pool[i % 2000]
        source = sources[i % 5]
        back = (i * 5) % (60 * 86400)
        day, second = divmod(clock - back, 86400)
        seen = f"{days[-day]}T{times[second]}.000000+00:00"
        key = f"{source}:h{i:08d}"
        host = hosts[i % 5]
        values = {
            "key": key, "source": source, "external_id": f"h{i:08d}", "url": f"https://{host}/t/{i}?utm_source=x",
            "canonical_url": f"https://{host.removeprefix('www.')}/t/{i}",
            "fingerprint": blake2b(b"history %d" % i, digest_size=12).hexdigest(), "cluster": key,
            "author": post.author, "title": post.title, "text": post.text, "created_at": seen, "kind": post.kind,
            "rating": post.rating, "language": post.language, "site": post.site, "first_seen_at": seen, "last_seen_at": seen,
        }
        row = template[:]
        for slot, name in zip(slots, fields):
            row[slot] = values[name]
        yield tuple(row)


def seed(state: Path, count: int, now: datetime) -> float:
    """Create state.db with earful's schema and `count` history items (every tenth
    matched and delivered to Slack); seconds taken."""
    from earful.monitors.store import Store

    start = time.perf_counter()
    store = Store(state)  # schema: earful's own migrations
    try:
        columns = store.columns("items")
        key, cluster, seen = (columns.index(name) for name in ("key", "cluster", "first_seen_at"))
        tenth: list[tuple[str, str, str, int]] = []

        def items() -> Iterator[tuple[Any, ...]]:
            for rowid, row in enumerate(_history_rows(count, now, columns), 1):
                if rowid % 10 == 0:
                    tenth.append((row[key], row[cluster], row[seen], rowid))
                yield row

        store.bulk_load({"items": (columns, items())})
        store.bulk_load({
            "matches": (("item_key", "pack", "rule_id", "labels", "severity"),
                        ((k, "pack0", "b1-complaint", '["complaint"]', "high") for k, _, _, _ in tenth)),
            "outbox": (("key", "cluster", "destination", "monitor", "status", "attempts", "created_at", "delivered_at",
                        "remote_id"),
                       ((f"{c}#support", c, "support", "history", "delivered", 1, t, t, f"1700000000.{r}")
                        for _, c, t, r in tenth)),
        })
    finally:
        store.close()
    return time.perf_counter() - start


def _scan_in_child(directory: Path, items: int) -> None:
    """Entry point of the child: print one JSON line."""
    config = pipeline.load(directory)
    mentions, expected = pipeline.stream(config, items)
    result = pipeline.scan(config, mentions)
    result["expected"] = expected
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def run(quick: bool = False) -> Section:
    section = Section("history", "3. History growth (same scan, small vs large state.db)")
    large = QUICK_LARGE if quick else LARGE
    items = QUICK_SCAN if quick else SCAN
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="earful-bench-history-") as tmp:
        base = Path(tmp)
        dirs = {name: base / name for name in ("small-a", "large", "small-b")}
        for directory in dirs.values():
            pipeline.write_config(directory, pipeline.RULES)
        seed(dirs["small-a"] / "state.db", SMALL, now)
        shutil.copy(dirs["small-a"] / "state.db", dirs["small-b"] / "state.db")
        seed_s = seed(dirs["large"] / "state.db", large, now)
        size_mb = (dirs["large"] / "state.db").stat().st_size / 2**20
        results = {}
        for name, directory in dirs.items():
            results[name] = _child_measured(directory, items)
    for name, result in results.items():
        pipeline.verify(section, f"{name} history", result, result["expected"])
    small_rate = (results["small-a"]["items_per_s"] + results["small-b"]["items_per_s"]) / 2
    large_rate = results["large"]["items_per_s"]
    ratio = small_rate / large_rate
    peak = results["large"]["peak_rss_mb"]
    cpu_ratio = ((results["small-a"]["cpu_items_per_s"] + results["small-b"]["cpu_items_per_s"]) / 2
                 / results["large"]["cpu_items_per_s"])
    section.row(f"scan of {items:,} items, {SMALL:,} in history", fmt_rate(small_rate), "items/s", "", None,
                f"mean of two runs: {results['small-a']['items_per_s']:,.0f} and {results['small-b']['items_per_s']:,.0f}")
    section.row(f"scan of {items:,} items, {large:,} in history", fmt_rate(large_rate), "items/s", "", None,
                f"state.db {size_mb:,.0f} MB, seeded in {seed_s:.1f} s")
    section.row("large history slowdown", f"{ratio:.2f}x", "", f"<= {TARGET_RATIO}x", ratio <= TARGET_RATIO,
                f"by wall clock; {cpu_ratio:.2f}x by the scanning process's CPU time")
    section.row("peak memory, large history", f"{peak:.0f}", "MB", f"< {TARGET_MB} MB", peak < TARGET_MB,
                f"RSS high-water mark of the scanning process (small history: {results['small-a']['peak_rss_mb']:.0f} MB)")
    return section


def _child_measured(directory: Path, items: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.history", "--scan", str(directory), "--items", str(items)]
    done = subprocess.run(argv, capture_output=True, env=python_env())
    if done.returncode != 0:
        raise RuntimeError(f"history scan child failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB.

    VmHWM (the high-water mark of this process's own address space) is used
    where /proc has it: `ru_maxrss` of a freshly exec'd child also carries the
    peak of the process it was forked from (Linux keeps the larger of the two
    across exec), so it would report the benchmark runner's memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="history benchmark child: one scan, one JSON line")
    parser.add_argument("--scan", type=Path, required=True)
    parser.add_argument("--items", type=int, default=SCAN)
    args = parser.parse_args()
    _scan_in_child(args.scan, args.items)
