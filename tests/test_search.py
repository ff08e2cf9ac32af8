"""`earful search`: the rule language over stored mentions, narrowed by the FTS5 index, decided by the engine."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from earful.core import Mention
from earful.monitors.cli import main
from earful.monitors.search import required_words, search
from earful.monitors.store import Store
from earful.rules.engine import matches_query

from .history_state import demo_state

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
LONG_AGO = NOW - timedelta(days=3650)

QUERIES = [
    "acme (refund OR broken)",
    '"acme crm" -"job offer"',
    "rating:<=2 type:review",
    "title:acme respon*",
    'acme ("how do i" OR "does anyone" OR "anyone know*")',
    "acme.com OR outage",
    "source:reddit -acme",
    "author:acme_official",
]


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return demo_state(tmp_path_factory)


def invoke(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code or 0


def _store_with(*mentions: Mention) -> Store:
    store = Store(":memory:")
    store.ingest("m", [(mention, [], []) for mention in mentions], {}, NOW)
    return store


@pytest.mark.parametrize("query", QUERIES)
def test_results_are_exactly_what_the_rule_language_means(demo, query):
    store = Store(demo / "state.db")
    try:
        everything = store.search_candidates(LONG_AGO, None)
        expected = [s.mention.key for s in everything if matches_query(query, s.mention)]
        found = search(store, query, LONG_AGO)
        assert [s.mention.key for s in found] == expected
        words = required_words(query)
        if words is not None:  # the index narrowed what the engine had to look at
            assert len(store.search_candidates(LONG_AGO, words)) < len(everything)
    finally:
        store.close()
    assert len(everything) >= 80


def test_the_words_every_match_contains():
    assert required_words("acme (refund OR broken)") in ('("acme" AND "refund") OR ("acme" AND "broken")', '("acme")')
    assert required_words('"acme crm" OR "acme api"') == '("acme")'
    assert required_words("Acme.com") == '("acme" AND "com")', "normalised as the engine does; no phrase (acme dot com)"
    assert required_words("Straße") == '("strasse")'
    assert required_words("rating:<=2 type:review") is None, "nothing to search for: every mention is a candidate"
    assert required_words("acme OR -spam") is None
    assert required_words("respon*") is None, "wildcards only widen"


def test_text_beyond_ascii_is_always_handed_to_the_engine():
    """unicode61 reads "最近Acme" as one token; the engine reads 最 近 acme. The mention must still be found."""
    store = _store_with(Mention("x", "1", text="最近Acme CRMで同期が壊れた"), Mention("x", "2", text="acme is great"),
                        Mention("x", "3", text="nothing here"))
    assert {s.mention.external_id for s in search(store, "acme", LONG_AGO)} == {"1", "2"}
    assert {s.mention.external_id for s in store.search_candidates(LONG_AGO, required_words("acme"))} == {"1", "2"}


def test_the_index_follows_edited_text():
    store = _store_with(Mention("x", "1", title="Acme", text="the export is broken"))
    assert len(search(store, "acme broken", LONG_AGO)) == 1
    store.ingest("m", [(Mention("x", "1", title="Acme", text="the export works again"), [], [])], {}, NOW)
    assert search(store, "acme broken", LONG_AGO) == []
    assert len(search(store, "acme works", LONG_AGO)) == 1


def test_since_counts_from_when_it_was_posted(demo):
    store = Store(demo / "state.db")
    try:
        newest = search(store, "acme", LONG_AGO)
        posted = sorted(s.posted_at for s in newest)
        cut = posted[len(posted) // 2]
        assert all(s.posted_at >= cut for s in search(store, "acme", cut))
        assert 0 < len(search(store, "acme", cut)) < len(newest)
    finally:
        store.close()


def test_an_existing_state_gets_its_index_on_upgrade(tmp_path):
    """m007 fills the index from the items already stored."""
    path = tmp_path / "state.db"
    store = Store(path)
    store.ingest("m", [(Mention("x", "1", text="acme refund please"), [], [])], {}, NOW)
    store.close()
    db = sqlite3.connect(path)  # make it look like a state from before m007
    with db:
        for statement in ("drop view mentions", "drop trigger items_search_insert", "drop trigger items_search_delete",
                          "drop trigger items_search_update", "drop table items_search",
                          "delete from _sqlite_migrations where name = 'm007_search_index_and_mentions_view'"):
            db.execute(statement)
    db.close()
    store = Store(path)
    try:
        assert [s.mention.external_id for s in search(store, "acme refund", LONG_AGO)] == ["1"]
        assert "labels" in store.mentions_view_columns()
    finally:
        store.close()


def test_cli_table_fits_80_columns(demo, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert invoke("search", "acme (refund OR broken)", "-c", str(demo / "cron.yaml")) == 0
    out = capsys.readouterr().out
    assert "match 'acme (refund OR broken)'" in out and "https://" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_cli_json_lines_and_csv_hold_every_match(demo, capsys):
    store = Store(demo / "state.db")
    expected = {s.mention.key for s in search(store, "acme refund", datetime.now(timezone.utc) - timedelta(days=30))}
    store.close()
    assert expected
    assert invoke("search", "acme refund", "--json", "-c", str(demo / "cron.yaml")) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["key"] for r in records} == expected
    assert all("refund" in (r["title"] + " " + r["text"]).lower() for r in records)
    assert invoke("search", "acme refund", "--csv", "--since", "30d", "-c", str(demo / "cron.yaml")) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["key"] for r in rows} == expected and set(rows[0]) >= {"posted_at", "source", "author", "text", "url"}


def test_cli_names_the_column_of_a_query_error(demo, capsys):
    assert invoke("search", "acme (refund", "-c", str(demo / "cron.yaml")) == 2
    assert "column" in capsys.readouterr().err
    assert invoke("search", "acme", "--since", "soon", "-c", str(demo / "cron.yaml")) == 2
