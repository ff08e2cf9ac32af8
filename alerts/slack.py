"""The `slack` destination: one Block Kit message per alert, via chat.postMessage.

Support triages in Slack, so the message must answer "what, where, who, how
bad, which rule" at a glance, and link to every place the item appeared.

Untrusted text (titles, bodies, author names, site names, URLs) is handled
under one policy, applied by `escape`, `fit` and `link` below:

* `&`, `<` and `>` become `&amp;`, `&lt;`, `&gt;` everywhere (blocks and the
  `text` fallback), so `<!channel>`, `<!here>`, `<@U123>`, `<#C123>`,
  `<!subteam^S1>` and `<http://evil|click>` are shown literally and can never
  ping, link or disguise a link. Every mrkdwn object is sent with
  `verbatim: true` and the message with `parse: none`, `link_names: false`,
  so bare `@channel` or `#general` in a post are not turned into mentions.
* Untrusted text is folded onto one line and stripped of control and bidi
  characters (`format.clean`): a post cannot start a quote, a list or a fake
  "*Severity:* low" line of its own. Inline emphasis (`*`, `_`, `~`, a
  backtick) is left alone: it can only restyle words inside the post's own
  excerpt, which is set apart as a block quote.
* Links are only made for http(s) URLs; `|`, `<`, `>` and spaces in them are
  percent-encoded so the URL cannot end the `<url|label>` early.
* Trimming happens on the raw text before escaping, with a budget measured
  after escaping, so a cut can never land inside `&amp;`.

Links are mrkdwn links, not link buttons: earful runs from cron and has no
interactivity endpoint, and Slack marks clicks on buttons of such apps with
a warning.

The channel may be an id (`C0123456789`) or a `#name`. chat.postMessage
accepts either and answers with the id, which this destination remembers;
conversations.history only takes ids, so `find_delivered` uses the
remembered id or, in a fresh process, looks the name up once through
conversations.list (public channels; give private channels by id).

slack_sdk is imported on first use, not at module import: an idle cron tick
loads destinations without sending anything.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from http.client import HTTPException
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Iterator, Literal
from urllib.parse import quote, urlsplit

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator

from earful.core import Alert, Severity, one_or_many

from . import format as fmt
from .base import (
    DeliveryError,
    Destination,
    DestinationOptions,
    decode_png,
    digest_content,
)

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.models.blocks import Block, MarkdownTextObject
    from slack_sdk.web import SlackResponse

log = logging.getLogger(__name__)

EVENT_TYPE = "earful_alert"

# Slack's documented limits (Block Kit reference, chat.postMessage).
SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
HEADER_LIMIT = 150
CONTEXT_ELEMENTS_LIMIT = 10
BLOCKS_LIMIT = 50
TEXT_LIMIT = 4000
URL_LIMIT = 3000

TITLE_CHARS = 250
EXCERPT_CHARS = 1200

# History lookups start a little before `since`, so a clock running ahead of
# Slack's cannot hide the message we are looking for; keys make it exact.
CLOCK_SKEW = timedelta(minutes=5)

# Errors where sending the same row again cannot help until someone changes
# the configuration (token, channel, scopes) or the code (payload shape).
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        "msg_too_long",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
    }
)

HINTS: dict[str, str] = {
    "invalid_auth": "check the bot token (e.g. SLACK_BOT_TOKEN)",
    "not_authed": "no token was sent; check the token setting",
    "token_revoked": "the token was revoked; reinstall the app and update the token",
    "account_inactive": "the app or its user was deactivated",
    "channel_not_found": "check the channel id or name; private channels need the bot invited",
    "not_in_channel": "invite the bot to the channel (/invite @your-app)",
    "is_archived": "the channel is archived",
}

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")  # ids are upper case, names lower case
_CHANNEL_NAME = re.compile(r"^#?[a-z0-9][a-z0-9._-]{0,79}$")
_PING = re.compile(r"^<(!subteam\^[A-Z0-9]+|@[UW][A-Z0-9]+|!here|!channel)(\|[^<>&|]*)?>$")

_ESCAPED_LENGTH = {"&": 5, "<": 4, ">": 4}

_pace_lock = threading.Lock()
_last_post: dict[tuple[str, str], float] = {}


class SlackOptions(DestinationOptions):
    """`type: slack` in cron.yaml."""

    type: Literal["slack"] = "slack"
    token: SecretStr = Field(description="Bot token (xoxb-...), from the environment: ${SLACK_BOT_TOKEN}.")
    channel: str = Field(description="Channel id (C0123456789) or name (\"#support\"; quote it in YAML).")
    min_interval: float = Field(default=1.0, ge=0, le=60, description="Seconds between posts to one channel.")
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries of a rate-limited call, honouring Retry-After.")
    mention: str | None = Field(default=None, description="Who to ping, e.g. <!subteam^S0123ABCD> or <@U0123ABCD>.")
    mention_on: Annotated[tuple[Severity, ...], BeforeValidator(one_or_many)] = Field(default=(), description="Severities that add `mention`.")

    @field_validator("token")
    @classmethod
    def _token_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("the Slack token is empty; is the environment variable set?")
        return value

    @field_validator("channel")
    @classmethod
    def _channel_shape(cls, value: str) -> str:
        value = value.strip()
        if _CHANNEL_ID.match(value):
            return value
        if _CHANNEL_NAME.match(value):
            return "#" + value.lstrip("#")
        raise ValueError(f"{value!r} is neither a channel id (C0123456789) nor a channel name (\"#support\")")

    @field_validator("base_url")
    @classmethod
    def _trailing_slash(cls, value: str | None) -> str | None:
        """slack_sdk joins method names onto base_url, which needs the slash."""
        if value is None:
            return None
        return value if value.endswith("/") else value + "/"


    @field_validator("mention")
    @classmethod
    def _ping_shape(cls, value: str | None) -> str | None:
        if value is not None and not _PING.match(value):
            raise ValueError(f"{value!r} is not a Slack mention; write <!subteam^S0123ABCD>, <@U0123ABCD>, <!here> or <!channel>")
        return value

    @field_validator("mention_on")
    @classmethod
    def _mention_for_mention_on(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        # A field validator, not a model validator: pydantic quotes a model
        # validator's whole input, token included, in its error message.
        if value and not info.data.get("mention"):
            raise ValueError("mention_on needs `mention` (who to ping)")
        return value


class SlackError(DeliveryError):
    """A DeliveryError that also carries Slack's error code (`ratelimited`, `channel_not_found`, ...)."""

    def __init__(self, message: str, *, code: str, retry_after: float | None = None, permanent: bool = False,
                 in_doubt: bool = False):
        super().__init__(message, retry_after=retry_after, permanent=permanent, in_doubt=in_doubt)
        self.code = code


# -- escaping ---------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters, as its formatting reference requires."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """Untrusted `text`, cleaned, trimmed and escaped, at most `limit` characters
    once escaped. The raw text is cut, so an entity is never split."""
    raw = fmt.clean(text)
    escaped = escape(raw)
    if len(escaped) <= limit:
        return escaped
    room = limit - len(fmt.ELLIPSIS)
    used = keep = 0
    for char in raw:
        used += _ESCAPED_LENGTH.get(char, 1)
        if used > room:
            break
        keep += 1
    return escape(fmt.truncate(raw, keep + len(fmt.ELLIPSIS)))


def safe_url(url: str) -> str | None:
    """`url` ready to sit inside `<...|label>`, or None when it must not be linked."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    url = escape(quote(url, safe=":/?#[]@!$&'()*+,;=%~"))
    return url if len(url) <= URL_LIMIT else None


def link(url: str, label: str, limit: int = 1000) -> str:
    """A mrkdwn link to `url` labelled with untrusted `label`, at most `limit`
    characters; just the escaped label when the URL is missing, not http(s),
    or too long to fit."""
    text = fit(label, 200)
    target = safe_url(url)
    if target and len(target) + len(text) + 3 <= limit:
        return f"<{target}|{text}>"
    return text


# -- message ----------------------------------------------------------------


def _md(text: str) -> MarkdownTextObject:
    from slack_sdk.models.blocks import MarkdownTextObject

    return MarkdownTextObject(text=text, verbatim=True)


def _field(name: str, value: str) -> MarkdownTextObject:
    """A section field; `value` is already escaped and kept well under 2000 characters by its caller."""
    return _md(f"*{name}*\n{value}")


def _places_sections(alert: Alert, room: int) -> list[Block]:
    """"Seen in N places" as sections of at most 3000 characters, in at most `room` blocks."""
    from slack_sdk.models.blocks import SectionBlock

    places = fmt.places(alert)
    lines = [f"• {link(p.url, p.source)} — {fit(p.author, 200)}" for p in places]
    chunks: list[list[str]] = [[f"*Seen in {len(places)} places*"]]
    shown = 0
    for line in lines:
        current = chunks[-1]
        if len("\n".join([*current, line])) > SECTION_TEXT_LIMIT - 40:
            if len(chunks) == room:
                break
            chunks.append(current := [])
        current.append(line)
        shown += 1
    if shown < len(lines):
        chunks[-1].append(f"…and {len(lines) - shown} more")
    return [SectionBlock(text=_md("\n".join(chunk))) for chunk in chunks]


def build_blocks(alert: Alert, *, ping: str | None = None, note: str | None = None) -> list[Block]:
    """The Block Kit message for `alert`, within Slack's limits.

    `ping` is configuration (a user-group mention) and is the only text not
    escaped; `note` is an update line ("answered by @acme after 37 min").
    """
    from slack_sdk.models.blocks import (
        ContextBlock,
        DividerBlock,
        HeaderBlock,
        PlainTextObject,
        SectionBlock,
    )

    mention = alert.mention
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=fmt.truncate(fmt.headline(alert), HEADER_LIMIT), emoji=True))]
    if ping:
        blocks.append(SectionBlock(text=_md(ping)))

    # A response's thread title is context above the quote ("on: ..." cannot start a quote), never its bold title.
    title = fit(fmt.title_line(mention, TITLE_CHARS), TITLE_CHARS)
    context = fit(fmt.context_line(mention, TITLE_CHARS), TITLE_CHARS)
    quote_lines = [f">*{title}*"] if title else [context] if context else []
    body_room = SECTION_TEXT_LIMIT - len("\n".join(quote_lines)) - 2
    body = fit(mention.text, min(body_room, EXCERPT_CHARS))
    if body:
        quote_lines.append(f">{body}")
    if quote_lines:
        blocks.append(SectionBlock(text=_md("\n".join(quote_lines))))

    author = fit(fmt.author_label(mention), 300)
    fields = [
        _field("Source", link(mention.url, fmt.source_label(mention))),
        _field("Author", f":white_check_mark: {author}" if mention.author_is_brand else author),
        _field("Kind", fit(fmt.kind_label(mention), 300)),
        _field("Severity", fmt.severity_label(alert.severity)),
        _field("Labels", fit(fmt.labels_label(alert.labels), 1000)),
        _field("Matched rules", fit(", ".join(alert.rules) or "none", 1000)),
        _field("Monitor", fit(alert.monitor, 300)),
    ]
    if mention.created_at is not None:
        fields.append(_field("Posted", fmt.when_label(mention.created_at, alert.timezone)))
    blocks.append(SectionBlock(fields=fields))

    open_link = link(mention.url, f"Open on {fmt.source_name(mention.source)}", SECTION_TEXT_LIMIT - 10)
    if open_link.startswith("<"):  # an escaped label never starts with "<": a link was made
        blocks.append(SectionBlock(text=_md(f":link: {open_link}")))

    footer = ContextBlock(elements=[_md("earful"), _md(f"key {fit(alert.key, 500)}"), _md(f"cluster {fit(alert.cluster, 500)}")])
    note_block = SectionBlock(text=_md(f":memo: {fit(note, SECTION_TEXT_LIMIT - 10)}")) if note else None

    if len(alert.mentions) > 1:
        blocks.append(DividerBlock())
        room = BLOCKS_LIMIT - len(blocks) - 1 - (1 if note_block else 0)
        blocks.extend(_places_sections(alert, room))
    if note_block:
        blocks.append(note_block)
    blocks.append(footer)
    return blocks


def build_text(alert: Alert, *, ping: str | None = None, note: str | None = None) -> str:
    """The plain `text` fallback Slack shows in notifications and old clients."""
    mention = alert.mention
    what = fmt.subject(mention, TEXT_LIMIT)
    raw = f"{fmt.headline(alert)} — {fmt.author_label(mention)} on {fmt.source_label(mention)}: {what}"
    tail = " ".join(filter(None, [safe_url(mention.url) or "", f"({fit(note, 500)})" if note else ""]))
    prefix = f"{ping} " if ping else ""
    room = TEXT_LIMIT - len(prefix) - len(tail) - 1
    return f"{prefix}{fit(raw, room)} {tail}".rstrip()


def build_metadata(alert: Alert) -> dict[str, Any]:
    """Message metadata that lets `find_delivered` and audits tie a message to its item."""
    payload = {"key": alert.key, "cluster": alert.cluster, "monitor": alert.monitor, "rules": list(alert.rules)}
    return {"event_type": EVENT_TYPE, "event_payload": payload}


def _carries_key(message: dict[str, Any], key: str) -> str | None:
    """The ts of `message` when earful posted it for `key` (its metadata says so)."""
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return message["ts"] if metadata.get("event_type") == EVENT_TYPE and payload.get("key") == key else None


def _shared_file(message: dict[str, Any], filename: str) -> str | None:
    """The id of the file named `filename` that `message` shares, if any."""
    for shared in message.get("files") or ():
        if shared.get("name") == filename and shared.get("id"):
            return str(shared["id"])
    return None


def _retry_after(headers: dict[str, Any]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, (list, tuple)) else value
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


# -- destination ------------------------------------------------------------


class SlackDestination(Destination):
    """Posts each alert to one channel; see the module docstring for the rules it keeps."""

    type: ClassVar[str] = "slack"
    Options: ClassVar[type[DestinationOptions]] = SlackOptions
    digest_form: ClassVar[str | None] = "slack"
    options: SlackOptions

    def __init__(self, name: str, options: DestinationOptions):
        super().__init__(name, options)
        self._client: WebClient | None = None
        self._channel_id: str | None = self.options.channel if _CHANNEL_ID.match(self.options.channel) else None

    # -- public -------------------------------------------------------------
    def deliver(self, alert: Alert) -> str:
        """Post `alert`; return "CHANNEL_ID:ts" for a later chat.update.

        A digest (`alert.kind == "digest"`) is its rendered summary, or the
        chart that follows it (returns "CHANNEL_ID:FILE_ID").
        """
        if alert.kind == "digest":
            return self._deliver_digest(alert)
        ping = self._ping(alert)
        channel, thread_ts = None, None
        if alert.thread:  # an escalation: answer under the original message
            thread_channel, _, ts = alert.thread.partition(":")
            if thread_channel and ts:
                channel, thread_ts = thread_channel, ts
        return self.post_message(build_text(alert, ping=ping, note=alert.note), build_blocks(alert, ping=ping, note=alert.note),
                                 build_metadata(alert), channel=channel, thread_ts=thread_ts, broadcast=True)

    def post_message(self, text: str, blocks: list[Block] | list[dict[str, Any]], metadata: dict[str, Any], *,
                     channel: str | None = None, thread_ts: str | None = None, broadcast: bool = False) -> str:
        """chat.postMessage to the configured channel (or `channel`), paced per
        channel, links and names never expanded; returns "CHANNEL_ID:ts".

        `text`, `blocks` and `metadata` must already follow the escaping
        policy above (`build_*`, `fit`, `link`). `thread_ts` answers under
        a message; `broadcast` also shows that answer in the channel.
        """
        channel_ref = channel or self._channel_id or self.options.channel
        thread = {"thread_ts": thread_ts, "reply_broadcast": "true" if broadcast else None} if thread_ts else {}
        self._pace()
        try:
            response = self._call("chat_postMessage", channel=channel_ref, text=text, blocks=blocks, metadata=metadata,
                                  unfurl_links=False, unfurl_media=False, parse="none", link_names=False, **thread)
        finally:
            self._mark_posted()
        posted_to = str(response.get("channel") or channel_ref)
        if channel is None:
            self._channel_id = posted_to
        return f"{posted_to}:{response['ts']}"

    def upload_file(self, data: bytes, filename: str, *, title: str, alt: str | None = None,
                    channel: str | None = None, thread_ts: str | None = None) -> str:
        """Share `data` as a file in the channel (files_upload_v2), paced like a
        post; returns "CHANNEL_ID:FILE_ID". `filename` is what
        `find_delivered` looks for, so make it unique per delivery."""
        channel_id = channel or self._resolve_channel()
        self._pace()
        try:
            response = self._call("files_upload_v2", channel=channel_id, file=data, filename=filename, title=title,
                                  alt_txt=alt, thread_ts=thread_ts)
        finally:
            self._mark_posted()
        files = response.get("files") or [response.get("file") or {}]
        return f"{channel_id}:{files[0].get('id', '')}"

    def find_delivered(self, alert: Alert, since: datetime) -> str | None:
        """Search the channel's history from `since` for a message carrying
        `alert.key` (a digest's chart: the file of that name).

        Returns None (with a warning) when the token may not read history,
        so the outbox falls back to sending again rather than stalling.
        """
        upload = (alert.extra or {}).get("file") if alert.kind == "digest" else None
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        try:
            channel = alert.thread.partition(":")[0] if upload and alert.thread else self._resolve_channel()
            for message in self._history(channel, since - CLOCK_SKEW):
                found = _shared_file(message, upload["filename"]) if upload else _carries_key(message, alert.key)
                if found:
                    return f"{channel}:{found}"
            return None
        except SlackError as exc:
            if exc.code in ("missing_scope", "not_in_channel", "not_allowed_token_type"):
                log.warning("%s; cannot check for an earlier delivery of %s", exc, alert.key)
                return None
            raise

    def update(self, remote_id: str, alert: Alert, note: str) -> str:
        """Rewrite the message `remote_id` ("CHANNEL:ts") with `note` added, e.g.
        "answered by @acme after 37 min"; returns the same remote id."""
        channel, _, ts = remote_id.partition(":")
        if not channel or not ts:
            raise SlackError(f"{self._where()}: {remote_id!r} is not a Slack message id (CHANNEL:ts)", code="bad_remote_id", permanent=True)
        ping = self._ping(alert)
        self._call(
            "chat_update",
            channel=channel,
            ts=ts,
            text=build_text(alert, ping=ping, note=note),
            blocks=build_blocks(alert, ping=ping, note=note),
            metadata=build_metadata(alert),
            parse="none",
            link_names=False,
        )
        return remote_id

    def verify(self) -> str:
        """auth.test (the token), then conversations.info (the channel exists, is not archived, the bot
        may post there); nothing is posted."""
        identity = self._call("auth_test")
        channel_id = self._resolve_channel()
        info = self._call("conversations_info", channel=channel_id)
        channel = info.get("channel") or {}
        name = f"#{channel.get('name') or self.options.channel.lstrip('#')} ({channel_id})"
        if channel.get("is_archived"):
            raise SlackError(f"{self._where()}: {name}: {HINTS['is_archived']}", code="is_archived", permanent=True)
        granted = next((v for k, v in (info.headers or {}).items() if k.lower() == "x-oauth-scopes"), "")
        scopes = {scope.strip() for scope in str(granted).split(",")}
        if not channel.get("is_member") and "chat:write.public" not in scopes:
            raise SlackError(f"{self._where()}: the bot is not in {name}: {HINTS['not_in_channel']}",
                             code="not_in_channel", permanent=True)
        return f"bot {identity.get('user')} in workspace {identity.get('team')}; channel {name}"

    def close(self) -> None:
        self._client = None

    # -- internals ----------------------------------------------------------
    def _deliver_digest(self, alert: Alert) -> str:
        content = digest_content(self, alert)
        if "file" in content:  # the chart, shared in the channel the summary went to
            upload = content["file"]
            channel = alert.thread.partition(":")[0] if alert.thread else None
            return self.upload_file(decode_png(upload["png"]), upload["filename"], title=upload["title"],
                                    alt=upload.get("alt"), channel=channel)
        message = content["message"]
        return self.post_message(message["text"], message["blocks"], message["metadata"])

    def _where(self) -> str:
        return f"slack destination {self.name!r} (channel {self.options.channel})"

    def _ping(self, alert: Alert) -> str | None:
        if alert.kind == "escalation":
            return self.options.mention
        return self.options.mention if alert.severity in self.options.mention_on else None

    def _web(self) -> WebClient:
        if self._client is None:
            from slack_sdk import WebClient
            from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

            kwargs: dict[str, Any] = {"token": self.options.token.get_secret_value(), "timeout": self.options.timeout}
            if self.options.base_url:
                kwargs["base_url"] = self.options.base_url
            client = WebClient(**kwargs)
            client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=self.options.max_retries))
            self._client = client
        return self._client

    def _call(self, method: str, **kwargs: Any) -> SlackResponse:
        """One Web API call with every failure turned into a SlackError that
        names this destination and never the token."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        api = method.replace("_", ".", 1)
        try:
            return getattr(self._web(), method)(**{k: v for k, v in kwargs.items() if v is not None})
        except SlackApiError as exc:
            raise self._api_error(api, exc.response) from None
        except (SlackClientError, OSError, HTTPException, ValueError) as exc:
            # The post may have reached Slack before the connection failed: check history before resending.
            raise SlackError(f"{self._where()}: {api} failed: {type(exc).__name__}: {exc}", code="connection_error",
                             in_doubt=True) from None

    def _api_error(self, api: str, response: SlackResponse) -> SlackError:
        if response.status_code == 429:
            retry_after = _retry_after(response.headers)
            wait = f"; Slack asks to wait {retry_after:g}s" if retry_after is not None else ""
            return SlackError(
                f"{self._where()}: {api} still rate limited after {self.options.max_retries} retries{wait}",
                code="ratelimited",
                retry_after=retry_after,
            )
        data = response.data if isinstance(response.data, dict) else {}
        code = str(data.get("error") or f"http_{response.status_code}")
        hint = HINTS.get(code, "")
        if code == "missing_scope" and data.get("needed"):
            hint = f"the token needs the scope {data['needed']}"
        detail = f": {hint}" if hint else ""
        return SlackError(f"{self._where()}: {api} failed with Slack error {code}{detail}", code=code, permanent=code in PERMANENT_ERRORS)

    def _history(self, channel: str, oldest: datetime) -> Iterator[dict[str, Any]]:
        """The channel's messages since `oldest`, newest first, page by page, metadata included."""
        cursor: str | None = None
        while True:
            response = self._call("conversations_history", channel=channel, oldest=f"{oldest.timestamp():.6f}",
                                  include_all_metadata=True, limit=200, cursor=cursor)
            yield from response.get("messages") or ()
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def _resolve_channel(self) -> str:
        """The channel id: configured, learnt from a post, or looked up by name once."""
        if self._channel_id:
            return self._channel_id
        name = self.options.channel.lstrip("#")
        cursor: str | None = None
        while True:
            response = self._call("conversations_list", types="public_channel", exclude_archived=True, limit=1000, cursor=cursor)
            for channel in response.get("channels") or ():
                if channel.get("name") == name:
                    self._channel_id = str(channel["id"])
                    return self._channel_id
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                raise SlackError(
                    f"{self._where()}: no public channel named #{name} is visible to the bot; configure the channel id",
                    code="channel_not_found",
                    permanent=True,
                )

    def _pace_key(self) -> tuple[str, str]:
        return (self.options.base_url or "", self.options.channel)

    def _pace(self) -> None:
        """Sleep what is left of `min_interval` since the last post to this channel.

        Shared by every destination in the process that posts to the same
        channel, because Slack's one-message-per-second is per channel.
        """
        with _pace_lock:
            last = _last_post.get(self._pace_key())
        if last is not None:
            wait = last + self.options.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def _mark_posted(self) -> None:
        with _pace_lock:
            _last_post[self._pace_key()] = time.monotonic()


DESTINATION = SlackDestination
