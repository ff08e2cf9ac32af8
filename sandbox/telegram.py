"""A fake Telegram Bot API (api.telegram.org/bot<TOKEN>/...), standard library only.

It implements what a getUpdates poller depends on, with Telegram's rules:

* the token in the path; a wrong token answers 401 `{"ok": false,
  "error_code": 401, "description": "Unauthorized"}`, a malformed one 404;
* `getUpdates` with `offset` (confirms, i.e. forgets, every update below
  it; a negative offset counts from the end), `limit` (1-100), `timeout`
  and `allowed_updates` (a JSON array); without an offset it returns the
  unconfirmed updates and confirms nothing;
* updates shaped like the real ones: `message` / `edited_message` /
  `channel_post` / `edited_channel_post`, chats with negative ids
  (`-100...` for supergroups and channels), `reply_to_message` carrying the
  whole parent one level deep, forum topics (`message_thread_id`,
  `is_topic_message`), channel posts auto-forwarded into the discussion
  group (`is_automatic_forward`, `forward_origin`, sender `Channel_Bot`);
* messages users forward into a chat (`forward`): Bot API 7's
  `forward_origin` (MessageOriginUser / HiddenUser / Chat / Channel), or with
  `legacy=True` the fields servers sent before 7.0 (`forward_from`,
  `forward_sender_name`, `forward_from_chat`, `forward_from_message_id`,
  `forward_signature`, `forward_date`);
* 409 Conflict when a webhook is set (`set_webhook`) or another poller is
  running (`start_other_poller`), and `too_many_requests(seconds)` for a 429
  with `parameters.retry_after`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from .server import DemoSource, FakeServer, Request, Response

TOKEN = "7000000099:AAFakeTelegramBotToken_acme-demo0"
BOT = {"id": 7000000099, "is_bot": True, "first_name": "Acme Watch", "username": "acme_watch_bot"}
GROUP = {"id": -1001500000001, "title": "Acme CRM Users", "username": "acme_users", "type": "supergroup"}
CHANNEL = {"id": -1001500000002, "title": "Acme CRM News", "username": "acmecrm_news", "type": "channel"}
DISCUSSION = {"id": -1001500000003, "title": "Acme CRM News · Comments", "type": "supergroup"}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}


def tg_error(code: int, description: str, retry_after: int | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return Response.json(body, code)


def too_many_requests(seconds: int = 17) -> Response:
    return tg_error(429, f"Too Many Requests: retry after {seconds}", seconds)


def user(user_id: int, first_name: str, username: str | None = None, last_name: str | None = None, language: str | None = "en") -> dict[str, Any]:
    data: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        data["last_name"] = last_name
    if username:
        data["username"] = username
    if language:
        data["language_code"] = language
    return data


class TelegramServer(FakeServer):
    """Queues updates; `post`/`reply`/`edit`/`channel_post` add them as Telegram would."""

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.pending: list[dict[str, Any]] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.webhook: str | None = None
        self.other_poller = False
        self._update_ids = itertools.count(439432600)
        self._message_ids: dict[int, itertools.count] = {}
        self._data_lock = threading.RLock()

    # -- building updates -------------------------------------------------------------
    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(134545)))

    def _push(self, kind: str, message: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: message}
        self.pending.append(update)
        return update

    def post(self, chat: dict[str, Any], text: str | None, *, sender: dict[str, Any] | None = None, date: int | None = None,
             reply_to: dict[str, Any] | None = None, thread: int | None = None, caption_media: str | None = None,
             sender_chat: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A message in `chat` (a `channel_post` when the chat is a channel); returns the message."""
        with self._data_lock:
            message: dict[str, Any] = {"message_id": self._next_message_id(chat["id"])}
            if sender is not None:
                message["from"] = sender
            if sender_chat is not None:
                message["sender_chat"] = sender_chat
            message.update(chat=dict(chat), date=int(time.time()) if date is None else date)
            if thread is not None:
                message["message_thread_id"] = thread
                if chat.get("is_forum"):
                    message["is_topic_message"] = True
            if reply_to is not None:
                message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
            if caption_media:
                message[caption_media] = [{"file_id": "AgACAgQAAxkBAAI", "file_unique_id": "AQADfake", "width": 1280, "height": 720}] \
                    if caption_media == "photo" else {"file_id": "CAACAgIAAxkBAAI", "file_unique_id": "AgADfake"}
                if text is not None:
                    message["caption"] = text
            elif text is not None:
                message["text"] = text
            message.update(extra or {})
            self.messages[(chat["id"], message["message_id"])] = message
            self._push("channel_post" if chat.get("type") == "channel" else "message", message)
            return message

    def reply(self, to: dict[str, Any], text: str, *, sender: dict[str, Any], date: int | None = None) -> dict[str, Any]:
        """A reply to message `to`, in its chat and thread (comments under a channel post keep the post's thread)."""
        thread = to.get("message_thread_id") or (to["message_id"] if to.get("is_automatic_forward") else None)
        return self.post(to["chat"], text, sender=sender, date=date, reply_to=to, thread=thread)

    def edit(self, message: dict[str, Any], text: str, *, date: int | None = None) -> dict[str, Any]:
        with self._data_lock:
            edited = dict(message)
            edited["edit_date"] = int(time.time()) if date is None else date
            edited["text" if "text" in message else "caption"] = text
            self.messages[(message["chat"]["id"], message["message_id"])] = edited
            self._push("edited_channel_post" if message["chat"].get("type") == "channel" else "edited_message", edited)
            return edited

    def channel_post(self, text: str, *, date: int | None = None, channel: dict[str, Any] = CHANNEL,
                     discussion: dict[str, Any] | None = DISCUSSION, signature: str | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A channel post and, with a linked discussion group, its automatic forward there (where comments go)."""
        post = self.post(channel, text, sender_chat=channel, date=date, extra={"author_signature": signature} if signature else None)
        if discussion is None:
            return post, None
        forward = self.post(discussion, text, sender=CHANNEL_BOT, sender_chat=channel, date=post["date"], extra={
            "is_automatic_forward": True,
            "forward_origin": {"type": "channel", "chat": channel, "message_id": post["message_id"], "date": post["date"]},
            "forward_from_chat": channel, "forward_from_message_id": post["message_id"], "forward_date": post["date"],
        })
        return post, forward

    def forward(self, chat: dict[str, Any], origin: dict[str, Any], text: str, *, sender: dict[str, Any], date: int | None = None,
                legacy: bool = False) -> dict[str, Any]:
        """`sender` forwards a message with `text` from `origin` (a MessageOrigin: see `origin_user` ...) into `chat`."""
        return self.post(chat, text, sender=sender, date=date, extra=_legacy_forward(origin) if legacy else {"forward_origin": origin})

    def service(self, chat: dict[str, Any], sender: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """A service message (new_chat_members, pinned_message ...): no text."""
        return self.post(chat, None, sender=sender, extra=fields)

    def set_webhook(self, url: str | None) -> None:
        self.webhook = url

    def start_other_poller(self, running: bool = True) -> None:
        self.other_poller = running

    # -- HTTP -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        prefix, _, method = request.path.lstrip("/").partition("/")
        if not prefix.startswith("bot") or ":" not in prefix:
            return tg_error(404, "Not Found")
        if prefix[3:] != self.token:
            return tg_error(401, "Unauthorized")
        params = {k: v[-1] for k, v in request.query.items()}
        if request.body:
            params.update(request.form() if "json" in request.headers.get("content-type", "") else dict(parse_qsl(request.body.decode())))
        with self._data_lock:
            if method == "getMe":
                return Response.json({"ok": True, "result": BOT})
            if method == "getWebhookInfo":
                return Response.json({"ok": True, "result": {"url": self.webhook or "", "has_custom_certificate": False,
                                                             "pending_update_count": len(self.pending)}})
            if method == "deleteWebhook":
                self.webhook = None
                return Response.json({"ok": True, "result": True, "description": "Webhook was deleted"})
            if method == "getUpdates":
                return self._get_updates(params)
        return tg_error(404, "Not Found")

    def _get_updates(self, params: dict[str, str]) -> Response:
        if self.webhook:
            return tg_error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        if self.other_poller:
            return tg_error(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
        try:
            offset = int(params["offset"]) if params.get("offset") not in (None, "") else None
            limit = max(1, min(100, int(params.get("limit") or 100)))
            allowed = json.loads(params["allowed_updates"]) if params.get("allowed_updates") else None
        except (ValueError, TypeError):
            return tg_error(400, "Bad Request: wrong parameter value")
        if offset is not None and offset < 0:
            self.pending = self.pending[offset:]
        elif offset is not None:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        chosen = [u for u in self.pending if not allowed or any(kind in u for kind in allowed)]
        return Response.json({"ok": True, "result": chosen[:limit]})


def origin_user(sender: dict[str, Any], date: int) -> dict[str, Any]:
    return {"type": "user", "sender_user": sender, "date": date}


def origin_hidden_user(name: str, date: int) -> dict[str, Any]:
    """A user whose privacy settings hide their account in forwards: only the name is left."""
    return {"type": "hidden_user", "sender_user_name": name, "date": date}


def origin_chat(chat: dict[str, Any], date: int, signature: str | None = None) -> dict[str, Any]:
    """A message posted on behalf of a group (an anonymous admin)."""
    return {"type": "chat", "sender_chat": chat, "date": date, **({"author_signature": signature} if signature else {})}


def origin_channel(channel: dict[str, Any], message_id: int, date: int, signature: str | None = None) -> dict[str, Any]:
    return {"type": "channel", "chat": channel, "message_id": message_id, "date": date,
            **({"author_signature": signature} if signature else {})}


def _legacy_forward(origin: dict[str, Any]) -> dict[str, Any]:
    """The same origin in the fields Bot API servers sent before 7.0."""
    fields: dict[str, Any] = {"forward_date": origin["date"]}
    if origin["type"] == "user":
        fields["forward_from"] = origin["sender_user"]
    elif origin["type"] == "hidden_user":
        fields["forward_sender_name"] = origin["sender_user_name"]
    else:
        fields["forward_from_chat"] = origin.get("chat") or origin.get("sender_chat")
        if origin.get("message_id"):
            fields["forward_from_message_id"] = origin["message_id"]
    if origin.get("author_signature"):
        fields["forward_signature"] = origin["author_signature"]
    return fields


# -- earful demo ------------------------------------------------------------------------------

DEMO_TOKEN_VAR = "EARFUL_DEMO_TELEGRAM_TOKEN"
SUPPORT = user(700000002, "Acme", "acme_support", "Support")
AGENT = user(700000001, "Jonas", None, "(Acme)")


def demo_server(now: float) -> TelegramServer:
    server = TelegramServer()
    t = int(now)

    def ago(minutes: int) -> int:
        return t - minutes * 60

    marta = user(5100000001, "Marta", "marta_k")
    ivan = user(5100000002, "Иван", "ivan_petrov", "Петров", "ru")
    wei = user(5100000003, "伟", "li_wei", "李", "zh-hans")
    ola = user(5100000004, "Ola", "ola_sales")

    server.post(GROUP, "Acme CRM 5.2 is rolling out today 🎉 Release notes: https://acme.example/blog/5-2", sender=SUPPORT, date=ago(320))
    question = server.post(GROUP, "Does anyone know how to bulk-edit deal stages in Acme? The docs don't say.", sender=marta, date=ago(260))
    server.reply(question, "Hi Marta! Select the deals, then Actions → Edit stage. Works for up to 500 at once.", sender=AGENT, date=ago(245))
    server.post(GROUP, "Acme снова не работает: синхронизация broken с утра, нам нужен refund за этот месяц.", sender=ivan, date=ago(95))
    server.post(GROUP, "有人用过 Acme 的 API 吗？文档在哪里？", sender=wei, date=ago(80))
    server.post(GROUP, "Anyone up for the CRM meetup in Hamburg next week?", sender=ola, date=ago(60))
    _, forward = server.channel_post("Acme CRM 5.2 release notes: offline mode, faster search, new mobile app.", date=ago(300))
    assert forward is not None
    server.reply(forward, "Is there a way to export Acme reports to PDF now?", sender=ola, date=ago(40))
    return server


def demo_source(now: float) -> DemoSource:
    return DemoSource(
        "telegram-acme",
        demo_server(now),
        {"connector": "telegram", "schedule": "*/2 * * * *", "bot_token": "${%s}" % DEMO_TOKEN_VAR, "base_url": "{url}"},
        env={DEMO_TOKEN_VAR: TOKEN},
    )
