"""The providers against a fake LLM service speaking the real streaming wire formats, through
the official SDKs (anthropic, openai) pointed at it with ``base_url``."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

import providers
from providers.base import Finish, ProviderError, TextDelta, Tool, ToolCall, ToolCallReady, Turn, Usage
from tests.fakes.llm import FakeLLM, Reply, Text, ToolUse

LOOKUP = Tool("lookup_order", "Find an order by number", {"type": "object", "properties": {"number": {"type": "string"}}})


@pytest.fixture(autouse=True)
async def _fresh_clients() -> AsyncIterator[None]:
    yield
    await providers.close_all()  # each test's clients point at its own fake


def client(llm: FakeLLM, provider: str, key: str = "sk-test-key") -> Any:
    base = llm.url if provider == "anthropic" else f"{llm.url}/v1"
    return providers.client_for(provider, key, base)


async def collect(c: Any, history: list[Turn], tools: list[Tool] | None = None, **extra: Any) -> list[Any]:
    return [e async for e in c.stream(model="m-1", system="Be brief.", history=history, tools=tools or [], **extra)]


@pytest.mark.parametrize("provider", ["anthropic", "openai", "openrouter", "xai", "google"])
async def test_text_streams_with_usage(llm: FakeLLM, provider: str) -> None:
    llm.script(Reply([Text("Your order ships today.", chunks=4)], prompt_tokens=21, completion_tokens=6))
    temperature = None if provider == "anthropic" else 0.3
    events = await collect(client(llm, provider), [Turn("user", "Where is my order?")], temperature=temperature, max_tokens=256)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Your order ships today."
    assert len([e for e in events if isinstance(e, TextDelta)]) >= 3  # streamed, not in one piece
    assert Usage(21, 6) in events and isinstance(events[-1], Finish) and events[-1].reason == "end"
    [request] = llm.requests
    body = request.body
    limit = "max_completion_tokens" if provider == "openai" else "max_tokens"  # OpenAI's own API renamed it
    assert body["model"] == "m-1" and body["stream"] is True and body[limit] == 256
    assert body.get("temperature") == temperature
    if provider == "anthropic":
        assert request.api == "anthropic" and "anthropic-version" in request.headers
        assert "sk-test-key" in (request.headers.get("x-api-key"), request.headers.get("authorization", "")[7:])
        assert body["system"] == "Be brief." and body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Where is my order?"}]}]
    else:
        assert request.api == "openai" and request.headers["authorization"] == "Bearer sk-test-key"
        assert body["messages"][0] == {"role": "system", "content": "Be brief."} and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_tool_calls_and_their_results(llm: FakeLLM, provider: str) -> None:
    llm.script(Reply([Text("Let me check."), ToolUse("lookup_order", {"number": "A-17"}, id="call_1")]))
    events = await collect(client(llm, provider), [Turn("user", "Where is A-17?")], [LOOKUP])
    [ready] = [e for e in events if isinstance(e, ToolCallReady)]
    assert ready.call == ToolCall("call_1", "lookup_order", {"number": "A-17"})
    assert events[-1] == Finish("tool_use", "tool_use" if provider == "anthropic" else "tool_calls")
    first = llm.requests[0].body
    if provider == "anthropic":
        assert first["tools"] == [{"name": "lookup_order", "description": "Find an order by number", "input_schema": LOOKUP.input_schema}]
    else:
        assert first["tools"][0]["function"]["name"] == "lookup_order"
    # The next round carries the call and its result, paired.
    history = [Turn("user", "Where is A-17?"), Turn("assistant", "Let me check.", (ready.call,)),
               Turn("tool", '{"status": "shipped"}', tool_call_id="call_1")]
    await collect(client(llm, provider), history, [LOOKUP])
    messages = llm.requests[1].body["messages"]
    if provider == "anthropic":
        assert messages[1] == {"role": "assistant", "content": [{"type": "text", "text": "Let me check."},
                               {"type": "tool_use", "id": "call_1", "name": "lookup_order", "input": {"number": "A-17"}}]}
        assert messages[2]["content"][0] == {"type": "tool_result", "tool_use_id": "call_1", "content": '{"status": "shipped"}', "is_error": False}
    else:
        assert messages[2]["tool_calls"][0]["id"] == "call_1" and messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'}


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_errors_say_whether_to_retry(llm: FakeLLM, provider: str) -> None:
    llm.script(Reply(status=429, retry_after=2), Reply(status=503), Reply(status=400))
    c = client(llm, provider)
    for retryable, status in ((True, 429), (True, 503), (False, 400)):
        with pytest.raises(ProviderError) as failed:
            await collect(c, [Turn("user", "hi")])
        assert failed.value.retryable is retryable and failed.value.status == status
    assert failed.value.retry_after is None
    with pytest.raises(ProviderError) as refused:
        await collect(client(llm, provider, key="sk-wrong"), [Turn("user", "hi")])
    assert refused.value.status == 401 and not refused.value.retryable
    assert len(llm.requests) == 4  # the SDKs' own retries are off: the runner decides


async def test_one_client_per_key_and_server(llm: FakeLLM) -> None:
    assert client(llm, "anthropic") is client(llm, "anthropic")
    assert client(llm, "anthropic") is not client(llm, "anthropic", key="sk-other")
    assert client(llm, "openai") is not client(llm, "openrouter")


async def test_an_unreachable_server_is_retryable() -> None:
    c = providers.client_for("openai", "sk-x", "http://127.0.0.1:9/v1", timeout=2)
    try:
        with pytest.raises(ProviderError) as failed:
            await collect(c, [Turn("user", "hi")])
        assert failed.value.retryable
    finally:
        await providers.close_all()


def test_tool_call_arguments_that_are_not_an_object_are_kept() -> None:
    from providers.base import tool_call

    assert tool_call("c1", "f", '{"a": 1}').arguments == {"a": 1}
    assert tool_call("c1", "f", "").arguments == {}
    assert tool_call("c1", "f", "[1, 2]").arguments == {"value": [1, 2]}
    assert tool_call("c1", "f", '{"a": ').arguments == {"_unparsed": '{"a": '}


async def test_the_client_cache_is_bounded(llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "MAX_CLIENTS", 2)
    first = client(llm, "openai", key="sk-1")
    client(llm, "openai", key="sk-2")
    assert client(llm, "openai", key="sk-1") is first  # used again: now the newest
    client(llm, "openai", key="sk-3")  # the least recently used (sk-2) goes
    assert client(llm, "openai", key="sk-1") is first
    assert len(providers._clients) == 2
