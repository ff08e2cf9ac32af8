"""No secret in any output, at any verbosity (issue 14, item 3).

Every connector of the demo and every destination type runs against the
sandbox fakes as the real `earful -v run --all` and `earful -v check
--online` in a subprocess, with DEBUG logs of every library on. Two
deployments:

- every credential is a sentinel the fakes do not know, so authentication
  fails everywhere: the paths where exception texts, refused requests and
  the libraries' error logs carry whatever was sent;
- every credential is one the fakes accept, so requests succeed: the paths
  where debug logs show each request (Telegram's token in the URL path,
  prawcore's token form, Slack's headers).

Then no secret may appear in stdout, stderr or any column of any table of
state.db.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from earful.monitors.demo import demo_sources
from earful.sandbox.github import DEFAULT_REPOSITORY, GitHubServer
from earful.sandbox.github import DEFAULT_TOKEN as GITHUB_TOKEN
from earful.sandbox.jira import DEFAULT_API_TOKEN as JIRA_TOKEN
from earful.sandbox.jira import DEFAULT_EMAIL as JIRA_EMAIL
from earful.sandbox.jira import JiraServer
from earful.sandbox.server import DemoSource
from earful.sandbox.slack import DEFAULT_TOKEN as SLACK_TOKEN
from earful.sandbox.slack import SlackServer
from earful.sandbox.webhook import DEFAULT_SECRET as HOOK_SECRET
from earful.sandbox.webhook import WebhookReceiver
from earful.sandbox.zendesk import DEFAULT_API_TOKEN as ZENDESK_TOKEN
from earful.sandbox.zendesk import DEFAULT_EMAIL as ZENDESK_EMAIL
from earful.sandbox.zendesk import ZendeskServer

from .deploy import write_deployment
from .support import CHANNEL, earful

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

BROWSER_SOURCES = {"earful.sandbox.reviews:demo_sources"}  # need chromium; their only credential is a proxy
SMTP_USER, SMTP_PASSWORD = "earful@acme.example", "smtp-earful-fake-password-0123"
RULES = """\
brand:
  name: Acme
rules:
  - id: everything
    query: acme
    labels: [complaint]
    severity: high
"""
DESTINATIONS = ["support", "jira", "helpdesk", "github", "hook", "mail"]


class Mailbox:
    """An SMTP server's handler that accepts every message."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 Ok: queued"


class SmtpServer(Controller):
    """aiosmtpd on an ephemeral port, with AUTH LOGIN/PLAIN that accepts one password."""

    def __init__(self, password: str) -> None:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
            ok = isinstance(auth, LoginPassword) and auth.password.decode() == password
            return AuthResult(success=ok, handled=False, auth_data=auth)

        super().__init__(Mailbox(), hostname="127.0.0.1", port=0, authenticator=check, auth_require_tls=False,
                         loop=asyncio.new_event_loop())

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextlib.contextmanager
def deployment(tmp_path: Path, accepted: bool) -> Iterator[tuple[Path, dict[str, str]]]:
    """Every demo source and one destination of each type on the fakes; yields (cron.yaml, secret env).

    `accepted`: the fakes accept the configured credentials (their own demo
    ones); otherwise each credential is a sentinel nobody knows, keeping a
    Telegram token's `<id>:` so it passes the connector's shape check."""
    marker = uuid.uuid4().hex[:12]

    def secret(name: str, known: str) -> str:
        if accepted:
            return known
        prefix = re.match(r"\d+:", known)
        return f"{prefix[0] if prefix else ''}SENTINEL-{name.lower()}-{marker}"

    sources: list[DemoSource] = demo_sources(time.time(), skip=BROWSER_SOURCES)
    destination_secrets = {"EARFUL_TEST_SLACK_TOKEN": SLACK_TOKEN, "EARFUL_TEST_JIRA_TOKEN": JIRA_TOKEN,
                           "EARFUL_TEST_ZENDESK_TOKEN": ZENDESK_TOKEN, "EARFUL_TEST_GITHUB_TOKEN": GITHUB_TOKEN,
                           "EARFUL_TEST_HOOK_SECRET": HOOK_SECRET, "EARFUL_TEST_SMTP_PASSWORD": SMTP_PASSWORD}
    known = {**{name: value for source in sources for name, value in source.env.items()}, **destination_secrets}
    env = {name: secret(name, value) for name, value in known.items()}
    slack = SlackServer(channels={CHANNEL: "support-alerts"})
    jira, zendesk, github, hook = JiraServer(), ZendeskServer(), GitHubServer(), WebhookReceiver()
    smtp = SmtpServer(SMTP_PASSWORD)
    with contextlib.ExitStack() as running:
        for server in [slack, jira, zendesk, github, hook, *(source.server for source in sources)]:
            running.enter_context(server)
        smtp.start()
        running.callback(smtp.stop)
        destinations = {
            "support": {"type": "slack", "token": "${EARFUL_TEST_SLACK_TOKEN}", "channel": CHANNEL,
                        "base_url": f"{slack.url}/api/", "min_interval": 0},
            "jira": {"type": "jira", "base_url": jira.url, "project": "SUP", "email": JIRA_EMAIL,
                     "api_token": "${EARFUL_TEST_JIRA_TOKEN}"},
            "helpdesk": {"type": "zendesk", "base_url": zendesk.url, "email": ZENDESK_EMAIL,
                         "api_token": "${EARFUL_TEST_ZENDESK_TOKEN}"},
            "github": {"type": "github", "base_url": github.url, "repository": DEFAULT_REPOSITORY,
                       "token": "${EARFUL_TEST_GITHUB_TOKEN}"},
            "hook": {"type": "webhook", "url": hook.hook_url, "secret": "${EARFUL_TEST_HOOK_SECRET}"},
            "mail": {"type": "email", "base_url": f"smtp://127.0.0.1:{smtp.port}", "security": "none",
                     "sender": "earful <alerts@acme.example>", "to": ["support@acme.example"],
                     "username": SMTP_USER, "password": "${EARFUL_TEST_SMTP_PASSWORD}"},
        }
        monitors = {source.name: {**{k: v.replace("{url}", source.server.url) if isinstance(v, str) else v
                                     for k, v in source.monitor.items()}, "notify": DESTINATIONS}
                    for source in sources}
        config = write_deployment(tmp_path, monitors, RULES, destinations=destinations, env=env).path
        yield config, env


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets `text` shows (whole, or the part after a Telegram `<id>:`)."""
    return sorted(name for name, value in secrets.items() if value in text or value.split(":", 1)[-1] in text)


def state_text(path: Path) -> str:
    """Every value of every row of every table of state.db, as text."""
    db = sqlite3.connect(path)
    try:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type = 'table'")]
        return "\n".join(repr(row) for table in tables for row in db.execute(f'select * from "{table}"'))
    finally:
        db.close()


@pytest.mark.parametrize("accepted", [False, True], ids=["credentials-rejected", "credentials-accepted"])
def test_no_secret_in_any_output_at_verbose(tmp_path: Path, accepted: bool) -> None:
    with deployment(tmp_path, accepted) as (config, secrets):
        runs = [earful("-v", "run", "--all", "-c", str(config)), earful("-v", "check", "--online", "-c", str(config))]
    state = state_text(config.parent / "state.db")
    assert "DEBUG urllib3" in runs[0].stderr  # the libraries' debug logs were on
    assert "/bot<token>/getUpdates" in runs[0].stderr  # the Telegram connector ran, its token masked in the path
    if not accepted:
        assert "SENTINEL" not in "".join(r.stdout + r.stderr for r in runs) + state
        assert runs[0].returncode == 1 and "failed" in state  # rejected everywhere: the error paths ran
    else:
        assert state.count("'delivered'") >= 10  # alerts reached the destinations
    for number, result in enumerate(runs):
        assert not leaks(result.stdout, secrets), f"command {number}: stdout shows {leaks(result.stdout, secrets)}"
        assert not leaks(result.stderr, secrets), f"command {number}: stderr shows {leaks(result.stderr, secrets)}"
    assert not leaks(state, secrets), f"state.db holds {leaks(state, secrets)}"


def test_the_telegram_token_in_a_url_path_is_masked() -> None:
    from earful.connectors.http import redact_url
    from earful.core.redaction import redact

    url = "https://api.telegram.org/bot7000000099:AAFakeTelegramBotToken_acme-demo0/getUpdates?offset=5"
    assert redact_url(url) == "https://api.telegram.org/bot<token>/getUpdates?offset=5"
    line = f'DEBUG urllib3.connectionpool: https://api.telegram.org:443 "GET {url[24:]} HTTP/1.1" 200 None'
    assert "AAFake" not in redact(line) and "/bot<token>/getUpdates" in redact(line)


@pytest.mark.parametrize("text, shown", [
    ("Authorization: Bearer abc123def456ghi", "Authorization: Bearer ***"),
    ("{'Cookie': 'session=abc123'}", "{'Cookie': '***'}"),
    ("token xoxb-1234-5678-abcdef rejected", "token xoxb-*** rejected"),
    ("POST https://bob:hunter22@example.com/x?api_key=12345&q=acme", "POST https://***@example.com/x?api_key=***&q=acme"),
    ("Data: [('grant_type', 'password'), ('password', 'hunter22')]", "Data: [('grant_type', 'password'), ('password', '***')]"),
    ("the Bot tokens and Basic authentication", "the Bot tokens and Basic authentication"),  # prose stays
])
def test_credential_shapes_are_masked_without_configuration(text: str, shown: str) -> None:
    from earful.core.redaction import redact

    assert redact(text) == shown


def test_a_log_record_is_masked_in_its_message_args_and_exception(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from earful.core.redaction import use_secrets
    from earful.monitors.logs import RedactingFilter

    secret = f"SENTINEL-{uuid.uuid4().hex}"
    use_secrets([secret])
    try:
        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter())
        logger = logging.getLogger("earful.test.secrets")
        logger.addHandler(handler)
        try:
            try:
                raise RuntimeError(f"refused {secret}")
            except RuntimeError:
                logger.error("sent %s to %s", {"token": secret}, "/bot1:x", exc_info=True)
        finally:
            logger.removeHandler(handler)
    finally:
        use_secrets(())
    err = capsys.readouterr().err
    assert "refused ***" in err and "'token': '***'" in err and "/bot<token>" in err and secret not in err
