"""Capterra product reviews (capterra.com/p/<id>/<slug>/reviews/), read through the shared chromium.

Options: `product` is the numeric id and slug of the product's Capterra URL
(https://www.capterra.com/p/2001234/Acme-CRM/reviews/ -> `2001234/Acme-CRM`;
the whole URL is accepted too); `base_url` replaces https://www.capterra.com;
the browser and paging options are those of every review site (see
`connectors.reviews` and `connectors.browser`).

Pages are requested newest first (`?sort=most_recent&page=N`). Capterra's
page carries a JSON-LD `SoftwareApplication` with `aggregateRating` and the
page's `review` list (ratings, dates, titles, bodies); the review card adds
the id, the reviewer's role, industry, company size and time used, and the
vendor's "Response from ..." block, whose presence sets `brand_replied`
(False when the card has none), whose date becomes `raw["reply_at"]` and
whose "Response from X" becomes `raw["reply_by"]` (None when it names nobody).

All selectors are in `SELECTORS` (alternatives in order, Capterra's
`data-testid` attributes first): the one place to edit when the markup changes.
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

DEFAULT_ROOT = "https://www.capterra.com"

SELECTORS: dict[str, tuple[str, ...]] = {
    # page level
    "card": ("[data-testid='review-card']", "div[id^='review-'][data-review-id]", "article.review-card"),
    "next": ("link[rel='next'] @href", "[data-testid='pagination-next'] @href", "a[rel='next'] @href"),
    "empty": ("[data-testid='no-reviews']",),
    "count": ("[data-testid='review-count']",),
    # per review card
    "id": ("@data-review-id", "@id"),
    "permalink": ("a[data-testid='review-permalink'] @href",),
    "author": ("[data-testid='reviewer-name']", "span.font-semibold"),
    "role": ("[data-testid='reviewer-role']",),
    "industry": ("[data-testid='reviewer-industry']",),
    "company_size": ("[data-testid='reviewer-company-size']",),
    "time_used": ("[data-testid='reviewer-time-used']",),
    "date": ("time @datetime", "[data-testid='review-date']"),
    "rating": ("[data-testid='Overall Rating-rating'] @data-rating", "[data-testid='rating']"),
    "title": ("[data-testid='review-title']", "h3"),
    "text": ("[data-testid='review-content']",),
    "reply": ("[data-testid='vendor-response']",),
    "reply_by": ("[data-testid='vendor-response'] [data-testid='vendor-response-author']",),
    "reply_at": ("[data-testid='vendor-response'] time @datetime", "[data-testid='vendor-response-date']"),
    "reply_text": ("[data-testid='vendor-response'] [data-testid='vendor-response-text']",),
}


class CapterraOptions(ReviewSiteOptions):
    """`product`: "<numeric id>/<slug>" from https://www.capterra.com/p/<id>/<slug>/reviews/."""

    @field_validator("product")
    @classmethod
    def _id_and_slug(cls, value: str) -> str:
        value = value.strip()
        if m := re.search(r"/p/(\d+)/([^/?#]+)", value):
            return f"{m.group(1)}/{m.group(2)}"
        value = value.strip("/")
        if not re.fullmatch(r"\d+/[A-Za-z0-9._%-]+", value):
            raise ValueError("give the numeric id and slug from the Capterra URL, e.g. 2001234/Acme-CRM "
                             "for capterra.com/p/2001234/Acme-CRM/reviews/")
        return value


class CapterraConnector(ReviewSiteConnector):
    name = "capterra"
    display = "Capterra"
    default_root = DEFAULT_ROOT
    selectors = SELECTORS
    Options = CapterraOptions
    options: CapterraOptions

    @property
    def product_path(self) -> str:
        product_id, slug = self.options.product.split("/", 1)
        return f"/p/{product_id}/{quote(slug)}/reviews/"

    def page_url(self, page: int) -> str:
        url = f"{self.root}{self.product_path}?sort=most_recent"
        return url if page == 1 else f"{url}&page={page}"

    def card_review(self, card: Mapping[str, Any], page_url: str) -> Review:
        review_id = first_match(r"(\d+)\s*$", card.get("id")) or (card.get("id") or "").strip()
        replied = card.get("reply") is not None
        return Review(
            id=review_id,
            url=self.public_url(card.get("permalink") or (f"{self.product_path}{review_id}/" if review_id else "")),
            author=clean_text(card.get("author")),
            rating=parse_rating(card.get("rating")),
            title=clean_text(card.get("title")).strip('"“”'),
            text=clean_text(card.get("text")),
            created_at=parse_when(card.get("date")),
            replied=replied,
            reply_at=parse_when(card.get("reply_at")) if replied else None,
            reply_by=re.sub(r"^\s*response\s+from\s+", "", clean_text(card.get("reply_by")), flags=re.I) if replied else "",
            reply_text=clean_text(card.get("reply_text")) if replied else "",
            extra={
                "role": clean_text(card.get("role")),
                "industry": clean_text(card.get("industry")),
                "company_size": clean_text(card.get("company_size")),
                "time_used": re.sub(r"^\s*used the software for:\s*", "", clean_text(card.get("time_used")), flags=re.I),
            },
        )


CONNECTOR = CapterraConnector
