"""HTTP API: one blueprint per resource. Handlers parse, authorize, call a service, shape."""

from __future__ import annotations

from quart import Quart

__all__ = ["register_blueprints"]


def register_blueprints(app: Quart) -> None:
    from . import (
        agents,
        api_keys,
        auth,
        conversations,
        credentials,
        data,
        deliveries,
        files,
        health,
        interactive,
        messages,
        organization,
        push,
        typing,
        usage,
    )

    for module in (
        health, auth, organization, api_keys, agents, conversations, messages, interactive, deliveries, typing, data, files, push, credentials, usage,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(push.bp_v1)
