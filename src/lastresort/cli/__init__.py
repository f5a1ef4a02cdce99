"""The ``lastresort`` command: one module per command."""

from .app import main

__all__ = ["main"]
