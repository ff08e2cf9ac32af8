"""Real-data fidelity (issue 15, items 3, 5, 6, 13): what App Store, Google Play, Mastodon and Telegram really
send, read through each connector against its fake, which serves the shapes of the recorded real bodies."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import feedparser
import pytest
import requests

from earful.connectors.appstore import AppStoreConnector, AppStoreOptions
from earful.connectors.base import ConnectorContext
from earful.connectors.googleplay import GooglePlayConnector, GooglePlayOptions
from earful.connectors.mastodon import MastodonConnector, MastodonOptions
from earful.connectors.telegram import TelegramConnector, TelegramOptions
from earful.core import Mention
from earful.sandbox.appstores import AppStoresServer
from earful.sandbox.mastodon import MastodonServer
from earful.sandbox.server import Response
from earful.sandbox.telegram import (
    CHANNEL,
    GROUP,
    TOKEN,
    TelegramServer,
    origin_channel,
    origin_chat,
    origin_hidden_user,
    origin_user,
    user,
)

from .deploy import acme_rules, write_deployment

NOW = datetime(2021, 2, 19, 14, 0, tzinfo=timezone.utc)
APP = "333903271"
PKG = "com.acme.crm"


def context(monitor: str = "fidelity", **brands: tuple[str, ...]) -> ConnectorContext:
    return ConnectorContext(monitor=monitor, brand_accounts=brands, now=NOW)


# -- App Store: the 2020/2021 JSON has no dates, its XML form has ------------------------------------


@pytest.fixture
def dateless() -> Iterator[AppStoresServer]:
    """A storefront serving the JSON as Apple did in 2021: entries without `updated`."""
    with AppStoresServer(entry_dates=False) as server:
        server.add_apple_app(APP, "Acme CRM")
        yield server  # type: ignore[misc]


def apple(server: AppStoresServer, **options: Any) -> AppStoreConnector:
    return AppStoreConnector(AppStoreOptions(**{"app_id": APP, "base_url": server.url, **options}), context())


def test_appstore_dates_come_from_the_xml_form_when_the_json_has_none(dateless: AppStoresServer) -> None:
    older = dateless.add_apple_review(APP, updated=NOW - timedelta(days=2, minutes=7), author="beastmatin", rating=5,
                                      title="Twitter & Acme", text="Cool way to show feelings <3")
    newer = dateless.add_apple_review(APP, updated=NOW - timedelta(hours=3), author="Zoé", rating=1, title="Plantage",
                                      text="L'app se ferme à l'ouverture 😤")
    json_page = requests.get(f"{dateless.url}/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/json", timeout=5).json()
    assert all("updated" not in e for e in json_page["feed"]["entry"])  # the real 2021 shape
    xml = requests.get(f"{dateless.url}/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/xml", timeout=5)
    parsed = feedparser.parse(xml.content)
    assert parsed.version == "atom10" and [e.id for e in parsed.entries] == [newer.id, older.id]
    assert all(e.updated.endswith("-07:00") and len(e.content) == 2 for e in parsed.entries)  # text + html content
    result = apple(dateless).fetch(None)
    by_id = {m.external_id: m for m in result.mentions}
    assert by_id[older.id].created_at == older.updated.replace(microsecond=0)
    assert by_id[newer.id].created_at == newer.updated.replace(microsecond=0)
    assert (by_id[older.id].title, by_id[newer.id].text) == ("Twitter & Acme", "L'app se ferme à l'ouverture 😤")
    assert result.requests == 2 and dateless.apple_requests()[-1].path.endswith("/xml")
    assert result.cursor["countries"]["us"]["newest"] == newer.updated.isoformat()


def test_appstore_first_run_window_uses_the_real_dates(dateless: AppStoresServer) -> None:
    recent = dateless.add_apple_review(APP, updated=NOW - timedelta(days=1), rating=2, title="Slow", text="Acme is slow")
    dateless.add_apple_review(APP, updated=NOW - timedelta(days=45), rating=1, title="Old", text="a review from last year")
    first = apple(dateless).fetch(None)  # undated, the old review would pass as new
    assert [m.external_id for m in first.mentions] == [recent.id]


def test_appstore_a_review_the_xml_page_does_not_list_keeps_no_date(dateless: AppStoresServer) -> None:
    dateless.add_apple_review(APP, updated=NOW - timedelta(hours=1), rating=3, title="Moved", text="listed in JSON only")
    json_body = requests.get(f"{dateless.url}/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/json", timeout=5).text
    past_end = requests.get(f"{dateless.url}/us/rss/customerreviews/page=2/id={APP}/sortby=mostrecent/xml", timeout=5).text
    assert "<entry>" not in past_end and "<feed" in past_end
    dateless.fail_next(Response(200, json_body, {"Content-Type": "application/json"}),
                       Response(200, past_end, {"Content-Type": "text/xml; charset=UTF-8"}))
    (mention,) = apple(dateless).fetch(None).mentions
    assert mention.created_at is None  # unknown, never the time earful first saw it


def test_appstore_dated_json_costs_no_xml_request() -> None:
    with AppStoresServer() as server:  # later JSON versions carry `updated`
        review = server.add_apple_review(APP, updated=NOW - timedelta(hours=2), rating=4, title="ok", text="fine")
        result = apple(server).fetch(None)
        assert result.mentions[0].created_at == review.updated and result.requests == 1
        assert not any(r.path.endswith("/xml") for r in server.apple_requests())


# -- Google Play: the review data carries no language ----------------------------------------------------


def test_play_reviews_have_no_language_of_their_own() -> None:
    with AppStoresServer() as server:
        server.add_play_app(PKG, "Acme Inc.")
        # What an hl=en read of a real app returns: English and Chinese reviews mixed, none saying its language.
        zh = server.add_play_review(PKG, at=NOW - timedelta(hours=1), author="李伟", rating=1, text="Acme 同步一直失败，客服也不回复。")
        en = server.add_play_review(PKG, at=NOW - timedelta(hours=2), author="Paul Farber", rating=3,
                                    text="I bought the paid version but \ncannot access the pro features.")
        reader = GooglePlayConnector(GooglePlayOptions(app_id=PKG, base_url=server.url), context())
        by_id = {m.external_id: m for m in reader.fetch(None).mentions}
    assert by_id[zh.id].text == "Acme 同步一直失败，客服也不回复。" and by_id[zh.id].author == "李伟"
    assert by_id[zh.id].language is None and by_id[en.id].language is None  # a classifier detects it; hl is no fact
    assert by_id[zh.id].raw["lang"] == by_id[en.id].raw["lang"] == "en"  # what was asked for, kept apart


# -- Mastodon: identity from the instance, not from base_url ----------------------------------------------


@pytest.fixture
def masto() -> Iterator[MastodonServer]:
    with MastodonServer(domain="mastodon.example") as server:
        yield server  # type: ignore[misc]


def mastodon(base_url: str) -> MastodonConnector:
    return MastodonConnector(MastodonOptions(base_url=base_url, hashtags=["acmecrm"]),
                             context(mastodon=("acme@mastodon.example",)))


def test_mastodon_keys_do_not_depend_on_base_url(masto: MastodonServer) -> None:
    ben = masto.add_account("ben")
    olga = masto.add_account("olga", "hachyderm.example")
    acme = masto.add_account("acme", display_name="Acme CRM")
    t = NOW.timestamp()
    asked = masto.post(olga, "Acme export broken? #acmecrm", at=t - 600)
    masto.post(ben, "same here #acmecrm", at=t - 500, in_reply_to=asked["id"])
    masto.post(acme, "@olga fixed in 5.2.1 #acmecrm", at=t - 400, in_reply_to=asked["id"])
    port = masto.url.rsplit(":", 1)[1]
    direct = mastodon(f"http://127.0.0.1:{port}").fetch(None).mentions
    proxied = mastodon(f"http://localhost:{port}/").fetch(None).mentions  # another host name for the same instance
    assert [(m.external_id, m.parent_id, m.thread_id) for m in direct] == [(m.external_id, m.parent_id, m.thread_id) for m in proxied]
    assert [m.external_id for m in direct] == [f"mastodon.example/{m.raw['id']}" for m in direct]
    assert direct[1].parent_id == direct[0].external_id  # replies still point at their parent's key
    assert direct[0].raw["uri"].startswith("https://hachyderm.example/users/olga/statuses/")  # globally unique, kept
    assert len(masto.requests_to("/api/v2/instance")) == 2  # once per connector (run), not per status


def test_mastodon_before_4_names_its_domain_in_v1_and_old_keys_still_get_reply_checks(masto: MastodonServer) -> None:
    masto.instance_v2 = False
    ben = masto.add_account("ben")
    acme = masto.add_account("acme")
    asked = masto.post(ben, "How do I export from Acme? #acmecrm", at=NOW.timestamp() - 900)
    masto.post(acme, "@ben Settings → Export", at=NOW.timestamp() - 800, in_reply_to=asked["id"])
    reader = mastodon(masto.url)
    (question,) = reader.fetch(None).mentions  # the answer has no hashtag: reply checks find it
    assert question.external_id == f"mastodon.example/{asked['id']}"
    assert [r.path for r in masto.requests_to("/instance")] == ["/api/v2/instance", "/api/v1/instance"]
    # an item stored before this change, keyed by the address it was read at
    legacy = Mention(source="mastodon", external_id=f"{masto.url.split('://')[1]}/{asked['id']}", raw={"id": asked["id"]})
    assert reader.replies(legacy).answered is True and reader.replies(question).answered is True
    assert reader.replies(Mention(source="mastodon", external_id=f"elsewhere.example/{asked['id']}")).answered is None


# -- Telegram: forwards keep their origin ------------------------------------------------------------------


@pytest.fixture
def tg() -> Iterator[TelegramServer]:
    with TelegramServer() as server:
        yield server  # type: ignore[misc]


def telegram(server: TelegramServer) -> TelegramConnector:
    return TelegramConnector(TelegramOptions(bot_token=TOKEN, base_url=server.url), context(telegram=("acme_support",)))


SUPPORT_CHANNEL = {"id": -1001700000001, "title": "Acme Support", "username": "acme_support", "type": "channel"}
PRIVATE_GROUP = {"id": -1001700000002, "title": "Acme Beta Testers", "type": "supergroup"}
ANN = user(5100000001, "Ann", "ann_k", "Kowalska")
MARTA = user(5100000009, "Marta", "marta_k")


@pytest.mark.parametrize("legacy", [False, True], ids=["forward_origin", "forward_from"])
def test_telegram_forwards_keep_their_origin(tg: TelegramServer, legacy: bool) -> None:
    t = int(NOW.timestamp())
    tg.forward(GROUP, origin_channel(SUPPORT_CHANNEL, 812, t - 7200, signature="Jonas"), "Acme outage: sync is paused until 14:00.",
               sender=MARTA, date=t - 60, legacy=legacy)
    tg.forward(GROUP, origin_user(ANN, t - 3600), "Acme refund still not here", sender=MARTA, date=t - 50, legacy=legacy)
    tg.forward(GROUP, origin_hidden_user("Dmitri", t - 3000), "Is Acme down?", sender=MARTA, date=t - 40, legacy=legacy)
    tg.forward(GROUP, origin_chat(PRIVATE_GROUP, t - 2000), "Acme beta 5.3 broke exports", sender=MARTA, date=t - 30, legacy=legacy)
    tg.post(GROUP, "Acme is fine for me", sender=ANN, date=t - 20)
    mentions = telegram(tg).fetch(None).mentions
    channel, person, hidden, group, plain = mentions
    assert channel.title == "Acme CRM Users · Forwarded from Acme Support (channel @acme_support, signed Jonas)"
    assert channel.raw["forward_origin"] == {
        "type": "channel", "name": "Acme Support", "username": "acme_support", "id": SUPPORT_CHANNEL["id"], "message_id": 812,
        "author_signature": "Jonas", "date": (NOW - timedelta(hours=2)).isoformat(), "url": "https://t.me/acme_support/812"}
    assert channel.author == "marta_k" and channel.text == "Acme outage: sync is paused until 14:00."  # the forwarder posted it
    assert channel.created_at == NOW - timedelta(seconds=60)  # when it was forwarded here; the origin's date is in raw
    assert person.title.endswith("Forwarded from Ann Kowalska (user @ann_k)") and person.raw["forward_origin"]["id"] == ANN["id"]
    assert hidden.title.endswith("Forwarded from Dmitri (hidden user)") and hidden.raw["forward_origin"]["id"] is None
    assert group.title.endswith("Forwarded from Acme Beta Testers (group)") and group.raw["forward_origin"]["url"] is None
    assert plain.title == "Acme CRM Users" and "forward_origin" not in plain.raw


def test_telegram_channel_copies_are_no_forwards_and_alerts_carry_the_origin(tmp_path: Path, tg: TelegramServer) -> None:
    now = int(time.time())
    _, copy = tg.channel_post("Acme CRM 5.2 is out", date=now - 300)
    assert copy is not None and copy["is_automatic_forward"]
    tg.forward(GROUP, origin_channel(CHANNEL, 44, now - 600), "Acme sync broken for EU customers", sender=MARTA, date=now - 120)
    deployed = write_deployment(tmp_path, {"telegram-acme": {"connector": "telegram", "schedule": "*/2 * * * *",
                                                              "bot_token": TOKEN, "base_url": tg.url}},
                                acme_rules({"telegram": ["acme_support"]}))
    assert deployed.tick().monitors[0].ok
    alerted, items = deployed.stored()
    copied = next(m for m in items if m is not None and m.text == "Acme CRM 5.2 is out" and m.kind == "post")
    assert "forward_origin" not in copied.raw and "Forwarded" not in copied.title
    (forwarded, _), = [(m, d) for m, d in alerted if m.text.startswith("Acme sync broken")]
    assert forwarded.title == "Acme CRM Users · Forwarded from Acme CRM News (channel @acmecrm_news)"
    assert forwarded.raw["forward_origin"]["url"] == "https://t.me/acmecrm_news/44"
