"""A Facebook Page: posts, visitor posts, comments, tags, recommendations and (optionally) Messenger.

What it watches, through the Graph API (`api_version`, default v21.0):

* posts on the Page, the Page's own and visitors' (`/{page-id}/feed`,
  `/{page-id}/visitor_posts`);
* comments and replies on those posts (`/{post-id}/comments?filter=stream&
  order=reverse_chronological`), newest first, read until the previous
  run's watermark;
* posts elsewhere that tag the Page (`/{page-id}/tagged`);
* Page recommendations (`/{page-id}/ratings`: `recommendation_type`,
  `review_text`);
* with `messenger: true`, Messenger conversations waiting for a Page reply
  (`/{page-id}/conversations?fields=messages{from,message,created_time}`):
  the customer messages after the Page's last message.

Setting it up (tokens and permissions). Create a Meta app (developers.facebook.com,
type "Business"), add "Facebook Login for Business", and have a Page admin
grant `pages_show_list`, `pages_read_engagement` and `pages_read_user_content`
(plus `pages_messaging` for `messenger: true`; `pages_manage_metadata` is
needed by some Pages for `tagged`). Outside development mode these need App
Review. Get a long-lived user token (Graph API Explorer or the OAuth flow,
then `GET /oauth/access_token?grant_type=fb_exchange_token`), then
`GET /me/accounts` for the Page's own `access_token`: a Page token derived
from a long-lived user token does not expire. Put it in the environment as
FACEBOOK_PAGE_TOKEN and reference it: `page_token: ${FACEBOOK_PAGE_TOKEN}`;
`page_id` is the numeric Page id (Page > About > Page transparency, or
`/me/accounts`). If the app requires it, `app_secret: ${FACEBOOK_APP_SECRET}`
adds the `appsecret_proof` to every call.

Cost of a poll. One request per enabled edge (feed, visitor_posts, tagged,
ratings, conversations: 4 by default, 5 with Messenger) when nothing
happened. A post's `updated_time` moves when it is edited or commented on,
so comments are only read for posts whose `updated_time` moved since the
last look and that have comments at all (`comments.summary.total_count`,
asked for in the same listing); posts older than `comment_window` (default 14 days) are no
longer watched for new comments.

Cursor. `{"v": 1, "posts": W, "threads": {post id: {"t": created, "u":
updated_time seen, "s": when scanned, "comments": W}}, "tagged": W,
"ratings": W, "messenger": W}` where each W is a watermark `{"floor": unix
time, "seen": {id: time}}`: everything older than `floor` was returned,
and ids at or after it are remembered, so items that show up late with a
timestamp up to 15 minutes old are still returned, none twice. The first
run reads `first_run_lookback` (default 1 day). After downtime each edge is
paged back to its watermark, at most `max_pages` pages per edge and per
post; hitting that cap is reported in the run's notes.

Answered. A comment counts as answered when the Page itself (`from.id` is
the Page id, or one of the brand's facebook accounts) replied to it; a
visitor or tagged post when the Page commented on it; a reply when the Page
replied later in the same thread; a Messenger message when a Page message
follows it. `brand_replied` is set from the fetched thread; `replies()`
asks Graph again. Recommendations: answered when the Page commented on the
recommendation's story.

Hidden comments (hidden by the Page) are not returned. Graph leaves out
`from` for some people's comments depending on their privacy settings and
the app's review status; such mentions have an empty author.

Not covered: edits of posts and comments already returned (Graph gives no
edit time for comments), and comments under posts that tag the Page
(another owner's post; `replies()` still looks when the token can see it).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl

from pydantic import Field

from earful.core import Mention, parse_time

from .base import Connector, ConnectorContext, ConnectorError, FetchResult, ReplyStatus
from .graph import GraphOptions, Watermark, epoch, first_line, is_gone, young_threads
from .http import split_url

SOURCE = "facebook"
SITE = "facebook.com"
WEB = "https://www.facebook.com"
TOKEN_ADVICE = "the Page token is invalid or expired (code 190): generate a new long-lived Page token"

POST_FIELDS = (
    "id,message,story,created_time,updated_time,permalink_url,from{id,name},status_type,is_hidden,"
    "attachments{type,url,unshimmed_url,title},comments.filter(stream).limit(0).summary(true)"
)
COMMENT_FIELDS = "id,message,created_time,from{id,name},parent{id},permalink_url,comment_count,is_hidden,attachment{type,url,title}"
RATING_FIELDS = "created_time,recommendation_type,review_text,rating,has_rating,has_review,reviewer{id,name},open_graph_story{id}"
CONVERSATION_FIELDS = "id,link,updated_time,messages{id,from,message,created_time}"

PERMISSIONS = {
    "feed": "pages_read_engagement",
    "visitor_posts": "pages_read_user_content",
    "comments": "pages_read_user_content",
    "tagged": "pages_read_user_content",
    "ratings": "pages_read_user_content",
    "conversations": "pages_messaging",
}


class FacebookOptions(GraphOptions):
    page_id: str = Field(pattern=r"^\d+$", description="The numeric Page id.")
    visitor_posts: bool = Field(default=True, description="Also read /visitor_posts (posts by others on the Page).")
    tagged: bool = Field(default=True, description="Read posts that tag the Page.")
    ratings: bool = Field(default=True, description="Read Page recommendations.")
    messenger: bool = Field(default=False, description="Read Messenger conversations waiting for a reply (pages_messaging).")


class FacebookConnector(Connector):
    name = SOURCE
    sees_replies = True
    pushes_query = False
    Options = FacebookOptions
    options: FacebookOptions

    def __init__(self, options: FacebookOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.graph = options.graph_client(f"facebook monitor {context.monitor!r}", TOKEN_ADVICE)
        self.brand_ids = {options.page_id} | context.brand_names(SOURCE)

    # -- fetch ------------------------------------------------------------------
    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        state = cursor if isinstance(cursor, dict) and cursor.get("v") == 1 else {}
        now = int(self.context.current_time().timestamp())
        start = now - int(self.options.first_run_lookback.total_seconds())
        before = self.graph.count
        notes: list[str] = []
        mentions: list[Mention] = []

        posts_wm = Watermark.load(state.get("posts"), start)
        threads, thread_mentions = self._posts_and_comments(posts_wm, state.get("threads") or {}, now, notes)
        mentions += thread_mentions
        next_cursor: dict[str, Any] = {"v": 1, "posts": posts_wm.dump(), "threads": threads}
        for edge, enabled, read in (
            ("tagged", self.options.tagged, self._tagged),
            ("ratings", self.options.ratings, self._ratings),
            ("messenger", self.options.messenger, self._messenger),
        ):
            if enabled:
                wm = Watermark.load(state.get(edge), start)
                mentions += read(wm, notes)
                wm.advance()
                next_cursor[edge] = wm.dump()
        mentions.sort(key=lambda m: (m.created_at or datetime.min.replace(tzinfo=timezone.utc), m.external_id))
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.graph.count - before, notes=notes + self.graph.notes)

    def _posts_and_comments(
        self, posts_wm: Watermark, previous: Mapping[str, Any], now: int, notes: list[str]
    ) -> tuple[dict[str, Any], list[Mention]]:
        """New posts on the Page, and new comments on every watched post whose `updated_time` moved."""
        window_start = now - int(self.options.comment_window.total_seconds())
        posts = self._listed_posts(min(posts_wm.floor, window_start), notes)
        mentions: list[Mention] = []
        threads: dict[str, Any] = {}
        for pid, (edge, post) in sorted(posts.items(), key=lambda kv: (epoch(kv[1][1].get("created_time")) or 0, kv[0])):
            created = epoch(post.get("created_time"))
            if created is None:
                continue
            prior = previous.get(pid) if isinstance(previous.get(pid), Mapping) else None
            threads[pid], comments, found = self._scan_post(pid, post, created, prior, posts_wm.floor, now, notes)
            if posts_wm.is_new(pid, created):
                posts_wm.add(pid, created)
                if not post.get("is_hidden"):
                    mentions.append(self._post_mention(post, edge, comments))
            mentions += found
        threads |= young_threads(previous, threads, window_start)
        posts_wm.advance()
        return threads, mentions

    def _listed_posts(self, since: int, notes: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Posts on the Page's feed (and visitor posts) since `since`, by id, with the edge that listed them first."""
        posts: dict[str, tuple[str, dict[str, Any]]] = {}
        for edge in ["feed"] + (["visitor_posts"] if self.options.visitor_posts else []):
            params = {"fields": POST_FIELDS, "since": since}
            for post in self._read(edge, f"{self.options.page_id}/{edge}", params, Watermark(since), notes):
                posts.setdefault(str(post["id"]), (edge, post))
        return posts

    def _scan_post(self, pid: str, post: dict[str, Any], created: int, prior: Mapping[str, Any] | None, default_floor: int,
                   now: int, notes: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]], list[Mention]]:
        """A post's next thread state, its comments as read (only when its `updated_time` moved) and the new ones' mentions."""
        updated = max(epoch(post.get("updated_time")) or created, created)
        comments_wm = Watermark.load(prior.get("comments") if prior else None, default_floor)
        if prior:
            changed = updated > int(prior.get("u", 0)) or updated >= int(prior.get("s", 0)) - 1
        else:
            changed = updated >= comments_wm.floor
        comments = self._comments(pid, comments_wm.floor, notes) if changed and _comment_total(post) != 0 else []
        title = first_line(_post_text(post))
        fresh = comments_wm.take(reversed(comments), _id, _created)  # oldest first
        mentions = [self._comment_mention(c, pid, title, comments) for c in fresh if not c.get("is_hidden")]
        comments_wm.advance()
        if changed or prior is None:
            state = {"t": created, "u": updated, "s": now}
        else:
            state = {"t": created, "u": int(prior.get("u", updated)), "s": int(prior.get("s", now))}
        return state | {"comments": comments_wm.dump()}, comments, mentions

    def _read(self, edge: str, path: str, params: Mapping[str, Any], watermark: Watermark, notes: list[str],
              time_key: str = "created_time", key: Any = None) -> list[dict[str, Any]]:
        """New items of an edge, newest first, down to `watermark`'s floor (see `GraphClient.newest_first`)."""
        return self.graph.newest_first(path, {**params, "limit": self.options.page_size}, watermark=watermark, notes=notes,
                                       what=f"Facebook {edge}", permission=PERMISSIONS.get(edge),
                                       max_pages=self.options.max_pages, time_key=time_key, key=key)

    def _comments(self, post_id: str, floor: int, notes: list[str]) -> list[dict[str, Any]]:
        """Comments and replies on a post, newest first, down to `floor`."""
        params = {"filter": "stream", "order": "reverse_chronological", "fields": COMMENT_FIELDS}
        try:
            return self._read("comments", f"{post_id}/comments", params, Watermark(floor), notes)
        except ConnectorError as exc:
            if not is_gone(exc):
                raise
            return []  # deleted since the listing: nothing to read, and no reason to fail the run

    def _tagged(self, wm: Watermark, notes: list[str]) -> list[Mention]:
        params = {"fields": POST_FIELDS.replace(",is_hidden", ""), "since": wm.floor}
        found = self._read("tagged", f"{self.options.page_id}/tagged", params, wm, notes)
        return [self._post_mention(post, "tagged", None) for post in reversed(found)]

    def _ratings(self, wm: Watermark, notes: list[str]) -> list[Mention]:
        found = self._read("ratings", f"{self.options.page_id}/ratings", {"fields": RATING_FIELDS}, wm, notes, key=rating_id)
        return [self._rating_mention(rating, rating_id(rating)) for rating in reversed(found)]

    def _messenger(self, wm: Watermark, notes: list[str]) -> list[Mention]:
        """Customer messages after the Page's last message, in conversations that moved since the watermark."""
        params = {"platform": "messenger", "fields": CONVERSATION_FIELDS}
        mentions = []
        for conversation in self._read("conversations", f"{self.options.page_id}/conversations", params, Watermark(wm.floor), notes,
                                       time_key="updated_time"):
            messages = ((conversation.get("messages") or {}).get("data")) or []
            waiting = []
            for message in messages:  # newest first
                if self._is_brand((message.get("from") or {}).get("id")):
                    break
                waiting.append(message)
            mentions += [self._message_mention(m, conversation) for m in wm.take(reversed(waiting), _id, _created)]
        return mentions

    # -- mapping ------------------------------------------------------------------
    def _is_brand(self, from_id: Any) -> bool:
        return from_id is not None and str(from_id).lower() in self.brand_ids

    def _post_mention(self, post: Mapping[str, Any], edge: str, comments: list[dict[str, Any]] | None) -> Mention:
        pid = str(post["id"])
        author = post.get("from") or {}
        is_brand = self._is_brand(author.get("id"))
        answer = None if comments is None or is_brand else self._first_answer(comments, lambda c: not c.get("parent"))
        return Mention(
            source=SOURCE,
            external_id=pid,
            url=str(post.get("permalink_url") or f"{WEB}/{pid}"),
            author=str(author.get("name") or ""),
            author_is_brand=is_brand,
            text=_post_text(post),
            created_at=parse_time(post.get("created_time")),
            thread_id=pid,
            kind="post",
            brand_replied=None if comments is None or is_brand else answer is not None,
            site=SITE,
            link_url=_shared_link(post),
            raw=_answer_raw(answer) | {"edge": edge, "from_id": str(author.get("id") or ""), "status_type": post.get("status_type")},
        )

    def _comment_mention(self, comment: Mapping[str, Any], post_id: str, title: str, thread: list[dict[str, Any]]) -> Mention:
        cid = str(comment["id"])
        author = comment.get("from") or {}
        parent = str((comment.get("parent") or {}).get("id") or "") or None
        created = epoch(comment.get("created_time")) or 0
        is_brand = self._is_brand(author.get("id"))
        if parent:  # a reply: answered by a later Page reply in the same thread
            answer = self._first_answer(thread, lambda c: _parent(c) == parent and (epoch(c.get("created_time")) or 0) > created)
        else:
            answer = self._first_answer(thread, lambda c: _parent(c) == cid)
        attachment = comment.get("attachment") or {}
        return Mention(
            source=SOURCE,
            external_id=cid,
            url=str(comment.get("permalink_url") or f"{WEB}/{cid}"),
            author=str(author.get("name") or ""),
            author_is_brand=is_brand,
            title=title,
            text=_with_attachment(str(comment.get("message") or ""), attachment),
            created_at=parse_time(comment.get("created_time")),
            thread_id=post_id,
            parent_id=parent or post_id,
            kind="reply" if parent else "comment",
            brand_replied=None if is_brand else answer is not None,
            site=SITE,
            link_url=_unwrap(str(attachment.get("url") or "")) if attachment.get("type") == "share" else "",
            raw=_answer_raw(answer) | {"edge": "comments", "post_id": post_id, "from_id": str(author.get("id") or ""),
                                       "comment_count": comment.get("comment_count")},
        )

    def _rating_mention(self, rating: Mapping[str, Any], rid: str) -> Mention:
        story = str((rating.get("open_graph_story") or {}).get("id") or "")
        reviewer = rating.get("reviewer") or {}
        recommendation = str(rating.get("recommendation_type") or "")
        title = {"positive": "Recommends", "negative": "Does not recommend"}.get(recommendation, "Rating")
        stars = rating.get("rating") if rating.get("has_rating", True) else None
        return Mention(
            source=SOURCE,
            external_id=rid,
            url=f"{WEB}/{story}" if story else f"{WEB}/{self.options.page_id}/reviews",
            author=str(reviewer.get("name") or ""),
            title=title,
            text=str(rating.get("review_text") or ""),
            created_at=parse_time(rating.get("created_time")),
            thread_id=rid,
            kind="review",
            rating=float(stars) if isinstance(stars, (int, float)) and not isinstance(stars, bool) else None,
            site=SITE,
            raw={"edge": "ratings", "recommendation_type": recommendation, "story_id": story, "reviewer_id": str(reviewer.get("id") or "")},
        )

    def _message_mention(self, message: Mapping[str, Any], conversation: Mapping[str, Any]) -> Mention:
        sender = message.get("from") or {}
        link = str(conversation.get("link") or "")
        return Mention(
            source=SOURCE,
            external_id=str(message["id"]),
            url=f"{WEB}{link}" if link.startswith("/") else f"{WEB}/{self.options.page_id}/inbox",
            author=str(sender.get("name") or ""),
            text=str(message.get("message") or ""),
            created_at=parse_time(message.get("created_time")),
            thread_id=str(conversation.get("id") or ""),
            kind="message",
            brand_replied=False,
            site=SITE,
            raw={"edge": "conversations", "conversation_id": str(conversation.get("id") or ""), "from_id": str(sender.get("id") or "")},
        )

    def _first_answer(self, comments: Iterable[Mapping[str, Any]], where: Any) -> Mapping[str, Any] | None:
        answers = [c for c in comments if self._is_brand((c.get("from") or {}).get("id")) and where(c) and epoch(c.get("created_time"))]
        return min(answers, key=lambda c: epoch(c.get("created_time")) or 0) if answers else None

    def verify(self) -> None:
        """`earful check --online`: one `limit=1` read of each enabled edge proves the token and its permissions."""
        edges = ["feed"] + [e for e, on in (("visitor_posts", self.options.visitor_posts), ("tagged", self.options.tagged),
                                            ("ratings", self.options.ratings), ("conversations", self.options.messenger)) if on]
        for edge in edges:
            self.graph.get(f"{self.options.page_id}/{edge}", {"limit": 1, "fields": "created_time" if edge != "conversations" else "id"},
                           what=f"Facebook {edge}", permission=PERMISSIONS.get(edge))

    # -- replies --------------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """The Page's earliest answer below `mention`, asked from Graph; unknown on any failure."""
        if mention.source != SOURCE or mention.author_is_brand:
            return ReplyStatus(answered=None)
        created = int(mention.created_at.timestamp()) if mention.created_at else 0
        try:
            if mention.kind == "message":
                return self._message_reply(mention, created)
            if mention.kind == "review":
                story = str(mention.raw.get("story_id") or "")
                return self._reply_in(f"{story}/comments", lambda c: not c.get("parent")) if story else ReplyStatus(answered=None)
            if mention.kind == "post":
                return self._reply_in(f"{mention.external_id}/comments", lambda c: not c.get("parent"))
            if mention.kind == "comment":
                return self._reply_in(f"{mention.external_id}/comments", lambda c: True)
            if mention.kind == "reply" and mention.parent_id:
                return self._reply_in(f"{mention.parent_id}/comments", lambda c: (epoch(c.get("created_time")) or 0) > created)
        except ConnectorError:
            return ReplyStatus(answered=None)
        return ReplyStatus(answered=None)

    def _reply_in(self, path: str, where: Any) -> ReplyStatus:
        comments: list[dict[str, Any]] = []
        complete = False
        for page in self.graph.pages(path, {"filter": "toplevel", "order": "chronological", "fields": COMMENT_FIELDS,
                                            "limit": self.options.page_size},
                                     what="checking replies", permission=PERMISSIONS["comments"], max_pages=self.options.max_pages):
            comments += page.items
            answer = self._first_answer(comments, where)
            if answer is not None:  # chronological: the first one found is the earliest
                return _status(answer)
            complete = page.next is None
        return ReplyStatus(answered=False) if complete else ReplyStatus(answered=None)

    def _message_reply(self, mention: Mention, created: int) -> ReplyStatus:
        conversation = str(mention.raw.get("conversation_id") or mention.thread_id or "")
        if not conversation:
            return ReplyStatus(answered=None)
        later: list[dict[str, Any]] = []
        for page in self.graph.pages(f"{conversation}/messages", {"fields": "id,from,created_time", "limit": self.options.page_size},
                                     what="checking Messenger replies", permission=PERMISSIONS["conversations"],
                                     max_pages=self.options.max_pages):
            newer = [m for m in page.items if (epoch(m.get("created_time")) or 0) > created]
            later += newer
            if len(newer) < len(page.items) or page.next is None:  # reached the mention's time, or the start
                answer = self._first_answer(later, lambda m: True)
                return _status(answer, url=mention.url) if answer else ReplyStatus(answered=False)
        return ReplyStatus(answered=None)

    def close(self) -> None:
        self.graph.close()


# -- helpers -----------------------------------------------------------------------------


def rating_id(rating: Mapping[str, Any]) -> str:
    """Ratings have no id of their own: their story's id, else a digest of what identifies them."""
    story = (rating.get("open_graph_story") or {}).get("id")
    if story:
        return f"rating_{story}"
    reviewer = (rating.get("reviewer") or {}).get("id") or ""
    basis = f"{reviewer}\n{rating.get('created_time')}\n{rating.get('review_text') or ''}"
    return "rating_" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:20]


def _id(item: Mapping[str, Any]) -> str:
    return str(item.get("id") or "")


def _created(item: Mapping[str, Any]) -> int | None:
    return epoch(item.get("created_time"))


def _comment_total(post: Mapping[str, Any]) -> int | None:
    """`comments.summary.total_count` from the listing (None when Graph did not say)."""
    summary = ((post.get("comments") or {}).get("summary")) if isinstance(post.get("comments"), dict) else None
    total = summary.get("total_count") if isinstance(summary, dict) else None
    return total if isinstance(total, int) else None


def _post_text(post: Mapping[str, Any]) -> str:
    return str(post.get("message") or post.get("story") or "").strip()


def _parent(comment: Mapping[str, Any]) -> str:
    return str((comment.get("parent") or {}).get("id") or "")


def _with_attachment(text: str, attachment: Mapping[str, Any]) -> str:
    """A comment that is only a sticker or photo still says what it is."""
    kind = str(attachment.get("type") or "")
    if text.strip() or not kind:
        return text.strip()
    return f"[{kind.replace('_', ' ')}]" + (f" {attachment['title']}" if attachment.get("title") else "")


def _shared_link(post: Mapping[str, Any]) -> str:
    for attachment in ((post.get("attachments") or {}).get("data")) or []:
        if isinstance(attachment, dict) and attachment.get("type") in ("share", "link", "native_templates"):
            link = _unwrap(str(attachment.get("unshimmed_url") or attachment.get("url") or ""))
            if link and (split_url(link).hostname or "").removeprefix("www.") != SITE:
                return link
    return ""


def _unwrap(link: str) -> str:
    """Facebook's outbound redirect (l.facebook.com/l.php?u=REAL) to the real URL."""
    parts = split_url(link)
    if parts.hostname in ("l.facebook.com", "lm.facebook.com") and parts.path == "/l.php":
        target = dict(parse_qsl(parts.query)).get("u", "")
        if target.startswith(("http://", "https://")):
            return target
    return link


def _answer_raw(answer: Mapping[str, Any] | None) -> dict[str, Any]:
    if answer is None:
        return {}
    when = parse_time(answer.get("created_time"))
    return {"reply_at": when.isoformat() if when else None, "reply_by": str((answer.get("from") or {}).get("name") or ""),
            "reply_id": str(answer.get("id") or "")}


def _status(answer: Mapping[str, Any], url: str | None = None) -> ReplyStatus:
    sender = answer.get("from") or {}
    return ReplyStatus(
        answered=True,
        answered_at=parse_time(answer.get("created_time")),
        answered_by=str(sender.get("name") or sender.get("id") or ""),
        url=url or str(answer.get("permalink_url") or f"{WEB}/{answer.get('id')}"),
    )


CONNECTOR = FacebookConnector
