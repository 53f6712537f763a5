"""What the decoder fuzzers share: the child under an address-space limit, the seed corpus
(tests/.data's photos, WAVs and a clip, made small), the mutations, and the bounded loop.

The loop runs hypothesis in rounds of a fixed seed each (round 0, 1, 2, ...) until the
budget (tests/helpers.run_seconds) is spent: `make test` replays the same first rounds
every time, `make fuzz` goes on for minutes, and a failure is shrunk and printed by
hypothesis as usual. Each test reports its executions on stdout (``pytest -s``) and in
the terminal summary.
"""

from __future__ import annotations

import base64
import io
import json
import os
import select
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import cv2
import msgspec
import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.speaker_helpers import make_wav, noise, tone

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DATA: Final = REPO_ROOT / "tests" / ".data"
HEADROOM_MIB: Final = 1024
"""The child's address space beyond its start-up size: a 40 MP image decoded twice (RGB
and a conversion) fits; a decompression bomb does not."""
ANSWER_TIMEOUT_S: Final = 20.0
"""Longer than any one decode may take even on a loaded machine: past it, a hang."""
EXAMPLES_PER_ROUND: Final = 40

EXECUTIONS: dict[str, int] = {}
"""Inputs run per decoder in this session (reported by the terminal summary)."""


class DecoderCrash(AssertionError):
    """The child died, hung, or raised something else than the decoder's own error."""


@dataclass
class Child:
    """``tests.fuzz.decoder_child`` under RLIMIT_AS; restarted after a crash."""

    headroom_mib: int = HEADROOM_MIB
    process: subprocess.Popen[bytes] | None = None
    limit: int = 0
    stderr: list[str] = field(default_factory=list)

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.decoder_child", str(self.headroom_mib)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=REPO_ROOT,
        )
        self.limit = self._answer()["limit"]

    def run(self, decoder: str, data: bytes, **options: Any) -> dict[str, Any]:
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None and self.process.stdin is not None
        request = {"decoder": decoder, "size": len(data), **options}
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n" + data)
            self.process.stdin.flush()
        except BrokenPipeError:
            self.close()
            raise DecoderCrash(f"{decoder}: the child died before the input") from None
        answer = self._answer()
        if "unexpected" in answer:
            raise DecoderCrash(f"{decoder}: {answer['unexpected']}")
        return answer

    def _answer(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], ANSWER_TIMEOUT_S)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            hung = self.process.poll() is None
            self.close()
            if hung:
                raise DecoderCrash(f"no answer within {ANSWER_TIMEOUT_S} s (a hang)")
            raise DecoderCrash(f"the child died (exit status {self.process.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def fuzz_for(
    name: str, seconds: float, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]
) -> int:
    """Run ``check`` on inputs drawn from ``strategy`` in rounds of fixed seeds until
    ``seconds`` are spent; return the executions (also added to ``EXECUTIONS[name]``)."""
    executions = 0

    def counted(value: Any) -> None:
        nonlocal executions
        executions += 1
        check(value)

    deadline = time.monotonic() + seconds
    round_ = 0
    while time.monotonic() < deadline:
        runner = settings(
            max_examples=EXAMPLES_PER_ROUND,
            deadline=None,
            database=None,
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )(seed(round_)(given(strategy)(counted)))
        runner()
        round_ += 1
    EXECUTIONS[name] = EXECUTIONS.get(name, 0) + executions
    print(f"fuzz {name}: {executions} executions in {seconds:g} s, {round_} rounds")
    return executions


# --- the seed corpus ------------------------------------------------------------------------


def _photo(size: tuple[int, int] = (64, 48)) -> Any:
    bgr = cv2.imread(str(DATA / "einstein.jpg"), cv2.IMREAD_COLOR)
    assert bgr is not None, "tests/.data/einstein.jpg: run make test-data"
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)


def _encode(ext: str, image: Any, params: list[int] | None = None) -> bytes:
    ok, encoded = cv2.imencode(ext, image, params or [])
    assert ok
    return encoded.tobytes()


def _exif_jpeg(bgr: Any) -> bytes:
    from PIL import Image  # noqa: PLC0415 - the one seed that needs an EXIF block

    image = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° on display
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=70)
    return out.getvalue()


def image_seeds() -> list[bytes]:
    """Small real photos in every layout the decoder meets: baseline, progressive, grey and
    EXIF-rotated JPEG; RGB, grey, alpha and 16-bit PNG; lossy and lossless WebP."""
    photo = _photo()
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    alpha = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    return [
        _encode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 60]),
        _encode(".jpg", photo, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        _encode(".jpg", grey),
        _exif_jpeg(photo),
        _encode(".png", photo),
        _encode(".png", grey),
        _encode(".png", alpha),
        _encode(".png", photo.astype(np.uint16) * 257),
        _encode(".webp", photo, [cv2.IMWRITE_WEBP_QUALITY, 50]),
        _encode(".webp", alpha, [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless
    ]


def wav_seeds() -> list[bytes]:
    rate = 16000
    speech = tone(220, 0.02, rate)
    stereo = noise(0.01, 8000, channels=2)
    return [
        make_wav(speech, rate),
        make_wav(speech, rate, "u8"),
        make_wav(speech, rate, "i24", extensible=True),
        make_wav(stereo, 8000, "i32", extra_chunk=True),
        make_wav(speech, rate, "f32"),
    ]


def clip_seeds(directory: Path) -> list[bytes]:
    """A Motion-JPEG AVI (read as JPEG packets) and an MPEG-4 one (FFmpeg decodes), a few
    frames of the photo each."""
    photo = _photo((32, 24))
    seeds = []
    for fourcc in ("MJPG", "mp4v"):
        path = directory / f"seed-{fourcc}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10.0, (32, 24))
        try:
            for shift in range(3):
                writer.write(np.roll(photo, shift, axis=1))
        finally:
            writer.release()
        seeds.append(path.read_bytes())
    return seeds


BODY_SEEDS: Final[list[tuple[str, Any]]] = [
    ("state", {"state": "speaking", "emotion": "happy", "lookAt": {"x": 0.5}, "text": "hi"}),
    ("speak", {"text": "hello", "expectAudio": False, "winkRight": 2}),
    ("audio", {"data": "UklGRiQAAABXQVZF", "seq": 3}),
    ("base64", {"image_base64": "data:image/png;base64,iVBORw0KGgo=", "num_faces": 1}),
    ("volume", {"volume": 70, "muted": False}),
    ("display", {"brightness": 50}),
    ("follow", {"enabled": True}),
    ("viewer", {"face": "classic"}),
]


# --- mutations ------------------------------------------------------------------------------

_EXTREMES: Final = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few mutations: bit flips, extreme 8/16/32-bit fields (header sizes,
    lengths), inserted or deleted runs, a truncation, a copied range; indices lean to the
    header, where the parsers are."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        end = len(data) - 1
        at = draw(st.one_of(st.integers(0, min(end, 96)), st.integers(0, end)))
        operation = draw(st.sampled_from(("flip", "field", "insert", "delete", "cut", "copy")))
        if operation == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif operation == "field":
            width = draw(st.sampled_from((1, 2, 4)))
            value = draw(st.one_of(st.sampled_from(_EXTREMES), st.integers(0, 0xFFFFFFFF)))
            order = draw(st.sampled_from("<>"))
            packed = struct.pack(order + {1: "B", 2: "H", 4: "I"}[width], value % (1 << 8 * width))
            data[at : at + width] = packed
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif operation == "cut":
            del data[at:]
        else:
            length = draw(st.integers(1, 256))
            target = draw(st.integers(0, end))
            data[target:target] = data[at : at + length]
    return bytes(data)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@st.composite
def sized_images(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A real image whose header declares another size (up to 65535 or 2^31 a side): the
    decompression bomb's shape; the data after the header is the seed's own."""
    dimension = st.one_of(
        st.integers(1, 9000), st.sampled_from((0, 1, 16383, 16384, 65535, 0x7FFFFFFF))
    )
    width, height = draw(dimension), draw(dimension)
    data = bytearray(draw(st.sampled_from(seeds)))
    if data[:3] == b"\xff\xd8\xff":
        sof = next(
            (i for i in range(2, len(data) - 9) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2)),
            None,
        )
        if sof is not None:
            data[sof + 5 : sof + 9] = struct.pack(">HH", height % 65536, width % 65536)
    elif data[:4] == b"\x89PNG":
        ihdr = bytes(data[16:29])
        ihdr = struct.pack(">II", width, height) + ihdr[8:]
        data[8:33] = png_chunk(b"IHDR", ihdr)
    elif data[12:16] == b"VP8 ":
        data[26:30] = struct.pack("<HH", width % 16384, height % 16384)
    elif data[12:16] == b"VP8L":
        bits = ((width - 1) % 16384) | (((height - 1) % 16384) << 14)
        data[21:25] = struct.pack("<I", bits | (int.from_bytes(data[21:25], "little") & 0xF0000000))
    return bytes(data)


@st.composite
def vp8x_images(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A WebP with an extended header (VP8X) whose canvas may differ from its frame."""
    webp = draw(st.sampled_from([s for s in seeds if s[8:12] == b"WEBP"]))
    frame = webp[12:]
    width = draw(st.integers(1, 1 << 24))
    height = draw(st.integers(1, 1 << 24))
    flags = draw(st.sampled_from((0, 0x10, 0x02, 0x20)))
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([flags, 0, 0, 0])
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


@st.composite
def built_wavs(draw: st.DrawFn) -> bytes:
    """A RIFF/WAVE built field by field: any format tag, channel count, rate, bit depth,
    block align and chunk sizes (a data size of 4 GiB included)."""
    tag = draw(st.sampled_from((1, 3, 0xFFFE, 2, 6, 7, 0x55, 0)))
    channels = draw(st.sampled_from((0, 1, 2, 3, 8, 0xFFFF)))
    rate = draw(st.sampled_from((0, 1, 7999, 8000, 44100, 192000, 192001, 0xFFFFFFFF)))
    bits = draw(st.sampled_from((0, 1, 8, 12, 16, 24, 32, 64, 0xFFFF)))
    block = draw(st.one_of(st.just(max(1, channels * bits // 8) % 65536), st.integers(0, 0xFFFF)))
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block % (1 << 32), block, bits)
    if tag == 0xFFFE:
        fmt += (
            struct.pack("<HHI", 22, bits, 3)
            + struct.pack("<H", draw(st.sampled_from((1, 3, 2))))
            + bytes(14)
        )
    fmt_size = draw(st.one_of(st.just(len(fmt)), st.sampled_from((0, 15, 16, 39, 0xFFFFFFFF))))
    samples = draw(st.binary(max_size=512))
    data_size = draw(st.one_of(st.just(len(samples)), st.sampled_from((0, 0xFFFFFFFF, 0x7FFFF000))))
    chunks = b"fmt " + struct.pack("<I", fmt_size) + fmt
    if draw(st.booleans()):
        chunks = b"LIST" + struct.pack("<I", 3) + b"abc\x00" + chunks
    chunks += b"data" + struct.pack("<I", data_size) + samples
    return b"RIFF" + struct.pack("<I", (4 + len(chunks)) % (1 << 32)) + b"WAVE" + chunks


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def bodies(draw: st.DrawFn, encoding: str) -> tuple[str, bytes]:
    """(schema name, body): a seed body with fields replaced by anything JSON holds (bytes
    and big integers too in msgpack), mutated bytes, or a body of random bytes."""
    schema, document = draw(st.sampled_from(BODY_SEEDS))
    document = dict(document)
    keys = [*document, "type", "lookAt", "seq", "data", "image_base64", "num_faces", "landmarks"]
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(keys) | st.text(max_size=8))
        extra = st.binary(max_size=32) if encoding == "msgpack" else st.nothing()
        document[key] = draw(json_values | extra)
    if encoding == "msgpack":
        encoded = msgspec.msgpack.encode(document)
    else:
        encoded = msgspec.json.encode(document)
    body = draw(
        st.one_of(
            st.just(encoded),
            mutated([encoded]),
            st.binary(max_size=64),
        )
    )
    return schema, body


@st.composite
def video_bombs(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A Motion-JPEG clip one of whose frames declares another size (up to 65535 a side)."""
    data = bytearray(seeds[0])  # the MJPG seed
    frames = [i for i in range(len(data) - 9) if data[i] == 0xFF and data[i + 1] == 0xC0]
    at = draw(st.sampled_from(frames))
    side = st.one_of(st.integers(1, 9000), st.sampled_from((0, 16384, 65535)))
    data[at + 5 : at + 9] = struct.pack(">HH", draw(side), draw(side))
    return bytes(data)


# --- requests for the real daemon -----------------------------------------------------------


@dataclass(frozen=True)
class Request:
    label: str
    """What is fuzzed (the executions are counted under it)."""
    path: str
    content_type: str | None
    body: bytes

    def __repr__(self) -> str:  # hypothesis prints the falsifying request
        return f"Request({self.label!r}, {self.path!r}, {self.content_type!r}, {self.body!r})"


def _multipart_part(
    name: str, body: bytes, filename: str | None, content_type: str | None
) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"Content-Disposition: {disposition}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + body


@st.composite
def multipart_uploads(draw: st.DrawFn, images: st.SearchStrategy[bytes]) -> Request:
    """POST /v1/analyze as multipart/form-data: the image field (mutated), option fields of
    any value, unknown and repeated fields, odd boundaries; then maybe the whole body
    mutated."""
    boundary = draw(st.sampled_from(("fuzzb0undary", "x" * 70, "a b", "--", "é")))
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(("image", "num_faces", "landmarks", "other", "")))
        if name == "image":
            body = draw(images)
        else:
            body = draw(st.sampled_from((b"1", b"true", b"9" * 100, b"\xff\xfe", b"")))
        filename = draw(st.sampled_from((None, "face.jpg", '"', "\u00e9.png")))
        content_type = draw(st.sampled_from((None, "image/jpeg", "text/plain; charset=bogus")))
        parts.append(_multipart_part(name, body, filename, content_type))
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts) + delimiter + b"--\r\n"
    if draw(st.booleans()):
        body = draw(mutated([body]))
    header_boundary = draw(st.sampled_from((boundary, "other", None)))
    content_type = "multipart/form-data"
    if header_boundary is not None:
        content_type += f'; boundary="{header_boundary}"'
    return Request("multipart", "/v1/analyze", content_type, body)


def daemon_requests(
    image_seeds: list[bytes], wav_seeds: list[bytes], clip_seeds: list[bytes] | None = None
) -> st.SearchStrategy[Request]:
    images = st.one_of(mutated(image_seeds), sized_images(image_seeds), vp8x_images(image_seeds))
    raw_images = st.builds(
        lambda data, kind: Request("raw image", "/v1/analyze", kind, data),
        images,
        st.sampled_from(("image/jpeg", "image/png", "image/webp", "application/octet-stream")),
    )
    base64_images = st.builds(
        lambda data, prefix, encoding: Request(
            f"base64 image ({encoding})",
            "/v1/analyze/base64",
            f"application/{encoding}",
            (msgspec.json.encode if encoding == "json" else msgspec.msgpack.encode)(
                {"image_base64": prefix + base64.b64encode(data).decode()}
            ),
        ),
        images,
        st.sampled_from(("", "data:image/png;base64,", "data:;base64,", "data:x,")),
        st.sampled_from(("json", "msgpack")),
    )
    wavs = st.builds(
        lambda data: Request("raw WAV", "/api/audio", "audio/wav", data),
        st.one_of(mutated(wav_seeds), built_wavs()),
    )
    routes = {
        "state": "/api/state",
        "speak": "/api/speak",
        "audio": "/api/audio",
        "volume": "/api/audio/volume",
        "base64": "/v1/analyze/base64",
    }
    body_requests = st.sampled_from(("json", "msgpack")).flatmap(
        lambda encoding: bodies(encoding).map(
            lambda drawn: Request(
                f"{encoding} body",
                routes.get(drawn[0], "/api/state"),
                f"application/{encoding}",
                drawn[1],
            )
        )
    )
    requests = [raw_images, multipart_uploads(images), base64_images, wavs, body_requests]
    if clip_seeds:  # takes for POST /api/v1/jobs: accepted, then each job done or failed
        requests.append(
            st.builds(
                lambda data, kind: Request("job upload", "/api/v1/jobs", kind, data),
                st.one_of(mutated(clip_seeds), video_bombs(clip_seeds)),
                st.sampled_from(("video/x-msvideo", "application/octet-stream")),
            )
        )
    return st.one_of(*requests)
