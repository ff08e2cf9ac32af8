"""`earful backtest`: edited rules replayed over the demo's stored mentions; nothing sent, nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from earful.monitors.cli import main

from .history_state import demo_state

PRICING_RULE = """
  - id: pricing
    query: 'acme (price OR pricing OR expensive OR "what do you like")'
    labels: [pricing]
    severity: low
"""


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    return demo_state(tmp_path_factory)


def invoke(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code or 0


def _fingerprint(directory: Path) -> dict[str, str]:
    """Every file of the deployment's state (state.db, its WAL, the marker ...) by content."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("state.db*"))}


def _edited_pack(demo: Path, tmp_path: Path, name: str = "acme.yaml") -> Path:
    """The demo's pack with 'outage' no longer a complaint word, and a new pricing rule."""
    text = (demo / "rules" / "acme.yaml").read_text()
    assert " OR outage " in text
    edited = tmp_path / name
    edited.write_text(text.replace(" OR outage ", " ") + PRICING_RULE)
    return edited


def _backtest(capsys, *args: str) -> dict:
    assert invoke("backtest", "--json", *args) == 0
    return json.loads(capsys.readouterr().out)


def test_the_current_rules_change_nothing(demo, capsys):
    result = _backtest(capsys, "-c", str(demo / "cron.yaml"))
    assert result["replayed"] >= 80
    assert result["newly_alerting"] == result["no_longer_alerting"] == result["rules_changed"] == []
    assert all(r["matched_then"] == r["matches_now"] and r["matched_then"] > 0 for r in result["rules"])
    assert {r["rule"] for r in result["rules"]} >= {"acme/complaint", "acme/question", "acme/bad-review"}


@pytest.mark.chromium  # the edited pack's new rule matches review-site items, read through chromium
def test_an_edited_pack_shows_what_would_newly_alert_and_what_would_stop(demo, tmp_path, capsys):
    before = _fingerprint(demo)
    result = _backtest(capsys, "-c", str(demo / "cron.yaml"), "--rules", str(_edited_pack(demo, tmp_path)))
    assert _fingerprint(demo) == before, "backtest wrote to the state"
    per_rule = {r["rule"]: r for r in result["rules"]}
    assert per_rule["acme/pricing"]["matched_then"] == 0 and per_rule["acme/pricing"]["newly"] > 0
    complaint = per_rule["acme/complaint"]
    assert complaint["no_longer"] > 0 and complaint["newly"] == 0
    assert complaint["matches_now"] == complaint["matched_then"] - complaint["no_longer"]

    newly = result["newly_alerting"]
    assert newly and all(item["before"] == [] and item["after"] == ["acme/pricing"] for item in newly)
    assert all(item["would_alert"] for item in newly), "each names the destinations it would go to"
    changed = result["no_longer_alerting"] + result["rules_changed"]
    assert all(set(c["before"]) - set(c["after"]) <= {"acme/complaint"} for c in changed)
    assert all(set(c["after"]) - set(c["before"]) <= {"acme/pricing"} for c in changed)
    lost = [c for c in changed if "acme/complaint" in c["before"] and "acme/complaint" not in c["after"]]
    assert len(lost) == complaint["no_longer"]
    assert all("outage" in (c["title"] + " " + c["text"]).lower() for c in lost)
    assert result["no_longer_alerting"] and all(c["after"] == [] for c in result["no_longer_alerting"])


@pytest.mark.chromium  # the edited pack's new rule matches review-site items, read through chromium
def test_the_summary_fits_80_columns(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert invoke("backtest", "-c", str(demo / "cron.yaml"), "--rules", str(_edited_pack(demo, tmp_path))) == 0
    out = capsys.readouterr().out
    assert "would newly alert" in out and "would stop alerting" in out and "Nothing was sent or written" in out
    assert "acme/pricing" in out and "+acme/pricing" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_window_with_nothing_in_it_replays_nothing(demo, capsys):
    result = _backtest(capsys, "-c", str(demo / "cron.yaml"), "--since", "1s")
    assert result["replayed"] == 0 and result["rules"] == []


@pytest.mark.chromium  # the edited pack's new rule matches review-site items, read through chromium
def test_the_rules_file_must_name_a_pack_and_be_valid(demo, tmp_path, capsys):
    config = str(demo / "cron.yaml")
    assert invoke("backtest", "-c", config, "--rules", str(tmp_path / "missing.yaml")) == 2
    assert "no such file" in capsys.readouterr().err
    # The demo has one pack, so any file name stands in for it; --pack must name a real one.
    other = _edited_pack(demo, tmp_path, "candidate.yaml")
    assert _backtest(capsys, "-c", config, "--rules", str(other))["newly_alerting"]
    assert invoke("backtest", "-c", config, "--rules", str(other), "--pack", "nope") == 2
    assert "'nope' is not" in capsys.readouterr().err
    broken = tmp_path / "acme.yaml"
    broken.write_text("rules:\n  - id: complaint\n    query: 'acme (refund'\n")
    assert invoke("backtest", "-c", config, "--rules", str(broken)) == 2
    err = capsys.readouterr().err
    assert "acme.yaml:3" in err and "complaint" in err, err
