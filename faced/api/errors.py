"""The one error type handlers raise; the error middleware sends its ``body()``.

Owns: ApiError. The body's shape is faced.schemas.errors.ErrorBody (also what the OpenAPI
document says of every error), so an ``extra`` field it does not know fails at once.
Does not own: sending it (faced.api.middlewares) or its shape (faced.schemas.errors). Why
apart: every route module raises it without importing the middleware.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from faced.schemas.errors import ErrorBody


class ApiError(Exception):
    """A client-facing error: an HTTP status and one human-readable sentence.

    ``headers`` carries extras such as ``Retry-After``; ``extra`` adds fields of
    ``ErrorBody`` next to ``error`` (for example ``field`` and ``allowed`` on a validation
    error).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        # Built now, so an extra that ErrorBody does not know fails where it is written.
        self._body = (
            msgspec.convert({"error": message, **self.extra}, ErrorBody)
            if self.extra
            else ErrorBody(error=message)
        )

    def body(self) -> ErrorBody:
        return self._body
