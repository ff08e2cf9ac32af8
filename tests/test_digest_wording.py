"""The digest says what it means: plurals, comparisons, ratings, overdue times, its footer and
subject, where a cut list continues, readable authors; and its chart counts local calendar days
by posted date."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from earful.alerts import format as fmt
from earful.alerts.chart import daily_volume_png
from earful.core import Mention
from earful.monitors import digest as dg
from earful.monitors import digest_render as render
from earful.monitors.report import ChannelKpis
from earful.monitors.store import Store

from .deploy import write_deployment
from .test_digest import png_size

END = datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
RULES = "brand:\n  name: Acme\nrules:\n  - id: complaint\n    query: 'acme broken'\n"


@pytest.fixture
def config(tmp_path):
    return write_deployment(tmp_path, {"feeds": {"connector": "rss", "url": "https://forum.example/latest.atom"}}, RULES,
                            settings={"timezone": "Europe/Berlin"}).config


@pytest.fixture
def store(config):
    store = Store(config.state_path)
    yield store
    store.close()


def ingest(store: Store, ident: str, posted: datetime | None, found: datetime, source: str = "reddit") -> None:
    mention = Mention(source=source, external_id=ident, url=f"https://{source}.example/{ident}", author=f"user-{ident}",
                      title=f"post {ident}", text="acme", created_at=posted, kind="post")
    store.ingest("feeds", [(mention, [], [])], {}, found)


def week(config, store, **changes) -> dg.Digest:
    return dataclasses.replace(dg.build(config, store, END, "week"), **changes)


# -- wording -------------------------------------------------------------------------------


def test_counts_agree_with_their_nouns(config, store):
    digest = week(config, store, sla=(ChannelKpis("reddit", queries=1, answered=0, breaches=1, still_open=1),))
    (line,) = render.layout(digest)[0].lines
    text = "".join(span.text for span in line)
    assert "1 question, 0 answered" in text and "1 breach, 1 still open" in text
    assert "1 breaches" not in text and "1 questions" not in text


def test_the_total_is_compared_in_words_or_says_it_is_the_first_week(config, store):
    ingest(store, "now", END - timedelta(days=2), END - timedelta(days=2))
    first = dg.build(config, store, END, "week")
    assert not first.compared
    assert render.summary(first)[0] == "1 mention, first week: no previous week to compare."
    assert render.subject(first).endswith(": 1 mention, first week: no previous week to compare")

    ingest(store, "before", END - timedelta(days=9), END - timedelta(days=9))
    compared = dg.build(config, store, END, "week")
    assert render.summary(compared)[0] == "1 mention, as many as the previous week."
    for i in range(3):
        ingest(store, f"more{i}", END - timedelta(days=1), END - timedelta(days=1))
    assert render.summary(dg.build(config, store, END, "week"))[0] == "4 mentions, +3 (+300%) vs the previous week."


def test_no_rating_means_no_average(config, store):
    site = dg.ReviewSite("trustpilot", "", count=2, rated=0, average=None, previous_average=None, previous_count=1)
    digest = week(config, store, reviews=(site,), total=dg.Change("mentions", 2, 1))
    text = render.text(digest)
    assert "2 new reviews, none with a star rating." in text
    assert "Trustpilot: 2 new, none rated (previous week: 1, none rated)" in text
    assert "no rating" not in text


@pytest.mark.parametrize(("late", "said"), [
    (timedelta(seconds=1), "just overdue"),
    (timedelta(seconds=59), "just overdue"),
    (timedelta(minutes=1, seconds=29), "overdue by 1m"),
    (timedelta(minutes=42, seconds=40), "overdue by 43m"),
    (timedelta(hours=3, minutes=11, seconds=5), "overdue by 3h10m"),
    (timedelta(days=2, hours=4, minutes=40), "overdue by 2d5h"),
])
def test_overdue_is_rounded_to_what_a_reader_cares_about(late, said):
    assert render.overdue(late) == said


def test_the_footer_says_what_the_digest_is(config, store):
    digest = dg.build(config, store, END, "week", name="marketing", schedule="0 9 * * 1")
    assert render.footer(digest).startswith("earful · Weekly digest 'marketing', sent every Monday at 09:00 · Mon 30 Nov 09:00")
    by_hand = dg.build(config, store, END, "day", name="manual")
    assert render.footer(by_hand).startswith("earful · Daily digest, run by hand · ")
    assert "digest manual" not in render.footer(by_hand)
    assert render.schedule_label("0 9 * * *") == "every day at 09:00"
    assert render.schedule_label("30 8 * * 1-5") == 'on schedule "30 8 * * 1-5"'


def test_a_configured_digest_sent_on_its_schedule_names_it(tmp_path):
    config = write_deployment(tmp_path, {"feeds": {"connector": "rss", "url": "https://forum.example/latest.atom"}}, RULES,
                              settings={"timezone": "Europe/Berlin",
                                        "digests": {"marketing": {"destinations": ["support"]}}}).config
    store = Store(config.state_path)
    try:
        (marketing,) = dg.configured(config)
        report = dg.send(config, store, marketing, END, None, dry_run=True)
    finally:
        store.close()
    assert "Weekly digest 'marketing', sent every Monday at 09:00" in render.footer(report.digest)


def test_the_subject_and_headline_carry_the_brand(config, store):
    digest = dg.build(config, store, END, "week")
    assert digest.brand == "Acme"
    assert render.subject(digest) == "Acme · Weekly digest · Mon 30 Nov 09:00 – Mon 7 Dec 09:00 2026: quiet week"
    assert render.headline(dataclasses.replace(digest, brand="")) == "Weekly digest · Mon 30 Nov 09:00 – Mon 7 Dec 09:00 2026"


def test_a_cut_list_says_where_the_rest_is(config, store):
    digest = week(config, store, unanswered_total=25, unanswered=())
    (part,) = [p for p in render.layout(digest) if p.title.startswith("Still unanswered")]
    assert part.more == 25
    assert "…and 25 more: `earful browse` lists them all (saved query “unanswered”)" in render.text(digest)
    assert render.console_content(digest)["parts"][0]["more_text"].startswith("…and 25 more: `earful browse`")


@pytest.mark.parametrize(("author", "shown"), [
    ("urn:li:person:8Xk2aQ", "a LinkedIn member"),
    ("urn:li:organization:2414183", "a LinkedIn organization"),
    ("jane_doe", "jane_doe"),
])
def test_linkedin_authors_read_as_people_not_urns(author, shown):
    mention = Mention(source="linkedin", external_id="c1", url="https://www.linkedin.com/feed/", author=author, text="hi")
    assert fmt.author_label(mention) == shown


# -- the chart: local calendar days, posted date ----------------------------------------


def test_calendar_days_are_the_local_days_the_period_touches():
    days = dg.calendar_days(END - timedelta(days=7), END, BERLIN)  # Mon 09:00 to Mon 09:00 in Berlin
    assert [d.strftime("%a %d %H:%M") for d in days] == [
        "Mon 30 00:00", "Tue 01 00:00", "Wed 02 00:00", "Thu 03 00:00", "Fri 04 00:00", "Sat 05 00:00", "Sun 06 00:00",
        "Mon 07 00:00"]
    assert all(d.tzinfo is BERLIN for d in days)
    midnight = datetime(2026, 12, 7, tzinfo=BERLIN)
    assert [d.day for d in dg.calendar_days(midnight - timedelta(days=7), midnight, BERLIN)] == [30, 1, 2, 3, 4, 5, 6]


def test_posted_per_day_buckets_by_the_local_calendar_date():
    rows = [
        {"source": "reddit", "posted_at": "2026-12-03T22:59:00.000000+00:00"},  # Thu 23:59 in Berlin
        {"source": "reddit", "posted_at": "2026-12-03T23:00:00.000000+00:00"},  # Fri 00:00 in Berlin
        {"source": "x", "posted_at": "2026-12-04T12:00:00.000000+00:00"},
        {"source": "x", "posted_at": "2026-11-29T12:00:00.000000+00:00"},  # before the first day: not charted
    ]
    series = dg.posted_per_day(rows, date(2026, 11, 30), 7, BERLIN)
    assert series == {"reddit": (0, 0, 0, 1, 1, 0, 0), "x": (0, 0, 0, 0, 1, 0, 0)}


def test_days_across_dst_changes_are_one_bar_each():
    # Berlin leaves DST on Sun 25 Oct 2026 (a 25-hour day) and enters it on Sun 29 Mar 2026 (23 hours).
    autumn_end = datetime(2026, 10, 26, 0, 0, tzinfo=BERLIN)
    autumn = dg.calendar_days(dg._wall_shift(autumn_end, BERLIN, -7), autumn_end, BERLIN)
    assert [d.day for d in autumn] == [19, 20, 21, 22, 23, 24, 25]
    rows = [{"source": "reddit", "posted_at": "2026-10-25T22:30:00.000000+00:00"},  # Sun 23:30 CET
            {"source": "reddit", "posted_at": "2026-10-24T22:30:00.000000+00:00"}]  # Sun 00:30 CEST
    assert dg.posted_per_day(rows, autumn[0].date(), 7, BERLIN)["reddit"] == (0, 0, 0, 0, 0, 0, 2)
    spring_end = datetime(2026, 3, 30, 0, 0, tzinfo=BERLIN)
    spring = dg.calendar_days(dg._wall_shift(spring_end, BERLIN, -7), spring_end, BERLIN)
    assert [d.day for d in spring] == [23, 24, 25, 26, 27, 28, 29] and spring[-1].utcoffset() == timedelta(hours=1)
    rows = [{"source": "reddit", "posted_at": "2026-03-29T21:59:00.000000+00:00"},  # Sun 23:59 CEST
            {"source": "reddit", "posted_at": "2026-03-29T22:00:00.000000+00:00"}]  # Mon 00:00 CEST: next week
    assert dg.posted_per_day(rows, spring[0].date(), 7, BERLIN)["reddit"] == (0, 0, 0, 0, 0, 0, 1)


def test_a_first_week_backlog_is_charted_by_posted_day_not_as_one_spike(config, store):
    found = datetime(2026, 12, 4, 14, 0, tzinfo=timezone.utc)  # earful installed Friday afternoon
    for i in range(40):  # the backlog: posted over the weeks before
        ingest(store, f"old{i}", found - timedelta(days=8 + i % 10), found)
    for i in range(21):  # this week: three a day, found when installed or on later runs
        posted = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc) + timedelta(days=i // 3, hours=i % 3)
        ingest(store, f"new{i}", posted, max(found, posted + timedelta(minutes=15)))
    ingest(store, "no-time", None, datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc))  # found date where no posted date
    ingest(store, "this-morning", END - timedelta(hours=1), END - timedelta(minutes=30))  # the partial last day
    digest = dg.build(config, store, END, "week")
    assert digest.total.current == 63 and not digest.compared
    chart = render.chart_data(digest)
    assert chart.days[0] == "Mon\n30 Nov" and chart.days[-1] == "Mon\n7 Dec\nto 09:00" and len(chart.days) == 8
    assert chart.totals == [3, 3, 3, 3, 3, 4, 3, 1]
    assert chart.previous is None and "No previous week to compare" in chart.note
    assert "40 mentions found this week were posted before Mon 30 Nov." in chart.note
    png, error = dg.render_chart(digest)
    assert error is None and png_size(png) == (1000, 500)


def test_the_chart_draws_totals_and_the_previous_period():
    png = daily_volume_png(["Mon\n1 Dec", "Tue\n2 Dec"], {"Reddit": [3, 1], "X": [0, 2]}, "title",
                           previous=[2, 5], previous_label="same day, previous week", note="Days in Europe/Berlin.")
    assert png_size(png) == (1000, 500)
    with pytest.raises(ValueError):
        daily_volume_png(["a", "b"], {"x": [1, 2]}, "mismatch", previous=[1])


def test_the_legend_lists_sources_top_down_as_they_are_stacked(monkeypatch):
    import matplotlib.axes

    seen = {}
    legend = matplotlib.axes.Axes.legend

    def spy(self, handles=None, labels=None, *args, **kwargs):
        seen["labels"] = list(labels)
        return legend(self, handles, labels, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", spy)
    daily_volume_png(["a", "b"], {"small": [1, 0], "big": [5, 5], "middle": [2, 2]}, "t", previous=[1, 1],
                     previous_label="previous")
    assert seen["labels"] == ["small", "middle", "big", "previous"]  # biggest at the bottom of the stack
