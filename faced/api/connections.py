"""The server's connections: deadlines and caps below the HTTP handlers.

Owns:

* the header deadline — a connection that has not sent a complete request head within
  ``server.header_timeout_s`` of being accepted is closed (slowloris); later heads on a
  kept-alive connection are bounded by the keep-alive timeout (aiohttp's own timer runs
  from the end of each response until the next head is complete);
* the body floor — a request body that has not kept up ``server.body_min_bytes_per_s``
  after a grace of ``server.body_timeout_s`` is cut with a 408 (mod_reqtimeout's rule: the
  time allowed grows with what has arrived);
* the caps — connections per client (an IPv4 address, an IPv6 /64) and off the box in all,
  checked at accept: the excess is closed at once, before it costs more than a descriptor
  for one loop turn. The box's own clients (127.0.0.1 and ::1: the kiosk's screen, local
  agents) and trusted proxies are not capped;
* ``raise_file_limit`` — the soft descriptor limit raised to the hard one at start.

Does not own: the keep-alive timeout's value (passed to aiohttp's runner in faced.app),
request rates (faced.api.ratelimit), viewer places (faced.openface). Upgraded connections
(WebSockets) and streamed responses (Server-Sent Events) are never cut by these deadlines:
their head is complete, and an upgrade carries no body.

Why this way: aiohttp has no header or body deadline and no connection cap, but its
``web.Server`` calls ``connection_made``/``connection_lost`` for every connection and
``request_factory`` for every complete head; ``ConnectionGuard.attach`` wraps those three
public hooks of the one server instance and touches nothing else of aiohttp.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from faced.api.errors import ApiError
from faced.api.ratelimit import IPNetwork, parse_address, parse_networks, rate_key
from faced.config import ServerConfig

log = logging.getLogger(__name__)

OWN_CLIENTS: Final[tuple[IPNetwork, ...]] = (
    ipaddress.ip_network("127.0.0.1/32"),
    ipaddress.ip_network("::1/128"),
)
"""Addresses the box's own clients connect from (``localhost``). Other loopback addresses
count like any client: nothing on the box uses them unless asked to, and the caps can then
be tried on one host."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    body_min_bytes_per_s: int
    per_client: int
    total: int
    exempt: tuple[IPNetwork, ...] = OWN_CLIENTS

    @classmethod
    def of(cls, server: ServerConfig) -> ConnectionLimits:
        return cls(
            header_timeout_s=server.header_timeout_s,
            body_timeout_s=server.body_timeout_s,
            body_min_bytes_per_s=server.body_min_bytes_per_s,
            per_client=server.max_connections_per_client,
            total=server.max_connections,
            exempt=OWN_CLIENTS + parse_networks(server.trusted_proxies),
        )


class _Connection:
    __slots__ = ("body_timer", "client", "header_timer")

    def __init__(self, client: str | None, header_timer: asyncio.TimerHandle) -> None:
        self.client = client  # the cap's key; None: not capped
        self.header_timer: asyncio.TimerHandle | None = header_timer
        self.body_timer: asyncio.TimerHandle | None = None


class ConnectionGuard:
    """The deadlines and caps of one server's connections (see the module's docstring)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: dict[RequestHandler, _Connection] = {}
        self._per_client: dict[str, int] = {}
        self._capped = 0  # open connections that count against the total
        self._refusing: set[str] = set()  # clients told about in the log, until under the cap
        self.refused = 0
        self.header_timeouts = 0
        self.body_timeouts = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, server: web.Server) -> None:
        """Wrap ``server``'s connection and request hooks; call before any site starts
        (each connection's handler reads ``request_factory`` when it is made)."""
        self._loop = asyncio.get_running_loop()
        made, lost, factory = server.connection_made, server.connection_lost, server.request_factory

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._admit(handler, transport)

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self._forget(handler)

        def request_factory(
            message: Any, payload: Any, protocol: RequestHandler, writer: Any, task: Any
        ) -> web.BaseRequest:
            request = factory(message, payload, protocol, writer, task)
            self._head_complete(protocol, request, upgrade=bool(getattr(message, "upgrade", 0)))
            return request

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_factory = request_factory

    @property
    def open_connections(self) -> int:
        return len(self._open)

    # --- accept and close -----------------------------------------------------------------

    def _admit(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        address = parse_address(peer[0] if isinstance(peer, tuple) and peer else None)
        limits = self.limits
        client: str | None = None
        if address is not None and not any(address in net for net in limits.exempt):
            client = rate_key(address)
            held = self._per_client.get(client, 0)
            if held >= limits.per_client or self._capped >= limits.total:
                self._refuse(handler, client, held)
                return
            self._per_client[client] = held + 1
            self._capped += 1
        assert self._loop is not None
        timer = self._loop.call_later(limits.header_timeout_s, self._header_deadline, handler)
        self._open[handler] = _Connection(client, timer)

    def _refuse(self, handler: RequestHandler, client: str, held: int) -> None:
        self.refused += 1
        if client not in self._refusing:  # one line per episode, not one per connection
            self._refusing.add(client)
            which = (
                f"{held} connections from {client} (server.max_connections_per_client)"
                if held >= self.limits.per_client
                else f"{self._capped} connections off the box (server.max_connections)"
            )
            log.warning("refusing connections: %s", which)
        # Not at once: the handler's connection_made goes on to start its task, which must
        # find the connection still there (it then sees the close and ends).
        assert self._loop is not None
        self._loop.call_soon(handler.force_close)

    def _forget(self, handler: RequestHandler) -> None:
        connection = self._open.pop(handler, None)
        if connection is None:
            return
        for timer in (connection.header_timer, connection.body_timer):
            if timer is not None:
                timer.cancel()
        client = connection.client
        if client is not None:
            self._capped -= 1
            held = self._per_client[client] - 1
            if held:
                self._per_client[client] = held
            else:
                del self._per_client[client]
            if held < self.limits.per_client:
                self._refusing.discard(client)

    # --- deadlines ------------------------------------------------------------------------

    def _header_deadline(self, handler: RequestHandler) -> None:
        connection = self._open.get(handler)
        if connection is None or connection.header_timer is None:
            return
        connection.header_timer = None
        self.header_timeouts += 1
        log.debug("closing a connection with no complete request head in time")
        handler.force_close()

    def _head_complete(
        self, handler: RequestHandler, request: web.BaseRequest, upgrade: bool
    ) -> None:
        connection = self._open.get(handler)
        if connection is None:
            return
        if connection.header_timer is not None:
            connection.header_timer.cancel()
            connection.header_timer = None
        if connection.body_timer is not None:  # the previous request's, on a kept-alive connection
            connection.body_timer.cancel()
            connection.body_timer = None
        content = request.content
        if upgrade or not request.body_exists or content.is_eof():
            return
        assert self._loop is not None
        started = self._loop.time()
        connection.body_timer = self._loop.call_at(
            started + self.limits.body_timeout_s, self._body_check, handler, request, started
        )

    def _body_check(
        self, handler: RequestHandler, request: web.BaseRequest, started: float
    ) -> None:
        connection = self._open.get(handler)
        if connection is None:
            return
        connection.body_timer = None
        content = request.content
        if content.is_eof():
            return
        assert self._loop is not None
        limits = self.limits
        deadline = (
            started + limits.body_timeout_s + content.total_bytes / limits.body_min_bytes_per_s
        )
        if self._loop.time() < deadline:
            connection.body_timer = self._loop.call_at(
                deadline, self._body_check, handler, request, started
            )
            return
        self.body_timeouts += 1
        elapsed = self._loop.time() - started
        # The handler's next read raises it (a 408 in faced's words); if it reads no more,
        # the backstop closes the connection.
        content.set_exception(
            SlowBody(
                408,
                f"request body too slow: {content.total_bytes} bytes in {elapsed:.1f} s; "
                f"after {limits.body_timeout_s:g} s (server.body_timeout_s) it must keep up "
                f"{limits.body_min_bytes_per_s} bytes/s (server.body_min_bytes_per_s)",
            )
        )
        connection.body_timer = self._loop.call_later(limits.body_timeout_s, handler.force_close)


class SlowBody(ApiError, TimeoutError):
    """A body cut for being too slow. A TimeoutError too: aiohttp's lingering read of an
    unread body after the response takes one as "give up on it" and closes the connection
    without logging a traceback."""


def raise_file_limit(
    getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
    setrlimit: Callable[[int, tuple[int, int]], None] = resource.setrlimit,
) -> int:
    """Raise the soft descriptor limit to the hard one; the soft limit now in force.

    systemd gives services a soft limit of 1,024 (for programs that still use select())
    and a high hard limit; faced's loop uses epoll, so it may take the hard one."""
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
            return soft
        return hard
    return soft


__all__ = ["OWN_CLIENTS", "ConnectionGuard", "ConnectionLimits", "SlowBody", "raise_file_limit"]
