"""A fake GitHub REST API (issues) on 127.0.0.1, for tests and demos.

The behaviour earful's `github` destination depends on, as GitHub has it:

* auth `Authorization: Bearer <token>` (or `token <token>`); otherwise 401
  `{"message": "Bad credentials", ...}`; every answer carries
  `x-ratelimit-*` headers and echoes `x-github-api-version-selected`;
* `POST /repos/{owner}/{repo}/issues` answers 201 with the issue (number,
  html_url, labels as objects, user, timestamps to the second) and a
  `Location`; a missing title is 422, a title over 256 or a body over
  65536 characters is 422 "Validation Failed" with `errors`; labels are
  created on the fly, but WITHOUT push access they are silently dropped,
  exactly as GitHub does (`push_access=False`);
* `GET /repos/{owner}/{repo}/issues` filters by `state` (default open),
  `labels` (all of them), `since` (updated at or after), sorts by
  created/updated (`direction` default desc), pages with `per_page` (max
  100) / `page` and a `Link` header, and includes pull requests, as the
  real endpoint does (`add_pull_request`);
* issue `PATCH` (state, state_reason, title, body, labels), comments
  (`GET` paged with `Link`, `POST` 201), `POST .../labels` (403 without
  push access);
* scripted limits: `secondary_rate_limit_next` (403 + Retry-After and the
  real "abuse detection" body), `primary_rate_limit_next` (403 with
  `x-ratelimit-remaining: 0`), `rate_limit_next` (429 + Retry-After).

Standard library only.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from .server import FakeServer, Request, Response

DEFAULT_TOKEN = "ghp_earfulFakeToken0123456789abcdefABCD"
DEFAULT_REPOSITORY = "acme/support"
DOCS = "https://docs.github.com/rest"
ABUSE_MESSAGE = "You have triggered an abuse detection mechanism. Please wait a few minutes before you try again."


def _stamp(epoch: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if epoch is None else epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class GitHubServer(FakeServer):
    """Some repositories the token's user (`login`) can write issues to."""

    def __init__(self, token: str = DEFAULT_TOKEN, repositories: tuple[str, ...] = (DEFAULT_REPOSITORY,), *, login: str = "earful-bot",
                 push_access: bool = True, issues_enabled: bool = True) -> None:
        super().__init__()
        self.token = token
        self.login = login
        self.push_access = push_access
        self.issues_enabled = issues_enabled
        self._data = threading.Lock()
        self._repos: dict[str, dict[str, Any]] = {r.lower(): {"name": r, "issues": {}, "labels": {}, "next": 0} for r in repositories}
        self._next_id = 4653757
        self._remaining = 5000

    # -- scripting and inspection ------------------------------------------------------
    def secondary_rate_limit_next(self, n: int, retry_after: int = 60) -> None:
        response = Response.json({"documentation_url": "https://developer.github.com/v3/#abuse-rate-limits", "message": ABUSE_MESSAGE}, 403,
                                 {"Retry-After": str(retry_after), "X-GitHub-Media-Type": "github.v3; format=json"})
        self.fail_next(*[response] * n)

    def primary_rate_limit_next(self, n: int, reset_in: int = 30) -> None:
        reset = str(int(time.time()) + reset_in)
        response = Response.json({"message": "API rate limit exceeded for user ID 1.", "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api"},
                                 403, {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset,
                                       "x-ratelimit-used": "5000", "x-ratelimit-resource": "core"})
        self.fail_next(*[response] * n)

    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        response = Response.json({"message": "Too Many Requests", "documentation_url": DOCS}, 429, {"Retry-After": str(retry_after)})
        self.fail_next(*[response] * n)

    def issues(self, repository: str = DEFAULT_REPOSITORY, *, pull_requests: bool = False) -> list[dict[str, Any]]:
        with self._data:
            items = self._repos[repository.lower()]["issues"].values()
            return [self._view(i) for i in items if pull_requests or "pull_request" not in i]

    def comments(self, repository: str, number: int | str) -> list[str]:
        with self._data:
            return [c["body"] for c in self._repos[repository.lower()]["issues"][int(number)]["_comments"]]

    def add_pull_request(self, repository: str, title: str, body: str = "") -> int:
        """A pull request, which the issues endpoints list too."""
        with self._data:
            issue = self._new_issue(self._repos[repository.lower()], {"title": title, "body": body})
            issue["pull_request"] = {"url": issue["url"].replace("/issues/", "/pulls/"), "html_url": issue["html_url"].replace("/issues/", "/pull/")}
            return issue["number"]

    # -- HTTP --------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header.split(" ", 1)[1] if header.startswith(("Bearer ", "token ")) else None
        if token != self.token:
            return self._json({"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}, 401, request)
        whole = re.fullmatch(r"/repos/([^/]+/[^/]+)/?", request.path)
        if whole and request.method == "GET":
            with self._data:
                repo = self._repos.get(whole[1].lower())
                if repo is not None:
                    return self._json(self._repository(repo), 200, request)
            return self._json({"message": "Not Found", "documentation_url": DOCS, "status": "404"}, 404, request)
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues(?:/(\d+)(?:/(comments|labels))?)?/?", request.path)
        with self._data:
            repo = self._repos.get(match[1].lower()) if match else None
            if not match or repo is None:
                return self._json({"message": "Not Found", "documentation_url": DOCS, "status": "404"}, 404, request)
            if not self.issues_enabled:
                return self._json({"message": "Issues are disabled for this repo", "documentation_url": DOCS, "status": "410"}, 410, request)
            number, sub = match[2], match[3]
            if number is None:
                if request.method == "POST":
                    return self._create(repo, request)
                if request.method == "GET":
                    return self._list(repo, request)
            else:
                issue = repo["issues"].get(int(number))
                if issue is None:
                    return self._json({"message": "Not Found", "documentation_url": DOCS, "status": "404"}, 404, request)
                if sub is None and request.method == "GET":
                    return self._json(self._view(issue), 200, request)
                if sub is None and request.method == "PATCH":
                    return self._edit(repo, issue, request)
                if sub == "comments" and request.method == "GET":
                    return self._comments(issue, request)
                if sub == "comments" and request.method == "POST":
                    return self._comment(issue, request)
                if sub == "labels" and request.method == "POST":
                    return self._add_labels(repo, issue, request)
            return self._json({"message": "Not Found", "documentation_url": DOCS, "status": "404"}, 404, request)

    def _json(self, data: Any, status: int, request: Request, headers: dict[str, str] | None = None) -> Response:
        self._remaining = max(0, self._remaining - 1)
        return Response.json(data, status, {
            "x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(self._remaining), "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-used": str(5000 - self._remaining), "x-ratelimit-resource": "core",
            "x-github-api-version-selected": request.headers.get("x-github-api-version", "2022-11-28"),
            "x-github-request-id": f"EB90:{self._remaining:06X}", "X-GitHub-Media-Type": "github.v3; format=json", **(headers or {})})

    def _body(self, request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(request.body or b"null")
        except json.JSONDecodeError:
            return None
        return body if isinstance(body, dict) else None

    def _invalid(self, request: Request, field: str, message: str) -> Response:
        return self._json({"message": "Validation Failed", "errors": [{"resource": "Issue", "code": "custom", "field": field, "message": message}],
                           "documentation_url": f"{DOCS}/issues/issues#create-an-issue", "status": "422"}, 422, request)

    def _user(self) -> dict[str, Any]:
        return {"login": self.login, "id": 327146, "node_id": "MDQ6VXNlcjMyNzE0Ng==", "type": "User", "site_admin": False,
                "url": f"{self.url}/users/{self.login}", "html_url": f"https://github.com/{self.login}"}

    def _repository(self, repo: dict[str, Any]) -> dict[str, Any]:
        """GET /repos/{owner}/{repo}: the fields earful reads, with the token's permissions."""
        owner, name = repo["name"].split("/")
        return {"id": 3544490, "node_id": "MDEwOlJlcG9zaXRvcnkzNTQ0NDkw", "name": name, "full_name": repo["name"],
                "private": True, "owner": {**self._user(), "login": owner, "type": "Organization"},
                "html_url": f"https://github.com/{repo['name']}", "url": f"{self.url}/repos/{repo['name']}",
                "fork": False, "archived": False, "disabled": False, "has_issues": self.issues_enabled,
                "open_issues_count": sum(1 for i in repo["issues"].values() if i.get("state") == "open"),
                "default_branch": "main", "visibility": "private",
                "permissions": {"admin": False, "maintain": False, "push": self.push_access, "triage": True, "pull": True}}

    def _label(self, repo: dict[str, Any], name: str) -> dict[str, Any]:
        if name.lower() not in repo["labels"]:
            self._next_id += 1
            repo["labels"][name.lower()] = {"id": self._next_id, "node_id": f"LA_{self._next_id}", "url": f"{self.url}/repos/{repo['name']}/labels/{name}",
                                            "name": name, "color": "ededed", "default": False, "description": None}
        return repo["labels"][name.lower()]

    def _view(self, issue: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in issue.items() if not k.startswith("_")}

    def _new_issue(self, repo: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        repo["next"] += 1
        self._next_id += 1
        number = repo["next"]
        api = f"{self.url}/repos/{repo['name']}/issues/{number}"
        now = time.time()
        issue = {
            "url": api, "repository_url": f"{self.url}/repos/{repo['name']}", "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments", "events_url": f"{api}/events", "html_url": f"https://github.com/{repo['name']}/issues/{number}",
            "id": self._next_id, "node_id": f"I_kwDO{self._next_id}", "number": number, "title": body["title"], "user": self._user(),
            "labels": [], "state": "open", "locked": False, "assignee": None, "assignees": [], "milestone": None, "comments": 0,
            "created_at": _stamp(now), "updated_at": _stamp(now), "closed_at": None, "author_association": "OWNER",
            "active_lock_reason": None, "body": body.get("body"), "closed_by": None, "timeline_url": f"{api}/timeline",
            "state_reason": None, "_comments": [], "_created": now, "_updated": now,
        }
        repo["issues"][number] = issue
        return issue

    def _touch(self, issue: dict[str, Any]) -> None:
        issue["_updated"] = time.time()
        issue["updated_at"] = _stamp(issue["_updated"])

    def _create(self, repo: dict[str, Any], request: Request) -> Response:
        body = self._body(request)
        if body is None:
            return self._json({"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"}, 400, request)
        if not body.get("title"):
            return self._json({"message": "Invalid request.\n\n\"title\" wasn't supplied.", "documentation_url": DOCS, "status": "422"}, 422, request)
        if len(str(body["title"])) > 256:
            return self._invalid(request, "title", "title is too long (maximum is 256 characters)")
        if body.get("body") is not None and len(str(body["body"])) > 65536:
            return self._invalid(request, "body", "body is too long (maximum is 65536 characters)")
        labels = body.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(l, str) for l in labels):
            return self._invalid(request, "labels", "labels must be an array of strings")
        issue = self._new_issue(repo, body)
        if self.push_access:  # without it GitHub drops labels and assignees silently
            issue["labels"] = [self._label(repo, name) for name in dict.fromkeys(labels)]
            issue["assignees"] = [{**self._user(), "login": login} for login in body.get("assignees") or []]
            issue["assignee"] = issue["assignees"][0] if issue["assignees"] else None
        return self._json(self._view(issue), 201, request, {"Location": issue["url"]})

    def _list(self, repo: dict[str, Any], request: Request) -> Response:
        state = request.arg("state", "open")
        if state not in ("open", "closed", "all"):
            return self._invalid(request, "state", f"{state} is not a valid state")
        wanted = [l.strip().lower() for l in (request.arg("labels") or "").split(",") if l.strip()]
        since = request.arg("since")
        since_epoch = _parse(since) if since else None
        if since and since_epoch is None:
            return self._invalid(request, "since", f"{since} is not a valid ISO 8601 timestamp")
        items = [i for i in repo["issues"].values()
                 if (state == "all" or i["state"] == state)
                 and all(w in {l["name"].lower() for l in i["labels"]} for w in wanted)
                 and (since_epoch is None or int(i["_updated"]) >= since_epoch)]
        sort = request.arg("sort", "created")
        key = {"created": "_created", "updated": "_updated"}.get(sort or "created", "_created")
        items.sort(key=lambda i: (i[key], i["number"]), reverse=request.arg("direction", "desc") != "asc")
        try:
            per_page = max(1, min(int(request.arg("per_page", "30") or 30), 100))
            page = max(1, int(request.arg("page", "1") or 1))
        except ValueError:
            return self._invalid(request, "per_page", "per_page and page must be numbers")
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        links = []
        params = {k: v[-1] for k, v in request.query.items()}

        def link(number: int, rel: str) -> str:
            return f'<{self.url}{request.path}?{urlencode({**params, "page": number})}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        return self._json([self._view(i) for i in chunk], 200, request, {"Link": ", ".join(links)} if links else None)

    def _edit(self, repo: dict[str, Any], issue: dict[str, Any], request: Request) -> Response:
        body = self._body(request)
        if body is None:
            return self._json({"message": "Problems parsing JSON", "documentation_url": DOCS, "status": "400"}, 400, request)
        if "state" in body:
            if body["state"] not in ("open", "closed"):
                return self._invalid(request, "state", f"{body['state']} is not a valid state")
            reason = body.get("state_reason")
            if body["state"] == "closed" and issue["state"] != "closed":
                issue.update(state="closed", closed_at=_stamp(), closed_by=self._user(), state_reason=reason or "completed")
            elif body["state"] == "open" and issue["state"] != "open":
                issue.update(state="open", closed_at=None, closed_by=None, state_reason="reopened")
        for name in ("title", "body"):
            if name in body:
                issue[name] = body[name]
        if "labels" in body and self.push_access:
            issue["labels"] = [self._label(repo, name) for name in dict.fromkeys(body["labels"])]
        self._touch(issue)
        return self._json(self._view(issue), 200, request)

    def _comments(self, issue: dict[str, Any], request: Request) -> Response:
        try:
            per_page = max(1, min(int(request.arg("per_page", "30") or 30), 100))
            page = max(1, int(request.arg("page", "1") or 1))
        except ValueError:
            return self._invalid(request, "per_page", "per_page and page must be numbers")
        comments = issue["_comments"]
        chunk = comments[(page - 1) * per_page : page * per_page]
        headers = None
        if len(comments) > page * per_page:
            params = {k: v[-1] for k, v in request.query.items()}
            headers = {"Link": f'<{self.url}{request.path}?{urlencode({**params, "page": page + 1})}>; rel="next"'}
        return self._json(copy.deepcopy(chunk), 200, request, headers)

    def _comment(self, issue: dict[str, Any], request: Request) -> Response:
        body = self._body(request)
        if body is None or not body.get("body"):
            return self._invalid(request, "body", "body wasn't supplied")
        if len(str(body["body"])) > 65536:
            return self._invalid(request, "body", "body is too long (maximum is 65536 characters)")
        self._next_id += 1
        now = _stamp()
        comment = {"url": f"{issue['url'].rsplit('/', 1)[0]}/comments/{self._next_id}", "html_url": f"{issue['html_url']}#issuecomment-{self._next_id}",
                   "issue_url": issue["url"], "id": self._next_id, "node_id": f"IC_{self._next_id}", "user": self._user(),
                   "created_at": now, "updated_at": now, "author_association": "OWNER", "body": body["body"]}
        issue["_comments"].append(comment)
        issue["comments"] = len(issue["_comments"])
        self._touch(issue)
        return self._json(copy.deepcopy(comment), 201, request, {"Location": comment["url"]})

    def _add_labels(self, repo: dict[str, Any], issue: dict[str, Any], request: Request) -> Response:
        if not self.push_access:
            return self._json({"message": "Must have push access to repository", "documentation_url": DOCS, "status": "403"}, 403, request)
        body = self._body(request)
        names = body.get("labels") if body else None
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            return self._invalid(request, "labels", "labels must be an array of strings")
        have = {l["name"].lower() for l in issue["labels"]}
        issue["labels"] += [self._label(repo, n) for n in dict.fromkeys(names) if n.lower() not in have]
        self._touch(issue)
        return self._json(copy.deepcopy(issue["labels"]), 200, request)
