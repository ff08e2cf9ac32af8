"""Named crash points, so tests can prove crash safety with a real SIGKILL.

`EARFUL_FAULT=after_store` (or `during_delivery:2`, the second time that
point is reached) makes the process kill itself with SIGKILL right there:
no cleanup, no finally blocks, exactly like the OOM killer. Unset, each
point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get("EARFUL_FAULT")
    if not spec:
        return
    for item in spec.split(","):
        wanted, _, nth = item.strip().partition(":")
        if wanted != name:
            continue
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
