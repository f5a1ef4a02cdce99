"""The HTTP service: a JSON API over an :class:`~lastresort.Engine`, API tokens bound
to a party and an actor id, and a background scheduler (``lastresort serve``).

Needs the ``service`` extra (``pip install 'lastresort[service]'``: Starlette,
uvicorn). Nothing in the library imports this package.
"""

from __future__ import annotations

from .app import create_app
from .auth import Credential, CredentialStore, Unauthenticated, Verifier
from .scheduler import Scheduler, SchedulerConfig

__all__ = [
    "Credential",
    "CredentialStore",
    "Scheduler",
    "SchedulerConfig",
    "Unauthenticated",
    "Verifier",
    "create_app",
]
