"""The email destination against a real SMTP server (aiosmtpd) on 127.0.0.1.

Plain relays, AUTH, STARTTLS and implicit TLS are exercised for real. The
TLS tests need a self-signed certificate: it is generated with the
`cryptography` package when installed, else with the `openssl` command;
without either, those tests are skipped (and say why).
"""

from __future__ import annotations

import base64
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from hashlib import sha256
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword  # noqa: E402

from earful import alerts  # noqa: E402
from earful.alerts.base import DeliveryError
from earful.alerts.email import EmailDestination, EmailOptions  # noqa: E402
from earful.core import Alert, Mention

from .sample_alerts import BREACH, NOTE, T0, alert_to, mention

USER, PASSWORD = "earful@acme.example", "smtp-very-secret-pass"
SENDER = "earful <alerts@acme.example>"
HELPDESK = "support@acme.freshdesk.com"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def alert(*mentions: Mention, **details: Any) -> Alert:
    return alert_to("mail", *mentions, labels=("complaint",), **details)


# -- a real SMTP server -------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: tuple[str, int]  # the client's address: a new port means a new connection
    tls: bool
    login: str | None


@dataclass
class Mailbox:
    """aiosmtpd handler: stores messages; refuses what it is told to refuse."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    data_reply: list[str] = field(default_factory=list)  # replies to the next DATA commands
    closed: set[tuple[str, int]] = field(default_factory=set)  # peers whose session has ended
    _closing: threading.Condition = field(default_factory=threading.Condition)

    def session_closed(self, peer: tuple[str, int]) -> None:
        with self._closing:
            self.closed.add(peer)
            self._closing.notify_all()

    def wait_closed(self, peer: tuple[str, int], timeout: float = 10.0) -> bool:
        """Wait until the server has ended `peer`'s session (say, for idling past its timeout)."""
        with self._closing:
            return self._closing.wait_for(lambda: peer in self.closed, timeout)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply.pop(0)
        message = message_from_bytes(envelope.content, policy=policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, tuple(session.peer),  # type: ignore[arg-type]
                                      server.transport.get_extra_info("ssl_object") is not None, login))
        return "250 2.0.0 Ok: queued"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


class SessionEndSMTP(SMTP):
    """aiosmtpd's server protocol, telling the Mailbox when a session ends."""

    def connection_lost(self, error: Exception | None) -> None:
        peer = tuple(self.session.peer) if self.session else None
        super().connection_lost(error)
        if peer:
            self.event_handler.session_closed(peer)


class LocalController(Controller):
    """aiosmtpd's Controller on an ephemeral port (it connects to self.port to warm up)."""

    def factory(self) -> SMTP:
        return SessionEndSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Controller] = []

    def start(mailbox: Mailbox | None = None, **kwargs: Any) -> tuple[LocalController, Mailbox]:
        mailbox = mailbox or Mailbox()
        controller = LocalController(mailbox, hostname="127.0.0.1", port=0, **kwargs)
        controller.start()
        started.append(controller)
        return controller, mailbox

    yield start
    for controller in started:
        controller.stop()


def destination(controller: Controller, **options: Any) -> EmailDestination:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": controller.port, "security": "none", "sender": SENDER, "to": [HELPDESK],
                                "timeout": 5, **options}
    return EmailDestination("mail", EmailOptions(**settings))


def parts(message: EmailMessage) -> dict[str, EmailMessage]:
    return {part.get_content_type(): part for part in message.walk()}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        private = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.now(timezone.utc)
        built = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                 .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
                 .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                 .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                 .sign(private, hashes.SHA256()))
        cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is available: TLS tests skipped")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


# -- the message ------------------------------------------------------------------------------------


def test_registry_can_load_email(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(alerts.DESTINATIONS, "email", "earful.alerts.email")
    assert alerts.load("email") is EmailDestination


def test_alert_message_shape(serve: Any) -> None:
    controller, mailbox = serve()
    cluster = (mention(1), mention(2, source="hackernews", url="https://news.ycombinator.com/item?id=2", site="", author="pg"))
    message_id = destination(controller, to=[HELPDESK, "Ops <ops@acme.example>"], reply_to="noreply@acme.example").deliver(alert(*cluster))

    digest = sha256(b"reddit:t3_1#mail").hexdigest()[:32]
    assert message_id == f"<earful.{digest}@acme.example>"
    [got] = mailbox.received
    assert got.mail_from == "alerts@acme.example" and got.rcpt_tos == [HELPDESK, "ops@acme.example"]
    message = got.message
    assert message["Message-ID"] == message_id
    assert message["From"] == SENDER and message["To"] == f"{HELPDESK}, Ops <ops@acme.example>"
    assert message["Reply-To"] == "noreply@acme.example"
    assert message["Subject"] == "[earful] High · complaint · Reddit: Acme support never responds"
    assert message["X-Earful-Key"] == "reddit:t3_1#mail" and message["Date"]
    assert message["In-Reply-To"] is None and message["Importance"] is None
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)["text/plain"].get_content(), parts(message)["text/html"].get_content()
    for expected in ("Acme support never responds", "> I asked three times", "Source: Reddit · r/crm <https://www.reddit.com/r/crm/comments/1/acme/>",
                     "Severity: High", "Matched rules: acme/complaint", "Monitor: reddit-acme", "Seen in 2 places:", "Hacker News — pg",
                     "item key reddit:t3_1#mail"):
        assert expected in text, expected
    assert '<a href="https://www.reddit.com/r/crm/comments/1/acme/">Reddit · r/crm</a>' in html
    assert '<a href="https://news.ycombinator.com/item?id=2">Hacker News</a>' in html and html.startswith("<!DOCTYPE html>")


def test_html_part_escapes_customer_text(serve: Any) -> None:
    controller, mailbox = serve()
    evil = mention(title="<script>alert(1)</script>", text='"><img src=x onerror=alert(1)> & co', author="<b>x</b>",
                   url="javascript:alert(1)")
    destination(controller).deliver(alert(evil))
    html = parts(mailbox.received[0].message)["text/html"].get_content()
    assert "<script>" not in html and "<img" not in html and "<b>x" not in html and "javascript:" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&quot;&gt;&lt;img src=x onerror=alert(1)&gt; &amp; co" in html
    assert "\n" not in mailbox.received[0].message["Subject"]


def test_a_resend_carries_the_same_message_id(serve: Any) -> None:
    controller, mailbox = serve()
    first = destination(controller).deliver(alert())
    second = destination(controller).deliver(alert())  # the outbox resends after a crash
    assert first == second
    assert [m.message["Message-ID"] for m in mailbox.received] == [first, first]
    assert destination(controller).find_delivered(alert(), T0) is None  # SMTP cannot look; the help desk dedupes


def test_updates_and_escalations_thread_under_the_original(serve: Any) -> None:
    controller, mailbox = serve()
    sink = destination(controller)
    original = sink.deliver(alert())
    assert sink.update(original, alert(), NOTE) == original
    escalation_id = sink.deliver(alert(kind="escalation", note=BREACH, thread=original))

    first, update, escalation = (m.message for m in mailbox.received)
    subject = first["Subject"]
    assert update["Subject"] == f"Re: {subject}" and escalation["Subject"] == f"Re: {subject}"
    for reply in (update, escalation):
        assert reply["In-Reply-To"] == original and reply["References"] == original
    assert update["Message-ID"] == f"<earful.{sha256(f'reddit:t3_1#mail{chr(10)}update{chr(10)}{NOTE}'.encode()).hexdigest()[:32]}@acme.example>"
    assert NOTE in parts(update)["text/plain"].get_content() and "https://www.reddit.com/r/crm/comments/1/acme/" in parts(update)["text/plain"].get_content()
    assert escalation["Message-ID"] == escalation_id != original
    assert escalation["Importance"] == "high" and escalation["X-Priority"] == "1"
    assert BREACH in parts(escalation)["text/plain"].get_content()


def test_escalation_without_a_thread_is_a_new_important_message(serve: Any) -> None:
    controller, mailbox = serve()
    destination(controller).deliver(alert(kind="escalation", note=BREACH))
    [got] = mailbox.received
    assert got.message["In-Reply-To"] is None and got.message["Importance"] == "high"
    assert got.message["Subject"].startswith("[earful] SLA breached · High")


def test_send_email_with_inline_images(serve: Any) -> None:
    controller, mailbox = serve()
    sink = destination(controller)
    message_id = sink.send_email("Weekly digest", "3 mentions this week", "<p>Chart:</p><img src=\"cid:chart\">", images={"chart": PNG},
                                 headers={"List-Id": "earful digest <digest.acme.example>", "Message-ID": "<digest-2026-47@acme.example>"})
    assert message_id == "<digest-2026-47@acme.example>"
    message = mailbox.received[0].message
    assert message["List-Id"] == "earful digest <digest.acme.example>" and message["Subject"] == "Weekly digest"
    structure = [part.get_content_type() for part in message.walk()]
    assert structure == ["multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    image = parts(message)["image/png"]
    assert image["Content-ID"] == "<chart>" and image.get_content() == PNG and image.get_content_disposition() == "inline"

    plain_id = sink.send_email("Plain", "only text")
    assert plain_id.startswith("<") and plain_id.endswith("@acme.example>") and plain_id != message_id
    assert mailbox.received[1].message.get_content_type() == "text/plain"
    for bad in ({"images": {"chart": b"GIF89a"}, "html": "<img src='cid:chart'>"}, {"images": {"chart": PNG}},
                {"images": {"bad name": PNG}, "html": "x"}, {"headers": {"X-Evil": "a\r\nBcc: victim@example.com"}}):
        with pytest.raises(ValueError):
            sink.send_email("x", "y", **bad)
    assert len(mailbox.received) == 2


def digest_alert(content: dict[str, Any], key: str = "digest:weekly:2026-11-23T00:00:00Z#mail") -> Alert:
    return Alert(key=key, cluster=key.partition("#")[0], destination="mail", monitor="digest:weekly", mentions=(), matches=(),
                 kind="digest", extra=content)


def test_a_digest_is_its_rendered_message_with_the_chart_inline(serve: Any) -> None:
    controller, mailbox = serve()
    sink = destination(controller)
    content = {"form": "email", "subject": "Weekly digest: 3 mentions", "text": "3 mentions this week",
               "html": '<p>3 mentions</p><img src="cid:earful-digest-chart">',
               "images": {"earful-digest-chart": base64.b64encode(PNG).decode()}, "headers": {"X-Earful-Digest": "k"}}
    digest = digest_alert(content)
    assert sink.deliver(digest) == sink.message_id(digest.key)  # a resend after a crash is the same message
    message = mailbox.received[0].message
    assert message["Subject"] == "Weekly digest: 3 mentions" and message["X-Earful-Digest"] == "k"
    assert message["Message-ID"] == sink.message_id(digest.key)
    assert parts(message)["image/png"].get_content() == PNG and parts(message)["image/png"]["Content-ID"] == "<earful-digest-chart>"
    with pytest.raises(DeliveryError) as wrong:
        sink.deliver(digest_alert({"form": "slack", "message": {}}))
    assert wrong.value.permanent and len(mailbox.received) == 1


def test_one_session_per_run_and_reconnect_when_dropped(serve: Any) -> None:
    controller, mailbox = serve(timeout=0.6)  # the server hangs up on sessions idle for 0.6 s
    sink = destination(controller)
    sink.deliver(alert(mention(1)))
    sink.deliver(alert(mention(2)))
    assert mailbox.received[0].peer == mailbox.received[1].peer
    assert mailbox.wait_closed(mailbox.received[1].peer)
    sink.deliver(alert(mention(3)))
    assert len(mailbox.received) == 3 and mailbox.received[2].peer != mailbox.received[1].peer
    sink.close()
    assert sink._smtp is None


# -- auth and TLS -----------------------------------------------------------------------------------


LOOPBACK_AUTH = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@LOOPBACK_AUTH
def test_auth_on_a_loopback_relay(serve: Any) -> None:
    controller, mailbox = serve(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    destination(controller, username=USER, password=PASSWORD).deliver(alert())
    assert mailbox.received[0].login == USER


@LOOPBACK_AUTH
def test_auth_failure_is_permanent_and_never_shows_the_password(serve: Any) -> None:
    controller, mailbox = serve(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    sink = destination(controller, username=USER, password="wrong-" + PASSWORD)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    message = str(raised.value)
    assert raised.value.permanent
    assert "535" in message and f"127.0.0.1:{controller.port}" in message and USER in message
    for secret in ("wrong-" + PASSWORD, base64.b64encode(f"\0{USER}\0wrong-{PASSWORD}".encode()).decode()):
        assert secret not in message and secret not in repr(raised.value) and secret not in repr(sink.options)
    assert mailbox.received == []


def test_starttls_with_auth(serve: Any, certificate: tuple[Path, Path]) -> None:
    controller, mailbox = serve(tls_context=server_tls(certificate), require_starttls=True, authenticator=authenticator, auth_required=True)
    destination(controller, security="starttls", ca_file=str(certificate[0]), username=USER, password=PASSWORD).deliver(alert())
    [got] = mailbox.received
    assert got.tls and got.login == USER


def test_starttls_rejects_an_untrusted_certificate(serve: Any, certificate: tuple[Path, Path]) -> None:
    controller, mailbox = serve(tls_context=server_tls(certificate), require_starttls=True)
    with pytest.raises(DeliveryError) as raised:
        destination(controller, security="starttls").deliver(alert())
    assert raised.value.permanent and "certificate" in str(raised.value) and "ca_file" in str(raised.value)
    destination(controller, security="starttls", verify=False).deliver(alert())  # explicitly opted out
    assert len(mailbox.received) == 1


def test_implicit_tls(serve: Any, certificate: tuple[Path, Path]) -> None:
    controller, mailbox = serve(ssl_context=server_tls(certificate))
    destination(controller, security="tls", ca_file=str(certificate[0])).deliver(alert())
    assert mailbox.received[0].tls


def test_starttls_not_offered_is_permanent(serve: Any) -> None:
    controller, _ = serve()
    with pytest.raises(DeliveryError) as raised:
        destination(controller, security="starttls").deliver(alert())
    assert raised.value.permanent and "STARTTLS" in str(raised.value)


# -- SMTP failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "permanent"), [("450 4.2.1 Mailbox busy, try later", False), ("550 5.1.1 User unknown", True)])
def test_refused_recipient(serve: Any, reply: str, permanent: bool) -> None:
    controller, mailbox = serve(Mailbox(refuse_rcpt={HELPDESK: reply}))
    with pytest.raises(DeliveryError) as raised:
        destination(controller).deliver(alert())
    assert raised.value.permanent is permanent and HELPDESK in str(raised.value) and reply[:3] in str(raised.value)


def test_some_recipients_refused_still_counts_as_sent(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    controller, mailbox = serve(Mailbox(refuse_rcpt={"gone@acme.example": "550 5.1.1 User unknown"}))
    with caplog.at_level(logging.WARNING):
        destination(controller, to=[HELPDESK, "gone@acme.example"]).deliver(alert())
    assert mailbox.received[0].rcpt_tos == [HELPDESK]
    assert "gone@acme.example" in caplog.text and "550" in caplog.text


@pytest.mark.parametrize(("reply", "permanent"), [("451 4.3.0 Temporary local problem", False), ("421 4.4.2 closing", False),
                                                 ("554 5.7.1 Message rejected as spam", True)])
def test_data_replies_are_classified(serve: Any, reply: str, permanent: bool) -> None:
    controller, _ = serve(Mailbox(data_reply=[reply]))
    with pytest.raises(DeliveryError) as raised:
        destination(controller).deliver(alert())
    assert raised.value.permanent is permanent and reply[:3] in str(raised.value)


def test_refused_connections_and_silent_servers_are_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = EmailDestination("mail", EmailOptions(host="127.0.0.1", port=port, security="none", sender=SENDER, to=[HELPDESK], timeout=2))
    with pytest.raises(DeliveryError) as raised:
        closed.deliver(alert())
    assert not raised.value.permanent and f"127.0.0.1:{port}" in str(raised.value)

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True)
    thread.start()
    try:
        mute = EmailDestination("mail", EmailOptions(host="127.0.0.1", port=silent.getsockname()[1], security="none", sender=SENDER,
                                                     to=[HELPDESK], timeout=0.5))
        with pytest.raises(DeliveryError) as raised:
            mute.deliver(alert())
        assert not raised.value.permanent
    finally:
        for conn in accepted:
            conn.close()
        silent.close()


# -- options, start-up -----------------------------------------------------------------------------------


def test_options() -> None:
    options = EmailOptions(host="smtp.acme.example", sender=SENDER, to=HELPDESK, username=USER, password=PASSWORD)
    assert options.server == ("smtp.acme.example", 587) and options.to == (HELPDESK,)
    assert EmailOptions(host="h", security="tls", sender=SENDER, to=[HELPDESK]).server == ("h", 465)
    assert EmailOptions(base_url="smtp://127.0.0.1:2525", security="none", sender=SENDER, to=[HELPDESK]).server == ("127.0.0.1", 2525)
    assert EmailOptions(host="localhost", security="none", sender=SENDER, to=[HELPDESK], username=USER, password=PASSWORD).username == USER
    bad = [
        {"password": PASSWORD},  # without a username
        {"username": USER},  # without a password
        {"security": "none", "username": USER, "password": PASSWORD},  # plain-text password to a remote host
        {"sender": "not an address"},
        {"to": []},
        {"to": ["nobody"]},
        {"host": None},
        {"base_url": "http://smtp.acme.example"},
        {"base_url": f"smtp://{USER}:{PASSWORD}@smtp.acme.example"},
        {"secrity": "tls"},
    ]
    for change in bad:
        with pytest.raises(ValidationError) as raised:
            EmailOptions(**{"host": "smtp.acme.example", "sender": SENDER, "to": [HELPDESK], **change})
        assert PASSWORD not in str(raised.value), change


def test_importing_the_module_imports_no_smtp_or_tls() -> None:
    code = "import sys, earful.alerts.email; print([m for m in ('smtplib', 'ssl', 'requests') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
