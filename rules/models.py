"""Typed shape of a rule pack (`rules/NAME.yaml`) and of a rule's verdict.

Admins edit rule packs; these models are what the YAML is parsed into, once,
so that every later stage works with checked values (a severity is one of
four words, `reply_within` is a timedelta) and every error can point at the
line it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

Severity = Literal["low", "medium", "high", "critical"]


def one_or_many(value: object) -> object:
    """YAML admins write `notify: support` as often as `notify: [support]`."""
    return [value] if isinstance(value, str) else value


Names = Annotated[tuple[str, ...], BeforeValidator(one_or_many)]
SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}

_DURATION = re.compile(r"^\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$", re.I)


def parse_duration(value: object) -> timedelta:
    """'2h', '1h30m', '3d', '45m', '1w', or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            w, d, h, mi, s = (int(g or 0) for g in m.groups())
            return timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)
    raise ValueError(f"{value!r} is not a duration; write e.g. 30m, 2h, 1h30m, 3d")


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if (seconds and delta < timedelta(hours=1)) or not parts:  # seconds only matter for short spans
        parts.append(f"{seconds}s")
    return "".join(parts)


class Brand(BaseModel):
    """Who "we" are: mentions by these accounts never alert, and their
    replies are what answers a customer's question."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    accounts: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("accounts", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    def is_brand(self, source: str, author: str) -> bool:
        wanted = {a.lower().lstrip("@") for a in self.accounts.get(source, ())}
        return author.lower().lstrip("@").removeprefix("u/").removeprefix("/u/") in wanted


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    query: str = Field(min_length=1)
    labels: Names = ()
    severity: Severity = "medium"
    reply_within: timedelta | None = None
    notify: Names | None = None
    escalate: Names | None = None
    enabled: bool = True
    description: str = ""

    @field_validator("reply_within", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return None if value is None else parse_duration(value)



class RulePack(BaseModel):
    """One `rules/NAME.yaml` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""  # filled from the file name by the loader
    brand: Brand | None = None
    rules: tuple[Rule, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Match:
    """A rule's verdict on one mention: what it is and where it should go."""

    mention_key: str
    rule_id: str
    pack: str
    labels: tuple[str, ...] = ()
    severity: str = "medium"
    destinations: tuple[str, ...] | None = None  # None: the monitor's `notify`
    reply_within: timedelta | None = None
    escalate: tuple[str, ...] | None = None

    @property
    def qualified_rule(self) -> str:
        return f"{self.pack}/{self.rule_id}" if self.pack else self.rule_id
