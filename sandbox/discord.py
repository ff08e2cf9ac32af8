"""A fake of Discord's REST API v10 (the part a reading bot uses), standard library only.

It answers `GET /api/v10/users/@me`, `/channels/{id}`, `/channels/{id}/messages`
(`before` / `after` / `around`, `limit` 1-100, newest first even with
`after`, which is the trap a connector must handle), `/guilds/{id}/threads/
active` and `/guilds/{id}/members/{user}` with Discord's shapes: snowflake
ids as strings that encode their creation time, `author` user objects with
`global_name` and `discriminator: "0"`, `message_reference` plus an inlined
`referenced_message` on replies (type 19; `null` once the parent was
deleted), `edited_timestamp`, thread channel objects with
`thread_metadata` and `last_message_id`, and no `member` on REST messages.
Every answer carries `X-RateLimit-*` headers; errors are Discord's
`{"message", "code"}` bodies (401 `401: Unauthorized`, 403 `Missing
Access` 50001, 404 `Unknown Channel` 10003 ...), and `rate_limit_next`
scripts a 429 with `retry_after` in the body, `Retry-After`, and the
`global` flag. The bot token is checked on every request
(`Authorization: Bot <token>`).
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .server import DemoSource, FakeServer, Request, Response

DISCORD_EPOCH_MS = 1_420_070_400_000
API = "/api/v10"
TEXT, ANNOUNCEMENT, FORUM = 0, 5, 15
PUBLIC_THREAD = 11
REPLY = 19
_MENTION = re.compile(r"<@!?(\d+)>")


def _stamp(at: float) -> str:
    """Discord's timestamp format: microseconds and an explicit +00:00."""
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="microseconds")


class DiscordServer(FakeServer):
    """Guilds, channels, threads, users and messages; scriptable between ticks."""

    def __init__(self, token: str = "discord-test-token") -> None:
        super().__init__()
        self.token = token
        self.users: dict[str, dict[str, Any]] = {}
        self.guilds: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, list[str]]] = {}  # guild -> user -> role ids
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> id -> stored message
        self.hidden: set[str] = set()  # channels the bot may not read (403 Missing Access)
        self.bot_user = {"id": "1098765432109876543", "username": "earful-bot", "avatar": None, "discriminator": "0000",
                         "public_flags": 0, "flags": 0, "banner": None, "accent_color": None, "global_name": None,
                         "avatar_decoration_data": None, "banner_color": None, "clan": None, "primary_guild": None}
        self._data_lock = threading.RLock()
        self._increment = 0

    # -- building data -------------------------------------------------------
    def snowflake(self, at: float | None = None) -> str:
        """A new id created at `at` (epoch seconds, default now)."""
        with self._data_lock:
            self._increment = (self._increment + 1) & 0xFFF
            ms = int((time.time() if at is None else at) * 1000) - DISCORD_EPOCH_MS
            return str((ms << 22) | (1 << 17) | (1 << 12) | self._increment)

    def add_user(self, username: str, id: str | None = None, *, global_name: str | None = None, bot: bool = False) -> str:
        with self._data_lock:
            user_id = id or self.snowflake(time.time() - 86400 * 400)
            self.users[user_id] = {
                "id": user_id,
                "username": username,
                "avatar": None,
                "discriminator": "0000" if bot else "0",
                "public_flags": 0,
                "flags": 0,
                "banner": None,
                "accent_color": None,
                "global_name": None if bot else (global_name or username),
                "avatar_decoration_data": None,
                "banner_color": None,
                "clan": None,
                "primary_guild": None,
                **({"bot": True} if bot else {}),
            }
            return user_id

    def add_guild(self, name: str, id: str | None = None) -> str:
        with self._data_lock:
            guild_id = id or self.snowflake(time.time() - 86400 * 500)
            self.guilds[guild_id] = {"id": guild_id, "name": name}
            self.members[guild_id] = {}
            return guild_id

    def add_member(self, guild: str, user: str, roles: list[str] | None = None) -> None:
        with self._data_lock:
            self.members[guild][user] = list(roles or [])

    def add_channel(self, guild: str, name: str, id: str | None = None, *, type: int = TEXT) -> str:
        with self._data_lock:
            channel_id = id or self.snowflake(time.time() - 86400 * 300)
            self.channels[channel_id] = {
                "id": channel_id,
                "type": type,
                "last_message_id": None,
                "flags": 0,
                "guild_id": guild,
                "name": name,
                "parent_id": None,
                "rate_limit_per_user": 0,
                "topic": None,
                "position": len(self.channels),
                "permission_overwrites": [],
                "nsfw": False,
            }
            self.messages[channel_id] = {}
            return channel_id

    def add_thread(self, parent: str, name: str, *, owner: str, at: float | None = None, starter: str | None = None,
                   content: str | None = None) -> str:
        """A public thread of `parent`. From a channel message (`starter`: the thread takes its id), or, in a
        forum, a new post whose first message (`content`) shares the thread's id."""
        with self._data_lock:
            parent_channel = self.channels[parent]
            at = time.time() if at is None else at
            thread_id = starter or self.snowflake(at)
            self.channels[thread_id] = {
                "id": thread_id,
                "type": PUBLIC_THREAD,
                "last_message_id": None,
                "flags": 0,
                "guild_id": parent_channel["guild_id"],
                "name": name,
                "parent_id": parent,
                "rate_limit_per_user": 0,
                "bitrate": 64000,
                "user_limit": 0,
                "rtc_region": None,
                "owner_id": owner,
                "thread_metadata": {
                    "archived": False,
                    "archive_timestamp": _stamp(at),
                    "auto_archive_duration": 4320,
                    "locked": False,
                    "create_timestamp": _stamp(at),
                },
                "message_count": 0,
                "member_count": 1,
                "total_message_sent": 0,
            }
            self.messages[thread_id] = {}
            if starter:
                self.messages[parent][starter]["thread_id"] = thread_id
            elif content is not None:
                self.post(thread_id, owner, content, at=at, id=thread_id)
            return thread_id

    def archive(self, thread: str, archived: bool = True) -> None:
        with self._data_lock:
            self.channels[thread]["thread_metadata"]["archived"] = archived

    def post(self, channel: str, author: str, content: str, *, at: float | None = None, reply_to: str | None = None,
             id: str | None = None, type: int | None = None, embeds: list[dict[str, Any]] | None = None,
             attachments: list[dict[str, Any]] | None = None, webhook: bool = False) -> dict[str, Any]:
        """Post a message as user `author`; `reply_to` makes it a reply (type 19). Returns the message as served."""
        with self._data_lock:
            if author not in self.users:
                raise ValueError(f"unknown user {author}")
            at = time.time() if at is None else at
            message_id = id or self.snowflake(at)
            stored = {
                "id": message_id,
                "channel_id": channel,
                "author": author,
                "content": content,
                "at": at,
                "edited_at": None,
                "type": type if type is not None else (REPLY if reply_to else 0),
                "reply_to": reply_to,
                "embeds": list(embeds or []),
                "attachments": list(attachments or []),
                "webhook": webhook,
                "thread_id": None,
            }
            self.messages[channel][message_id] = stored
            holder = self.channels[channel]
            if holder["last_message_id"] is None or int(message_id) > int(holder["last_message_id"]):
                holder["last_message_id"] = message_id
            if holder["type"] == PUBLIC_THREAD:
                holder["message_count"] += 1
                holder["total_message_sent"] += 1
                stored["position"] = holder["total_message_sent"] - (0 if message_id == channel else 1)
            return self.render(stored)

    def edit(self, channel: str, message: str, content: str, at: float | None = None) -> None:
        with self._data_lock:
            stored = self.messages[channel][message]
            stored["content"] = content
            stored["edited_at"] = time.time() if at is None else at

    def delete(self, channel: str, message: str) -> None:
        with self._data_lock:
            del self.messages[channel][message]

    def rate_limit_next(self, retry_after: float = 1.5, *, global_: bool = False, count: int = 1,
                        token: str = "") -> None:
        """The next `count` requests (made with bot `token`, if given) answer 429 as Discord does (body
        `retry_after` in float seconds)."""
        headers = {"Retry-After": str(int(retry_after) + 1), "X-RateLimit-Scope": "global" if global_ else "user"}
        if global_:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update({"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Bucket": "8a1c2b0de9f4",
                            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}", "X-RateLimit-Reset-After": f"{retry_after:.3f}"})
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_}
        self.fail_next(*[Response.json(body, 429, headers) for _ in range(count)],
                       match=lambda request: token in request.headers.get("authorization", ""))

    # -- rendering ------------------------------------------------------------------
    def render(self, stored: dict[str, Any], inline: bool = True) -> dict[str, Any]:
        channel = self.channels[stored["channel_id"]]
        mentioned = [self.users[u] for u in dict.fromkeys(_MENTION.findall(stored["content"])) if u in self.users]
        message: dict[str, Any] = {
            "type": stored["type"],
            "content": stored["content"],
            "mentions": mentioned,
            "mention_roles": [],
            "attachments": stored["attachments"],
            "embeds": stored["embeds"],
            "timestamp": _stamp(stored["at"]),
            "edited_timestamp": _stamp(stored["edited_at"]) if stored["edited_at"] else None,
            "flags": 32 if stored["thread_id"] else 0,
            "components": [],
            "id": stored["id"],
            "channel_id": stored["channel_id"],
            "author": self.users[stored["author"]],
            "pinned": False,
            "mention_everyone": False,
            "tts": False,
        }
        if stored["webhook"]:
            message["webhook_id"] = stored["author"]
        if "position" in stored:
            message["position"] = stored["position"]
        if stored["reply_to"]:
            message["message_reference"] = {"type": 0, "channel_id": stored["channel_id"], "message_id": stored["reply_to"],
                                            "guild_id": channel["guild_id"]}
            if inline:
                parent = self.messages[stored["channel_id"]].get(stored["reply_to"])
                message["referenced_message"] = self.render(parent, inline=False) if parent else None
        if stored["thread_id"] and stored["thread_id"] in self.channels:
            message["thread"] = dict(self.channels[stored["thread_id"]])
        return message

    # -- HTTP ---------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bot {self.token}":
            return self._json({"message": "401: Unauthorized", "code": 0}, 401)
        path = request.path.rstrip("/")
        if not path.startswith(API):
            return self._json({"message": "404: Not Found", "code": 0}, 404)
        path = path[len(API):]
        with self._data_lock:
            if path == "/users/@me":
                return self._json({**self.bot_user, "bot": True, "verified": True, "mfa_enabled": False, "locale": "en-US",
                                   "email": None})
            if m := re.fullmatch(r"/channels/(\d+)", path):
                return self._channel(m.group(1)) or self._json(self.channels[m.group(1)])
            if m := re.fullmatch(r"/channels/(\d+)/messages", path):
                return self._channel(m.group(1)) or self._messages(m.group(1), request)
            if m := re.fullmatch(r"/guilds/(\d+)/threads/active", path):
                return self._active_threads(m.group(1))
            if m := re.fullmatch(r"/guilds/(\d+)/members/(\d+)", path):
                return self._member(m.group(1), m.group(2))
        return self._json({"message": "404: Not Found", "code": 0}, 404)

    def _json(self, data: Any, status: int = 200) -> Response:
        return Response.json(data, status, {
            "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000", "X-RateLimit-Bucket": "41f9c81a0bd0",
        })

    def _channel(self, channel_id: str) -> Response | None:
        """The error for an unknown or hidden channel, or None when the bot may read it."""
        if channel_id not in self.channels:
            return self._json({"message": "Unknown Channel", "code": 10003}, 404)
        if channel_id in self.hidden or self.channels[channel_id].get("parent_id") in self.hidden:
            return self._json({"message": "Missing Access", "code": 50001}, 403)
        return None

    def _messages(self, channel_id: str, request: Request) -> Response:
        if self.channels[channel_id]["type"] == FORUM:
            return self._json({"message": "Cannot execute action on this channel type", "code": 50024}, 400)
        try:
            limit = int(request.arg("limit", "50") or 50)
            anchors = {k: int(request.arg(k) or 0) for k in ("before", "after", "around") if request.arg(k)}
        except ValueError:
            return self._invalid("NUMBER_TYPE_COERCE", "Value is not int.")
        if not 1 <= limit <= 100:
            return self._invalid("NUMBER_TYPE_MAX" if limit > 100 else "NUMBER_TYPE_MIN",
                                 "int value should be less than or equal to 100." if limit > 100 else "int value should be greater than or equal to 1.")
        stored = sorted(self.messages[channel_id].values(), key=lambda s: int(s["id"]))
        if "around" in anchors:
            pivot = anchors["around"]
            older = [s for s in stored if int(s["id"]) < pivot][-(limit // 2):] if limit > 1 else []
            newer = [s for s in stored if int(s["id"]) >= pivot][: limit - len(older)]
            chosen = older + newer
        elif "before" in anchors:
            chosen = [s for s in stored if int(s["id"]) < anchors["before"]][-limit:]
        elif "after" in anchors:
            chosen = [s for s in stored if int(s["id"]) > anchors["after"]][:limit]  # the oldest ones after the anchor
        else:
            chosen = stored[-limit:]
        return self._json([self.render(s) for s in reversed(chosen)])  # newest first, whatever the anchor

    def _invalid(self, code: str, message: str) -> Response:
        return self._json({"code": 50035, "errors": {"limit": {"_errors": [{"code": code, "message": message}]}},
                           "message": "Invalid Form Body"}, 400)

    def _active_threads(self, guild_id: str) -> Response:
        if guild_id not in self.guilds:
            return self._json({"message": "Unknown Guild", "code": 10004}, 404)
        threads = [dict(c) for c in self.channels.values() if c["type"] == PUBLIC_THREAD and c["guild_id"] == guild_id
                   and not c["thread_metadata"]["archived"] and c["parent_id"] not in self.hidden]
        return self._json({"threads": threads, "members": []})

    def _member(self, guild_id: str, user_id: str) -> Response:
        if guild_id not in self.guilds:
            return self._json({"message": "Unknown Guild", "code": 10004}, 404)
        roles = self.members[guild_id].get(user_id)
        if roles is None or user_id not in self.users:
            return self._json({"message": "Unknown Member", "code": 10007}, 404)
        return self._json({
            "avatar": None, "banner": None, "communication_disabled_until": None, "flags": 0,
            "joined_at": _stamp(time.time() - 86400 * 90), "nick": None, "pending": False, "premium_since": None,
            "roles": roles, "unusual_dm_activity_until": None, "user": self.users[user_id], "mute": False, "deaf": False,
        })


# -- earful demo ---------------------------------------------------------------------------

DEMO_TOKEN_VAR = "EARFUL_DEMO_DISCORD_TOKEN"


def demo_source(now: float) -> DemoSource:
    """The "Acme CRM Community" server from `demo_data/discord/community.json`, dated relative to `now`."""
    import json
    from importlib import resources

    data = json.loads((resources.files("earful.sandbox") / "demo_data" / "discord" / "community.json").read_text(encoding="utf-8"))
    server = DiscordServer(token=data["token"])
    guild = server.add_guild(data["guild"]["name"], data["guild"]["id"])
    for user in data["users"]:
        server.add_user(user["username"], user["id"], global_name=user.get("global_name"), bot=user.get("bot", False))
        server.add_member(guild, user["id"], user.get("roles", []))
    for channel in data["channels"]:
        server.add_channel(guild, channel["name"], channel["id"], type=channel.get("type", TEXT))
    ids = {c["name"]: c["id"] for c in data["channels"]}  # events name channels, threads and messages by key
    # Snowflakes carry their time, and the connector's first run reads the last day by snowflake: the ids must be
    # recent. Counting back from the full hour keeps them (and the tail of each snowflake, counted per message) the
    # same for every demo run within that hour.
    hour = now - now % 3600
    for event in data["events"]:  # in order: a thread needs its starter, a reply its parent
        at = hour - event["minutes_ago"] * 60
        channel = ids.get(event["channel"], event["channel"])
        if event.get("thread"):
            starter = ids[event["starter"]] if event.get("starter") else None
            ids[event["key"]] = server.add_thread(channel, event["thread"], owner=event["author"], at=at, starter=starter,
                                                  content=None if starter else event["content"])
            continue
        message = server.post(channel, event["author"], event["content"], at=at, type=event.get("type"),
                              reply_to=ids[event["reply_to"]] if event.get("reply_to") else None)
        if event.get("key"):
            ids[event["key"]] = message["id"]
    monitor = {
        "connector": "discord",
        "schedule": "*/5 * * * *",
        "base_url": "{url}",
        "bot_token": "${" + DEMO_TOKEN_VAR + "}",
        "channels": [c["id"] for c in data["channels"]],
        "include_threads": True,
        "brand_roles": data["brand_roles"],
    }
    return DemoSource("discord-acme", server, monitor, env={DEMO_TOKEN_VAR: data["token"]})
