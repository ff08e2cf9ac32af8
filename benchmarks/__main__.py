"""`python -m benchmarks [--quick] [--json FILE] [--only NAME ...] [--strict]`

Runs every benchmark (see benchmarks/README.md) and prints one table of
figures, ratios and targets. Each ratio is measured within this run, so the
machine's speed and load cancel out of it.

Exit status: 1 when a correctness check failed (a benchmark verifies its own
results, e.g. identical match sets); with `--strict` also when a target was
missed; else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import Check, Section

BENCHMARKS = {
    "matching": "benchmarks.matching",
    "pipeline": "benchmarks.pipeline",
    "history": "benchmarks.history",
    "idle": "benchmarks.idle_tick",
    "polls": "benchmarks.idle_poll",
}


def machine() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": str(os.cpu_count()), "cpu": model or platform.processor(), "python": platform.python_version(),
            "platform": platform.platform(), "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def _run_one(name: str, quick: bool, console: Console) -> Section:
    import importlib

    console.print(f"[dim]running {name} ...[/dim]")
    start = time.perf_counter()
    try:
        section = importlib.import_module(BENCHMARKS[name]).run(quick=quick)
    except Exception as exc:  # a crashed benchmark is a failed check, and the others still run
        section = Section(name, name)
        section.checks.append(Check(f"{name} ran", False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"))
    section.seconds = time.perf_counter() - start
    return section


def table(sections: list[Section], info: dict[str, str], quick: bool) -> Table:
    title = f"earful benchmarks{' (--quick: small sizes, figures not comparable)' if quick else ''}"
    caption = f"{info['cpus']} CPUs, {info['cpu']}, Python {info['python']}; load average at the end: {info['load']}"
    result = Table(title=title, caption=caption, show_lines=False)
    for column, justify in (("benchmark", "left"), ("figure", "right"), ("unit", "left"), ("target", "left"),
                            ("", "center"), ("how", "left")):
        result.add_column(column, justify=justify, overflow="fold")
    for section in sections:
        result.add_section()
        result.add_row(f"[bold]{escape(section.title)}[/bold]", "", "", "", "", f"[dim]{section.seconds:.0f} s[/dim]")
        for row in section.rows:
            mark = "" if row.met is None else "[green]met[/green]" if row.met else "[red]MISSED[/red]"
            result.add_row(escape(row.name), escape(str(row.value)), escape(row.unit), escape(row.target), mark, escape(row.note))
        for check in section.checks:
            mark = "[green]ok[/green]" if check.passed else "[red]FAILED[/red]"
            result.add_row(f"[dim]check: {escape(check.name)}[/dim]", "", "", "", mark,
                           "" if check.passed else escape(check.detail[:400]))
        for note in section.notes:
            result.add_row("[dim]note[/dim]", "", "", "", "", f"[dim]{escape(note)}[/dim]")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, for smoke tests; figures not comparable")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure and check to FILE")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only these ({', '.join(BENCHMARKS)})")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed, too")
    args = parser.parse_args(argv)
    console = Console(width=max(160, Console().width))
    started = time.perf_counter()
    sections = [_run_one(name, args.quick, console) for name in (args.only or BENCHMARKS)]
    info = machine()
    console.print(table(sections, info, args.quick))
    failed = [c for s in sections for c in s.checks if not c.passed]
    missed = [f"{s.key}: {r.name}" for s in sections for r in s.rows if r.met is False]
    console.print(f"total {time.perf_counter() - started:.0f} s; {len(failed)} check(s) failed; "
                  f"{len(missed)} target(s) missed" + (f": {'; '.join(missed)}" if missed else ""))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "quick": args.quick, "sections": [s.to_json() for s in sections]},
                                        indent=2), encoding="utf-8")
    if failed:
        return 1
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
