"""The slack destination against the fake Slack (sandbox/slack.py).

Every test talks HTTP to a local SlackServer through the real slack_sdk
client, so request encoding, error bodies at HTTP 200, 429 handling and
pagination are exercised as on the real API.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from pydantic import ValidationError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.models.blocks import Block

from earful.alerts import load
from earful.alerts.base import DeliveryError
from earful.alerts.slack import EVENT_TYPE, SlackDestination, SlackOptions, fit
from earful.core import Alert, Match, Mention
from earful.sandbox.slack import DEFAULT_TOKEN, SlackServer

CHANNEL = "C0123456789"
HOSTILE = "<!channel> <!here> <!everyone> <@U123> <#C123> <!subteam^S1> <http://evil.example|click here> & <b>"


def mention(n: int = 1, **changes: Any) -> Mention:
    base = Mention(
        source="reddit",
        external_id=f"t3_{n}",
        url=f"https://www.reddit.com/r/crm/comments/{n}/acme/",
        author=f"customer{n}",
        title="Acme support never responds",
        text="I asked three times on Facebook and nobody answered. Is Acme still alive?",
        created_at=datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc),
        site="r/crm",
    )
    return base.replace(**changes)


def alert(*mentions: Mention, severity: str = "high", labels: tuple[str, ...] = ("complaint", "question"), key: str | None = None) -> Alert:
    mentions = mentions or (mention(),)
    first = mentions[0]
    return Alert(
        key=key or first.key,
        cluster=f"cluster-{first.key}",
        destination="support",
        monitor="reddit-acme",
        mentions=tuple(mentions),
        matches=(Match(mention_key=first.key, rule_id="complaint", pack="acme", labels=labels, severity=severity),),
    )


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer() as server:
        yield server  # type: ignore[misc]


def destination(server: SlackServer, **options: Any) -> SlackDestination:
    settings: dict[str, Any] = {"token": DEFAULT_TOKEN, "channel": CHANNEL, "base_url": server.api_url, "min_interval": 0, **options}
    return SlackDestination("support", SlackOptions(**settings))


def strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def all_text(message: dict[str, Any]) -> str:
    return "\n".join([message["text"], *strings(message["blocks"])])


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record slack_sdk's rate-limit waits instead of sleeping through them."""
    waits: list[float] = []
    monkeypatch.setattr(builtin_handlers.time, "sleep", waits.append)
    return waits


# -- message shape --------------------------------------------------------------


def test_registry_loads_the_slack_destination() -> None:
    assert load("slack") is SlackDestination


def test_message_shape(slack: SlackServer) -> None:
    review = mention(source="g2", external_id="r-9", kind="review", rating=2, site="Acme CRM", url="https://www.g2.com/products/acme/reviews/r-9", author="acme", author_is_brand=True)
    remote_id = destination(slack).deliver(alert(review))

    [message] = slack.messages(CHANNEL)
    assert remote_id == f"{CHANNEL}:{message['ts']}"
    assert re.fullmatch(r"\d{10}\.\d{6}", message["ts"])
    for block in message["blocks"]:
        Block.parse(block).to_dict()  # raises SlackObjectFormationError when invalid
    assert message["metadata"] == {
        "event_type": EVENT_TYPE,
        "event_payload": {"key": "g2:r-9", "cluster": "cluster-g2:r-9", "monitor": "reddit-acme", "rules": ["acme/complaint"]},
    }
    text = all_text(message)
    for expected in ("G2", "Acme CRM", "★★☆☆☆ 2/5", "review", "High", "🟠", "complaint, question", "acme/complaint", "reddit-acme", "brand account"):
        assert expected in text
    assert "<https://www.g2.com/products/acme/reviews/r-9|" in text
    assert message["text"].startswith("🟠 High · complaint, question · G2")
    assert "Acme support never responds" in message["text"]
    # chat.postMessage went out as JSON, with unfurling and mention parsing off
    body = json.loads(slack.requests_to("chat.postMessage")[0].body)
    assert body["unfurl_links"] is False and body["link_names"] is False and body["parse"] == "none"


def test_cluster_lists_every_place(slack: SlackServer) -> None:
    places = (
        mention(1),
        mention(2, source="hackernews", url="https://news.ycombinator.com/item?id=2", site=""),
        mention(3, source="x", url="https://x.com/someone/status/3", site=""),
    )
    destination(slack).deliver(alert(*places))

    [message] = slack.messages(CHANNEL)
    text = all_text(message)
    assert "Seen in 3 places" in text
    for place in places:
        assert f"<{place.url}|" in text
    assert "Hacker News" in text and "X" in text


def test_single_mention_has_no_places_list(slack: SlackServer) -> None:
    destination(slack).deliver(alert())
    assert "Seen in" not in all_text(slack.messages(CHANNEL)[0])


def test_huge_cluster_stays_within_block_limits(slack: SlackServer) -> None:
    places = [mention(n, url=f"https://www.reddit.com/r/crm/comments/{n}/{'x' * 200}/") for n in range(400)]
    destination(slack).deliver(alert(*places))

    [message] = slack.messages(CHANNEL)  # the fake checks every Block Kit limit
    assert len(message["blocks"]) <= 50
    assert "Seen in 400 places" in all_text(message)


# -- escaping and trimming -------------------------------------------------------


def test_hostile_text_cannot_ping_link_or_spoof(slack: SlackServer) -> None:
    evil = mention(
        title=f"Title {HOSTILE}",
        text=f"Body {HOSTILE}\n>fake quote\n*Severity:* low",
        author=f"bob {HOSTILE}",
        site=f"r/{HOSTILE}",
        url="https://example.com/a>b|<!here>?q=1&r=2",
    )
    cluster = (evil, mention(2, url="javascript:alert(1)", author=HOSTILE))
    destination(slack).deliver(alert(*cluster))

    [message] = slack.messages(CHANNEL)
    for text in [message["text"], *strings(message["blocks"])]:
        assert "<!" not in text and "<@" not in text and "<#" not in text, text
        assert "<http://evil" not in text and "<javascript:" not in text, text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text  # every & is an entity
    everything = all_text(message)
    assert "&lt;!channel&gt;" in everything and "&lt;@U123&gt;" in everything
    assert "&lt;http://evil.example|click here&gt; &amp; &lt;b&gt;" in everything
    assert "<https://example.com/a%3Eb%7C%3C!here%3E?q=1&amp;r=2|" in everything
    assert "\n>fake" not in everything  # user text stays on one line inside its quote
    assert all(block.get("text", {}).get("verbatim", True) for block in message["blocks"] if block["type"] == "section")


def test_long_text_is_trimmed_on_entity_boundaries(slack: SlackServer) -> None:
    long = mention(title="&" * 400, text="a&b<c>d " * 3000, author="&" * 5000)
    destination(slack).deliver(alert(long, labels=tuple(f"label-{n}" for n in range(60))))

    [message] = slack.messages(CHANNEL)
    assert len(message["text"]) <= 4000
    for block in message["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        for text in [block.get("text", {}).get("text", ""), *(f["text"] for f in block.get("fields", []))]:
            assert len(text) <= 3000
            assert not re.search(r"&(?!amp;|lt;|gt;)", text), text[-30:]
    assert "…" in message["text"]


@pytest.mark.parametrize("limit", [1, 2, 5, 6, 7, 50, 3000])
def test_fit_never_splits_an_entity(limit: int) -> None:
    trimmed = fit("&<>" * 2000, limit)
    assert len(trimmed) <= limit
    assert not re.search(r"&(?!amp;|lt;|gt;)", trimmed)


def test_mention_on_severity_pings_the_configured_group(slack: SlackServer) -> None:
    sink = destination(slack, mention="<!subteam^S0123ABCD>", mention_on=["high", "critical"])
    sink.deliver(alert(severity="critical"))
    sink.deliver(alert(mention(2), severity="low"))

    urgent, calm = slack.messages(CHANNEL)
    assert urgent["text"].startswith("<!subteam^S0123ABCD> ")
    assert "<!subteam^S0123ABCD>" in list(strings(urgent["blocks"]))
    assert "subteam" not in all_text(calm)


# -- rate limits and errors ------------------------------------------------------


def test_rate_limited_twice_then_delivered_once(slack: SlackServer, no_sleep: list[float]) -> None:
    slack.rate_limit_next(2, retry_after=1)
    destination(slack, max_retries=2).deliver(alert())

    assert len(slack.messages(CHANNEL)) == 1
    assert len(slack.requests_to("chat.postMessage")) == 3
    assert len(no_sleep) == 2 and all(wait >= 1 for wait in no_sleep)


def test_rate_limit_beyond_retries_raises_retry_after_then_delivers(slack: SlackServer, no_sleep: list[float]) -> None:
    sink = destination(slack, max_retries=1)
    slack.rate_limit_next(2, retry_after=7)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    assert raised.value.retry_after == 7
    assert not raised.value.permanent
    assert slack.messages(CHANNEL) == []

    sink.deliver(alert())
    assert slack.posted_keys() == ["reddit:t3_1"]


def test_fake_rate_limit_has_slack_wire_format(slack: SlackServer) -> None:
    import urllib.error
    import urllib.request

    slack.rate_limit_next(1, retry_after=3)
    request = urllib.request.Request(slack.api_url + "auth.test", data=b"", headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 429
    assert raised.value.headers["Retry-After"] == "3"
    assert json.loads(raised.value.read()) == {"ok": False, "error": "ratelimited"}
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["ok"] is True


def test_invalid_token_is_permanent_and_never_leaks(slack: SlackServer) -> None:
    secret = "xoxb-0000-super-secret-token"
    sink = destination(slack, token=secret)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())

    error = raised.value
    assert error.permanent
    message = str(error)
    assert "invalid_auth" in message and "'support'" in message and CHANNEL in message
    assert secret not in message and secret not in repr(error)
    assert secret not in repr(sink.options) and secret not in str(sink.options)
    assert secret not in str(sink.options.model_dump())
    assert slack.messages(CHANNEL) == []


@pytest.mark.parametrize(
    ("channel", "setup", "code"),
    [
        ("C0NOSUCHCH1", None, "channel_not_found"),
        ("#nowhere", None, "channel_not_found"),
        ("C0ARCHIVED1", {"archived": True}, "is_archived"),
        ("C0NOTJOINED", {"member": False}, "not_in_channel"),
    ],
)
def test_channel_errors_are_permanent(slack: SlackServer, channel: str, setup: dict[str, bool] | None, code: str) -> None:
    if setup is not None:
        slack.add_channel("other", channel, **setup)
    with pytest.raises(DeliveryError) as raised:
        destination(slack, channel=channel).deliver(alert())
    assert raised.value.permanent
    assert code in str(raised.value) and channel in str(raised.value) and "support" in str(raised.value)


def test_server_and_connection_errors_are_transient(slack: SlackServer) -> None:
    from earful.sandbox.server import Response

    slack.fail_next(Response.json({"ok": False, "error": "internal_error"}, 500))
    with pytest.raises(DeliveryError) as raised:
        destination(slack).deliver(alert())
    assert not raised.value.permanent

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = SlackDestination("support", SlackOptions(token=DEFAULT_TOKEN, channel=CHANNEL, base_url=f"http://127.0.0.1:{port}/api", min_interval=0, timeout=2))
    with pytest.raises(DeliveryError) as raised:
        closed.deliver(alert())
    assert not raised.value.permanent
    assert DEFAULT_TOKEN not in str(raised.value)


# -- reconciliation and updates --------------------------------------------------


def test_find_delivered_across_history_pages(slack: SlackServer) -> None:
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    target = alert(key="reddit:t3_1")
    remote_id = destination(slack).deliver(target)
    destination(slack).deliver(alert(mention(2)))
    for n in range(450):
        slack.add_message(CHANNEL, f"chatter {n}")

    assert destination(slack).find_delivered(target, since) == remote_id
    calls = slack.requests_to("conversations.history")
    assert len(calls) == 3  # 452 messages, 200 a page, newest first
    assert all("include_all_metadata=1" in call.body.decode() for call in calls)


def test_find_delivered_returns_none_when_absent(slack: SlackServer) -> None:
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    sink = destination(slack)
    sink.deliver(alert(mention(2)))
    assert sink.find_delivered(alert(), since) is None
    # a message older than `since` is not looked at
    assert sink.find_delivered(alert(mention(2)), datetime.now(timezone.utc) + timedelta(hours=1)) is None


def test_find_delivered_without_history_scope_is_not_searchable(slack: SlackServer) -> None:
    from earful.sandbox.server import Response

    slack.fail_next(Response.json({"ok": False, "error": "missing_scope", "needed": "channels:history", "provided": "chat:write"}))
    assert destination(slack).find_delivered(alert(), datetime.now(timezone.utc)) is None


def test_find_delivered_resolves_a_channel_name(slack: SlackServer) -> None:
    for n in range(5):
        slack.add_channel(f"noise-{n}")
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    remote_id = destination(slack, channel="#support").deliver(alert())

    fresh = destination(slack, channel="#support")  # a new process: knows only the name
    assert fresh.find_delivered(alert(), since) == remote_id
    assert len(slack.requests_to("conversations.list")) == 1
    fresh.find_delivered(alert(), since)
    assert len(slack.requests_to("conversations.list")) == 1  # resolved once


def test_update_edits_the_message_in_place(slack: SlackServer) -> None:
    sink = destination(slack)
    target = alert(mention(1, author="<!channel>"))
    remote_id = sink.deliver(target)

    assert sink.update(remote_id, target, "answered by @acme after 37 min") == remote_id
    [message] = slack.messages(CHANNEL)
    assert "edited" in message
    assert "answered by @acme after 37 min" in message["text"]
    assert any("answered by @acme after 37 min" in s for s in strings(message["blocks"]))
    assert message["metadata"]["event_payload"]["key"] == target.key
    assert "<!" not in all_text(message)


def test_update_of_a_missing_message_is_permanent(slack: SlackServer) -> None:
    with pytest.raises(DeliveryError) as raised:
        destination(slack).update(f"{CHANNEL}:1700000000.000100", alert(), "note")
    assert raised.value.permanent and "message_not_found" in str(raised.value)


# -- pacing, options, import cost ------------------------------------------------


def test_min_interval_spaces_posts_to_one_channel(slack: SlackServer) -> None:
    sink = destination(slack, min_interval=0.2)
    started = time.monotonic()
    for n in range(3):
        sink.deliver(alert(mention(n)))
    assert time.monotonic() - started >= 0.4
    times = [float(m["ts"]) for m in slack.messages(CHANNEL)]
    assert all(later - earlier >= 0.19 for earlier, later in zip(times, times[1:]))


def test_options_normalise_and_validate() -> None:
    options = SlackOptions(token="t", channel="support", base_url="http://127.0.0.1:1/api")
    assert options.base_url == "http://127.0.0.1:1/api/"
    assert options.channel == "#support"
    assert options.min_interval == 1.0 and options.max_retries == 2
    for bad in ({"channel": "Not A Channel"}, {"channel": CHANNEL, "tokn": "x"}, {"channel": CHANNEL, "mention_on": ["high"]}, {"channel": CHANNEL, "mention": "@team"}):
        with pytest.raises(ValidationError) as raised:
            SlackOptions(**{"token": "xoxb-secret-value", **bad})
        assert "xoxb-secret-value" not in str(raised.value)
    with pytest.raises(ValidationError):
        SlackOptions(channel=CHANNEL)  # token is required


def test_importing_the_module_does_not_import_slack_sdk() -> None:
    code = "import sys, earful.alerts.slack; print('slack_sdk' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- the fake itself -------------------------------------------------------------


def test_fake_history_hides_metadata_unless_asked_and_pages(slack: SlackServer) -> None:
    from slack_sdk import WebClient

    client = WebClient(token=DEFAULT_TOKEN, base_url=slack.api_url)
    for n in range(5):
        slack.add_message(CHANNEL, f"m{n}", metadata={"event_type": "x", "event_payload": {"n": n}})

    plain = client.conversations_history(channel=CHANNEL, limit=2)
    assert [m["text"] for m in plain["messages"]] == ["m4", "m3"]
    assert "metadata" not in plain["messages"][0]
    assert plain["has_more"] is True
    cursor = plain["response_metadata"]["next_cursor"]

    rest = client.conversations_history(channel=CHANNEL, limit=10, cursor=cursor, include_all_metadata=True)
    assert [m["text"] for m in rest["messages"]] == ["m2", "m1", "m0"]
    assert rest["messages"][0]["metadata"]["event_payload"] == {"n": 2}
    assert rest["response_metadata"]["next_cursor"] == ""
    assert client.auth_test()["bot_id"] == slack.bot_id


def test_fake_rejects_blocks_slack_would_reject(slack: SlackServer) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=DEFAULT_TOKEN, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=CHANNEL, text="x", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 3001}}])
    assert raised.value.response["error"] == "invalid_blocks"
    assert "json-pointer:/blocks/0/text/text" in raised.value.response["response_metadata"]["messages"][0]
    assert raised.value.response.status_code == 200
