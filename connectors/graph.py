"""The Meta Graph API, as the facebook and instagram connectors use it: one client, one error vocabulary.

Both connectors talk to graph.facebook.com with a Page access token, page
through the same `{"data": [...], "paging": {"cursors": {...}, "next": URL}}`
envelope and fail with the same error body:

    HTTP 400 {"error": {"message": "...", "type": "OAuthException", "code": 190,
                        "error_subcode": 463, "fbtrace_id": "A1m6..."}}

`GraphClient.get` turns such a body into a `ConnectorError` an operator can
act on (its `status` is 401 for token errors and 403 for missing
permissions, whatever HTTP status Graph used, so callers such as
`earful check --online` can tell rejected credentials apart): code 190 means the token is invalid or expired (generate a new one),
4/17/32/613 and the 80001-80014 business-use-case codes are rate limits
(`retry_after` from the `estimated_time_to_regain_access` minutes in the
usage headers, else 10 minutes), 10 and 200-299 a missing permission (named:
from Facebook's own message when it names one, else the permission the
endpoint is documented to need), 1/2 and `is_transient` a temporary outage.

Paging follows `paging.next`, but never the URL itself: its host is
graph.facebook.com even behind a proxy or a test server (`base_url`), and it
carries the access token in its query. Only its query parameters (`after`,
`until`, `__paging_token` ...) are sent again, to our own base URL, with our
own credentials.

The token travels as the `access_token` query parameter (and, with
`app_secret`, an `appsecret_proof`), which `redact_url` masks in every
message; Graph error messages are scrubbed of it too.

`Watermark` is the cursor piece both connectors (and linkedin) use for edges:
the shared `paging.Watermark` in unix seconds, stored as the time below which
everything was returned (`floor`) plus the ids already returned at or after
it, so an item published late with a slightly older timestamp is still
caught while nothing is returned twice. `GraphClient.newest_first` is the
shared `paging.page_back` over an edge.

Errors Graph's codes say nothing special about end in the shared
`http.error_for_status`, worded like every other connector's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, SecretStr

from earful.core import parse_time
from earful.core.durations import Duration

from . import paging
from .base import ConnectorError, ConnectorOptions
from .http import HttpClient, error_for_status, redact_url

if TYPE_CHECKING:
    import requests

GRAPH_BASE = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"
VERSION_PATTERN = r"^v\d+\.\d+$"
DEFAULT_RATE_LIMIT_WAIT = 600.0  # seconds, when Facebook does not say how long
OVERLAP = 900  # seconds: items published up to 15 min "in the past" are still caught
SEEN_LIMIT = 2000

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80001, 80015))
TRANSIENT_CODES = frozenset({1, 2})
_USAGE_HEADERS = ("x-business-use-case-usage", "x-app-usage", "x-page-usage", "x-ad-account-usage")
_PERMISSION_IN_MESSAGE = re.compile(r"\b((?:pages|instagram|business|ads|read|publish|whatsapp)_[a-z_]+[a-z])\b")
_NOT_FOUND_SUBCODES = frozenset({33})
T = TypeVar("T")
POLICY_BLOCK_CODE = 368


def epoch(value: Any) -> int | None:
    """Unix seconds of a Graph timestamp ("2021-08-10T18:45:03+0000") or unix time: what watermarks compare."""
    moment = parse_time(value)
    return int(moment.timestamp()) if moment else None


def first_line(text: str, limit: int = 100) -> str:
    """A title-sized excerpt: the first non-empty line, cut at a word boundary."""
    line = next((part.strip() for part in (text or "").splitlines() if part.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"


# -- cursor piece ------------------------------------------------------------------


class Watermark(paging.Watermark):
    """`paging.Watermark` in unix seconds, as the Graph and LinkedIn cursors store it: `{"floor", "seen"}`.

    The newest position is not stored: it is the newest seen id's time, so
    `advance()` moves the floor to `OVERLAP` below it, keeping at most
    `SEEN_LIMIT` ids.
    """

    def __post_init__(self) -> None:
        if self.newest is None:
            self.newest = max([self.floor, *self.seen.values()])

    def advance(self, overlap: int = OVERLAP, limit: int = SEEN_LIMIT) -> "Watermark":
        super().advance(overlap, limit)
        return self

    def take(self, items: Iterable[T], ident: Callable[[T], str], moment: Callable[[T], int | None]) -> list[T]:
        """The items (in the order given) that are new, each remembered, for a listing read whole
        (a thread is needed whole to find the brand's answers, but only its new comments are returned)."""
        fresh = []
        for item in items:
            item_id, t = ident(item), moment(item)
            if item_id and t is not None and self.is_new(item_id, t):
                self.add(item_id, t)
                fresh.append(item)
        return fresh

    def dump(self) -> dict[str, Any]:
        return {"floor": self.floor, "seen": dict(sorted(self.seen.items()))}

    @classmethod
    def load(cls, data: Any, default_floor: int) -> "Watermark":
        if not isinstance(data, Mapping) or not isinstance(data.get("floor"), int):
            return cls(default_floor)
        seen = data.get("seen") if isinstance(data.get("seen"), Mapping) else {}
        return cls(int(data["floor"]), {str(k): int(v) for k, v in seen.items() if isinstance(v, (int, float))})


# -- client ------------------------------------------------------------------------


class GraphClient:
    """GET against the Graph API with a Page token; every failure is a `ConnectorError`.

    `token_advice` ends the message for code 190, so each connector can say
    which token to renew and how; `notes` collects usage warnings for the
    run's FetchResult.
    """

    def __init__(
        self,
        options: ConnectorOptions,
        label: str,
        *,
        token: SecretStr,
        app_secret: SecretStr | None,
        version: str,
        token_advice: str,
    ):
        self.http = HttpClient(options, label)
        self.label = label
        self.base = (options.base_url or GRAPH_BASE).rstrip("/")
        self.version = version
        self._token = token.get_secret_value()
        self._proof = (
            hmac.new(app_secret.get_secret_value().encode(), self._token.encode(), hashlib.sha256).hexdigest()
            if app_secret is not None and app_secret.get_secret_value()
            else None
        )
        self.token_advice = token_advice
        self.notes: list[str] = []

    @property
    def count(self) -> int:
        return self.http.count

    def url(self, path: str) -> str:
        return f"{self.base}/{self.version}/{path.lstrip('/')}"

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, what: str, permission: str | None = None) -> dict[str, Any]:
        """One GET of `path` (e.g. "104.../feed"); `what` and `permission` word the errors."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        query["access_token"] = self._token
        if self._proof:
            query["appsecret_proof"] = self._proof
        url = self.url(path)
        try:
            response = self.http.get(url, params=query, headers={"Accept": "application/json"}, accept=tuple(range(400, 600)))
        except ConnectorError as exc:
            raise ConnectorError(self._scrub(str(exc)), retry_after=exc.retry_after, status=exc.status) from None
        body = _json(response)
        self._watch_usage(response.headers)
        if response.status_code >= 400 or (isinstance(body, dict) and isinstance(body.get("error"), dict)):
            raise self._error(response, body, what, permission)
        if not isinstance(body, dict):
            raise ConnectorError(
                f"{self.label}: {what}: {redact_url(response.url)} answered {response.status_code} but the body is not "
                f"a JSON object ({response.headers.get('Content-Type', 'no content-type')}, {len(response.content)} bytes); "
                "the API may have changed or a proxy answered instead",
                status=response.status_code,
            )
        return body

    def page(self, path: str, query: Mapping[str, Any], *, what: str, permission: str | None = None) -> paging.Page[dict[str, Any]]:
        """One page of an edge; its `next` is the query of the following page (None on the last).

        Only the query of `paging.next` is kept, never its URL: see the module docstring.
        """
        body = self.get(path, query, what=what, permission=permission)
        data = body.get("data")
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise ConnectorError(
                f"{self.label}: {what}: {redact_url(self.url(path))} answered without a `data` list of objects; "
                "the API may have changed",
            )
        following = _next_params(body.get("paging"))
        if not following or not data:
            return paging.Page(data)
        return paging.Page(data, {k: v for k, v in following.items() if k not in ("access_token", "appsecret_proof")})

    def pages(
        self, path: str, params: Mapping[str, Any], *, what: str, permission: str | None = None, max_pages: int = 10
    ) -> Iterator[paging.Page[dict[str, Any]]]:
        """The pages of an edge, following `paging.next` up to `max_pages`."""
        query = params
        for _ in range(max_pages):
            page = self.page(path, query, what=what, permission=permission)
            yield page
            if page.next is None:
                return
            query = page.next

    def newest_first(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        watermark: Watermark,
        notes: list[str],
        what: str,
        permission: str | None = None,
        max_pages: int = 10,
        time_key: str = "created_time",
        key: Callable[[dict[str, Any]], str] | None = None,
    ) -> list[dict[str, Any]]:
        """The items of a newest-first edge down to the watermark's floor that it has not seen
        (now added to it), newest first; items without a time are left out.

        Pass a fresh `Watermark(floor)` to get everything down to `floor`.
        Reaching `max_pages` before the floor is not silent: a note names
        the stretch of time that was not read.
        """
        def moment(item: dict[str, Any]) -> int:
            t = epoch(item.get(time_key))
            return watermark.floor if t is None else t

        catch_up = paging.page_back(
            lambda query: self.page(path, query or params, what=what, permission=permission),
            watermark,
            key=key or (lambda item: str(item.get("id") or "")),
            position=moment,
            max_pages=max_pages,
            wanted=lambda item: epoch(item.get(time_key)) is not None,
        )
        if catch_up.cut:
            oldest = watermark.floor if catch_up.oldest is None else catch_up.oldest
            notes.append(
                f"{what}: stopped after {catch_up.pages} pages (max_pages); items between {_stamp(watermark.floor)} and "
                f"{_stamp(oldest)} were not read"
            )
        return catch_up.items

    def close(self) -> None:
        self.http.close()

    # -- errors -------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in (self._token, self._proof):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _error(self, response: "requests.Response", body: Any, what: str, permission: str | None) -> ConnectorError:
        """The operator's message for a Graph error; `graph_code`/`graph_subcode` stay on it for callers."""
        failure = GraphFailure.read(response.status_code, body, self._scrub)
        error = self._error_for(failure, response, f"{self.label}: {what}", permission)
        error.graph_code = failure.code  # type: ignore[attr-defined]
        error.graph_subcode = failure.subcode  # type: ignore[attr-defined]
        return error

    def _error_for(self, failure: "GraphFailure", response: "requests.Response", prefix: str,
                   permission: str | None) -> ConnectorError:
        """Graph's own error codes first (they say more than the HTTP status Graph happened to use)."""
        status, codes, detail = failure.status, failure.codes, failure.detail
        if failure.is_token_error:
            return ConnectorError(f"{prefix}: {self.token_advice}{failure.token_shown}{detail}", status=401)
        if failure.is_rate_limit:
            wait = regain_access_seconds(response.headers) or DEFAULT_RATE_LIMIT_WAIT
            return ConnectorError(f"{prefix}: rate limited by Facebook ({codes}); earful comes back in {wait / 60:g} min{detail}",
                                  retry_after=wait, status=status)
        if failure.is_missing_permission:
            needed = failure.named_permission or permission or "the permission this endpoint needs"
            return ConnectorError(f"{prefix}: the token lacks the `{needed}` permission ({codes}); grant it to the app, "
                                  f"then generate a new Page token{detail}", status=403)
        if failure.is_not_found:
            return ConnectorError(f"{prefix}: the object does not exist or this token cannot see it ({codes}); "
                                  f"check the configured id{detail}", status=status)
        if failure.code == POLICY_BLOCK_CODE:
            return ConnectorError(f"{prefix}: Facebook temporarily blocked this app or Page for policy reasons ({codes}){detail}",
                                  status=status)
        if failure.is_transient:
            shown = codes if failure.code is None else f"{codes}, HTTP {status}"
            return ConnectorError(f"{prefix}: Facebook had a temporary problem ({shown}); earful retries on the next run{detail}",
                                  status=status)
        # Nothing Graph-specific to say: the HTTP status speaks, in every connector's words.
        if not failure.error:
            hints = {status: "the answer has no Graph error body; check `base_url` and any proxy in between"}
            return error_for_status(prefix, "GET", response.url, status, response.reason, response.headers, hints=hints)
        return error_for_status(prefix, "GET", response.url, status, response.reason, response.headers,
                                detail=f"Graph API {codes}{detail}")

    def _watch_usage(self, headers: Mapping[str, str]) -> None:
        """Note when Facebook reports 80% or more of a rate-limit budget used."""
        worst = 0.0
        for name in _USAGE_HEADERS:
            for entry in _usage_entries(headers.get(name)):
                for key in ("call_count", "total_cputime", "total_time", "acc_id_util_pct"):
                    value = entry.get(key)
                    if isinstance(value, (int, float)):
                        worst = max(worst, float(value))
        note = f"Facebook rate-limit usage at {worst:g}% of the budget; consider a slower schedule"
        if worst >= 80 and note not in self.notes:
            self.notes.append(note)


@dataclass(frozen=True)
class GraphFailure:
    """What a Graph error body says, read once: the codes, Facebook's own (scrubbed) words, and what they mean."""

    status: int
    error: Mapping[str, Any]
    code: int | None
    subcode: int | None
    message: str

    @classmethod
    def read(cls, status: int, body: Any, scrub: Any) -> "GraphFailure":
        error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
        message = scrub(str(error.get("message") or "").strip())[:300]
        return cls(status, error, _int(error.get("code")), _int(error.get("error_subcode")), message)

    @property
    def codes(self) -> str:
        if self.code is None:
            return f"HTTP {self.status}"
        return f"code {self.code}" + (f", subcode {self.subcode}" if self.subcode is not None else "")

    @property
    def detail(self) -> str:
        """Facebook's message and trace id, for the operator and for Meta's support."""
        if not self.message:
            return ""
        trace = str(self.error.get("fbtrace_id") or "")
        return f" [Facebook: {self.message}{'; fbtrace_id ' + trace if trace else ''}]"

    @property
    def named_permission(self) -> str | None:
        return permission_from(self.message)

    @property
    def is_token_error(self) -> bool:
        return self.code == 190 or (self.status == 401 and self.code is None)

    @property
    def token_shown(self) -> str:
        if self.subcode is not None:
            return f" (subcode {self.subcode})"
        return "" if self.code == 190 else f" (HTTP {self.status})"

    @property
    def is_rate_limit(self) -> bool:
        return self.code in RATE_LIMIT_CODES or self.status == 429

    @property
    def is_missing_permission(self) -> bool:
        code = self.code
        return code == 10 or (code is not None and 200 <= code <= 299) or (code == 100 and bool(self.named_permission))

    @property
    def is_not_found(self) -> bool:
        return self.code == 100 and self.subcode in _NOT_FOUND_SUBCODES

    @property
    def is_transient(self) -> bool:
        return self.code in TRANSIENT_CODES or bool(self.error.get("is_transient")) or self.status >= 500


def young_threads(previous: Mapping[str, Any], threads: Mapping[str, Any], window_start: int) -> dict[str, Any]:
    """Threads of the last cursor that this run's listing did not reach (a capped catch-up):
    they stay watched while their post is younger than the comment window."""
    return {
        tid: dict(prior)
        for tid, prior in previous.items()
        if tid not in threads and isinstance(prior, Mapping) and int(prior.get("t", 0)) >= window_start
    }


def _stamp(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def is_gone(error: ConnectorError) -> bool:
    """Graph's "object does not exist" (code 100, subcode 33): deleted between two requests."""
    return getattr(error, "graph_code", None) == 100 and getattr(error, "graph_subcode", None) in _NOT_FOUND_SUBCODES


def regain_access_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest `estimated_time_to_regain_access` (minutes) in the usage headers, in seconds."""
    minutes = [
        float(entry["estimated_time_to_regain_access"])
        for name in _USAGE_HEADERS
        for entry in _usage_entries(headers.get(name))
        if isinstance(entry.get("estimated_time_to_regain_access"), (int, float))
    ]
    best = max(minutes, default=0.0)
    return best * 60 if best > 0 else None


def permission_from(message: str) -> str | None:
    """The permission a Graph error message names ("requires the 'pages_read_engagement' permission")."""
    match = _PERMISSION_IN_MESSAGE.search(message or "")
    return match.group(1) if match else None


def _usage_entries(raw: str | None) -> list[dict[str, Any]]:
    """`x-app-usage` is one object; `x-business-use-case-usage` maps ids to lists of objects."""
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    if any(isinstance(v, list) for v in data.values()):
        return [e for v in data.values() if isinstance(v, list) for e in v if isinstance(e, dict)]
    return [data]


def _next_params(paging: Any) -> dict[str, str]:
    """The query of `paging.next` as parameters; {} on the last page."""
    if not isinstance(paging, dict) or not isinstance(paging.get("next"), str):
        return {}
    return dict(parse_qsl(urlsplit(paging["next"]).query, keep_blank_values=True))


def _json(response: "requests.Response") -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- options -------------------------------------------------------------------------

class GraphOptions(ConnectorOptions):
    """What every Graph API monitor (Facebook Page, Instagram account) takes."""

    page_token: SecretStr = Field(description="The Page access token (for Instagram: the linked Page's), e.g. ${FACEBOOK_PAGE_TOKEN}.")
    app_secret: SecretStr | None = Field(default=None, description="App secret, to send appsecret_proof when the app requires it.")
    api_version: str = Field(default=DEFAULT_VERSION, pattern=VERSION_PATTERN, description="Graph API version, e.g. v21.0.")
    comment_window: Duration = Field(default=timedelta(days=14), gt=timedelta(0),
                                      description="Watch posts or media this young for new comments.")
    first_run_lookback: Duration = Field(default=timedelta(days=1), gt=timedelta(0), description="History read on the first run.")
    page_size: int = Field(default=50, ge=1, le=100, description="Items per Graph request (`limit`).")
    max_pages: int = Field(default=10, ge=1, le=500, description="Pages read per edge and per post or media in one run.")

    def graph_client(self, label: str, token_advice: str) -> GraphClient:
        return GraphClient(self, label, token=self.page_token, app_secret=self.app_secret, version=self.api_version,
                           token_advice=token_advice)
