"""`earful browse`: the state in Datasette, read-only, for people who would rather click than query.

Datasette opens a file it may change with `mode=ro` connections and offers
no way to write without plugins; earful adds none. The `mentions` view
(migration m007) is the start page: one row per mention with its UTC day,
labels and reply state, faceted by source, label, day (and sentiment once
the state has it), searchable through the `items_search` index. The saved
queries come from the store, which holds every statement earful runs.
Datasette is an optional extra (`pip install 'earful[browse]'`), imported
only here and only when the command runs.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable

from .store.search import BROWSE_QUERIES

START_TABLE = "mentions"


def metadata(database: str, columns: list[str]) -> dict[str, Any]:
    """Datasette metadata for state file `database`; `columns`: those of the `mentions` view."""
    facets: list[Any] = ["source", {"array": "labels"}, "day"]
    if "sentiment" in columns:
        facets.insert(2, "sentiment")
    return {
        "title": "earful: what it found",
        "description": "Every stored mention, read-only. Saved queries: unanswered, breached, per channel.",
        "databases": {database: {
            "queries": BROWSE_QUERIES,
            "tables": {START_TABLE: {
                "facets": facets,
                "sort_desc": "posted_at",
                "size": 50,
                "fts_table": "items_search",
                "fts_pk": "item_rowid",
                "label_column": "title",
                "description": "One row per stored mention; day is the UTC day it was posted (found, where unknown).",
            }},
        }},
    }


def app(state: Path, view_columns: list[str]):
    """The Datasette ASGI app over `state`."""
    try:
        from datasette.app import Datasette
    except ImportError:
        raise RuntimeError("earful browse needs Datasette: pip install 'earful[browse]'") from None
    return Datasette([str(state)], metadata=metadata(state.stem, view_columns),
                     settings={"default_page_size": 50}).app()


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port), bound before the URL is printed, so the URL is right."""
    return socket.create_server((host, port))


def url(sock: socket.socket, state: Path) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/{state.stem}/{START_TABLE}"


def serve(asgi: Any, sock: socket.socket, on_ready: Callable[[], None] = lambda: None) -> None:
    """Serve until Ctrl-C (uvicorn stops cleanly on SIGINT and SIGTERM)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="off"))
    on_ready()
    server.run(sockets=[sock])
