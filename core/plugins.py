"""Name -> module registries shared by connectors and destinations.

Built-ins are a plain dict; third parties add entries through an entry-point
group with the same shape (``name = "package.module"``). Modules are
imported on first use only, so an idle cron tick pays for none of them.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any


@functools.lru_cache(maxsize=None)
def _installed(group: str) -> tuple[tuple[str, str], ...]:
    """Entry points of `group`, scanned once per process (a scan costs
    about 1.6 ms, and a run asks once per monitor)."""
    try:
        from importlib.metadata import entry_points

        return tuple((ep.name, ep.value) for ep in entry_points(group=group))
    except Exception:  # pragma: no cover - broken third-party metadata must not break earful
        return ()


def available(builtin: dict[str, str], group: str) -> dict[str, str]:
    """Built-in names plus those installed through the entry-point `group`."""
    found = dict(builtin)
    for name, value in _installed(group):
        found.setdefault(name, value)
    return found


def load(builtin: dict[str, str], group: str, name: str, attr: str) -> Any:
    """The object `attr` of the module registered as `name` (KeyError if unknown)."""
    module = importlib.import_module(available(builtin, group)[name])
    return getattr(module, attr)
