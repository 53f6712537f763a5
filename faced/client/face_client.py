"""The Python client of a faced daemon: ``FaceClient``, for agents on the LAN.

Owns: one aiohttp session per client and every route an agent uses — the face state,
speech and audio, history, health, analysis, the person summary — and the streams
(``person_events``, ``viewer_messages``, ``tracking``) as async iterators that reconnect
with backoff once they have been connected; the jobs (takes: a video or a camera recording
in, curves and a Live Link Face CSV out), a file uploaded from disk as it is read and a
result saved to disk as it arrives. Does
not own the agent socket (faced.client.agent), decoding and errors (faced.client.wire) or
the types (faced.schemas). It imports no server module: an agent's machine needs aiohttp and msgspec
alone (no camera, no models).

Why: an agent wants attributes, not dicts, and one exception to catch; the streams it reads
must outlive a daemon restart without it writing a reconnect loop. Each stream reads one
message at a time (no queue of its own), so a consumer that falls behind holds back TCP,
never memory.
"""

from __future__ import annotations

import asyncio
import io
import logging
import mimetypes
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any, Final, Literal, Self, get_args
from urllib.parse import quote

import aiohttp
import msgspec
from aiohttp import WSMsgType, hdrs

from faced.client.agent import AgentSocket
from faced.client.wire import (
    MAX_EVENT_BYTES,
    MAX_SOCKET_MESSAGE_BYTES,
    MSGPACK,
    Encoding,
    FacedError,
    T,
    Undecodable,
    ViewerMessage,
    connection_error,
    decode,
    decode_tracking,
    decode_viewer,
    encoding_of,
    error_of,
    read_body,
    wire_fields,
)
from faced.devices.retry import Backoff
from faced.schemas.analysis import Analysis
from faced.schemas.face_state import (
    AudioResponse,
    FaceState,
    HistoryEntry,
    HistoryResponse,
    SpeakResponse,
    StateResponse,
)
from faced.schemas.health import Health
from faced.schemas.jobs import FINISHED, Curves, Job, JobDeleted, JobList, JobsAccepted
from faced.schemas.person import PersonEvent, PersonSummary
from faced.schemas.tracking import TrackingResult

log = logging.getLogger(__name__)

RECONNECT_FIRST_S: Final = 0.25
RECONNECT_MAX_S: Final = 5.0
HEARTBEAT_S: Final = 20.0
"""WebSocket ping interval: a daemon that vanished without closing is noticed in one."""
SSE_READ_TIMEOUT_S: Final = 45.0
"""The daemon sends a keep-alive comment every 15 s; three missed ones mean it is gone."""
MAX_TAKE_BYTES: Final = 512 * 1024 * 1024
"""A job's curves or CSV, at most: ten minutes at 60 fps is ~36,000 frames of ~1.5 KB of
JSON each, more than an ordinary answer's limit."""
JobFile = Literal["curves", "csv", "video"]
"""What ``download_job`` saves of a done job."""
JOB_FILES: Final[tuple[str, ...]] = get_args(JobFile)


class _Link:
    """A stream's reconnection state: whether it was ever connected, and the backoff (back
    to its first delay at each successful connection)."""

    def __init__(self) -> None:
        self.connected = False
        self.backoff = Backoff(RECONNECT_FIRST_S, RECONNECT_MAX_S)

    def opened(self) -> None:
        self.connected = True
        self.backoff.reset()


class FaceClient:
    """An async client of one faced daemon.

    ::

        async with FaceClient("http://box.local:9999", api_key=KEY) as face:
            await face.set_state(state="thinking", emotion="happy")
            seq = await face.speak("Hello!")
            async for event in face.person_events():
                print(event.event, event.distance_m)

    ``encoding`` is how bodies and answers travel (``"msgpack"`` is smaller and faster to
    parse; the results are the same types). ``timeout_s`` bounds each request (connecting
    included); streams only bound connecting and notice a silent daemon by heartbeats.
    Every failure raises ``FacedError``.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:9999",
        api_key: str | None = None,
        encoding: Encoding = "json",
        *,
        timeout_s: float = 30.0,
    ) -> None:
        if encoding not in ("json", "msgpack"):
            raise ValueError(f"encoding must be 'json' or 'msgpack', not {encoding!r}")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, not {url!r}")
        self.url = url.rstrip("/") + "/"
        self.encoding: Encoding = encoding
        self.timeout_s = timeout_s
        self._headers = {hdrs.AUTHORIZATION: f"Bearer {api_key}"} if api_key else {}
        if encoding == "msgpack":
            self._headers[hdrs.ACCEPT] = MSGPACK
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session (and with it every stream and socket of this client)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # The session's timeout bounds a socket's handshake; requests and the event
            # stream set their own.
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    # --- requests --------------------------------------------------------------------------

    def _encode(self, body: Any) -> tuple[bytes, str]:
        if self.encoding == "msgpack":
            return msgspec.msgpack.encode(body), MSGPACK
        return msgspec.json.encode(body), "application/json"

    async def _request(
        self,
        method: str,
        path: str,
        schema: type[T],
        *,
        body: Any = None,
        data: Any = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        long: bool = False,
    ) -> T:
        payload, encoding = await self._fetch(
            method, path, body=body, data=data, content_type=content_type, params=params, long=long
        )
        return decode(payload, schema, encoding)

    async def _fetch(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: Any = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        long: bool = False,
    ) -> tuple[bytes, Encoding]:
        """The answer's bytes and encoding; a refusal raises. ``long``: an upload or a
        take's download, bounded per read rather than as a whole (its length is the
        take's) and allowed up to ``MAX_TAKE_BYTES``."""
        if body is not None:
            data, content_type = self._encode(body)
        headers = {hdrs.CONTENT_TYPE: content_type} if content_type else None
        what = f"{method} {self.url}{path}"
        if long:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
            )
        else:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with self._open().request(
                method, self.url + path, data=data, headers=headers, params=params, timeout=timeout
            ) as response:
                payload = await read_body(response, MAX_TAKE_BYTES if long else None)
                if response.status >= 400:
                    raise error_of(response, payload)
                return payload, encoding_of(response)
        except FacedError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_error(exc, what) from None

    async def state(self) -> FaceState:
        """The face state now (``GET /api/state``)."""
        return await self._request("GET", "api/state", FaceState)

    async def set_state(self, **fields: Any) -> FaceState:
        """Merge an update into the face state (``POST /api/state``); the merged state.

        Fields by their Python or wire name: ``state="thinking", emotion="happy",
        look_at={"x": 0.5}`` (or ``lookAt``); ``type="reset"`` returns to the default face.
        A bad value is a FacedError 400 naming the field."""
        answer = await self._request("POST", "api/state", StateResponse, body=wire_fields(fields))
        return answer.state

    async def speak(self, text: str | None = None, **fields: Any) -> int:
        """Start an audio sequence (``POST /api/speak``; ``state`` defaults to speaking)
        and show ``text``; the sequence number for ``send_audio``. ``expect_audio=False``
        when no audio follows (the daemon's text-to-speech, if any, speaks at once)."""
        body = wire_fields(fields)
        if text is not None:
            body["text"] = text
        answer = await self._request("POST", "api/speak", SpeakResponse, body=body)
        return answer.seq

    async def send_audio(self, wav: bytes, seq: int | None = None) -> int:
        """One WAV chunk of the current (or the given) sequence (``POST /api/audio``);
        the sequence it joined."""
        if seq is None:
            answer = await self._request(
                "POST", "api/audio", AudioResponse, data=wav, content_type="audio/wav"
            )
        else:
            answer = await self._request(
                "POST", "api/audio", AudioResponse, body={"data": wav, "seq": seq}
            )
        return answer.seq

    async def audio_done(self, seq: int | None = None) -> int:
        """The sequence's audio is complete (``POST /api/audio-done``); its number."""
        body = {} if seq is None else {"seq": seq}
        answer = await self._request("POST", "api/audio-done", AudioResponse, body=body)
        return answer.seq

    async def history(self) -> list[HistoryEntry]:
        """State changes, texts, details and person arrivals/departures, newest last."""
        answer = await self._request("GET", "api/history", HistoryResponse)
        return answer.entries

    async def health(self) -> Health:
        """The daemon's health (``GET /health``): ``status``, ``version``, components."""
        return await self._request("GET", "health", Health)

    async def analyze(self, image: bytes, **options: Any) -> Analysis:
        """Faces in a JPEG, PNG or WebP image (``POST /v1/analyze``); options
        ``landmarks=True``, ``num_faces=N``."""
        params = {
            name: ("true" if value else "false") if isinstance(value, bool) else str(value)
            for name, value in options.items()
        }
        return await self._request(
            "POST",
            "v1/analyze",
            Analysis,
            data=image,
            content_type="application/octet-stream",
            params=params,
        )

    async def person(self) -> PersonSummary:
        """Who is in front of the box now (``GET /api/person``; needs the key)."""
        return await self._request("GET", "api/person", PersonSummary)

    # --- jobs (takes) -----------------------------------------------------------------------

    async def submit_job(
        self,
        video: bytes | str | os.PathLike[str] | None = None,
        *,
        record_s: float | None = None,
        label: str | None = None,
        keep_video: bool = False,
        calibrated: bool = False,
        fps: float | None = None,
    ) -> str:
        """Queue a take (``POST /api/v1/jobs``); its job id. ``video`` is the clip itself
        (``bytes``) or a file's path, streamed from disk as it is sent (never read whole);
        without it, ``record_s`` seconds are recorded from the box's own camera. ``label``
        names the take (the CSV's slate), ``keep_video`` keeps the video on the box,
        ``calibrated`` applies the current calibration (409 without one), ``fps``
        resamples. Follow it with ``wait_job``, ``job_events`` or ``job``."""
        if (video is None) == (record_s is None):
            raise ValueError("give either video (bytes or a path) or record_s, not both")
        options: dict[str, Any] = {"keep_video": keep_video, "calibrated": calibrated}
        if label is not None:
            options["label"] = label
        if fps is not None:
            options["fps"] = fps
        if video is None:
            answer = await self._request(
                "POST", "api/v1/jobs", JobsAccepted, body={"record_s": record_s, **options}
            )
        else:
            params = {
                name: ("true" if value else "false") if isinstance(value, bool) else str(value)
                for name, value in options.items()
            }
            if isinstance(video, bytes):
                # A BytesIO shares the bytes (no copy) and is sent in chunks, not at once.
                answer = await self._upload(io.BytesIO(video), params)
            else:
                try:
                    # aiohttp reads an open file in its executor, 64 KiB at a time (the
                    # length from fstat), so a take is never held whole in memory.
                    file = await asyncio.to_thread(open, video, "rb")
                except OSError as exc:
                    raise FacedError(None, f"cannot read {video}: {exc.strerror or exc}") from None
                try:
                    answer = await self._upload(file, params, _video_type(video))
                finally:
                    file.close()  # aiohttp closes it once sent; not when the request failed
        return answer.jobs[0].job_id

    async def _upload(
        self, data: Any, params: Mapping[str, str], content_type: str = "application/octet-stream"
    ) -> JobsAccepted:
        return await self._request(
            "POST",
            "api/v1/jobs",
            JobsAccepted,
            data=data,
            content_type=content_type,
            params=params,
            long=True,
        )

    @staticmethod
    def _job_path(job_id: str, tail: str = "") -> str:
        return f"api/v1/job/{quote(job_id, safe='')}{tail}"

    async def job(self, job_id: str) -> Job:
        """One job (``GET /api/v1/job/{id}``): status, progress, error, result."""
        return await self._request("GET", self._job_path(job_id), Job)

    async def jobs(self, limit: int = 20, offset: int = 0) -> JobList:
        """A page of jobs, newest first (``GET /api/v1/jobs``; ``limit`` 1..100)."""
        params = {"limit": str(limit), "offset": str(offset)}
        return await self._request("GET", "api/v1/jobs", JobList, params=params)

    async def delete_job(self, job_id: str) -> None:
        """Cancel a job (recording or running) and remove it and its files
        (``DELETE /api/v1/job/{id}``); 404 when there is none."""
        await self._request("DELETE", self._job_path(job_id), JobDeleted)

    async def job_curves(self, job_id: str) -> Curves:
        """A done job's curves: per frame the 52 blendshapes, head and eyes (409 before)."""
        payload, _ = await self._fetch("GET", self._job_path(job_id, "/curves"), long=True)
        curves: Curves = decode(payload, Curves, "json")  # a file: JSON whatever Accept says
        return curves

    async def job_csv(self, job_id: str) -> bytes:
        """A done job's curves as a Live Link Face CSV (Unreal's importer, Blender
        add-ons); its file name is ``job.result.csv_name``. ``download_job`` saves it (or
        the curves, or the kept video) to a file instead."""
        payload, _ = await self._fetch("GET", self._job_path(job_id, "/csv"), long=True)
        return payload

    async def download_job(
        self, job_id: str, what: JobFile, to: str | os.PathLike[str] = "."
    ) -> Path:
        """Save a done job's ``"curves"`` (JSON), ``"csv"`` (Live Link Face) or ``"video"``
        (kept with ``keep_video``) to a file, written as it arrives (never held whole, any
        size); the path written. ``to`` is the file, or a directory (the current one by
        default) to save it in under the daemon's name for it: ``<slate>_<take>_<subject>``
        and ``.json``, ``.csv`` or the video's extension. The file appears whole or not at
        all (written beside it under a temporary name, then renamed); an existing one is
        replaced. 409 before the job is done, 404 for a video not kept."""
        if what not in JOB_FILES:
            raise ValueError(f"what must be one of {', '.join(JOB_FILES)}, not {what!r}")
        target = Path(to)
        path = self._job_path(job_id, f"/{what}")
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
        )
        try:
            async with self._open().get(self.url + path, timeout=timeout) as response:
                if response.status >= 400:
                    raise error_of(response, await read_body(response))
                if await asyncio.to_thread(target.is_dir):
                    target /= _download_name(response, job_id, what)
                await _save(response, target)
        except FacedError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_error(exc, f"GET {self.url}{path}") from None
        return target

    async def job_events(self, job_id: str, *, reconnect: bool = True) -> AsyncGenerator[Job, None]:
        """The job now and at each change (``GET /api/v1/job/{id}/events``), ending with
        it done or failed. A lost connection is reopened (the first event of each is the
        job as it stands, so nothing final is missed); a removed job raises 404."""
        path = self._job_path(job_id, "/events")
        stream = self._stream(lambda link: self._sse(path, Job, link), reconnect)
        try:
            async for job in stream:
                yield job
                if job.status in FINISHED:
                    return
        finally:
            await stream.aclose()

    async def wait_job(self, job_id: str, timeout_s: float = 600.0) -> Job:
        """The job once done or failed (a failed job is returned, its ``error`` says why);
        FacedError (status None) when it is not finished within ``timeout_s``."""
        events = self.job_events(job_id)
        try:
            async with asyncio.timeout(timeout_s):
                async for job in events:
                    if job.status in FINISHED:
                        return job
        except TimeoutError:
            raise FacedError(None, f"job {job_id} did not finish within {timeout_s:g} s") from None
        finally:
            await events.aclose()
        raise FacedError(None, f"job {job_id}: its event stream ended before it finished")

    # --- streams ---------------------------------------------------------------------------

    def person_events(
        self, *, snapshot: bool = False, reconnect: bool = True
    ) -> AsyncGenerator[PersonEvent, None]:
        """Person events as they happen (``GET /api/person/events``): arrived, left,
        attention_start/_end, speaking_start/_end, expression. ``snapshot=True``: each
        connection, the first included, starts with the summary as it stands (event
        ``snapshot``), so someone already there when the stream (re)connects is seen."""
        path = "api/person/events?snapshot=1" if snapshot else "api/person/events"
        return self._stream(lambda link: self._sse(path, PersonEvent, link), reconnect)

    def viewer_messages(self, *, reconnect: bool = True) -> AsyncGenerator[ViewerMessage, None]:
        """Everything viewers get (``/ws/viewer``): the state and history on each
        (re)connection, then every broadcast. Message types this client does not know
        (from a newer daemon) are skipped."""
        return self._stream(
            lambda link: self._socket("ws/viewer", {}, decode_viewer, link),
            reconnect,
        )

    def tracking(
        self,
        fields: list[str] | None = None,
        fps: float | None = None,
        *,
        events: bool = False,
        reconnect: bool = True,
    ) -> AsyncGenerator[TrackingResult | PersonEvent, None]:
        """Live tracking results of the box's camera (``/ws/tracking``; needs the key).

        ``fields`` keeps only those result fields (``["head", "blendshapes"]``; the others
        are None), ``fps`` lowers the rate; ``events=True`` also delivers person events
        (``PersonEvent``). A client that reads slowly gets the latest result, not a
        backlog (the daemon keeps one unsent result per client)."""
        params: dict[str, str] = {}
        if fields is not None:
            params["fields"] = ",".join(fields)
        if fps is not None:
            params["fps"] = str(fps)
        if events:
            params["events"] = "1"

        def decode(data: bytes | str, encoding: Encoding) -> TrackingResult | PersonEvent:
            return decode_tracking(data, encoding, trimmed=fields is not None)

        return self._stream(
            lambda link: self._socket("ws/tracking", params, decode, link),
            reconnect,
        )

    async def _stream(
        self, open_once: Callable[[_Link], AsyncIterator[T]], reconnect: bool
    ) -> AsyncGenerator[T, None]:
        """``open_once``'s messages, reconnected with backoff once it has connected (but
        not after a 4xx refusal: a key that became wrong will not become right by
        retrying). The first connection's failure raises: a daemon that is down says so."""
        link = _Link()
        while True:
            try:
                async for message in open_once(link):
                    yield message
                if not reconnect:
                    return
                log.info("stream closed by the daemon; reconnecting")
            except Undecodable:
                raise
            except FacedError as exc:
                refused = exc.status is not None and exc.status < 500
                if not reconnect or not link.connected or refused:
                    raise
                log.info("stream lost (%s); reconnecting", exc)
            await asyncio.sleep(link.backoff.next())

    async def _sse(self, path: str, schema: type[T], link: _Link) -> AsyncIterator[T]:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout_s, sock_read=SSE_READ_TIMEOUT_S
        )
        what = f"GET {self.url}{path}"
        try:
            async with self._open().get(
                self.url + path, headers={hdrs.ACCEPT: "text/event-stream"}, timeout=timeout
            ) as response:
                if response.status >= 400:
                    raise error_of(response, await read_body(response))
                link.opened()
                data = bytearray()
                while line := await response.content.readline():
                    line = line.rstrip(b"\r\n")
                    if line.startswith(b"data:"):
                        data += line[5:].removeprefix(b" ")
                        if len(data) > MAX_EVENT_BYTES:
                            raise FacedError(None, f"{what}: an event over {MAX_EVENT_BYTES} bytes")
                    elif not line and data:
                        event = decode(bytes(data), schema, "json")
                        data.clear()
                        yield event
        except FacedError:
            raise
        except ValueError as exc:  # aiohttp: a line longer than its buffer
            raise FacedError(None, f"{what}: {exc}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_error(exc, what) from None

    async def _socket(
        self,
        path: str,
        params: Mapping[str, str],
        decode: Callable[[bytes | str, Encoding], T | None],
        link: _Link,
    ) -> AsyncIterator[T]:
        socket = await self._connect(path, params)
        link.opened()
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    decoded = decode(message.data, "json")
                elif message.type == WSMsgType.BINARY:
                    decoded = decode(message.data, "msgpack")
                else:
                    break  # an error or the close: the caller reconnects
                if decoded is not None:
                    yield decoded
        finally:
            await socket.close()
        if socket.close_code not in (None, 1000, 1001):
            # 1009: a message over MAX_SOCKET_MESSAGE_BYTES; 1008: the daemon found us slow.
            code = socket.close_code
            raise FacedError(None, f"WS {self.url}{path}: the connection ended (code {code})")

    async def _connect(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> aiohttp.ClientWebSocketResponse:
        """A socket to ``path`` (``?encoding=`` added); a refused upgrade raises
        FacedError with the daemon's status and message."""
        query = {**(params or {}), "encoding": self.encoding}
        what = f"WS {self.url}{path}"
        try:
            return await self._open().ws_connect(
                self.url + path,
                params=query,
                heartbeat=HEARTBEAT_S,
                max_msg_size=MAX_SOCKET_MESSAGE_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_close=self.timeout_s),
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise await self._refusal(path, query, exc.status) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise connection_error(exc, what) from None

    async def _refusal(self, path: str, query: Mapping[str, str], status: int) -> FacedError:
        """aiohttp drops the body of a refused upgrade: ask again without upgrading to
        read the daemon's sentence (the same checks refuse the same way)."""
        try:
            async with self._open().get(
                self.url + path, params=query, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            ) as response:
                if response.status == status:
                    return error_of(response, await read_body(response))
        except (aiohttp.ClientError, TimeoutError, FacedError):
            pass
        return FacedError(status, f"WS {path}: the daemon refused the connection")

    # --- the agent socket ------------------------------------------------------------------

    def agent(self) -> AgentSocket:
        """An agent socket (``/ws/agent``): ``async with face.agent() as agent: await
        agent.send(state="listening")``. While an agent is connected the face stays awake."""
        return AgentSocket(lambda: self._connect("ws/agent"), self.encoding, self.timeout_s)


def _video_type(path: str | os.PathLike[str]) -> str:
    """The upload's Content-Type: the file's video type when its extension says one (the
    daemon names the kept video after it), else application/octet-stream."""
    guessed, _ = mimetypes.guess_type(os.fspath(path))
    return guessed if guessed and guessed.startswith("video/") else "application/octet-stream"


def _download_name(response: aiohttp.ClientResponse, job_id: str, what: JobFile) -> str:
    """The daemon's name for a download (Content-Disposition), reduced to a plain file name
    in the directory asked for (no path, no hidden file); ``<job id>.<kind>`` without one."""
    disposition = response.content_disposition
    name = PurePath((disposition.filename if disposition else None) or "").name
    if name and not name.startswith(".") and name.isprintable():
        return name
    if what == "video":
        return job_id + (mimetypes.guess_extension(response.content_type) or "")
    return job_id + {"curves": ".json", "csv": ".csv"}[what]


async def _save(response: aiohttp.ClientResponse, target: Path) -> None:
    """The answer's body into ``target``, by way of a temporary file beside it (renamed once
    whole, removed on any failure)."""
    partial = target.with_name(f".{target.name}.part")
    try:
        file = await asyncio.to_thread(partial.open, "wb")
    except OSError as exc:
        raise FacedError(None, f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        try:
            async for chunk in response.content.iter_chunked(256 * 1024):
                await asyncio.to_thread(file.write, chunk)
        finally:
            await asyncio.to_thread(file.close)
        await asyncio.to_thread(partial.replace, target)
    except OSError as exc:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise FacedError(None, f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
