"""Deadlines and limits: one slow or huge source never holds up the run.

A trickling server (headers, then one byte every half second for ever)
must cost a fetch its `timeout` and no more, and the run's other monitors
must still deliver; an oversized body must fail with a clear message
without being read into memory; a run past its `run_budget` leaves the rest
due for the next tick and says so once through the health channel.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from earful.connectors.base import ConnectorError, ConnectorOptions
from earful.connectors.http import HttpClient
from earful.monitors.cli import main
from earful.monitors.health import RUN_HEALTH
from earful.sandbox.feeds import FeedServer

from .deploy import Deployment, acme_rules, write_deployment
from .support import atom

TRICKLE_EVERY = 0.5  # seconds between two bytes of a trickling body
BLOCK = b"x" * 65536
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/atom+xml\r\nConnection: close\r\n"
MB = 1024 * 1024


class RawServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 whose body is written by `body(socket, stopped)`.

    Each connection gets its own thread; `stop()` sets `stopped`, which every
    body writer waits on, so nothing here sleeps on a fixed clock but the
    trickle's own cadence.
    """

    def __init__(self, body: Callable[[socket.socket, threading.Event], None]):
        self.stopped = threading.Event()
        writer, stopped = body, self.stopped

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.recv(65536)  # the request: whatever it is, the answer is the same
                with contextlib.suppress(OSError):
                    writer(self.request, stopped)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/feed.atom"

    def __enter__(self) -> "RawServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def trickle(conn: socket.socket, stopped: threading.Event) -> None:
    """Headers at once, then one byte every TRICKLE_EVERY seconds until stopped: each read succeeds, none ends."""
    conn.sendall(HEADERS + b"\r\n<?xml")
    while not stopped.wait(TRICKLE_EVERY):
        conn.sendall(b" ")


def flood(total: int, declared: bool) -> Callable[[socket.socket, threading.Event], None]:
    """`total` bytes as fast as the client reads, with or without a Content-Length saying so."""
    def write(conn: socket.socket, stopped: threading.Event) -> None:
        conn.sendall(HEADERS + (f"Content-Length: {total}\r\n".encode() if declared else b"") + b"\r\n")
        sent = 0
        while sent < total and not stopped.is_set():
            conn.sendall(BLOCK)
            sent += len(BLOCK)
    return write


@pytest.fixture()
def trickling() -> Iterator[RawServer]:
    with RawServer(trickle) as server:
        yield server


@pytest.fixture()
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.set_feed("/news.atom", atom([("1", "Acme is broken", "acme is broken since monday")]))
        yield server


def client(**options: Any) -> HttpClient:
    return HttpClient(ConnectorOptions(**options), "rss monitor 'slow'")


# -- one exchange -----------------------------------------------------------------------------


def test_a_trickling_body_fails_at_its_deadline(trickling: RawServer) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectorError) as caught:
        client(timeout=2).get(trickling.url)
    took = time.monotonic() - started
    assert 2 <= took < 2 + 2 * TRICKLE_EVERY, took
    message = str(caught.value)
    assert "rss monitor 'slow'" in message and trickling.url in message
    assert "timed out after 2s" in message and "whole answer" in message and "`timeout`" in message


def test_trickling_headers_fail_at_the_deadline_too() -> None:
    def headers_forever(conn: socket.socket, stopped: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stopped.wait(TRICKLE_EVERY):
            conn.sendall(b"X-Slow: 1\r\n")

    with RawServer(headers_forever) as server:
        started = time.monotonic()
        with pytest.raises(ConnectorError, match="timed out after 1s"):
            client(timeout=1).get(server.url)
        assert time.monotonic() - started < 1 + 2 * TRICKLE_EVERY


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked-or-unsized"])
def test_an_oversized_body_is_refused_without_being_read_whole(declared: bool) -> None:
    with RawServer(flood(20 * MB, declared)) as server:
        tracemalloc.start()
        try:
            with pytest.raises(ConnectorError) as caught:
                client(max_response_mb=1).get(server.url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    message = str(caught.value)
    assert server.url in message and "1 MB cap" in message and "`max_response_mb`" in message
    assert ("declares 20.0 MB" in message) == declared
    assert peak < 50 * MB, f"peak {peak / MB:.1f} MB while refusing a 20 MB body"


def test_a_body_under_the_cap_is_read_whole() -> None:
    with RawServer(flood(3 * MB, declared=False)) as server:
        response = client(max_response_mb=4).get(server.url)
    assert len(response.content) == 3 * MB


def test_the_cap_is_an_option_of_every_connector() -> None:
    from earful.connectors.rss import RssConnector

    assert ConnectorOptions().max_response_mb == 8
    assert RssConnector.Options(url="https://example.com/feed", max_response_mb=32).max_response_mb == 32
    with pytest.raises(ValueError):
        ConnectorOptions(max_response_mb=0)


def reddit_and_x(url: str, **options: Any) -> list[Any]:
    """The connectors whose libraries bring their own session (praw, tweepy), pointed at `url`."""
    from earful.connectors.base import ConnectorContext
    from earful.connectors.reddit import RedditConnector, RedditOptions
    from earful.connectors.x import XConnector, XOptions

    base = url.rsplit("/", 1)[0]
    return [RedditConnector(RedditOptions(client_id="a", client_secret="b", base_url=base, retries=0, subreddits=["crm"],
                                          **options), ConnectorContext(monitor="reddit-test")),
            XConnector(XOptions(bearer_token="t", base_url=base, **options), ConnectorContext(monitor="x-test", query="acme"))]


def test_praw_and_tweepy_sessions_have_the_deadline(trickling: RawServer) -> None:
    for connector in reddit_and_x(trickling.url, timeout=1):
        started = time.monotonic()
        with pytest.raises(ConnectorError, match="timed out after 1s"):
            connector.fetch(None)
        assert time.monotonic() - started < 1 + 2 * TRICKLE_EVERY, connector.name


def test_praw_and_tweepy_sessions_have_the_size_cap() -> None:
    with RawServer(flood(20 * MB, declared=False)) as server:
        for connector in reddit_and_x(server.url, max_response_mb=1):
            with pytest.raises(ConnectorError, match=r"1 MB cap .*`max_response_mb`"):
                connector.fetch(None)


def html_trickle(conn: socket.socket, stopped: threading.Event) -> None:
    """A page whose document never ends: DOMContentLoaded never fires."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html><body><p>acme")
    while not stopped.wait(TRICKLE_EVERY):
        conn.sendall(b" ")


def html_page(total: int) -> Callable[[socket.socket, threading.Event], None]:
    def write(conn: socket.socket, stopped: threading.Event) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {total}\r\n\r\n".encode())
        sent = 0
        while sent < total and not stopped.is_set():
            conn.sendall(BLOCK[:min(len(BLOCK), total - sent)])
            sent += min(len(BLOCK), total - sent)
    return write


@contextlib.contextmanager
def browser_session(**options: Any) -> Iterator[Any]:
    from earful.connectors.base import ConnectorContext, RunResources
    from earful.connectors.browser import BrowserOptions, BrowserSession

    resources = RunResources()
    try:
        with BrowserSession(ConnectorContext(monitor="g2-test", resources=resources), BrowserOptions(**options),
                            "g2 monitor 'g2-test'") as session:
            yield session
    finally:
        resources.close_all()


@pytest.mark.chromium
def test_a_browser_page_has_a_total_deadline_and_a_size_cap() -> None:
    with RawServer(html_trickle) as slow, RawServer(html_page(3 * MB)) as big, browser_session(timeout=2,
                                                                                                 max_response_mb=1) as session:
        started = time.monotonic()
        with pytest.raises(ConnectorError, match="did not finish loading within 2s"):
            session.load(slow.url, "() => document.title")
        assert time.monotonic() - started < 2 + 2
        with pytest.raises(ConnectorError, match=r"larger than the 1 MB cap \(3.0 MB\).*`max_response_mb`"):
            session.load(big.url, "() => document.title")


# -- a run ------------------------------------------------------------------------------------


def two_feeds(tmp_path: Path, slow_url: str, news_url: str, **settings: Any) -> Deployment:
    """`slow` (listed first) and `news` rss monitors on the console."""
    monitors = {"slow": {"connector": "rss", "url": slow_url, "timeout": 2},
                "news": {"connector": "rss", "url": news_url}}
    return write_deployment(tmp_path, monitors, acme_rules({}), settings=settings)


def test_a_trickling_source_costs_the_run_its_deadline_and_the_others_deliver(
        tmp_path: Path, trickling: RawServer, feeds: FeedServer) -> None:
    deployed = two_feeds(tmp_path, trickling.url, feeds.feed_url("/news.atom"))
    started = time.monotonic()
    report = deployed.tick()
    took = time.monotonic() - started
    assert took < 2 + 5, f"the run took {took:.1f}s"
    outcomes = {o.name: o for o in report.monitors}
    assert not outcomes["slow"].ok and "timed out after 2s" in (outcomes["slow"].error or "")
    assert outcomes["news"].ok and outcomes["news"].alerts == 1
    assert report.delivery is not None and report.delivery.delivered == {"support": 1}


def test_the_run_budget_leaves_monitors_due_and_raises_one_notice(tmp_path: Path, feeds: FeedServer) -> None:
    url = feeds.feed_url("/news.atom")
    monitors = {name: {"connector": "rss", "url": url} for name in ("first", "second", "third")}
    deployed = write_deployment(tmp_path, monitors, acme_rules({}), settings={"run_budget": "3m"})
    minutes = iter(range(0, 10_000, 60))

    def slow_timer() -> float:  # each look at the clock is a minute later: one monitor takes two
        return float(next(minutes))

    report = deployed.tick(timer=slow_timer)
    assert [o.name for o in report.monitors] == ["first"]
    assert report.overrun is not None and report.overrun.startswith(
        "run budget of 3m exceeded after 1 of 3 monitors; 2 left for the next tick (second, third)")
    assert report.failed, "an overrun is a problem cron should mail"
    assert report.delivery is not None and report.delivery.delivered == {"support": 2}, "the alert found, the notice"
    assert not deployed.monitor_state("second").get("last_start"), "left due: not started, not recorded as run"
    assert [e.kind for e in report.health] == ["overran"]
    assert deployed.alerted(kind="health") == ["earful:health:earful:run:1:overran"]

    again = deployed.tick(timer=slow_timer)
    assert [o.name for o in again.monitors] == ["second"], "the monitors left behind go first"
    assert again.overrun is not None and again.health == [], "one notice per incident"
    assert len(deployed.alerted(kind="health")) == 1

    caught_up = deployed.tick()
    assert [o.name for o in caught_up.monitors] == ["third", "first", "second"]
    assert caught_up.overrun is None and not caught_up.failed
    assert [e.kind for e in caught_up.health] == ["back"]
    assert deployed.alerted(kind="health")[-1] == "earful:health:earful:run:1:back"
    assert deployed.monitor_state(RUN_HEALTH)["health"] == "ok"


def test_quiet_run_reports_the_overrun_on_stderr(tmp_path: Path, trickling: RawServer, feeds: FeedServer,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # one after another, so `news` is still waiting when the trickling `slow` has spent the budget
    deployed = two_feeds(tmp_path, trickling.url, feeds.feed_url("/news.atom"), run_budget="1s", concurrency=1)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--quiet", "--config", str(deployed.path)])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()  # stdout holds only what the console destination delivered
    assert "✓" not in captured.out and "overran its run budget" in captured.out
    assert "run budget of 1s exceeded after 1 of 2 monitors; 1 left for the next tick (news)" in captured.err
    assert not deployed.monitor_state("news").get("last_start")
