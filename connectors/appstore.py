"""App Store reviews through Apple's public customer-reviews feed (RSS, JSON form).

`{base}/{country}/rss/customerreviews/page={N}/id={APP}/sortby=mostrecent/json`
needs no key and serves up to 10 pages of 50 reviews per storefront,
newest first. Its quirks, all handled here: every scalar is wrapped as
`{"label": ...}` and numbers are strings; a page past the end has no
`entry` key at all; a page holding a single review gives `entry` as an
object, not a list; older feeds put an app-metadata entry (with `im:name`,
without `im:rating`) first; pages above 10 answer HTTP 200 with the plain
text "CustomerReviews RSS page depth is limited to 10".

**Dates.** The JSON entries of 2020-2021 carry no `updated` at all (later
versions added it), while the XML form of the same feed (`.../xml`, the
form `feed.link` points to) has `<updated>` on every entry. So a JSON page
whose reviews lack dates is followed by one request for the XML form of
the same page, and the dates are taken from there by review id (read with
feedparser). A review the XML page does not list (it moved to another page
between the two requests) keeps `created_at` None: unknown, never a guess
such as the time it was first seen. Dated JSON costs no extra request.

**The feed has no developer responses.** Apple shows them on the App Store
page but not here, so `brand_replied` is always None ("unknown", never
"not answered") and `replies()` answers unknown too; use App Store
Connect's API for responses.

Options: `app_id` (the number in the app's URL, apps.apple.com/us/app/acme/id1601234567;
the URL itself is accepted), `countries` (storefronts, default ["us"];
each costs one request per idle poll), `app_name` (shown in alerts),
`max_pages` (1-10, catch-up depth), `first_run_pages`, `first_run_lookback`
(default 30d: older reviews read on the first run are remembered, not
returned; entries without a date are returned), `base_url`
(default https://itunes.apple.com), `timeout`, `user_agent`.

Cursor: `{"countries": {"us": {"max_id": int, "newest": iso | null,
"last_count": int}}}`. Review ids are numbers that grow with time, so a
review is new when its id is above `max_id`; pages are read until one
holds an id at or below it (normally page 1 only), a short page ends the
feed, or `max_pages` is used up. `last_count` is how many reviews page 1
held last time: page 1 suddenly empty after that is an error, not "nothing
new". A storefront that fails while others work is reported in the notes
and keeps its cursor; if all fail, the run fails.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

from pydantic import Field, field_validator

from earful.core import Mention, parse_time
from earful.core.durations import Duration

from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
)
from .http import HttpClient, redact_url
from .paging import Page, Watermark, page_back
from .reviews import lookback_field, recent_only

DEFAULT_BASE = "https://itunes.apple.com"
PAGE_SIZE = 50
MAX_DEPTH = 10
DEPTH_LIMIT = "page depth is limited"
REVIEW_URL = "https://apps.apple.com/{country}/app/id{app}?see-all=reviews&reviewId={id}"


class AppStoreOptions(ConnectorOptions):
    app_id: str = Field(description="The app's numeric id (apps.apple.com/us/app/name/id<NUMBER>).")
    app_name: str | None = Field(default=None, description="Name shown in alerts; default 'App Store app <id>'.")
    countries: list[str] = Field(default_factory=lambda: ["us"], description="Storefronts (ISO country codes).")
    max_pages: int = Field(default=MAX_DEPTH, ge=1, le=MAX_DEPTH, description="Pages read at most per storefront and run.")
    first_run_pages: int = Field(default=1, ge=1, le=MAX_DEPTH, description="Pages read per storefront on the first run.")
    first_run_lookback: Duration = lookback_field()

    @field_validator("app_id", mode="before")
    @classmethod
    def _app_id(cls, value: Any) -> str:
        text = str(value).strip()
        if m := re.search(r"(?:^|/|id)(\d{5,})(?:[/?#]|$)", text):
            return m.group(1)
        raise ValueError("give the app's numeric id, e.g. 1601234567 from apps.apple.com/us/app/acme-crm/id1601234567")

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        codes = [c.strip().lower() for c in value]
        bad = [c for c in codes if not re.fullmatch(r"[a-z]{2}", c)]
        if bad or not codes:
            raise ValueError(f"countries must be two-letter storefront codes such as us, gb, de (got {bad or 'none'})")
        return list(dict.fromkeys(codes))


class AppStoreConnector(Connector):
    name = "appstore"
    sees_replies = False  # the public feed carries no developer response
    pushes_query = False
    Options = AppStoreOptions
    options: AppStoreOptions

    def __init__(self, options: AppStoreOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.http = HttpClient(options, f"appstore monitor {context.monitor!r}")
        self.base = (options.base_url or DEFAULT_BASE).rstrip("/")

    def feed_url(self, country: str, page: int, form: str = "json") -> str:
        return f"{self.base}/{country}/rss/customerreviews/page={page}/id={self.options.app_id}/sortby=mostrecent/{form}"

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        previous: Mapping[str, Any] = (cursor or {}).get("countries") or {}
        states: dict[str, Any] = {}
        mentions: list[Mention] = []
        errors: list[ConnectorError] = []
        start = self.http.count
        for country in self.options.countries:
            state = previous.get(country)
            try:
                found, states[country] = self._storefront(country, state)
            except ConnectorError as exc:
                errors.append(exc)
                if state is not None:
                    states[country] = state
                continue
            mentions.extend(found)
        if len(errors) == len(self.options.countries):
            raise max(errors, key=lambda e: e.retry_after or 0)
        mentions.sort(key=lambda m: (m.created_at or datetime.min.replace(tzinfo=timezone.utc), int(m.external_id)))
        return FetchResult(mentions=mentions, cursor={"countries": states}, requests=self.http.count - start,
                           notes=[str(e) for e in errors])

    def _storefront(self, country: str, state: Mapping[str, Any] | None) -> tuple[list[Mention], dict[str, Any]]:
        """The new reviews of one storefront, read back to the last run's highest id, and its next cursor."""
        max_id = int(state["max_id"]) if state and state.get("max_id") is not None else None
        brands = self.context.brand_names(self.name)
        first_count = 0

        def page(number: int | None) -> Page[Mention]:
            nonlocal first_count
            number = number or 1
            reviews = [e for e in self._page(country, number) if not _is_metadata(e)]
            if number == 1:
                first_count = len(reviews)
                self._check_not_emptied(country, reviews, state)
            dates = self._xml_dates(country, number) if any(not _label(e, "updated") for e in reviews) else {}
            return Page([self.entry_mention(e, country, brands, dates) for e in reviews],
                        number + 1 if len(reviews) >= PAGE_SIZE else None)

        # Ids grow with time: everything at or below `max_id` was read by an earlier run.
        mark = Watermark(max_id + 1 if max_id is not None else 0)
        budget = self.options.max_pages if state is not None else self.options.first_run_pages
        new = page_back(page, mark, key=lambda m: m.external_id, position=lambda m: int(m.external_id), max_pages=budget).items
        ids = [int(m.external_id) for m in new] + ([max_id] if max_id is not None else [])
        newest = parse_time(state.get("newest")) if state else None
        dates = [m.created_at for m in new if m.created_at] + ([newest] if newest else [])
        next_state = {"max_id": max(ids, default=None), "newest": max(dates).isoformat() if dates else None, "last_count": first_count}
        if state is None:  # first run: remember everything read, return only the recent part
            new = recent_only(new, self.context.current_time(), self.options.first_run_lookback)
        return new, next_state

    def _check_not_emptied(self, country: str, reviews: list[Mapping[str, Any]], state: Mapping[str, Any] | None) -> None:
        """Page 1 suddenly empty after reviews were read is Apple serving an empty feed, not "nothing new"."""
        if not reviews and state and state.get("last_count"):
            raise ConnectorError(
                f"{self.http.label}: the {country.upper()} review feed of app {self.options.app_id} has no reviews "
                f"at {redact_url(self.feed_url(country, 1))} although the last run read {state['last_count']}; "
                "Apple may be serving an empty feed, earful retries on the next run"
            )

    def _page(self, country: str, page: int) -> list[Mapping[str, Any]]:
        """The review entries of one feed page ([] past the end or past the depth limit)."""
        url = self.feed_url(country, page)
        response = self.http.get(url, headers={"Accept": "application/json"})
        body = response.text.strip()
        if DEPTH_LIMIT in body[:200] and not body.startswith("{"):
            return []
        try:
            data = response.json()
        except ValueError:
            raise ConnectorError(
                f"{self.http.label}: {redact_url(url)} answered {response.status_code} but the body is not JSON "
                f"({response.headers.get('Content-Type', 'no content-type')}, {len(response.content)} bytes): "
                f"{body[:80]!r}; the feed may have moved"
            ) from None
        feed = data.get("feed") if isinstance(data, dict) else None
        if not isinstance(feed, dict):
            raise ConnectorError(f"{self.http.label}: {redact_url(url)} has no `feed` object; the feed format changed")
        entries = feed.get("entry")
        if entries is None:
            return []
        if isinstance(entries, dict):  # a page with a single review
            entries = [entries]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConnectorError(f"{self.http.label}: {redact_url(url)} has an `entry` that is neither a list nor an object")
        return entries

    def _xml_dates(self, country: str, page: int) -> dict[str, str]:
        """Review id -> `<updated>` of the XML form of one feed page, for JSON entries without a date."""
        import feedparser

        url = self.feed_url(country, page, "xml")
        response = self.http.get(url, headers={"Accept": "application/atom+xml, application/xml;q=0.9"})
        if DEPTH_LIMIT in response.text[:200] and "<feed" not in response.text[:500]:
            return {}
        parsed = feedparser.parse(response.content)
        if parsed.get("version") != "atom10":
            raise ConnectorError(
                f"{self.http.label}: the XML form of the {country.upper()} review feed at {redact_url(url)} is not an Atom feed "
                f"({response.headers.get('Content-Type', 'no content-type')}, {len(response.content)} bytes): "
                f"{response.text[:80]!r}; the review dates cannot be read, earful retries on the next run"
            )
        return {str(e["id"]): str(e["updated"]) for e in parsed.entries if e.get("id") and e.get("updated")}

    def entry_mention(self, entry: Mapping[str, Any], country: str, brands: set[str],
                      dates: Mapping[str, str] | None = None) -> Mention:
        """One review; `dates` (id -> time, from the XML form) stands in for an entry without `updated`."""
        review_id = _label(entry, "id")
        if not review_id or not review_id.isdigit():
            raise ConnectorError(
                f"{self.http.label}: a {country.upper()} review has the id {review_id!r}, not a number; the feed format changed"
            )
        author = _label(entry.get("author") or {}, "name") or ""
        rating = _label(entry, "im:rating")
        app = self.options.app_name or f"App Store app {self.options.app_id}"
        return Mention(
            source=self.name,
            external_id=review_id,
            url=REVIEW_URL.format(country=country, app=self.options.app_id, id=review_id),
            author=author,
            author_is_brand=author.casefold() in brands,
            title=(_label(entry, "title") or "").strip(),
            text=(_label(entry, "content") or "").strip(),
            created_at=parse_time(_label(entry, "updated") or (dates or {}).get(review_id)),
            thread_id=review_id,
            kind="review",
            rating=float(rating) if rating and re.fullmatch(r"\d+(\.\d+)?", rating) else None,
            brand_replied=None,  # the feed carries no developer responses: unknown, never "not answered"
            site=f"{app} ({country.upper()})",
            raw={
                "country": country,
                "app_id": self.options.app_id,
                "version": _label(entry, "im:version"),
                "vote_sum": _int(_label(entry, "im:voteSum")),
                "vote_count": _int(_label(entry, "im:voteCount")),
                "reply_at": None,
            },
        )

    def close(self) -> None:
        self.http.close()


def _label(node: Mapping[str, Any], key: str) -> str | None:
    value = node.get(key)
    if isinstance(value, dict):
        value = value.get("label")
    return str(value) if isinstance(value, (str, int, float)) else None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.lstrip("-").isdigit() else None


def _is_metadata(entry: Mapping[str, Any]) -> bool:
    """The app's own entry that older feeds put first: it has a name and artist, no rating."""
    return "im:rating" not in entry and ("im:name" in entry or "im:artist" in entry)


CONNECTOR = AppStoreConnector
