"""A fake App Store customer-reviews feed and a fake Google Play `batchexecute` endpoint, on one host.

App Store: `GET /{cc}/rss/customerreviews/page={N}/id={APP}/sortby=mostrecent/json`
answers the real JSON shape: every scalar wrapped as `{"label": ...}`,
numbers as strings (`im:rating`, `im:voteSum`), `feed.link` entries
pointing at the *xml* form with `urlDesc=`, 50 entries per page, a page
past the end without any `entry` key, a page with one review holding
`entry` as an object instead of a list, and pages above 10 answered 200
with the plain text "CustomerReviews RSS page depth is limited to 10".
`entry_dates=False` drops the per-entry `updated` from the JSON (the
2020-2021 JSON had none); `metadata_entry=True` puts the app-metadata entry
first (older feeds). The same path ending in `/xml` serves the XML (Atom)
form of the same page as Apple does: `xmlns:im`, `<updated>` on every
entry (whatever `entry_dates` says), `<content type="text">` and a second
`<content type="html">` with the review as an escaped HTML table, and no
`<entry>` at all past the end.

Google Play: `POST /_/PlayStoreUi/data/batchexecute?rpcids=UsvDTd` with
the form field `f.req` = `[[["UsvDTd","<args json>",null,"generic"]]]`,
args `[null,null,[2,sort,[count,null,token]],null,[]],["<app id>",7]]`;
answers `)]}'` + `[["wrb.fr","UsvDTd","<data json>",null,null,null,"generic"],
["di",N],["af.httprm",N,"...",M]]` where data is `[[review, ...],
[null, nextPageToken]]` and a review is `[id, [name, [null,2,null,[null,
null,avatar]]], score, null, text, [epoch_s, nanos], thumbsUp, reply,
null, [user details], version, null, [criteria]]`, `reply` being null or
`[developerName, replyText, [epoch_s, nanos]]`. An app without reviews
answers a null payload; `gateway_errors = N` answers the next N calls
with the `PlayGatewayError` Google sends when it throttles; a request
this endpoint does not understand gets the `["er", ...]` envelope, HTTP 400.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html import escape
from typing import Any
from urllib.parse import parse_qs

from .server import DemoSource, Request, Response, SharedServer

APPLE_PAGE_SIZE = 50
APPLE_MAX_PAGE = 10
DEPTH_LIMIT_TEXT = "CustomerReviews RSS page depth is limited to 10"
PLAY_RPC = "UsvDTd"
PLAY_PATH = "/_/PlayStoreUi/data/batchexecute"
PLAY_PREFIX = ")]}'\n\n"


@dataclass
class AppleReview:
    id: str
    author: str
    rating: int
    title: str
    text: str
    updated: datetime
    version: str = "1.0"
    vote_sum: int = 0
    vote_count: int = 0
    author_id: str = ""


@dataclass
class PlayReview:
    id: str
    author: str
    rating: int
    text: str
    at: datetime
    thumbs_up: int = 0
    version: str | None = "1.0.0"
    reply: str | None = None
    reply_at: datetime | None = None
    reply_by: str = ""


@dataclass
class AppleApp:
    app_id: str
    name: str
    developer: str
    reviews: dict[str, list[AppleReview]] = field(default_factory=dict)  # per country


@dataclass
class PlayApp:
    app_id: str
    developer: str
    reviews: dict[tuple[str, str], list[PlayReview]] = field(default_factory=dict)  # per (lang, country)


class AppStoresServer(SharedServer):
    """App Store RSS and Google Play reviews; start/stop are reference-counted (shared demo sources)."""

    def __init__(self, *, entry_dates: bool = True, metadata_entry: bool = False) -> None:
        super().__init__()
        self.entry_dates = entry_dates
        self.metadata_entry = metadata_entry
        self.apple: dict[str, AppleApp] = {}
        self.play: dict[str, PlayApp] = {}
        self.gateway_errors = 0
        self._next_apple_id = 11_000_000_001

    # -- data ---------------------------------------------------------------
    def add_apple_app(self, app_id: str, name: str, developer: str = "Acme Inc.") -> AppleApp:
        with self._data_lock:
            self.apple[app_id] = AppleApp(app_id, name, developer)
            return self.apple[app_id]

    def add_apple_review(self, app_id: str, *, country: str = "us", id: str | None = None, updated: datetime,
                         **fields: Any) -> AppleReview:
        """Add a review; ids grow with time as Apple's do."""
        with self._data_lock:
            app = self.apple.get(app_id) or self.add_apple_app(app_id, "Acme CRM")
            if id is None:
                id, self._next_apple_id = str(self._next_apple_id), self._next_apple_id + 1
            review = AppleReview(id=id, updated=updated, **{"author": "reviewer", "rating": 5, "title": "", "text": "", **fields})
            app.reviews.setdefault(country, []).append(review)
            return review

    def add_play_app(self, app_id: str, developer: str = "Acme Inc.") -> PlayApp:
        with self._data_lock:
            self.play[app_id] = PlayApp(app_id, developer)
            return self.play[app_id]

    def add_play_review(self, app_id: str, *, lang: str = "en", country: str = "us", id: str | None = None, at: datetime,
                        **fields: Any) -> PlayReview:
        with self._data_lock:
            app = self.play.get(app_id) or self.add_play_app(app_id)
            review = PlayReview(id=id or str(uuid.uuid4()), at=at, **{"author": "A Google user", "rating": 5, "text": "", **fields})
            app.reviews.setdefault((lang, country), []).append(review)
            return review

    def play_reply(self, app_id: str, review_id: str, text: str, at: datetime, *, lang: str = "en", country: str = "us") -> None:
        """The developer answers a Play review."""
        with self._data_lock:
            review = next(r for r in self.play[app_id].reviews[(lang, country)] if r.id == review_id)
            review.reply, review.reply_at, review.reply_by = text, at, self.play[app_id].developer

    def apple_requests(self) -> list[Request]:
        return [r for r in self.requests if "/rss/customerreviews/" in r.path]

    def play_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == PLAY_PATH]

    # -- HTTP -------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        with self._data_lock:
            if request.path == PLAY_PATH:
                return self._play(request)
            m = re.fullmatch(r"/(?:([a-z]{2})/)?rss/customerreviews(?:/page=(\d+))?/id=(\d+)(?:/sortby=(\w+))?/(json|xml)",
                             request.path)
            if m:
                return self._apple(m.group(1) or "us", int(m.group(2) or 1), m.group(3), m.group(4) or "mostrecent", m.group(5))
        return Response(404, "<html><body>Not Found</body></html>", {"Content-Type": "text/html; charset=UTF-8"})

    # -- App Store ------------------------------------------------------------------
    def _apple(self, country: str, page: int, app_id: str, sort: str, form: str = "json") -> Response:
        if page > APPLE_MAX_PAGE:
            return Response(200, DEPTH_LIMIT_TEXT, {"Content-Type": "text/plain; charset=UTF-8"})
        app = self.apple.get(app_id)
        reviews = list(app.reviews.get(country, [])) if app else []
        if sort == "mostrecent":
            reviews.sort(key=lambda r: (r.updated, int(r.id)), reverse=True)
        else:  # mosthelpful
            reviews.sort(key=lambda r: (r.vote_sum, int(r.id)), reverse=True)
        shown = reviews[(page - 1) * APPLE_PAGE_SIZE : page * APPLE_PAGE_SIZE]
        last = max(1, min(APPLE_MAX_PAGE, -(-len(reviews) // APPLE_PAGE_SIZE)))
        if form == "xml":
            return Response(200, _apple_atom(country, page, app_id, app, shown, last, self.metadata_entry),
                            {"Content-Type": "text/xml; charset=UTF-8"})
        entries: list[dict[str, Any]] = [self._apple_entry(country, app_id, r) for r in shown]
        if self.metadata_entry and app and page == 1 and entries:
            entries.insert(0, _apple_metadata(country, app))
        feed: dict[str, Any] = {"author": {"name": {"label": "iTunes Store"}, "uri": {"label": "http://www.apple.com/us/itunes/"}}}
        if entries:
            feed["entry"] = entries[0] if len(entries) == 1 else entries
        feed.update({
            "updated": {"label": datetime.now(timezone(timedelta(hours=-7))).strftime("%Y-%m-%dT%H:%M:%S-07:00")},
            "rights": {"label": "Copyright 2008 Apple Inc."},
            "title": {"label": "iTunes Store: Customer Reviews"},
            "icon": {"label": "http://itunes.apple.com/favicon.ico"},
            "link": [
                {"attributes": {"rel": "alternate", "type": "text/html",
                                "href": f"https://music.apple.com/WebObjects/MZStore.woa/wa/viewGrouping?cc={country}&id=130"}},
                {"attributes": {"rel": "self", "href": _apple_self(page, app_id, country)}},
                *({"attributes": {"rel": rel, "href": _apple_xml(country, n, app_id, page)}}
                  for rel, n in (("first", 1), ("last", last), ("previous", max(1, page - 1)), ("next", page + 1))),
            ],
            "id": {"label": _apple_self(page, app_id, country)},
        })
        return Response.json({"feed": feed}, headers={"Content-Type": "application/json; charset=UTF-8"})

    def _apple_entry(self, country: str, app_id: str, r: AppleReview) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "author": {"uri": {"label": f"https://itunes.apple.com/{country}/reviews/id{r.author_id or zlib.crc32(r.author.encode())}"},
                       "name": {"label": r.author}, "label": ""},
        }
        if self.entry_dates:
            entry["updated"] = {"label": _apple_time(r.updated)}
        entry.update({
            "im:version": {"label": r.version},
            "im:rating": {"label": str(r.rating)},
            "id": {"label": r.id},
            "title": {"label": r.title},
            "content": {"label": r.text, "attributes": {"type": "text"}},
            "link": {"attributes": {"rel": "related", "href": f"https://itunes.apple.com/{country}/review?id={app_id}&type=Purple%20Software"}},
            "im:voteSum": {"label": str(r.vote_sum)},
            "im:contentType": {"attributes": {"term": "Application", "label": "Application"}},
            "im:voteCount": {"label": str(r.vote_count)},
        })
        return entry

    # -- Google Play -------------------------------------------------------------------
    def _play(self, request: Request) -> Response:
        if request.method != "POST" or request.arg("rpcids") != PLAY_RPC:
            return _play_error(400)
        try:
            form = parse_qs(request.body.decode("utf-8"))
            outer = json.loads(form["f.req"][-1])
            rpc, args_json = outer[0][0][0], outer[0][0][1]
            args = json.loads(args_json)
            sort, paging = args[0][2][1], args[0][2][2]
            count, token = int(paging[0]), paging[2] if len(paging) > 2 else None
            app_id = args[1][0]
        except (KeyError, IndexError, TypeError, ValueError):
            return _play_error(400)
        if rpc != PLAY_RPC:
            return _play_error(400)
        if self.gateway_errors > 0:
            self.gateway_errors -= 1
            return _play_envelope(None, error=[8, None, [["type.googleapis.com/wireless.android.finsky.boq.web.data.playstoreui."
                                                         "com.google.play.gateway.proto.PlayGatewayError", [None, 429]]]])
        app = self.play.get(app_id)
        reviews = list(app.reviews.get((request.arg("hl") or "en", request.arg("gl") or "us"), [])) if app else []
        if not reviews:
            return _play_envelope(None)
        if sort == 2:  # newest
            reviews.sort(key=lambda r: (r.at, r.id), reverse=True)
        elif sort == 3:  # rating
            reviews.sort(key=lambda r: (-r.rating, r.id))
        else:  # most relevant
            reviews.sort(key=lambda r: (-r.thumbs_up, r.id))
        offset = _decode_token(token) if token else 0
        shown = reviews[offset : offset + count]
        data: list[Any] = [[_play_review(r) for r in shown]]
        if offset + count < len(reviews):
            data.append([None, _encode_token(offset + count)])
        return _play_envelope(json.dumps(data, ensure_ascii=False))


def _apple_self(page: int, app_id: str, country: str) -> str:
    return f"https://itunes.apple.com/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/json?l=en&cc={country}"


def _apple_xml(country: str, page: int, app_id: str, current: int) -> str:
    return (f"https://itunes.apple.com/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/xml"
            f"?l=en&urlDesc=/customerreviews/page={current}/id={app_id}/sortby=mostrecent/json")


def _apple_time(when: datetime) -> str:
    """Apple's feed times: Cupertino's offset, seconds."""
    return when.astimezone(timezone(timedelta(hours=-7))).strftime("%Y-%m-%dT%H:%M:%S-07:00")


def _apple_atom(country: str, page: int, app_id: str, app: AppleApp | None, shown: list[AppleReview], last: int,
                metadata_entry: bool) -> str:
    """The XML form of one customer-reviews page, element order and escaping as Apple serves it."""
    self_url = (f"https://itunes.apple.com/{country}/rss/customerreviews/page={page}/id={app_id}/sortby=mostrecent/xml"
                f"?urlDesc=/customerreviews/page={page}/id={app_id}/sortby=mostrecent/xml")
    links = "".join(f'<link rel="{rel}" href="{escape(_apple_xml(country, n, app_id, page))}"/>\n'
                    for rel, n in (("first", 1), ("last", last), ("previous", max(1, page - 1)), ("next", page + 1)))
    head = ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<feed xmlns:im="http://itunes.apple.com/rss" xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
            f"<id>{escape(self_url)}</id><title>iTunes Store: Customer Reviews</title>"
            f"<updated>{_apple_time(datetime.now(timezone.utc))}</updated>"
            f'<link rel="alternate" type="text/html" href="https://music.apple.com/WebObjects/MZStore.woa/wa/viewGrouping?cc={country}&amp;id=130"/>'
            f'<link rel="self" href="{escape(self_url)}"/>\n{links}'
            "<icon>http://itunes.apple.com/favicon.ico</icon><author><name>iTunes Store</name>"
            "<uri>http://www.apple.com/itunes/</uri></author><rights>Copyright 2008 Apple Inc.</rights>\n")
    entries = [_apple_atom_entry(country, app_id, r) for r in shown]
    if metadata_entry and app and page == 1 and entries:
        entries.insert(0, _apple_atom_metadata(country, app))
    return head + "".join(entries) + "</feed>"


def _apple_atom_entry(country: str, app_id: str, r: AppleReview) -> str:
    table = (f'<table border="0" width="100%"> <tr> <td> <b><a href="https://apps.apple.com/{country}/app/id{app_id}?uo=2">'
             f"{escape(r.title)}</a></b><br/> </td> </tr> <tr> <td> <font size=\"2\"><br/>{escape(r.text)}</font><br/> </td> </tr> </table>")
    author_uri = f"https://itunes.apple.com/{country}/reviews/id{r.author_id or zlib.crc32(r.author.encode())}"
    return ("<entry>\n"
            f"<updated>{_apple_time(r.updated)}</updated>\n<id>{escape(r.id)}</id>\n<title>{escape(r.title)}</title>\n"
            f'<content type="text">{escape(r.text)}</content>\n'
            '<im:contentType term="Application" label="Application"/>\n'
            f"<im:voteSum>{r.vote_sum}</im:voteSum>\n<im:voteCount>{r.vote_count}</im:voteCount>\n"
            f"<im:rating>{r.rating}</im:rating>\n<im:version>{escape(r.version)}</im:version>\n"
            f"<author><name>{escape(r.author)}</name><uri>{author_uri}</uri></author>\n"
            f'<link rel="related" href="https://itunes.apple.com/{country}/review?id={app_id}&amp;type=Purple%20Software"/>\n'
            f'<content type="html">{escape(table)}</content>\n'
            "</entry>\n")


def _apple_atom_metadata(country: str, app: AppleApp) -> str:
    """The app-metadata first entry of older feeds, XML form: its id is the app's URL, it has no rating."""
    url = f"https://apps.apple.com/{country}/app/id{app.app_id}"
    return ("<entry>\n<updated>2024-01-01T00:00:00-07:00</updated>\n"
            f'<id im:id="{app.app_id}" im:bundleId="example.acme.crm">{url}</id>\n<title>{escape(app.name)} - {escape(app.developer)}</title>\n'
            f"<im:name>{escape(app.name)}</im:name>\n<im:artist>{escape(app.developer)}</im:artist>\n"
            '<im:contentType term="Application" label="Application"/>\n'
            f'<link rel="alternate" type="text/html" href="{url}"/>\n</entry>\n')


def _apple_metadata(country: str, app: AppleApp) -> dict[str, Any]:
    """The app-metadata first entry of older feeds: no `im:rating`, but `im:name` and `im:artist`."""
    return {
        "im:name": {"label": app.name},
        "rights": {"label": f"© 2024 {app.developer}"},
        "im:price": {"label": "Get", "attributes": {"amount": "0.00000", "currency": "USD"}},
        "im:image": [{"label": "https://is1-ssl.mzstatic.com/image/thumb/53x53bb.png", "attributes": {"height": "53"}}],
        "im:artist": {"label": app.developer, "attributes": {"href": f"https://apps.apple.com/{country}/developer/id1"}},
        "title": {"label": f"{app.name} - {app.developer}"},
        "link": {"attributes": {"rel": "alternate", "type": "text/html", "href": f"https://apps.apple.com/{country}/app/id{app.app_id}"}},
        "id": {"label": f"https://apps.apple.com/{country}/app/id{app.app_id}",
               "attributes": {"im:id": app.app_id, "im:bundleId": "example.acme.crm"}},
        "im:contentType": {"attributes": {"term": "Application", "label": "Application"}},
        "category": {"attributes": {"im:id": "6000", "term": "Business", "label": "Business"}},
        "im:releaseDate": {"label": "2019-03-01T00:00:00-07:00", "attributes": {"label": "March 1, 2019"}},
    }


def _epoch(when: datetime) -> list[int]:
    ts = when.timestamp()
    return [int(ts), int(round((ts - int(ts)) * 1e9))]


def _play_review(r: PlayReview) -> list[Any]:
    avatar = [None, 2, None, [None, None, f"https://play-lh.googleusercontent.com/a/{r.id[:8]}=mo"]]
    reply = [r.reply_by, r.reply, _epoch(r.reply_at)] if r.reply is not None and r.reply_at else None
    return [r.id, [r.author, avatar], r.rating, None, r.text, _epoch(r.at), r.thumbs_up, reply, None,
            [None, r.author, None, [avatar, True]], r.version, None, None]


def _play_envelope(payload: str | None, error: list[Any] | None = None) -> Response:
    body = [["wrb.fr", PLAY_RPC, payload, None, None, error, "generic"], ["di", 43], ["af.httprm", 42, "-5521011214452346183", 27]]
    return Response(200, PLAY_PREFIX + json.dumps(body, ensure_ascii=False), {"Content-Type": "application/json; charset=utf-8"})


def _play_error(status: int) -> Response:
    body = [["er", None, None, None, None, status, None, None, None, 3], ["di", 7], ["af.httprm", 6, "-3290212467316423916", 4]]
    return Response(status, PLAY_PREFIX + json.dumps(body), {"Content-Type": "application/json; charset=utf-8"})


def _encode_token(offset: int) -> str:
    return base64.b64encode(b"\x0a\x07" + offset.to_bytes(4, "big") + b"earful").decode()


def _decode_token(token: str) -> int:
    try:
        return int.from_bytes(base64.b64decode(token)[2:6], "big")
    except (ValueError, TypeError):
        return 0


# -- earful demo ---------------------------------------------------------------------

DEMO_APPLE_APP = "1601234567"
DEMO_PLAY_APP = "example.acme.crm"


def demo_server(now: float) -> AppStoresServer:
    """Sample App Store and Google Play reviews (demo_data/appstores/acme.json), dated relative to `now`."""
    from importlib import resources

    sample = json.loads((resources.files("earful.sandbox") / "demo_data" / "appstores" / "acme.json").read_text(encoding="utf-8"))
    moment = datetime.fromtimestamp(now, timezone.utc)
    server = AppStoresServer()
    server.add_apple_app(DEMO_APPLE_APP, "Acme CRM", "Acme Inc.")
    for item in sample["appstore"]:
        fields = dict(item)
        server.add_apple_review(DEMO_APPLE_APP, updated=moment - timedelta(hours=fields.pop("hours_ago")), **fields)
    server.add_play_app(DEMO_PLAY_APP, "Acme Inc.")
    for item in sample["googleplay"]:
        fields = dict(item)
        review = server.add_play_review(DEMO_PLAY_APP, at=moment - timedelta(hours=fields.pop("hours_ago")),
                                        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{DEMO_PLAY_APP}/{fields['author']}")),
                                        **{k: v for k, v in fields.items() if not k.startswith("reply")})
        if fields.get("reply"):
            server.play_reply(DEMO_PLAY_APP, review.id, fields["reply"], moment - timedelta(hours=fields["reply_hours_ago"]))
    return server


def _appstore_monitor() -> dict[str, Any]:
    return {"connector": "appstore", "schedule": "0 */2 * * *", "app_id": DEMO_APPLE_APP, "app_name": "Acme CRM",
            "countries": ["us"], "base_url": "{url}"}


def _googleplay_monitor() -> dict[str, Any]:
    return {"connector": "googleplay", "schedule": "0 */2 * * *", "app_id": DEMO_PLAY_APP, "base_url": "{url}"}


def demo_source(now: float) -> DemoSource:
    """The App Store reviews of "Acme CRM" (the server also serves Google Play: see `demo_sources`)."""
    return DemoSource("appstore-acme", demo_server(now), _appstore_monitor())


def demo_sources(now: float) -> list[DemoSource]:
    """App Store and Google Play monitors sharing one server."""
    server = demo_server(now)
    return [DemoSource("appstore-acme", server, _appstore_monitor()), DemoSource("googleplay-acme", server, _googleplay_monitor())]
