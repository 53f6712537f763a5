"""The decoders fuzzed: every input gets a result or the decoder's own clear error.

Directly, in a child process under an address-space limit (tests/fuzz/decoder_child.py):
images (JPEG, PNG, WebP: mutated real photos, headers declaring other sizes up to bombs),
WAV chunks, JSON and msgpack bodies against the routes' schemas, video files (a tracked
frame's band included) and bands of JPEGs (faced.vision._jpeg_band). Over
HTTP against the real daemon (also under an address-space limit): the analyze uploads
(raw, multipart, base64), POST /api/audio, job uploads (POST /api/v1/jobs: each job
ends done or failed with an error) and JSON/msgpack bodies — every answer a 4xx or
a 2xx, never a 5xx, and the daemon still healthy after. Bounded in `make test` (seconds per
decoder), minutes under `make fuzz` (tests/helpers.run_seconds).
"""

from __future__ import annotations

import asyncio
import http.client
import resource
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from hypothesis import strategies as st

from faced.vision.image_io import DEFAULT_MAX_MEGAPIXELS
from tests.fuzz import fuzzing
from tests.fuzz.fuzzing import Child, fuzz_for
from tests.helpers import run_seconds

pytestmark = pytest.mark.slow

# Seconds of fuzzing per decoder: a few in make test (~45 s in all), minutes in make fuzz.
IMAGE_S = run_seconds(5, 300)
WAV_S = run_seconds(4, 240)
BODY_S = run_seconds(3, 180)
VIDEO_S = run_seconds(5, 300)
JPEG_BAND_S = run_seconds(3, 180)
HTTP_S = run_seconds(12, 600)


def _timeout(budget: float) -> pytest.MarkDecorator:
    """pytest-timeout's limit: the budget, plus the round in progress and a slow start."""
    return pytest.mark.timeout(budget + 120)


@pytest.fixture(scope="module")
def child() -> Iterator[Child]:
    running = Child()
    running.start()
    yield running
    running.close()


@pytest.fixture(scope="module")
def image_seeds() -> list[bytes]:
    return fuzzing.image_seeds()


@_timeout(IMAGE_S)
def test_images_decode_or_are_refused(child: Child, image_seeds: list[bytes]) -> None:
    strategy = st.one_of(
        fuzzing.mutated(image_seeds),
        fuzzing.sized_images(image_seeds),
        fuzzing.vp8x_images(image_seeds),
        st.binary(max_size=64),
    )

    def check(data: bytes) -> None:
        answer = child.run("image", data)
        if "result" in answer:
            result = answer["result"]
            height, width, channels = result["shape"]
            # What was decoded is what the header declared (EXIF may turn it): the limit
            # checked against the header holds for the pixels.
            assert sorted([width, height]) == sorted(result["header"]), result
            assert width * height <= DEFAULT_MAX_MEGAPIXELS * 1e6
            assert channels in (3, 4) and result["dtype"] == "uint8"

    assert fuzz_for("image", IMAGE_S, strategy, check) > 0


@_timeout(JPEG_BAND_S)
def test_jpeg_bands_decode_or_are_refused(child: Child, image_seeds: list[bytes]) -> None:
    jpegs = [seed for seed in image_seeds if seed.startswith(b"\xff\xd8")]
    share = st.floats(0, 1, allow_nan=False)
    strategy = st.tuples(
        st.one_of(fuzzing.mutated(jpegs), fuzzing.sized_images(jpegs), st.binary(max_size=64)),
        st.tuples(share, share, share, share),
    )

    def check(drawn: tuple[bytes, tuple[float, float, float, float]]) -> None:
        jpeg, band = drawn
        answer = child.run("jpeg_band", jpeg, band=band)
        if "result" in answer:
            width, height = answer["result"]["size"]
            left, top, right, bottom = answer["result"]["band"]
            d_left, d_top, d_right, d_bottom = answer["result"]["done"]
            assert 0 <= d_left <= left < right <= d_right <= width, answer
            assert 0 <= d_top <= top < bottom <= d_bottom <= height, answer

    assert fuzz_for("jpeg band", JPEG_BAND_S, strategy, check) > 0


@_timeout(WAV_S)
def test_wav_chunks_parse_or_are_refused(child: Child) -> None:
    seeds = fuzzing.wav_seeds()
    strategy = st.one_of(fuzzing.mutated(seeds), fuzzing.built_wavs())

    def check(data: bytes) -> None:
        answer = child.run("wav", data)
        if "result" in answer:
            result = answer["result"]
            assert result["frames"] > 0 and result["in_range"], result
            assert result["shape"] == [result["frames"], result["channels"]]

    assert fuzz_for("wav", WAV_S, strategy, check) > 0


@_timeout(BODY_S)
@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_bodies_decode_or_are_400(child: Child, encoding: str) -> None:
    strategy = st.tuples(fuzzing.bodies(encoding), st.booleans())

    def check(drawn: tuple[tuple[str, bytes], bool]) -> None:
        (schema, body), name_the_field = drawn
        answer = child.run(
            "body", body, schema=schema, encoding=encoding, name_the_field=name_the_field
        )
        if "refused" in answer:
            assert answer["refused"]["status"] == 400, answer

    assert fuzz_for(f"{encoding} body", BODY_S, strategy, check) > 0


@_timeout(VIDEO_S)
def test_videos_open_or_are_refused(child: Child, tmp_path: Path) -> None:
    seeds = fuzzing.clip_seeds(tmp_path)

    def check(drawn: tuple[bytes, str]) -> None:
        data, layout = drawn
        answer = child.run("video", data, layout=layout)
        if "result" in answer:
            channels = 4 if layout == "rgba" else 3
            for height, width, depth in answer["result"]["frames"]:
                assert depth == channels
                assert width * height <= DEFAULT_MAX_MEGAPIXELS * 1e6
            if layout == "rgb":  # bands are for RGBA (the tracker's layout) only
                assert answer["result"]["band_frames"] == 0

    strategy: Any = st.tuples(
        st.one_of(fuzzing.mutated(seeds), fuzzing.video_bombs(seeds)),
        st.sampled_from(("rgb", "rgba")),
    )
    assert fuzz_for("video", VIDEO_S, strategy, check) > 0


# --- regressions: each finding's input, shrunk by hypothesis ---------------------------------


def test_webp_side_over_opencvs_limit_is_a_corrupt_image(image_seeds: list[bytes]) -> None:
    """A VP8X canvas of 1 x 1,048,577 (1 MP: within the limit) made OpenCV raise
    ``cv2.error`` from imdecode: a 500 from the analyze API. Now a corrupt image (422)."""
    from faced.vision import image_io  # noqa: PLC0415

    webp = next(s for s in image_seeds if s[12:16] == b"VP8 ")
    body = b"WEBPVP8X" + struct.pack("<I", 10) + bytes(4)
    body += (0).to_bytes(3, "little") + (1048576).to_bytes(3, "little") + webp[12:]
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    assert image_io.image_size(data) == ("webp", 1, 1048577)
    with pytest.raises(image_io.ImageError, match="cannot decode"):
        image_io.decode_for_pipeline(data)


def test_msgpack_key_of_bad_utf8_is_a_400() -> None:
    """A msgpack map key of invalid UTF-8 passed the schema-less syntax check (msgpack Raw
    does not read strings) and escaped as ``msgspec.DecodeError``: a 500 on every route
    that names the field (POST /api/state, /api/speak, /api/audio ...)."""
    from faced.api.codec import decode_body  # noqa: PLC0415
    from faced.api.errors import ApiError  # noqa: PLC0415
    from faced.schemas.audio import VolumeUpdate  # noqa: PLC0415

    body = b"\x83\xa6volume\x00\xa5muted\xc2\xa2\x00\x80\x00"
    with pytest.raises(ApiError, match="not valid msgpack: Invalid UTF-8") as refused:
        decode_body(body, "msgpack", VolumeUpdate, name_the_field=True)
    assert refused.value.status == 400


def test_motion_jpeg_frame_over_the_limit_ends_the_clip(tmp_path: Path) -> None:
    """A Motion-JPEG clip whose second frame declares 16384 x 16384 made the reader
    allocate 768 MiB for it (simplejpeg, or FFmpeg after the fallback): a bomb in a tiny
    file. The frames before it are read; that frame ends the clip, nothing allocated."""
    from faced.vision.video import VideoReader  # noqa: PLC0415

    data = bytearray(fuzzing.clip_seeds(tmp_path)[0])
    frames = [i for i in range(len(data) - 9) if data[i] == 0xFF and data[i + 1] == 0xC0]
    data[frames[1] + 5 : frames[1] + 9] = struct.pack(">HH", 16384, 16384)
    path = tmp_path / "bomb.avi"
    path.write_bytes(data)
    with VideoReader(path) as reader:
        assert reader.decoder == "libjpeg-turbo"
        first = reader.read()
        assert first is not None and first.shape == (24, 32, 3)
        assert reader.read() is None
        assert reader.read() is None


def test_video_stream_over_the_limit_is_refused_at_opening(tmp_path: Path) -> None:
    """The stream's declared size is checked before any frame is decoded."""
    from faced.vision.video import VideoError, VideoReader  # noqa: PLC0415

    path = tmp_path / "clip.avi"
    path.write_bytes(fuzzing.clip_seeds(tmp_path)[1])
    with pytest.raises(VideoError, match=r"32x24 \(0\.0 MP\), over the 0\.0001 MP limit"):
        VideoReader(path, max_megapixels=0.0001)


async def test_multipart_part_header_aiohttp_refuses_is_a_400(faced_client: Any) -> None:
    """A part header of invalid characters (a NUL before ``Content-Disposition``) made
    aiohttp's multipart reader raise ``InvalidHeader`` (no ValueError): a 500 from the
    analyze upload and the jobs' upload. Now a 400 naming the malformed body."""
    client = await faced_client()
    body = b'--b\r\n\x00Content-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n'
    for path in ("/v1/analyze", "/api/v1/jobs"):
        response = await client.post(
            path, data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert response.status == 400, (path, await response.text())
        assert "malformed multipart body" in (await response.json())["error"]


# --- over HTTP: the real daemon, under an address-space limit --------------------------------

DAEMON_HEADROOM: Final = 1024 << 20
"""The daemon's address space beyond its size once warm (a worker has analyzed an image)."""


def _daemon_config(tmp_path: Path) -> str:
    return f"""
[limits]
requests_per_s = 1000
request_burst = 1000

[audio]
sink = "wav:{tmp_path / "speaker.wav"}"
rate = 16000
channels = 1

[audio.tts]
enabled = false

[server]
state_dir = "{tmp_path / "state"}"
"""


def _vm_size(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmSize for {pid}")


class _Client:
    """A blocking HTTP/1.1 client (it runs on a worker thread, off the event loop)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, request: fuzzing.Request) -> tuple[int, bytes]:
        headers = {"Content-Length": str(len(request.body))}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        for attempt in range(2):  # the server may close a keep-alive connection after a 4xx
            try:
                self.connection.request("POST", request.path, request.body, headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


async def _jobs_finished(url: str, seconds: float = 60.0) -> list[dict[str, Any]]:
    """Every job the fuzzing left, once none waits or runs."""
    async with asyncio.timeout(seconds), aiohttp.ClientSession() as session:
        while True:
            jobs: list[dict[str, Any]] = []
            while True:
                async with session.get(f"{url}/api/v1/jobs?limit=100&offset={len(jobs)}") as got:
                    assert got.status == 200
                    page = await got.json()
                jobs += page["jobs"]
                if not page["jobs"]:
                    break
            if all(job["status"] in ("done", "failed") for job in jobs):
                return jobs
            await asyncio.sleep(0.2)


@_timeout(HTTP_S)
async def test_daemon_answers_every_input_with_a_4xx_or_a_result(
    run_faced: Any, tmp_path: Path, image_seeds: list[bytes]
) -> None:
    faced = await run_faced(config_text=_daemon_config(tmp_path))
    client = _Client(faced.port)
    statuses: Counter[tuple[str, int]] = Counter()

    def check(request: fuzzing.Request) -> None:
        status, body = client.post(request)
        statuses[request.label, status] += 1
        fuzzing.EXECUTIONS[f"HTTP {request.label}"] = (
            fuzzing.EXECUTIONS.get(f"HTTP {request.label}", 0) + 1
        )
        assert status < 500, (status, body[:300], faced.stderr[-2000:])

    def fuzz() -> int:
        warm = fuzzing.Request("warm-up", "/v1/analyze", "image/jpeg", image_seeds[0])
        status, body = client.post(warm)  # a worker loads its models: the daemon is warm
        assert status == 200, body
        pid = faced.process.pid
        limit = _vm_size(pid) + DAEMON_HEADROOM
        resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
        strategy = fuzzing.daemon_requests(
            image_seeds, fuzzing.wav_seeds(), fuzzing.clip_seeds(tmp_path)
        )
        return fuzz_for("HTTP", HTTP_S, strategy, check)

    try:
        executions = await asyncio.to_thread(fuzz)
    finally:
        client.connection.close()
    assert executions > 0
    print("statuses:", dict(sorted(statuses.items())))
    jobs = await _jobs_finished(faced.url)
    assert jobs, "no job upload was accepted"
    for job in jobs:  # a take that is no video fails saying why; none is lost or stuck
        assert job["status"] == "done" or job["error"], job
    print("jobs:", dict(Counter(job["status"] for job in jobs)))
    assert faced.process.returncode is None, faced.stderr
    await faced.wait_healthy(5)
    assert "Traceback" not in faced.stderr, faced.stderr
