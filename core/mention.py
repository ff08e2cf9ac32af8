"""`Mention`: one thing somebody wrote somewhere, the unit every stage passes on.

It lives in core because connectors make it, rules read it, the store
keeps it and destinations show it; none of those may import the other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Mapping

MentionKind = Literal["post", "comment", "reply", "review", "message"]
KINDS: tuple[str, ...] = ("post", "comment", "reply", "review", "message")


@dataclass(frozen=True)
class Mention:
    """One thing somebody wrote somewhere, as earful sees it.

    `url` is where the mention itself lives (the HN item, the Reddit post);
    `link_url` is the page it shares, if any (a link post's article), so the
    store can cluster a discussion with the article's other appearances.

    `brand_replied` is three-valued on purpose: None means the channel does
    not show replies (or the connector did not look), which must never be
    reported as "answered".
    """

    source: str
    external_id: str
    url: str = ""
    author: str = ""
    author_is_brand: bool = False
    title: str = ""
    text: str = ""
    created_at: datetime | None = None
    thread_id: str | None = None
    parent_id: str | None = None
    kind: MentionKind = "post"
    rating: float | None = None
    language: str | None = None
    brand_replied: bool | None = None
    site: str = ""
    link_url: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def key(self) -> str:
        """Stable identity across runs: the source plus the source's own id."""
        return f"{self.source}:{self.external_id}"

    def replace(self, **changes: Any) -> "Mention":
        return dataclasses.replace(self, **changes)
