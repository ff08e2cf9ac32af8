"""A fake Mastodon instance (4.x REST API, the read side), standard library only.

It serves `/api/v2/instance` (`domain`; `instance_v2 = False` answers 404
there, as Mastodon 3.x did) and `/api/v1/instance` (`uri`), `/api/v1/accounts/verify_credentials`, `/api/v1/timelines/tag/:tag`, `/api/v1/notifications`
(`types[]`/`exclude_types[]`), `/api/v2/search` (`type=statuses`,
`offset`, `min_id`/`max_id`) and `/api/v1/statuses/:id/context` the way
Mastodon does, as recorded by Mastodon.py's test suite: numeric string ids
that are snowflakes of the status's *publication* time (a status from
another server that arrives late gets an old id), `min_id` answering the
statuses right after it but still newest first, `Link` headers with
`rel="next"` (`max_id`) and `rel="prev"` (`min_id`) on the instance's own
domain, HTML `content` with Mastodon's mention/hashtag/link markup (long
links split into invisible/ellipsis spans), `acct` without a domain for
local accounts, `x-ratelimit-limit/remaining/reset` headers on every answer,
errors as `{"error": "..."}` (401 "The access token is invalid", 404
"Record not found"), and a throttled 429 without Retry-After. Anonymous
readers get no statuses from search and at most 60 descendants in a
context, as on a real instance.
"""

from __future__ import annotations

import html
import itertools
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote, urlencode

from .server import DemoSource, FakeServer, Request, Response

ANON_DESCENDANTS = 60
_TAG = re.compile(r"(?<![\w/])#(\w+)", re.UNICODE)
_MENTION = re.compile(r"(?<![\w/])@(\w+)(?:@([\w.-]+\w))?")
_URL = re.compile(r"https?://[^\s<>\"]+")
_WORD = re.compile(r"\w+", re.UNICODE)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(at * 1000) % 1000:03d}Z"


class MastodonServer(FakeServer):
    """One instance (`domain`) with its local accounts and the remote ones it knows."""

    def __init__(self, domain: str = "mastodon.example") -> None:
        super().__init__()
        self.domain = domain
        self.accounts: dict[str, dict[str, Any]] = {}
        self.statuses: dict[int, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.tokens: dict[str, str] = {}  # token -> account id
        self.search_enabled = True
        self.instance_v2 = True
        self.remaining = 300
        self._data_lock = threading.RLock()
        self._sequence = itertools.count(1)
        self._notification_ids = itertools.count(1)

    # -- building data -------------------------------------------------------
    def add_account(self, username: str, domain: str | None = None, *, display_name: str = "", bot: bool = False,
                    token: str | None = None) -> str:
        """A local account (domain None) or a remote one; `token` lets requests act as it."""
        with self._data_lock:
            account_id = str(self.snowflake(time.time() - 86400 * 365))
            home = domain or self.domain
            self.accounts[account_id] = {
                "id": account_id,
                "username": username,
                "acct": username if domain is None else f"{username}@{domain}",
                "display_name": display_name,
                "locked": False,
                "bot": bot,
                "discoverable": True,
                "indexable": True,
                "group": False,
                "created_at": _iso(time.time() - 86400 * 365)[:10] + "T00:00:00.000Z",
                "note": "",
                "url": f"https://{home}/@{username}",
                "uri": f"https://{home}/users/{username}",
                "avatar": f"https://{self.domain}/avatars/original/missing.png",
                "avatar_static": f"https://{self.domain}/avatars/original/missing.png",
                "header": f"https://{self.domain}/headers/original/missing.png",
                "header_static": f"https://{self.domain}/headers/original/missing.png",
                "followers_count": 12,
                "following_count": 30,
                "statuses_count": 0,
                "last_status_at": None,
                "hide_collections": None,
                "noindex": False,
                "emojis": [],
                "roles": [],
                "fields": [],
            }
            if token:
                self.tokens[token] = account_id
            return account_id

    def snowflake(self, at: float) -> int:
        """Mastodon's id for something published at `at`: milliseconds << 16, plus a sequence."""
        return (int(at * 1000) << 16) | (next(self._sequence) & 0xFFFF)

    def post(self, account: str, text: str, *, at: float | None = None, in_reply_to: str | int | None = None,
             spoiler: str = "", language: str | None = "en", visibility: str = "public", card_url: str | None = None,
             poll: list[str] | None = None, arrived: float | None = None, id: int | None = None) -> dict[str, Any]:
        """Publish `text` (plain text; rendered to Mastodon's HTML) as `account`, dated `at`.

        `arrived` (default `at`) is when the instance received it: a remote
        status arriving late keeps the id of its publication time, and its
        mention notification is dated on arrival. `id` overrides the id
        (sample data keeps its ids from one demo run to the next).
        """
        with self._data_lock:
            at = time.time() if at is None else at
            status_id = id if id is not None else self.snowflake(at)
            if status_id in self.statuses:
                raise ValueError(f"status {status_id} exists")
            author = self.accounts[account]
            parent = self.statuses.get(int(in_reply_to)) if in_reply_to is not None else None
            if in_reply_to is not None and parent is None:
                raise ValueError(f"unknown status {in_reply_to}")
            home = author["url"].split("/")[2]
            mentioned = self._mentioned(text)
            stored = {
                "id": status_id,
                "account": account,
                "text": text,
                "at": at,
                "edited_at": None,
                "in_reply_to": parent["id"] if parent else None,
                "spoiler": spoiler,
                "language": language,
                "visibility": visibility,
                "card_url": card_url,
                "poll": list(poll or []),
                "mentions": mentioned,
                "tags": list(dict.fromkeys(t.lower() for t in _TAG.findall(text))),
                "uri": f"https://{home}/users/{author['username']}/statuses/{status_id}",
                "url": f"https://{home}/@{author['username']}/{status_id}",
            }
            self.statuses[status_id] = stored
            author["statuses_count"] += 1
            author["last_status_at"] = _iso(at)[:10]
            for target in {m["id"] for m in mentioned} | ({parent["account"]} if parent else set()):
                if target != account and target in self.tokens.values():
                    self.notifications.append({"id": next(self._notification_ids), "type": "mention", "status": status_id,
                                               "account": account, "at": arrived or at, "target": target})
            return self.render(stored)

    def _mentioned(self, text: str) -> list[dict[str, Any]]:
        found = []
        for username, domain in _MENTION.findall(text):
            acct = username if domain in ("", self.domain) else f"{username}@{domain}"
            account = next((a for a in self.accounts.values() if a["acct"].lower() == acct.lower()), None)
            if account and account not in found:
                found.append(account)
        return found

    def edit(self, status_id: str | int, text: str, at: float | None = None) -> None:
        with self._data_lock:
            stored = self.statuses[int(status_id)]
            stored["text"] = text
            stored["tags"] = list(dict.fromkeys(t.lower() for t in _TAG.findall(text)))
            stored["edited_at"] = time.time() if at is None else at

    def delete(self, status_id: str | int) -> None:
        """Delete a status; like Mastodon, its notifications go with it."""
        with self._data_lock:
            del self.statuses[int(status_id)]
            self.notifications = [n for n in self.notifications if n["status"] != int(status_id)]

    def revoke(self, token: str) -> None:
        with self._data_lock:
            self.tokens.pop(token, None)

    def rate_limit_next(self, reset_in: float = 120.0) -> None:
        """The next request is throttled the way Mastodon's rack-attack answers (no Retry-After)."""
        self.fail_next(Response.json({"error": "Too many requests"}, 429, {
            "x-ratelimit-limit": "300", "x-ratelimit-remaining": "0", "x-ratelimit-reset": _iso_precise(time.time() + reset_in)}))

    # -- rendering ------------------------------------------------------------------
    def render(self, stored: dict[str, Any]) -> dict[str, Any]:
        author = self.accounts[stored["account"]]
        parent = self.statuses.get(stored["in_reply_to"]) if stored["in_reply_to"] else None
        replies = sum(1 for s in self.statuses.values() if s["in_reply_to"] == stored["id"])
        local = author["acct"] == author["username"]
        return {
            "id": str(stored["id"]),
            "created_at": _iso(stored["at"]),
            "in_reply_to_id": str(stored["in_reply_to"]) if stored["in_reply_to"] else None,
            "in_reply_to_account_id": parent["account"] if parent else None,
            "sensitive": bool(stored["spoiler"]),
            "spoiler_text": stored["spoiler"],
            "visibility": stored["visibility"],
            "language": stored["language"],
            "uri": stored["uri"],
            "url": stored["url"],
            "replies_count": replies,
            "reblogs_count": 0,
            "favourites_count": 0,
            "quotes_count": 0,
            "edited_at": _iso(stored["edited_at"]) if stored["edited_at"] else None,
            "favourited": False,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "content": self.content_html(stored["text"]),
            "filtered": [],
            "reblog": None,
            "application": {"name": "Web", "website": None} if local else None,
            "account": author,
            "media_attachments": [],
            "mentions": [{"id": a["id"], "username": a["username"], "url": a["url"], "acct": a["acct"]} for a in stored["mentions"]],
            "tags": [{"name": t, "url": f"https://{self.domain}/tags/{t}"} for t in stored["tags"]],
            "emojis": [],
            "quote": None,
            "card": _card(stored["card_url"]) if stored["card_url"] else None,
            "poll": _poll(stored) if stored["poll"] else None,
        }

    def content_html(self, text: str) -> str:
        """Plain text as Mastodon renders it: paragraphs, h-card mentions, hashtag links, split long links."""
        paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
        return "".join(f"<p>{'<br />'.join(self._inline(line) for line in p.split(chr(10)))}</p>" for p in paragraphs)

    def _inline(self, line: str) -> str:
        pattern = re.compile(f"{_URL.pattern}|{_MENTION.pattern}|{_TAG.pattern}", re.UNICODE)
        out, last = [], 0
        for m in pattern.finditer(line):
            out.append(html.escape(line[last:m.start()], quote=False))
            token = m.group(0)
            if token.startswith("http"):
                out.append(_link_html(token))
            elif token.startswith("@"):
                account = next(iter(self._mentioned(token)), None)
                out.append(
                    f'<span class="h-card" translate="no"><a href="{account["url"]}" class="u-url mention">@<span>'
                    f'{html.escape(account["username"])}</span></a></span>' if account else html.escape(token, quote=False))
            else:
                tag = token[1:]
                out.append(f'<a href="https://{self.domain}/tags/{quote(tag.lower())}" class="mention hashtag" rel="tag">#<span>'
                           f"{html.escape(tag)}</span></a>")
            last = m.end()
        out.append(html.escape(line[last:], quote=False))
        return "".join(out)

    # -- HTTP ---------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        with self._data_lock:
            self.remaining = max(0, self.remaining - 1)
            auth = request.headers.get("authorization", "")
            viewer = self.tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
            if auth and viewer is None:
                return self._json({"error": "The access token is invalid"}, 401)
            path = request.path.rstrip("/")
            if path == "/api/v2/instance" and self.instance_v2:
                return self._json(self._instance_v2())
            if path == "/api/v1/instance":
                return self._json({"uri": self.domain, "title": "Mastodon", "short_description": "", "description": "",
                                   "email": f"admin@{self.domain}", "version": "3.5.3", "urls": {"streaming_api": f"wss://{self.domain}"},
                                   "stats": {"user_count": len(self.accounts), "status_count": len(self.statuses), "domain_count": 1},
                                   "languages": ["en"], "registrations": False, "approval_required": False, "invites_enabled": False})
            if m := re.fullmatch(r"/api/v1/timelines/tag/([^/]+)", path):
                tag = unquote(m.group(1)).lower()
                chosen = [s for s in self._sorted() if tag in s["tags"] and s["visibility"] == "public"]
                return self._paged(request, path, chosen, lambda s: s["id"], self.render, default=20, maximum=40)
            if path == "/api/v1/accounts/verify_credentials":
                if viewer is None:
                    return self._json({"error": "The access token is invalid"}, 401)
                return self._json({**self.accounts[viewer], "source": {"privacy": "public", "sensitive": False, "language": "",
                                                                       "note": "", "fields": [], "follow_requests_count": 0}})
            if path == "/api/v1/notifications":
                if viewer is None:
                    return self._json({"error": "The access token is invalid"}, 401)
                return self._notifications(request, path, viewer)
            if path == "/api/v2/search":
                return self._search(request, viewer)
            if m := re.fullmatch(r"/api/v1/statuses/(\d+)/context", path):
                return self._context(int(m.group(1)), viewer)
            if m := re.fullmatch(r"/api/v1/statuses/(\d+)", path):
                stored = self.statuses.get(int(m.group(1)))
                return self._json(self.render(stored)) if stored else self._json({"error": "Record not found"}, 404)
        return self._json({"error": "Not Found"}, 404)

    def _instance_v2(self) -> dict[str, Any]:
        """The v2 instance entity (Mastodon 4.x), trimmed to what a client reads: `domain` is the instance's LOCAL_DOMAIN."""
        return {"domain": self.domain, "title": "Mastodon", "version": "4.3.0", "source_url": "https://github.com/mastodon/mastodon",
                "description": "", "usage": {"users": {"active_month": len(self.accounts)}},
                "thumbnail": {"url": f"https://{self.domain}/packs/media/images/preview.png"}, "languages": ["en"],
                "configuration": {"urls": {"streaming": f"wss://{self.domain}", "status": None},
                                  "statuses": {"max_characters": 500, "max_media_attachments": 4}},
                "registrations": {"enabled": False, "approval_required": False, "message": None},
                "contact": {"email": f"admin@{self.domain}", "account": None}, "rules": []}

    def _json(self, data: Any, status: int = 200, extra: dict[str, str] | None = None) -> Response:
        reset = (int(time.time()) // 300 + 1) * 300
        headers = {"x-ratelimit-limit": "300", "x-ratelimit-remaining": str(self.remaining),
                   "x-ratelimit-reset": _iso_precise(reset), "vary": "Authorization, Origin", **(extra or {})}
        return Response.json(data, status, headers)

    def _sorted(self) -> list[dict[str, Any]]:
        return sorted(self.statuses.values(), key=lambda s: s["id"])

    def _paged(self, request: Request, path: str, items: list[Any], key: Any, render: Any, *, default: int, maximum: int,
               extra: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()) -> Response:
        """Mastodon's `paginate_by_id`: max_id/since_id newest first; min_id takes the ones right after it."""
        try:
            limit = min(maximum, max(1, int(request.arg("limit") or default)))
            max_id, since_id, min_id = (int(request.arg(k) or 0) or None for k in ("max_id", "since_id", "min_id"))
        except ValueError:
            return self._json({"error": "Invalid pagination parameter"}, 422)
        chosen = [i for i in items if (max_id is None or key(i) < max_id) and (since_id is None or key(i) > since_id)]
        if min_id is not None:
            chosen = [i for i in chosen if key(i) > min_id][:limit][::-1]  # the oldest ones after min_id, newest first
        else:
            chosen = chosen[::-1][:limit]
        links = {}
        if chosen:
            base = f"https://{self.domain}{path}"
            links["Link"] = (f'<{base}?{urlencode(list(extra) + [("max_id", key(chosen[-1]))])}>; rel="next", '
                             f'<{base}?{urlencode(list(extra) + [("min_id", key(chosen[0]))])}>; rel="prev"')
        return self._json([render(i) for i in chosen], extra=links)

    def _notifications(self, request: Request, path: str, viewer: str) -> Response:
        types = request.query.get("types[]") or []
        excluded = request.query.get("exclude_types[]") or []
        mine = [n for n in self.notifications if n["target"] == viewer and n["status"] in self.statuses
                and (not types or n["type"] in types) and n["type"] not in excluded]
        mine.sort(key=lambda n: n["id"])
        extra = [("types[]", t) for t in types]
        return self._paged(request, path, mine, lambda n: n["id"], self._notification, default=40, maximum=80, extra=extra)

    def _notification(self, n: dict[str, Any]) -> dict[str, Any]:
        return {"id": str(n["id"]), "type": n["type"], "created_at": _iso(n["at"]), "group_key": f"ungrouped-{n['id']}",
                "account": self.accounts[n["account"]], "status": self.render(self.statuses[n["status"]])}

    def _search(self, request: Request, viewer: str | None) -> Response:
        query = request.arg("q", "") or ""
        empty = {"accounts": [], "statuses": [], "hashtags": []}
        try:
            limit = min(40, max(1, int(request.arg("limit") or 20)))
            offset = int(request.arg("offset") or 0)
            min_id, max_id = (int(request.arg(k) or 0) or None for k in ("min_id", "max_id"))
        except ValueError:
            return self._json({"error": "Invalid search parameter"}, 422)
        if offset and viewer is None:
            return self._json({"error": "Search queries pagination is not supported without authentication"}, 401)
        if request.arg("type") not in (None, "statuses") or viewer is None or not self.search_enabled:
            return self._json(empty)
        words = [w.lower() for w in _WORD.findall(query)]
        hits = [s for s in self._sorted()[::-1] if s["visibility"] == "public" and words
                and all(w in {t.lower() for t in _WORD.findall(s["spoiler"] + " " + s["text"])} for w in words)
                and (min_id is None or s["id"] > min_id) and (max_id is None or s["id"] < max_id)]
        return self._json({**empty, "statuses": [self.render(s) for s in hits[offset:offset + limit]]})

    def _context(self, status_id: int, viewer: str | None) -> Response:
        stored = self.statuses.get(status_id)
        if stored is None:
            return self._json({"error": "Record not found"}, 404)
        ancestors = []
        parent = self.statuses.get(stored["in_reply_to"]) if stored["in_reply_to"] else None
        while parent is not None:
            ancestors.insert(0, parent)
            parent = self.statuses.get(parent["in_reply_to"]) if parent["in_reply_to"] else None
        descendants: list[dict[str, Any]] = []

        def walk(node: int) -> None:
            for child in sorted((s for s in self.statuses.values() if s["in_reply_to"] == node), key=lambda s: s["id"]):
                descendants.append(child)
                walk(child["id"])

        walk(status_id)
        if viewer is None:
            descendants = descendants[:ANON_DESCENDANTS]
        return self._json({"ancestors": [self.render(s) for s in ancestors], "descendants": [self.render(s) for s in descendants]})


def _iso_precise(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _link_html(url: str) -> str:
    """Mastodon's link markup: scheme hidden, the first 30 characters shown, an ellipsis for the rest."""
    scheme, rest = url.split("://", 1)
    shown, hidden = rest[:30], rest[30:]
    middle = f'<span class="ellipsis">{html.escape(shown)}</span><span class="invisible">{html.escape(hidden)}</span>' if hidden \
        else f'<span class="">{html.escape(shown)}</span>'
    return (f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
            f'<span class="invisible">{scheme}://</span>{middle}</a>')


def _card(url: str) -> dict[str, Any]:
    return {"url": url, "title": "", "description": "", "language": "en", "type": "link", "author_name": "", "author_url": "",
            "provider_name": url.split("/")[2], "provider_url": "", "html": "", "width": 400, "height": 210, "image": None,
            "image_description": "", "embed_url": "", "blurhash": None, "published_at": None, "authors": []}


def _poll(stored: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(stored["id"] % 100000), "expires_at": None, "expired": False, "multiple": False, "votes_count": 0,
            "voters_count": 0, "voted": False, "own_votes": [], "emojis": [],
            "options": [{"title": o, "votes_count": 0} for o in stored["poll"]]}


# -- earful demo ---------------------------------------------------------------------------

DEMO_TOKEN_VAR = "EARFUL_DEMO_MASTODON_TOKEN"
DEMO_ID_EPOCH = 1_793_491_200  # 2026-11-01T00:00:00Z


def demo_source(now: float) -> DemoSource:
    """mastodon.example with the #acmecrm hashtag, mentions of @acme and search, from `demo_data/mastodon/instance.json`."""
    import json
    from importlib import resources

    data = json.loads((resources.files("earful.sandbox") / "demo_data" / "mastodon" / "instance.json").read_text(encoding="utf-8"))
    server = MastodonServer(domain=data["domain"])
    accounts: dict[str, str] = {}
    for account in data["accounts"]:
        name, _, domain = account["acct"].partition("@")
        accounts[account["acct"]] = server.add_account(name, domain or None, display_name=account.get("display_name", ""),
                                                       token=account.get("token"))
    posted: dict[str, str] = {}
    for n, status in enumerate(data["statuses"]):
        reply_to = posted[status["reply_to"]] if status.get("reply_to") else None
        # Ids made from a fixed moment, in the file's (chronological) order, stay the same from one demo run to the
        # next, so a repeated demo finds nothing new; the dates still follow the demo's clock.
        made = server.post(accounts[status["acct"]], status["text"], at=now - status["minutes_ago"] * 60, in_reply_to=reply_to,
                           spoiler=status.get("spoiler", ""), language=status.get("language", "en"), card_url=status.get("card"),
                           id=(int((DEMO_ID_EPOCH + 60 * n) * 1000) << 16) | n)
        if status.get("key"):
            posted[status["key"]] = made["id"]
    token = next(a["token"] for a in data["accounts"] if a.get("token"))
    monitor = {
        "connector": "mastodon",
        "schedule": "*/10 * * * *",
        "query": "acme",
        "base_url": "{url}",
        "access_token": "${" + DEMO_TOKEN_VAR + "}",
        "hashtags": data["hashtags"],
        "search": True,
    }
    return DemoSource("mastodon-acme", server, monitor, env={DEMO_TOKEN_VAR: token})
