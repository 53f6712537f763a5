"""Who may call what: the one place the API's access policy is written down.

Owns: the access classes and which route is in which. Every route falls in one of three
classes:

* ``PUBLIC`` — anyone, key or not: the pages, static files, health, and the read-only
  face state (the ``PUBLIC_ROUTES`` list below is the whole list; review changes to it).
* ``KEY`` — the default: needs the API key when ``auth.api_key`` (FACE_API_KEY) is set,
  open when it is not. Every write, every agent socket, the event stream.
* ``PRIVATE`` — camera-derived data: needs the key when one is set, and is served to
  loopback clients only when none is set (403 naming the setting otherwise). A module marks
  its route at registration: ``app[ACCESS_KEY].private(app.router.add_get(...))``.

A route whose class a setting decides is marked at registration too: ``/metrics`` is
private unless ``metrics.public`` opens it (``AccessPolicy.public``).

Does not own: enforcing it — the auth middleware (faced.api.middlewares) asks
``AccessPolicy.classify`` per request. Why apart: the whole policy can be reviewed in one
file, and the OpenAPI document (faced.api.openapi) reads each route's class from here.
"""

from __future__ import annotations

import enum
from typing import Final

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute


class Access(enum.Enum):
    PUBLIC = "public"
    KEY = "key"
    PRIVATE = "private"
    HANDSHAKE = "handshake"
    """Like KEY, but a socket may instead present the key in its first message (Eyeconic's
    ``{"token": KEY}``): without a credential the upgrade passes and the handler checks."""


# (method, path) pairs anyone may call. HEAD follows GET.
PUBLIC_ROUTES: Final = frozenset(
    {
        ("GET", "/"),
        ("GET", "/dashboard"),
        ("GET", "/health"),
        ("GET", "/api/health"),
        ("GET", "/api/state"),
        ("GET", "/api/history"),
        ("GET", "/ws/viewer"),
        # The viewer reads which face pack to show before it has any key.
        ("GET", "/api/config"),
        ("GET", "/api/v1/presets"),
        # The API's description (no data; it says which routes need the key).
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
    }
)
# Static files of the viewer and dashboard.
PUBLIC_PREFIXES: Final = ("/static/",)


class AccessPolicy:
    """Classifies a matched route; holds the routes modules marked private."""

    def __init__(self) -> None:
        self._private: set[AbstractRoute] = set()
        self._handshake: set[AbstractRoute] = set()
        self._public_paths: set[tuple[str, str]] = set()
        """Opened by a setting (metrics.public), beside the fixed PUBLIC_ROUTES."""
        # (method, canonical path) of private routes: aiohttp adds a HEAD route beside every
        # GET one, and it must be as private as the GET it mirrors.
        self._private_paths: set[tuple[str, str]] = set()
        self._by_route: dict[AbstractRoute, Access] = {}
        """What ``classify`` worked out per route (cleared when a route is marked)."""

    def private(self, route: AbstractRoute) -> AbstractRoute:
        """Mark ``route`` camera-derived; returns it so registration reads as one line."""
        resource = route.resource
        path = resource.canonical if resource is not None else ""
        method = "GET" if route.method == "HEAD" else route.method
        if (method, path) in PUBLIC_ROUTES or path.startswith(PUBLIC_PREFIXES):
            raise ValueError(f"{method} {path} is in PUBLIC_ROUTES; it cannot also be private")
        self._private.add(route)
        self._private_paths.add((method, path))
        self._by_route.clear()
        return route

    def public(self, route: AbstractRoute) -> AbstractRoute:
        """Open ``route`` (and its HEAD twin) to anyone because a setting says so."""
        resource = route.resource
        path = resource.canonical if resource is not None else ""
        method = "GET" if route.method == "HEAD" else route.method
        if route in self._private or (method, path) in self._private_paths:
            raise ValueError(f"{method} {path} is private; it cannot also be public")
        self._public_paths.add((method, path))
        self._by_route.clear()
        return route

    def handshake(self, route: AbstractRoute) -> AbstractRoute:
        """Mark a socket route whose key may come in its first message (see HANDSHAKE)."""
        self._handshake.add(route)
        self._by_route.clear()
        return route

    def declared(self, route: AbstractRoute) -> Access:
        """The class a route was registered with (for the OpenAPI document)."""
        resource = route.resource
        path = resource.canonical if resource is not None else ""
        method = "GET" if route.method == "HEAD" else route.method
        if route in self._private or (method, path) in self._private_paths:
            return Access.PRIVATE
        if route in self._handshake:
            return Access.HANDSHAKE
        if (
            (method, path) in PUBLIC_ROUTES
            or (method, path) in self._public_paths
            or (method == "GET" and path.startswith(PUBLIC_PREFIXES))
        ):
            return Access.PUBLIC
        return Access.KEY

    def classify(self, request: web.Request) -> Access:
        match_info = request.match_info
        route = match_info.route
        # A route's class depends on the route alone (its method is the request's, but for
        # "*" routes): worked out once per route, not per request. Only routes the router
        # matched are remembered (never the 404/405 stand-ins, nor "*" routes).
        access = self._by_route.get(route)
        if access is None:
            if match_info.http_exception is not None:
                return Access.PUBLIC  # the router answers 404/405; nothing to protect
            access = self._classify(route, request.method, request.path)
            if route.method != "*" and route.resource is not None:
                self._by_route[route] = access
        if (
            access is Access.KEY
            and request.method in ("GET", "HEAD")
            and request.path.startswith(PUBLIC_PREFIXES)
        ):
            return Access.PUBLIC  # static files are public by path, whichever route serves them
        return access

    def _classify(self, route: AbstractRoute, request_method: str, request_path: str) -> Access:
        """The class of ``route`` for a request, leaving out the path rule for static files."""
        method = "GET" if request_method == "HEAD" else request_method
        resource = route.resource
        path = resource.canonical if resource is not None else request_path
        if route in self._private or (method, path) in self._private_paths:
            return Access.PRIVATE
        if route in self._handshake:
            return Access.HANDSHAKE
        if method == "OPTIONS":
            return Access.PUBLIC
        if (method, path) in PUBLIC_ROUTES or (method, path) in self._public_paths:
            return Access.PUBLIC
        return Access.KEY
