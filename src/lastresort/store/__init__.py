"""Stores: where encounters, timelines, deadlines and the outbox live."""

from .base import Change, PendingDeadline, Store
from .memory import MemoryStore

__all__ = ["Change", "MemoryStore", "PendingDeadline", "Store"]
