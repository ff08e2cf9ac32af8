"""A fake Zendesk Support API (v2) on 127.0.0.1, for tests and `earful demo`.

What it gets right, because earful's `zendesk` destination depends on it:

* auth is Basic `email/token:API_TOKEN` (or an OAuth Bearer token); anything
  else is 401 `{"error": "Couldn't authenticate you"}`;
* tickets are created with `POST /api/v2/tickets.json` `{"ticket": {...}}`
  and answered 201 with `{"ticket", "audit"}` and a `Location` header, in
  the shape of a real recording (`via`, `tags`, `custom_status_id`, ...).
  A ticket needs a first comment (`comment.body` or `comment.html_body`),
  else 422 RecordInvalid "Description: cannot be blank"; priority, status
  and type are checked against Zendesk's values; keys Zendesk does not know
  are ignored with an `x-zendesk-api-warn` header, as Zendesk does;
* tags are lower case and split on spaces; `additional_tags` and
  `remove_tags` change them on update; a closed ticket refuses updates (422
  "Status: closed prevents ticket update");
* `GET /api/v2/tickets.json?external_id=X` lists exactly the tickets with
  that external id (a database query: no lag), while
  `GET /api/v2/search.json?query=...` (`type:ticket`, `external_id:`,
  `tags:`, `status:`) hides tickets younger than `index_delay`, like the
  real, asynchronous search index;
* every answer carries the `rate-limit` / `x-rate-limit` headers, and
  `rate_limit_next` scripts 429s with `Retry-After`.

`demo_helpdesk()` gives `earful demo` a fake help desk and the cron.yaml
mapping that points the `zendesk` destination at it. Standard library only.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import threading
import time
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any

from .server import FakeServer, Request, Response

DEFAULT_EMAIL = "earful-bot@acme.example"
DEFAULT_API_TOKEN = "zd-earful-fake-api-token-0123456789"
AGENT_ID = 6130907993114
ORGANIZATION_ID = 6130869157658
BRAND_ID = 6130830354842
FORM_ID = 6130830344474
CUSTOM_STATUS = {"new": 6130830355738, "open": 6130830355739, "pending": 6130830355740, "hold": 6130830355741,
                 "solved": 6130830355742, "closed": 6130830355743}
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TYPES = ("problem", "incident", "question", "task")
WRITABLE = {"subject", "comment", "external_id", "priority", "status", "type", "tags", "additional_tags", "remove_tags", "requester",
            "requester_id", "group_id", "assignee_id", "custom_fields", "due_at", "brand_id", "ticket_form_id", "collaborator_ids",
            "recipient", "raw_subject"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("p", "br", "li", "blockquote", "div"):
            self.parts.append("\n")


def plain_from_html(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    return re.sub(r"\n{2,}", "\n", "".join(parser.parts)).strip()


def normalise_tags(tags: Any) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split()
    result: list[str] = []
    for tag in tags or []:
        for piece in str(tag).lower().split():
            if piece not in result:
                result.append(piece)
    return result


class ZendeskServer(FakeServer):
    """One Zendesk account (`subdomain`) with one agent (the API user)."""

    def __init__(self, email: str = DEFAULT_EMAIL, api_token: str = DEFAULT_API_TOKEN, *, oauth_token: str | None = None,
                 subdomain: str = "acme", index_delay: float = 0.0) -> None:
        super().__init__()
        self.email = email
        self.api_token = api_token
        self.oauth_token = oauth_token
        self.subdomain = subdomain
        self.index_delay = index_delay
        self._data = threading.Lock()
        self._tickets: dict[int, dict[str, Any]] = {}
        self._comments: dict[int, list[dict[str, Any]]] = {}
        self._created: dict[int, float] = {}
        self._users: dict[str, int] = {email: AGENT_ID}
        self._next_ticket = 4013
        self._next_id = 6164039218714
        self._remaining = 700
        self.demo_env: dict[str, str] = {}

    # -- scripting and inspection ------------------------------------------------------
    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        response = Response.json({"error": "TooManyRequests", "description": "You have exceeded the rate limit for this account."}, 429,
                                 {"Retry-After": str(retry_after), "rate-limit": "700", "rate-limit-remaining": "0",
                                  "x-rate-limit": "700", "x-rate-limit-remaining": "0"})
        self.fail_next(*[response] * n)

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket as the API shows it, plus its `comments`, in creation order."""
        with self._data:
            return [{**copy.deepcopy(t), "comments": copy.deepcopy(self._comments[i])} for i, t in self._tickets.items()]

    def ticket(self, ticket_id: int | str) -> dict[str, Any]:
        with self._data:
            tid = int(ticket_id)
            return {**copy.deepcopy(self._tickets[tid]), "comments": copy.deepcopy(self._comments[tid])}

    def set_status(self, ticket_id: int | str, status: str) -> None:
        with self._data:
            self._tickets[int(ticket_id)]["status"] = status

    # -- HTTP ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if not self._authenticated(request):
            return self._json({"error": "Couldn't authenticate you"}, 401)
        path = request.path.removesuffix(".json").rstrip("/")
        with self._data:
            if path == "/api/v2/tickets":
                if request.method == "POST":
                    return self._create(request)
                if request.method == "GET":
                    return self._list(request)
            if path == "/api/v2/search" and request.method == "GET":
                return self._search(request)
            if path == "/api/v2/users/me" and request.method == "GET":
                return self._json({"user": self._me()})
            match = re.fullmatch(r"/api/v2/tickets/(\d+)(/comments)?", path)
            if match:
                ticket = self._tickets.get(int(match[1]))
                if ticket is None:
                    return self._json({"error": "RecordNotFound", "description": "Not found"}, 404)
                if match[2] and request.method == "GET":
                    return self._json({"comments": copy.deepcopy(self._comments[ticket["id"]]), "next_page": None,
                                       "previous_page": None, "count": len(self._comments[ticket["id"]])})
                if not match[2] and request.method == "GET":
                    return self._json({"ticket": copy.deepcopy(ticket)})
                if not match[2] and request.method == "PUT":
                    return self._update(ticket, request)
            return self._json({"error": "InvalidEndpoint", "description": "Not found"}, 404)

    def _me(self) -> dict[str, Any]:
        """GET /api/v2/users/me: the agent whose credentials these are."""
        return {"id": AGENT_ID, "url": f"{self.url}/api/v2/users/{AGENT_ID}.json", "name": "earful bot", "email": self.email,
                "created_at": "2024-01-08T09:00:00Z", "updated_at": "2024-01-08T09:00:00Z", "time_zone": "UTC",
                "iana_time_zone": "Etc/UTC", "locale_id": 1, "locale": "en-US", "organization_id": None, "role": "agent",
                "verified": True, "active": True, "suspended": False, "tags": [], "role_type": None,
                "custom_role_id": None, "moderator": False, "ticket_restriction": None, "only_private_comments": False,
                "restricted_agent": False, "user_fields": {}}

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == f"{self.email}/token" and secret == self.api_token
        if header.startswith("Bearer ") and self.oauth_token:
            return header[7:] == self.oauth_token
        return False

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        self._remaining = max(0, self._remaining - 1)
        return Response.json(data, status, {"rate-limit": "700", "rate-limit-remaining": str(self._remaining), "rate-limit-reset": "60",
                                            "x-rate-limit": "700", "x-rate-limit-remaining": str(self._remaining),
                                            "x-zendesk-api-version": "v2", "cache-control": "max-age=0, private, must-revalidate",
                                            **(headers or {})})

    def _invalid(self, field: str, description: str, error: str = "InvalidValue") -> Response:
        return self._json({"error": "RecordInvalid", "description": "Record validation errors",
                           "details": {field: [{"description": description, "error": error}]}}, 422)

    def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(request.body or b"null")
        except json.JSONDecodeError:
            return None
        ticket = body.get("ticket") if isinstance(body, dict) else None
        return ticket if isinstance(ticket, dict) else None

    def _audit(self, ticket_id: int, events: list[dict[str, Any]]) -> dict[str, Any]:
        self._next_id += 1
        return {"id": self._next_id, "ticket_id": ticket_id, "created_at": _now(), "author_id": AGENT_ID,
                "metadata": {"system": {"client": "earful", "ip_address": "127.0.0.1"}, "custom": {}},
                "events": events, "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}}

    def _comment(self, ticket_id: int, data: dict[str, Any], audit_id: int) -> dict[str, Any] | Response:
        if not isinstance(data, dict) or not (data.get("body") or data.get("html_body")):
            return self._invalid("description", "Description: cannot be blank", "BlankValue")
        if data.get("html_body"):
            markup = str(data["html_body"])
            plain = plain_from_html(markup)
        else:
            plain = str(data["body"])
            markup = "<div class=\"zd-comment\" dir=\"auto\">" + "".join(
                f"<p dir=\"auto\">{html.escape(line)}</p>" for line in plain.split("\n") if line) + "</div>"
        self._next_id += 1
        return {"id": self._next_id, "type": "Comment", "author_id": AGENT_ID, "body": plain, "html_body": markup, "plain_body": plain,
                "public": bool(data.get("public", True)), "attachments": [], "audit_id": audit_id,
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}, "created_at": _now(), "metadata": {}}

    def _check(self, data: dict[str, Any]) -> Response | None:
        if "priority" in data and data["priority"] not in (*PRIORITIES, None):
            return self._invalid("priority", f"Priority: {data['priority']} is not valid")
        if "status" in data and data["status"] not in STATUSES:
            return self._invalid("status", f"Status: {data['status']} is not valid")
        if "type" in data and data["type"] not in (*TYPES, None):
            return self._invalid("type", f"Type: {data['type']} is not valid")
        for key in ("tags", "additional_tags", "remove_tags"):
            if key in data and not isinstance(data[key], (list, str)):
                return self._invalid(key, f"{key} must be a list of strings")
        if "external_id" in data and data["external_id"] is not None and len(str(data["external_id"])) > 255:
            return self._invalid("external_id", "External ID is too long (maximum is 255 characters)")
        return None

    def _warn(self, data: dict[str, Any]) -> dict[str, str]:
        unknown = sorted(set(data) - WRITABLE)
        if not unknown:
            return {}
        keys = ", ".join(f'"ticket.{k}"' for k in unknown)
        return {"x-zendesk-api-warn": f"{{:allowed_parameters=>{{:controller=>\"tickets\", :unpermitted_keys=>[{keys}]}}}}"}

    def _create(self, request: Request) -> Response:
        data = self._body(request)
        if data is None:
            return self._json({"error": "InvalidParameter", "description": "The ticket parameter is missing or invalid"}, 400)
        problem = self._check(data)
        if problem:
            return problem
        self._next_ticket += 1
        ticket_id = self._next_ticket
        audit_id = self._next_id + 1
        comment = self._comment(ticket_id, data.get("comment") or {}, audit_id)
        if isinstance(comment, Response):
            self._next_ticket -= 1
            return comment
        requester_id = AGENT_ID
        requester = data.get("requester")
        if isinstance(requester, dict) and requester.get("email"):
            requester_id = self._users.setdefault(requester["email"], 7589504354813 + len(self._users))
        now = _now()
        status = data.get("status") or "new"
        subject = str(data.get("subject") or comment["body"][:80])
        ticket = {
            "url": f"{self.url}/api/v2/tickets/{ticket_id}.json", "id": ticket_id, "external_id": data.get("external_id"),
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}, "created_at": now, "updated_at": now,
            "type": data.get("type"), "subject": subject, "raw_subject": subject, "description": comment["body"],
            "priority": data.get("priority"), "status": status, "recipient": None, "requester_id": requester_id,
            "submitter_id": AGENT_ID, "assignee_id": data.get("assignee_id"), "organization_id": ORGANIZATION_ID,
            "group_id": data.get("group_id"), "collaborator_ids": [], "follower_ids": [], "email_cc_ids": [], "forum_topic_id": None,
            "problem_id": None, "has_incidents": False, "is_public": comment["public"], "due_at": None,
            "tags": normalise_tags(data.get("tags")), "custom_fields": [], "satisfaction_rating": None, "sharing_agreement_ids": [],
            "custom_status_id": CUSTOM_STATUS[status], "fields": [], "followup_ids": [], "ticket_form_id": FORM_ID, "brand_id": BRAND_ID,
            "allow_channelback": False, "allow_attachments": True, "from_messaging_channel": False,
        }
        self._tickets[ticket_id] = ticket
        self._comments[ticket_id] = [comment]
        self._created[ticket_id] = time.time()
        events = [comment] + [{"id": self._next_id + i, "type": "Create", "value": ticket[f], "field_name": f}
                              for i, f in enumerate(("subject", "requester_id", "priority", "type", "status"), 1)]
        self._next_id += 6
        return self._json({"ticket": copy.deepcopy(ticket), "audit": self._audit(ticket_id, events)}, 201,
                          {"location": f"{self.url}/api/v2/tickets/{ticket_id}.json", **self._warn(data)})

    def _update(self, ticket: dict[str, Any], request: Request) -> Response:
        data = self._body(request)
        if data is None:
            return self._json({"error": "InvalidParameter", "description": "The ticket parameter is missing or invalid"}, 400)
        if ticket["status"] == "closed":
            return self._invalid("status", "Status: closed prevents ticket update", "StatusClosed")
        problem = self._check(data)
        if problem:
            return problem
        events: list[dict[str, Any]] = []
        if "comment" in data:
            comment = self._comment(ticket["id"], data["comment"], self._next_id + 1)
            if isinstance(comment, Response):
                return comment
            self._comments[ticket["id"]].append(comment)
            events.append(comment)
        for name in ("priority", "status", "type", "subject", "group_id", "assignee_id", "external_id"):
            if name in data and data[name] != ticket.get(name):
                events.append({"id": self._next_id + len(events) + 1, "type": "Change", "value": data[name],
                               "previous_value": ticket.get(name), "field_name": name})
                ticket[name] = data[name]
        tags = normalise_tags(data["tags"]) if "tags" in data else list(ticket["tags"])
        tags += [t for t in normalise_tags(data.get("additional_tags")) if t not in tags]
        tags = [t for t in tags if t not in normalise_tags(data.get("remove_tags"))]
        ticket["tags"] = tags
        ticket["custom_status_id"] = CUSTOM_STATUS[ticket["status"]]
        ticket["updated_at"] = _now()
        self._next_id += len(events) + 1
        return self._json({"ticket": copy.deepcopy(ticket), "audit": self._audit(ticket["id"], events)}, 200, self._warn(data))

    def _list(self, request: Request) -> Response:
        external_id = request.arg("external_id")
        tickets = [t for t in self._tickets.values() if external_id is None or t["external_id"] == external_id]
        try:
            per_page = max(1, min(int(request.arg("per_page", "100") or 100), 100))
            page = max(1, int(request.arg("page", "1") or 1))
        except ValueError:
            return self._json({"error": "InvalidPaginationParameter", "description": "page and per_page must be numbers"}, 400)
        chunk = tickets[(page - 1) * per_page : page * per_page]
        more = len(tickets) > page * per_page
        base = f"{self.url}/api/v2/tickets.json?per_page={per_page}" + (f"&external_id={external_id}" if external_id else "")
        return self._json({"tickets": copy.deepcopy(chunk), "next_page": f"{base}&page={page + 1}" if more else None,
                           "previous_page": f"{base}&page={page - 1}" if page > 1 else None, "count": len(tickets)})

    def _search(self, request: Request) -> Response:
        query = request.arg("query") or ""
        terms = re.findall(r'(\w+):("([^"]*)"|\S+)', query)
        if not terms:
            return self._json({"error": "InvalidSearch", "description": "query is required"}, 400)
        cutoff = time.time() - self.index_delay
        results = []
        for tid, ticket in self._tickets.items():
            if self._created[tid] > cutoff:
                continue
            ok = True
            for field, raw, quoted in terms:
                value = quoted if raw.startswith('"') else raw
                if field == "type":
                    ok = ok and value == "ticket"
                elif field == "external_id":
                    ok = ok and ticket["external_id"] == value
                elif field in ("tags", "tag"):
                    ok = ok and value.lower() in ticket["tags"]
                elif field == "status":
                    ok = ok and ticket["status"] == value
                else:
                    ok = False
            if ok:
                results.append({**copy.deepcopy(ticket), "result_type": "ticket"})
        return self._json({"results": results, "facets": None, "next_page": None, "previous_page": None, "count": len(results)})


# -- earful demo --------------------------------------------------------------------------

DEMO_TOKEN_ENV = "EARFUL_DEMO_ZENDESK_TOKEN"
DEMO_ENV: dict[str, str] = {DEMO_TOKEN_ENV: DEFAULT_API_TOKEN}


def demo_helpdesk() -> tuple[FakeServer, dict]:
    """An unstarted fake help desk and the cron.yaml destination pointing at it.

    The mapping's base_url holds the placeholder "{url}" (replace it with the
    started server's URL) and its token is `${EARFUL_DEMO_ZENDESK_TOKEN}`:
    put `DEMO_ENV` (also on the server as `server.demo_env`) in the
    environment before loading the config. The demo can print what landed
    with `server.tickets()`.
    """
    server = ZendeskServer()
    server.demo_env = dict(DEMO_ENV)
    destination = {
        "type": "zendesk",
        "base_url": "{url}",
        "email": DEFAULT_EMAIL,
        "api_token": "${" + DEMO_TOKEN_ENV + "}",
        "tags": ["earful-demo"],
        "solve_on_answer": True,
    }
    return server, destination
