"""The counter-desk page: server-rendered HTML over the service's engine and tokens,
for the counter clerk, the expert and the mayor (docs/desk.md).

Mounted by :func:`lastresort.service.create_app` at ``/desk``. Needs the ``service``
extra (Starlette, Jinja2).
"""

from __future__ import annotations

from .messages import Catalogue, catalogue
from .pages import Desk

__all__ = ["Catalogue", "Desk", "catalogue"]
