"""Who is asking, and how often: the client address and the per-address write rate limit.

Owns:

* ``ClientAddress`` — the real client of a request: the TCP peer, or the right-most
  untrusted hop of ``X-Forwarded-For`` when (and only when) the peer is a configured proxy.
* ``RateLimiter`` — GCRA (the generic cell rate algorithm, a token bucket stored as one
  timestamp per client) with bounded memory: keys that have fully recovered are swept, and
  past ``max_keys`` the least recently seen key is dropped.

Does not own: answering 429 or which requests count (the guard in faced.api.middlewares).
Why apart: both are pure (the limiter's clock is injectable) and tested without a server.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_EPSILON_S: Final = 1e-9

LOOPBACK_NETWORKS: Final[tuple[IPNetwork, ...]] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """IPs or CIDRs -> networks; ValueError names the entry that is neither."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
    return tuple(networks)


# Cached: every request parses its peer, and a box has few clients (the cache is bounded).
@functools.lru_cache(maxsize=1024)
def parse_address(text: str | None) -> IPAddress | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port" from some proxies
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(address: IPAddress | None) -> bool:
    return address is not None and any(address in net for net in LOOPBACK_NETWORKS)


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """Resolves the client of a request from its peer and X-Forwarded-For."""

    trusted_proxies: tuple[IPNetwork, ...] = ()

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in net for net in self.trusted_proxies)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> IPAddress | None:
        """The client's address; None only when the peer is not an IP (a Unix socket)."""
        address = parse_address(peer)
        if address is None or not forwarded_for or not self._trusted(address):
            return address
        # Walk from the nearest hop outwards; every hop we trust may have appended the next.
        for hop in reversed(forwarded_for.split(",")):
            hop_address = parse_address(hop)
            if hop_address is None:
                return address  # garbage from an untrusted hop: believe what we know
            address = hop_address
            if not self._trusted(address):
                return address
        return address


@functools.lru_cache(maxsize=1024)
def rate_key(address: IPAddress | None) -> str:
    """One bucket per IPv4 address, per IPv6 /64 (one host usually owns a whole /64)."""
    if address is None:
        return "local"
    if isinstance(address, ipaddress.IPv6Address) and not address.is_loopback:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimiter:
    """GCRA: ``rate`` requests per second sustained, ``burst`` at once.

    Each key stores its theoretical arrival time (TAT). A request is allowed when the
    TAT it would push to is no further than ``burst`` emission intervals ahead of now.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 1.0 / rate
        self.tolerance = self.interval * burst
        self.max_keys = max_keys
        self._clock = clock
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._next_sweep = 0.0
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._tat)

    def hit(self, key: str) -> float:
        """Count one request; 0.0 when allowed, else the seconds to wait before retrying."""
        now = self._clock()
        if now >= self._next_sweep or len(self._tat) > self.max_keys:
            self._sweep(now)
        tat = max(self._tat.get(key, now), now) + self.interval
        wait = tat - now - self.tolerance
        if wait > _EPSILON_S:  # sums of float intervals must not eat the last burst slot
            self.rejected += 1
            return wait
        self._tat[key] = tat
        self._tat.move_to_end(key)
        if len(self._tat) > self.max_keys:
            self._tat.popitem(last=False)
        return 0.0

    def _sweep(self, now: float) -> None:
        # A key whose TAT has passed is indistinguishable from a new one: forget it. One
        # pass per second at most (``hit`` checks when) keeps this O(1) amortised per request.
        self._next_sweep = now + 1.0
        stale = [key for key, tat in self._tat.items() if tat <= now]
        for key in stale:
            del self._tat[key]
