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
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from earful.core import parse_retry_after

from .base import ConnectorError, ConnectorOptions

if TYPE_CHECKING:
    import requests

_SECRET_PARAM = re.compile(r"token|key|secret|pass|auth|sig|session|code|usg|credential", re.I)

_STATUS_HINTS: dict[int, str] = {
    400: "the request was rejected; check the connector options",
    401: "authentication is missing or wrong; check the credentials",
    403: "access is forbidden; the source may block this client or need credentials",
    404: "nothing is there; the URL may have moved, check it",
    410: "the resource is gone for good; update the URL",
    429: "rate limited; earful will come back later",
}


def redact_url(url: str) -> str:
    """`url` fit for a log line: no user:password, secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unparseable: keep only what precedes any credentials or query
        return url.split("?")[0].rsplit("@", 1)[-1]
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = urlencode(
        [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="()*,:/",
    )
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


class HttpClient:
    """A `requests.Session` with earful's user agent and timeout, raising only `ConnectorError`.

    `label` prefixes every message (e.g. "rss monitor 'acme-news'"), so an
    operator knows which monitor failed without reading a traceback.
    `count` is the number of requests sent, for `FetchResult.requests`.
    """

    def __init__(self, options: ConnectorOptions, label: str):
        self.timeout = options.timeout
        self.user_agent = options.user_agent
        self.label = label
        self.count = 0
        self._session: "requests.Session | None" = None

    @property
    def session(self) -> "requests.Session":
        if self._session is None:
            import requests

            self._session = requests.Session()
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
        import requests

        self.count += 1
        try:
            shown = redact_url(requests.Request("GET", url, params=params).prepare().url or url)
            response = self.session.get(url, params=params, headers=dict(headers or {}), timeout=self.timeout)
        except requests.Timeout:
            raise ConnectorError(
                f"{self.label}: GET {shown} timed out after {self.timeout:g}s; "
                "the site may be down or slow (raise `timeout` if it is always slow)"
            ) from None
        except requests.ConnectionError as exc:
            raise ConnectorError(
                f"{self.label}: could not connect to {shown} ({_reason(exc)}); check the URL, DNS and network/proxy"
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            raise ConnectorError(
                f"{self.label}: {redact_url(url)} is not a valid http(s) URL; check `url` and `base_url`"
            ) from None
        except requests.RequestException as exc:  # too many redirects, broken encoding ...
            raise ConnectorError(f"{self.label}: GET {redact_url(url)} failed: {_reason(exc)}") from None
        if response.ok or response.status_code in accept:
            return response
        raise self._status_error(response, shown)

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

    def _status_error(self, response: "requests.Response", shown: str) -> ConnectorError:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status >= 500:
            hint = "server error on their side; earful retries on the next run"
        else:
            hint = _STATUS_HINTS.get(status, "the request was refused")
        message = f"{self.label}: GET {shown} answered HTTP {status} {response.reason or ''}".rstrip()
        message += f"; {hint}"
        if retry_after is not None:
            message += f" (Retry-After: {retry_after:g}s)"
        return ConnectorError(message, retry_after=retry_after, status=status)

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
    """Collects text; block elements become line breaks, links become their target when they show a URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.pre = 0
        self.link: tuple[str, int] | None = None  # href, index in parts where its text starts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "a":
            self.link = (dict(attrs).get("href") or "", len(self.parts))
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


def html_to_text(value: str | None) -> str:
    """Readable plain text of an HTML fragment: tags dropped, entities decoded, paragraphs kept.

    Text without any tag is treated as plain text (YouTube descriptions,
    plain RSS), so its own line breaks survive.
    """
    if not value:
        return ""
    if not _TAG_LIKE.search(value):
        text = html.unescape(value)
    else:
        parser = _TextExtractor()
        parser.feed(value)
        parser.close()
        text = "".join(parser.parts)
    text = text.replace("\xa0", " ").replace("\r\n", "\n")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
