"""state.db: ingestion is atomic, dedupe clusters copies, the outbox is exactly-once."""

from datetime import datetime, timedelta, timezone

import pytest

from earful.core import Mention
from earful.monitors.store import Store
from earful.core import Match

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
