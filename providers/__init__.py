"""LLM providers for custom agents: which exist, and where each one's API lives.

Anthropic speaks its own API (the anthropic SDK); OpenAI, OpenRouter, Google and xAI are
reached through the openai SDK at their OpenAI-compatible endpoints. An agent may name its
own ``base_url`` (a self-hosted or compatible server) instead.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from .base import Client

__all__ = ["Provider", "PROVIDERS", "names", "client_for", "close_all"]


@dataclass(frozen=True)
class Provider:
    name: str
    api: str  # "anthropic" | "openai": which wire format (and SDK) it speaks
    base_url: str


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("anthropic", "anthropic", "https://api.anthropic.com"),
        Provider("openai", "openai", "https://api.openai.com/v1"),
        Provider("openrouter", "openai", "https://openrouter.ai/api/v1"),
        Provider("google", "openai", "https://generativelanguage.googleapis.com/v1beta/openai/"),
        Provider("xai", "openai", "https://api.x.ai/v1"),
    )
}


def names() -> tuple[str, ...]:
    return tuple(PROVIDERS)


_clients: OrderedDict[tuple[str, str, str], Client] = OrderedDict()
MAX_CLIENTS = 128  # the least recently used beyond this are closed
_closing: set[asyncio.Task[None]] = set()


def client_for(provider: str, api_key: str, base_url: str | None = None, *, timeout: float = 60.0) -> Client:
    """One client per provider, key and base URL, kept and reused (its connection pool with
    it), not one per message. Adding a provider is one module and one line above."""
    spec = PROVIDERS[provider]
    url = base_url or spec.base_url
    cache_key = (provider, hashlib.sha256(api_key.encode()).hexdigest(), url)
    client = _clients.get(cache_key)
    if client is not None:
        _clients.move_to_end(cache_key)
    else:
        if spec.api == "anthropic":
            from .anthropic import AnthropicClient

            client = AnthropicClient(api_key=api_key, base_url=url, timeout=timeout)
        else:
            from .openai_compat import OpenAIClient

            client = OpenAIClient(api_key=api_key, base_url=url, timeout=timeout, name=provider)
        _clients[cache_key] = client
        while len(_clients) > MAX_CLIENTS:
            _, old = _clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(old.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
    return client


async def close_all() -> None:
    clients = list(_clients.values())
    _clients.clear()
    for client in clients:
        await client.close()
