"""A throwaway earful deployment for end-to-end tests.

Every connector's pipeline test needs the same scaffolding: a config dir with
cron.yaml, a rule pack and the secrets in `.env`, ticks of the real runner,
and a look at what the outbox kept. Only the monitors and the rules differ, so
the tests say just those and stay about their source, not about YAML.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ruamel.yaml import YAML

from earful.core import Mention
from earful.monitors.config import Config, load_config
from earful.monitors.runner import RunReport, run
from earful.monitors.store import Store

CONSOLE: Mapping[str, Any] = {"type": "console"}
QUESTION = {"id": "question", "query": 'acme ("how do i" OR "does anyone")', "labels": ["question"]}


def acme_rules(accounts: Mapping[str, Any], complaint: str = "broken OR refund OR outage",
               severity: str | None = "high") -> dict[str, Any]:
    """The pack most pipeline tests match with: `acme (<complaint>)` is a complaint, "how do i" / "does anyone" a question."""
    rule: dict[str, Any] = {"id": "complaint", "query": f"acme ({complaint})", "labels": ["complaint"]}
    if severity:
        rule["severity"] = severity
    return {"brand": {"name": "Acme", "accounts": dict(accounts)}, "rules": [rule, QUESTION]}


def yaml_text(data: Mapping[str, Any]) -> str:
    """Block-style YAML that keeps the mapping's order (the runner reports monitors in file order)."""
    out = io.StringIO()
    YAML().dump(_plain(data), out)
    return out.getvalue()


@dataclass
class Deployment:
    """A config dir on disk; each method is what a cron tick or an admin would do with it."""

    path: Path  # its cron.yaml

    @property
    def directory(self) -> Path:
        return self.path.parent

    @cached_property
    def config(self) -> Config:
        return load_config(self.path)

    def tick(self, now: datetime | None = None, **options: Any) -> RunReport:
        """One `earful run --all`, at `now` or on the wall clock."""
        return run(self.config, force_all=True, now=now, **options)

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        store = Store(self.config.state_path)
        try:
            yield store
        finally:
            store.close()

    def alerted(self, source: str | None = None, kind: str | None = "alert") -> list[str]:
        """Clusters in the outbox (delivered or held by flood control), of one `kind` (None: every row) and `source`."""
        with self.store() as store:
            return [row.cluster for row in store.outbox_rows()
                    if (kind is None or row.kind == kind) and (source is None or row.cluster.startswith(f"{source}:"))]

    def stored(self) -> tuple[list[tuple[Mention, str]], list[Mention]]:
        """(alerted item, destination) for each outbox row, and every item stored."""
        with self.store() as store:
            alerts = [(store.item(row.cluster), row.destination) for row in store.outbox_rows()]
            items = store.all_mentions()
        return alerts, items

    def cursor(self, monitor: str) -> Any:
        with self.store() as store:
            return store.cursor(monitor)

    def monitor_state(self, monitor: str) -> dict[str, Any]:
        with self.store() as store:
            return store.monitor_state(monitor)

    def failing_tick(self, monitor: str, *words: str) -> dict[str, Any]:
        """A tick in which `monitor` fails with an error naming each of `words` and keeps its cursor, so the next
        tick reads from the same point; returns the monitor's state (for `defer_until`)."""
        before = self.cursor(monitor)
        report = self.tick()
        outcome = next(o for o in report.monitors if o.name == monitor)
        assert report.failed and not outcome.ok, outcome
        assert all(word in (outcome.error or "") for word in words), outcome.error
        assert self.cursor(monitor) == before
        return self.monitor_state(monitor)


def write_deployment(directory: Path, monitors: Mapping[str, Mapping[str, Any]], rules: str | Mapping[str, Any], *,
                     destinations: Mapping[str, Mapping[str, Any]] | None = None, settings: Mapping[str, Any] | None = None,
                     env: Mapping[str, str] | None = None) -> Deployment:
    """Write cron.yaml, rules/acme.yaml and `.env` into `directory`.

    Each monitor uses the `acme` pack and notifies `support` unless it says
    otherwise; the destinations default to `support` on the console.
    `settings` are extra top-level keys (timezone, digests, ...); `env` holds
    the secrets that cron.yaml names as `${VAR}`.
    """
    (directory / "rules").mkdir(parents=True, exist_ok=True)
    (directory / "rules" / "acme.yaml").write_text(rules if isinstance(rules, str) else yaml_text(rules))
    if env:
        (directory / ".env").write_text("".join(f"{name}={value}\n" for name, value in env.items()))
        (directory / ".env").chmod(0o600)  # as an operator keeps secrets; earful warns otherwise
    cron = {"state": "state.db", **(settings or {}), "destinations": destinations or {"support": CONSOLE},
            "monitors": {name: {**monitor, "rules": monitor.get("rules", ["acme"]), "notify": monitor.get("notify", ["support"])}
                         for name, monitor in monitors.items()}}
    (directory / "cron.yaml").write_text(yaml_text(cron))
    return Deployment(directory / "cron.yaml")


def _plain(value: Any) -> Any:
    """Tuples and other sequences as lists, so the dumper writes plain YAML lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value

