"""`earful cron install`: the crontab line or systemd units that run this deployment every minute."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from earful.monitors.cli import _idle_config

from .deploy import write_deployment
from .support import RULES, earful

FAKE_CRONTAB = """\
#!/bin/sh
# A stand-in for crontab(1): the table lives in $CRONTAB_FILE.
if [ "$1" = "-l" ]; then
  if [ -f "$CRONTAB_FILE" ]; then cat "$CRONTAB_FILE"; exit 0; fi
  echo "no crontab for $(id -un)" >&2; exit 1
fi
if [ "$1" = "-" ]; then cat > "$CRONTAB_FILE"; exit 0; fi
exit 2
"""


@pytest.fixture
def deploy(tmp_path):
    directory = tmp_path / "acme deployment"
    return write_deployment(directory, {"forum": {"connector": "rss", "url": "https://forum.example/latest.atom"}}, RULES)


@pytest.fixture
def crontab(tmp_path):
    """A fake `crontab` first on PATH; returns the file that holds the table."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "crontab"
    script.write_text(FAKE_CRONTAB)
    script.chmod(0o755)
    table = tmp_path / "crontab.txt"
    return table, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CRONTAB_FILE": str(table)}


def venv_earful() -> str:
    return str(Path(sys.executable).with_name("earful"))


def test_print_shows_the_crontab_line_and_changes_nothing(deploy, crontab):
    table, env = crontab
    result = earful("cron", "install", "--crontab", "--print", "-c", str(deploy.path), env=env)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    schedule, command = line[:10], line[10:]
    assert schedule == "* * * * * "
    words = shlex.split(command, comments=True)
    assert words[:3] == ["cd", str(deploy.directory), "&&"]
    assert words[3:] == [venv_earful(), "run", "--quiet", "--config", str(deploy.path)]
    assert line.endswith(f"# earful: {deploy.directory}")
    assert _idle_config(words[4:]) == deploy.path, "a scheduled tick keeps the idle fast path"
    assert not table.exists()


def test_install_adds_the_line_once_and_keeps_other_jobs(deploy, crontab):
    table, env = crontab
    table.write_text("MAILTO=ops@acme.example\n0 3 * * * /usr/local/bin/backup\n")
    first = earful("cron", "install", "--crontab", "-c", str(deploy.path), env=env)
    assert first.returncode == 0, first.stderr
    assert "added to your crontab" in first.stdout
    again = earful("cron", "install", "--crontab", "-c", str(deploy.path), env=env)
    assert again.returncode == 0 and "already in your crontab" in again.stdout
    lines = table.read_text().splitlines()
    assert lines[:2] == ["MAILTO=ops@acme.example", "0 3 * * * /usr/local/bin/backup"]
    assert len([line for line in lines if "earful" in line]) == 1


def test_install_replaces_an_older_line_of_the_same_deployment(deploy, crontab):
    table, env = crontab
    table.write_text(f"*/5 * * * * /old/venv/bin/earful run --config {deploy.path} # earful: {deploy.directory}\n")
    assert earful("cron", "install", "--crontab", "-c", str(deploy.path), env=env).returncode == 0
    (line,) = table.read_text().splitlines()
    assert line.startswith("* * * * * ") and "/old/venv" not in line


def test_install_into_an_empty_crontab(deploy, crontab):
    table, env = crontab
    assert earful("cron", "install", "--crontab", "-c", str(deploy.path), env=env).returncode == 0
    assert len(table.read_text().splitlines()) == 1


def test_systemd_units_for_the_user(deploy, tmp_path):
    config_home = tmp_path / "config"
    result = earful("cron", "install", "--systemd", "-c", str(deploy.path), env={"XDG_CONFIG_HOME": str(config_home)})
    assert result.returncode == 0, result.stderr
    unit_dir = config_home / "systemd" / "user"
    service = (unit_dir / "earful-acme-deployment.service").read_text()
    timer = (unit_dir / "earful-acme-deployment.timer").read_text()
    assert "Type=oneshot" in service and "User=" not in service
    assert f'WorkingDirectory="{deploy.directory}"' in service
    assert f'ExecStart={venv_earful()} run --quiet --config "{deploy.path}"' in service
    assert "OnCalendar=minutely" in timer and "Unit=earful-acme-deployment.service" in timer
    assert "WantedBy=timers.target" in timer
    assert "systemctl --user enable --now earful-acme-deployment.timer" in result.stdout


def test_systemd_print_for_system_units_writes_nothing(deploy, tmp_path):
    result = earful("cron", "install", "--systemd", "--system", "--print", "-c", str(deploy.path))
    assert result.returncode == 0, result.stderr
    assert "# /etc/systemd/system/earful-acme-deployment.service" in result.stdout
    assert "# /etc/systemd/system/earful-acme-deployment.timer" in result.stdout
    assert "\nUser=" in result.stdout


def test_help_says_serve_and_workers_are_not_scheduled():
    result = earful("cron", "install", "--help")
    assert "earful serve" in result.stdout and "do not exist yet" in result.stdout


def test_a_broken_deployment_is_not_scheduled(tmp_path, crontab):
    table, env = crontab
    (tmp_path / "cron.yaml").write_text("monitors: {}\n")
    result = earful("cron", "install", "--crontab", "-c", str(tmp_path / "cron.yaml"), env=env)
    assert result.returncode == 2 and not table.exists()
