"""The client's address behind reverse proxies: `X-Forwarded-For` counts only when a proxy we trust sent it.

`DPA_TRUSTED_PROXIES` lists the proxies (CIDRs, none by default). When the ASGI peer is one of them, the list in
`X-Forwarded-For` is walked from the right, skipping the trusted hops: the first address that is not a trusted
proxy is the client (each proxy appends the address it received the request from, so everything to the left of
that is whatever the client chose to send). That address replaces the peer in the ASGI scope, so whatever reads
`request.client` (signing evidence, the audit log, rate limits) sees it. From any other peer the header is ignored:
a client cannot choose the address recorded as its own.

The server must not rewrite the peer itself: `dpa serve` runs uvicorn without `--proxy-headers`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from litestar.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(value: str | Sequence[str]) -> tuple[Network, ...]:
    """`"10.0.0.0/8, 2001:db8::1"` (or a list of such) as networks; ValueError names a bad entry."""
    items = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for item in (part.strip() for part in items):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or CIDR range") from exc
    return tuple(networks)


def _address(text: str) -> Address | None:
    """One hop as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`; else None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_client(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address: `peer` unless it is a trusted proxy, else the rightmost untrusted hop."""
    peer_address = _address(peer)
    if peer_address is None or not _is_trusted(peer_address, trusted):
        return peer
    client = peer_address
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # a hop nobody can read: the last trusted proxy is as far as we can see
            break
        client = address
        if not _is_trusted(address, trusted):
            break
    return str(client)


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted if network.version == address.version)


def trusted_proxy_middleware(trusted: Sequence[Network]) -> Callable[[ASGIApp], ASGIApp] | None:
    """The middleware factory for `trusted` proxies (None: nothing to wire when there are none)."""
    networks = tuple(trusted)
    if not networks:
        return None

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            peer = scope.get("client")
            if scope["type"] in ("http", "websocket") and peer:
                headers = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
                if headers:
                    client = forwarded_client(peer[0], headers, networks)
                    if client != peer[0]:
                        scope["client"] = (client, 0)
            await app(scope, receive, send)

        return middleware

    return factory
