"""Writes: each action runs one transaction and publishes to the live bus after the commit."""
