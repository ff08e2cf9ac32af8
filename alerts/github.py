"""The `github` destination: one GitHub issue per alert (REST API 2022-11-28).

For teams whose support queue is a repository's issues (open-source
projects, developer tools). The issue goes to `repository` ("owner/repo")
with the alert's labels plus `earful` and the configured `labels`, and a
Markdown body stating the same facts as every other destination. Customer
text is made inert (`tickets.md`): it cannot @-mention anyone, reference
issues, embed HTML or images, or format itself. The body ends with a hidden
marker, `<!-- earful:key=ITEM_KEY -->`.

Exactly once: how an earlier delivery is found. `find_delivered` (and
`deliver` itself, before creating) lists the repository's issues with
`GET /repos/{owner}/{repo}/issues?state=all&since=...&sort=created&direction=desc`,
following `Link: rel="next"`, and compares each body with the exact marker.
The alternatives are weaker:

* the search API (`/search/issues?q=repo:o/r "earful:key=..." in:body`) is
  served from an index that trails writes by up to a minute or more, so a
  fresh issue is exactly what it may not find; it tokenises the key's
  punctuation away, so it cannot match it exactly; and it has its own,
  much smaller rate limit (30 requests a minute);
* filtering the list by `labels=earful` would depend on the label being
  there, but GitHub silently drops labels when the token lacks push access.

`since` bounds the scan: an issue created after the delivery attempt began
was updated after it too. At most `reconcile_pages` pages of 100 are read,
once per run: the markers found are remembered together with the issues
this process creates, which is sound because only one run at a time holds
the state lock, and the memory is dropped after any failed create.
The look-up inside `deliver` matters because a create that timed out may
have succeeded, and the outbox retries it as an ordinary failure.

Lifecycle. `update` adds one comment (the note and the item's link; a
hidden `<!-- earful:update=ID -->` marker is looked for first, so a retry
adds nothing) and with `close_on_answer: true` closes the issue as
completed. GitHub issues have no priority: an escalation whose `thread` is
the original issue adds `escalation_labels` (default `sla-breached`; adding
a label twice is a no-op) and one comment with the reason. Without a thread
it opens a new issue carrying those labels.

Rate limits: 429, and 403 with Retry-After (secondary limits, "You have
triggered an abuse detection mechanism") or with `x-ratelimit-remaining: 0`
(primary limit, wait until `x-ratelimit-reset`) become `retry_after`; other
403s (missing permission) are permanent.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import ConfigDict, Field, SecretStr, field_validator

from earful.core import Alert, Names

from . import tickets as tk
from .base import DeliveryError, Destination, DestinationOptions

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
LABEL = "earful"
TITLE_CHARS = 256
BODY_CHARS = 65536
PAGE = 100
MAX_COMMENT_PAGES = 30
CLOCK_SKEW = timedelta(minutes=10)
SECONDARY_RATE_LIMIT_WAIT = 60.0

_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_REMOTE_ID = re.compile(r"^(?P<repo>[^#\s]+/[^#\s]+)#(?P<number>\d+)$")
_LABEL_BAD = re.compile(r"[,\n\r]")
_MARKER = re.compile(r"<!-- earful:key=\S+ -->")

HINTS = {
    401: "check the token (expired or revoked?)",
    403: "the token lacks permission: fine-grained tokens need 'Issues: read and write' on the repository",
    404: "no such repository or issue, or the token cannot see it",
    410: "issues are disabled in this repository",
    422: "GitHub rejected the request",
}


class GitHubOptions(DestinationOptions):
    """`type: github` in cron.yaml."""

    # Secrets must never be echoed, not even by str(ValidationError) in a traceback.
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["github"] = "github"
    base_url: str | None = Field(default=None, description="API root; default https://api.github.com (GHES: https://HOST/api/v3).")
    repository: str = Field(description="owner/repo")
    token: SecretStr = Field(description="A token with Issues read/write: ${GITHUB_TOKEN}.")
    labels: Names = Field(default=(), description="Extra labels on every issue.")
    assignees: Names = Field(default=(), description="Logins to assign (ignored by GitHub without push access).")
    close_on_answer: bool = Field(default=False, description="Close the issue when the brand answered.")
    escalation_labels: Names = Field(default=("sla-breached",), description="Labels added on an SLA breach.")
    reconcile_pages: int = Field(default=10, ge=1, le=100, description="Pages of 100 issues scanned for an earlier delivery.")

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not tk.http_url(value):
            raise ValueError(f"{value!r} is not an http(s) URL such as https://api.github.com")
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        value = value.strip().removeprefix("https://github.com/").rstrip("/")
        if not _REPOSITORY.match(value):
            raise ValueError(f"{value!r} is not owner/repo")
        return value


    @field_validator("labels", "escalation_labels")
    @classmethod
    def _label_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for label in value:
            if not label.strip() or _LABEL_BAD.search(label) or len(label) > 50:
                raise ValueError(f"{label!r} is not a GitHub label (1-50 characters, no commas)")
        return value

    @field_validator("token")
    @classmethod
    def _token_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("the GitHub token is empty; is the environment variable set?")
        return value


def key_marker(key: str) -> str:
    """The hidden marker in an issue body; the key is percent-encoded where it
    could end the HTML comment."""
    return f"<!-- earful:key={quote(key, safe=':/#@._+=~')} -->"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def iso_z(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def classify(response: "requests.Response") -> DeliveryError | None:
    """GitHub's rate limits, which arrive as 403 as often as 429."""
    status = response.status_code
    if status not in (403, 429):
        return None
    wait = tk.retry_after(response.headers)
    if wait is None and response.headers.get("x-ratelimit-remaining") == "0":
        try:
            wait = max(0.0, float(response.headers.get("x-ratelimit-reset", "")) - time.time())
        except ValueError:
            wait = None
    message = tk.json_errors(response)
    lowered = message.lower()
    if wait is None and ("secondary rate limit" in lowered or "abuse" in lowered or "rate limit" in lowered):
        wait = SECONDARY_RATE_LIMIT_WAIT
    if wait is None and status == 403:
        return None  # a real permission problem: the generic rules make it permanent
    return DeliveryError(f"GitHub rate limit (HTTP {status}): {message}; asked to wait {(wait or 0):g}s", retry_after=wait)


class GitHubDestination(Destination):
    """Opens, comments on, closes and labels GitHub issues; see the module docstring."""

    type: ClassVar[str] = "github"
    Options: ClassVar[type[DestinationOptions]] = GitHubOptions
    unanswered_only: ClassVar[bool] = True  # no ticket for what the brand had already answered
    options: GitHubOptions

    def __init__(self, name: str, options: DestinationOptions):
        super().__init__(name, options)
        self._api: tk.HttpApi | None = None
        # One scan per run: markers of every issue created since `_scanned_since`
        # (-> lowest issue number), plus what this process created itself. Valid
        # because one run at a time holds the state lock; dropped whenever a
        # create may have succeeded without us knowing (any failed create).
        self._known: dict[str, int] = {}
        self._scanned_since: datetime | None = None

    # -- public -------------------------------------------------------------------
    def deliver(self, alert: Alert) -> str:
        """Open the issue unless an earlier attempt did; return "owner/repo#number"."""
        if alert.kind == "escalation" and alert.thread:
            return self._escalate(alert.thread, alert)
        since = (alert.created_at or datetime.now(timezone.utc)) - CLOCK_SKEW
        existing = self._find(alert, since)
        if existing:
            log.info("%s: %s already has issue %s; not opening another", self._where(), alert.key, existing)
            return existing
        try:
            data = self._http().json("POST", f"/repos/{self.options.repository}/issues", json_body=self.issue(alert), expect=(201,)) or {}
        except DeliveryError:
            self._forget()  # the issue may exist now: look again next time
            raise
        number = data.get("number")
        if number is None:
            self._forget()
            raise tk.HttpError(f"{self._where()}: GitHub answered without an issue number; the next attempt looks for the marker")
        self._known.setdefault(key_marker(alert.key), int(number))
        return f"{self.options.repository}#{number}"

    def find_delivered(self, alert: Alert, since: datetime) -> str | None:
        """The issue whose body carries the item's marker, created since `since`;
        for a threaded escalation, the original issue once labelled and commented."""
        if alert.kind == "escalation" and alert.thread:
            repo, number = self._parse(alert.thread)
            issue = self._http().json("GET", f"/repos/{repo}/issues/{number}") or {}
            names = {label.get("name") for label in issue.get("labels") or () if isinstance(label, dict)}
            done = set(self.options.escalation_labels) <= names
            if done and self._has_comment(repo, number, self._escalation_marker(alert)):
                return alert.thread
            return None
        return self._find(alert, since)

    def update(self, remote_id: str, alert: Alert, note: str) -> str:
        """One comment with `note` and, with close_on_answer, the issue closed as completed."""
        repo, number = self._parse(remote_id)
        marker = f"<!-- earful:update={tk.update_marker(alert.key, note)} -->"
        self._comment_once(repo, number, marker, tk.render_update_markdown(alert, note))
        if self.options.close_on_answer:
            self._http().request("PATCH", f"/repos/{repo}/issues/{number}", json_body={"state": "closed", "state_reason": "completed"},
                                 expect=(200,))
        return remote_id

    def verify(self) -> str:
        """GET the repository: the token sees it and its issues are on; nothing is created."""
        repo = self._http().json("GET", f"/repos/{self.options.repository}") or {}
        name = repo.get("full_name") or self.options.repository
        if not repo.get("has_issues", True):
            raise tk.HttpError(f"{self._where()}: issues are disabled in {name}; enable them in its settings",
                               permanent=True)
        if repo.get("archived"):
            raise tk.HttpError(f"{self._where()}: {name} is archived (read-only)", permanent=True)
        return f"repository {name} ({'private' if repo.get('private') else 'public'}, issues on)"

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- request bodies -----------------------------------------------------------------
    def issue(self, alert: Alert) -> dict[str, Any]:
        """The create request's body."""
        t = tk.ticket_text(alert, summary_chars=TITLE_CHARS)
        marker = key_marker(alert.key)
        body = tk.render_markdown(t)
        room = BODY_CHARS - len(marker) - 2
        if len(body) > room:
            body = tk.fmt.truncate(body, room)
        labels = [*self.options.labels, LABEL, *alert.labels]
        if alert.kind == "escalation":
            labels += self.options.escalation_labels
        issue: dict[str, Any] = {
            "title": tk.inert_mentions(t.summary),
            "body": f"{body}\n\n{marker}",
            "labels": [l for l in dict.fromkeys(x.strip()[:50] for x in labels) if l],
        }
        if self.options.assignees:
            issue["assignees"] = list(self.options.assignees)
        return issue

    # -- look-ups -----------------------------------------------------------------------
    def _find(self, alert: Alert, since: datetime) -> str | None:
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        if self._scanned_since is None or since < self._scanned_since:
            self._scan(since)
        number = self._known.get(key_marker(alert.key))
        return f"{self.options.repository}#{number}" if number is not None else None

    def _scan(self, since: datetime) -> None:
        """Read the markers of every issue created since `since` (newest first, stopping
        at the first older one). A scan cut short by `reconcile_pages` is not remembered."""
        params: dict[str, Any] | None = {"state": "all", "since": iso_z(since), "sort": "created", "direction": "desc", "per_page": PAGE}
        path = f"/repos/{self.options.repository}/issues"
        found: dict[str, int] = {}
        for _ in range(self.options.reconcile_pages):
            response = self._http().request("GET", path, params=params, expect=(200,))
            issues = self._json_list(response)
            older = False
            for issue in issues:
                created = parse_time(issue.get("created_at"))
                older = older or (created is not None and created < since)
                if "pull_request" in issue:
                    continue
                for marker in _MARKER.findall(issue.get("body") or ""):
                    found[marker] = min(found.get(marker, int(issue["number"])), int(issue["number"]))
            next_url = response.links.get("next", {}).get("url")
            if older or not next_url or not issues:
                complete = True
                break
            path, params = next_url, None
        else:
            complete = False
            log.warning("%s: scanned %d pages of issues without reaching %s; raise reconcile_pages if this repository is that busy",
                        self._where(), self.options.reconcile_pages, iso_z(since))
        for marker, number in found.items():
            self._known[marker] = min(self._known.get(marker, number), number)
        self._scanned_since = since if complete else None

    def _forget(self) -> None:
        self._known.clear()
        self._scanned_since = None

    def _has_comment(self, repo: str, number: str, marker: str) -> bool:
        path: str = f"/repos/{repo}/issues/{number}/comments"
        params: dict[str, Any] | None = {"per_page": PAGE}
        for _ in range(MAX_COMMENT_PAGES):
            response = self._http().request("GET", path, params=params, expect=(200,))
            if any(marker in (c.get("body") or "") for c in self._json_list(response)):
                return True
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return False
            path, params = next_url, None
        return False

    def _comment_once(self, repo: str, number: str, marker: str, text: str) -> None:
        if self._has_comment(repo, number, marker):
            log.info("%s: issue %s#%s already has comment %s", self._where(), repo, number, marker)
            return
        self._http().request("POST", f"/repos/{repo}/issues/{number}/comments", json_body={"body": f"{text}\n\n{marker}"}, expect=(201,))

    def _escalation_marker(self, alert: Alert) -> str:
        return f"<!-- earful:escalation={tk.item_hash(alert.key, 16)} -->"

    def _escalate(self, remote_id: str, alert: Alert) -> str:
        repo, number = self._parse(remote_id)
        issue = self._http().json("GET", f"/repos/{repo}/issues/{number}") or {}
        have = {label.get("name") for label in issue.get("labels") or () if isinstance(label, dict)}
        missing = [label for label in self.options.escalation_labels if label not in have]
        note = tk.fmt.clean(alert.note or "SLA breached")
        if missing:
            self._http().request("POST", f"/repos/{repo}/issues/{number}/labels", json_body={"labels": missing}, expect=(200,))
            note += f" Labelled {', '.join(missing)}."
        self._comment_once(repo, number, self._escalation_marker(alert), tk.render_update_markdown(alert, note))
        return remote_id

    # -- plumbing -----------------------------------------------------------------------
    def _parse(self, remote_id: str) -> tuple[str, str]:
        match = _REMOTE_ID.match(remote_id)
        if match:
            return match["repo"], match["number"]
        if remote_id.isdigit():  # a bare number: the configured repository
            return self.options.repository, remote_id
        raise tk.HttpError(f"{self._where()}: {remote_id!r} is not a GitHub issue id (owner/repo#number)", permanent=True)

    def _json_list(self, response: "requests.Response") -> list[dict[str, Any]]:
        try:
            data = response.json()
        except ValueError:
            raise tk.HttpError(f"{self._where()}: GitHub answered with a body that is not JSON: {tk.body_excerpt(response)}") from None
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    def _where(self) -> str:
        return f"github destination {self.name!r} ({self.options.repository})"

    def _http(self) -> tk.HttpApi:
        if self._api is None:
            secret = self.options.token.get_secret_value()
            self._api = tk.HttpApi(
                self._where(),
                self.options.base_url or "https://api.github.com",
                timeout=self.options.timeout,
                headers={"Authorization": f"Bearer {secret}", "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
                describe=tk.json_errors,
                hints=HINTS,
                classify=classify,
                secrets=[secret],
            )
        return self._api


DESTINATION = GitHubDestination
