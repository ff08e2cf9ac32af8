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
request per stream. `external_id` is `<instance host>/<status id>` (status
ids are per instance), `parent_id` the same for `in_reply_to_id`.

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
from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import Connector, ConnectorContext, ConnectorError, ConnectorOptions, FetchResult, ReplyStatus
from earful.core import Mention
from .http import HttpClient, html_to_text, redact_url
from earful.core import parse_retry_after

PAGE = 40  # Mastodon's maximum for timelines and search
OVERLAP_PAGES = 3  # pages of the federation-lag overlap re-read per stream, beyond `max_pages`
SEEN_MAX = 2_000
_ERROR_STATUSES = tuple(range(400, 600))
_SNOWFLAKE_FROM_MS = 1_451_606_400_000  # 2016-01-01: snowflake times before this are not times
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HASHTAG = re.compile(r"^\w+$", re.UNICODE)
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?(\w+)"?')
_ANCHOR = re.compile(r"<a\s[^>]*>", re.I)
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


class MastodonOptions(ConnectorOptions):
    access_token: SecretStr | None = Field(default=None, description="Token of the brand's account, e.g. ${MASTODON_TOKEN}.")
    hashtags: list[str] = Field(default_factory=list, description="Hashtags to read, without '#'.")
    mentions: bool | None = Field(default=None, description="Read the account's mentions (default: on when a token is set).")
    search: bool | str = Field(default=False, description="true: search the monitor's query; a string: search that text.")
    max_pages: int = Field(default=10, ge=1, le=200, description="Pages of 40 per stream and run.")
    first_run_lookback: timedelta = Field(default=timedelta(days=1), gt=timedelta(0), description="History read on the first run.")
    federation_lag: timedelta = Field(
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

    @field_validator("first_run_lookback", "federation_lag", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and (m := _DURATION.match(value)):
            return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        return value

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
        parts = urlsplit(self.base)
        self.instance = (parts.netloc or "").lower()

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
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        said = str(body.get("error") or "")[:200] if isinstance(body, dict) else ""
        retry_after = None
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = _until(response.headers.get("x-ratelimit-reset"))
            hint = f"rate limited by the instance; earful comes back in {retry_after or 0:g}s"
        elif status == 401:
            hint = ("the access token is invalid or was revoked; create a new one (Preferences -> Development) "
                    "and update the variable behind `access_token`")
        elif status == 403:
            hint = "the token lacks a scope (read:notifications, read:search, read:statuses) or the instance refuses it"
        elif status == 404:
            hint = "nothing there; check `base_url` (the instance) and the hashtags"
        elif status == 422:
            hint = "the instance refused the request (public timelines may need a token there)"
        elif status >= 500:
            hint = "the instance had a server error; earful retries on the next run"
        else:
            hint = "the request was refused; check the connector options"
        detail = f" ({said!r})" if said else ""
        message = f"{self.http.label}: GET {redact_url(response.url)} answered HTTP {status}{detail}; {hint}"
        return ConnectorError(message, retry_after=retry_after, status=status)

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
        from .hackernews import pushdown  # the same reduction: words every match contains

        if not (self.context.query or "").strip():
            raise ConnectorError(f"{self.http.label}: `search: true` needs the monitor's `query`; or give `search` a text")
        try:
            return pushdown(self.context.query or "")
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
        mentions = [status_mention(status, self.instance, brands, via) for status, via in ordered]
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
        after = self._floor(newest) if lagged else newest
        read: list[dict[str, Any]] = []
        complete = False
        pages = overlap_pages = 0
        while pages < self.options.max_pages:
            items, links = self._page(path, {**params, "min_id": str(after), "limit": PAGE}, key)
            fresh = sorted((i for i in items if int(i["id"]) > after), key=lambda i: int(i["id"]))
            read.extend(fresh)
            if fresh:
                # The Link header's `prev` marks the page's end even when the server hid some of its items
                # (muted or blocked accounts): prefer it, so hidden items are not asked for again.
                linked = str(links.get("prev", {}).get("min_id") or "")
                after = max(int(fresh[-1]["id"]), int(linked) if linked.isdigit() else 0)
            if len(items) < PAGE or not fresh:
                complete = True
                break
            if int(fresh[-1]["id"]) <= newest:  # a page of the re-read overlap only
                overlap_pages += 1
                if overlap_pages >= OVERLAP_PAGES:
                    after = newest  # a busy overlap must not starve what is new: look no further for late ones
            else:
                pages += 1
        new = [i for i in read if int(i["id"]) not in seen]
        top = max([newest, *(int(i["id"]) for i in read)])
        note = "" if complete else "more statuses left (over `max_pages`), read on the next run"
        return self._statuses(new, key), self._state(top, seen | {int(i["id"]) for i in read}, lagged), note

    def _first_read(self, key: str, path: str, params: Mapping[str, Any], lagged: bool
                    ) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """The first run: newest pages back to `first_run_lookback`; the newest id becomes the cursor."""
        cutoff = self.context.current_time() - self.options.first_run_lookback
        query: dict[str, Any] = {**params, "limit": PAGE}
        read: list[dict[str, Any]] = []
        listed: set[int] = set()  # every id on the pages, recent or not: none of them may come back as new
        complete = False
        for _ in range(self.options.max_pages):
            items, links = self._page(path, query, key)
            listed.update(int(i["id"]) for i in items)
            recent = [i for i in items if (_time(i.get("created_at")) or cutoff) >= cutoff]
            read.extend(recent)
            linked = str(links.get("next", {}).get("max_id") or "")
            older = linked if linked.isdigit() else (str(min(int(i["id"]) for i in items)) if items else None)
            if len(items) < PAGE or len(recent) < len(items) or older is None:
                complete = True
                break
            query = {**params, "limit": PAGE, "max_id": older}
        read.sort(key=lambda i: int(i["id"]))
        note = "" if complete else "first run: the older part of `first_run_lookback` was skipped (over `max_pages`)"
        return self._statuses(read, key), self._state(max(listed, default=0), listed, lagged), note

    def _search(self, path: str, params: Mapping[str, Any], state: Mapping[str, Any] | None
                ) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
        """Search results newer than the cursor (offset paging from the newest), oldest first."""
        if state and state.get("min_id") is not None:
            newest = int(state["min_id"])
            stop, cutoff, seen = self._floor(newest), None, {int(i) for i in state.get("seen") or ()}
        else:
            newest, stop, seen = 0, 0, set()
            cutoff = self.context.current_time() - self.options.first_run_lookback
        read: dict[int, dict[str, Any]] = {}
        listed: set[int] = set()
        complete = False
        page = pages = overlap_pages = 0
        while pages < self.options.max_pages:
            query = {**params, "limit": PAGE, "offset": page * PAGE}
            if stop:
                query["min_id"] = str(stop)
            items, _ = self._page(path, query, "search")
            page += 1
            listed.update(int(i["id"]) for i in items)
            fresh = [i for i in items if int(i["id"]) > stop and (cutoff is None or (_time(i.get("created_at")) or cutoff) >= cutoff)]
            read.update((int(i["id"]), i) for i in fresh)  # a result pushed down by a new one may come twice
            if len(items) < PAGE or len(fresh) < len(items):
                complete = True
                break
            if newest and any(int(i["id"]) <= newest for i in items):  # everything newer is read: only the overlap is left
                overlap_pages += 1
                if overlap_pages >= OVERLAP_PAGES:
                    complete = True
                    break
            else:
                pages += 1
        new = sorted((i for n, i in read.items() if n not in seen), key=lambda i: int(i["id"]))
        top = max([newest, *listed])
        note = "" if complete else "older results were skipped (over `max_pages`)"
        return [i for i in new if not i.get("reblog")], self._state(top, seen | listed, True), note

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
        local_id = str(mention.raw.get("id") or local_id) if instance == self.instance else ""
        if mention.source != self.name or not brands or not local_id.isdigit():
            return ReplyStatus(answered=None)
        try:
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


def _until(value: str | None) -> float | None:
    """Seconds from now until an ISO time such as `x-ratelimit-reset`."""
    when = _time(value)
    if when is None:
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def full_acct(account: Mapping[str, Any]) -> str:
    """`user@domain` for local accounts too (their `acct` has no domain; their profile URL has it)."""
    acct = str(account.get("acct") or account.get("username") or "")
    if "@" in acct or not acct:
        return acct
    host = (urlsplit(str(account.get("url") or "")).hostname or "").lower()
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


def status_mention(status: Mapping[str, Any], instance: str, brands: set[str], via: str = "") -> Mention:
    """Map one Mastodon status (as served by `instance`) to a Mention."""
    account = status.get("account") or {}
    local_id = str(status["id"])
    text = html_to_text(str(status.get("content") or ""))
    poll = status.get("poll")
    if isinstance(poll, dict) and poll.get("options"):
        text += "\n\nPoll: " + " / ".join(str(o.get("title") or "") for o in poll["options"] if isinstance(o, dict))
    url = str(status.get("url") or status.get("uri") or "")
    reply_to = status.get("in_reply_to_id")
    raw = {
        "id": local_id,
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
    return Mention(
        source="mastodon",
        external_id=f"{instance}/{local_id}",
        url=url,
        author=full_acct(account),
        author_is_brand=is_brand(account, brands),
        title=str(status.get("spoiler_text") or ""),  # a content warning reads as a subject line
        text=text.strip(),
        created_at=_time(status.get("created_at")),
        thread_id=None if reply_to else f"{instance}/{local_id}",
        parent_id=f"{instance}/{reply_to}" if reply_to else None,
        kind="reply" if reply_to else "post",
        language=status.get("language") or None,
        site=(urlsplit(url).hostname or "").lower().removeprefix("www."),
        link_url=_link_url(status),
        raw=raw,
    )


CONNECTOR = MastodonConnector
