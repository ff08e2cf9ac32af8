"""A LinkedIn Company Page: comments on its posts, and posts that mention it.

Through LinkedIn's Community Management API (versioned REST under
api.linkedin.com/rest, headers `LinkedIn-Version: 202410` (option
`linkedin_version`) and `X-Restli-Protocol-Version: 2.0.0`, URNs
URL-encoded as Rest.li 2.0 requires):

* the organization's recent posts: `GET /rest/posts?author={org urn}&q=author
  &count={watch_posts}&sortBy=LAST_MODIFIED`;
* which of them got new comments: one batch call,
  `GET /rest/socialMetadata?ids=List({post urn},...)`, whose
  `commentSummary.count` is compared with the last run's;
* the comments of those posts, `GET /rest/socialActions/{post urn}/comments`
  paged by `start`/`count` up to `paging.total`, and the comments on
  comments, `GET /rest/socialActions/{comment urn}/comments` (each with
  `parentComment`), read when a comment's `commentsSummary` moved;
* mentions: `GET /rest/organizationalEntityNotifications?q=criteria&actions=
  List(COMMENT,SHARE_MENTION)&organizationalEntity={org urn}&timeRange=(start:
  ms,end:ms)`. This is the documented "Organization Social Action
  Notifications" pull finder (notifications are kept 60 days). A
  SHARE_MENTION notification names the post that mentions the organization
  (`sourcePost`), which is then read with `GET /rest/posts/{urn}`; a
  COMMENT notification names an organization post that was commented on,
  which is then scanned even when it is older than the `watch_posts`
  newest, so a comment on last year's post is not missed. Choosing this
  finder over searching posts: LinkedIn offers no post search to
  organizations; the notifications are the only documented way to learn
  that someone mentioned the Page. Set `mentions: false` if the token lacks
  `rw_organization_admin`.

No real LinkedIn recording was available while writing this: request and
response shapes follow LinkedIn's documentation (Posts API, Comments API,
Social Metadata API, Organization Social Action Notifications, the error
body `{"status": 401, "serviceErrorCode": 65600, "code":
"REVOKED_ACCESS_TOKEN", "message": ...}`) as closely as possible, and the
fake server in `earful.sandbox.linkedin` implements the same
documented shapes. Expect to verify field names against a live account.

Setting it up. Create an app at developer.linkedin.com, associate it with the
Company Page, and request the Community Management API product (LinkedIn
reviews the use case). A Page ADMINISTRATOR authorizes the app with the
scopes `r_organization_social` (posts and comments; named
`r_organization_social_feed` in newer tiers) and `rw_organization_admin`
(notifications); the three-legged OAuth flow returns an access token valid
for 60 days (and a refresh token valid for a year). Put the token in the
environment as LINKEDIN_TOKEN: `access_token: ${LINKEDIN_TOKEN}`;
`organization` is `urn:li:organization:<id>` (the id is in the Page admin
URL, linkedin.com/company/<id>/admin).

Commenters appear by URN (`urn:li:person:...`): the API does not reveal
members' names to organization apps.

Cost of a poll: 3 requests when nothing happened (posts, socialMetadata,
notifications), plus one per post with new comments and one per comment
with new replies.

Cursor: `{"v": 1, "at": unix time of the run, "posts": W, "threads": {post urn: {"t": created, "n":
comment count, "comments": W, "replies": {comment urn: count}}},
"notifications": W}`, each W a `{"floor", "seen"}` watermark (unix seconds,
see `graph.Watermark`). The first run reads `first_run_lookback`.

Answered: a comment when a comment by the organization (`actor` is the
organization's URN or another brand account from `accounts: linkedin`)
replies to it; a reply when such a reply follows it under the same parent;
a mentioning post when the organization commented on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator

from earful.core import Mention, parse_time, retry_after_header
from earful.core.durations import Duration

from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
    ReplyStatus,
)
from .graph import OVERLAP, Watermark
from .http import HttpClient, error_for_status, redact_url

if TYPE_CHECKING:
    import requests

SOURCE = "linkedin"
SITE = "linkedin.com"
DEFAULT_BASE = "https://api.linkedin.com"
FEED_URL = "https://www.linkedin.com/feed/update/{}/"
ACTIONS = ("COMMENT", "SHARE_MENTION")
WATCH_DAYS = 30
PERMISSION = {"posts": "r_organization_social", "comments": "r_organization_social", "socialMetadata": "r_organization_social",
              "notifications": "rw_organization_admin"}


class LinkedInOptions(ConnectorOptions):
    organization: str = Field(description="The Company Page, urn:li:organization:<id> (a bare id is accepted).")
    access_token: SecretStr = Field(description="OAuth 2.0 access token of a Page admin, e.g. ${LINKEDIN_TOKEN}.")
    linkedin_version: str = Field(default="202410", pattern=r"^\d{6}(\.\d{2})?$", description="LinkedIn-Version header (YYYYMM).")
    watch_posts: int = Field(default=20, ge=1, le=100, description="The organization's newest posts watched for comments.")
    mentions: bool = Field(default=True, description="Read mention notifications (needs rw_organization_admin).")
    first_run_lookback: Duration = Field(default=timedelta(days=1), gt=timedelta(0), description="History read on the first run.")
    page_size: int = Field(default=50, ge=1, le=100, description="`count` per request.")
    max_pages: int = Field(default=10, ge=1, le=500, description="Pages read per list in one run.")

    @field_validator("organization")
    @classmethod
    def _urn(cls, value: str) -> str:
        value = value.strip()
        if value.isdigit():
            return f"urn:li:organization:{value}"
        if not value.startswith(("urn:li:organization:", "urn:li:organizationBrand:")) or not value.rsplit(":", 1)[-1].isdigit():
            raise ValueError("give urn:li:organization:<numeric id> (or just the id)")
        return value


def enc(urn: str) -> str:
    """A URN as Rest.li 2.0 wants it in paths and query values: every reserved character encoded."""
    return quote(urn, safe="")


class LinkedInConnector(Connector):
    name = SOURCE
    sees_replies = True
    pushes_query = False
    Options = LinkedInOptions
    options: LinkedInOptions

    def __init__(self, options: LinkedInOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.label = f"linkedin monitor {context.monitor!r}"
        self.http = HttpClient(options, self.label)
        self.api = (options.base_url or DEFAULT_BASE).rstrip("/") + "/rest"
        self.brands = {options.organization.lower()} | context.brand_names(SOURCE)
        self._token = options.access_token.get_secret_value()

    # -- HTTP --------------------------------------------------------------------
    def _get(self, path_and_query: str, *, what: str, kind: str) -> dict[str, Any]:
        url = f"{self.api}/{path_and_query}"
        headers = {
            "Authorization": f"Bearer {self._token}",
            "LinkedIn-Version": self.options.linkedin_version,
            "X-Restli-Protocol-Version": "2.0.0",
            "Accept": "application/json",
        }
        response = self.http.get(url, headers=headers, accept=tuple(range(400, 600)))
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise self._error(response, body, what, kind)
        if not isinstance(body, dict):
            raise ConnectorError(
                f"{self.label}: {what}: {redact_url(response.url)} answered {response.status_code} but the body is not a "
                f"JSON object ({response.headers.get('Content-Type', 'no content-type')}, {len(response.content)} bytes); "
                "the API may have changed or a proxy answered",
                status=response.status_code,
            )
        return body

    def _error(self, response: "requests.Response", body: Any, what: str, kind: str) -> ConnectorError:
        """The shared HTTP error, worded with what LinkedIn's error body and the endpoint tell us."""
        status = response.status_code
        body = body if isinstance(body, dict) else {}
        code = str(body.get("code") or "")
        service = body.get("serviceErrorCode")
        message = str(body.get("message") or "").replace(self._token, "***")[:300]
        ids = ", ".join(x for x in (code, f"serviceErrorCode {service}" if service is not None else "") if x)
        hints = self._hints(status, code, service, kind)
        return error_for_status(
            f"{self.label}: {what}", "GET", response.url, status, None, response.headers,
            detail="; ".join(x for x in (ids, f"LinkedIn: {message}" if message else "") if x) or None,
            hints=hints,
            retry_after=_retry_after(response.headers, message) if status == 429 else None,
        )

    def _hints(self, status: int, code: str, service: Any, kind: str) -> dict[int, str]:
        """What to do, per status: which token, which scope, which option."""
        needed = PERMISSION.get(kind, "r_organization_social")
        hints = {
            401: _token_advice(code, service),
            429: "rate limited by LinkedIn; earful comes back in {retry_after}s",
            403: f"access denied: the token needs the `{needed}` scope and its member an ADMINISTRATOR role "
                 f"on {self.options.organization}" + ("; or set `mentions: false`" if kind == "notifications" else ""),
            404: "not found; check `organization`",
            500: f"LinkedIn had a server error (HTTP {status}); earful retries on the next run",
        }
        if status == 426 or ("VERSION" in code and status not in (401, 429)):
            hints[status] = (f"LinkedIn-Version {self.options.linkedin_version} is not active; "
                             "set `linkedin_version` to a current YYYYMM version")
        return hints

    def _collection(self, base: str, *, what: str, kind: str, notes: list[str] | None = None) -> list[dict[str, Any]]:
        """Every element of a start/count collection, following `paging.total` (or a short page) up to `max_pages`."""
        elements: list[dict[str, Any]] = []
        start = 0
        joiner = "&" if "?" in base else "?"
        for n in range(self.options.max_pages):
            body = self._get(f"{base}{joiner}start={start}&count={self.options.page_size}", what=what, kind=kind)
            page = body.get("elements")
            if not isinstance(page, list) or not all(isinstance(e, dict) for e in page):
                raise ConnectorError(f"{self.label}: {what}: the answer has no `elements` list; the API may have changed")
            elements += page
            paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
            total = paging.get("total")
            start += len(page)
            if not page or (isinstance(total, int) and start >= total) or (not isinstance(total, int) and len(page) < self.options.page_size):
                return elements
        if notes is not None:
            notes.append(f"LinkedIn {what}: stopped after {self.options.max_pages} pages (max_pages); the rest was not read")
        return elements

    # -- fetch ---------------------------------------------------------------------
    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        state = cursor if isinstance(cursor, dict) and cursor.get("v") == 1 else {}
        now = int(self.context.current_time().timestamp())
        start = now - int(self.options.first_run_lookback.total_seconds())
        before = self.http.count
        notes: list[str] = []
        mentions: list[Mention] = []

        commented: set[str] = set()
        next_cursor: dict[str, Any] = {"v": 1}
        if self.options.mentions:
            notifications_wm = Watermark.load(state.get("notifications"), start)
            found, commented = self._notifications(notifications_wm, now, notes)
            mentions += found
            notifications_wm.advance()
            next_cursor["notifications"] = notifications_wm.dump()

        posts_wm = Watermark.load(state.get("posts"), start)
        last_run = int(state["at"]) if isinstance(state.get("at"), int) else start + OVERLAP
        threads, found = self._posts_and_comments(posts_wm, state.get("threads") or {}, commented, last_run - OVERLAP, now, notes)
        mentions += found
        next_cursor.update(at=now, posts=posts_wm.dump(), threads=threads)
        mentions.sort(key=lambda m: (m.created_at or datetime.min.replace(tzinfo=timezone.utc), m.external_id))
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.http.count - before, notes=notes)

    def _posts_and_comments(self, posts_wm: Watermark, previous: Mapping[str, Any], commented: set[str], new_thread_floor: int,
                            now: int, notes: list[str]) -> tuple[dict[str, Any], list[Mention]]:
        """New organization posts, and new comments on watched posts whose comment count moved.

        A post seen for the first time (new, or older and named by a COMMENT
        notification) has its comments read from the previous run on.
        """
        posts = self._recent_posts()
        watched = {str(p["id"]): p for p in posts}
        # Older posts stay watched while they are in the cursor; notifications add commented ones.
        for urn in list(previous) + sorted(commented):
            watched.setdefault(urn, {"id": urn})
        counts = self._comment_counts(list(watched)) if watched else {}

        mentions: list[Mention] = []
        threads: dict[str, Any] = {}
        for urn, post in watched.items():
            created = _seconds(post.get("createdAt") or post.get("publishedAt"))
            if created is not None and posts_wm.is_new(urn, created) and post.get("lifecycleState", "PUBLISHED") == "PUBLISHED":
                posts_wm.add(urn, created)
                mentions.append(self._post_mention(post, edge="posts"))
            prior = previous.get(urn) if isinstance(previous.get(urn), Mapping) else None
            threads[urn], found = self._scan_thread(urn, created, prior, counts.get(urn), urn in commented, new_thread_floor, notes)
            mentions += found
        # The newest posts, those just commented on, and the last 30 days' stay watched: the list stays bounded.
        keep = {str(p["id"]) for p in posts} | commented
        threads = {u: s for u, s in threads.items() if u in keep or s.get("t", 0) >= now - WATCH_DAYS * 86400}
        posts_wm.advance()
        return threads, mentions

    def _recent_posts(self) -> list[dict[str, Any]]:
        """The organization's `watch_posts` most recently modified posts."""
        body = self._get(f"posts?author={enc(self.options.organization)}&q=author&count={self.options.watch_posts}&sortBy=LAST_MODIFIED",
                         what="reading the organization's posts", kind="posts")
        return [p for p in body.get("elements") or [] if isinstance(p, dict) and p.get("id")]

    def _scan_thread(self, urn: str, created: int | None, prior: Mapping[str, Any] | None, count: int | None, commented: bool,
                     new_thread_floor: int, notes: list[str]) -> tuple[dict[str, Any], list[Mention]]:
        """One post's new comments (read only when its count moved or a notification named it) and its next thread state."""
        comments_wm = Watermark.load(prior.get("comments") if prior else None, new_thread_floor)
        reply_counts: dict[str, int] = dict(prior.get("replies") or {}) if prior else {}
        mentions: list[Mention] = []
        if _thread_changed(prior, count, commented):
            thread = self._thread(urn, reply_counts, notes)
            mentions = [self._comment_mention(c, urn, thread) for c in comments_wm.take(thread, _comment_urn, _c_seconds)]
            comments_wm.advance()
        first = created if created is not None else int((prior or {}).get("t", 0))
        state = {"t": first, "n": count if count is not None else (prior or {}).get("n"),
                 "comments": comments_wm.dump(), "replies": reply_counts}
        return state, mentions

    def _comment_counts(self, urns: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for chunk in (urns[i : i + 50] for i in range(0, len(urns), 50)):
            body = self._get(f"socialMetadata?ids=List({','.join(enc(u) for u in chunk)})", what="reading comment counts",
                             kind="socialMetadata")
            results = body.get("results") if isinstance(body.get("results"), dict) else {}
            for urn, meta in results.items():
                summary = meta.get("commentSummary") if isinstance(meta, dict) else None
                if isinstance(summary, dict) and isinstance(summary.get("count"), int):
                    counts[urn] = summary["count"]
        return counts

    def _thread(self, post_urn: str, reply_counts: dict[str, int], notes: list[str]) -> list[dict[str, Any]]:
        """The post's comments, and the comments on those comments whose count moved (updates `reply_counts`)."""
        top = self._collection(f"socialActions/{enc(post_urn)}/comments", what="reading comments", kind="comments", notes=notes)
        thread = list(top)
        for comment in top:
            curn = _comment_urn(comment)
            summary = comment.get("commentsSummary") if isinstance(comment.get("commentsSummary"), dict) else {}
            total = summary.get("aggregatedTotalComments", summary.get("totalFirstLevelComments", 0))
            if curn and isinstance(total, int) and total and total != reply_counts.get(curn):
                thread += self._collection(f"socialActions/{enc(curn)}/comments", what="reading replies", kind="comments", notes=notes)
            if curn and isinstance(total, int):
                reply_counts[curn] = total
        live = {_comment_urn(c) for c in top}
        for curn in [c for c in reply_counts if c not in live]:  # deleted comments
            del reply_counts[curn]
        return thread

    def _notifications(self, wm: Watermark, now: int, notes: list[str]) -> tuple[list[Mention], set[str]]:
        org = enc(self.options.organization)
        base = (f"organizationalEntityNotifications?q=criteria&actions=List({','.join(ACTIONS)})&organizationalEntity={org}"
                f"&timeRange=(start:{wm.floor * 1000},end:{(now + 60) * 1000})")
        mentions: list[Mention] = []
        commented: set[str] = set()
        elements = self._collection(base, what="reading mention notifications", kind="notifications", notes=notes)
        oldest_first = sorted(elements, key=lambda e: e.get("lastModifiedAt") or 0)
        for note in wm.take(oldest_first, lambda e: str(e.get("notificationId") or ""), lambda e: _seconds(e.get("lastModifiedAt"))):
            source_post = str(note.get("sourcePost") or note.get("generatedActivity") or "")
            if note.get("action") == "COMMENT" and source_post:
                commented.add(source_post)
            elif note.get("action") == "SHARE_MENTION" and source_post:
                mentions.append(self._mentioning_post(source_post, note, notes))
        return mentions, commented

    def _mentioning_post(self, urn: str, note: Mapping[str, Any], notes: list[str]) -> Mention:
        try:
            post = self._get(f"posts/{enc(urn)}", what="reading a post that mentions the organization", kind="posts")
        except ConnectorError as exc:
            if exc.status not in (403, 404):
                raise
            notes.append(f"LinkedIn post {urn} mentions the organization but cannot be read (HTTP {exc.status}); stored without its text")
            post = {"id": urn, "createdAt": note.get("lastModifiedAt")}
        return self._post_mention(post, edge="mention", notification=str(note.get("notificationId") or ""))

    # -- mapping -----------------------------------------------------------------------
    def _is_brand(self, actor: Any) -> bool:
        return isinstance(actor, str) and actor.lower() in self.brands

    def _post_mention(self, post: Mapping[str, Any], *, edge: str, notification: str = "") -> Mention:
        urn = str(post["id"])
        author = str(post.get("author") or "")
        article = ((post.get("content") or {}).get("article")) if isinstance(post.get("content"), dict) else None
        link = str((article or {}).get("source") or "")
        return Mention(
            source=SOURCE,
            external_id=urn,
            url=FEED_URL.format(urn),
            author=author,
            author_is_brand=self._is_brand(author),
            title=str((article or {}).get("title") or ""),
            text=_commentary(post.get("commentary")),
            created_at=_time(post.get("createdAt") or post.get("publishedAt")),
            thread_id=urn,
            kind="post",
            site=SITE,
            link_url=link,
            raw={"edge": edge, "notification": notification, "visibility": post.get("visibility"),
                 "edited": bool((post.get("lifecycleStateInfo") or {}).get("isEditedByAuthor"))},
        )

    def _comment_mention(self, comment: Mapping[str, Any], post_urn: str, thread: list[dict[str, Any]]) -> Mention:
        curn = _comment_urn(comment)
        actor = str(comment.get("actor") or "")
        parent = str(comment.get("parentComment") or "") or None
        created = _seconds((comment.get("created") or {}).get("time")) or 0
        if parent:
            answer = self._first_answer(thread, lambda c: c.get("parentComment") == parent and _c_time(c) > created)
        else:
            answer = self._first_answer(thread, lambda c: c.get("parentComment") == curn)
        is_brand = self._is_brand(actor)
        message = comment.get("message") if isinstance(comment.get("message"), dict) else {}
        url = FEED_URL.format(post_urn) + f"?commentUrn={enc(parent or curn)}" + (f"&replyUrn={enc(curn)}" if parent else "")
        return Mention(
            source=SOURCE,
            external_id=curn,
            url=url,
            author=actor,
            author_is_brand=is_brand,
            text=str(message.get("text") or "").strip() or ("[image]" if comment.get("content") else ""),
            created_at=_time((comment.get("created") or {}).get("time")),
            thread_id=post_urn,
            parent_id=parent or post_urn,
            kind="reply" if parent else "comment",
            brand_replied=None if is_brand else answer is not None,
            site=SITE,
            raw=_answer_raw(answer) | {"edge": "comments", "object": comment.get("object"), "agent": comment.get("agent"),
                                       "edited": _c_time(comment, "lastModified") > created},
        )

    def _first_answer(self, comments: Iterable[Mapping[str, Any]], where: Any) -> Mapping[str, Any] | None:
        answers = [c for c in comments if self._is_brand(c.get("actor")) and where(c) and _c_time(c)]
        return min(answers, key=_c_time) if answers else None

    def verify(self) -> None:
        """`earful check --online`: one post (token, version, r_organization_social) and, with mentions, one notification."""
        org = enc(self.options.organization)
        self._get(f"posts?author={org}&q=author&count=1", what="reading the organization's posts", kind="posts")
        if self.options.mentions:
            self._get(f"organizationalEntityNotifications?q=criteria&actions=List({','.join(ACTIONS)})&organizationalEntity={org}"
                      "&start=0&count=1", what="reading mention notifications", kind="notifications")

    # -- replies -----------------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """The organization's earliest comment answering `mention`; unknown on any failure."""
        if mention.source != SOURCE or mention.author_is_brand:
            return ReplyStatus(answered=None)
        created = int(mention.created_at.timestamp()) if mention.created_at else 0
        if mention.kind == "comment":
            target, where = mention.external_id, (lambda c: True)
        elif mention.kind == "reply" and mention.parent_id:
            target, where = mention.parent_id, (lambda c: _c_time(c) > created)
        elif mention.kind == "post":
            target, where = mention.external_id, (lambda c: not c.get("parentComment"))
        else:
            return ReplyStatus(answered=None)
        notes: list[str] = []
        try:
            comments = self._collection(f"socialActions/{enc(target)}/comments", what="checking replies", kind="comments", notes=notes)
        except ConnectorError:
            return ReplyStatus(answered=None)
        if notes:  # capped: an answer may sit beyond what was read
            return ReplyStatus(answered=None)
        answer = self._first_answer(comments, where)
        if answer is None:
            return ReplyStatus(answered=False)
        curn = _comment_urn(answer)
        post = mention.thread_id or mention.external_id
        return ReplyStatus(answered=True, answered_at=_time((answer.get("created") or {}).get("time")),
                           answered_by=str(answer.get("actor") or ""),
                           url=FEED_URL.format(post) + f"?commentUrn={enc(target if mention.kind != 'post' else curn)}")

    def close(self) -> None:
        self.http.close()


# -- helpers ---------------------------------------------------------------------------


def _seconds(ms: Any) -> int | None:
    return int(ms) // 1000 if isinstance(ms, (int, float)) and not isinstance(ms, bool) else None


def _time(ms: Any) -> datetime | None:
    """LinkedIn's epoch milliseconds as an aware UTC datetime."""
    return parse_time(ms / 1000) if isinstance(ms, (int, float)) and not isinstance(ms, bool) else None


def _thread_changed(prior: Mapping[str, Any] | None, count: int | None, commented: bool) -> bool:
    """Whether a post's comments must be read: a notification named it, or its comment count moved."""
    if commented:
        return True
    if count is None:
        return False  # socialMetadata did not answer for it: try again next run
    return count != prior.get("n") if prior else bool(count)


def _comment_urn(comment: Mapping[str, Any]) -> str:
    return str(comment.get("$URN") or comment.get("commentUrn") or "")


def _c_seconds(comment: Mapping[str, Any]) -> int | None:
    return _seconds((comment.get("created") or {}).get("time"))


def _c_time(comment: Mapping[str, Any], key: str = "created") -> int:
    return _seconds((comment.get(key) or {}).get("time")) or 0


def _commentary(value: Any) -> str:
    """Post commentary in LinkedIn's "little text" format: mentions as @[Name](urn), escaped reserved characters."""
    import re

    text = str(value or "")
    text = re.sub(r"@\[([^\]]*)\]\(urn:li:[^)]*\)", r"@\1", text)
    text = re.sub(r"\{hashtag\|\\?#\|([^}]*)\}", r"#\1", text)
    return re.sub(r"\\([\\|{}@\[\]()<>#*_~])", r"\1", text).strip()


def _token_advice(code: str, service: Any) -> str:
    """What to do about a 401, from LinkedIn's error code or its numeric serviceErrorCode."""
    if code == "REVOKED_ACCESS_TOKEN" or service == 65600:
        return "the access token was revoked: have a Page admin authorize the app again and put the new token in the environment"
    if code == "EXPIRED_ACCESS_TOKEN" or service == 65601:
        return "the access token expired (LinkedIn tokens last 60 days): refresh it or authorize the app again"
    return "the access token is invalid: check `access_token` (a Page admin's OAuth token)"


def _retry_after(headers: Mapping[str, str], message: str) -> float:
    """Retry-After if sent; LinkedIn's limits are daily, so otherwise wait for the next UTC day."""
    asked = retry_after_header(headers)
    if asked is not None:
        return max(1.0, asked)
    if "DAY" in message.upper():
        now = datetime.now(timezone.utc)
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return max(60.0, (midnight - now).total_seconds())
    return 3600.0


def _answer_raw(answer: Mapping[str, Any] | None) -> dict[str, Any]:
    if answer is None:
        return {}
    when = _time((answer.get("created") or {}).get("time"))
    return {"reply_at": when.isoformat() if when else None, "reply_by": str(answer.get("actor") or ""),
            "reply_id": _comment_urn(answer)}


CONNECTOR = LinkedInConnector
