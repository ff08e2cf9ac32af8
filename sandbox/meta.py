"""A fake of the Meta Graph API (graph.facebook.com) for a Facebook Page and its Instagram account.

Standard library only. It speaks the wire format the facebook and
instagram connectors meet in production:

* paths `/{version}/{node}` and `/{version}/{node}/{edge}`; the token as
  `access_token` (or an `Authorization: Bearer|OAuth` header), optionally
  checked against an `appsecret_proof`;
* `fields` with nested selections and modifiers (`from{id,name}`,
  `messages.limit(10){from,message}`, `replies{id,text,username,timestamp}`),
  answering only what was asked;
* the paging envelope: `paging.cursors.before/after` plus a ready-made
  `paging.next` URL that repeats the query (token included, as the real
  one does); the Page feed edges page by time (`since`/`until` and a
  `__paging_token`), like the real ones;
* comments with `filter=toplevel|stream` and `order=chronological|
  reverse_chronological`; Instagram media comments newest first;
* a post's `updated_time` moving when it is edited or commented on;
* the real error bodies (`{"error": {"message", "type", "code",
  "error_subcode", "fbtrace_id"}}`) for a missing, invalid or expired
  token (190 with subcodes 460/463), missing permissions (200, 10), unknown
  objects (100/33), and rate limits (32 with `x-business-use-case-usage`
  carrying `estimated_time_to_regain_access`), plus `x-app-usage` headers on
  every answer.

Tests script it through `add_post`, `add_comment`, `add_rating`,
`add_message`, `add_media`, `add_ig_comment` ..., `expire_token()`,
`revoke_permission()` and `fail_next(rate_limited(...))`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlencode

from .server import DemoSource, FakeServer, Request, Response

PAGE_ID = "104000000000001"
PAGE_NAME = "Acme CRM"
IG_USER_ID = "17841400000000001"
IG_USERNAME = "acmecrm"
TOKEN = "EAAGfakePageToken0000acme"
APP_SECRET = "fake-app-secret"

Tree = dict[str, tuple["Tree | None", dict[str, str]]]


def fb_time(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def graph_error(message: str, code: int, status: int = 400, *, type_: str = "OAuthException", subcode: int | None = None,
                headers: dict[str, str] | None = None, transient: bool | None = None) -> Response:
    """A Graph API error response with the real body shape."""
    error: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    error["fbtrace_id"] = base64.urlsafe_b64encode(hashlib.sha256(message.encode()).digest()[:16]).decode().rstrip("=")
    extra = dict(headers or {})
    if code == 190:
        extra["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{message}"'
    return Response.json({"error": error}, status, extra)


def rate_limited(minutes: int = 7, code: int = 32, business_id: str = PAGE_ID) -> Response:
    """Page-level rate limit (code 32) with the business-use-case header that says how long to wait."""
    usage = {business_id: [{"type": "pages", "call_count": 100, "total_cputime": 42, "total_time": 57,
                            "estimated_time_to_regain_access": minutes}]}
    return graph_error(
        "(#32) Page request limit reached", code, 400,
        headers={"x-business-use-case-usage": json.dumps(usage), "x-app-usage": json.dumps({"call_count": 100, "total_cputime": 40, "total_time": 50})},
    )


# -- field selections ---------------------------------------------------------------------


def parse_fields(spec: str) -> Tree:
    """`id,from{id,name},messages.limit(10){from,message}` -> {name: (subtree or None, modifiers)}."""
    tree, pos = _fields(spec, 0)
    return tree


def _fields(spec: str, pos: int) -> tuple[Tree, int]:
    tree: Tree = {}
    while pos < len(spec) and spec[pos] != "}":
        m = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)").match(spec, pos)
        if not m:
            pos += 1
            continue
        name, pos = m.group(1), m.end()
        modifiers: dict[str, str] = {}
        while (mod := re.compile(r"\.([a-z_]+)\(([^)]*)\)").match(spec, pos)):
            modifiers[mod.group(1)] = mod.group(2)
            pos = mod.end()
        sub = None
        if pos < len(spec) and spec[pos] == "{":
            sub, pos = _fields(spec, pos + 1)
            pos += 1  # the closing brace
        tree[name] = (sub, modifiers)
        while pos < len(spec) and spec[pos] in ", ":
            pos += 1
    return tree, pos


# -- stored objects ------------------------------------------------------------------------


@dataclass
class Post:
    id: str
    message: str | None
    created: int
    from_id: str
    from_name: str
    edge: str = "feed"  # feed (the Page's own or a visitor's post on the Page), tagged (elsewhere), rating (a recommendation's story)
    story: str | None = None
    link: str | None = None
    updated: int = 0
    is_hidden: bool = False
    status_type: str = "mobile_status_update"


@dataclass
class Comment:
    id: str
    post_id: str
    parent_id: str | None
    from_id: str
    from_name: str
    message: str
    created: int
    attachment: dict[str, Any] | None = None
    is_hidden: bool = False


@dataclass
class Rating:
    story_id: str
    created: int
    recommendation_type: str
    review_text: str
    reviewer_id: str
    reviewer_name: str
    rating: int | None = None


@dataclass
class Message:
    id: str
    from_id: str
    from_name: str
    message: str
    created: int


@dataclass
class Conversation:
    id: str
    link: str
    messages: list[Message] = field(default_factory=list)  # oldest first


@dataclass
class Media:
    id: str
    caption: str | None
    created: int
    username: str
    owner: str = "self"  # self (the account's own media) or tagged (someone else's, tagging the account)
    media_type: str = "IMAGE"
    shortcode: str = ""


@dataclass
class IgComment:
    id: str
    media_id: str
    parent_id: str | None
    username: str
    text: str
    created: int
    hidden: bool = False


class MetaGraphServer(FakeServer):
    """A Page (and its Instagram account) with posts, comments, tags, ratings, conversations and media."""

    def __init__(self, *, token: str = TOKEN, page_id: str = PAGE_ID, page_name: str = PAGE_NAME,
                 ig_user_id: str = IG_USER_ID, ig_username: str = IG_USERNAME, app_secret: str | None = None,
                 permissions: set[str] | None = None) -> None:
        super().__init__()
        self.token = token
        self.page_id, self.page_name = page_id, page_name
        self.ig_user_id, self.ig_username = ig_user_id, ig_username
        self.app_secret = app_secret
        self.permissions = set(permissions) if permissions is not None else {
            "pages_show_list", "pages_read_engagement", "pages_read_user_content", "pages_messaging",
            "pages_manage_metadata", "instagram_basic", "instagram_manage_comments",
        }
        self.token_state = "valid"  # valid | expired | password_changed
        self.posts: dict[str, Post] = {}
        self.comments: dict[str, Comment] = {}
        self.ratings: list[Rating] = []
        self.conversations: dict[str, Conversation] = {}
        self.media: dict[str, Media] = {}
        self.ig_comments: dict[str, IgComment] = {}
        self._ids = itertools.count(1)
        self._data_lock = threading.RLock()
        self.calls = 0

    # -- building data -------------------------------------------------------------
    def _new(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):010d}"

    def add_post(self, message: str | None, *, created: int | None = None, author: tuple[str, str] | None = None,
                 edge: str = "feed", story: str | None = None, link: str | None = None, id: str | None = None,
                 status_type: str = "mobile_status_update") -> str:
        """A post on the Page (by the Page unless `author` = (id, name) says otherwise), or `edge="tagged"`."""
        with self._data_lock:
            created = int(time.time()) if created is None else created
            from_id, from_name = author or (self.page_id, self.page_name)
            owner = self.page_id if edge == "feed" else from_id
            pid = id or f"{owner}_{self._new('20000')}"
            self.posts[pid] = Post(pid, message, created, from_id, from_name, edge, story, link, created, status_type=status_type)
            return pid

    def add_comment(self, post_id: str, message: str, *, author: tuple[str, str] | None = None, created: int | None = None,
                    parent: str | None = None, attachment: dict[str, Any] | None = None, id: str | None = None) -> str:
        """A comment on `post_id` (a reply when `parent` is a comment id); the post's updated_time moves."""
        with self._data_lock:
            post = self.posts[post_id]
            created = int(time.time()) if created is None else created
            from_id, from_name = author or (self.page_id, self.page_name)
            cid = id or f"{post_id.split('_')[-1]}_{self._new('30000')}"
            self.comments[cid] = Comment(cid, post_id, parent, from_id, from_name, message, created, attachment)
            post.updated = max(post.updated, created)
            return cid

    def edit_post(self, post_id: str, message: str, at: int) -> None:
        with self._data_lock:
            post = self.posts[post_id]
            post.message, post.updated = message, max(post.updated, at)

    def delete(self, object_id: str) -> None:
        """Delete a post (and its comments), a comment (and its replies), a media or an IG comment."""
        with self._data_lock:
            self.posts.pop(object_id, None)
            self.media.pop(object_id, None)
            for cid in [c.id for c in self.comments.values() if object_id in (c.id, c.post_id, c.parent_id)]:
                del self.comments[cid]
            for cid in [c.id for c in self.ig_comments.values() if object_id in (c.id, c.media_id, c.parent_id)]:
                del self.ig_comments[cid]

    def hide_comment(self, comment_id: str) -> None:
        with self._data_lock:
            if comment_id in self.comments:
                self.comments[comment_id].is_hidden = True
            if comment_id in self.ig_comments:
                self.ig_comments[comment_id].hidden = True

    def add_rating(self, text: str, *, recommendation: str = "negative", reviewer: tuple[str, str] = ("5550001", "Dana Reviewer"),
                   created: int | None = None, rating: int | None = None) -> str:
        with self._data_lock:
            story = f"{reviewer[0]}_{self._new('40000')}"
            when = int(time.time()) if created is None else created
            self.ratings.append(Rating(story, when, recommendation, text, reviewer[0], reviewer[1], rating))
            # The recommendation's story is an object of its own: the Page answers it with comments.
            self.posts[story] = Post(story, text, when, reviewer[0], reviewer[1], edge="rating", updated=when)
            return story

    def add_message(self, customer: tuple[str, str], text: str, *, created: int | None = None, from_page: bool = False,
                    conversation: str | None = None) -> tuple[str, str]:
        """A Messenger message in the customer's conversation (created on first use); returns (conversation id, message id)."""
        with self._data_lock:
            cid = conversation or f"t_{customer[0]}"
            conv = self.conversations.get(cid)
            if conv is None:
                conv = self.conversations[cid] = Conversation(cid, f"/{self.page_id}/inbox/{customer[0]}/")
            sender = (self.page_id, self.page_name) if from_page else customer
            mid = "m_" + base64.urlsafe_b64encode(hashlib.sha256(f"{cid}{len(conv.messages)}{text}".encode()).digest()[:30]).decode()
            conv.messages.append(Message(mid, sender[0], sender[1], text, int(time.time()) if created is None else created))
            return cid, mid

    def add_media(self, caption: str | None, *, created: int | None = None, owner: str = "self", username: str | None = None,
                  media_type: str = "IMAGE", id: str | None = None) -> str:
        """The account's own media, or (`owner="tagged"`) someone else's media tagging the account."""
        with self._data_lock:
            mid = id or self._new("17900")
            shortcode = base64.urlsafe_b64encode(hashlib.sha256(mid.encode()).digest()[:8]).decode().rstrip("=")
            self.media[mid] = Media(mid, caption, int(time.time()) if created is None else created,
                                    username or self.ig_username, owner, media_type, shortcode)
            return mid

    def add_ig_comment(self, media_id: str, text: str, *, username: str, created: int | None = None,
                       parent: str | None = None, id: str | None = None) -> str:
        with self._data_lock:
            if media_id not in self.media:
                raise KeyError(media_id)
            cid = id or self._new("17850")
            self.ig_comments[cid] = IgComment(cid, media_id, parent, username, text, int(time.time()) if created is None else created)
            return cid

    def expire_token(self, reason: str = "expired") -> None:
        """Make the token fail with code 190 (subcode 463 expired, 460 password changed)."""
        self.token_state = reason

    def revoke_permission(self, permission: str) -> None:
        self.permissions.discard(permission)

    # -- HTTP ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        with self._data_lock:
            self.calls += 1
            problem = self._auth(request)
            if problem:
                return problem
            m = re.fullmatch(r"/(v\d+\.\d+)/([^/]+)(?:/([a-z_]+))?/?", request.path)
            if not m:
                return graph_error("Unknown path components: " + request.path, 2500)
            version, node, edge = m.groups()
            try:
                body = self._edge(request, version, node, edge) if edge else self._node(request, node)
            except _Denied as denied:
                return graph_error(f"(#200) This endpoint requires the '{denied.permission}' permission to manage the object",
                                   200, 403, type_="OAuthException")
            except KeyError:
                return graph_error(f"Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to "
                                   "missing permissions, or does not support this operation. Please read the Graph API "
                                   "documentation at https://developers.facebook.com/docs/graph-api", 100, subcode=33,
                                   type_="GraphMethodException")
            return Response.json(body, headers=self._usage_headers(version))

    def _auth(self, request: Request) -> Response | None:
        token = request.arg("access_token")
        header = request.headers.get("authorization", "")
        if not token and header.split(" ", 1)[0] in ("Bearer", "OAuth"):
            token = header.split(" ", 1)[1].strip()
        if not token:
            return graph_error("An access token is required to request this resource.", 104)
        if token != self.token:
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        if self.token_state == "expired":
            return graph_error("Error validating access token: Session has expired on Tuesday, 30-Apr-24 09:00:00 PDT. "
                               "The current time is Wednesday, 01-May-24 12:00:00 PDT.", 190, subcode=463)
        if self.token_state == "password_changed":
            return graph_error("Error validating access token: The session has been invalidated because the user changed "
                               "their password or Facebook has changed the session for security reasons.", 190, subcode=460)
        if self.app_secret is not None:
            proof = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if request.arg("appsecret_proof") != proof:
                return graph_error("Invalid appsecret_proof provided in the API argument", 100, type_="GraphMethodException")
        return None

    def _usage_headers(self, version: str) -> dict[str, str]:
        usage = min(99, self.calls // 10)
        return {
            "x-app-usage": json.dumps({"call_count": usage, "total_cputime": max(0, usage - 1), "total_time": usage}),
            "x-business-use-case-usage": json.dumps({self.page_id: [{"type": "pages", "call_count": usage, "total_cputime": 1,
                                                                     "total_time": 1, "estimated_time_to_regain_access": 0}]}),
            "x-fb-trace-id": "F" + hashlib.sha256(str(self.calls).encode()).hexdigest()[:10],
            "x-fb-rev": "1013456789",
            "facebook-api-version": version,
            "Content-Type": "application/json; charset=UTF-8",
        }

    def _need(self, *permissions: str) -> None:
        for permission in permissions:
            if permission not in self.permissions:
                raise _Denied(permission)

    # -- nodes ------------------------------------------------------------------------
    def _node(self, request: Request, node: str) -> dict[str, Any]:
        tree = parse_fields(request.arg("fields") or "") or None
        full = self._full(node, request)
        return _project(full, tree or {k: (None, {}) for k in ("id", "name", "message", "text", "created_time", "timestamp", "username")})

    def _full(self, node: str, request: Request) -> dict[str, Any]:
        if node == self.page_id:
            return {"id": self.page_id, "name": self.page_name}
        if node == self.ig_user_id:
            return {"id": self.ig_user_id, "username": self.ig_username, "media_count": sum(m.owner == "self" for m in self.media.values())}
        if node in self.posts:
            return self._post(self.posts[node], request)
        if node in self.comments:
            return self._comment(self.comments[node], request)
        if node in self.conversations:
            return self._conversation(self.conversations[node], request)
        if node in self.media:
            return self._media(self.media[node], request)
        if node in self.ig_comments:
            return self._ig_comment(self.ig_comments[node], request)
        raise KeyError(node)

    def _post(self, post: Post, request: Request) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": post.id,
            "created_time": fb_time(post.created),
            "updated_time": fb_time(post.updated),
            "permalink_url": f"https://www.facebook.com/{post.id.split('_')[0]}/posts/{post.id.split('_')[-1]}",
            "from": {"id": post.from_id, "name": post.from_name},
            "is_hidden": post.is_hidden,
            "status_type": post.status_type,
        }
        if post.message is not None:
            full["message"] = post.message
        if post.story:
            full["story"] = post.story
        if post.link:
            shim = "https://l.facebook.com/l.php?" + urlencode({"u": post.link, "h": "AT0fake"})
            full["attachments"] = lambda mods, sub: {"data": [_project({"type": "share", "url": shim, "unshimmed_url": post.link,
                                                                        "title": post.link, "media_type": "link"}, sub)]}
        full["comments"] = lambda mods, sub: self._list(request, self._comments_of(post.id, None, mods), self._comment, sub, mods,
                                                        f"{post.id}/comments", nested=True)
        return full

    def _comment(self, comment: Comment, request: Request) -> dict[str, Any]:
        post = self.posts.get(comment.post_id)
        page, number = comment.post_id.split("_")[0], comment.post_id.split("_")[-1]
        link = f"https://www.facebook.com/{page}/posts/{number}/?comment_id="
        link += f"{comment.parent_id.split('_')[-1]}&reply_comment_id={comment.id.split('_')[-1]}" if comment.parent_id else comment.id.split("_")[-1]
        full: dict[str, Any] = {
            "id": comment.id,
            "message": comment.message,
            "created_time": fb_time(comment.created),
            "from": {"id": comment.from_id, "name": comment.from_name},
            "permalink_url": link,
            "comment_count": sum(c.parent_id == comment.id for c in self.comments.values()),
            "like_count": 0,
            "is_hidden": comment.is_hidden,
            "can_comment": post is not None,
        }
        if comment.parent_id:
            parent = self.comments.get(comment.parent_id)
            full["parent"] = {"id": comment.parent_id, "created_time": fb_time(parent.created) if parent else None,
                              "from": {"id": parent.from_id, "name": parent.from_name} if parent else None,
                              "message": parent.message if parent else ""}
        if comment.attachment:
            full["attachment"] = comment.attachment
        return full

    def _conversation(self, conv: Conversation, request: Request) -> dict[str, Any]:
        newest = conv.messages[-1] if conv.messages else None
        return {
            "id": conv.id,
            "link": conv.link,
            "updated_time": fb_time(newest.created) if newest else None,
            "message_count": len(conv.messages),
            "snippet": newest.message[:100] if newest else "",
            "unread_count": 1,
            "messages": lambda mods, sub: self._list(request, list(reversed(conv.messages)), self._message, sub, mods,
                                                     f"{conv.id}/messages", nested=True),
        }

    def _message(self, message: Message, request: Request) -> dict[str, Any]:
        to = self.page_id if message.from_id != self.page_id else "customer"
        return {
            "id": message.id,
            "created_time": fb_time(message.created),
            "from": {"name": message.from_name, "email": f"{message.from_id}@facebook.com", "id": message.from_id},
            "to": {"data": [{"name": self.page_name if to == self.page_id else "", "email": f"{to}@facebook.com", "id": to}]},
            "message": message.message,
        }

    def _media(self, media: Media, request: Request) -> dict[str, Any]:
        count = sum(c.media_id == media.id for c in self.ig_comments.values())
        full: dict[str, Any] = {
            "id": media.id,
            "timestamp": fb_time(media.created),
            "permalink": f"https://www.instagram.com/p/{media.shortcode}/",
            "comments_count": count,
            "like_count": 3,
            "media_type": media.media_type,
            "media_url": f"https://scontent.cdninstagram.com/v/t51.2885-15/{media.id}_n.jpg?_nc_cat=1&oh=fake",
            "username": media.username,
            "comments": lambda mods, sub: self._list(request, self._ig_comments_of(media.id, None), self._ig_comment, sub, mods,
                                                     f"{media.id}/comments", nested=True),
        }
        if media.caption is not None:
            full["caption"] = media.caption
        return full

    def _ig_comment(self, comment: IgComment, request: Request) -> dict[str, Any]:
        return {
            "id": comment.id,
            "text": comment.text,
            "username": comment.username,
            "timestamp": fb_time(comment.created),
            "like_count": 0,
            "hidden": comment.hidden,
            "media": {"id": comment.media_id},
            "parent_id": comment.parent_id,
            "replies": lambda mods, sub: self._list(request, self._ig_replies_of(comment.id), self._ig_comment, sub, mods,
                                                    f"{comment.id}/replies", nested=True),
        }

    # -- edges ------------------------------------------------------------------------
    def _edge(self, request: Request, version: str, node: str, edge: str) -> dict[str, Any]:
        tree = parse_fields(request.arg("fields") or "")
        mods = {k: v[-1] for k, v in request.query.items()}
        path = f"{version}/{node}/{edge}"
        if node == self.page_id and edge in ("feed", "posts", "visitor_posts", "published_posts", "tagged"):
            self._need("pages_read_engagement")
            if edge in ("visitor_posts", "tagged"):
                self._need("pages_read_user_content")
            return self._time_list(request, self._page_posts(edge), tree or _fields_of("id,message,created_time"), path)
        if node == self.page_id and edge == "ratings":
            self._need("pages_read_user_content")
            ratings = sorted(self.ratings, key=lambda r: r.created, reverse=True)
            return self._list(request, ratings, self._rating, tree or _fields_of("created_time,recommendation_type,review_text"), mods, path)
        if node == self.page_id and edge == "conversations":
            self._need("pages_messaging")
            conversations = sorted(self.conversations.values(), key=lambda c: c.messages[-1].created if c.messages else 0, reverse=True)
            return self._list(request, conversations, self._conversation, tree or _fields_of("id,link,updated_time"), mods, path)
        if node in self.posts and edge == "comments":
            self._need("pages_read_engagement", "pages_read_user_content")
            return self._list(request, self._comments_of(node, None, mods), self._comment, tree or _fields_of("created_time,from,message,id"), mods, path)
        if node in self.comments and edge == "comments":
            self._need("pages_read_engagement", "pages_read_user_content")
            post = self.comments[node].post_id
            return self._list(request, self._comments_of(post, node, mods), self._comment, tree or _fields_of("created_time,from,message,id"), mods, path)
        if node in self.conversations and edge == "messages":
            self._need("pages_messaging")
            messages = list(reversed(self.conversations[node].messages))
            return self._list(request, messages, self._message, tree or _fields_of("id,created_time"), mods, path)
        if node == self.ig_user_id and edge in ("media", "tags"):
            self._need("instagram_basic")
            if edge == "tags":
                self._need("instagram_manage_comments")
            owner = "self" if edge == "media" else "tagged"
            media = sorted((m for m in self.media.values() if m.owner == owner), key=lambda m: (m.created, m.id), reverse=True)
            return self._list(request, media, self._media, tree or _fields_of("id"), mods, path)
        if node in self.media and edge == "comments":
            self._need("instagram_basic", "instagram_manage_comments")
            return self._list(request, self._ig_comments_of(node, None), self._ig_comment, tree or _fields_of("timestamp,text,id"), mods, path)
        if node in self.ig_comments and edge == "replies":
            self._need("instagram_basic", "instagram_manage_comments")
            return self._list(request, self._ig_replies_of(node), self._ig_comment, tree or _fields_of("timestamp,text,id"), mods, path)
        raise KeyError(node)

    def _rating(self, rating: Rating, request: Request) -> dict[str, Any]:
        full: dict[str, Any] = {
            "created_time": fb_time(rating.created),
            "recommendation_type": rating.recommendation_type,
            "review_text": rating.review_text,
            "has_rating": rating.rating is not None,
            "has_review": bool(rating.review_text),
            "reviewer": {"id": rating.reviewer_id, "name": rating.reviewer_name},
            "open_graph_story": {"id": rating.story_id},
        }
        if rating.rating is not None:
            full["rating"] = rating.rating
        return full

    def _page_posts(self, edge: str) -> list[Post]:
        if edge == "tagged":
            chosen = [p for p in self.posts.values() if p.edge == "tagged"]
        elif edge == "visitor_posts":
            chosen = [p for p in self.posts.values() if p.edge == "feed" and p.from_id != self.page_id]
        elif edge in ("posts", "published_posts"):
            chosen = [p for p in self.posts.values() if p.edge == "feed" and p.from_id == self.page_id]
        else:
            chosen = [p for p in self.posts.values() if p.edge == "feed"]
        return sorted(chosen, key=lambda p: (p.created, p.id), reverse=True)

    def _comments_of(self, post_id: str, parent: str | None, mods: dict[str, str]) -> list[Comment]:
        if parent is not None:
            chosen = [c for c in self.comments.values() if c.parent_id == parent]
        elif mods.get("filter") == "stream":
            chosen = [c for c in self.comments.values() if c.post_id == post_id]
        else:
            chosen = [c for c in self.comments.values() if c.post_id == post_id and c.parent_id is None]
        newest_first = mods.get("order") == "reverse_chronological"
        return sorted(chosen, key=lambda c: (c.created, c.id), reverse=newest_first)

    def _ig_comments_of(self, media_id: str, parent: str | None) -> list[IgComment]:
        """Top-level comments on a media, newest first (as Instagram serves them)."""
        chosen = [c for c in self.ig_comments.values() if c.media_id == media_id and c.parent_id is None]
        return sorted(chosen, key=lambda c: (c.created, c.id), reverse=True)

    def _ig_replies_of(self, comment_id: str) -> list[IgComment]:
        return sorted((c for c in self.ig_comments.values() if c.parent_id == comment_id), key=lambda c: (c.created, c.id))

    # -- paging ------------------------------------------------------------------------
    def _list(self, request: Request, items: list[Any], render: Callable[[Any, Request], dict[str, Any]], tree: Tree | None,
              mods: dict[str, str], path: str, nested: bool = False) -> dict[str, Any]:
        """Cursor paging: `limit`, `after`/`before` cursors, and a `paging.next` URL repeating the query."""
        limit = _limit(mods.get("limit"), 25)
        start = 0
        if mods.get("after"):
            start = _decode(mods["after"]) + 1
        elif mods.get("before"):
            start = max(0, _decode(mods["before"]) - limit)
        chosen = items[start : start + limit]
        body: dict[str, Any] = {"data": [_project(render(item, request), tree) for item in chosen]}
        if "summary" in mods and mods["summary"] in ("true", "1", "total_count"):
            body["summary"] = {"order": "chronological", "total_count": len(items), "can_comment": True}
        if chosen:
            paging: dict[str, Any] = {"cursors": {"before": _encode(start), "after": _encode(start + len(chosen) - 1)}}
            query = {k: v[-1] for k, v in request.query.items() if k not in ("after", "before")} if not nested else {
                "access_token": request.arg("access_token") or self.token, "limit": str(limit)}
            if nested and tree:
                query["fields"] = _unparse(tree)
            if start + len(chosen) < len(items):
                paging["next"] = f"{self.url}/{_versioned(path, request)}?" + urlencode({**query, "after": paging["cursors"]["after"]})
            if start > 0:
                paging["previous"] = f"{self.url}/{_versioned(path, request)}?" + urlencode({**query, "before": paging["cursors"]["before"]})
            body["paging"] = paging
        return body

    def _time_list(self, request: Request, posts: list[Post], tree: Tree, path: str) -> dict[str, Any]:
        """Time-based paging of the Page feed edges: `since`/`until` plus an opaque `__paging_token`."""
        limit = _limit(request.arg("limit"), 25)
        since, until = _int(request.arg("since")), _int(request.arg("until"))
        chosen = [p for p in posts if (since is None or p.created >= since) and (until is None or p.created <= until)]
        offset = 0
        if request.arg("__paging_token"):  # the token carries the position; `until` in a next URL is informational
            offset = _decode(request.arg("__paging_token") or "")
            chosen = [p for p in posts if since is None or p.created >= since]
        page = chosen[offset : offset + limit]
        body: dict[str, Any] = {"data": [_project(self._post(p, request), tree) for p in page]}
        if page:
            query = {k: v[-1] for k, v in request.query.items() if k not in ("until", "__paging_token", "__previous")}
            paging: dict[str, Any] = {
                "previous": f"{self.url}/{path}?" + urlencode({**query, "since": str(page[0].created), "__previous": "1",
                                                              "__paging_token": _encode(0)}),
            }
            if offset + len(page) < len(chosen):
                paging["next"] = f"{self.url}/{path}?" + urlencode({**query, "until": str(page[-1].created),
                                                                   "__paging_token": _encode(offset + len(page))})
            body["paging"] = paging
        return body


class _Denied(Exception):
    def __init__(self, permission: str):
        super().__init__(permission)
        self.permission = permission


def _project(full: dict[str, Any], tree: Tree | None) -> dict[str, Any]:
    """Only the selected fields; edges (callables) are rendered with their modifiers and sub-selection."""
    if tree is None:
        return {k: v for k, v in full.items() if not callable(v)}
    out: dict[str, Any] = {}
    for name, (sub, mods) in tree.items():
        if name not in full or full[name] is None:
            continue
        value = full[name]
        if callable(value):
            out[name] = value(mods, sub)
        elif sub is not None and isinstance(value, dict):
            out[name] = {k: v for k, v in value.items() if k in sub and v is not None}
        else:
            out[name] = value
    return out


def _fields_of(spec: str) -> Tree:
    return parse_fields(spec)


def _unparse(tree: Tree) -> str:
    parts = []
    for name, (sub, mods) in tree.items():
        text = name + "".join(f".{k}({v})" for k, v in mods.items())
        if sub is not None:
            text += "{" + _unparse(sub) + "}"
        parts.append(text)
    return ",".join(parts)


def _versioned(path: str, request: Request) -> str:
    if re.match(r"v\d+\.\d+/", path):
        return path
    version = request.path.strip("/").split("/")[0]
    return f"{version}/{path}"


def _encode(n: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{n}".encode()).decode()


def _decode(value: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(value.encode()).decode().split(":")[1])
    except (ValueError, IndexError):
        return 0


def _limit(value: str | None, default: int) -> int:
    try:
        return max(1, min(100, int(value))) if value else default
    except ValueError:
        return default


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


# -- earful demo ----------------------------------------------------------------------------

DEMO_TOKEN_VAR = "EARFUL_DEMO_FACEBOOK_TOKEN"


def demo_server(now: float) -> MetaGraphServer:
    """One fake Graph API with Acme CRM's Page and Instagram account, dated relative to `now`."""
    server = MetaGraphServer()
    t = int(now)

    def ago(minutes: int) -> int:
        return t - minutes * 60

    # The Page's own release post: stored, never alerted; its comment threads are.
    release = server.add_post("Acme CRM 5.2 is out: offline mode, faster search and a new mobile app. What should we build next?",
                              created=ago(300), link="https://acme.example/blog/5-2")
    maria = server.add_comment(release, "How do I export my contacts from Acme to a spreadsheet? I can't find the button anywhere.",
                               author=("5550101", "Maria Jensen"), created=ago(250))
    server.add_comment(release, "Hi Maria! Settings → Data → Export, then choose CSV. Tell us if anything is missing.",
                       created=ago(200), parent=maria)
    server.add_comment(release, "Acme support never responds to my emails. Our calendar sync has been broken for three days.",
                       author=("5550102", "Tom Okafor"), created=ago(120))
    server.add_comment(release, "Congrats on the release! 🎉", author=("5550103", "Lena Fischer"), created=ago(90))
    # A visitor post on the Page nobody answered.
    server.add_post("Is there a way to get a refund for the annual Acme plan? We cancelled within the trial period and heard nothing.",
                    created=ago(60), author=("5550104", "Rahul Mehta"))
    # Press elsewhere, tagging the Page.
    server.add_post("Acme CRM raises a $40M Series B to expand into Europe", created=ago(180), edge="tagged",
                    author=("5550900", "CRM Weekly"), link="https://crmweekly.example/acme-series-b", status_type="shared_story")
    # A recommendation.
    server.add_rating("Acme lost our data during the migration and support gave no response for a week.",
                      recommendation="negative", reviewer=("5550105", "Jordan Blake"), created=ago(45))
    # Messenger: one conversation answered by the Page, one waiting.
    server.add_message(("5550106", "Priya Nair"), "How do I add a second user to Acme?", created=ago(150))
    server.add_message(("5550106", "Priya Nair"), "Hi Priya, Settings → Team → Invite. Happy selling!", created=ago(140), from_page=True)
    server.add_message(("5550107", "Sofia Rossi"), "Hi! Does anyone at Acme know how to connect the webhook to Zapier? Our trial ends Friday.",
                       created=ago(30))

    # Instagram: comments on the account's media, one answered, and a post tagging the account.
    launch = server.add_media("Meet Acme CRM 5.2 ✨ offline mode is here. #crm #sales", created=ago(280))
    dark = server.add_ig_comment(launch, "@acmecrm how do I turn on dark mode in Acme?", username="nora.designs", created=ago(240))
    server.add_ig_comment(launch, "@nora.designs Settings → Appearance → Dark 🌙", username=IG_USERNAME, created=ago(230), parent=dark)
    server.add_ig_comment(launch, "The Acme app keeps crashing since the update, totally broken on my iPhone", username="kai_sells",
                          created=ago(75))
    server.add_ig_comment(launch, "love the colors 😍", username="mila.photo", created=ago(70))
    server.add_media("Our team switched to Acme CRM (@acmecrm) this week 🚀 does anyone know how to import deals from HubSpot?",
                     created=ago(100), owner="tagged", username="salesops_daily")
    return server


def demo_source(now: float) -> DemoSource:
    """The Facebook Page monitor of `earful demo` (Messenger included)."""
    return DemoSource(
        "facebook-acme",
        demo_server(now),
        {"connector": "facebook", "schedule": "*/5 * * * *", "page_id": PAGE_ID, "page_token": "${%s}" % DEMO_TOKEN_VAR,
         "messenger": True, "base_url": "{url}"},
        env={DEMO_TOKEN_VAR: TOKEN},
    )


def instagram_demo_source(now: float) -> DemoSource:
    """The Instagram monitor of `earful demo`, served by its own fake Graph API."""
    return DemoSource(
        "instagram-acme",
        demo_server(now),
        {"connector": "instagram", "schedule": "*/5 * * * *", "ig_user_id": IG_USER_ID, "page_token": "${%s}" % DEMO_TOKEN_VAR,
         "base_url": "{url}"},
        env={DEMO_TOKEN_VAR: TOKEN},
    )
