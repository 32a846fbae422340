"""A scripted DNS: answers each lookup of a name with the next address from its script
(the last one repeats), or never answers. Stands in for a rebinding attacker's nameserver."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["ScriptedDNS"]


@dataclass
class ScriptedDNS(AbstractResolver):
    answers: dict[str, list[str]] = field(default_factory=dict)
    hang: bool = False
    lookups: list[str] = field(default_factory=list)

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.lookups.append(host)
        if self.hang:
            await asyncio.sleep(3600)
        script = self.answers.get(host)
        if not script:
            raise OSError(f"NXDOMAIN {host}")
        address = script.pop(0) if len(script) > 1 else script[0]
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [ResolveResult(hostname=host, host=address, port=port, family=fam, proto=socket.IPPROTO_TCP, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None
