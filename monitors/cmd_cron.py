"""`earful cron install`: schedule this deployment (see cron_install.py for what is written and why)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .commands import ConfigOption, _config_path, _load, app, err, out

cron_app = typer.Typer(no_args_is_help=True, help="Schedule this deployment (systemd timer or crontab). Only `earful run` is "
                                                   "scheduled: `earful serve` and workers do not exist yet.")
app.add_typer(cron_app, name="cron")


@cron_app.command("install")
def install(
    config: Optional[Path] = ConfigOption,
    systemd: bool = typer.Option(False, "--systemd", help="A systemd timer + service (default where systemd runs)."),
    crontab: bool = typer.Option(False, "--crontab", help="One line in your crontab (default elsewhere)."),
    system: bool = typer.Option(False, "--system", help="systemd: system units in /etc/systemd/system (as root) "
                                                        "instead of your user units."),
    print_only: bool = typer.Option(False, "--print", help="Print what would be written; change nothing."),
) -> None:
    """Run `earful run --quiet` every minute for this deployment, with this venv's earful.

    Only `earful run` is scheduled: `earful serve` and workers do not exist
    yet, so there are no units for them.
    """
    from . import cron_install as ci

    if systemd and crontab:
        err.print("choose one of --systemd and --crontab")
        raise typer.Exit(2)
    _load(config)  # a deployment that does not check out is not worth scheduling
    dep = ci.deployment(_config_path(config))
    use_systemd = systemd or (not crontab and ci.systemd_available())
    if use_systemd:
        _systemd(ci, dep, system, print_only)
    else:
        _crontab(ci, dep, print_only)


def _systemd(ci, dep, system: bool, print_only: bool) -> None:
    units = ci.systemd_units(dep, system)
    directory = ci.unit_dir(system)
    if print_only:
        for name, text in units.items():
            out.print(f"# {escape(str(directory / name))}\n{escape(text)}", soft_wrap=True)
        return
    try:
        written = ci.write_units(units, directory)
    except OSError as exc:
        err.print(f"cannot write {escape(str(directory))}: {escape(exc.strerror or str(exc))}"
                  + (" (system units need root)" if system else ""))
        raise typer.Exit(1) from None
    for path in written:
        out.print(f"wrote {escape(str(path))}")
    out.print("enable it with:", soft_wrap=True)
    for step in ci.enable_commands(dep, system):
        out.print(f"  {escape(step)}", soft_wrap=True)


def _crontab(ci, dep, print_only: bool) -> None:
    if print_only:
        out.print(escape(ci.crontab_line(dep)), soft_wrap=True)
        return
    try:
        updated = ci.with_line(ci.current_crontab(), dep)
        if updated is None:
            out.print("already in your crontab; nothing changed.")
            return
        ci.install_crontab(updated)
    except ci.CrontabError as exc:
        err.print(escape(str(exc)))
        raise typer.Exit(1) from None
    out.print(f"added to your crontab: {escape(ci.crontab_line(dep))}", soft_wrap=True)
