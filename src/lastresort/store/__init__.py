"""Stores: where encounters, timelines, deadlines and the outbox live."""

from .base import Change, PendingDeadline, Store, check_change
from .memory import MemoryStore
from .postgres import PostgresStore
from .refusals import Refusal
from .sqlite import SQLiteStore

__all__ = [
    "Change",
    "MemoryStore",
    "PendingDeadline",
    "PostgresStore",
    "Refusal",
    "SQLiteStore",
    "Store",
    "check_change",
]
