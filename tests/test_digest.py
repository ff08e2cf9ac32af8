"""Marketing digests: content from a seeded week, renderings, the chart, delivery and scheduling."""

from __future__ import annotations

import json
import struct
from datetime import datetime, timedelta, timezone

import pytest

from earful.alerts.email import EmailDestination, EmailOptions
from earful.core import Match, Mention, iso
from earful.monitors import digest as dg
from earful.monitors import digest_render as render
from earful.monitors import outbox
from earful.monitors.outbox import DestinationPool
from earful.monitors.store import Store, mention_to_row
from earful.sandbox.slack import block_problems

from .deploy import write_deployment
from .support import CHANNEL, SLACK_ENV, slack_destination

END = datetime(2026, 11, 23, tzinfo=timezone.utc)  # a Monday, 00:00 UTC
START = END - timedelta(days=7)
PREV = START - timedelta(days=7)

RULES = """\
brand:
  name: Acme
  accounts: {reddit: [acme_official]}
rules:
  - id: complaint
    query: 'acme broken'
    labels: [complaint]
    severity: high
  - id: question
    query: 'acme "how do i"'
    labels: [question]
  - id: bug
    query: 'acme crash'
    labels: [bug]
    severity: critical
"""


def make_config(tmp_path, slack, timezone_name: str = "UTC"):
    return write_deployment(tmp_path, {
        "feeds": {"connector": "rss", "url": "https://forum.example/latest.atom", "notify": ["marketing"]},
        "hn": {"connector": "rss", "url": "https://news.example/rss", "notify": ["marketing"]},
    }, RULES, settings={"timezone": timezone_name}, env=SLACK_ENV,
        destinations={"marketing": slack_destination(slack, max_retries=0), "terminal": {"type": "console", "width": 120}}).config


@pytest.fixture
def config(tmp_path, slack, monkeypatch):
    return make_config(tmp_path, slack)


@pytest.fixture
def store(config):
    store = Store(config.state_path)
    yield store
    store.close()


MATCHES = {
    "complaint": ("complaint", ("complaint",), "high"),
    "question": ("question", ("question",), "medium"),
    "bug": ("bug", ("bug",), "critical"),
}


def seed(store: Store, monitor: str, at: datetime, source: str, ident: str, *, title: str = "", rules: tuple[str, ...] = (),
         kind: str = "post", rating: float | None = None, site: str = "", link: str = "", brand: bool = False,
         url: str | None = None, text: str | None = None) -> Mention:
    """One mention stored the way a run stores it: first seen at `at`."""
    mention = Mention(source=source, external_id=ident, url=url if url is not None else f"https://{source}.example/{ident}",
                      author="acme_official" if brand else f"user-{ident}", author_is_brand=brand,
                      title=title or f"{source} post {ident}", text=text or f"acme text number {ident} on {source}",
                      created_at=at - timedelta(minutes=5), kind=kind, rating=rating, site=site, link_url=link)
    matches = [Match(mention_key=mention.key, rule_id=MATCHES[r][0], pack="acme", labels=MATCHES[r][1], severity=MATCHES[r][2])
               for r in rules]
    store.ingest(monitor, [(mention, matches, [])], {}, at)
    return mention


def day(n: int, hour: int = 10, base: datetime = START) -> datetime:
    return base + timedelta(days=n, hours=hour)


def seed_week(store: Store) -> dict[str, Mention]:
    """A realistic week (and the week before) of history; see the test for the expected numbers."""
    keep: dict[str, Mention] = {}
    # This week, Reddit: 3, 2, 4, 1, 0, 5, 2 per day. Each day's first post is a complaint;
    # day 2's second and day 5's second and third are questions.
    for d, count in enumerate([3, 2, 4, 1, 0, 5, 2]):
        for i in range(count):
            rules = ("complaint",) if i == 0 else ("question",) if (d, i) in {(2, 1), (5, 1), (5, 2)} else ()
            at = START if (d, i) == (0, 0) else day(d, 10 + i)  # the very first instant of the period counts
            link = "https://acme.example/blog/launch" if (d, i) == (6, 0) else ""
            keep[f"r{d}{i}"] = seed(store, "feeds", at, "reddit", f"r{d}{i}", rules=rules, link=link,
                                    title=f"Reddit thread day {d} number {i}")
    # Hacker News: one a day; day 3's is a critical bug report. Day 6's links to the same launch post.
    for d in range(7):
        at = day(d, 9) if d == 6 else day(d, 15)
        link = "https://acme.example/blog/launch" if d == 6 else ""
        keep[f"h{d}"] = seed(store, "hn", at, "hackernews", f"h{d}", rules=("bug",) if d == 3 else (), link=link,
                             title=f"HN story {d}")
    # X: the launch post, seen first of the three places.
    keep["x0"] = seed(store, "feeds", day(6, 8), "x", "x0", link="https://acme.example/blog/launch", title="Acme launch thread")
    # Reviews: G2 5, 2, 4 stars; Trustpilot 1 star and one without a rating.
    for d, rating in ((0, 5.0), (2, 2.0), (4, 4.0)):
        seed(store, "feeds", day(d, 12), "g2", f"g{d}", kind="review", rating=rating, site="acme-crm", title=f"G2 review {d}")
    seed(store, "feeds", day(1, 12), "trustpilot", "t1", kind="review", rating=1.0, title="Terrible")
    seed(store, "feeds", day(6, 12), "trustpilot", "t6", kind="review", rating=None, title="No stars given")
    # Not mentions of this week: the brand's own post, one first seen exactly at the end.
    seed(store, "feeds", day(3, 11), "reddit", "brand1", brand=True, title="Acme here: we fixed it")
    seed(store, "feeds", END, "reddit", "next-week", title="Next week's post")

    # The week before: Reddit 10 (2 complaints, 6 questions), HN 7, G2 2 reviews of 4 stars, X 4.
    for i in range(10):
        rules = ("complaint",) if i < 2 else ("question",) if i < 8 else ()
        at = START - timedelta(microseconds=1) if i == 0 else day(i % 7, 11, PREV)
        seed(store, "feeds", at, "reddit", f"pr{i}", rules=rules, title=f"Old reddit {i}")
    for d in range(7):
        seed(store, "hn", day(d, 16, PREV), "hackernews", f"ph{d}", title=f"Old HN {d}")
    for i in range(2):
        seed(store, "feeds", day(i, 12, PREV), "g2", f"pg{i}", kind="review", rating=4.0, site="acme-crm", title=f"Old G2 {i}")
    for i in range(4):
        seed(store, "feeds", day(i, 13, PREV), "x", f"px{i}", title=f"Old X {i}")
    return keep


def add_query(store: Store, mention: Mention, posted: datetime, sla: timedelta, status: str = "open",
              answered_after: timedelta | None = None) -> None:
    store.db.execute(
        "insert into queries (cluster, item_key, monitor, source, posted_at, seen_at, sla_s, business_hours, deadline, "
        "status, checks, answered_at, answered_by, update_pending) values (?, ?, 'feeds', ?, ?, ?, ?, 0, ?, ?, 0, ?, ?, 0)",
        [mention.key, mention.key, mention.source, iso(posted), iso(posted + timedelta(minutes=5)), int(sla.total_seconds()),
         iso(posted + sla), status, iso(posted + answered_after) if answered_after else None,
         "acme_support" if answered_after else None])
    store.db.conn.commit()


def seed_support(store: Store, keep: dict[str, Mention]) -> None:
    """Queries (answered in time, answered late, open and breached, open and not due), a failing channel, held alerts."""
    add_query(store, keep["r10"], day(1), timedelta(hours=2), "answered", timedelta(minutes=30))
    add_query(store, keep["r20"], day(2), timedelta(hours=2), "answered", timedelta(hours=3))
    add_query(store, keep["r30"], day(3), timedelta(hours=2))
    add_query(store, keep["r61"], day(6, 22), timedelta(hours=4))
    two_weeks_ago = PREV - timedelta(days=7)
    old = seed(store, "hn", day(5, 9, two_weeks_ago), "hackernews", "old-q", title="Does anyone know how do I export?")
    add_query(store, old, day(5, 9, two_weeks_ago), timedelta(hours=2))

    for n in range(10):  # monitor hn: 10 runs this week, the last 4 failed; unwatched since Friday noon
        at = day(n % 7, 1 + n)
        run = store.start_run("hn", at)
        store.finish_run(run, "hn", ok=n < 6, now=at + timedelta(seconds=5), error=None if n < 6 else f"HTTP 503 from news.example ({n})")
    for n in range(20):
        at = day(n % 7, 2)
        store.finish_run(store.start_run("feeds", at), "feeds", ok=True, now=at + timedelta(seconds=3))
    store.db.execute("update monitor_state set health = 'unwatched', health_since = ? where monitor = 'hn'", [iso(day(4, 12))])
    notice = Mention(source="earful", external_id="health:hn:1:unwatched", title="Channel unwatched: hn (rss)",
                     text="the last 3 runs failed; last error: HTTP 503", author="earful", kind="message", created_at=day(4, 12))
    store.enqueue(f"{notice.key}#marketing", notice.key, "marketing", "hn", day(4, 12), kind="health",
                  payload={"mentions": [mention_to_row(notice)], "matches": [], "note": None})
    for mention, dests in ((keep["r51"], ("marketing", "terminal")), (keep["r60"], ("marketing",))):
        for dest in dests:
            store.enqueue(f"{mention.key}#{dest}", mention.key, dest, "feeds", day(6, 12))
    store.db.execute("update outbox set status = 'held' where kind = 'alert'")
    store.db.conn.commit()


# -- content ------------------------------------------------------------------------


def test_a_seeded_week_counts_volume_changes_reviews_and_top_items(config, store):
    seed_week(store)
    digest = dg.build(config, store, END, "week", top=5)

    assert (digest.start, digest.end) == (START, END)
    assert (digest.total.current, digest.total.previous) == (30, 23)
    assert render.change_label(digest.total) == "+7, +30%"
    by_source = {c.name: (c.current, c.previous) for c in digest.by_source}
    assert by_source == {"reddit": (17, 10), "hackernews": (7, 7), "g2": (3, 2), "trustpilot": (2, 0), "x": (1, 4)}
    assert [c.name for c in digest.by_source] == ["reddit", "hackernews", "g2", "trustpilot", "x"]
    labels = {c.name: (c.current, c.previous) for c in digest.by_label}
    assert labels == {"complaint": (6, 2), "question": (3, 6), "bug": (1, 0)}

    # The chart counts by posted day: the period's first item was posted at 23:55 the Sunday before.
    assert digest.daily["reddit"] == (2, 2, 4, 1, 0, 5, 2) and digest.posted_earlier == 1
    assert digest.daily["hackernews"] == (1,) * 7
    assert sum(sum(v) for v in digest.daily.values()) + digest.posted_earlier == digest.total.current

    reviews = {(r.source, r.site): r for r in digest.reviews}
    g2 = reviews[("g2", "acme-crm")]
    assert (g2.count, round(g2.average, 3), g2.previous_average, g2.previous_count) == (3, 3.667, 4.0, 2)
    trustpilot = reviews[("trustpilot", "")]
    assert (trustpilot.count, trustpilot.rated, trustpilot.average) == (2, 1, 1.0)
    assert digest.reviews_total == 5 and digest.reviews_average == pytest.approx(12 / 4)

    top = [(t.mention.key, t.places, t.severity) for t in digest.top_items]
    assert top == [
        ("x:x0", 3, "high"),              # seen in three places (X, HN, Reddit), one of them a complaint
        ("hackernews:h3", 1, "critical"),
        ("reddit:r50", 1, "high"),        # then the complaints, most recent first
        ("reddit:r30", 1, "high"),
        ("reddit:r20", 1, "high"),
    ]
    assert digest.quiet is False


def test_sla_unanswered_channels_and_held_items(config, store):
    keep = seed_week(store)
    seed_support(store, keep)
    digest = dg.build(config, store, END, "week")

    (reddit,) = digest.sla
    assert (reddit.channel, reddit.queries, reddit.answered, reddit.within_sla, reddit.breaches, reddit.still_open) == \
        ("reddit", 4, 2, 1, 2, 2)
    assert (reddit.median_first_response_s, reddit.p90_first_response_s) == (6300, 9900)

    assert (digest.unanswered_total, digest.unanswered_breached) == (3, 2)
    assert [q.mention.key for q in digest.unanswered] == ["hackernews:old-q", "reddit:r30", "reddit:r61"]

    (hn,) = digest.channels
    assert (hn.monitor, hn.runs, hn.failures, hn.unwatched_since) == ("hn", 10, 4, day(4, 12))
    assert hn.last_error == "HTTP 503 from news.example (9)"
    assert hn.incidents == ("the last 3 runs failed; last error: HTTP 503",)
    assert digest.channels_watched == 2

    assert digest.held_total == 2
    assert [(h.mention.key, h.destinations) for h in digest.held] == [("reddit:r51", ("marketing", "terminal")),
                                                                     ("reddit:r60", ("marketing",))]
    # Held alerts are still counted in the volume: every item of the period is.
    assert digest.total.current == 30

    text = render.text(digest)
    for expected in ("30 mentions, +7 (+30%) vs the previous week.",
                     "Reddit: 17 (+7, +70%)", "Hacker News: 7 (no change)", "Trustpilot: 2 (new)", "X: 1 (-3, -75%)",
                     "complaint: 6 (+4, +200%)", "question: 3 (-3, -50%)",
                     "G2 · acme-crm: 3 new, average 3.7/5 (previous week: 4.0/5 from 2)",
                     "5 new reviews, average 3.0/5.",
                     "Reddit: 4 questions, 2 answered, 33% within SLA; first response median 1h45m, p90 2h45m; 2 breaches, 2 still open",
                     "3 questions still unanswered, 2 past the reply deadline.",
                     "hn (rss): unwatched since Fri 20 Nov 12:00; 4 of 10 runs failed; last error: HTTP 503 from news.example (9)",
                     "Held back by flood control (2)", "held for marketing, terminal",
                     "1 of 2 channels had problems", "2 alerts held back by flood control; counted above, listed below."):
        assert expected in text, expected


def test_filters_narrow_every_section(config, store):
    keep = seed_week(store)
    seed_support(store, keep)
    digest = dg.build(config, store, END, "week", dg.DigestFilters(labels=("complaint",)))
    assert (digest.total.current, digest.total.previous) == (6, 2)
    assert [c.name for c in digest.by_source] == ["reddit"]
    assert digest.reviews == ()
    assert [q.mention.key for q in digest.unanswered] == ["reddit:r30"]
    assert [h.mention.key for h in digest.held] == ["reddit:r60"]

    by_monitor = dg.build(config, store, END, "week", dg.DigestFilters(monitors=("hn",), rules=("acme/bug",)))
    assert by_monitor.total.current == 1 and by_monitor.top_items[0].mention.key == "hackernews:h3"
    assert [c.monitor for c in by_monitor.channels] == ["hn"]


def seed_healthy_runs(store: Store) -> None:
    for monitor in ("feeds", "hn"):
        for d in range(7):
            store.finish_run(store.start_run(monitor, day(d, 6)), monitor, ok=True, now=day(d, 6) + timedelta(seconds=2))


def test_a_quiet_week_is_a_digest_not_an_error(config, store):
    seed_healthy_runs(store)
    digest = dg.build(config, store, END, "week")
    assert digest.quiet and digest.total == dg.Change("mentions", 0, 0)
    assert digest.top_items == () and digest.reviews == () and digest.held_total == 0
    text = render.text(digest)
    assert "Quiet week: no new mentions." in text
    assert "All 2 channels were watched, no failed runs." in text
    assert render.subject(digest) == "Acme · Weekly digest · Mon 16 – Sun 22 Nov 2026: quiet week"
    blocks = [b.to_dict() for b in render.slack_blocks(digest, chart=True)]
    assert block_problems(blocks) == []
    assert "Quiet week" in json.dumps(blocks)
    assert "<h1" in render.html(digest, render.CHART_CID)
    png, error = dg.render_chart(digest)
    assert error is None and png_size(png) == (1000, 500)


def test_a_quiet_week_without_runs_says_earful_did_not_run(config, store):
    digest = dg.build(config, store, END, "week")
    assert [(c.monitor, c.runs) for c in digest.channels] == [("feeds", 0), ("hn", 0)]
    text = render.text(digest)
    assert "2 of 2 channels had problems (see below)." in text
    assert "feeds (rss): no runs in this week: is earful's cron job running?" in text


def test_quiet_after_a_busy_week_says_what_it_was(config, store):
    for i in range(4):
        seed(store, "feeds", day(i, 10, PREV), "reddit", f"p{i}")
    digest = dg.build(config, store, END, "week")
    assert digest.quiet and "Quiet week: no new mentions (previous week: 4)." in render.text(digest)
    assert {c.name: (c.current, c.previous) for c in digest.by_source} == {"reddit": (0, 4)}


def test_a_week_across_the_dst_change_is_seven_local_days(tmp_path, slack, monkeypatch):
    config = make_config(tmp_path, slack, "Europe/Berlin")
    end = datetime(2026, 10, 26, 0, 0, tzinfo=config.timezone)  # DST ended on Sunday 25 October
    prev, start, stop = dg.period_bounds(end, "week", config.timezone)
    assert start.astimezone(config.timezone) == datetime(2026, 10, 19, 0, 0, tzinfo=config.timezone)
    assert stop - start == timedelta(days=7, hours=1)
    assert start - prev == timedelta(days=7)
    store = Store(config.state_path)
    digest = dg.build(config, store, end, "week")
    store.close()
    assert render.period_label(digest) == "Mon 19 – Sun 25 Oct 2026"
    assert [d.hour for d in digest.days] == [0] * 7


def test_a_daily_digest_charts_the_week_around_its_day(config, store):
    seed_week(store)
    digest = dg.build(config, store, END, "day")
    assert (digest.start, digest.total.current, digest.total.previous) == (END - timedelta(days=1), 5, 6)
    assert len(digest.days) == 7 and digest.daily["reddit"] == (2, 2, 4, 1, 0, 5, 2)
    assert digest.previous_daily == (4, 5, 4, 3, 2, 2, 4)  # the week before, by posted day
    assert render.period_label(digest) == "Sun 22 Nov 2026"


# -- chart ----------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", data[16:24])


def test_the_chart_is_a_1000_by_500_png(config, store):
    seed_week(store)
    digest = dg.build(config, store, END, "week")
    chart = render.chart_data(digest)
    assert chart.days == ["Mon\n16 Nov", "Tue\n17 Nov", "Wed\n18 Nov", "Thu\n19 Nov", "Fri\n20 Nov", "Sat\n21 Nov", "Sun\n22 Nov"]
    assert chart.series["Reddit"] == [2, 2, 4, 1, 0, 5, 2] and chart.series["Hacker News"] == [1] * 7
    assert chart.totals == [4, 4, 6, 2, 2, 6, 5] and chart.previous == [4, 5, 4, 3, 2, 2, 4]
    assert "1 mention found this week was posted before Mon 16 Nov." in chart.note
    png, error = dg.render_chart(digest)
    assert error is None
    assert png_size(png) == (1000, 500)
    assert png.endswith(b"IEND\xaeB`\x82")


def test_the_chart_folds_many_sources_into_other():
    from earful.alerts.chart import MAX_SERIES, _top_series, daily_volume_png

    series = {f"source {i:02d}": [i, 1] for i in range(20)}
    shown = _top_series(series, MAX_SERIES)
    assert len(shown) == MAX_SERIES and shown[-1][0] == f"other ({20 - MAX_SERIES + 1} sources)"
    assert sum(sum(v) for _, v, _ in shown) == sum(sum(v) for v in series.values())
    assert png_size(daily_volume_png(["a", "b"], series, "$money$ title")) == (1000, 500)
    with pytest.raises(ValueError):
        daily_volume_png(["a"], {"x": [1, 2]}, "mismatch")


# -- Slack ---------------------------------------------------------------------------------

HOSTILE = "<!channel> <@U0BOSS> & <http://evil.example|click here> *ping* \u202eevil\x1b[2J"


def seed_hostile(store: Store) -> None:
    """A week built to break the message: hostile titles, too many sources, long text, many held items."""
    for i in range(30):
        seed(store, "feeds", day(i % 7, 10), f"src{i:02d}", f"s{i}", title=f"{HOSTILE} {i}", rules=("complaint",),
             url=f"https://evil.example/{i}?a=1|b<c>")
    seed(store, "feeds", day(1, 11), "reddit", "js", title="<script>alert(1)</script>", url="javascript:alert(1)",
         rules=("bug",), text="x" * 5000)
    seed(store, "feeds", day(1, 12), "reddit", "long", title="L" * 5000, rules=("bug",))
    for mention in store.all_mentions():
        store.enqueue(f"{mention.key}#marketing", mention.key, "marketing", "feeds", day(6, 1))
    store.db.execute("update outbox set status = 'held'")
    store.db.conn.commit()


def test_slack_blocks_stay_within_limits_and_escape_hostile_text(config, store):
    seed_hostile(store)
    digest = dg.build(config, store, END, "week", top=25)
    blocks = [b.to_dict() for b in render.slack_blocks(digest, chart=True)]
    assert block_problems(blocks) == []
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert block["text"]["verbatim"] is True
    dumped = json.dumps(blocks, ensure_ascii=False)
    fallback = render.slack_text(digest)
    assert len(fallback) <= 4000
    for out in (dumped, fallback):
        assert "<!channel>" not in out and "<@U0BOSS>" not in out and "<http://evil" not in out
        assert "\u202e" not in out and "\x1b" not in out
    assert "&lt;!channel&gt; &lt;@U0BOSS&gt; &amp; &lt;http://evil.example|click here&gt;" in dumped
    assert "<script>" not in dumped and "&lt;script&gt;" in dumped
    assert "javascript:" not in dumped  # not linked, and the URL is not shown either
    assert "…and 19 more" in dumped  # 31 sources, 12 shown
    assert "https://evil.example/0?a=1%7Cb%3Cc%3E|" in dumped  # link targets cannot end the <url|label> early


def test_send_to_slack_posts_the_summary_and_uploads_the_chart_once(config, store, slack):
    keep = seed_week(store)
    seed_support(store, keep)
    weekly = dg.DigestConfig(name="weekly", schedule="0 0 * * 1", destinations=["marketing"])
    pool = DestinationPool(config)
    now = END + timedelta(minutes=3)
    assert [d.name for d in dg.due(config, store, now, [weekly])] == ["weekly"]
    report = dg.send(config, store, weekly, now, pool)
    assert [(d.destination, d.status) for d in report.deliveries] == [("marketing", "delivered")]

    messages = slack.messages(CHANNEL)
    assert len(messages) == 2
    summary, upload = messages
    assert summary["metadata"]["event_payload"]["key"] == f"digest:weekly:{iso(END)}#marketing"
    assert summary["metadata"]["event_payload"]["kind"] == "digest"
    assert "30 mentions" in summary["text"]
    assert summary["blocks"][0]["text"]["text"] == "📊 Acme · Weekly digest · Mon 16 – Sun 22 Nov 2026"
    (file,) = slack.uploaded_files(CHANNEL)
    assert upload["files"][0]["id"] == file["id"]
    assert file["mimetype"] == "image/png" and png_size(file["data"]) == (1000, 500)
    assert file["name"] == "earful-weekly-2026-11-23.png"
    assert file["title"].startswith("Mentions per day by source")
    assert file["alt_txt"].startswith("Stacked bar chart") and "Reddit 16" in file["alt_txt"] and "Sun 22 Nov: 5" in file["alt_txt"]

    # The same slot again (another tick, or a re-run): nothing more is sent.
    assert dg.due(config, store, now + timedelta(minutes=1), [weekly]) == []
    again = dg.send(config, store, weekly, now + timedelta(minutes=1), pool)
    assert [d.status for d in again.deliveries] == ["already"]
    assert len(slack.messages(CHANNEL)) == 2
    # Next Monday's slot is due again, and the idle tick knows when.
    assert dg.next_wake(config, store, now, [weekly]) == END + timedelta(days=7)
    assert [d.name for d in dg.due(config, store, END + timedelta(days=7, seconds=30), [weekly])] == ["weekly"]
    pool.close_all()


def test_hostile_week_is_accepted_by_slack(config, store, slack):
    seed_hostile(store)
    weekly = dg.DigestConfig(name="weekly", destinations=["marketing"], top_items=25)
    report = dg.send(config, store, weekly, END, DestinationPool(config), period_end=END)
    assert [d.status for d in report.deliveries] == ["delivered"], report.deliveries
    assert len(slack.messages(CHANNEL)) == 2


def test_a_failed_chart_upload_is_retried_without_posting_the_summary_twice(config, store, slack):
    from earful.sandbox.server import Response

    seed_week(store)
    weekly = dg.DigestConfig(name="weekly", schedule="0 0 * * 1", destinations=["marketing"])
    broken = {"calls": 0}
    original = slack._methods["files.getUploadURLExternal"]

    def flaky(params):
        broken["calls"] += 1
        return Response.json({"ok": False, "error": "internal_error"})

    slack._methods["files.getUploadURLExternal"] = flaky
    now = END + timedelta(minutes=1)
    first = dg.send(config, store, weekly, now, DestinationPool(config))
    assert first.deliveries[0].status == "failed" and "internal_error" in first.deliveries[0].error
    assert len(slack.messages(CHANNEL)) == 1 and broken["calls"] == 1
    # Backing off: not due again until the retry time.
    assert dg.due(config, store, now + timedelta(seconds=10), [weekly]) == []
    retry_at = dg.next_wake(config, store, now, [weekly])
    assert retry_at == now + outbox.FIRST_BACKOFF

    slack._methods["files.getUploadURLExternal"] = original
    assert [d.name for d in dg.due(config, store, retry_at, [weekly])] == ["weekly"]
    second = dg.send(config, store, weekly, retry_at, DestinationPool(config))
    assert second.deliveries[0].status == "delivered"
    assert len(slack.requests_to("chat.postMessage")) == 1
    assert len(slack.uploaded_files(CHANNEL)) == 1


def test_an_interrupted_post_is_found_in_slack_not_repeated(config, store, slack, monkeypatch):
    """A process killed after Slack accepted the summary but before state.db heard of it."""

    class Killed(BaseException):
        """Stands in for SIGKILL at the fault point: nothing catches it."""

    def kill(name):
        if name == "during_delivery":
            raise Killed

    seed_week(store)
    weekly = dg.DigestConfig(name="weekly", schedule="0 0 * * 1", destinations=["marketing"])
    key = f"digest:weekly:{iso(END)}#marketing"
    monkeypatch.setattr(outbox.faults, "point", kill)
    with pytest.raises(Killed):
        dg.send(config, store, weekly, END + timedelta(minutes=1), DestinationPool(config))
    monkeypatch.undo()
    (summary, chart) = store.digest_rows(f"digest:weekly:{iso(END)}")
    assert (summary.key, summary.status, chart.status) == (key, "sending", "pending")
    (posted,) = slack.messages(CHANNEL)

    # The next tick: the row in doubt is reconciled from the message metadata, then the chart follows.
    assert [d.name for d in dg.due(config, store, END + timedelta(minutes=2), [weekly])] == ["weekly"]
    report = dg.send(config, store, weekly, END + timedelta(minutes=2), DestinationPool(config))
    assert [(d.status, d.remote_id) for d in report.deliveries] == [("delivered", f"{CHANNEL}:{posted['ts']}")]
    assert len(slack.requests_to("chat.postMessage")) == 1
    assert len(slack.uploaded_files(CHANNEL)) == 1
    assert [r.status for r in store.digest_rows(f"digest:weekly:{iso(END)}")] == ["delivered", "delivered"]


def test_a_chart_upload_in_doubt_is_found_not_repeated(config, store, slack):
    """The summary went out and the chart upload was cut off after Slack shared it: found by its file name."""
    seed_week(store)
    weekly = dg.DigestConfig(name="weekly", schedule="0 0 * * 1", destinations=["marketing"])
    first = dg.send(config, store, weekly, END + timedelta(minutes=1), DestinationPool(config))
    assert [d.status for d in first.deliveries] == ["delivered"]
    (_, chart) = store.digest_rows(f"digest:weekly:{iso(END)}")
    store.db.execute("update outbox set status = 'sending', remote_id = null where id = ?", [chart.id])
    store.db.conn.commit()
    again = dg.send(config, store, weekly, END + timedelta(minutes=2), DestinationPool(config))
    assert [d.status for d in again.deliveries] == ["delivered"]
    (file,) = slack.uploaded_files(CHANNEL)
    assert store.digest_rows(f"digest:weekly:{iso(END)}")[1].remote_id == f"{CHANNEL}:{file['id']}"


def test_a_rerun_for_the_same_period_sends_nothing(config, store, slack, capsys):
    seed_week(store)
    weekly = dg.DigestConfig(name="weekly", destinations=["marketing", "terminal"])
    first = dg.send(config, store, weekly, END + timedelta(hours=2), DestinationPool(config), period_end=END)
    assert [d.status for d in first.deliveries] == ["delivered", "delivered"]
    printed = capsys.readouterr().out
    assert printed.count("Weekly digest · Mon 16 – Sun 22 Nov 2026") == 1
    for minutes in (1, 60 * 24):  # another tick, or `earful digest` run again a day later for the same period
        again = dg.send(config, store, weekly, END + timedelta(hours=2, minutes=minutes), DestinationPool(config), period_end=END)
        assert [d.status for d in again.deliveries] == ["already", "already"]
    assert len(slack.requests_to("chat.postMessage")) == 1 and len(slack.uploaded_files()) == 1
    assert capsys.readouterr().out == ""
    assert len(store.digest_rows(f"digest:weekly:{iso(END)}")) == 3  # summary and chart to Slack, one to the terminal


def test_a_failing_destination_backs_off_with_the_outbox_constants(config, store, slack):
    from earful.sandbox.server import Response

    seed_week(store)
    weekly = dg.DigestConfig(name="weekly", schedule="0 0 * * 1", destinations=["marketing"])
    broken = Response.json({"ok": False, "error": "internal_error"})
    slack.fail_next(broken)
    now = END + timedelta(minutes=1)
    first = dg.send(config, store, weekly, now, DestinationPool(config))
    assert first.deliveries[0].status == "failed" and "internal_error" in first.deliveries[0].error
    summary, chart = store.digest_rows(f"digest:weekly:{iso(END)}")
    assert (summary.status, summary.next_attempt_at) == ("pending", now + outbox.FIRST_BACKOFF)
    assert chart.attempts == 0, "the chart waits for its summary"
    assert not hasattr(dg, "FIRST_BACKOFF"), "one back-off, the outbox's"

    retry = now + outbox.FIRST_BACKOFF
    assert dg.due(config, store, retry - timedelta(seconds=1), [weekly]) == []
    slack.fail_next(broken)
    second = dg.send(config, store, weekly, retry, DestinationPool(config))
    assert second.deliveries[0].status == "failed"
    summary, chart = store.digest_rows(f"digest:weekly:{iso(END)}")
    assert summary.next_attempt_at == retry + 2 * outbox.FIRST_BACKOFF and summary.attempts == 2
    assert chart.attempts == 0 and slack.uploaded_files() == [] and slack.messages(CHANNEL) == []
    assert dg.next_wake(config, store, retry, [weekly]) == retry + 2 * outbox.FIRST_BACKOFF


def test_dry_run_builds_everything_and_sends_nothing(config, store, slack):
    seed_week(store)
    weekly = dg.DigestConfig(name="weekly", destinations=["marketing"])
    report = dg.send(config, store, weekly, END, DestinationPool(config), dry_run=True, period_end=END)
    assert [d.status for d in report.deliveries] == ["dry-run"]
    assert png_size(report.chart) == (1000, 500)
    assert slack.requests == []
    assert store.outbox_rows() == [], "a dry run records nothing"


def test_undefined_or_unsuitable_destinations_fail_clearly(config, store):
    weekly = dg.DigestConfig(name="weekly", destinations=["nowhere"])
    report = dg.send(config, store, weekly, END, DestinationPool(config), period_end=END)
    (delivery,) = report.deliveries
    assert delivery.status == "failed" and delivery.permanent and "not defined" in delivery.error
    problems = dg.config_problems({"weekly": weekly}, config.destinations)
    assert problems == [(("digests", "weekly", "destinations", 0),
                         "digest 'weekly': destination 'nowhere' is not defined under 'destinations:' (defined: marketing, terminal)")]
    assert dg.config_problems({"ok": dg.DigestConfig(destinations=["marketing", "terminal"])}, config.destinations) == []


# -- scheduling -------------------------------------------------------------------------------


def test_due_follows_the_schedule_and_never_surprises_on_install(tmp_path, slack, monkeypatch):
    config = make_config(tmp_path, slack, "Europe/Berlin")
    store = Store(config.state_path)
    weekly = dg.DigestConfig(name="weekly", period="week", destinations=["terminal"])  # default: Mondays 09:00
    assert weekly.schedule == "0 9 * * 1"
    berlin = config.timezone
    monday_9 = datetime(2026, 11, 23, 9, 0, tzinfo=berlin)
    # Installed on a Wednesday: the Monday digest waits for Monday.
    assert dg.due(config, store, datetime(2026, 11, 18, 15, 0, tzinfo=berlin), [weekly]) == []
    assert dg.due(config, store, monday_9 - timedelta(minutes=1), [weekly]) == []
    assert dg.due(config, store, monday_9 + timedelta(seconds=20), [weekly]) == [weekly]
    report = dg.send(config, store, weekly, monday_9 + timedelta(minutes=1), DestinationPool(config))
    assert report.digest.end == monday_9 and report.digest.start == monday_9 - timedelta(days=7)
    assert dg.due(config, store, monday_9 + timedelta(hours=5), [weekly]) == []
    # The machine was off next Monday and comes back on Tuesday: one catch-up digest, for the week that ended Monday 09:00.
    tuesday = monday_9 + timedelta(days=8, hours=3)
    assert dg.due(config, store, tuesday, [weekly]) == [weekly]
    late = dg.send(config, store, weekly, tuesday, DestinationPool(config))
    assert late.digest.end == monday_9 + timedelta(days=7)
    assert dg.due(config, store, tuesday + timedelta(minutes=1), [weekly]) == []
    store.close()


def test_digest_config_validates():
    with pytest.raises(ValueError, match="not a valid cron expression"):
        dg.DigestConfig(schedule="every monday", destinations=["x"])
    with pytest.raises(ValueError):
        dg.DigestConfig(destinations=[])
    with pytest.raises(ValueError):
        dg.DigestConfig(destinations=["x"], period="month")
    with pytest.raises(ValueError):
        dg.DigestConfig(destinations=["x"], filters={"channels": ["x"]})
    daily = dg.DigestConfig(destinations="marketing", period="day", filters={"sources": "g2"})
    assert (daily.schedule, daily.destinations, daily.filters.sources) == ("0 9 * * *", ("marketing",), ("g2",))


# -- email and console ------------------------------------------------------------------------


class StandInEmail(EmailDestination):
    """The real email destination, with `send_email` (its SMTP step, tested in test_email.py) recording instead."""

    def __init__(self, name: str = "inbox"):
        super().__init__(name, EmailOptions(host="smtp.acme.example", sender="earful <digest@acme.example>",
                                            to=["marketing@acme.example"]))
        self.sent: list[dict] = []

    def send_email(self, subject: str, text: str, html: str | None = None, images: dict[str, bytes] | None = None,
                   headers: dict[str, str] | None = None) -> str:
        self.sent.append({"subject": subject, "text": text, "html": html, "images": images, "headers": headers})
        return headers["Message-ID"]


class StandInPool:
    def __init__(self, **destinations):
        self.destinations = destinations

    def get(self, name):
        return self.destinations.get(name)


def test_email_rendering_escapes_html_and_references_the_inline_chart(config, store):
    seed_hostile(store)
    digest = dg.build(config, store, END, "week")
    page = render.html(digest, chart_cid=render.CHART_CID)
    assert '<img src="cid:earful-digest-chart"' in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;!channel&gt;" in page
    assert 'href="javascript:' not in page
    assert 'href="https://evil.example/0?a=1|b&lt;c&gt;"' in page  # attribute-escaped, never breaking out of the quote
    plain = render.text(digest, chart=True)
    assert "<script>alert(1)</script>" in plain  # text/plain shows it as text; nothing interprets it
    assert "Chart: mentions per day by source (attached image)." in plain


def test_send_by_email_through_send_email(config, store):
    keep = seed_week(store)
    seed_support(store, keep)
    inbox = StandInEmail()
    weekly = dg.DigestConfig(name="weekly", destinations=["inbox"])
    report = dg.send(config, store, weekly, END, StandInPool(inbox=inbox), period_end=END)
    message_id = inbox.message_id(f"digest:weekly:{iso(END)}#inbox")
    assert [(d.status, d.remote_id) for d in report.deliveries] == [("delivered", message_id)]
    (mail,) = inbox.sent
    assert mail["subject"] == "Acme · Weekly digest · Mon 16 – Sun 22 Nov 2026: 30 mentions, +7 (+30%) vs the previous week"
    assert set(mail["images"]) == {render.CHART_CID} and png_size(mail["images"][render.CHART_CID]) == (1000, 500)
    assert f'src="cid:{render.CHART_CID}"' in mail["html"]
    assert "30 mentions, +7 (+30%) vs the previous week." in mail["text"]
    assert mail["headers"] == {"X-Earful-Digest": f"digest:weekly:{iso(END)}#inbox", "Message-ID": message_id}
    again = dg.send(config, store, weekly, END + timedelta(minutes=5), StandInPool(inbox=inbox), period_end=END)
    assert [d.status for d in again.deliveries] == ["already"] and len(inbox.sent) == 1


def test_console_rendering_shows_markup_literally(config, store, capsys):
    seed(store, "feeds", day(2), "reddit", "m1", title="[bold red]not markup[/bold red] \x1b[31mred", rules=("complaint",))
    weekly = dg.DigestConfig(name="weekly", destinations=["terminal"])
    report = dg.send(config, store, weekly, END, DestinationPool(config), period_end=END)
    assert [d.status for d in report.deliveries] == ["delivered"]
    assert report.chart is None  # the console shows no chart, so none is drawn
    out = capsys.readouterr().out
    assert "Weekly digest · Mon 16 – Sun 22 Nov 2026" in out
    assert "[bold red]not markup[/bold red]" in out and "\x1b[31m" not in out
    assert "1 mention, first week: no previous week to compare." in out


def test_without_matplotlib_the_digest_goes_out_without_its_chart(config, store, slack, monkeypatch):
    import sys

    seed_week(store)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    weekly = dg.DigestConfig(name="weekly", destinations=["marketing"])
    report = dg.send(config, store, weekly, END, DestinationPool(config), period_end=END)
    assert report.chart is None and "matplotlib is not installed" in report.chart_error
    assert [d.status for d in report.deliveries] == ["delivered"]
    (message,) = slack.messages(CHANNEL)
    assert "chart follows" not in json.dumps(message["blocks"])
    assert slack.uploaded_files() == [] and slack.requests_to("files.") == []


def test_what_digest_runs_sent_before_the_outbox_is_not_sent_again(config, slack):
    """An older state.db: the period digest_runs delivered becomes a delivered outbox row, so it is not repeated."""
    import sqlite_utils

    from earful.monitors.store.migrations import migrations

    old = sqlite_utils.Database(str(config.state_path))
    migrations.apply(old, stop_before="m005_digests_in_the_outbox")
    old.execute("insert into digest_runs (digest, period_end, destination, period_start, status, attempts, message_id, "
                "chart_done, created_at, delivered_at) values ('weekly', ?, 'marketing', ?, 'delivered', 1, 'C1:1.2', 1, ?, ?)",
                [iso(END), iso(START), iso(END), iso(END)])
    old.conn.commit()
    old.close()

    store = Store(config.state_path)
    weekly = dg.DigestConfig(name="weekly", schedule="0 0 * * 1", destinations=["marketing"])
    (row,) = store.digest_rows(f"digest:weekly:{iso(END)}")
    assert (row.key, row.status, row.remote_id) == (f"digest:weekly:{iso(END)}#marketing", "delivered", "C1:1.2")
    assert dg.due(config, store, END + timedelta(minutes=5), [weekly]) == []
    assert [d.status for d in dg.send(config, store, weekly, END + timedelta(minutes=5), DestinationPool(config)).deliveries] == ["already"]
    assert slack.requests == []
    assert "digest_runs" not in store.db.table_names()
    store.close()
