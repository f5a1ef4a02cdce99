"""The built-in reference protocol (``taskforce.toml``), loaded as package data."""
