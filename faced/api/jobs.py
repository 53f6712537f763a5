"""The jobs' routes: takes in (upload or camera), state, progress, downloads, removal.

Owns: the routes below, reading the request (multipart, a raw video body streamed to disk
chunk by chunk, or JSON), the event stream's loop and the downloads. Does not own: the jobs
(faced.jobs.service under ``JOBS_KEY``). Every route is camera-derived — a take shows a
person —, hence PRIVATE (faced.api.access): the key when one is set, loopback only when not.

* ``POST /api/v1/jobs`` — a video (multipart field ``video``, or the body itself as
  ``video/*`` / ``application/octet-stream``, options in the query or form fields), or JSON
  ``{"record_s": N, …}`` to record from the camera → 202 ``JobsAccepted``.
* ``GET /api/v1/jobs`` (newest first, ``?limit=&offset=``), ``GET /api/v1/job/{id}``,
  ``DELETE /api/v1/job/{id}`` (cancels, removes the files).
* ``GET /api/v1/job/{id}/events`` — Server-Sent Events: the job as it stands, then at each
  change (progress at most every 2 %), ending once it is done or failed.
* ``GET /api/v1/job/{id}/curves`` (JSON), ``/csv`` (Live Link Face), ``/video`` (if kept),
  each named for saving (``Content-Disposition``) after the take's CSV:
  ``<slate>_<take>_<subject>`` + ``.json``, ``.csv`` or the video's own extension.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import PurePath
from typing import Annotated, Final

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from msgspec import Meta

from faced.api import openapi
from faced.api.codec import (
    Query,
    parse_params,
    parse_query,
    query_parameters,
    read_body,
    read_limited,
    respond,
    sse_event,
    sse_response,
)
from faced.api.errors import ApiError
from faced.jobs.service import Jobs, Upload, is_finished
from faced.keys import ACCESS_KEY, JOBS_KEY
from faced.schemas.jobs import (
    Curves,
    Fps,
    Job,
    JobAccepted,
    JobDeleted,
    JobList,
    JobOptions,
    JobRequest,
    JobsAccepted,
    Label,
)

log = logging.getLogger(__name__)

MAX_STREAMS: Final = 16
"""Concurrent job event streams; more get 503 (each holds a connection)."""
KEEPALIVE_S: Final = 15.0
WRITE_TIMEOUT_S: Final = 10.0
"""An event stream whose reader takes longer than this to accept one event is dropped."""
_FIELD_MAX_BYTES: Final = 1024
_JOB_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_VIDEO_SUFFIX: Final = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_SUFFIX_OF_TYPE: Final = {
    "video/3gpp": ".3gp",
    "video/avi": ".avi",
    "video/mp2t": ".ts",
    "video/mp4": ".mp4",
    "video/mpeg": ".mpg",
    "video/ogg": ".ogv",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-flv": ".flv",
    "video/x-m4v": ".m4v",
    "video/x-matroska": ".mkv",
    "video/x-msvideo": ".avi",
}
"""A raw upload (or a part without a file name) says what it is by its Content-Type alone:
that gives the kept video its extension, hence the name it is downloaded under; a type not
listed here gets none. A fixed table rather than
``mimetypes``, whose answers change with the host's /etc/mime.types."""


class JobOptionsQuery(Query, frozen=True):
    """An upload's options, as query parameters or multipart form fields."""

    label: Annotated[Label | None, Meta(description="A name for the take (the CSV's slate)")] = None
    keep_video: Annotated[bool, Meta(description="Keep the video after processing")] = False
    calibrated: Annotated[bool, Meta(description="Apply the current calibration")] = False
    fps: Annotated[Fps | None, Meta(description="Take frames at this rate (resample down)")] = None

    @classmethod
    def prepare(cls, params: dict[str, object]) -> dict[str, object]:
        return {name: value for name, value in params.items() if value != ""}


class JobListQuery(Query, frozen=True):
    limit: Annotated[int, Meta(ge=1, le=100, description="Jobs per page")] = 20
    offset: Annotated[int, Meta(ge=0, le=2**31 - 1, description="Jobs to skip (newest first)")] = 0


def add_routes(app: web.Application) -> None:
    """The jobs' routes (camera-derived: PRIVATE), each described where it is added."""
    private = app[ACCESS_KEY].private
    router = app.router
    tags = ("jobs",)
    upload_schema = {
        "type": "object",
        "properties": {
            # An empty video is 400 "the video is empty".
            "video": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "minLength": 1,
            },
            # The form may carry the query's options as fields of the same names.
            **{p["name"]: p["schema"] for p in query_parameters(JobOptionsQuery)},
        },
        "required": ["video"],
        "propertyNames": openapi.FORM_FIELD_NAMES,
    }
    raw_video = {"type": "string", "contentMediaType": "video/*", "minLength": 1}
    openapi.describe(
        app,
        private(router.add_post("/api/v1/jobs", submit)),
        openapi.Operation(
            summary="Queue a take: a video (multipart field `video`, or a raw video body) "
            "or JSON {record_s} to record from the camera; poll GET /api/v1/job/{id}",
            tags=tags,
            request=JobRequest,
            request_content={
                "multipart/form-data": upload_schema,
                "video/*": raw_video,
                "application/octet-stream": raw_video,
            },
            query=JobOptionsQuery,
            response=JobsAccepted,
            status=202,
            errors=(400, 409, 413, 415, 429, 503, 507),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/v1/jobs", list_jobs)),
        openapi.Operation(
            summary="The jobs, newest first, a page at a time",
            tags=tags,
            query=JobListQuery,
            response=JobList,
            errors=(400, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/v1/job/{job_id}", get_job)),
        openapi.Operation(
            summary="One job: status, progress, error, result (with the download URLs)",
            tags=tags,
            response=Job,
            errors=(404, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_delete("/api/v1/job/{job_id}", delete_job)),
        openapi.Operation(
            summary="Cancel a job (recording or running) and remove it and its files",
            tags=tags,
            response=JobDeleted,
            errors=(404, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/v1/job/{job_id}/events", job_events, allow_head=False)),
        openapi.Operation(
            summary="Server-Sent Events: the job (Job as JSON per data: line) now and at "
            "each change, until it is done or failed",
            tags=tags,
            response_content={"text/event-stream": {"type": "string"}},
            errors=(404, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/v1/job/{job_id}/curves", curves)),
        openapi.Operation(
            summary="A done job's curves: per frame the 52 blendshapes, head and eyes",
            tags=tags,
            response=Curves,
            errors=(404, 409, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/v1/job/{job_id}/csv", live_link_csv)),
        openapi.Operation(
            summary="A done job's curves as a Live Link Face CSV (Unreal, Blender add-ons)",
            tags=tags,
            response_content={"text/csv": {"type": "string"}},
            errors=(404, 409, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/v1/job/{job_id}/video", video)),
        openapi.Operation(
            summary="A done job's video, when it was asked to keep it (keep_video)",
            tags=tags,
            response_content={"video/*": {"type": "string", "format": "binary"}},
            errors=(404, 409, 503),
        ),
    )


def _jobs(request: web.Request) -> Jobs:
    jobs = request.app[JOBS_KEY]
    jobs.available()
    return jobs


async def _job(request: web.Request) -> tuple[Jobs, Job]:
    jobs = _jobs(request)
    job_id = request.match_info["job_id"]
    record = await jobs.get(job_id) if _JOB_ID.match(job_id) else None
    if record is None:
        raise ApiError(404, f"no job {job_id!r}")
    return jobs, record.job


# --- POST /api/v1/jobs ---------------------------------------------------------------------


async def submit(request: web.Request) -> web.StreamResponse:
    jobs = _jobs(request)
    content_type = request.content_type
    if content_type == "multipart/form-data":
        job_id = await _upload_multipart(request, jobs)
    elif content_type.startswith("video/") or content_type == "application/octet-stream":
        job_id = await _upload_raw(request, jobs)
    elif content_type in ("application/json", "application/msgpack", "application/x-msgpack"):
        body = await read_body(request, JobRequest)
        assert body is not None
        settings = jobs.settings_of(body)
        job_id = await jobs.record(settings, body.record_s)
    else:
        raise ApiError(
            415,
            f"unsupported Content-Type {content_type!r}: send multipart/form-data with a "
            "`video` field, the video itself (video/*, application/octet-stream), or JSON "
            '{"record_s": N} to record from the camera',
        )
    return respond(request, JobsAccepted(jobs=[JobAccepted(job_id=job_id)]), status=202)


def _options(params: dict[str, str]) -> JobOptions:
    query = parse_params(params, JobOptionsQuery)
    return JobOptions(
        label=query.label,
        keep_video=query.keep_video,
        calibrated=query.calibrated,
        fps=query.fps,
    )


def _check_length(request: web.Request, jobs: Jobs) -> None:
    limit = jobs.config.max_upload_bytes
    length = request.content_length
    if length is not None and length > limit + _FIELD_MAX_BYTES * 8:
        raise ApiError(
            413, f"video too large: {length} bytes, limit {limit} (jobs.max_upload_bytes)"
        )


async def _upload_raw(request: web.Request, jobs: Jobs) -> str:
    _check_length(request, jobs)
    settings = jobs.settings_of(_options(dict(request.rel_url.query)))
    await jobs.check_room()
    async with jobs.upload(_SUFFIX_OF_TYPE.get(request.content_type, "")) as upload:
        await _stream(request.content.read, upload)
        return await upload.accept(settings)


async def _upload_multipart(request: web.Request, jobs: Jobs) -> str:
    _check_length(request, jobs)
    await jobs.check_room()
    fields: dict[str, str] = dict(request.rel_url.query)
    try:
        reader = await request.multipart()
        async with contextlib.AsyncExitStack() as files:  # an upload cut short is removed
            upload: Upload | None = None
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise ApiError(400, "nested multipart bodies are not accepted")
                if part.name == "video":
                    if upload is not None:
                        raise ApiError(400, "send one `video` field per request")
                    suffix = _suffix(part.filename) or _SUFFIX_OF_TYPE.get(
                        part.headers.get("Content-Type", "").split(";")[0].strip().lower(), ""
                    )
                    upload = await files.enter_async_context(jobs.upload(suffix))
                    await _stream(part.read_chunk, upload)
                elif part.name in JobOptionsQuery.__struct_fields__:
                    name = str(part.name)
                    raw = await read_limited(
                        part.read_chunk, _FIELD_MAX_BYTES, _field_too_large(name)
                    )
                    fields[name] = raw.decode("utf-8", errors="replace")
                else:
                    await part.release()  # unknown fields are skipped unread
            if upload is None:
                raise ApiError(400, "missing field `video` (multipart/form-data)")
            return await upload.accept(jobs.settings_of(_options(fields)))
    except (ValueError, AssertionError, BadHttpMessage) as exc:  # aiohttp's malformed multipart
        raise ApiError(400, f"malformed multipart body: {exc}") from None


def _field_too_large(name: str) -> Callable[[], ApiError]:
    return lambda: ApiError(413, f"field {name} too large: limit {_FIELD_MAX_BYTES} bytes")


async def _stream(read: Callable[[int], Awaitable[bytes]], upload: Upload) -> None:
    """Copy a body (``read(n)``: what has arrived, b"" at the end) into the upload."""
    while chunk := await read(64 * 1024):
        await upload.write(chunk)


def _suffix(filename: str | None) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    return suffix if _VIDEO_SUFFIX.match(suffix) else ""


# --- reading and removing ------------------------------------------------------------------


async def list_jobs(request: web.Request) -> web.StreamResponse:
    jobs = _jobs(request)
    query = parse_query(request, JobListQuery)
    records, total = await jobs.store.page(query.limit, query.offset)
    listed = []
    for record in records:
        live = await jobs.get(record.job.id) if record.job.status == "processing" else record
        listed.append((live or record).job)
    return respond(
        request, JobList(jobs=listed, total=total, limit=query.limit, offset=query.offset)
    )


async def get_job(request: web.Request) -> web.StreamResponse:
    _, job = await _job(request)
    return respond(request, job)


async def delete_job(request: web.Request) -> web.StreamResponse:
    jobs, job = await _job(request)
    if not await jobs.delete(job.id):
        raise ApiError(404, f"no job {job.id!r}")
    return respond(request, JobDeleted(id=job.id))


async def job_events(request: web.Request) -> web.StreamResponse:
    jobs, job = await _job(request)
    if jobs.streams >= MAX_STREAMS:
        raise ApiError(
            503,
            f"too many job event streams: {jobs.streams} open, limit {MAX_STREAMS}",
            headers={"Retry-After": "5"},
        )
    jobs.streams += 1
    try:
        response = await sse_response(request)
        await _follow(jobs, job, response)
    finally:
        jobs.streams -= 1
    return response


async def _follow(jobs: Jobs, job: Job, response: web.StreamResponse) -> None:
    """Send the job, then each change, until it is finished, removed or the daemon stops."""
    import msgspec  # noqa: PLC0415

    encode = msgspec.json.encode
    sent: Job | None = None
    while True:
        if job != sent:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await response.write(sse_event(encode(job)))
            sent = job
        if is_finished(job) or jobs.closing:
            return
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                await jobs.wait_change()
        except TimeoutError:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await response.write(b": keepalive\n\n")
        record = await jobs.get(job.id)
        if record is None:
            return  # deleted
        job = record.job


# --- downloads -----------------------------------------------------------------------------


async def _finished_file(request: web.Request, what: str) -> web.FileResponse:
    """A done job's ``what`` (curves, csv, video) as a file named for saving."""
    jobs, job = await _job(request)
    result = job.result
    if job.status != "done" or result is None:
        raise ApiError(409, f"job {job.id} is {job.status}: it has no {what} yet")
    stem = PurePath(result.csv_name).stem
    name, download = {
        "curves": ("curves.json", f"{stem}.json"),
        "csv": (result.csv_name, result.csv_name),
        "video": (None, None),
    }[what]
    if name is None:
        record = await jobs.get(job.id)
        name = record.video if record is not None else None
        if name is None or result.video_url is None:
            raise ApiError(404, f"job {job.id} kept no video (keep_video was false)")
        download = stem + PurePath(name).suffix
    path = jobs.job_dir(job.id) / name
    exists = await asyncio.to_thread(path.is_file)
    if not exists:
        raise ApiError(404, f"job {job.id}'s {what} file is gone")
    # The names are letters, digits, '-', '_' and one suffix (livelink.file_name,
    # _VIDEO_SUFFIX): nothing to quote.
    headers = {"Content-Disposition": f'attachment; filename="{download}"'}
    return web.FileResponse(path, headers=headers)


async def curves(request: web.Request) -> web.StreamResponse:
    response = await _finished_file(request, "curves")
    response.content_type = "application/json"
    return response


async def live_link_csv(request: web.Request) -> web.StreamResponse:
    response = await _finished_file(request, "csv")
    response.content_type = "text/csv"
    return response


async def video(request: web.Request) -> web.StreamResponse:
    return await _finished_file(request, "video")


__all__ = ["JobListQuery", "JobOptionsQuery", "add_routes"]
