"""The error envelope and status codes for every class of bad request."""

from __future__ import annotations

from quart import Quart

from app.kernel.errors import AUTH_MESSAGE
from tests.conftest import Orgs


def assert_envelope(body: dict, code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_missing_key_is_401_with_the_contract_message(client) -> None:
    response = await client.get("/api/v1/organization")
    assert response.status_code == 401
    body = await response.get_json()
    assert body == {"error": {"code": "authentication_required", "message": AUTH_MESSAGE, "details": None}}


async def test_malformed_json_is_400(client, orgs: Orgs) -> None:
    response = await client.post(
        "/api/v1/organization/members",
        data=b'{"email": "x@y.io",',
        headers={**orgs.a.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert_envelope(await response.get_json(), "invalid_json")


async def test_validation_failure_is_422_with_per_field_details(client, orgs: Orgs) -> None:
    response = await client.post("/api/v1/api-keys", json={"name": 5}, headers=orgs.a.headers)
    assert response.status_code == 422
    body = await response.get_json()
    assert_envelope(body, "validation_failed")
    assert set(body["error"]["details"]) == {"name", "scopes"}


async def test_json_array_body_is_422(client, orgs: Orgs) -> None:
    response = await client.post("/api/v1/api-keys", json=["x"], headers=orgs.a.headers)
    assert response.status_code == 422
    assert (await response.get_json())["error"]["details"] == {"body": ["must be a JSON object"]}


async def test_unknown_route_is_404(client) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert_envelope(await response.get_json(), "not_found")


async def test_wrong_method_is_405(client) -> None:
    response = await client.put("/api/v1/organization")
    assert response.status_code == 405
    assert_envelope(await response.get_json(), "method_not_allowed")


async def test_body_over_the_limit_is_413(client, orgs: Orgs, app: Quart) -> None:
    limit = app.config["SETTINGS"].max_body_bytes
    response = await client.post(
        "/api/v1/organization/members",
        data=b'{"email": "' + b"a" * limit + b'"}',
        headers={**orgs.a.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert_envelope(await response.get_json(), "payload_too_large")


async def test_unexpected_exception_is_500_with_only_a_request_id(app: Quart, caplog) -> None:
    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internals")

    response = await app.test_client().get("/boom")
    assert response.status_code == 500
    body = await response.get_json()
    assert_envelope(body, "internal_error")
    text = await response.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
    request_id = response.headers["X-Request-Id"]
    assert body["error"]["details"] == {"request_id": request_id}
    # The traceback is logged server-side, tagged with the same id.
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


async def test_every_response_has_a_request_id(client, orgs: Orgs) -> None:
    ok = await client.get("/api/v1/organization", headers=orgs.a.headers)
    missing = await client.get("/nope")
    unauth = await client.get("/api/v1/organization")
    ids = {r.headers.get("X-Request-Id") for r in (ok, missing, unauth)}
    assert None not in ids and len(ids) == 3
    assert all(i.startswith("req_") for i in ids)
