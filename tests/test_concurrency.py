"""Concurrent fetching with one writer (issue 18, item 1).

Six feed monitors whose server answers a request only once a whole batch of
requests is in flight: if the runner fetched one after another, each would
wait out the gate's timeout instead. The gate counts requests in flight, so
the tests assert on overlap itself, never on wall time; `per_host` must cap
what one host sees at once; and however the fetches interleave, every item
is stored and alerted exactly once.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from earful.sandbox.feeds import FeedServer
from earful.sandbox.server import Request, Response

from .deploy import Deployment, acme_rules, write_deployment
from .support import atom

FEEDS = 6
GATE_TIMEOUT = 5.0  # seconds a request waits for the rest of its batch at most, so a failing test never hangs


class GatedFeeds(FeedServer):
    """Answers requests in batches of `batch`: each waits until its whole batch has arrived."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch
        self.arrivals = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.timed_out = 0
        self._gate = threading.Condition()

    def handle(self, request: Request) -> Response:
        with self._gate:
            arrival = self.arrivals
            self.arrivals += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._gate.notify_all()
            batch_end = (arrival // self.batch + 1) * self.batch
            if not self._gate.wait_for(lambda: self.arrivals >= batch_end, GATE_TIMEOUT):
                self.timed_out += 1
            self.in_flight -= 1
        return super().handle(request)


@pytest.fixture
def gated(request: pytest.FixtureRequest) -> Iterator[GatedFeeds]:
    server = GatedFeeds(request.param)
    for number in range(FEEDS):
        server.set_feed(f"/feed{number}.atom", atom([(f"{number}-{n}", f"Acme outage {number}.{n}", "refund please")
                                                      for n in range(3)]))
    with server:
        yield server


def six_feeds(tmp_path: Path, server: FeedServer, **settings: int) -> Deployment:
    monitors = {f"feed{n}": {"connector": "rss", "url": server.feed_url(f"/feed{n}.atom")} for n in range(FEEDS)}
    return write_deployment(tmp_path, monitors, acme_rules({}), settings=settings)


@pytest.mark.parametrize("gated", [FEEDS], indirect=True)
def test_six_monitors_fetch_at_once_and_each_item_is_delivered_once(tmp_path: Path, gated: GatedFeeds) -> None:
    deployed = six_feeds(tmp_path, gated, concurrency=FEEDS, per_host=FEEDS)
    report = deployed.tick()
    assert gated.most_in_flight == FEEDS, "all six requests were in flight together"
    assert gated.timed_out == 0, "no request waited for a batch that never came"
    assert [o.name for o in report.monitors] == [f"feed{n}" for n in range(FEEDS)], "reported in start order"
    assert all(o.ok and o.new_items == 3 and o.alerts == 3 for o in report.monitors), report.monitors
    _, items = deployed.stored()
    assert len(items) == FEEDS * 3
    assert report.delivery is not None and report.delivery.delivered == {"support": FEEDS * 3}

    again = deployed.tick()  # the same feeds again: nothing new, nothing sent twice
    assert all(o.ok and o.new_items == 0 for o in again.monitors), again.monitors
    alerted = deployed.alerted()
    assert len(alerted) == len(set(alerted)) == FEEDS * 3


@pytest.mark.parametrize("gated", [2], indirect=True)
def test_per_host_caps_what_one_site_sees_at_once(tmp_path: Path, gated: GatedFeeds) -> None:
    deployed = six_feeds(tmp_path, gated, concurrency=FEEDS, per_host=2)
    report = deployed.tick()
    assert gated.most_in_flight == 2, "two at a time: overlapping, but never a third on the same host"
    assert gated.timed_out == 0
    assert all(o.ok and o.alerts == 3 for o in report.monitors), report.monitors
    alerted = deployed.alerted()
    assert len(alerted) == len(set(alerted)) == FEEDS * 3


@pytest.mark.parametrize("gated", [1], indirect=True)
def test_concurrency_one_fetches_one_after_another(tmp_path: Path, gated: GatedFeeds) -> None:
    deployed = six_feeds(tmp_path, gated, concurrency=1)
    report = deployed.tick()
    assert gated.most_in_flight == 1
    assert [o.name for o in report.monitors] == [f"feed{n}" for n in range(FEEDS)]
    assert len(deployed.alerted()) == FEEDS * 3
