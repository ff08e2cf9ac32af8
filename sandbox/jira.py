"""A fake Jira Cloud (REST API v3) on 127.0.0.1, for tests and demos.

It answers the way Jira Cloud does where earful's `jira` destination could
get it wrong, because that is what a fake is for:

* auth is Basic `email:api_token` or `Bearer <token>`; anything else is a
  401 with Jira's JSON (`errorMessages`) and `X-Seraph-LoginReason`;
* `POST /rest/api/3/issue` validates like Jira: a valid project and issue
  type, a one-line summary under 255 characters, labels without spaces, a
  known priority name, only fields on the create screen (else the real
  message "Field 'x' cannot be set. It is not on the appropriate screen, or
  unknown."), and the description must be an Atlassian Document (type doc,
  version 1, no empty text nodes, list items only in lists, ...). Errors are
  400 `{"errorMessages": [], "errors": {field: message}}`; success is 201
  `{"id", "key", "self"}`;
* `GET/PUT /rest/api/3/issue/{key}` (204 on edit; `fields` and `update`
  with label add/remove/set), entity properties (`PUT .../properties/{k}`:
  201 created, 200 replaced), comments (paged `startAt/maxResults/total`),
  and a small workflow (To Do -> In Progress -> Done, Done -> Reopen) behind
  `GET/POST .../transitions`;
* search is `GET/POST /rest/api/3/search/jql` only: `nextPageToken` paging,
  no `total`, only `id` unless `fields` are asked for, issue `properties`
  on request, unbounded JQL refused. The JQL understood is what earful
  needs: `project`, `labels`, `status`, `priority`, `key` with `=`, `!=`,
  `in (...)`, joined by AND, plus ORDER BY. `/rest/api/{2,3}/search`
  answers 410 Gone with the migration notice, as on Cloud since 2025;
* `index_delay` hides issues younger than that many seconds from search,
  like Jira's asynchronous index.

Standard library only.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .server import FakeServer, Request, Response

DEFAULT_EMAIL = "earful-bot@acme.example"
DEFAULT_API_TOKEN = "ATATT3xFfGF0-earful-fake-jira-token"
ACCOUNT_ID = "712020:5f2c7a6e-earful-bot"

PRIORITIES = [("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("5", "Lowest")]
STATUSES = {
    "To Do": ("10000", {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"}),
    "In Progress": ("3", {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"}),
    "Done": ("10001", {"id": 3, "key": "done", "colorName": "green", "name": "Done"}),
}
WORKFLOW = {
    "To Do": [("11", "Start progress", "In Progress"), ("31", "Done", "Done")],
    "In Progress": [("21", "Stop progress", "To Do"), ("31", "Done", "Done")],
    "Done": [("41", "Reopen", "To Do")],
}
STANDARD_FIELDS = {"project", "issuetype", "summary", "description", "labels", "priority", "assignee", "reporter", "components",
                   "duedate", "environment", "fixVersions", "versions", "parent"}

REMOVED_SEARCH = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
                  "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")

BLOCK_NODES = {"paragraph", "bulletList", "orderedList", "blockquote", "heading", "rule", "codeBlock", "panel", "table", "mediaSingle"}
INLINE_NODES = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status"}
MARKS = {"strong", "em", "link", "code", "strike", "underline", "textColor", "subsup", "backgroundColor"}


def _now() -> str:
    """Jira's timestamp format: 2026-11-20T10:00:00.000+0000."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def adf_problems(doc: Any) -> list[str]:
    """Why Jira would reject `doc` as an Atlassian Document ([] when valid)."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1 or not isinstance(doc.get("content"), list):
        return ["not a document: expected {type: doc, version: 1, content: [...]}"]
    problems: list[str] = []

    def walk(node: Any, parent: str, path: str) -> None:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            problems.append(f"{path}: not a node")
            return
        kind = node["type"]
        if kind == "text":
            if parent in ("doc", "bulletList", "orderedList", "listItem", "blockquote"):
                problems.append(f"{path}: text directly inside {parent}")
            if not isinstance(node.get("text"), str) or not node["text"]:
                problems.append(f"{path}: text nodes must have non-empty text")
            for mark in node.get("marks") or []:
                if not isinstance(mark, dict) or mark.get("type") not in MARKS:
                    problems.append(f"{path}: unknown mark {mark!r}")
                elif mark["type"] == "link" and not str((mark.get("attrs") or {}).get("href") or ""):
                    problems.append(f"{path}: link mark without href")
            return
        if kind == "listItem" and parent not in ("bulletList", "orderedList"):
            problems.append(f"{path}: listItem outside a list")
        if kind in ("bulletList", "orderedList"):
            for i, child in enumerate(node.get("content") or []):
                if not isinstance(child, dict) or child.get("type") != "listItem":
                    problems.append(f"{path}/content/{i}: lists may only contain listItem")
        if kind in INLINE_NODES and parent in ("doc", "blockquote", "listItem"):
            problems.append(f"{path}: inline node {kind} inside {parent}")
        if kind == "paragraph":
            for i, child in enumerate(node.get("content") or []):
                if isinstance(child, dict) and child.get("type") not in INLINE_NODES:
                    problems.append(f"{path}/content/{i}: {child.get('type')} inside a paragraph")
        if kind not in BLOCK_NODES | INLINE_NODES | {"listItem", "tableRow", "tableCell", "tableHeader", "media"}:
            problems.append(f"{path}: unknown node type {kind}")
        for i, child in enumerate(node.get("content") or []):
            walk(child, kind, f"{path}/content/{i}")

    for index, node in enumerate(doc["content"]):
        walk(node, "doc", f"/content/{index}")
    return problems


def adf_plain(node: Any) -> str:
    """The text of an ADF node (for assertions and for `comment_texts`)."""
    if isinstance(node, dict):
        own = node.get("text", "") if node.get("type") == "text" else ""
        inner = "".join(adf_plain(c) for c in node.get("content") or [])
        return own + inner + ("\n" if node.get("type") == "paragraph" else "")
    if isinstance(node, list):
        return "".join(adf_plain(c) for c in node)
    return ""


class JqlError(ValueError):
    pass


_ORDER = re.compile(r"\s+ORDER\s+BY\s+(?P<field>\w+)(?:\s+(?P<dir>ASC|DESC))?\s*$", re.IGNORECASE)
_CLAUSE = re.compile(r'^\s*(?P<field>\w+)\s*(?P<op>!=|=|\bnot\s+in\b|\bin\b)\s*(?P<value>.+?)\s*$', re.IGNORECASE)
_VALUE = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s,()"]+)')


def _values(text: str) -> list[str]:
    return [(quoted if quoted or bare == "" else bare).replace('\\"', '"') for quoted, bare in _VALUE.findall(text)]


def parse_jql(jql: str) -> tuple[list[tuple[str, str, list[str]]], tuple[str, bool] | None]:
    """[(field, op, values)], (order field, descending) or raise JqlError."""
    order = None
    match = _ORDER.search(jql)
    if match:
        order = (match["field"].lower(), (match["dir"] or "ASC").upper() == "DESC")
        jql = jql[: match.start()]
    clauses = []
    for part in re.split(r"\s+AND\s+", jql.strip(), flags=re.IGNORECASE) if jql.strip() else []:
        found = _CLAUSE.match(part)
        if not found:
            raise JqlError(f"Error in the JQL Query: Expecting operator but got '{part.strip()}'.")
        op = re.sub(r"\s+", " ", found["op"].lower())
        values = _values(found["value"])
        if not values:
            raise JqlError(f"Error in the JQL Query: Expecting either a value, list or function but got '{found['value']}'.")
        clauses.append((found["field"].lower(), op, values))
    return clauses, order


class JiraServer(FakeServer):
    """One Jira site with a few projects.

    `projects` maps keys to names; `extra_fields` are the custom field ids
    on the create screen; `index_delay` (seconds) hides new issues from search.
    """

    def __init__(
        self,
        email: str = DEFAULT_EMAIL,
        api_token: str = DEFAULT_API_TOKEN,
        *,
        bearer_token: str | None = None,
        projects: dict[str, str] | None = None,
        issue_types: tuple[str, ...] = ("Task", "Bug", "Story"),
        extra_fields: tuple[str, ...] = ("customfield_10050", "customfield_10051"),
        index_delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.email = email
        self.api_token = api_token
        self.bearer_token = bearer_token
        self.projects = {k: {"id": str(10000 + i), "key": k, "name": n} for i, (k, n) in enumerate((projects or {"SUP": "Support"}).items())}
        self.issue_types = {name: str(10001 + i) for i, name in enumerate(issue_types)}
        self.extra_fields = set(extra_fields)
        self.index_delay = index_delay
        self._data = threading.Lock()
        self._issues: dict[str, dict[str, Any]] = {}  # key -> issue
        self._counters: dict[str, int] = {}
        self._next_id = 10000
        self._next_comment = 10000

    # -- scripting and inspection ------------------------------------------------------
    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        body = Response.json({"errorMessages": ["Rate limit exceeded."], "errors": {}}, 429,
                             {"Retry-After": str(retry_after), "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                              "X-RateLimit-NearLimit": "true", "RateLimit-Reason": "jira-burst-based"})
        self.fail_next(*[body] * n)

    def issues(self) -> list[dict[str, Any]]:
        """Every issue as stored (fields, `properties`, `comments`), in creation order."""
        with self._data:
            return [copy.deepcopy(i) for i in self._issues.values()]

    def issue(self, key: str) -> dict[str, Any]:
        with self._data:
            return copy.deepcopy(self._issues[key])

    def comment_texts(self, key: str) -> list[str]:
        with self._data:
            return [adf_plain(c["body"]).strip() for c in self._issues[key]["comments"]]

    def set_status(self, key: str, status: str) -> None:
        with self._data:
            self._set_status(self._issues[key], status)

    # -- HTTP ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if not self._authenticated(request):
            return Response.json(
                {"errorMessages": ["Client must be authenticated to access this resource."], "errors": {}}, 401,
                {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED", "WWW-Authenticate": 'OAuth realm="https%3A%2F%2Facme.atlassian.net"'},
            )
        path = request.path.rstrip("/")
        if path in ("/rest/api/3/search", "/rest/api/2/search"):
            return self._json({"errorMessages": [REMOVED_SEARCH], "errors": {}}, 410)
        with self._data:
            if path == "/rest/api/3/issue" and request.method == "POST":
                return self._create(request)
            if path == "/rest/api/3/search/jql" and request.method in ("GET", "POST"):
                return self._search(request)
            if path == "/rest/api/3/priority" and request.method == "GET":
                return self._json([self._priority(name) for _, name in PRIORITIES])
            if path == "/rest/api/3/myself" and request.method == "GET":
                return self._json(self._myself())
            project = re.fullmatch(r"/rest/api/3/project/([^/]+)", path)
            if project and request.method == "GET":
                return self._project(project[1])
            match = re.fullmatch(r"/rest/api/3/issue/([^/]+)(?:/(comment|transitions|properties)(?:/([^/]+))?)?", path)
            if not match:
                return self._json({"errorMessages": ["null for uri: " + request.path], "errors": {}}, 404)
            issue = self._find(match[1])
            if issue is None:
                return self._json({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}, 404)
            sub, name = match[2], match[3]
            if sub is None:
                return {"GET": self._get, "PUT": self._edit}.get(request.method, self._not_allowed)(issue, request)
            if sub == "comment" and name is None:
                return {"GET": self._comments, "POST": self._add_comment}.get(request.method, self._not_allowed)(issue, request)
            if sub == "transitions" and name is None:
                return {"GET": self._transitions, "POST": self._transition}.get(request.method, self._not_allowed)(issue, request)
            if sub == "properties":
                return self._property(issue, request, name)
            return self._json({"errorMessages": ["null for uri: " + request.path], "errors": {}}, 404)

    def _myself(self) -> dict[str, Any]:
        """GET /rest/api/3/myself: the account the credentials belong to."""
        return {"self": f"{self.url}/rest/api/3/user?accountId={ACCOUNT_ID}", "accountId": ACCOUNT_ID,
                "accountType": "atlassian", "emailAddress": self.email, "displayName": "earful bot", "active": True,
                "timeZone": "Etc/UTC", "locale": "en_US", "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []}, "expand": "groups,applicationRoles"}

    def _project(self, ref: str) -> Response:
        """GET /rest/api/3/project/{key or id}."""
        found = next((p for p in self.projects.values() if ref in (p["key"], p["id"])), None)
        if found is None:
            return self._errors(messages=[f"No project could be found with key '{ref}'."], status=404)
        return self._json({"expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                           "self": f"{self.url}/rest/api/3/project/{found['id']}", **found,
                           "projectTypeKey": "service_desk", "simplified": False, "style": "classic", "isPrivate": False,
                           "issueTypes": [{"id": i, "name": n, "subtask": False} for n, i in self.issue_types.items()]})

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == self.email and secret == self.api_token
        if header.startswith("Bearer ") and self.bearer_token:
            return header[7:] == self.bearer_token
        return False

    def _json(self, data: Any, status: int = 200) -> Response:
        return Response.json(data, status, {"X-AREQUESTID": f"{int(time.time() * 1000) % 10**8}", "X-Seraph-LoginReason": "OK",
                                            "ATL-TraceId": f"{id(data):x}"})

    def _errors(self, errors: dict[str, str] | None = None, messages: list[str] | None = None, status: int = 400) -> Response:
        return self._json({"errorMessages": messages or [], "errors": errors or {}}, status)

    def _not_allowed(self, issue: dict[str, Any], request: Request) -> Response:
        return Response(405, b"", {"Allow": "GET, POST, PUT"})

    def _body(self, request: Request) -> Any:
        try:
            return json.loads(request.body or b"null")
        except json.JSONDecodeError as exc:
            raise ValueError(f"Unexpected character: {exc.msg}") from None

    # -- issues ----------------------------------------------------------------------------
    def _find(self, ref: str) -> dict[str, Any] | None:
        return self._issues.get(ref.upper()) or next((i for i in self._issues.values() if i["id"] == ref), None)

    def _priority(self, name: str) -> dict[str, Any]:
        pid = dict((n, i) for i, n in PRIORITIES)[name]
        return {"self": f"{self.url}/rest/api/3/priority/{pid}", "iconUrl": f"{self.url}/images/icons/priorities/{name.lower()}.svg",
                "name": name, "id": pid}

    def _set_status(self, issue: dict[str, Any], name: str) -> None:
        sid, category = STATUSES[name]
        issue["fields"]["status"] = {"self": f"{self.url}/rest/api/3/status/{sid}", "description": "", "name": name, "id": sid,
                                     "statusCategory": copy.deepcopy(category)}
        issue["fields"]["resolution"] = {"name": "Done", "id": "10000"} if name == "Done" else None
        issue["fields"]["resolutiondate"] = _now() if name == "Done" else None
        issue["fields"]["updated"] = _now()

    def _check_fields(self, fields: dict[str, Any], errors: dict[str, str], *, creating: bool) -> None:
        for name in fields:
            if name not in STANDARD_FIELDS and name not in self.extra_fields:
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        if "summary" in fields or creating:
            summary = fields.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors["summary"] = "You must specify a summary of the issue."
            elif len(summary) > 255:
                errors["summary"] = "Summary must be less than 255 characters."
            elif "\n" in summary or "\r" in summary:
                errors["summary"] = "The summary is invalid because it contains newline characters."
        if "description" in fields and fields["description"] is not None and adf_problems(fields["description"]):
            errors["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
        if "labels" in fields:
            self._check_labels(fields["labels"], errors)
        if "priority" in fields:
            priority = fields["priority"] or {}
            names = [n for _, n in PRIORITIES]
            ids = [i for i, _ in PRIORITIES]
            if not (isinstance(priority, dict) and (priority.get("name") in names or priority.get("id") in ids)):
                errors["priority"] = f"Specify a valid priority (id or name); got {priority!r}"

    @staticmethod
    def _check_labels(labels: Any, errors: dict[str, str]) -> None:
        if not isinstance(labels, list) or not all(isinstance(l, str) for l in labels):
            errors["labels"] = "data was not an array"
            return
        for label in labels:
            if not label or re.search(r"\s", label):
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
            elif len(label) > 255:
                errors["labels"] = f"The label '{label[:20]}...' exceeds the 255 character limit."

    def _create(self, request: Request) -> Response:
        try:
            body = self._body(request)
        except ValueError as exc:
            return self._errors(messages=[str(exc)])
        fields = (body or {}).get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._errors(messages=["Can not deserialize instance of fields"])
        errors: dict[str, str] = {}
        project_ref = fields.get("project") or {}
        project = next((p for p in self.projects.values() if project_ref.get("key") == p["key"] or project_ref.get("id") == p["id"]),
                       None) if isinstance(project_ref, dict) else None
        if project is None:
            errors["project"] = "valid project is required" if project_ref else "Specify a valid project ID or key"
        issuetype = fields.get("issuetype") or {}
        if not isinstance(issuetype, dict) or (issuetype.get("name") not in self.issue_types and issuetype.get("id") not in self.issue_types.values()):
            errors["issuetype"] = "Specify a valid issue type"
        self._check_fields(fields, errors, creating=True)
        if errors:
            return self._errors(errors)
        assert project is not None
        self._next_id += 1
        self._counters[project["key"]] = self._counters.get(project["key"], 0) + 1
        key = f"{project['key']}-{self._counters[project['key']]}"
        type_name = issuetype.get("name") or next(n for n, i in self.issue_types.items() if i == issuetype.get("id"))
        priority = fields.get("priority") or {"name": "Medium"}
        priority_name = priority.get("name") or dict(PRIORITIES)[priority["id"]]
        now = _now()
        stored = {
            "id": str(self._next_id),
            "key": key,
            "self": f"{self.url}/rest/api/3/issue/{self._next_id}",
            "created_epoch": time.time(),
            "fields": {
                **{k: copy.deepcopy(v) for k, v in fields.items() if k not in ("project", "issuetype", "priority")},
                "project": {"self": f"{self.url}/rest/api/3/project/{project['id']}", **project},
                "issuetype": {"id": self.issue_types[type_name], "name": type_name, "subtask": False},
                "priority": self._priority(priority_name),
                "labels": list(fields.get("labels") or []),
                "created": now,
                "updated": now,
                "creator": {"accountId": ACCOUNT_ID, "displayName": "earful bot"},
                "reporter": {"accountId": ACCOUNT_ID, "displayName": "earful bot"},
            },
            "properties": {},
            "comments": [],
        }
        self._set_status(stored, "To Do")
        self._issues[key] = stored
        return self._json({"id": stored["id"], "key": key, "self": stored["self"]}, 201)

    def _view(self, issue: dict[str, Any], fields: list[str] | None, properties: list[str] | None = None) -> dict[str, Any]:
        wanted = issue["fields"] if fields is None or "*all" in fields or "*navigable" in fields else {
            k: v for k, v in issue["fields"].items() if k in fields}
        view: dict[str, Any] = {"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
                                "id": issue["id"], "self": issue["self"], "key": issue["key"], "fields": copy.deepcopy(wanted)}
        if properties:
            view["properties"] = {p: copy.deepcopy(issue["properties"][p]) for p in properties if p in issue["properties"]}
        return view

    @staticmethod
    def _list_arg(value: Any) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, list):
            return [str(v).strip() for v in value]
        return [v.strip() for v in str(value).split(",") if v.strip()]

    def _get(self, issue: dict[str, Any], request: Request) -> Response:
        return self._json(self._view(issue, self._list_arg(request.arg("fields")), self._list_arg(request.arg("properties"))))

    def _edit(self, issue: dict[str, Any], request: Request) -> Response:
        try:
            body = self._body(request) or {}
        except ValueError as exc:
            return self._errors(messages=[str(exc)])
        fields = body.get("fields") or {}
        update = body.get("update") or {}
        errors: dict[str, str] = {}
        for name in set(fields) & set(update):
            errors[name] = f"Field '{name}' cannot be set in both 'fields' and 'update'"
        self._check_fields(fields, errors, creating=False)
        labels = list(issue["fields"].get("labels") or [])
        for operation in update.get("labels") or []:
            if "add" in operation:
                self._check_labels([operation["add"]], errors)
                if operation["add"] not in labels:
                    labels.append(operation["add"])
            elif "remove" in operation:
                labels = [l for l in labels if l != operation["remove"]]
            elif "set" in operation:
                self._check_labels(operation["set"], errors)
                labels = list(operation["set"])
        for name in set(update) - {"labels"}:
            errors.setdefault(name, f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown.")
        if errors:
            return self._errors(errors)
        for name, value in fields.items():
            if name == "priority":
                issue["fields"]["priority"] = self._priority(value.get("name") or dict(PRIORITIES)[value["id"]])
            else:
                issue["fields"][name] = copy.deepcopy(value)
        if "labels" in update:
            issue["fields"]["labels"] = labels
        issue["fields"]["updated"] = _now()
        return Response(204, b"")

    def _property(self, issue: dict[str, Any], request: Request, name: str | None) -> Response:
        if name is None:
            if request.method != "GET":
                return Response(405, b"")
            keys = [{"self": f"{issue['self']}/properties/{k}", "key": k} for k in issue["properties"]]
            return self._json({"keys": keys})
        if request.method == "GET":
            if name not in issue["properties"]:
                return self._errors(messages=[f"The property with key '{name}' does not exist."], status=404)
            return self._json({"key": name, "value": copy.deepcopy(issue["properties"][name])})
        if request.method == "PUT":
            try:
                value = self._body(request)
            except ValueError as exc:
                return self._errors(messages=[str(exc)])
            if len(request.body) > 32768:
                return self._errors(messages=["The property value exceeds 32768 bytes."])
            created = name not in issue["properties"]
            issue["properties"][name] = value
            return Response(201 if created else 200, b"")
        if request.method == "DELETE":
            issue["properties"].pop(name, None)
            return Response(204, b"")
        return Response(405, b"")

    # -- comments ----------------------------------------------------------------------
    def _comments(self, issue: dict[str, Any], request: Request) -> Response:
        try:
            start = max(0, int(request.arg("startAt", "0") or 0))
            size = max(1, min(int(request.arg("maxResults", "5000") or 5000), 5000))
        except ValueError:
            return self._errors(messages=["startAt and maxResults must be numbers"])
        comments = list(issue["comments"])
        if (request.arg("orderBy") or "created").lstrip("+") == "-created":
            comments.reverse()
        page = comments[start : start + size]
        return self._json({"startAt": start, "maxResults": size, "total": len(comments), "comments": copy.deepcopy(page)})

    def _add_comment(self, issue: dict[str, Any], request: Request) -> Response:
        try:
            body = self._body(request) or {}
        except ValueError as exc:
            return self._errors(messages=[str(exc)])
        if adf_problems(body.get("body")):
            return self._errors({"comment": "Comment body is not valid: " + "; ".join(adf_problems(body.get("body"))[:3])})
        self._next_comment += 1
        now = _now()
        author = {"accountId": ACCOUNT_ID, "displayName": "earful bot", "active": True, "accountType": "atlassian"}
        comment = {"self": f"{issue['self']}/comment/{self._next_comment}", "id": str(self._next_comment), "author": author,
                   "body": copy.deepcopy(body["body"]), "updateAuthor": author, "created": now, "updated": now, "jsdPublic": True}
        issue["comments"].append(comment)
        issue["fields"]["updated"] = now
        return self._json(comment, 201)

    # -- workflow ----------------------------------------------------------------------
    def _transition_view(self, tid: str, name: str, target: str) -> dict[str, Any]:
        sid, category = STATUSES[target]
        return {"id": tid, "name": name, "to": {"self": f"{self.url}/rest/api/3/status/{sid}", "description": "", "name": target,
                                                "id": sid, "statusCategory": copy.deepcopy(category)},
                "hasScreen": False, "isGlobal": False, "isInitial": False, "isAvailable": True, "isConditional": False, "isLooped": False}

    def _transitions(self, issue: dict[str, Any], request: Request) -> Response:
        current = issue["fields"]["status"]["name"]
        return self._json({"expand": "transitions", "transitions": [self._transition_view(*t) for t in WORKFLOW[current]]})

    def _transition(self, issue: dict[str, Any], request: Request) -> Response:
        try:
            body = self._body(request) or {}
        except ValueError as exc:
            return self._errors(messages=[str(exc)])
        wanted = str((body.get("transition") or {}).get("id") or "")
        current = issue["fields"]["status"]["name"]
        match = next((t for t in WORKFLOW[current] if t[0] == wanted), None)
        if match is None:
            return self._errors(messages=[f"Transition id '{wanted}' is not valid for this issue."])
        self._set_status(issue, match[2])
        return Response(204, b"")

    # -- search --------------------------------------------------------------------------
    def _search(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                params = self._body(request) or {}
            except ValueError as exc:
                return self._errors(messages=[str(exc)])
        else:
            params = {k: v[-1] for k, v in request.query.items()}
        jql = str(params.get("jql") or "")
        try:
            clauses, order = parse_jql(jql)
        except JqlError as exc:
            return self._errors(messages=[str(exc)])
        if not clauses:
            return self._errors(messages=["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."])
        try:
            self._check_clauses(clauses)
        except JqlError as exc:
            return self._errors(messages=[str(exc)])
        selected = [i for i in self._issues.values() if self._matches(i, clauses)]
        cutoff = time.time() - self.index_delay
        selected = [i for i in selected if i["created_epoch"] <= cutoff]
        field, descending = order or ("created", True)
        selected.sort(key=lambda i: (i["created_epoch"], int(i["id"])) if field in ("created", "key", "id") else str(i["fields"].get(field)),
                      reverse=descending)
        try:
            size = max(1, min(int(params.get("maxResults") or 50), 100))
        except (TypeError, ValueError):
            return self._errors(messages=["maxResults must be a number"])
        start = 0
        token = params.get("nextPageToken")
        fingerprint = f"{abs(hash(jql)) % 10**8}"
        if token:
            try:
                decoded = base64.urlsafe_b64decode(str(token).encode()).decode()
                start_text, query = decoded.split(":", 1)
                start = int(start_text)
                if query != fingerprint:
                    raise ValueError
            except ValueError:
                return self._errors(messages=["The provided next page token is invalid or expired."])
        page = selected[start : start + size]
        fields = self._list_arg(params.get("fields")) or ["id"]
        properties = self._list_arg(params.get("properties"))
        issues = []
        for issue in page:
            view = self._view(issue, None if "*all" in fields else fields, properties)
            if fields == ["id"]:
                view = {"id": issue["id"], **({"properties": view["properties"]} if "properties" in view else {})}
            issues.append(view)
        result: dict[str, Any] = {"issues": issues, "isLast": start + size >= len(selected)}
        if not result["isLast"]:
            result["nextPageToken"] = base64.urlsafe_b64encode(f"{start + size}:{fingerprint}".encode()).decode()
        return self._json(result)

    def _check_clauses(self, clauses: list[tuple[str, str, list[str]]]) -> None:
        """Jira validates the query before running it: unknown fields and projects are 400s."""
        for field, _, values in clauses:
            if field not in ("project", "labels", "status", "priority", "key", "issuekey", "id"):
                raise JqlError(f"Field '{field}' does not exist or you do not have permission to view it.")
            if field == "project":
                for value in values:
                    if not any(value.upper() == p["key"] or value == p["name"] or value == p["id"] for p in self.projects.values()):
                        raise JqlError(f"The value '{value}' does not exist for the field 'project'.")

    def _matches(self, issue: dict[str, Any], clauses: list[tuple[str, str, list[str]]]) -> bool:
        for field, op, values in clauses:
            if field == "project":
                have = [issue["fields"]["project"]["key"], issue["fields"]["project"]["name"]]
            elif field == "labels":
                have = issue["fields"].get("labels") or []
            elif field == "status":
                have = [issue["fields"]["status"]["name"]]
            elif field == "priority":
                have = [issue["fields"]["priority"]["name"]]
            else:
                have = [issue["key"], issue["id"]]
            hit = any(v.casefold() == h.casefold() for v in values for h in have)
            if (op in ("=", "in") and not hit) or (op in ("!=", "not in") and hit):
                return False
        return True
