"""cron.yaml and rules/*.yaml, parsed once into typed objects.

Everything a run needs is validated here before anything is fetched or
written: unknown keys, wrong types, unknown connectors or destination types,
bad cron expressions, missing rule packs, undefined destinations, rule
queries that do not parse or can never match. All problems are collected
and reported together as `file:line: message`, because an admin fixing a
config one error per run is an admin who stops using the tool.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from earful import alerts, connectors
from earful.connectors.base import ConnectorOptions
from earful.core import Names, parse_duration
from earful.core.durations import Duration
from earful.rules.models import RulePack

if TYPE_CHECKING:
    from .business_hours import BusinessHours

from .digest import DigestConfig
from .digest import config_problems as digest_problems
from .placeholders import placeholder_problems
from .spikes import SpikeConfig
from .yamlfile import (
    ConfigError,
    Problem,
    YamlDocument,
    display_name,
    environment,
    expand_env,
    load_yaml,
    warn_if_exposed,
)

DEFAULT_SCHEDULE = "*/15 * * * *"


class MonitorCommon(BaseModel):
    """Keys every monitor has; everything else belongs to its connector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connector: str
    schedule: str = DEFAULT_SCHEDULE
    query: str | None = None
    rules: Names = ()
    notify: Names = ()
    enabled: bool = True
    description: str = ""
    reply_checks_per_run: int = Field(default=20, ge=0, le=1000,
                                      description="At most this many reply re-checks per run (they cost API requests).")



class Settings(BaseModel):
    """Top level of cron.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str = "state.db"
    timezone: str = "UTC"
    rules_dir: str = "rules"
    env_file: str = ".env"
    destinations: dict[str, dict[str, Any]] = Field(default_factory=dict)
    monitors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    defaults: "Defaults" = Field(default_factory=lambda: Defaults())
    health: "Health" = Field(default_factory=lambda: Health())
    digests: dict[str, DigestConfig] = Field(default_factory=dict)
    spikes: SpikeConfig | None = None
    run_budget: Duration = Field(default=timedelta(minutes=10), gt=timedelta(0),
                                 description="Start no further monitor once a run has taken this long (see runner.py).")
    concurrency: int = Field(default=8, ge=1, le=64,
                             description="Monitors fetched at once (1: one after another); the store has one writer.")
    per_host: int = Field(default=2, ge=1, le=64,
                          description="Monitors fetching from one host at once, so no site is hammered.")


class Defaults(BaseModel):
    """Values monitors and rules inherit unless they set their own.

    `reply_within` is the SLA for alerts labelled question or complaint
    whose rule sets none; `business_hours` ("Mon-Fri 09:00-18:00", in the
    configured timezone) and `holidays` make every SLA count business time.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    notify: Names = ()
    reply_within: timedelta | None = None
    business_hours: str | None = None
    holidays: tuple[date, ...] = ()
    retry_max_backoff: timedelta = timedelta(hours=1)

    @field_validator("reply_within", "retry_max_backoff", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return None if value is None else parse_duration(value)

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            from datetime import timezone

            from .business_hours import BusinessHours

            BusinessHours.parse(value, timezone.utc)
        return value


class Health(BaseModel):
    """When a channel counts as unwatched (see monitors/health.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int = Field(default=3, ge=1, description="Consecutive failed runs before 'channel unwatched'.")
    silence_floor: timedelta = Field(default=timedelta(hours=24), description="Never call a channel silent sooner.")
    silence_factor: float = Field(default=3.0, gt=1, description="Silent when quiet for this many times its usual gap.")
    notify: Names = ()

    @field_validator("silence_floor", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)


Settings.model_rebuild()


@dataclass(frozen=True)
class MonitorConfig:
    name: str
    common: MonitorCommon
    options: ConnectorOptions

    @property
    def connector(self) -> str:
        return self.common.connector

    @property
    def schedule(self) -> str:
        return self.common.schedule


@dataclass(frozen=True)
class DestinationConfig:
    name: str
    type: str
    options: Any  # the destination's own Options model


@dataclass(frozen=True)
class Config:
    path: Path
    directory: Path
    state_path: Path
    timezone: tzinfo
    settings: Settings
    monitors: dict[str, MonitorConfig]
    destinations: dict[str, DestinationConfig]
    packs: dict[str, RulePack]
    pack_files: dict[str, Path]
    matcher: Any = None  # earful.rules.engine.Matcher over every pack, compiled once
    env_names: frozenset[str] = frozenset()
    files: tuple[Path, ...] = field(default=())

    def monitor_packs(self, monitor: MonitorConfig) -> tuple[RulePack, ...]:
        return tuple(self.packs[name] for name in monitor.common.rules)

    def business_hours(self) -> "BusinessHours | None":
        """The SLA clock from `defaults.business_hours`, or None for wall-clock SLAs."""
        spec = self.settings.defaults.business_hours
        if spec is None:
            return None
        from .business_hours import BusinessHours

        return BusinessHours.parse(spec, self.timezone, frozenset(self.settings.defaults.holidays))


def _describe(err: Mapping[str, Any], known: list[str] | None = None) -> str:
    """A pydantic error as an admin reads it; never echoes the input value."""
    loc = [str(p) for p in err.get("loc", ())]
    key = loc[-1] if loc else "value"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        hint = ""
        close = difflib.get_close_matches(key, known or [], n=1)
        if close:
            hint = f" (did you mean '{close[0]}'?)"
        elif known:
            hint = f" (known keys: {', '.join(sorted(known))})"
        return f"unknown key '{key}'{hint}"
    if kind == "missing":
        return f"missing required key '{key}'"
    message = str(err.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if kind == "literal_error":
        message = message.replace("Input should be", "must be")
    return f"{key}: {message}"


def _known_fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _validate(model: type[BaseModel], data: Any, doc: YamlDocument, prefix: tuple[Any, ...], problems: list[Problem],
              known: list[str] | None = None) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = prefix + tuple(err["loc"])
            problems.append(doc.problem(loc, _describe(err, known or _known_fields(model))))
        return None


def load_config(path: str | Path, rule_files: Mapping[str, Path] | None = None) -> Config:
    """Parse and validate cron.yaml and every rule pack it uses (pack NAME from `rule_files[NAME]` when given:
    `earful backtest --rules FILE` tries an edited pack on the deployment exactly as it would run).

    Raises ConfigError with every problem found. Writes nothing.
    """
    config_path = Path(path)
    base = config_path.parent if config_path.parent != Path("") else Path(".")
    doc = load_yaml(config_path, display_name(config_path))
    if doc.data is None:
        raise ConfigError([Problem(doc.display, 1, "the file is empty; see `earful init` for an example")])
    if not isinstance(doc.data, Mapping):
        raise ConfigError([Problem(doc.display, 1, "the top level must be a mapping (state:, destinations:, monitors:)")])

    problems: list[Problem] = []
    env_file = str(doc.data.get("env_file", ".env")) if isinstance(doc.data.get("env_file", ".env"), str) else ".env"
    env = environment(base, env_file)
    warn_if_exposed(base / env_file)
    data, env_names = expand_env(doc, env, problems)
    unset = list(problems)  # each leaves "" in its value: say so once, not again as an invalid value
    problems.extend(placeholder_problems(doc, env, base / env_file, os.environ))
    settings = _validate(Settings, data, doc, (), problems)
    if settings is None:
        raise ConfigError(problems)

    tz = _timezone(settings.timezone, doc, problems)
    destinations = _destinations(settings, doc, problems)
    packs, pack_files, pack_docs = _packs(settings, base, doc, problems, rule_files or {})
    monitors = _monitors(settings, doc, problems, destinations, packs)
    _check_defaults(settings, doc, problems, destinations)
    for loc, message in digest_problems(settings.digests, destinations):
        problems.append(doc.problem(loc, message))
    if settings.spikes:
        for index, dest in enumerate(settings.spikes.notify):
            if dest not in settings.destinations:
                problems.append(doc.problem(("spikes", "notify", index), _unknown_destination(dest, settings)))
        if not (settings.spikes.notify or settings.defaults.notify):
            problems.append(doc.problem(("spikes",), "spikes: no destination; set spikes.notify (or defaults.notify)"))
    _check_rule_destinations(packs, pack_docs, destinations, problems)
    matcher = _compile_rules(packs, pack_docs, problems)

    if problems:
        raise ConfigError(_once_per_unset_variable(problems, unset))
    state_path = Path(settings.state)
    if not state_path.is_absolute():
        state_path = base / state_path
    return Config(
        path=config_path,
        directory=base,
        state_path=state_path,
        timezone=tz,
        settings=settings,
        monitors=monitors,
        destinations=destinations,
        packs=packs,
        pack_files=pack_files,
        matcher=matcher,
        env_names=frozenset(env_names),
        files=(config_path, *pack_files.values()),
    )


def _once_per_unset_variable(problems: list[Problem], unset: list[Problem]) -> list[Problem]:
    """Drop what a validator said about a value left empty by an unset `${VAR}` (e.g. "the Slack token is
    empty"): the unset variable is the problem, reported on that line already."""
    lines = {(p.file, p.line) for p in unset}
    return [p for p in problems if p in unset or (p.file, p.line) not in lines]


def _timezone(name: str, doc: YamlDocument, problems: list[Problem]) -> tzinfo:
    from datetime import timezone
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(doc.problem(("timezone",), f"unknown timezone '{name}' (use an IANA name such as Europe/Berlin)"))
        return timezone.utc


def _destinations(settings: Settings, doc: YamlDocument, problems: list[Problem]) -> dict[str, DestinationConfig]:
    found: dict[str, DestinationConfig] = {}
    kinds = alerts.available()
    for name, raw in settings.destinations.items():
        loc = ("destinations", name)
        if not isinstance(raw, Mapping):
            problems.append(doc.problem(loc, f"destination '{name}' must be a mapping with a 'type'"))
            continue
        kind = raw.get("type")
        if not kind:
            problems.append(doc.problem(loc, f"destination '{name}' needs a 'type' ({', '.join(sorted(kinds))})"))
            continue
        if kind not in kinds:
            problems.append(doc.problem(loc + ("type",), f"unknown destination type '{kind}'{did_you_mean(kind, kinds)}"))
            continue
        try:
            cls = alerts.load(kind)
        except ImportError as exc:
            problems.append(doc.problem(loc + ("type",), f"destination type '{kind}' cannot be loaded: {exc}"))
            continue
        options = _validate(cls.Options, dict(raw), doc, loc, problems)
        if options is not None:
            found[name] = DestinationConfig(name, kind, options)
    return found


def _packs(settings: Settings, base: Path, doc: YamlDocument, problems: list[Problem], rule_files: Mapping[str, Path]):
    """Load every rule pack any monitor names (each file once)."""
    rules_dir = base / settings.rules_dir
    packs: dict[str, RulePack] = {}
    files: dict[str, Path] = {}
    docs: dict[str, YamlDocument] = {}
    for monitor_name, raw in settings.monitors.items():
        if not isinstance(raw, Mapping):
            continue
        names = raw.get("rules") or []
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list):
            continue
        for index, pack_name in enumerate(names):
            if not isinstance(pack_name, str) or pack_name in packs or pack_name in docs:
                continue
            path = rule_files.get(pack_name) or rules_dir / f"{pack_name}.yaml"
            if not path.is_file():
                alt = rules_dir / f"{pack_name}.yml"
                path = alt if alt.is_file() else path
            if not path.is_file():
                rel = display_name(path)
                where = ("monitors", monitor_name, "rules", index) if isinstance(raw.get("rules"), list) else ("monitors", monitor_name, "rules")
                problems.append(doc.problem(where, f"rule pack '{pack_name}' not found (expected {rel})"
                                                   f"{did_you_mean(pack_name, _pack_names(rules_dir), label='packs there')}"))
                continue
            try:
                pack_doc = load_yaml(path, display_name(path))
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            docs[pack_name] = pack_doc
            if not isinstance(pack_doc.data, Mapping):
                problems.append(pack_doc.problem((), "a rule pack must be a mapping with 'rules:' (and optionally 'brand:')"))
                continue
            pack_data, _ = expand_env(pack_doc, {}, problems)
            pack = _validate(RulePack, pack_data, pack_doc, (), problems)
            if pack is None:
                continue
            packs[pack_name] = pack.model_copy(update={"name": pack_name})
            files[pack_name] = path
            _check_duplicate_ids(pack, pack_doc, problems)
    return packs, files, docs


def _pack_names(rules_dir: Path) -> list[str]:
    """The rule packs on disk (rules/NAME.yaml or .yml)."""
    try:
        return sorted({p.stem for p in rules_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()})
    except OSError:
        return []


def did_you_mean(name: str, choices: Iterable[str], label: str = "known") -> str:
    """' (did you mean 'x'?)' for a near miss, else ' (LABEL: the choices)'."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" ({label}: {', '.join(choices)})" if choices else ""


def _check_duplicate_ids(pack: RulePack, doc: YamlDocument, problems: list[Problem]) -> None:
    seen: set[str] = set()
    for index, rule in enumerate(pack.rules):
        if rule.id in seen:
            problems.append(doc.problem(("rules", index, "id"), f"duplicate rule id '{rule.id}'"))
        seen.add(rule.id)


def _monitors(settings: Settings, doc: YamlDocument, problems: list[Problem],
              destinations: Mapping[str, DestinationConfig], packs: Mapping[str, RulePack]) -> dict[str, MonitorConfig]:
    from croniter import croniter

    kinds = connectors.available()
    common_keys = set(MonitorCommon.model_fields)
    found: dict[str, MonitorConfig] = {}
    if not settings.monitors:
        problems.append(doc.problem(("monitors",), "no monitors defined: add at least one under 'monitors:'"))
    for name, raw in settings.monitors.items():
        loc = ("monitors", name)
        if not isinstance(raw, Mapping):
            problems.append(doc.problem(loc, f"monitor '{name}' must be a mapping with a 'connector'"))
            continue
        kind = raw.get("connector")
        if not kind:
            problems.append(doc.problem(loc, f"monitor '{name}' needs a 'connector' ({', '.join(sorted(kinds))})"))
            continue
        if kind not in kinds:
            problems.append(doc.problem(loc + ("connector",), f"unknown connector '{kind}'{did_you_mean(kind, kinds)}"))
            continue
        try:
            cls = connectors.load(kind)
        except ImportError as exc:
            problems.append(doc.problem(loc + ("connector",), f"connector '{kind}' cannot be loaded: {exc}"))
            continue
        known = sorted(common_keys | set(cls.Options.model_fields))
        common_raw = {k: v for k, v in raw.items() if k in common_keys}
        option_raw = {k: v for k, v in raw.items() if k not in common_keys}
        common = _validate(MonitorCommon, common_raw, doc, loc, problems, known)
        options = _validate(cls.Options, option_raw, doc, loc, problems, known)
        if common is None:
            continue
        if not croniter.is_valid(common.schedule):
            problems.append(doc.problem(loc + ("schedule",), f"'{common.schedule}' is not a valid cron expression (five fields, e.g. \"*/5 * * * *\")"))
        notify = common.notify or settings.defaults.notify
        for index, dest in enumerate(common.notify):
            if dest not in destinations and dest not in settings.destinations:
                problems.append(doc.problem(loc + ("notify", index) if isinstance(raw.get("notify"), list) else loc + ("notify",),
                                            _unknown_destination(dest, settings)))
        if not notify:
            problems.append(doc.problem(loc, f"monitor '{name}' has no destination: set 'notify:' (or defaults.notify)"))
        if not common.rules:
            problems.append(doc.problem(loc, f"monitor '{name}' has no rule packs: set 'rules:' (e.g. rules: [example])"))
        if options is not None:
            found[name] = MonitorConfig(name, common, options)
    return found


def _unknown_destination(dest: str, settings: Settings) -> str:
    hint = did_you_mean(dest, settings.destinations, label="defined") or " (defined: none)"
    return f"destination '{dest}' is not defined under 'destinations:'{hint}"


def _check_defaults(settings: Settings, doc: YamlDocument, problems: list[Problem], destinations: Mapping[str, Any]) -> None:
    for section, names in (("defaults", settings.defaults.notify), ("health", settings.health.notify)):
        for index, dest in enumerate(names):
            if dest not in settings.destinations:
                problems.append(doc.problem((section, "notify", index), _unknown_destination(dest, settings)))


def _check_rule_destinations(packs: Mapping[str, RulePack], docs: Mapping[str, YamlDocument],
                             destinations: Mapping[str, Any], problems: list[Problem]) -> None:
    for pack_name, pack in packs.items():
        doc = docs[pack_name]
        for index, rule in enumerate(pack.rules):
            for key in ("notify", "escalate"):
                for dest in getattr(rule, key) or ():
                    if dest not in destinations:
                        defined = ", ".join(sorted(destinations)) or "none"
                        problems.append(doc.problem(("rules", index, key),
                                                    f"rule '{rule.id}': destination '{dest}' is not defined in cron.yaml (defined: {defined})"))


def _compile_rules(packs: Mapping[str, RulePack], docs: Mapping[str, YamlDocument], problems: list[Problem]) -> Any:
    """Compile every pack into one matcher; bad queries are errors, dead rules too."""
    from earful.rules.engine import Matcher, RuleCompileError

    try:
        matcher = Matcher.compile(list(packs.values()))
    except RuleCompileError as exc:
        for p in exc.problems:
            problems.append(docs[p.pack].problem(("rules", p.index, "query"), f"rule '{p.rule_id}': {p.message}"))
        return None
    for p in matcher.dead_rules():
        problems.append(docs[p.pack].problem(("rules", p.index, "query"), f"rule '{p.rule_id}' can never match: {p.message}"))
    return matcher
