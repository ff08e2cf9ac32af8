"""Trustpilot company reviews (trustpilot.com/review/<domain>), read through the shared chromium.

Options: `product` is the company's domain as in its Trustpilot URL
(https://www.trustpilot.com/review/acme.example -> `acme.example`);
`base_url` replaces https://www.trustpilot.com; the browser and paging
options are those of every review site (see `connectors.reviews`).

Pages are requested newest first in all languages
(`?languages=all&sort=recency&page=N`). Trustpilot is a Next.js app: the
page embeds its whole state as JSON in `<script id="__NEXT_DATA__">`, and
`props.pageProps.reviews` holds each review exactly as the site's API
returns it (`id`, `rating`, `title`, `text`, `dates.publishedDate`,
`consumer`, `language`, `labels.verification`, and `reply`: null, or the
company's answer `{message, publishedDate, updatedDate}`), with
`businessUnit.numberOfReviews` and `filters.pagination` beside it. That
state is read first; the rendered review cards (`SELECTORS`) are the
fallback when it is missing or changes shape. `brand_replied` is True
when `reply` is an object, False when it is null, None when the key
itself is gone; `raw["reply_at"]` is the reply's publishedDate and
`raw["reply_by"]` the company's `businessUnit.displayName`, the name the
page heads the reply with ("Reply from Acme CRM"): the `reply` object names
nobody, and on Trustpilot only the company can reply. From the cards it is
that heading; a page without one leaves it None (never a guessed name).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping
from urllib.parse import quote

from pydantic import field_validator

from .reviews import (
    Aggregate,
    Embedded,
    Review,
    ReviewSiteConnector,
    ReviewSiteOptions,
    clean_text,
    first_match,
    parse_rating,
    parse_when,
)

DEFAULT_ROOT = "https://www.trustpilot.com"
REVIEW_URL = DEFAULT_ROOT + "/reviews/{}"

SELECTORS: dict[str, tuple[str, ...]] = {
    # page level
    "card": ("article[data-service-review-card-paper]", "[data-testid='service-review-card-v2']", "section.review-card"),
    "next": ("link[rel='next'] @href", "a[name='pagination-button-next'] @href", "a[rel='next'] @href"),
    "empty": ("[data-reviews-empty-state]",),
    "count": ("[data-reviews-count-typography]", "p[data-reviews-count-typography]"),
    # per review card (fallback when __NEXT_DATA__ is missing)
    "id": ("a[data-review-title-typography] @href", "a[href^='/reviews/'] @href", "@data-review-id"),
    "author": ("[data-consumer-name-typography]",),
    "country": ("[data-consumer-country-typography]",),
    "date": ("time[data-service-review-date-time-ago] @datetime", "time @datetime"),
    "rating": ("[data-service-review-rating] @data-service-review-rating", "img[alt^='Rated'] @alt"),
    "title": ("[data-service-review-title-typography]", "h2"),
    "text": ("[data-service-review-text-typography]",),
    "reply": ("[data-service-review-business-reply-text-typography]",),
    "reply_by": ("[data-service-review-business-reply-title-typography]",),
    "reply_at": ("time[data-service-review-business-reply-date-time-ago] @datetime",),
    "reply_text": ("[data-service-review-business-reply-text-typography]",),
}


class TrustpilotOptions(ReviewSiteOptions):
    """`product`: the company's domain, e.g. `acme.example` for trustpilot.com/review/acme.example."""

    @field_validator("product")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip()
        if m := re.search(r"/review/([^/?#]+)", value):
            value = m.group(1)
        value = value.strip("/").lower()
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*\.[a-z0-9-]+", value):
            raise ValueError("give the company's domain as in its Trustpilot URL, e.g. acme.example "
                             "for trustpilot.com/review/acme.example")
        return value


class TrustpilotConnector(ReviewSiteConnector):
    name = "trustpilot"
    display = "Trustpilot"
    default_root = DEFAULT_ROOT
    selectors = SELECTORS
    Options = TrustpilotOptions
    options: TrustpilotOptions

    def page_url(self, page: int) -> str:
        url = f"{self.root}/review/{quote(self.options.product)}?languages=all&sort=recency"
        return url if page == 1 else f"{url}&page={page}"

    def embedded(self, data: Mapping[str, Any], page_url: str) -> Embedded | str:
        text = data.get("nextData")
        if not text:
            return "the page has no __NEXT_DATA__ state"
        try:
            state = json.loads(text)
        except ValueError:
            return "the page's __NEXT_DATA__ is not JSON"
        props = ((state.get("props") or {}).get("pageProps") or {}) if isinstance(state, dict) else {}
        reviews = props.get("reviews")
        if not isinstance(reviews, list):
            return "the page's __NEXT_DATA__ has no props.pageProps.reviews list (Trustpilot changed its app state?)"
        unit = props.get("businessUnit") or {}
        aggregate = Aggregate(
            count=unit.get("numberOfReviews") if isinstance(unit.get("numberOfReviews"), int) else None,
            rating=parse_rating(unit.get("trustScore")),
            name=str(unit.get("displayName") or ""),
        )
        pagination = (props.get("filters") or {}).get("pagination") or {}
        current, total = pagination.get("currentPage"), pagination.get("totalPages")
        has_next = current < total if isinstance(current, int) and isinstance(total, int) else None
        return Embedded([self._state_review(r, aggregate.name) for r in reviews if isinstance(r, dict)], aggregate, has_next)

    def _state_review(self, item: Mapping[str, Any], company: str) -> Review:
        consumer = item.get("consumer") or {}
        dates = item.get("dates") or {}
        reply = item.get("reply")
        verification = (item.get("labels") or {}).get("verification") or {}
        replied = None if "reply" not in item else isinstance(reply, dict)
        return Review(
            id=str(item.get("id") or ""),
            url=REVIEW_URL.format(item["id"]) if item.get("id") else "",
            author=str(consumer.get("displayName") or "").strip(),
            rating=parse_rating(item.get("rating")),
            title=clean_text(item.get("title")),
            text=clean_text(item.get("text")),
            created_at=parse_when(dates.get("publishedDate")),
            replied=replied,
            reply_at=parse_when(reply.get("publishedDate")) if isinstance(reply, dict) else None,
            reply_by=company if replied else "",
            reply_text=clean_text(reply.get("message")) if isinstance(reply, dict) else "",
            language=item.get("language") or None,
            extra={
                "country": consumer.get("countryCode"),
                "verified": verification.get("isVerified"),
                "experienced": dates.get("experiencedDate"),
                "edited": dates.get("updatedDate"),
            },
        )

    def card_review(self, card: Mapping[str, Any], page_url: str) -> Review:
        review_id = first_match(r"/reviews/([0-9a-f]+)", card.get("id")) or (card.get("id") or "").strip()
        replied = card.get("reply") is not None
        return Review(
            id=review_id,
            url=REVIEW_URL.format(review_id) if review_id else "",
            author=clean_text(card.get("author")),
            rating=parse_rating(card.get("rating")),
            title=clean_text(card.get("title")),
            text=clean_text(card.get("text")),
            created_at=parse_when(card.get("date")),
            replied=replied,
            reply_at=parse_when(card.get("reply_at")) if replied else None,
            reply_by=re.sub(r"^\s*reply from\s+", "", clean_text(card.get("reply_by")), flags=re.I) if replied else "",
            reply_text=clean_text(card.get("reply_text")) if replied else "",
            extra={"country": clean_text(card.get("country"))},
        )


CONNECTOR = TrustpilotConnector
