"""LLM providers for custom agents: which exist, and where each one's API lives.

Anthropic speaks its own API (the anthropic SDK); OpenAI, OpenRouter, Google and xAI are
reached through the openai SDK at their OpenAI-compatible endpoints. An agent may name its
own ``base_url`` (a self-hosted or compatible server) instead.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Provider", "PROVIDERS", "names"]


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
