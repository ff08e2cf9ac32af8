"""The `jira` destination: one Jira Cloud issue per alert (REST API v3).

The issue is created in `project` as `issue_type`, with an Atlassian
Document Format description (title, excerpt, source link, author, kind,
date, severity, labels, matched rules, monitor, every place the item
appeared, the item key), the alert's labels plus `earful` and
`earful-<hash of the item key>`, a priority mapped from the severity
(`priorities`), and optional `custom_fields` filled from templates such as
"{source}" or "{url}".

Exactly once. The item key (the outbox idempotency key) is stored twice on
the issue: as the entity property `earful` (for audits and tools) and as the
label `earful-<sha256(key)[:24]>`, because labels are searchable with JQL
and entity properties are not (unless an app indexes them). Before creating
an issue, and when the outbox finds a row left in doubt by a crash,
`find_delivered` searches `project = P AND labels = "earful-<hash>"` through
`/rest/api/3/search/jql` (Cloud removed `/rest/api/3/search`, which now
answers 410 Gone), paging with `nextPageToken`. Searching before creating
also covers the case the outbox cannot see: a create that timed out after
Jira had already made the issue (the row is then retried as an ordinary
failure, not as "in doubt"). Jira's search index trails writes by a second or
so: a row left in doubt is looked at by the next run (normally the next cron
minute) and a failed attempt is retried no sooner than 30 s later, so in
practice the lag does not matter; a run started by hand within a second of
a crash could miss the issue (the fake's `index_delay` reproduces this).

Lifecycle. `update` (the brand answered) adds one comment with the note and
the item's link, and with `resolve_on_answer: Done` moves the issue through
the transition of that name (or to the status of that name). An escalation
whose `thread` is the original issue key raises the priority one step and
comments the reason, both exactly once: the raise and the label
`earful-escalated` go in one atomic edit, and every comment carries a
marker ("update <id>") that is looked for before commenting again, so
retries and re-runs after a crash add nothing twice. An escalation without a
thread (the rule escalates to this destination) is a new issue at the
highest priority.

Auth: Basic with `email` + `api_token` (Atlassian API token), or `token`
as a Bearer token (Data Center personal access token, or an OAuth 2.0 token
with base_url https://api.atlassian.com/ex/jira/<cloudId>). Secrets are
SecretStr, come from `${ENV}`, and never appear in a message.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from earful.core import Alert, Names, Severity

from . import tickets as tk
from .base import DeliveryError, Destination, DestinationOptions

log = logging.getLogger(__name__)

PROPERTY = "earful"
LABEL = "earful"
ESCALATED_LABEL = "earful-escalated"
SUMMARY_CHARS = 255
LABEL_CHARS = 255
SEARCH_PAGE = 50
COMMENTS_PAGE = 100
MAX_COMMENT_PAGES = 50
DEFAULT_PRIORITIES: dict[str, str] = {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}

_PROJECT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")

HINTS = {
    401: "check `email` and `api_token` (an Atlassian API token, not the password) or `token`",
    403: "the account lacks a project permission (Browse / Create issues / Edit / Transition), "
         "or Jira wants a CAPTCHA after failed logins: log in once in a browser",
    404: "the issue or project does not exist, or the account cannot see it",
    410: "this Jira API was removed",
}


class JiraOptions(DestinationOptions):
    """`type: jira` in cron.yaml."""

    # Secrets must never be echoed, not even by str(ValidationError) in a traceback.
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["jira"] = "jira"
    base_url: str = Field(description="Your site, e.g. https://acme.atlassian.net (required).")
    project: str = Field(description="Project key, e.g. SUP.")
    issue_type: str = Field(default="Task", min_length=1, description="Issue type name (Task, Bug, [System] Incident ...).")
    email: str | None = Field(default=None, description="Atlassian account email, with api_token (Basic auth).")
    api_token: SecretStr | None = Field(default=None, description="Atlassian API token: ${JIRA_API_TOKEN}.")
    token: SecretStr | None = Field(default=None, validate_default=True, description="Bearer token instead of email/api_token.")
    labels: Names = Field(default=(), description="Extra labels on every issue.")
    priorities: dict[Severity, str] | None = Field(
        default_factory=lambda: dict(DEFAULT_PRIORITIES),
        description="Severity -> Jira priority name; null to leave the priority to Jira.",
    )
    custom_fields: dict[str, Any] = Field(default_factory=dict, description="Field id -> template, e.g. customfield_10050: '{url}'.")
    resolve_on_answer: str | None = Field(default=None, description="Transition (or target status) name applied when the brand answered, e.g. Done.")

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not tk.http_url(value):
            raise ValueError(f"{value!r} is not an http(s) URL such as https://acme.atlassian.net")
        return value

    @field_validator("project")
    @classmethod
    def _project_key(cls, value: str) -> str:
        value = value.strip()
        if not _PROJECT_KEY.match(value):
            raise ValueError(f"{value!r} is not a Jira project key (letters, digits, underscores, e.g. SUP)")
        return value.upper()


    @field_validator("labels")
    @classmethod
    def _label_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for label in value:
            if not label or re.search(r"\s", label) or len(label) > LABEL_CHARS:
                raise ValueError(f"Jira labels cannot be empty or contain spaces: {label!r}")
        return value

    @field_validator("custom_fields")
    @classmethod
    def _templates(cls, value: dict[str, Any]) -> dict[str, Any]:
        for field_id, template in value.items():
            if field_id in ("project", "issuetype", "summary", "description", "labels", "priority"):
                raise ValueError(f"{field_id!r} is set by earful; use the matching option instead")
            try:
                tk.check_template(template)
            except ValueError as exc:
                raise ValueError(f"custom field {field_id}: {exc}") from None
        return value

    @field_validator("token")
    @classmethod
    def _one_auth(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A field validator, not a model validator: pydantic would quote the
        # whole input of a model validator, secrets included, in its error.
        email, api_token = info.data.get("email"), info.data.get("api_token")
        basic = bool(email) or api_token is not None
        if value is not None and basic:
            raise ValueError("give either `token` (Bearer) or `email` + `api_token` (Basic), not both")
        if value is None and not (email and api_token is not None):
            raise ValueError("Jira needs credentials: `email` and `api_token` (Jira Cloud), or `token`")
        for secret in (value, api_token):
            if secret is not None and not secret.get_secret_value().strip():
                raise ValueError("a Jira credential is empty; is the environment variable set?")
        return value


# -- Atlassian Document Format ---------------------------------------------------------


def text_node(text: str, *, strong: bool = False, em: bool = False, href: str | None = None) -> dict[str, Any] | None:
    """An ADF text node, or None for empty text (Jira rejects empty text nodes)."""
    if not text:
        return None
    marks: list[dict[str, Any]] = []
    if strong:
        marks.append({"type": "strong"})
    if em:
        marks.append({"type": "em"})
    if href:
        marks.append({"type": "link", "attrs": {"href": href}})
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = marks
    return node


def paragraph(*nodes: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "paragraph", "content": [n for n in nodes if n]}


def bullet_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "bulletList", "content": [{"type": "listItem", "content": [item]} for item in items]}


def description(t: tk.TicketText) -> dict[str, Any]:
    """The issue description as an ADF document (text is data here: nothing to escape)."""
    content: list[dict[str, Any]] = []
    if t.note:
        content.append(paragraph(text_node("Note: ", strong=True), text_node(t.note)))
    if t.title:
        content.append(paragraph(text_node(t.title, strong=True)))
    if t.context:
        content.append(paragraph(text_node(t.context, em=True)))
    if t.excerpt:
        content.append({"type": "blockquote", "content": [paragraph(text_node(t.excerpt))]})
    content.append(bullet_list([paragraph(text_node(f"{f.name}: ", strong=True), text_node(f.value, href=f.url)) for f in t.facts]))
    if t.places:
        content.append(paragraph(text_node(f"Seen in {len(t.places) + t.hidden_places} places", strong=True)))
        rows = [paragraph(text_node(p.source, href=tk.http_url(p.url)), text_node(f" — {p.author}")) for p in t.places]
        if t.hidden_places:
            rows.append(paragraph(text_node(f"…and {t.hidden_places} more")))
        content.append(bullet_list(rows))
    content.append(paragraph(text_node(tk.footer(t), em=True)))
    return {"type": "doc", "version": 1, "content": content}


def comment_doc(text: str, link: str | None, key: str, marker: str) -> dict[str, Any]:
    """A comment: the note, the item's link, and the marker that makes it findable."""
    content = [paragraph(text_node(text))]
    if link:
        content.append(paragraph(text_node("Original post: "), text_node(link, href=link)))
    content.append(paragraph(text_node(f"earful · item key {key} · update {marker}", em=True)))
    return {"type": "doc", "version": 1, "content": content}


def adf_text(node: Any) -> str:
    """All text of an ADF node, concatenated (to find our markers in comments)."""
    if isinstance(node, dict):
        own = node.get("text") if isinstance(node.get("text"), str) else ""
        return own + "".join(adf_text(child) for child in node.get("content") or ())
    if isinstance(node, list):
        return "".join(adf_text(child) for child in node)
    return node if isinstance(node, str) else ""  # a v2-style plain string body


def jira_label(label: str) -> str:
    return re.sub(r"\s+", "-", label.strip())[:LABEL_CHARS]


# -- destination ----------------------------------------------------------------------


class JiraDestination(Destination):
    """Creates, comments on, resolves and escalates Jira issues; see the module docstring."""

    type: ClassVar[str] = "jira"
    Options: ClassVar[type[DestinationOptions]] = JiraOptions
    unanswered_only: ClassVar[bool] = True  # no ticket for what the brand had already answered
    options: JiraOptions

    def __init__(self, name: str, options: DestinationOptions):
        super().__init__(name, options)
        self._api: tk.HttpApi | None = None

    # -- public -------------------------------------------------------------------
    def deliver(self, alert: Alert) -> str:
        """Create the issue (or find the one an interrupted attempt made); return its key.
        An escalation with `thread` escalates that issue and returns its key."""
        if alert.kind == "escalation" and alert.thread:
            return self._escalate(alert.thread, alert)
        existing = self._find(alert)
        if existing:
            log.info("%s: %s already has issue %s; not creating another", self._where(), alert.key, existing)
            return existing
        return self._create(alert)

    def find_delivered(self, alert: Alert, since: datetime) -> str | None:
        """The issue carrying the item's label (any age: the label is unique per
        item and destination); for a threaded escalation, the original issue once
        the escalation is fully applied."""
        if alert.kind == "escalation" and alert.thread:
            issue = self._issue(alert.thread, "labels")
            if ESCALATED_LABEL in (issue.get("fields") or {}).get("labels", []) and self._has_comment(alert.thread, tk.item_hash(alert.key, 16)):
                return alert.thread
            return None
        return self._find(alert)

    def update(self, remote_id: str, alert: Alert, note: str) -> str:
        """Comment the note (once) and, with `resolve_on_answer`, resolve the issue."""
        marker = tk.update_marker(alert.key, note)
        text, link = tk.update_lines(alert, note)
        self._comment_once(remote_id, marker, comment_doc(text, link, alert.key, marker))
        if self.options.resolve_on_answer:
            self._resolve(remote_id, self.options.resolve_on_answer)
        return remote_id

    def verify(self) -> str:
        """GET /myself (the credentials) and the project (visible to them); nothing is created."""
        me = self._http().json("GET", "/rest/api/3/myself") or {}
        if me.get("active") is False:
            raise tk.HttpError(f"{self._where()}: the account {me.get('displayName')!r} is deactivated", permanent=True)
        project = self._http().json("GET", f"/rest/api/3/project/{self.options.project}") or {}
        return f"signed in as {me.get('displayName') or me.get('emailAddress')}; project {project.get('key')} ({project.get('name')})"

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- creating -------------------------------------------------------------------
    def label_for(self, alert: Alert) -> str:
        return f"earful-{tk.item_hash(alert.key)}"

    def issue_fields(self, alert: Alert) -> dict[str, Any]:
        """The `fields` of the create request."""
        options = self.options
        t = tk.ticket_text(alert, summary_chars=SUMMARY_CHARS)
        labels = [*options.labels, LABEL, *(jira_label(l) for l in alert.labels), self.label_for(alert)]
        if alert.kind == "escalation":
            labels.append(ESCALATED_LABEL)
        fields: dict[str, Any] = {
            "project": {"key": options.project},
            "issuetype": {"name": options.issue_type},
            "summary": t.summary,
            "description": description(t),
            "labels": [l for l in dict.fromkeys(labels) if l],
        }
        if options.priorities:
            if alert.kind == "escalation":
                fields["priority"] = {"name": tk.ladder(options.priorities)[-1]}
            elif alert.severity in options.priorities:
                fields["priority"] = {"name": options.priorities[alert.severity]}
        if options.custom_fields:
            values = tk.template_values(alert)
            for field_id, template in options.custom_fields.items():
                fields[field_id] = tk.render_template(template, values)
        return fields

    def _create(self, alert: Alert) -> str:
        data = self._http().json("POST", "/rest/api/3/issue", json_body={"fields": self.issue_fields(alert)}, expect=(200, 201))
        key = str((data or {}).get("key") or "")
        if not key:
            raise tk.HttpError(f"{self._where()}: Jira created an issue but did not say its key; it will be found by its label")
        self._set_property(key, alert)
        return key

    def _set_property(self, key: str, alert: Alert) -> None:
        """Best effort: the issue exists now, and its label already identifies it, so
        a failure here must not make the outbox retry (and create a second issue)."""
        value = {"key": alert.key, "cluster": alert.cluster, "monitor": alert.monitor, "destination": self.name, "kind": alert.kind}
        try:
            self._http().request("PUT", f"/rest/api/3/issue/{key}/properties/{PROPERTY}", json_body=value, expect=(200, 201, 204))
        except DeliveryError as exc:
            log.warning("%s; issue %s is still identified by its label", exc, key)

    # -- finding ----------------------------------------------------------------------
    def _find(self, alert: Alert) -> str | None:
        label = self.label_for(alert)
        jql = f'project = "{self.options.project}" AND labels = "{label}" ORDER BY created ASC'
        body: dict[str, Any] = {"jql": jql, "fields": ["summary", "labels", "created"], "properties": [PROPERTY], "maxResults": SEARCH_PAGE}
        unmarked: str | None = None
        while True:
            data = self._http().json("POST", "/rest/api/3/search/jql", json_body=body) or {}
            for issue in data.get("issues") or ():
                stored = (issue.get("properties") or {}).get(PROPERTY)
                if isinstance(stored, dict) and stored.get("key") == alert.key:
                    return str(issue["key"])
                if stored is None and unmarked is None:
                    unmarked = str(issue["key"])  # created, then interrupted before the property was set
            token = data.get("nextPageToken")
            if not token or data.get("isLast"):
                break
            body["nextPageToken"] = token
        if unmarked:
            self._set_property(unmarked, alert)
        return unmarked

    # -- comments, transitions, escalation ------------------------------------------------
    def _issue(self, key: str, fields: str) -> dict[str, Any]:
        return self._http().json("GET", f"/rest/api/3/issue/{key}", params={"fields": fields}) or {}

    def _has_comment(self, key: str, marker: str) -> bool:
        needle = f"update {marker}"
        start = 0
        for _ in range(MAX_COMMENT_PAGES):
            data = self._http().json("GET", f"/rest/api/3/issue/{key}/comment",
                                     params={"startAt": start, "maxResults": COMMENTS_PAGE, "orderBy": "-created"}) or {}
            comments = data.get("comments") or []
            if any(needle in adf_text(c.get("body")) for c in comments):
                return True
            start += len(comments)
            if not comments or start >= int(data.get("total") or 0):
                return False
        log.warning("%s: issue %s has more than %d comments; not searching further for %s",
                    self._where(), key, MAX_COMMENT_PAGES * COMMENTS_PAGE, marker)
        return False

    def _comment_once(self, key: str, marker: str, doc: dict[str, Any]) -> None:
        if self._has_comment(key, marker):
            log.info("%s: issue %s already has comment %s", self._where(), key, marker)
            return
        self._http().request("POST", f"/rest/api/3/issue/{key}/comment", json_body={"body": doc}, expect=(200, 201))

    def _resolve(self, key: str, wanted: str) -> None:
        data = self._http().json("GET", f"/rest/api/3/issue/{key}/transitions") or {}
        transitions = data.get("transitions") or []
        target = wanted.casefold()
        chosen = next((t for t in transitions if str(t.get("name", "")).casefold() == target), None)
        chosen = chosen or next((t for t in transitions if str((t.get("to") or {}).get("name", "")).casefold() == target), None)
        if chosen is not None:
            self._http().request("POST", f"/rest/api/3/issue/{key}/transitions", json_body={"transition": {"id": str(chosen["id"])}}, expect=(200, 204))
            return
        status = (self._issue(key, "status").get("fields") or {}).get("status") or {}
        if str(status.get("name", "")).casefold() == target or (status.get("statusCategory") or {}).get("key") == "done":
            return  # already resolved (by a person, or by an earlier attempt)
        names = ", ".join(repr(t.get("name")) for t in transitions) or "none"
        raise tk.HttpError(
            f"{self._where()}: issue {key} has no transition {wanted!r} from status {status.get('name')!r} "
            f"(available: {names}); fix resolve_on_answer",
            permanent=True,
        )

    def _escalate(self, key: str, alert: Alert) -> str:
        """Raise the priority one step and comment the reason, each at most once."""
        fields = self._issue(key, "priority,labels").get("fields") or {}
        note = tk.fmt.clean(alert.note or "SLA breached")
        if ESCALATED_LABEL not in (fields.get("labels") or []):
            edit: dict[str, Any] = {"update": {"labels": [{"add": ESCALATED_LABEL}]}}
            current = (fields.get("priority") or {}).get("name")
            priorities = self.options.priorities
            target = None
            if priorities:
                target = tk.one_step_up(current, tk.ladder(priorities), priorities.get(alert.severity))
                if target:
                    edit["fields"] = {"priority": {"name": target}}
            self._http().request("PUT", f"/rest/api/3/issue/{key}", json_body=edit, expect=(200, 204))
            if target:
                note += f" Priority raised from {current or 'none'} to {target}."
        marker = tk.item_hash(alert.key, 16)
        self._comment_once(key, marker, comment_doc(note, tk.http_url(alert.mention.url), alert.key, marker))
        return key

    # -- plumbing -----------------------------------------------------------------------
    def _where(self) -> str:
        who = f", as {self.options.email}" if self.options.email else ""
        return f"jira destination {self.name!r} ({self.options.base_url}, project {self.options.project}{who})"

    def _http(self) -> tk.HttpApi:
        if self._api is None:
            options = self.options
            authorization, secret = tk.authorization(options, "{email}")
            self._api = tk.HttpApi(
                self._where(),
                options.base_url,
                timeout=options.timeout,
                headers={"Authorization": authorization},
                describe=tk.json_errors,
                hints=HINTS,
                secrets=[secret, authorization],
            )
        return self._api


DESTINATION = JiraDestination
