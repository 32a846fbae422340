"""Switchboard: a self-hosted chat and notification gateway for agents.

Layers, each importing only those below it:

* ``faces/``    HTTP blueprints, socket.io handlers, CLI: parse, authorize, call a service, shape
* ``serving/``  the Quart app, the ASGI composition and hypercorn
* ``services/`` domain operations, one function each, shared by every face
* ``outbox/``   the durable queue of everything that leaves the machine
* ``events/``   the event bus and one typed builder per event
* ``store/``    the data-table engine
* ``models/``   tortoise models
* ``kernel/``   config, errors, ids, auth, crypto, database wiring, transactions
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # ``from app import create_app`` without importing the whole server on ``import app``.
    if name == "create_app":
        from .serving.app import create_app

        return create_app
    raise AttributeError(name)
