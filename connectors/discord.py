"""Discord: messages in watched channels and their active threads, read by a bot through REST API v10.

What the operator sets up (README material):

1. https://discord.com/developers/applications -> New Application -> Bot.
   "Reset Token" shows the bot token once; put it in the environment
   (`DISCORD_BOT_TOKEN`) and reference it as `bot_token: ${DISCORD_BOT_TOKEN}`.
   It is sent as `Authorization: Bot <token>` and never logged.
2. Same page, "Privileged Gateway Intents": switch on **Message Content
   Intent**. Without it Discord returns messages with an empty `content`
   (earful then notes that every message it read was empty). No other
   intent is needed: `brand_roles` reads one member at a time (Get Guild
   Member), which the Server Members Intent does not restrict.
3. Invite the bot (OAuth2 -> URL Generator, scope `bot`) with the
   permissions **View Channels** and **Read Message History** on the
   watched channels (and their threads). It needs nothing else: earful never
   posts to Discord.
4. Channel ids: Discord settings -> Advanced -> Developer Mode, then
   right-click a channel -> "Copy Channel ID". List them under `channels`.
   The brand's own accounts are user ids in the rule pack
   (`accounts: {discord: ["9000..."]}`); `brand_roles` adds everybody
   holding one of those role ids (a "Support" or "Staff" role).

Reading. Discord has no search for bots, so every message of a watched
channel is read, oldest unread first: `GET /channels/{id}/messages?after=
<last id>&limit=100` answers the 100 messages right after `after`, newest
first within the page, so each page is sorted and the next page starts
after its newest id, until a page is short. A snowflake id encodes its
creation time, so the very first run (and a channel or thread seen for the
first time) starts at the snowflake of `now - first_run_lookback` instead of
reading the whole history. `max_pages` caps the pages per channel per run;
what is left is read on the next run from where this one stopped, so
nothing falls in a gap. With `include_threads`, the guild's active threads
(`GET /guilds/{guild}/threads/active`; the per-channel variant was removed in
v10) whose parent is a watched channel are read the same way, but only when
their `last_message_id` is past the thread's cursor: an idle thread costs no
request. Forum and media channels hold only threads, so they need
`include_threads: true`.

Cursor: `{"channels": {id: {"after", "guild", "name", "type"}}, "threads":
{id: {"after", "guild", "parent", "name"}}, "roles": {"guild/user": [0|1,
checked_at]}}`. Channel metadata is fetched once (`GET /channels/{id}`) and
kept; thread cursors are kept after a thread goes quiet until they fall out
of the look-back window, so a revived thread is never re-read. An idle poll
costs one request per watched channel, plus one per guild with
`include_threads`.

Brand detection. A message's author is the brand when their user id is in
the rule pack's `discord` accounts, or, with `brand_roles`, when their guild
member roles include one of those ids. REST messages carry no `member`
(only gateway events do), so roles come from `GET /guilds/{g}/members/{u}`,
once per author and day (cached in the cursor).

Replies. A reply is a message of type 19 whose `message_reference` names
its parent (`referenced_message` is inlined, `null` when the parent was
deleted). Discord has no "replies of a message" endpoint, so `replies()`
reads the channel after the mention (at most `reply_pages` pages) and
follows reply chains from the mention: a brand message replying to the
mention, or to a reply below it, answers it; in a thread the mention
started (a forum post, or a thread opened on the message), any brand
message in the thread does. When the pages read end before the channel
does, the answer is "unknown", not "no".

Rate limits. A 429 carries `retry_after` (float seconds) in the body,
`Retry-After` and `X-RateLimit-*` headers and a `global` flag; it becomes a
ConnectorError with that `retry_after`. When a response says the bucket is
empty (`X-RateLimit-Remaining: 0`) and it resets within a few seconds, the
next request waits for it instead of provoking a 429.

`earful check --online` (`verify`) costs `GET /users/@me` plus one small
request per watched channel, and says which channel the bot cannot read.

Not covered: a message edited after it was read is not read again; a
thread archived by hand within one poll interval of a new message in it is
missed (auto-archiving takes at least an hour of silence).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from pydantic import Field, SecretStr, field_validator

from earful.core import Mention, parse_time
from earful.core.durations import Duration
from earful.core.normalize import url_host

from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
    ReplyStatus,
)
from .http import HttpClient, error_for_status, redact_url, split_url
from .paging import Page, page_forward

DEFAULT_BASE = "https://discord.com/api/v10"
API_SUFFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
PAGE = 100
MESSAGE_URL = "https://discord.com/channels/{guild}/{channel}/{message}"
DEFAULT, REPLY = 0, 19  # the message types people write; the others are system messages (joins, pins ...)
THREAD_TYPES = {10, 11, 12}  # announcement, public and private threads
THREAD_HOLDERS = {15, 16}  # forum and media channels: messages live in their threads only
ROLE_TTL = 86_400  # seconds a member's brand-role verdict is trusted
ROLE_CACHE_MAX = 2_000
MAX_PACING_WAIT = 5.0  # seconds we are willing to wait for an emptied rate-limit bucket
_ERROR_STATUSES = tuple(range(400, 600))

_SNOWFLAKE = re.compile(r"^\d{1,20}$")


_HINTS = {
    401: ("the bot token is invalid or was reset; create a new one in the Developer Portal "
          "(Bot -> Reset Token) and update the variable behind `bot_token`"),
    403: ("the bot cannot read there; invite it to the server and give it View Channels and "
          "Read Message History on the watched channels"),
    404: "no such channel or guild, or the bot is not a member of that server; check the ids under `channels`",
    500: "Discord had a server error; earful retries on the next run",
}


def snowflake_at(when: datetime) -> int:
    """The smallest snowflake created at `when`: usable as `after=` to read from that moment on."""
    return max(0, int(when.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22


def snowflake_time(snowflake: int | str) -> datetime:
    return datetime.fromtimestamp(((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000, timezone.utc)


class DiscordOptions(ConnectorOptions):
    bot_token: SecretStr = Field(description="Bot token from the Developer Portal, e.g. ${DISCORD_BOT_TOKEN}.")
    channels: list[str] = Field(min_length=1, description="Ids of the channels to watch (Developer Mode -> Copy Channel ID).")
    include_threads: bool = Field(default=False, description="Also read the active threads (and forum posts) of those channels.")
    brand_roles: list[str] = Field(default_factory=list, description="Role ids whose members speak for the brand.")
    first_run_lookback: Duration = Field(
        default=timedelta(days=1), gt=timedelta(0), description="History read on the first run, and for new channels or threads."
    )
    max_pages: int = Field(default=10, ge=1, le=1000, description="Pages of 100 messages per channel or thread per run.")
    reply_pages: int = Field(default=3, ge=1, le=50, description="Pages of 100 messages after a mention that replies() reads.")

    @field_validator("bot_token")
    @classmethod
    def _token_present(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value().strip()
        if not secret:
            raise ValueError("the Discord bot token is empty; is the environment variable set?")
        if secret.lower().startswith("bot "):
            raise ValueError("give the bare token; earful adds the 'Bot ' prefix itself")
        return value

    @field_validator("channels", "brand_roles", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        # YAML reads unquoted ids as numbers; a number that went through a float has lost digits.
        if any(isinstance(v, (float, bool)) for v in value):
            raise ValueError("write Discord ids as whole numbers or in quotes")
        ids = [str(v).strip() for v in value]
        bad = [v for v in ids if not _SNOWFLAKE.match(v)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a Discord id (a number like 1098765432109876543)")
        return list(dict.fromkeys(ids))



@dataclass
class _Place:
    """Where a message was read: a channel, or a thread of one."""

    channel: str
    guild: str
    name: str
    thread_of: str | None = None  # the parent channel when `channel` is a thread
    parent_type: int | None = None  # the parent channel's type (forum posts are threads of type-15 channels)

    @property
    def is_thread(self) -> bool:
        return self.thread_of is not None


class DiscordConnector(Connector):
    name = "discord"
    sees_replies = True
    pushes_query = False
    Options = DiscordOptions
    options: DiscordOptions

    def __init__(self, options: DiscordOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.http = HttpClient(options, f"discord monitor {context.monitor!r}")
        base = (options.base_url or DEFAULT_BASE).rstrip("/")
        self.api = base if base.endswith(API_SUFFIX) else base + API_SUFFIX
        self._roles: dict[str, list[Any]] = {}
        self._wait_until = 0.0

    # -- HTTP ------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        delay = self._wait_until - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        url = self.api + path
        headers = {"Authorization": f"Bot {self.options.bot_token.get_secret_value()}", "Accept": "application/json"}
        response = self.http.get(url, params=params, headers=headers, accept=_ERROR_STATUSES)
        self._pace(response.headers)
        if response.status_code >= 400:
            raise self._error(response)
        try:
            return response.json()
        except ValueError:
            ctype = response.headers.get("Content-Type", "no content-type")
            raise ConnectorError(
                f"{self.http.label}: {redact_url(response.url)} answered {response.status_code} but the body is not JSON "
                f"({ctype}, {len(response.content)} bytes); a proxy may be in the way or the API changed",
                status=response.status_code,
            ) from None

    def _pace(self, headers: Mapping[str, str]) -> None:
        """Wait before the next request when this one emptied its bucket and it refills soon."""
        if headers.get("X-RateLimit-Remaining") == "0":
            try:
                reset_after = float(headers.get("X-RateLimit-Reset-After") or "")
            except ValueError:
                return
            if 0 < reset_after <= MAX_PACING_WAIT:
                self._wait_until = time.monotonic() + reset_after

    def _error(self, response: Any) -> ConnectorError:
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        said, code = str(body.get("message") or "")[:200], body.get("code")
        hints = dict(_HINTS)
        retry_after = None
        if response.status_code == 429:  # the body's float `retry_after` is more precise than the header
            retry_after = _float(body.get("retry_after"))
            scope = "global" if body.get("global") or response.headers.get("X-RateLimit-Global") else (
                response.headers.get("X-RateLimit-Scope") or "route")
            hints[429] = f"rate limited ({scope} limit); earful comes back in {{retry_after}}s"
            if scope == "global":
                hints[429] += " (a global limit counts every request of this bot token: other programs may share it)"
        detail = None
        if said:  # Discord's own words, e.g. 'Missing Access' with its JSON error code 50001
            detail = f"{said!r}, code {code}" if code not in (None, 0) else repr(said)
        return error_for_status(self.http.label, "GET", response.url, response.status_code, None, response.headers,
                                detail=detail, hints=hints, retry_after=retry_after)

    # -- fetch -------------------------------------------------------------
    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        cursor = cursor or {}
        start = self.http.count
        now = self.context.current_time()
        floor = snowflake_at(now - self.options.first_run_lookback)
        self._roles = {k: v for k, v in (cursor.get("roles") or {}).items() if now.timestamp() - v[1] < ROLE_TTL}
        found: list[tuple[dict[str, Any], _Place]] = []
        notes: list[str] = []
        channels = self._read_channels(cursor.get("channels") or {}, floor, found, notes)
        threads: dict[str, dict[str, Any]] = {}
        if self.options.include_threads:
            threads = self._read_threads(channels, cursor.get("threads") or {}, floor, found, notes)
        mentions = self._mentions(found, {**{k: v.get("name", "") for k, v in channels.items()},
                                          **{k: v.get("name", "") for k, v in threads.items()}})
        notes += _empty_content_note(found)
        roles = dict(sorted(self._roles.items(), key=lambda kv: -kv[1][1])[:ROLE_CACHE_MAX])
        next_cursor: dict[str, Any] = {"channels": channels, "threads": threads}
        if roles:
            next_cursor["roles"] = roles
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.http.count - start, notes=notes)

    def _read_channels(self, old: Mapping[str, Any], floor: int, found: list[tuple[dict[str, Any], _Place]],
                       notes: list[str]) -> dict[str, dict[str, Any]]:
        """New messages of every watched channel (forum channels hold threads only); their next cursors."""
        channels: dict[str, dict[str, Any]] = {}
        for channel_id in self.options.channels:
            info = dict(old.get(channel_id) or self._channel_info(channel_id))
            info.setdefault("after", str(floor))  # a channel read for the first time starts at the look-back window
            channels[channel_id] = info
            if info.get("type") in THREAD_HOLDERS:
                if not self.options.include_threads:
                    raise ConnectorError(
                        f"{self.http.label}: channel {channel_id} (#{info.get('name')}) is a forum or media channel whose "
                        "posts are threads; set `include_threads: true` to read them"
                    )
                continue
            place = _Place(channel_id, str(info.get("guild") or ""), str(info.get("name") or ""))
            messages, info["after"], done = self._read(channel_id, int(info["after"]))
            found.extend((m, place) for m in messages)
            if not done:
                notes.append(f"Discord channel #{place.name} ({channel_id}): more messages left, read on the next run")
        return channels

    def _read_threads(self, channels: Mapping[str, Mapping[str, Any]], old: Mapping[str, Any], floor: int,
                      found: list[tuple[dict[str, Any], _Place]], notes: list[str]) -> dict[str, dict[str, Any]]:
        """New messages of the active threads of watched channels (an idle thread costs no request); thread cursors."""
        threads: dict[str, dict[str, Any]] = {}
        for thread in self._active_threads(channels):
            thread_id = str(thread["id"])
            parent = channels[str(thread["parent_id"])]
            known = old.get(thread_id)
            after = int(known["after"]) if known else max(floor, int(thread_id) - 1)
            state = {"after": str(after), "guild": str(thread.get("guild_id") or parent.get("guild") or ""),
                     "parent": str(thread["parent_id"]), "name": str(thread.get("name") or "")}
            threads[thread_id] = state
            last = thread.get("last_message_id")
            if last is not None and _SNOWFLAKE.match(str(last)) and int(last) <= after:
                continue  # nothing new in this thread: no request
            place = _Place(thread_id, state["guild"], state["name"], thread_of=state["parent"], parent_type=parent.get("type"))
            messages, state["after"], done = self._read(thread_id, after)
            found.extend((m, place) for m in messages)
            if not done:
                notes.append(f"Discord thread {state['name']!r} ({thread_id}): more messages left, read on the next run")
        for thread_id, state in old.items():  # quiet threads: keep while they could be re-read
            if thread_id not in threads and int(state.get("after") or 0) >= floor:
                threads[thread_id] = dict(state)
        return threads

    def _channel_info(self, channel_id: str) -> dict[str, Any]:
        channel = self._get(f"/channels/{channel_id}")
        if not isinstance(channel, dict) or "id" not in channel:
            raise ConnectorError(f"{self.http.label}: unexpected answer for channel {channel_id}: not a channel object")
        if channel.get("type") in THREAD_TYPES:
            raise ConnectorError(f"{self.http.label}: {channel_id} is a thread; list its parent channel and set `include_threads: true`")
        return {"guild": str(channel.get("guild_id") or ""), "name": str(channel.get("name") or ""), "type": channel.get("type")}

    def _active_threads(self, channels: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Active threads whose parent is a watched channel, one request per guild."""
        found: list[dict[str, Any]] = []
        for guild in sorted({str(info.get("guild")) for info in channels.values() if info.get("guild")}):
            reply = self._get(f"/guilds/{guild}/threads/active")
            if not isinstance(reply, dict) or not isinstance(reply.get("threads"), list):
                raise ConnectorError(f"{self.http.label}: unexpected answer for the active threads of guild {guild}: no 'threads' list")
            found.extend(t for t in reply["threads"] if isinstance(t, dict) and str(t.get("parent_id")) in channels
                         and _SNOWFLAKE.match(str(t.get("id"))))
        return sorted(found, key=lambda t: int(t["id"]))

    def _read(self, channel_id: str, after: int, pages: int | None = None) -> tuple[list[dict[str, Any]], str, bool]:
        """Messages after `after`, oldest first: (messages, the new `after`, whether the channel was read to its end)."""
        def page(since: int) -> Page[dict[str, Any]]:
            messages = self._get(f"/channels/{channel_id}/messages", {"after": since, "limit": PAGE})
            if not isinstance(messages, list) or not all(isinstance(m, dict) and _SNOWFLAKE.match(str(m.get("id")))
                                                         for m in messages):
                raise ConnectorError(
                    f"{self.http.label}: unexpected answer for the messages of channel {channel_id}: "
                    "expected a list of message objects; the API may have changed"
                )
            return Page(messages)

        read = page_forward(page, after, position=lambda m: int(m["id"]), max_pages=pages or self.options.max_pages,
                            page_size=PAGE)
        return read.items, str(read.after), read.complete

    # -- mapping ------------------------------------------------------------
    def _mentions(self, found: list[tuple[dict[str, Any], _Place]], names: Mapping[str, str]) -> list[Mention]:
        kept = [(m, p) for m, p in found if m.get("type") in (DEFAULT, REPLY)]
        brand = {str(m["id"]): self._is_brand(m, p.guild) for m, p in kept}
        answered: dict[str, dict[str, Any]] = {}
        for message, place in sorted(kept, key=lambda mp: int(mp[0]["id"])):
            # A brand message read in the same batch answers right away: the message it replies to, and the
            # message that opened its thread (a forum post, or the channel message the thread was started from).
            if not brand[str(message["id"])]:
                continue
            for answered_id in (_reference(message), place.channel if place.is_thread else None):
                if answered_id and answered_id != str(message["id"]):
                    answered.setdefault(answered_id, message)
        mentions = []
        for message, place in sorted(kept, key=lambda mp: int(mp[0]["id"])):
            reply = answered.get(str(message["id"]))
            mentions.append(message_mention(message, place, brand[str(message["id"])], names, reply))
        return mentions

    def _is_brand(self, message: Mapping[str, Any], guild: str) -> bool:
        author = message.get("author") or {}
        user = str(author.get("id") or "")
        if user in self.context.brand_names("discord"):
            return True
        if not self.options.brand_roles or not guild or not user or message.get("webhook_id"):
            return False
        member = message.get("member")
        if isinstance(member, dict) and isinstance(member.get("roles"), list):
            roles = {str(r) for r in member["roles"]}
        else:
            return self._has_brand_role(guild, user)
        return bool(roles & set(self.options.brand_roles))

    def _has_brand_role(self, guild: str, user: str) -> bool:
        key = f"{guild}/{user}"
        if key in self._roles:
            return bool(self._roles[key][0])
        try:
            member = self._get(f"/guilds/{guild}/members/{user}")
        except ConnectorError as exc:
            if exc.status != 404:  # 404: not a member (any more), so not staff
                raise
            member = {}
        roles = {str(r) for r in (member.get("roles") or [])} if isinstance(member, dict) else set()
        verdict = bool(roles & set(self.options.brand_roles))
        self._roles[key] = [int(verdict), int(self.context.current_time().timestamp())]
        return verdict

    # -- earful check --online ------------------------------------------------
    def verify(self) -> None:
        """The token (`GET /users/@me`), then one message of each watched channel: proves Read Message History."""
        me = self._get("/users/@me")
        if not isinstance(me, dict) or not me.get("bot"):
            raise ConnectorError(f"{self.http.label}: the token does not belong to a bot user; use the token of the "
                                 "application's Bot page, not a user token", status=403)
        for channel_id in self.options.channels:
            info = self._channel_info(channel_id)
            if info.get("type") in THREAD_HOLDERS:
                if not self.options.include_threads:
                    raise ConnectorError(f"{self.http.label}: channel {channel_id} is a forum or media channel; "
                                         "set `include_threads: true`")
                self._active_threads({channel_id: info})
            else:
                self._get(f"/channels/{channel_id}/messages", {"limit": 1})

    # -- replies ------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """Did a brand account answer the mention (a reply chain below it, or its own thread)? Unknown on errors."""
        if not self._can_check(mention):
            return ReplyStatus(answered=None)
        channel = str(mention.raw.get("channel_id") or "") or _channel_from_url(mention.url)
        guild = str(mention.raw.get("guild_id") or "") or _guild_from_url(mention.url)
        if not channel:
            return ReplyStatus(answered=None)
        complete = True
        answers: list[dict[str, Any]] = []
        try:
            for where, whole_thread in _reply_places(mention, channel):
                answer, done = self._first_brand_answer(mention.external_id, where, whole_thread, guild)
                complete = complete and done
                if answer is not None:
                    answers.append(answer)
        except ConnectorError:
            return ReplyStatus(answered=None)
        if answers:
            return _answer(min(answers, key=lambda m: int(m["id"])), guild)
        # Unread pages may still hold the answer: only a channel read to its end says "no".
        return ReplyStatus(answered=False) if complete else ReplyStatus(answered=None)

    def _can_check(self, mention: Mention) -> bool:
        """A Discord message of ours, and a brand to look for (accounts or roles)."""
        if mention.source != self.name or not _SNOWFLAKE.match(mention.external_id):
            return False
        return bool(self.context.brand_names("discord") or self.options.brand_roles)

    def _first_brand_answer(self, mention_id: str, where: str, whole_thread: bool, guild: str
                            ) -> tuple[dict[str, Any] | None, bool]:
        """The earliest brand message answering the mention in one channel or thread (None: none read), and
        whether that channel was read to its end. Outside a whole thread, only reply chains below it count."""
        messages, _, done = self._read(where, int(mention_id), pages=self.options.reply_pages)
        below = {mention_id}
        for message in messages:  # oldest first: the first brand answer is the earliest here
            if whole_thread or _reference(message) in below:
                below.add(str(message["id"]))
                if message.get("type") in (DEFAULT, REPLY) and self._is_brand(message, guild):
                    return message, done
        return None, done

    def close(self) -> None:
        self.http.close()


# -- helpers ------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _empty_content_note(found: list[tuple[dict[str, Any], _Place]]) -> list[str]:
    """A note when every message read came without content: the Message Content Intent is off."""
    wrote = [m for m, _ in found if m.get("type") in (DEFAULT, REPLY)]
    if wrote and not any(m.get("content") or m.get("attachments") or m.get("embeds") for m in wrote):
        return ["Discord returned every message with empty content: switch on the Message Content Intent "
                "of the bot (Developer Portal -> Bot -> Privileged Gateway Intents)"]
    return []


def _reference(message: Mapping[str, Any]) -> str | None:
    """The id of the message this one replies to (type 19 replies only; crossposts also carry a reference)."""
    ref = message.get("message_reference")
    if message.get("type") != REPLY or not isinstance(ref, dict) or not ref.get("message_id"):
        return None
    return str(ref["message_id"])


def _root(message: Mapping[str, Any], parent: str | None) -> str | None:
    """The conversation a channel message belongs to: itself, or the message it replies to when that one
    is no reply itself; None when the chain goes further up than the inlined parent shows."""
    if parent is None:
        return str(message["id"])
    referenced = message.get("referenced_message")
    if isinstance(referenced, dict) and referenced.get("type") != REPLY:
        return parent
    return None


def _answer(message: Mapping[str, Any], guild: str) -> ReplyStatus:
    author = message.get("author") or {}
    return ReplyStatus(
        answered=True,
        answered_at=_timestamp(message.get("timestamp")) or snowflake_time(message["id"]),
        answered_by=str(author.get("username") or author.get("id") or ""),
        url=MESSAGE_URL.format(guild=guild or "@me", channel=message.get("channel_id"), message=message["id"]),
    )


def _channel_from_url(url: str) -> str:
    parts = split_url(url or "").path.strip("/").split("/")
    return parts[2] if len(parts) == 4 and parts[0] == "channels" else ""


def _guild_from_url(url: str) -> str:
    parts = split_url(url or "").path.strip("/").split("/")
    return parts[1] if len(parts) == 4 and parts[0] == "channels" and parts[1] != "@me" else ""


def _timestamp(value: Any) -> datetime | None:
    """A message time: only strings are times here (snowflakes carry their own)."""
    return parse_time(value) if isinstance(value, str) else None


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_CHANNEL_MENTION = re.compile(r"<#(\d+)>")
_EMOJI = re.compile(r"<a?:(\w+):\d+>")
_STAMP = re.compile(r"<t:(-?\d+)(?::[tTdDfFR])?>")
_URL = re.compile(r"https?://[^\s<>|)\]]+")


def render_content(message: Mapping[str, Any], channel_names: Mapping[str, str] | None = None) -> str:
    """Discord markup as readable text: `<@id>` -> @name, `<#id>` -> #channel, `<:emoji:id>` -> :emoji:, `<t:..>` -> a date."""
    text = str(message.get("content") or "")
    users = {str(u.get("id")): u for u in message.get("mentions") or [] if isinstance(u, dict)}

    def user(m: re.Match[str]) -> str:
        who = users.get(m.group(1)) or {}
        return "@" + str(who.get("global_name") or who.get("username") or "user")

    def channel(m: re.Match[str]) -> str:
        return "#" + ((channel_names or {}).get(m.group(1)) or "channel")

    def stamp(m: re.Match[str]) -> str:
        try:
            return datetime.fromtimestamp(int(m.group(1)), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        except (OverflowError, OSError, ValueError):
            return m.group(0)

    text = _USER_MENTION.sub(user, text)
    text = _ROLE_MENTION.sub("@role", text)
    text = _CHANNEL_MENTION.sub(channel, text)
    text = _EMOJI.sub(r":\1:", text)
    text = _STAMP.sub(stamp, text)
    if not text.strip():  # bots often speak in embeds only
        parts = []
        for embed in message.get("embeds") or []:
            if isinstance(embed, dict):
                parts += [str(embed[k]) for k in ("title", "description") if embed.get(k)]
        text = "\n\n".join(parts)
    return text.strip()


def _link(message: Mapping[str, Any], text: str) -> str:
    for url in _URL.findall(text):
        host = url_host(url)  # "" for a link that does not parse: never raises
        if host not in ("discord.com", "discordapp.com", "cdn.discordapp.com", "media.discordapp.net"):
            return url
    for embed in message.get("embeds") or []:
        if isinstance(embed, dict) and str(embed.get("url") or "").startswith(("http://", "https://")):
            return str(embed["url"])
    return ""


def _reply_places(mention: Mention, channel: str) -> list[tuple[str, bool]]:
    """Where answers to a message are read: (channel or thread id, whether every message there answers it).

    A forum post shares its id with its thread, so all of that thread answers it; a channel message may
    have started a thread, all of which answers it too.
    """
    places = [(channel, channel == mention.external_id)]
    started = str(mention.raw.get("started_thread") or "")
    if _SNOWFLAKE.match(started) and started != channel:
        places.append((started, True))
    return places


def _reference_raw(message: Mapping[str, Any], parent: str | None) -> dict[str, Any]:
    """What a message's reference says: the message it replies to (and whether that was deleted), a crosspost's source."""
    raw: dict[str, Any] = {}
    if parent:
        raw["reply_to"] = parent
        raw["parent_deleted"] = message.get("referenced_message") is None
    ref = message.get("message_reference") if isinstance(message.get("message_reference"), dict) else {}
    if ref.get("guild_id") or ref.get("channel_id"):
        raw["reference_channel_id"] = ref.get("channel_id")
    return raw


def _message_raw(message: Mapping[str, Any], place: _Place, parent: str | None,
                 brand_reply: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a Mention keeps of the message beyond its own fields: where it was, and what reply checks need."""
    author = message.get("author") or {}
    raw: dict[str, Any] = {
        "channel_id": place.channel,
        "guild_id": place.guild,
        "channel": place.name,
        "type": message.get("type"),
        "author_id": str(author.get("id") or ""),
        "edited_at": message.get("edited_timestamp"),
        "attachments": [a.get("url") for a in message.get("attachments") or [] if isinstance(a, dict) and a.get("url")],
    }
    if place.is_thread:
        raw["parent_channel_id"] = place.thread_of
    raw.update(_reference_raw(message, parent))
    if message.get("webhook_id"):
        raw["webhook_id"] = message["webhook_id"]
    started = message.get("thread")
    if isinstance(started, dict) and _SNOWFLAKE.match(str(started.get("id"))):
        raw["started_thread"] = str(started["id"])  # answers may come inside that thread
    if brand_reply is not None:
        raw["reply_at"] = brand_reply.get("timestamp")
        raw["reply_by"] = (brand_reply.get("author") or {}).get("username")
    return raw


def message_mention(
    message: Mapping[str, Any],
    place: _Place,
    is_brand: bool,
    channel_names: Mapping[str, str] | None = None,
    brand_reply: Mapping[str, Any] | None = None,
) -> Mention:
    """Map one Discord message (read in `place`) to a Mention."""
    message_id = str(message["id"])
    author = message.get("author") or {}
    parent = _reference(message)
    forum_post = place.is_thread and message_id == place.channel and place.parent_type in THREAD_HOLDERS
    text = render_content(message, channel_names)
    return Mention(
        source="discord",
        external_id=message_id,
        url=MESSAGE_URL.format(guild=place.guild or "@me", channel=place.channel, message=message_id),
        author=str(author.get("username") or author.get("id") or ""),
        author_is_brand=is_brand,
        title=place.name if forum_post else "",
        text=text,
        created_at=_timestamp(message.get("timestamp")) or snowflake_time(message_id),
        thread_id=place.channel if place.is_thread else _root(message, parent),
        parent_id=parent,
        kind="post" if forum_post else "reply" if parent else "message",
        brand_replied=True if brand_reply is not None else None,
        site="discord.com",
        link_url=_link(message, text),
        raw=_message_raw(message, place, parent, brand_reply),
    )


CONNECTOR = DiscordConnector
