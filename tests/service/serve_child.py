"""Child of tests/service/test_several_services.py: one service process (uvicorn, the
app with its scheduler, the system clock) on a shared SQLite file, whose delivery hook
appends ``<pid> <key>`` to a shared record file for every notification it is handed.

``python tests/service/serve_child.py DB CREDENTIALS PORT RECORD``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import uvicorn

import lastresort as lr
from lastresort.service import CredentialStore, SchedulerConfig, create_app


class Recorder:
    """Delivers by appending one line per call: O_APPEND writes of a short line are
    atomic, so two processes' lines never mix."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    @lr.hookimpl
    def lastresort_deliver(self, notification: lr.Notification) -> str:
        os.write(self.fd, f"{os.getpid()} {notification.key}\n".encode())
        return f"rec-{os.getpid()}"


def main() -> None:
    db, credentials, port, record = sys.argv[1:5]
    engine = lr.Engine(
        store=lr.SQLiteStore(db),
        clock=lr.SystemClock(),
        plugins=[Recorder(record)],
        entry_points=False,
    )
    # small batches and short intervals: the two processes' rounds interleave
    config = SchedulerConfig(tick_interval=0.02, deliver_interval=0.02, batch=7)
    app = create_app(engine, credentials=CredentialStore(Path(credentials)), scheduler=config)
    try:
        uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")
    finally:
        engine.store.close()


if __name__ == "__main__":
    main()
