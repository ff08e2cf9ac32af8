"""The shared paging helper: newest id + overlap window, page back to the cursor, cap the catch-up."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from earful.connectors.paging import Page, Watermark, page_back, page_forward


def listing(positions: list[int], size: int) -> tuple[Any, list[Any]]:
    """A newest-first listing of items {"id", "t"} served `size` per page; the calls made are recorded."""
    items = [{"id": f"i{t}", "t": t} for t in sorted(positions, reverse=True)]
    calls: list[Any] = []

    def fetch(token: Any) -> Page[dict[str, Any]]:
        calls.append(token)
        start = token or 0
        chunk = items[start:start + size]
        return Page(chunk, start + size if start + size < len(items) else None)

    return fetch, calls


def read(fetch: Any, mark: Watermark, **kw: Any) -> Any:
    return page_back(fetch, mark, key=lambda i: i["id"], position=lambda i: i["t"], **{"max_pages": 10, **kw})


def test_an_idle_poll_reads_one_page_and_returns_nothing_new() -> None:
    fetch, calls = listing([100, 90, 80, 70], size=2)
    mark = Watermark.resume(100, 5, [("i100", 100)], newest_key="i100")
    caught = read(fetch, mark)
    assert caught.items == [] and caught.reached and caught.complete and not caught.cut
    assert calls == [None]


def test_pages_back_to_the_overlap_and_skips_what_was_seen() -> None:
    fetch, calls = listing([130, 120, 110, 100, 95, 80], size=2)
    mark = Watermark.resume(100, 10, [("i100", 100)], newest_key="i100")
    caught = read(fetch, mark)
    assert [i["id"] for i in caught.items] == ["i130", "i120", "i110", "i95"]  # 95: late, inside the overlap
    assert caught.reached and caught.pages == 3 and calls == [None, 2, 4]
    assert mark.newest == 130 and mark.newest_key == "i130"
    mark.advance(10)
    assert mark.floor == 120 and mark.seen == {"i130": 130, "i120": 120}


def test_the_cap_cuts_the_catch_up_and_says_where() -> None:
    fetch, _ = listing(list(range(200, 100, -10)), size=3)
    caught = read(fetch, Watermark(105), max_pages=2)
    assert caught.cut and not caught.reached and caught.resume == 6
    assert caught.oldest == 150 and caught.oldest_keys == {"i150"} and caught.read == 6
    nothing = read(fetch, Watermark(105), max_pages=0)
    assert nothing.cut and nothing.pages == 0 and nothing.oldest is None


def test_the_end_of_the_listing_is_complete_but_not_reached() -> None:
    fetch, _ = listing([300, 290], size=5)
    caught = read(fetch, Watermark(100))
    assert caught.complete and not caught.reached and len(caught.items) == 2


def test_ceiling_and_wanted_filter_without_moving_the_stop() -> None:
    fetch, _ = listing([50, 40, 30, 20, 10], size=5)
    caught = read(fetch, Watermark(15), ceiling=45, wanted=lambda i: i["t"] != 30)
    assert [i["id"] for i in caught.items] == ["i40", "i20"] and caught.reached and caught.oldest == 20


def test_datetime_positions_and_timedelta_overlap() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    mark = Watermark.resume(t0, timedelta(minutes=10), [("a", t0 - timedelta(minutes=5)), ("b", t0 - timedelta(hours=1))])
    assert mark.floor == t0 - timedelta(minutes=10) and set(mark.seen) == {"a"}
    assert mark.is_new("c", t0 - timedelta(minutes=1)) and not mark.is_new("a", t0 - timedelta(minutes=5))
    assert not mark.is_new("d", t0 - timedelta(minutes=11))


def test_a_flood_in_the_overlap_raises_the_floor_and_keeps_the_boundary_whole() -> None:
    mark = Watermark(0)
    for n in range(10):
        mark.add(f"k{n}", 100 - n // 2)  # two keys per position: 100, 100, 99, 99, ...
    mark.advance(1_000, limit=3)
    assert mark.floor == 99 and set(mark.seen) == {"k0", "k1", "k2", "k3"}


def test_page_forward_reads_from_the_cursor_on_until_a_short_page() -> None:
    ids = list(range(1, 8))

    def fetch(after: int) -> Page[int]:
        return Page([i for i in ids if i > after][:3][::-1])  # the next three, newest first as Discord sends them

    forward = page_forward(fetch, 0, position=lambda i: i, max_pages=10, page_size=3)
    assert forward.items == ids and forward.after == 7 and forward.complete and forward.pages == 3
    capped = page_forward(fetch, 0, position=lambda i: i, max_pages=1, page_size=3)
    assert capped.items == [1, 2, 3] and capped.after == 3 and not capped.complete


def test_page_forward_follows_the_servers_end_marker() -> None:
    def fetch(after: int) -> Page[int]:
        return Page([after + 1, after + 2], next=after + 5) if after < 10 else Page([])

    forward = page_forward(fetch, 0, position=lambda i: i, max_pages=5, page_size=2)
    assert forward.items == [1, 2, 6, 7] and forward.after == 10 and forward.complete  # 3-5 and 8-10: hidden by the server
