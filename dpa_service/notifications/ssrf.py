"""The SSRF guard: a webhook URL may reach only public addresses, checked at registration and again at send.

A URL is refused when it cannot be parsed (`http://[::1`, a port outside 1-65535), is not http(s), carries
credentials, spells an IPv4 address in anything but four decimal numbers (`http://2130706433/`, `http://0x7f.1/`
are 127.0.0.1 to the resolver), or when ANY address its host resolves to is not public. "Public" is the
`ipaddress` module's own classification (`is_global`, and not multicast, reserved, ...) after unwrapping the IPv6
forms that carry an IPv4 address inside (`::ffff:a.b.c.d` mapped, `::a.b.c.d` compatible, `64:ff9b::/96` NAT64,
`2002::/16` 6to4): the inner address must be public too. A short table adds the IANA special-purpose ranges that
the running Python may still call global (3.11's `ipaddress` thinks multicast and 192.0.0.0/24 are, for one).

At send, the worker connects to the address it checked (`Target.pinned`), with the original host in the `Host`
header and TLS's SNI and certificate check: resolving again inside the HTTP client would let a DNS answer that
changed in between (DNS rebinding) reach an internal address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import anyio

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# IANA special-purpose ranges (RFC 6890 and successors) that are not globally reachable, for the Python versions
# whose `is_global` still says they are. Refusing the two global anycast addresses inside 192.0.0.0/24 costs nothing:
# no webhook receiver lives there.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64", "2001::/23", "2001:db8::/32",
        "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the well-known prefix, the IPv4 address in the last 32 bits
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 2.5.5.1, deprecated
# What inet_aton would read as an IPv4 address: digits, hex and dots only (`2130706433`, `0x7f.1`, `0177.0.0.1`).
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class UnsafeUrl(ValueError):
    """A webhook URL that is not a valid http(s) URL or reaches a loopback, private or otherwise internal address."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # lower case, IDNA-encoded; an IPv6 literal without brackets
    port: int
    literal: IPAddress | None  # the host is an IP address

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def pinned(self, address: IPAddress) -> str:
        """The URL with its host replaced by `address` (the one that was checked)."""
        parts = urlsplit(self.url)
        host = f"[{address}]" if address.version == 6 else str(address)
        return urlunsplit((parts.scheme, f"{host}:{self.port}", parts.path or "/", parts.query, ""))


def parse_url(url: str) -> Target:
    """The parts of a webhook URL, or UnsafeUrl saying what is wrong with it (never another exception)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", a non-numeric port
        raise UnsafeUrl(f"is not a valid URL ({exc})") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UnsafeUrl("must be an http(s) URL with a host name")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not carry credentials")
    if port == 0:
        raise UnsafeUrl("must not use port 0")
    host = parts.hostname  # lower case, brackets removed
    literal = _literal(host)
    if literal is None:
        host = _host_name(host)
    return Target(url, parts.scheme, host, port or (443 if parts.scheme == "https" else 80), literal)


def _literal(host: str) -> IPAddress | None:
    if ":" in host:
        if "%" in host:
            raise UnsafeUrl("must not name an IPv6 zone (a link-local interface)")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise UnsafeUrl(f"has an invalid IPv6 address ({exc})") from exc
    try:
        return ipaddress.IPv4Address(host)  # four decimal numbers, nothing else
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host.rstrip(".")) and any(c.isdigit() for c in host):
        try:
            socket.inet_aton(host.rstrip("."))
        except OSError:
            return None  # not an address after all (e.g. "deadbeef.cafe"): a host name
        raise UnsafeUrl("must write an IPv4 address as four decimal numbers (a.b.c.d)")
    return None


def _host_name(host: str) -> str:
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeUrl("has a host name that is not valid") from exc
    labels = encoded.rstrip(".").split(".")
    if len(encoded) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise UnsafeUrl("has a host name that is not valid")
    return encoded


def non_public(address: IPAddress) -> str | None:
    """Why `address` is not a public one a webhook may reach, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        inner: ipaddress.IPv4Address | None = None
        form = ""
        if address.ipv4_mapped is not None:
            inner, form = address.ipv4_mapped, "IPv4-mapped"
        elif address in IPV4_COMPATIBLE and int(address) > 1:
            return "is an IPv4-compatible IPv6 address (deprecated, RFC 4291)"
        elif address in NAT64:
            inner, form = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
        elif address.sixtofour is not None:
            inner, form = address.sixtofour, "6to4"
        if inner is not None:
            reason = non_public(inner)
            return f"is the {form} form of {inner}, which {reason}" if reason else None
    if any(address in network for network in NOT_GLOBAL if network.version == address.version):
        return "is in a special-purpose range that is not globally reachable"
    if address.is_multicast:
        return "is a multicast address"
    if not address.is_global or address.is_reserved or address.is_unspecified:
        return "is not a globally reachable address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# Tests replace this (monkeypatch) to make a host name resolve wherever they need.
resolve: Resolver = system_resolver


async def public_addresses(target: Target) -> list[IPAddress]:
    """Every address the target's host resolves to, all of them public, else UnsafeUrl."""
    if target.literal is not None:
        found: list[IPAddress] = [target.literal]
    else:
        try:
            answers = await resolve(target.host, target.port)
        except OSError as exc:
            raise UnsafeUrl(f"host does not resolve ({getattr(exc, 'strerror', None) or exc})") from exc
        # getaddrinfo may answer "fe80::1%eth0": the zone is not part of the address.
        found = [ipaddress.ip_address(answer.split("%", 1)[0]) for answer in answers]
        if not found:
            raise UnsafeUrl("host does not resolve")
    for address in found:
        if (reason := non_public(address)) is not None:
            raise UnsafeUrl(f"resolves to a non-public address ({address}, which {reason}): refused")
    return found


async def check_url(url: str, *, allow_private: bool) -> Target:
    """Refuse (UnsafeUrl) a URL a webhook must not be sent to; return its parts."""
    target = parse_url(url)
    if not allow_private:
        await public_addresses(target)
    return target


@dataclass(frozen=True)
class Destination:
    """Where to send: the URL to connect to, and the headers and httpx extensions that keep the original host."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


async def destination(url: str, *, allow_private: bool) -> Destination:
    """Check `url` now and pin the connection to the address checked (see the module's docstring)."""
    target = parse_url(url)
    if allow_private:
        return Destination(url, {}, {})
    address = (await public_addresses(target))[0]
    # httpcore's `sni_hostname`: the TLS server name, and the name the certificate is checked against.
    extensions = {"sni_hostname": target.host} if target.scheme == "https" and target.literal is None else {}
    return Destination(target.pinned(address), {"Host": target.host_header}, extensions)
