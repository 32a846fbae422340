"""``/docs``: Swagger UI reading ``/openapi.json``, served from this package (its files are in
``app/faces/docs_assets/``; nothing comes from a CDN)."""

from __future__ import annotations

from importlib import resources

from quart import Blueprint, Response

from ...kernel.errors import NotFound

__all__ = ["bp"]

bp = Blueprint("docs_page", __name__)

_ASSETS = resources.files("app.faces") / "docs_assets"
_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "init.js": "text/javascript",
    "LICENSE": "text/plain",
    "NOTICE": "text/plain",
}
# Swagger UI styles its elements inline; nothing else may load or run but this page's files.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@bp.get("/docs")
async def page() -> Response:
    response = Response((_ASSETS / "index.html").read_bytes(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/docs/<name>")
async def asset(name: str) -> Response:
    mimetype = _TYPES.get(name)  # only these: a name is never a path
    if mimetype is None:
        raise NotFound("No such endpoint.")
    response = Response((_ASSETS / name).read_bytes(), mimetype=mimetype)
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
