"""Face packs: the installed ones, the one every viewer shows, and keeping that choice.

Owns: the packs — Open Face ``.face.json`` files in ``faced/web/static/faces/`` (served to
browsers as static files), their slug the file name without ``.face.json`` — and the face
in use: a switch is persisted in ``<state dir>/viewer.json`` (faced.state) so it survives
restarts, and told to every viewer (``{"type":"config","face":slug}`` through the Open
Face service). A persisted slug whose pack is gone falls back to ``face.face`` with a
warning; an unknown ``face.face`` stops startup (exit 78). Does not own: the routes
(faced.api.presets), where the choice is written (faced.state) or the packs' drawing (the
viewer's facepack.js). Why apart: the choice is the daemon's, shared by every viewer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

from aiohttp import web

from faced.api.errors import ApiError
from faced.config import Config, ConfigError
from faced.schemas.presets import ConfigMessage, Preset, ViewerConfig
from faced.state import StateFile, state_dir

log = logging.getLogger(__name__)

FACES_DIR: Final = Path(__file__).resolve().parent / "web" / "static" / "faces"
PACK_SUFFIX: Final = ".face.json"
COVER_SUFFIX: Final = ".cover.svg"
STATE_FILE: Final = "viewer.json"
_SLUG_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
_MAX_PACK_BYTES: Final = 256 * 1024


def scan_packs(faces_dir: Path) -> list[Preset]:
    """The installed face packs, sorted by slug; unreadable or malformed files are skipped."""
    found: list[tuple[str, str, bool]] = []
    for path in sorted(faces_dir.glob(f"*{PACK_SUFFIX}")):
        slug = path.name[: -len(PACK_SUFFIX)]
        if not _SLUG_RE.fullmatch(slug):
            log.warning("face pack %s skipped: its name is not a valid slug", path.name)
            continue
        try:
            if path.stat().st_size > _MAX_PACK_BYTES:
                raise ValueError(f"larger than {_MAX_PACK_BYTES} bytes")
            document = json.loads(path.read_text(encoding="utf-8"))
            meta = document.get("meta") if isinstance(document, dict) else None
            if not isinstance(meta, dict) or not isinstance(document.get("geometry"), dict):
                raise ValueError("expected an object with 'meta' and 'geometry'")
        except (OSError, ValueError) as exc:
            log.warning("face pack %s skipped: %s", path.name, exc)
            continue
        name = meta.get("name")
        has_cover = (faces_dir / f"{slug}{COVER_SUFFIX}").is_file()
        found.append((slug, name if isinstance(name, str) and name else slug, has_cover))
    return [
        Preset(preset_id=index, slug=slug, name=name, has_cover=cover)
        for index, (slug, name, cover) in enumerate(found, start=1)
    ]


class Presets:
    """The installed packs, the face in use, and who hears about a change."""

    def __init__(
        self,
        config: Config,
        publish: Callable[[ConfigMessage], None],
        faces_dir: Path = FACES_DIR,
    ) -> None:
        self.presets: list[Preset] = []
        self.face = config.face.face
        self.configured_face = config.face.face
        self.faces_dir = faces_dir
        self.state_file = StateFile(
            state_dir(config), STATE_FILE, ViewerConfig, fallback="the configured face"
        )
        self._publish = publish
        """Tells every viewer of a switch (the Open Face service, faced.openface)."""
        self._write_lock = asyncio.Lock()

    @property
    def slugs(self) -> list[str]:
        return [preset.slug for preset in self.presets]

    async def load(self) -> None:
        """Scan the packs and read the persisted choice (file I/O in a worker thread)."""
        self.presets = await asyncio.to_thread(scan_packs, self.faces_dir)
        slugs = self.slugs
        if self.configured_face not in slugs:
            raise ConfigError(
                f"face.face = {self.configured_face!r}: no such face pack; "
                f"expected one of {', '.join(slugs) or '(none installed)'}"
            )
        stored = await self.state_file.load()
        persisted = stored.face if stored is not None else None
        if persisted is not None and persisted not in slugs:
            log.warning(
                "persisted face %r is not installed; using %r", persisted, self.configured_face
            )
            persisted = None
        self.face = persisted or self.configured_face

    def check(self, slug: str) -> str:
        if slug not in self.slugs:
            raise ApiError(
                400,
                f"unknown face {slug!r}; allowed: {', '.join(self.slugs)}",
                extra={"field": "face", "allowed": self.slugs},
            )
        return slug

    async def switch(self, slug: str) -> None:
        self.check(slug)
        async with self._write_lock:  # writes land in request order
            await self.state_file.save(ViewerConfig(face=slug), "the face")
            self.face = slug
        log.info("viewer face switched to %s", slug, extra={"face": slug})
        self._publish(ConfigMessage(face=slug))

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: the packs and the persisted choice are loaded at startup."""
        del app
        await self.load()
        yield


__all__ = ["FACES_DIR", "Presets", "scan_packs"]
