"""What the ticket-like destinations share: the words of a ticket, and HTTP.

Jira, Zendesk, GitHub issues and email all turn one alert into a document a
person works from, so they must state the same facts in the same order
(source, author, kind, when, severity, labels, matched rules, monitor, every
place the item appeared, the item key). `ticket_text` collects those facts
once, from the same helpers Slack and the console use (`format`), and each
destination renders them in its own markup:

* `render_text`     plain text (email text part, Zendesk plain comments);
* `render_html`     HTML with every piece of untrusted text escaped (email,
                    Zendesk `html_body`); only http(s) URLs become links;
* `render_markdown` GitHub-flavoured Markdown in which untrusted text can
                    neither format, link, embed HTML, nor notify anyone:
                    Markdown punctuation is backslash-escaped and `@name` /
                    `#123` get a zero-width space so they are not mentions or
                    issue references (a customer writing "@torvalds" must not
                    page Linus from our tracker);
* Jira builds Atlassian Document Format from the same `TicketText`, where
  text is data, never markup.

Untrusted text is always folded onto one line first (`format.clean`): a post
cannot fake a "Severity: low" line of its own below the excerpt.

`HttpApi` is the one place where an HTTP exchange with a ticket system is
turned into a result or a `DeliveryError`: 429 and any Retry-After become
`retry_after`, 5xx/timeouts/refused connections are transient, other 4xx are
permanent, and messages name the destination and the request, never a
credential. `requests` is imported on first use, not with this module: an
idle cron tick imports destinations without sending anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping
from urllib.parse import quote, urlsplit

from earful.core import SEVERITY_ORDER, Alert

from . import format as fmt
from .base import DeliveryError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

USER_AGENT = "earful/0.1 (+https://github.com/earful/earful)"
SEVERITIES: tuple[str, ...] = tuple(sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__))  # low .. critical

EXCERPT_CHARS = 2000
TITLE_CHARS = 300
MAX_PLACES = 50
ERROR_BODY_CHARS = 300
ITEM_HASH_CHARS = 24

# Outbox kinds other than "alert" become tickets too; their titles say what they are.
KIND_PREFIX = {"escalation": "SLA breached", "health": "Channel health", "summary": "Flood control", "spike": "Mention spike"}


# -- identity ---------------------------------------------------------------------


def item_hash(key: str, length: int = ITEM_HASH_CHARS) -> str:
    """A short, stable, label-safe stand-in for an item key (sha256, hex)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:length]


def update_marker(key: str, note: str) -> str:
    """An id for one update note of one item: re-sending the same note after a
    partial failure finds it and adds nothing (answer updates are retried for
    every destination of an item when any one of them failed)."""
    return item_hash(f"{key}\nupdate\n{note}", 16)


# -- facts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One "Name: value" line; `url` (http(s) only) makes the value a link."""

    name: str
    value: str
    url: str | None = None


@dataclass(frozen=True)
class TicketText:
    """Everything a ticket says about an alert, cleaned and trimmed, not yet marked up."""

    summary: str
    title: str  # the item's own title; empty for a comment, reply or message
    context: str  # "on: <thread title>" for a comment, reply or message
    excerpt: str
    facts: tuple[Fact, ...]
    places: tuple[fmt.Place, ...]  # every place, when the cluster has more than one
    hidden_places: int  # places beyond MAX_PLACES, shown as "...and N more"
    note: str | None
    key: str
    cluster: str


def http_url(url: str | None) -> str | None:
    """`url` when it is an absolute http(s) URL, else None: javascript:, data:
    and relative links are never made clickable in a ticket."""
    if not url:
        return None
    url = fmt.clean(url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def plain_headline(alert: Alert) -> str:
    """'High · complaint, question · Reddit', without emoji.

    Ticket systems on MySQL with 3-byte utf8 (Jira Data Center installs,
    older Zendesk integrations) reject 4-byte characters in short fields,
    and subjects are what people search; the emoji stays in Slack.
    """
    head = " · ".join([alert.severity.capitalize(), *fmt.headline_facts(alert)])
    prefix = KIND_PREFIX.get(alert.kind)
    return f"{prefix} · {head}" if prefix else head


def summary_line(alert: Alert, limit: int) -> str:
    """The one-line ticket title: headline plus what the item says (`format.subject`)."""
    head = plain_headline(alert)
    what = fmt.subject(alert.mention, limit - len(head) - 2)
    return fmt.truncate(f"{head}: {what}" if what else head, limit)


def ticket_text(alert: Alert, *, summary_chars: int = 255, excerpt_chars: int = EXCERPT_CHARS, note: str | None = None) -> TicketText:
    """The facts of `alert`; `note` defaults to the alert's own (an escalation's reason)."""
    mention = alert.mention
    url = http_url(mention.url)
    facts = [
        Fact("Source", fmt.source_label(mention), url),
        Fact("Author", fmt.author_label(mention)),
        Fact("Kind", fmt.kind_label(mention)),
    ]
    if mention.created_at is not None:
        facts.append(Fact("Posted", fmt.when_label(mention.created_at, alert.timezone)))
    facts += [
        Fact("Severity", alert.severity.capitalize()),
        Fact("Labels", fmt.labels_label(alert.labels)),
        Fact("Matched rules", ", ".join(alert.rules) or "none"),
        Fact("Monitor", fmt.clean(alert.monitor)),
    ]
    places = tuple(fmt.places(alert)) if len(alert.mentions) > 1 else ()
    return TicketText(
        summary=summary_line(alert, summary_chars),
        title=fmt.title_line(mention, TITLE_CHARS),
        context=fmt.context_line(mention, TITLE_CHARS),
        excerpt=fmt.excerpt(mention, excerpt_chars),
        facts=tuple(facts),
        places=places[:MAX_PLACES],
        hidden_places=max(0, len(places) - MAX_PLACES),
        note=fmt.clean(note if note is not None else alert.note or "") or None,
        key=alert.key,
        cluster=alert.cluster,
    )


def footer(t: TicketText) -> str:
    return f"earful · item key {t.key} · cluster {t.cluster}"


def update_lines(alert: Alert, note: str) -> tuple[str, str | None]:
    """(note, link) of an update comment: the note as the reply tracker wrote
    it ("answered by acme_support after 37m") and the item's link."""
    return fmt.clean(note), http_url(alert.mention.url)


# -- plain text -------------------------------------------------------------------


def render_text(t: TicketText) -> str:
    lines: list[str] = []
    if t.note:
        lines += [f"Note: {t.note}", ""]
    if t.title:
        lines.append(t.title)
    if t.context:
        lines.append(t.context)
    if t.excerpt:
        lines.append(f"> {t.excerpt}")
    if t.title or t.context or t.excerpt:
        lines.append("")
    for fact in t.facts:
        lines.append(f"{fact.name}: {fact.value}" + (f" <{fact.url}>" if fact.url else ""))
    if t.places:
        lines += ["", f"Seen in {len(t.places) + t.hidden_places} places:"]
        for place in t.places:
            link = http_url(place.url)
            lines.append(f"- {place.source} — {place.author}" + (f" <{link}>" if link else ""))
        if t.hidden_places:
            lines.append(f"- …and {t.hidden_places} more")
    lines += ["", footer(t)]
    return "\n".join(lines)


def render_update_text(alert: Alert, note: str) -> str:
    text, link = update_lines(alert, note)
    lines = [text]
    if link:
        lines.append(f"Original post: {link}")
    lines += ["", f"earful · item key {alert.key}"]
    return "\n".join(lines)


# -- HTML -------------------------------------------------------------------------


def h(text: str) -> str:
    """HTML-escape untrusted text (quotes too: values also land in attributes)."""
    return html.escape(text, quote=True)


def html_link(url: str | None, label: str) -> str:
    target = http_url(url)
    if not target:
        return h(label)
    return f'<a href="{h(target)}">{h(label)}</a>'


def render_html(t: TicketText) -> str:
    parts: list[str] = []
    if t.note:
        parts.append(f"<p><strong>Note:</strong> {h(t.note)}</p>")
    if t.title:
        parts.append(f"<p><strong>{h(t.title)}</strong></p>")
    if t.context:
        parts.append(f"<p><em>{h(t.context)}</em></p>")
    if t.excerpt:
        parts.append(f"<blockquote>{h(t.excerpt)}</blockquote>")
    items = "".join(f"<li><strong>{h(f.name)}:</strong> {html_link(f.url, f.value)}</li>" for f in t.facts)
    parts.append(f"<ul>{items}</ul>")
    if t.places:
        rows = "".join(f"<li>{html_link(p.url, p.source)} — {h(p.author)}</li>" for p in t.places)
        if t.hidden_places:
            rows += f"<li>…and {t.hidden_places} more</li>"
        parts.append(f"<p><strong>Seen in {len(t.places) + t.hidden_places} places</strong></p><ul>{rows}</ul>")
    parts.append(f"<p><small>{h(footer(t))}</small></p>")
    return "\n".join(parts)


def render_update_html(alert: Alert, note: str) -> str:
    text, link = update_lines(alert, note)
    parts = [f"<p>{h(text)}</p>"]
    if link:
        parts.append(f"<p>Original post: {html_link(link, link)}</p>")
    parts.append(f"<p><small>earful · item key {h(alert.key)}</small></p>")
    return "\n".join(parts)


# -- Markdown (GitHub) ------------------------------------------------------------

_MD_INLINE = re.compile(r"([\\`*_\[\]<>!|~])")
_MD_BLOCK_START = re.compile(r"^(\s*)([#+=-])|^(\s*\d+)([.)])")  # a heading, bullet or setext line; "12." / "12)"
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_REFERENCE = re.compile(r"#(?=[A-Za-z0-9])")
ZWSP = "\u200b"


def inert_mentions(text: str) -> str:
    """`@name` and `#123` with a zero-width space after the sign: for plain-text
    fields GitHub still scans (issue titles), so a title neither notifies nor
    cross-references anyone."""
    return _REFERENCE.sub("#" + ZWSP, _MENTION.sub("@" + ZWSP, text))


def md(text: str) -> str:
    """Untrusted one-line text as inert GitHub Markdown: rendered as written,
    but it cannot start a heading or list, emphasise, make a link, image or
    table, open an HTML tag or an autolink, @-mention a user or team, or
    reference an issue. Only the characters that matter are escaped, so URLs
    in the text stay readable (and GitHub still autolinks bare ones)."""
    text = text.replace("&", "&amp;")
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_BLOCK_START.sub(lambda m: (m.group(1) or m.group(3) or "") + "\\" + (m.group(2) or m.group(4)), text, count=1)
    text = _MENTION.sub("@" + ZWSP, text)
    return _REFERENCE.sub("#" + ZWSP, text)


def md_code(text: str) -> str:
    """An inline code span: inert (no mentions, references or markup) and copyable."""
    return "`" + _code_text(text) + "`"


def _code_text(text: str) -> str:
    return fmt.clean(text).replace("`", "'") or " "


def md_link(url: str | None, label: str) -> str:
    target = http_url(url)
    if not target:
        return md(label)
    target = quote(target, safe=":/?#[]@!$&'*+,;=%~")  # parentheses and spaces encoded: cannot end the link
    return f"[{md(label)}]({target})"


def render_markdown(t: TicketText) -> str:
    lines: list[str] = []
    if t.note:
        lines += [f"**Note:** {md(t.note)}", ""]
    if t.title:
        lines += [f"**{md(t.title)}**", ""]
    if t.context:
        lines += [f"_{md(t.context)}_", ""]
    if t.excerpt:
        lines += [f"> {md(t.excerpt)}", ""]
    lines += [f"- **{f.name}:** {md_link(f.url, f.value)}" for f in t.facts]
    if t.places:
        lines += ["", f"**Seen in {len(t.places) + t.hidden_places} places**", ""]
        lines += [f"- {md_link(p.url, p.source)} — {md(p.author)}" for p in t.places]
        if t.hidden_places:
            lines.append(f"- …and {t.hidden_places} more")
    lines += ["", f"<sub>earful · item key {md_code(t.key)} · cluster {md_code(t.cluster)}</sub>"]
    return "\n".join(lines)


def render_update_markdown(alert: Alert, note: str) -> str:
    text, link = update_lines(alert, note)
    lines = [md(text)]
    if link:
        lines += ["", f"Original post: {md_link(link, link)}"]
    lines += ["", f"<sub>earful · item key {md_code(alert.key)}</sub>"]
    return "\n".join(lines)


# -- templates (Jira custom fields) -------------------------------------------------

TEMPLATE_FIELDS: tuple[str, ...] = (
    "key", "cluster", "monitor", "source", "site", "url", "author", "title", "kind",
    "severity", "labels", "rules", "created_at",
)
TEMPLATE_VALUE_CHARS = 255


def check_template(template: Any) -> None:
    """Raise ValueError when a template (a string, or a list/mapping of them)
    uses a placeholder other than TEMPLATE_FIELDS, or attribute/index access."""
    if isinstance(template, str):
        for _, name, spec, conversion in string.Formatter().parse(template):
            if name is None:
                continue
            if name not in TEMPLATE_FIELDS or spec or conversion:
                raise ValueError(f"unknown placeholder {{{name}}} in {template!r}; use one of "
                                 + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS))
    elif isinstance(template, Mapping):
        for value in template.values():
            check_template(value)
    elif isinstance(template, (list, tuple)):
        for value in template:
            check_template(value)
    elif not isinstance(template, (int, float, bool)) and template is not None:
        raise ValueError(f"a template must be text, a number, a list or a mapping, not {type(template).__name__}")


def utc_iso(moment: datetime | None) -> str:
    """ISO 8601 in UTC ('' for None); naive times are taken as UTC, like everywhere in earful."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def template_values(alert: Alert) -> dict[str, str]:
    mention = alert.mention
    values = {
        "key": alert.key,
        "cluster": alert.cluster,
        "monitor": alert.monitor,
        "source": fmt.source_name(mention.source),
        "site": mention.site,
        "url": http_url(mention.url) or "",
        "author": mention.author,
        "title": mention.title or mention.text,
        "kind": mention.kind,
        "severity": alert.severity,
        "labels": ", ".join(alert.labels),
        "rules": ", ".join(alert.rules),
        "created_at": utc_iso(mention.created_at),
    }
    return {k: fmt.truncate(fmt.clean(v), TEMPLATE_VALUE_CHARS) for k, v in values.items()}


def render_template(template: Any, values: Mapping[str, str]) -> Any:
    """Fill a checked template; strings are cut to TEMPLATE_VALUE_CHARS (single-line field limit)."""
    if isinstance(template, str):
        return fmt.truncate(template.format_map(values), TEMPLATE_VALUE_CHARS)
    if isinstance(template, Mapping):
        return {k: render_template(v, values) for k, v in template.items()}
    if isinstance(template, (list, tuple)):
        return [render_template(v, values) for v in template]
    return template


# -- priorities ---------------------------------------------------------------------


def ladder(priorities: Mapping[str, str]) -> list[str]:
    """Priority names from the lowest severity's to the highest's, each once."""
    return list(dict.fromkeys(priorities[s] for s in SEVERITIES if s in priorities))


def one_step_up(current: str | None, steps: list[str], fallback: str | None) -> str | None:
    """The priority one step above `current` on `steps` (case-insensitive);
    `current` off the ladder (or unset) counts as `fallback`. None when there
    is nothing higher."""
    lowered = [s.lower() for s in steps]
    base = (current or "").lower()
    if base not in lowered:
        base = (fallback or "").lower()
    if base not in lowered:
        return steps[-1] if steps else None
    index = lowered.index(base)
    return steps[index + 1] if index + 1 < len(steps) else None


# -- HTTP ---------------------------------------------------------------------------


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def body_excerpt(response: "requests.Response") -> str:
    text = fmt.clean(response.text or "")
    return fmt.truncate(text, ERROR_BODY_CHARS) if text else "(empty body)"


class HttpError(DeliveryError):
    """A DeliveryError that also carries the HTTP status (0: no response)."""

    def __init__(self, message: str, *, status: int = 0, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message, retry_after=retry_after, permanent=permanent)
        self.status = status


TRANSIENT_4XX = frozenset({408, 409, 423, 425, 429})


class HttpApi:
    """One HTTP session to one service, with its failures classified.

    `where` names the destination in every message ("jira destination
    'tickets' (https://acme.atlassian.net)"); `describe(response)` extracts
    the service's own error text; `hints` adds advice per status;
    `classify(response)` may return a DeliveryError for service-specific
    cases (GitHub's 403 rate limits) before the generic rules run.
    Credentials live only in the session (headers / auth object), never in
    URLs, so no exception text can carry them.
    """

    def __init__(
        self,
        where: str,
        base_url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        describe: Callable[["requests.Response"], str] | None = None,
        hints: Mapping[int, str] | None = None,
        classify: Callable[["requests.Response"], DeliveryError | None] | None = None,
        secrets: Iterable[str] = (),
    ):
        self.where = where
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        self._auth = auth
        self._describe = describe or body_excerpt
        self._hints = dict(hints or {})
        self._classify = classify
        self._secrets = [s for s in secrets if s]
        self._session: requests.Session | None = None

    def session(self) -> "requests.Session":
        if self._session is None:
            import requests

            session = requests.Session()
            session.headers.update(self._headers)
            session.auth = self._auth
            session.trust_env = True  # HTTPS_PROXY and friends, as for every other HTTP client
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                expect: Iterable[int] = (200, 201, 204)) -> "requests.Response":
        """Send one request; return the response when its status is in `expect`,
        raise HttpError otherwise (or when no response came)."""
        import requests

        what = f"{method} {path.split('?')[0]}"
        try:
            response = self.session().request(
                method,
                self.url(path),
                params=params,
                data=None if json_body is None else json.dumps(json_body, ensure_ascii=False).encode("utf-8"),
                headers={"Content-Type": "application/json; charset=utf-8"} if json_body is not None else None,
                timeout=self.timeout,
                allow_redirects=method in ("GET", "HEAD"),
            )
        except requests.Timeout:
            raise HttpError(f"{self.where}: {what} timed out after {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise HttpError(self.scrub(f"{self.where}: {what} failed: {type(exc).__name__}: {exc}")) from None
        if response.status_code in set(expect):
            return response
        raise self.error(what, response)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise HttpError(f"{self.where}: {method} {path.split('?')[0]} answered HTTP {response.status_code} "
                            f"with a body that is not JSON: {body_excerpt(response)}", status=response.status_code) from None

    def error(self, what: str, response: "requests.Response") -> HttpError:
        special = self._classify(response) if self._classify else None
        status = response.status_code
        if special is not None:
            return HttpError(self.scrub(f"{self.where}: {what}: {special}"), status=status, retry_after=special.retry_after,
                             permanent=special.permanent)
        wait = retry_after(response.headers)
        detail = self._describe(response)
        hint = self._hints.get(status, "")
        text = f"{self.where}: {what} answered HTTP {status}: {detail}" + (f" ({hint})" if hint else "")
        if 300 <= status < 400:
            text += f"; redirected to {response.headers.get('Location', '?')}: configure the final address as base_url"
        if status == 429 or (wait is not None and (status >= 500 or status in TRANSIENT_4XX)):
            if wait is not None:
                text += f"; asked to wait {wait:g}s"
            return HttpError(self.scrub(text), status=status, retry_after=wait)
        transient = status >= 500 or status in TRANSIENT_4XX
        return HttpError(self.scrub(text), status=status, permanent=not transient)

    def scrub(self, text: str) -> str:
        """Defence in depth: remove any credential a server might echo back."""
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        return text


def json_errors(response: "requests.Response") -> str:
    """The error text of a JSON error body in the common shapes (Jira's
    errorMessages/errors, Zendesk's error/description/details, GitHub's
    message/errors), else the body's start."""
    try:
        data = response.json()
    except ValueError:
        return body_excerpt(response)
    if not isinstance(data, dict):
        return body_excerpt(response)
    parts: list[str] = []
    for key in ("message", "errorMessages", "error", "description"):
        value = data.get(key)
        if isinstance(value, list):
            parts += [str(v) for v in value if v]
        elif isinstance(value, dict):
            parts.append(str(value.get("title") or value.get("message") or json.dumps(value)))
        elif value:
            parts.append(str(value))
    errors = data.get("errors") or data.get("details")
    if isinstance(errors, dict):
        for field, value in errors.items():
            if isinstance(value, list):
                value = "; ".join(str(v.get("description") if isinstance(v, dict) else v) for v in value)
            parts.append(f"{field}: {value}")
    elif isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict):
                field = item.get("field") or item.get("resource") or ""
                message = item.get("message") or item.get("code") or ""
                parts.append(f"{field}: {message}".strip(": "))
            else:
                parts.append(str(item))
    text = fmt.clean("; ".join(dict.fromkeys(p for p in parts if p)))
    return fmt.truncate(text, ERROR_BODY_CHARS * 2) if text else body_excerpt(response)


def authorization(options: Any, basic_login: str) -> tuple[str, str]:
    """(Authorization header, secret) for `token` (Bearer) or `email` + `api_token` (Basic).

    `basic_login` formats the Basic user from the email ("{email}" for Jira,
    "{email}/token" for Zendesk). Both strings are returned so the HTTP
    helper can scrub them from any message.
    """
    if options.token is not None:
        secret = options.token.get_secret_value()
        return f"Bearer {secret}", secret
    assert options.api_token is not None and options.email
    secret = options.api_token.get_secret_value()
    user = basic_login.format(email=options.email)
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode(), secret
