"""``X-Forwarded-For``, ``-Proto`` and ``-Host`` from trusted proxies only (issue 19, finding 9).

A client can send any ``X-Forwarded-*`` header; only a proxy listed in ``http.trustedProxies``
(CIDRs) is believed. From such a peer the client address is the right-most
``X-Forwarded-For`` entry that is not itself a trusted proxy, and the scheme and host are the
last ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` values (the ones the nearest proxy added).
Without trusted proxies every request is taken as it arrived: its peer address, scheme and
``Host``. ``http.externalUrl``, when set, is used for URLs the server hands out either way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from tornado.httputil import HTTPServerRequest, split_host_and_port

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# host or [v6]:port, as a Host header may carry it.
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")


@lru_cache(maxsize=8)
def parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: Address, networks: Sequence[Network]) -> bool:
    return any(ip.version == n.version and ip in n for n in networks)


def _last(values: list[str]) -> str:
    parts = [p.strip() for v in values for p in v.split(",") if p.strip()]
    return parts[-1] if parts else ""


def apply_trusted_proxies(request: HTTPServerRequest, cidrs: Sequence[str]) -> None:
    """Rewrite ``request``'s client address, scheme and host from the forwarding headers when
    its peer is a trusted proxy (as Tornado's ``xheaders`` would, for trusted peers only)."""
    if not cidrs:
        return
    headers = {
        name: request.headers.get_list(name)
        for name in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
    }
    origin = resolve_origin(
        request.remote_ip or "",
        request.protocol,
        request.host,
        headers,
        parse_networks(tuple(cidrs)),
    )
    request.remote_ip, request.protocol = origin.remote_ip, origin.protocol
    if origin.host != request.host:
        request.host = origin.host
        request.host_name = split_host_and_port(origin.host.lower())[0]


@dataclass(frozen=True)
class Origin:
    """Where a request came from, as far as this server can believe."""

    remote_ip: str
    protocol: str
    host: str


def resolve_origin(
    peer: str,
    protocol: str,
    host: str,
    headers: dict[str, list[str]],
    trusted: Sequence[Network],
) -> Origin:
    """The request's client address, scheme and host; ``headers`` maps lower-case names to
    all their values."""
    peer_ip = _address(peer)
    if not trusted or peer_ip is None or not _trusted(peer_ip, trusted):
        return Origin(peer, protocol, host)
    client = peer
    hops = [p for v in headers.get("x-forwarded-for", []) for p in v.split(",") if p.strip()]
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:
            break  # garbage: believe nothing further left
        client = str(ip)
        if not _trusted(ip, trusted):
            break
    proto = _last(headers.get("x-forwarded-proto", [])).lower()
    forwarded_host = _last(headers.get("x-forwarded-host", []))
    return Origin(
        client,
        proto if proto in ("http", "https") else protocol,
        forwarded_host if _HOST_RE.match(forwarded_host) else host,
    )
