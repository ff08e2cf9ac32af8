"""G2 product reviews (g2.com/products/<product>/reviews), read through the shared chromium.

Options: `product` is the slug in the product's G2 URL
(https://www.g2.com/products/acme-crm/reviews -> `acme-crm`); `base_url`
replaces https://www.g2.com; `max_pages`, `first_run_pages`, `page_delay`,
`user_agent`, `proxy`, `browser_path`, `timeout` as for every review site
(see `connectors.reviews` and `connectors.browser`).

Pages are requested newest first (`?order=most_recent&page=N`). G2 marks
each review up with schema.org microdata and lists the page's reviews in a
JSON-LD `Product` block (`aggregateRating`, `review`); ratings, dates,
titles and bodies come from there, the review id (`survey-response-NNN`),
the permalink, the reviewer's role and company size and the vendor's
response ("Response from ... of Acme CRM") from the review card.
`brand_replied` is True when the card shows that response block, False
when it does not; `raw["reply_at"]` is the response's date when shown,
`raw["reply_by"]` who the block says answered ("Jane Doe of Acme CRM"),
None when it names nobody.

All selectors are in `SELECTORS`, each with alternatives tried in order;
when G2 changes its markup, that dict is the one place to edit.
"""

from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import quote

from pydantic import field_validator

from .reviews import (
    Review,
    ReviewSiteConnector,
    ReviewSiteOptions,
    clean_text,
    first_match,
    parse_rating,
    parse_when,
)

DEFAULT_ROOT = "https://www.g2.com"

SELECTORS: dict[str, tuple[str, ...]] = {
    # page level
    "card": (
        "div[itemprop='review'][id^='survey-response-']",
        "div[id^='survey-response-']",
        "article[data-review-id]",
    ),
    "next": ("link[rel='next'] @href", "a[rel='next'] @href", "a.pagination__named-link[aria-label='Next'] @href"),
    "empty": ("[data-testid='no-reviews']", ".reviews-empty-state"),
    "count": ("[itemprop='aggregateRating'] meta[itemprop='reviewCount'] @content", "[data-testid='review-count']"),
    # per review card
    "id": ("@id", "@data-review-id"),
    "permalink": ("a[href*='-review-'] @href",),
    "author": ("[itemprop='author'] meta[itemprop='name'] @content", "[itemprop='author']", "[data-testid='reviewer-name']"),
    "role": ("[data-testid='reviewer-role']", ".mt-4th"),
    "company_size": ("[data-testid='reviewer-company-size']",),
    "industry": ("[data-testid='reviewer-industry']",),
    "date": ("meta[itemprop='datePublished'] @content", "time @datetime", "time"),
    "rating": ("[itemprop='reviewRating'] meta[itemprop='ratingValue'] @content", "[class*='stars-'] @class"),
    "title": ("[itemprop='name']", "h3"),
    "text": ("[itemprop='reviewBody']", "[data-testid='review-body']"),
    "reply": ("[data-testid='vendor-response']", ".vendor-response"),
    "reply_by": ("[data-testid='vendor-response'] [data-testid='vendor-response-author']", ".vendor-response__author"),
    "reply_at": ("[data-testid='vendor-response'] time @datetime", ".vendor-response time @datetime"),
    "reply_text": ("[data-testid='vendor-response'] [data-testid='vendor-response-body']", ".vendor-response__body"),
}


class G2Options(ReviewSiteOptions):
    """`product`: the slug of https://www.g2.com/products/<slug>/reviews, e.g. `acme-crm`."""

    @field_validator("product")
    @classmethod
    def _slug(cls, value: str) -> str:
        value = value.strip().strip("/")
        if m := re.search(r"/products/([^/?#]+)", value):
            value = m.group(1)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError("give the product slug from its G2 URL, e.g. acme-crm for g2.com/products/acme-crm/reviews")
        return value


class G2Connector(ReviewSiteConnector):
    name = "g2"
    display = "G2"
    default_root = DEFAULT_ROOT
    selectors = SELECTORS
    Options = G2Options
    options: G2Options

    def page_url(self, page: int) -> str:
        url = f"{self.root}/products/{quote(self.options.product)}/reviews?order=most_recent"
        return url if page == 1 else f"{url}&page={page}"

    def card_review(self, card: Mapping[str, Any], page_url: str) -> Review:
        review_id = first_match(r"(\d+)\s*$", card.get("id")) or (card.get("id") or "").strip()
        slug = self.options.product
        fallback = f"/products/{slug}/reviews/{slug}-review-{review_id}" if review_id else ""
        replied = card.get("reply") is not None
        return Review(
            id=review_id,
            url=self.public_url(card.get("permalink") or fallback),
            author=clean_text(card.get("author")),
            rating=_rating(card.get("rating")),
            title=clean_text(card.get("title")).strip('"“”'),
            text=clean_text(card.get("text")),
            created_at=parse_when(card.get("date")),
            replied=replied,
            reply_at=parse_when(card.get("reply_at")) if replied else None,
            reply_by=_responder(card.get("reply_by")) if replied else "",
            reply_text=clean_text(card.get("reply_text")) if replied else "",
            extra={
                "role": clean_text(card.get("role")),
                "company_size": clean_text(card.get("company_size")),
                "industry": clean_text(card.get("industry")),
            },
        )


def _rating(value: str | None) -> float | None:
    """"4.5" from microdata, or G2's star class "stars large stars-9" (half stars out of 10)."""
    if value and (m := re.search(r"stars-(\d+)", value)):
        return parse_rating(m.group(1), 10)
    return parse_rating(value)


def _responder(value: str | None) -> str:
    """"Response from Jane Doe of Acme CRM" -> "Jane Doe of Acme CRM"."""
    return re.sub(r"^\s*(?:response|comment)\s+from\s+", "", clean_text(value), flags=re.I)


CONNECTOR = G2Connector
