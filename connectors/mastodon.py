"""Mastodon: hashtag timelines, mentions of the brand's account and full-text search, on any instance.

What the operator sets up (README material):

* `base_url` (required): the instance to read from, e.g.
  `https://mastodon.social`. Everything is plain REST on that instance.
* Hashtags need no account: `hashtags: [acmecrm, acme]` reads
  `/api/v1/timelines/tag/:tag`. (Some instances close their public
  timelines to anonymous readers; then give a token too.)
* `access_token: ${MASTODON_TOKEN}` for account mentions and search. On the
  brand's account: Preferences -> Development -> New application, scopes
  **read:notifications** (mentions), **read:search** and **read:statuses**
  (search, reply checks); nothing with write. Copy "Your access token". It
  is sent as `Authorization: Bearer` and never logged.
* `mentions` (default: on when a token is set) reads the account's
  notifications of type `mention` (`/api/v1/notifications?types[]=mention`).
* `search: true` runs the monitor's `query` through `/api/v2/search`
  (`type=statuses`, `resolve=false`), reduced to the words every match must
  contain (as for Hacker News); `search: "text"` sends that text verbatim.
  Full-text search needs Elasticsearch on the instance and, since Mastodon
  4.2, only finds posts whose authors opted in to search (plus posts the
  token's account interacted with): it complements hashtags, it does not
  replace them.
* The brand's accounts in the rule pack are full handles:
  `accounts: {mastodon: [acme@mastodon.example]}`; a bare name (`acme`)
  only stands for the local account of the instance read.

Reading. Ids are numeric strings, compared as integers (a non-Mastodon
server with other ids is refused with a clear error). Timelines and
notifications are read forward from the newest id seen: `min_id` returns
the statuses right after it (newest first within the page), so pages
follow one another until a short page (the `Link` header's `prev` gives the
next `min_id`). `max_pages` caps pages per stream and run; the rest is read
next run from where this one stopped, so nothing falls in a gap. The first
run pages back (`max_id`, the `Link` header's `next`) through
`first_run_lookback` only.

Late federation. A status from another server gets an id made from its own
publication time, so it can land *below* the newest id already read.
Timelines and search therefore re-read `federation_lag` (default 15 min)
below the newest id on every poll (Mastodon ids are snowflakes: the time
in milliseconds shifted left by 16 bits) and skip the ids already returned,
which the cursor keeps for that window. Usually that is part of the one
page an idle poll reads anyway; on a hashtag busier than 40 statuses per
lag window the overlap is re-read for at most 3 extra pages, so it never
starves the new statuses. Notification ids are handed out on arrival, so
mentions need no overlap.

Search has no `min_id` semantics to page forward on, so it pages by
`offset` from the newest result down to the cursor; when `max_pages` runs
out first, the older rest is skipped and a note says so.

Cursor: `{"streams": {"tag:acmecrm": {"min_id", "seen"}, "mentions":
{"min_id"}, "search:acme": {"min_id", "seen"}}}`. An idle poll costs one
request per stream.

Identity. `external_id` is `<instance domain>/<status id>`: status ids are
per instance (a remote status gets a local id on every instance that
receives it, and `in_reply_to_id` is such a local id too, so `parent_id`
can only be built in the same form). The domain is the one the instance
reports for itself (`/api/v2/instance` `domain`; `/api/v1/instance` `uri`
before Mastodon 4), asked once per run and only when there is something
to map, never `base_url`'s host: a proxy, another port or `www.` in
`base_url` must not turn every status into a new one. For the usual
`base_url: https://mastodon.social` that is the key form earful always
used. The status's own, globally unique `uri` is kept in `raw`.

Replies: `/api/v1/statuses/:id/context` lists the descendants the
instance knows; the earliest by a brand account answers the mention.
Anonymous context requests see at most a limited number of descendants, so
give a token for busy threads.

`earful check --online` (`verify`) calls `verify_credentials` (with a
token) and reads one item of each stream.

Rate limits: `x-ratelimit-limit/remaining/reset` (an ISO time) on every
answer; a 429 (`{"error": "Too many requests"}`, no Retry-After) becomes a
ConnectorError whose `retry_after` runs to `x-ratelimit-reset`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from earful.core import Mention, parse_time, retry_after_header
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
from .http import HttpClient, error_for_status, html_to_text, redact_url, split_url
from .paging import Page, Watermark, page_back, page_forward
from .pushdown import (
    all_words_queries,  # words every match contains, as for Hacker News
)

PAGE = 40  # Mastodon's maximum for timelines and search
OVERLAP_PAGES = 3  # pages of the federation-lag overlap re-read per stream, beyond `max_pages`
SEEN_MAX = 2_000
_ERROR_STATUSES = tuple(range(400, 600))
_SNOWFLAKE_FROM_MS = 1_451_606_400_000  # 2016-01-01: snowflake times before this are not times
_HASHTAG = re.compile(r"^\w+$", re.UNICODE)
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?(\w+)"?')
_ANCHOR = re.compile(r"<a\s[^>]*>", re.I)
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


_HINTS = {
    429: "rate limited by the instance; earful comes back in {retry_after}s",
    401: ("the access token is invalid or was revoked; create a new one (Preferences -> Development) "
          "and update the variable behind `access_token`"),
    403: "the token lacks a scope (read:notifications, read:search, read:statuses) or the instance refuses it",
    404: "nothing there; check `base_url` (the instance) and the hashtags",
    422: "the instance refused the request (public timelines may need a token there)",
    500: "the instance had a server error; earful retries on the next run",
}


class MastodonOptions(ConnectorOptions):
    access_token: SecretStr | None = Field(default=None, description="Token of the brand's account, e.g. ${MASTODON_TOKEN}.")
    hashtags: list[str] = Field(default_factory=list, description="Hashtags to read, without '#'.")
    mentions: bool | None = Field(default=None, description="Read the account's mentions (default: on when a token is set).")
    search: bool | str = Field(default=False, description="true: search the monitor's query; a string: search that text.")
    max_pages: int = Field(default=10, ge=1, le=200, description="Pages of 40 per stream and run.")
    first_run_lookback: Duration = Field(default=timedelta(days=1), gt=timedelta(0), description="History read on the first run.")
    federation_lag: Duration = Field(
        default=timedelta(minutes=15), ge=timedelta(0), le=timedelta(days=2),
        description="How late a status from another server may arrive; re-read on every poll.",
    )

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = [str(t).strip().lstrip("#") for t in value]
        bad = [t for t in tags if not _HASHTAG.match(t)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a hashtag (letters, digits and _ only)")
        return list(dict.fromkeys(t.lower() for t in tags))


    @model_validator(mode="after")
    def _check(self) -> "MastodonOptions":
        parts = urlsplit(self.base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("set `base_url` to the instance to read, e.g. https://mastodon.social")
        token = self.access_token is not None and bool(self.access_token.get_secret_value().strip())
        if self.access_token is not None and not token:
            raise ValueError("the Mastodon access token is empty; is the environment variable set?")
        if self.mentions and not token:
            raise ValueError("`mentions` needs `access_token` (a token of the brand's account with read:notifications)")
        if self.search not in (False, "") and not token:
            raise ValueError("`search` needs `access_token` (Mastodon searches statuses for logged-in accounts only)")
        if isinstance(self.search, str) and not self.search.strip():
            raise ValueError("`search` is an empty string; use true to search the monitor's query")
        if not self.hashtags and not self.read_mentions and self.search is False:
            raise ValueError("nothing to read: give `hashtags`, an `access_token` (mentions) or `search: true`")
        return self

    @property
    def read_mentions(self) -> bool:
        return self.access_token is not None if self.mentions is None else self.mentions


class MastodonConnector(Connector):
    name = "mastodon"
    sees_replies = True
    pushes_query = True
    Options = MastodonOptions
    options: MastodonOptions

    def __init__(self, options: MastodonOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.http = HttpClient(options, f"mastodon monitor {context.monitor!r}")
        self.base = (options.base_url or "").rstrip("/")
        self.address = (urlsplit(self.base).netloc or "").lower()  # how it is reached: no identity (see `domain`)
        self._domain: str | None = None

    # -- HTTP --------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        headers = {"Accept": "application/json"}
        if self.options.access_token is not None:
            headers["Authorization"] = f"Bearer {self.options.access_token.get_secret_value()}"
        response = self.http.get(self.base + path, params=params, headers=headers, accept=_ERROR_STATUSES)
        if response.status_code >= 400:
            raise self._error(response)
        try:
            return response.json(), response.headers
        except ValueError:
            ctype = response.headers.get("Content-Type", "no content-type")
            raise ConnectorError(
                f"{self.http.label}: {redact_url(response.url)} answered {response.status_code} but the body is not JSON "
                f"({ctype}, {len(response.content)} bytes); is `base_url` a Mastodon instance?",
                status=response.status_code,
            ) from None

    def _error(self, response: Any) -> ConnectorError:
        try:
            body = response.json()
        except ValueError:
            body = None
        said = str(body.get("error") or "")[:200] if isinstance(body, dict) else ""
        retry_after = None
        if response.status_code == 429:  # Mastodon sends no Retry-After, but says when its window resets
            retry_after = retry_after_header(response.headers)
            if retry_after is None:
                retry_after = _until(response.headers.get("x-ratelimit-reset"))
        return error_for_status(self.http.label, "GET", response.url, response.status_code, None, response.headers,
                                detail=repr(said) if said else None, hints=_HINTS, retry_after=retry_after)

    def domain(self) -> str:
        """The instance's own domain (its `LOCAL_DOMAIN`), asked once per connector, i.e. once per run."""
        if self._domain is None:
            try:
                info, _ = self._get("/api/v2/instance")
                found = info.get("domain") if isinstance(info, dict) else None
            except ConnectorError as exc:
                if exc.status not in (404, 410):
                    raise
                info, _ = self._get("/api/v1/instance")  # Mastodon before 4.0
                found = info.get("uri") if isinstance(info, dict) else None
            domain = str(found or "").strip().lower()
            domain = urlsplit(domain).netloc if "://" in domain else domain
            if not domain or "/" in domain:
                raise ConnectorError(f"{self.http.label}: the instance did not name its domain at /api/v2/instance or "
                                     "/api/v1/instance; is `base_url` a Mastodon instance?")
            self._domain = domain
        return self._domain

    def _reads(self, instance: str) -> bool:
        """Whether a key's instance is the one this connector reads (or, for keys stored before the domain
        came from the instance itself, the address it is reached at)."""
        return instance == self.address or instance == self.domain()

    # -- fetch -----------------------------------------------------------------
    def streams(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(cursor key, path, fixed params) of every stream this monitor reads."""
        found = [(f"tag:{tag}", f"/api/v1/timelines/tag/{quote(tag)}", {}) for tag in self.options.hashtags]
        if self.options.read_mentions:
            found.append(("mentions", "/api/v1/notifications", {"types[]": "mention"}))
        for query in self.search_queries():
            found.append((f"search:{query}", "/api/v2/search", {"q": query, "type": "statuses", "resolve": "false"}))
        return found

    def search_queries(self) -> list[str]:
        if self.options.search is False:
            return []
        if isinstance(self.options.search, str):
            return [self.options.search.strip()]

        if not (self.context.query or "").strip():
            raise ConnectorError(f"{self.http.label}: `search: true` needs the monitor's `query`; or give `search` a text")
        try:
            return all_words_queries(self.context.query or "")
        except ValueError as exc:
            raise ConnectorError(f"{self.http.label}: {exc}; give `search` an explicit text") from None

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        old: Mapping[str, Any] = (cursor or {}).get("streams") or {}
        start = self.http.count
        states: dict[str, Any] = {}
        statuses: dict[str, tuple[dict[str, Any], str]] = {}
        notes: list[str] = []
        for key, path, params in self.streams():
            if key.startswith("search:"):
                found, states[key], note = self._search(path, params, old.get(key))
            else:
                found, states[key], note = self._timeline(key, path, params, old.get(key))
            for status in found:
                statuses.setdefault(str(status["id"]), (status, key))
            if note:
                notes.append(f"Mastodon {key}: {note}")
        brands = self.context.brand_names("mastodon")
        ordered = sorted(statuses.values(), key=lambda sv: int(sv[0]["id"]))
        domain = self.domain() if ordered else ""
        mentions = [status_mention(status, domain, brands, via) for status, via in ordered]
        return FetchResult(mentions=mentions, cursor={"streams": states}, requests=self.http.count - start, notes=notes)

    def _page(self, path: str, params: Mapping[str, Any], what: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
        body, headers = self._get(path, params)
        items = body.get("statuses") if what == "search" and isinstance(body, dict) else body
        if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
            raise ConnectorError(
                f"{self.http.label}: unexpected answer from {path}: expected a list of "
                f"{'notifications' if what == 'mentions' else 'statuses'}; is `base_url` a Mastodon instance?"
            )
        for item in items:
            if not str(item["id"]).isdigit():
                raise ConnectorError(
                    f"{self.http.label}: {path} returned the id {str(item['id'])[:40]!r}, not a number; "
                    "earful reads Mastodon's API and this server's ids differ (Pleroma/Akkoma/GoToSocial are not supported)"
                )
        return items, _links(headers.get("Link") or headers.get("link") or "")

    def _statuses(self, items: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        """The statuses carried by timeline items or mention notifications (a deleted status leaves none)."""
        if key != "mentions":
            return [i for i in items if not i.get("reblog")]
        return [n["status"] for n in items if n.get("type") == "mention" and isinstance(n.get("status"), dict)]

    def _timeline(self, key: str, path: str, params: Mapping[str, Any], state: Mapping[str, Any] | None
                  ) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """Items of a timeline or the notifications since the cursor, oldest first: (statuses, next state, note)."""
        lagged = key != "mentions"
        if not state or state.get("min_id") is None:
            return self._first_read(key, path, params, lagged)
        newest = int(state["min_id"])
        seen = {int(i) for i in state.get("seen") or ()}
        fetch = self._forward_pages(path, params, key)
        read, complete = self._read_forward(fetch, newest, self._floor(newest) if lagged else newest)
        new = [i for i in read if _id(i) not in seen]
        top = max([newest, *(_id(i) for i in read)])
        note = "" if complete else "more statuses left (over `max_pages`), read on the next run"
        return self._statuses(new, key), self._state(top, seen | {_id(i) for i in read}, lagged), note

    def _forward_pages(self, path: str, params: Mapping[str, Any], key: str) -> Callable[[int], Page[dict[str, Any]]]:
        """The page of a timeline (or the notifications) right after an id, for `page_forward`."""
        def page(after: int) -> Page[dict[str, Any]]:
            items, links = self._page(path, {**params, "min_id": str(after), "limit": PAGE}, key)
            # The Link header's `prev` marks the page's end even when the server hid some of its items
            # (muted or blocked accounts): page_forward prefers it, so hidden items are not asked for again.
            linked = str(links.get("prev", {}).get("min_id") or "")
            return Page(items, int(linked) if linked.isdigit() else None)

        return page

    def _read_forward(self, fetch: Callable[[int], Page[dict[str, Any]]], newest: int, after: int
                      ) -> tuple[list[dict[str, Any]], bool]:
        """Items after `after`, oldest first, and whether the stream was read to its end.

        Pages wholly at or below `newest` re-read the federation-lag overlap for late statuses: they do not
        count against `max_pages`, and after OVERLAP_PAGES of them the rest of the overlap is given up, so a
        busy overlap never starves what is new. The page that reaches past `newest` is the first new one.
        """
        read: list[dict[str, Any]] = []
        budget = self.options.max_pages
        for _ in range(OVERLAP_PAGES):
            step = page_forward(fetch, after, position=_id, max_pages=1, page_size=PAGE)
            read += step.items
            if step.complete:
                return read, True
            after = step.after
            if _id(step.items[-1]) > newest:
                budget -= 1
                break
        else:
            after = newest  # look no further for late ones
        rest = page_forward(fetch, after, position=_id, max_pages=budget, page_size=PAGE)
        return read + rest.items, rest.complete

    def _first_read(self, key: str, path: str, params: Mapping[str, Any], lagged: bool
                    ) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """The first run: newest pages back to `first_run_lookback`; the newest id becomes the cursor."""
        cutoff = self.context.current_time() - self.options.first_run_lookback
        listed: set[int] = set()  # every id on the pages, recent or not: none of them may come back as new

        def page(max_id: str | None) -> Page[dict[str, Any]]:
            items, links = self._page(path, {**params, "limit": PAGE, **({"max_id": max_id} if max_id else {})}, key)
            listed.update(_id(i) for i in items)
            linked = str(links.get("next", {}).get("max_id") or "")
            older = linked if linked.isdigit() else (str(min(_id(i) for i in items)) if items else None)
            return Page(items, older if len(items) == PAGE else None)

        caught = page_back(page, Watermark(cutoff), key=_key, position=_created_or(cutoff), max_pages=self.options.max_pages)
        read = sorted(caught.items, key=_id)
        note = "" if caught.complete else "first run: the older part of `first_run_lookback` was skipped (over `max_pages`)"
        return self._statuses(read, key), self._state(max(listed, default=0), listed, lagged), note

    def _search(self, path: str, params: Mapping[str, Any], state: Mapping[str, Any] | None
                ) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """Search results newer than the cursor (offset paging from the newest), oldest first."""
        if not state or state.get("min_id") is None:
            return self._first_search(path, params)
        newest = int(state["min_id"])
        seen = {int(i) for i in state.get("seen") or ()}
        stop = self._floor(newest)
        listed: set[int] = set()
        fetch = self._search_pages(path, params, stop, listed)
        mark = Watermark(newest + 1)
        new = page_back(fetch, mark, key=_key, position=_id, max_pages=self.options.max_pages)
        found, complete = new.items, new.complete
        if new.reached:
            # Everything newer is read: re-read the federation-lag overlap below it, from the page the newest
            # result of the last run was met on, for at most OVERLAP_PAGES pages.
            overlap = Watermark(stop + 1, {**{str(i): i for i in seen}, **mark.seen})
            late = page_back(lambda number: fetch(new.pages - 1 if number is None else number), overlap,
                             key=_key, position=_id, max_pages=OVERLAP_PAGES)
            found, complete = found + late.items, True
        return self._search_result(found, newest, seen, listed, complete)

    def _first_search(self, path: str, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """The first run's search: the newest results back to `first_run_lookback`."""
        cutoff = self.context.current_time() - self.options.first_run_lookback
        listed: set[int] = set()
        caught = page_back(self._search_pages(path, params, 0, listed), Watermark(cutoff), key=_key,
                           position=_created_or(cutoff), max_pages=self.options.max_pages)
        return self._search_result(caught.items, 0, set(), listed, caught.complete)

    def _search_pages(self, path: str, params: Mapping[str, Any], stop: int, listed: set[int]
                      ) -> Callable[[int | None], Page[dict[str, Any]]]:
        """Search pages by number (None: the first), each requested once; every id listed is added to `listed`."""
        pages: dict[int, Page[dict[str, Any]]] = {}

        def page(number: int | None) -> Page[dict[str, Any]]:
            number = number or 0
            if number not in pages:
                query = {**params, "limit": PAGE, "offset": number * PAGE, **({"min_id": str(stop)} if stop else {})}
                items, _ = self._page(path, query, "search")
                listed.update(_id(i) for i in items)
                pages[number] = Page(items, number + 1 if len(items) == PAGE else None)
            return pages[number]

        return page

    def _search_result(self, found: list[dict[str, Any]], newest: int, seen: set[int], listed: set[int], complete: bool
                       ) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """(new statuses oldest first, without boosts; next state; note) of one search."""
        new = sorted(found, key=_id)
        note = "" if complete else "older results were skipped (over `max_pages`)"
        return [i for i in new if not i.get("reblog")], self._state(max([newest, *listed]), seen | listed, True), note

    def _floor(self, newest: int) -> int:
        """The id `federation_lag` below `newest` (snowflake ids), or `newest` itself for ids that are no times."""
        ms = newest >> 16
        lag_ms = int(self.options.federation_lag.total_seconds() * 1000)
        now_ms = int(self.context.current_time().timestamp() * 1000)
        if not lag_ms or not _SNOWFLAKE_FROM_MS <= ms <= now_ms + 86_400_000:
            return newest
        return (ms - lag_ms) << 16

    def _state(self, newest: int, seen: set[int], lagged: bool) -> dict[str, Any]:
        state: dict[str, Any] = {"min_id": str(newest)}
        if lagged:
            floor = self._floor(newest)
            state["seen"] = [str(i) for i in sorted(i for i in seen if floor < i <= newest)[-SEEN_MAX:]]
        return state

    # -- earful check --online ---------------------------------------------------------
    def verify(self) -> None:
        """The token (`verify_credentials`), then one item of each stream: proves scopes and public timelines."""
        if self.options.access_token is not None:
            account, _ = self._get("/api/v1/accounts/verify_credentials")
            if not isinstance(account, dict) or "acct" not in account:
                raise ConnectorError(f"{self.http.label}: verify_credentials did not return an account; is `base_url` a Mastodon instance?")
        for key, path, params in self.streams():
            self._page(path, {**params, "limit": 1}, "search" if key.startswith("search:") else key)

    # -- replies ------------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """The earliest brand reply among the status's descendants; unknown on errors or a deleted status."""
        brands = self.context.brand_names("mastodon")
        instance, _, local_id = mention.external_id.rpartition("/")
        if mention.source != self.name or not brands:
            return ReplyStatus(answered=None)
        try:
            local_id = str(mention.raw.get("id") or local_id) if self._reads(instance) else ""
            if not local_id.isdigit():
                return ReplyStatus(answered=None)
            context, _ = self._get(f"/api/v1/statuses/{local_id}/context")
        except ConnectorError:
            return ReplyStatus(answered=None)
        if not isinstance(context, dict) or not isinstance(context.get("descendants"), list):
            return ReplyStatus(answered=None)
        answers = [s for s in context["descendants"] if isinstance(s, dict) and is_brand(s.get("account") or {}, brands)
                   and _time(s.get("created_at"))]
        if not answers:
            return ReplyStatus(answered=False)
        first = min(answers, key=lambda s: _time(s["created_at"]))  # type: ignore[arg-type, return-value]
        return ReplyStatus(answered=True, answered_at=_time(first["created_at"]), answered_by=full_acct(first["account"]),
                           url=str(first.get("url") or first.get("uri") or ""))

    def close(self) -> None:
        self.http.close()


# -- helpers ----------------------------------------------------------------------------


def _links(header: str) -> dict[str, dict[str, str]]:
    """`Link: <...?max_id=1>; rel="next", <...?min_id=2>; rel="prev"` -> {"next": {"max_id": "1"}, "prev": {...}}."""
    return {rel: dict(parse_qsl(urlsplit(url).query)) for url, rel in _LINK.findall(header)}


def _id(item: Mapping[str, Any]) -> int:
    """A status's (or notification's) position: Mastodon ids are numbers in strings, ordered by time."""
    return int(item["id"])


def _key(item: Mapping[str, Any]) -> str:
    return str(item["id"])


def _created_or(default: datetime) -> Callable[[Mapping[str, Any]], datetime]:
    """A status's position by its time; one without a readable time counts as `default` (it stays in the window)."""
    return lambda item: _time(item.get("created_at")) or default


def _until(value: str | None) -> float | None:
    """Seconds from now until an ISO time such as `x-ratelimit-reset`."""
    when = _time(value)
    if when is None:
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _time(value: Any) -> datetime | None:
    """A status time: only strings are times here (epoch numbers are not part of Mastodon's API)."""
    return parse_time(value) if isinstance(value, str) else None


def full_acct(account: Mapping[str, Any]) -> str:
    """`user@domain` for local accounts too (their `acct` has no domain; their profile URL has it)."""
    acct = str(account.get("acct") or account.get("username") or "")
    if "@" in acct or not acct:
        return acct
    host = (split_url(str(account.get("url") or "")).hostname or "").lower()
    return f"{acct}@{host}" if host else acct


def is_brand(account: Mapping[str, Any], brands: set[str]) -> bool:
    """A full handle must match exactly; a bare brand name matches only a local account of that name."""
    if not brands:
        return False
    acct = str(account.get("acct") or "").lower()
    return full_acct(account).lower() in brands or ("@" not in acct and acct in brands)


def _link_url(status: Mapping[str, Any]) -> str:
    card = status.get("card")
    if isinstance(card, dict) and str(card.get("url") or "").startswith(("http://", "https://")):
        return str(card["url"])
    for tag in _ANCHOR.findall(str(status.get("content") or "")):
        attrs = dict(_ATTR.findall(tag))
        classes = attrs.get("class", "").split()
        if attrs.get("href", "").startswith(("http://", "https://")) and "mention" not in classes and "hashtag" not in classes:
            return attrs["href"]
    return ""


def _status_text(status: Mapping[str, Any]) -> str:
    """The status's words as plain text, a poll's options included (they often carry the question)."""
    text = html_to_text(str(status.get("content") or ""))
    poll = status.get("poll")
    if isinstance(poll, dict) and poll.get("options"):
        text += "\n\nPoll: " + " / ".join(str(o.get("title") or "") for o in poll["options"] if isinstance(o, dict))
    return text.strip()


def _status_raw(status: Mapping[str, Any], instance: str, via: str) -> dict[str, Any]:
    """What a Mention keeps of the status beyond its own fields: for audits and reply checks."""
    return {
        "id": str(status["id"]),
        "uri": status.get("uri"),
        "instance": instance,
        "via": via,
        "visibility": status.get("visibility"),
        "edited_at": status.get("edited_at"),
        "replies_count": status.get("replies_count"),
        "tags": [t.get("name") for t in status.get("tags") or [] if isinstance(t, dict)],
        "in_reply_to_account_id": status.get("in_reply_to_account_id"),
        "media": [m.get("url") for m in status.get("media_attachments") or [] if isinstance(m, dict)],
    }


def status_mention(status: Mapping[str, Any], instance: str, brands: set[str], via: str = "") -> Mention:
    """Map one Mastodon status, as served by the instance whose own domain is `instance`, to a Mention."""
    account = status.get("account") or {}
    local_id = str(status["id"])
    url = str(status.get("url") or status.get("uri") or "")
    reply_to = status.get("in_reply_to_id")
    return Mention(
        source="mastodon",
        external_id=f"{instance}/{local_id}",
        url=url,
        author=full_acct(account),
        author_is_brand=is_brand(account, brands),
        title=str(status.get("spoiler_text") or ""),  # a content warning reads as a subject line
        text=_status_text(status),
        created_at=_time(status.get("created_at")),
        thread_id=None if reply_to else f"{instance}/{local_id}",
        parent_id=f"{instance}/{reply_to}" if reply_to else None,
        kind="reply" if reply_to else "post",
        language=status.get("language") or None,
        site=url_host(url),  # "" for a link that does not parse: never raises
        link_url=_link_url(status),
        raw=_status_raw(status, instance, via),
    )


CONNECTOR = MastodonConnector
