"""The discord connector (REST API v10, bot token) against the fake Discord API."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.discord import (
    DiscordConnector,
    DiscordOptions,
    render_content,
    snowflake_at,
    snowflake_time,
)
from earful.core import Mention
from earful.sandbox.discord import FORUM, DiscordServer, demo_source
from earful.sandbox.server import Response

from .deploy import Deployment, acme_rules, write_deployment
from .support import demo_deployment

TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GxYz12.fake-bot-token-for-tests"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T = NOW.timestamp()
GUILD = "1000000000000000001"
HELP, GENERAL = "1100000000000000001", "1100000000000000002"
BRAND, STAFF_ROLE = "900000000000000001", "900000000000000100"


@pytest.fixture
def discord() -> Iterator[DiscordServer]:
    with DiscordServer(token=TOKEN) as fake:
        fake.add_guild("Acme CRM Community", GUILD)
        fake.add_channel(GUILD, "help", HELP)
        fake.add_channel(GUILD, "general", GENERAL)
        for user_id, name in ((BRAND, "acme_support"), ("1200000000000000011", "dana"), ("1200000000000000012", "tomasz"),
                              ("1200000000000000013", "mia.acme")):
            fake.add_user(name, user_id)
            fake.add_member(GUILD, user_id, [STAFF_ROLE] if name == "mia.acme" else [])
        yield fake  # type: ignore[misc]


DANA, TOMASZ, MIA = "1200000000000000011", "1200000000000000012", "1200000000000000013"


def connector(fake: DiscordServer, *, now: datetime = NOW, brands: tuple[str, ...] = (BRAND,), **options: Any) -> DiscordConnector:
    opts = {"bot_token": TOKEN, "channels": [HELP], "base_url": fake.url, **options}
    context = ConnectorContext(monitor="discord-test", brand_accounts={"discord": brands}, now=now)
    return DiscordConnector(DiscordOptions(**opts), context)


def message_requests(fake: DiscordServer) -> list[dict[str, str]]:
    return [{"channel": r.path.split("/")[4], **{k: v[-1] for k, v in r.query.items()}}
            for r in fake.requests if r.path.endswith("/messages")]


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def test_registry_and_lazy_imports() -> None:
    assert load("discord") is DiscordConnector
    code = "import sys, earful.connectors.discord; print('requests' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_options_validate_and_hide_the_token() -> None:
    opts = DiscordOptions(bot_token="s3cr3t-token", channels=[1100000000000000001, " 1100000000000000002 "], first_run_lookback="6h")
    assert opts.channels == [HELP, GENERAL] and opts.first_run_lookback == timedelta(hours=6)
    assert "s3cr3t" not in repr(opts) and "s3cr3t" not in str(opts.model_dump())
    with pytest.raises(ValidationError, match="not a Discord id"):
        DiscordOptions(bot_token="t", channels=["#help"])
    with pytest.raises(ValidationError, match="'Bot ' prefix"):
        DiscordOptions(bot_token="Bot abc", channels=[HELP])
    with pytest.raises(ValidationError, match="empty"):
        DiscordOptions(bot_token=" ", channels=[HELP])
    with pytest.raises(ValidationError):
        DiscordOptions(bot_token="t", channels=[])
    with pytest.raises(ValidationError):
        DiscordOptions(bot_token="t", channels=[HELP], include_thread=True)  # typo


def test_snowflakes_encode_time() -> None:
    assert snowflake_time("175928847299117063") == datetime(2016, 4, 30, 11, 18, 25, 796000, tzinfo=timezone.utc)
    assert snowflake_time(snowflake_at(NOW)) == NOW


# -- reading ---------------------------------------------------------------------------------------


def test_first_run_reads_the_lookback_window_only(discord: DiscordServer) -> None:
    discord.post(HELP, DANA, "Acme was broken two days ago", at=T - 2 * 86400)
    recent = discord.post(HELP, DANA, "Acme is broken again", at=T - 600)
    result = connector(discord).fetch(None)
    assert ids(result.mentions) == [recent["id"]]
    (sent,) = message_requests(discord)
    assert sent == {"channel": HELP, "after": str(snowflake_at(NOW - timedelta(days=1))), "limit": "100"}
    assert discord.requests[0].headers["authorization"] == f"Bot {TOKEN}"
    assert result.cursor["channels"][HELP] == {"guild": GUILD, "name": "help", "type": 0, "after": recent["id"]}
    assert result.requests == 2  # channel metadata once, then one page


def test_idle_poll_is_one_request_per_channel(discord: DiscordServer) -> None:
    discord.post(HELP, DANA, "Acme is broken", at=T - 60)
    discord.post(GENERAL, DANA, "hello", at=T - 50)
    reader = connector(discord, channels=[HELP, GENERAL])
    cursor = reader.fetch(None).cursor
    before = len(discord.requests)
    idle = reader.fetch(cursor)
    assert idle.mentions == [] and idle.requests == 2 and len(discord.requests) == before + 2
    assert idle.cursor == cursor


def test_new_messages_across_three_ticks_are_returned_exactly_once(discord: DiscordServer) -> None:
    reader = connector(discord)
    seen: list[str] = []
    cursor = None
    expected = []
    for tick in range(3):
        for n in range(tick + 2):
            expected.append(discord.post(HELP, DANA, f"tick {tick} message {n}", at=T - 300 + tick * 60 + n)["id"])
        if tick == 1:
            discord.edit(HELP, expected[0], "edited after it was read")  # an edit is not a new message
        result = reader.fetch(cursor)
        seen += ids(result.mentions)
        cursor = result.cursor
    assert seen == expected and len(set(seen)) == len(seen)


def test_pages_are_sorted_although_discord_answers_newest_first(discord: DiscordServer) -> None:
    made = [discord.post(HELP, DANA, f"message {n}", at=T - 1000 + n)["id"] for n in range(250)]
    result = connector(discord).fetch(None)
    assert ids(result.mentions) == made
    afters = [r["after"] for r in message_requests(discord)]
    assert afters == [str(snowflake_at(NOW - timedelta(days=1))), made[99], made[199]]
    assert result.cursor["channels"][HELP]["after"] == made[-1] and not result.notes
    # the fake really answers newest first, as Discord does even with `after`
    page = discord.handle(type(discord.requests[0])("GET", f"/api/v10/channels/{HELP}/messages",
                                                    {"after": [made[0]], "limit": ["3"]}, {"authorization": f"Bot {TOKEN}"}, b""))
    import json
    assert [m["id"] for m in json.loads(page.body)] == [made[3], made[2], made[1]]


def test_long_outage_is_read_in_later_runs_without_gaps(discord: DiscordServer) -> None:
    discord.post(HELP, DANA, "before the outage", at=T - 5000)
    reader = connector(discord, max_pages=2)
    cursor = reader.fetch(None).cursor
    backlog = [discord.post(HELP, DANA, f"during the outage {n}", at=T - 4000 + n)["id"] for n in range(450)]
    runs, seen = [], []
    for _ in range(4):
        result = reader.fetch(cursor)
        runs.append((len(result.mentions), result.requests, bool(result.notes)))
        seen += ids(result.mentions)
        cursor = result.cursor
    assert runs == [(200, 2, True), (200, 2, True), (50, 1, False), (0, 1, False)]
    assert seen == backlog


def test_a_channel_added_later_starts_at_the_lookback_window(discord: DiscordServer) -> None:
    discord.post(GENERAL, DANA, "old news", at=T - 3 * 86400)
    cursor = connector(discord).fetch(None).cursor
    fresh = discord.post(GENERAL, DANA, "Acme for beginners?", at=T - 30)
    result = connector(discord, channels=[HELP, GENERAL]).fetch(cursor)
    assert ids(result.mentions) == [fresh["id"]]
    assert set(result.cursor["channels"]) == {HELP, GENERAL}


# -- threads -------------------------------------------------------------------------------------------


def test_active_threads_are_read_and_quiet_ones_cost_nothing(discord: DiscordServer) -> None:
    starter = discord.post(HELP, DANA, "Acme export question", at=T - 900)
    thread = discord.add_thread(HELP, "Acme export", owner=DANA, at=T - 890, starter=starter["id"])
    inside = discord.post(thread, TOMASZ, "Same here, export is broken", at=T - 800)
    reader = connector(discord, include_threads=True)
    first = reader.fetch(None)
    assert ids(first.mentions) == [starter["id"], inside["id"]]
    assert first.mentions[1].thread_id == thread and first.mentions[1].raw["parent_channel_id"] == HELP
    assert first.mentions[0].raw["started_thread"] == thread
    idle = reader.fetch(first.cursor)
    assert idle.mentions == [] and idle.requests == 2  # the channel and the guild's active threads; not the thread
    later = discord.post(thread, DANA, "any news?", at=T - 10)
    third = reader.fetch(idle.cursor)
    assert ids(third.mentions) == [later["id"]] and third.requests == 3


def test_a_revived_thread_is_not_read_again(discord: DiscordServer) -> None:
    starter = discord.post(HELP, DANA, "thread starter", at=T - 900)
    thread = discord.add_thread(HELP, "Old thread", owner=DANA, at=T - 890, starter=starter["id"])
    discord.post(thread, TOMASZ, "first answer", at=T - 800)
    reader = connector(discord, include_threads=True)
    cursor = reader.fetch(None).cursor
    discord.archive(thread)
    cursor = reader.fetch(cursor).cursor
    assert thread in cursor["threads"]  # quiet, but remembered while inside the look-back window
    discord.archive(thread, False)
    revived = discord.post(thread, DANA, "back again", at=T - 5)
    assert ids(reader.fetch(cursor).mentions) == [revived["id"]]


def test_forum_posts_need_include_threads_and_map_to_posts(discord: DiscordServer) -> None:
    forum = discord.add_channel(GUILD, "questions", type=FORUM)
    post = discord.add_thread(forum, "How do I export contacts?", owner=DANA, at=T - 600,
                              content="How do I export all contacts from Acme?")
    answer = discord.post(post, BRAND, "Settings → Data → Export", at=T - 500)
    with pytest.raises(ConnectorError, match="include_threads: true"):
        connector(discord, channels=[forum]).fetch(None)
    first, second = connector(discord, channels=[forum], include_threads=True).fetch(None).mentions
    assert first.external_id == post and first.kind == "post" and first.title == "How do I export contacts?"
    assert first.brand_replied is True and first.raw["reply_by"] == "acme_support"
    assert second.external_id == answer["id"] and second.author_is_brand and second.kind == "message"


# -- mapping ------------------------------------------------------------------------------------------------


def test_message_mapping(discord: DiscordServer) -> None:
    made = discord.post(HELP, DANA, "Acme CRM's export is broken, see https://status.acme.example/incidents/42",
                        at=T - 120, attachments=[{"id": "1", "filename": "error.png", "url": "https://cdn.discordapp.com/a/error.png"}])
    (mention,) = connector(discord).fetch(None).mentions
    assert mention == Mention(
        source="discord",
        external_id=made["id"],
        url=f"https://discord.com/channels/{GUILD}/{HELP}/{made['id']}",
        author="dana",
        author_is_brand=False,
        text="Acme CRM's export is broken, see https://status.acme.example/incidents/42",
        created_at=NOW - timedelta(seconds=120),
        thread_id=made["id"],
        kind="message",
        site="discord.com",
        link_url="https://status.acme.example/incidents/42",
    )
    assert mention.raw["attachments"] == ["https://cdn.discordapp.com/a/error.png"] and mention.raw["channel"] == "help"


def test_markup_and_non_latin_text(discord: DiscordServer) -> None:
    kenji = discord.add_user("kenji", "1200000000000000099", global_name="健二")
    discord.post(HELP, kenji, f"<@{BRAND}> Acme の請求書が見つかりません <:sad:1234> <#{GENERAL}> <t:1795000000:R> "
                              "Счёт не приходит 😢", at=T - 60)
    (mention,) = connector(discord, channels=[HELP, GENERAL]).fetch(None).mentions
    assert mention.text == "@acme_support Acme の請求書が見つかりません :sad: #general 2026-11-18 11:06 UTC Счёт не приходит 😢"
    assert mention.author == "kenji"
    assert render_content({"content": "<@&42> <@!77>", "mentions": []}) == "@role @user"
    assert render_content({"content": "", "embeds": [{"title": "Status", "description": "All good"}]}) == "Status\n\nAll good"


def test_replies_deleted_parents_edits_and_system_messages(discord: DiscordServer) -> None:
    parent = discord.post(HELP, DANA, "Is Acme down?", at=T - 300)
    reply = discord.post(HELP, TOMASZ, "yes, broken for me too", at=T - 200, reply_to=parent["id"])
    edited = discord.post(HELP, TOMASZ, "typo", at=T - 150)
    discord.edit(HELP, edited["id"], "Acme refund please", at=T - 100)
    discord.post(HELP, DANA, "", at=T - 90, type=7)  # "dana joined the server"
    discord.delete(HELP, parent["id"])
    got = connector(discord).fetch(None).mentions
    assert ids(got) == [reply["id"], edited["id"]]
    assert got[0].kind == "reply" and got[0].parent_id == parent["id"] and got[0].raw["parent_deleted"] is True
    assert got[0].thread_id is None  # the parent is gone: the root of the conversation is unknown
    assert got[1].text == "Acme refund please" and got[1].raw["edited_at"].startswith("2026-11-20T11:58:20")


def test_brand_by_user_id_and_by_role(discord: DiscordServer) -> None:
    question = discord.post(HELP, DANA, "How do I reset Acme?", at=T - 300)
    discord.post(HELP, MIA, "Settings → Reset", at=T - 200, reply_to=question["id"])
    discord.post(HELP, BRAND, "Announcement", at=T - 100)
    reader = connector(discord, brand_roles=[STAFF_ROLE])
    first = reader.fetch(None)
    assert [m.author_is_brand for m in first.mentions] == [False, True, True]
    assert first.mentions[0].brand_replied is True and first.mentions[0].raw["reply_by"] == "mia.acme"
    lookups = [r.path for r in discord.requests if "/members/" in r.path]
    assert sorted(lookups) == sorted(f"/api/v10/guilds/{GUILD}/members/{u}" for u in (DANA, MIA))  # never for brand ids
    assert first.cursor["roles"][f"{GUILD}/{MIA}"][0] == 1
    discord.post(HELP, MIA, "me again", at=T - 50)
    second = reader.fetch(first.cursor)
    assert second.mentions[0].author_is_brand and second.requests == 1  # the verdict is cached in the cursor
    without_roles = connector(discord).fetch(None)
    assert [m.author_is_brand for m in without_roles.mentions] == [False, False, True, False]


def test_empty_contents_hint_at_the_message_content_intent(discord: DiscordServer) -> None:
    discord.post(HELP, DANA, "", at=T - 100)
    discord.post(HELP, TOMASZ, "", at=T - 90)
    result = connector(discord).fetch(None)
    assert any("Message Content Intent" in note for note in result.notes)


# -- replies() ------------------------------------------------------------------------------------------------


def test_replies_follow_reply_chains_to_a_brand_answer(discord: DiscordServer) -> None:
    answered = discord.post(HELP, DANA, "Acme export broken?", at=T - 900)
    ignored = discord.post(HELP, TOMASZ, "Acme never responds to me", at=T - 850)
    follow_up = discord.post(HELP, TOMASZ, "same here", at=T - 800, reply_to=answered["id"])
    discord.post(HELP, DANA, "unrelated chatter", at=T - 750)
    brand = discord.post(HELP, BRAND, "Fixed now, sorry!", at=T - 700, reply_to=follow_up["id"])
    reader = connector(discord)
    by_id = {m.external_id: m for m in reader.fetch(None).mentions}
    status = reader.replies(by_id[answered["id"]])
    assert status.answered is True and status.answered_by == "acme_support"
    assert status.answered_at == NOW - timedelta(seconds=700)
    assert status.url == f"https://discord.com/channels/{GUILD}/{HELP}/{brand['id']}"
    assert reader.replies(by_id[ignored["id"]]).answered is False
    assert message_requests(discord)[-1]["after"] == ignored["id"]


def test_replies_inside_a_thread_started_from_the_message(discord: DiscordServer) -> None:
    starter = discord.post(HELP, DANA, "How do I import from HubSpot into Acme?", at=T - 900)
    thread = discord.add_thread(HELP, "HubSpot import", owner=DANA, at=T - 899, starter=starter["id"])
    reader = connector(discord, include_threads=True, brand_roles=[STAFF_ROLE])
    mention = reader.fetch(None).mentions[0]
    assert reader.replies(mention).answered is False
    discord.post(thread, MIA, "Use Settings → Import → HubSpot", at=T - 600)
    status = reader.replies(mention)
    assert status.answered is True and status.answered_by == "mia.acme"


def test_replies_are_unknown_when_they_cannot_be_seen(discord: DiscordServer) -> None:
    question = discord.post(HELP, DANA, "Acme?", at=T - 9000)
    for n in range(120):
        discord.post(HELP, TOMASZ, f"chatter {n}", at=T - 8000 + n)
    discord.post(HELP, BRAND, "late answer", at=T - 100, reply_to=question["id"])
    mention = connector(discord).fetch(None).mentions[0]
    assert connector(discord, reply_pages=1).replies(mention).answered is None  # the answer lies beyond the pages read
    assert connector(discord, reply_pages=2).replies(mention).answered is True
    discord.fail_next(Response.json({"message": "Missing Access", "code": 50001}, 403))
    assert connector(discord).replies(mention).answered is None
    assert connector(discord, brands=()).replies(mention).answered is None
    assert connector(discord).replies(Mention(source="discord", external_id="not-an-id")).answered is None


# -- failures ------------------------------------------------------------------------------------------------


def test_rate_limit_uses_the_float_retry_after_of_the_body(discord: DiscordServer) -> None:
    discord.post(HELP, DANA, "Acme", at=T - 60)
    reader = connector(discord)
    cursor = reader.fetch(None).cursor
    discord.rate_limit_next(64.57)
    with pytest.raises(ConnectorError) as caught:
        reader.fetch(cursor)
    assert caught.value.retry_after == pytest.approx(64.57) and caught.value.status == 429
    assert "rate limited (user limit)" in str(caught.value) and "discord monitor 'discord-test'" in str(caught.value)
    discord.rate_limit_next(3.5, global_=True)
    with pytest.raises(ConnectorError, match="global limit") as caught:
        reader.fetch(cursor)
    assert caught.value.retry_after == pytest.approx(3.5)


def test_an_emptied_bucket_is_waited_for_instead_of_hitting_429(discord: DiscordServer) -> None:
    for n in range(150):
        discord.post(HELP, DANA, f"m{n}", at=T - 500 + n)
    headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.3"}
    discord.fail_next(Response.json({"id": HELP, "type": 0, "guild_id": GUILD, "name": "help"}, 200, headers))
    started = time.monotonic()
    result = connector(discord).fetch(None)
    assert len(result.mentions) == 150 and time.monotonic() - started >= 0.3


@pytest.mark.parametrize("response, status, words", [
    (Response.json({"message": "401: Unauthorized", "code": 0}, 401), 401, "Reset Token"),
    (Response.json({"message": "Missing Access", "code": 50001}, 403), 403, "Read Message History"),
    (Response.json({"message": "Unknown Channel", "code": 10003}, 404), 404, "check the ids under `channels`"),
    (Response(502, "<html>502 Bad Gateway</html>", {"Content-Type": "text/html"}), 502, "retries on the next run"),
])
def test_http_errors_name_monitor_source_and_fix(discord: DiscordServer, response: Response, status: int, words: str) -> None:
    discord.fail_next(response)
    with pytest.raises(ConnectorError) as caught:
        connector(discord).fetch(None)
    message = str(caught.value)
    assert caught.value.status == status and words in message
    assert message.startswith("discord monitor 'discord-test': GET ") and TOKEN not in message


def test_a_revoked_token_fails_with_advice_and_never_shows_the_token(discord: DiscordServer) -> None:
    discord.token = "a-new-token-after-reset"
    with pytest.raises(ConnectorError) as caught:
        connector(discord).fetch(None)
    assert caught.value.status == 401 and "'401: Unauthorized'" in str(caught.value) and TOKEN not in str(caught.value)


@pytest.mark.parametrize("response, words", [
    (Response(200, b"<html>cloudflare</html>", {"Content-Type": "text/html"}), "not JSON"),
    (Response.json({"messages": []}), "expected a list of message objects"),
    (Response.json([{"content": "no id"}]), "expected a list of message objects"),
])
def test_malformed_answers_are_connector_errors(discord: DiscordServer, response: Response, words: str) -> None:
    cursor = connector(discord).fetch(None).cursor
    discord.fail_next(response)
    with pytest.raises(ConnectorError, match=words):
        connector(discord).fetch(cursor)


def test_verify_is_cheap_and_names_what_is_missing(discord: DiscordServer) -> None:
    discord.post(HELP, DANA, "Acme", at=T - 60)
    connector(discord, channels=[HELP, GENERAL]).verify()
    assert [r.path.removeprefix("/api/v10") for r in discord.requests] == [
        "/users/@me", f"/channels/{HELP}", f"/channels/{HELP}/messages", f"/channels/{GENERAL}", f"/channels/{GENERAL}/messages"]
    assert discord.requests[2].query["limit"] == ["1"]
    discord.hidden.add(GENERAL)
    with pytest.raises(ConnectorError, match="Read Message History") as caught:
        connector(discord, channels=[HELP, GENERAL]).verify()
    assert caught.value.status == 403
    discord.token = "reset"
    with pytest.raises(ConnectorError) as caught:
        connector(discord).verify()
    assert caught.value.status == 401 and TOKEN not in str(caught.value)


# -- the real pipeline ----------------------------------------------------------------------------------------

def deployment(tmp_path: Path, fake: DiscordServer) -> Deployment:
    return write_deployment(tmp_path, {
        "discord-acme": {"connector": "discord", "schedule": "*/5 * * * *", "bot_token": "${EARFUL_TEST_DISCORD_TOKEN}",
                         "channels": [HELP, GENERAL], "include_threads": True, "base_url": fake.url},
        "discord-other-server": {"connector": "discord", "schedule": "*/5 * * * *", "bot_token": "revoked-token-of-another-bot",
                                 "channels": [GENERAL], "base_url": fake.url},
    }, acme_rules({"discord": [BRAND]}), env={"EARFUL_TEST_DISCORD_TOKEN": TOKEN})


def test_end_to_end_three_runs_alert_each_match_once(tmp_path: Path, discord: DiscordServer, capsys: pytest.CaptureFixture[str]) -> None:
    deployed = deployment(tmp_path, discord)
    now = time.time()
    broken = discord.post(HELP, DANA, "Acme export is broken since 5.2", at=now - 600)
    discord.post(GENERAL, TOMASZ, "lunch anyone?", at=now - 500)
    discord.post(HELP, BRAND, "Acme 5.2.1 fixes the broken export", at=now - 400)
    first = deployed.tick()
    outcome = {o.name: o for o in first.monitors}
    assert outcome["discord-acme"].ok, outcome["discord-acme"].error
    bad = outcome["discord-other-server"]  # the other monitor's revoked token fails that monitor alone
    assert not bad.ok and "monitor 'discord-other-server' (discord)" in (bad.error or "") and "HTTP 401" in (bad.error or "")
    question = discord.post(HELP, TOMASZ, "How do I roll Acme back to 5.1?", at=now - 300, reply_to=broken["id"])
    second = deployed.tick()
    assert second.monitors[0].ok and second.monitors[0].new_items == 1
    thread = discord.add_thread(HELP, "refunds", owner=DANA, at=now - 250, starter=question["id"])
    refund = discord.post(thread, DANA, "Acme refund please", at=now - 200)
    deployed.tick()
    assert sorted(deployed.alerted("discord", kind=None)) == sorted(f"discord:{m['id']}" for m in (broken, question, refund))
    discord.rate_limit_next(30.0, token=TOKEN)  # not the other monitor, which may run alongside
    assert deployed.failing_tick("discord-acme", "429").get("defer_until")
    assert TOKEN not in capsys.readouterr().out


def test_demo_source_alerts_the_right_items_once(tmp_path: Path) -> None:
    source = demo_source(time.time())
    with demo_deployment(tmp_path, source) as deployed:
        first = deployed.tick()
        assert first.monitors[0].ok, first.monitors[0].error
        alerted, stored = deployed.stored()
        texts = {item.text[:40]: destination for item, destination in alerted}
        items = {m.key: m for m in stored}
        assert len(texts) == 7 and list(texts.values()).count("marketing") == 1
        assert not any(t.startswith(("Acme CRM 5.2 is out", "Anyone up for")) for t in texts)  # the brand's post, chatter
        assert deployed.tick().monitors[0].alerts == 0
        reader = DiscordConnector(deployed.config.monitors[source.name].options,
                                  ConnectorContext(monitor=source.name, brand_accounts={"discord": (BRAND,)}))
        by_text = {m.text[:20]: m for m in items.values()}
        assert reader.replies(by_text["Acme sync with Outlo"]).answered is True  # the brand's bot replied
        assert reader.replies(by_text["How do I export all "]).answered is True  # staff (role) answered in the forum post
        assert reader.replies(by_text["Opened a ticket with"]).answered is False
