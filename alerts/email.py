"""The `email` destination: one e-mail per alert, over SMTP.

For help desks that open tickets from e-mail (Freshdesk, Help Scout, Front,
Zendesk's and Jira Service Management's mail channels, a shared inbox), and
for teams without a ticket API at hand. Each message has a plain-text and an
HTML part stating the same facts as every other destination; every piece of
customer text in the HTML part is escaped, and only http(s) URLs become
links (`tickets.render_html`).

Identity and threading. The Message-ID is derived from the item key,
`<earful.{sha256(key)[:32]}@{sender's domain}>`, so a message sent again
after an interruption is the same message to the receiving side (help desks
and mail stores drop a second copy with a known Message-ID). The delivery's
remote id is that Message-ID. Follow-ups, i.e. `update` notes ("answered by
acme_support after 37m") and escalations of a delivered alert, are replies:
`In-Reply-To` and `References` name the original Message-ID and the subject
is "Re: " plus the original subject, which is how help desks attach them to
the ticket the first message opened; their own Message-IDs are derived from
key and note, so they are recognisable on a resend too.

Transport. `security: starttls` (default, port 587), `tls` (implicit TLS,
port 465) or `none` (a local relay, port 25). Certificates are verified
(`verify: false` to skip, `ca_file` to trust a private CA). `username` /
`password` are optional; sending a password over an unencrypted connection
is refused except to a loopback relay. `base_url: smtp://HOST:PORT`
overrides host and port (tests, a local relay), in line with every other
destination's `base_url`. One SMTP session is kept open for the run and
re-established when the server dropped it.

Failures: 4xx SMTP replies are transient, 5xx permanent (a refused
recipient, a rejected sender, failed authentication; the message names host
and user, never the password), refused connections, timeouts and dropped
sessions transient. When some recipients are refused and others accepted,
the message counts as sent (it cannot be unsent) and the refusals are
logged. No `Auto-Submitted` header is set: several help desks suspend or
drop auto-submitted mail as a loop guard, and opening a ticket is the point;
`X-Auto-Response-Suppress` still spares the thread Exchange's out-of-office
replies.

Digests come through `deliver` like every alert (kind `digest`, already
rendered, see `alerts.base`): one message with a plain-text part, an HTML
part and the chart inline; its Message-ID is derived from the delivery key
too. `send_email(subject, text, html=None, images=None, headers=None)` is
the public entry point for a message of any other shape: inline PNG
`images` are referenced from the HTML as `cid:<name>`. `smtplib`, `ssl` and `email` are
standard library; they are imported on first use like every other client.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from earful.core import Alert, Names

from . import tickets as tk
from .base import (
    DeliveryError,
    Destination,
    DestinationOptions,
    decode_png,
    digest_content,
)

if TYPE_CHECKING:
    import smtplib
    from email.message import EmailMessage

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
SUBJECT_CHARS = 200
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ADDRESS = re.compile(r"^[^@\s<>]+@([^@\s<>]+)$")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':'
RESERVED_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})


def parse_address(value: str) -> tuple[str, str]:
    """(display name, address) of "Name <a@b>" or "a@b"; ValueError when it is no address."""
    from email.utils import parseaddr

    name, address = parseaddr(value)
    if not _ADDRESS.match(address or ""):
        raise ValueError(f"{value!r} is not an e-mail address")
    return name, address


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EmailOptions(DestinationOptions):
    """`type: email` in cron.yaml."""

    # Secrets must never be echoed, not even by str(ValidationError) in a traceback.
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["email"] = "email"
    host: str | None = Field(default=None, validate_default=True, description="SMTP server (or base_url: smtp://HOST:PORT).")
    port: int | None = Field(default=None, ge=1, le=65535, description="Default 587 (starttls), 465 (tls), 25 (none).")
    security: Literal["starttls", "tls", "none"] = Field(default="starttls")
    verify: bool = Field(default=True, description="Verify the server certificate.")
    ca_file: str | None = Field(default=None, description="PEM file of a CA to trust (a private relay).")
    username: str | None = None
    password: SecretStr | None = Field(default=None, validate_default=True, description="${SMTP_PASSWORD}")
    sender: str = Field(description='From: "earful <alerts@acme.example>"; its domain also names Message-IDs.')
    to: Names = Field(min_length=1, description="Recipients, e.g. the help desk's support address.")
    reply_to: str | None = None
    subject_prefix: str = Field(default="[earful]", max_length=50)

    @field_validator("base_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"{value!r}: base_url for e-mail is smtp://HOST:PORT")
        if parts.username or parts.password:
            raise ValueError("put the SMTP credentials in username/password, not in base_url")
        return value.strip()

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            value = value.strip()
        if not value and not info.data.get("base_url"):
            raise ValueError("set `host` (the SMTP server) or base_url: smtp://HOST:PORT")
        return value

    @field_validator("password")
    @classmethod
    def _credentials(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        username = info.data.get("username")
        if (value is None) != (not username):
            raise ValueError("give both `username` and `password`, or neither")
        if value is not None and not value.get_secret_value():
            raise ValueError("the SMTP password is empty; is the environment variable set?")
        base_url = info.data.get("base_url")
        host = (urlsplit(base_url).hostname if base_url else None) or info.data.get("host") or ""
        if value is not None and info.data.get("security") == "none" and not is_loopback(host):
            raise ValueError(f"refusing to send the SMTP password unencrypted to {host}; use security: starttls or tls")
        return value

    @field_validator("sender", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_address(value)
        return value


    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            parse_address(item)
        return value

    @property
    def server(self) -> tuple[str, int]:
        if self.base_url:
            parts = urlsplit(self.base_url)
            return parts.hostname or "", parts.port or DEFAULT_PORTS[self.security]
        return self.host or "", self.port or DEFAULT_PORTS[self.security]


class EmailDestination(Destination):
    """Sends alerts and follow-ups as e-mail; see the module docstring."""

    type: ClassVar[str] = "email"
    Options: ClassVar[type[DestinationOptions]] = EmailOptions
    digest_form: ClassVar[str | None] = "email"
    options: EmailOptions

    def __init__(self, name: str, options: DestinationOptions):
        super().__init__(name, options)
        self._smtp: smtplib.SMTP | None = None
        self.domain = parse_address(self.options.sender)[1].rsplit("@", 1)[1]

    # -- identity -----------------------------------------------------------------------
    def message_id(self, key: str) -> str:
        """The Message-ID for `key`: stable, so a resend is recognisable."""
        return f"<earful.{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{self.domain}>"

    def subject(self, alert: Alert) -> str:
        prefix = f"{self.options.subject_prefix} " if self.options.subject_prefix else ""
        return prefix + tk.summary_line(alert, SUBJECT_CHARS)

    # -- public -------------------------------------------------------------------
    def deliver(self, alert: Alert) -> str:
        """Send the alert; return its Message-ID. An escalation of a delivered
        alert is a reply to it, marked important; a digest is its rendered
        message with the chart inline."""
        if alert.kind == "digest":
            mail = digest_content(self, alert)
            images = {cid: decode_png(png) for cid, png in (mail.get("images") or {}).items()}
            return self.send_email(mail["subject"], mail["text"], mail.get("html"), images or None,
                                   {**(mail.get("headers") or {}), "Message-ID": self.message_id(alert.key)})
        t = tk.ticket_text(alert)
        headers = {"X-Earful-Key": alert.key}
        subject = self.subject(alert)
        if alert.kind == "escalation" or alert.severity == "critical":
            headers.update({"Importance": "high", "X-Priority": "1"})
        if alert.kind == "escalation" and alert.thread:
            original = self.subject(dataclasses.replace(alert, kind="alert"))
            subject = f"Re: {original}"
            headers.update(self._reply_headers(alert.thread))
        message_id = self.message_id(alert.key)
        self._send(self.build(subject, tk.render_text(t), html_document(tk.render_html(t)), None, {**headers, "Message-ID": message_id}))
        return message_id

    def update(self, remote_id: str, alert: Alert, note: str) -> str:
        """A follow-up in the same thread: the note and the item's link."""
        original = self.subject(dataclasses.replace(alert, kind="alert"))
        headers = {"X-Earful-Key": alert.key, "Message-ID": self.message_id(f"{alert.key}\nupdate\n{note}"), **self._reply_headers(remote_id)}
        self._send(self.build(f"Re: {original}", tk.render_update_text(alert, note), html_document(tk.render_update_html(alert, note)),
                              None, headers))
        return remote_id

    def find_delivered(self, alert: Alert, since: datetime) -> None:
        """Always None: SMTP cannot look into the recipient's mailbox.

        After an interruption the outbox sends again, and the copy carries the
        same Message-ID (derived from the item key), which the receiving help
        desk or mail store recognises as the message it already has (most
        drop it; at worst it threads with the first).
        """
        return None

    def send_email(self, subject: str, text: str, html: str | None = None, images: dict[str, bytes] | None = None,
                   headers: dict[str, str] | None = None) -> str:
        """Send one message to the configured recipients; return its Message-ID.

        `html` is trusted markup (the caller escapes what it interpolates);
        `images` are inline PNGs, shown where the HTML says `cid:<name>`;
        `headers` may set e.g. Message-ID, In-Reply-To or List-Id (a
        Message-ID given here is used as is). Raises DeliveryError when the
        server does not take the message, ValueError for a bad argument.
        """
        extra = dict(headers or {})
        if not any(k.lower() == "message-id" for k in extra):
            from email.utils import make_msgid

            extra["Message-ID"] = make_msgid("earful", domain=self.domain)
        message = self.build(subject, text, html, images, extra)
        self._send(message)
        return str(message["Message-ID"])

    def verify(self) -> str:
        """Connect, (STARTTLS,) log in and NOOP: what every send starts with; nothing is sent."""
        try:
            self._session()
        except Exception as exc:
            self._drop()
            error = self._error(exc)
            if error is None:
                raise
            raise error from None
        login = f" as {self.options.username}" if self.options.username else " (no login configured)"
        return f"SMTP {self._address()} ({self.options.security}) accepted the session{login}"

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except Exception:  # noqa: BLE001 - the session may already be gone
                pass
            self._smtp = None

    # -- message ------------------------------------------------------------------------
    def build(self, subject: str, text: str, html: str | None, images: Mapping[str, bytes] | None,
              headers: Mapping[str, str]) -> "EmailMessage":
        """The MIME message: text/plain, or multipart/alternative with an HTML
        part that is itself multipart/related when it has inline images."""
        from email.message import EmailMessage
        from email.utils import formatdate

        if images and html is None:
            raise ValueError("inline images need an HTML part that shows them (cid:<name>)")
        message = EmailMessage()
        message["From"] = self.options.sender
        message["To"] = ", ".join(self.options.to)
        if self.options.reply_to:
            message["Reply-To"] = self.options.reply_to
        message["Subject"] = tk.fmt.clean(subject)
        message["Date"] = formatdate(usegmt=True)
        message["X-Auto-Response-Suppress"] = "OOF, AutoReply"
        for name, value in headers.items():
            if not _HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
                raise ValueError(f"cannot set the header {name!r}")
            if "\r" in value or "\n" in value:
                raise ValueError(f"the header {name} contains a line break")
            del message[name]
            message[name] = value
        message.set_content(text, subtype="plain", charset="utf-8")
        if html is not None:
            message.add_alternative(html, subtype="html", charset="utf-8")
            if images:
                html_part = message.get_payload()[-1]
                for name, data in images.items():
                    if not _CID.match(name):
                        raise ValueError(f"{name!r} cannot be a Content-ID (letters, digits, '.', '_', '-')")
                    if not bytes(data).startswith(PNG_MAGIC):
                        raise ValueError(f"image {name!r} is not a PNG")
                    html_part.add_related(bytes(data), maintype="image", subtype="png", cid=f"<{name}>",
                                          filename=f"{name}.png", disposition="inline")
        return message

    def _reply_headers(self, original: str) -> dict[str, str]:
        original = original.strip()
        if not (original.startswith("<") and original.endswith(">") and "@" in original):
            return {}
        return {"In-Reply-To": original, "References": original}

    # -- SMTP ---------------------------------------------------------------------------
    def _send(self, message: "EmailMessage") -> None:
        _, sender = parse_address(self.options.sender)
        recipients = [parse_address(r)[1] for r in self.options.to]
        try:
            smtp = self._session()
            refused = smtp.send_message(message, from_addr=sender, to_addrs=recipients)
        except Exception as exc:
            self._drop()
            error = self._error(exc)
            if error is None:
                raise
            raise error from None
        if refused:
            log.warning("%s: message %s accepted for some recipients, refused for %s", self._where(), message["Message-ID"],
                        ", ".join(f"{addr} ({code} {self._text(reply)})" for addr, (code, reply) in refused.items()))

    def _session(self) -> "smtplib.SMTP":
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except Exception:  # noqa: BLE001 - the server dropped the idle session
                pass
            self._drop()
        import smtplib
        import ssl

        host, port = self.options.server
        context = ssl.create_default_context(cafile=self.options.ca_file)
        if not self.options.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.options.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=self.options.timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=self.options.timeout)
        try:
            smtp.ehlo()
            if self.options.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.options.username and self.options.password is not None:
                smtp.login(self.options.username, self.options.password.get_secret_value())
        except Exception:
            smtp.close()
            raise
        self._smtp = smtp
        return smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            except Exception:  # noqa: BLE001
                pass
            self._smtp = None

    def _error(self, exc: BaseException) -> DeliveryError | None:
        """Classify an SMTP failure (None: not a transport failure, re-raise it)."""
        import smtplib
        import ssl

        where = self._where()
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            transient = 400 <= exc.smtp_code < 500
            return DeliveryError(self._scrub(
                f"{where}: SMTP authentication as {self.options.username!r} failed at {self._address()}: "
                f"{exc.smtp_code} {self._text(exc.smtp_error)}"
                + ("" if transient else " (check username and password, e.g. an app password)")), permanent=not transient)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            replies = exc.recipients or {}
            transient = bool(replies) and all(400 <= code < 500 for code, _ in replies.values())
            detail = ", ".join(f"{addr}: {code} {self._text(reply)}" for addr, (code, reply) in replies.items())
            return DeliveryError(self._scrub(f"{where}: every recipient was refused ({detail})"), permanent=not transient)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryError(self._scrub(f"{where}: {exc} (does the server offer STARTTLS/AUTH on this port? "
                                             "try security: tls on port 465)"), permanent=True)
        if isinstance(exc, smtplib.SMTPResponseException):
            transient = 400 <= exc.smtp_code < 500
            return DeliveryError(self._scrub(f"{where}: the server answered {exc.smtp_code} {self._text(exc.smtp_error)} "
                                             f"({type(exc).__name__})"), permanent=not transient)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryError(f"{where}: the server closed the connection: {exc}")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryError(f"{where}: the server's certificate was not accepted: {exc.verify_message or exc} "
                                 "(set ca_file for a private CA, or check host)", permanent=True)
        if isinstance(exc, TimeoutError):
            return DeliveryError(f"{where}: timed out after {self.options.timeout:g}s")
        if isinstance(exc, (OSError, smtplib.SMTPException)):
            return DeliveryError(self._scrub(f"{where}: {type(exc).__name__}: {exc}"))
        return None

    def _address(self) -> str:
        host, port = self.options.server
        return f"{host}:{port}"

    def _where(self) -> str:
        user = f", user {self.options.username}" if self.options.username else ""
        return f"email destination {self.name!r} (smtp {self._address()}, {self.options.security}{user})"

    @staticmethod
    def _text(reply: Any) -> str:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return tk.fmt.truncate(tk.fmt.clean(text), tk.ERROR_BODY_CHARS)

    def _scrub(self, text: str) -> str:
        """A server may echo what it was sent; the password never leaves this object."""
        if self.options.password is None:
            return text
        password = self.options.password.get_secret_value()
        user = self.options.username or ""
        forms = {password, base64.b64encode(password.encode()).decode(), base64.b64encode(f"\0{user}\0{password}".encode()).decode()}
        for form in sorted(forms, key=len, reverse=True):
            if form:
                text = text.replace(form, "[secret]")
        return text


def html_document(body: str) -> str:
    """A complete, minimal HTML document around already-escaped markup."""
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{body}\n</body></html>\n'


DESTINATION = EmailDestination
