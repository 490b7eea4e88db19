"""Fixture plugins for the plugin-system tests (registered explicitly or through fabricated entry points)."""
