"""A fake of Reddit's OAuth API (oauth.reddit.com + www.reddit.com/api/v1), standard library only.

It speaks the wire format praw and prawcore expect, as recorded in praw's
own cassettes: `POST /api/v1/access_token` with HTTP Basic client
credentials (`client_credentials` for read-only apps, `password` for a
script account; wrong client credentials are a 401 `{"message":
"Unauthorized", "error": 401}`, a wrong password is a *200* with
`{"error": "invalid_grant"}`); every API call needs `Authorization: bearer
TOKEN` and answers 401 with `www-authenticate: Bearer realm="reddit",
error="invalid_token"` otherwise; `x-ratelimit-remaining/used/reset` on
every answer.

Listings are `{"kind": "Listing", "data": {"after", "before", "dist",
"modhash", "geo_filter", "children": [{"kind": "t3"|"t1", "data": {...}}]}}`,
newest first, paged with `limit` (max 100) and `after`, and like Reddit's
they reach back at most 1000 items. Things carry Reddit's odd values:
`edited` is `false` or a float timestamp, deleted authors are
"[deleted]" with no `author_fullname`, bodies of deleted/removed things
are "[deleted]"/"[removed]", `removed_by_category` on posts, HTML fields
(`selftext_html`, `body_html`) next to markdown, `raw_json=1` switching
off HTML-escaping of text. `comment_permalinks=False` serves comments as
the 2014-2016 listings in praw's cassettes show them, without `permalink`.

Endpoints: `/search` and `/r/{subs}/search` (`q` with AND/OR/NOT,
parentheses, phrases, `title:`, `author:`, `subreddit:`, `selftext:`,
`site:`; `sort=new|relevance`; posts only; `index_delay` holds a post back
as Reddit's search index does), `/r/{a+b}/new`, `/r/{a+b}/comments`,
`/message/mentions` (username mentions of the token's user; needs a
script-account token), `/comments/{id}` and `/comments/{id}/_/{comment}`
(two listings: the post, then the comment tree, cut by `tree_limit` and
`depth_limit` into `more` objects, including "continue this thread"
ones with `count: 0`), `POST /api/morechildren` (the hidden comments,
flat, in the `{"json": {"errors": [], "data": {"things": [...]}}}`
envelope), and `/api/info`.
"""

from __future__ import annotations

import base64
import html
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import search_syntax
from .server import DemoSource, FakeServer, Request, Response

LISTING_REACH = 1000  # Reddit serves at most this many items of any listing
_MD_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_USER_MENTION = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]{3,20})")
_SPOILER = re.compile(r"&gt;!(.+?)!&lt;")  # `>!hidden!<`, after escaping
_SPOILER_LINK = re.compile(r'\[([^\]]*)\]\((/s|#s|/spoiler|#spoiler) "([^"]*)"\)')  # `[shown](/s "hidden")`


def to_base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


@dataclass
class Thing:
    """A post (t3) or comment (t1) as the fake stores it; the wire data is rendered from it."""

    kind: str
    id: str
    author: str
    created_utc: float
    subreddit: str
    title: str = ""
    selftext: str = ""
    url: str | None = None  # a link post's target; None for self posts
    body: str = ""
    link_id: str = ""  # comments: the post's id36
    parent: str = ""  # comments: parent fullname
    edited: float | bool = False
    state: str = ""  # "", "deleted" (by its author) or "removed" (by a moderator)
    distinguished: str | None = None
    num_comments: int | None = None  # shown instead of the counted comments when set
    score: int = 1
    searchable_at: float = 0.0
    children: list[str] = field(default_factory=list)  # fullnames of direct replies, oldest first

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.id}"


@dataclass
class Account:
    password: str
    id: str


class RedditServer(FakeServer):
    """Holds posts and comments; `add_post` / `add_comment` return the thing's wire data."""

    def __init__(
        self,
        *,
        client_id: str = "earful-test-app",
        client_secret: str = "earful-test-secret",
        accounts: dict[str, str] | None = None,
        tree_limit: int = 200,
        depth_limit: int = 10,
        comment_permalinks: bool = True,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.accounts = {name: Account(pw, to_base36(10_000_000 + n)) for n, (name, pw) in enumerate((accounts or {}).items())}
        self.tree_limit = tree_limit  # replies rendered per comment level before a `more`
        self.depth_limit = depth_limit  # levels before a "continue this thread" `more`
        # False serves comments as older listings did (2014-2016, praw's cassettes): no `permalink`, no `link_permalink`
        self.comment_permalinks = comment_permalinks
        self.things: dict[str, Thing] = {}
        self.tokens: dict[str, str | None] = {}  # token -> username (None: application-only)
        self.rate = {"remaining": 996.0, "used": 4, "reset": 300}  # frozen mid-window: praw never has to sleep
        self._ids = {"t3": itertools.count(int("1c0000", 36)), "t1": itertools.count(int("kq00000", 36))}
        self._data_lock = threading.RLock()

    # -- building data -------------------------------------------------
    def add_post(
        self,
        subreddit: str = "crm",
        *,
        title: str,
        selftext: str = "",
        author: str = "someone",
        url: str | None = None,
        created_utc: float | None = None,
        id: str | None = None,
        edited: float | bool = False,
        num_comments: int | None = None,
        distinguished: str | None = None,
        index_delay: float = 0.0,
        score: int = 1,
    ) -> dict[str, Any]:
        """Add a post (a link post when `url` is given) and return its listing data.

        `index_delay` keeps it out of `/search` for that many seconds after
        `created_utc`, as Reddit's search index lags behind `/new`.
        """
        with self._data_lock:
            created = time.time() if created_utc is None else float(created_utc)
            thing = Thing(
                kind="t3", id=self._new_id("t3", id), author=author, created_utc=created, subreddit=subreddit,
                title=title, selftext=selftext, url=url, edited=edited, num_comments=num_comments,
                distinguished=distinguished, score=score, searchable_at=created + index_delay,
            )
            self.things[thing.name] = thing
            return self.render(thing)

    def add_comment(
        self,
        parent: str,
        *,
        body: str,
        author: str = "someone",
        created_utc: float | None = None,
        id: str | None = None,
        edited: float | bool = False,
        distinguished: str | None = None,
        score: int = 1,
    ) -> dict[str, Any]:
        """Add a comment under `parent` (a post or comment fullname) and return its listing data."""
        with self._data_lock:
            up = self.things.get(parent)
            if up is None:
                raise ValueError(f"unknown parent {parent}")
            thing = Thing(
                kind="t1", id=self._new_id("t1", id), author=author,
                created_utc=time.time() if created_utc is None else float(created_utc),
                subreddit=up.subreddit, body=body, link_id=up.id if up.kind == "t3" else up.link_id, parent=parent,
                edited=edited, distinguished=distinguished, score=score,
            )
            self.things[thing.name] = thing
            up.children.append(thing.name)
            return self.render(thing)

    def delete(self, fullname: str) -> None:
        """The author deleted it: author and text become "[deleted]"."""
        with self._data_lock:
            self.things[fullname].state = "deleted"

    def remove(self, fullname: str) -> None:
        """A moderator removed it: the text becomes "[removed]" (a comment also hides its author)."""
        with self._data_lock:
            self.things[fullname].state = "removed"

    def edit(self, fullname: str, text: str, at: float | None = None) -> None:
        with self._data_lock:
            thing = self.things[fullname]
            if thing.kind == "t3":
                thing.selftext = text
            else:
                thing.body = text
            thing.edited = float(int(time.time() if at is None else at))

    def index_now(self, fullname: str) -> None:
        """Reddit's search index caught up with this post: `/search` shows it from now on."""
        with self._data_lock:
            self.things[fullname].searchable_at = time.time() - 1

    def revoke_all(self) -> None:
        """The app's credentials were revoked: tokens die, new ones are refused."""
        with self._data_lock:
            self.tokens.clear()
            self.client_secret = secrets.token_hex(8)

    def _new_id(self, kind: str, wanted: str | None) -> str:
        if wanted is None:
            while True:
                wanted = to_base36(next(self._ids[kind]))
                if f"{kind}_{wanted}" not in self.things:
                    break
        if f"{kind}_{wanted}" in self.things:
            raise ValueError(f"{kind}_{wanted} exists")
        return wanted

    # -- rendering -----------------------------------------------------
    def render(self, thing: Thing, *, depth: int | None = None, listing_extras: bool = False) -> dict[str, Any]:
        return self._post_data(thing) if thing.kind == "t3" else self._comment_data(thing, depth, listing_extras)

    def _count(self, thing: Thing) -> int:
        return sum(1 + self._count(self.things[c]) for c in thing.children)

    def _author_fields(self, thing: Thing, hidden: bool) -> dict[str, Any]:
        if hidden:
            return {"author": "[deleted]", "author_flair_css_class": None, "author_flair_richtext": [],
                    "author_flair_text": None, "author_flair_type": "text"}
        account = self.accounts.get(thing.author)
        fullname = f"t2_{account.id}" if account else "t2_" + to_base36(abs(hash(thing.author)) % 36**8)
        return {"author": thing.author, "author_flair_css_class": None, "author_flair_richtext": [],
                "author_flair_text": None, "author_flair_type": "text", "author_fullname": fullname,
                "author_is_blocked": False, "author_patreon_flair": False, "author_premium": False}

    def _permalink(self, thing: Thing) -> str:
        post = thing if thing.kind == "t3" else self.things[f"t3_{thing.link_id}"]
        slug = "_".join(search_syntax.words(post.title))[:50].strip("_") or "_"
        base = f"/r/{post.subreddit}/comments/{post.id}/{slug}/"
        return base if thing.kind == "t3" else f"{base}{thing.id}/"

    def _post_data(self, thing: Thing) -> dict[str, Any]:
        text = {"deleted": "[deleted]", "removed": "[removed]"}.get(thing.state, thing.selftext)
        is_self = thing.url is None
        permalink = self._permalink(thing)
        domain = f"self.{thing.subreddit}" if is_self else (re.sub(r"^www\.", "", (thing.url or "").split("/")[2]) if "//" in (thing.url or "") else "")
        data = {
            "approved_at_utc": None, "subreddit": thing.subreddit, "selftext": text if is_self else "",
            "saved": False, "mod_reason_title": None, "gilded": 0, "clicked": False, "title": thing.title,
            "link_flair_richtext": [], "subreddit_name_prefixed": f"r/{thing.subreddit}", "hidden": False,
            "pwls": 6, "link_flair_css_class": None, "downs": 0, "thumbnail_height": None, "top_awarded_type": None,
            "hide_score": False, "name": thing.name, "quarantine": False, "link_flair_text_color": "dark",
            "upvote_ratio": 1.0, "subreddit_type": "public", "ups": thing.score, "total_awards_received": 0,
            "media_embed": {}, "is_original_content": False, "user_reports": [], "secure_media": None,
            "is_reddit_media_domain": False, "is_meta": False, "category": None, "secure_media_embed": {},
            "link_flair_text": None, "can_mod_post": False, "score": thing.score, "approved_by": None,
            "is_created_from_ads_ui": False, "thumbnail": "self" if is_self else "default", "edited": thing.edited,
            "gildings": {}, "content_categories": None, "is_self": is_self, "mod_note": None,
            "created": thing.created_utc, "link_flair_type": "text", "wls": 6,
            "removed_by_category": {"deleted": "deleted", "removed": "moderator"}.get(thing.state),
            "banned_by": None, "domain": domain, "allow_live_comments": False,
            "selftext_html": md_html(text) if is_self and text else None, "likes": None, "suggested_sort": None,
            "banned_at_utc": None, "view_count": None, "archived": False, "no_follow": thing.score < 2,
            "is_crosspostable": not thing.state, "pinned": False, "over_18": False, "all_awardings": [],
            "awarders": [], "media_only": False, "can_gild": False, "spoiler": False, "locked": False,
            "treatment_tags": [], "visited": False, "removed_by": None, "num_reports": None,
            "distinguished": thing.distinguished, "subreddit_id": "t5_" + to_base36(abs(hash(thing.subreddit)) % 36**6),
            "author_is_blocked": False, "mod_reason_by": None, "removal_reason": None,
            "link_flair_background_color": "", "id": thing.id, "is_robot_indexable": not thing.state,
            "report_reasons": None, "discussion_type": None,
            "num_comments": self._count(thing) if thing.num_comments is None else thing.num_comments,
            "send_replies": True, "contest_mode": False, "mod_reports": [], "permalink": permalink,
            "stickied": False, "url": ("https://www.reddit.com" + permalink) if is_self else thing.url,
            "subreddit_subscribers": 48213, "created_utc": thing.created_utc, "num_crossposts": 0,
            "media": None, "is_video": False,
        }
        data.update(self._author_fields(thing, hidden=thing.state == "deleted"))
        return dict(sorted(data.items()))

    def _comment_data(self, thing: Thing, depth: int | None, listing_extras: bool) -> dict[str, Any]:
        text = {"deleted": "[deleted]", "removed": "[removed]"}.get(thing.state, thing.body)
        post = self.things[f"t3_{thing.link_id}"]
        data: dict[str, Any] = {
            "subreddit_id": "t5_" + to_base36(abs(hash(thing.subreddit)) % 36**6), "approved_at_utc": None,
            "author_is_blocked": False, "comment_type": None, "awarders": [], "mod_reason_by": None,
            "banned_by": None, "link_id": f"t3_{thing.link_id}", "likes": None, "replies": "",
            "user_reports": [], "saved": False, "id": thing.id, "banned_at_utc": None, "mod_reason_title": None,
            "gilded": 0, "archived": False, "collapsed_reason_code": None, "no_follow": True, "can_mod_post": False,
            "created_utc": thing.created_utc, "send_replies": True, "parent_id": thing.parent, "score": thing.score,
            "approved_by": None, "mod_note": None, "all_awardings": [], "collapsed": bool(thing.state),
            "body": text, "edited": thing.edited, "top_awarded_type": None, "name": thing.name,
            "is_submitter": thing.author == post.author and not thing.state, "downs": 0,
            "body_html": md_html(text), "removal_reason": None, "collapsed_reason": None,
            "distinguished": thing.distinguished, "associated_award": None, "stickied": False,
            "can_gild": False, "gildings": {}, "unrepliable_reason": None, "score_hidden": False,
            "permalink": self._permalink(thing), "subreddit_type": "public", "locked": False,
            "report_reasons": None, "created": thing.created_utc, "subreddit": thing.subreddit,
            "treatment_tags": [], "subreddit_name_prefixed": f"r/{thing.subreddit}", "controversiality": 0,
            "collapsed_because_crowd_control": None, "mod_reports": [], "num_reports": None, "ups": thing.score,
        }
        if depth is not None:
            data["depth"] = depth
        if listing_extras:  # /r/sub/comments adds the post's details
            data.update(link_title=post.title, link_author=post.author if post.state != "deleted" else "[deleted]",
                        link_permalink="https://www.reddit.com" + self._permalink(post),
                        link_url=post.url or "https://www.reddit.com" + self._permalink(post),
                        num_comments=self._count(post), over_18=False, quarantine=False)
        data.update(self._author_fields(thing, hidden=bool(thing.state)))
        if not self.comment_permalinks:
            data.pop("permalink")
            data.pop("link_permalink", None)
        return dict(sorted(data.items()))

    def _mention_data(self, thing: Thing, user: str) -> dict[str, Any]:
        """A username mention as `/message/mentions` shows it: a comment in inbox clothes."""
        post = self.things[f"t3_{thing.link_id}"]
        comment = self._comment_data(thing, None, False)
        data = {
            "first_message": None, "first_message_name": None, "subreddit": thing.subreddit, "likes": None,
            "replies": "", "author_fullname": comment.get("author_fullname"), "id": thing.id,
            "subject": "username mention", "associated_awarding_id": None, "score": thing.score,
            "author": comment["author"], "num_comments": self._count(post), "parent_id": thing.parent,
            "subreddit_name_prefixed": f"r/{thing.subreddit}", "new": True, "type": "username_mention",
            "body": comment["body"], "link_title": post.title, "dest": user, "was_comment": True,
            "body_html": comment["body_html"], "name": thing.name, "created": thing.created_utc,
            "created_utc": thing.created_utc, "context": f"{self._permalink(thing)}?context=3",
            "distinguished": thing.distinguished,
        }
        if data["author_fullname"] is None:
            del data["author_fullname"]
        return data

    def _tree(self, names: list[str], depth: int, parent: str) -> list[dict[str, Any]]:
        """Children of `parent` as a comment tree, cut into `more` objects where Reddit would cut."""
        if depth >= self.depth_limit and names:  # "continue this thread"
            return [_more(parent, depth, [], 0, self.things[parent].id)]
        shown, hidden = names[: self.tree_limit], names[self.tree_limit :]
        out = []
        for name in shown:
            thing = self.things[name]
            data = self._comment_data(thing, depth, False)
            below = self._tree(thing.children, depth + 1, name)
            data["replies"] = _listing(below) if below else ""
            out.append({"kind": "t1", "data": data})
        if hidden:
            ids = [self.things[n].id for n in hidden]
            count = sum(1 + self._count(self.things[n]) for n in hidden)
            out.append(_more(parent, depth, ids, count, ids[0]))
        return out

    # -- HTTP ------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = re.sub(r"\.json$", "", request.path.rstrip("/")) or "/"
        if path == "/api/v1/access_token":
            return self._token(request)
        user = self.tokens.get(_bearer(request) or "", "<none>")
        if user == "<none>":
            return self._json({"message": "Unauthorized", "error": 401}, 401,
                              {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'})
        with self._data_lock:
            self._tick()
            escape = request.arg("raw_json") != "1"
            if path == "/search" or re.fullmatch(r"/r/[^/]+/search", path):
                sub = path.split("/")[2] if path.startswith("/r/") else None
                return self._search(request, sub if request.arg("restrict_sr") in ("1", "true", "on", "True") else None, escape)
            if m := re.fullmatch(r"/r/([^/]+)/(new|comments)", path):
                subs = {s.lower() for s in m.group(1).split("+")}
                kind = "t3" if m.group(2) == "new" else "t1"
                items = [t for t in self.things.values() if t.kind == kind and (t.subreddit.lower() in subs or "all" in subs)]
                return self._listing(request, items, escape, listing_extras=kind == "t1")
            if path == "/message/mentions":
                if user is None:
                    return self._json({"message": "Forbidden", "error": 403}, 403)
                return self._mentions(request, user, escape)
            if m := re.fullmatch(r"/comments/([0-9a-z]+)(?:/[^/]+)?(?:/([0-9a-z]+))?", path):
                return self._comments(request, m.group(1), m.group(2), escape)
            if path == "/api/morechildren":
                return self._morechildren(request, escape)
            if path == "/api/info":
                names = (request.arg("id") or "").split(",")
                items = [self.things[n] for n in names if n in self.things]
                return self._json(_escaped(_listing([{"kind": t.kind, "data": self.render(t)} for t in items]), escape))
        return self._json({"message": "Not Found", "error": 404}, 404)

    def _tick(self) -> None:
        self.rate["used"] = int(self.rate["used"]) + 1
        self.rate["remaining"] = max(0.0, float(self.rate["remaining"]) - 1)

    def rate_headers(self) -> dict[str, str]:
        return {"x-ratelimit-remaining": f"{float(self.rate['remaining']):.1f}", "x-ratelimit-used": str(self.rate["used"]),
                "x-ratelimit-reset": str(self.rate["reset"])}

    def too_many_requests(self, reset: int = 420) -> Response:
        """A real-looking 429: Reddit's body and exhausted rate-limit headers (use with `fail_next`)."""
        return Response.json({"message": "Too Many Requests", "error": 429}, 429,
                             {"x-ratelimit-remaining": "0.0", "x-ratelimit-used": "1000", "x-ratelimit-reset": str(reset)})

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response.json(data, status, {**self.rate_headers(), **(headers or {})})

    def _token(self, request: Request) -> Response:
        """The token endpoint; like Reddit's it answers `Connection: close` (prawcore asks for it)."""
        response = self._grant(request)
        response.headers["Connection"] = "close"
        return response

    def _grant(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        try:
            client_id, client_secret = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":", 1)
        except (ValueError, UnicodeDecodeError):
            client_id = client_secret = ""
        if not auth.startswith("Basic ") or (client_id, client_secret) != (self.client_id, self.client_secret):
            return Response.json({"message": "Unauthorized", "error": 401}, 401)
        form = request.form()
        grant = form.get("grant_type")
        token = secrets.token_urlsafe(24)
        if grant == "client_credentials":
            self.tokens[token] = None
            return Response.json({"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"})
        if grant == "password":
            account = self.accounts.get(form.get("username", ""))
            if account is None or account.password != form.get("password"):
                return Response.json({"error": "invalid_grant"})
            self.tokens[token] = form["username"]
            return Response.json({"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"})
        return Response.json({"error": "unsupported_grant_type"})

    def _page(self, request: Request, items: list[Thing]) -> tuple[list[Thing], str | None, str | None]:
        """Reddit paging: newest first, `after` a fullname, at most LISTING_REACH items reachable."""
        items = sorted(items, key=lambda t: (t.created_utc, t.name), reverse=True)[:LISTING_REACH]
        try:
            limit = max(1, min(100, int(request.arg("limit") or 25)))
        except ValueError:
            limit = 25
        start = 0
        after = request.arg("after")
        if after:
            names = [t.name for t in items]
            if after not in names:
                return [], None, None  # as Reddit: an unknown `after` gives an empty page
            start = names.index(after) + 1
        chosen = items[start : start + limit]
        more = start + limit < len(items)
        return chosen, (chosen[-1].name if chosen and more else None), (chosen[0].name if chosen and after else None)

    def _listing(self, request: Request, items: list[Thing], escape: bool, listing_extras: bool = False) -> Response:
        chosen, after, before = self._page(request, items)
        children = [{"kind": t.kind, "data": self.render(t, listing_extras=listing_extras)} for t in chosen]
        return self._json(_escaped(_listing(children, after=after, before=before, geo_filter=""), escape))

    def _search(self, request: Request, subreddit: str | None, escape: bool) -> Response:
        query = request.arg("q") or ""
        try:
            node = search_syntax.parse(query, {"title", "author", "subreddit", "selftext", "site", "url", "self", "nsfw"})
        except search_syntax.QuerySyntaxError:
            node = None  # Reddit answers an unreadable query with an empty listing, not an error
        now = time.time()
        found = []
        for thing in self.things.values():
            if thing.kind != "t3" or thing.searchable_at > now or thing.state:
                continue
            if subreddit and thing.subreddit.lower() != subreddit.lower():
                continue
            if node is not None and search_syntax.matches(node, self._document(thing)):
                found.append(thing)
        if request.arg("sort", "relevance") != "new":
            found.sort(key=lambda t: t.score, reverse=True)  # `_page` re-sorts by date: relevance is not modelled
        chosen, after, before = self._page(request, found)
        children = [{"kind": "t3", "data": self.render(t)} for t in chosen]
        return self._json(_escaped({"kind": "Listing", "data": {"after": after, "dist": len(children), "facets": {},
                                                                 "modhash": "", "geo_filter": "", "children": children,
                                                                 "before": before}}, escape))

    def _document(self, thing: Thing) -> search_syntax.Document:
        title_words = search_syntax.words(thing.title)
        text_words = search_syntax.words(thing.selftext)

        def contains(words: list[str], value: str) -> bool:
            wanted = search_syntax.words(value)
            return any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))

        return search_syntax.Document(
            f"{thing.title}\n{thing.selftext}\n{thing.url or ''}",
            {
                "title": lambda v: contains(title_words, v),
                "selftext": lambda v: contains(text_words, v),
                "author": lambda v: thing.author.lower() == v.lower(),
                "subreddit": lambda v: thing.subreddit.lower() == v.lower(),
                "site": lambda v: bool(thing.url) and v.lower() in (thing.url or "").lower(),
                "url": lambda v: v.lower() in (thing.url or "").lower(),
                "self": lambda v: (thing.url is None) == (v.lower() in ("yes", "true", "1")),
                "nsfw": lambda v: v.lower() in ("no", "false", "0"),
            },
        )

    def _mentions(self, request: Request, user: str, escape: bool) -> Response:
        pattern = re.compile(rf"(?<![\w/])/?u/{re.escape(user)}\b", re.I)
        items = [t for t in self.things.values() if t.kind == "t1" and not t.state and pattern.search(t.body)]
        chosen, after, before = self._page(request, items)
        children = [{"kind": "t1", "data": self._mention_data(t, user)} for t in chosen]
        listing = _listing(children, after=after, before=before, geo_filter="")
        listing["data"]["modhash"] = None
        return self._json(_escaped(listing, escape))

    def _comments(self, request: Request, post_id: str, focus: str | None, escape: bool) -> Response:
        post = self.things.get(f"t3_{post_id}")
        if post is None:
            return self._json({"message": "Not Found", "error": 404}, 404)
        head = _listing([{"kind": "t3", "data": self.render(post)}], dist=1)
        if focus is None:
            tree = self._tree(post.children, 0, post.name)
        else:
            comment = self.things.get(f"t1_{focus}")
            if comment is None or comment.link_id != post_id:
                return self._json(_escaped([head, _listing([])], escape))  # Reddit: an empty tree
            try:
                context = max(0, min(8, int(request.arg("context") or 0)))
            except ValueError:
                context = 0
            chain = [comment]
            while len(chain) <= context and chain[-1].parent.startswith("t1_"):
                chain.append(self.things[chain[-1].parent])
            chain.reverse()  # top ancestor first
            data = self._comment_data(comment, len(chain) - 1, False)
            below = self._tree(comment.children, len(chain), comment.name)
            data["replies"] = _listing(below) if below else ""
            node = {"kind": "t1", "data": data}
            for n, ancestor in enumerate(reversed(chain[:-1])):
                up = self._comment_data(ancestor, len(chain) - 2 - n, False)
                up["replies"] = _listing([node])
                node = {"kind": "t1", "data": up}
            tree = [node]
        return self._json(_escaped([head, _listing(tree)], escape))

    def _morechildren(self, request: Request, escape: bool) -> Response:
        form = {**{k: v[-1] for k, v in request.query.items()}, **request.form()}
        link = form.get("link_id", "")
        ids = [i for i in (form.get("children") or "").split(",") if i][:100]
        things: list[dict[str, Any]] = []
        for cid in ids:
            comment = self.things.get(f"t1_{cid}")
            if comment is None or f"t3_{comment.link_id}" != link:
                continue
            for thing, depth in self._flatten(comment, self._depth(comment)):
                data = self._comment_data(thing, depth, False)
                things.append({"kind": "t1", "data": data})
        return self._json(_escaped({"json": {"errors": [], "data": {"things": things}}}, escape))

    def _depth(self, comment: Thing) -> int:
        depth = 0
        while comment.parent.startswith("t1_"):
            comment = self.things[comment.parent]
            depth += 1
        return depth

    def _flatten(self, thing: Thing, depth: int) -> Iterable[tuple[Thing, int]]:
        yield thing, depth
        for name in thing.children:
            yield from self._flatten(self.things[name], depth + 1)


# -- helpers -------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    return value.split(" ", 1)[1] if value.lower().startswith("bearer ") else None


def _listing(children: list[dict[str, Any]], after: str | None = None, before: str | None = None,
             dist: int | None = None, geo_filter: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"after": after, "dist": dist if dist is not None else (len(children) or None),
                            "modhash": "", "children": children, "before": before}
    if geo_filter is not None:
        data["geo_filter"] = geo_filter
    return {"kind": "Listing", "data": data}


def _more(parent: str, depth: int, ids: list[str], count: int, first: str) -> dict[str, Any]:
    name = f"t1_{first}" if ids else "t1__"
    return {"kind": "more", "data": {"count": count, "name": name, "id": first if ids else "_", "parent_id": parent,
                                     "depth": depth, "children": ids}}


def _escaped(value: Any, escape: bool) -> Any:
    """Without `raw_json=1` Reddit HTML-escapes &, < and > in every string."""
    if not escape:
        return value
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, list):
        return [_escaped(v, True) for v in value]
    if isinstance(value, dict):
        return {k: _escaped(v, True) for k, v in value.items()}
    return value


def md_html(text: str) -> str:
    """Reddit's rendering of markdown `text`, enough for the fake: paragraphs, links, u/ and r/ links, spoilers.

    Spoilers come in Reddit's two real renderings: today's `>!hidden!<` as
    `<span class="md-spoiler-text">`, and the older subreddit convention
    `[shown](/s "hidden")` as a link whose `title` holds the hidden text.
    """
    if not text:
        return ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    rendered = []
    for paragraph in paragraphs:
        if paragraph in ("[deleted]", "[removed]"):
            rendered.append(f"<p>{paragraph}</p>")
            continue
        escaped = html.escape(paragraph, quote=False)
        escaped = _SPOILER.sub(r'<span class="md-spoiler-text">\1</span>', escaped)
        escaped = _SPOILER_LINK.sub(r'<a href="\2" title="\3">\1</a>', escaped)
        escaped = _MD_LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', escaped)
        escaped = re.sub(r'(?<!href=")(?<![">])(https?://[^\s<]+)', r'<a href="\1">\1</a>', escaped)
        escaped = _USER_MENTION.sub(lambda m: f'<a href="/u/{m.group(1)}">{m.group(0)}</a>', escaped)
        rendered.append(f"<p>{escaped}</p>")
    return '<!-- SC_OFF --><div class="md">' + "\n\n".join(rendered) + "\n</div><!-- SC_ON -->"


# -- earful demo ------------------------------------------------------------
DEMO_CLIENT_ID = "earful-demo-reddit-app"
DEMO_CLIENT_SECRET = "earful-demo-reddit-secret"


def demo_source(now: float) -> DemoSource:
    """Posts and comments from `demo_data/reddit/sample.json`, dated relative to `now`."""
    import json
    from importlib import resources

    server = RedditServer(client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET,
                          accounts={"acme_support": "demo-password"})
    sample = json.loads((resources.files("earful.sandbox") / "demo_data" / "reddit" / "sample.json").read_text(encoding="utf-8"))
    for post in sample["posts"]:
        fields = {k: v for k, v in post.items() if k not in ("minutes_ago", "comments")}
        created = server.add_post(created_utc=now - post["minutes_ago"] * 60, **fields)
        _demo_comments(server, created["name"], post.get("comments") or [], now)
    monitor = {
        "connector": "reddit",
        "schedule": "*/10 * * * *",
        "query": 'acme OR "acme crm"',
        "subreddits": ["crm", "sales"],
        "client_id": "${EARFUL_DEMO_REDDIT_CLIENT_ID}",
        "client_secret": "${EARFUL_DEMO_REDDIT_CLIENT_SECRET}",
        "username": "acme_support",
        "password": "${EARFUL_DEMO_REDDIT_PASSWORD}",
        "base_url": "{url}",
    }
    env = {"EARFUL_DEMO_REDDIT_CLIENT_ID": DEMO_CLIENT_ID, "EARFUL_DEMO_REDDIT_CLIENT_SECRET": DEMO_CLIENT_SECRET,
           "EARFUL_DEMO_REDDIT_PASSWORD": "demo-password"}
    return DemoSource("reddit-acme", server, monitor, env)


def _demo_comments(server: RedditServer, parent: str, comments: list[dict[str, Any]], now: float) -> None:
    for comment in comments:
        fields = {k: v for k, v in comment.items() if k not in ("minutes_ago", "replies")}
        created = server.add_comment(parent, created_utc=now - comment["minutes_ago"] * 60, **fields)
        _demo_comments(server, created["name"], comment.get("replies") or [], now)
