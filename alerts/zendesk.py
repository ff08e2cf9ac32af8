"""The `zendesk` destination: one Zendesk Support ticket per alert (API v2).

The ticket carries the item key as its `external_id`, the alert's labels as
`tags` (plus `earful` and the configured `tags`), a `priority` mapped from
the severity (`priorities`: urgent / high / normal / low), a subject and a
first comment (HTML by default, plain text with `html: false`) that state
the same facts as every other destination, and optionally a `requester`,
`group_id` and ticket `type`.

The first comment is private by default (`public: false`): a public one
would be e-mailed to the requester by the default triggers, and the
requester of a ticket about a Reddit post is not someone to e-mail.

Exactly once. `deliver` itself looks the key up (`GET
/api/v2/tickets.json?external_id=...`, a database query, not the
eventually consistent search index) before creating, and so does
`find_delivered` when the outbox finds a row left in doubt by a crash. The
look-up inside `deliver` matters because the outbox retries a timed-out
create as an ordinary failure: Zendesk may well have made that ticket.

Lifecycle. `update` adds an internal note (`public: false`) with the note and
the item's link and, with `solve_on_answer: true`, sets the status to
solved, in ONE ticket update that also adds the tag `earful-update-<id>`;
seeing that tag later means the update is done, so a retry adds nothing.
An escalation whose `thread` is the original ticket id raises the priority
one step (low -> normal -> high -> urgent) with an internal note and the tag
`earful-escalated`, again in one atomic update, hence exactly once. Closed
tickets cannot be changed in Zendesk; updates to them are skipped with a
log line. An escalation without a thread opens a new urgent ticket.

Auth: `email` + `api_token` (Basic `email/token:API_TOKEN`) or `token`
(OAuth Bearer). `subdomain: acme` means https://acme.zendesk.com; or give
`base_url` (a host-mapped domain, a proxy, tests). A 429 answer's
Retry-After is honoured through the outbox.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from earful.core import Alert, Names, Severity

from . import tickets as tk
from .base import Destination, DestinationOptions

log = logging.getLogger(__name__)

ZendeskPriority = Literal["low", "normal", "high", "urgent"]
LADDER: list[str] = ["low", "normal", "high", "urgent"]
DEFAULT_PRIORITIES: dict[str, str] = {"critical": "urgent", "high": "high", "medium": "normal", "low": "low"}
TAG = "earful"
ESCALATED_TAG = "earful-escalated"
SUBJECT_CHARS = 200
FINAL_STATUSES = ("closed",)
SOLVED_STATUSES = ("solved", "closed")

_SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TAG_CHARS = re.compile(r"[^a-z0-9_\-:./]+")

HINTS = {
    401: "check `email` and `api_token` (Admin Center > Apps and integrations > Zendesk API), or `token`",
    403: "the user may not do this (needs an agent role; is token access enabled?)",
    404: "no such ticket (deleted or merged?), or the wrong subdomain",
    422: "Zendesk rejected the ticket",
}


class Requester(BaseModel):
    """Who the ticket is from; Zendesk creates the end user if the email is new."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    name: str | None = None


class ZendeskOptions(DestinationOptions):
    """`type: zendesk` in cron.yaml."""

    # Secrets must never be echoed, not even by str(ValidationError) in a traceback.
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["zendesk"] = "zendesk"
    subdomain: str | None = Field(default=None, validate_default=True, description="acme for https://acme.zendesk.com (or set base_url).")
    email: str | None = Field(default=None, description="Agent email, with api_token (Basic email/token).")
    api_token: SecretStr | None = Field(default=None, description="Zendesk API token: ${ZENDESK_API_TOKEN}.")
    token: SecretStr | None = Field(default=None, validate_default=True, description="OAuth access token instead of email/api_token.")
    tags: Names = Field(default=(), description="Extra tags on every ticket.")
    priorities: dict[Severity, ZendeskPriority] = Field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    html: bool = Field(default=True, description="Send the comment as html_body (else plain body).")
    public: bool = Field(default=False, description="Make the first comment public (e-mails the requester).")
    requester: Requester | None = None
    group_id: int | None = None
    ticket_type: Literal["problem", "incident", "question", "task"] | None = None
    solve_on_answer: bool = Field(default=False, description="Set status solved when the brand answered.")

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/").removesuffix("/api/v2")
        if not tk.http_url(value):
            raise ValueError(f"{value!r} is not an http(s) URL such as https://acme.zendesk.com")
        return value

    @field_validator("subdomain")
    @classmethod
    def _site(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            value = value.strip().lower().removesuffix(".zendesk.com")
            if not _SUBDOMAIN.match(value):
                raise ValueError(f"{value!r} is not a Zendesk subdomain (acme for https://acme.zendesk.com)")
        if value and info.data.get("base_url"):
            raise ValueError("give either `subdomain` or `base_url`, not both")
        if not value and not info.data.get("base_url"):
            raise ValueError("Zendesk needs `subdomain` (acme for https://acme.zendesk.com) or `base_url`")
        return value


    @field_validator("token")
    @classmethod
    def _one_auth(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A field validator: a model validator would quote the secrets in its error.
        email, api_token = info.data.get("email"), info.data.get("api_token")
        if value is not None and (email or api_token is not None):
            raise ValueError("give either `token` (OAuth) or `email` + `api_token`, not both")
        if value is None and not (email and api_token is not None):
            raise ValueError("Zendesk needs credentials: `email` and `api_token`, or an OAuth `token`")
        for secret in (value, api_token):
            if secret is not None and not secret.get_secret_value().strip():
                raise ValueError("a Zendesk credential is empty; is the environment variable set?")
        return value


def zendesk_tag(label: str) -> str:
    """Zendesk tags are lower case and space-separated: anything else becomes '_'."""
    return _TAG_CHARS.sub("_", label.strip().lower()).strip("_")


class ZendeskDestination(Destination):
    """Creates, notes, solves and escalates Zendesk tickets; see the module docstring."""

    type: ClassVar[str] = "zendesk"
    Options: ClassVar[type[DestinationOptions]] = ZendeskOptions
    unanswered_only: ClassVar[bool] = True  # no ticket for what the brand had already answered
    options: ZendeskOptions

    def __init__(self, name: str, options: DestinationOptions):
        super().__init__(name, options)
        self._api: tk.HttpApi | None = None

    @property
    def base(self) -> str:
        return self.options.base_url or f"https://{self.options.subdomain}.zendesk.com"

    # -- public -------------------------------------------------------------------
    def deliver(self, alert: Alert) -> str:
        """Create the ticket unless one with this external_id exists; return its id."""
        if alert.kind == "escalation" and alert.thread:
            return self._escalate(alert.thread, alert)
        existing = self._find(alert)
        if existing:
            log.info("%s: %s already has ticket %s; not creating another", self._where(), alert.key, existing)
            return existing
        data = self._http().json("POST", "/api/v2/tickets.json", json_body={"ticket": self.ticket(alert)}, expect=(200, 201))
        ticket_id = ((data or {}).get("ticket") or {}).get("id")
        if ticket_id is None:
            raise tk.HttpError(f"{self._where()}: Zendesk answered without a ticket id; the next attempt looks it up by external_id")
        return str(ticket_id)

    def find_delivered(self, alert: Alert, since: datetime) -> str | None:
        """The ticket whose external_id is the item key; for a threaded escalation,
        the original ticket once it carries the escalation tag."""
        if alert.kind == "escalation" and alert.thread:
            ticket = self._ticket(alert.thread)
            return alert.thread if ESCALATED_TAG in (ticket.get("tags") or []) else None
        return self._find(alert)

    def update(self, remote_id: str, alert: Alert, note: str) -> str:
        """An internal note with `note` (once) and, with solve_on_answer, status solved."""
        ticket = self._ticket(remote_id)
        status = ticket.get("status")
        if status in FINAL_STATUSES:
            log.info("%s: ticket %s is closed; Zendesk allows no more changes, skipping the update", self._where(), remote_id)
            return remote_id
        marker_tag = f"earful-update-{tk.update_marker(alert.key, note)}"
        change: dict[str, Any] = {}
        if marker_tag not in (ticket.get("tags") or []):
            change["comment"] = self._comment(tk.render_update_html(alert, note), tk.render_update_text(alert, note))
            change["additional_tags"] = [marker_tag]
        if self.options.solve_on_answer and status not in SOLVED_STATUSES:
            change["status"] = "solved"
        if change:
            self._http().request("PUT", f"/api/v2/tickets/{remote_id}.json", json_body={"ticket": change}, expect=(200,))
        return remote_id

    def verify(self) -> str:
        """GET /users/me: the credentials belong to an agent (who may create tickets); nothing is created.

        Zendesk answers a request it cannot attribute with the anonymous user (id null) rather than 401.
        """
        user = (self._http().json("GET", "/api/v2/users/me.json") or {}).get("user") or {}
        if user.get("id") is None:
            raise tk.HttpError(f"{self._where()}: the credentials were not accepted (Zendesk sees an anonymous user)",
                               permanent=True)
        if user.get("role") not in ("agent", "admin"):
            raise tk.HttpError(f"{self._where()}: {user.get('email')} is an {user.get('role')}, not an agent: "
                               "tickets need an agent's credentials", permanent=True)
        return f"signed in as {user.get('name')} <{user.get('email')}> ({user.get('role')})"

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- request bodies -----------------------------------------------------------------
    def ticket(self, alert: Alert) -> dict[str, Any]:
        """The `ticket` object of the create request."""
        options = self.options
        t = tk.ticket_text(alert, summary_chars=SUBJECT_CHARS)
        comment = self._comment(tk.render_html(t), tk.render_text(t), public=options.public)
        tags = [zendesk_tag(x) for x in (*options.tags, TAG, *alert.labels)]
        if alert.kind == "escalation":
            tags.append(ESCALATED_TAG)
        ticket: dict[str, Any] = {
            "subject": t.summary,
            "comment": comment,
            "external_id": alert.key,
            "tags": [x for x in dict.fromkeys(tags) if x],
        }
        if alert.kind == "escalation":
            ticket["priority"] = LADDER[-1]
        elif alert.severity in options.priorities:
            ticket["priority"] = options.priorities[alert.severity]
        if options.requester is not None:
            ticket["requester"] = options.requester.model_dump(exclude_none=True)
        if options.group_id is not None:
            ticket["group_id"] = options.group_id
        if options.ticket_type is not None:
            ticket["type"] = options.ticket_type
        return ticket

    def _comment(self, html_body: str, text: str, *, public: bool = False) -> dict[str, Any]:
        return {"html_body": html_body, "public": public} if self.options.html else {"body": text, "public": public}

    # -- look-ups and changes -------------------------------------------------------------
    def _find(self, alert: Alert) -> str | None:
        data = self._http().json("GET", "/api/v2/tickets.json", params={"external_id": alert.key}) or {}
        found = [t for t in data.get("tickets") or () if t.get("external_id") == alert.key and t.get("status") != "deleted"]
        if not found:
            return None
        return str(min(found, key=lambda t: int(t["id"]))["id"])

    def _ticket(self, ticket_id: str) -> dict[str, Any]:
        return (self._http().json("GET", f"/api/v2/tickets/{ticket_id}.json") or {}).get("ticket") or {}

    def _escalate(self, ticket_id: str, alert: Alert) -> str:
        ticket = self._ticket(ticket_id)
        if ESCALATED_TAG in (ticket.get("tags") or []):
            log.info("%s: ticket %s was already escalated", self._where(), ticket_id)
            return ticket_id
        if ticket.get("status") in FINAL_STATUSES:
            log.info("%s: ticket %s is closed; not escalating it", self._where(), ticket_id)
            return ticket_id
        current = ticket.get("priority")
        target = tk.one_step_up(current, LADDER, self.options.priorities.get(alert.severity))
        note = tk.fmt.clean(alert.note or "SLA breached")
        if target:
            note += f" Priority raised from {current or 'none'} to {target}."
        change: dict[str, Any] = {
            "comment": self._comment(tk.render_update_html(alert, note), tk.render_update_text(alert, note)),
            "additional_tags": [ESCALATED_TAG],
        }
        if target:
            change["priority"] = target
        self._http().request("PUT", f"/api/v2/tickets/{ticket_id}.json", json_body={"ticket": change}, expect=(200,))
        return ticket_id

    # -- plumbing -----------------------------------------------------------------------
    def _where(self) -> str:
        who = f", as {self.options.email}" if self.options.email else ""
        return f"zendesk destination {self.name!r} ({self.base}{who})"

    def _http(self) -> tk.HttpApi:
        if self._api is None:
            options = self.options
            authorization, secret = tk.authorization(options, "{email}/token")
            self._api = tk.HttpApi(self._where(), self.base, timeout=options.timeout, headers={"Authorization": authorization},
                                   describe=tk.json_errors, hints=HINTS, secrets=[secret, authorization])
        return self._api


DESTINATION = ZendeskDestination
