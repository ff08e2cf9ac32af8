"""X (Twitter) API v2 through tweepy: recent search for the query, and mentions of the brand account.

Streams. `search`: `GET /2/tweets/search/recent` for the monitor's query,
compiled to X's operators by `pushdown.compile_query` (phrases, OR with
explicit parentheses because X applies AND before OR, `-` exclusions,
`lang:`, `from:`), plus `-is:retweet` unless `include_retweets`. `mentions`:
`GET /2/users/:id/mentions` of `mentions_of` (a numeric id, or a @handle
resolved once with `/2/users/by/username` and remembered in the cursor).

Cursor. Per stream the newest id seen (`since_id`), so an idle poll is
ONE request per stream that returns `{"meta": {"result_count": 0}}`.
New posts are read newest first, following `next_token` /
`pagination_token` down to the cursor (the shared `paging.page_back`).
Each run makes at most `max_requests` requests (X's paid tiers bill
per request): when a catch-up needs more, the unread part is kept in the
cursor as a `pending` window (`since_id` .. `until_id`) and read on later runs, so
nothing falls in a gap and nothing is read twice. Windows are read
oldest-at-risk first: recent search reaches back only 7 days, so pending
windows get their share before the newest posts, which will still be
there next run. A cursor older than 7 days is replaced by a
`start_time` at the edge of the search window (X rejects older
`since_id`s), and the run notes that older posts were out of reach.

Budget. With `monthly_budget`, the runner keeps this monitor's monthly
request count in state.db (`context.budget`); every request is
`spend()`-ed first. A run plans no more requests than the budget has
left, so it never fails half-way through paid pages; with nothing left,
the first `spend()` fails the run with the budget message and the
cursor stays where it was.

Rate limits. tweepy runs with `wait_on_rate_limit=False`: a 429 becomes
a `ConnectorError` whose `retry_after` is `x-rate-limit-reset` minus now,
and the scheduler comes back then, instead of a cron run sleeping for up
to 15 minutes.

Mapping. `thread_id` is the `conversation_id`, `parent_id` the
`replied_to` id, kind "reply" for replies and "post" otherwise. A
retweet or quote gets the original's URL as `link_url`, so the store
clusters it with the original; other posts get the first linked page
(from `entities.urls`, t.co expanded). Text is the full `note_tweet`
when there is one, HTML entities decoded, t.co links expanded.

`base_url`: tweepy's host is fixed (api.twitter.com); a requests adapter
mounted on the client's session rewrites it to `base_url` (tests,
proxies) and enforces `timeout` (a total per request, which tweepy does
not set at all) and `max_response_mb` (connectors/limits.py).
"""

from __future__ import annotations

import html
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

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
from .http import error_for_status
from .paging import Page, Watermark, page_back
from .pushdown import compile_query

if TYPE_CHECKING:
    import tweepy

log = logging.getLogger("earful.connectors.x")

TWEPOCH_MS = 1288834974657
SEARCH_REACH = timedelta(days=7)
REACH_MARGIN = timedelta(minutes=5)  # stay clear of the 7-day edge: the request takes time to arrive
WEB = "https://x.com"
HOSTS = ("https://api.twitter.com", "https://api.x.com")
TWEET_FIELDS = ["author_id", "created_at", "conversation_id", "in_reply_to_user_id", "referenced_tweets", "lang",
                "public_metrics", "entities", "note_tweet"]
EXPANSIONS = ["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id"]
USER_FIELDS = ["username", "name"]
NO_LANGUAGE = {"und", "zxx", "qam", "qct", "qht", "qme", "qst", "art"}  # X's "not a language" codes
_HANDLE = re.compile(r"^@?([A-Za-z0-9_]{1,15})$")
_TCO = re.compile(r"https://t\.co/\w+")


_HINTS = {
    400: "check the query (or `search`) and the options",
    401: "X refused the bearer token; check `bearer_token` (regenerated or revoked in the developer portal?)",
    403: "the app's access level or project may not include this endpoint",
    404: "nothing there; check `mentions_of`",
    500: "X server error; earful retries on the next run",
}


class XOptions(ConnectorOptions):
    bearer_token: SecretStr = Field(description="App-only bearer token, e.g. ${X_BEARER_TOKEN}.")
    search: str | None = Field(default=None, description="X search query sent verbatim instead of the monitor's query.")
    include_retweets: bool = Field(default=False, description="Also return retweets (they cluster with the original).")
    mentions_of: str | None = Field(default=None, description="Brand account whose mentions are read: @handle or user id.")
    first_run_lookback: Duration = Field(default=timedelta(days=1), gt=timedelta(0), le=SEARCH_REACH,
                                          description="History read on the very first run (at most 7d).")
    max_results: int = Field(default=100, ge=10, le=100, description="Posts per request.")
    max_requests: int = Field(default=5, ge=1, le=100, description="Requests per run, over all streams.")
    monthly_budget: int | None = Field(default=None, ge=1, description="Requests per calendar month; kept in state.db.")
    max_query_length: int = Field(default=512, ge=32, le=4096, description="Your plan's query length limit.")


    @field_validator("mentions_of", mode="before")
    @classmethod
    def _account(cls, value: Any) -> Any:
        if value is None:
            return None
        text = str(value).strip()
        if not (text.isdigit() or _HANDLE.match(text)):
            raise ValueError("give the account as @handle or as its numeric user id")
        return text


@dataclass(frozen=True)
class Window:
    """Posts newer than `since_id` (or from `start_time`) and older than `until_id`.

    `floor_id` filters locally when `since_id` had to be replaced by a
    `start_time` (X refuses a since_id older than 7 days).
    """

    since_id: int | None = None
    start_time: datetime | None = None
    until_id: int | None = None
    floor_id: int | None = None

    def below(self, until_id: int) -> "Window":
        return Window(self.since_id, self.start_time, until_id, self.floor_id)

    def bounds(self) -> dict[str, Any]:
        """The window as X's request parameters (`floor_id` is local and not sent)."""
        sent = {"since_id": self.since_id, "start_time": self.start_time, "until_id": self.until_id}
        return {name: value for name, value in sent.items() if value is not None}

    def lowest_new_id(self) -> int:
        """The smallest post id that belongs to this window: above `since_id` and `floor_id` (ids start at 1)."""
        return max(self.since_id or 0, self.floor_id or 0) + 1

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.since_id is not None:
            out["since_id"] = str(self.since_id)
        if self.start_time is not None:
            out["start_time"] = self.start_time.isoformat()
        if self.until_id is not None:
            out["until_id"] = str(self.until_id)
        if self.floor_id is not None:
            out["floor_id"] = str(self.floor_id)
        return out

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> "Window":
        def number(key: str) -> int | None:
            return int(data[key]) if data.get(key) is not None else None

        start = parse_time(data.get("start_time"))
        return cls(number("since_id"), start, number("until_id"), number("floor_id"))


def snowflake_time(tweet_id: int) -> datetime:
    return datetime.fromtimestamp(((tweet_id >> 22) + TWEPOCH_MS) / 1000, timezone.utc)


class XConnector(Connector):
    name = "x"
    sees_replies = True
    pushes_query = True
    Options = XOptions
    options: XOptions

    def __init__(self, options: XOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.label = f"x monitor {context.monitor!r}"
        self.requests = 0
        self._client: "tweepy.Client | None" = None
        self.users: dict[str, dict[str, Any]] = {}
        self.referenced: dict[str, dict[str, Any]] = {}

    # -- client ---------------------------------------------------------------
    @property
    def client(self) -> "tweepy.Client":
        if self._client is None:
            import tweepy

            client = tweepy.Client(bearer_token=self.options.bearer_token.get_secret_value(), return_type=dict,
                                   wait_on_rate_limit=False)
            client.user_agent = f"{self.options.user_agent} {client.user_agent}"
            adapter = _adapter(self.options, self)
            for host in HOSTS:
                client.session.mount(host, adapter)
            self._client = client
        return self._client

    def _spend(self) -> None:
        if self.context.budget is not None:
            try:
                self.context.budget.spend()
            except ConnectorError as exc:
                raise ConnectorError(f"{self.label}: {exc}", status=exc.status) from None

    def _allowance(self) -> int:
        """Requests this run may make: `max_requests`, or less when the monthly budget is nearly used up."""
        budget = self.context.budget
        remaining = budget.remaining if budget is not None else None
        return self.options.max_requests if remaining is None else min(self.options.max_requests, remaining)

    def _call(self, what: str, method: str, *, single: bool = False, **params: Any) -> dict[str, Any]:
        """One API request (budget first), as a validated JSON object; every failure a ConnectorError."""
        self._spend()
        reply = self._request(what, method, params)
        problem = _reply_problem(reply, single)
        if problem:
            raise ConnectorError(f"{self.label}: unexpected reply from {what}: {problem}; the API may have changed")
        includes = reply.get("includes") or {}
        for user in includes.get("users") or []:
            if isinstance(user, dict) and "id" in user:
                self.users[str(user["id"])] = user
        for tweet in includes.get("tweets") or []:
            if isinstance(tweet, dict) and "id" in tweet:
                self.referenced[str(tweet["id"])] = tweet
        return reply

    def _request(self, what: str, method: str, params: Mapping[str, Any]) -> Any:
        """The tweepy call; its HTTP errors go through the shared status mapping, transport errors name the cause."""
        import requests
        import tweepy

        from .limits import ResponseTooLarge

        try:
            return getattr(self.client, method)(**params)
        except tweepy.HTTPException as exc:
            raise self._status_error(exc) from None
        except requests.exceptions.JSONDecodeError:
            raise ConnectorError(f"{self.label}: {what} answered, but the body is not JSON; "
                                 "X may be having problems or a proxy is in the way") from None
        except requests.Timeout:
            raise ConnectorError(f"{self.label}: {what} timed out after {self.options.timeout:g}s; "
                                 "X may be slow or down (raise `timeout` if it always is)") from None
        except ResponseTooLarge as exc:
            raise ConnectorError(f"{self.label}: {what}: {exc}") from None
        except requests.RequestException as exc:
            raise ConnectorError(f"{self.label}: {what}: could not connect ({type(exc).__name__}); "
                                 "check `base_url`, DNS and the network") from None

    def _status_error(self, exc: Any) -> ConnectorError:
        response = exc.response
        hints = dict(_HINTS)
        retry_after = None
        if response.status_code == 429:  # X says when its 15-minute window resets, not Retry-After
            reset = response.headers.get("x-rate-limit-reset")
            retry_after = max(1.0, float(reset) - time.time()) if reset and reset.isdigit() else 900.0
            hints[429] = (f"X rate limit reached ({response.headers.get('x-rate-limit-limit', '?')} requests per window); "
                          "earful comes back in {retry_after}s")
        detail = None if response.status_code >= 500 or response.status_code in (401, 429) else _messages(exc) or None
        return error_for_status(self.label, response.request.method, response.url, response.status_code, None,
                                response.headers, detail=detail, hints=hints, retry_after=retry_after)

    # -- streams ----------------------------------------------------------------
    def query(self) -> str | None:
        if self.options.search is not None:
            return self.options.search
        if not (self.context.query or "").strip():
            return None
        try:
            compiled = compile_query(self.context.query or "", "x")
        except ValueError as exc:
            raise ConnectorError(f"{self.label}: {exc}; set `search` to an explicit X query") from None
        if not self.options.include_retweets:
            compiled += " -is:retweet"
        if len(compiled) > self.options.max_query_length:
            raise ConnectorError(f"{self.label}: the X query is {len(compiled)} characters, over the plan's "
                                 f"{self.options.max_query_length}; shorten the monitor query or set `search`")
        return compiled

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        cursor = cursor or {}
        query = self.query()
        streams = (["search"] if query else []) + (["mentions"] if self.options.mentions_of else [])
        if not streams:
            raise ConnectorError(f"{self.label}: nothing to watch; set the monitor's `query` or `mentions_of`")
        allowance = self._allowance()
        if allowance <= 0:
            self._spend()  # raises the budget's own message: nothing left this month
        start = self.requests
        tweets: dict[str, tuple[dict[str, Any], str]] = {}
        next_cursor: dict[str, Any] = {}
        notes: list[str] = []
        brand_ids: set[str] = set()
        for n, stream in enumerate(streams):
            later = len(streams) - n - 1  # keep one request for each stream still to read
            state = dict(cursor.get(stream) or {})
            if stream == "mentions":
                user_id, state, allowance = self._mentions_user(state, allowance, later)
                if user_id is None:
                    next_cursor[stream] = state
                    continue
                brand_ids.add(user_id)
                params: dict[str, Any] = {"id": user_id}
            else:
                state["query"] = query
                params = {"query": query, "sort_order": "recency"}
            share = max(min(allowance, 1), allowance - later)  # this stream first, but leave one for each later one
            found, next_cursor[stream], used, stream_notes = self._read(stream, params, state, share)
            allowance -= used
            notes += stream_notes
            for tweet in found:
                if stream == "mentions" and not self.options.include_retweets and _is_retweet(tweet):
                    continue  # search excludes them with -is:retweet; the mentions timeline cannot
                tweets.setdefault(str(tweet["id"]), (tweet, stream))
        brands = self.brand_names()
        ordered = sorted(tweets.values(), key=lambda pair: int(pair[0]["id"]))
        mentions = [tweet_mention(t, self.users, self.referenced, brands, brand_ids, stream=s) for t, s in ordered]
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.requests - start, notes=notes)

    def _mentions_user(self, state: dict[str, Any], allowance: int, later: int) -> tuple[str | None, dict[str, Any], int]:
        """The numeric id of `mentions_of`, resolved once per handle and kept in the cursor."""
        wanted = str(self.options.mentions_of)
        if wanted.isdigit():
            return wanted, {**state, "user_id": wanted, "handle": None}, allowance
        handle = wanted.lstrip("@").lower()
        if state.get("handle") == handle and state.get("user_id"):
            return str(state["user_id"]), state, allowance
        if allowance < 1:
            return None, state, allowance
        reply = self._call(f"user lookup @{handle}", "get_user", single=True, username=handle, user_fields=USER_FIELDS)
        data = reply.get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise ConnectorError(f"{self.label}: X has no user @{handle} ({_detail(reply)}); check `mentions_of`")
        fresh = {"user_id": str(data["id"]), "handle": handle}  # another account: its own cursor
        return fresh["user_id"], fresh, allowance - 1

    def _read(self, stream: str, params: dict[str, Any], state: dict[str, Any],
              allowance: int) -> tuple[list[dict[str, Any]], dict[str, Any], int, list[str]]:
        """New posts of one stream within `allowance` requests: (posts, next state, requests, notes)."""
        now = self.context.current_time()
        since_id = int(state["since_id"]) if state.get("since_id") else None
        head = Window(since_id=since_id) if since_id is not None else Window(start_time=self._first_start(state, now))
        pending = [Window.load(w) for w in state.get("pending") or []]
        notes: list[str] = []
        if stream == "search":
            head, pending, notes = self._reachable(head, pending, now)
        found, left, used, head_posts = self._read_windows(stream, params, pending, head, allowance)
        newest = max([int(p["id"]) for p in head_posts] + ([since_id] if since_id is not None else []), default=None)
        next_state = _next_state(state, head, newest, bool(used), left)
        if left:
            notes.append(f"X {stream}: more posts than `max_requests` allows in one run; the rest is read on the next runs")
        return found, next_state, used, notes

    def _first_start(self, state: Mapping[str, Any], now: datetime) -> datetime:
        """Where a stream without a `since_id` reads from: where an earlier empty run looked, or the first-run lookback."""
        return parse_time(state.get("since_time")) or now - self.options.first_run_lookback

    def _reachable(self, head: Window, pending: list[Window], now: datetime) -> tuple[Window, list[Window], list[str]]:
        """Recent search's windows moved inside its 7 days; pending windows wholly outside are dropped, with a note."""
        head, note = self._within_reach(head, now)
        notes = [note] if note else []
        reachable = []
        for window in pending:
            if window.until_id is not None and snowflake_time(window.until_id) <= now - SEARCH_REACH + REACH_MARGIN:
                notes.append("X search: posts of an earlier outage left X's 7-day search window before they were read")
                continue
            reachable.append(self._within_reach(window, now)[0])
        return head, reachable, notes

    def _read_windows(self, stream: str, params: dict[str, Any], pending: list[Window], head: Window,
                      allowance: int) -> tuple[list[dict[str, Any]], list[Window], int, list[dict[str, Any]]]:
        """Read pending windows, then the head: (posts, unread windows, requests, the head's posts).

        Pending (older) windows go first: they are the ones about to leave
        the 7-day search window; each leaves one request for the head.
        """
        found: list[dict[str, Any]] = []
        left: list[Window] = []
        used = 0
        head_posts: list[dict[str, Any]] = []
        for window in [*pending, head]:
            is_head = window is head
            share = allowance - used if is_head else allowance - used - 1
            if share <= 0:
                if not is_head:
                    left.append(window)
                continue
            posts, rest, spent = self._scan(stream, params, window, share)
            used += spent
            found += posts
            if rest is not None:
                left.append(rest)
            if is_head:
                head_posts = posts
        return found, left, used, head_posts

    def _within_reach(self, window: Window, now: datetime) -> tuple[Window, str]:
        """Replace a `since_id` older than recent search's 7 days by the oldest `start_time` X accepts."""
        edge = now - SEARCH_REACH + REACH_MARGIN
        if window.since_id is not None and snowflake_time(window.since_id) < edge:
            note = (f"X search: the last run was more than 7 days ago; posts from before "
                    f"{edge:%Y-%m-%d %H:%M} UTC are out of recent search's reach")
            return Window(start_time=edge, until_id=window.until_id, floor_id=window.since_id), note
        if window.start_time is not None and window.start_time < edge:
            return Window(start_time=edge, until_id=window.until_id, floor_id=window.floor_id), ""
        return window, ""

    def _scan(self, stream: str, params: dict[str, Any], window: Window,
              share: int) -> tuple[list[dict[str, Any]], Window | None, int]:
        """Read `window` newest first within `share` requests: (posts, unread rest or None, requests)."""
        def page(token: str | None) -> Page[dict[str, Any]]:
            reply = self._page(stream, params, window, token)
            return Page(reply.get("data") or [], (reply.get("meta") or {}).get("next_token") or None)

        read = page_back(page, Watermark(window.lowest_new_id()), key=lambda t: str(t["id"]),
                         position=lambda t: int(t["id"]), max_pages=share)
        if read.complete:
            return read.items, None, read.pages
        return read.items, (window.below(read.oldest) if read.oldest is not None else window), read.pages

    def _page(self, stream: str, params: dict[str, Any], window: Window, token: str | None) -> dict[str, Any]:
        """One page of a stream's window, from `token` (None: the window's newest page)."""
        call = dict(params, max_results=self.options.max_results, tweet_fields=TWEET_FIELDS,
                    expansions=EXPANSIONS, user_fields=USER_FIELDS, **window.bounds())
        if token:
            call["next_token" if stream == "search" else "pagination_token"] = token
        if stream == "search":
            return self._call("recent search (GET /2/tweets/search/recent)", "search_recent_tweets", **call)
        return self._call(f"mentions (GET /2/users/{params['id']}/mentions)", "get_users_mentions", **call)

    def brand_names(self) -> set[str]:
        names = self.context.brand_names("x")
        if self.options.mentions_of and not self.options.mentions_of.isdigit():
            names.add(self.options.mentions_of.lstrip("@").lower())
        return names

    # -- replies ---------------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """Did a brand account answer this post in its conversation? One search request.

        Counted as an answer: a brand post in the conversation, after the
        mention, that replies to it, or to its author, or anywhere below a
        conversation's first post when the mention is that first post.
        Nothing found for a post older than recent search's 7 days is
        "unknown", not "unanswered": the answer may be out of reach.
        """
        brands = sorted(self.brand_names())
        conversation = mention.thread_id
        if mention.source != self.name or not brands or not conversation or not conversation.isdigit():
            return ReplyStatus(answered=None)
        now = self.context.current_time()
        reachable = mention.created_at is not None and mention.created_at > now - SEARCH_REACH + REACH_MARGIN
        found = self._brand_posts(conversation, brands, mention.created_at if reachable else None)
        if found is None:
            return ReplyStatus(answered=None)
        answer = _first_answer(found, mention)
        if answer is None:
            return ReplyStatus(answered=False if reachable else None)
        created, tweet = answer
        username = _username(self.users, str(tweet.get("author_id")))
        return ReplyStatus(answered=True, answered_at=created, answered_by=username or None,
                           url=_tweet_url(username, str(tweet["id"])))

    def _brand_posts(self, conversation: str, brands: list[str], since: datetime | None) -> list[dict[str, Any]] | None:
        """The brand accounts' posts in a conversation (from `since`), or None when X could not be asked."""
        who = " OR ".join(f"from:{b}" for b in brands)
        query = f"conversation_id:{conversation} " + (f"({who})" if len(brands) > 1 else who)
        params: dict[str, Any] = {"query": query, "max_results": 100, "tweet_fields": TWEET_FIELDS,
                                  "expansions": ["author_id"], "user_fields": USER_FIELDS, "sort_order": "recency"}
        if since is not None:
            params["start_time"] = since
        try:
            if self._allowance() <= 0:
                return None
            reply = self._call("reply check (GET /2/tweets/search/recent)", "search_recent_tweets", **params)
        except ConnectorError:
            return None
        return reply.get("data") or []

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()
            self._client = None


def _next_state(state: Mapping[str, Any], head: Window, newest: int | None, read_any: bool,
                left: list[Window]) -> dict[str, Any]:
    """A stream's next cursor: the newest id read, or where an empty first run looked from; unread windows oldest first."""
    next_state: dict[str, Any] = {k: v for k, v in state.items() if k in ("query", "user_id", "handle")}
    if newest is not None:
        next_state["since_id"] = str(newest)
    elif head.start_time is not None and read_any:
        # Nothing yet: remember where this run looked from, so the window does not slide past late posts.
        next_state["since_time"] = head.start_time.isoformat()
    elif state.get("since_time"):
        next_state["since_time"] = state["since_time"]
    if left:
        next_state["pending"] = [w.dump() for w in sorted(left, key=lambda w: w.until_id or 1 << 63)]  # oldest first
    return next_state


# -- HTTP plumbing ---------------------------------------------------------------------------


def _adapter(options: XOptions, connector: XConnector) -> Any:
    """A requests adapter that counts requests, bounds each by `timeout` (total) and `max_response_mb`
    (see connectors/limits.py) and, with `base_url`, rewrites tweepy's host."""
    from requests.utils import get_environ_proxies

    from .limits import MEGABYTE, BoundedAdapter

    timeout = options.timeout
    base = urlsplit(options.base_url.rstrip("/")) if options.base_url else None
    prefix = base.path.removesuffix("/2") if base else ""

    class Adapter(BoundedAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if base is not None:
                parts = urlsplit(request.url)
                request.url = urlunsplit((base.scheme, base.netloc, prefix + parts.path, parts.query, ""))
                kwargs["proxies"] = get_environ_proxies(request.url)  # the proxies of the real target, not api.twitter.com's
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            connector.requests += 1
            return super().send(request, **kwargs)

    return Adapter(timeout, int(options.max_response_mb * MEGABYTE))


def _messages(exc: Any) -> str:
    messages = [str(m) for m in getattr(exc, "api_messages", []) if m]
    return "; ".join(messages)[:300]


def _detail(reply: Mapping[str, Any]) -> str:
    errors = reply.get("errors") or []
    details = [str(e.get("detail") or e.get("message") or "") for e in errors if isinstance(e, dict)]
    return "; ".join(d for d in details if d)[:300] or "no data"


def _reply_problem(reply: Any, single: bool = False) -> str:
    """What is wrong with a reply, or "": `data` is one object for lookups (`single`), else a list of posts."""
    if not isinstance(reply, dict):
        return f"expected a JSON object, got {type(reply).__name__}"
    data = reply.get("data")
    if data is None:
        if "meta" not in reply and "errors" not in reply:
            return "neither 'data' nor 'meta' in the reply"
        return ""
    if single:
        return "" if isinstance(data, dict) else "'data' is not an object"
    if not isinstance(data, list):
        return "'data' is not a list of posts"
    for tweet in data:
        if not isinstance(tweet, dict) or not str(tweet.get("id", "")).isdigit() or not isinstance(tweet.get("text"), str):
            return "a post lacks its id or text"
    if not isinstance(reply.get("meta", {}), dict):
        return "'meta' is not an object"
    return ""


# -- mapping -------------------------------------------------------------------------------


def _first_answer(tweets: Iterable[Mapping[str, Any]], mention: Mention) -> tuple[datetime, Mapping[str, Any]] | None:
    """The earliest of `tweets` (brand posts in the mention's conversation) that answers the mention."""
    author_id = str((mention.raw or {}).get("author_id") or "")
    answers = []
    for tweet in tweets:
        created = _time(tweet.get("created_at"))
        if created is not None and _after(tweet, created, mention) and _answers(tweet, mention, author_id):
            answers.append((created, tweet))
    return min(answers, key=lambda pair: pair[0], default=None)


def _answers(tweet: Mapping[str, Any], mention: Mention, author_id: str) -> bool:
    """A brand post answers the mention when it replies to it, to its author, or the mention opened the conversation."""
    replied_to = {r.get("id") for r in tweet.get("referenced_tweets") or [] if r.get("type") == "replied_to"}
    return (mention.external_id in replied_to or mention.external_id == mention.thread_id
            or bool(author_id and tweet.get("in_reply_to_user_id") == author_id))


def _after(tweet: Mapping[str, Any], created: datetime, mention: Mention) -> bool:
    """Whether `tweet` was posted after `mention`: by snowflake id (milliseconds), else by time (seconds)."""
    if str(tweet.get("id", "")).isdigit() and mention.external_id.isdigit():
        return int(tweet["id"]) > int(mention.external_id)
    return mention.created_at is None or created > mention.created_at


def _is_retweet(tweet: Mapping[str, Any]) -> bool:
    return any(isinstance(r, dict) and r.get("type") == "retweeted" for r in tweet.get("referenced_tweets") or [])


def _time(value: Any) -> datetime | None:
    """A post time: only strings are times here (ids carry their own, see `snowflake_time`)."""
    return parse_time(value) if isinstance(value, str) else None


def _tweet_url(username: str, tweet_id: str) -> str:
    return f"{WEB}/{username}/status/{tweet_id}" if username else f"{WEB}/i/web/status/{tweet_id}"


def _username(users: Mapping[str, Mapping[str, Any]], user_id: str) -> str:
    return str((users.get(user_id) or {}).get("username") or "")


def _urls(tweet: Mapping[str, Any]) -> list[Any]:
    """The post's `entities.urls`: t.co links with what they expand to."""
    return (tweet.get("entities") or {}).get("urls") or []


def _full_text(tweet: Mapping[str, Any]) -> str:
    """The whole text: a long post's `note_tweet`, else `text` (cut at 280 characters)."""
    return str((tweet.get("note_tweet") or {}).get("text") or tweet.get("text") or "")


def _expand(text: str, tweet: Mapping[str, Any]) -> str:
    """X's text made readable: entities decoded, t.co links replaced by what they point to."""
    urls = {u.get("url"): u.get("expanded_url") for u in _urls(tweet)
            if isinstance(u, dict) and u.get("url") and u.get("expanded_url")}
    text = _TCO.sub(lambda m: str(urls.get(m.group(0), m.group(0))), text)
    return html.unescape(text)


def _shared_link(tweet: Mapping[str, Any]) -> str:
    for url in _urls(tweet):
        expanded = str(url.get("expanded_url") or "") if isinstance(url, dict) else ""
        host = url_host(expanded).removeprefix("mobile.")  # "" for a link that does not parse
        if expanded and host not in ("x.com", "twitter.com", "t.co", "pic.twitter.com", "pic.x.com"):
            return expanded
    return ""


def _shown(tweet: Mapping[str, Any], refs: Mapping[str, str], users: Mapping[str, Mapping[str, Any]],
           referenced: Mapping[str, Mapping[str, Any]]) -> tuple[str, str, Mapping[str, Any]]:
    """What a post shows: (text, link_url, the post whose t.co links expand the text).

    A retweet or quote links to its original, so the store clusters them;
    other posts link to the first page they share. A retweet's own text
    is cut at 140 characters, so it shows the original's whole text.
    """
    original_id = refs.get("retweeted") or refs.get("quoted")
    if not original_id:
        return _full_text(tweet), _shared_link(tweet), tweet
    original = referenced.get(original_id) or {}
    original_author = _username(users, str(original.get("author_id") or ""))
    link = _tweet_url(original_author, original_id)
    if "retweeted" not in refs or not original:
        return _full_text(tweet), link, tweet
    text = f"RT @{original_author}: {_full_text(original)}" if original_author else _full_text(tweet)
    return text, link, {**tweet, "entities": {"urls": [*_urls(tweet), *_urls(original)]}}


def _language(tweet: Mapping[str, Any]) -> str | None:
    language = str(tweet.get("lang") or "") or None
    return None if language in NO_LANGUAGE else language


def _raw(tweet: Mapping[str, Any], author_id: str, stream: str) -> dict[str, Any]:
    """The fields kept for reply tracking and auditing."""
    return {
        "author_id": author_id,
        "conversation_id": tweet.get("conversation_id"),
        "in_reply_to_user_id": tweet.get("in_reply_to_user_id"),
        "referenced_tweets": [dict(r) for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)],
        "public_metrics": dict(tweet.get("public_metrics") or {}),
        "stream": stream,
    }


def tweet_mention(tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]], referenced: Mapping[str, Mapping[str, Any]],
                  brands: Iterable[str], brand_ids: Iterable[str] = (), stream: str = "") -> Mention:
    """Map one v2 post (with the `includes` seen so far) to a Mention."""
    tweet_id = str(tweet["id"])
    author_id = str(tweet.get("author_id") or "")
    username = _username(users, author_id)
    refs = {str(r.get("type")): str(r.get("id")) for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)}
    text, link, entities_from = _shown(tweet, refs, users, referenced)
    brand_set = {b.lower().lstrip("@") for b in brands}
    return Mention(
        source="x",
        external_id=tweet_id,
        url=_tweet_url(username, tweet_id),
        author=username,
        author_is_brand=username.lower() in brand_set or author_id in set(brand_ids),
        text=_expand(text, entities_from),
        created_at=_time(tweet.get("created_at")) or snowflake_time(int(tweet_id)),
        thread_id=str(tweet.get("conversation_id") or tweet_id),
        parent_id=refs.get("replied_to"),
        kind="reply" if "replied_to" in refs else "post",
        language=_language(tweet),
        brand_replied=False if (tweet.get("public_metrics") or {}).get("reply_count") == 0 else None,
        site="x.com",
        link_url=link,
        raw=_raw(tweet, author_id, stream),
    )


CONNECTOR = XConnector
