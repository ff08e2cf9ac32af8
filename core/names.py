"""The "one name or a list of names" shape YAML admins write everywhere."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator


def one_or_many(value: object) -> object:
    """YAML admins write `notify: support` as often as `notify: [support]`."""
    return [value] if isinstance(value, str) else value


Names = Annotated[tuple[str, ...], BeforeValidator(one_or_many)]
