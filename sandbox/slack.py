"""A fake Slack Web API on 127.0.0.1, for the tests and for `earful demo`.

It speaks the real wire format as far as earful uses it, because the point
is to catch what the real Slack would reject or answer differently:

* every method lives at `{url}/api/<method>` and takes its arguments from
  the query string, a urlencoded form or a JSON body (slack_sdk sends JSON
  for chat.postMessage/chat.update and a form for everything else);
* auth is `Authorization: Bearer <token>` (or a `token` argument); errors are
  HTTP 200 with `{"ok": false, "error": "<code>"}` (`not_authed`,
  `invalid_auth`, `channel_not_found`, `not_in_channel`, `is_archived`,
  `invalid_blocks` with `response_metadata.messages`, ...), and only rate
  limits use HTTP 429 with `Retry-After` and `{"ok":false,"error":"ratelimited"}`;
* `ts` values are "seconds.micros" strings from the wall clock, unique and
  increasing, so `oldest=<unix time>` filters work as on Slack;
* conversations.history returns newest first, hides `metadata` unless
  `include_all_metadata` is set, and pages with an opaque `cursor` /
  `response_metadata.next_cursor` ("" on the last page);
* Block Kit limits that Slack enforces (50 blocks, section text 3000, field
  2000, header 150, 10 context elements) are checked on every post;
* file uploads follow the three steps `files_upload_v2` takes:
  files.getUploadURLExternal (filename, length) answers an upload URL and a
  file id, the bytes are POSTed to that URL (no token: the URL is the
  credential), and files.completeUploadExternal (files=[{id, title}],
  channel_id) shares the file, which posts a message carrying it.

Standard library only: the demo ships it.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import parse_qs

from .server import FakeServer, Request, Response

DEFAULT_TOKEN = "xoxb-earful-fake-token"
DEFAULT_CHANNELS = {"C0123456789": "support"}
CUSTOMER_USER = "U0CUSTOMER1"

BLOCK_TYPES = {"section", "header", "context", "divider", "actions", "image", "rich_text", "markdown", "input", "file", "video", "table"}
TEXT_LIMIT = 40000


def _ts_micros(ts: str) -> int:
    return int(Decimal(ts) * 1_000_000)


def _ts_string(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _encode_cursor(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _decode_cursor(cursor: str, prefix: str) -> str | None:
    try:
        value = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return value.removeprefix(prefix) if value.startswith(prefix) else None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _bounded(value: Any, default: int, maximum: int) -> int:
    try:
        number = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        number = default
    return max(1, min(number, maximum))


def _json_arg(value: Any) -> Any:
    """Blocks and metadata arrive as JSON values, or as JSON strings in a form."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _text_length(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


def block_problems(blocks: Any) -> list[str]:
    """Slack-style messages for what the real API would reject in `blocks`."""
    if not isinstance(blocks, list):
        return ["[ERROR] expected an array [json-pointer:/blocks]"]
    problems = []
    if len(blocks) > 50:
        problems.append("[ERROR] no more than 50 items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"[ERROR] unsupported type [json-pointer:{where}/type]")
            continue
        kind = block["type"]
        if len(str(block.get("block_id", ""))) > 255:
            problems.append(f"[ERROR] must be less than 256 characters [json-pointer:{where}/block_id]")
        if kind == "section":
            fields = block.get("fields") or []
            if not block.get("text") and not fields:
                problems.append(f"[ERROR] must provide either text or fields [json-pointer:{where}]")
            if _text_length(block.get("text")) > 3000:
                problems.append(f"[ERROR] must be less than 3001 characters [json-pointer:{where}/text/text]")
            if len(fields) > 10:
                problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{where}/fields]")
            for j, field in enumerate(fields):
                if _text_length(field) > 2000:
                    problems.append(f"[ERROR] must be less than 2001 characters [json-pointer:{where}/fields/{j}/text]")
        elif kind == "header":
            text = block.get("text")
            if not isinstance(text, dict) or text.get("type") != "plain_text":
                problems.append(f"[ERROR] must be a plain_text object [json-pointer:{where}/text]")
            elif _text_length(text) > 150:
                problems.append(f"[ERROR] must be less than 151 characters [json-pointer:{where}/text/text]")
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                problems.append(f"[ERROR] must have between 1 and 10 items [json-pointer:{where}/elements]")
        elif kind == "actions" and len(block.get("elements") or []) > 25:
            problems.append(f"[ERROR] no more than 25 items allowed [json-pointer:{where}/elements]")
    return problems


class SlackServer(FakeServer):
    """A workspace with one bot (the token's owner) and a few channels.

    `channels` maps channel ids to names; the bot is a member of each.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        channels: dict[str, str] | None = None,
        *,
        team_id: str = "T0EARFUL01",
        bot_user_id: str = "U0EARFULBOT",
        bot_id: str = "B0EARFUL01",
    ) -> None:
        super().__init__()
        self.token = token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = "A0EARFUL01"
        self._data = threading.Lock()
        self._channels: dict[str, dict[str, Any]] = {}
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._last_micros = 0
        self._methods: dict[str, Callable[[dict[str, Any]], Response]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }
        self._uploads: dict[str, dict[str, Any]] = {}  # file id -> pending or completed upload
        for channel_id, name in (DEFAULT_CHANNELS if channels is None else channels).items():
            self.add_channel(name, channel_id)

    @property
    def api_url(self) -> str:
        """What to configure as the destination's `base_url`."""
        return f"{self.url}/api/"

    # -- scripting ------------------------------------------------------------
    def add_channel(self, name: str, channel_id: str | None = None, *, private: bool = False, archived: bool = False, member: bool = True) -> str:
        """Create a channel; returns its id."""
        with self._data:
            channel_id = channel_id or f"C0{len(self._channels) + 1:09d}"
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name.lstrip("#"),
                "is_channel": not private,
                "is_group": False,
                "is_im": False,
                "is_mpim": False,
                "is_private": private,
                "is_archived": archived,
                "is_general": False,
                "is_member": member,
                "is_shared": False,
                "is_ext_shared": False,
                "is_org_shared": False,
                "created": int(time.time()),
                "creator": CUSTOMER_USER,
                "name_normalized": name.lstrip("#"),
                "num_members": 3,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "previous_names": [],
            }
            self._history.setdefault(channel_id, [])
        return channel_id

    def add_message(self, channel: str, text: str, *, user: str = CUSTOMER_USER, metadata: dict[str, Any] | None = None) -> str:
        """Somebody else says something in `channel` (to fill history); returns its ts."""
        with self._data:
            found = self._channel(channel, by_name=True)
            if found is None:
                raise KeyError(f"unknown channel {channel}")
            message = {"user": user, "type": "message", "ts": self._next_ts(), "text": text, "team": self.team_id}
            if metadata is not None:
                message["metadata"] = metadata
            self._history[found["id"]].append(message)
            return message["ts"]

    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        """Answer the next `n` calls (any method) with HTTP 429, as Slack does."""
        response = Response.json({"ok": False, "error": "ratelimited"}, 429, self._headers({"Retry-After": str(retry_after)}))
        self.fail_next(*[response] * n)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Stored messages of `channel` (id or #name), oldest first, metadata included."""
        with self._data:
            found = self._channel(channel, by_name=True)
            return copy.deepcopy(self._history[found["id"]]) if found else []

    def posted_keys(self, channel: str | None = None) -> list[str]:
        """Item keys from earful's message metadata, in posting order."""
        with self._data:
            if channel is None:
                ids = list(self._history)
            else:
                found = self._channel(channel, by_name=True)
                ids = [found["id"]] if found else []
            messages = sorted((m for cid in ids for m in self._history[cid]), key=lambda m: _ts_micros(m["ts"]))
        return [
            m["metadata"]["event_payload"]["key"]
            for m in messages
            if isinstance(m.get("metadata"), dict) and "key" in (m["metadata"].get("event_payload") or {})
        ]

    # -- HTTP -----------------------------------------------------------------
    def uploaded_files(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Completed uploads (shared to `channel`, id or #name, if given), oldest first; `data` holds the bytes."""
        with self._data:
            found = self._channel(channel, by_name=True) if channel is not None else None
            if channel is not None and found is None:
                return []
            return [copy.deepcopy(u) for u in self._uploads.values()
                    if u.get("completed") and (found is None or found["id"] in u["channels"])]

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/upload/v1/"):
            with self._data:
                return self._receive_upload(request)
        method = request.path.removeprefix("/api/") if request.path.startswith("/api/") else ""
        params = self._params(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or params.get("token")
        if method not in self._methods:
            return self._error("unknown_method", req_method=method)
        if not token:
            return self._error("not_authed")
        if token != self.token:
            return self._error("invalid_auth")
        with self._data:
            return self._methods[method](params)

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
        ctype = request.headers.get("content-type", "")
        if "json" in ctype:
            body = request.json()
            if isinstance(body, dict):
                params.update(body)
        elif "x-www-form-urlencoded" in ctype:
            params.update({k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True).items()})
        return params

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            "X-Slack-Req-Id": secrets.token_hex(16),
            "X-OAuth-Scopes": "chat:write,channels:history,channels:read,groups:history",
            "Access-Control-Expose-Headers": "x-slack-req-id, retry-after",
            "Cache-Control": "private, no-cache, no-store, must-revalidate",
            **(extra or {}),
        }

    def _ok(self, **body: Any) -> Response:
        return Response.json({"ok": True, **body}, 200, self._headers())

    def _error(self, code: str, **body: Any) -> Response:
        return Response.json({"ok": False, "error": code, **body}, 200, self._headers())

    # -- state (callers hold self._data) -------------------------------------
    def _next_ts(self) -> str:
        self._last_micros = max(int(time.time() * 1_000_000), self._last_micros + 1)
        return _ts_string(self._last_micros)

    def _channel(self, ref: str | None, *, by_name: bool) -> dict[str, Any] | None:
        if not ref:
            return None
        if ref in self._channels:
            return self._channels[ref]
        if by_name:
            name = ref.lstrip("#")
            return next((c for c in self._channels.values() if c["name"] == name), None)
        return None

    def _bot_message(self, ts: str, text: str, blocks: list[dict[str, Any]], metadata: dict[str, Any] | None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text,
            "team": self.team_id,
            "bot_profile": {"id": self.bot_id, "app_id": self.app_id, "name": "earful", "deleted": False, "team_id": self.team_id},
            "blocks": [{"block_id": secrets.token_urlsafe(3), **b} for b in blocks],
        }
        if metadata is not None:
            message["metadata"] = metadata
        return message

    def _check_content(self, params: dict[str, Any], *, require: bool) -> tuple[str | None, Any, Any]:
        """(error, blocks, metadata) for the text/blocks/metadata of a post or update."""
        text = params.get("text")
        blocks = _json_arg(params.get("blocks"))
        metadata = _json_arg(params.get("metadata"))
        if require and not text and not blocks:
            return "no_text", None, None
        if text and len(str(text)) > TEXT_LIMIT:
            return "msg_too_long", None, None
        if blocks is not None and block_problems(blocks):
            return "invalid_blocks", blocks, None
        if metadata is not None and not (
            isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str) and metadata["event_type"] and isinstance(metadata.get("event_payload"), dict)
        ):
            return "invalid_metadata_format", None, None
        return None, blocks, metadata

    # -- methods --------------------------------------------------------------
    def _auth_test(self, params: dict[str, Any]) -> Response:
        return self._ok(
            url="https://earful-demo.slack.com/",
            team="earful demo",
            user="earful",
            team_id=self.team_id,
            user_id=self.bot_user_id,
            bot_id=self.bot_id,
            is_enterprise_install=False,
        )

    def _post_message(self, params: dict[str, Any]) -> Response:
        channel = self._channel(params.get("channel"), by_name=True)
        if channel is None or (channel["is_private"] and not channel["is_member"]):
            return self._error("channel_not_found")
        if channel["is_archived"]:
            return self._error("is_archived")
        if not channel["is_member"]:
            return self._error("not_in_channel")
        error, blocks, metadata = self._check_content(params, require=True)
        if error == "invalid_blocks":
            return self._error(error, response_metadata={"messages": block_problems(blocks)})
        if error:
            return self._error(error)
        message = self._bot_message(self._next_ts(), str(params.get("text") or ""), blocks or [], metadata)
        thread_ts = params.get("thread_ts")
        if thread_ts:
            parent = next((m for m in self._history[channel["id"]] if m["ts"] == thread_ts), None)
            if parent is None:
                return self._error("thread_not_found")
            message["thread_ts"] = thread_ts
            if _truthy(params.get("reply_broadcast")):
                message["subtype"] = "thread_broadcast"
            parent.setdefault("thread_ts", thread_ts)
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = message["ts"]
        self._history[channel["id"]].append(message)
        return self._ok(channel=channel["id"], ts=message["ts"], message=copy.deepcopy(message))

    def _update(self, params: dict[str, Any]) -> Response:
        channel = self._channel(params.get("channel"), by_name=False)
        if channel is None:
            return self._error("channel_not_found")
        ts = str(params.get("ts") or "")
        message = next((m for m in self._history[channel["id"]] if m["ts"] == ts), None)
        if message is None:
            return self._error("message_not_found")
        if message.get("bot_id") != self.bot_id:
            return self._error("cant_update_message")
        error, blocks, metadata = self._check_content(params, require=False)
        if error == "invalid_blocks":
            return self._error(error, response_metadata={"messages": block_problems(blocks)})
        if error:
            return self._error(error)
        if params.get("text") is not None:
            message["text"] = str(params["text"])
        if blocks is not None:  # as on Slack: omitted blocks are kept, [] removes them
            message["blocks"] = self._bot_message(ts, "", blocks, None)["blocks"]
        if metadata is not None:
            message["metadata"] = metadata
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return self._ok(channel=channel["id"], ts=ts, text=message["text"], message=copy.deepcopy(message))

    def _conversations_history(self, params: dict[str, Any]) -> Response:
        channel = self._channel(params.get("channel"), by_name=False)
        if channel is None or (channel["is_private"] and not channel["is_member"]):
            return self._error("channel_not_found")
        if not channel["is_member"]:
            return self._error("not_in_channel")
        try:
            oldest = _ts_micros(str(params.get("oldest") or "0"))
            latest = _ts_micros(str(params["latest"])) if params.get("latest") else None
        except InvalidOperation:
            return self._error("invalid_ts_oldest")
        inclusive = _truthy(params.get("inclusive"))
        limit = _bounded(params.get("limit"), 100, 999)

        def in_range(message: dict[str, Any]) -> bool:
            ts = _ts_micros(message["ts"])
            above = ts >= oldest if inclusive else ts > oldest
            below = latest is None or (ts <= latest if inclusive else ts < latest)
            return above and below

        selected = [m for m in reversed(self._history[channel["id"]]) if in_range(m)]
        if params.get("cursor"):
            start = _decode_cursor(str(params["cursor"]), "next_ts:")
            if start is None or not start.isdigit():
                return self._error("invalid_cursor")
            selected = [m for m in selected if _ts_micros(m["ts"]) <= int(start)]
        page, rest = selected[:limit], selected[limit:]
        with_metadata = _truthy(params.get("include_all_metadata"))
        messages = [copy.deepcopy(m) if with_metadata else {k: v for k, v in copy.deepcopy(m).items() if k != "metadata"} for m in page]
        next_cursor = _encode_cursor(f"next_ts:{_ts_micros(rest[0]['ts'])}") if rest else ""
        return self._ok(
            messages=messages,
            has_more=bool(rest),
            pin_count=0,
            channel_actions_ts=None,
            channel_actions_count=0,
            response_metadata={"next_cursor": next_cursor},
        )

    def _conversations_info(self, params: dict[str, Any]) -> Response:
        """By id only, as Slack: a #name is `channel_not_found`; so is a private channel the bot is not in."""
        channel = self._channel(params.get("channel"), by_name=False)
        if channel is None or (channel["is_private"] and not channel["is_member"]):
            return self._error("channel_not_found")
        return self._ok(channel=copy.deepcopy(channel))

    def _conversations_list(self, params: dict[str, Any]) -> Response:
        types = set(str(params.get("types") or "public_channel").split(","))
        exclude_archived = _truthy(params.get("exclude_archived"))
        limit = _bounded(params.get("limit"), 100, 1000)
        visible = [
            c
            for c in self._channels.values()
            if ("private_channel" if c["is_private"] else "public_channel") in types
            and (c["is_member"] or not c["is_private"])
            and not (exclude_archived and c["is_archived"])
        ]
        if params.get("cursor"):
            start = _decode_cursor(str(params["cursor"]), "team:")
            ids = [c["id"] for c in visible]
            if start not in ids:
                return self._error("invalid_cursor")
            visible = visible[ids.index(start) :]
        page, rest = visible[:limit], visible[limit:]
        next_cursor = _encode_cursor(f"team:{rest[0]['id']}") if rest else ""
        return self._ok(channels=copy.deepcopy(page), response_metadata={"next_cursor": next_cursor})

    # -- file uploads (files_upload_v2) -----------------------------------------
    def _get_upload_url(self, params: dict[str, Any]) -> Response:
        filename = str(params.get("filename") or "")
        try:
            length = int(params.get("length"))
        except (TypeError, ValueError):
            length = 0
        if not filename or length <= 0:
            return self._error("invalid_arguments", response_metadata={"messages": ["[ERROR] filename and a positive length are required"]})
        file_id = f"F0{secrets.token_hex(5).upper()}"
        self._uploads[file_id] = {"id": file_id, "name": filename, "length": length, "alt_txt": params.get("alt_txt"),
                                  "data": None, "completed": False, "channels": []}
        return self._ok(upload_url=f"{self.url}/upload/v1/{file_id}", file_id=file_id)

    def _receive_upload(self, request: Request) -> Response:
        file_id = request.path.removeprefix("/upload/v1/")
        upload = self._uploads.get(file_id)
        if request.method != "POST" or upload is None or upload["completed"]:
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        if len(request.body) != upload["length"]:
            return Response(400, f"expected {upload['length']} bytes, got {len(request.body)}".encode(), {"Content-Type": "text/plain"})
        upload["data"] = request.body
        return Response(200, f"OK - {len(request.body)}".encode(), {"Content-Type": "text/plain"})

    def _complete_upload(self, params: dict[str, Any]) -> Response:
        files = _json_arg(params.get("files"))
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) and f.get("id") for f in files):
            return self._error("invalid_arguments")
        for entry in files:
            upload = self._uploads.get(str(entry["id"]))
            if upload is None or upload["data"] is None or upload["completed"]:
                return self._error("file_not_found")
        channel = None
        if params.get("channel_id"):
            channel = self._channel(str(params["channel_id"]), by_name=False)  # ids only, as on Slack
            if channel is None or (channel["is_private"] and not channel["is_member"]):
                return self._error("channel_not_found")
            if not channel["is_member"]:
                return self._error("not_in_channel")
        shared = []
        for entry in files:
            upload = self._uploads[str(entry["id"])]
            is_png = upload["data"].startswith(b"\x89PNG\r\n\x1a\n")
            upload.update(completed=True, title=entry.get("title") or upload["name"], created=int(time.time()),
                          mimetype="image/png" if is_png else "application/octet-stream", filetype="png" if is_png else "binary",
                          size=len(upload["data"]), user=self.bot_user_id, channels=[channel["id"]] if channel else [])
            shared.append({k: upload[k] for k in ("id", "name", "title", "mimetype", "filetype", "size", "created", "user", "channels")})
        if channel is not None:
            message = {"user": self.bot_user_id, "type": "message", "ts": self._next_ts(), "bot_id": self.bot_id,
                       "text": str(params.get("initial_comment") or ""), "team": self.team_id, "upload": True,
                       "files": copy.deepcopy(shared)}
            if params.get("thread_ts"):
                message["thread_ts"] = str(params["thread_ts"])
            self._history[channel["id"]].append(message)
        return self._ok(files=[{"id": f["id"], "title": f["title"]} for f in shared])
