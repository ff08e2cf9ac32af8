"""The telegram connector against the fake Bot API (sandbox/telegram.py)."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError, RunResources
from earful.connectors.telegram import TelegramConnector, TelegramOptions
from earful.core import Mention
from earful.sandbox.server import Response
from earful.sandbox.telegram import (
    DISCUSSION,
    GROUP,
    TOKEN,
    TelegramServer,
    demo_source,
    too_many_requests,
    user,
)

from .deploy import acme_rules, write_deployment

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())
SUPPORT = user(700000002, "Acme", "acme_support", "Support")
AGENT = user(700000001, "Jonas", None, "(Acme)")
ANN = user(5100000001, "Ann", "ann_k")
BEN = user(5100000002, "Ben", None, "Ito")
OTHER = {"id": -1001999999999, "title": "Unrelated chat", "type": "supergroup", "username": "random_chat"}
FORUM = {"id": -1001500000009, "title": "Acme Community", "type": "supergroup", "is_forum": True}


@pytest.fixture
def tg() -> Iterator[TelegramServer]:
    with TelegramServer() as fake:
        yield fake  # type: ignore[misc]


def connector(tg: TelegramServer, now: datetime = NOW, monitor: str = "test", **options: Any) -> TelegramConnector:
    options.setdefault("bot_token", TOKEN)
    return TelegramConnector(
        TelegramOptions(base_url=tg.url, **options),
        ConnectorContext(monitor=monitor, brand_accounts={"telegram": ("acme_support", "700000001")}, now=now),
    )


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def key(message: dict[str, Any]) -> str:
    return f"{message['chat']['id']}:{message['message_id']}"


def test_registry_and_options() -> None:
    assert load("telegram") is TelegramConnector
    options = TelegramOptions(bot_token=TOKEN, chats=["@Acme_Users", -1001500000003, "-1001500000004"])
    assert options.chat_names == {"acme_users"} and options.chat_ids == {"-1001500000003", "-1001500000004"}
    assert TOKEN not in repr(options)
    with pytest.raises(ValidationError, match="looks like"):
        TelegramOptions(bot_token="not-a-token")
    with pytest.raises(ValidationError):
        TelegramOptions(bot_token=TOKEN, updates=["callback_query"])
    with pytest.raises(ValidationError):
        TelegramOptions(bot_token=TOKEN, limit=500)


def test_first_run_maps_messages_replies_and_channel_comments(tg: TelegramServer) -> None:
    tg.post(GROUP, "Acme was down yesterday", sender=ANN, date=T - 2 * 86400)  # older than the lookback
    question = tg.post(GROUP, "Does anyone know how to bulk-edit stages in Acme?", sender=ANN, date=T - 600)
    answer = tg.reply(question, "Actions → Edit stage", sender=AGENT, date=T - 500)
    tg.service(GROUP, BEN, new_chat_members=[BEN])
    tg.post(GROUP, None, sender=BEN, caption_media="sticker")  # media without words: not a mention
    photo = tg.post(GROUP, "Acme export looks like this 👇", sender=BEN, caption_media="photo", date=T - 400)
    post, forward = tg.channel_post("Acme CRM 5.2 release notes", date=T - 300)
    comment = tg.reply(forward, "Is there a way to export to PDF?", sender=BEN, date=T - 200)

    tgc = connector(tg)
    result = tgc.fetch(None)

    assert ids(result.mentions) == [key(question), key(answer), key(photo), key(post), key(comment)]
    first, reply, captioned, channel, under_post = result.mentions
    assert first == Mention(
        source="telegram", external_id=key(question), url=f"https://t.me/acme_users/{question['message_id']}", author="ann_k",
        title="Acme CRM Users", text="Does anyone know how to bulk-edit stages in Acme?", created_at=NOW - timedelta(minutes=10),
        thread_id=key(question), kind="message", brand_replied=True, site="t.me",
    )
    assert first.raw["reply_at"] == "2024-05-01T11:51:40+00:00" and first.raw["reply_by"] == "Jonas (Acme)"
    assert reply.kind == "reply" and reply.author_is_brand and reply.parent_id == key(question) and reply.brand_replied is None
    assert captioned.text == "Acme export looks like this 👇" and captioned.author == "Ben Ito"
    assert channel.kind == "post" and channel.author == "acmecrm_news" and channel.url == f"https://t.me/acmecrm_news/{post['message_id']}"
    assert under_post.kind == "comment" and under_post.parent_id == key(post) == under_post.thread_id
    assert under_post.url == f"https://t.me/c/1500000003/{comment['message_id']}"
    sent = tg.requests[0]
    assert sent.path == f"/bot{TOKEN}/getUpdates" and sent.arg("offset") is None and sent.arg("timeout") == "0"
    assert json.loads(sent.arg("allowed_updates") or "[]") == ["message", "edited_message", "channel_post", "edited_channel_post"]
    assert result.cursor["offset"] == tg.pending[-1]["update_id"] + 1


def test_updates_are_confirmed_only_by_the_next_run(tg: TelegramServer) -> None:
    a = tg.post(GROUP, "Acme one", sender=ANN, date=T - 60)
    tgc = connector(tg)
    first = tgc.fetch(None)
    assert len(tg.pending) == 1  # fetched, not confirmed: the runner has not stored it yet
    # The run crashed before committing: the next run asks with the old (no) cursor and gets it again.
    assert ids(tgc.fetch(None).mentions) == [key(a)]
    b = tg.post(GROUP, "Acme two", sender=BEN, date=T - 30)
    second = tgc.fetch(first.cursor)  # committed: this call confirms update one
    assert ids(second.mentions) == [key(b)] and [u["message"]["text"] for u in tg.pending] == ["Acme two"]
    assert tg.requests[-1].arg("offset") == str(first.cursor["offset"])


def test_idle_poll_is_one_request(tg: TelegramServer) -> None:
    tg.post(GROUP, "Acme", sender=ANN, date=T - 60)
    tgc = connector(tg)
    cursor = tgc.fetch(None).cursor
    idle = tgc.fetch(cursor)
    assert idle.mentions == [] and idle.requests == 1 and idle.cursor["offset"] == cursor["offset"]
    again = tgc.fetch(idle.cursor)
    assert again.requests == 1 and again.cursor == idle.cursor


def test_new_items_across_three_ticks_are_found_exactly_once(tg: TelegramServer) -> None:
    expected = {key(tg.post(GROUP, "Acme hello", sender=ANN, date=T - 100))}
    cursor = None
    seen: list[str] = []
    for tick in range(3):
        now = NOW + timedelta(minutes=2 * tick)
        if tick == 1:
            m = tg.post(GROUP, "Acme refund?", sender=BEN, date=int(now.timestamp()) - 30)
            expected |= {key(m), key(tg.reply(m, "DM us", sender=SUPPORT, date=int(now.timestamp()) - 20))}
        if tick == 2:
            _, forward = tg.channel_post("Acme news", date=int(now.timestamp()) - 15)
            expected |= {key(_), key(tg.reply(forward, "Acme API docs?", sender=ANN, date=int(now.timestamp()) - 5))}
        result = connector(tg, now=now).fetch(cursor)
        seen += ids(result.mentions)
        cursor = json.loads(json.dumps(result.cursor))
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))


def test_a_backlog_is_read_over_several_runs_without_confirming_early(tg: TelegramServer) -> None:
    posted = [key(tg.post(GROUP, f"Acme message {n}", sender=ANN, date=T - 3000 + n)) for n in range(250)]
    cursor = None
    seen: list[str] = []
    runs = []
    for _ in range(4):
        result = connector(tg).fetch(cursor)
        runs.append((len(result.mentions), result.requests, bool(result.notes)))
        seen += ids(result.mentions)
        cursor = result.cursor
    assert runs == [(100, 1, True), (100, 1, True), (50, 1, False), (0, 1, False)]
    assert seen == posted


def test_edits_chats_filter_and_non_latin(tg: TelegramServer) -> None:
    original = tg.post(GROUP, "Acme синхронизация сломалась", sender=ANN, date=T - 300)
    tg.edit(original, "Acme синхронизация сломалась 😡 нужен возврат", date=T - 200)
    tg.post(OTHER, "Acme in another chat", sender=BEN, date=T - 100)
    tgc = connector(tg, chats=["@acme_users"])
    first = tgc.fetch(None)
    (mention,) = first.mentions  # the edit in the same batch replaces the text
    assert mention.external_id == key(original) and mention.text == "Acme синхронизация сломалась 😡 нужен возврат"
    assert mention.raw["edited"] and mention.created_at == NOW - timedelta(seconds=300)
    assert tg.pending and tgc.fetch(first.cursor).mentions == [] and not tg.pending  # the other chat's update is confirmed too
    tg.edit(original, "已解决，谢谢 Acme", date=T - 50)
    (edited,) = tgc.fetch(first.cursor).mentions
    assert edited.external_id == key(original) and edited.text == "已解决，谢谢 Acme"  # same key: the store updates the text
    assert ids(connector(tg, chats=[str(GROUP["id"])]).fetch(None).mentions) == [key(original)]


def test_forum_topics_are_threads_not_replies(tg: TelegramServer) -> None:
    root = tg.post(FORUM, None, sender=SUPPORT, date=T - 900, extra={"forum_topic_created": {"name": "Billing", "icon_color": 7322096}})
    asked = tg.post(FORUM, "Acme charged us twice", sender=ANN, date=T - 600, thread=root["message_id"], reply_to=root)
    (mention,) = connector(tg).fetch(None).mentions
    assert mention.external_id == key(asked) and mention.kind == "message" and mention.parent_id is None
    assert mention.thread_id == f"{FORUM['id']}:{root['message_id']}"
    assert mention.url == f"https://t.me/c/1500000009/{root['message_id']}/{asked['message_id']}"


# -- answered or not ---------------------------------------------------------------------------------------


def test_answered_and_unanswered_threads(tg: TelegramServer) -> None:
    answered = tg.post(GROUP, "How do I export from Acme?", sender=ANN, date=T - 900)
    tg.reply(answered, "Settings → Export", sender=SUPPORT, date=T - 800)
    ignored = tg.post(GROUP, "Acme support never responds", sender=BEN, date=T - 700)
    tg.reply(ignored, "same here", sender=ANN, date=T - 600)  # a customer's reply does not answer it
    tgc = connector(tg)
    first = tgc.fetch(None)
    by_id = {m.external_id: m for m in first.mentions}
    assert by_id[key(answered)].brand_replied is True and by_id[key(ignored)].brand_replied is False
    status = tgc.replies(by_id[key(answered)])
    assert status.answered is True and status.answered_by == "acme_support" and status.answered_at == NOW - timedelta(seconds=800)
    assert status.url and status.url.startswith("https://t.me/acme_users/")
    assert tgc.replies(by_id[key(ignored)]).answered is False

    # The brand answers later: the reply arrives as an update and the next cursor knows it.
    tg.reply(ignored, "Sorry Ben, on it!", sender=AGENT, date=T + 60)
    fresh = connector(tg, now=NOW + timedelta(minutes=5))
    assert fresh.replies(by_id[key(ignored)]).answered is True  # found among the waiting updates, confirming nothing
    assert tg.requests[-1].arg("offset") is None and len(tg.pending) == 5
    second = fresh.fetch(first.cursor)
    assert [m.author for m in second.mentions] == ["Jonas (Acme)"] and second.mentions[0].parent_id == key(ignored)
    later = connector(tg, now=NOW + timedelta(minutes=10))
    later.use_cursor(second.cursor)
    after = later.replies(by_id[key(ignored)])
    assert after.answered is True and after.answered_by == "Jonas (Acme)" and after.answered_at == NOW + timedelta(seconds=60)


def test_replies_is_unknown_beyond_what_the_connector_has_seen(tg: TelegramServer) -> None:
    tg.post(GROUP, "Acme first message the bot saw", sender=ANN, date=T - 100)
    tgc = connector(tg)
    cursor = tgc.fetch(None).cursor
    before_bot = Mention(source="telegram", external_id=f"{GROUP['id']}:1", created_at=NOW - timedelta(days=3))
    assert tgc.replies(before_bot).answered is None  # older than the map: unknown, never "not answered"
    seen = Mention(source="telegram", external_id=f"{GROUP['id']}:134545", created_at=NOW - timedelta(seconds=100))
    blind = connector(tg)  # no cursor: only the waiting updates and Telegram's 24 h retention to go by
    assert blind.replies(seen).answered is False
    assert blind.replies(seen.replace(created_at=NOW - timedelta(days=2))).answered is None
    tg.fail_next(too_many_requests(5))
    assert blind.replies(seen).answered is None  # could not look: unknown
    blind.use_cursor(cursor)
    assert blind.replies(seen).answered is False and blind.replies(before_bot).answered is None


def test_the_reply_checks_of_a_run_find_the_cursor_its_fetch_produced(tg: TelegramServer) -> None:
    question = tg.post(GROUP, "How do I export from Acme?", sender=ANN, date=T - 300)
    tg.reply(question, "Settings → Export", sender=SUPPORT, date=T - 200)
    resources = RunResources()
    context = ConnectorContext(monitor="shared", brand_accounts={"telegram": ("acme_support",)}, now=NOW, resources=resources)
    fetcher = TelegramConnector(TelegramOptions(bot_token=TOKEN, base_url=tg.url), context)
    (asked, _) = fetcher.fetch(None).mentions
    checker = TelegramConnector(TelegramOptions(bot_token=TOKEN, base_url=tg.url), context)  # what the run's re-check builds
    before = len(tg.requests)
    status = checker.replies(asked.replace(created_at=NOW - timedelta(days=3)))
    assert status.answered is True and status.answered_by == "acme_support" and len(tg.requests) == before  # no request needed
    other = ConnectorContext(monitor="other", brand_accounts={"telegram": ("acme_support",)}, now=NOW, resources=resources)
    assert TelegramConnector(TelegramOptions(bot_token=TOKEN, base_url=tg.url), other)._shared() == {}


def test_the_reply_map_is_bounded_and_moves_the_horizon(tg: TelegramServer) -> None:
    questions = [tg.post(GROUP, f"Acme question {n}", sender=ANN, date=T - 1000 + n) for n in range(15)]
    for n, q in enumerate(questions):
        tg.reply(q, f"answer {n}", sender=SUPPORT, date=T - 500 + n)
    tgc = connector(tg, reply_memory=10)
    result = tgc.fetch(None)
    assert len(result.cursor["replies"]) == 10 and result.cursor["horizon"] == questions[4]["date"] + 1
    by_id = {m.external_id: m for m in result.mentions}
    assert all(by_id[key(q)].brand_replied for q in questions)  # known at fetch time
    tg.pending.clear()
    assert tgc.replies(by_id[key(questions[0])]).answered is None  # forgotten: unknown
    assert tgc.replies(by_id[key(questions[14])]).answered is True


def test_a_reply_under_the_discussion_copy_answers_the_channel_post(tg: TelegramServer) -> None:
    post, forward = tg.channel_post("Acme 5.2 is out. Questions? Ask below.", date=T - 500)
    assert forward is not None
    tg.reply(forward, "Ask away!", sender=SUPPORT, date=T - 400)
    tgc = connector(tg)
    result = tgc.fetch(None)
    channel = next(m for m in result.mentions if m.external_id == key(post))
    assert channel.brand_replied is True and tgc.replies(channel).answered is True


# -- failures -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setup, words, status",
    [
        (lambda tg: tg.set_webhook("https://hooks.example/tg"), "a webhook is set for this bot", 409),
        (lambda tg: tg.start_other_poller(), "another program is polling this bot", 409),
        (lambda tg: tg.fail_next(Response.json({"ok": False, "error_code": 502, "description": "Bad Gateway"}, 502)), "server error (502)", 502),
        (lambda tg: tg.fail_next(Response(502, "<html>Bad Gateway</html>", {"Content-Type": "text/html"})), "not a Bot API answer", 502),
        (lambda tg: tg.fail_next(Response(200, b'{"ok": true, "result": [', {"Content-Type": "application/json"})), "not a Bot API answer", 200),
        (lambda tg: tg.fail_next(Response.json({"ok": True, "result": {"update_id": 1}})), "not a list of updates", None),
        (lambda tg: tg.fail_next(Response.json({"ok": False, "error_code": 400, "description": "Bad Request: wrong offset"}, 400)),
         "Telegram refused the request (400) [Telegram: Bad Request: wrong offset]", 400),
    ],
)
def test_error_answers(tg: TelegramServer, setup: Any, words: str, status: int | None) -> None:
    setup(tg)
    with pytest.raises(ConnectorError) as caught:
        connector(tg).fetch({"offset": 5})
    message = str(caught.value)
    assert words in message and "telegram monitor 'test'" in message and caught.value.status == status
    assert TOKEN not in message and TOKEN.split(":")[1] not in message


def test_rate_limit_uses_parameters_retry_after(tg: TelegramServer) -> None:
    m = tg.post(GROUP, "Acme", sender=ANN, date=T - 10)
    tgc = connector(tg)
    tg.fail_next(too_many_requests(17))
    with pytest.raises(ConnectorError) as caught:
        tgc.fetch(None)
    assert caught.value.retry_after == 17 and caught.value.status == 429
    assert ids(tgc.fetch(None).mentions) == [key(m)]  # nothing was confirmed meanwhile


def test_a_rejected_token_never_shows_in_the_message(tg: TelegramServer) -> None:
    wrong = "7000000099:AAwrongwrongwrongwrongwrongwrong0"
    with pytest.raises(ConnectorError) as caught:
        connector(tg, bot_token=wrong).fetch(None)
    message = str(caught.value)
    assert "Telegram rejected the bot token (401 Unauthorized)" in message and "@BotFather" in message
    assert wrong not in message and wrong.split(":")[1] not in message


def test_timeouts_and_refused_connections_are_redacted() -> None:
    silent = socket.socket()  # accepts the connection, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        slow = TelegramConnector(TelegramOptions(bot_token=TOKEN, base_url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2),
                                 ConnectorContext(monitor="test"))
        with pytest.raises(ConnectorError) as caught:
            slow.fetch(None)
    finally:
        silent.close()
    assert "timed out" in str(caught.value) and TOKEN not in str(caught.value) and "/bot<token>/getUpdates" in str(caught.value)
    dead = TelegramConnector(TelegramOptions(bot_token=TOKEN, base_url="http://127.0.0.1:9"), ConnectorContext(monitor="test"))
    with pytest.raises(ConnectorError) as caught:
        dead.fetch(None)
    assert "could not connect" in str(caught.value) and TOKEN.split(":")[1] not in str(caught.value)


# -- demo and pipeline -------------------------------------------------------------------------------------------


def test_demo_source() -> None:
    source = demo_source(time.time())
    assert source.monitor["connector"] == "telegram" and source.monitor["base_url"] == "{url}"
    assert list(source.env.values()) == [TOKEN]
    with source.server:
        tgc = TelegramConnector(TelegramOptions(bot_token=TOKEN, base_url=source.server.url),
                                ConnectorContext(monitor="demo", brand_accounts={"telegram": ("acme_support", "700000001")}))
        mentions = tgc.fetch(None).mentions
    customers = [m for m in mentions if not m.author_is_brand]
    assert {m.brand_replied for m in customers} == {True, False}
    assert any(m.kind == "comment" for m in mentions) and any("синхронизация" in m.text for m in mentions)


RULES = acme_rules({"telegram": ["acme_support", "700000001"]}, complaint='broken OR refund OR "never respond*"', severity=None)


def test_pipeline_three_ticks_alert_each_match_once(tg: TelegramServer, tmp_path: Path) -> None:
    deployed = write_deployment(tmp_path, {
        "tg": {"connector": "telegram", "bot_token": "${EARFUL_TEST_TG_TOKEN}", "chats": ["@acme_users", DISCUSSION["id"]],
               "base_url": tg.url},
    }, RULES, env={"EARFUL_TEST_TG_TOKEN": TOKEN})
    wanted = {key(tg.post(GROUP, "How do I reset my Acme password?", sender=ANN))}
    tg.post(GROUP, "good morning", sender=BEN)
    deployed.tick()
    broken = tg.post(GROUP, "Acme sync is broken again", sender=BEN)
    wanted.add(key(broken))
    tg.reply(broken, "Looking into it", sender=SUPPORT)
    tg.post(OTHER, "Acme refund in a chat we do not watch", sender=BEN)
    deployed.tick()
    _, forward = tg.channel_post("Acme 5.2 is out")
    wanted.add(key(tg.reply(forward, "Does anyone know if Acme has an API for invoices?", sender=ANN)))
    report = deployed.tick()
    assert all(o.ok for o in report.monitors)
    assert sorted(deployed.alerted()) == sorted(f"telegram:{k}" for k in wanted)
    assert deployed.cursor("tg")["offset"] == tg.pending[-1]["update_id"] + 1


def test_a_revoked_token_fails_only_that_monitor(tg: TelegramServer, tmp_path: Path) -> None:
    revoked = "7000000099:AArevokedrevokedrevokedrevoked00"
    deployed = write_deployment(tmp_path, {
        "old-bot": {"connector": "telegram", "bot_token": "${EARFUL_TEST_TG_OLD_TOKEN}", "base_url": tg.url},
        "new-bot": {"connector": "telegram", "bot_token": "${EARFUL_TEST_TG_TOKEN}", "base_url": tg.url},
    }, RULES, env={"EARFUL_TEST_TG_TOKEN": TOKEN, "EARFUL_TEST_TG_OLD_TOKEN": revoked})
    tg.post(GROUP, "Acme refund please", sender=BEN)
    report = deployed.tick()
    outcomes = {o.name: o for o in report.monitors}
    assert outcomes["new-bot"].ok and outcomes["new-bot"].alerts == 1
    error = outcomes["old-bot"].error or ""
    assert not outcomes["old-bot"].ok and error.startswith("monitor 'old-bot' (telegram): telegram monitor 'old-bot': getUpdates")
    assert "Telegram rejected the bot token (401 Unauthorized)" in error and revoked.split(":")[1] not in error
    assert deployed.cursor("old-bot") is None


def test_verify_confirms_nothing_and_catches_a_webhook(tg: TelegramServer) -> None:
    tg.post(GROUP, "Acme", sender=ANN)
    connector(tg).verify()
    assert [r.path.rsplit("/", 1)[-1] for r in tg.requests] == ["getMe", "getWebhookInfo"] and len(tg.pending) == 1
    tg.set_webhook("https://hooks.example/tg")
    with pytest.raises(ConnectorError, match="a webhook is set") as caught:
        connector(tg).verify()
    assert caught.value.status == 409
    with pytest.raises(ConnectorError) as caught:
        connector(tg, bot_token="7000000099:AAnopenopenopenopenopenopenope00").verify()
    assert caught.value.status == 401
