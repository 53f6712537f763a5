"""faced.client's person(), person_events() and `faced ctl watch` against the real daemon.

The daemon's camera is the ``file:`` source looping a clip of a face that comes and goes
(2 s of a test photograph, 4 s of nobody), so a person arrives every 6 s; the client reads
the perception routes as an agent does, and keeps reading when the daemon restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faced.client import FaceClient, FacedError
from faced.schemas.face_state import PersonEntry
from faced.schemas.person import PERSON_EVENT_KINDS, PersonEvent, PersonSummary
from faced.schemas.tracking import TrackingResult
from tests.api.test_person import _comes_and_goes
from tests.client.test_face_client import ENCODINGS, KEY, _url
from tests.conftest import free_port
from tests.helpers import until
from tests.test_ctl import _ctl

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _comes_and_goes(tmp_path_factory.mktemp("clips") / "comes-and-goes.avi")


async def _arrival(stream: AsyncIterator[Any], seconds: float = 30.0) -> PersonEvent:
    """The next ``arrived`` event (the other events skipped)."""
    async with asyncio.timeout(seconds):
        async for event in stream:
            if isinstance(event, PersonEvent) and event.event == "arrived":
                return event
    raise AssertionError("the stream ended")


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_person_summary_and_events(faced_client: Any, face_clip: Path, encoding: str) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"}, auth={"api_key": KEY})
    async with FaceClient(_url(client), api_key=KEY, encoding=encoding) as face:  # type: ignore[arg-type]
        events = face.person_events()
        async with contextlib.aclosing(events):
            arrived = await _arrival(events)
        assert arrived.present and arrived.people >= 1 and arrived.ts > 0

        async def present() -> bool:
            return (await face.person()).present

        await until(present, 30, what="GET /api/person says present")
        summary = await face.person()
        assert isinstance(summary, PersonSummary) and summary.people >= 1
        assert summary.present_since is not None and summary.position is not None
    async with FaceClient(_url(client), api_key="wrong", encoding=encoding) as stranger:  # type: ignore[arg-type]
        with pytest.raises(FacedError) as summary_refused:
            await stranger.person()
        assert summary_refused.value.status == 403
        with pytest.raises(FacedError) as events_refused:
            await anext(stranger.person_events())
        assert events_refused.value.status == 403


async def test_person_events_with_a_snapshot_start_with_the_summary(
    faced_client: Any, face_clip: Path
) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    async with FaceClient(_url(client)) as face:
        events = face.person_events(snapshot=True)
        async with contextlib.aclosing(events), asyncio.timeout(30):
            first = await anext(events)
            assert isinstance(first, PersonEvent) and first.event == "snapshot"
            arrived = await _arrival(events)  # then the changes, as without it
        assert arrived.ts >= first.ts


async def test_person_events_survive_a_restart_until_the_key_changes(
    run_faced: Any, face_clip: Path
) -> None:
    port = free_port()
    camera = ("--camera", f"file:{face_clip}")
    daemon = await run_faced(*camera, port=port, env={"FACE_API_KEY": KEY})
    async with FaceClient(daemon.url, api_key=KEY) as face:
        events = face.person_events()
        async with contextlib.aclosing(events):
            first = await _arrival(events)
            daemon.terminate()
            assert await daemon.wait_exit() == 0
            again = await run_faced(*camera, port=port, env={"FACE_API_KEY": KEY})
            second = await _arrival(events)  # the same iterator, from the new daemon
            assert second.ts > first.ts
            again.terminate()
            assert await again.wait_exit() == 0
            await run_faced(*camera, port=port, env={"FACE_API_KEY": "another-key"})
            with pytest.raises(FacedError) as refused:  # a 4xx is not retried
                await _arrival(events)
            assert refused.value.status == 403


async def test_ctl_watch_and_person_print_json(faced_client: Any, face_clip: Path) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    url = _url(client).rstrip("/")
    status, out, err = await _ctl("--url", url, "watch", "--count", "2", seconds=60)
    assert (status, err) == (0, [])
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) == 2 and all(event["type"] == "person" for event in events)
    assert {event["event"] for event in events} <= {
        "arrived",
        "attention_start",
        "left",
        "attention_end",
        "expression",
    }
    status, out, err = await _ctl("--url", url, "person")
    assert (status, err) == (0, []) and isinstance(json.loads(out)["present"], bool)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_tracking_with_events_yields_both(
    faced_client: Any, face_clip: Path, encoding: str
) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    async with FaceClient(_url(client), encoding=encoding) as face:  # type: ignore[arg-type]
        stream = face.tracking(fields=["head"], events=True)
        seen: set[type] = set()
        async with contextlib.aclosing(stream), asyncio.timeout(30):
            async for message in stream:
                seen.add(type(message))
                if isinstance(message, PersonEvent):
                    assert message.event in PERSON_EVENT_KINDS
                else:
                    assert isinstance(message, TrackingResult) and message.blendshapes is None
                if PersonEvent in seen and len(seen) == 2:
                    break
        entries = await face.history()  # loopback, no key set: person entries decode
        assert any(isinstance(e, PersonEntry) for e in entries)
