"""`earful browse`: the demo's state in Datasette, read in real chromium through Playwright."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Iterator

import pytest

from earful.monitors.browse import metadata
from earful.monitors.store import Store

from .history_state import demo_state


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return demo_state(tmp_path_factory)


@pytest.fixture
def browsing(demo) -> Iterator[str]:
    """`earful browse` on a free port: yields the URL it printed; Ctrl-C (SIGINT) stops it."""
    process = subprocess.Popen([sys.executable, "-m", "earful.monitors.cli", "browse", "-c", str(demo / "cron.yaml"),
                                "--port", "0", "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            found = re.search(r"http://127\.0\.0\.1:\d+/\S+", line)
            url = found.group(0) if found else None
        assert url, f"no URL printed: {process.stderr.read() if process.poll() is not None else ''}"
        yield url
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, "Ctrl-C stops the server cleanly"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_metadata_facets_and_saved_queries():
    meta = metadata("state", ["key", "source", "labels", "day"])
    database = meta["databases"]["state"]
    assert database["tables"]["mentions"]["facets"] == ["source", {"array": "labels"}, "day"]
    assert set(database["queries"]) == {"unanswered", "breached", "per_channel"}
    with_sentiment = metadata("state", ["key", "source", "labels", "sentiment", "day"])
    assert "sentiment" in with_sentiment["databases"]["state"]["tables"]["mentions"]["facets"]


@pytest.mark.chromium
def test_the_page_loads_and_a_facet_filters(demo, browsing):
    from playwright.sync_api import sync_playwright

    from earful.connectors.browser import CHROMIUM_ARGS, default_browser_path

    store = Store(demo / "state.db")
    try:
        per_source = Counter(m.source for m in store.all_mentions())
        unanswered = sum(1 for q in store.all_queries() if q.status in ("open", "unanswered"))
    finally:
        store.close()
    source, expected = per_source.most_common(1)[0]
    total = sum(per_source.values())

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=default_browser_path(), args=list(CHROMIUM_ARGS),
                                             headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(browsing)
            assert page.locator("h3").first.inner_text().startswith(f"{total} rows")
            assert page.locator("#facet-labels").is_visible() and page.locator("#facet-day").is_visible()
            page.locator(f"#facet-source a:text-is('{source}')").click()
            page.wait_for_url(re.compile(rf"[?&]source={source}\b"))
            assert page.locator("h3").first.inner_text().startswith(f"{expected} rows where source = ")
            sources = set(page.locator("td.col-source").all_inner_texts())
            assert sources == {source}

            page.goto(browsing.rsplit("/", 1)[0] + "/unanswered")
            assert f"returning {unanswered} rows" in page.locator("h3").first.inner_text()
        finally:
            browser.close()


def test_the_state_is_served_read_only(demo, browsing):
    """Datasette runs only SELECTs (no write plugins, `mode=ro` connections): browsing changes no byte of the state."""
    import hashlib
    import urllib.error
    import urllib.parse
    import urllib.request

    def fingerprint() -> tuple[str, int]:
        """The database file, and what its write-ahead log holds (SQLite's -wal/-shm come and go with readers)."""
        wal = demo / "state.db-wal"
        return hashlib.sha256((demo / "state.db").read_bytes()).hexdigest(), wal.stat().st_size if wal.exists() else 0

    before = fingerprint()
    base = browsing.rsplit("/", 1)[0]
    for path in ("/mentions?_facet=source", "/unanswered", "/breached", "/per_channel", "/items"):
        with urllib.request.urlopen(base + path, timeout=30) as response:
            assert response.status == 200, path
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{base}?sql=" + urllib.parse.quote("delete from items"), timeout=30)
    assert fingerprint() == before
