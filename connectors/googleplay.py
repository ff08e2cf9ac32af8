"""Google Play reviews with the developer's reply, through the Play Store's own `batchexecute` RPC.

Why not google-play-scraper (installed, well known)? Its `reviews()` is the
same single POST, but it is unfit for a monitor: importing it turns off TLS
certificate checks for the whole process (`ssl._create_default_https_context
= ssl._create_unverified_context` in its request module), it swallows every
error into an empty result (a blocked or broken request looks like "no new
reviews", exactly what earful must never report), it sends without a
timeout, sleeps 5-15 s inside the call on throttling, hard-codes
https://play.google.com (no `base_url`), returns naive local-time dates and
drops the reply's author. So this module makes the request itself, with
the same wire format: POST
`{base}/_/PlayStoreUi/data/batchexecute?rpcids=UsvDTd&hl={lang}&gl={country}`
with the form field `f.req` = `[[["UsvDTd", ARGS, null, "generic"]]]`,
ARGS = `[null,null,[2,SORT,[COUNT,null,TOKEN]],null,[]],["APP_ID",7]]`;
the answer is `)]}'` + `[["wrb.fr","UsvDTd","<data json>",...], ...]` and
data is `[[review, ...], [null, nextPageToken]]` with each review
`[id, [name, avatar], score, null, text, [epoch_s, nanos], thumbsUp,
reply, null, user, version, ...]` and `reply` null or
`[developerName, replyText, [epoch_s, nanos]]`.

**Language.** A review array carries no language: `hl` only asks Play to
prefer reviews in that language, and it mixes in others (an `en` read of
a real app returned 33 Chinese reviews). So `language` is None (detected
later from the text by the classifier) and the `hl` asked for stays in
`raw["lang"]`; it is never presented as the review's language.

`brand_replied` is True/False from `reply` (Play always shows it), and
`raw["reply_at"]` / `raw["reply_by"]` carry the reply's date and author.
A review's date is its *last edit*: an edited review comes back to the
top of "newest" and is returned again with the same id (the store records
it as an update of the same item, never as a second alert).

Options: `app_id` (the package name, play.google.com/store/apps/details?id=<app_id>;
the URL is accepted), `lang` (hl: reviews are per language), `country`
(gl), `sort` ("newest", the default and the only order that lets a run stop
at the last seen review; "most_relevant" reads one page per run and
remembers ids), `page_size` (reviews per request), `max_pages`,
`first_run_pages`, `first_run_lookback` (default 30d: older reviews read on
the first run are remembered, not returned), `base_url` (default
https://play.google.com), `timeout`.

Cursor (newest): `{"newest": epoch seconds, "at_newest": [ids at that
instant], "last_count": int}`; a run reads pages until a review older than
`newest` turns up (one request per idle poll). Cursor (most_relevant):
`{"seen": [ids], "last_count": int}`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any, Literal, Mapping
from urllib.parse import quote

from pydantic import Field, field_validator

from earful.core import Mention, parse_time
from earful.core.durations import Duration

from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
    ReplyStatus,
)
from .http import HttpClient, redact_url
from .paging import Page, Watermark, page_back
from .reviews import lookback_field, recent_only

DEFAULT_BASE = "https://play.google.com"
RPC_ID = "UsvDTd"
RPC_PATH = "/_/PlayStoreUi/data/batchexecute"
SORTS = {"most_relevant": 1, "newest": 2}
PREFIX = ")]}'"
SEEN_MAX = 2000
THROTTLED_RETRY = 600.0  # PlayGatewayError carries no Retry-After; come back in 10 minutes
REVIEW_URL = DEFAULT_BASE + "/store/apps/details?id={app}&reviewId={id}"
EXCERPT_CHARS = 500
STATUS_HINTS = {
    429: "Google Play is throttling, earful will come back later",
    400: "the request was rejected; the RPC format may have changed",
}


class GooglePlayOptions(ConnectorOptions):
    app_id: str = Field(description="The package name, e.g. com.acme.crm (the id= of the app's Play URL).")
    lang: str = Field(default="en", description="Language Play is asked to prefer (hl); reviews in other languages still come.")
    country: str = Field(default="us", description="Storefront country (gl).")
    sort: Literal["newest", "most_relevant"] = Field(default="newest", description="newest pages back to the last seen review.")
    page_size: int = Field(default=100, ge=10, le=500, description="Reviews per request.")
    max_pages: int = Field(default=10, ge=1, le=100, description="Requests at most per run when catching up.")
    first_run_pages: int = Field(default=1, ge=1, le=100, description="Requests on the very first run.")
    first_run_lookback: Duration = lookback_field()

    @field_validator("app_id", mode="before")
    @classmethod
    def _app_id(cls, value: Any) -> str:
        text = str(value).strip()
        if m := re.search(r"[?&]id=([\w.]+)", text):
            text = m.group(1)
        if not re.fullmatch(r"[A-Za-z][\w]*(\.[A-Za-z_][\w]*)+", text):
            raise ValueError("give the app's package name, e.g. com.acme.crm from play.google.com/store/apps/details?id=com.acme.crm")
        return text

    @field_validator("lang", "country")
    @classmethod
    def _code(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}(?:[-_][A-Za-z]{2,4})?", value.strip()):
            raise ValueError("use a language or country code such as en, pt-BR, us")
        return value.strip()


class GooglePlayConnector(Connector):
    name = "googleplay"
    sees_replies = True
    pushes_query = False
    Options = GooglePlayOptions
    options: GooglePlayOptions

    def __init__(self, options: GooglePlayOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.http = HttpClient(options, f"googleplay monitor {context.monitor!r}")
        self.base = (options.base_url or DEFAULT_BASE).rstrip("/")
        self._cache: dict[tuple[str, str | None], tuple[list[list[Any]], str | None]] = {}

    @property
    def endpoint(self) -> str:
        return (f"{self.base}{RPC_PATH}?rpcids={RPC_ID}&source-path=%2Fstore%2Fapps%2Fdetails"
                f"&hl={quote(self.options.lang)}&gl={quote(self.options.country)}&authuser&soc-app=121&soc-platform=1&soc-device=1")

    # -- fetch ---------------------------------------------------------------
    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        start = self.http.count
        if self.options.sort != "newest":
            return self._fetch_unordered(cursor, start)
        state = cursor or {}
        newest = float(state["newest"]) if state.get("newest") is not None else None
        # The review versions at the newest instant were returned; anything older was read by an earlier run.
        at_newest = {_version(i, newest): newest for i in state.get("at_newest") or ()} if newest is not None else {}
        mark = Watermark(-math.inf if newest is None else newest, at_newest)
        first_count = 0

        def page(token: str | None) -> Page[list[Any]]:
            nonlocal first_count
            reviews, following = self._page(token)
            if token is None:
                first_count = len(reviews)
                self._check_not_emptied(reviews, state)
            return Page(reviews, following)

        budget = self.options.max_pages if cursor is not None else self.options.first_run_pages
        catch_up = page_back(page, mark, key=lambda item: _version(item[0], _seconds(item[5])), position=lambda item: _seconds(item[5]),
                             max_pages=budget)
        top = None if mark.newest == -math.inf else mark.newest
        ids_at_top = sorted(key.rpartition("@")[0] for key, at in mark.seen.items() if at == top)
        next_cursor = {"newest": top, "at_newest": ids_at_top, "last_count": first_count}
        notes = []
        if cursor is not None and catch_up.cut:
            notes.append(f"Google Play: read {budget} page(s) without reaching the last seen review; "
                         "older reviews were skipped (raise `max_pages`)")
        brands = self.context.brand_names(self.name)
        mentions = [self.review_mention(item, brands) for item in sorted(catch_up.items, key=lambda item: (_seconds(item[5]), item[0]))]
        if cursor is None:  # first run: the cursor covers all read, only the recent part is returned
            mentions = recent_only(mentions, self.context.current_time(), self.options.first_run_lookback)
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.http.count - start, notes=notes)

    def _fetch_unordered(self, cursor: dict[str, Any] | None, start: int) -> FetchResult:
        state = cursor or {}
        seen = list(state.get("seen") or ())
        known = set(seen)
        reviews, _ = self._page(None)
        self._check_not_emptied(reviews, state)
        brands = self.context.brand_names(self.name)
        mentions = [self.review_mention(r, brands) for r in reviews if r[0] not in known]
        if cursor is None:
            mentions = recent_only(mentions, self.context.current_time(), self.options.first_run_lookback)
        remembered = list(dict.fromkeys([r[0] for r in reviews] + seen))[:SEEN_MAX]
        return FetchResult(mentions=mentions, cursor={"seen": remembered, "last_count": len(reviews)},
                           requests=self.http.count - start)

    def _check_not_emptied(self, reviews: list[list[Any]], state: Mapping[str, Any]) -> None:
        if not reviews and state.get("last_count"):
            raise ConnectorError(
                f"{self.http.label}: Google Play returned no reviews for {self.options.app_id} "
                f"({self.options.lang}/{self.options.country}) although the last run read {state['last_count']}; "
                "the app may have been removed or the RPC changed, earful retries on the next run"
            )

    # -- replies -----------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """Page through the newest reviews until this one turns up; its `reply` is the answer.

        Pages this instance already read in this run are reused, so many
        checks cost few requests; unknown (None) when the review is not
        within `max_pages` or on errors.
        """
        if mention.source != self.name:
            return ReplyStatus(answered=None)
        token: str | None = None
        try:
            for _ in range(self.options.max_pages):
                reviews, token = self._page(token, sort="newest", cached=True)
                for item in reviews:
                    if item[0] == mention.external_id:
                        reply = item[7] if len(item) > 7 and isinstance(item[7], list) else None
                        if reply is None:
                            return ReplyStatus(answered=False)
                        return ReplyStatus(answered=True, answered_at=_reply_time(reply), answered_by=_reply_author(reply),
                                           url=mention.url or None)
                oldest = min((_seconds(r[5]) for r in reviews), default=None)
                if token is None or (mention.created_at and oldest is not None and oldest < mention.created_at.timestamp()):
                    break
        except ConnectorError:
            return ReplyStatus(answered=None)
        return ReplyStatus(answered=None)

    # -- one request ----------------------------------------------------------------
    def _page(self, token: str | None, sort: str | None = None, cached: bool = False) -> tuple[list[list[Any]], str | None]:
        """One RPC: (validated review arrays, next page token or None).

        Every answer is kept for this instance (one run); `cached=True`
        (reply checks) reuses them, fetch always asks again.
        """
        sort = sort or self.options.sort
        if cached and (sort, token) in self._cache:
            return self._cache[(sort, token)]
        result = self._request(token, sort)
        self._cache[(sort, token)] = result
        return result

    def _request(self, token: str | None, sort: str) -> tuple[list[list[Any]], str | None]:
        args = [None, None, [2, SORTS[sort], [self.options.page_size, None, token]], None, []]
        f_req = json.dumps([[[RPC_ID, json.dumps([args, [self.options.app_id, 7]], separators=(",", ":")), None, "generic"]]],
                           separators=(",", ":"))
        text = self._post({"f.req": f_req})
        payload = self._payload(text)
        if payload is None:
            return [], None
        try:
            data = json.loads(payload)
        except ValueError:
            raise self._changed("the RPC payload is not JSON") from None
        if data is None:
            return [], None
        if not isinstance(data, list) or not data or not (data[0] is None or isinstance(data[0], list)):
            raise self._changed("the RPC data is not [reviews, token]")
        reviews = data[0] or []
        for item in reviews:
            if not _valid_review(item):
                raise self._changed(f"a review does not have the [id, author, score, null, text, [time]] layout: {json.dumps(item)[:120]}")
        next_token = None
        for part in data[1:]:
            if isinstance(part, list) and part and isinstance(part[-1], str) and part[-1]:
                next_token = part[-1]
                break
        return reviews, next_token

    def _post(self, form: Mapping[str, str]) -> str:
        """POST the RPC; a 429 without Retry-After waits THROTTLED_RETRY."""
        response = self.http.post(
            self.endpoint,
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8", "Accept": "*/*"},
            hints=STATUS_HINTS,
            retry_after=THROTTLED_RETRY,
        )
        return response.text

    def _payload(self, text: str) -> str | None:
        """The data string of our RPC's `wrb.fr` entry; None when Play says "no data" (no reviews)."""
        if not text.startswith(PREFIX):
            raise self._changed(f"the answer does not start with {PREFIX!r}: {text[:60]!r}")
        try:
            envelope = json.loads(text[len(PREFIX):].strip())
        except ValueError:
            raise self._changed("the answer is not JSON after the )]}' prefix") from None
        entries = [e for e in envelope if isinstance(e, list) and e] if isinstance(envelope, list) else []
        ours = next((e for e in entries if e[0] == "wrb.fr" and len(e) > 2 and e[1] == RPC_ID), None)
        if ours is None:
            error = next((e for e in entries if e[0] == "er"), None)
            raise self._changed(f"no {RPC_ID} result in the answer" + (f" (error entry {json.dumps(error)[:80]})" if error else ""))
        error_info = ours[5] if len(ours) > 5 else None
        if ours[2] is None and error_info:
            if "PlayGatewayError" in json.dumps(error_info):
                raise ConnectorError(
                    f"{self.http.label}: Google Play refused the request with PlayGatewayError (throttling); "
                    f"earful will come back later (in {THROTTLED_RETRY:g}s)", retry_after=THROTTLED_RETRY, status=429)
            raise self._changed(f"the RPC answered an error: {json.dumps(error_info)[:120]}")
        return ours[2] if isinstance(ours[2], str) else None

    def _changed(self, what: str) -> ConnectorError:
        return ConnectorError(f"{self.http.label}: Google Play's reviews RPC answered in an unexpected shape ({what}) "
                              f"at {redact_url(self.endpoint)}; the RPC may have changed")

    # -- mapping -----------------------------------------------------------------------
    def review_mention(self, item: list[Any], brands: set[str]) -> Mention:
        review_id = item[0]
        author = item[1][0] if isinstance(item[1], list) and item[1] and isinstance(item[1][0], str) else ""
        reply = item[7] if len(item) > 7 and isinstance(item[7], list) else None
        raw: dict[str, Any] = {
            "app_id": self.options.app_id,
            "lang": self.options.lang,
            "country": self.options.country,
            "thumbs_up": item[6] if len(item) > 6 and isinstance(item[6], int) else None,
            "version": item[10] if len(item) > 10 and isinstance(item[10], str) else None,
            "reply_at": None,
        }
        if reply is not None:
            when = _reply_time(reply)
            raw.update(reply_at=when.isoformat() if when else None, reply_by=_reply_author(reply),
                       reply_excerpt=(reply[1] or "")[:EXCERPT_CHARS] if len(reply) > 1 and isinstance(reply[1], str) else None)
        return Mention(
            source=self.name,
            external_id=review_id,
            url=REVIEW_URL.format(app=quote(self.options.app_id), id=quote(review_id, safe=":-_")),
            author=author,
            author_is_brand=author.casefold() in brands,
            text=(item[4] or "").strip() if isinstance(item[4], str) else "",
            created_at=parse_time(_seconds(item[5])),
            thread_id=review_id,
            kind="review",
            rating=float(item[2]),
            language=None,  # the review data has no language; `hl` is only a preference (raw["lang"])
            brand_replied=reply is not None,
            site=f"{self.options.app_id} ({self.options.country.upper()})",
            raw=raw,
        )

    def close(self) -> None:
        self.http.close()


def _valid_review(item: Any) -> bool:
    return (
        isinstance(item, list) and len(item) > 5
        and isinstance(item[0], str) and item[0] != ""
        and isinstance(item[2], int) and 1 <= item[2] <= 5
        and (item[4] is None or isinstance(item[4], str))
        and isinstance(item[5], list) and bool(item[5]) and isinstance(item[5][0], (int, float))
    )


def _version(review_id: str, seconds: float) -> str:
    """A review as of its last edit: an edited review is new again under the same id."""
    return f"{review_id}@{seconds!r}"


def _seconds(stamp: list[Any]) -> float:
    """[epoch_s, nanos] -> seconds, keeping milliseconds (enough to order; exact for the cursor)."""
    nanos = stamp[1] if len(stamp) > 1 and isinstance(stamp[1], (int, float)) else 0
    return round(float(stamp[0]) + nanos / 1e9, 3)


def _reply_time(reply: list[Any]) -> datetime | None:
    if len(reply) > 2 and isinstance(reply[2], list) and reply[2] and isinstance(reply[2][0], (int, float)):
        return parse_time(_seconds(reply[2]))
    return None


def _reply_author(reply: list[Any]) -> str | None:
    return reply[0] if reply and isinstance(reply[0], str) and reply[0] else None


CONNECTOR = GooglePlayConnector
