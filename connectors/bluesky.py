"""Bluesky: post search and the brand account's mentions, through plain XRPC (no SDK).

What the operator sets up (README material):

* Nothing, to start: without credentials earful reads the public AppView
  (`https://public.api.bsky.app`). Bluesky has restricted anonymous
  `searchPosts` there at times (HTTP 401/403); earful then says so.
* Recommended: an **app password** of the brand's account (Settings ->
  Privacy and security -> App passwords -> Add; leave "allow access to your
  direct messages" off). Configure `identifier: acme.bsky.social` and
  `app_password: ${BLUESKY_APP_PASSWORD}`. earful then logs in with
  `com.atproto.server.createSession` on the PDS (`https://bsky.social`
  unless `base_url` says otherwise), reads with `Authorization: Bearer
  <accessJwt>`, and also reads the account's notifications (mentions,
  replies and quotes of the brand). The app password is only ever sent to
  createSession; it is never logged.
* The brand's accounts in the rule pack are handles or DIDs:
  `accounts: {bluesky: [acme.bsky.social]}`.

Session. Bluesky allows 300 logins (createSession) a day per account, fewer
than a five-minute schedule needs, so the session (the short-lived
`accessJwt` and the `refreshJwt`, never the app password) is kept in the
cursor in state.db: the access token is reused until its `exp`, then renewed
with `refreshSession`; an `ExpiredToken`/`InvalidToken` answer renews it
once and retries; a refresh that fails logs in again. A revoked app
password fails the monitor with a message saying so.

Search. `app.bsky.feed.searchPosts?q=&sort=latest&since=&limit=100&cursor=`
returns the newest posts first, sorted by "sortAt" (the earlier of a
post's `createdAt` and `indexedAt`); `since` is inclusive. The query is the
monitor's `query` reduced to the words every match must contain (as for
Hacker News), or `search: "text"` verbatim. The cursor keeps the newest
sortAt read and the uris read in the last `index_lag` (default 10 min):
each poll asks `since` = newest - index_lag and skips those uris, so posts
indexed a little late, and posts sharing the boundary millisecond, are
neither lost nor repeated. Pages are followed through the API's `cursor`;
when `max_pages` runs out first, the unread older part is kept as a
`pending` window (`since`/`until`) and read on later runs, each pending
window getting at least one request, so nothing falls in a gap. The first
run reads `first_run_lookback` only.

Notifications (`app.bsky.notification.listNotifications`, logged in only,
`reasons` mention/reply/quote) are newest first without a `since`: they
are paged back to the cursor the same way; the part beyond `max_pages` is
skipped with a note.

Cursor: `{"searches": {q: {"since", "seen": [[uri, ms]], "pending": [...]}},
"notifications": {"since", "seen"}, "session": {...}}`. An idle poll costs
one request per search, plus one for notifications.

Mapping. A post's identity is its `at://did/app.bsky.feed.post/rkey` uri;
its page is `https://bsky.app/profile/{handle}/post/{rkey}`. Text links are
shortened in `text` and complete only in the link facets (UTF-8 byte
ranges), so they are expanded. Replies carry `reply.root`/`reply.parent`.

Replies: `app.bsky.feed.getPostThread?uri=&depth=` and its `replies` tree;
the earliest post by a brand handle (or DID) anywhere below answers the
mention. A deleted post (`NotFound`, `#notFoundPost`) or a blocked one is
"unknown"; a tree cut off at `depth` without an answer is "unknown" too.

`earful check --online` (`verify`) logs in (when configured) and reads one
search result and one notification.

Rate limits: 429 `{"error": "RateLimitExceeded"}` with `ratelimit-reset`
(epoch seconds) becomes a ConnectorError with the matching `retry_after`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from pydantic import Field, SecretStr, field_validator, model_validator

from earful.core import Mention, parse_time, retry_after_header
from earful.core.durations import Duration

from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
    ReplyStatus,
)
from .http import HttpClient, error_for_status, redact_url
from .paging import Page, Watermark, page_back
from .pushdown import (
    all_words_queries,  # words every match contains, as for Hacker News
)

PUBLIC_APPVIEW = "https://public.api.bsky.app"
DEFAULT_PDS = "https://bsky.social"
POST_URL = "https://bsky.app/profile/{who}/post/{rkey}"
PAGE = 100
THREAD_DEPTH = 100
SEEN_MAX = 5_000
REASONS = ("mention", "reply", "quote")
RENEW_BEFORE = 60  # seconds: an access token this close to its expiry is renewed first
_ERROR_STATUSES = tuple(range(400, 600))
_POST_URI = re.compile(r"^at://([^/]+)/app\.bsky\.feed\.post/([^/]+)$")
THREAD_VIEW = "app.bsky.feed.defs#threadViewPost"  # a readable post in a thread (not #notFoundPost, #blockedPost)


class BlueskyOptions(ConnectorOptions):
    identifier: str | None = Field(default=None, description="The brand account's handle (or email), to log in.")
    app_password: SecretStr | None = Field(default=None, description="An app password of that account, e.g. ${BLUESKY_APP_PASSWORD}.")
    search: bool | str = Field(default=True, description="true: search the monitor's query; a string: search that text; false: no search.")
    notifications: bool | None = Field(default=None, description="Read the account's mentions/replies/quotes (default: when logged in).")
    lang: str | None = Field(default=None, description="Only posts in this language (searchPosts `lang`), e.g. en.")
    max_pages: int = Field(default=10, ge=1, le=1000, description="Requests of 100 posts per search (or notifications) and run.")
    first_run_lookback: Duration = Field(default=timedelta(days=1), gt=timedelta(0), description="History read on the first run.")
    index_lag: Duration = Field(default=timedelta(minutes=10), ge=timedelta(0), le=timedelta(days=1),
                                 description="How late a post may be indexed; re-read on every poll.")


    @field_validator("identifier")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        return value.strip().lstrip("@") or None if value is not None else None

    @model_validator(mode="after")
    def _check(self) -> "BlueskyOptions":
        password = self.app_password is not None and bool(self.app_password.get_secret_value().strip())
        if self.app_password is not None and not password:
            raise ValueError("the Bluesky app password is empty; is the environment variable set?")
        if bool(self.identifier) != password:
            raise ValueError("give both `identifier` and `app_password` (to log in), or neither (anonymous search)")
        if self.notifications and not self.identifier:
            raise ValueError("`notifications` needs `identifier` and `app_password` (they are the brand account's)")
        if isinstance(self.search, str) and not self.search.strip():
            raise ValueError("`search` is an empty string; use true to search the monitor's query")
        if self.search is False and not self.read_notifications:
            raise ValueError("nothing to read: enable `search` or log in (identifier/app_password) for notifications")
        return self

    @property
    def read_notifications(self) -> bool:
        return bool(self.identifier) if self.notifications is None else self.notifications


class XrpcError(ConnectorError):
    """A ConnectorError that keeps the XRPC error name (`ExpiredToken`, `InvalidToken`, `NotFound` ...)."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None, code: str = ""):
        super().__init__(message, retry_after=retry_after, status=status)
        self.code = code


@dataclass(frozen=True)
class _Window:
    """Posts with since <= sortAt < until (until None: up to now), minus uris already read."""

    since: datetime
    until: datetime | None = None
    skip: frozenset[str] = frozenset()

    def dump(self) -> dict[str, Any]:
        return {"since": _iso(self.since), "until": _iso(self.until) if self.until else None, "skip": sorted(self.skip)}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> "_Window":
        since, until = _time(data.get("since")), _time(data.get("until"))
        if since is None:
            raise ValueError("window without since")
        return cls(since, until, frozenset(data.get("skip") or ()))


class BlueskyConnector(Connector):
    name = "bluesky"
    sees_replies = True
    pushes_query = True
    Options = BlueskyOptions
    options: BlueskyOptions

    def __init__(self, options: BlueskyOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.http = HttpClient(options, f"bluesky monitor {context.monitor!r}")
        default = DEFAULT_PDS if options.identifier else PUBLIC_APPVIEW
        self.xrpc = _xrpc(options.base_url or default)
        # Threads are public: read them anonymously from the AppView, and keep logins for what needs them.
        self.appview = _xrpc(options.base_url or PUBLIC_APPVIEW)
        self.session: dict[str, Any] | None = None

    # -- HTTP and session ---------------------------------------------------------
    def _call(self, method: str, params: Mapping[str, Any] | None = None, *, body: Any = None,
              bearer: str | None = None, service: str | None = None) -> Any:
        """One XRPC request (GET with `params`, POST with `body`); errors become ConnectorError."""
        url = f"{service or self.xrpc}/{method}"
        headers = {"Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if body is None:
            response = self.http.get(url, params=params, headers=headers, accept=_ERROR_STATUSES)
        else:
            response = self.http.post(url, json=body, headers=headers, accept=_ERROR_STATUSES)
        if response.status_code >= 400:
            raise self._error(response, method)
        try:
            return response.json()
        except ValueError:
            ctype = response.headers.get("Content-Type", "no content-type")
            raise ConnectorError(
                f"{self.http.label}: {redact_url(response.url)} answered {response.status_code} but the body is not JSON "
                f"({ctype}, {len(response.content)} bytes); is `base_url` a Bluesky (XRPC) service?",
                status=response.status_code,
            ) from None

    def _error(self, response: Any, method: str) -> ConnectorError:
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        code, said = str(body.get("error") or ""), str(body.get("message") or "")[:200]
        retry_after = None
        if response.status_code == 429:  # Bluesky says when its window resets (epoch seconds), not Retry-After
            retry_after = retry_after_header(response.headers)
            if retry_after is None:
                retry_after = _epoch_until(response.headers.get("ratelimit-reset"))
        hints = self._hints(method, code)
        detail = ": ".join(part for part in (code, said) if part)  # e.g. "InvalidToken: Token has been revoked"
        error = error_for_status(self.http.label, "GET" if response.request.method == "GET" else "POST", response.url,
                                 response.status_code, None, response.headers, detail=detail or None, hints=hints,
                                 retry_after=retry_after)
        return XrpcError(str(error), retry_after=error.retry_after, status=error.status, code=code)

    def _hints(self, method: str, code: str) -> dict[int, str]:
        """Advice per status: a refused login, a host that wants one, or a session refused after renewing."""
        hints = {429: "rate limited by Bluesky; earful comes back in {retry_after}s",
                 403: "Bluesky refused the request for this account",
                 404: "nothing there; check `base_url`",
                 500: "Bluesky had a server error; earful retries on the next run"}
        anonymous = ("this host does not serve that anonymously; log in with `identifier` and `app_password` "
                     "(an app password of the brand's account)")
        refused = "the session was refused even after logging in again; check the account and its app password"
        if self.session is None:
            hints[401] = hints[403] = anonymous
        else:
            hints[401] = refused
        if method == "com.atproto.server.createSession":
            hints[401] = (f"Bluesky refused the login of {self.options.identifier!r}: the app password is wrong or was "
                          "revoked; create a new one (Settings -> Privacy and security -> App passwords) and update "
                          "`app_password`")
        if code in ("InvalidToken", "ExpiredToken"):
            hints[400] = refused
        elif code == "NotFound":
            hints[400] = hints[404]
        return hints

    def _login(self) -> dict[str, Any]:
        if not self.options.identifier or self.options.app_password is None:  # the options validator prevents this
            raise ConnectorError(f"{self.http.label}: logging in needs `identifier` and `app_password`")
        body = {"identifier": self.options.identifier, "password": self.options.app_password.get_secret_value()}
        return self._keep(self._call("com.atproto.server.createSession", body=body))

    def _refresh(self, session: Mapping[str, Any]) -> dict[str, Any]:
        return self._keep(self._call("com.atproto.server.refreshSession", body={}, bearer=str(session["refresh"])))

    def _keep(self, reply: Any) -> dict[str, Any]:
        if not isinstance(reply, dict) or not reply.get("accessJwt") or not reply.get("refreshJwt"):
            raise ConnectorError(f"{self.http.label}: the session answer has no accessJwt/refreshJwt; is `base_url` a PDS?")
        return {"for": (self.options.identifier or "").lower(), "did": reply.get("did"), "handle": reply.get("handle"),
                "access": reply["accessJwt"], "refresh": reply["refreshJwt"]}

    def _start_session(self, stored: Mapping[str, Any] | None) -> None:
        """Reuse the stored session while its access token lives; refresh it, or log in again."""
        if not self.options.identifier:
            return
        if stored and stored.get("for") == self.options.identifier.lower() and stored.get("access"):
            if _expires(str(stored["access"])) > datetime.now(timezone.utc).timestamp() + RENEW_BEFORE:
                self.session = dict(stored)
                return
            try:
                self.session = self._refresh(stored)
                return
            except ConnectorError as exc:
                if exc.status not in (400, 401):
                    raise
        self.session = self._login()

    def _get(self, method: str, params: Mapping[str, Any]) -> Any:
        """An authenticated read (when logged in) that renews the session once if Bluesky rejects its token."""
        try:
            return self._call(method, params, bearer=self.session["access"] if self.session else None)
        except ConnectorError as exc:
            token_refused = exc.status == 401 or (isinstance(exc, XrpcError) and exc.code in ("ExpiredToken", "InvalidToken"))
            if self.session is None or not token_refused:
                raise
        try:
            self.session = self._refresh(self.session)
        except ConnectorError as exc:
            if exc.status not in (400, 401):
                raise
            self.session = self._login()
        return self._call(method, params, bearer=self.session["access"])

    # -- fetch ----------------------------------------------------------------------
    def searches(self) -> list[str]:
        if self.options.search is False:
            return []
        if isinstance(self.options.search, str):
            return [self.options.search.strip()]

        if not (self.context.query or "").strip():
            raise ConnectorError(f"{self.http.label}: no query to search; set `query` on the monitor or `search` to a text")
        try:
            return all_words_queries(self.context.query or "")
        except ValueError as exc:
            raise ConnectorError(f"{self.http.label}: {exc}; give `search` an explicit text") from None

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        cursor = cursor or {}
        searches = self.searches()
        start = self.http.count
        self._start_session(cursor.get("session"))
        posts: dict[str, dict[str, Any]] = {}
        notes: list[str] = []
        states: dict[str, Any] = {}
        old = cursor.get("searches") or {}
        budget = max(1, self.options.max_pages // max(1, len(searches)))
        for query in searches:
            found, states[query] = self._search(query, old.get(query), budget)
            for post in found:
                posts.setdefault(post["uri"], post)
            if states[query].get("pending"):
                notes.append(f"Bluesky search {query!r}: older posts remain, read on the next runs")
        next_cursor: dict[str, Any] = {"searches": states}
        if self.options.read_notifications and self.session is not None:
            found, next_cursor["notifications"], complete = self._notifications(cursor.get("notifications"))
            for post in found:
                posts.setdefault(post["uri"], post)
            if not complete:
                notes.append("Bluesky notifications: more than `max_pages` pages since the last run; older ones were skipped")
        if self.session is not None:
            next_cursor["session"] = self.session
        brands = self.context.brand_names("bluesky")
        ordered = sorted(posts.values(), key=lambda p: (_sort_at(p), p["uri"]))
        mentions = [post_mention(p, brands) for p in ordered]
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.http.count - start, notes=notes)

    def _lagged(self, state: Mapping[str, Any] | None) -> tuple[datetime, dict[str, int]]:
        """Where the next read starts (`index_lag` below the newest post read) and the uris read since then."""
        newest = _time((state or {}).get("since"))
        if newest is None:
            return self.context.current_time() - self.options.first_run_lookback, {}
        since = newest - self.options.index_lag
        seen = {str(u): int(ms) for u, ms in (state or {}).get("seen") or () if int(ms) >= _ms(since)}
        return since, seen

    def _next_state(self, state: Mapping[str, Any] | None, read: list[dict[str, Any]], seen: dict[str, int]) -> dict[str, Any]:
        newest = max([_time((state or {}).get("since")) or datetime.min.replace(tzinfo=timezone.utc),
                      *(_sort_at(p) for p in read)])
        if not read and not (state or {}).get("since"):
            newest = self.context.current_time() - self.options.first_run_lookback
        seen = {**seen, **{p["uri"]: _ms(_sort_at(p)) for p in read}}
        floor = _ms(newest - self.options.index_lag)
        kept = sorted(([u, ms] for u, ms in seen.items() if ms >= floor), key=lambda um: (um[1], um[0]))[-SEEN_MAX:]
        return {"since": _iso(newest), "seen": kept}

    def _search(self, query: str, state: Mapping[str, Any] | None, budget: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        previous = _time((state or {}).get("since"))
        since, seen = self._lagged(state)
        try:
            pending = [_Window.load(w) for w in (state or {}).get("pending") or ()]
        except (ValueError, TypeError):
            pending = []
        # Pending windows hold what is still unread below them: the re-read for late posts starts above them.
        since = max([since, *(w.until for w in pending if w.until is not None)])
        read: list[dict[str, Any]] = []
        left: list[_Window] = []
        for n, window in enumerate([_Window(since, None, frozenset(seen))] + pending):
            # Only the newest window re-reads posts returned before (the lag overlap). If its budget runs out,
            # the unread rest of that overlap is given up: what stays pending is what was never returned.
            rest, found, used = self._scan(query, window, budget if n == 0 else max(1, budget),
                                           keep_from=previous if n == 0 else None, known=seen)
            budget -= used
            read.extend(found)
            if rest is not None:
                left.append(rest)
        state_next = self._next_state(state, read, seen)
        if left:
            state_next["pending"] = [w.dump() for w in left]
        return read, state_next

    def _scan(self, query: str, window: _Window, budget: int, *, keep_from: datetime | None = None,
              known: Mapping[str, int] | None = None) -> tuple[_Window | None, list[dict[str, Any]], int]:
        """Read `window` newest first within `budget` requests: (unread older rest or None, posts, requests).

        The rest starts at `keep_from` when given (below it everything was returned before) and skips the
        `known` uris inside it, so a pending window never returns a post twice.
        """
        def page(cursor: str | None) -> Page[dict[str, Any]]:
            params: dict[str, Any] = {"q": query, "sort": "latest", "limit": PAGE, "since": _iso(window.since)}
            if window.until is not None:
                params["until"] = _iso(window.until)
            if self.options.lang:
                params["lang"] = self.options.lang
            if cursor:
                params["cursor"] = cursor
            return self._page("app.bsky.feed.searchPosts", params, "posts")

        # Hosts differ in how exactly they apply since/until: the window is held here too.
        mark = Watermark(window.since, dict.fromkeys(window.skip, window.since))
        caught = page_back(page, mark, key=lambda p: p["uri"], position=_sort_at, max_pages=budget, ceiling=window.until)
        if caught.complete:
            return None, caught.items, caught.pages
        if caught.oldest is None:
            return window, caught.items, caught.pages
        # Unread: older than the oldest post read, and what shares its millisecond but was not read yet.
        until = caught.oldest + timedelta(milliseconds=1)
        since = max(window.since, keep_from) if keep_from else window.since
        if until <= since:
            return None, caught.items, caught.pages
        skip = caught.oldest_keys | set(window.skip) | {uri for uri, ms in (known or {}).items() if ms >= _ms(since)}
        return _Window(since, until, frozenset(skip)), caught.items, caught.pages

    def _page(self, method: str, params: Mapping[str, Any], key: str) -> Page[dict[str, Any]]:
        """One page of posts (or notifications) and the API's cursor to the next one."""
        reply = self._get(method, params)
        items = _posts(reply, key)
        if items is None:
            raise ConnectorError(f"{self.http.label}: {method} answered without a '{key}' list of posts with uri; "
                                 "the API may have changed")
        return Page(items, reply.get("cursor") if isinstance(reply.get("cursor"), str) and reply["cursor"] else None)

    def _notifications(self, state: Mapping[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
        """Mentions, replies and quotes of the logged-in account since the cursor, paged back newest first."""
        since, seen = self._lagged(state)

        def page(cursor: str | None) -> Page[dict[str, Any]]:
            params: dict[str, Any] = {"limit": PAGE, "reasons": list(REASONS), **({"cursor": cursor} if cursor else {})}
            return self._page("app.bsky.notification.listNotifications", params, "notifications")

        caught = page_back(page, Watermark(since, dict.fromkeys(seen, since)), key=lambda n: n["uri"], position=_sort_at,
                           max_pages=self.options.max_pages, wanted=lambda n: n.get("reason") in REASONS and _is_post(n))
        return caught.items, self._next_state(state, caught.items, seen), caught.complete

    # -- earful check --online ---------------------------------------------------------------
    def verify(self) -> None:
        """A login (when configured), one search result and one notification: proves the app password and access."""
        searches = self.searches()
        self._start_session(None)
        for query in searches[:1]:
            if _posts(self._get("app.bsky.feed.searchPosts", {"q": query, "limit": 1}), "posts") is None:
                raise ConnectorError(f"{self.http.label}: app.bsky.feed.searchPosts answered without a 'posts' list")
        if self.options.read_notifications and self.session is not None:
            self._get("app.bsky.notification.listNotifications", {"limit": 1})

    # -- replies --------------------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """The earliest brand post anywhere below the mention in its thread; unknown when it cannot be seen."""
        brands = self.context.brand_names("bluesky")
        if mention.source != self.name or not brands or not _POST_URI.match(mention.external_id):
            return ReplyStatus(answered=None)
        thread = self._thread(mention.external_id)
        if thread is None:
            return ReplyStatus(answered=None)
        answers, cut = _brand_posts_below(thread, brands)
        if not answers:
            return ReplyStatus(answered=None) if cut else ReplyStatus(answered=False)
        return _answer(min(answers, key=_created_at))

    def _thread(self, uri: str) -> dict[str, Any] | None:
        """The post's thread view down to THREAD_DEPTH; None when the post is deleted, blocked or unreadable."""
        try:
            reply = self._read_thread({"uri": uri, "depth": THREAD_DEPTH, "parentHeight": 0})
        except ConnectorError:
            return None  # NotFound (deleted) lands here too
        thread = reply.get("thread") if isinstance(reply, dict) else None
        if not isinstance(thread, dict) or thread.get("$type") != THREAD_VIEW:
            return None  # #notFoundPost, #blockedPost
        return thread

    def _read_thread(self, params: Mapping[str, Any]) -> Any:
        """getPostThread from the public AppView; through the brand's session when the AppView wants a login."""
        try:
            return self._call("app.bsky.feed.getPostThread", params, service=self.appview)
        except ConnectorError as exc:
            if exc.status not in (401, 403) or not self.options.identifier:
                raise
        if self.session is None:
            self._start_session(None)
        return self._get("app.bsky.feed.getPostThread", params)

    def close(self) -> None:
        self.http.close()


# -- helpers -----------------------------------------------------------------------------


def _xrpc(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/xrpc") else base + "/xrpc"


def _posts(reply: Any, key: str) -> list[dict[str, Any]] | None:
    """The list under `key` when every entry has a post uri; None when the shape is wrong."""
    if not isinstance(reply, dict) or not isinstance(reply.get(key), list):
        return None
    items = reply[key]
    if not all(isinstance(p, dict) and isinstance(p.get("uri"), str) for p in items):
        return None
    return items


def _is_post(item: Mapping[str, Any]) -> bool:
    return bool(_POST_URI.match(str(item.get("uri") or ""))) and isinstance(item.get("record"), dict)


def _time(value: Any) -> datetime | None:
    """An atproto datetime ("...Z", "+00:00", micro- or no fraction); None when unreadable."""
    if not isinstance(value, str):
        return None
    if m := re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", value.strip()):  # Python reads at most 6 fraction digits
        value = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    return parse_time(value)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _epoch_until(value: str | None) -> float | None:
    try:
        return max(0.0, float(value or "") - datetime.now(timezone.utc).timestamp())
    except ValueError:
        return None


def _expires(jwt: str) -> float:
    """The `exp` of a JWT (not verified: only to know when to renew); 0 when unreadable, so it is renewed."""
    try:
        payload = jwt.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(data.get("exp") or 0)
    except (IndexError, ValueError, TypeError, AttributeError):
        return 0.0


def _created_at(post: Mapping[str, Any]) -> datetime:
    record = post.get("record") or {}
    return _time(record.get("createdAt")) or _time(post.get("indexedAt")) or datetime.min.replace(tzinfo=timezone.utc)


def _sort_at(post: Mapping[str, Any]) -> datetime:
    """Bluesky's sortAt: the earlier of createdAt and indexedAt (a post dated in the future sorts at indexing)."""
    indexed = _time(post.get("indexedAt"))
    created = _time((post.get("record") or {}).get("createdAt"))
    times = [t for t in (indexed, created) if t is not None]
    return min(times) if times else datetime.min.replace(tzinfo=timezone.utc)


def _author_is_brand(post: Mapping[str, Any], brands: set[str]) -> bool:
    author = post.get("author") or {}
    return str(author.get("handle") or "").lower() in brands or str(author.get("did") or "").lower() in brands


def post_url(post: Mapping[str, Any]) -> str:
    m = _POST_URI.match(str(post.get("uri") or ""))
    if not m:
        return ""
    author = post.get("author") or {}
    handle = str(author.get("handle") or "")
    return POST_URL.format(who=handle if handle and handle != "handle.invalid" else m.group(1), rkey=m.group(2))


def expand_links(text: str, facets: Any) -> str:
    """Replace link text shortened by the app ("acme.example/docs/ex...") by the facet's full URI.

    Facet ranges are UTF-8 byte offsets, so the work is done on bytes.
    """
    if not isinstance(facets, list) or not text:
        return text
    data = text.encode("utf-8")
    spans = []
    for facet in facets:
        index = facet.get("index") if isinstance(facet, dict) else None
        features = facet.get("features") if isinstance(facet, dict) else None
        if not isinstance(index, dict) or not isinstance(features, list):
            continue
        uri = next((f.get("uri") for f in features if isinstance(f, dict) and f.get("$type") == "app.bsky.richtext.facet#link"), None)
        start, end = index.get("byteStart"), index.get("byteEnd")
        if isinstance(uri, str) and isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data):
            spans.append((start, end, uri))
    for start, end, uri in sorted(spans, reverse=True):
        shown = data[start:end].decode("utf-8", "replace")
        bare = re.sub(r"^https?://", "", uri)
        if shown.endswith(("...", "…")) or (shown != uri and bare.startswith(shown.rstrip("/"))):
            data = data[:start] + uri.encode("utf-8") + data[end:]
    return data.decode("utf-8", "replace")


def _link_url(record: Mapping[str, Any]) -> str:
    embed = record.get("embed") if isinstance(record.get("embed"), dict) else {}
    for candidate in (embed, embed.get("media") if isinstance(embed.get("media"), dict) else {}):
        external = candidate.get("external") if isinstance(candidate, dict) else None
        if isinstance(external, dict) and str(external.get("uri") or "").startswith(("http://", "https://")):
            return str(external["uri"])
    for facet in record.get("facets") or []:
        for feature in (facet.get("features") or []) if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and feature.get("$type") == "app.bsky.richtext.facet#link":
                return str(feature.get("uri") or "")
    return ""


def _brand_posts_below(thread: Mapping[str, Any], brands: set[str]) -> tuple[list[dict[str, Any]], bool]:
    """Brand posts anywhere below the thread's post, and whether the tree was cut at THREAD_DEPTH with replies unseen."""
    answers: list[dict[str, Any]] = []
    cut = False
    stack: list[tuple[Mapping[str, Any], int]] = [(thread, 0)]
    while stack:
        node, depth = stack.pop()
        replies = [r for r in node.get("replies") or [] if isinstance(r, dict)]
        if depth >= THREAD_DEPTH and not replies and ((node.get("post") or {}).get("replyCount") or 0) > 0:
            cut = True
        for child in (r for r in replies if r.get("$type") == THREAD_VIEW):
            if _author_is_brand(child.get("post") or {}, brands):
                answers.append(child["post"])
            stack.append((child, depth + 1))
    return answers, cut


def _answer(post: Mapping[str, Any]) -> ReplyStatus:
    author = post.get("author") or {}
    return ReplyStatus(answered=True, answered_at=_created_at(post), answered_by=str(author.get("handle") or author.get("did")),
                       url=post_url(post))


def _reply_uri(reply: Mapping[str, Any] | None, which: str) -> str | None:
    """The uri of a reply's `root` or `parent` post; None for a post that replies to nothing."""
    return str(((reply or {}).get(which) or {}).get("uri") or "") or None


def _post_raw(post: Mapping[str, Any], langs: list[str]) -> dict[str, Any]:
    """What a Mention keeps of the post beyond its own fields: counts, labels, and why a notification came."""
    author = post.get("author") or {}
    raw: dict[str, Any] = {"cid": post.get("cid"), "did": author.get("did"), "indexed_at": post.get("indexedAt"),
                           "reply_count": post.get("replyCount"), "like_count": post.get("likeCount"), "langs": langs}
    if post.get("reason"):
        raw["reason"] = post["reason"]  # a notification: mention, reply or quote of the brand
    labels = [lbl.get("val") for lbl in post.get("labels") or [] if isinstance(lbl, dict)]
    if labels:
        raw["labels"] = labels
    return raw


def post_mention(post: Mapping[str, Any], brands: set[str]) -> Mention:
    """Map a post view (search hit) or a notification about a post to a Mention."""
    record = post.get("record") or {}
    author = post.get("author") or {}
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else None
    langs = [lang for lang in record.get("langs") or [] if isinstance(lang, str)]
    return Mention(
        source="bluesky",
        external_id=str(post["uri"]),
        url=post_url(post),
        author=str(author.get("handle") or author.get("did") or ""),
        author_is_brand=_author_is_brand(post, brands),
        text=expand_links(str(record.get("text") or ""), record.get("facets")).strip(),
        created_at=_time(record.get("createdAt")) or _time(post.get("indexedAt")),
        thread_id=_reply_uri(reply, "root") or str(post["uri"]),
        parent_id=_reply_uri(reply, "parent"),
        kind="reply" if reply else "post",
        language=langs[0] if langs else None,
        site="bsky.app",
        link_url=_link_url(record),
        raw=_post_raw(post, langs),
    )


CONNECTOR = BlueskyConnector
