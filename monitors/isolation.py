"""One poison item never fails its batch.

A monitor's batch is stored in one transaction together with its new
cursor (monitors/store/database.py), so one item the store rejects used to
fail the whole batch, every run, for good: the cursor never moved and the
good items beside it were never delivered. Here each item is taken in on
its own terms:

1. `prepare` sanitises each mention (monitors/sanitize.py), checks it can
   be stored and classifies it; an item that fails any of that is set
   aside with the reason;
2. `ingest` stores the batch as one transaction, as before. Only if the
   store still rejects the data of some item does it fall back to one
   transaction per item, under the OLD cursor (a crash in between re-reads
   the batch, and what was stored is recognised as a duplicate), sets the
   rejected items aside, and then advances the cursor. Errors of the
   database itself (disk full, locked, corrupt) are never blamed on an item:
   they fail the monitor as before.

Items set aside go to the quarantine table (`keep_aside`), which
`earful status` counts, and into the run summary.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from typing import Any, Callable, Sequence

from earful.core import Match, Mention

from .sanitize import Quarantined, quarantined, sanitize, storable
from .store import Store
from .store.records import Recorded

log = logging.getLogger("earful.run")

Entry = tuple[Mention, list[Match], list[str]]  # (mention, matches, destinations), as `Store.ingest` takes them

# What an item's data can make the store raise; anything else is the database's own trouble.
DATA_ERRORS = (ValueError, TypeError, OverflowError, RecursionError,
               sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.DataError)


def prepare(mentions: Sequence[Any], classify: Callable[[Mention], Entry],
            now: datetime) -> tuple[list[Entry], list[Quarantined]]:
    """Sanitised, classified entries, oldest first, and the items that could not be prepared."""
    clean: list[Mention] = []
    aside: list[Quarantined] = []
    for mention in mentions:
        try:
            mention = sanitize(mention)
            storable(mention)
            clean.append(mention)
        except Exception as exc:  # noqa: BLE001 - whatever one item does, the others go on
            aside.append(quarantined(mention, exc))
    # Oldest first: a question must be stored before the brand's reply to it can close it.
    clean.sort(key=lambda m: (m.created_at is None, m.created_at or now))
    entries: list[Entry] = []
    for mention in clean:
        try:
            entries.append(classify(mention))
        except Exception as exc:  # noqa: BLE001
            log.debug("classifying %s failed", mention.key, exc_info=True)
            aside.append(quarantined(mention, exc))
    return entries, aside


def ingest(store: Store, monitor: str, batch: Sequence[Entry], cursor: dict[str, Any], now: datetime,
           **hooks: Any) -> tuple[list[Recorded], list[Quarantined]]:
    """`Store.ingest` of `batch`; when an item's data breaks it, item by item, keeping those items aside
    (already written to the quarantine when this returns)."""
    try:
        return store.ingest(monitor, batch, cursor, now, **hooks), []
    except DATA_ERRORS:
        log.debug("storing %s's batch failed; storing item by item", monitor, exc_info=True)
    before = store.cursor(monitor)
    records: list[Recorded] = []
    aside: list[Quarantined] = []
    for entry in batch:
        try:
            records += store.ingest(monitor, [entry], before, now, **hooks)
        except DATA_ERRORS as exc:
            aside.append(quarantined(entry[0], exc))
    keep_aside(store, monitor, aside, now)  # before the cursor moves past them
    store.ingest(monitor, [], cursor, now)
    return records, aside


def keep_aside(store: Store, monitor: str, items: Sequence[Quarantined], now: datetime) -> None:
    """Write `items` to the quarantine (the run summary reports them: logged at info only)."""
    for item in items:
        log.info("monitor %s: quarantined %s: %s", monitor, item.key, item.reason)
        store.quarantine(monitor, item.key, item.reason, item.sample, now)


def summary(items: Sequence[Quarantined]) -> str:
    """The run summary's line about `items` (one note, however many)."""
    first = items[0]
    more = f" and {len(items) - 1} more" if len(items) > 1 else ""
    return (f"{len(items)} item(s) quarantined (could not be stored even after cleaning): "
            f"{first.key} ({first.reason}){more}; see `earful status`")
