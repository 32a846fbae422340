"""The OpenAPI document: every route in it, valid OpenAPI 3.1, served with its docs page, and
true of the running server (schemathesis fuzzes every operation against it)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
from openapi_spec_validator import validate

from app.faces.http.openapi import NOT_DOCUMENTED, build_document, undocumented
from app.kernel.auth import SCOPES
from app.kernel.config import Settings
from app.serving.app import create_app
from tests.conftest import LiveServer, Orgs, make_org
from tests.fakes.llm import FakeLLM
from tests.fakes.smtp import SMTPServer
from tests.fakes.webhook_receiver import WebhookReceiver

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def bare_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app with its routes, not started (building the document needs no database)."""
    data = tmp_path_factory.mktemp("openapi")
    return create_app(Settings(data_dir=data, database_url=f"sqlite://{data}/unused.db"), auto_migrate=False)


@pytest.fixture(scope="module")
def document(bare_app: Any) -> dict[str, Any]:
    return build_document(bare_app)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items() if method in METHODS]


def test_every_route_is_documented(bare_app: Any, document: dict[str, Any]) -> None:
    """A new route without ``@documented`` (or whose answer type is a bare dict) fails here."""
    assert undocumented(bare_app) == []
    documented = {(path, method) for path, method, _ in _operations(document)}
    for rule in bare_app.url_map.iter_rules():
        if rule.endpoint in NOT_DOCUMENTED:
            continue
        path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, f"{method} {rule.rule}"


def test_a_route_without_its_facts_is_caught(tmp_path: Path) -> None:
    from quart import Blueprint

    from app.faces.http.documented import documented

    app = create_app(Settings(data_dir=tmp_path, database_url=f"sqlite://{tmp_path}/unused.db"), auto_migrate=False)
    extra = Blueprint("extra", __name__)

    @extra.get("/extra/plain")
    async def plain() -> dict[str, str]:
        return {}

    @extra.get("/extra/vague")
    @documented("Vague")
    async def vague() -> dict[str, Any]:
        return {}

    app.register_blueprint(extra)
    assert undocumented(app) == [
        "/extra/plain (extra.plain): not @documented",
        "/extra/vague (extra.vague): its answer type says nothing of its shape",
    ]


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_each_operation_states_auth_scope_and_errors(document: dict[str, Any]) -> None:
    schemes = set(document["components"]["securitySchemes"])
    assert schemes == {"apiKey", "apiKeyHeader", "session"}
    error_refs = {f"#/components/responses/{name}" for name in document["components"]["responses"]}
    for path, method, op in _operations(document):
        where = f"{method.upper()} {path}"
        assert op["summary"] and op["operationId"], where
        responses = op["responses"]
        assert any(code.startswith("2") for code in responses), where
        for code, response in responses.items():
            if code.startswith(("4", "5")) and "$ref" in response:
                assert response["$ref"] in error_refs, where
        scope = op.get("x-required-scope")
        if op["security"]:
            assert {"401", "403"} <= set(responses), where
            for requirement in op["security"]:
                assert list(requirement.values())[0] == ([scope] if scope else []), where
            if scope:
                assert scope in SCOPES and f"`{scope}`" in op["description"], where
        else:
            assert scope is None, where
        if "requestBody" in op:
            assert {"400", "422"} <= set(responses), where
        if "{" in path:
            assert "404" in responses, where


def test_error_envelope_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    envelope = schemas["ErrorBody"]
    assert envelope["required"] == ["error"]
    detail = schemas[envelope["properties"]["error"]["$ref"].rpartition("/")[2]]
    assert set(detail["required"]) == {"code", "message", "details"}
    for name, response in document["components"]["responses"].items():
        example = response["content"]["application/json"]["example"]
        assert set(example["error"]) == {"code", "message", "details"}, name


def test_examples_for_request_bodies(document: dict[str, Any]) -> None:
    """Swagger UI and the fuzzer start from these: the message and key bodies carry examples."""
    text = json.dumps(document)
    assert '"examples"' in text
    schemas = document["components"]["schemas"]
    assert schemas["UserMessage"]["properties"]["content"]["examples"]
    assert schemas["CreateKeyBody"]["properties"]["scopes"]["examples"]


async def test_served_document_and_docs_page(client: Any) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    served = await response.get_json()
    assert served["paths"]["/api/v1/conversations/{conversation_id}/messages"]["post"]["x-required-scope"] == (
        "conversations:write"
    )

    page = await client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    html = await page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert "<script>" not in html and scripts  # no inline script: the policy would refuse it
    assets = [*scripts, *re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)]
    assert len(assets) == 3
    for asset in assets:
        assert asset.startswith("/docs/"), asset  # this server's own files
        assert (await client.get(asset)).status_code == 200, asset
    init = await (await client.get("/docs/init.js")).get_data(as_text=True)
    assert 'url: "/openapi.json"' in init
    assert (await client.get("/docs/LICENSE")).status_code == 200
    assert (await client.get("/docs/README.txt")).status_code == 404  # only the page's files are served


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="the docs page's browser test needs Chromium (apt-get install chromium)")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_docs_page_shows_every_operation_in_a_browser(live_server: LiveServer) -> None:
    """Swagger UI, run by a real browser under the page's Content-Security-Policy, renders one
    block per operation of the document."""
    async with httpx.AsyncClient() as http:
        served = (await http.get(f"{live_server.url}/openapi.json")).json()
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom",
        f"{live_server.url}/docs", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    dom, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    blocks = re.findall(r'id="operations-([^"-]+)-([^"]+)"', dom.decode())  # operations-<tag>-<operationId>
    shown = {operation for tag, operation in blocks if tag != "tag"}
    assert shown == {op["operationId"] for _, _, op in _operations(served)}


@pytest.mark.parametrize("bad", ["x" * 33, "conv_ with space", "agt_%F0%9D%90%93"])
async def test_a_path_id_that_cannot_be_an_id_is_404(client: Any, orgs: Orgs, bad: str) -> None:
    """Found by the fuzzer: a path id longer than any id (or with characters none has) was
    refused by the database as an invalid value (422 naming "body"), not found (404)."""
    for path in (f"/api/v1/agents/{bad}", f"/api/v1/conversations/{bad}", f"/api/v1/deliveries/{bad}",
                 f"/api/v1/agents/{bad}/conversations"):
        response = await client.get(path, headers=orgs.a.headers)
        assert response.status_code == 404, path
        assert (await response.get_json())["error"]["code"] == "not_found"


@pytest.mark.parametrize("provider", [["anthropic"], {"name": "anthropic"}])
async def test_a_provider_that_is_not_a_string_is_422(client: Any, orgs: Orgs, provider: Any) -> None:
    """Found by the fuzzer: a list or object as an agent's provider was a 500 (unhashable)."""
    created = await client.post("/api/v1/agents", headers=orgs.a.headers,
                                json={"name": "x", "protocol": "custom", "provider": provider, "model": "m"})
    assert created.status_code == 422
    assert "provider" in (await created.get_json())["error"]["details"]
    agent = (await (await client.post("/api/v1/agents", headers=orgs.a.headers,
                                      json={"name": "y", "webhook_url": "http://127.0.0.1:9/hook"})).get_json())["agent"]
    changed = await client.patch(f"/api/v1/agents/{agent['id']}", headers=orgs.a.headers, json={"provider": provider})
    assert changed.status_code == 422


async def test_quart_errors_keep_the_envelope_and_allow(client: Any) -> None:
    response = await client.delete("/api/v1/me")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"


# ---------------------------------------------------------------- schemathesis


FUZZ_SEED = 20261202
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture
async def smtp() -> AsyncIterator[SMTPServer]:
    server = await SMTPServer().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
def fuzz_settings(settings: Settings, smtp: SMTPServer) -> Settings:
    """Email on (a reset answers 202, not 503) and no request limits: the fuzzer is one client
    sending thousands of requests."""
    return settings.with_overrides(
        smtp_url=smtp.url(), public_url="https://switchboard.example", rate_limit_per_minute=0, login_attempts_per_minute=10**6, auth_requests_per_minute=10**6,
    )


@pytest.fixture
async def fuzz_server(fuzz_settings: Settings) -> AsyncIterator[LiveServer]:
    from tests.chat.conftest import running_server

    async with running_server(fuzz_settings) as server:
        yield server


async def _seed(server: LiveServer, receiver: WebhookReceiver, llm: FakeLLM) -> tuple[dict[str, str], dict[str, list[str]]]:
    """An organization with one of everything, so the fuzzer's requests also reach real
    objects (and their answers are checked against the document), not only 404s. The
    conversation it is given has a custom agent (the fake LLM answers at once) and its
    interactive message is answered: a long-poll on either returns without waiting it out."""
    org = await make_org("Fuzz")
    ids: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=server.url, headers=org.headers, timeout=10) as http:

        async def post(path: str, body: dict[str, Any], status: int = 201, **kwargs: Any) -> dict[str, Any]:
            response = await http.post(path, json=body, **kwargs)
            assert response.status_code == status, response.text
            return dict(response.json())

        hook = (await post("/api/v1/agents", {"name": "Fuzz automation", "webhook_url": receiver.url}))["agent"]
        hook_conv = (await post(f"/api/v1/agents/{hook['id']}/conversations/create", {}))["conversation"]
        await post(f"/api/v1/conversations/{hook_conv['id']}/messages", {"content": "to the automation"})
        credential = (await post(
            "/api/v1/credentials", {"name": "fake", "provider": "anthropic", "value": llm.api_key, "base_url": llm.url}
        ))["credential"]
        agent = (await post("/api/v1/agents", {
            "name": "Fuzz agent", "protocol": "custom", "provider": "anthropic", "model": "model-1",
            "credential_id": credential["id"], "base_url": llm.url,
        }))["agent"]
        conv = (await post(f"/api/v1/agents/{agent['id']}/conversations/create", {"title": "Fuzz"}))["conversation"]
        said = await post(f"/api/v1/conversations/{conv['id']}/messages", {"content": "hello", "wait": 10})
        assert said["reply"] is not None, said
        ask = (await post(f"/api/v1/conversations/{conv['id']}/interactive", {
            "callback_url": receiver.url, "callback_id": "c1",
            "elements": [{"type": "text", "text": "Ship it?"}, {"type": "boolean", "require_comment_on_reject": False}],
        }))["message"]
        session = await post("/api/v1/auth/login", {"email": org.owner_email, "password": org.owner_password}, status=200)
        await post(f"/api/v1/messages/{ask['id']}/respond", {"approved": True}, status=200,
                   headers={"Authorization": f"Bearer {session['token']}"})
        db = (await post("/api/v1/databases", {"name": "Fuzz db"}))["data"]
        table = (await post(f"/api/v1/databases/{db['id']}/tables", {"name": "Tasks"}))["data"]
        field = (await post(f"/api/v1/tables/{table['id']}/fields", {"name": "Shipped", "type": "checkbox"}))["data"]
        entry = (await post(f"/api/v1/tables/{table['id']}/entries", {"values": {"Name": "one", "Shipped": True}}))["data"]
        member = (await post("/api/v1/organization/members", {"email": "fuzz-member@example.com"}))["member"]
        deliveries = (await http.get("/api/v1/deliveries")).json()["deliveries"]
        assert deliveries
        ids = {
            "agent_id": [agent["id"], hook["id"]],
            "conversation_id": [conv["id"]],
            "message_id": [said["message"]["id"], said["reply"]["id"], ask["id"]],
            "credential_id": [credential["id"]],
            "database_id": [db["id"]],
            "table_id": [table["id"]],
            "field_id": [field["id"]],
            "entry_id": [entry["id"]],
            "member_id": [member["id"]],
            "delivery_id": [d["id"] for d in deliveries],
        }
    return {"api_key": org.api_key, "session": session["token"]}, ids


def _config(ids: dict[str, list[str]]) -> str:
    """schemathesis.toml: path parameters take a seeded id most of the time, anything else
    otherwise (API key ids are left to chance: the fuzzer would disable its own key). Valid
    long-poll waits are kept short; invalid ones are still generated."""
    lines = []
    for name, values in {**ids, "waits": [0, 1]}.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.7 }}' for name in ids]
    lines += ['"query.wait" = { dictionary = "waits" }', '"body.wait" = { dictionary = "waits" }']
    return "\n".join(lines) + "\n"


# Signing out would leave the rest of a person's run nothing but 401s (the API key's run has it).
_SKIPPED = {"api_key": [], "session": ["auth_logout"]}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("caller", ["api_key", "session"])
async def test_schemathesis_finds_no_server_error_and_no_deviation(
    fuzz_server: LiveServer, receiver: WebhookReceiver, llm: FakeLLM, tmp_path: Path, caller: str
) -> None:
    """Every operation of the document, fuzzed with valid and invalid input, as an all-scopes
    API key and as the owner's session: no 5xx, and every status, content type and body as
    the document says."""
    tokens, ids = await _seed(fuzz_server, receiver, llm)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(ids))
    st = Path(sys.executable).with_name("st")
    skipped = [arg for operation in _SKIPPED[caller] for arg in ("--exclude-operation-id", operation)]
    process = await asyncio.create_subprocess_exec(
        str(st), "--config-file", str(config), "run", f"{fuzz_server.url}/openapi.json",
        "-H", f"Authorization: Bearer {tokens[caller]}", *skipped,
        "--checks", CHECKS,
        "--max-examples", os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "10"),
        "--seed", os.environ.get("SWITCHBOARD_FUZZ_SEED", str(FUZZ_SEED)),
        "--request-timeout", "20",
        "--workers", "1",  # CPython 3.11 cannot parse source in two threads at once (hypothesis does)
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"},
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=600)
    report = out.decode(errors="replace")
    print(report)  # shown with -s, or when the test fails
    assert process.returncode == 0, report[-20000:]
    async with httpx.AsyncClient() as http:
        served = (await http.get(f"{fuzz_server.url}/openapi.json")).json()
    tested = re.search(r"Tested: (\d+)", report)
    assert tested is not None and int(tested.group(1)) == len(_operations(served)) - len(_SKIPPED[caller]), report[-3000:]
