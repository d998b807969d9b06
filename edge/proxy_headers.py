"""What the browser asked for when a proxy stands between it and the edge.

Behind nginx the edge sees the proxy's address and the Host the proxy chose to send; the
browser's origin is the proxy's (`https://app.example`), not the edge's. A proxy says what
it received in `Forwarded` (RFC 7239) or `X-Forwarded-For/-Proto/-Host`, but anyone can
send those headers, so they are believed only from the addresses in `--trusted-proxy`.
From such a peer the connection's client, scheme and Host are rewritten to the browser's,
before any route runs: the Origin check, the limits per IP and the logs then judge the
browser's request, not the last hop.

uvicorn's ProxyHeadersMiddleware is the precedent (client and scheme from X-Forwarded-*,
the first untrusted address from the right being the client). The edge turns uvicorn's off
so this is the one place, and adds the host, `Forwarded`, and addresses checked at start
(a mistyped one is an error, not an address that silently never matches).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# RFC 7239: `for=…;proto=…;host=…` pairs, values plain tokens or quoted strings; elements
# (one per proxy) separated by commas outside quotes.
_ELEMENT = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_PAIR = re.compile(r'\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)=("(?:[^"\\]|\\.)*"|[^;]*)')
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")
_SCHEMES = {"http": ("http", "ws"), "https": ("https", "wss")}


def trusted_networks(proxies: Iterable[str]) -> list[IPNetwork] | None:
    """The networks `--trusted-proxy` names (None: "*", every peer); ValueError if one is
    not an address or CIDR."""
    networks: list[IPNetwork] = []
    for proxy in proxies:
        if proxy == "*":
            return None
        try:
            networks.append(ipaddress.ip_network(proxy.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"--trusted-proxy {proxy!r} is not an IP address or network "
                "(e.g. 127.0.0.1, 10.0.0.0/8, or * behind a proxy that is the only way in)"
            ) from None
    return networks


class ProxyHeadersMiddleware:
    def __init__(self, app: ASGIApp, trusted: Iterable[str]) -> None:
        self.app = app
        self.networks = trusted_networks(trusted)

    def trusts(self, host: str) -> bool:
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False  # "unknown", an obfuscated name, a socket path: never a proxy
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self.trusts(client[0]):
            scope = self.as_the_browser_sent_it(scope)
        await self.app(scope, receive, send)

    def as_the_browser_sent_it(self, scope: Scope) -> Scope:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        hops = _forwarded(headers)
        if not hops:
            return scope
        # Each proxy appends its hop: from the right, skip our own proxies; the first hop
        # received from someone else is the browser's, and says what the browser asked for.
        hop = next((h for h in reversed(hops) if not self.trusts(h.get("for", ""))), hops[0])
        scope = dict(scope)
        peer = _address(hop.get("for", ""))
        if peer:
            scope["client"] = peer
        schemes = _SCHEMES.get(hop.get("proto", "").lower())
        if schemes:
            scope["scheme"] = schemes[scope["type"] == "websocket"]
        host = hop.get("host", "")
        if _HOST.match(host):
            scope["headers"] = [(k, v) for k, v in headers if k != b"host"]
            scope["headers"].append((b"host", host.encode("latin-1")))
        return scope


def _forwarded(headers: list[tuple[bytes, bytes]]) -> list[dict[str, str]]:
    """The hops, oldest first, from `Forwarded` when a proxy sent it, else X-Forwarded-*."""
    values: dict[bytes, list[str]] = {}
    for name, value in headers:
        if name in (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"):
            values.setdefault(name, []).extend(value.decode("latin-1").split(","))
    if b"forwarded" in values:
        hops = []
        for element in _ELEMENT.findall(",".join(values[b"forwarded"])):
            pairs = {k.lower(): v.strip().strip('"') for k, v in _PAIR.findall(element)}
            hops.append(pairs)
        return hops
    hops = [{"for": v.strip()} for v in values.get(b"x-forwarded-for", [])]
    # X-Forwarded-Proto/-Host are set (or appended) by the proxy nearest to us, one value
    # for the whole chain: the last one is the one our trusted proxy wrote.
    last = {
        key: values[name][-1].strip()
        for key, name in (("proto", b"x-forwarded-proto"), ("host", b"x-forwarded-host"))
        if name in values
    }
    if not hops and last:
        return [last]
    # The browser's hop is the first untrusted one from the right; it takes the
    # proto and host wherever it falls in the chain.
    return [{**hop, **last} for hop in hops]


def _address(value: str) -> tuple[str, int] | None:
    """`192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711` → (host, port)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, int(port) if port.isdigit() else 0
