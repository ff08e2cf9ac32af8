"""Destinations earful delivers to, one module per destination.

A plain dict from the `type:` used in cron.yaml to the module; each module
exposes its class as ``DESTINATION``. Third-party destinations register
through the ``earful.alerts`` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from earful.core import plugins

if TYPE_CHECKING:
    from .base import Destination

DESTINATIONS: dict[str, str] = {
    "slack": "earful.alerts.slack",
    "console": "earful.alerts.console",
    "jira": "earful.alerts.jira",
    "zendesk": "earful.alerts.zendesk",
    "github": "earful.alerts.github",
    "email": "earful.alerts.email",
    "webhook": "earful.alerts.webhook",
}
GROUP = "earful.alerts"


def available() -> dict[str, str]:
    return plugins.available(DESTINATIONS, GROUP)


def load(kind: str) -> "type[Destination]":
    """The destination class registered as `kind` (KeyError if unknown)."""
    return plugins.load(DESTINATIONS, GROUP, kind, "DESTINATION")
