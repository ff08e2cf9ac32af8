"""The state: schema, migrations and every SQL statement earful runs.

Nothing outside this package runs SQL; the rest of earful calls the
methods of `Store`. That is the seam a second backend plugs into.
"""

from .database import StateError, Store
from .records import (
           OutboxRow,
           Query,
           Recorded,
           match_to_row,
           mention_to_row,
           row_to_match,
           row_to_mention,
)

__all__ = ["OutboxRow", "Query", "Recorded", "StateError", "Store", "match_to_row", "mention_to_row", "row_to_match",
           "row_to_mention"]
