"""Message and result types, defined once as msgspec Structs (JSON, msgpack, OpenAPI).

Owns the wire's types. Does not own what fills them or the routes that carry them. Why
apart: one type validates, encodes and gives the OpenAPI schema, and imports nothing of
the daemon.
"""
