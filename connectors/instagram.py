"""An Instagram professional account: comments on its media, and media that tag it.

Through the Instagram Graph API (graph.facebook.com, same app and token
style as the facebook connector):

* the account's media (`/{ig-user-id}/media?fields=id,caption,permalink,
  timestamp,comments_count`), and for every media younger than
  `comment_window` whose `comments_count` moved, its comments with their
  replies (`/{media-id}/comments?fields=id,text,username,timestamp,
  replies{id,text,username,timestamp}`; a thread with more replies than
  the nested page holds is read from `/{comment-id}/replies`);
* media by others that tag the account (`/{ig-user-id}/tags`).

What is not pollable: captions and comments that @mention the account on
someone else's media. Instagram only announces those through the
`mentions` webhook, which hands out the media or comment id to look up with
`mentioned_media` / `mentioned_comment`; there is no edge listing them. An
installation that receives those webhooks can pass the ids on; this
connector reads everything that can be polled. @mentions in comments on the
account's own media are covered (they are comments like any other).

Setting it up. The account must be a Business or Creator account linked to a
Facebook Page. In the same Meta app as the facebook connector, a Page admin
grants `instagram_basic`, `instagram_manage_comments`, `pages_show_list`
and `pages_read_engagement` (App Review outside development mode). The
Page access token of the linked Page (see the facebook connector) is the
token: `page_token: ${FACEBOOK_PAGE_TOKEN}`. `ig_user_id` is the
`instagram_business_account.id` of `GET /{page-id}?fields=instagram_business_account`.

Cost of a poll: one request for the media list, one for tags, plus one per
media whose comment count changed (and, every `rescan_every`, one per
commented media of the window). The account's username (to recognise its
own replies) is read once and kept in the cursor unless `username` is set.

Cursor: `{"v": 1, "username": ..., "media": W, "threads": {media id: {"t":
created, "n": comments_count scanned, "s": when scanned, "comments": W}},
"tags": W}`, each W a
`{"floor", "seen"}` watermark (see `graph.Watermark`). A comment counts
when it is newer than its thread's floor and unseen, so a reply added to
an old comment is found too. Hidden comments (hidden by the account) are
not returned.

Answered: a comment when the account replied in its thread (a reply whose
`username` is the account's or another brand account from `accounts:
instagram`); a reply when such a reply follows it; a tagged media when the
account commented on it (asked by `replies()`, when the token can see it).

A comment deleted and another added between two polls leave `comments_count`
unchanged: so commented media are also re-read every `rescan_every`
(default 6 hours), which bounds how late such a comment can be found.

Not covered: edits (Instagram comments cannot be edited; captions can, and
are not re-read).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from pydantic import Field

from earful.core import Mention, parse_time
from earful.core.durations import Duration

from .base import Connector, ConnectorContext, ConnectorError, FetchResult, ReplyStatus
from .graph import GraphOptions, Watermark, epoch, first_line, young_threads

SOURCE = "instagram"
SITE = "instagram.com"
TOKEN_ADVICE = (
    "the access token is invalid or expired (code 190): generate a new long-lived Page token "
    "for the Facebook Page linked to the Instagram account"
)
MEDIA_FIELDS = "id,caption,permalink,timestamp,comments_count,username,media_type"
REPLY_FIELDS = "id,text,username,timestamp,hidden"
COMMENT_FIELDS = f"id,text,username,timestamp,like_count,hidden,replies{{{REPLY_FIELDS}}}"
PERMISSIONS = {"media": "instagram_basic", "tags": "instagram_manage_comments", "comments": "instagram_manage_comments"}


class InstagramOptions(GraphOptions):
    ig_user_id: str = Field(pattern=r"^\d+$", description="The Instagram professional account id (instagram_business_account.id).")
    username: str | None = Field(default=None, description="The account's username; looked up once when not set.")
    tags: bool = Field(default=True, description="Read media by others that tag the account.")
    rescan_every: Duration = Field(default=timedelta(hours=6), gt=timedelta(0),
                                    description="Re-read commented media this often even when comments_count did not move.")


class InstagramConnector(Connector):
    name = SOURCE
    sees_replies = True
    pushes_query = False
    Options = InstagramOptions
    options: InstagramOptions

    def __init__(self, options: InstagramOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.graph = options.graph_client(f"instagram monitor {context.monitor!r}", TOKEN_ADVICE)
        self.username = (options.username or "").lstrip("@").lower() or None

    @property
    def brands(self) -> set[str]:
        return self.context.brand_names(SOURCE) | ({self.username} if self.username else set())

    def _is_brand(self, username: Any) -> bool:
        return isinstance(username, str) and username.lstrip("@").lower() in self.brands

    # -- fetch ------------------------------------------------------------------
    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        state = cursor if isinstance(cursor, dict) and cursor.get("v") == 1 else {}
        now = int(self.context.current_time().timestamp())
        start = now - int(self.options.first_run_lookback.total_seconds())
        before = self.graph.count
        notes: list[str] = []
        if self.username is None:
            self.username = str(state.get("username") or "").lower() or self._lookup_username()

        media_wm = Watermark.load(state.get("media"), start)
        threads, mentions = self._media_and_comments(media_wm, state.get("threads") or {}, now, notes)
        next_cursor: dict[str, Any] = {"v": 1, "username": self.username, "media": media_wm.dump(), "threads": threads}
        if self.options.tags:
            tags_wm = Watermark.load(state.get("tags"), start)
            mentions += self._tags(tags_wm, notes)
            tags_wm.advance()
            next_cursor["tags"] = tags_wm.dump()
        mentions.sort(key=lambda m: (m.created_at or datetime.min.replace(tzinfo=timezone.utc), m.external_id))
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.graph.count - before, notes=notes + self.graph.notes)

    def _lookup_username(self) -> str:
        body = self.graph.get(self.options.ig_user_id, {"fields": "id,username"}, what="reading the account",
                              permission=PERMISSIONS["media"])
        username = str(body.get("username") or "").lower()
        if not username:
            raise ConnectorError(f"{self.graph.label}: the account {self.options.ig_user_id} has no username; "
                                 "check `ig_user_id` (it must be the instagram_business_account id)")
        return username

    def _media_and_comments(self, media_wm: Watermark, previous: Mapping[str, Any], now: int, notes: list[str]
                            ) -> tuple[dict[str, Any], list[Mention]]:
        window_start = now - int(self.options.comment_window.total_seconds())
        listed = self._read("media", f"{self.options.ig_user_id}/media", {"fields": MEDIA_FIELDS},
                            Watermark(min(media_wm.floor, window_start)), notes, "timestamp")
        mentions: list[Mention] = []
        threads: dict[str, Any] = {}
        for media in sorted(listed, key=lambda m: (epoch(m.get("timestamp")) or 0, str(m.get("id")))):
            mid, created = str(media.get("id") or ""), epoch(media.get("timestamp"))
            if not mid or created is None:
                continue
            prior = previous.get(mid) if isinstance(previous.get(mid), Mapping) else None
            threads[mid], thread, found = self._scan_media(media, created, prior, media_wm.floor, now, notes)
            if media_wm.is_new(mid, created):
                media_wm.add(mid, created)
                mentions.append(self._media_mention(media, thread, kind_edge="media"))
            mentions += found
        threads |= young_threads(previous, threads, window_start)
        media_wm.advance()
        return threads, mentions

    def _scan_media(self, media: Mapping[str, Any], created: int, prior: Mapping[str, Any] | None, default_floor: int, now: int,
                    notes: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]] | None, list[Mention]]:
        """A media's next thread state, its thread as read (None when its comments were not read) and the new comments' mentions."""
        mid = str(media["id"])
        count = media.get("comments_count") if isinstance(media.get("comments_count"), int) else -1
        comments_wm = Watermark.load(prior.get("comments") if prior else None, default_floor)
        changed = self._comments_moved(prior, count, now)
        thread = self._comments(mid, notes) if changed else []
        title = first_line(str(media.get("caption") or ""))
        fresh = comments_wm.take(thread, _id, _created)
        mentions = [self._comment_mention(c, media, title, thread) for c in fresh if not c.get("hidden")]
        comments_wm.advance()
        if changed or prior is None:
            state = {"t": created, "n": count, "s": now}
        else:
            state = {"t": created, "n": prior.get("n"), "s": int(prior.get("s", now))}
        return state | {"comments": comments_wm.dump()}, thread if changed else None, mentions

    def _comments_moved(self, prior: Mapping[str, Any] | None, count: int, now: int) -> bool:
        """Whether a media's comments must be read: its count moved (-1: unknown), or a commented media is due for its rescan."""
        if prior is None:
            return count != 0
        stale = now - int(prior.get("s", 0)) >= self.options.rescan_every.total_seconds()
        return count != prior.get("n") or count < 0 or (stale and count > 0)

    def _comments(self, media_id: str, notes: list[str]) -> list[dict[str, Any]]:
        """Every comment of a media with its replies, flattened (a reply carries `_parent`).

        All pages are read, whatever their order: a new reply may sit under
        an old comment anywhere in the list.
        """
        flat: list[dict[str, Any]] = []
        pages = 0
        for page in self.graph.pages(f"{media_id}/comments", {"fields": COMMENT_FIELDS, "limit": self.options.page_size},
                                     what="Instagram comments", permission=PERMISSIONS["comments"], max_pages=self.options.max_pages):
            pages += 1
            for comment in page.items:
                flat.append(comment)
                replies = comment.get("replies") if isinstance(comment.get("replies"), dict) else {}
                items = [r for r in replies.get("data") or [] if isinstance(r, dict)]
                if isinstance(replies.get("paging"), dict) and replies["paging"].get("next"):
                    items = self._replies(str(comment.get("id")))
                flat.extend({**reply, "_parent": str(comment.get("id"))} for reply in items)
            if page.next is not None and pages >= self.options.max_pages:
                notes.append(f"Instagram comments of media {media_id}: stopped after {pages} pages (max_pages); "
                             "the remaining comments were not read")
        return flat

    def _replies(self, comment_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.graph.pages(f"{comment_id}/replies", {"fields": REPLY_FIELDS, "limit": self.options.page_size},
                                     what="Instagram replies", permission=PERMISSIONS["comments"], max_pages=self.options.max_pages):
            items += page.items
        return items

    def _tags(self, wm: Watermark, notes: list[str]) -> list[Mention]:
        found = self._read("tags", f"{self.options.ig_user_id}/tags", {"fields": MEDIA_FIELDS}, wm, notes, "timestamp")
        return [self._media_mention(media, None, kind_edge="tags") for media in reversed(found)]

    def _read(self, edge: str, path: str, params: Mapping[str, Any], watermark: Watermark, notes: list[str],
              time_key: str) -> list[dict[str, Any]]:
        """New items of an edge, newest first, down to `watermark`'s floor (see `GraphClient.newest_first`)."""
        return self.graph.newest_first(path, {**params, "limit": self.options.page_size}, watermark=watermark, notes=notes,
                                       what=f"Instagram {edge}", permission=PERMISSIONS.get(edge),
                                       max_pages=self.options.max_pages, time_key=time_key)

    # -- mapping --------------------------------------------------------------------
    def _media_mention(self, media: Mapping[str, Any], thread: list[dict[str, Any]] | None, kind_edge: str) -> Mention:
        mid = str(media["id"])
        author = str(media.get("username") or (self.username if kind_edge == "media" else "") or "")
        is_brand = kind_edge == "media" or self._is_brand(author)
        answer = None if thread is None or is_brand else self._first_answer(thread, lambda c: "_parent" not in c)
        return Mention(
            source=SOURCE,
            external_id=mid,
            url=str(media.get("permalink") or ""),
            author=author,
            author_is_brand=is_brand,
            text=str(media.get("caption") or ""),
            created_at=parse_time(media.get("timestamp")),
            thread_id=mid,
            kind="post",
            brand_replied=None if thread is None or is_brand else answer is not None,
            site=SITE,
            raw=_answer_raw(answer) | {"edge": kind_edge, "media_type": media.get("media_type"),
                                       "comments_count": media.get("comments_count")},
        )

    def _comment_mention(self, comment: Mapping[str, Any], media: Mapping[str, Any], title: str, thread: list[dict[str, Any]]) -> Mention:
        cid = str(comment["id"])
        parent = comment.get("_parent")
        created = epoch(comment.get("timestamp")) or 0
        username = str(comment.get("username") or "")
        if parent:
            answer = self._first_answer(thread, lambda c: c.get("_parent") == parent and (epoch(c.get("timestamp")) or 0) > created)
        else:
            answer = self._first_answer(thread, lambda c: c.get("_parent") == cid)
        permalink = str(media.get("permalink") or "")
        if permalink.endswith("/"):
            url = f"{permalink}c/{parent}/r/{cid}/" if parent else f"{permalink}c/{cid}/"
        else:
            url = permalink
        is_brand = self._is_brand(username)
        return Mention(
            source=SOURCE,
            external_id=cid,
            url=url,
            author=username,
            author_is_brand=is_brand,
            title=title,
            text=str(comment.get("text") or ""),
            created_at=parse_time(comment.get("timestamp")),
            thread_id=str(media["id"]),
            parent_id=str(parent or media["id"]),
            kind="reply" if parent else "comment",
            brand_replied=None if is_brand else answer is not None,
            site=SITE,
            raw=_answer_raw(answer) | {"edge": "comments", "media_id": str(media["id"]), "like_count": comment.get("like_count")},
        )

    def _first_answer(self, comments: Iterable[Mapping[str, Any]], where: Any) -> Mapping[str, Any] | None:
        answers = [c for c in comments if self._is_brand(c.get("username")) and where(c) and epoch(c.get("timestamp"))]
        return min(answers, key=lambda c: epoch(c.get("timestamp")) or 0) if answers else None

    def verify(self) -> None:
        """`earful check --online`: the account's username, then one media and one tag, prove token, id and permissions."""
        self._lookup_username()
        for edge in ["media"] + (["tags"] if self.options.tags else []):
            self.graph.get(f"{self.options.ig_user_id}/{edge}", {"limit": 1, "fields": "id"}, what=f"Instagram {edge}",
                           permission=PERMISSIONS.get(edge))

    # -- replies --------------------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """The account's earliest reply below `mention`, asked from Graph; unknown on any failure."""
        if mention.source != SOURCE or mention.author_is_brand:
            return ReplyStatus(answered=None)
        created = int(mention.created_at.timestamp()) if mention.created_at else 0
        try:
            if self.username is None and self.options.username is None:
                self.username = self._lookup_username()
            if mention.kind == "comment":
                return self._answer_in(f"{mention.external_id}/replies", REPLY_FIELDS, lambda c: True, mention)
            if mention.kind == "reply" and mention.parent_id:
                return self._answer_in(f"{mention.parent_id}/replies", REPLY_FIELDS,
                                       lambda c: (epoch(c.get("timestamp")) or 0) > created, mention)
            if mention.kind == "post":
                return self._answer_in(f"{mention.external_id}/comments", "id,text,username,timestamp", lambda c: True, mention)
        except ConnectorError:
            return ReplyStatus(answered=None)
        return ReplyStatus(answered=None)

    def _answer_in(self, path: str, fields: str, where: Any, mention: Mention) -> ReplyStatus:
        items: list[dict[str, Any]] = []
        complete = False
        for page in self.graph.pages(path, {"fields": fields, "limit": self.options.page_size}, what="checking Instagram replies",
                                     permission=PERMISSIONS["comments"], max_pages=self.options.max_pages):
            items += page.items
            complete = page.next is None
        if not complete:
            return ReplyStatus(answered=None)
        answer = self._first_answer(items, where)
        if answer is None:
            return ReplyStatus(answered=False)
        return ReplyStatus(answered=True, answered_at=parse_time(answer.get("timestamp")),
                           answered_by=str(answer.get("username") or ""), url=mention.url or None)

    def close(self) -> None:
        self.graph.close()


def _id(item: Mapping[str, Any]) -> str:
    return str(item.get("id") or "")


def _created(item: Mapping[str, Any]) -> int | None:
    return epoch(item.get("timestamp"))


def _answer_raw(answer: Mapping[str, Any] | None) -> dict[str, Any]:
    if answer is None:
        return {}
    when = parse_time(answer.get("timestamp"))
    return {"reply_at": when.isoformat() if when else None, "reply_by": str(answer.get("username") or ""),
            "reply_id": str(answer.get("id") or "")}


CONNECTOR = InstagramConnector
