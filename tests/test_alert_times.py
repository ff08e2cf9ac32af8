"""Alerts show times in the deployment's `timezone`, as digests do, so the same
item never reads 13:16 in Slack and 14:16 in the digest."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from earful.alerts import console, slack, tickets
from earful.alerts import format as fmt

from .sample_alerts import alert_to, mention

BERLIN = ZoneInfo("Europe/Berlin")
WINTER = datetime(2026, 12, 4, 13, 16, tzinfo=timezone.utc)
SUMMER = datetime(2026, 7, 4, 13, 16, tzinfo=timezone.utc)


def test_the_label_is_local_with_the_zone_abbreviation() -> None:
    assert fmt.when_label(WINTER, BERLIN) == "2026-12-04 14:16 CET"
    assert fmt.when_label(SUMMER, BERLIN) == "2026-07-04 15:16 CEST"
    assert fmt.when_label(WINTER) == "2026-12-04 13:16 UTC"
    assert fmt.when_label(None, BERLIN) == ""


def test_slack_tickets_and_console_use_the_alerts_zone() -> None:
    alert = dataclasses.replace(alert_to("support", mention(1, created_at=WINTER)), timezone=BERLIN)
    blocks = json.dumps([block.to_dict() for block in slack.build_blocks(alert)])
    assert "2026-12-04 14:16 CET" in blocks and "13:16 UTC" not in blocks
    assert "2026-12-04 14:16 CET" in json.dumps(dataclasses.asdict(tickets.ticket_text(alert)), default=str)
    from rich.console import Console

    screen = Console(width=120, record=True)
    screen.print(console.render(alert))
    assert "14:16 CET" in screen.export_text()
