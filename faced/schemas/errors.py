"""The body of every HTTP error, whatever the route: ``{"error": …}`` and, for some, more.

Owns: the one error shape. faced.api.errors.ApiError builds it, the error middleware sends
it (also for aiohttp's own 404/405/413 and an unexpected 500), and the OpenAPI document
describes every error response with it — one type, so the three cannot disagree. Does
not own: raising errors (faced.api.errors) or sending them (faced.api.middlewares).
"""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Every error: one human-readable sentence, plus what a program needs to act on it."""

    error: str
    """What went wrong, in one sentence."""
    field: str | msgspec.UnsetType = msgspec.UNSET
    """The request field (or query parameter) at fault."""
    allowed: list[str] | msgspec.UnsetType = msgspec.UNSET
    """The values that field accepts, when they are a choice."""
    value: Any | msgspec.UnsetType = msgspec.UNSET
    """The value at fault, as it was sent (a setting of PATCH /api/system/config)."""
    expected: str | msgspec.UnsetType = msgspec.UNSET
    """What that field expects, when it is not a choice (e.g. "number > 0")."""
    retry_after_s: float | msgspec.UnsetType = msgspec.UNSET
    """429: seconds until a retry can succeed (also the Retry-After header, rounded up)."""
    request_id: str | msgspec.UnsetType = msgspec.UNSET
    """500: the id under which the daemon logged the failure."""
