"""A tiny threaded HTTP server on 127.0.0.1 for fake APIs.

The demo and the tests both need local servers that speak real wire formats
(Slack, Hacker News Algolia, RSS with ETags ...). Each fake subclasses
`FakeServer` and implements `handle(request) -> Response`; the server binds
port 0 so parallel tests never collide, records every request it received
(for asserting request counts), and can be scripted to fail (`fail_next`)
or to answer late (`hold_next`: the test decides when, so nothing sleeps).
Only the standard library is used, so the demo needs nothing extra.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """Body parameters, whether sent as JSON or as a urlencoded form."""
        ctype = self.headers.get("content-type", "")
        if "json" in ctype:
            data = self.json() or {}
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}


@dataclass
class Response:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> "Response":
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


@dataclass
class Hold:
    """The answer to one request, kept back until the test releases it.

    A slow server without a sleep: the request is handled at once (its effects
    are there to see), `arrived` is set, and the answer goes out only after
    `release()`, so a client's timeout is certain and no test waits longer
    than it must.
    """

    match: Callable[[Request], bool]
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)

    def release(self, timeout: float = 10.0) -> None:
        """Let the answer go; if the request came, wait until the server is done with it."""
        self.released.set()
        if self.arrived.is_set() and not self.answered.wait(timeout):
            raise TimeoutError("the held answer was not written")


class FakeServer:
    """Base class; use as a context manager or call start()/stop()."""

    hold_limit = 30.0  # seconds a held answer waits for its release at most, so a failed test never hangs

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.failures: list[tuple[Response, Callable[[Request], bool]]] = []
        self.holds: list[Hold] = []  # every hold asked for; a pending one has not `arrived`
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to implement -------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    # -- scripting ----------------------------------------------------
    def fail_next(self, *responses: Response, match: Callable[[Request], bool] = lambda request: True) -> None:
        """Answer the next requests that `match` with these responses, in order."""
        with self._lock:
            self.failures.extend((response, match) for response in responses)

    def _claim_failure(self, request: Request) -> Response | None:
        for index, (response, match) in enumerate(self.failures):
            if match(request):
                del self.failures[index]
                return response
        return None

    def hold_next(self, match: Callable[[Request], bool] = lambda request: True) -> Hold:
        """Hold back the answer to the next request that `match`es, until `release()`."""
        hold = Hold(match)
        with self._lock:
            self.holds.append(hold)
        return hold

    def _claim_hold(self, request: Request) -> Hold | None:
        with self._lock:
            for hold in self.holds:
                if not hold.arrived.is_set() and hold.match(request):
                    hold.arrived.set()
                    return hold
        return None

    def requests_to(self, path_part: str) -> list[Request]:
        return [r for r in self.requests if path_part in r.path]

    # -- lifecycle ----------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeServer":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each reply on a kept-alive connection waits ~40 ms

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/favicon.ico":  # a browser's own side request: never a scripted answer, never counted
                    self._answer_favicon()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with fake._lock:
                    fake.requests.append(request)
                    scripted = fake._claim_failure(request)
                try:
                    response = scripted or fake.handle(request)
                except Exception as exc:  # a bug in a fake should be visible, not a hang
                    response = Response.json({"error": f"fake server error: {exc!r}"}, 500)
                hold = fake._claim_hold(request)
                if hold is None:
                    self._answer(request, response)
                    return
                hold.released.wait(fake.hold_limit)
                try:
                    self._answer(request, response)
                except OSError:  # the client gave up waiting, which is what a hold is for
                    self.close_connection = True
                finally:
                    hold.answered.set()

            def _answer_favicon(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _answer(self, request: Request, response: Response) -> None:
                payload = response.body
                if not isinstance(payload, (bytes, str)):
                    payload = json.dumps(payload)
                if isinstance(payload, str):
                    payload = payload.encode("utf-8")
                self.send_response(response.status)
                if request.headers.get("connection", "").lower() == "close":
                    self.close_connection = True
                    self.send_header("Connection", "close")
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # silence stderr
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for hold in self.holds:  # no handler thread outlives the server waiting for a release
            hold.released.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()



class SharedServer(FakeServer):
    """A fake that several demo sources serve from (G2, Capterra and Trustpilot; App Store and Play):
    start/stop are reference-counted, so the first start listens and the last stop closes.
    `_data_lock` also guards the subclass's data."""

    def __init__(self) -> None:
        super().__init__()
        self._data_lock = threading.RLock()
        self._starts = 0

    def start(self) -> "SharedServer":
        with self._data_lock:
            self._starts += 1
            if self._starts == 1:
                super().start()
        return self

    def stop(self) -> None:
        with self._data_lock:
            self._starts = max(0, self._starts - 1)
            if self._starts == 0:
                super().stop()

@dataclass
class DemoSource:
    """What one fake contributes to `earful demo`.

    `server` is not started yet; `monitor` is the monitor's cron.yaml mapping
    without `rules`/`notify` (the demo adds those), and may contain the
    placeholder "{url}" anywhere, replaced by the started server's URL.
    Each fake module that takes part in the demo exposes
    `demo_source(now: float) -> DemoSource`.
    """

    name: str
    server: FakeServer
    monitor: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)  # fake credentials the monitor's ${VARS} need
