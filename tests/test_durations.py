"""Every duration option of every connector speaks the one grammar (`earful.core.durations`).

`reply_within: 1h30m` works in a rule pack, so `first_run_lookback: 1h30m`
(or any other span of time) must work in every connector's options too.
The connectors are discovered through the registry, so a new connector's
options are checked without touching this file.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from earful import connectors
from earful.core import parse_duration


def _duration_fields(name: str) -> list[str]:
    options = connectors.load(name).Options
    return [field for field, info in options.model_fields.items() if info.annotation in (timedelta, timedelta | None)]


CONNECTORS = sorted(connectors.available())  # imported by each test, so one broken module fails only its own


def _field_errors(name: str, field: str, value: Any) -> list[dict[str, Any]]:
    """The validation errors of `field` alone: other required options are missing on purpose."""
    try:
        connectors.load(name).Options.model_validate({field: value})
    except ValidationError as exc:
        return [e for e in exc.errors() if e["loc"][:1] == (field,)]
    return []


def test_the_connectors_have_duration_options_to_check() -> None:
    assert "first_run_lookback" in _duration_fields("reddit") and "federation_lag" in _duration_fields("mastodon")


@pytest.mark.parametrize("name", CONNECTORS)
def test_every_duration_option_accepts_the_shared_grammar(name: str) -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for field in _duration_fields(name):
        assert _field_errors(name, field, "1h30m") == [], f"{name}.{field} refuses 1h30m"
        assert _field_errors(name, field, "45m") == [], f"{name}.{field} refuses 45m"


@pytest.mark.parametrize("name", CONNECTORS)
def test_every_duration_option_rejects_what_the_grammar_rejects(name: str) -> None:
    for field in _duration_fields(name):
        assert _field_errors(name, field, "ninety minutes"), f"{name}.{field} accepts 'ninety minutes'"
