"""One fake host for G2, Capterra and Trustpilot review pages, read by real chromium in tests.

Each site's page follows the real one's structure: G2's schema.org
microdata cards (`itemprop="review"`, `id="survey-response-NNN"`) plus a
JSON-LD `Product` with `aggregateRating` and `review`; Capterra's
`data-testid` cards plus a JSON-LD `SoftwareApplication`; Trustpilot's
Next.js page with the whole state in `<script id="__NEXT_DATA__">`
(`props.pageProps.reviews` shaped like the real review objects: `id`,
`rating`, `title`, `text`, `dates`, `consumer`, `labels.verification`,
`language`, `reply`) and server-rendered cards. All three have the
vendor-response block, `rel="next"` pagination and newest-first sorting
only when the URL asks for it (`order=most_recent`, `sort=most_recent`,
`sort=recency`); without it reviews come "most relevant" first, as on the
real sites.

Scripting, per site name ("g2", "capterra", "trustpilot"):
`layout[site] = "redesign"` (cards and embedded state renamed, so no
selector matches) or `"no-rating"` (G2/Capterra: cards without rating
markup) or `"new-ids"` (G2 card ids become UUIDs) or `"no-next-data"`
(Trustpilot without `__NEXT_DATA__`);
`unnamed_replies` (sites whose vendor-response blocks name nobody: no
"Response from ..." / "Reply from ..." line);
`consent[site] = "banner"` (a OneTrust-style overlay over the full page) or
`"wall"` (the overlay and no reviews until consent); `ignore_sort` (sites
answering "most relevant" whatever the URL asks); `hold_next` (a page
that answers late); `bot_check[site] =
"cloudflare"` (HTTP 403 "Just a moment..." challenge) or `"captcha"` (200
with a captcha frame instead of the page); `fail_next` for 429/500s.
Images on the pages point at this host, so a test can assert that the
browser never requested them.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

from .server import DemoSource, Request, Response, SharedServer

HTML = "text/html; charset=utf-8"
PAGE_SIZES = {"g2": 25, "capterra": 25, "trustpilot": 20}
SORT_PARAMS = {"g2": ("order", "most_recent"), "capterra": ("sort", "most_recent"), "trustpilot": ("sort", "recency")}
SITES = tuple(PAGE_SIZES)


@dataclass
class FakeReview:
    """One review; `text` paragraphs are separated by blank lines. `reply` is the vendor's response."""

    id: str
    author: str
    rating: int
    title: str
    text: str
    published: datetime
    role: str = ""
    company_size: str = ""
    industry: str = ""
    country: str = "US"
    language: str = "en"
    likes: int = 0
    pros: str = ""
    cons: str = ""
    reply: str | None = None
    reply_at: datetime | None = None
    reply_author: str = ""
    verified: bool = True


@dataclass
class Product:
    site: str
    key: str  # G2 slug, Capterra "id/slug", Trustpilot domain
    name: str
    vendor: str = ""
    reviews: list[FakeReview] = field(default_factory=list)

    @property
    def newest_first(self) -> list[FakeReview]:
        return sorted(self.reviews, key=lambda r: (r.published, r.id), reverse=True)

    @property
    def most_relevant(self) -> list[FakeReview]:
        return sorted(self.reviews, key=lambda r: (-r.likes, -r.rating, -len(r.text), r.id))

    @property
    def mean(self) -> float:
        return round(sum(r.rating for r in self.reviews) / len(self.reviews), 1) if self.reviews else 0.0


class ReviewSitesServer(SharedServer):
    """Serves /products/<slug>/reviews (G2), /p/<id>/<slug>/reviews/ (Capterra), /review/<domain> (Trustpilot).

    `start()`/`stop()` are reference-counted, so several demo monitors can
    share one server: each enters it, the last exit stops it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.products: dict[tuple[str, str], Product] = {}
        self.layout: dict[str, str] = {}
        self.consent: dict[str, str] = {}
        self.bot_check: dict[str, str] = {}
        self.ignore_sort: set[str] = set()  # sites that answer "most relevant" whatever the URL says
        self.unnamed_replies: set[str] = set()  # sites whose vendor responses carry no replier line
        self.page_sizes = dict(PAGE_SIZES)
        self._ids = {"g2": itertools.count(9_100_001), "capterra": itertools.count(4_700_001), "trustpilot": itertools.count(1)}

    # -- data ---------------------------------------------------------------
    def add_product(self, site: str, key: str, name: str, vendor: str = "") -> Product:
        if site not in SITES:
            raise ValueError(f"unknown site {site!r}; one of {', '.join(SITES)}")
        with self._data_lock:
            product = Product(site, key, name, vendor or name)
            self.products[(site, key)] = product
            return product

    def add_review(self, site: str, key: str, *, published: datetime, id: str | None = None, **fields: Any) -> FakeReview:
        """Add a review to a product (created on first use); `id` is assigned the site's way when omitted."""
        with self._data_lock:
            product = self.products.get((site, key)) or self.add_product(site, key, "Acme CRM")
            if id is None:
                number = next(self._ids[site])
                # Trustpilot ids are MongoDB ObjectIds: the first 4 bytes are the creation time.
                id = f"{int(published.timestamp()):08x}{number:016x}" if site == "trustpilot" else str(number)
            review = FakeReview(id=id, published=published, **{"author": "Anonymous", "rating": 5, "title": "", "text": "", **fields})
            product.reviews.append(review)
            return review

    def respond(self, site: str, key: str, review_id: str, text: str, at: datetime, author: str = "") -> None:
        """The vendor answers a review (shown on the next page load)."""
        with self._data_lock:
            review = self.review(site, key, review_id)
            review.reply, review.reply_at, review.reply_author = text, at, author

    def remove_review(self, site: str, key: str, review_id: str) -> None:
        with self._data_lock:
            product = self.products[(site, key)]
            product.reviews = [r for r in product.reviews if r.id != review_id]

    def review(self, site: str, key: str, review_id: str) -> FakeReview:
        return next(r for r in self.products[(site, key)].reviews if r.id == review_id)

    def page_requests(self, site: str) -> list[Request]:
        """Requests for review pages of `site` (not assets)."""
        prefix = {"g2": "/products/", "capterra": "/p/", "trustpilot": "/review/"}[site]
        return [r for r in self.requests if r.path.startswith(prefix)]

    # -- HTTP -----------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.path
        routes = (
            ("g2", r"/products/([^/]+)/reviews/?"),
            ("capterra", r"/p/(\d+/[^/]+)/reviews/?"),
            ("trustpilot", r"/review/([^/]+)/?"),
        )
        for site, pattern in routes:
            if m := re.fullmatch(pattern, path):
                with self._data_lock:
                    return self._page(site, m.group(1), request)
        return Response(404, "<!DOCTYPE html><title>Not found</title><h1>404</h1>", {"Content-Type": HTML})

    def _page(self, site: str, key: str, request: Request) -> Response:
        if self.bot_check.get(site) == "cloudflare":
            return Response(403, _cloudflare_challenge(), {"Content-Type": HTML, "cf-mitigated": "challenge",
                                                           "Server": "cloudflare", "cf-ray": "8f2c1e3a9b7d4c21-FRA"})
        if self.bot_check.get(site) == "captcha":
            return Response(200, _captcha_page(), {"Content-Type": HTML})
        product = self.products.get((site, key))
        if product is None:
            return Response(404, f"<!DOCTYPE html><title>Page not found | {site}</title><h1>We couldn't find that page</h1>",
                            {"Content-Type": HTML})
        param, value = SORT_PARAMS[site]
        newest = request.arg(param) == value and site not in self.ignore_sort
        ordered = product.newest_first if newest else product.most_relevant
        try:
            number = max(1, int(request.arg("page", "1") or 1))
        except ValueError:
            number = 1
        size = self.page_sizes[site]
        pages = max(1, -(-len(ordered) // size))
        shown = ordered[(number - 1) * size : number * size]
        # The next link keeps the query the page was asked with, as the real sites do.
        query = [(k, v[-1]) for k, v in request.query.items() if k != "page"] + [("page", str(number + 1))]
        next_url = f"{self._base_path(site, key)}?{urlencode(query)}" if number < pages else None
        view = _View(site, product, shown, number, pages, size, next_url, self.layout.get(site, ""), self.consent.get(site, ""),
                     named_replies=site not in self.unnamed_replies)
        body = {"g2": _g2_page, "capterra": _capterra_page, "trustpilot": _trustpilot_page}[site](view)
        return Response(200, body, {"Content-Type": HTML, "Cache-Control": "private, no-store"})

    @staticmethod
    def _base_path(site: str, key: str) -> str:
        if site == "g2":
            return f"/products/{quote(key)}/reviews"
        if site == "capterra":
            return f"/p/{key}/reviews/"
        return f"/review/{quote(key)}"


@dataclass
class _View:
    site: str
    product: Product
    reviews: list[FakeReview]
    page: int
    pages: int
    size: int
    next_url: str | None
    layout: str
    consent: str
    named_replies: bool = True

    @property
    def wall(self) -> bool:
        return self.consent == "wall"


# -- shared HTML pieces -------------------------------------------------------------

e = html.escape


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{e(p.strip())}</p>" for p in re.split(r"\n\s*\n", text.strip()) if p.strip())


def _json_script(data: Any, attrs: str = 'type="application/ld+json"') -> str:
    return f"<script {attrs}>{json.dumps(data, ensure_ascii=False).replace('</', '<' + chr(92) + '/')}</script>"


def _day(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d")


def _us_date(when: datetime) -> str:
    """"May 1, 2024", as Capterra writes dates."""
    when = when.astimezone(timezone.utc)
    return f"{when:%B} {when.day}, {when.year}"


def _long_date(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%b %d, %Y")


def _consent_overlay() -> str:
    """A OneTrust-style banner: a fixed dark filter over the whole window plus the dialog."""
    return (
        '<div id="onetrust-consent-sdk"><div class="onetrust-pc-dark-filter" '
        'style="position:fixed;top:0;left:0;width:100%;height:100%;background:rgba(0,0,0,.5);z-index:2147483646"></div>'
        '<div id="onetrust-banner-sdk" role="dialog" aria-modal="true" aria-label="Cookie banner" '
        'style="position:fixed;bottom:0;left:0;right:0;min-height:220px;background:#fff;z-index:2147483647;padding:24px">'
        "<p>We use cookies to improve your experience, personalise content and analyse traffic. "
        "By clicking \u201cAccept All Cookies\u201d, you agree to the storing of cookies on your device.</p>"
        '<button id="onetrust-reject-all-handler">Reject All</button> '
        '<button id="onetrust-accept-btn-handler">Accept All Cookies</button></div></div>'
    )


def _page(title: str, head: str, body: str, view: _View, lang: str = "en") -> str:
    next_link = f'<link rel="next" href="{e(view.next_url)}">' if view.next_url else ""
    overlay = _consent_overlay() if view.consent else ""
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{next_link}{head}'
        "<style>body{font-family:sans-serif;margin:0}main{max-width:960px;margin:auto;padding:16px}"
        ".paper{border-bottom:1px solid #ddd;padding:12px 0}</style></head>"
        f"<body><main>{body}</main>{overlay}</body></html>"
    )


def _cloudflare_challenge() -> str:
    return (
        '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
        '<meta http-equiv="refresh" content="390"><meta name="robots" content="noindex,nofollow"></head>'
        '<body><div class="main-wrapper" role="main"><div class="main-content">'
        '<h1 class="zone-name-title h1">www.g2.com</h1><h2 class="h2" id="challenge-running">'
        "Checking if the site connection is secure</h2>"
        '<div id="challenge-stage"></div><noscript><div class="h2">Enable JavaScript and cookies to continue</div></noscript>'
        '<form id="challenge-form" action="/?__cf_chl_f_tk=x" method="POST"></form></div></div></body></html>'
    )


def _captcha_page() -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><title>acme reviews</title></head><body style="margin:0">'
        '<iframe src="/captcha-delivery/captcha/?initialCid=AHrlqAAAAAMA" title="DataDome CAPTCHA" '
        'width="100%" height="100%" style="height:100vh;border:0"></iframe></body></html>'
    )


# -- G2 ----------------------------------------------------------------------------------


def _g2_page(view: _View) -> str:
    product = view.product
    reviews = view.reviews if not view.wall else []
    count = len(product.reviews)
    ld: dict[str, Any] = {"@context": "http://schema.org", "@type": "Product", "name": product.name,
                          "brand": {"@type": "Brand", "name": product.vendor}}
    if count:
        ld["aggregateRating"] = {"@type": "AggregateRating", "ratingValue": str(product.mean), "reviewCount": str(count),
                                 "bestRating": "5", "worstRating": "1"}
    if view.layout not in ("redesign", "no-rating"):
        ld["review"] = [_g2_ld_review(product, r) for r in reviews]
    header = (
        f'<div class="product-head" itemscope itemtype="http://schema.org/Product"><h1 itemprop="name">{e(product.name)}</h1>'
        + (f'<div itemprop="aggregateRating" itemscope itemtype="http://schema.org/AggregateRating">'
           f'<meta itemprop="ratingValue" content="{product.mean}"><meta itemprop="reviewCount" content="{count}">'
           f'<span>{product.mean} out of 5</span> <a href="#reviews">{count} reviews</a></div>' if count else "")
        + "</div>"
    )
    if view.layout == "redesign":
        cards = "".join(
            f'<section class="elv-review-tile" data-rid="{r.id}"><h4>{e(r.title)}</h4><span class="elv-author">{e(r.author)}</span>'
            f'<span class="elv-date">{_long_date(r.published)}</span>{_paragraphs(r.text)}</section>'
            for r in reviews
        )
    else:
        cards = "".join(_g2_card(product, r, view.layout, view.named_replies) for r in reviews)
    if not product.reviews:
        cards = f'<div class="reviews-empty-state" data-testid="no-reviews">Be the first to review {e(product.name)}</div>'
    pagination = (f'<div class="pagination"><a class="pagination__named-link" aria-label="Next" rel="next" '
                  f'href="{e(view.next_url)}">Next \u203a</a></div>' if view.next_url else "")
    body = header + f'<div id="reviews" class="nested-ajax-loading">{cards}</div>{pagination}'
    return _page(f"{product.name} Reviews 2024: Details, Pricing, & Features | G2", _json_script(ld), body, view)


def _g2_ld_review(product: Product, r: FakeReview) -> dict[str, Any]:
    return {
        "@type": "Review",
        "author": {"@type": "Person", "name": r.author},
        "datePublished": _day(r.published),
        "name": r.title,
        "reviewBody": _g2_body_text(product, r),
        "reviewRating": {"@type": "Rating", "ratingValue": f"{r.rating:.1f}", "bestRating": "5", "worstRating": "1"},
        "publisher": {"@type": "Organization", "name": "G2.com"},
    }


def _g2_sections(product: Product, r: FakeReview) -> list[tuple[str, str]]:
    sections = [(f"What do you like best about {product.name}?", r.pros or r.text)]
    if r.cons:
        sections.append((f"What do you dislike about {product.name}?", r.cons))
    if r.pros:
        sections.append((f"What problems is {product.name} solving and how is that benefiting you?", r.text))
    return sections


def _g2_body_text(product: Product, r: FakeReview) -> str:
    return "\n".join(f"{q}\n{a}" for q, a in _g2_sections(product, r))


def _g2_card(product: Product, r: FakeReview, layout: str, named: bool = True) -> str:
    slug = quote(product.key)
    rating = ("" if layout == "no-rating" else
              f'<div itemprop="reviewRating" itemscope itemtype="http://schema.org/Rating"><meta itemprop="ratingValue" '
              f'content="{r.rating:.1f}"><meta itemprop="bestRating" content="5"><meta itemprop="worstRating" content="1">'
              f'<div class="stars large stars-{r.rating * 2}"></div></div>')
    reply = ""
    if r.reply is not None:
        who = f"{r.reply_author} of {product.name}" if r.reply_author else product.vendor
        reply = (
            '<div class="paper paper--nested-reset vendor-response" data-testid="vendor-response">'
            + (f'<div class="fw-semibold" data-testid="vendor-response-author">Response from {e(who)}</div>' if named else "")
            + (f'<time datetime="{_day(r.reply_at)}">{_long_date(r.reply_at)}</time>' if r.reply_at else "")
            + f'<div data-testid="vendor-response-body">{_paragraphs(r.reply)}</div></div>'
        )
    body = "".join(f"<div><h5>{e(q)}</h5>{_paragraphs(a)}</div>" for q, a in _g2_sections(product, r))
    anchor = str(uuid.uuid5(uuid.NAMESPACE_URL, r.id)) if layout == "new-ids" else r.id
    return (
        f'<div class="paper paper--white paper--box mb-2 position-relative border-bottom" id="survey-response-{anchor}" '
        'itemprop="review" itemscope itemtype="http://schema.org/Review">'
        '<div class="f-1 d-f ai-c mb-half-small-only">'
        '<span itemprop="author" itemscope itemtype="http://schema.org/Person">'
        f'<meta itemprop="name" content="{e(r.author)}"><meta itemprop="url" content="https://www.g2.com/users/{r.id}"></span>'
        f'<img class="avatar" alt="" src="/static/avatars/{r.id}.png"><a class="link--header-color">{e(r.author)}</a></div>'
        + (f'<div class="mt-4th" data-testid="reviewer-role">{e(r.role)}</div>' if r.role else "")
        + (f'<div class="mt-4th" data-testid="reviewer-industry">{e(r.industry)}</div>' if r.industry else "")
        + (f'<div class="mt-4th" data-testid="reviewer-company-size">{e(r.company_size)}</div>' if r.company_size else "")
        + rating
        + f'<meta itemprop="datePublished" content="{_day(r.published)}"><time datetime="{_day(r.published)}">'
        f"{_long_date(r.published)}</time>"
        f'<a class="pjax" href="/products/{slug}/reviews/{slug}-review-{r.id}"><div itemprop="name" class="m-0 l2">'
        f"&quot;{e(r.title)}&quot;</div></a>"
        f'<div itemprop="reviewBody">{body}</div>{reply}</div>'
    )


# -- Capterra --------------------------------------------------------------------------------


def _capterra_page(view: _View) -> str:
    product = view.product
    reviews = view.reviews if not view.wall else []
    count = len(product.reviews)
    size = len(view.reviews)
    start = (view.page - 1) * view.size + 1
    ld: dict[str, Any] = {"@context": "https://schema.org", "@type": "SoftwareApplication", "name": product.name,
                          "applicationCategory": "BusinessApplication", "operatingSystem": "Web"}
    if count:
        ld["aggregateRating"] = {"@type": "AggregateRating", "ratingValue": product.mean, "reviewCount": count,
                                 "bestRating": 5, "worstRating": 0}
    if view.layout not in ("redesign", "no-rating"):
        ld["review"] = [
            {"@type": "Review", "author": {"@type": "Person", "name": r.author}, "datePublished": _day(r.published),
             "name": r.title, "reviewBody": r.text, "reviewRating": {"@type": "Rating", "ratingValue": r.rating, "bestRating": 5}}
            for r in reviews
        ]
    if view.layout == "redesign":
        cards = "".join(f'<div class="review-v3" data-entry="{r.id}"><b>{e(r.author)}</b><h4>{e(r.title)}</h4>'
                        f"{_paragraphs(r.text)}</div>" for r in reviews)
    else:
        cards = "".join(_capterra_card(product, r, view.layout, view.named_replies) for r in reviews)
    if not product.reviews:
        cards = f'<div data-testid="no-reviews">No reviews yet for {e(product.name)}. Be the first!</div>'
    counter = f'<p data-testid="review-count">Showing {start}-{start + size - 1} of {count} Reviews</p>' if count else ""
    pagination = f'<nav><a data-testid="pagination-next" rel="next" href="{e(view.next_url)}">Next</a></nav>' if view.next_url else ""
    body = f"<h1>{e(product.name)} Reviews</h1>{counter}<div data-testid='review-list'>{cards}</div>{pagination}"
    return _page(f"{product.name} Reviews 2024. Verified Reviews, Pros & Cons | Capterra", _json_script(ld), body, view)


def _capterra_card(product: Product, r: FakeReview, layout: str, named: bool = True) -> str:
    pid, slug = product.key.split("/", 1)
    rating = "" if layout == "no-rating" else (
        f'<div data-testid="Overall Rating-rating" data-rating="{r.rating:.1f}"><span class="sr-only">Overall Rating</span>'
        f'<span>{r.rating:.1f}</span></div>')
    reply = ""
    if r.reply is not None:
        reply = (
            '<div data-testid="vendor-response" class="mt-4 border-l-4 pl-4">'
            + (f'<p class="font-semibold" data-testid="vendor-response-author">Response from {e(r.reply_author or product.vendor)}</p>'
               if named else "")
            + (f'<time datetime="{_day(r.reply_at)}">{_us_date(r.reply_at)}</time>' if r.reply_at else "")
            + f'<div data-testid="vendor-response-text">{_paragraphs(r.reply)}</div></div>'
        )
    pros = f"<h4>Pros</h4>{_paragraphs(r.pros)}" if r.pros else ""
    cons = f"<h4>Cons</h4>{_paragraphs(r.cons)}" if r.cons else ""
    return (
        f'<div data-testid="review-card" id="review-{r.id}" data-review-id="{r.id}" class="rounded-xl border p-6">'
        f'<div class="flex"><img alt="" src="/static/reviewers/{r.id}.jpg"><div>'
        f'<span class="font-semibold" data-testid="reviewer-name">{e(r.author)}</span>'
        + (f'<div data-testid="reviewer-role">{e(r.role)}</div>' if r.role else "")
        + (f'<div data-testid="reviewer-industry">{e(r.industry)}</div>' if r.industry else "")
        + (f'<div data-testid="reviewer-company-size">{e(r.company_size)}</div>' if r.company_size else "")
        + '<div data-testid="reviewer-time-used">Used the software for: 1-2 years</div></div></div>'
        f'<h3 data-testid="review-title" class="typo-20 font-semibold">&quot;{e(r.title)}&quot;</h3>'
        f'<div data-testid="review-date"><time datetime="{_day(r.published)}">{_us_date(r.published)}</time></div>'
        f"{rating}"
        f'<div data-testid="review-content">{_paragraphs(r.text)}{pros}{cons}</div>'
        f'<a data-testid="review-permalink" href="/p/{pid}/{slug}/reviews/{r.id}/">Share</a>{reply}</div>'
    )


# -- Trustpilot ----------------------------------------------------------------------------------


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z") if when else None


def _trustpilot_review(r: FakeReview) -> dict[str, Any]:
    """A review object shaped like the real `props.pageProps.reviews[]` entries."""
    return {
        "id": r.id,
        "filtered": False,
        "pending": False,
        "text": r.text,
        "rating": r.rating,
        "labels": {"merged": None, "verification": {
            "isVerified": r.verified, "createdDateTime": _iso(r.published), "reviewSourceName": "InvitationLinkApi",
            "verificationSource": "invitation", "verificationLevel": "invited" if r.verified else "not-verified",
            "hasDachExclusion": False}},
        "title": r.title,
        "likes": r.likes,
        "dates": {"experiencedDate": _iso(r.published.replace(hour=0, minute=0, second=0, microsecond=0)),
                  "publishedDate": _iso(r.published), "updatedDate": None},
        "report": None,
        "hasUnhandledReports": False,
        "consumer": {"id": hashlib.md5(r.author.encode()).hexdigest()[:24], "displayName": r.author, "imageUrl": "",
                     "numberOfReviews": 1, "countryCode": r.country, "hasImage": False, "isVerified": False},
        "reply": None if r.reply is None else {"message": r.reply, "publishedDate": _iso(r.reply_at), "updatedDate": None},
        "consumersReviewCountOnSameDomain": 1,
        "consumersReviewCountOnSameLocation": None,
        "productReviews": [],
        "language": r.language,
        "location": None,
    }


def _trustpilot_page(view: _View) -> str:
    product = view.product
    reviews = view.reviews if not view.wall else []
    count = len(product.reviews)
    page_props: dict[str, Any] = {
        "businessUnit": {"id": "5f0c8e1b2a3d4e0001a1b2c3", "displayName": product.name, "identifyingName": product.key,
                         "numberOfReviews": count, "trustScore": product.mean, "stars": round(product.mean * 2) / 2,
                         "websiteUrl": f"https://{product.key}", "isClaimed": True, "categories": []},
        "reviews": [_trustpilot_review(r) for r in reviews],
        "filters": {"pagination": {"currentPage": view.page, "perPage": view.size, "totalCount": count,
                                   "totalPages": view.pages},
                    "selected": {"languages": "all", "sort": "recency"}},
        "pageUrl": f"https://www.trustpilot.com/review/{product.key}",
    }
    if view.layout == "redesign":
        page_props["reviewList"] = {"items": page_props.pop("reviews")}
    state = {"props": {"pageProps": page_props, "__N_SSP": True}, "page": "/review/[businessUnit]",
             "query": {"businessUnit": product.key, "languages": "all", "sort": "recency"},
             "buildId": "businessunitprofile-consumersite-2.4080.0", "isFallback": False, "gssp": True,
             "locale": "en-US", "locales": ["en-US", "da-DK", "de-DE"], "defaultLocale": "en-US", "scriptLoader": []}
    next_data = "" if view.layout == "no-next-data" else _json_script(state, 'id="__NEXT_DATA__" type="application/json"')
    ld = {"@context": "https://schema.org", "@graph": [
        {"@type": "Organization", "@id": f"https://www.trustpilot.com/#/schema/Organization/{product.key}",
         "name": product.name, "url": f"https://{product.key}",
         **({"aggregateRating": {"@type": "AggregateRating", "bestRating": "5", "worstRating": "1",
                                 "ratingValue": str(product.mean), "reviewCount": str(count)}} if count else {})},
    ]}
    if view.layout == "redesign":
        cards = "".join(f'<div class="tp-review" data-review="{r.id}"><strong>{e(r.author)}</strong><h3>{e(r.title)}</h3>'
                        f"<p>{e(r.text)}</p></div>" for r in reviews)
    else:
        cards = "".join(_trustpilot_card(product, r, view.named_replies) for r in reviews)
    if not product.reviews:
        cards = '<div data-reviews-empty-state="true">This company has no reviews yet.</div>'
    counter = f'<p data-reviews-count-typography="true">{count:,} total</p>' if count else ""
    pagination = (f'<nav><a name="pagination-button-next" rel="next" href="{e(view.next_url)}">Next page</a></nav>'
                  if view.next_url else "")
    body = f'<h1><span>{e(product.name)}</span></h1>{counter}<section class="styles_reviewsContainer__3_GQw">{cards}</section>{pagination}'
    head = _json_script(ld) + next_data
    return _page(f"{product.name} Reviews | Read Customer Service Reviews of {product.key}", head, body, view, lang="en-US")


def _trustpilot_card(product: Product, r: FakeReview, named: bool = True) -> str:
    reply = ""
    if r.reply is not None:
        reply = (
            '<div class="paper_paper__1PY90 styles_content__Hl2Mi">'
            + (f'<p data-service-review-business-reply-title-typography="true">Reply from {e(product.name)}</p>' if named else "")
            + (f'<time datetime="{_iso(r.reply_at)}" data-service-review-business-reply-date-time-ago="true">'
               f"{_long_date(r.reply_at)}</time>" if r.reply_at else "")
            + f'<p data-service-review-business-reply-text-typography="true">{e(r.reply)}</p></div>'
        )
    return (
        '<article class="paper_paper__1PY90 paper_outline__lwsUX card_card__lQWDv styles_reviewCard__hcAvl" '
        'data-service-review-card-paper="true">'
        f'<aside aria-label="Info for {e(r.author)}"><span data-consumer-name-typography="true">{e(r.author)}</span>'
        f'<div data-consumer-country-typography="true"><span>{e(r.country)}</span></div></aside>'
        f'<section><div data-service-review-rating="{r.rating}"><img alt="Rated {r.rating} out of 5 stars" '
        f'src="/static/stars-{r.rating}.svg"></div>'
        f'<time datetime="{_iso(r.published)}" data-service-review-date-time-ago="true">{_long_date(r.published)}</time>'
        f'<a href="/reviews/{r.id}" data-review-title-typography="true"><h2 data-service-review-title-typography="true">'
        f"{e(r.title)}</h2></a>"
        f'<p data-service-review-text-typography="true">{e(r.text)}</p></section>{reply}</article>'
    )


# -- earful demo -------------------------------------------------------------------------------------

DEMO_PRODUCTS = {
    "g2": ("acme-crm", "Acme CRM"),
    "capterra": ("2001234/Acme-CRM", "Acme CRM"),
    "trustpilot": ("acme.example", "Acme CRM"),
}


def demo_server(now: float) -> ReviewSitesServer:
    """One server with the bundled sample reviews (demo_data/reviews/acme.json), dated relative to `now`."""
    from importlib import resources

    sample = json.loads((resources.files("earful.sandbox") / "demo_data" / "reviews" / "acme.json").read_text(encoding="utf-8"))
    server = ReviewSitesServer()
    moment = datetime.fromtimestamp(now, timezone.utc)
    for site, (key, name) in DEMO_PRODUCTS.items():
        server.add_product(site, key, name, vendor="Acme Inc.")
        for item in sample[site]:
            fields = dict(item)
            published = moment - timedelta(hours=fields.pop("hours_ago"))
            reply_hours = fields.pop("reply_hours_ago", None)
            if reply_hours is not None:
                fields["reply_at"] = moment - timedelta(hours=reply_hours)
            # Trustpilot ids embed the creation time; the demo's must not change between two demo runs.
            review_id = hashlib.md5(f"{site}:{fields['author']}:{fields['title']}".encode()).hexdigest()[:24] if site == "trustpilot" else None
            server.add_review(site, key, published=published, id=review_id, **fields)
    return server


def _demo_monitor(site: str) -> dict[str, Any]:
    key, _ = DEMO_PRODUCTS[site]
    return {"connector": site, "schedule": "0 * * * *", "product": key, "base_url": "{url}", "page_delay": 0}


def demo_source(now: float) -> DemoSource:
    """The G2 reviews of "Acme CRM" (the server also serves Capterra and Trustpilot: see `demo_sources`)."""
    return DemoSource("g2-acme", demo_server(now), _demo_monitor("g2"))


def demo_sources(now: float) -> list[DemoSource]:
    """G2, Capterra and Trustpilot monitors sharing one server (its start/stop are reference-counted)."""
    server = demo_server(now)
    return [DemoSource(f"{site}-acme", server, _demo_monitor(site)) for site in SITES]
