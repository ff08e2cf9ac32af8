"""`python -m benchmarks --quick` runs end to end and its own correctness checks pass.

No timing is asserted here: the figures depend on the machine. What must
hold everywhere is that each benchmark verifies its results (earful's
matches equal the naive baseline's, the pipeline stores every item once and
queues one alert per matching cluster, idle ticks do nothing, idle polls
find nothing new) and that the command exits 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_quick_benchmark_runs_and_its_checks_pass(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=580)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    sections = {s["key"]: s for s in report["sections"]}
    assert set(sections) == {"matching", "pipeline", "history", "idle", "polls"}
    checks = [c for s in report["sections"] for c in s["checks"]]
    assert checks and all(c["passed"] for c in checks), [c for c in checks if not c["passed"]]
    assert all(s["rows"] for s in report["sections"])
