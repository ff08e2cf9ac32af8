"""The layout is the architecture: these tests keep the dependency rule true.

`monitors -> {connectors, rules, alerts} -> core`; `sandbox` (the fake
services) imports only core and is used by the demo and the tests; core
imports nothing of earful. Every import counts, including ones inside
functions, because a lazy import is still an edge.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "connectors", "rules", "alerts", "monitors", "sandbox")
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "connectors": {"core"},
    "rules": {"core"},
    "alerts": {"core"},
    "sandbox": {"core"},
    "monitors": {"core", "connectors", "rules", "alerts"},
}
# The demo is the one place in the hub that starts the fake services.
EXCEPTIONS = {("monitors/demo.py", "sandbox")}


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, earful package) for every import in `path`, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    depth = len(path.relative_to(ROOT / package).parts) - 1  # folders below the package root
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > depth + 1:
                    found.append((node.lineno, "<outside>"))
                    continue
                names = [f"earful.{package}"]
            else:
                names = [node.module or ""]
                if node.module == "earful":
                    names = [f"earful.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "earful" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def _edges() -> list[tuple[str, int, str, str]]:
    edges = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target in _imports(path, package):
                edges.append((str(path.relative_to(ROOT)), line, package, target))
    return edges


def test_every_import_follows_the_dependency_rule():
    wrong = [
        f"{file}:{line}: {package} imports earful.{target}"
        for file, line, package, target in _edges()
        if target != package and target not in ALLOWED[package] and (file, target) not in EXCEPTIONS
    ]
    assert not wrong, "imports against the dependency rule:\n" + "\n".join(wrong)


def test_the_walk_sees_lazy_and_relative_imports(tmp_path):
    """Guard the guard: a function-level import of a sibling leaf is found."""
    edges = _edges()
    assert any(package == "monitors" and target == "connectors" for _, _, package, target in edges)
    assert any(package == "connectors" and target == "core" for _, _, package, target in edges)


SQL = re.compile(
    r"\.(execute|executemany|executescript)\(|\bdb\[\s*[\"']"  # running a statement, sqlite-utils tables
    r"|[\"']\s*(select\s|insert\s+(or\s+\w+\s+)?into|update\s+\w+\s+set|delete\s+from|create\s+(table|index))\b",
    re.I,
)


@pytest.mark.parametrize("package", PACKAGES)
def test_only_the_store_runs_sql(package):
    """Every statement lives in `earful.monitors.store`; the rest calls its methods."""
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("monitors", "store"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SQL.search(line) and "sql-ok" not in line:
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "SQL outside the store:\n" + "\n".join(offenders)


def test_capabilities_are_declared_by_every_connector():
    """The hub reads `sees_replies`/`pushes_query`; a connector that can look
    replies up but does not say so would open every query as "unknown"."""
    from earful import connectors
    from earful.connectors.base import Connector

    for name in connectors.available():
        cls = connectors.load(name)
        overrides_replies = cls.replies is not Connector.replies
        assert cls.sees_replies == overrides_replies, f"{name}: sees_replies={cls.sees_replies}"
