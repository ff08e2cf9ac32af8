"""Typed shape of a rule pack (`rules/NAME.yaml`).

Admins edit rule packs; these models are what the YAML is parsed into, once,
so that every later stage works with checked values (a severity is one of
four words, `reply_within` is a timedelta) and every error can point at the
line it came from.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from earful.core import Names, Severity
from earful.core.durations import OptionalDuration


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
    reply_within: OptionalDuration = None
    notify: Names | None = None
    escalate: Names | None = None
    enabled: bool = True
    description: str = ""




class RulePack(BaseModel):
    """One `rules/NAME.yaml` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""  # filled from the file name by the loader
    brand: Brand | None = None
    rules: tuple[Rule, ...] = Field(min_length=1)
