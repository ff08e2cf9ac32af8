"""Reddit: site-wide search, new posts and comments of subreddits, and the brand's inbox mentions (praw).

Streams. One monitor reads up to four listings, each with its own cursor:
`search` (site-wide search for the monitor's query, compiled to Reddit's
syntax by `social_query`, sorted by new), `new:<subs>` and
`comments:<subs>` (all subreddits in ONE request each, as the multireddit
`r/crm+sales`), and `mentions:<user>` (`u/brand` mentions in the inbox of
the script account given by `username`/`password`). The rules filter
everything afterwards, so subreddit streams return every item.

Cursor. Per stream: the newest fullname and its `created_utc`, plus the
fullnames seen in a short overlap window before it. A tick reads the
listing newest first, 100 per page, and stops at the first item older
than that window, or at the listing's end; items already seen are
skipped. So an idle poll costs ONE request per stream, and after downtime
the connector pages back (following `after`) until it meets the cursor.
Reddit serves at most 1000 items per listing, which `max_pages=10`
reaches; if the listing ends first after a long outage, the run says so
in its notes instead of pretending it is complete.

Why not `before=<fullname>`: Reddit answers an empty listing when that
item has been deleted or removed, which would silently blind the monitor
forever. Why the overlap: Reddit's search index lags behind `/new`, and
spam-filtered posts appear late with their original time; the overlap
(`search_overlap`, one minute for the other listings) catches them, and
the `seen` list keeps them from being returned twice.

Mapping. External ids are fullnames (`t3_…` posts, `t1_…` comments), so
ids of both kinds never collide; `thread_id` is the post's fullname and
`parent_id` the parent's fullname. A deleted author is "[deleted]"
(Reddit's own marker, kept so operators see what happened); the
"[deleted]"/"[removed]" body markers become empty text with
`raw["state"]` saying which, so rules never match the marker words.
`site` is "r/<subreddit>", which the rules' `site:r/crm` filter reads;
`link_url` is a link post's target, so a discussion clusters with the
article's other appearances.

Errors. praw/prawcore handle auth and Reddit's rate-limit headers (sleeping
when the window is nearly used up) and retry 5xx and connection errors
`retries` times; every prawcore/praw exception that remains becomes a
`ConnectorError` naming the monitor, the endpoint and what to check, so
the run fails cleanly with its cursor untouched.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import Connector, ConnectorContext, ConnectorError, ConnectorOptions, FetchResult, ReplyStatus
from earful.core import Mention
from .http import html_to_text, redact_url
from .social_query import compile_query

if TYPE_CHECKING:
    import praw
    import requests

log = logging.getLogger("earful.connectors.reddit")

WEB = "https://www.reddit.com"
LISTING_REACH = 1000
LISTING_OVERLAP = 60.0  # seconds re-read below the cursor of /new, /comments and the inbox
MAX_SEEN = 2000
DELETED = "[deleted]"
_BODY_MARKERS = {"[deleted]": "deleted", "[removed]": "removed"}
_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(value: Any) -> Any:
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    return value


class RedditOptions(ConnectorOptions):
    client_id: SecretStr = Field(description="Reddit app id, e.g. ${REDDIT_CLIENT_ID} (reddit.com/prefs/apps).")
    client_secret: SecretStr = Field(description="Reddit app secret, e.g. ${REDDIT_CLIENT_SECRET}.")
    username: str | None = Field(default=None, description="The brand's Reddit account, to read its u/ mentions.")
    password: SecretStr | None = Field(default=None, description="That account's password (script app), e.g. ${REDDIT_PASSWORD}.")
    search: str | None = Field(default=None, description="Reddit search query sent verbatim instead of the monitor's query.")
    search_sitewide: bool = Field(default=True, description="Search all of Reddit for the query.")
    subreddits: list[str] = Field(default_factory=list, description="Read every new post and comment of these.")
    inbox_mentions: bool = Field(default=True, description="Read u/username mentions when username/password are set.")
    first_run_lookback: timedelta = Field(default=timedelta(days=1), gt=timedelta(0),
                                          description="History read on the very first run, e.g. 1d, 12h.")
    search_overlap: timedelta = Field(default=timedelta(hours=1), ge=timedelta(0),
                                      description="Re-read this much below the search cursor: Reddit's search index lags.")
    max_pages: int = Field(default=10, ge=1, le=10, description="Pages of 100 per stream and run (Reddit serves 10 at most).")
    page_size: int = Field(default=100, ge=1, le=100)
    replace_more_limit: int = Field(default=32, ge=0, le=500,
                                    description="'load more comments' requests allowed per replies() check.")
    retries: int = Field(default=2, ge=0, le=5, description="prawcore retries of 5xx answers and connection errors.")

    @field_validator("first_run_lookback", "search_overlap", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return _duration(value)

    @field_validator("subreddits", mode="before")
    @classmethod
    def _subreddits(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            names = [str(v).strip().removeprefix("/").removeprefix("r/").strip("/") for v in value]
            bad = [n for n in names if not _SUBREDDIT.match(n)]
            if bad:
                raise ValueError(f"not a subreddit name: {', '.join(bad)} (write crm or r/crm)")
            return list(dict.fromkeys(names))
        return value

    @field_validator("username", mode="before")
    @classmethod
    def _username(cls, value: Any) -> Any:
        return value.strip().removeprefix("/").removeprefix("u/") if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pair(self) -> "RedditOptions":
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (the account whose u/ mentions are read)")
        return self


class RedditConnector(Connector):
    name = "reddit"
    sees_replies = True
    pushes_query = True
    Options = RedditOptions
    options: RedditOptions

    def __init__(self, options: RedditOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.label = f"reddit monitor {context.monitor!r}"
        self.requests = 0
        self._reddit: "praw.Reddit | None" = None
        self._session: "requests.Session | None" = None
        base = (options.base_url or "").rstrip("/")
        self.oauth_url = base or "https://oauth.reddit.com"
        self.reddit_url = base or WEB

    # -- praw --------------------------------------------------------------
    @property
    def reddit(self) -> "praw.Reddit":
        if self._reddit is None:
            self._reddit = self._make_reddit()
        return self._reddit

    def _make_reddit(self) -> "praw.Reddit":
        import praw
        import requests

        connector = self

        class Session(requests.Session):
            """Counts requests and enforces `timeout`: praw 8 passes its own fixed 16 s instead."""

            def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
                kwargs["timeout"] = connector.options.timeout
                connector.requests += 1
                return super().request(method, url, *args, **kwargs)

        self._session = Session()
        opts = self.options
        credentials: dict[str, Any] = {}
        if opts.username and opts.password is not None:
            credentials = {"username": opts.username, "password": opts.password.get_secret_value()}
        reddit = praw.Reddit(
            client_id=opts.client_id.get_secret_value(),
            client_secret=opts.client_secret.get_secret_value(),
            user_agent=f"{opts.user_agent} (monitor {self.context.monitor})",
            oauth_url=self.oauth_url + "/",  # joined with paths: needs the slash
            reddit_url=self.reddit_url,  # concatenated with "/api/v1/access_token": must not have it
            check_for_updates=False,
            check_for_async=False,
            timeout=max(1, math.ceil(opts.timeout)),
            requestor_kwargs={"session": self._session, "timeout": opts.timeout},
            **credentials,
        )
        self._limit_retries(reddit)
        return reddit

    def _limit_retries(self, reddit: "praw.Reddit") -> None:
        """Make prawcore retry 5xx/connection errors `retries` times (its default is 2, with sleeps).

        prawcore has no public knob; the strategy class is set on each core
        session when present, else its default stays.
        """
        from prawcore.sessions import FiniteRetryStrategy

        retries = self.options.retries

        class Strategy(FiniteRetryStrategy):
            DEFAULT_RETRIES = retries

            def __init__(self, retries: int = retries) -> None:
                object.__setattr__(self, "retries", retries)

        for core in {id(c): c for c in (reddit._core, reddit._read_only_core, reddit._authorized_core) if c}.values():
            if hasattr(core, "_retry_strategy_class"):
                core._retry_strategy_class = Strategy

    def _get(self, path: str, params: Mapping[str, Any], what: str) -> Any:
        try:
            return self.reddit.request(method="GET", path=path, params=dict(params))
        except Exception as exc:  # noqa: BLE001 - converted below; anything unknown is re-raised
            raise self._error(exc, what, path) from None

    def _error(self, exc: BaseException, what: str, path: str) -> BaseException:
        """A ConnectorError for any praw/prawcore failure (other exceptions pass through)."""
        import praw.exceptions
        import prawcore
        import requests

        where = f"{what} ({redact_url(self.oauth_url + '/' + path.lstrip('/'))})"
        prefix = f"{self.label}: {where}"
        if isinstance(exc, ConnectorError):
            return exc
        if isinstance(exc, prawcore.ResponseException) and exc.response.status_code == 429:  # also the token endpoint's
            retry = _seconds(exc.response.headers.get("retry-after")) or _seconds(exc.response.headers.get("x-ratelimit-reset")) or 60.0
            return ConnectorError(f"{prefix} answered HTTP 429: Reddit rate limit reached; earful comes back in {retry:g}s",
                                  retry_after=retry, status=429)
        if isinstance(exc, prawcore.BadJSON):
            body = exc.response.content or b""
            return ConnectorError(f"{prefix} answered {exc.response.status_code} but the body is not JSON "
                                  f"({exc.response.headers.get('content-type', 'no content-type')}, {len(body)} bytes); "
                                  "Reddit may be having problems or a proxy is in the way", status=exc.response.status_code)
        if isinstance(exc, prawcore.OAuthException):
            return ConnectorError(f"{self.label}: Reddit refused to log in as u/{self.options.username} ({exc.error}); "
                                  "check `username` and `password` (and that the account is a developer of the app)", status=401)
        if isinstance(exc, prawcore.Redirect):
            return ConnectorError(f"{prefix}: Reddit redirected to {exc.path!r}, which means the subreddit does not exist; "
                                  "check `subreddits`", status=exc.response.status_code)
        if isinstance(exc, prawcore.ResponseException):
            status = exc.response.status_code
            token = (exc.response.url or "").endswith("/api/v1/access_token")
            if status >= 500:
                hint = "Reddit server error; earful retries on the next run"
            elif token or status == 401 or isinstance(exc, prawcore.InvalidToken):
                hint = "Reddit refused the app credentials; check `client_id`/`client_secret` (revoked app?)"
            elif status == 403:
                hint = ("access forbidden: the inbox needs `username`/`password`, or the subreddit is private, "
                        "quarantined or banned")
            elif status == 404:
                hint = "not found: the subreddit may be banned or misspelt; check `subreddits`"
            else:
                hint = "the request was refused; check the connector options"
            return ConnectorError(f"{prefix} answered HTTP {status}: {hint}", status=status)
        if isinstance(exc, prawcore.RequestException):
            original = exc.original_exception
            if isinstance(original, requests.Timeout):
                return ConnectorError(f"{prefix} timed out after {self.options.timeout:g}s; Reddit may be slow or down "
                                      "(raise `timeout` if it always is)")
            return ConnectorError(f"{prefix}: could not connect ({type(original).__name__}); check `base_url`, DNS and the network")
        if isinstance(exc, praw.exceptions.RedditAPIException):
            return ConnectorError(f"{prefix}: Reddit reported {exc}")
        if isinstance(exc, (prawcore.PrawcoreException, praw.exceptions.PRAWException)):
            return ConnectorError(f"{prefix} failed: {type(exc).__name__}: {exc}")
        return exc

    # -- streams -------------------------------------------------------------
    def streams(self) -> list[tuple[str, str, dict[str, Any], float]]:
        """(cursor key, path, params, overlap seconds) for every listing this monitor reads."""
        opts = self.options
        found: list[tuple[str, str, dict[str, Any], float]] = []
        query = opts.search if opts.search is not None else (self.context.query or "").strip() or None
        if query and opts.search_sitewide:
            if opts.search is None:
                try:
                    query = compile_query(query, "reddit")
                except ValueError as exc:
                    raise ConnectorError(f"{self.label}: {exc}; set `search` to an explicit Reddit search") from None
            params = {"q": query, "sort": "new", "t": "all", "type": "link", "include_over_18": "on"}
            found.append(("search", "search", params, opts.search_overlap.total_seconds()))
        if opts.subreddits:
            multi = "+".join(sorted(opts.subreddits, key=str.lower))  # one cursor whatever order they are listed in
            found.append((f"new:{multi}", f"r/{multi}/new", {}, LISTING_OVERLAP))
            found.append((f"comments:{multi}", f"r/{multi}/comments", {}, LISTING_OVERLAP))
        if opts.username and opts.inbox_mentions:
            found.append((f"mentions:{opts.username.lower()}", "message/mentions", {}, LISTING_OVERLAP))
        if not found:
            raise ConnectorError(f"{self.label}: nothing to watch; set the monitor's `query`, `subreddits`, "
                                 "or `username`/`password` for inbox mentions")
        return found

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        streams = self.streams()
        states: Mapping[str, Any] = (cursor or {}).get("streams") or {}
        start = self.requests
        found: dict[str, tuple[dict[str, Any], str]] = {}
        next_states: dict[str, Any] = {}
        notes: list[str] = []
        for key, path, params, overlap in streams:
            items, next_states[key], note = self._read(key, path, params, overlap, states.get(key))
            for item in items:
                found.setdefault(item["data"]["name"], (item, key))
            if note:
                notes.append(note)
        brands = self.brand_names()
        ordered = sorted(found.values(), key=lambda pair: (float(pair[0]["data"]["created_utc"]), pair[0]["data"]["name"]))
        mentions = [thing_mention(item, brands, stream=key) for item, key in ordered]
        return FetchResult(mentions=mentions, cursor={"streams": next_states}, requests=self.requests - start, notes=notes)

    def _read(self, key: str, path: str, params: dict[str, Any], overlap: float,
              state: Mapping[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """New things of one listing, newest first until below the cursor's overlap window."""
        if state and isinstance(state.get("newest_utc"), (int, float)):
            newest_name, newest_utc = state.get("newest"), float(state["newest_utc"])
            seen: dict[str, float] = {str(k): float(v) for k, v in (state.get("seen") or {}).items()}
            boundary = newest_utc - overlap
        else:
            newest_name, seen = None, {}
            boundary = newest_utc = (self.context.current_time() - self.options.first_run_lookback).timestamp()
        found: list[dict[str, Any]] = []
        names: set[str] = set()
        after: str | None = None
        read = pages = 0
        reached = False
        while pages < self.options.max_pages:
            page = {**params, "limit": self.options.page_size, **({"after": after, "count": read} if after else {})}
            listing = self._get(path, page, f"listing {key}")
            pages += 1
            children, after = self._children(listing, path)
            for child in children:
                data = child["data"]
                read += 1
                if float(data["created_utc"]) < boundary:
                    reached = True
                    break
                if data["name"] in seen or data["name"] in names:
                    continue
                names.add(data["name"])
                found.append(child)
            if reached or not after:
                break
        note = ""
        if state and not reached:
            if after:
                note = (f"Reddit {key}: stopped after {pages} pages without reaching the last run's position; "
                        "items in between were skipped (raise `max_pages`)")
            elif read >= LISTING_REACH - self.options.page_size:
                note = (f"Reddit {key}: the listing ended ({read} items) before the last run's position; "
                        "Reddit serves only the newest 1000, older items of the outage were missed")
        for child in found:
            data = child["data"]
            created = float(data["created_utc"])
            seen[data["name"]] = created
            if created > newest_utc or newest_name is None:
                newest_name, newest_utc = data["name"], max(created, newest_utc)
        floor = newest_utc - overlap
        kept = sorted(((n, t) for n, t in seen.items() if t >= floor), key=lambda p: p[1], reverse=True)[:MAX_SEEN]
        return found, {"newest": newest_name, "newest_utc": newest_utc, "seen": dict(kept)}, note

    def _children(self, listing: Any, path: str) -> tuple[list[dict[str, Any]], str | None]:
        """The t1/t3 children and `after` of a listing; anything else in their place is an error."""
        problem = _listing_problem(listing)
        if problem:
            raise ConnectorError(f"{self.label}: unexpected reply from {redact_url(self.oauth_url + '/' + path)}: "
                                 f"{problem}; the API may have changed")
        data = listing["data"]
        children = [c for c in data["children"] if c.get("kind") in ("t1", "t3")]
        after = data.get("after")
        return children, after if isinstance(after, str) and after else None

    def brand_names(self) -> set[str]:
        names = self.context.brand_names("reddit")
        if self.options.username:
            names.add(self.options.username.lower())
        return names

    # -- replies ---------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """Earliest brand comment below `mention` in its thread; unknown if the tree could not be read whole."""
        brands = self.brand_names()
        post_id = _id36(mention.thread_id or (mention.external_id if mention.kind == "post" else ""), "t3")
        if mention.source != self.name or not brands or not post_id:
            return ReplyStatus(answered=None)
        try:
            submission = self.reddit.submission(id=post_id)
            if mention.external_id.startswith("t1_"):
                comment = self.reddit.comment(id=_id36(mention.external_id, "t1"))
                comment.submission = submission
                comment.refresh()
                forest = comment.replies
            else:
                forest = submission.comments
            left = forest.replace_more(limit=self.options.replace_more_limit)
            comments = forest.list()
        except Exception:  # noqa: BLE001 - any failure (HTTP, missing comment, odd tree) means "unknown"
            log.debug("%s: reading the thread of %s failed", self.label, mention.external_id, exc_info=True)
            return ReplyStatus(answered=None)
        answers = [c for c in comments if c.author is not None and c.author.name.lower() in brands]
        if answers:
            first = min(answers, key=lambda c: float(c.created_utc))
            return ReplyStatus(
                answered=True,
                answered_at=datetime.fromtimestamp(float(first.created_utc), timezone.utc),
                answered_by=first.author.name,
                url=WEB + first.permalink,
            )
        if left:  # comments we were not allowed to load might hold the answer
            return ReplyStatus(answered=None)
        return ReplyStatus(answered=False)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self._reddit = None


# -- mapping -------------------------------------------------------------------------------


def _seconds(value: str | None) -> float | None:
    try:
        return max(1.0, float(value)) if value else None
    except ValueError:
        return None


def _id36(fullname: str | None, kind: str) -> str:
    if not fullname:
        return ""
    return fullname[len(kind) + 1:] if fullname.startswith(f"{kind}_") else ("" if "_" in fullname else fullname)


def _listing_problem(listing: Any) -> str:
    if not isinstance(listing, dict) or listing.get("kind") != "Listing" or not isinstance(listing.get("data"), dict):
        return f"expected a Listing, got {type(listing).__name__}"
    children = listing["data"].get("children")
    if not isinstance(children, list):
        return "'children' is not a list"
    for child in children:
        if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
            return "a child is not a {kind, data} object"
        if child.get("kind") in ("t1", "t3"):
            data = child["data"]
            if not isinstance(data.get("name"), str) or not isinstance(data.get("created_utc"), (int, float)):
                return "a thing lacks its fullname or created_utc"
    return ""


def _edited(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
        return datetime.fromtimestamp(float(value), timezone.utc).isoformat()
    return None


def _text(markdown: Any, rendered: Any) -> tuple[str, str]:
    """(plain text, state): the HTML rendering read as text; deletion markers become ("", "deleted"/"removed")."""
    raw = str(markdown or "").strip()
    if raw in _BODY_MARKERS:
        return "", _BODY_MARKERS[raw]
    if isinstance(rendered, str) and rendered:
        return html_to_text(rendered), ""
    return raw, ""


def _permalink(data: Mapping[str, Any]) -> str:
    link = str(data.get("permalink") or data.get("context") or "").split("?", 1)[0]
    if link.startswith("/"):
        return WEB + link
    if link.startswith("http"):
        return link
    sub, name = data.get("subreddit"), str(data.get("name") or "")
    post = _id36(str(data.get("link_id") or ""), "t3")
    if name.startswith("t1_") and post:
        return f"{WEB}/r/{sub}/comments/{post}/_/{name[3:]}/"
    return f"{WEB}/comments/{_id36(name, 't3')}/"


def _thread(data: Mapping[str, Any]) -> str | None:
    if data.get("link_id"):
        return str(data["link_id"])
    m = re.search(r"/comments/([0-9a-z]+)/", str(data.get("context") or data.get("permalink") or ""))
    return f"t3_{m.group(1)}" if m else None


def thing_mention(child: Mapping[str, Any], brands: Iterable[str], stream: str = "") -> Mention:
    """Map one listing child (t3 post or t1 comment, also as an inbox mention) to a Mention."""
    data = child["data"]
    brand_set = {b.lower() for b in brands}
    author = str(data.get("author") or DELETED)
    subreddit = str(data.get("subreddit") or "")
    created = datetime.fromtimestamp(float(data["created_utc"]), timezone.utc)
    raw: dict[str, Any] = {
        "subreddit": subreddit,
        "score": data.get("score"),
        "edited_at": _edited(data.get("edited")),
        "stream": stream,
    }
    if data.get("distinguished"):
        raw["distinguished"] = data["distinguished"]
    common: dict[str, Any] = {
        "source": "reddit",
        "external_id": str(data["name"]),
        "url": _permalink(data),
        "author": author,
        "author_is_brand": author.lower() in brand_set,
        "created_at": created,
        "site": f"r/{subreddit}" if subreddit else "reddit.com",
    }
    if child.get("kind") == "t3":
        text, state = _text(data.get("selftext"), data.get("selftext_html"))
        state = state or {"deleted": "deleted", "moderator": "removed"}.get(str(data.get("removed_by_category")), "")
        link = "" if data.get("is_self") else str(data.get("url") or "")
        comments = data.get("num_comments")
        raw.update(num_comments=comments, is_self=bool(data.get("is_self")), domain=data.get("domain"), state=state,
                   removed_by_category=data.get("removed_by_category"), over_18=bool(data.get("over_18")))
        if link:
            raw["url"] = link
        return Mention(
            **common,
            kind="post",
            title=str(data.get("title") or ""),
            text=text,
            thread_id=str(data["name"]),
            link_url=link if urlsplit(link).scheme in ("http", "https") else "",
            brand_replied=False if comments == 0 else None,
            raw=raw,
        )
    text, state = _text(data.get("body"), data.get("body_html"))
    raw.update(state=state, link_title=data.get("link_title"))
    if data.get("type"):
        raw["type"] = data["type"]  # "username_mention" from the inbox
    return Mention(
        **common,
        kind="comment",
        title=str(data.get("link_title") or ""),
        text=text,
        thread_id=_thread(data),
        parent_id=str(data.get("parent_id") or "") or None,
        raw=raw,
    )


CONNECTOR = RedditConnector
