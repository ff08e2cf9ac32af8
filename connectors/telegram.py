"""Telegram groups, supergroups (forum topics too), channels and their discussion groups, through a bot.

The Bot API's `getUpdates` (`/bot<TOKEN>/getUpdates`) hands out every
message the bot can see: `message`, `edited_message`, `channel_post` and
`edited_channel_post` updates, each with an increasing `update_id`. There is
no history and no search: what the bot is not shown, or what nobody fetched
within 24 hours, is gone.

Confirming updates, and why nothing is ever lost. Telegram keeps an update
until a later `getUpdates` call passes an `offset` greater than its
`update_id`; that call confirms it and Telegram forgets it. This connector
calls `getUpdates` exactly once per run, with the offset stored in its
cursor, and returns the new offset (last update_id + 1) in the new cursor.
The runner commits that cursor only together with the mentions, so the
updates of this run are confirmed by the NEXT run's call, after they were
stored. If a run crashes or its commit fails, the next run asks with the
old offset and Telegram serves the same updates again. Paging further
inside one run would confirm updates that were not stored yet, so a run
reads at most `limit` (100) updates; a backlog is read over the following
runs (a note says so), within the 24 hours Telegram keeps unconfirmed
updates: schedule busy groups every minute or two.

Updates from chats outside `chats` (when set) are deliberately skipped and
confirmed with the rest.

Answered. A message counts as answered when one of the brand's Telegram
accounts (user ids or usernames listed under `accounts: telegram`; a
channel's username or id for posts made as the channel) replied to it
(`reply_to_message`). Brand replies arrive as updates like everything
else, so this connector remembers, in its cursor, a bounded map of
{message key: first brand reply (time, by, link)} built from the
`reply_to_message` of the updates it reads (`reply_memory` entries, oldest
dropped first), and sets `brand_replied` on the mentions it returns.
`replies()` answers from the most recent cursor this connector produced or
was given (`fetch(cursor)`, `use_cursor(cursor)`, or, for the reply checks
of the same run, which build their own connector, the cursor the run's
fetch left in the run's shared resources), plus a look at the updates still
waiting on Telegram's side (`getUpdates` without an offset, which confirms
nothing). Limitation, honestly: `getUpdates` cannot fetch history, so for a
message older than what the map covers (before the bot started reading, or
dropped from the bounded map) `replies()` says "unknown", never "not
answered". Without any cursor it says "not answered" only for messages of
the last 24 hours (a brand reply to them is either still waiting on
Telegram's side, or was read already and returned as a mention, which
answers its parent when stored) and "unknown" for older ones.

Setting it up. Create a bot with @BotFather (`/newbot`), which gives the
token; put it in the environment as TELEGRAM_BOT_TOKEN and use
`bot_token: ${TELEGRAM_BOT_TOKEN}`. Turn privacy mode off (@BotFather ->
`/setprivacy` -> Disable) or make the bot an administrator, else it only
sees commands and replies to itself in groups; then add it to each group,
and as an administrator to each channel and to the channel's discussion
group (comments live there). No webhook may be set for the bot (else 409
Conflict; remove it with `deleteWebhook`), and only one program may poll
it. `chats` restricts the monitor to some chats: ids (`-1001234567890`) or
public usernames (`@acme_users`).

Forwards. A message forwarded into a watched chat keeps where it came
from: Bot API 7's `forward_origin` (`user`, `hidden_user`, `chat` or
`channel`, with the original date, message id and signature) or, from
older servers, `forward_from` / `forward_sender_name` / `forward_from_chat`
/ `forward_date`. Both become `raw["forward_origin"]` (`type`, `name`,
`username`, `id`, `message_id`, `author_signature`, `date`, `url`) and a
readable line added to the title ("Acme CRM Users · Forwarded from Acme
Support (channel @acme_support)"): the title is context, so the origin's
name never counts as words the forwarder wrote. A channel post's automatic
copy in its discussion group is the post itself, not a forward.

Not covered: deletions (the Bot API does not report them); messages sent
before the bot joined.

Cursor: `{"offset": next update_id, "horizon": unix time from which the
reply map is complete, "replies": {"chat:message": {"t": message time,
"at": reply time, "by": ..., "url": ...}}}`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Literal, Mapping

from pydantic import Field, SecretStr, field_validator

from earful.core import Mention, retry_after_header
from earful.core.durations import Duration

from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
    ReplyStatus,
)
from .http import HttpClient

SOURCE = "telegram"
DEFAULT_BASE = "https://api.telegram.org"
UpdateKind = Literal["message", "edited_message", "channel_post", "edited_channel_post"]
ALL_KINDS: tuple[str, ...] = ("message", "edited_message", "channel_post", "edited_channel_post")
TOKEN_ADVICE = ("check TELEGRAM_BOT_TOKEN: @BotFather shows the bot's token with /token "
                "(and /revoke makes a new one, which invalidates the old)")
RETENTION = 86400  # seconds Telegram keeps unconfirmed updates
RATE_LIMIT_WAIT = 60.0  # seconds, when a 429 says no wait of its own
_MEDIA = ("photo", "video", "document", "sticker", "voice", "audio", "animation", "video_note", "story", "poll", "location", "contact")


class TelegramOptions(ConnectorOptions):
    bot_token: SecretStr = Field(description="The bot's token from @BotFather, e.g. ${TELEGRAM_BOT_TOKEN}.")
    chats: list[str | int] = Field(default_factory=list, description="Only these chats: ids (-100...) or @usernames. Empty: all.")
    updates: list[UpdateKind] = Field(default_factory=lambda: list(ALL_KINDS), description="Update types to read.")
    limit: int = Field(default=100, ge=1, le=100, description="Updates per run (Telegram's maximum is 100).")
    reply_memory: int = Field(default=5000, ge=10, le=100_000, description="Brand replies remembered for replies().")
    first_run_lookback: Duration = Field(default=timedelta(days=1), gt=timedelta(0),
                                          description="On the first run, older messages are read but not returned.")


    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if ":" not in token or not token.split(":", 1)[0].isdigit():
            raise ValueError("a bot token looks like 123456789:AAH...; copy it from @BotFather")
        return value

    @property
    def chat_ids(self) -> set[str]:
        return {str(c) for c in self.chats if isinstance(c, int) or str(c).lstrip("-").isdigit()}

    @property
    def chat_names(self) -> set[str]:
        return {str(c).lstrip("@").lower() for c in self.chats if not (isinstance(c, int) or str(c).lstrip("-").isdigit())}


def message_key(chat_id: Any, message_id: Any) -> str:
    return f"{chat_id}:{message_id}"


def message_url(chat: Mapping[str, Any], message_id: Any, thread: Any = None) -> str:
    """t.me link: public chats by username; private supergroups and channels by internal id; none for others."""
    if chat.get("username"):
        return f"https://t.me/{chat['username']}/{message_id}"
    chat_id = str(chat.get("id") or "")
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/" + (f"{thread}/" if thread else "") + f"{message_id}"
    return ""


class TelegramConnector(Connector):
    name = SOURCE
    sees_replies = True
    pushes_query = False
    Options = TelegramOptions
    options: TelegramOptions

    def __init__(self, options: TelegramOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.label = f"telegram monitor {context.monitor!r}"
        self.http = HttpClient(options, self.label)
        self._token = options.bot_token.get_secret_value()
        self.api = f"{(options.base_url or DEFAULT_BASE).rstrip('/')}/bot{self._token}"
        self.brands = context.brand_names(SOURCE)
        self._memory: dict[str, Any] | None = None  # the latest cursor's reply map and horizon

    # -- HTTP --------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>").replace(self._token.split(":", 1)[-1], "<token>")

    def _call(self, method: str, params: Mapping[str, Any]) -> Any:
        """A Bot API call's `result`; the token is in the URL path, so every message is scrubbed of it."""
        try:
            response = self.http.get(f"{self.api}/{method}", params=params, accept=tuple(range(400, 600)))
        except ConnectorError as exc:
            raise ConnectorError(self._redact(str(exc)), retry_after=exc.retry_after, status=exc.status) from None
        where = f"{self.label}: {method}"
        body = _bot_answer(where, response)
        if body.get("ok") is True and response.status_code < 400:
            return body.get("result")
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else response.status_code
        description = self._redact(str(body.get("description") or ""))[:300]
        raise _refusal(where, code, description, _rate_limit_wait(body, response.headers))

    def _updates(self, offset: int | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"timeout": 0, "limit": self.options.limit, "allowed_updates": json.dumps(list(self.options.updates))}
        if offset is not None:
            params["offset"] = offset
        result = self._call("getUpdates", params)
        if not isinstance(result, list) or not all(isinstance(u, dict) and isinstance(u.get("update_id"), int) for u in result):
            raise ConnectorError(f"{self.label}: getUpdates: `result` is not a list of updates with update_id; the API may have changed")
        return sorted(result, key=lambda u: u["update_id"])

    # -- fetch ---------------------------------------------------------------------------
    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        state = cursor if isinstance(cursor, dict) else {}
        offset = _int(state.get("offset"))
        now = self.context.current_time()
        before = self.http.count
        updates = self._updates(offset)
        replies = {k: dict(v) for k, v in (state.get("replies") or {}).items() if isinstance(v, dict)}
        horizon = _int(state.get("horizon"))
        if horizon is None:  # first run: the map is complete from the first update on
            horizon = _first_date(updates, now)
        watched = list(self._watched_messages(updates))
        for _, _, message in watched:
            self._remember_reply(message, replies)
        oldest_wanted = int((now - self.options.first_run_lookback).timestamp()) if offset is None else None
        mentions = self._mentions(watched, replies, oldest_wanted)
        next_cursor: dict[str, Any] = {"offset": updates[-1]["update_id"] + 1 if updates else offset,
                                       "horizon": self._bound(replies, horizon), "replies": replies}
        self._memory = next_cursor
        self._shared()["cursor"] = next_cursor  # for this run's reply checks, made by another instance
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.http.count - before,
                           notes=self._backlog_notes(updates))

    def _watched_messages(self, updates: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Mapping[str, Any], str, dict[str, Any]]]:
        """(update, update kind, message) of each update from a watched chat; the rest are skipped and confirmed."""
        for update in updates:
            kind, message = _message(update)
            if message and self._watched(message.get("chat") or {}):
                yield update, kind, message

    def _mentions(self, watched: list[tuple[Mapping[str, Any], str, dict[str, Any]]], replies: Mapping[str, Any],
                  oldest_wanted: int | None) -> list[Mention]:
        """One mention per message: an edit in the same batch replaces the text; a channel post and its
        automatic copy in the discussion group are the same post. Messages before `oldest_wanted` are left out."""
        mentions: dict[str, Mention] = {}
        for update, kind, message in watched:
            if oldest_wanted is not None and isinstance(message.get("date"), int) and message["date"] < oldest_wanted:
                continue
            mention = self._mention(update, kind, message, replies)
            if mention is not None:
                first = mentions.get(mention.external_id)
                mentions[mention.external_id] = mention if first is None or kind.startswith("edited_") else first
        return list(mentions.values())

    def _backlog_notes(self, updates: list[dict[str, Any]]) -> list[str]:
        if len(updates) < self.options.limit:
            return []
        return [f"Telegram: {len(updates)} updates read, more are waiting; they are read on the next runs "
                "(Telegram keeps unconfirmed updates for 24 hours)"]

    def _shared(self) -> dict[str, Any]:
        """This monitor's slot in the run's shared resources: the reply re-check of the same run builds its own
        connector, and finds the cursor this one produced there."""
        return self.context.resources.get(f"telegram.cursor:{self.context.monitor}", dict)

    def use_cursor(self, cursor: dict[str, Any] | None) -> None:
        """Let `replies()` answer from a stored cursor without fetching (e.g. a reply check on a later tick)."""
        if isinstance(cursor, dict) and isinstance(cursor.get("replies"), dict):
            self._memory = cursor

    def _watched(self, chat: Mapping[str, Any]) -> bool:
        if not self.options.chats:
            return True
        return str(chat.get("id")) in self.options.chat_ids or str(chat.get("username") or "").lower() in self.options.chat_names

    # -- brand replies -------------------------------------------------------------------------
    def _is_brand(self, message: Mapping[str, Any]) -> bool:
        sender = message.get("from") or {}
        chat = message.get("sender_chat") or {}
        candidates = {str(sender.get("id") or ""), str(sender.get("username") or "").lower(),
                      str(chat.get("id") or ""), str(chat.get("username") or "").lower()}
        return bool((candidates - {""}) & self.brands)

    def _remember_reply(self, message: Mapping[str, Any], replies: dict[str, Any]) -> None:
        """If a brand account replied to a message, remember its first such reply under that message's key(s)."""
        parent = message.get("reply_to_message")
        if not isinstance(parent, dict) or not self._is_brand(message) or _is_topic_root(message):
            return
        chat = message.get("chat") or {}
        entry = {"t": parent.get("date"), "at": message.get("date"), "by": _author(message),
                 "url": message_url(chat, message.get("message_id"), _topic(message))}
        # A reply to a channel post's copy in the discussion group answers the channel post itself.
        for key in {identity(parent), message_key(chat.get("id"), parent.get("message_id"))}:
            current = replies.get(key)
            if current is None or (isinstance(entry["at"], int) and entry["at"] < (current.get("at") or 2**62)):
                replies[key] = entry

    def _bound(self, replies: dict[str, Any], horizon: int) -> int:
        """Keep `reply_memory` entries; dropping one moves the horizon past the message it answered."""
        excess = len(replies) - self.options.reply_memory
        if excess > 0:
            oldest = sorted(replies, key=lambda k: (replies[k].get("t") or 0, k))[:excess]
            for key in oldest:
                horizon = max(horizon, int(replies.pop(key).get("t") or 0) + 1)
        return horizon

    # -- mapping ------------------------------------------------------------------------------
    def _mention(self, update: Mapping[str, Any], kind: str, message: Mapping[str, Any], replies: Mapping[str, Any]) -> Mention | None:
        is_brand = self._is_brand(message)
        parent = _parent(message)
        text = _words(message, is_brand and bool(parent))
        if text is None:
            return None
        key = identity(message)
        chat = message.get("chat") or {}
        origin_chat = _origin_chat(message) or chat
        answer = None if is_brand else replies.get(key)
        forwarded = forward_origin(message)
        return Mention(
            source=SOURCE,
            external_id=key,
            url=message_url(origin_chat, key.rsplit(":", 1)[-1], _topic(message)),
            author=_author(message),
            author_is_brand=is_brand,
            title=" · ".join(filter(None, [str(origin_chat.get("title") or ""), forwarded_line(forwarded)])),
            text=text,
            created_at=_utc(message.get("date")),
            thread_id=_thread_id(message, parent, key),
            parent_id=identity(parent) if parent is not None else None,
            kind=_mention_kind(kind, message, parent),
            brand_replied=None if is_brand else answer is not None,
            site="t.me",
            raw={**_raw(update, kind, message, answer), **({"forward_origin": forwarded} if forwarded else {})},
        )

    def verify(self) -> None:
        """`earful check --online`: getMe proves the token; getWebhookInfo catches a webhook that would block getUpdates.

        Neither call reads or confirms any update.
        """
        self._call("getMe", {})
        info = self._call("getWebhookInfo", {})
        if isinstance(info, dict) and info.get("url"):
            raise ConnectorError(f"{self.label}: a webhook is set for this bot, and getUpdates does not work while one is "
                                 "active: remove it with deleteWebhook, or give earful its own bot", status=409)

    # -- replies ---------------------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """From the remembered reply map, then from the updates still waiting on Telegram; see the module doc."""
        if mention.source != SOURCE or mention.author_is_brand or not self.brands:
            return ReplyStatus(answered=None)
        memory = self._memory or self._shared().get("cursor")
        entry = ((memory or {}).get("replies") or {}).get(mention.external_id)
        peeked = False
        if entry is None:
            waiting, peeked = self._waiting_replies()
            entry = waiting.get(mention.external_id)
        if entry is not None:
            return ReplyStatus(answered=True, answered_at=_utc(entry.get("at")), answered_by=entry.get("by") or None,
                               url=entry.get("url") or None)
        return self._no_reply_seen(mention, memory, peeked)

    def _waiting_replies(self) -> tuple[dict[str, Any], bool]:
        """The brand replies among the updates still waiting on Telegram (no offset: confirms nothing), and
        whether Telegram could be asked."""
        waiting: dict[str, Any] = {}
        try:
            for _, _, message in self._watched_messages(self._updates(None)):
                self._remember_reply(message, waiting)
        except ConnectorError:
            return waiting, False
        return waiting, True

    def _no_reply_seen(self, mention: Mention, memory: Mapping[str, Any] | None, peeked: bool) -> ReplyStatus:
        """The answer when no brand reply was found: "not answered" only where one would have been seen, else "unknown"."""
        created = int(mention.created_at.timestamp()) if mention.created_at else None
        if created is None:
            return ReplyStatus(answered=None)
        if memory is not None:
            horizon = memory.get("horizon")
            return ReplyStatus(answered=False) if isinstance(horizon, int) and created >= horizon else ReplyStatus(answered=None)
        # No cursor at hand: a brand reply younger than Telegram's 24 h retention is either still waiting (looked at
        # above) or was already read and returned as a mention, which answers its parent when it is stored.
        recent = self.context.current_time().timestamp() - created < RETENTION
        return ReplyStatus(answered=False) if peeked and recent else ReplyStatus(answered=None)

    def close(self) -> None:
        self.http.close()


# -- helpers -------------------------------------------------------------------------------------


def _bot_answer(where: str, response: Any) -> dict[str, Any]:
    """The decoded Bot API answer (`{"ok": ..., ...}`); anything else (a proxy's HTML page, cut JSON) raises."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "ok" not in body:
        raise ConnectorError(
            f"{where} answered HTTP {response.status_code} with a body that is not a Bot API answer "
            f"({response.headers.get('Content-Type', 'no content-type')}, {len(response.content)} bytes); "
            "check `base_url` and any proxy in between", status=response.status_code)
    return body


def _refusal(where: str, code: int, description: str, wait: float) -> ConnectorError:
    """The error for a refused Bot API call, from the `error_code` and `description` of its JSON body.

    Deliberately not `http.error_for_status`: that one reports
    "<METHOD> <url> answered HTTP <status>", but Telegram refuses in the
    body (even with HTTP 200), its URL carries the bot token in the path
    (which `redact_url` does not mask), and what helps the operator is
    Telegram's own remedy named by Bot API method (which token, which
    webhook or other poller blocks getUpdates), in wording the tests pin
    ("Telegram refused the request (400) [Telegram: ...]"). The
    Retry-After reading is still the shared one.
    """
    said = f" [Telegram: {description}]" if description else ""
    if code in (401, 404):
        return ConnectorError(f"{where}: Telegram rejected the bot token ({code} {description or 'Unauthorized'}); "
                              f"{TOKEN_ADVICE}", status=code)
    if code == 409:
        return ConnectorError(f"{where}: 409 Conflict: {_conflict_advice(description)}{said}", status=code)
    if code == 429:
        return ConnectorError(f"{where}: rate limited by Telegram; retry after {wait:g}s{said}", retry_after=wait, status=code)
    if code >= 500:
        return ConnectorError(f"{where}: Telegram had a server error ({code}); earful retries on the next run{said}", status=code)
    return ConnectorError(f"{where}: Telegram refused the request ({code}){said}", status=code)


def _conflict_advice(description: str) -> str:
    """getUpdates conflicts with a webhook, or with another program polling the same bot."""
    if "webhook" in description.lower():
        return ("a webhook is set for this bot, and getUpdates does not work while one is active: remove it "
                "with deleteWebhook, or give earful its own bot")
    return ("another program is polling this bot with getUpdates (only one poller per bot is possible): "
            "stop the other one, or give earful its own bot")


def _rate_limit_wait(body: Mapping[str, Any], headers: Mapping[str, Any]) -> float:
    """Seconds a 429 asks to wait: the body's `parameters.retry_after`, else Retry-After, else a minute."""
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    wait = parameters.get("retry_after")
    if isinstance(wait, (int, float)):
        return float(wait)
    header = retry_after_header(headers)
    return RATE_LIMIT_WAIT if header is None else header


def _message(update: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    for kind in ALL_KINDS:
        if isinstance(update.get(kind), dict):
            return kind, update[kind]
    return "", {}


def _first_date(updates: Iterable[Mapping[str, Any]], now: datetime) -> int:
    """The oldest message time among `updates` (unix seconds), or now: where a first run's reply map starts."""
    dates = [_message(u)[1].get("date") for u in updates]
    return min([d for d in dates if isinstance(d, int)] + [int(now.timestamp())])


def _parent(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The message this one replies to; a forum topic's creation message is no parent (see `_is_topic_root`)."""
    parent = message.get("reply_to_message")
    if not isinstance(parent, dict) or _is_topic_root(message):
        return None
    return parent


def _words(message: Mapping[str, Any], brand_reply: bool) -> str | None:
    """A message's text or caption; None for what is not a mention.

    Service messages and media without words are not mentions, except a
    brand's reply (a photo or voice answer still answers): it reads
    "[photo]", "[voice]" ...
    """
    text = str(message.get("text") or message.get("caption") or "").strip()
    if text:
        return text
    media = next((m for m in _MEDIA if m in message), None)
    return f"[{media}]" if media is not None and brand_reply else None


def _mention_kind(update_kind: str, message: Mapping[str, Any], parent: Mapping[str, Any] | None) -> str:
    """post (a channel post, or its copy in the discussion group), comment (under such a copy), reply or message."""
    if update_kind in ("channel_post", "edited_channel_post") or message.get("is_automatic_forward"):
        return "post"
    if parent is None:
        return "message"
    return "comment" if parent.get("is_automatic_forward") else "reply"


def _thread_id(message: Mapping[str, Any], parent: Mapping[str, Any] | None, key: str) -> str:
    """Comments under a channel post form one thread with the post; forum topics are threads; else the parent's."""
    thread = message.get("message_thread_id")
    parent_key = identity(parent) if parent is not None else None
    if parent is not None and parent.get("is_automatic_forward") and thread == parent.get("message_id"):
        return parent_key
    if thread is not None:
        return message_key((message.get("chat") or {}).get("id"), thread)
    return parent_key or key


def _topic(message: Mapping[str, Any]) -> Any:
    """The forum topic a message belongs to, for its t.me link; None outside topics."""
    return message.get("message_thread_id") if message.get("is_topic_message") else None


def _raw(update: Mapping[str, Any], kind: str, message: Mapping[str, Any], answer: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields kept for auditing, and the brand reply that answered the message."""
    chat = message.get("chat") or {}
    return {
        "update_id": update.get("update_id"),
        "update": kind,
        "chat_id": chat.get("id"),
        "chat_type": chat.get("type"),
        "message_id": message.get("message_id"),
        "from_id": (message.get("from") or {}).get("id"),
        "edited": kind.startswith("edited_"),
        "edit_date": message.get("edit_date"),
        **({"reply_at": _iso(answer.get("at")), "reply_by": answer.get("by")} if answer else {}),
    }


def _author(message: Mapping[str, Any]) -> str:
    sender = message.get("from") or {}
    chat = message.get("sender_chat") or {}
    if chat and (not sender or sender.get("username") in ("GroupAnonymousBot", "Channel_Bot")):  # posted as a chat
        name = str(chat.get("username") or chat.get("title") or "")
        return f"{name} ({message['author_signature']})" if message.get("author_signature") else name
    if sender.get("username"):
        return str(sender["username"])
    full = " ".join(str(sender.get(k) or "") for k in ("first_name", "last_name")).strip()
    if full:
        return full
    return str(message.get("author_signature") or (message.get("chat") or {}).get("title") or "")


def _is_topic_root(message: Mapping[str, Any]) -> bool:
    """In forum topics every message "replies" to the topic's creation message; that is no reply."""
    parent = message.get("reply_to_message") or {}
    return bool(message.get("is_topic_message")) and parent.get("message_id") == message.get("message_thread_id") and "forum_topic_created" in parent


def identity(message: Mapping[str, Any]) -> str:
    """A message's key, "chat id:message id"; an automatic copy of a channel post in its discussion group
    is the channel post, so the post and its comments form one thread under one key."""
    chat = _origin_chat(message)
    if chat is not None:
        origin = message.get("forward_origin") or {}
        return message_key(chat.get("id"), origin.get("message_id") or message.get("forward_from_message_id"))
    return message_key((message.get("chat") or {}).get("id"), message.get("message_id"))


def _origin_chat(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The channel an automatic forward copies, if `message` is one."""
    if not message.get("is_automatic_forward"):
        return None
    origin = message.get("forward_origin") or {}
    if origin.get("type") == "channel" and isinstance(origin.get("chat"), dict) and origin.get("message_id"):
        return origin["chat"]
    chat = message.get("forward_from_chat")
    return chat if isinstance(chat, dict) and message.get("forward_from_message_id") else None


def forward_origin(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where a forwarded message first appeared (see "Forwards" above); None for a message that is no forward
    and for a channel post's automatic copy in its discussion group (that is the post)."""
    origin = None if message.get("is_automatic_forward") else _message_origin(message)
    if origin is None:
        return None
    kind = str(origin["type"])
    if kind in ("user", "hidden_user"):
        person = origin.get("sender_user") or {}
        name = " ".join(str(person.get(k) or "") for k in ("first_name", "last_name")).strip() or origin.get("sender_user_name")
        username, ident, url = person.get("username"), person.get("id"), None
    else:
        chat = origin.get("chat") or origin.get("sender_chat") or {}
        name, username, ident = chat.get("title"), chat.get("username"), chat.get("id")
        url = message_url(chat, origin["message_id"]) if kind == "channel" and origin.get("message_id") else None
    return {"type": kind, "name": name or None, "username": username or None, "id": ident, "message_id": origin.get("message_id"),
            "author_signature": origin.get("author_signature") or None, "date": _iso(origin.get("date")), "url": url or None}


def _message_origin(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """The message's MessageOrigin (Bot API 7+), or one built from the `forward_*` fields older servers send."""
    origin = message.get("forward_origin")
    if isinstance(origin, dict) and origin.get("type"):
        return dict(origin)
    person, chat, hidden = message.get("forward_from"), message.get("forward_from_chat"), message.get("forward_sender_name")
    if isinstance(person, dict):
        origin = {"type": "user", "sender_user": person}
    elif hidden:
        origin = {"type": "hidden_user", "sender_user_name": hidden}
    elif isinstance(chat, dict):
        channel = chat.get("type") == "channel"
        origin = {"type": "channel", "chat": chat} if channel else {"type": "chat", "sender_chat": chat}
    else:
        return None
    return {**origin, "date": message.get("forward_date"), "message_id": message.get("forward_from_message_id"),
            "author_signature": message.get("forward_signature")}


_ORIGIN_KINDS = {"user": "user", "hidden_user": "hidden user", "chat": "group", "channel": "channel"}


def forwarded_line(origin: Mapping[str, Any] | None) -> str:
    """'Forwarded from Acme Support (channel @acme_support, signed Jonas)' for alerts; '' for no forward."""
    if not origin:
        return ""
    what = _ORIGIN_KINDS.get(str(origin.get("type")), str(origin.get("type")))
    if origin.get("username"):
        what += f" @{origin['username']}"
    if origin.get("author_signature"):
        what += f", signed {origin['author_signature']}"
    return f"Forwarded from {origin.get('name') or 'someone'} ({what})"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _utc(value: Any) -> datetime | None:
    """A Bot API time (unix seconds) as an aware datetime; None when absent."""
    return datetime.fromtimestamp(value, timezone.utc) if isinstance(value, int) else None


def _iso(value: Any) -> str | None:
    when = _utc(value)
    return when.isoformat() if when else None


CONNECTOR = TelegramConnector
