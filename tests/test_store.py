"""state.db: ingestion is atomic, dedupe clusters copies, the outbox is exactly-once."""

from datetime import datetime, timedelta, timezone

import pytest

from earful.core import Match, Mention
from earful.monitors.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def mention(external_id, url="", title="", text="", source="rss", **kw):
    return Mention(source=source, external_id=external_id, url=url, title=title, text=text, created_at=NOW, **kw)


def match(m, rule="complaint"):
    return Match(mention_key=m.key, rule_id=rule, pack="acme", labels=("complaint",), severity="high",
                 reply_within=timedelta(hours=2))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def ingest(store, *mentions, monitor="m", cursor=None):
    batch = [(m, [match(m)], ["support"]) for m in mentions]
    return store.ingest(monitor, batch, cursor or {"n": 1}, NOW)


def test_wal_mode_and_schema_version(store, tmp_path):
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    applied = [r[0] for r in store.db.execute("select name from _sqlite_migrations")]
    assert applied[0] == "m001_initial"
    Store(tmp_path / "state.db").close()  # re-opening applies nothing twice
    assert [r[0] for r in store.db.execute("select name from _sqlite_migrations")] == applied


def test_exact_duplicate_is_not_enqueued_twice(store):
    a = mention("1", "https://example.com/a", "Acme is broken", "acme broke again")
    first = ingest(store, a)
    second = ingest(store, a)
    assert [r.outcome for r in first] == ["new"] and first[0].alerts == ["support"]
    assert [r.outcome for r in second] == ["duplicate"] and second[0].alerts == []
    assert store.count("outbox") == 1 and store.count("items") == 1


def test_edited_text_is_an_update_not_a_new_alert(store):
    ingest(store, mention("1", "https://example.com/a", "Acme is broken", "v1"))
    again = ingest(store, mention("1", "https://example.com/a", "Acme is broken", "v2 edited"))
    assert again[0].outcome == "updated" and again[0].alerts == []
    assert store.cluster_mentions("rss:1")[0].text == "v2 edited"


def test_canonical_url_clusters_crossposts(store):
    a = mention("a", "https://example.com/post?utm_source=x", "Acme broke", source="rss")
    b = mention("b", "https://m.example.com/post/", "Acme broke (syndicated)", source="hackernews")
    records = ingest(store, a, b)
    assert [r.outcome for r in records] == ["new", "clustered"]
    assert records[1].cluster == "rss:a" and records[1].alerts == []
    assert [m.key for m in store.cluster_mentions("rss:a")] == ["rss:a", "hackernews:b"]


def test_near_identical_text_clusters(store):
    text = "After the last update Acme CRM lost all of my contacts and support never responds to my emails"
    a = mention("a", "https://forum-one.example/t/1", "Acme lost my data", text)
    b = mention("b", "https://forum-two.example/p/9", "ACME lost my data!", text.upper() + " !!!")
    records = ingest(store, a, b)
    assert [r.outcome for r in records] == ["new", "clustered"]


def test_text_window_expires(store):
    text = "After the last update Acme CRM lost all of my contacts and support never responds"
    ingest(store, mention("a", "", "Acme lost my data", text))
    later = NOW + timedelta(days=8)
    records = store.ingest("m", [(mention("b", "", "Acme lost my data", text), [], ["support"])], {}, later)
    assert records[0].outcome == "new"


def test_cursor_advances_only_with_the_mentions(store):
    ingest(store, mention("1", text="x"), cursor={"since": 5})
    assert store.cursor("m") == {"since": 5}
    with pytest.raises(RuntimeError):
        def exploding():
            yield (mention("2", text="y"), [], ["support"])
            raise RuntimeError("crash in the middle of a batch")
        store.ingest("m", exploding(), {"since": 9}, NOW)
    assert store.cursor("m") == {"since": 5}
    assert store.count("items") == 1 and store.count("outbox") == 1


def test_outbox_lifecycle(store):
    ingest(store, mention("1", text="x"))
    (row,) = store.due_outbox(NOW)
    assert row.key == "rss:1#support" and row.status == "pending"
    store.mark_sending(row.id, NOW)
    (row,) = store.due_outbox(NOW)
    assert row.status == "sending" and row.attempts == 1
    store.mark_failed(row.id, "boom", NOW + timedelta(minutes=1))
    assert store.due_outbox(NOW) == []
    assert [r.id for r in store.due_outbox(NOW + timedelta(minutes=1))] == [row.id]
    store.mark_delivered(row.id, "C1:123.456", NOW)
    assert store.due_outbox(NOW + timedelta(days=1)) == []
    assert store.outbox_rows("delivered")[0].remote_id == "C1:123.456"


def test_mentions_round_trip(store):
    m = Mention(source="hackernews", external_id="42", url="https://news.ycombinator.com/item?id=42", author="pg",
                author_is_brand=False, title="Ask HN", text="Is Acme any good?", created_at=NOW, thread_id="40",
                parent_id="41", kind="comment", rating=None, language="en", brand_replied=None, site="news.ycombinator.com",
                raw={"points": 3})
    store.ingest("m", [(m, [match(m)], ["support"])], {}, NOW)
    (back,) = store.cluster_mentions(m.key)
    assert back == m and back.raw == {"points": 3}
    (matched,) = store.cluster_matches(m.key)
    assert matched == match(m)


def test_every_table_comes_from_a_migration(store):
    """Nothing creates a table at run time: a fresh state already has them all."""
    assert set(store.db.table_names()) == {"_sqlite_migrations", "items", "matches", "cursors", "outbox", "runs",
                                           "monitor_state", "budgets", "queries", "spike_alerts", "quarantine",
                                           # the FTS5 index of m007 and its shadow tables
                                           "items_search", "items_search_data", "items_search_idx",
                                           "items_search_docsize", "items_search_config"}


def test_a_state_whose_spike_table_predates_its_migration_still_upgrades(tmp_path):
    """Before m004, spike checks created `spike_alerts` on first use; m004 must accept such a file."""
    import sqlite_utils

    from earful.monitors.store.migrations import migrations

    db = sqlite_utils.Database(tmp_path / "old.db")
    migrations.apply(db, stop_before="m004_digests_and_spikes")
    db.execute("create table spike_alerts (dimension text not null, value text not null, hour text not null, "
               "count integer not null, mean real not null, stdev real not null, threshold real not null, "
               "raised_at text not null, primary key (dimension, value, hour))")
    db.close()
    store = Store(tmp_path / "old.db")
    store.record_spike("monitor", "hn", NOW, 12, 1.0, 0.5, 2.5, NOW)
    assert store.spike_hours("monitor", "hn", NOW - timedelta(hours=1), NOW + timedelta(hours=1)) == [NOW]
    store.close()


def test_a_query_is_checked_answered_and_its_messages_updated(store):
    records = ingest(store, mention("1", text="how do I export?"))
    deadline = NOW + timedelta(hours=2)
    with store.transaction():
        store.open_query(cluster=records[0].cluster, item_key="rss:1", monitor="m", source="rss", posted_at=NOW,
                         seen_at=NOW, sla=timedelta(hours=2), business_hours=False, deadline=deadline, status="open",
                         next_check_at=NOW + timedelta(minutes=5), answered_at=None, answered_by=None, escalated_at=None)
    assert store.next_query_check() == NOW + timedelta(minutes=5) and store.next_query_deadline() == deadline
    assert store.queries_due(NOW) == []
    (due,) = store.queries_due(NOW + timedelta(minutes=5))
    store.record_query_checked(due.cluster, NOW + timedelta(minutes=5), NOW + timedelta(minutes=20))
    assert store.query(due.cluster).checks == 1 and store.breached_queries(deadline) == [store.query(due.cluster)]
    store.record_query_answered(due.cluster, NOW + timedelta(minutes=30), "acme_support", None, NOW + timedelta(minutes=40))
    (answered,) = store.answered_queries_to_update()
    assert answered.status == "answered" and answered.answered_by == "acme_support" and answered.checks == 2
    assert store.next_query_check() is None and store.undelivered_alerts(due.cluster) == 1
    store.mark_query_updates_done(due.cluster)
    assert store.answered_queries_to_update() == [] and [q.item_key for q in store.all_queries()] == ["rss:1"]


def test_a_budget_is_kept_per_monitor_and_period(store):
    store.save_budget("x", "2026-11", 3, 100, NOW)
    store.save_budget("x", "2026-11", 5, 100, NOW)
    assert store.budget_used("x", "2026-11") == 5 and store.budget_used("x", "2026-12") == 0
    assert store.budgets("2026-11")["x"]["limit_"] == 100


def test_held_rows_are_not_due_and_not_counted_as_sent(store):
    ingest(store, mention("1", text="x"), mention("2", text="y"))
    first, second = store.due_outbox(NOW)
    store.mark_delivered(first.id, "C1:1", NOW)
    with store.transaction():
        store.hold_outbox_rows([second.id], "held by flood control (support)")
    assert store.due_outbox(NOW) == [] and store.outbox_rows("held")[0].last_error == "held by flood control (support)"
    assert store.delivered_since("support", ("alert", "escalation"), NOW - timedelta(hours=1)) == 1
    assert store.delivered_since("support", ("summary",), NOW - timedelta(hours=1)) == 0
