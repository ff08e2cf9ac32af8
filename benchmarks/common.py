"""What every benchmark returns, and helpers for child processes.

A benchmark is a function `run(quick: bool) -> Section`. A `Section` holds
the figures (`Row`s: a value, its unit, the target and whether it was met),
the correctness checks (`Check`s: the benchmark verifies its own results,
e.g. identical match sets, and `python -m benchmarks` exits 1 if any
fails) and notes (how a figure was obtained: extrapolations, skipped parts).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    name: str
    value: float | int | str
    unit: str = ""
    target: str = ""
    met: bool | None = None  # None: no target
    note: str = ""


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, *args: Any, **kwargs: Any) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        return row

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def python_env(**extra: str) -> dict[str, str]:
    """The environment for child Pythons: the repository importable (for
    `python -m benchmarks...` children), nothing else changed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"
