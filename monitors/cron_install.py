"""Scheduling a deployment: a systemd timer + service, or one crontab line.

Either way the scheduler starts `earful run --quiet --config <abs path>`
every minute, with the absolute path of the `earful` that is running now
(the venv's: cron's PATH does not know it), in the deployment directory.
A plain tick is cheap (`idle.nothing_due` answers before anything heavy is
imported) and `--quiet` keeps cron's mail for problems only. earful takes
its own lock, so a slow run and the next tick never overlap.

systemd units are written to the user's unit directory (or, `system`,
to /etc/systemd/system with `User=` the deployment's owner); enabling
them is left to the operator, whose `systemctl` this prints. The crontab
line is added idempotently: a line carrying this deployment's marker is
replaced, never duplicated.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
CRONTAB = "crontab"


@dataclass(frozen=True)
class Deployment:
    """What the scheduler needs to know about one deployment."""

    config: Path  # absolute cron.yaml
    earful: str  # absolute command that starts earful

    @property
    def directory(self) -> Path:
        return self.config.parent

    @property
    def unit_name(self) -> str:
        """earful-<directory name>, as systemd allows it (several deployments live side by side)."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.directory.name).strip("-.") or "deployment"
        return f"earful-{slug}"

    @property
    def command(self) -> list[str]:
        return [*shlex.split(self.earful), "run", "--quiet", "--config", str(self.config)]

    @property
    def marker(self) -> str:
        """Ends earful's crontab line: how a later install finds (and replaces) it."""
        return f"# earful: {self.directory}"


def deployment(config: Path) -> Deployment:
    return Deployment(config.expanduser().absolute(), earful_command())


def earful_command() -> str:
    """The `earful` beside the running interpreter (the venv's), else on PATH, else `python -m`."""
    beside = Path(sys.executable).with_name("earful")
    if beside.is_file() and os.access(beside, os.X_OK):
        return shlex.quote(str(beside))
    found = shutil.which("earful")
    if found:
        return shlex.quote(str(Path(found).absolute()))
    return f"{shlex.quote(sys.executable)} -m earful.monitors.cli"


# -- systemd --------------------------------------------------------------------------------


def unit_dir(system: bool) -> Path:
    if system:
        return SYSTEM_UNIT_DIR
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "systemd" / "user"


def systemd_units(dep: Deployment, system: bool) -> dict[str, str]:
    """File name -> text of the service and its one-minute timer."""
    name = dep.unit_name
    user = f"User={_owner(dep.directory)}\n" if system else ""
    service = (
        "[Unit]\n"
        f"Description=earful tick for {dep.directory}\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"{user}"
        f"WorkingDirectory={_systemd_quote(str(dep.directory))}\n"
        f"ExecStart={' '.join(_systemd_quote(part) for part in dep.command)}\n"
        "Nice=5\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=earful every minute for {dep.directory}\n"
        "\n"
        "[Timer]\n"
        "OnCalendar=minutely\n"
        "AccuracySec=5s\n"
        f"Unit={name}.service\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def enable_commands(dep: Deployment, system: bool) -> list[str]:
    """What the operator runs after the units are written."""
    ctl = "systemctl" if system else "systemctl --user"
    steps = [f"{ctl} daemon-reload", f"{ctl} enable --now {dep.unit_name}.timer"]
    if not system:
        steps.append("loginctl enable-linger \"$USER\"   # keep user timers running while you are logged out")
    return steps


def write_units(units: dict[str, str], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _systemd_quote(value: str) -> str:
    """A word of ExecStart= / a path as systemd reads it: quoted when it has spaces, `%` and `\\` escaped."""
    escaped = value.replace("\\", "\\\\").replace("%", "%%")
    return f'"{escaped}"' if re.search(r'[\s"\']', escaped) else escaped


def _owner(directory: Path) -> str:
    try:
        return pwd.getpwuid(directory.stat().st_uid).pw_name
    except (KeyError, OSError):
        return pwd.getpwuid(os.getuid()).pw_name


def systemd_available() -> bool:
    """Booted with systemd (the documented check, as sd_booted(3) does it)."""
    return Path("/run/systemd/system").is_dir()


# -- crontab --------------------------------------------------------------------------------


def crontab_line(dep: Deployment) -> str:
    command = " ".join(shlex.quote(part) for part in dep.command)
    line = f"* * * * * cd {shlex.quote(str(dep.directory))} && {command} {dep.marker}"
    return line.replace("%", "\\%")  # cron turns a bare % into a newline


class CrontabError(Exception):
    """`crontab` is missing or refused the change."""


def current_crontab() -> str:
    """The user's crontab ('' when there is none yet)."""
    try:
        result = subprocess.run([CRONTAB, "-l"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise CrontabError("no `crontab` command here; install cron, or use --systemd") from None
    if result.returncode != 0:
        if "no crontab" in result.stderr.lower():
            return ""
        raise CrontabError(f"`crontab -l` failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def with_line(crontab: str, dep: Deployment) -> str | None:
    """`crontab` with this deployment's line in place of an older one (or appended); None if already there."""
    line = crontab_line(dep)
    lines = crontab.splitlines()
    if line in lines:
        return None
    marker = dep.marker.replace("%", "\\%")
    kept = [existing for existing in lines if not existing.rstrip().endswith(marker)]
    return "\n".join([*kept, line]) + "\n"


def install_crontab(text: str) -> None:
    try:
        result = subprocess.run([CRONTAB, "-"], input=text, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise CrontabError("no `crontab` command here; install cron, or use --systemd") from None
    if result.returncode != 0:
        raise CrontabError(f"`crontab -` refused the new table: {result.stderr.strip() or result.returncode}")
