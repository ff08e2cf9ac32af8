"""Sources earful can watch, one module per source.

The registry is a plain dict from the name used in cron.yaml to the module
that holds it; each module exposes its class as ``CONNECTOR``. Third-party
connectors register through the ``earful.connectors`` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from earful.core import plugins

if TYPE_CHECKING:
    from .base import Connector

CONNECTORS: dict[str, str] = {
    "rss": "earful.connectors.rss",
    "hackernews": "earful.connectors.hackernews",
    "reddit": "earful.connectors.reddit",
    "x": "earful.connectors.x",
    "g2": "earful.connectors.g2",
    "capterra": "earful.connectors.capterra",
    "trustpilot": "earful.connectors.trustpilot",
    "appstore": "earful.connectors.appstore",
    "googleplay": "earful.connectors.googleplay",
    "facebook": "earful.connectors.facebook",
    "instagram": "earful.connectors.instagram",
    "linkedin": "earful.connectors.linkedin",
    "telegram": "earful.connectors.telegram",
    "discord": "earful.connectors.discord",
    "mastodon": "earful.connectors.mastodon",
    "bluesky": "earful.connectors.bluesky",
}
GROUP = "earful.connectors"


def available() -> dict[str, str]:
    return plugins.available(CONNECTORS, GROUP)


def load(name: str) -> "type[Connector]":
    """The connector class registered as `name` (KeyError if unknown)."""
    return plugins.load(CONNECTORS, GROUP, name, "CONNECTOR")
