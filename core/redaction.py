"""Secrets out of every text earful shows or stores.

Credentials leak through text nobody wrote on purpose: a library's debug
line with the request URL (Telegram puts the bot token in the path), an
exception that quotes a header or a form, a URL a connector names in its
error. So there is one function, `redact`, that every such text passes
through (the log handlers, the CLI's output streams, the error columns of
state.db, `redact_url`), and it masks two things:

- the shapes a credential has wherever it comes from: Slack and GitHub
  tokens, `Bearer`/`Basic`/`Bot` values, `Authorization`/`Cookie` headers,
  a Telegram `/bot<id>:<token>` path, `user:password@` in URLs,
  secret-named query parameters and secret-named keys in dict/JSON text;
- the secret values of the configuration this process runs (each SecretStr
  or secret-named option, each `${VAR}` whose name says it is a secret),
  handed over once with `use_secrets` by the hub after loading it.

The registry is module state on purpose: a leaf may import only
`earful.core`, and a secret the hub learned must be masked in a message a
connector builds.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words; such secrets are not worth the name anyway

SECRET_NAME = re.compile(r"token|key|secret|pass|auth(?!or)|sig|session|code|usg|credential|cookie", re.I)
"""A parameter, header, option or variable name whose value is a credential."""

_SCHEME = r"Bearer|Basic|Bot|OAuth"
_KEY = r"(\w*(?:token|secret|password|passwd|api_?key|auth(?!or)\w*|cookie|session\w*|credential\w*))"
_SHAPES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # the Bot API puts the token in the URL path: /bot<id>:<token>/getUpdates
    (re.compile(r"(?<![A-Za-z0-9])bot\d+:[A-Za-z0-9_-]+"), "bot<token>"),
    (re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+"), rf"\1-{MASK}"),  # Slack bot, user and app tokens
    (re.compile(r"\b(gh[pousr]_|github_pat_)[A-Za-z0-9_]{16,}"), rf"\1{MASK}"),  # GitHub tokens
    # an auth scheme and its credential (12+ characters with a digit, so "Bot tokens" stays prose)
    (re.compile(rf"\b({_SCHEME})(\s+)(?=[A-Za-z._~+/=:-]*\d)[A-Za-z0-9._~+/=:-]{{12,}}"), rf"\1\2{MASK}"),
    # header values, as sent or as a dict's repr: Authorization: Basic ..., 'Cookie': '...', X-Api-Key=...
    (re.compile(rf"((?:Proxy-)?Authorization|Set-Cookie|Cookie|X-[\w-]*(?:Key|Token|Secret))(['\"]?\s*[:=]\s*['\"]?)"
                rf"(?:({_SCHEME}) )?[^'\"\r\n,}}]+", re.I),
     lambda m: f"{m[1]}{m[2]}{m[3] + ' ' if m[3] else ''}{MASK}"),
    (re.compile(r"(\w+://)[^/\s:@'\"]+:[^/\s@'\"]+@"), rf"\1{MASK}@"),  # user:password@host
    (re.compile(r"([?&;][\w.-]*?(?:token|key|secret|pass|auth(?!or)|sig|session|code|usg|credential)[\w.-]*=)[^&#\s'\"]+", re.I),
     rf"\1{MASK}"),
    # a secret-named key and its value in dict or JSON text ('password': '...') or a pair (("client_secret", "..."))
    (re.compile(rf"(['\"]){_KEY}\1(\s*:\s*)(['\"])(?:(?!\4).)*\4", re.I), rf"\1\2\1\3\4{MASK}\4"),
    (re.compile(rf"([(\[]\s*)(['\"]){_KEY}\2(\s*,\s*)(['\"])(?:(?!\5).)*\5", re.I), rf"\1\2\3\2\4\5{MASK}\5"),
]

_known_pattern: re.Pattern[str] | None = None


def use_secrets(values: Iterable[str | None]) -> None:
    """Mask these values (the running configuration's secrets) from now on, as written and as URL-encoded;
    empty and short ones are ignored. Replaces what an earlier call handed over."""
    global _known_pattern
    plain = {v for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET_LENGTH}
    forms = {form for v in plain for form in (v, quote(v, safe=""), quote_plus(v))}
    # longest first, so a secret that contains another is masked whole
    _known_pattern = re.compile("|".join(re.escape(v) for v in sorted(forms, key=len, reverse=True))) if forms else None


def redact(text: str) -> str:
    """`text` with every credential-shaped value and every secret of the configuration masked."""
    if not text:
        return text
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    if _known_pattern is not None:
        text = _known_pattern.sub(MASK, text)
    return text
