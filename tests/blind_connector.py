"""Registers the reply-blind fake connector under its own module (the registry maps names to modules)."""

from .fake_connector import BlindConnector

CONNECTOR = BlindConnector
