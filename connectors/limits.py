"""A total deadline and a size cap for every HTTP exchange, whichever library sends it.

A socket timeout bounds each read, not the exchange: a server that sends a
byte every few seconds keeps a `requests` call alive for ever, and a 300 MB
answer is read whole into memory. `BoundedAdapter` is a `requests`
transport adapter, so one piece of code covers `HttpClient` and the
libraries that bring their own session (praw, tweepy): mount it and every
request through that session gets

- a total deadline: connect, send, headers and the whole body within
  `seconds`. A watchdog timer shuts the exchange's sockets down when the
  deadline passes, which unblocks a read in progress wherever it is (even
  a server trickling its headers); the body loop also checks the clock
  between chunks. Each redirect hop is one exchange with its own deadline.
  Name resolution (getaddrinfo) cannot be interrupted and is bounded only
  by the system resolver's own timeout.
- a size cap on the body as decoded (so a small gzip bomb counts at its
  real size): a declared Content-Length over the cap fails before reading,
  otherwise reading stops at the first chunk over it. Memory stays at about
  the cap, never the size of the answer.

Failures are `requests` exceptions, so each library's own error handling
sees them: `DeadlineExceeded` is a `requests.Timeout` (and not a
`ReadTimeout`, which prawcore would retry), `ResponseTooLarge` a
`requests.RequestException`.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

CHUNK_BYTES = 64 * 1024
MEGABYTE = 1024 * 1024


class DeadlineExceeded(requests.exceptions.Timeout):
    """The exchange did not finish within its total deadline."""


class ResponseTooLarge(requests.exceptions.RequestException):
    """The body is larger than the connector's `max_response_mb`; the message says how to raise it."""

    def __init__(self, limit_bytes: int, *, declared: int | None = None, **kwargs: Any):
        size = f"declares {declared / MEGABYTE:.1f} MB" if declared is not None else "goes on past that"
        super().__init__(f"the answer is larger than the {limit_bytes / MEGABYTE:g} MB cap ({size}); earful stopped "
                         "reading it (raise `max_response_mb` if this source really answers that much)", **kwargs)
        self.limit_bytes = limit_bytes


_current = threading.local()  # the watchdog of the exchange this thread is in, if any


class _Watchdog:
    """Shuts down the sockets of one exchange once its deadline passes."""

    def __init__(self, seconds: float):
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        _current.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _current.watchdog = None

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.fired:
                _shut(sock)
            elif sock not in self._sockets:
                self._sockets.append(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Unblock any read or write on `sock` (the plain socket call: TLS state is left to the reader to fail on)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed, or detached when TLS wrapped it
        pass


def _watch(sock: socket.socket | None) -> None:
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(sock)


class _WatchedSocket:
    """Mixed into urllib3's connections: each socket an exchange uses is handed to its watchdog."""

    sock: Any

    def _new_conn(self) -> socket.socket:  # the TCP socket, before any TLS handshake
        sock = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def connect(self) -> None:  # the TLS socket, if any
        super().connect()  # type: ignore[misc]
        _watch(self.sock)

    def getresponse(self) -> Any:  # a kept-alive connection reused for this exchange
        _watch(self.sock)
        return super().getresponse()  # type: ignore[misc]


class _HTTPConnection(_WatchedSocket, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedSocket, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class BoundedAdapter(HTTPAdapter):
    """An `HTTPAdapter` whose every exchange has a total deadline of `seconds` and a body cap of `max_bytes`.

    The body is always read here (the caller's `stream=True` is not
    honoured: nothing in earful streams), so `response.content` is ready
    and bounded when `send` returns. The `timeout` a caller passes stays
    the per-read timeout, capped by the total.
    """

    def __init__(self, seconds: float, max_bytes: int, **kwargs: Any):
        self.seconds = seconds
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # a SOCKS manager keeps its own pools: only the body loop bounds it
            manager.pool_classes_by_scheme = dict(_POOLS)
        return manager

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,  # type: ignore[override]
             **kwargs: Any) -> requests.Response:
        per_read = timeout if isinstance(timeout, (int, float)) else self.seconds
        per_read = min(per_read, self.seconds)
        end = time.monotonic() + self.seconds
        with _Watchdog(self.seconds) as watchdog:
            try:
                response = super().send(request, stream=True, timeout=(self.seconds, per_read), **kwargs)
                self._read_body(response, end)
                if watchdog.fired:  # a shut socket reads as a clean end: headers or body cut short, not an error
                    raise DeadlineExceeded(f"no complete answer within {self.seconds:g}s", request=request)
            except ResponseTooLarge:
                raise
            except Exception as exc:
                if watchdog.fired or time.monotonic() >= end:
                    raise DeadlineExceeded(f"no complete answer within {self.seconds:g}s", request=request) from None
                if isinstance(exc, requests.RequestException):
                    raise
                raise requests.exceptions.ConnectionError(exc, request=request) from None
        return response

    def _read_body(self, response: requests.Response, end: float) -> None:
        """What `Response.content` does, with the clock and the cap checked between chunks."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:  # compressed or not, the body is at least that
            response.close()
            raise ResponseTooLarge(self.max_bytes, declared=int(declared), request=response.request, response=response)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > self.max_bytes:
                response.close()
                raise ResponseTooLarge(self.max_bytes, request=response.request, response=response)
            if time.monotonic() >= end:
                response.close()
                raise DeadlineExceeded(f"no complete answer within {self.seconds:g}s", request=response.request)
            chunks.append(chunk)
        response._content = b"".join(chunks)  # requests' own cache of the body, as `Response.content` fills it
        response._content_consumed = True


def bounded_session(seconds: float, max_mb: float) -> requests.Session:
    """A `requests.Session` whose http:// and https:// requests go through a `BoundedAdapter`."""
    session = requests.Session()
    mount_bounded(session, seconds, max_mb)
    return session


def mount_bounded(session: requests.Session, seconds: float, max_mb: float) -> BoundedAdapter:
    adapter = BoundedAdapter(seconds, int(max_mb * MEGABYTE))
    for prefix in ("http://", "https://"):
        session.mount(prefix, adapter)
    return adapter
