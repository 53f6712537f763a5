"""The HTTP/WebSocket API: one module per resource, plus the shared middlewares and codec.

Owns: the routes, their descriptions (OpenAPI) and the wire. Does not own any component:
a route finds its component under its typed key (faced.keys); the component lives in its
domain module and faced.app starts it. Why: a route module reads as the protocol alone, and
nothing here decides what runs or in which order.
"""
