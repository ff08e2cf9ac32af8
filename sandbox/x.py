"""A fake of the X (Twitter) API v2, standard library only.

What it shares with api.x.com, as recorded in tweepy's cassettes and the
v2 documentation: `Authorization: Bearer` (401 `{"title":
"Unauthorized", "type": "about:blank", "status": 401, "detail":
"Unauthorized"}` otherwise); `GET /2/tweets/search/recent` (`query`,
`since_id`, `until_id`, `start_time`, `end_time`, `max_results` 10-100,
`next_token`, `sort_order`), `GET /2/users/:id/mentions` (the same with
`pagination_token` and `max_results` 5-100), `GET
/2/users/by/username/:username`; answers `{"data": [...], "includes":
{"users": [...], "tweets": [...]}, "meta": {"newest_id", "oldest_id",
"result_count", "next_token"}}` with only the requested `tweet.fields`
/ `user.fields` / `expansions` (`id`, `text` and `edit_history_tweet_ids`
always), and `{"meta": {"result_count": 0}}` when nothing matched.

And the limits a connector must respect: snowflake ids that encode the
creation time; recent search sees only the last 7 days and rejects a
`since_id` or `start_time` older than that with X's 400 "Invalid
Request" body; `x-rate-limit-limit/remaining/reset` (epoch seconds) on
every answer and a 429 "Too Many Requests" when a window is used up
(`exhaust()` scripts one); text HTML-escaped (`&amp;`, `&lt;`, `&gt;`),
links shortened to `https://t.co/...` with `entities.urls` holding the
expanded URL, long posts cut at 280 characters with the whole text in
`note_tweet`.

The query language is X's (`search_syntax`): words, "phrases", OR,
AND by juxtaposition (tighter than OR), `-` negation, parentheses,
`from:`, `to:`, `lang:`, `is:retweet`, `is:reply`, `is:quote`,
`conversation_id:`, `url:`, `has:links`; a query of only negations is
refused, as X does.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import search_syntax
from .server import DemoSource, FakeServer, Request, Response

TWEPOCH_MS = 1288834974657
SEARCH_WINDOW = 7 * 86400
_URL = re.compile(r"https?://[^\s<>\"']+")
_MENTION = re.compile(r"@(\w{1,15})")
_LIMITS = {"search": 450, "mentions": 450, "users": 300}
_WINDOW = 900
INVALID = "https://api.twitter.com/2/problems/invalid-request"
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"


def snowflake(created: float, sequence: int = 0) -> int:
    """A tweet id for a creation time, as X mints them (time in the high bits)."""
    return ((int(created * 1000) - TWEPOCH_MS) << 22) | (sequence & 0x3FFFFF)


def snowflake_time(tweet_id: int) -> float:
    return ((tweet_id >> 22) + TWEPOCH_MS) / 1000


@dataclass
class User:
    id: str
    username: str
    name: str
    created_at: float = 1262304000.0


@dataclass
class Tweet:
    id: int
    author_id: str
    text: str  # as posted, t.co links in place
    created_at: float
    conversation_id: int
    lang: str = "en"
    in_reply_to_user_id: str | None = None
    referenced: list[tuple[str, int]] = field(default_factory=list)  # (replied_to|quoted|retweeted, id)
    urls: list[dict[str, Any]] = field(default_factory=list)
    full_text: str | None = None  # note_tweet text of a long post
    like_count: int = 0
    impression_count: int = 0


class XServer(FakeServer):
    """Users and tweets; `add_tweet` returns the tweet as the API renders it with every field."""

    def __init__(self, bearer_token: str = "earful-test-bearer") -> None:
        super().__init__()
        self.bearer_token = bearer_token
        self.users: dict[str, User] = {}
        self.tweets: dict[int, Tweet] = {}
        self.windows: dict[str, list[int]] = {}  # endpoint -> [remaining, reset epoch]
        self._seq = 0
        self._data_lock = threading.RLock()

    # -- building data -------------------------------------------------
    def add_user(self, username: str, name: str | None = None, id: str | None = None) -> User:
        with self._data_lock:
            existing = self.user_by_name(username)
            if existing:
                return existing
            user = User(id or str(1_500_000_000_000_000_000 + len(self.users) * 7919 + 17), username, name or username.title())
            self.users[user.id] = user
            return user

    def user_by_name(self, username: str) -> User | None:
        wanted = username.lower().lstrip("@")
        return next((u for u in self.users.values() if u.username.lower() == wanted), None)

    def add_tweet(
        self,
        author: str,
        text: str = "",
        *,
        created_at: float | None = None,
        reply_to: int | str | None = None,
        quote_of: int | str | None = None,
        retweet_of: int | str | None = None,
        lang: str = "en",
        like_count: int = 0,
        id: int | str | None = None,
    ) -> dict[str, Any]:
        """Post as `author` (created on first use); return the tweet with every field.

        A reply is prefixed with "@parent_author " as X does; a retweet's
        text is X's "RT @author: ..." cut at 140 characters; a link in the
        text becomes a t.co link with `entities.urls`.
        """
        with self._data_lock:
            user = self.add_user(author)
            created = time.time() if created_at is None else float(created_at)
            self._seq += 1
            tweet_id = int(id) if id is not None else snowflake(created, self._seq)
            if tweet_id in self.tweets:
                raise ValueError(f"tweet {tweet_id} exists")
            referenced: list[tuple[str, int]] = []
            in_reply_to = None
            conversation = tweet_id
            if retweet_of is not None:
                original = self.tweets[int(retweet_of)]
                who = self.users[original.author_id].username
                body = original.full_text or original.text
                text = f"RT @{who}: {body}"
                text = text if len(text) <= 140 else text[:139] + "…"
                referenced.append(("retweeted", original.id))
            else:
                if reply_to is not None:
                    parent = self.tweets[int(reply_to)]
                    in_reply_to = parent.author_id
                    conversation = parent.conversation_id
                    referenced.append(("replied_to", parent.id))
                    prefix = f"@{self.users[parent.author_id].username} "
                    if not text.lower().startswith(prefix.lower()):
                        text = prefix + text
                if quote_of is not None:
                    referenced.append(("quoted", int(quote_of)))
            if retweet_of is not None:  # the original's t.co links are already in place
                shortened, urls = text, []
            else:
                shortened, urls = _shorten(text)
            full = None
            if len(shortened) > 280:
                full, shortened = shortened, shortened[:279] + "…"
            tweet = Tweet(tweet_id, user.id, shortened, created, conversation, lang, in_reply_to, referenced, urls, full,
                          like_count=like_count, impression_count=like_count * 40 + 12)
            self.tweets[tweet_id] = tweet
            return self.render(tweet, set(ALL_TWEET_FIELDS), include_author=True)

    def delete_tweet(self, tweet_id: int | str) -> None:
        with self._data_lock:
            self.tweets.pop(int(tweet_id), None)

    def exhaust(self, endpoint: str = "search", reset_in: int = 900) -> int:
        """Use up `endpoint`'s window (search, mentions, users); returns the reset epoch."""
        reset = int(time.time()) + reset_in
        self.windows[endpoint] = [0, reset]
        return reset

    # -- rendering -----------------------------------------------------
    def render(self, tweet: Tweet, fields: set[str], include_author: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"edit_history_tweet_ids": [str(tweet.id)], "id": str(tweet.id), "text": html_escape(tweet.text)}
        if "author_id" in fields or include_author:
            data["author_id"] = tweet.author_id
        if "created_at" in fields:
            data["created_at"] = _iso(tweet.created_at)
        if "conversation_id" in fields:
            data["conversation_id"] = str(tweet.conversation_id)
        if "in_reply_to_user_id" in fields and tweet.in_reply_to_user_id:
            data["in_reply_to_user_id"] = tweet.in_reply_to_user_id
        if "referenced_tweets" in fields and tweet.referenced:
            data["referenced_tweets"] = [{"type": kind, "id": str(ref)} for kind, ref in tweet.referenced]
        if "lang" in fields:
            data["lang"] = tweet.lang
        if "public_metrics" in fields:
            data["public_metrics"] = self._metrics(tweet)
        if "entities" in fields:
            entities: dict[str, Any] = {}
            if tweet.urls:
                entities["urls"] = tweet.urls
            mentions = [{"start": m.start(), "end": m.end(), "username": m.group(1),
                         "id": (self.user_by_name(m.group(1)) or User("0", "", "")).id}
                        for m in _MENTION.finditer(tweet.text)]
            if mentions:
                entities["mentions"] = mentions
            if entities:
                data["entities"] = entities
        if "note_tweet" in fields and tweet.full_text:
            data["note_tweet"] = {"text": html_escape(tweet.full_text)}
        return data

    def _metrics(self, tweet: Tweet) -> dict[str, int]:
        counts = {"replied_to": 0, "quoted": 0, "retweeted": 0}
        for other in self.tweets.values():
            for kind, ref in other.referenced:
                if ref == tweet.id:
                    counts[kind] += 1
        return {"retweet_count": counts["retweeted"], "reply_count": counts["replied_to"], "like_count": tweet.like_count,
                "quote_count": counts["quoted"], "bookmark_count": 0, "impression_count": tweet.impression_count}

    @staticmethod
    def _user(user: User, fields: set[str]) -> dict[str, Any]:
        data = {"id": user.id, "name": user.name, "username": user.username}
        if "created_at" in fields:
            data["created_at"] = _iso(user.created_at)
        return data

    # -- HTTP ------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        endpoint = ("search" if path == "/2/tweets/search/recent" else
                    "mentions" if re.fullmatch(r"/2/users/\d+/mentions", path) else
                    "users" if path.startswith("/2/users/by/username/") else "")
        if not endpoint:
            return Response.json({"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}, 404)
        if request.headers.get("authorization") != f"Bearer {self.bearer_token}":
            return Response.json({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, 401)
        limited, headers = self._count(endpoint)
        if limited:
            return Response.json({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                                  "status": 429}, 429, headers)
        with self._data_lock:
            if endpoint == "users":
                user = self.user_by_name(path.rsplit("/", 1)[1])
                if user is None:
                    name = path.rsplit("/", 1)[1]
                    return Response.json({"errors": [{"value": name, "detail": f"Could not find user with username: [{name}].",
                                                      "title": "Not Found Error", "resource_type": "user",
                                                      "parameter": "username", "resource_id": name, "type": NOT_FOUND}]},
                                         200, headers)
                return Response.json({"data": self._user(user, _fields(request, "user.fields"))}, 200, headers)
            if endpoint == "mentions":
                user = self.users.get(path.split("/")[3])
                if user is None:
                    uid = path.split("/")[3]
                    return Response.json({"errors": [{"value": uid, "detail": f"Could not find user with id: [{uid}].",
                                                      "title": "Not Found Error", "resource_type": "user", "parameter": "id",
                                                      "resource_id": uid, "type": NOT_FOUND}]}, 200, headers)
                pattern = re.compile(rf"(?<!\w)@{re.escape(user.username)}\b", re.I)
                found = [t for t in self.tweets.values() if pattern.search(t.text)]
                return self._timeline(request, found, headers, token_param="pagination_token", min_results=5, window=None)
            return self._search(request, headers)

    def _count(self, endpoint: str) -> tuple[bool, dict[str, str]]:
        now = int(time.time())
        with self._lock:
            remaining, reset = self.windows.get(endpoint) or [_LIMITS[endpoint], now + _WINDOW]
            if reset <= now:
                remaining, reset = _LIMITS[endpoint], now + _WINDOW
            limited = remaining <= 0
            remaining = max(0, remaining - (0 if limited else 1))
            self.windows[endpoint] = [remaining, reset]
        return limited, {"x-rate-limit-limit": str(_LIMITS[endpoint]), "x-rate-limit-remaining": str(remaining),
                         "x-rate-limit-reset": str(reset), "api-version": "2.150"}

    def _search(self, request: Request, headers: dict[str, str]) -> Response:
        query = request.arg("query") or ""
        if len(query) > 512:
            return _invalid({"query": [query]}, f"Query length {len(query)} exceeds the limit of 512 characters.", headers)
        try:
            node = search_syntax.parse(query, {"from", "to", "lang", "is", "conversation_id", "url", "has"})
        except search_syntax.QuerySyntaxError as exc:
            return _invalid({"query": [query]}, f"There were errors processing your request: {exc}", headers)
        if not search_syntax.positive(node):
            return _invalid({"query": [query]}, "There were errors processing your request: "
                            "Rules must contain a non-negation term", headers)
        found = [t for t in self.tweets.values() if search_syntax.matches(node, self._document(t))]
        return self._timeline(request, found, headers, token_param="next_token", min_results=10, window=SEARCH_WINDOW)

    def _document(self, tweet: Tweet) -> search_syntax.Document:
        author = self.users[tweet.author_id]
        kinds = {kind for kind, _ in tweet.referenced}
        expanded = " ".join(u["expanded_url"] for u in tweet.urls)
        reply_to = self.users.get(tweet.in_reply_to_user_id or "")
        return search_syntax.Document(
            f"{html.unescape(tweet.full_text or tweet.text)} {expanded}",
            {
                "from": lambda v: author.username.lower() == v.lower().lstrip("@") or author.id == v,
                "to": lambda v: bool(reply_to) and reply_to.username.lower() == v.lower().lstrip("@"),
                "lang": lambda v: tweet.lang == v.lower(),
                "is": lambda v: {"retweet": "retweeted" in kinds, "reply": "replied_to" in kinds,
                                 "quote": "quoted" in kinds}.get(v.lower(), False),
                "conversation_id": lambda v: str(tweet.conversation_id) == v,
                "url": lambda v: v.lower() in expanded.lower(),
                "has": lambda v: v.lower() == "links" and bool(tweet.urls),
            },
        )

    def _timeline(self, request: Request, found: list[Tweet], headers: dict[str, str], *, token_param: str,
                  min_results: int, window: int | None) -> Response:
        now = time.time()
        try:
            max_results = int(request.arg("max_results") or 10)
        except ValueError:
            max_results = -1
        if not min_results <= max_results <= 100:
            return _invalid({"max_results": [request.arg("max_results") or ""]},
                            f"The `max_results` query parameter value [{request.arg('max_results')}] is not between "
                            f"{min_results} and 100", headers)
        floor = now - window if window else 0.0
        bounds: dict[str, int] = {}
        for name in ("since_id", "until_id"):
            value = request.arg(name)
            if value is None:
                continue
            if not value.isdigit():
                return _invalid({name: [value]}, f"The `{name}` query parameter value [{value}] is not valid", headers)
            if window and snowflake_time(int(value)) < floor:
                return _invalid({name: [value]}, f"Invalid '{name}':'{value}'. '{name}' must be a tweet id created "
                                f"after {_iso(floor, millis=False)}.", headers)
            bounds[name] = int(value)
        times: dict[str, float] = {}
        for name in ("start_time", "end_time"):
            value = request.arg(name)
            if value is None:
                continue
            try:
                moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
            except ValueError:
                return _invalid({name: [value]}, f"Invalid '{name}':'{value}'.", headers)
            if window and moment < floor - 60:
                return _invalid({name: [value]}, f"Invalid '{name}':'{value}'. '{name}' must be on or after "
                                f"{_iso(floor, millis=False)}", headers)
            times[name] = moment
        token = request.arg(token_param)
        if token is not None:
            try:
                bounds["until_id"] = min(bounds.get("until_id", 1 << 63), int(token.removeprefix("7140dibdnow9c"), 36))
            except ValueError:
                return _invalid({token_param: [token]}, f"The `{token_param}` query parameter value [{token}] is not valid",
                                headers)
        selected = [
            t for t in found
            if t.created_at >= floor
            and t.id > bounds.get("since_id", 0) and t.id < bounds.get("until_id", 1 << 63)
            and t.created_at >= times.get("start_time", 0) and t.created_at < times.get("end_time", float("inf"))
        ]
        selected.sort(key=lambda t: t.id, reverse=True)
        page, more = selected[:max_results], len(selected) > max_results
        if not page:
            return Response.json({"meta": {"result_count": 0}}, 200, headers)
        fields = _fields(request, "tweet.fields")
        expansions = _fields(request, "expansions")
        user_fields = _fields(request, "user.fields")
        body: dict[str, Any] = {"data": [self.render(t, fields | ({"author_id"} & expansions)) for t in page]}
        includes: dict[str, list[dict[str, Any]]] = {}
        authors: dict[str, User] = {}
        referenced: dict[int, Tweet] = {}
        if "author_id" in expansions:
            authors.update({t.author_id: self.users[t.author_id] for t in page})
        if {"referenced_tweets.id", "referenced_tweets.id.author_id"} & expansions:
            for t in page:
                for _, ref in t.referenced:
                    if ref in self.tweets:
                        referenced[ref] = self.tweets[ref]
            if referenced and "referenced_tweets.id" in expansions:
                includes["tweets"] = [self.render(r, fields) for r in referenced.values()]
            if "referenced_tweets.id.author_id" in expansions:
                authors.update({r.author_id: self.users[r.author_id] for r in referenced.values()})
        if authors:
            includes["users"] = [self._user(u, user_fields) for u in authors.values()]
        if includes:
            body["includes"] = includes
        missing = [ref for t in page for _, ref in t.referenced if ref not in self.tweets]
        if missing and "referenced_tweets.id" in expansions:
            body["errors"] = [{"value": str(ref), "detail": f"Could not find tweet with referenced_tweets.id: [{ref}].",
                               "title": "Not Found Error", "resource_type": "tweet", "parameter": "referenced_tweets.id",
                               "resource_id": str(ref), "type": NOT_FOUND} for ref in missing]
        meta: dict[str, Any] = {"newest_id": str(page[0].id), "oldest_id": str(page[-1].id), "result_count": len(page)}
        if more:
            meta["next_token"] = "7140dibdnow9c" + _base36(page[-1].id)
        body["meta"] = meta
        return Response.json(body, 200, headers)


# -- helpers -------------------------------------------------------------------

ALL_TWEET_FIELDS = ("author_id", "created_at", "conversation_id", "in_reply_to_user_id", "referenced_tweets", "lang",
                    "public_metrics", "entities", "note_tweet")


def html_escape(text: str) -> str:
    """X escapes exactly &, < and > in v2 text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shorten(text: str) -> tuple[str, list[dict[str, Any]]]:
    out, urls, last = [], [], 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(".,)!?")
        short = "https://t.co/" + hashlib.sha1(url.encode()).hexdigest()[:10]
        out.append(text[last : m.start()])
        start = sum(len(p) for p in out)
        out.append(short)
        display = re.sub(r"^https?://(www\.)?", "", url)
        urls.append({"start": start, "end": start + len(short), "url": short, "expanded_url": url,
                     "display_url": display if len(display) <= 26 else display[:25] + "…"})
        last = m.start() + len(url)
    out.append(text[last:])
    return "".join(out), urls


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"


def _fields(request: Request, name: str) -> set[str]:
    return {f.strip() for f in (request.arg(name) or "").split(",") if f.strip()}


def _iso(epoch: float, millis: bool = True) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z" if millis else "%Y-%m-%dT%H:%MZ")


def _invalid(parameters: dict[str, list[str]], message: str, headers: dict[str, str]) -> Response:
    return Response.json({"errors": [{"parameters": parameters, "message": message}], "title": "Invalid Request",
                          "detail": "One or more parameters to your request was invalid.", "type": INVALID}, 400, headers)


# -- earful demo ------------------------------------------------------------
DEMO_TOKEN = "earful-demo-x-bearer"


def demo_source(now: float) -> DemoSource:
    """Posts from `demo_data/x/sample.json`, dated relative to `now`; `ref` names let replies point at parents."""
    import json
    from importlib import resources

    server = XServer(bearer_token=DEMO_TOKEN)
    sample = json.loads((resources.files("earful.sandbox") / "demo_data" / "x" / "sample.json").read_text(encoding="utf-8"))
    for user in sample["users"]:
        server.add_user(user["username"], user.get("name"), user.get("id"))
    ids: dict[str, str] = {}
    # Ids come from the start of the demo's UTC day, not from `now`: a repeated demo serves the same
    # posts under the same ids, as X would, while their times stay inside recent search's 7 days.
    anchor = now - now % 86400
    for n, post in enumerate(sample["posts"]):
        links = {k: ids[post[k]] for k in ("reply_to", "quote_of", "retweet_of") if k in post}
        fields = {k: v for k, v in post.items() if k not in ("ref", "minutes_ago", "reply_to", "quote_of", "retweet_of")}
        created = server.add_tweet(created_at=now - post["minutes_ago"] * 60, id=snowflake(anchor - post["minutes_ago"] * 60, n),
                                   **links, **fields)
        if "ref" in post:
            ids[post["ref"]] = created["id"]
    monitor = {
        "connector": "x",
        "schedule": "*/15 * * * *",
        "query": 'acme OR "acme crm"',
        "mentions_of": "@acme",
        "bearer_token": "${EARFUL_DEMO_X_BEARER_TOKEN}",
        "max_requests": 4,
        "monthly_budget": 10000,
        "base_url": "{url}",
    }
    return DemoSource("x-acme", server, monitor, {"EARFUL_DEMO_X_BEARER_TOKEN": DEMO_TOKEN})
