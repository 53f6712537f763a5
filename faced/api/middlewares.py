"""Cross-cutting HTTP concerns, applied to every request before any route sees it.

Owns: what happens to every request around its handler. Does not own: the error body's shape
(faced.schemas.errors.ErrorBody) or which route needs what (faced.api.access). One middleware
(two stages, one aiohttp layer: each layer costs a coroutine frame per request) and one
response hook:

1. ``request_context`` — names the request (``X-Request-ID``), resolves the real client
   address (``faced.api.ratelimit.ClientAddress``), turns every failure into
   ``{"error": …}`` with the right status (ApiError, aiohttp's 404/405/413…, and unexpected
   exceptions as a logged 500 without a traceback), logs one access line, and tells the
   metrics (faced.metrics) of the finished request when they are on.
2. ``guard``, inside it — answers CORS preflights (204), rate-limits writes per client
   (GCRA, 429 with Retry-After), and enforces the access policy (faced.api.access: 401
   missing key, 403 wrong key or private route off loopback).
3. ``on_response_prepare`` hook — security headers and CORS on every response, errors
   and WebSocket handshakes included.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict, istr
from yarl import URL

from faced.api.access import Access, AccessPolicy
from faced.api.codec import respond
from faced.api.errors import ApiError
from faced.api.ratelimit import ClientAddress, IPAddress, RateLimiter, is_loopback, rate_key
from faced.schemas.errors import ErrorBody

log = logging.getLogger(__name__)
access_log = logging.getLogger("faced.access")


@dataclass(frozen=True, slots=True)
class Client:
    """The resolved client of a request (see ClientAddress): None for a Unix socket peer."""

    address: IPAddress | None
    rate_key: str = field(init=False, compare=False)
    """The client's rate-limit bucket (faced.api.ratelimit.rate_key), worked out once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate_key", rate_key(self.address))

    def __str__(self) -> str:
        return str(self.address) if self.address is not None else "local"


class _Clients:
    """Request peer (and X-Forwarded-For) -> Client, remembered: a box has few clients, and
    resolving and building one per request is a measurable share of a small request."""

    def __init__(self, addresses: ClientAddress, max_entries: int = 1024) -> None:
        self._resolve = addresses.resolve
        self._max_entries = max_entries
        self.known: dict[tuple[str | None, str | None], Client] = {}
        """Read directly by the middleware (a method call per request costs); ``add`` on a miss."""

    def get(self, peer: str | None, forwarded_for: str | None) -> Client:
        client = self.known.get((peer, forwarded_for))
        return client if client is not None else self.add(peer, forwarded_for)

    def add(self, peer: str | None, forwarded_for: str | None) -> Client:
        client = Client(self._resolve(peer, forwarded_for))
        if len(self.known) >= self._max_entries:
            self.known.clear()  # bounded: whatever a client sends cannot grow it
        self.known[(peer, forwarded_for)] = client
        return client


class _RequestIds:
    """Made-up request ids: 16 hex digits as random as ``secrets.token_hex(8)``, cut from
    ``os.urandom`` 256 at a time (one system call per id cost more than the rest of the
    request's bookkeeping). ``next(ids.pool, None) or ids.refill()`` takes one."""

    _IDS_PER_FILL: Final = 256

    def __init__(self) -> None:
        self.pool: Iterator[str] = iter(())

    def refill(self) -> str:
        digits = os.urandom(8 * self._IDS_PER_FILL).hex()
        self.pool = iter([digits[i : i + 16] for i in range(0, len(digits), 16)])
        return next(self.pool)


REQUEST_ID_KEY: Final = web.RequestKey("request_id", str)
CLIENT_KEY: Final = web.RequestKey("client", Client)
_PREPARED_KEY: Final = web.RequestKey("prepared_response", web.StreamResponse)

WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REQUEST_ID_RE: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_HOST_RE: Final = re.compile(r"[A-Za-z0-9.-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")

CORS_METHODS: Final = "GET, POST, PUT, OPTIONS"
CORS_HEADERS: Final = "Content-Type, Authorization, X-API-Key"
# Same-origin everything, no inline script or style. 'self' covers same-host ws:/wss: in
# CSP 3 browsers; the explicit ws://host is for older WebKit kiosks.
_CSP_TEMPLATE: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' data: blob:; connect-src 'self'{ws}; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# A host CSP can name in a source expression (no IPv6 literals: the grammar has none).
_SOURCE_HOST_RE: Final = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,126}")

CONNECT_SOURCES_KEY: Final = web.RequestKey("connect_sources", str)
"""Extra ``connect-src`` sources a handler allows for its own response only (the viewer
page's ``?server=``, see ``remote_viewer_sources``)."""


def remote_viewer_sources(server: str) -> str | None:
    """The ``connect-src`` sources a viewer page needs to watch another daemon: the socket's
    origin, and its http(s) twin (the page reads ``/api/config`` and face packs there).
    None unless ``server`` is a ws:// or wss:// URL whose host a source expression can
    name; the page then stays same-origin (and the browser blocks the override).

    Why per page URL and not ``ws: wss:``: connect-src is what keeps an injected script
    from sending anything anywhere (the dashboard keeps the API key in this origin's
    localStorage, which every page here can read). The server sees the ``?server=`` the
    page will use, so it can allow exactly that one daemon, on that one response.
    """
    try:
        url = URL(server)
    except ValueError:
        return None
    scheme = url.scheme
    host = url.raw_host
    if scheme not in ("ws", "wss") or not host or not _SOURCE_HOST_RE.fullmatch(host):
        return None
    if url.raw_user is not None or url.raw_password is not None:
        return None
    port = url.explicit_port
    if port is not None and not 1 <= port <= 65535:
        return None
    authority = host.lower() if port is None else f"{host.lower()}:{port}"
    http = "https" if scheme == "wss" else "http"
    return f"{scheme}://{authority} {http}://{authority}"


@dataclass
class Guard:
    """What the middlewares need, built once from the config (see faced.app)."""

    api_key: str | None
    cors_origin: str
    clients: ClientAddress
    limiter: RateLimiter
    policy: AccessPolicy
    _csp_by_host: dict[str, str] = field(default_factory=dict)
    bearer: bytes | None = field(init=False, default=None)
    """``Authorization: Bearer <key>`` exactly as most agents send it, compared whole (in
    constant time) before the general parse of the four ways to present the key."""

    def __post_init__(self) -> None:
        key = self.api_key
        if key is not None and key == key.strip():
            self.bearer = f"Bearer {key}".encode()

    def content_security_policy(self, host: str, connect: str = "") -> str:
        if connect:  # one response's own extra sources (a viewer page load): not cached
            own = f" ws://{host} wss://{host}" if _HOST_RE.fullmatch(host) else ""
            return _CSP_TEMPLATE.format(ws=f"{own} {connect}")
        csp = self._csp_by_host.get(host)
        if csp is None:
            if _HOST_RE.fullmatch(host):
                csp = _CSP_TEMPLATE.format(ws=f" ws://{host} wss://{host}")
                if len(self._csp_by_host) < 64:  # the names a box is reached by: few
                    self._csp_by_host[host] = csp
            else:
                csp = _CSP_TEMPLATE.format(ws="")
        return csp


def credential(request: web.Request) -> str | None:
    """The API key the client presented, by any of the four accepted means."""
    authorization = request.headers.get(hdrs.AUTHORIZATION)
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    header = request.headers.get("X-API-Key")
    if header:
        return header
    query = request.rel_url.query
    return query.get("token") or query.get("api_key") or None


def may_see_camera_data(guard: Guard, request: web.Request) -> bool:
    """Whether this request would pass a PRIVATE route's check (for a public route that
    adds camera-derived parts only for such callers, e.g. the history's perception)."""
    try:
        _authorize(guard, request, Access.PRIVATE, request[CLIENT_KEY])
    except ApiError:
        return False
    return True


def _key_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _http_error_message(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPNotFound):
        return f"not found: {request.method} {request.path}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"method {request.method} not allowed on {request.path}; allowed: {allowed}"
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return f"request body too large: {exc.text}"
    default = f"{exc.status}: {exc.reason}"
    if exc.text and exc.text != default:
        return exc.text
    return exc.reason.lower()


def error_response(
    request: web.Request,
    status: int,
    body: ErrorBody,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    response = respond(request, body, status=status)
    if headers:
        response.headers.update(headers)
    return response


RequestObserver = Callable[[Handler, str, web.Request, int, float], None]
"""Told of every finished request: (handler, method, request, status, seconds); the handler
the middleware was given lets faced.metrics.Requests find the route's series by identity."""


def make_middleware(guard: Guard, observe: RequestObserver | None = None) -> Middleware:
    clients = _Clients(guard.clients)
    known_clients = clients.known
    request_ids = _RequestIds()
    hit = guard.limiter.hit
    classify = guard.policy.classify
    bearer = guard.bearer
    log_enabled = access_log.isEnabledFor

    # Both stages in one coroutine, with the common path inline: on a small request every
    # awaited frame and every function call is a measurable share (faced bench api).
    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        headers = request.headers
        incoming_id = headers.get("X-Request-ID")
        request_id = (
            incoming_id
            if incoming_id is not None and _REQUEST_ID_RE.fullmatch(incoming_id)
            else next(request_ids.pool, None) or request_ids.refill()
        )
        request[REQUEST_ID_KEY] = request_id
        # Present on every request, so the response hook's lookup never raises KeyError (a
        # missing key costs an exception per response); a page handler may widen it.
        request[CONNECT_SOURCES_KEY] = ""
        peer, forwarded_for = request.remote, headers.get(hdrs.X_FORWARDED_FOR)
        client = known_clients.get((peer, forwarded_for)) or clients.add(peer, forwarded_for)
        request[CLIENT_KEY] = client
        method = request.method
        status = 500
        try:
            try:
                if method == hdrs.METH_OPTIONS:
                    response: web.StreamResponse = web.Response(status=204)  # CORS preflight
                else:
                    # The guard stage: rate limit for writes, then the access policy.
                    if method in WRITE_METHODS:
                        wait = hit(client.rate_key)
                        if wait > 0:
                            raise _rate_limited(client, wait)
                    access = classify(request)
                    if access is not Access.PUBLIC:
                        authorization = headers.get(hdrs.AUTHORIZATION)
                        if (
                            bearer is None
                            or authorization is None
                            or not hmac.compare_digest(authorization.encode(), bearer)
                        ):
                            _check_access(guard, request, access, client)
                    response = await handler(request)
            except ApiError as exc:
                response = error_response(request, exc.status, exc.body(), exc.headers)
            except web.HTTPException as exc:
                if exc.status < 400:
                    status = exc.status
                    raise  # redirects are answers, not errors
                response = _http_error_response(request, exc)
            except (ConnectionResetError, ConnectionAbortedError):
                raise  # the client left; there is no one to answer
            except HttpProcessingError as exc:
                # aiohttp's parsers raise these while a handler reads the body, e.g. a
                # multipart part whose headers hold a NUL: the client's fault, a 4xx.
                status = exc.code if 400 <= exc.code < 500 else 400
                message = f"malformed request body: {exc.message}"
                response = error_response(request, status, ErrorBody(error=message))
            except Exception:
                response = _unexpected_error_response(request, request_id)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = 499  # the client went away mid-request (nginx's name for it)
            raise
        finally:
            # Successful requests at debug: an agent posting at 60/s must not flood an SD card.
            level = logging.INFO if status >= 400 else logging.DEBUG
            if log_enabled(level):
                _log_access(request, level, status, started)
            if observe is not None:
                observe(handler, method, request, status, time.perf_counter() - started)

    return request_context


def _http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    headers = {
        k: v for k, v in exc.headers.items() if k not in (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH)
    }
    return error_response(
        request, exc.status, ErrorBody(error=_http_error_message(request, exc)), headers
    )


def _unexpected_error_response(request: web.Request, request_id: str) -> web.StreamResponse:
    log.exception(
        "unhandled error in %s %s",
        request.method,
        request.path,
        extra={"request_id": request_id},
    )
    prepared = request.get(_PREPARED_KEY)
    if prepared is not None:
        return prepared  # headers already sent: nothing more can be said
    return error_response(request, 500, ErrorBody(error="internal error", request_id=request_id))


def _log_access(request: web.Request, level: int, status: int, started: float) -> None:
    access_log.log(
        level,
        "%s %s %d",
        request.method,
        request.path,
        status,
        extra={
            "method": request.method,
            "path": request.path,
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "peer": str(request[CLIENT_KEY]),
            "request_id": request[REQUEST_ID_KEY],
        },
    )


def _check_access(guard: Guard, request: web.Request, access: Access, client: Client) -> None:
    """The access policy for a route that is not public (ApiError if refused)."""
    if access is Access.HANDSHAKE and guard.api_key is not None and not credential(request):
        # The socket's first message must carry the key; its handler checks it.
        request[PENDING_AUTH_KEY] = PendingAuth(guard.api_key)
    else:
        _authorize(guard, request, access, client)


def _rate_limited(client: Client, wait: float) -> ApiError:
    retry_after = max(1, math.ceil(wait))
    return ApiError(
        429,
        f"rate limited: too many requests from {client}; retry in {wait:.2f} s",
        headers={hdrs.RETRY_AFTER: str(retry_after)},
        extra={"retry_after_s": round(wait, 3)},
    )


def _authorize(guard: Guard, request: web.Request, access: Access, client: Client) -> None:
    if guard.api_key is None:
        if access is Access.PRIVATE and not is_loopback(client.address):
            raise ApiError(
                403,
                "camera-derived data is served to loopback clients only while no API key "
                "is set: set auth.api_key (FACE_API_KEY) to serve it on the network",
            )
        return
    given = credential(request)
    if given is None:
        raise ApiError(
            401,
            "API key required: send Authorization: Bearer <key>, X-API-Key, ?token= or ?api_key=",
            headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="faced"'},
        )
    if not _key_matches(given, guard.api_key):
        raise ApiError(403, "invalid API key")


@dataclass(frozen=True, slots=True)
class PendingAuth:
    """The key a HANDSHAKE route's client has yet to present (in its first message)."""

    api_key: str = field(repr=False)

    def check(self, given: object) -> None:
        """ApiError 401 (no token) or 403 (wrong token) unless ``given`` is the key."""
        if not isinstance(given, str) or not given:
            raise ApiError(401, 'API key required: send {"token": KEY} as the first message')
        if not _key_matches(given, self.api_key):
            raise ApiError(403, "invalid API key")


PENDING_AUTH_KEY: Final = web.RequestKey("pending_auth", PendingAuth)


def make_response_hook(
    guard: Guard,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    # A CIMultiDict of istr names: merged without re-folding each name's case per response.
    static_headers = CIMultiDict(
        {
            hdrs.SERVER: "faced",  # no version banner for scanners
            istr("X-Frame-Options"): "DENY",
            istr("X-Content-Type-Options"): "nosniff",
            istr("Referrer-Policy"): "no-referrer",
            hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: guard.cors_origin,
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: CORS_METHODS,
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: CORS_HEADERS,
        }
    )

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        request[_PREPARED_KEY] = response
        headers = response.headers
        headers.update(static_headers)
        try:  # set by the middleware on every request (not .get: two calls a key)
            request_id: str | None = request[REQUEST_ID_KEY]
            connect = request[CONNECT_SOURCES_KEY]
        except KeyError:
            request_id, connect = None, ""
        headers[_CSP] = guard.content_security_policy(request.host, connect)
        if request.method == hdrs.METH_OPTIONS:
            headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "600"
        if request_id is not None:
            headers[_X_REQUEST_ID] = request_id

    return add_headers


_CSP: Final = istr("Content-Security-Policy")
_X_REQUEST_ID: Final = istr("X-Request-ID")
