"""Derived model files (int8 LiteRT, ONNX fp32/int8): their names, record and verification.

Owns the derived files' names, their record and their verification at run time.
Does not own making them (faced.vision.build) or the bundle's files (faced.vision.models).
Why: a derived file is trusted like the bundle's only because it matches its record.

``faced models build`` (faced.vision.build) derives them from
the verified float bundle and records each one in ``models/derived.toml``: its sha256 and
size, the sha256 of the file it was made from, the method, the tool versions and the exact
command. At run time a derived file is only read and verified against that record: a
missing, corrupt or stale one (built from another source file) is a ``ModelError`` naming
the file and the command that rebuilds it. An int8 file the build could not keep within
the accuracy limits is recorded as unavailable; its back end then runs the float model.
"""

from __future__ import annotations

import contextlib
import hashlib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from faced.vision.models import ModelError, pinned

if TYPE_CHECKING:
    from faced.vision.models import ModelStore

DERIVED_NAME: Final = "derived.toml"
BUILD_HINT: Final = "run `faced models build` (or `make models-build`)"
_CHECKOUT_MODELS: Final = Path(__file__).resolve().parents[2] / "models"


def variant_name(name: str, backend: str, precision: str) -> str:
    """The file a back end runs for bundle model ``name`` at ``precision``."""
    stem = name.removesuffix(".tflite")
    if backend == "litert":
        return name if precision == "fp32" else f"{stem}.int8.tflite"
    return f"{stem}.onnx" if precision == "fp32" else f"{stem}.int8.onnx"


@dataclass(frozen=True, slots=True)
class DerivedFile:
    name: str
    source: str
    source_sha256: str
    backend: str
    precision: str
    sha256: str
    size: int
    method: str
    tools: str
    command: str
    check: str = ""
    available: bool = True


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_path(store: ModelStore) -> Path:
    """models/derived.toml of a checkout, else the copy in the model directory."""
    checkout = _CHECKOUT_MODELS / DERIVED_NAME
    if checkout.is_file() and (_CHECKOUT_MODELS.parent / "pyproject.toml").is_file():
        return checkout
    return store.directory / DERIVED_NAME


def load_record(path: Path) -> dict[str, DerivedFile]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"derived model record {path}: not found; {BUILD_HINT}") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"derived model record {path}: unreadable: {exc}") from None
    files: dict[str, DerivedFile] = {}
    for entry in raw.get("files", []):
        try:
            item = DerivedFile(**{k: _field(entry, k) for k in DerivedFile.__slots__})
        except (KeyError, TypeError) as exc:
            raise ModelError(f"derived model record {path}: bad entry: {exc}") from None
        files[item.name] = item
    return files


def _field(entry: dict[str, Any], key: str) -> Any:
    if key == "check":
        return str(entry.get("check", ""))
    if key == "available":
        return bool(entry.get("available", True))
    return entry[key]


@dataclass(frozen=True, slots=True)
class Verified:
    """A model file in use, checked against its manifest or record entry."""

    file: str
    """Its name (the float file where an int8 one is unavailable)."""
    path: Path
    """A path naming the very file that was verified, while it is held open (``opened``)."""
    data: bytes
    sha256: str
    """The bytes' sha256, as verified (their owners need it, and need not hash again)."""


def read(store: ModelStore, name: str, backend: str, precision: str) -> Verified:
    """Bundle model ``name``'s file for ``backend``/``precision``, verified (its ``path``
    is closed on return)."""
    with opened(store, name, backend, precision) as verified:
        return verified


@contextlib.contextmanager
def opened(store: ModelStore, name: str, backend: str, precision: str) -> Iterator[Verified]:
    """The file of bundle model ``name`` for ``backend``/``precision``, verified and held
    open while in use (see faced.vision.models.pinned)."""
    file = variant_name(name, backend, precision)
    if file == name:
        with store.open(name) as (path, data):
            yield Verified(file, path, data, store.manifest.file(name).sha256)
        return
    record = load_record(record_path(store))
    entry = record.get(file)
    path = store.directory / file
    if entry is None:
        raise ModelError(f"model {path}: not in {DERIVED_NAME}; {BUILD_HINT}")
    if not entry.available:
        # No int8 recipe kept this model within the accuracy limits (the record says by how
        # much): the back end runs its float version instead, and reports that file as the
        # one in use (`faced models list`, /health).
        with opened(store, name, backend, "fp32") as fallback:
            yield fallback
        return
    source = store.manifest.file(entry.source)
    if entry.source_sha256 != source.sha256:
        raise ModelError(
            f"model {path}: built from {entry.source} sha256 {entry.source_sha256}, but the "
            f"manifest's {entry.source} is {source.sha256} (stale); {BUILD_HINT}"
        )
    with contextlib.ExitStack() as stack:
        try:
            held, data = stack.enter_context(pinned(path))
        except FileNotFoundError:
            raise ModelError(f"model {path}: missing (a derived model); {BUILD_HINT}") from None
        except OSError as exc:
            raise ModelError(f"model {path}: unreadable ({exc.strerror}); {BUILD_HINT}") from None
        digest = sha256(data)
        if len(data) != entry.size or digest != entry.sha256:
            raise ModelError(
                f"model {path}: corrupt or mismatched: sha256 {digest} ({len(data)} bytes), "
                f"expected {entry.sha256} ({entry.size} bytes) per {DERIVED_NAME}; {BUILD_HINT}"
            )
        yield Verified(file, held, data, digest)
