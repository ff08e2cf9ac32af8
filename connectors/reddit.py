"""Reddit: site-wide search, new posts and comments of subreddits, and the brand's inbox mentions (praw).

Streams. One monitor reads up to four listings, each with its own cursor:
`search` (site-wide search for the monitor's query, compiled to Reddit's
syntax by `pushdown.compile_query`, sorted by new), `new:<subs>` and
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
Text is read from the HTML rendering, spoilers included (`rendered_text`).
Comments of older listings carry no `permalink`; their address is built
from their ids, in listings and in the reply check alike.
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
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from pydantic import Field, SecretStr, field_validator, model_validator

from earful.core import Mention, parse_retry_after, retry_after_header
from earful.core.durations import Duration

from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
    ReplyStatus,
)
from .http import error_for_status, html_to_text, redact_url, split_url
from .paging import CatchUp, Page, Watermark, page_back
from .pushdown import compile_query

if TYPE_CHECKING:
    import praw
    import requests

log = logging.getLogger("earful.connectors.reddit")

WEB = "https://www.reddit.com"
LISTING_REACH = 1000
LISTING_OVERLAP = 60.0  # seconds re-read below the cursor of /new, /comments and the inbox
MAX_SEEN = 2000
RETRY_PAUSE = 1.0  # seconds before the first retry of a 5xx or connection error; doubled after
DELETED = "[deleted]"
_BODY_MARKERS = {"[deleted]": "deleted", "[removed]": "removed"}
_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
# Subreddits' spoiler convention before Reddit had `>!spoilers!<`: `[shown](/s "hidden")`, rendered as a link whose title hides the text.
SPOILER_LINKS = frozenset({"/s", "#s", "/spoiler", "#spoiler"})


class RedditOptions(ConnectorOptions):
    client_id: SecretStr = Field(description="Reddit app id, e.g. ${REDDIT_CLIENT_ID} (reddit.com/prefs/apps).")
    client_secret: SecretStr = Field(description="Reddit app secret, e.g. ${REDDIT_CLIENT_SECRET}.")
    username: str | None = Field(default=None, description="The brand's Reddit account, to read its u/ mentions.")
    password: SecretStr | None = Field(default=None, description="That account's password (script app), e.g. ${REDDIT_PASSWORD}.")
    search: str | None = Field(default=None, description="Reddit search query sent verbatim instead of the monitor's query.")
    search_sitewide: bool = Field(default=True, description="Search all of Reddit for the query.")
    subreddits: list[str] = Field(default_factory=list, description="Read every new post and comment of these.")
    inbox_mentions: bool = Field(default=True, description="Read u/username mentions when username/password are set.")
    first_run_lookback: Duration = Field(default=timedelta(days=1), gt=timedelta(0),
                                          description="History read on the very first run, e.g. 1d, 12h.")
    search_overlap: Duration = Field(default=timedelta(hours=1), ge=timedelta(0),
                                      description="Re-read this much below the search cursor: Reddit's search index lags.")
    max_pages: int = Field(default=10, ge=1, le=10, description="Pages of 100 per stream and run (Reddit serves 10 at most).")
    page_size: int = Field(default=100, ge=1, le=100)
    replace_more_limit: int = Field(default=32, ge=0, le=500,
                                    description="'load more comments' requests allowed per replies() check.")
    retries: int = Field(default=2, ge=0, le=5, description="prawcore retries of 5xx answers and connection errors.")


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

        from .limits import bounded_session

        self._session = bounded_session(self.options.timeout, self.options.max_response_mb)  # deadline and size cap
        opts = self.options
        credentials: dict[str, Any] = {}
        if opts.username and opts.password is not None:
            credentials = {"username": opts.username, "password": opts.password.get_secret_value()}
        return praw.Reddit(
            client_id=opts.client_id.get_secret_value(),
            client_secret=opts.client_secret.get_secret_value(),
            user_agent=f"{opts.user_agent} (monitor {self.context.monitor})",
            oauth_url=self.oauth_url + "/",  # joined with paths: needs the slash
            reddit_url=self.reddit_url,  # concatenated with "/api/v1/access_token": must not have it
            check_for_updates=False,
            check_for_async=False,
            timeout=max(1, math.ceil(opts.timeout)),
            requestor_class=_requestor_class(self),
            requestor_kwargs={"session": self._session, "timeout": opts.timeout},
            **credentials,
        )

    def _get(self, path: str, params: Mapping[str, Any], what: str) -> Any:
        try:
            return self.reddit.request(method="GET", path=path, params=dict(params))
        except Exception as exc:  # noqa: BLE001 - converted below; anything unknown is re-raised
            raise self._error(exc, what, path) from None

    def _error(self, exc: BaseException, what: str, path: str) -> BaseException:
        """A ConnectorError for any praw/prawcore failure (other exceptions pass through)."""
        import praw.exceptions
        import prawcore

        url = self.oauth_url + "/" + path.lstrip("/")
        prefix = f"{self.label}: {what} ({redact_url(url)})"
        if isinstance(exc, ConnectorError):
            return exc
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
            return self._status_error(exc, url)
        if isinstance(exc, prawcore.RequestException):
            return self._connection_error(exc.original_exception, prefix)
        if isinstance(exc, praw.exceptions.RedditAPIException):
            return ConnectorError(f"{prefix}: Reddit reported {exc}")
        if isinstance(exc, (prawcore.PrawcoreException, praw.exceptions.PRAWException)):
            return ConnectorError(f"{prefix} failed: {type(exc).__name__}: {exc}")
        return exc

    def _status_error(self, exc: Any, url: str) -> ConnectorError:
        """An HTTP error answer (also the token endpoint's) through the shared mapping, with Reddit's advice."""
        import prawcore

        response = exc.response
        token = (response.url or "").endswith("/api/v1/access_token")
        credentials = "Reddit refused the app credentials; check `client_id`/`client_secret` (revoked app?)"
        hints = {
            429: "Reddit rate limit reached; earful comes back in {retry_after}s",
            401: credentials,
            403: credentials if token else ("access forbidden: the inbox needs `username`/`password`, or the subreddit "
                                            "is private, quarantined or banned"),
            404: "not found: the subreddit may be banned or misspelt; check `subreddits`",
            500: "Reddit server error; earful retries on the next run",
        }
        status = response.status_code
        if status < 500 and status not in hints and (token or isinstance(exc, prawcore.InvalidToken)):
            hints[status] = credentials
        retry_after = None
        if status == 429:
            reset = parse_retry_after(response.headers.get("x-ratelimit-reset"))
            retry_after = max(1.0, retry_after_header(response.headers) or reset or 60.0)
        return error_for_status(self.label, "GET", url if not token else response.url, status, response.reason,
                                response.headers, hints=hints, retry_after=retry_after)

    def _connection_error(self, original: BaseException, prefix: str) -> ConnectorError:
        import requests

        from .limits import ResponseTooLarge

        if isinstance(original, RetriesExhausted):
            original = original.cause
        if isinstance(original, ResponseTooLarge):
            return ConnectorError(f"{prefix}: {original}")
        if isinstance(original, requests.Timeout):
            return ConnectorError(f"{prefix} timed out after {self.options.timeout:g}s; Reddit may be slow or down "
                                  "(raise `timeout` if it always is)")
        return ConnectorError(f"{prefix}: could not connect ({type(original).__name__}); check `base_url`, DNS and the network")

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
            seen = ((str(k), float(v)) for k, v in (state.get("seen") or {}).items())
            mark = Watermark.resume(float(state["newest_utc"]), overlap, seen, newest_key=state.get("newest"))
        else:
            mark = Watermark((self.context.current_time() - self.options.first_run_lookback).timestamp())

        listed = 0  # items listed so far: Reddit's `count` parameter

        def page(after: str | None) -> Page[dict[str, Any]]:
            nonlocal listed
            query = {**params, "limit": self.options.page_size, **({"after": after, "count": listed} if after else {})}
            children, following = self._children(self._get(path, query, f"listing {key}"), path)
            listed += len(children)
            return Page(children, following)

        caught = page_back(page, mark, key=lambda c: c["data"]["name"], position=lambda c: float(c["data"]["created_utc"]),
                           max_pages=self.options.max_pages)
        mark.advance(overlap, MAX_SEEN)
        return caught.items, {"newest": mark.newest_key, "newest_utc": mark.newest, "seen": mark.seen}, self._gap_note(key, state, caught)

    def _gap_note(self, key: str, state: Mapping[str, Any] | None, caught: CatchUp[Any]) -> str:
        """What an operator should know when a catch-up did not meet the last run's position."""
        if not state or caught.reached:
            return ""
        if caught.cut:
            return (f"Reddit {key}: stopped after {caught.pages} pages without reaching the last run's position; "
                    "items in between were skipped (raise `max_pages`)")
        if caught.read >= LISTING_REACH - self.options.page_size:
            return (f"Reddit {key}: the listing ended ({caught.read} items) before the last run's position; "
                    "Reddit serves only the newest 1000, older items of the outage were missed")
        return ""

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
                url=_comment_url(first),
            )
        if left:  # comments we were not allowed to load might hold the answer
            return ReplyStatus(answered=None)
        return ReplyStatus(answered=False)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self._reddit = None


# -- HTTP ------------------------------------------------------------------------------------


class RetriesExhausted(Exception):
    """A connection failure the requestor already retried `retries` times; `cause` is the last one.

    prawcore retries connection errors of its own accord (with sleeps and
    no public setting for how often); handing it this instead of the
    original error tells it the request is done for.
    """

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _requestor_class(connector: "RedditConnector") -> type:
    """A prawcore Requestor (praw's documented `requestor_class` seam) that owns timeouts, counting and retries.

    praw 8 passes its own fixed timeout, so `timeout` is enforced here; every
    attempt is counted for `FetchResult.requests`; 5xx answers and
    connection errors are retried `retries` times here, and the final
    outcome is raised in a form prawcore's session does not retry again.
    """
    import prawcore

    class Requestor(prawcore.Requestor):
        def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
            retries, attempt = connector.options.retries, 0
            while True:
                connector.requests += 1
                try:
                    response = super().request(*args, timeout=connector.options.timeout, **kwargs)
                except prawcore.RequestException as exc:
                    if not isinstance(exc.original_exception, prawcore.Session.RETRY_EXCEPTIONS):
                        raise
                    if attempt >= retries:
                        raise prawcore.RequestException(RetriesExhausted(exc.original_exception), args, kwargs) from None
                else:
                    if response.status_code not in prawcore.Session.RETRY_STATUSES:
                        return response
                    if attempt >= retries:
                        failure = prawcore.Session.STATUS_EXCEPTIONS.get(response.status_code, prawcore.ResponseException)
                        raise failure(response)
                attempt += 1
                time.sleep(min(RETRY_PAUSE * 2 ** (attempt - 1), 8.0))

    return Requestor


# -- mapping -------------------------------------------------------------------------------


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


def rendered_text(rendered: str) -> str:
    """Plain text of Reddit's HTML rendering of markdown (`selftext_html`, `body_html`, a .rss entry's content).

    Spoilers are text the author wrote, so rules must see them: `>!x!<`
    renders as a `md-spoiler-text` span (its text stays), the older
    `[shown](/s "hidden")` as a link whose `title` holds the hidden words.
    """
    return html_to_text(rendered, titled_links=SPOILER_LINKS)


def _text(markdown: Any, rendered: Any) -> tuple[str, str]:
    """(plain text, state): the HTML rendering read as text; deletion markers become ("", "deleted"/"removed")."""
    raw = str(markdown or "").strip()
    if raw in _BODY_MARKERS:
        return "", _BODY_MARKERS[raw]
    if isinstance(rendered, str) and rendered:
        return rendered_text(rendered), ""
    return raw, ""


def _permalink(data: Mapping[str, Any]) -> str:
    """A thing's web address: its `permalink` or inbox `context`, else built from its ids (older listings have neither)."""
    link = str(data.get("permalink") or data.get("context") or "").split("?", 1)[0]
    if link.startswith("/"):
        return WEB + link
    if link.startswith("http"):
        return link
    sub, name = str(data.get("subreddit") or ""), str(data.get("name") or "")
    post = _id36(str(data.get("link_id") or ""), "t3")
    if name.startswith("t1_") and post:
        return f"{WEB}{f'/r/{sub}' if sub else ''}/comments/{post}/_/{name[3:]}/"
    return f"{WEB}/comments/{_id36(name, 't3')}/"


def _comment_url(comment: Any) -> str:
    """A praw comment's web address, read from the data it was built from.

    Comments of older listings carry no `permalink`, and praw raises
    AttributeError for a missing field of an already-fetched comment, so
    the fields are read from the object's own data (never fetched again).
    """
    fields = vars(comment)
    return _permalink({"permalink": fields.get("permalink"), "name": fields.get("name") or f"t1_{fields.get('id', '')}",
                       "link_id": fields.get("link_id"), "subreddit": fields.get("subreddit")})


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
            link_url=link if split_url(link).scheme in ("http", "https") else "",
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
