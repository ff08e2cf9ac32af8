"""A fake Bluesky (PDS + AppView XRPC, the parts a reader uses), standard library only.

XRPC methods served under `/xrpc/`: `com.atproto.server.createSession` and
`refreshSession` (POST; JWTs with real `exp` claims, refresh tokens
rotated on use), `app.bsky.feed.searchPosts` (`q`, `sort=latest|top`,
`since` inclusive / `until` exclusive on sortAt, `limit` 1-100, opaque
`cursor`, omitted on the last page, `lang`), `app.bsky.feed.getPostThread`
(`uri`, `depth`, `parentHeight`; `#threadViewPost` trees with `replies`,
400 `NotFound` for a deleted post) and `app.bsky.notification.
listNotifications` (`reasons` mention/reply/quote, `cursor`). Shapes follow
the reference AppView's own snapshots and the SDK's recordings: post views
with `author` profile views, `record` (`$type`, `text`, `createdAt`,
`langs`, `facets` with UTF-8 byte ranges, `reply.root/parent` strong refs,
`embed`), counts, `indexedAt`; `at://did:plc:.../app.bsky.feed.post/<tid>`
uris. Links in post text are shortened as the app does ("acme.example/
docs/setu...") while the facet keeps the full URI. Errors are XRPC bodies
`{"error", "message"}` (401 AuthMissing / InvalidToken, 400 ExpiredToken,
AuthenticationRequired on a bad login); every answer carries
`ratelimit-limit/remaining/reset/policy` and a 429 is
`RateLimitExceeded`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .server import DemoSource, FakeServer, Request, Response

THREAD = "app.bsky.feed.defs#threadViewPost"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_URL = re.compile(r"https?://[^\s]+[^\s.,;:!?)]")
_MENTION = re.compile(r"(?<![\w@])@([a-zA-Z0-9][a-zA-Z0-9.-]*\.[a-zA-Z]+)")
_WORD = re.compile(r"\w+", re.UNICODE)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(round(at * 1000)) % 1000:03d}Z"


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().lower().rstrip("=")


def _jwt(payload: dict[str, Any], typ: str) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")

    return f"{part({'typ': typ, 'alg': 'ES256K'})}.{part(payload)}.{base64.urlsafe_b64encode(secrets.token_bytes(64)).decode().rstrip('=')}"


class BlueskyServer(FakeServer):
    """Accounts, posts and sessions of one PDS and its AppView."""

    def __init__(self, *, search_requires_auth: bool = False, access_ttl: float = 7200.0) -> None:
        super().__init__()
        self.accounts: dict[str, dict[str, Any]] = {}  # did -> account
        self.passwords: dict[str, str] = {}  # did -> app password
        self.posts: dict[str, dict[str, Any]] = {}  # uri -> stored post
        self.access: dict[str, tuple[str, float]] = {}  # access jwt -> (did, exp)
        self.refresh: dict[str, str] = {}  # refresh jwt -> did
        self.search_requires_auth = search_requires_auth
        self.access_ttl = access_ttl
        self.logins = 0
        self._data_lock = threading.RLock()
        self._clock = itertools.count(1)

    # -- building data ------------------------------------------------------------
    def add_account(self, handle: str, *, display_name: str = "", app_password: str | None = None) -> str:
        with self._data_lock:
            did = "did:plc:" + _b32(hashlib.sha256(handle.encode()).digest())[:24]
            self.accounts[did] = {"did": did, "handle": handle, "displayName": display_name,
                                  "createdAt": _iso(time.time() - 86400 * 400)}
            if app_password:
                self.passwords[did] = app_password
            return did

    def did(self, who: str) -> str:
        if who in self.accounts:
            return who
        return next(d for d, a in self.accounts.items() if a["handle"] == who)

    def tid(self, at: float) -> str:
        """A record key as atproto makes them: microseconds and a clock id, base32-sortable, 13 characters."""
        value = (int(at * 1_000_000) << 10) | (next(self._clock) & 0x3FF)
        return "".join(_TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))

    def post(self, who: str, text: str, *, at: float | None = None, indexed_at: float | None = None,
             reply_to: str | None = None, langs: list[str] | None = None, external: str | None = None,
             quote: str | None = None, rkey: str | None = None) -> dict[str, Any]:
        """Post `text` as handle/did `who`. URLs in it become link facets and are shortened in the text, as the
        app does; @handles of known accounts become mention facets; `external` adds a link card; `quote`
        embeds another post. `indexed_at` (default `at`) is when the AppView indexed it; `rkey` overrides the
        record key (sample data keeps its uris from one demo run to the next)."""
        with self._data_lock:
            did = self.did(who)
            at = time.time() if at is None else at
            uri = f"at://{did}/app.bsky.feed.post/{rkey or self.tid(at)}"
            if uri in self.posts:
                raise ValueError(f"{uri} exists")
            shown, facets = self._facets(text)
            record: dict[str, Any] = {"$type": "app.bsky.feed.post", "createdAt": _iso(at), "langs": langs or ["en"], "text": shown}
            if facets:
                record["facets"] = facets
            if reply_to is not None:
                parent = self.posts[reply_to]
                root = parent["record"].get("reply", {}).get("root") or {"cid": parent["cid"], "uri": parent["uri"]}
                record["reply"] = {"parent": {"cid": parent["cid"], "uri": parent["uri"]}, "root": root}
            if external:
                record["embed"] = {"$type": "app.bsky.embed.external",
                                   "external": {"uri": external, "title": "", "description": ""}}
            if quote:
                record["embed"] = {"$type": "app.bsky.embed.record",
                                   "record": {"cid": self.posts[quote]["cid"], "uri": quote}}
            stored = {"uri": uri, "cid": "bafyrei" + _b32(hashlib.sha256((uri + text).encode()).digest())[:52], "did": did,
                      "record": record, "indexed_at": indexed_at if indexed_at is not None else at}
            self.posts[uri] = stored
            return self.view(stored)

    def _facets(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """The text as the app posts it (links shortened) and its facets, with UTF-8 byte offsets."""
        out, facets, last = "", [], 0
        for m in re.finditer(f"{_URL.pattern}|{_MENTION.pattern}", text):
            out += text[last:m.start()]
            token = m.group(0)
            if token.startswith("@"):
                account = next((a for a in self.accounts.values() if a["handle"] == token[1:]), None)
                shown, feature = token, ({"$type": "app.bsky.richtext.facet#mention", "did": account["did"]} if account else None)
            else:
                bare = re.sub(r"^https?://", "", token)
                shown = bare if len(bare) <= 30 else bare[:27] + "..."
                feature = {"$type": "app.bsky.richtext.facet#link", "uri": token}
            start = len(out.encode("utf-8"))
            out += shown
            if feature:
                facets.append({"features": [feature], "index": {"byteEnd": len(out.encode("utf-8")), "byteStart": start}})
            last = m.end()
        return out + text[last:], facets

    def delete(self, uri: str) -> None:
        with self._data_lock:
            del self.posts[uri]

    def expire_sessions(self) -> None:
        """Every access token issued so far is past its `exp` (refresh tokens still work)."""
        with self._data_lock:
            self.access = {token: (did, 0.0) for token, (did, _) in self.access.items()}

    def revoke(self, who: str) -> None:
        """The app password is deleted: logins fail and every session of the account ends."""
        with self._data_lock:
            did = self.did(who)
            self.passwords.pop(did, None)
            self.access = {t: v for t, v in self.access.items() if v[0] != did}
            self.refresh = {t: d for t, d in self.refresh.items() if d != did}

    def rate_limit_next(self, reset_in: float = 90.0, path: str = "") -> None:
        """Answer the next request (the next one whose path contains `path`) with the AppView's 429."""
        self.fail_next(Response.json({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, 429, {
            "ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": str(int(time.time() + reset_in)),
            "ratelimit-policy": "3000;w=300"}), match=lambda request: path in request.path)

    # -- rendering --------------------------------------------------------------------
    def profile(self, did: str) -> dict[str, Any]:
        account = self.accounts[did]
        return {"did": did, "handle": account["handle"], "displayName": account["displayName"],
                "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/bafkreiavatar@jpeg",
                "associated": {"activitySubscription": {"allowSubscriptions": "followers"}},
                "viewer": {"muted": False, "blockedBy": False}, "labels": [], "createdAt": account["createdAt"]}

    def _replies_of(self, uri: str) -> list[dict[str, Any]]:
        return sorted((p for p in self.posts.values() if p["record"].get("reply", {}).get("parent", {}).get("uri") == uri),
                      key=lambda p: p["record"]["createdAt"])

    def view(self, stored: dict[str, Any]) -> dict[str, Any]:
        record = stored["record"]
        post: dict[str, Any] = {
            "uri": stored["uri"], "cid": stored["cid"], "author": self.profile(stored["did"]), "record": record,
            "bookmarkCount": 0, "replyCount": len(self._replies_of(stored["uri"])), "repostCount": 0, "likeCount": 0,
            "quoteCount": 0, "indexedAt": _iso(stored["indexed_at"]),
            "viewer": {"bookmarked": False, "threadMuted": False, "embeddingDisabled": False}, "labels": [],
        }
        embed = record.get("embed")
        if embed and embed["$type"] == "app.bsky.embed.external":
            post["embed"] = {"$type": "app.bsky.embed.external#view", "external": dict(embed["external"])}
        return post

    def _sort_at(self, stored: dict[str, Any]) -> float:
        created = datetime.fromisoformat(stored["record"]["createdAt"].replace("Z", "+00:00")).timestamp()
        return min(created, stored["indexed_at"])

    # -- HTTP -----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        method = request.path.removeprefix("/xrpc/")
        with self._data_lock:
            if method == "com.atproto.server.createSession" and request.method == "POST":
                return self._create_session(request)
            if method == "com.atproto.server.refreshSession" and request.method == "POST":
                return self._refresh_session(request)
            viewer, problem = self._viewer(request)
            if problem is not None:
                return problem
            if method == "app.bsky.feed.searchPosts":
                if viewer is None and self.search_requires_auth:
                    return self._error(401, "AuthMissing", "Authentication Required")
                return self._search(request)
            if method == "app.bsky.feed.getPostThread":
                return self._post_thread(request)
            if method == "app.bsky.notification.listNotifications":
                if viewer is None:
                    return self._error(401, "AuthMissing", "Authentication Required")
                return self._notifications(request, viewer)
        return self._error(501, "MethodNotImplemented", "Method Not Implemented")

    def _json(self, data: Any, status: int = 200) -> Response:
        return Response.json(data, status, {"ratelimit-limit": "3000", "ratelimit-remaining": "2999",
                                            "ratelimit-reset": str(int(time.time()) + 300), "ratelimit-policy": "3000;w=300"})

    def _error(self, status: int, error: str, message: str) -> Response:
        return self._json({"error": error, "message": message}, status)

    def _viewer(self, request: Request) -> tuple[str | None, Response | None]:
        auth = request.headers.get("authorization", "")
        if not auth:
            return None, None
        token = auth.removeprefix("Bearer ")
        if token in self.refresh:
            return None, self._error(400, "InvalidToken", "Invalid token type")
        if token not in self.access:
            return None, self._error(401, "InvalidToken", "Token could not be verified")
        did, exp = self.access[token]
        if exp <= time.time():
            return None, self._error(400, "ExpiredToken", "Token has expired")
        return did, None

    def _issue(self, did: str) -> dict[str, Any]:
        now = int(time.time())
        access = _jwt({"scope": "com.atproto.appPass", "sub": did, "iat": now, "exp": now + int(self.access_ttl),
                       "aud": "did:web:pds.bsky.example"}, "at+jwt")
        refresh = _jwt({"scope": "com.atproto.refresh", "sub": did, "aud": "did:web:bsky.social", "jti": secrets.token_urlsafe(24),
                        "iat": now, "exp": now + 90 * 86400}, "refresh+jwt")
        self.access[access] = (did, now + self.access_ttl)
        self.refresh[refresh] = did
        account = self.accounts[did]
        return {"did": did, "didDoc": {"id": did, "alsoKnownAs": [f"at://{account['handle']}"]}, "handle": account["handle"],
                "email": f"{account['handle'].split('.')[0]}@example.com", "emailConfirmed": True, "emailAuthFactor": False,
                "accessJwt": access, "refreshJwt": refresh, "active": True}

    def _create_session(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return self._error(400, "InvalidRequest", "Invalid JSON body")
        identifier, password = str(body.get("identifier") or ""), str(body.get("password") or "")
        if not identifier or not password:
            return self._error(400, "InvalidRequest", 'Input must have the property "identifier"')
        did = next((d for d, a in self.accounts.items() if identifier in (d, a["handle"])), None)
        if did is None or self.passwords.get(did) != password:
            return self._error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.logins += 1
        return self._json(self._issue(did))

    def _refresh_session(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in self.access:
            return self._error(400, "InvalidToken", "Invalid token type")
        did = self.refresh.pop(token, None)  # rotated: each refresh token works once
        if did is None:
            return self._error(400, "ExpiredToken", "Token has been revoked")
        return self._json({k: v for k, v in self._issue(did).items() if k not in ("email", "emailConfirmed", "emailAuthFactor")})

    def _limit(self, request: Request, default: int) -> int | None:
        try:
            limit = int(request.arg("limit") or default)
        except ValueError:
            return None
        return limit if 1 <= limit <= 100 else None

    def _search(self, request: Request) -> Response:
        query = request.arg("q")
        if not query:
            return self._error(400, "InvalidRequest", 'Error: Params must have the property "q"')
        limit = self._limit(request, 25)
        if limit is None:
            return self._error(400, "InvalidRequest", "Error: limit must be between 1 and 100")
        bounds = []
        for name in ("since", "until"):
            value = request.arg(name)
            try:
                bounds.append(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None)
            except ValueError:
                return self._error(400, "InvalidRequest", f"Error: {name} must be a valid datetime")
        since, until = bounds
        phrases = re.findall(r'"([^"]*)"', query)
        words = [w.lower() for w in _WORD.findall(re.sub(r'"[^"]*"', " ", query))]
        lang = request.arg("lang")
        hits = []
        for stored in self.posts.values():
            text = stored["record"]["text"].lower()
            tokens = set(_WORD.findall(text))
            sort_at = self._sort_at(stored)
            if not all(w in tokens for w in words) or not all(p.lower() in text for p in phrases) or not (words or phrases):
                continue
            if (since is not None and sort_at < since) or (until is not None and sort_at >= until):
                continue
            if lang and lang not in stored["record"].get("langs", []):
                continue
            hits.append(stored)
        hits.sort(key=lambda s: (self._sort_at(s), s["uri"]), reverse=True)
        offset = _offset(request.arg("cursor"))
        page = hits[offset:offset + limit]
        reply: dict[str, Any] = {"hitsTotal": len(hits), "posts": [self.view(s) for s in page]}
        if offset + limit < len(hits):
            reply["cursor"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        return self._json(reply)

    def _post_thread(self, request: Request) -> Response:
        uri = request.arg("uri") or ""
        try:
            depth = int(request.arg("depth") or 6)
        except ValueError:
            return self._error(400, "InvalidRequest", "Error: depth must be an integer")
        if uri not in self.posts:
            return self._error(400, "NotFound", f"Post not found: {uri}")

        def node(stored: dict[str, Any], level: int) -> dict[str, Any]:
            out: dict[str, Any] = {"$type": THREAD, "post": self.view(stored)}
            if level < depth:
                out["replies"] = [node(child, level + 1) for child in self._replies_of(stored["uri"])]
            else:
                out["replies"] = []
            out["threadContext"] = {}
            return out

        return self._json({"thread": node(self.posts[uri], 0), "threadgate": None})

    def _notifications(self, request: Request, viewer: str) -> Response:
        limit = self._limit(request, 50)
        if limit is None:
            return self._error(400, "InvalidRequest", "Error: limit must be between 1 and 100")
        reasons = set(request.query.get("reasons") or [])
        found = []
        for stored in self.posts.values():
            if stored["did"] == viewer:
                continue
            record = stored["record"]
            reason, subject = None, None
            parent = record.get("reply", {}).get("parent", {}).get("uri")
            quoted = (record.get("embed") or {}).get("record", {}).get("uri")
            if parent and parent in self.posts and self.posts[parent]["did"] == viewer:
                reason, subject = "reply", parent
            elif quoted and quoted in self.posts and self.posts[quoted]["did"] == viewer:
                reason, subject = "quote", quoted
            elif any(f.get("did") == viewer for facet in record.get("facets", []) for f in facet["features"]):
                reason = "mention"
            if reason and (not reasons or reason in reasons):
                note = {"uri": stored["uri"], "cid": stored["cid"], "author": self.profile(stored["did"]), "reason": reason,
                        "record": record, "isRead": False, "indexedAt": _iso(stored["indexed_at"]), "labels": []}
                if subject:
                    note["reasonSubject"] = subject
                found.append(note)
        found.sort(key=lambda n: (n["indexedAt"], n["uri"]), reverse=True)
        offset = _offset(request.arg("cursor"))
        reply: dict[str, Any] = {"notifications": found[offset:offset + limit], "priority": False, "seenAt": _iso(time.time() - 3600)}
        if offset + limit < len(found):
            reply["cursor"] = base64.urlsafe_b64encode(str(offset + limit).encode()).decode()
        return self._json(reply)


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(cursor.encode()).decode()))
    except (ValueError, UnicodeDecodeError):
        return 0


# -- earful demo ---------------------------------------------------------------------------

DEMO_PASSWORD_VAR = "EARFUL_DEMO_BLUESKY_APP_PASSWORD"
DEMO_ID_EPOCH = 1_793_491_200  # 2026-11-01T00:00:00Z


def demo_source(now: float) -> DemoSource:
    """Posts about Acme and the brand's account acme.bsky.social, from `demo_data/bluesky/posts.json`."""
    from importlib import resources

    data = json.loads((resources.files("earful.sandbox") / "demo_data" / "bluesky" / "posts.json").read_text(encoding="utf-8"))
    server = BlueskyServer()
    for account in data["accounts"]:
        server.add_account(account["handle"], display_name=account.get("display_name", ""), app_password=account.get("app_password"))
    posted: dict[str, str] = {}
    for n, post in enumerate(data["posts"]):
        # Record keys made from a fixed moment stay the same from one demo run to the next; dates follow the clock.
        made = server.post(post["handle"], post["text"], at=now - post["minutes_ago"] * 60, langs=post.get("langs"),
                           reply_to=posted[post["reply_to"]] if post.get("reply_to") else None, external=post.get("external"),
                           rkey=server.tid(DEMO_ID_EPOCH + 60 * n))
        if post.get("key"):
            posted[post["key"]] = made["uri"]
    brand = next(a for a in data["accounts"] if a.get("app_password"))
    monitor = {
        "connector": "bluesky",
        "schedule": "*/10 * * * *",
        "query": "acme",
        "base_url": "{url}",
        "identifier": brand["handle"],
        "app_password": "${" + DEMO_PASSWORD_VAR + "}",
    }
    return DemoSource("bluesky-acme", server, monitor, env={DEMO_PASSWORD_VAR: brand["app_password"]})
