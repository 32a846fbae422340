"""HTTP API: one blueprint per resource. Handlers parse, authorize, call a service, shape."""

from __future__ import annotations

from quart import Quart

__all__ = ["register_blueprints"]


def register_blueprints(app: Quart) -> None:
    from . import (
        agent_endpoints,
        agents,
        api_keys,
        auth,
        conversations,
        credentials,
        data,
        deliveries,
        docs_page,
        files,
        health,
        interactive,
        messages,
        openapi,
        organization,
        push,
        request_io,
        subscriptions,
        typing,
        usage,
    )

    for module in (
        health, auth, organization, api_keys, agents, conversations, messages, interactive, deliveries, typing, data, files, push, credentials, usage,
    ):
        app.register_blueprint(module.bp)
    app.register_blueprint(push.bp_v1)
    app.register_blueprint(agent_endpoints.bp)
    app.register_blueprint(subscriptions.bp)
    app.register_blueprint(openapi.bp)  # /openapi.json, built from the routes above
    app.register_blueprint(docs_page.bp)
    app.url_value_preprocessor(request_io.check_path_ids)
