"""HTTP API: one blueprint per resource. Handlers parse, authorize, call a service, shape."""

from __future__ import annotations

from quart import Quart

__all__ = ["register_blueprints"]


def register_blueprints(app: Quart) -> None:
    from . import api_keys, auth, data, health, organization

    for module in (health, auth, organization, api_keys, data):
        app.register_blueprint(module.bp)
