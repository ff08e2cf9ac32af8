"""Shared plumbing for connectors that read the web: one HTTP client, one HTML-to-text.

Every network connector fails the same ways (timeouts, refused connections,
4xx/5xx, rate limits), and the operator reading a failed run should get the
same kind of message from each: which URL (never its secrets), what status,
what to check. `HttpClient` turns all of those into `ConnectorError`, with
`retry_after` taken from a `Retry-After` header so the scheduler can back off.

`requests` is imported lazily: the scheduler imports connector modules on
every cron tick, and an idle tick must not pay for it.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, Collection, Mapping
from urllib.parse import (
    SplitResult,
    parse_qsl,
    urlencode,
    urljoin,
    urlsplit,
    urlunsplit,
)

from earful.core import retry_after_header
from earful.core.redaction import SECRET_NAME, redact

from .base import ConnectorError, ConnectorOptions

if TYPE_CHECKING:
    import requests

_STATUS_HINTS: dict[int, str] = {
    400: "the request was rejected; check the connector options",
    401: "authentication is missing or wrong; check the credentials",
    403: "access is forbidden; the source may block this client or need credentials",
    404: "nothing is there; the URL may have moved, check it",
    410: "the resource is gone for good; update the URL",
    429: "rate limited; earful will come back later",
}
_SERVER_HINT = "server error on their side; earful retries on the next run"
_OTHER_HINT = "the request was refused"


def error_for_status(
    label: str,
    method: str,
    url: str,
    status: int,
    reason: str | None = None,
    headers: Mapping[str, Any] | None = None,
    *,
    detail: str | None = None,
    hints: Mapping[int, str] | None = None,
    retry_after: float | None = None,
) -> ConnectorError:
    """The one `ConnectorError` for an HTTP error answer, whichever library made the request.

    Every connector reports a refused request the same way, so an operator
    reads one shape whatever the source: ``<label>: <METHOD> <url> answered
    HTTP <status> [<reason>] [(<detail>)]; <hint> [(Retry-After: Ns)]``.
    The URL is redacted; `detail` is the source's own words (its error
    message or code), already shortened by the caller. `hints` replaces the
    generic advice per status with the connector's own (which credential,
    which option); a hint under 500 stands for every 5xx. `retry_after`
    (seconds) is for sources that say it elsewhere than in the Retry-After
    header (a JSON body, a rate-limit reset header); otherwise the header is
    read with `earful.core.retry_after_header`. A hint may say the wait
    itself with the placeholder ``{retry_after}``.
    """
    hints = hints or {}
    if retry_after is None:
        retry_after = retry_after_header(headers)
    if status in hints:
        hint = hints[status]
    elif status >= 500:
        hint = hints.get(500, _SERVER_HINT)
    else:
        hint = _STATUS_HINTS.get(status, _OTHER_HINT)
    waits = "{retry_after}" in hint  # a hint that says how long itself, e.g. "earful comes back in {retry_after}s"
    hint = hint.replace("{retry_after}", f"{retry_after or 0:g}")
    message = f"{label}: {method} {redact_url(url)} answered HTTP {status}"
    if reason:
        message += f" {reason}"
    if detail:
        message += f" ({detail})"
    message += f"; {hint}"
    if retry_after is not None and not waits:
        message += f" (Retry-After: {retry_after:g}s)"
    return ConnectorError(message, retry_after=retry_after, status=status)


def split_url(url: str) -> SplitResult:
    """`urlsplit` for URLs written by strangers: one with a bad IPv6 literal
    splits into empty parts instead of raising, and `.port` is never read
    here (it raises on a bad port), so one odd link cannot fail a fetch."""
    try:
        return urlsplit(url or "")
    except ValueError:
        return urlsplit("")


def join_url(base: str, href: str) -> str:
    """`urljoin` that gives '' instead of raising on a malformed `href`."""
    try:
        return urljoin(base, href)
    except ValueError:
        return ""


def redact_url(url: str) -> str:
    """`url` fit for a log line: no user:password, secret-looking query values masked, a Telegram-style
    `/bot<id>:<token>` path segment shown as `/bot<token>`, and every secret the configuration named masked."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unparseable: keep only what precedes any credentials or query
        return redact(url.split("?")[0].rsplit("@", 1)[-1])
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = urlencode(
        [(k, "***" if SECRET_NAME.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="()*,:/",
    )
    return redact(urlunsplit((parts.scheme, host, parts.path, query, "")))  # redact: the /bot<token> path too


class HttpClient:
    """A `requests.Session` with earful's user agent and limits, raising only `ConnectorError`.

    `label` prefixes every message (e.g. "rss monitor 'acme-news'"), so an
    operator knows which monitor failed without reading a traceback.
    `count` is the number of requests sent, for `FetchResult.requests`.
    `timeout` is the total for one exchange (connect and the whole body) and
    `max_response_mb` caps the body (see `connectors/limits.py`).
    """

    def __init__(self, options: ConnectorOptions, label: str):
        self.timeout = options.timeout
        self.max_response_mb = options.max_response_mb
        self.user_agent = options.user_agent
        self.label = label
        self.count = 0
        self._session: "requests.Session | None" = None

    @property
    def session(self) -> "requests.Session":
        if self._session is None:
            from .limits import bounded_session

            self._session = bounded_session(self.timeout, self.max_response_mb)
            self._session.headers["User-Agent"] = self.user_agent
        return self._session

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> "requests.Response":
        """GET `url`; a 2xx or a status listed in `accept` (e.g. 304) is returned, anything else raises."""
        return self.request("GET", url, params=params, headers=headers, accept=accept)

    def post(self, url: str, **options: Any) -> "requests.Response":
        """POST a form (`data=`) or a JSON body (`json=`); options and errors as for `request`."""
        return self.request("POST", url, **options)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        accept: tuple[int, ...] = (),
        hints: Mapping[int, str] | None = None,
        retry_after: float | None = None,
    ) -> "requests.Response":
        """Send one request; transport failures and unaccepted statuses become one `ConnectorError`
        whose message names the monitor, the method and the URL without its secrets.

        `hints` adds source-specific advice per status and `retry_after` is the wait
        to report when a 429 carries no Retry-After (both passed to `error_for_status`)."""
        import requests

        from .limits import ResponseTooLarge

        self.count += 1
        try:
            shown = redact_url(requests.Request(method, url, params=params).prepare().url or url)
            response = self.session.request(method, url, params=params, data=data, json=json,
                                            headers=dict(headers or {}), timeout=self.timeout)
        except requests.Timeout:
            raise ConnectorError(
                f"{self.label}: {method} {shown} timed out after {self.timeout:g}s (the whole answer must arrive "
                "within `timeout`); the site may be down, slow or trickling (raise `timeout` if it is always slow)"
            ) from None
        except ResponseTooLarge as exc:
            raise ConnectorError(f"{self.label}: {method} {shown}: {exc}") from None
        except requests.ConnectionError as exc:
            raise ConnectorError(
                f"{self.label}: could not connect to {shown} ({_reason(exc)}); check the URL, DNS and network/proxy"
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            raise ConnectorError(
                f"{self.label}: {redact_url(url)} is not a valid http(s) URL; check `url` and `base_url`"
            ) from None
        except requests.RequestException as exc:  # too many redirects, broken encoding ...
            raise ConnectorError(f"{self.label}: {method} {redact_url(url)} failed: {_reason(exc)}") from None
        if response.ok or response.status_code in accept:
            return response
        unsaid = response.status_code == 429 and retry_after_header(response.headers) is None
        raise error_for_status(self.label, method, shown, response.status_code, response.reason, response.headers,
                               hints=hints, retry_after=retry_after if unsaid else None)

    def get_json(self, url: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode JSON; a body that is not JSON is a `ConnectorError` naming the URL."""
        response = self.get(url, params=params, headers={"Accept": "application/json"})
        try:
            return response.json()
        except ValueError:
            ctype = response.headers.get("Content-Type", "no content-type")
            raise ConnectorError(
                f"{self.label}: {redact_url(response.url)} answered {response.status_code} "
                f"but the body is not JSON ({ctype}, {len(response.content)} bytes); the API may have changed"
            ) from None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _reason(exc: BaseException) -> str:
    """The low-level cause of a requests error ("[Errno 111] Connection refused"), never the URL."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\][^'\")\]]*", text)
    if errno:
        return errno.group(0).strip()
    cause = re.search(r"Caused by (\w+)", text)
    return cause.group(1) if cause else type(exc).__name__


# -- HTML to plain text ---------------------------------------------------------

_BLOCK = {"p", "div", "br", "hr", "ul", "ol", "pre", "blockquote", "tr", "table", "section", "article", "figure"}
_BLOCK |= {f"h{n}" for n in range(1, 7)}
_SKIP = {"script", "style", "head", "template"}
_TAG_LIKE = re.compile(r"<[a-zA-Z/!]")


class _TextExtractor(HTMLParser):
    """Collects text; block elements become line breaks, links become their target when they show a URL.

    A link whose href is one of `titled_links` keeps its `title` attribute
    after its text: that is where such links carry what the author wrote.
    """

    def __init__(self, titled_links: Collection[str] = ()) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.pre = 0
        self.titled_links = titled_links
        self.link: tuple[str, int] | None = None  # href, index in parts where its text starts
        self.link_title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "a":
            attributes = dict(attrs)
            href = attributes.get("href") or ""
            self.link = (href, len(self.parts))
            self.link_title = (attributes.get("title") or "").strip() if href in self.titled_links else ""
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK:
            self.parts.append("\n" if tag == "br" else "\n\n")
            self.pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "a" and self.link is not None:
            href, start = self.link
            self.link = None
            shown = "".join(self.parts[start:]).strip()
            # HN and Mastodon show a shortened URL as link text; the href is the useful part.
            shows_url = not shown or shown.startswith(("http", "www.")) or shown.endswith("...")
            if href.startswith(("http://", "https://")) and shows_url:
                self.parts[start:] = [href]
            elif self.link_title:
                self.parts.append((" " if shown else "") + re.sub(r"\s+", " ", self.link_title))
        elif tag in _BLOCK and tag not in ("br", "li"):
            self.parts.append("\n\n")
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
        self.parts.append(data)


def html_to_text(value: str | None, *, titled_links: Collection[str] = ()) -> str:
    """Readable plain text of an HTML fragment: tags dropped, entities decoded, paragraphs kept.

    Text without any tag is treated as plain text (YouTube descriptions,
    plain RSS), so its own line breaks survive. `titled_links` names hrefs
    whose `title` attribute is part of the text (Reddit's `/s` spoiler links
    hide the spoiler there).
    """
    if not value:
        return ""
    if not _TAG_LIKE.search(value):
        text = html.unescape(value)
    else:
        parser = _TextExtractor(titled_links)
        parser.feed(value)
        parser.close()
        text = "".join(parser.parts)
    text = text.replace("\xa0", " ").replace("\r\n", "\n")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
