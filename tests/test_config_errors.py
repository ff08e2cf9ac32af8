"""A corpus of broken configurations: each must fail with file:line, exit 2, nothing written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from earful.monitors.cli import main

GOOD_RULES = """\
brand:
  name: Acme
  accounts: {hackernews: [acmehq]}
rules:
  - id: complaint
    query: 'acme (broken OR refund)'
    labels: [complaint]
"""

GOOD_CRON = """\
state: state.db
destinations:
  support:
    type: console
monitors:
  hn:
    connector: hackernews
    schedule: "*/5 * * * *"
    query: acme
    rules: [acme]
    notify: [support]
"""

# name -> (files (text, or bytes as they are on disk), expected file, expected line, expected text)
CASES: dict[str, tuple[dict[str, str | bytes], str, int, str]] = {
    "yaml syntax": ({"cron.yaml": GOOD_CRON.replace('schedule: "*/5 * * * *"', 'schedule: "*/5 * * * *')}, "cron.yaml", 8, "invalid YAML"),
    "bad indentation": ({"cron.yaml": "state: state.db\nmonitors:\n  hn:\n    connector: hackernews\n   rules: [acme]\n"}, "cron.yaml", 5, "invalid YAML"),
    "unknown top-level key": ({"cron.yaml": GOOD_CRON + "monitorz: {}\n"}, "cron.yaml", 12, "unknown key 'monitorz'"),
    "unknown monitor key": ({"cron.yaml": GOOD_CRON.replace("    query: acme\n", "    query: acme\n    subredits: [crm]\n")}, "cron.yaml", 10, "unknown key 'subredits'"),
    "typo in common key": ({"cron.yaml": GOOD_CRON.replace("    schedule:", "    schedul:")}, "cron.yaml", 8, "did you mean 'schedule'"),
    "unknown connector": ({"cron.yaml": GOOD_CRON.replace("connector: hackernews", "connector: hackernewz")}, "cron.yaml", 7, "unknown connector 'hackernewz'"),
    "bad cron": ({"cron.yaml": GOOD_CRON.replace('"*/5 * * * *"', '"*/5 * * *"')}, "cron.yaml", 8, "not a valid cron expression"),
    "bad cron value": ({"cron.yaml": GOOD_CRON.replace('"*/5 * * * *"', '"61 * * * *"')}, "cron.yaml", 8, "not a valid cron expression"),
    "missing rule pack": ({"cron.yaml": GOOD_CRON.replace("rules: [acme]", "rules: [acme, missing]")}, "cron.yaml", 10, "rule pack 'missing' not found"),
    "undefined destination": ({"cron.yaml": GOOD_CRON.replace("notify: [support]", "notify: [suport]")}, "cron.yaml", 11, "did you mean 'support'"),
    "unknown destination type": ({"cron.yaml": GOOD_CRON.replace("type: console", "type: pager")}, "cron.yaml", 4, "unknown destination type 'pager'"),
    "wrong type": ({"cron.yaml": GOOD_CRON.replace("    query: acme\n", "    query: acme\n    timeout: soon\n")}, "cron.yaml", 10, "timeout"),
    "missing env var": ({"cron.yaml": GOOD_CRON.replace("    type: console\n", "    type: slack\n    channel: C1\n    token: ${EARFUL_TEST_UNSET_TOKEN}\n")}, "cron.yaml", 6, "EARFUL_TEST_UNSET_TOKEN is not set"),
    "bad timezone": ({"cron.yaml": "timezone: Mars/Olympus\n" + GOOD_CRON}, "cron.yaml", 1, "unknown timezone"),
    "monitors not a mapping": ({"cron.yaml": "monitors: [a, b]\n"}, "cron.yaml", 1, "monitors"),
    "no destination for monitor": ({"cron.yaml": GOOD_CRON.replace("    notify: [support]\n", "")}, "cron.yaml", 6, "has no destination"),
    "rule query syntax": ({"rules/acme.yaml": GOOD_RULES.replace("'acme (broken OR refund)'", "'acme (broken OR refund'")}, "rules/acme.yaml", 6, "rule 'complaint'"),
    "rule unclosed quote": ({"rules/acme.yaml": GOOD_RULES.replace("'acme (broken OR refund)'", """'acme "never respond'""")}, "rules/acme.yaml", 6, "quote"),
    "rule bad severity": ({"rules/acme.yaml": GOOD_RULES + "    severity: urgent\n"}, "rules/acme.yaml", 8, "severity"),
    "rule bad duration": ({"rules/acme.yaml": GOOD_RULES + "    reply_within: soon\n"}, "rules/acme.yaml", 8, "not a duration"),
    "rule unknown key": ({"rules/acme.yaml": GOOD_RULES + "    lables: [x]\n"}, "rules/acme.yaml", 8, "unknown key 'lables'"),
    "rule undefined destination": ({"rules/acme.yaml": GOOD_RULES + "    notify: [pager]\n"}, "rules/acme.yaml", 8, "destination 'pager' is not defined"),
    "rule can never match": ({"rules/acme.yaml": GOOD_RULES + "  - id: dead\n    query: 'acme -acme'\n"}, "rules/acme.yaml", 9, "can never match"),
    "duplicate rule id": ({"rules/acme.yaml": GOOD_RULES + "  - id: complaint\n    query: refund\n"}, "rules/acme.yaml", 8, "duplicate rule id"),
    "rule pack without rules": ({"rules/acme.yaml": "brand:\n  name: Acme\n"}, "rules/acme.yaml", 1, "rules"),
    "empty file": ({"cron.yaml": ""}, "cron.yaml", 1, "empty"),
    # hostile bytes and half-written references (issue 14): located like every other mistake
    "unclosed env reference": ({"cron.yaml": GOOD_CRON.replace("    type: console\n", "    type: slack\n    channel: C1\n    token: ${EARFUL_TEST_SLACK_TOKEN\n")}, "cron.yaml", 6, "opens no environment reference"),
    "env reference without a name": ({"cron.yaml": GOOD_CRON.replace("    query: acme\n", "    query: acme ${}\n")}, "cron.yaml", 9, "opens no environment reference"),
    "unclosed env reference in a rule pack": ({"rules/acme.yaml": GOOD_RULES.replace("'acme (broken OR refund)'", "'acme ${BRAND'")}, "rules/acme.yaml", 6, "opens no environment reference"),
    "invalid UTF-8": ({"cron.yaml": GOOD_CRON.encode().replace(b"query: acme", b"query: acme \xff\xfe")}, "cron.yaml", 9, "not valid UTF-8 (byte ff at column 17)"),
    "invalid UTF-8 in a comment": ({"cron.yaml": GOOD_CRON.encode() + b"# caf\xe9\n"}, "cron.yaml", 12, "not valid UTF-8"),
    "invalid UTF-8 in a rule pack": ({"rules/acme.yaml": GOOD_RULES.encode().replace(b"name: Acme", b"name: Acme\xc3")}, "rules/acme.yaml", 2, "not valid UTF-8"),
    "NUL byte": ({"cron.yaml": GOOD_CRON.replace("    query: acme\n", "    query: ac\x00me\n")}, "cron.yaml", 9, "contains a NUL byte at column 14"),
    "NUL byte in a rule pack": ({"rules/acme.yaml": GOOD_RULES.replace("labels: [complaint]", "labels: [complaint]\x00")}, "rules/acme.yaml", 7, "NUL byte"),
    "invalid UTF-8 in .env": ({".env": b"EARFUL_TEST_TOKEN=caf\xe9\n"}, ".env", 1, "not valid UTF-8"),
    "control character": ({"cron.yaml": GOOD_CRON.replace("state: state.db", "state: state\x01.db")}, "cron.yaml", 1, "control character U+0001"),
}


def write(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    merged = {"cron.yaml": GOOD_CRON, "rules/acme.yaml": GOOD_RULES, **files}
    for name, text in merged.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text))
    return tmp_path / "cron.yaml"


def test_the_good_config_is_good(tmp_path, capsys):
    config = write(tmp_path, {})
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--config", str(config)])
    assert exit_info.value.code == 0, capsys.readouterr()


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_config_reports_file_and_line(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EARFUL_TEST_UNSET_TOKEN", raising=False)
    files, expected_file, expected_line, expected_text = CASES[name]
    config = write(tmp_path, files)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for command in (["check"], ["run"], ["run", "--all"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--config", str(config)])
        assert exit_info.value.code == 2, (command, capsys.readouterr())
        errors = capsys.readouterr().err
        located = re.findall(rf"^{re.escape(expected_file)}:(\d+): (.*)$", errors, re.M)
        assert any(int(line) == expected_line and expected_text in text for line, text in located), errors
        assert "Traceback" not in errors
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert before == after, "a broken configuration must not write anything (no state.db)"


def test_all_errors_are_reported_at_once(tmp_path, capsys):
    cron = GOOD_CRON.replace("connector: hackernews", "connector: hackernews\n    bogus: 1").replace("notify: [support]", "notify: [nobody]")
    config = write(tmp_path, {"cron.yaml": cron})
    with pytest.raises(SystemExit):
        main(["check", "--config", str(config)])
    errors = capsys.readouterr().err
    assert "unknown key 'bogus'" in errors and "destination 'nobody'" in errors


def test_secrets_never_appear_in_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EARFUL_TEST_SECRET", "xoxb-very-secret-token")
    cron = GOOD_CRON.replace("    type: console\n", "    type: slack\n    channel: 12\n    token: ${EARFUL_TEST_SECRET}\n    tokn: ${EARFUL_TEST_SECRET}\n")
    config = write(tmp_path, {"cron.yaml": cron})
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--config", str(config)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "xoxb-very-secret-token" not in captured.err + captured.out
    assert "unknown key 'tokn'" in captured.err


def test_an_existing_state_db_is_untouched_by_a_broken_config(tmp_path, capsys, monkeypatch):
    import hashlib

    monkeypatch.chdir(tmp_path)
    config = write(tmp_path, {"cron.yaml": GOOD_CRON.replace("base_url", "base_url").replace(
        "    query: acme\n", "    query: acme\n    base_url: http://127.0.0.1:9\n    timeout: 1\n")})
    with pytest.raises(SystemExit):
        main(["run", "--config", str(config)])  # creates state.db (the source is down: exit 1)
    state = tmp_path / "state.db"
    assert state.exists()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("state.db*")}
    config.write_text(config.read_text().replace("connector: hackernews", "connector: hackernewz"))
    for command in (["check"], ["run"], ["run", "--all"], ["status"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--config", str(config)])
        assert exit_info.value.code == 2
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.glob("state.db*")}
    assert before == after
