"""The HTTP/WebSocket API: one module per resource, plus the shared middlewares and codec."""
