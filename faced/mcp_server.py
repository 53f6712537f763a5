"""`faced mcp`: an MCP server over stdio that lets an AI agent drive and read a faced daemon.

Owns: the MCP tools — Open Face's eight (``set_face_state``, ``set_face_look``,
``face_wink``, ``face_speak``, ``set_face_progress``, ``face_emote``, ``get_face_state``,
``face_reset``: same names, parameters and behaviour as Open Face's own MCP server) and
faced's own (``get_person``, ``wait_for_person``, ``wait_for_event``, ``look_at_person``,
``analyze_image``, ``camera_snapshot``, and the takes: ``record_take``, ``job_status``,
``list_jobs``) — and how a daemon's refusal becomes a tool error.
Does not own the daemon's HTTP API or its client (faced.client.FaceClient, through which
every call goes) or the command line (faced.commands.mcp).

Why a thin process: an MCP host spawns its stdio servers, so this runs on the agent's
machine and reaches the box over HTTP; it holds no camera or model. stdout is the
protocol's channel: nothing here prints, logging goes to stderr. Bad arguments are refused
by the SDK (pydantic, from the signatures) before a tool runs, so the daemon is untouched.
Needs the ``mcp`` extra (``pip install 'faced[mcp]'``); importing this module without it
raises ImportError, which the command turns into one line.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import aiohttp
import msgspec
from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from faced import __version__
from faced.client import FaceClient, FacedError
from faced.schemas.face_state import Emotion, StateName
from faced.schemas.jobs import MAX_LABEL_CHARS, MAX_RECORD_S
from faced.schemas.person import PersonChangeKind, PersonSummary

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES: Final = 16 * 1024 * 1024
"""The daemon's default ``vision.max_image_bytes``: a larger file is refused here, unread."""
MAX_WAIT_S: Final = 3600.0
INSTRUCTIONS: Final = (
    "Tools of a faced box: an animated face on a screen (state, emotion, gaze, speech "
    "bubble) with a camera that sees the person in front of it. get_person tells who is "
    "there, how far, whether they look at the box or speak; wait_for_person and "
    "wait_for_event wait for that; camera_snapshot works only where the box's owner allows it. "
    "record_take records the person from the camera and turns the take into ARKit "
    "blendshape curves (a job: follow it with job_status)."
)

_pretty = msgspec.json.Encoder()


def _json(value: Any) -> str:
    return msgspec.json.format(_pretty.encode(value), indent=2).decode()


def _clamp(value: float) -> float:
    return min(max(value, -1.0), 1.0)


Unit = Annotated[float, Field(ge=0, le=1)]


class FacedTools:
    """The daemon behind the tools: one client, the refusals worded, the pending winks."""

    def __init__(self, client: FaceClient, api_key: str | None = None) -> None:
        self.client = client
        self._api_key = api_key
        self._unwinks: dict[asyncio.Task[None], dict[str, float]] = {}

    @contextlib.asynccontextmanager
    async def call(self) -> AsyncIterator[FaceClient]:
        """The client, with any failure turned into a ToolError the agent can act on."""
        try:
            yield self.client
        except FacedError as exc:
            raise ToolError(self.explain(exc)) from None

    def explain(self, exc: FacedError) -> str:
        where = self.client.url.rstrip("/")
        if exc.status is None:
            return f"faced at {where} did not answer: {exc.message}"
        if exc.status == 401 or (exc.status == 403 and "key" in exc.message.lower()):
            return (
                f"faced at {where} refused ({exc.status}): {exc.message} "
                "(faced mcp takes the key from --api-key or FACE_API_KEY)"
            )
        return f"faced at {where} answered {exc.status}: {exc.message}"

    async def set_state(self, **fields: Any) -> str:
        async with self.call() as face:
            state = await face.set_state(**fields)
        return _json(state)

    def wink(self, field: str, duration_ms: int) -> None:
        """Open the eye again after ``duration_ms``, as Open Face does (fire and forget)."""
        task = asyncio.create_task(self._unwink(field, duration_ms / 1000), name=f"unwink-{field}")
        self._unwinks[task] = {field: 0.0}
        task.add_done_callback(lambda done: self._unwinks.pop(done, None))

    async def _unwink(self, field: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            await self.client.set_state(**{field: 0.0})
        except FacedError as exc:
            log.warning("could not end the wink: %s", exc)

    async def close(self) -> None:
        """At exit a pending wink ends now rather than never."""
        pending = list(self._unwinks.items())
        for task, _ in pending:
            task.cancel()
        for task, fields in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(FacedError):
                await self.client.set_state(**fields)

    async def wait_person(
        self, accept: Callable[[PersonSummary], bool], timeout_s: float
    ) -> PersonSummary | None:
        """The first summary ``accept`` takes — the stream's snapshot (the summary as it
        stood when the stream started, so nothing between a first look and the first
        event is missed) or a later event — or None after ``timeout_s``."""
        async with self.call() as face:
            events = face.person_events(snapshot=True)
            try:
                async with asyncio.timeout(timeout_s):
                    async for event in events:
                        if accept(event):
                            fields = msgspec.structs.asdict(event)
                            del fields["event"]  # the summary, whichever event brought it
                            return PersonSummary(**fields)
            except TimeoutError:
                return None
            finally:
                await events.aclose()
        return None

    async def wait_event(self, kinds: Collection[str], timeout_s: float) -> Any:
        async with self.call() as face:
            events = face.person_events()
            try:
                async with asyncio.timeout(timeout_s):
                    async for event in events:
                        if not kinds or event.event in kinds:
                            return event
            except TimeoutError:
                return None
            finally:
                await events.aclose()
        return None

    async def snapshot(self) -> bytes:
        """GET /api/camera/snapshot: the client has no call for a JPEG answer, so this one
        request goes out on its own, with the client's URL, key and timeout."""
        client = self.client
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        path = "api/camera/snapshot"
        try:
            async with (
                aiohttp.ClientSession(headers=headers) as session,
                session.get(
                    client.url + path, timeout=aiohttp.ClientTimeout(total=client.timeout_s)
                ) as response,
            ):
                body = await response.content.read(MAX_IMAGE_BYTES + 1)
                if response.status >= 400:
                    message = _error_message(body) or response.reason or "refused"
                    raise ToolError(self.explain(FacedError(response.status, message)))
                if len(body) > MAX_IMAGE_BYTES or response.content_type != "image/jpeg":
                    raise ToolError(f"GET /{path}: not a camera snapshot (or too large)")
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = (
                "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            )
            raise ToolError(self.explain(FacedError(None, f"GET /{path}: {reason}"))) from None


def _error_message(body: bytes) -> str | None:
    with contextlib.suppress(msgspec.DecodeError, TypeError, AttributeError):
        message = msgspec.json.decode(body).get("error")
        return message if isinstance(message, str) else None
    return None


def _read_image(path: str) -> bytes:
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ToolError(f"{file}: {size} bytes, over the limit of {MAX_IMAGE_BYTES}")
        return file.read_bytes()
    except OSError as exc:
        raise ToolError(f"cannot read {file}: {exc.strerror or exc}") from None


def build_server(tools: FacedTools) -> MCPServer:
    """The MCP server whose tools call the daemon through ``tools``."""
    server: MCPServer = MCPServer(
        name="faced", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    tool = server.tool

    # --- Open Face's eight ----------------------------------------------------------------

    @tool(
        structured_output=False,
        description="Set the face's current state, emotion, intensity, and other parameters. "
        "States: idle, thinking, speaking, listening, reacting, puzzled, alert, working, "
        "sleeping, waiting (blocked on input), loading (booting/initializing). Emotions: "
        "neutral, happy, sad, confused, excited, concerned, surprised, playful, frustrated, "
        "skeptical, determined, embarrassed, proud.",
    )
    async def set_face_state(  # Open Face's parameter names, camelCase
        *,
        state: Annotated[StateName, Field(description="Face state")],
        emotion: Annotated[
            Emotion | None, Field(description="Primary emotional expression")
        ] = None,
        emotionSecondary: Annotated[
            Emotion | None, Field(description="Secondary emotion to blend with primary")
        ] = None,
        emotionBlend: Annotated[
            Unit | None,
            Field(description="Blend between primary and secondary (0=primary, 1=secondary)"),
        ] = None,
        intensity: Annotated[
            Unit | None, Field(description="Emotion intensity (0=subtle, 1=full). Default 1")
        ] = None,
        amplitude: Annotated[Unit | None, Field(description="Animation amplitude (0-1)")] = None,
        color: Annotated[
            str | None,
            Field(pattern="^#[0-9a-fA-F]{6}$", description="Face color as hex (#RRGGBB)"),
        ] = None,
    ) -> str:
        fields = {
            "emotion": emotion,
            "emotionSecondary": emotionSecondary,
            "emotionBlend": emotionBlend,
            "intensity": intensity,
            "amplitude": amplitude,
            "color": color,
        }
        return await tools.set_state(
            state=state, **{k: v for k, v in fields.items() if v is not None}
        )

    @tool(structured_output=False, description="Control eye gaze direction")
    async def set_face_look(
        x: Annotated[float, Field(ge=-1, le=1, description="Horizontal gaze (-1 left, 1 right)")],
        y: Annotated[float, Field(ge=-1, le=1, description="Vertical gaze (-1 down, 1 up)")],
    ) -> str:
        return await tools.set_state(lookAt={"x": x, "y": y})

    @tool(structured_output=False, description="Wink one eye")
    async def face_wink(
        eye: Annotated[Literal["left", "right"], Field(description="Which eye to wink")],
        duration: Annotated[int, Field(ge=100, le=5000, description="Wink duration in ms")] = 800,
    ) -> str:
        field = "winkLeft" if eye == "left" else "winkRight"
        await tools.set_state(**{field: 1.0})
        tools.wink(field, duration)
        return f"Winked {eye} eye for {duration}ms"

    @tool(
        structured_output=False,
        description="Display text on the face (speech bubble) and set speaking state",
    )
    async def face_speak(
        text: Annotated[str, Field(max_length=500, description="Text to display")],
        duration: Annotated[
            int, Field(ge=500, le=30000, description="Display duration in ms")
        ] = 3000,
    ) -> str:
        return await tools.set_state(state="speaking", text=text, textDuration=duration)

    @tool(
        structured_output=False,
        description="Set progress for long-running operations. Shows visual progress "
        "indication on the face during working or loading states. Set to null to clear.",
    )
    async def set_face_progress(
        progress: Annotated[
            Unit | None, Field(description="Completion fraction (0.0-1.0), or null to clear")
        ],
        state: Annotated[
            Literal["working", "loading"] | None,
            Field(description="Optionally set state to working or loading"),
        ] = None,
        text: Annotated[
            str | None, Field(max_length=200, description="Optional status text to display")
        ] = None,
    ) -> str:
        fields: dict[str, Any] = {"progress": progress}
        if state is not None:
            fields["state"] = state
        if text is not None:
            fields["text"] = text
        return await tools.set_state(**fields)

    @tool(
        structured_output=False,
        description="Set emotion and intensity together for expressive reactions. "
        "Convenience tool for quickly setting emotional state without changing the "
        "activity state.",
    )
    async def face_emote(
        *,
        emotion: Annotated[Emotion, Field(description="Primary emotion")],
        intensity: Annotated[
            Unit | None, Field(description="Emotion intensity (0=subtle, 1=full). Default 1")
        ] = None,
        emotionSecondary: Annotated[
            Emotion | None, Field(description="Secondary emotion to blend")
        ] = None,
        emotionBlend: Annotated[
            Unit | None, Field(description="Blend factor (0=primary, 1=secondary)")
        ] = None,
    ) -> str:
        fields = {
            "intensity": intensity,
            "emotionSecondary": emotionSecondary,
            "emotionBlend": emotionBlend,
        }
        return await tools.set_state(
            emotion=emotion, **{k: v for k, v in fields.items() if v is not None}
        )

    @tool(structured_output=False, description="Get the face's current state")
    async def get_face_state() -> str:
        async with tools.call() as face:
            return _json(await face.state())

    @tool(structured_output=False, description="Reset face to default idle state")
    async def face_reset() -> str:
        await tools.set_state(type="reset")
        return "Face reset to defaults"

    # --- faced's own ----------------------------------------------------------------------

    @tool(
        structured_output=False,
        description="Who is in front of the box now: present, people in view, distance_m, "
        "attention (looking at the screen), speaking (visual only: the mouth moves as in "
        "speech), a coarse expression with its score, smile, position, and since when "
        "each state has held (ms since the epoch).",
    )
    async def get_person() -> str:
        async with tools.call() as face:
            return _json(await face.person())

    @tool(
        structured_output=False,
        description="Wait until someone is in front of the box (attention=true: until "
        "someone looks at it) and return the person summary; an error after timeout_s.",
    )
    async def wait_for_person(
        timeout_s: Annotated[
            float, Field(gt=0, le=MAX_WAIT_S, description="Give up after this many seconds")
        ] = 30.0,
        attention: Annotated[
            bool, Field(description="Wait until the person looks at the box")
        ] = False,
    ) -> str:
        def accept(summary: PersonSummary) -> bool:
            return summary.present and (summary.attention or not attention)

        summary = await tools.wait_person(accept, timeout_s)
        if summary is None:
            who = "nobody looked at the box" if attention else "nobody came"
            raise ToolError(f"timed out: {who} within {timeout_s:g} s")
        return _json(summary)

    @tool(
        structured_output=False,
        description="Wait for the next person event (arrived, left, attention_start, "
        "attention_end, speaking_start, speaking_end, expression) of the given kinds (all "
        "when none are given) and return it; an error after timeout_s.",
    )
    async def wait_for_event(
        kinds: Annotated[
            list[PersonChangeKind] | None, Field(description="Event kinds to wait for")
        ] = None,
        timeout_s: Annotated[
            float, Field(gt=0, le=MAX_WAIT_S, description="Give up after this many seconds")
        ] = 30.0,
    ) -> str:
        event = await tools.wait_event(frozenset(kinds or ()), timeout_s)
        if event is None:
            which = " or ".join(kinds) if kinds else "person"
            raise ToolError(f"timed out: no {which} event within {timeout_s:g} s")
        return _json(event)

    @tool(
        structured_output=False,
        description="Turn the face's gaze to the person in front of the box now (holds "
        "for the daemon's follow.hold_s; with follow mode the face keeps following anyway).",
    )
    async def look_at_person() -> str:
        async with tools.call() as face:
            person = await face.person()
            if not person.present or person.position is None:
                raise ToolError("nobody is in front of the box")
            # The camera faces the person as the face does: a person on the image's left
            # is on the face's left, the screen's right as they see it (faced.face.follow;
            # frames not mirrored, camera.mirror's default).
            x, y = _clamp(-person.position.x), _clamp(person.position.y)
            await face.set_state(look_at={"x": x, "y": y})
        return _json({"lookAt": {"x": x, "y": y}, "position": person.position})

    @tool(
        structured_output=False,
        description="Find faces in an image (JPEG, PNG or WebP) on this machine (path) or "
        "given as base64: boxes, head pose, gaze, blendshapes (landmarks on request).",
    )
    async def analyze_image(
        path: Annotated[str | None, Field(description="An image file's path")] = None,
        image_base64: Annotated[str | None, Field(description="The image, base64")] = None,
        landmarks: Annotated[bool, Field(description="Include the 478 landmarks")] = False,
        num_faces: Annotated[
            int | None, Field(ge=1, le=8, description="At most this many faces")
        ] = None,
    ) -> str:
        if (path is None) == (image_base64 is None):
            raise ToolError("give either path or image_base64 (one of them)")
        if path is not None:
            image = await asyncio.to_thread(_read_image, path)
        else:
            assert image_base64 is not None
            if len(image_base64) > MAX_IMAGE_BYTES * 4 // 3 + 4:
                raise ToolError(f"image_base64 is over the limit of {MAX_IMAGE_BYTES} bytes")
            try:
                image = base64.b64decode(image_base64, validate=True)
            except (binascii.Error, ValueError):
                raise ToolError("image_base64 is not valid base64") from None
        options: dict[str, Any] = {"landmarks": landmarks}
        if num_faces is not None:
            options["num_faces"] = num_faces
        async with tools.call() as face:
            return _json(await face.analyze(image, **options))

    @tool(
        structured_output=False,
        description="What the box's camera sees now, as a JPEG image. Works only where "
        "the box's owner set camera.snapshots = true, and with the API key.",
    )
    async def camera_snapshot() -> Image:
        return Image(data=await tools.snapshot(), format="jpeg")

    # --- takes (jobs) ---------------------------------------------------------------------

    @tool(
        structured_output=False,
        description="Record a take of the person in front of the box from its camera for "
        "`seconds` and queue it as a job that turns it into ARKit blendshape curves (JSON) "
        "and a Live Link Face CSV. Returns the job (status pending, recording true); follow "
        "it with job_status. The video is deleted once processed.",
    )
    async def record_take(
        seconds: Annotated[
            float, Field(ge=1, le=MAX_RECORD_S, description="Seconds to record (1-600)")
        ],
        label: Annotated[
            str | None,
            Field(
                max_length=MAX_LABEL_CHARS,
                pattern=r"^[^\x00-\x1f\x7f]*$",
                description="A name for the take (the CSV's slate)",
            ),
        ] = None,
    ) -> str:
        async with tools.call() as face:
            job_id = await face.submit_job(record_s=seconds, label=label)
            return _json(await face.job(job_id))

    @tool(
        structured_output=False,
        description="A job (take) by id: status (pending, processing, done, failed), "
        "progress 0-1, error, and once done the result: frames, fps, duration_s, "
        "faces_found and the daemon's URLs of the curves JSON and the Live Link Face CSV.",
    )
    async def job_status(
        job_id: Annotated[str, Field(min_length=1, max_length=64, description="The job's id")],
    ) -> str:
        async with tools.call() as face:
            return _json(await face.job(job_id))

    @tool(
        structured_output=False,
        description="The jobs (takes), newest first, a page at a time, with the total.",
    )
    async def list_jobs(
        limit: Annotated[int, Field(ge=1, le=100, description="Jobs per page")] = 20,
        offset: Annotated[int, Field(ge=0, description="Jobs to skip (newest first)")] = 0,
    ) -> str:
        async with tools.call() as face:
            return _json(await face.jobs(limit, offset))

    return server


async def serve(url: str, api_key: str | None) -> None:
    """Serve MCP on stdin/stdout until the host closes it."""
    async with FaceClient(url, api_key=api_key) as client:
        tools = FacedTools(client, api_key)
        try:
            await build_server(tools).run_stdio_async()
        finally:
            await tools.close()


__all__ = ["FacedTools", "build_server", "serve"]
