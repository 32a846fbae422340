"""A custom agent's configuration: checked field by field, its secrets sealed, shown without them.

    provider        anthropic | openai | openrouter | google | xai
    model           the provider's model name
    system_prompt   up to 100,000 characters
    temperature     0 to 2 (not for anthropic: its Messages API takes none)
    max_tokens      1 to 200,000
    mcp_servers     up to 20 of {url, headers?: {name: value}, require_approval?: bool | [tool names]}
    credential_id   a stored credential of the organization, for the same provider
    base_url        a self-hosted or compatible server instead of the provider's own

The values of ``mcp_servers[].headers`` often carry a token: they are encrypted (bound to
the agent) and shown as ``"********"``.
"""

from __future__ import annotations

from typing import Any, Mapping

import providers

from ..kernel.errors import ValidationFailed
from ..models.chat import Credential
from . import sealed_headers
from .validation import check_outbound_url

__all__ = ["KEYS", "check_config", "public_config", "mcp_headers"]

KEYS = ("provider", "model", "system_prompt", "temperature", "max_tokens", "mcp_servers", "credential_id", "base_url")
MAX_SYSTEM_PROMPT = 100_000
MAX_TOKENS = 200_000
MAX_MCP_SERVERS = 20
_SERVER_KEYS = ("url", "headers", "require_approval")


def _owner(agent_id: str) -> str:
    return f"agent:{agent_id}:mcp"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


async def check_config(
    changes: Mapping[str, Any],
    *,
    organization_id: str,
    agent_id: str,
    protocol: str,
    current: Mapping[str, Any] | None = None,
    allow_private: bool = False,
) -> dict[str, Any]:
    """The configuration after ``changes`` (a key set to ``None`` is removed), each field
    checked (422 naming it, e.g. ``mcp_servers[1].url``); header values sealed."""
    problems: dict[str, list[str]] = {}
    for key in changes:
        if key not in KEYS:
            problems[key] = ["is not a custom-agent setting"]
    config = {k: v for k, v in {**(current or {}), **changes}.items() if v is not None and k in KEYS}
    provider = config.get("provider")
    if "provider" in config and (not isinstance(provider, str) or provider not in providers.PROVIDERS):
        problems["provider"] = [f"must be one of {', '.join(providers.names())}"]
    if "model" in config and (not isinstance(config["model"], str) or not config["model"].strip() or len(config["model"]) > 200):
        problems["model"] = ["must be a model name of 1 to 200 characters"]
    if "system_prompt" in config and (not isinstance(config["system_prompt"], str) or len(config["system_prompt"]) > MAX_SYSTEM_PROMPT):
        problems["system_prompt"] = [f"must be a string of at most {MAX_SYSTEM_PROMPT} characters"]
    if "temperature" in config and (not _number(config["temperature"]) or not 0 <= config["temperature"] <= 2):
        problems["temperature"] = ["must be a number from 0 to 2"]
    elif "temperature" in config and provider == "anthropic":
        problems["temperature"] = ["is not taken by Anthropic's Messages API; leave it out for this provider"]
    if "max_tokens" in config and (
        not isinstance(config["max_tokens"], int) or isinstance(config["max_tokens"], bool) or not 1 <= config["max_tokens"] <= MAX_TOKENS
    ):
        problems["max_tokens"] = [f"must be an integer from 1 to {MAX_TOKENS}"]
    if "base_url" in config and "base_url" in changes:
        try:
            config["base_url"] = await check_outbound_url("base_url", config["base_url"] if isinstance(config["base_url"], str) else "-", allow_private=allow_private)
        except ValidationFailed as exc:
            problems.update(exc.details)
    if "mcp_servers" in changes and config.get("mcp_servers") is not None:
        config["mcp_servers"] = await _check_servers(changes["mcp_servers"], agent_id, current, allow_private, problems)
    if "credential_id" in config and ("credential_id" in changes or "provider" in changes or "base_url" in changes):
        credential = await Credential.get_or_none(id=config["credential_id"], organization_id=organization_id) if isinstance(config["credential_id"], str) else None
        if credential is None:
            problems["credential_id"] = ["is not a credential of this organization"]
        elif provider is not None and credential.provider != provider:
            problems["credential_id"] = [f"is a {credential.provider} credential; this agent uses {provider}"]
        elif (credential.base_url or None) != (config.get("base_url") or None) and "base_url" not in problems:
            problems["credential_id"] = [
                f"is for {credential.base_url or 'the provider' + chr(39) + 's own API'}; this agent calls "
                f"{config.get('base_url') or 'the provider' + chr(39) + 's own API'}"
            ]
    if config.get("base_url") and "credential_id" not in config and "base_url" not in problems:
        # The gateway's own keys go to the providers' own APIs only.
        problems["base_url"] = ["needs a credential_id: a credential made for this server"]
    if protocol == "custom":
        for key in ("provider", "model"):
            if key not in config and key not in problems:
                problems[key] = ["is required for a custom agent"]
    if problems:
        raise ValidationFailed(details=problems)
    return config


async def _check_servers(
    value: Any, agent_id: str, current: Mapping[str, Any] | None, allow_private: bool, problems: dict[str, list[str]]
) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_MCP_SERVERS:
        problems["mcp_servers"] = [f"must be a list of at most {MAX_MCP_SERVERS} servers"]
        return []
    before = {s.get("url"): s.get("headers") or {} for s in (current or {}).get("mcp_servers") or [] if isinstance(s, dict)}
    out = []
    for i, server in enumerate(value):
        path = f"mcp_servers[{i}]"
        if not isinstance(server, dict):
            problems[path] = ["must be an object {url, headers?, require_approval?}"]
            continue
        for key in server:
            if key not in _SERVER_KEYS:
                problems[f"{path}.{key}"] = ["is not an MCP server setting"]
        url = server.get("url")
        try:
            url = await check_outbound_url(f"{path}.url", url if isinstance(url, str) else "-", allow_private=allow_private)
        except ValidationFailed as exc:
            problems.update(exc.details)
        headers = sealed_headers.seal(
            server.get("headers"), owner=_owner(agent_id), before=before.get(url), path=f"{path}.headers", problems=problems
        )
        approval = server.get("require_approval", False)
        if not isinstance(approval, bool) and not (isinstance(approval, list) and all(isinstance(t, str) and t for t in approval)):
            problems[f"{path}.require_approval"] = ["must be true, false or a list of tool names"]
        out.append({"url": url, "headers": headers, "require_approval": approval})
    return out


def public_config(config: Mapping[str, Any], *, show_urls: bool = True) -> dict[str, Any]:
    """The configuration as shown: header values masked; without ``show_urls`` (callers who
    may not change the agent) the URLs too, which often carry a token, like webhook URLs."""
    out = dict(config)
    if "base_url" in out and not show_urls:
        out["base_url"] = None
    if isinstance(out.get("mcp_servers"), list):
        out["mcp_servers"] = [
            {**s, "url": s.get("url") if show_urls else None, "headers": sealed_headers.masked(s.get("headers"))}
            for s in out["mcp_servers"] if isinstance(s, dict)
        ]
    return out


def mcp_headers(agent_id: str, server: Mapping[str, Any]) -> dict[str, str]:
    """A server's headers as sent (for the runner)."""
    return sealed_headers.unseal(server.get("headers"), _owner(agent_id))
