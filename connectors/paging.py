"""Reading a listing back to where the last run stopped: the one paging loop every connector needs.

Nearly every source lists its items newest first and pages towards older
ones (Reddit listings, X and Bluesky search, notifications, Graph edges).
Each connector used to write the same loop: remember the newest item read
plus the ids seen in an overlap window just below it (late-indexed or
late-federated items appear with an older time), page back until an item
falls below that window, skip what was already returned, stop after
`max_pages` and say so when the catch-up was cut. Written once here, the
subtle parts are right everywhere:

- `Watermark` is a stream's position: `floor` (everything older was read
  or is out of scope), `seen` (keys returned at or above the floor, with
  their positions) and the newest position and key returned so far.
  `advance(overlap)` moves the floor to `overlap` below the newest and
  forgets the keys under it, keeping the seen set bounded.
- `page_back` reads pages from a callable until the floor, the listing's
  end, or `max_pages`; it returns the new items (newest first, as read),
  whether the floor was reached, whether the cap cut the catch-up, and
  where reading stopped (`resume` token, `oldest` position and the keys
  at it), so a connector can keep the unread rest as a pending window.
- `page_forward` is the other direction, for sources that page from an id
  onwards (`after=`/`min_id=`: Discord, Mastodon timelines).

Positions are whatever orders a source's items: epoch seconds, snowflake
ids (ints: never floats, they would lose digits), or aware datetimes; an
overlap is subtracted from a position, so it is a number in the same unit
or a `timedelta` for datetimes. Cursor formats stay each connector's own:
it builds the Watermark from its cursor and writes the result back.

The page-fetching callable does the HTTP and the shape checks and raises
`ConnectorError` on failure; this module never touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Sequence, TypeVar

T = TypeVar("T")

MAX_SEEN = 2_000
"""Default bound of a watermark's seen set (the overlap of a very busy stream)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: its items and the token of the following page (None: the listing ends here)."""

    items: Sequence[T]
    next: Any = None


@dataclass
class Watermark:
    """Where a newest-first stream stands: items below `floor` are done; `seen` were returned at or above it.

    `newest`/`newest_key` are the newest position (and its item's key)
    returned so far; a fresh watermark starts with `newest` at its floor
    and no key.
    """

    floor: Any
    seen: dict[str, Any] = field(default_factory=dict)
    newest: Any = None
    newest_key: str | None = None

    def __post_init__(self) -> None:
        if self.newest is None:
            self.newest = self.floor

    @classmethod
    def resume(cls, newest: Any, overlap: Any, seen: Iterable[tuple[str, Any]] = (),
               newest_key: str | None = None) -> "Watermark":
        """The watermark of a stream whose last run ended at `newest`: its floor `overlap` below it.

        Seen keys under that floor are dropped: they can no longer be read.
        """
        floor = newest - overlap
        return cls(floor, {str(k): p for k, p in seen if p >= floor}, newest, newest_key)

    def is_new(self, key: str, position: Any) -> bool:
        return position >= self.floor and key not in self.seen

    def add(self, key: str, position: Any) -> None:
        """Record an item as returned; the newest position (and its key) follow it."""
        self.seen[key] = position
        if self.newest_key is None or position > self.newest:
            self.newest_key = key
            self.newest = max(position, self.newest)

    def advance(self, overlap: Any, limit: int = MAX_SEEN) -> "Watermark":
        """Move the floor to `overlap` below the newest position and forget the keys under it.

        A flood inside the overlap (more than `limit` keys) raises the floor
        instead, keeping every key at the new floor's position, so the kept
        set always covers everything above the floor. Returns self.
        """
        self.floor = max(self.floor, self.newest - overlap)
        kept = sorted(((p, k) for k, p in self.seen.items() if p >= self.floor), reverse=True)
        if len(kept) > limit:
            self.floor = kept[limit - 1][0]
            kept = [(p, k) for p, k in kept if p >= self.floor]
        self.seen = {k: p for p, k in kept}
        return self


@dataclass
class CatchUp(Generic[T]):
    """What `page_back` read.

    `items`: new items, newest first. `reached`: an item below the floor
    was met, so everything newer was read. `complete`: nothing is left to
    read (floor reached or the listing ended). `cut`: `max_pages` stopped
    the reading while more pages were there; `resume` is then the next
    page's token, and everything below `oldest` (plus the `oldest_keys` not
    yet read at that very position) is unread. `read` counts the items
    looked at above the floor, `pages` the pages requested.
    """

    items: list[T]
    reached: bool
    complete: bool
    pages: int
    read: int
    resume: Any = None
    oldest: Any = None
    oldest_keys: set[str] = field(default_factory=set)

    @property
    def cut(self) -> bool:
        return not self.complete


def page_back(
    fetch: Callable[[Any], Page[T]],
    watermark: Watermark,
    *,
    key: Callable[[T], str],
    position: Callable[[T], Any],
    max_pages: int,
    ceiling: Any = None,
    wanted: Callable[[T], bool] | None = None,
) -> CatchUp[T]:
    """Read a newest-first listing down to `watermark.floor`, within `max_pages` requests.

    `fetch(token)` returns one `Page`; it is called with None first, then
    with each page's `next`. Items below the floor end the reading after
    their page; items at or above `ceiling` (exclusive; a pending window's
    top) are ignored, as are keys the watermark has seen. `wanted` filters
    items out of the result without affecting where reading stops.
    Returned items are added to `watermark` (call `advance` afterwards).
    `max_pages=0` reads nothing and reports the whole window as cut.
    """
    found: list[T] = []
    token: Any = None
    pages = read = 0
    reached = ended = False
    oldest: Any = None
    oldest_keys: set[str] = set()
    while pages < max_pages:
        page = fetch(token)
        pages += 1
        for item in page.items:
            at, name = position(item), key(item)
            if at < watermark.floor:
                reached = True
                continue
            if ceiling is not None and at >= ceiling:
                continue
            read += 1
            if oldest is None or at < oldest:
                oldest, oldest_keys = at, {name}
            elif at == oldest:
                oldest_keys.add(name)
            if watermark.is_new(name, at) and (wanted is None or wanted(item)):
                watermark.add(name, at)
                found.append(item)
        token = page.next
        if not page.items or token is None:
            ended = True
        if reached or ended:
            break
    complete = reached or ended
    return CatchUp(found, reached, complete, pages, read, None if complete else token, oldest, oldest_keys)


@dataclass
class Forward(Generic[T]):
    """What `page_forward` read: `items` oldest first, the new `after`, and whether the listing's end was reached."""

    items: list[T]
    after: Any
    complete: bool
    pages: int


def page_forward(
    fetch: Callable[[Any], Page[T]],
    after: Any,
    *,
    position: Callable[[T], Any],
    max_pages: int,
    page_size: int,
) -> Forward[T]:
    """Read a listing onwards from `after` (`after=`/`min_id=` paging), within `max_pages` requests.

    `fetch(after)` returns the page of items right after `after`, in any
    order; only items past `after` count. A page's `next`, when given, is
    the position the server says the page ends at (Mastodon's `Link: prev`,
    which also skips items it hid from us), and is used when it is further.
    A page shorter than `page_size`, or with nothing new, is the end.
    """
    got: list[T] = []
    for pages in range(1, max_pages + 1):
        page = fetch(after)
        fresh = sorted((i for i in page.items if position(i) > after), key=position)
        got.extend(fresh)
        if fresh:
            after = position(fresh[-1])
            if page.next is not None and page.next > after:
                after = page.next
        if len(page.items) < page_size or not fresh:
            return Forward(got, after, True, pages)
    return Forward(got, after, False, max_pages)
