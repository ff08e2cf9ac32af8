"""1. Matcher scaling: posts/s against 10, 100, 1,000 and 10,000 rules.

earful's compiled matcher (`Matcher.compile(packs).match`) against the
naive baseline (`benchmarks.baseline.NaiveMatcher`: one regex per rule, in
a loop), on the same deterministic posts and rules (`benchmarks.workload`).

* earful: every post, in batches of 500 as a monitor run takes them, three
  passes; the median pass is reported. At the largest size, a note splits
  a post's CPU time into normalising, the automaton pass and the rest.
* baseline: one pass over a subset of the posts (all of them where that
  takes a few seconds; 150 posts at 10,000 rules), posts/s extrapolated
  from that subset, which the table says.
* correctness: on every post of the baseline's subset, the (pack, rule id)
  list earful reports must equal the baseline's. Any difference fails the run.
"""

from __future__ import annotations

import gc
import statistics
import time

from earful.rules.engine import Matcher

from . import workload
from .baseline import NaiveMatcher
from .common import Section, fmt_rate

SIZES = (10, 100, 1_000, 10_000)
POSTS = 20_000
BASELINE_POSTS = {10: 20_000, 100: 4_000, 1_000: 600, 10_000: 150}
QUICK_SIZES = (10, 100, 1_000)
QUICK_POSTS = 1_000
QUICK_BASELINE_POSTS = {10: 1_000, 100: 300, 1_000: 40}
TARGET_RATE = 100_000      # posts/s at 10,000 rules
TARGET_SPEEDUP = 100       # x the baseline at 1,000 rules


def _median_rate(work, count: int, repeats: int) -> tuple[float, float]:
    """Median items/s over `repeats` runs, by wall clock and by this process's CPU time.

    The wall-clock rate is the figure; the CPU-time rate, which other jobs on
    the machine barely disturb, says how much of a low figure is load."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(count / (time.perf_counter() - start))
        cpus.append(count / max(time.process_time() - cpu, 1e-9))
    return statistics.median(walls), statistics.median(cpus)


def _in_batches(matcher: Matcher, posts: list, batch: int = 500) -> None:
    """Match every post, keeping each batch's verdicts until the batch is done,
    as a monitor run does (`runner.run_monitor` classifies one fetch, then
    stores it). Garbage collection runs as in production."""
    for start in range(0, len(posts), batch):
        verdicts = [matcher.match(p) for p in posts[start:start + batch]]
    del verdicts


def run(quick: bool = False) -> Section:
    section = Section("matching", "1. Matcher scaling (posts/s, earful vs one regex per rule)")
    sizes = QUICK_SIZES if quick else SIZES
    posts = workload.posts(QUICK_POSTS if quick else POSTS)
    subsets = QUICK_BASELINE_POSTS if quick else BASELINE_POSTS
    non_ascii = sum(not (p.title.isascii() and p.text.isascii()) for p in posts) / len(posts)
    mean_chars = statistics.mean(len(p.title) + len(p.text) for p in posts)
    section.notes.append(
        f"{len(posts):,} generated posts, {mean_chars:.0f} characters on average (title + text), "
        f"{non_ascii:.0%} with non-ASCII characters; rules anchored on brand names, "
        f"{workload.RULES_PER_BRAND} per brand (words, phrases, wildcards, NOT, title: and field filters)."
    )
    for size in sizes:
        gc.collect()
        _one_size(section, size, posts, subsets[size], quick, size == sizes[-1])
    return section


def _one_size(section: Section, size: int, posts: list, subset_size: int, quick: bool, largest: bool) -> None:
    packs = workload.rule_packs(size)
    start = time.perf_counter()
    matcher = Matcher.compile(packs)
    compile_s = time.perf_counter() - start
    naive = NaiveMatcher(packs)
    subset = posts[:subset_size]

    # The baseline, once over its subset; its answers are the reference.
    start, cpu = time.perf_counter(), time.process_time()
    expected = [naive.match(p) for p in subset]
    baseline_rate = len(subset) / (time.perf_counter() - start)
    baseline_cpu_rate = len(subset) / max(time.process_time() - cpu, 1e-9)
    got = [[(m.pack, m.rule_id) for m in matcher.match(p)] for p in subset]
    differ = [i for i, (a, b) in enumerate(zip(expected, got)) if a != b]  # same rules, same order
    section.check(
        f"{size:,} rules: earful's matches equal the baseline's on {len(subset):,} posts",
        not differ,
        "" if not differ else f"{len(differ)} posts differ, first {subset[differ[0]].key}: "
        f"baseline {expected[differ[0]]} earful {got[differ[0]]}",
    )

    rate, cpu_rate = _median_rate(lambda: _in_batches(matcher, posts), len(posts), 1 if quick else 3)
    verdicts = [matcher.match(p) for p in posts]
    matched = sum(1 for v in verdicts if v) / len(posts)
    per_post = sum(map(len, verdicts)) / len(posts)
    speedup = rate / baseline_rate
    is_target_size = size == 10_000
    section.row(f"{size:,} rules: earful", fmt_rate(rate), "posts/s",
                f">= {TARGET_RATE:,}" if is_target_size else "", (rate >= TARGET_RATE) if is_target_size else None,
                f"median of {1 if quick else 3} passes ({fmt_rate(cpu_rate)} by CPU time); compiled in {compile_s:.2f} s; "
                f"{matched:.0%} of posts match, {per_post:.2f} verdicts/post")
    extrapolated = len(subset) < len(posts)
    section.row(f"{size:,} rules: baseline", fmt_rate(baseline_rate), "posts/s", "", None,
                f"timed on {len(subset):,} posts" + (", extrapolated" if extrapolated else "")
                + f" ({fmt_rate(baseline_cpu_rate)} by CPU time)")
    section.row(f"{size:,} rules: earful / baseline", f"{speedup:,.0f}x", "",
                f">= {TARGET_SPEEDUP}x" if size == 1_000 else "", (speedup >= TARGET_SPEEDUP) if size == 1_000 else None)

    if largest:
        section.notes.append(_breakdown(matcher, posts, size))


def _breakdown(matcher: Matcher, posts: list, size: int) -> str:
    """Where a post's time goes at `size` rules, by CPU time: normalising
    title and text, the automaton pass, and the rest (rule tests, verdicts)."""
    from operator import itemgetter

    from earful.core.normalize import normalize_pair

    ids = itemgetter(1)
    scan = matcher._iter  # noqa: SLF001 - the benchmark looks inside on purpose
    start = time.process_time()
    texts = [normalize_pair(p.title or "", p.text or "") for p in posts]
    normalise = time.process_time() - start
    start = time.process_time()
    for text in texts:
        set(map(ids, scan(text)))
    automaton = time.process_time() - start
    start = time.process_time()
    for post in posts:
        matcher.match(post)
    total = time.process_time() - start
    per = 1e6 / len(posts)
    rest = max(total - normalise - automaton, 0.0)
    return (f"at {size:,} rules one post takes {total * per:.1f} µs of CPU: normalising title and text "
            f"{normalise * per:.1f}, the automaton pass {automaton * per:.1f}, rule tests and verdicts {rest * per:.1f}")
