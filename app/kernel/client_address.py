"""Whom a request is counted against when it has no principal: the client's address.

The peer address is the client unless the peer is a listed reverse proxy
(``SWITCHBOARD_TRUSTED_PROXIES``, addresses or networks). Then the client is the right-most
address in ``X-Forwarded-For`` that is not itself a listed proxy: everything left of it was
written by the client and proves nothing. IPv6 clients are counted by their /64, the block one
subscriber usually holds, so a host cannot dodge a limit by walking through its addresses.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Sequence

__all__ = ["ClientAddresses"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientAddresses:
    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        networks: list[_Network] = []
        for entry in trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"SWITCHBOARD_TRUSTED_PROXIES: {entry.strip()!r} is not an IP address or network"
                ) from None
        self._trusted = tuple(networks)

    def of(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str:
        """The address to count: ``peer``, or behind a trusted proxy the client it names;
        an IPv6 address as its /64."""
        if not peer:
            return "unknown"
        if not self._trusted and ":" not in peer:
            return peer  # the common case, IPv4 with no proxy: no parsing
        address = _parse(peer)
        if address is None:
            return peer  # a Unix socket or a test client's stand-in
        if self._trusted and forwarded_for and self._is_trusted(address):
            address = self._forwarded_client(address, forwarded_for)
        return _grouped(address)

    def of_scope(self, scope: dict[str, Any]) -> str:
        """``of`` for a raw ASGI request."""
        client = scope.get("client")
        forwarded = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"x-forwarded-for"]
        return self.of(client[0] if client else None, forwarded)

    def _is_trusted(self, address: _Address) -> bool:
        return any(address in network for network in self._trusted)

    def _forwarded_client(self, peer: _Address, forwarded_for: Sequence[str]) -> _Address:
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        client = peer
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:
                break  # a trusted proxy never writes this: the client did; keep the last proxy's word
            client = address
            if not self._is_trusted(address):
                break
        return client


def _parse(text: str) -> _Address | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _grouped(address: _Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
