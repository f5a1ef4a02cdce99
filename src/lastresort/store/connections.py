"""Connections of the SQLite store: one per thread (closed when the thread ends),
one per process (a forked child opens its own and never closes its parent's), the
transactions every write runs in, and the read-only connection of the audit."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import StoreError

__all__ = ["Connections", "open_readonly"]


class _Connection(sqlite3.Connection):
    """A connection that knows the process that opened it (and, unlike the base
    class, can be referenced weakly)."""

    pid: int


class _Held:
    """A thread's connection: closed when the thread ends (its locals go), so that a
    server whose pool renews threads does not pile up open files."""

    __slots__ = ("conn", "pid")

    def __init__(self, conn: sqlite3.Connection, pid: int) -> None:
        self.conn = conn
        self.pid = pid

    def __del__(self) -> None:
        if self.pid == os.getpid():
            with suppress(Exception):
                self.conn.close()


class Connections:
    """The connections of one store file.

    :param functions: SQL functions to register on every connection, by name.
    """

    def __init__(
        self,
        path: Path,
        synchronous: str,
        busy_timeout: float,
        functions: Mapping[str, Callable[..., Any]] = {},
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.functions = dict(functions)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._inherited: list[_Held] = []
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """This thread's connection (in autocommit mode), opened on first use.

        :raises StoreError: once :meth:`close` was called.
        :raises sqlite3.Error: when the file cannot be opened.
        """
        if self._closed:
            raise StoreError(problem=f"SQLiteStore({str(self.path)!r}) is closed")
        pid = os.getpid()
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and held.pid == pid:
            return held.conn
        if held is not None:
            # forked from the process that opened it: never use it, and never let it
            # be closed here (that would drop this process's own locks on the file)
            self._inherited.append(held)
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=64,
            factory=_Connection,
        )
        conn.pid = pid
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        for name, function in self.functions.items():
            conn.create_function(name, -1, function, deterministic=True)
        self._local.held = _Held(conn, pid)
        with self._lock:
            self._open.add(conn)
        return conn

    @contextmanager
    def write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed whole, or rolled back whole
        (also on ``KeyboardInterrupt``). A ``sqlite3`` error becomes a
        :class:`StoreError` naming ``what`` could not be done, the original chained."""
        try:
            conn = self.get()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(problem=f"{self.path}: cannot {what}: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            with suppress(sqlite3.Error):  # gone already, e.g. the connection was closed
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(
                    problem=f"{self.path}: cannot {what}: {exc}; nothing was written"
                ) from exc
            raise

    def read(self, what: str, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """The rows of one query. :raises StoreError: naming ``what`` failed."""
        try:
            return self.get().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(problem=f"{self.path}: cannot {what}: {exc}") from exc

    def close(self) -> None:
        """Close every connection this process opened; any use after is an error."""
        self._closed = True
        pid = os.getpid()
        with self._lock:
            mine = [c for c in self._open if c.pid == pid]
            self._open = weakref.WeakSet()
        for conn in mine:  # never a parent's connection inherited through fork
            with suppress(sqlite3.Error):
                conn.close()


def _not_writable(path: Path) -> bool:
    """Whether ``path`` is on read-only media for this process: a read-only mount, no
    write permission, or no write permission bit at all (which holds for root too, to
    whom the permission bits do not apply)."""
    statvfs = getattr(os, "statvfs", None)
    if statvfs is not None:
        with suppress(OSError):
            if statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1):
                return True
    for item in (path, path.parent):
        if not item.stat().st_mode & 0o222 or not os.access(item, os.W_OK):
            return True
    return False


def open_readonly(path: Path) -> sqlite3.Connection:
    """A connection (autocommit mode) that never writes to the file ``path``.

    Normally ``mode=ro``: it reads through the WAL, under SQLite's locks, so the
    commits of a store open in another process are seen (SQLite may create the
    ``-wal`` and ``-shm`` files beside it for that). On read-only media (see
    :func:`_not_writable`) with neither a ``-wal`` nor a ``-shm`` beside the file,
    no process has it open in WAL mode and none can write it: then ``immutable=1``,
    which reads the file alone and creates nothing (``mode=ro`` would fail there, or,
    as root, create the side files).

    :raises StoreError: when ``path`` is missing or cannot be opened (naming why).
    """
    if not path.is_file():
        raise StoreError(problem=f"{path}: no such file")
    sides = [Path(f"{path}-{suffix}") for suffix in ("wal", "shm")]
    immutable = _not_writable(path) and not any(side.exists() for side in sides)
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(problem=f"{path}: cannot be opened read-only: {exc}") from exc
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        if not immutable and _not_writable(path):
            raise StoreError(
                problem=f"{path}: cannot be read on read-only media with a -wal or -shm beside it"
                f" ({exc}): copy {path.name} with them to a writable place, or checkpoint it"
                " where it was written"
            ) from exc
        raise StoreError(problem=f"{path}: not a readable SQLite database: {exc}") from exc
    return conn
