"""The Eyeconic-style analyze API: frames in, faces out (same schema as `faced analyze`).

Owns: the analyze routes' limits and live streams (``AnalyzeApi``), admission (503 with
Retry-After when every worker is busy), turning an image given as bytes or base64 into
pixels on a worker thread, the refusal statuses, and the two one-shot routes:

* ``POST /v1/analyze`` — one image (multipart field ``image``, or a raw ``image/*`` body),
  read as a stream with a size limit; ``?landmarks=true``, ``?num_faces=N``,
  ``?blendshapes=false`` (the blendshape model is not run; faces carry none) (or form
  fields of those names);
* ``POST /v1/analyze/base64`` — JSON or msgpack ``Base64Request``.

Does not own: the ``WS /v1/stream`` socket (faced.api.analyze_stream), the image checks and
their wording (faced.vision.image_io), the worker pool (faced.vision.workers).

Every client mistake is an ApiError: 400 (empty, bad base64, bad field), 413 (too many
bytes or pixels), 415 (not JPEG/PNG/WebP), 422 (a corrupt image), 503 with Retry-After
when every worker is busy. Decoding and inference run on the workers' threads.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import BadHttpMessage
from msgspec import Meta

from faced.api import openapi
from faced.api.codec import (
    Query,
    parse_params,
    query_parameters,
    read_body,
    read_limited,
    respond,
)
from faced.api.errors import ApiError
from faced.config import VisionConfig
from faced.keys import ANALYZE_API_KEY, ANALYZE_POOL_KEY, HEALTH_KEY
from faced.schemas.analysis import Analysis
from faced.schemas.analyze_api import Base64Request
from faced.vision import image_io
from faced.vision.image_io import ImageError
from faced.vision.pipeline import MAX_FACES, FacePipeline
from faced.vision.workers import PoolBusy

log = logging.getLogger(__name__)

_FIELD_MAX_BYTES: Final = 64  # a form field such as num_faces=2
BASE64_SLACK: Final = 4096
"""Room for the JSON or msgpack around ``image_base64`` in a body or a message."""
_DATA_URL_PREFIX: Final = "data:"


@dataclass
class AnalyzeApi:
    """Limits and the live streams of this app."""

    max_image_bytes: int
    max_megapixels: float
    streams: set[web.WebSocketResponse] = field(default_factory=set)
    """Authenticated /v1/stream sockets (each holds a stream place and a pinned worker)."""
    handshakes: set[web.WebSocketResponse] = field(default_factory=set)
    """/v1/stream sockets still waiting for their ``{"token": KEY}`` message."""
    waiting: Counter[str] = field(default_factory=Counter)
    """/v1/stream sockets waiting for their handshake, per client (rate_key)."""
    uploads: int = 0
    """Requests reading or analyzing right now (admission counts these)."""

    @property
    def max_base64_chars(self) -> int:
        return 4 * math.ceil(self.max_image_bytes / 3)


def setup(app: web.Application, vision: VisionConfig) -> None:
    """Add the analyze routes, their /health entries and their shutdown (the worker pool
    itself is a component of the composition root, faced.vision.workers)."""
    app[ANALYZE_API_KEY] = AnalyzeApi(vision.max_image_bytes, vision.max_megapixels)
    health = app[HEALTH_KEY]
    health.add_component("analyze", lambda: _pool_report(app))
    health.add_summary(lambda: _model_summary(app))

    router = app.router
    tags = ("analyze",)
    image_errors = (400, 413, 415, 422, 503)
    upload_schema = {
        "type": "object",
        "properties": {
            "image": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "minLength": 1,  # an empty image is 400
            },
            # The form may carry the query's options as fields of the same names.
            **{p["name"]: p["schema"] for p in query_parameters(AnalyzeOptions)},
        },
        "required": ["image"],
        "propertyNames": openapi.FORM_FIELD_NAMES,
    }
    raw_image = {"type": "string", "contentMediaType": "image/*", "minLength": 1}
    openapi.describe(
        app,
        router.add_post("/v1/analyze", analyze_upload),
        openapi.Operation(
            summary="Analyze one image (multipart field `image`, or a raw image body)",
            description="JPEG, PNG or WebP. Same result as `faced analyze --jsonl`.",
            tags=tags,
            request_content={
                "multipart/form-data": upload_schema,
                "image/jpeg": raw_image,
                "image/png": raw_image,
                "image/webp": raw_image,
            },
            query=AnalyzeOptions,
            response=Analysis,
            errors=image_errors,
        ),
    )
    openapi.describe(
        app,
        router.add_post("/v1/analyze/base64", analyze_base64),
        openapi.Operation(
            summary="Analyze one base64 image (or data: URL)",
            tags=tags,
            request=Base64Request,
            response=Analysis,
            errors=image_errors,
        ),
    )


def _pool_report(app: web.Application) -> dict[str, Any]:
    pool = app.get(ANALYZE_POOL_KEY)
    if pool is None:
        return {"status": "off"}
    return {**pool.report(), "handshakes_waiting": app[ANALYZE_API_KEY].waiting.total()}


def _model_summary(app: web.Application) -> dict[str, Any]:
    pool = app.get(ANALYZE_POOL_KEY)
    if pool is None:
        return {}
    model = pool.model_info
    # What a loaded worker runs; before any has loaded (first use), the verified files.
    first = pool.workers[0].loaded
    runtime = first.runtime if first is not None else pool.runtime
    return {
        "model": {
            "name": model.name,
            "version": model.version,
            "sha256": model.sha256,
            # What actually runs: back end (with the ONNX provider), precision, file hashes.
            "backend": runtime.backend,
            "precision": runtime.precision,
            "files": {m.file: {"sha256": m.sha256, "runs_on": m.backend} for m in runtime.loaded},
        }
    }


# --- images, for every route: the statuses of image_io's refusals, base64, decoding ------


def check_image(data: bytes, api: AnalyzeApi) -> None:
    """Cheap header checks (no pixel decoded): empty 400, too big 413, not an image 415,
    a corrupt header 422."""
    try:
        image_io.check_image(
            data,
            max_bytes=api.max_image_bytes,
            max_megapixels=api.max_megapixels,
            hint=" (vision.max_megapixels)",
        )
    except ImageError as exc:
        raise refused_image(exc) from None


def refused_image(exc: ImageError) -> ApiError:
    """The status of each reason image_io gives; a corrupt image (no subclass) is 422."""
    for kind, status in _IMAGE_STATUS:
        if isinstance(exc, kind):
            return ApiError(status, str(exc))
    return ApiError(422, str(exc))


_IMAGE_STATUS: Final = (
    (image_io.EmptyImage, 400),
    (image_io.ImageTooLarge, 413),
    (image_io.NotAnImage, 415),
)


def from_base64(text: str, api: AnalyzeApi) -> bytes:
    """The bytes of a base64 string or a data: URL; 400/413 with the reason."""
    if text.startswith(_DATA_URL_PREFIX):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ApiError(400, "image_base64: a data: URL must be data:<type>;base64,<data>")
    if len(text) > api.max_base64_chars + 4:
        raise ApiError(413, f"image too large: limit {api.max_image_bytes} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"image_base64 is not valid base64: {exc}") from None


def decode_source(source: bytes | str, api: AnalyzeApi) -> Any:
    """Pixels of an image given as bytes or base64 text, checked first (runs on a worker
    thread: a 16 MB base64 string or a large JPEG must not hold up the event loop)."""
    data = from_base64(source, api) if isinstance(source, str) else source
    check_image(data, api)
    try:
        return image_io.decode_for_pipeline(data, max_megapixels=api.max_megapixels)
    except ImageError as exc:
        raise ApiError(422, str(exc)) from None


async def run_job(app: web.Application, job: Callable[[FacePipeline], Analysis]) -> Analysis:
    try:
        return await app[ANALYZE_POOL_KEY].run(job)
    except PoolBusy as exc:
        raise ApiError(
            503,
            "every analyze worker is busy: retry shortly (vision.analyze_workers sets how many)",
            headers={hdrs.RETRY_AFTER: str(max(1, math.ceil(exc.retry_after_s)))},
        ) from None


@contextlib.contextmanager
def _admitted(request: web.Request) -> Any:
    """Bound the requests reading or waiting at once (memory: each holds one image)."""
    api = request.app[ANALYZE_API_KEY]
    pool = request.app[ANALYZE_POOL_KEY]
    if api.uploads >= pool.capacity:
        pool.rejected += 1
        raise ApiError(
            503,
            "every analyze worker is busy: retry shortly (vision.analyze_workers sets how many)",
            headers={hdrs.RETRY_AFTER: "1"},
        )
    api.uploads += 1
    try:
        yield api
    finally:
        api.uploads -= 1


_FLAGS: Final = {
    "true": "true",
    "1": "true",
    "yes": "true",
    "false": "false",
    "0": "false",
    "no": "false",
}


class AnalyzeOptions(Query, frozen=True):
    """``?landmarks=``, ``?num_faces=`` and ``?blendshapes=`` (or multipart form fields of
    those names)."""

    landmarks: Annotated[bool, Meta(description="Include the 478 landmarks")] = False
    num_faces: (
        Annotated[int, Meta(ge=1, le=MAX_FACES, description="At most this many faces")] | None
    ) = None
    blendshapes: Annotated[
        bool, Meta(description="false: do not run the blendshape model (faces carry none)")
    ] = True

    @classmethod
    def prepare(cls, params: dict[str, Any]) -> dict[str, Any]:
        for flag in ("landmarks", "blendshapes"):  # before num_faces, as the form reads
            raw = params.pop(flag, "")
            value = raw.strip().lower()
            if value:
                if value not in _FLAGS:
                    raise cls.invalid(flag, raw)
                params[flag] = _FLAGS[value]
        faces = params.pop("num_faces", "")
        if faces != "":
            try:
                params["num_faces"] = int(faces)
            except ValueError:
                raise cls.invalid("num_faces", faces) from None
        return params

    @classmethod
    def invalid(cls, name: str, raw: str) -> ApiError:
        if name in ("landmarks", "blendshapes"):
            return ApiError(400, f"{name} must be true or false, got {raw!r}")
        try:
            faces = int(raw)
        except ValueError:
            return ApiError(400, f"num_faces must be an integer 1-{MAX_FACES}")
        return ApiError(400, f"num_faces must be 1-{MAX_FACES}, got {faces}")


def _job(
    data: bytes | str,
    api: AnalyzeApi,
    landmarks: bool,
    num_faces: int | None,
    blendshapes: bool = True,
) -> Callable[[FacePipeline], Analysis]:
    def job(pipeline: FacePipeline) -> Analysis:
        return pipeline.analyze(
            decode_source(data, api),
            landmarks=landmarks,
            num_faces=num_faces,
            blendshapes=blendshapes,
        )

    return job


# --- POST /v1/analyze ----------------------------------------------------------------------


async def analyze_upload(request: web.Request) -> web.StreamResponse:
    """Analyze one uploaded image (multipart field `image`, or a raw image/* body)."""
    with _admitted(request) as api:
        query = request.rel_url.query
        fields: dict[str, str] = {}
        content_type = request.content_type
        if request.content_length is not None and request.content_length > api.max_image_bytes + (
            BASE64_SLACK
        ):
            raise ApiError(
                413,
                f"request body too large: {request.content_length} bytes, "
                f"limit {api.max_image_bytes} (vision.max_image_bytes)",
            )
        if content_type == "multipart/form-data":
            data = await _read_multipart(request, api, fields)
        elif content_type.startswith("image/") or content_type == "application/octet-stream":
            data = await read_limited(
                request.content.read, api.max_image_bytes, _too_large("image", api.max_image_bytes)
            )
        else:
            raise ApiError(
                415,
                f"unsupported Content-Type {content_type!r}: send multipart/form-data with "
                "an `image` field, or the image itself (image/jpeg, image/png, image/webp)",
            )
        options = parse_params({**query, **fields}, AnalyzeOptions)
        check_image(data, api)
        job = _job(data, api, options.landmarks, options.num_faces, options.blendshapes)
        result = await run_job(request.app, job)
    return respond(request, result)


async def _read_multipart(request: web.Request, api: AnalyzeApi, fields: dict[str, str]) -> bytes:
    try:
        reader = await request.multipart()
        image: bytes | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "nested multipart bodies are not accepted")
            if part.name == "image":
                if image is not None:
                    raise ApiError(400, "send one `image` field per request")
                image = await read_limited(
                    part.read_chunk, api.max_image_bytes, _too_large("image", api.max_image_bytes)
                )
            elif part.name in AnalyzeOptions.__struct_fields__:
                raw = await read_limited(
                    part.read_chunk,
                    _FIELD_MAX_BYTES,
                    _too_large(f"field {part.name}", _FIELD_MAX_BYTES),
                )
                fields[part.name] = raw.decode("utf-8", errors="replace")
            else:
                await part.release()  # unknown fields are skipped unread
    except (ValueError, AssertionError, BadHttpMessage) as exc:  # aiohttp's malformed multipart
        raise ApiError(400, f"malformed multipart body: {exc}") from None
    if image is None:
        raise ApiError(400, "missing field `image` (multipart/form-data)")
    return image


def _too_large(what: str, limit: int) -> Callable[[], ApiError]:
    return lambda: ApiError(413, f"{what} too large: limit {limit} bytes (vision.max_image_bytes)")


# --- POST /v1/analyze/base64 ---------------------------------------------------------------


async def analyze_base64(request: web.Request) -> web.StreamResponse:
    """Analyze one base64 image (JSON or msgpack body)."""
    with _admitted(request) as api:
        body = await read_body(
            request, Base64Request, max_bytes=api.max_base64_chars + BASE64_SLACK
        )
        assert body is not None
        job = _job(body.image_base64, api, body.landmarks, body.num_faces, body.blendshapes)
        result = await run_job(request.app, job)
    return respond(request, result)


__all__ = [
    "ANALYZE_API_KEY",
    "BASE64_SLACK",
    "AnalyzeApi",
    "AnalyzeOptions",
    "check_image",
    "decode_source",
    "from_base64",
    "refused_image",
    "run_job",
    "setup",
]
