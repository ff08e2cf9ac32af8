"""Values still as the template left them: `SLACK_BOT_TOKEN=xoxb-your-bot-token`.

`earful init` writes `.env.example`; an operator who copies it to `.env`
and forgets a line gets a configuration that loads, validates and then
fails at 3 a.m. with `invalid_auth`. A placeholder is recognisable, so
`earful check` reports it like any other mistake: at the line to edit
(the `.env` line, or the cron.yaml line when the value comes from the
process environment), naming the variable, never echoing a value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Mapping

from .yamlfile import (
    ENV_REFERENCE,  # the one `${VAR}` grammar
    Problem,
    YamlDocument,
    display_name,
)

PLACEHOLDER = re.compile(
    r"your[-_ ]|change[-_ ]?me|replace[-_ ]?me|placeholder|<[^<>]*>|(?:^|[-_.:/ ])x{3,}(?:$|[-_.:/ ])",
    re.IGNORECASE,
)
"""What template values look like: `your-bot-token`, `changeme`, `<token>`, `xoxb-xxxx-xxxx`."""

ENV_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def placeholder_problems(doc: YamlDocument, env: Mapping[str, str], env_file: Path,
                         process_env: Mapping[str, str]) -> list[Problem]:
    """One problem per `${VAR}` that cron.yaml uses whose value looks like a template placeholder."""
    env_lines = _assignment_lines(env_file)
    problems: list[Problem] = []
    reported: set[str] = set()
    for loc, name in _references(doc.data, ()):
        value = env.get(name, "")
        if not PLACEHOLDER.search(value) or name in reported:
            continue
        reported.add(name)
        used_at = doc.problem(loc, "")
        what = f"{name} still holds a placeholder from the template"
        if name not in process_env and name in env_lines:
            problems.append(Problem(display_name(env_file), env_lines[name],
                                    f"{what}: put the real value here (used at {used_at.file}:{used_at.line})"))
        else:
            problems.append(Problem(used_at.file, used_at.line,
                                    f"environment variable {what}: set it to the real value"))
    return problems


def _references(value: Any, loc: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(location, variable name) of each `${VAR}` in the document, in order."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _references(item, loc + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, loc + (index,))
    elif isinstance(value, str):
        for match in ENV_REFERENCE.finditer(value):
            yield loc, match.group(1)


def _assignment_lines(env_file: Path) -> dict[str, int]:
    """Variable -> 1-based line of its (last) assignment in the .env file."""
    try:
        text = env_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = ENV_ASSIGNMENT.match(line)
        if match:
            lines[match.group(1)] = number
    return lines
