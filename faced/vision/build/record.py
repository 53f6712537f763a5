"""The record of `faced models build`: what was built from what, and whether it must be
built again.

Owns ``Built`` (one derived file), the input hash (source hashes, calibration photos, tool
versions, recipe version, Python and machine kind), the stamp that makes a build with the
same inputs and verified files do nothing, and writing the files, ``models/derived.toml``
(sha256, size, source sha256, method, tool versions, command, held-out check) and the stamp.
Does not own reading the record at run time (faced.vision.variants) or making the files.
Why: derived files are verified like the bundle's, and a rebuild must be comparable byte
for byte.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faced.vision import variants
from faced.vision.build.calibration import (
    ANGLES,
    CALIBRATION_PACKAGE,
    CALIBRATION_PHOTOS,
    CALIBRATION_SDIST_SHA256,
)
from faced.vision.build.spec import RECIPE_VERSION, TARGETS
from faced.vision.models import (
    ModelError,
    ModelStore,
    write_atomically,
)


def input_hash(store: ModelStore, versions: dict[str, str]) -> str:
    """Everything the outputs depend on: source files, calibration photos, tools, recipe,
    and the machine kind (float reductions in calibration may differ across CPUs)."""
    parts = {
        "recipe": RECIPE_VERSION,
        "sources": {t.source: store.manifest.file(t.source).sha256 for t in TARGETS},
        "calibration": [CALIBRATION_SDIST_SHA256, *(p.sha256 for p in CALIBRATION_PHOTOS)],
        "tools": versions,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "machine": platform.machine(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _stamp_path(store: ModelStore) -> Path:
    return store.directory / ".derived-build.json"


def up_to_date(store: ModelStore, digest: str) -> bool:
    """True when the last build here had these inputs and every recorded file verifies."""
    try:
        stamp = json.loads(_stamp_path(store).read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("input_sha256") != digest:
        return False
    try:
        record = variants.load_record(variants.record_path(store))
    except ModelError:
        return False
    for entry in record.values():
        path = store.directory / entry.name
        if not entry.available:
            continue
        if not path.is_file() or variants.sha256(path.read_bytes()) != entry.sha256:
            return False
    return bool(record)


@dataclass
class Built:
    """One derived file (``data`` empty when no recipe met the limits: then ``method``
    says so and the record marks the file unavailable)."""

    name: str
    source: str
    backend: str
    precision: str
    data: bytes
    method: str
    tools: str
    command: str
    check: str

    @property
    def available(self) -> bool:
        return bool(self.data)


def write(store: ModelStore, built: Sequence[Built], digest: str, record: Path) -> None:
    """Write the files, the record (``models/derived.toml``) and the input-hash stamp."""
    write_files(store, built)
    write_atomically(record, render_record(store, built, digest).encode())
    write_atomically(_stamp_path(store), json.dumps({"input_sha256": digest}, indent=1).encode())


def write_files(store: ModelStore, built: Sequence[Built]) -> None:
    """Write the built files (removing those no recipe made), and neither the record nor
    the stamp: what a partial build (``build(only=...)``) that matched the record writes."""
    for item in built:
        path = store.directory / item.name
        if item.available:
            write_atomically(path, item.data)
        else:
            path.unlink(missing_ok=True)


def render_record(store: ModelStore, built: Sequence[Built], digest: str) -> str:
    lines = [
        "# Derived models: written by `faced models build` (faced/vision/build/); do not edit.",
        "# Each file is derived from a verified bundle file (manifest.toml). Rebuild with the",
        "# tools below (`pip install -e '.[build]'`) and compare: the build is deterministic",
        '# for the same tool versions on the same machine kind (README, "Back ends").',
        "# available = false: no recipe met the accuracy limits; the back end refuses it.",
        "",
        "[build]",
        f'input_sha256 = "{digest}"',
        f'machine = "{platform.machine()}"',
        f'calibration = "{CALIBRATION_PACKAGE} sdist test photos '
        f'({", ".join(p.name for p in CALIBRATION_PHOTOS)}), {len(ANGLES)} angles x mirror"',
        "",
    ]
    for item in built:
        source = store.manifest.file(item.source)
        lines += [
            "[[files]]",
            f'name = "{item.name}"',
            f'source = "{item.source}"',
            f'source_sha256 = "{source.sha256}"',
            f'backend = "{item.backend}"',
            f'precision = "{item.precision}"',
            f"available = {'true' if item.available else 'false'}",
            f'sha256 = "{variants.sha256(item.data) if item.available else ""}"',
            f"size = {len(item.data)}",
            f"method = {json.dumps(item.method)}",
            f"tools = {json.dumps(item.tools)}",
            f"command = {json.dumps(item.command)}",
            f"check = {json.dumps(item.check)}",
            "",
        ]
    return "\n".join(lines)
