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

Not covered: deletions (the Bot API does not report them); messages sent
before the bot joined.

Cursor: `{"offset": next update_id, "horizon": unix time from which the
reply map is complete, "replies": {"chat:message": {"t": message time,
"at": reply time, "by": ..., "url": ...}}}`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Mapping

from pydantic import Field, SecretStr, field_validator

from .base import Connector, ConnectorContext, ConnectorError, ConnectorOptions, FetchResult, ReplyStatus
from earful.core import Mention
from .graph import duration
from .http import HttpClient

SOURCE = "telegram"
DEFAULT_BASE = "https://api.telegram.org"
UpdateKind = Literal["message", "edited_message", "channel_post", "edited_channel_post"]
ALL_KINDS: tuple[str, ...] = ("message", "edited_message", "channel_post", "edited_channel_post")
TOKEN_ADVICE = ("check TELEGRAM_BOT_TOKEN: @BotFather shows the bot's token with /token "
                "(and /revoke makes a new one, which invalidates the old)")
RETENTION = 86400  # seconds Telegram keeps unconfirmed updates
_MEDIA = ("photo", "video", "document", "sticker", "voice", "audio", "animation", "video_note", "story", "poll", "location", "contact")


class TelegramOptions(ConnectorOptions):
    bot_token: SecretStr = Field(description="The bot's token from @BotFather, e.g. ${TELEGRAM_BOT_TOKEN}.")
    chats: list[str | int] = Field(default_factory=list, description="Only these chats: ids (-100...) or @usernames. Empty: all.")
    updates: list[UpdateKind] = Field(default_factory=lambda: list(ALL_KINDS), description="Update types to read.")
    limit: int = Field(default=100, ge=1, le=100, description="Updates per run (Telegram's maximum is 100).")
    reply_memory: int = Field(default=5000, ge=10, le=100_000, description="Brand replies remembered for replies().")
    first_run_lookback: timedelta = Field(default=timedelta(days=1), gt=timedelta(0),
                                          description="On the first run, older messages are read but not returned.")

    @field_validator("first_run_lookback", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return duration(value)

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
        """A Bot API call; the token is in the URL path, so every message is scrubbed of it."""
        try:
            response = self.http.get(f"{self.api}/{method}", params=params, accept=tuple(range(400, 600)))
        except ConnectorError as exc:
            raise ConnectorError(self._redact(str(exc)), retry_after=exc.retry_after, status=exc.status) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        where = f"{self.label}: {method}"
        if not isinstance(body, dict) or "ok" not in body:
            raise ConnectorError(
                f"{where} answered HTTP {response.status_code} with a body that is not a Bot API answer "
                f"({response.headers.get('Content-Type', 'no content-type')}, {len(response.content)} bytes); "
                "check `base_url` and any proxy in between", status=response.status_code)
        if body.get("ok") is True and response.status_code < 400:
            return body.get("result")
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else response.status_code
        description = self._redact(str(body.get("description") or ""))[:300]
        said = f" [Telegram: {description}]" if description else ""
        if code in (401, 404):
            raise ConnectorError(f"{where}: Telegram rejected the bot token ({code} {description or 'Unauthorized'}); {TOKEN_ADVICE}",
                                 status=code)
        if code == 409:
            if "webhook" in description.lower():
                advice = ("a webhook is set for this bot, and getUpdates does not work while one is active: remove it "
                          "with deleteWebhook, or give earful its own bot")
            else:
                advice = ("another program is polling this bot with getUpdates (only one poller per bot is possible): "
                          "stop the other one, or give earful its own bot")
            raise ConnectorError(f"{where}: 409 Conflict: {advice}{said}", status=code)
        if code == 429:
            parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
            wait = parameters.get("retry_after")
            if not isinstance(wait, (int, float)):
                try:
                    wait = float(response.headers.get("Retry-After") or 60)
                except ValueError:
                    wait = 60.0
            raise ConnectorError(f"{where}: rate limited by Telegram; retry after {wait:g}s{said}", retry_after=float(wait), status=code)
        if code >= 500:
            raise ConnectorError(f"{where}: Telegram had a server error ({code}); earful retries on the next run{said}", status=code)
        raise ConnectorError(f"{where}: Telegram refused the request ({code}){said}", status=code)

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
        offset = state.get("offset") if isinstance(state.get("offset"), int) else None
        now = self.context.current_time()
        before = self.http.count
        updates = self._updates(offset)
        replies = {k: dict(v) for k, v in (state.get("replies") or {}).items() if isinstance(v, dict)}
        horizon = state.get("horizon") if isinstance(state.get("horizon"), int) else None
        if horizon is None:  # first run: the map is complete from the first update on
            dates = [_message(u)[1].get("date") for u in updates if _message(u)[1]]
            horizon = min([d for d in dates if isinstance(d, int)] + [int(now.timestamp())])
        oldest_wanted = int((now - self.options.first_run_lookback).timestamp()) if offset is None else None

        found: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
        for update in updates:
            kind, message = _message(update)
            if not message or not self._watched(message.get("chat") or {}):
                continue
            self._remember_reply(message, replies)
            found.append((update, kind, message))
        mentions: dict[str, Mention] = {}
        for update, kind, message in found:
            if oldest_wanted is not None and isinstance(message.get("date"), int) and message["date"] < oldest_wanted:
                continue
            mention = self._mention(update, kind, message, replies)
            if mention is not None:
                # One mention per message: an edit in the same batch replaces the text; a channel post and
                # its automatic copy in the discussion group are the same post.
                first = mentions.get(mention.external_id)
                mentions[mention.external_id] = mention if first is None or kind.startswith("edited_") else first
        horizon = self._bound(replies, horizon)
        notes = []
        if len(updates) >= self.options.limit:
            notes.append(f"Telegram: {len(updates)} updates read, more are waiting; they are read on the next runs "
                         "(Telegram keeps unconfirmed updates for 24 hours)")
        next_offset = updates[-1]["update_id"] + 1 if updates else offset
        next_cursor: dict[str, Any] = {"offset": next_offset, "horizon": horizon, "replies": replies}
        self._memory = next_cursor
        self._shared()["cursor"] = next_cursor  # for this run's reply checks, made by another instance
        return FetchResult(mentions=list(mentions.values()), cursor=next_cursor, requests=self.http.count - before, notes=notes)

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
                 "url": message_url(chat, message.get("message_id"), message.get("message_thread_id") if message.get("is_topic_message") else None)}
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
        chat = message.get("chat") or {}
        text = str(message.get("text") or message.get("caption") or "").strip()
        is_brand = self._is_brand(message)
        parent = message.get("reply_to_message") if isinstance(message.get("reply_to_message"), dict) else None
        if parent is not None and _is_topic_root(message):
            parent = None
        if not text:
            media = next((m for m in _MEDIA if m in message), None)
            if media is None or not (is_brand and parent):  # service messages, and media without words, are not mentions
                return None
            text = f"[{media}]"
        key = identity(message)
        thread = message.get("message_thread_id")
        if kind in ("channel_post", "edited_channel_post") or message.get("is_automatic_forward"):
            mention_kind = "post"
        elif parent is not None and parent.get("is_automatic_forward"):
            mention_kind = "comment"
        elif parent is not None:
            mention_kind = "reply"
        else:
            mention_kind = "message"
        parent_key = identity(parent) if parent is not None else None
        if parent is not None and parent.get("is_automatic_forward") and thread == parent.get("message_id"):
            thread_id = parent_key  # comments under a channel post: one thread with the post
        elif thread is not None:
            thread_id = message_key(chat.get("id"), thread)
        else:
            thread_id = parent_key or key
        origin_chat = _origin_chat(message) or chat
        answer = None if is_brand else replies.get(key)
        return Mention(
            source=SOURCE,
            external_id=key,
            url=message_url(origin_chat, key.rsplit(":", 1)[-1], thread if message.get("is_topic_message") else None),
            author=_author(message),
            author_is_brand=is_brand,
            title=str(origin_chat.get("title") or ""),
            text=text,
            created_at=datetime.fromtimestamp(message["date"], timezone.utc) if isinstance(message.get("date"), int) else None,
            thread_id=thread_id,
            parent_id=parent_key,
            kind=mention_kind,
            brand_replied=None if is_brand else answer is not None,
            site="t.me",
            raw={
                "update_id": update.get("update_id"),
                "update": kind,
                "chat_id": chat.get("id"),
                "chat_type": chat.get("type"),
                "message_id": message.get("message_id"),
                "from_id": (message.get("from") or {}).get("id"),
                "edited": kind.startswith("edited_"),
                "edit_date": message.get("edit_date"),
                **({"reply_at": _iso(answer.get("at")), "reply_by": answer.get("by")} if answer else {}),
            },
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
            waiting: dict[str, Any] = {}
            try:
                for update in self._updates(None):  # no offset: confirms nothing
                    _, message = _message(update)
                    if message and self._watched(message.get("chat") or {}):
                        self._remember_reply(message, waiting)
                peeked = True
            except ConnectorError:
                pass
            entry = waiting.get(mention.external_id)
        if entry is not None:
            when = entry.get("at")
            return ReplyStatus(answered=True, answered_at=datetime.fromtimestamp(when, timezone.utc) if isinstance(when, int) else None,
                               answered_by=entry.get("by") or None, url=entry.get("url") or None)
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


def _message(update: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    for kind in ALL_KINDS:
        if isinstance(update.get(kind), dict):
            return kind, update[kind]
    return "", {}


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


def _iso(value: Any) -> str | None:
    return datetime.fromtimestamp(value, timezone.utc).isoformat() if isinstance(value, int) else None


CONNECTOR = TelegramConnector
