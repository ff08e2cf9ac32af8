"""One headless chromium per run, shared by every review-site monitor.

G2, Capterra and Trustpilot render their review pages for browsers, and
answer plain HTTP clients with bot checks; so those connectors drive
Debian's chromium through Playwright (sync API). Starting chromium costs
about a second and a few hundred MB, so a run starts it at most once: the
first monitor that needs it creates it through `ConnectorContext.resources`
(`RESOURCE_KEY`), later monitors reuse it, and the runner's
`RunResources.close_all()` closes the browser *and* stops Playwright's
driver, so no chromium process outlives the run.

Each monitor works in its own browser context (cookies, cache and storage
are not shared between sites) with images, fonts and media aborted: review
text is all we read, and those are most of a page's bytes.

Playwright is imported inside functions: an idle cron tick imports
connector modules for config validation and must not pay for it.

Limits, as for plain HTTP (connectors/limits.py): `timeout` is the total for
one page, navigation, settling and the extraction script together (the
script runs under Playwright's own timeout, so a page whose scripts hang
its main thread fails at the deadline too). `max_response_mb` caps the
document: a larger declared Content-Length or transferred body fails the
page before earful reads anything from it. What is not capped: chromium
itself has downloaded the document by then (in its own process, freed
with the context), and the page's sub-resources (scripts, XHR) are not
counted; images, fonts and media are not fetched at all.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator

from .base import ConnectorContext, ConnectorError, ConnectorOptions
from .http import redact_url

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ENV = "EARFUL_CHROMIUM"
# The Playwright browser download does not work everywhere earful runs; a
# distribution chromium does, with these flags (no sandbox: often run as root
# in containers; no background traffic: nothing but the pages we open).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)
RESOURCE_KEY = "playwright-browser"
BLOCKED_RESOURCE_TYPES = frozenset({"image", "font", "media"})
VIEWPORT = {"width": 1280, "height": 900}
SETTLE_SECONDS = 8.0  # at most this long for the load event after the document arrived

# Chromium network errors -> what an operator should check.
_NET_HINTS = {
    "ERR_CONNECTION_REFUSED": "connection refused; check `base_url` and the network",
    "ERR_NAME_NOT_RESOLVED": "the host name does not resolve; check `base_url` and DNS",
    "ERR_INTERNET_DISCONNECTED": "no network connection",
    "ERR_PROXY_CONNECTION_FAILED": "the proxy refused the connection; check `proxy`",
    "ERR_TUNNEL_CONNECTION_FAILED": "the proxy could not reach the site; check `proxy`",
    "ERR_CONNECTION_RESET": "the connection was reset; the site may block this client",
    "ERR_CONNECTION_CLOSED": "the connection was closed; the site may block this client",
    "ERR_EMPTY_RESPONSE": "the site closed the connection without answering",
    "ERR_CERT_": "the TLS certificate was rejected",
    "ERR_TOO_MANY_REDIRECTS": "the site redirects in a loop (consent or login redirect?)",
    "ERR_TIMED_OUT": "the connection timed out",
    "ERR_ABORTED": "the navigation was aborted (a download or a redirect to another scheme?)",
}


def default_browser_path() -> str:
    return os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM


class BrowserOptions(ConnectorOptions):
    """Options of every connector that reads pages through the shared browser."""

    browser_path: str = Field(
        default_factory=default_browser_path,
        description=f"The chromium executable; default ${CHROMIUM_ENV} or {DEFAULT_CHROMIUM}.",
    )
    user_agent: str | None = Field(  # type: ignore[assignment]
        default=None, description="User-Agent of the browser context; default: chromium's own."
    )
    proxy: SecretStr | None = Field(
        default=None, description="Proxy for this site, e.g. http://user:password@proxy.example:3128 or socks5://host:1080."
    )
    page_delay: float = Field(default=1.0, ge=0, le=120, description="Seconds to wait between two pages of one site.")

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
                raise ValueError("proxy must look like http://host:port or socks5://host:port")
        return value


def proxy_settings(proxy: SecretStr | None) -> dict[str, str] | None:
    """Playwright's proxy dict from a proxy URL: credentials go in their own fields."""
    if proxy is None:
        return None
    parts = urlsplit(proxy.get_secret_value())
    host = parts.hostname or ""
    server = urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, "", "", ""))
    settings = {"server": server}
    if parts.username:
        settings["username"] = unquote(parts.username)
        settings["password"] = unquote(parts.password or "")
    return settings


class SharedBrowser:
    """Playwright's driver plus the chromium(s) it launched; `close()` stops them all.

    Playwright's sync API allows one driver per thread, so a run has one
    driver; a monitor naming another `browser_path` gets a second browser
    from the same driver. A browser that crashed or was killed between two
    monitors is relaunched on the next `new_context`, so one crash costs
    one monitor, not the run.
    """

    def __init__(self, launch_timeout: float = 60.0):
        from playwright.sync_api import sync_playwright

        self.launch_timeout = launch_timeout
        self._playwright: "Playwright | None" = sync_playwright().start()
        self._browsers: dict[str, "Browser"] = {}

    def browser(self, executable: str) -> "Browser":
        """The chromium at `executable`, launched on first use (FileNotFoundError if there is none)."""
        browser = self._browsers.get(executable)
        if browser is None or not browser.is_connected():
            if not os.path.isfile(executable):
                raise FileNotFoundError(executable)
            assert self._playwright is not None, "the browser was closed"
            browser = self._playwright.chromium.launch(
                executable_path=executable, args=list(CHROMIUM_ARGS), headless=True, timeout=self.launch_timeout * 1000
            )
            self._browsers[executable] = browser
        return browser

    def new_context(self, executable: str, *, user_agent: str | None, proxy: dict[str, str] | None,
                    timeout: float) -> "BrowserContext":
        """A fresh context: no cookies from other sites, heavy resources aborted, timeouts set."""
        context = self.browser(executable).new_context(
            user_agent=user_agent,
            proxy=proxy,  # type: ignore[arg-type]
            locale="en-US",
            timezone_id="UTC",
            viewport=VIEWPORT,  # type: ignore[arg-type]
            service_workers="block",
        )
        context.set_default_timeout(timeout * 1000)
        context.set_default_navigation_timeout(timeout * 1000)
        context.route("**/*", _block_heavy_resources)
        return context

    def close(self) -> None:
        """Close every chromium, then stop Playwright's driver; safe to call twice."""
        browsers, self._browsers = list(self._browsers.values()), {}
        playwright, self._playwright = self._playwright, None
        try:
            for browser in browsers:
                try:
                    browser.close()
                except Exception:  # noqa: BLE001 - a crashed browser must not keep the driver running
                    pass
        finally:
            if playwright is not None:
                playwright.stop()


def _block_heavy_resources(route: Any) -> None:
    if route.request.resource_type in BLOCKED_RESOURCE_TYPES:
        route.abort("blockedbyclient")
    else:
        route.continue_()


def shared_browser(context: ConnectorContext, options: BrowserOptions, label: str) -> tuple[SharedBrowser, str]:
    """The run's browser (started on first use) and the executable to use, or a `ConnectorError` saying how to get one."""
    path = options.browser_path
    started: list[SharedBrowser] = []

    def factory() -> SharedBrowser:
        started.append(SharedBrowser())
        return started[0]

    def close() -> None:  # registered only when `factory` ran, so `started` holds the browser
        for browser in started:
            browser.close()

    try:
        shared: SharedBrowser = context.resources.get(RESOURCE_KEY, factory, close)
        shared.browser(path)
    except FileNotFoundError:
        raise ConnectorError(
            f"{label}: no chromium at {path}; install Debian's chromium (apt-get install chromium) "
            f"or set `browser_path` / ${CHROMIUM_ENV}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - playwright missing, launch failure, sandbox problems ...
        raise ConnectorError(f"{label}: could not start chromium at {path}: {_first_line(exc)}") from None
    return shared, path


@dataclass(frozen=True)
class LoadedPage:
    """A page after it loaded: the document response and what the extraction script returned."""

    url: str
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None


class BrowserSession:
    """One site's browser context for one fetch; use as a context manager.

    `load(url, script, arg)` navigates, waits for the document (and for
    the load event, up to SETTLE_SECONDS) and runs
    `script` (a JS function taking `arg`) in the page, turning every
    Playwright failure into a `ConnectorError` that names the monitor and
    the (redacted) URL.
    """

    def __init__(self, context: ConnectorContext, options: BrowserOptions, label: str):
        from playwright.sync_api import Error

        self.label = label
        self.timeout = options.timeout
        self.max_bytes = int(options.max_response_mb * 1024 * 1024)
        self.max_response_mb = options.max_response_mb
        self.count = 0
        browser, executable = shared_browser(context, options, label)
        try:
            self._context = browser.new_context(
                executable, user_agent=options.user_agent, proxy=proxy_settings(options.proxy), timeout=options.timeout
            )
        except Error as exc:
            raise ConnectorError(f"{label}: could not open a browser context: {_first_line(exc)}") from None
        try:
            self._page: "Page" = self._context.new_page()
        except Error as exc:
            self.close()
            raise ConnectorError(f"{label}: could not open a browser tab: {_first_line(exc)}") from None

    def load(self, url: str, script: str, arg: Any = None, *, on_response: Callable[[LoadedPage], None] | None = None) -> LoadedPage:
        """Open `url` and evaluate `script`; `on_response` may raise on the status before the script runs."""
        from playwright.sync_api import Error
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        shown = redact_url(url)
        self.count += 1
        end = time.monotonic() + self.timeout
        try:
            # The review sites render server-side: the document is what we read. The load event (scripts
            # that add consent overlays, say) is waited for as well, but a slow tracker must not fail the run.
            response = self._page.goto(url, wait_until="domcontentloaded", timeout=self.timeout * 1000)
            try:
                self._page.wait_for_load_state("load", timeout=min(_left_ms(end), SETTLE_SECONDS * 1000))
            except PlaywrightTimeout:
                pass
        except PlaywrightTimeout:
            raise ConnectorError(
                f"{self.label}: {shown} did not finish loading within {self.timeout:g}s; "
                "the site may be slow or stalling this client (raise `timeout` if it is always slow)"
            ) from None
        except Error as exc:
            raise ConnectorError(f"{self.label}: could not load {shown}: {_net_reason(exc)}") from None
        page = LoadedPage(
            url=self._page.url,
            status=response.status if response is not None else None,
            headers={k.lower(): v for k, v in (response.headers if response is not None else {}).items()},
        )
        self._check_size(response, page, shown)
        if on_response is not None:
            on_response(page)
        try:
            # `evaluate` has no timeout; a function that always returns a truthy wrapper resolves on its
            # first call, and `wait_for_function` gives up at the page's deadline.
            handle = self._page.wait_for_function(f"(arg) => ({{value: ({script})(arg)}})", arg=arg,
                                                  timeout=_left_ms(end))
            data = handle.json_value()["value"]
        except PlaywrightTimeout:
            raise ConnectorError(f"{self.label}: reading {shown} timed out after {self.timeout:g}s") from None
        except Error as exc:
            raise ConnectorError(f"{self.label}: reading {shown} failed in the browser: {_first_line(exc)}") from None
        return LoadedPage(url=page.url, status=page.status, headers=page.headers, data=data)

    def _check_size(self, response: Any, page: LoadedPage, shown: str) -> None:
        """Fail a document over `max_response_mb`: as declared, else as transferred (when chromium can say)."""
        from playwright.sync_api import Error

        declared = page.headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else None
        if (size is None or size <= self.max_bytes) and response is not None:
            try:
                size = response.request.sizes().get("responseBodySize")
            except Error:  # the response is gone (a navigation replaced it): nothing to measure
                size = None
        if size is not None and size > self.max_bytes:
            raise ConnectorError(
                f"{self.label}: {shown} is larger than the {self.max_response_mb:g} MB cap ({size / 1048576:.1f} MB); "
                "earful did not read it (raise `max_response_mb` if this page really is that large)"
            )

    def close(self) -> None:
        try:
            self._context.close()
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass

    def __enter__(self) -> "BrowserSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _left_ms(end: float) -> float:
    """Milliseconds until `end` (a monotonic time), at least 1: Playwright reads 0 as "no timeout"."""
    return max(1.0, (end - time.monotonic()) * 1000)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _net_reason(exc: BaseException) -> str:
    text = str(exc)
    for code, hint in _NET_HINTS.items():
        if f"net::{code}" in text:
            return f"{hint} (net::{code.rstrip('_')})"
    return _first_line(exc)
