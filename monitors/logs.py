"""Logging for the CLI, with every secret masked in whatever reaches the terminal.

`earful -v` turns on DEBUG for every library, and the libraries log what
they send: urllib3 prints each request line (Telegram's bot token is in the
path), prawcore prints the form it posts for a token, an exception quotes a
header. Rather than trust each of them, one mechanism
(`earful.core.redaction.redact`) is applied at the two places all of it
passes: a filter on the root log handlers (the formatted message with its
args, the exception text, the stack) and the process's stdout/stderr
(earful's own messages, tracebacks, anything printed). The values to mask
come from the loaded configuration (`use_config_secrets`); the credential
shapes are masked before any configuration is read.

`run --quiet` (for cron, which mails whatever a job prints) also drops the
libraries' own log lines below CRITICAL (`quiet`): slack_sdk logs an ERROR
for a failed call before earful reports that same failure in its own line,
which names the monitor or destination and says what happens next.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Iterator, Mapping, TextIO

from pydantic import BaseModel, SecretStr

from earful.core.redaction import redact, use_secrets

from .yamlfile import environment

SECRET_FIELD = re.compile(r"token|secret|passw|api_?key|private_?key|access_?key|credential|cookie|session", re.I)
"""An option or `${VAR}` name whose value is a credential even when it is not typed SecretStr."""

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Masks secrets in a record before any handler formats it: message and args, exception text, stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call is the handler's to report (through the redacted stderr)
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class OnlyEarful(logging.Filter):
    """Passes earful's own records, and a library's only at CRITICAL (installed by `quiet`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.partition(".")[0] == "earful" or record.levelno >= logging.CRITICAL


class RedactingStream:
    """A text stream that masks secrets in everything written to it; the rest is the wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        self.wrapped.write(redact(text))
        return len(text)  # what the caller handed over, as io.TextIOBase.write reports

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def setup(verbose: bool) -> None:
    """Log at DEBUG (`-v`) or WARNING to stderr, with secrets masked in every record and in stdout/stderr."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
        for earlier in [f for f in handler.filters if isinstance(f, OnlyEarful)]:
            handler.removeFilter(earlier)  # `quiet` holds for one invocation


def quiet() -> None:
    """From now on, log only earful's own records and a library's CRITICAL ones."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, OnlyEarful) for f in handler.filters):
            handler.addFilter(OnlyEarful())


def use_config_secrets(config: Any) -> None:
    """From now on, mask every secret `config` (a loaded `Config`) resolved, wherever it shows."""
    use_secrets(config_secrets(config))


def config_secrets(config: Any) -> set[str]:
    """Each SecretStr or secret-named option of every monitor and destination, and each secret-named `${VAR}` used."""
    found: set[str] = set()
    for options in [m.options for m in config.monitors.values()] + [d.options for d in config.destinations.values()]:
        found.update(_secret_values(options, ""))
    env = environment(config.directory, config.settings.env_file)
    found.update(env[name] for name in config.env_names if name in env and SECRET_FIELD.search(name))
    return found


def _secret_values(value: Any, name: str) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from _secret_values(getattr(value, field), field)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _secret_values(item, str(key))
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _secret_values(item, name)
    elif isinstance(value, str) and SECRET_FIELD.search(name):
        yield value
