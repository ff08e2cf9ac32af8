"""A fake of LinkedIn's Community Management REST API (api.linkedin.com/rest), standard library only.

No recording of the real API was available, so this follows LinkedIn's
documentation of the versioned API as closely as possible:

* headers: `Authorization: Bearer`, `LinkedIn-Version: YYYYMM` (missing:
  400 VERSION_MISSING; inactive: 426 NONEXISTENT_VERSION) and
  `X-Restli-Protocol-Version: 2.0.0` (needed for the `List(...)` and
  `(start:..,end:..)` syntax); URNs URL-encoded in paths and query values;
* `GET /rest/posts?author=&q=author&count=&start=&sortBy=LAST_MODIFIED|CREATED`
  and `GET /rest/posts/{urn}`;
* `GET /rest/socialMetadata?ids=List(...)` -> `{"results": {urn: {"commentSummary":
  {"count", "topLevelCount"}, "reactionSummaries", "commentsState", "entity"}},
  "statuses", "errors"}`;
* `GET /rest/socialActions/{post or comment urn}/comments?start=&count=`:
  comments with `actor`, `agent`, `commentUrn`, `$URN`, `id`,
  `created`/`lastModified` `{actor, time}`, `message{text, attributes}`,
  `object`, `parentComment` and `commentsSummary`, oldest first, paged with
  `paging{start, count, links, total}`;
* `GET /rest/organizationalEntityNotifications?q=criteria&actions=List(...)
  &organizationalEntity=...&timeRange=(start:ms,end:ms)`;
* errors as `{"status", "serviceErrorCode", "code", "message"}`: 401
  REVOKED_ACCESS_TOKEN (65600) / EXPIRED_ACCESS_TOKEN (65601) /
  INVALID_ACCESS_TOKEN, 403 ACCESS_DENIED for a missing scope, 404, and 429
  with the daily-throttle message (`throttled()`).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from .server import DemoSource, FakeServer, Request, Response

ORG = "urn:li:organization:1000001"
TOKEN = "AQXfakeLinkedInToken0000acme"
ACTIVE_VERSIONS = ("202401", "202412")  # inclusive range of versions the fake accepts


def li_error(status: int, code: str, message: str, service: int | None = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"status": status}
    if service is not None:
        body["serviceErrorCode"] = service
    body.update(code=code, message=message)
    return Response.json(body, status, headers)


def throttled() -> Response:
    """LinkedIn's daily throttle: HTTP 429, no Retry-After."""
    return li_error(429, "TOO_MANY_REQUESTS", "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.", 101)


@dataclass
class Post:
    urn: str
    author: str
    commentary: str
    created: int  # ms
    modified: int
    article: dict[str, str] | None = None
    lifecycle: str = "PUBLISHED"
    edited: bool = False


@dataclass
class Comment:
    id: str
    post: str
    activity: str
    actor: str
    text: str
    created: int  # ms
    modified: int
    parent: str | None = None
    agent: str | None = None

    @property
    def urn(self) -> str:
        return f"urn:li:comment:({self.activity},{self.id})"


@dataclass
class Notification:
    id: int
    action: str
    source_post: str
    generated: str
    at: int  # ms


class LinkedInServer(FakeServer):
    """An organization with posts, comments, comments on comments and notifications."""

    def __init__(self, *, token: str = TOKEN, organization: str = ORG, scopes: set[str] | None = None) -> None:
        super().__init__()
        self.token, self.organization = token, organization
        self.scopes = set(scopes) if scopes is not None else {"r_organization_social", "w_organization_social", "rw_organization_admin"}
        self.token_state = "valid"
        self.posts: dict[str, Post] = {}
        self.comments: dict[str, Comment] = {}
        self.notifications: list[Notification] = []
        self._ids = itertools.count(1)
        self._data_lock = threading.RLock()

    # -- building data ------------------------------------------------------------------
    def add_post(self, commentary: str, *, author: str | None = None, created: float | None = None, article: dict[str, str] | None = None,
                 urn: str | None = None, notify_mention: bool = False) -> str:
        """A post by the organization (default) or by `author`; `notify_mention` files a SHARE_MENTION notification."""
        with self._data_lock:
            ms = int((time.time() if created is None else created) * 1000)
            urn = urn or f"urn:li:share:{7200000000000000000 + next(self._ids)}"
            self.posts[urn] = Post(urn, author or self.organization, commentary, ms, ms, article)
            if notify_mention:
                self._notify("SHARE_MENTION", urn, urn, ms)
            return urn

    def add_comment(self, post: str, text: str, *, actor: str, created: float | None = None, parent: str | None = None,
                    agent: str | None = None, notify: bool = True) -> str:
        """A comment on `post` (a comment on a comment when `parent` is a comment URN); returns its URN."""
        with self._data_lock:
            if post not in self.posts:
                raise KeyError(post)
            ms = int((time.time() if created is None else created) * 1000)
            activity = f"urn:li:activity:{post.rsplit(':', 1)[-1]}"
            comment = Comment(str(6900000000000000000 + next(self._ids)), post, activity, actor, text, ms, ms, parent, agent)
            self.comments[comment.urn] = comment
            if notify and self.posts[post].author == self.organization:
                self._notify("COMMENT", post, comment.urn, ms)
            return comment.urn

    def edit_comment(self, urn: str, text: str, at: float) -> None:
        with self._data_lock:
            comment = self.comments[urn]
            comment.text, comment.modified = text, int(at * 1000)

    def delete(self, urn: str) -> None:
        with self._data_lock:
            self.posts.pop(urn, None)
            for key in [k for k, c in self.comments.items() if urn in (k, c.post, c.parent)]:
                del self.comments[key]

    def _notify(self, action: str, source: str, generated: str, ms: int) -> None:
        self.notifications.append(Notification(4400000 + next(self._ids), action, source, generated, ms))

    def revoke(self, how: str = "revoked") -> None:
        """`revoked` (65600) or `expired` (65601)."""
        self.token_state = how

    # -- HTTP ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        with self._data_lock:
            problem = self._check(request)
            if problem:
                return problem
            path = request.path
            if path == "/rest/posts":
                return self._posts(request)
            if m := re.fullmatch(r"/rest/posts/([^/]+)", path):
                post = self.posts.get(unquote(m.group(1)))
                if post is None:
                    return li_error(404, "NOT_FOUND", f"Post {unquote(m.group(1))} does not exist", 100)
                return self._json(self._post(post))
            if path == "/rest/socialMetadata":
                return self._metadata(request)
            if m := re.fullmatch(r"/rest/socialActions/([^/]+)/comments", path):
                return self._comments(request, unquote(m.group(1)))
            if path == "/rest/organizationalEntityNotifications":
                if "rw_organization_admin" not in self.scopes:
                    return li_error(403, "ACCESS_DENIED", "Not enough permissions to access: "
                                    "organizationalEntityNotifications.FINDER-criteria.20241001", 100)
                return self._notifications(request)
            return li_error(404, "RESOURCE_NOT_FOUND", f"No virtual resource found for {path}")

    def _check(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return li_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65602)
        if self.token_state == "revoked":
            return li_error(401, "REVOKED_ACCESS_TOKEN", "The token used in the request has been revoked by the user", 65600)
        if self.token_state == "expired":
            return li_error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired", 65601)
        version = request.headers.get("linkedin-version")
        if not version:
            return li_error(400, "VERSION_MISSING", "A version must be present. Please specify a version by adding the "
                            "LinkedIn-Version header.")
        if not (ACTIVE_VERSIONS[0] <= version[:6] <= ACTIVE_VERSIONS[1]):
            return li_error(426, "NONEXISTENT_VERSION", f"Requested version {version} is not active")
        if request.headers.get("x-restli-protocol-version") != "2.0.0" and any("List(" in v[-1] or v[-1].startswith("(")
                                                                                for v in request.query.values()):
            return li_error(400, "ILLEGAL_ARGUMENT", "Invalid query parameter syntax: use X-Restli-Protocol-Version 2.0.0")
        if "r_organization_social" not in self.scopes and request.path != "/rest/organizationalEntityNotifications":
            return li_error(403, "ACCESS_DENIED", f"Not enough permissions to access: {request.path.split('/')[2]}.GET.20241001", 100)
        return None

    def _json(self, body: Any) -> Response:
        return Response.json(body, headers={"x-restli-protocol-version": "2.0.0", "x-li-fabric": "prod-lva1",
                                            "x-li-uuid": uuid.uuid4().hex[:22], "x-li-responseorigin": "RGW"})

    def _page(self, request: Request, items: list[Any], render: Any) -> dict[str, Any]:
        start = max(0, int(request.arg("start", "0") or 0))
        count = max(1, min(100, int(request.arg("count", "10") or 10)))
        chosen = items[start : start + count]
        links = []
        if start + count < len(items):
            query = "&".join(f"{k}={quote(v[-1], safe='(),:')}" for k, v in request.query.items() if k not in ("start", "count"))
            links.append({"type": "application/json", "rel": "next", "href": f"{request.path}?{query}&start={start + count}&count={count}"})
        return {"paging": {"start": start, "count": count, "links": links, "total": len(items)}, "elements": [render(i) for i in chosen]}

    def _posts(self, request: Request) -> Response:
        if request.arg("q") != "author" or not request.arg("author"):
            return li_error(400, "ILLEGAL_ARGUMENT", "q=author and author are required")
        author = request.arg("author")
        key = (lambda p: p.created) if request.arg("sortBy") == "CREATED" else (lambda p: p.modified)
        posts = sorted((p for p in self.posts.values() if p.author == author), key=key, reverse=True)
        return self._json(self._page(request, posts, self._post))

    def _post(self, post: Post) -> dict[str, Any]:
        body: dict[str, Any] = {
            "isReshareDisabledByAuthor": False,
            "createdAt": post.created,
            "lifecycleState": post.lifecycle,
            "lastModifiedAt": post.modified,
            "visibility": "PUBLIC",
            "publishedAt": post.created,
            "author": post.author,
            "id": post.urn,
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "commentary": post.commentary,
            "lifecycleStateInfo": {"isEditedByAuthor": post.edited},
        }
        if post.article:
            body["content"] = {"article": dict(post.article)}
        return body

    def _metadata(self, request: Request) -> Response:
        spec = request.arg("ids", "") or ""
        m = re.fullmatch(r"List\((.*)\)", spec)
        if not m:
            return li_error(400, "ILLEGAL_ARGUMENT", "ids must be List(...)")
        results, statuses, errors = {}, {}, {}
        for urn in filter(None, (unquote(u) for u in m.group(1).split(","))):
            if urn not in self.posts:
                statuses[urn] = 404
                errors[urn] = {"status": 404, "message": f"Not found: {urn}"}
                continue
            on_post = [c for c in self.comments.values() if c.post == urn]
            results[urn] = {
                "reactionSummaries": {"LIKE": {"reactionType": "LIKE", "count": 2}},
                "commentsState": "OPEN",
                "commentSummary": {"count": len(on_post), "topLevelCount": sum(c.parent is None for c in on_post)},
                "entity": urn,
            }
            statuses[urn] = 200
        return self._json({"results": results, "statuses": statuses, "errors": errors})

    def _comments(self, request: Request, target: str) -> Response:
        if target.startswith("urn:li:comment:"):
            if target not in self.comments:
                return li_error(404, "NOT_FOUND", f"Comment {target} does not exist", 100)
            chosen = [c for c in self.comments.values() if c.parent == target]
        else:
            if target not in self.posts:
                return li_error(404, "NOT_FOUND", f"Entity {target} does not exist", 100)
            chosen = [c for c in self.comments.values() if c.post == target and c.parent is None]
        chosen.sort(key=lambda c: (c.created, c.id))
        return self._json(self._page(request, chosen, self._comment))

    def _comment(self, comment: Comment) -> dict[str, Any]:
        replies = [c for c in self.comments.values() if c.parent == comment.urn]
        body: dict[str, Any] = {
            "actor": comment.actor,
            "commentUrn": comment.urn,
            "created": {"actor": comment.agent or comment.actor, "time": comment.created},
            "id": comment.id,
            "lastModified": {"actor": comment.agent or comment.actor, "time": comment.modified},
            "likesSummary": {"selectedLikes": [], "aggregatedTotalLikes": 0, "likedByCurrentUser": False, "totalLikes": 0},
            "message": {"attributes": [], "text": comment.text},
            "$URN": comment.urn,
            "object": comment.activity,
        }
        if comment.agent:
            body["agent"] = comment.agent
        if comment.parent:
            body["parentComment"] = comment.parent
        if comment.parent is None:
            body["commentsSummary"] = {"selectedComments": [r.urn for r in replies[:2]], "totalFirstLevelComments": len(replies),
                                       "aggregatedTotalComments": len(replies)}
        return body

    def _notifications(self, request: Request) -> Response:
        if request.arg("q") != "criteria" or request.arg("organizationalEntity") != self.organization:
            return li_error(400, "ILLEGAL_ARGUMENT", "q=criteria and organizationalEntity of an administered organization are required")
        actions = set(re.findall(r"[A-Z_]+", (request.arg("actions") or "").removeprefix("List")))
        window = re.fullmatch(r"\(start:(\d+),end:(\d+)\)", request.arg("timeRange") or "")
        lo, hi = (int(window.group(1)), int(window.group(2))) if window else (0, 2**63)
        chosen = [n for n in self.notifications if (not actions or n.action in actions) and lo <= n.at <= hi]
        chosen.sort(key=lambda n: n.at, reverse=True)
        return self._json(self._page(request, chosen, lambda n: {
            "lastModifiedAt": n.at, "organizationalEntity": self.organization, "action": n.action,
            "sourcePost": n.source_post, "notificationId": n.id, "generatedActivity": n.generated}))


# -- earful demo ----------------------------------------------------------------------------

DEMO_TOKEN_VAR = "EARFUL_DEMO_LINKEDIN_TOKEN"


def demo_server(now: float) -> LinkedInServer:
    server = LinkedInServer()

    def ago(minutes: int) -> float:
        return now - minutes * 60

    server.add_post("We're hiring! Acme CRM is looking for a senior backend engineer in Berlin. #hiring", created=ago(2000))
    release = server.add_post("Acme CRM 5.2 is out: offline mode, faster search and a brand new mobile app. What should we build next?",
                              created=ago(400), article={"source": "https://acme.example/blog/5-2", "title": "Acme CRM 5.2"})
    question = server.add_comment(release, "How do I migrate from Salesforce to Acme without losing our custom fields?",
                                  actor="urn:li:person:Qm9iVGVzdDE", created=ago(300))
    server.add_comment(release, "Hi! The import wizard keeps custom fields: Settings → Import → Salesforce. Happy to help in DM.",
                       actor=ORG, agent="urn:li:person:QWNtZVN1cHA", parent=question, created=ago(240))
    server.add_comment(release, "We asked Acme support about SSO three times and got no response. Is anyone reading these?",
                       actor="urn:li:person:Q2FybGFEZXY", created=ago(130))
    server.add_comment(release, "Great update, congrats to the team!", actor="urn:li:person:RGF2ZU1nbXQ", created=ago(110))
    server.add_post("Evaluating Acme CRM for our 40-person sales team. Does anyone know how their API rate limits work in practice?",
                    author="urn:li:person:U2FtUmV2T3Bz", created=ago(50), notify_mention=True)
    return server


def demo_source(now: float) -> DemoSource:
    return DemoSource(
        "linkedin-acme",
        demo_server(now),
        {"connector": "linkedin", "schedule": "*/5 * * * *", "organization": ORG, "access_token": "${%s}" % DEMO_TOKEN_VAR,
         "base_url": "{url}"},
        env={DEMO_TOKEN_VAR: TOKEN},
    )
