"""YAML loading that remembers where every value came from.

Admins edit cron.yaml and rules/*.yaml by hand; an error is only useful when
it says `cron.yaml:14`. ruamel.yaml's round-trip loader keeps line numbers
on every mapping and sequence, so validation errors (pydantic `loc` tuples)
can be turned back into lines. `${VAR}` references are expanded here, after
parsing, so that an expanded secret can never break YAML syntax and never
appears in an error message; a `${` that opens no valid reference is an
error too, never a literal token. Bytes YAML cannot take (invalid UTF-8, a
NUL) are located to their line as well. The `.env` holding the secrets gets
a warning when others may read or change it.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a configuration file, printable as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class ConfigError(Exception):
    """Every problem found in the configuration, not just the first."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class YamlDocument:
    """A parsed file: `data` keeps ruamel's line info, `plain` is plain Python."""

    path: Path
    display: str
    data: Any

    def line_of(self, loc: Iterable[Any]) -> int:
        """1-based line of the value at `loc`, or of its deepest existing parent."""
        node = self.data
        line = 1
        for part in loc:
            try:
                if isinstance(node, Mapping) and part in node:
                    line = node.lc.key(part)[0] + 1
                    node = node[part]
                elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                    line = node.lc.item(part)[0] + 1
                    node = node[part]
                else:
                    break
            except (AttributeError, KeyError, TypeError):
                break
        return line

    def problem(self, loc: Iterable[Any], message: str) -> Problem:
        return Problem(self.display, self.line_of(loc), message)


def display_name(path: Path, base: Path | None = None) -> str:
    """A short file name for messages: relative to `base` (or the cwd) when possible."""
    for root in (base, Path.cwd()):
        if root is None:
            continue
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            continue
    return str(path)


def load_yaml(path: Path, display: str | None = None) -> YamlDocument:
    """Parse `path`; syntax errors become a ConfigError with the file's line."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    shown = display or display_name(path)
    try:
        text = decode(path.read_bytes(), shown)
    except FileNotFoundError:
        raise ConfigError([Problem(shown, 0, "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(shown, 0, f"cannot read file: {exc.strerror or exc}")]) from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in str(exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote: point at where it opened, not at EOF
        line = mark.line + 1 if mark is not None else 0
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError([Problem(shown, line, f"invalid YAML: {what}")]) from None
    except ReaderError as exc:  # a character YAML forbids anywhere, comments included
        raise ConfigError([_bad_character(text, exc.position, exc.character, shown)]) from None
    except YAMLError as exc:
        raise ConfigError([Problem(shown, 0, f"invalid YAML: {exc}")]) from None
    return YamlDocument(path, shown, data)


def decode(raw: bytes, shown: str) -> str:
    """`raw` as UTF-8 text, or a ConfigError that names the line of the first byte that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start:exc.end].hex(" ")
        raise ConfigError([Problem(shown, line, f"not valid UTF-8 (byte {bad} at column {column}); save the file "
                                                "as UTF-8")]) from None


def _bad_character(text: str, position: int, code: int, shown: str) -> Problem:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    what = "a NUL byte" if code == 0 else f"the control character U+{code:04X}"
    return Problem(shown, line, f"contains {what} at column {column}, which YAML does not allow; remove it")


def read_env_file(path: Path) -> dict[str, str]:
    """Variables from a `.env` file beside the config (missing file: none)."""
    if not path.is_file():
        return {}
    import io

    from dotenv import dotenv_values

    shown = display_name(path)
    try:
        text = decode(path.read_bytes(), shown)
    except OSError as exc:
        raise ConfigError([Problem(shown, 0, f"cannot read file: {exc.strerror or exc}")]) from None
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def warn_if_exposed(path: Path) -> None:
    """One line on stderr when others may read the secrets in `path`, or change them."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        shown = display_name(path)
        sys.stderr.write(f"earful: warning: {shown} holds secrets but is readable or writable by group/others "
                         f"(mode {mode:04o}): chmod 600 {shown}\n")


def expand_env(doc: YamlDocument, env: Mapping[str, str], problems: list[Problem]) -> tuple[Any, set[str]]:
    """Plain Python copy of `doc.data` with `${VAR}` / `${VAR:-default}` expanded.

    Returns the data and the names of the variables it used (their values
    feed the idle-tick fingerprint). A missing variable is a problem that
    names the variable and the line, never a value.
    """
    used: set[str] = set()

    def expand(value: Any, loc: tuple[Any, ...]) -> Any:
        if isinstance(value, Mapping):
            return {str(k): expand(v, loc + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [expand(v, loc + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            if _unclosed_reference(value):
                problems.append(doc.problem(loc, "'${' opens no environment reference: write ${NAME} or "
                                                 "${NAME:-default} (a name of letters, digits and _, then '}')"))
                return ""

            def sub(m: re.Match[str]) -> str:
                name, default = m.group(1), m.group(2)
                used.add(name)
                if name in env and env[name] != "":
                    return env[name]
                if default is not None:
                    return default
                problems.append(doc.problem(loc, f"environment variable {name} is not set (put it in the environment or in .env)"))
                return ""

            return ENV_REFERENCE.sub(sub, value)
        if value is not None and type(value).__module__.startswith("ruamel"):
            return _plain_scalar(value)
        return value

    return expand(doc.data, ()), used


def _unclosed_reference(value: str) -> bool:
    """True when some `${` in `value` does not start a whole `${NAME}` / `${NAME:-default}`."""
    start = value.find("${")
    while start != -1:
        found = ENV_REFERENCE.match(value, start)
        if found is None:
            return True
        start = value.find("${", found.end())
    return False


def _plain_scalar(value: Any) -> Any:
    """ruamel wraps some scalars (ScalarFloat, ScalarBoolean ...); unwrap them."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def environment(config_dir: Path, env_file: str = ".env") -> dict[str, str]:
    """The process environment over the `.env` file beside the config."""
    merged = read_env_file(config_dir / env_file)
    merged.update(os.environ)
    return merged
