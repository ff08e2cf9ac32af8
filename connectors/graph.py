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
the time below which everything was returned (`floor`) plus the ids already
returned at or after it, so an item published late with a slightly older
timestamp is still caught while nothing is returned twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, SecretStr, field_validator

from .base import ConnectorError, ConnectorOptions
from .http import HttpClient, redact_url

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


def parse_time(value: Any) -> datetime | None:
    """Graph timestamps ("2021-08-10T18:45:03+0000") or unix seconds, as aware UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(value, pattern).astimezone(timezone.utc)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def epoch(value: Any) -> int | None:
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


@dataclass
class Watermark:
    """Newest-first edge state: everything before `floor` was seen; `seen` holds ids at or after it."""

    floor: int
    seen: dict[str, int] = field(default_factory=dict)

    def is_new(self, item_id: str, t: int) -> bool:
        return t >= self.floor and item_id not in self.seen

    def add(self, item_id: str, t: int) -> None:
        self.seen[item_id] = t

    def advance(self) -> None:
        """Move the floor to `OVERLAP` before the newest item and forget ids below it."""
        if self.seen:
            self.floor = max(self.floor, max(self.seen.values()) - OVERLAP)
        kept = sorted(((t, i) for i, t in self.seen.items() if t >= self.floor), reverse=True)
        if len(kept) > SEEN_LIMIT:  # a flood inside the overlap: raise the floor, keeping its whole boundary second
            self.floor = kept[SEEN_LIMIT - 1][0]
            kept = [(t, i) for t, i in kept if t >= self.floor]
        self.seen = {i: t for t, i in kept}

    def dump(self) -> dict[str, Any]:
        return {"floor": self.floor, "seen": dict(sorted(self.seen.items()))}

    @classmethod
    def load(cls, data: Any, default_floor: int) -> "Watermark":
        if not isinstance(data, Mapping) or not isinstance(data.get("floor"), int):
            return cls(default_floor)
        seen = data.get("seen") if isinstance(data.get("seen"), Mapping) else {}
        return cls(int(data["floor"]), {str(k): int(v) for k, v in seen.items() if isinstance(v, (int, float))})


# -- client ------------------------------------------------------------------------


@dataclass
class Page:
    """One page of an edge: its items and whether Graph announced another page."""

    items: list[dict[str, Any]]
    more: bool


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

    def pages(
        self, path: str, params: Mapping[str, Any], *, what: str, permission: str | None = None, max_pages: int = 10
    ) -> Iterator[Page]:
        """The pages of an edge, following `paging.next` (its query only) up to `max_pages`."""
        query: dict[str, Any] = dict(params)
        for n in range(max_pages):
            body = self.get(path, query, what=what, permission=permission)
            data = body.get("data")
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise ConnectorError(
                    f"{self.label}: {what}: {redact_url(self.url(path))} answered without a `data` list of objects; "
                    "the API may have changed",
                )
            following = _next_params(body.get("paging"))
            more = bool(following) and bool(data)
            yield Page(data, more)
            if not more:
                return
            query = {k: v for k, v in following.items() if k not in ("access_token", "appsecret_proof")}

    def newest_first(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        floor: int,
        notes: list[str],
        what: str,
        permission: str | None = None,
        max_pages: int = 10,
        time_key: str = "created_time",
    ) -> list[dict[str, Any]]:
        """Items of a newest-first edge down to `floor` (unix time), within `max_pages`.

        Reaching the cap before the floor is not silent: a note names the
        stretch of time that was not read.
        """
        found: list[dict[str, Any]] = []
        pages = 0
        for page in self.pages(path, params, what=what, permission=permission, max_pages=max_pages):
            pages += 1
            reached_floor = False
            for item in page.items:
                t = epoch(item.get(time_key))
                if t is not None and t < floor:
                    reached_floor = True
                    continue
                found.append(item)
            if reached_floor:
                break
            if page.more and pages >= max_pages:
                oldest = min((epoch(i.get(time_key)) or floor for i in page.items), default=floor)
                notes.append(
                    f"{what}: stopped after {pages} pages (max_pages); items between {_stamp(floor)} and "
                    f"{_stamp(oldest)} were not read"
                )
        return found

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
        error = self._error_message(response, body, what, permission)
        details = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
        error.graph_code = _int(details.get("code"))  # type: ignore[attr-defined]
        error.graph_subcode = _int(details.get("error_subcode"))  # type: ignore[attr-defined]
        return error

    def _error_message(self, response: "requests.Response", body: Any, what: str, permission: str | None) -> ConnectorError:
        status = response.status_code
        error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
        code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
        message = self._scrub(str(error.get("message") or "").strip())[:300]
        trace = str(error.get("fbtrace_id") or "")
        codes = f"code {code}" + (f", subcode {subcode}" if subcode is not None else "") if code is not None else f"HTTP {status}"
        detail = f" [Facebook: {message}{'; fbtrace_id ' + trace if trace else ''}]" if message else ""
        prefix = f"{self.label}: {what}"
        if code == 190 or (status == 401 and code is None):
            shown = f" (subcode {subcode})" if subcode is not None else "" if code == 190 else f" (HTTP {status})"
            return ConnectorError(f"{prefix}: {self.token_advice}{shown}{detail}", status=401)
        if code in RATE_LIMIT_CODES or status == 429:
            wait = regain_access_seconds(response.headers) or DEFAULT_RATE_LIMIT_WAIT
            return ConnectorError(
                f"{prefix}: rate limited by Facebook ({codes}); earful comes back in {wait / 60:g} min{detail}",
                retry_after=wait,
                status=status,
            )
        named = permission_from(message)
        if code == 10 or (code is not None and 200 <= code <= 299) or (code == 100 and named):
            needed = named or permission or "the permission this endpoint needs"
            return ConnectorError(
                f"{prefix}: the token lacks the `{needed}` permission ({codes}); grant it to the app, "
                f"then generate a new Page token{detail}",
                status=403,
            )
        if code == 100 and subcode in _NOT_FOUND_SUBCODES:
            return ConnectorError(
                f"{prefix}: the object does not exist or this token cannot see it ({codes}); check the configured id{detail}",
                status=status,
            )
        if code == 368:
            return ConnectorError(f"{prefix}: Facebook temporarily blocked this app or Page for policy reasons ({codes}){detail}", status=status)
        if code in TRANSIENT_CODES or error.get("is_transient") or status >= 500:
            shown = codes if code is None else f"{codes}, HTTP {status}"
            return ConnectorError(f"{prefix}: Facebook had a temporary problem ({shown}); earful retries on the next run{detail}", status=status)
        if not error:
            return ConnectorError(
                f"{prefix}: {redact_url(response.url)} answered HTTP {status} without a Graph error body; "
                "check `base_url` and any proxy in between",
                status=status,
            )
        return ConnectorError(f"{prefix}: Graph API refused the request ({codes}, HTTP {status}){detail}", status=status)

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

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(value: Any) -> Any:
    """"12h", "7d", "2w" as timedelta seconds; anything else is left to pydantic."""
    from datetime import timedelta

    if isinstance(value, str) and (m := _DURATION.match(value)):
        return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    return value


class GraphOptions(ConnectorOptions):
    """What every Graph API monitor (Facebook Page, Instagram account) takes."""

    page_token: SecretStr = Field(description="The Page access token (for Instagram: the linked Page's), e.g. ${FACEBOOK_PAGE_TOKEN}.")
    app_secret: SecretStr | None = Field(default=None, description="App secret, to send appsecret_proof when the app requires it.")
    api_version: str = Field(default=DEFAULT_VERSION, pattern=VERSION_PATTERN, description="Graph API version, e.g. v21.0.")
    comment_window: timedelta = Field(default=timedelta(days=14), gt=timedelta(0),
                                      description="Watch posts or media this young for new comments.")
    first_run_lookback: timedelta = Field(default=timedelta(days=1), gt=timedelta(0), description="History read on the first run.")
    page_size: int = Field(default=50, ge=1, le=100, description="Items per Graph request (`limit`).")
    max_pages: int = Field(default=10, ge=1, le=500, description="Pages read per edge and per post or media in one run.")

    @field_validator("comment_window", "first_run_lookback", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        return duration(value)

    def graph_client(self, label: str, token_advice: str) -> GraphClient:
        return GraphClient(self, label, token=self.page_token, app_secret=self.app_secret, version=self.api_version,
                           token_advice=token_advice)
