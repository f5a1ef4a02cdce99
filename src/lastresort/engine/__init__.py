"""Running protocols: the Engine, dispatch on transitions, step changes, hooks and plugins."""

from .engine import Engine

__all__ = ["Engine"]
