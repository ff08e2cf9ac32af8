"""What G2, Capterra and Trustpilot have in common: paging back, parsing, health.

The three sites differ in URLs and markup only; everything else lives here:

* **Reading a page.** One JS function (`EXTRACT_JS`) runs in the page and
  returns, in one round trip, the JSON-LD blocks, Next.js' `__NEXT_DATA__`,
  one dict per review card (fields read through the site's selector table)
  and the markers of bot checks and consent overlays. Each site module
  keeps all its CSS selectors in ONE dict at its top (`SELECTORS`); every
  entry lists alternatives, tried in order, so a site's A/B variants and
  small redesigns are absorbed by adding a line, not by editing code.
* **Structured data first.** Ratings, dates, titles and bodies come from
  the page's own data (JSON-LD `Review`/`AggregateRating`, Trustpilot's
  `__NEXT_DATA__`) when it has them; the DOM supplies what structured data
  lacks (review ids, permalinks, the vendor's response, reviewer role) and
  everything when there is no structured data at all.
* **Paging back.** Pages are read newest first (the sort parameter is in
  the URL, and the order is checked: an ignored sort parameter is an error,
  not silently wrong paging) until a review already seen, or the horizon,
  turns up, or `max_pages` is used up: the shared `paging.page_back`, with
  the horizon as its floor and a seen id ending the walk after its page.
  The cursor is

      {"newest": iso-time, "seen": [[id, iso-time], ...newest first, at most SEEN_MAX],
       "horizon": iso-time | null, "last_parsed": int, "total": int | null}

  A review is new when its id is not in `seen` and it is newer than
  `horizon`, the oldest review of a window that was cut short (the first
  run reads only `first_run_pages`; a catch-up that hits `max_pages`).
  Reviews at or before the horizon are history earful chose not to read;
  on the first run, reviews older than `first_run_lookback` (30 days) are
  remembered but not returned.
  A page 1 whose reviews are older than `newest` but whose ids are all
  unknown is an error: the ids changed form, and returning them would
  alert old reviews again.
  Sites that show only a date (G2, Capterra) compare at midnight: more
  than a page of reviews on the horizon's own day would be cut there.
* **Health (never "no new reviews" when the page could not be read).** A
  bot check (Cloudflare "Just a moment...", captcha frames, HTTP 403
  challenges), a consent overlay covering the page when no review could be
  read, review selectors that stop matching while the page or the last run
  says there are reviews, review cards whose id/date/rating selectors stop
  matching, a page that is not newest first: each is a `ConnectorError`
  naming the site, the monitor, the URL and what changed, e.g.
  "g2 monitor 'g2-acme': the review page loaded but none of the 3 review
  selectors matched (layout changed?) at https://...; last successful
  parse: 25 reviews". A product with no reviews at all is accepted only
  when the page says so (an `AggregateRating` of 0 or the site's
  "no reviews yet" marker).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Iterable, Mapping, Sequence

from pydantic import Field

from earful.core import Mention, parse_time, retry_after_header
from earful.core.durations import Duration

from .base import Connector, ConnectorContext, ConnectorError, FetchResult, ReplyStatus
from .browser import BrowserOptions, BrowserSession, LoadedPage
from .http import error_for_status, html_to_text, join_url, redact_url, split_url
from .paging import Page, Watermark, page_back

SEEN_MAX = 1000
SORT_TOLERANCE = timedelta(days=1)  # "newest first" may wobble by a day (edits, time zones)
DEFAULT_RETRY_AFTER = 900.0  # a 429 without Retry-After: come back in 15 minutes
EXCERPT_CHARS = 500

# Markers of pages that are not the review page (checked in every site).
BOT_TITLES = (
    r"^just a moment",
    r"^attention required",
    r"^access denied",
    r"^pardon our interruption",
    r"^are you a (?:robot|human)",
    r"^please verify you are a human",
    r"^verify you are human",
    r"^security check",
    r"^one more step",
)
BOT_SELECTORS = (
    "#challenge-form",
    "#challenge-running",
    "#challenge-stage",
    "#cf-challenge-running",
    ".cf-browser-verification",
    ".cf-turnstile",
    "iframe[src*='challenges.cloudflare.com']",
    "iframe[src*='captcha']",
    "#px-captcha",
    ".g-recaptcha",
    ".h-captcha",
)
CONSENT_SELECTORS = (
    "#onetrust-consent-sdk",
    "#onetrust-banner-sdk",
    "#CybotCookiebotDialog",
    "#usercentrics-root",
    ".fc-consent-root",
    "[id^='sp_message_container']",
    "#truste-consent-track",
    ".qc-cmp2-container",
    "#didomi-host",
    "[role='dialog'][aria-modal='true'][aria-label*='consent' i]",
    "[role='dialog'][aria-modal='true'][aria-label*='cookie' i]",
)

# Runs in the page: returns everything the connector parses, in one round trip.
EXTRACT_JS = r"""
(spec) => {
  const pick = (root, alternatives) => {
    for (const {css, attr} of alternatives) {
      let el = null;
      try { el = css ? root.querySelector(css) : root; } catch (e) { continue; }
      if (!el) continue;
      const value = attr ? el.getAttribute(attr) : (el.innerText ?? el.textContent);
      if (value !== null && value !== undefined) return value;
    }
    return null;
  };
  let cards = [], cardSelector = null;
  for (const css of spec.card) {
    let found = [];
    try { found = document.querySelectorAll(css); } catch (e) { continue; }
    if (found.length) { cards = Array.from(found); cardSelector = css; break; }
  }
  const reviews = cards.map((card) => {
    const out = {};
    for (const [name, alternatives] of Object.entries(spec.fields)) out[name] = pick(card, alternatives);
    return out;
  });
  const page = {};
  for (const [name, alternatives] of Object.entries(spec.page)) page[name] = pick(document, alternatives);
  const title = (document.title || '').trim();
  const botTitle = spec.botTitles.some((t) => new RegExp(t, 'i').test(title)) ? title : null;
  let botMarker = null;
  for (const css of spec.botSelectors) { if (document.querySelector(css)) { botMarker = css; break; } }
  const vw = window.innerWidth, vh = window.innerHeight;
  const center = document.elementFromPoint(vw / 2, vh / 2);
  let consent = null;
  for (const css of spec.consentSelectors) {
    let found = [];
    try { found = document.querySelectorAll(css); } catch (e) { continue; }
    for (const el of found) {
      const style = getComputedStyle(el);
      if (style.display === 'none' || style.visibility === 'hidden' || parseFloat(style.opacity || '1') === 0) continue;
      const r = el.getBoundingClientRect();
      const w = Math.max(0, Math.min(r.right, vw) - Math.max(r.left, 0));
      const h = Math.max(0, Math.min(r.bottom, vh) - Math.max(r.top, 0));
      const coverage = (w * h) / (vw * vh);
      if (coverage >= 0.5 || (center !== null && el.contains(center))) {
        consent = {selector: css, coverage: Math.round(coverage * 100)};
        break;
      }
    }
    if (consent) break;
  }
  const nextData = document.getElementById('__NEXT_DATA__');
  return {
    title, url: location.href, lang: document.documentElement.lang || null,
    jsonld: Array.from(document.querySelectorAll('script[type="application/ld+json"]'), (s) => s.textContent),
    nextData: nextData ? nextData.textContent : null,
    cardSelector, reviews, page, botTitle, botMarker, consent,
  };
}
"""

PAGE_KEYS = ("card", "next", "empty", "count")


# The first run of a review monitor returns only reviews this recent (all it read are remembered),
# so installing earful on a product with years of reviews does not alert years of reviews.
DEFAULT_LOOKBACK = timedelta(days=30)


def lookback_field() -> Any:
    """`first_run_lookback` of every review source (sites and app stores): one default, one description."""
    return Field(default=DEFAULT_LOOKBACK, gt=timedelta(0),
                 description="On the first run, only reviews this recent are returned (e.g. 30d, 12h); older ones are remembered.")


def recent_only(items: Iterable[Any], now: datetime, lookback: timedelta) -> list[Any]:
    """The reviews (or mentions) of a first run that are recent enough to be returned (undated ones are)."""
    return [item for item in items if item.created_at is None or item.created_at >= now - lookback]


# -- parsed data -----------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    """One review as read from a page, before it becomes a `Mention`."""

    id: str = ""
    url: str = ""
    author: str = ""
    rating: float | None = None
    title: str = ""
    text: str = ""
    created_at: datetime | None = None
    replied: bool | None = None
    reply_at: datetime | None = None
    reply_by: str = ""
    reply_text: str = ""
    language: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Aggregate:
    """The page's own summary: how many reviews the product has, and its mean rating."""

    count: int | None = None
    rating: float | None = None
    name: str = ""


@dataclass(frozen=True)
class ParsedPage:
    url: str
    reviews: list[Review]
    aggregate: Aggregate
    has_next: bool
    source: str  # "__NEXT_DATA__", "json-ld+dom", "dom"
    notes: list[str] = field(default_factory=list)  # e.g. "the page's __NEXT_DATA__ has no reviews list"


@dataclass(frozen=True)
class Embedded:
    """Reviews from a page's embedded app state (Trustpilot's `__NEXT_DATA__`): complete, ids included."""

    reviews: list[Review]
    aggregate: Aggregate
    has_next: bool | None


_DATE_WORDS = re.compile(r"^(?:reviewed|written|posted|updated)\s+(?:on\s+)?", re.I)
_ORDINAL = re.compile(r"(\d)(st|nd|rd|th)\b")
_HUMAN_DATES = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%b. %d, %Y", "%m/%d/%Y", "%Y/%m/%d")


def parse_when(value: Any) -> datetime | None:
    """An aware UTC datetime from what review pages show: ISO 8601 or epoch (`earful.core.parse_time`),
    else a date as people write it ("May 1, 2024", "Reviewed on May 1st, 2024")."""
    when = parse_time(value)
    if when is not None or not isinstance(value, str):
        return when
    cleaned = _ORDINAL.sub(r"\1", _DATE_WORDS.sub("", value.strip()))
    for fmt in _HUMAN_DATES:
        try:
            return datetime.strptime(cleaned, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def parse_rating(value: Any, best: Any = None) -> float | None:
    """A 1-5 rating from "4", "4.5", 9 (with best=10) or "4 out of 5"; None if unusable."""
    if value is None or isinstance(value, bool):
        return None
    match = re.search(r"\d+(?:[.,]\d+)?", str(value))
    if not match:
        return None
    number = float(match.group(0).replace(",", "."))
    try:
        scale = float(best) if best not in (None, "") else 5.0
    except (TypeError, ValueError):
        scale = 5.0
    if scale > 0 and scale != 5.0:
        number = number * 5.0 / scale
    return round(number, 2) if 0 <= number <= 5 else None


def clean_text(value: Any) -> str:
    """Plain text from innerText, JSON-LD or embedded JSON (which may hold HTML)."""
    if not value:
        return ""
    text = html_to_text(str(value)) if "<" in str(value) else str(value)
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# -- structured data ---------------------------------------------------------------


def _types(node: Mapping[str, Any]) -> set[str]:
    kind = node.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {str(k).rsplit("/", 1)[-1] for k in kinds if k}


def _walk(node: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, dict):
        yield node
        for value in node.values():
            if isinstance(value, (list, dict)):
                yield from _walk(value)


def _name(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        return str(value.get("name") or "").strip()
    return str(value or "").strip()


def json_ld(blocks: Sequence[str | None]) -> tuple[list[Review], Aggregate]:
    """Reviews and the aggregate rating from a page's JSON-LD blocks; broken blocks are skipped.

    Of several aggregates (a product and its category, say), the one that counts the most reviews wins.
    """
    reviews: list[Review] = []
    aggregate = Aggregate()
    for node in _nodes(blocks):
        kinds = _types(node)
        if "Review" in kinds:
            reviews.append(_ld_review(node))
        elif "AggregateRating" in kinds or isinstance(node.get("aggregateRating"), dict):
            found = _ld_aggregate(node, kinds)
            if aggregate.count is None or (found.count or 0) > (aggregate.count or 0):
                aggregate = replace(found, name=found.name or aggregate.name)
    return reviews, aggregate


def _nodes(blocks: Sequence[str | None]) -> Iterable[Mapping[str, Any]]:
    """Every JSON object in the blocks that parse, each once."""
    seen_nodes: set[int] = set()
    for block in blocks:
        try:
            data = json.loads(block or "")
        except ValueError:
            continue
        for node in _walk(data):
            if id(node) not in seen_nodes:
                seen_nodes.add(id(node))
                yield node


def _ld_review(node: Mapping[str, Any]) -> Review:
    rating = node.get("reviewRating") if isinstance(node.get("reviewRating"), dict) else {}
    return Review(
        id=str(node.get("@id") or node.get("identifier") or ""),
        url=str(node.get("url") or ""),
        author=_name(node.get("author")),
        rating=parse_rating(rating.get("ratingValue"), rating.get("bestRating")),
        title=clean_text(node.get("name") or node.get("headline")),
        text=clean_text(node.get("reviewBody") or node.get("description")),
        created_at=parse_when(node.get("datePublished") or node.get("dateCreated")),
        language=str(node.get("inLanguage")) if node.get("inLanguage") else None,
    )


def _ld_aggregate(node: Mapping[str, Any], kinds: set[str]) -> Aggregate:
    """An `AggregateRating` node, or the `aggregateRating` of the thing it rates."""
    agg = node if "AggregateRating" in kinds else node["aggregateRating"]
    count = agg.get("reviewCount", agg.get("ratingCount"))
    try:
        number = int(str(count).replace(",", "")) if count not in (None, "") else None
    except ValueError:
        number = None
    name = _name(node.get("name")) if "AggregateRating" not in kinds else _name(agg.get("itemReviewed"))
    return Aggregate(number, parse_rating(agg.get("ratingValue"), agg.get("bestRating")), name)


def merge(dom: list[Review], structured: list[Review]) -> list[Review]:
    """DOM cards enriched with structured data: structured values win where present,
    except the body, where the longer of the two wins.

    Cards and structured reviews are paired by (author, day), never by
    position: a site whose JSON-LD lists other reviews than its cards (a
    "featured" selection) must not lend one review's rating to another.
    """
    if not structured:
        return dom

    def key(review: Review) -> tuple[str, str]:
        day = review.created_at.date().isoformat() if review.created_at else ""
        return (review.author.casefold().strip(), day)

    by_key: dict[tuple[str, str], Review] = {}
    for item in structured:
        by_key.setdefault(key(item), item)
    merged = []
    for card in dom:
        data = by_key.get(key(card))
        if data is None:
            merged.append(card)
            continue
        merged.append(replace(
            card,
            author=data.author or card.author,
            rating=data.rating if data.rating is not None else card.rating,
            title=data.title or card.title,
            # Bodies: the most complete one. Capterra's JSON-LD has the summary only, its card pros and cons too.
            text=card.text if len(card.text) > len(data.text) else data.text,
            created_at=data.created_at or card.created_at,
            language=data.language or card.language,
        ))
    return merged


# -- selectors ---------------------------------------------------------------------


def selector_spec(selectors: Mapping[str, Sequence[str] | str]) -> dict[str, Any]:
    """The site's selector table as `EXTRACT_JS` takes it.

    Each entry is one alternative or a list of them; "css @attr" reads an
    attribute, "css" the element's text, "@attr" an attribute of the card
    itself.
    """

    def alternatives(value: Sequence[str] | str) -> list[dict[str, str | None]]:
        items = [value] if isinstance(value, str) else list(value)
        out = []
        for item in items:
            css, _, attr = item.partition("@") if item.startswith("@") or " @" in item else (item, "", "")
            out.append({"css": css.strip(), "attr": attr.strip() or None})
        return out

    return {
        "card": list(selectors["card"]) if not isinstance(selectors["card"], str) else [selectors["card"]],
        "fields": {k: alternatives(v) for k, v in selectors.items() if k not in PAGE_KEYS},
        "page": {k: alternatives(v) for k, v in selectors.items() if k in PAGE_KEYS and k != "card"},
        "botTitles": list(BOT_TITLES),
        "botSelectors": list(BOT_SELECTORS),
        "consentSelectors": list(CONSENT_SELECTORS),
    }


# -- the cursor ----------------------------------------------------------------------


@dataclass
class ReviewCursor:
    """Seen review ids (newest first) plus the horizon; see the module docstring."""

    seen: dict[str, datetime] = field(default_factory=dict)
    horizon: datetime | None = None
    last_parsed: int = 0
    total: int | None = None

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> "ReviewCursor":
        if not data:
            return cls()
        seen: dict[str, datetime] = {}
        for item in data.get("seen") or ():
            when = parse_when(item[1]) if isinstance(item, (list, tuple)) and len(item) == 2 else None
            if when is not None:
                seen[str(item[0])] = when
        return cls(seen, parse_when(data.get("horizon")), int(data.get("last_parsed") or 0), data.get("total"))

    def dump(self) -> dict[str, Any]:
        return {
            "newest": max(self.seen.values()).isoformat() if self.seen else None,
            "seen": [[k, v.isoformat()] for k, v in self.seen.items()],
            "horizon": self.horizon.isoformat() if self.horizon else None,
            "last_parsed": self.last_parsed,
            "total": self.total,
        }

    def watermark(self) -> Watermark:
        """Where the walk back stops: reviews at or before the horizon are history, seen ids are not new."""
        floor = self.horizon + timedelta(microseconds=1) if self.horizon else datetime.min.replace(tzinfo=timezone.utc)
        return Watermark(floor, dict(self.seen))

    def remember(self, reviews: Sequence[Review]) -> None:
        """Add `reviews` (any order), keep the newest SEEN_MAX, move the horizon past what is dropped."""
        merged = {**{r.id: r.created_at for r in reviews if r.created_at}, **self.seen}
        ordered = sorted(merged.items(), key=lambda kv: kv[1], reverse=True)
        kept, dropped = ordered[:SEEN_MAX], ordered[SEEN_MAX:]
        if dropped:
            newest_dropped = dropped[0][1]
            self.horizon = max(self.horizon, newest_dropped) if self.horizon else newest_dropped
        self.seen = dict(kept)


# -- the connector base ----------------------------------------------------------------


class ReviewSiteOptions(BrowserOptions):
    product: str = Field(description="The product on this site (see the connector's docs).")
    max_pages: int = Field(default=10, ge=1, le=200, description="Pages read at most per run when catching up.")
    first_run_pages: int = Field(default=1, ge=1, le=50, description="Pages read on the very first run.")
    first_run_lookback: Duration = lookback_field()


class ReviewSiteConnector(Connector):
    """Fetch loop, health checks and mapping shared by the review-site connectors.

    Subclasses set the class attributes and implement `page_url`,
    `card_review` (one DOM card's raw strings -> `Review`); Trustpilot also
    overrides `embedded` to read `__NEXT_DATA__`.
    """
    sees_replies = True
    pushes_query = False

    display: ClassVar[str] = ""          # "G2"
    default_root: ClassVar[str] = ""     # "https://www.g2.com"
    selectors: ClassVar[Mapping[str, Sequence[str] | str]] = {}
    required: ClassVar[tuple[str, ...]] = ("id", "created_at", "rating")
    Options = ReviewSiteOptions
    options: ReviewSiteOptions

    def __init__(self, options: ReviewSiteOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.label = f"{self.name} monitor {context.monitor!r}"
        self.root = (options.base_url or self.default_root).rstrip("/")
        self._spec = selector_spec(self.selectors)
        self.product_name = ""
        self._pages: dict[int, ParsedPage] = {}  # pages read by this instance (one run), reused by `replies`

    # -- to implement --------------------------------------------------------
    def page_url(self, page: int) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def card_review(self, card: Mapping[str, str | None], page_url: str) -> Review:  # pragma: no cover - interface
        raise NotImplementedError

    def embedded(self, data: Mapping[str, Any], page_url: str) -> "Embedded | str | None":
        """Reviews from embedded app state: `Embedded`, a string saying what is wrong with
        the state, or None for sites without one (G2, Capterra)."""
        return None

    def public_url(self, href: str | None, fallback: str = "") -> str:
        """A permalink on the real site, whatever `base_url` points at (stable ids for the store)."""
        if not href:
            return fallback
        absolute = join_url(self.root + "/", href)
        parts = split_url(absolute)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.default_root.rstrip("/") + path

    # -- fetch ------------------------------------------------------------------
    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        state = ReviewCursor.load(cursor)
        first_run = cursor is None
        budget = self.options.first_run_pages if first_run else self.options.max_pages
        pages: list[ParsedPage] = []
        with self._session() as session:
            catch_up = page_back(lambda number: self._walk_page(session, number or 1, state, pages), state.watermark(),
                                 key=lambda r: r.id, position=_position, max_pages=budget)
            requests = session.count
        read = [review for page in pages for review in page.reviews]
        notes = self._cut_short(state, read, budget, first_run) if catch_up.cut else []
        state.remember(read)
        state.last_parsed = len(pages[0].reviews)
        state.total = pages[0].aggregate.count if pages[0].aggregate.count is not None else state.total
        new = catch_up.items
        if first_run:
            new = recent_only(new, self.context.current_time(), self.options.first_run_lookback)
        brands = self.context.brand_names(self.name)
        # Oldest first; reviews of the same date keep the page's order (read backwards).
        mentions = [self.mention(r, brands) for r in sorted(reversed(new), key=_oldest_first)]
        return FetchResult(mentions=mentions, cursor=state.dump(), requests=requests, notes=notes)

    def _walk_page(self, session: BrowserSession, number: int, state: ReviewCursor, pages: list[ParsedPage]) -> Page[Review]:
        """Page `number` of the newest-first walk (kept in `pages`); a review already seen ends the walk after its page."""
        if number > 1 and self.options.page_delay:
            time.sleep(self.options.page_delay)
        page = self._read(session, number, state)
        if number == 1:
            self._check_ids_known(page, state)
        pages.append(page)
        back_at_seen = any(review.id in state.seen for review in page.reviews)
        return Page(page.reviews, number + 1 if page.has_next and not back_at_seen else None)

    def _cut_short(self, state: ReviewCursor, read: list[Review], budget: int, first_run: bool) -> list[str]:
        """`max_pages` ended the walk before the last seen review: what was not read becomes history
        (the horizon moves to the oldest review read), and a catch-up says so in a note."""
        oldest = min((r.created_at for r in read if r.created_at), default=None)
        if oldest is not None:
            state.horizon = max(state.horizon, oldest) if state.horizon else oldest
        if first_run:
            return []
        return [f"{self.display}: read {budget} page(s) without reaching the last seen review; "
                f"reviews older than {oldest.isoformat() if oldest else 'those'} were skipped (raise `max_pages`)"]

    def replies(self, mention: Mention) -> ReplyStatus:
        """Re-read the newest pages until the review turns up; its vendor-response block is the answer.

        Pages read earlier by this connector instance (the run's fetch,
        earlier checks) are reused, so checking twenty open reviews costs
        a page or two, not twenty. Unknown (None) when the review is not
        found within `max_pages`, or on any error.
        """
        if mention.source != self.name:
            return ReplyStatus(answered=None)
        sessions: list[BrowserSession] = []  # opened only when a page is not in `self._pages`
        try:
            for number in range(1, self.options.max_pages + 1):
                page = self._page_for_replies(number, sessions)
                review = next((r for r in page.reviews if r.id == mention.external_id), None)
                if review is not None:
                    return self._reply_status(review, mention)
                dates = [r.created_at for r in page.reviews if r.created_at]
                older = mention.created_at and dates and min(dates) < mention.created_at - SORT_TOLERANCE
                if older or not page.has_next:
                    break
        except ConnectorError:
            return ReplyStatus(answered=None)
        finally:
            for session in sessions:
                session.close()
        return ReplyStatus(answered=None)

    def _page_for_replies(self, number: int, sessions: list[BrowserSession]) -> ParsedPage:
        """Page `number`, from this run's pages when read already, else through the (one) session in `sessions`."""
        page = self._pages.get(number)
        if page is not None:
            return page
        if not sessions:
            sessions.append(self._session())
        elif self.options.page_delay:
            time.sleep(self.options.page_delay)
        return self._read(sessions[0], number, ReviewCursor())

    def _reply_status(self, review: Review, mention: Mention) -> ReplyStatus:
        if review.replied is None:
            return ReplyStatus(answered=None)
        if not review.replied:
            return ReplyStatus(answered=False, url=mention.url or None)
        # Only the name the page gives the replier: never the product's, which would be a guess shown as fact.
        return ReplyStatus(answered=True, answered_at=review.reply_at, answered_by=review.reply_by or None,
                           url=mention.url or None)

    # -- one page ----------------------------------------------------------------
    def _session(self) -> BrowserSession:
        return BrowserSession(self.context, self.options, self.label)

    def _read(self, session: BrowserSession, number: int, state: ReviewCursor) -> ParsedPage:
        url = self.page_url(number)
        loaded = session.load(url, EXTRACT_JS, self._spec, on_response=self._check_status)
        page = self.parse(loaded, url)
        self.check_health(page, loaded, number, state)
        self._pages[number] = page
        return page

    def parse(self, loaded: LoadedPage, url: str) -> ParsedPage:
        data = loaded.data or {}
        structured, aggregate = json_ld(data.get("jsonld") or [])
        embedded = self.embedded(data, url)
        dom_next = bool((data.get("page") or {}).get("next"))
        notes: list[str] = []
        if isinstance(embedded, str):
            notes.append(embedded)
        elif embedded is not None:
            aggregate = _prefer(embedded.aggregate, aggregate)
        if isinstance(embedded, Embedded) and embedded.reviews:
            reviews = embedded.reviews
            has_next = embedded.has_next if embedded.has_next is not None else dom_next
            source = "__NEXT_DATA__"
        else:
            cards = [self.card_review(card, url) for card in data.get("reviews") or []]
            reviews = merge(cards, structured)
            has_next = dom_next or bool(isinstance(embedded, Embedded) and embedded.has_next)
            source = "json-ld+dom" if structured and cards else "dom"
        if aggregate.count is None:
            aggregate = replace(aggregate, count=_count_from_text((data.get("page") or {}).get("count")))
        self.product_name = aggregate.name or self.product_name or self.options.product
        return ParsedPage(url=loaded.url or url, reviews=reviews, aggregate=aggregate, has_next=has_next,
                          source=source, notes=notes)

    # -- health ---------------------------------------------------------------------
    def _check_status(self, page: LoadedPage) -> None:
        """HTTP-level failures of the review page itself (before parsing)."""
        status = page.status or 0
        if status == 429:
            raise self._status_error(page)
        if page.headers.get("cf-mitigated") == "challenge":
            raise self._bot_error(redact_url(page.url), "a Cloudflare challenge (cf-mitigated: challenge)", status)
        if status == 404:
            raise self._status_error(page)

    def _status_error(self, page: LoadedPage) -> ConnectorError:
        """The shared HTTP error, with what to do about this site."""
        status = page.status or 0
        refused = f"{self.display} refuses this client (bot protection?): try later, another `proxy` or `user_agent`"
        hints = {
            429: f"{self.display} rate-limited earful; earful will come back later",
            404: f"check `product` ({self.options.product!r}) against the product's {self.display} URL",
            401: refused,
            403: refused,
        }
        asked = retry_after_header(page.headers)
        waits = DEFAULT_RETRY_AFTER if status == 429 and asked is None else None
        return error_for_status(self.label, "GET", page.url, status, None, page.headers, hints=hints, retry_after=waits)

    def check_health(self, page: ParsedPage, loaded: LoadedPage, number: int, state: ReviewCursor) -> None:
        data = loaded.data or {}
        shown = redact_url(loaded.url or page.url)
        status = loaded.status or 0
        if data.get("botTitle") or data.get("botMarker"):
            if not page.reviews or status >= 400:
                what = f'"{data["botTitle"]}" page' if data.get("botTitle") else f"a challenge element ({data['botMarker']})"
                raise self._bot_error(shown, what, status)
        if status >= 400:
            raise self._status_error(loaded)
        if not page.reviews:
            self._check_empty(page, data, number, state, shown)
            return
        self._check_fields(page, data, shown)
        self._check_order(page, shown)

    def _check_empty(self, page: ParsedPage, data: Mapping[str, Any], number: int, state: ReviewCursor, shown: str) -> None:
        """A page without reviews passes only when the page itself says the product has none."""
        consent = data.get("consent")
        if consent:
            raise ConnectorError(
                f"{self.label}: a consent overlay ({consent['selector']}, covering {consent['coverage']}% of the window) "
                f"hides the {self.display} reviews at {shown} and no review could be read; earful does not click "
                "consent dialogs: try a `proxy` in a region without the wall"
            )
        says_empty = page.aggregate.count == 0 or (
            not page.aggregate.count and (data.get("page") or {}).get("empty") is not None
        )
        if number == 1 and says_empty and not state.last_parsed:
            return
        evidence = list(page.notes)
        if page.aggregate.count:
            evidence.append(f"the page's AggregateRating says {page.aggregate.count} reviews")
        if number > 1:
            evidence.append(f"page {number - 1} linked to this page")
        if state.last_parsed:
            evidence.append(f"last successful parse: {state.last_parsed} reviews")
        if not evidence:
            evidence.append("the page shows neither reviews nor its 'no reviews yet' marker, so an empty product "
                            "cannot be told from a changed layout")
        raise ConnectorError(
            f"{self.label}: the review page loaded but none of the {len(self._spec['card'])} review selectors "
            f"matched (layout changed?) at {shown}; " + "; ".join(evidence)
        )

    def _check_ids_known(self, page: ParsedPage, state: ReviewCursor) -> None:
        """Reviews we must have seen (dated within what earlier runs read) that none of whose ids we know
        mean the ids changed form: returning them would re-alert a whole page of old reviews."""
        if not state.seen:
            return
        newest = max(state.seen.values())
        known = [r for r in page.reviews if r.created_at and r.created_at < newest
                 and (state.horizon is None or r.created_at > state.horizon)]
        if len(known) >= 3 and not any(r.id in state.seen for r in page.reviews):
            raise ConnectorError(
                f"{self.label}: none of the {len(page.reviews)} review ids at {redact_url(page.url)} is one earlier runs saw, "
                f"although {len(known)} of the reviews are older than the newest seen ({newest.date()}); "
                f"the {self.display} review ids changed form (layout changed? selectors tried: {self._selectors_for('id')}); "
                "nothing was returned, to avoid alerting old reviews again"
            )

    def _check_fields(self, page: ParsedPage, data: Mapping[str, Any], shown: str) -> None:
        for name in self.required:
            missing = [r for r in page.reviews if getattr(r, name) in (None, "")]
            if missing:
                tried = self._selectors_for(name)
                raise ConnectorError(
                    f"{self.label}: {len(missing)} of {len(page.reviews)} reviews at {shown} have no {_FIELD_WORDS.get(name, name)} "
                    f"(read from {page.source}; selectors tried: {tried}); the {self.display} layout changed?"
                )
        if not any(r.text or r.title for r in page.reviews):
            raise ConnectorError(
                f"{self.label}: the reviews at {shown} have neither title nor text (selectors tried: "
                f"{self._selectors_for('text')}); the {self.display} layout changed?"
            )

    def _check_order(self, page: ParsedPage, shown: str) -> None:
        dates = [r.created_at for r in page.reviews if r.created_at]
        for before, after in zip(dates, dates[1:]):
            if after > before + SORT_TOLERANCE:
                raise ConnectorError(
                    f"{self.label}: the reviews at {shown} are not newest first ({after.date()} after {before.date()}); "
                    f"{self.display} ignored the sort parameter? Paging back to the last seen review needs that order"
                )

    def _selectors_for(self, name: str) -> str:
        key = {"created_at": "date"}.get(name, name)
        value = self.selectors.get(key, ())
        items = [value] if isinstance(value, str) else list(value)
        return ", ".join(repr(s) for s in items) or "none"

    def _bot_error(self, shown: str, what: str, status: int) -> ConnectorError:
        return ConnectorError(
            f"{self.label}: {self.display} answered with a bot check instead of the reviews ({what}"
            f"{f', HTTP {status}' if status else ''}) at {shown}; earful does not solve captchas: "
            "try again later, a slower `schedule`, or another `proxy`",
            status=status or None,
        )

    # -- mapping -------------------------------------------------------------------
    def mention(self, review: Review, brands: set[str]) -> Mention:
        raw: dict[str, Any] = {"product": self.options.product, **{k: v for k, v in review.extra.items() if v not in (None, "")}}
        raw["reply_at"] = review.reply_at.isoformat() if review.reply_at else None
        if review.replied:
            raw["reply_by"] = review.reply_by or None
            raw["reply_excerpt"] = review.reply_text[:EXCERPT_CHARS] or None
        return Mention(
            source=self.name,
            external_id=review.id,
            url=review.url,
            author=review.author,
            author_is_brand=review.author.casefold().lstrip("@") in brands,
            title=review.title,
            text=review.text,
            created_at=review.created_at,
            thread_id=review.id,
            kind="review",
            rating=review.rating,
            language=review.language,
            brand_replied=review.replied,
            site=self.product_name or self.options.product,
            raw=raw,
        )

    def close(self) -> None:
        """Nothing to release: the browser belongs to the run (`RunResources`)."""


_FIELD_WORDS = {"id": "review id", "created_at": "date", "rating": "rating"}


_UNDATED = datetime.max.replace(tzinfo=timezone.utc)


def _position(review: Review) -> datetime:
    """Where a review sits in the walk; one without a date is new unless its id was seen."""
    return review.created_at or _UNDATED


def _oldest_first(review: Review) -> datetime:
    return review.created_at or datetime.min.replace(tzinfo=timezone.utc)


def _prefer(first: Aggregate, second: Aggregate) -> Aggregate:
    return Aggregate(
        first.count if first.count is not None else second.count,
        first.rating if first.rating is not None else second.rating,
        first.name or second.name,
    )


def _count_from_text(text: str | None) -> int | None:
    """"1,234 reviews" -> 1234 (the DOM fallback for the review count)."""
    if not text:
        return None
    match = re.search(r"\d[\d,.\s]*", text)
    if not match:
        return None
    digits = re.sub(r"\D", "", match.group(0))
    return int(digits) if digits else None


def first_match(pattern: str, value: str | None) -> str:
    """The first group of `pattern` in `value` ('' when absent)."""
    match = re.search(pattern, value or "")
    return match.group(1) if match else ""
