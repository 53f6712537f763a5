"""The one error type handlers raise; the error middleware turns it into `{"error": …}`."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """A client-facing error: an HTTP status and one human-readable sentence.

    ``headers`` carries extras such as ``Retry-After``; ``extra`` adds fields next to
    ``error`` in the body (for example ``field`` and ``allowed`` on a validation error).
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

    def body(self) -> dict[str, object]:
        return {"error": self.message, **self.extra}
