"""Volume spikes: a tenfold hour alerts once; cool-down, floor, steady series and backlogs do not."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from earful.core import Match, Mention
from earful.monitors import digest as dg
from earful.monitors import digest_render as render
from earful.monitors import spikes
from earful.monitors.outbox import DestinationPool, build_alert, deliver
from earful.monitors.store import Store

from .deploy import write_deployment
from .support import CHANNEL, SLACK_ENV, slack_destination

H = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)  # the spike hour (15:00 in Berlin)
WINDOW = timedelta(days=7)


@pytest.fixture
def config(tmp_path, slack):
    return write_deployment(tmp_path, {"feeds": {"connector": "rss", "url": "https://forum.example/latest.atom", "notify": ["marketing"]}},
                            "rules:\n  - id: complaint\n    query: acme broken\n    labels: [complaint]\n",
                            settings={"timezone": "Europe/Berlin"}, env=SLACK_ENV,
                            destinations={"marketing": slack_destination(slack, max_retries=0)}).config


@pytest.fixture
def store(config):
    store = Store(config.state_path)
    # Every monitor in these tests has been running since well before the baseline window.
    for monitor in ("feeds", "news"):
        run = store.start_run(monitor, H - WINDOW - timedelta(days=2))
        store.finish_run(run, monitor, ok=True, now=H - WINDOW - timedelta(days=2))
    yield store
    store.close()


SPIKES = spikes.SpikeConfig(keys=["source"], notify=["marketing"])
_serial = iter(range(10**9))


def burst(store: Store, hour: datetime, count: int, *, source: str = "reddit", monitor: str = "feeds",
          rule: str | None = "complaint", posted_before: timedelta = timedelta(minutes=3), title: str = "") -> None:
    """`count` mentions first seen 10 minutes into `hour`, ingested in one batch as a run would."""
    at = hour + timedelta(minutes=10)
    batch = []
    for _ in range(count):
        n = next(_serial)
        mention = Mention(source=source, external_id=f"m{n}", url=f"https://{source}.example/{n}", author=f"user{n}",
                          title=title or f"acme thing number {n}", text=f"acme broken again, report {n}",
                          created_at=at - posted_before)
        matches = [Match(mention_key=mention.key, rule_id=rule, pack="acme", labels=("complaint",))] if rule else []
        batch.append((mention, matches, []))
    store.ingest(monitor, batch, {}, at)


def history(store: Store, until: datetime, pattern: list[int], days: int = 8, **kwargs) -> None:
    """Hourly mentions for `days` days before `until`, cycling through `pattern`."""
    hours = days * 24
    for i in range(hours):
        count = pattern[i % len(pattern)]
        if count:
            burst(store, until - timedelta(hours=hours - i), count, **kwargs)


def spike_rows(store: Store) -> list:
    return [r for r in store.outbox_rows() if r.kind == "spike"]


def test_a_tenfold_hour_raises_exactly_one_spike_alert(config, store, slack):
    history(store, H, [1, 2, 3, 2, 1, 3, 2, 2])  # about 2 an hour, zeros nowhere
    burst(store, H, 25, title="acme is down for everyone?")

    (event,) = spikes.check(config, store, H + timedelta(minutes=20), SPIKES)
    assert (event.dimension, event.value, event.hour, event.count) == ("source", "reddit", H, 25)
    assert event.mean == pytest.approx(2.0) and event.stdev == pytest.approx(0.7071, abs=1e-3)
    assert event.threshold == pytest.approx(2.0 + 3 * 0.7071, abs=1e-2)
    assert len(event.top) == 5 and event.top[0][0] == "acme is down for everyone?"

    (row,) = spike_rows(store)
    assert row.key == "earful:spike:source:reddit:2026-11-20T14#marketing" and row.destination == "marketing"
    assert row.monitor == "feeds"
    alert = build_alert(store, row)
    assert alert.mention.title == "Volume spike: source Reddit: 25 mentions between 15:00 and 16:00 on Fri 20 Nov"
    assert "usually 2.0 ± 0.7 per hour over the last 7 days (alert above 4.1 and at least 10)" in alert.mention.text
    assert "1) acme is down for everyone? https://reddit.example/" in alert.mention.text

    # The same hour checked again, later in the hour and after it ended: nothing new.
    assert spikes.check(config, store, H + timedelta(minutes=50), SPIKES) == []
    assert spikes.check(config, store, H + timedelta(hours=1, minutes=2), SPIKES) == []
    assert len(spike_rows(store)) == 1

    report = deliver(config, store, DestinationPool(config), lambda: H + timedelta(hours=1, minutes=3))
    assert report.delivered["marketing"] == 1
    (message,) = slack.messages(CHANNEL)
    assert "Volume spike: source Reddit: 25 mentions" in message["text"]


def test_every_watched_dimension_is_judged_on_its_own(config, store):
    history(store, H, [1, 2, 3, 2, 1, 3, 2, 2])
    burst(store, H, 25)
    events = spikes.check(config, store, H + timedelta(minutes=20), spikes.SpikeConfig(notify=["marketing"]))
    assert sorted((e.dimension, e.value) for e in events) == [("monitor", "feeds"), ("rule", "acme/complaint"), ("source", "reddit")]
    assert len(spike_rows(store)) == 3


def test_a_spike_in_the_last_minutes_of_an_hour_is_caught_after_it_ends(config, store):
    history(store, H, [2])
    burst(store, H, 4)
    assert spikes.check(config, store, H + timedelta(minutes=30), SPIKES) == []  # 4 so far: below the floor
    burst(store, H + timedelta(minutes=45), 20)  # ingested at 14:55, checked after 15:00
    (event,) = spikes.check(config, store, H + timedelta(hours=1, minutes=1), SPIKES)
    assert (event.hour, event.count) == (H, 24)


def test_no_second_alert_during_the_cooldown(config, store):
    history(store, H, [1, 2, 3, 2, 1, 3, 2, 2])
    burst(store, H, 25)
    assert len(spikes.check(config, store, H + timedelta(minutes=20), SPIKES)) == 1
    for later in (1, 2, 5):  # still tenfold, still within 6 hours of the first spike
        burst(store, H + timedelta(hours=later), 25)
        assert spikes.check(config, store, H + timedelta(hours=later, minutes=20), SPIKES) == []
    burst(store, H + timedelta(hours=6), 40)  # 6 hours later: the cool-down is over
    (event,) = spikes.check(config, store, H + timedelta(hours=6, minutes=20), SPIKES)
    assert (event.hour, event.count) == (H + timedelta(hours=6), 40)
    assert len(spike_rows(store)) == 2


def test_below_the_minimum_count_is_not_a_spike(config, store):
    history(store, H, [1] + [0] * 11, source="g2", rule=None)  # one review every 12 hours
    burst(store, H, 8, source="g2", rule=None)  # 8 in an hour: far above mean + 3σ, but under 10
    assert spikes.check(config, store, H + timedelta(minutes=20), SPIKES) == []
    looser = spikes.SpikeConfig(keys=["source"], min_count=5, notify=["marketing"])
    (event,) = spikes.check(config, store, H + timedelta(minutes=21), looser)
    assert (event.value, event.count) == ("g2", 8)


def test_a_steady_series_never_spikes(config, store):
    history(store, H + timedelta(hours=1), [12], source="news", monitor="news", rule=None)  # 12 every hour, this one too
    assert spikes.check(config, store, H + timedelta(minutes=30), SPIKES) == []
    assert spikes.check(config, store, H + timedelta(hours=1, minutes=1), SPIKES) == []
    burst(store, H + timedelta(hours=1), 14, source="news", monitor="news", rule=None)  # 14 vs a flat 12: σ is 0, so it is
    (event,) = spikes.check(config, store, H + timedelta(hours=1, minutes=20), SPIKES)
    assert (event.value, event.count, event.stdev) == ("news", 14, 0.0)


def test_a_backlog_is_not_a_spike(config, store):
    history(store, H, [1, 2, 3, 2])
    # A new monitor's first run brings 40 items: no baseline for it yet.
    run = store.start_run("fresh", H)
    store.finish_run(run, "fresh", ok=True, now=H)
    burst(store, H, 40, source="mastodon", monitor="fresh")
    # A source back after an outage: 40 items posted two days ago, first seen now.
    burst(store, H, 40, posted_before=timedelta(days=2))
    assert spikes.check(config, store, H + timedelta(minutes=20), SPIKES) == []
    burst(store, H, 25)  # fresh posts, on the same hour: that is a spike, and only those count
    (event,) = spikes.check(config, store, H + timedelta(minutes=25), SPIKES)
    assert (event.value, event.count) == ("reddit", 25)


def test_the_brands_own_posts_do_not_count(config, store):
    history(store, H, [2])
    at = H + timedelta(minutes=10)
    posts = [(Mention(source="reddit", external_id=f"b{i}", author="acme_official", author_is_brand=True,
                      title=f"Acme announcement {i}", created_at=at), [], []) for i in range(30)]
    store.ingest("feeds", posts, {}, at)
    assert spikes.check(config, store, H + timedelta(minutes=20), SPIKES) == []


def test_the_digest_lists_the_spikes_of_its_period(config, store):
    history(store, H, [1, 2, 3, 2, 1, 3, 2, 2])
    burst(store, H, 25)
    spikes.check(config, store, H + timedelta(minutes=20), SPIKES)
    end = datetime(2026, 11, 23, 0, 0, tzinfo=config.timezone)
    digest = dg.build(config, store, end, "week")
    (note,) = digest.spikes
    assert (note.dimension, note.value, note.hour, note.count) == ("source", "reddit", H, 25)
    assert "source reddit: 25 mentions in the hour from Fri 20 Nov 15:00 (usually 2.0, alert above 4.1)" in render.text(digest)
    narrowed = dg.build(config, store, end, "week", dg.DigestFilters(sources=("g2",)))
    assert narrowed.spikes == ()


def test_spike_config_validates():
    config = spikes.SpikeConfig(k=2.5, min_count=20, window_days=14, cooldown="90m", notify="marketing", keys="rule")
    assert (config.cooldown, config.notify, config.keys) == (timedelta(minutes=90), ("marketing",), ("rule",))
    for bad in ({"keys": ["channel"]}, {"k": 0}, {"min_count": 0}, {"cooldown": "soon"}, {"window": 7}):
        with pytest.raises(ValueError):
            spikes.SpikeConfig(**bad)
