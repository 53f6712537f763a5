"""Face packs and the viewer config: GET /api/v1/presets, GET/PUT /api/config.

Owner: the viewer (issue 6). Face packs are Open Face ``.face.json`` files in
``faced/web/static/faces/`` (served to browsers as static files); their slug is the file
name without ``.face.json``. ``PUT /api/config {"face": slug}`` (API key when one is set)
switches every viewer live — the viewer socket carries ``{"type":"config","face":slug}`` —
and persists the choice in ``<state dir>/viewer.json`` so it survives restarts. The state
dir is ``server.state_dir``, else ``$STATE_DIRECTORY`` (systemd), else
``~/.local/state/faced``. A persisted slug whose pack is gone falls back to ``face.face``
with a warning; an unknown ``face.face`` stops startup (exit 78).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Final

import msgspec
from aiohttp import web

from faced.api import openapi
from faced.api.codec import read_body, respond
from faced.api.errors import ApiError
from faced.api.face_service import OPENFACE_KEY
from faced.config import Config, ConfigError
from faced.schemas.presets import (
    ConfigMessage,
    Preset,
    PresetList,
    ViewerConfig,
    ViewerConfigUpdate,
)

log = logging.getLogger(__name__)

FACES_DIR: Final = Path(__file__).resolve().parents[1] / "web" / "static" / "faces"
PACK_SUFFIX: Final = ".face.json"
COVER_SUFFIX: Final = ".cover.svg"
STATE_FILE: Final = "viewer.json"
_SLUG_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")
_MAX_PACK_BYTES: Final = 256 * 1024

ConfigListener = Callable[[ConfigMessage], None]


def state_dir(config: Config) -> Path:
    """Where API-changed settings persist (see ``server.state_dir``)."""
    if config.server.state_dir:
        return Path(config.server.state_dir).expanduser()
    systemd_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd_dir:
        return Path(systemd_dir)
    return Path.home() / ".local" / "state" / "faced"


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


def _read_persisted(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s: %s; using the configured face", path, exc)
        return None
    try:
        return msgspec.json.decode(raw, type=ViewerConfig).face
    except msgspec.DecodeError as exc:
        log.warning("ignoring %s: %s", path, exc)
        return None


def write_state_file(path: Path, data: bytes) -> None:
    """Write a file of the state dir atomically: a power cut leaves the old file or the new
    one, never half. Blocking: call it in a worker thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _write_persisted(path: Path, face: str) -> None:
    write_state_file(path, msgspec.json.encode(ViewerConfig(face=face)))


class Presets:
    """The installed packs, the face in use, and who hears about a change."""

    def __init__(self, config: Config, faces_dir: Path = FACES_DIR) -> None:
        self.presets: list[Preset] = []
        self.face = config.face.face
        self.configured_face = config.face.face
        self.faces_dir = faces_dir
        self.state_file = state_dir(config) / STATE_FILE
        self.listeners: list[ConfigListener] = []
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
        persisted = await asyncio.to_thread(_read_persisted, self.state_file)
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
            try:
                await asyncio.to_thread(_write_persisted, self.state_file, slug)
            except OSError as exc:
                log.error("cannot persist the face to %s: %s", self.state_file, exc)
                raise ApiError(
                    500, f"cannot save the setting in {self.state_file.parent}: {exc.strerror}"
                ) from None
            self.face = slug
        log.info("viewer face switched to %s", slug, extra={"face": slug})
        message = ConfigMessage(face=slug)
        for listener in self.listeners:
            listener(message)


PRESETS_KEY: Final = web.AppKey("presets", Presets)


async def list_presets(request: web.Request) -> web.StreamResponse:
    return respond(request, PresetList(presets=request.app[PRESETS_KEY].presets))


async def get_config(request: web.Request) -> web.StreamResponse:
    return respond(request, ViewerConfig(face=request.app[PRESETS_KEY].face))


async def put_config(request: web.Request) -> web.StreamResponse:
    update = await read_body(request, ViewerConfigUpdate)
    assert update is not None  # read_body refuses an empty body unless allow_empty
    presets = request.app[PRESETS_KEY]
    await presets.switch(update.face)
    return respond(request, ViewerConfig(face=presets.face))


async def _presets_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[PRESETS_KEY].load()
    yield


def setup(app: web.Application) -> None:
    """Register the preset and viewer-config routes; the packs load at startup."""
    from faced.app import CONFIG_KEY  # noqa: PLC0415  (faced.app imports this module)

    presets = app[PRESETS_KEY] = Presets(app[CONFIG_KEY])
    # Every viewer socket hears a switch; the Open Face hub fans it out (set up before us).
    presets.listeners.append(app[OPENFACE_KEY].hub.publish)
    app.cleanup_ctx.append(_presets_ctx)
    tags = ("viewer",)
    router = app.router
    openapi.describe(
        app,
        router.add_get("/api/v1/presets", list_presets),
        openapi.Operation(
            summary="The installed face packs (Open Face .face.json files)",
            description="Each pack is served at /static/faces/SLUG.face.json, its cover "
            "(when has_cover) at /static/faces/SLUG.cover.svg.",
            tags=tags,
            response=PresetList,
        ),
    )
    openapi.describe(
        app,
        router.add_get("/api/config", get_config),
        openapi.Operation(
            summary="The face pack every viewer shows", tags=tags, response=ViewerConfig
        ),
    )
    openapi.describe(
        app,
        router.add_put("/api/config", put_config),
        openapi.Operation(
            summary="Switch every viewer to another face pack, live; persisted",
            description='Viewers get {"type": "config", "face": SLUG} on /ws/viewer.',
            tags=tags,
            request=ViewerConfigUpdate,
            response=ViewerConfig,
            errors=(400,),
        ),
    )


__all__ = [
    "FACES_DIR",
    "PRESETS_KEY",
    "Presets",
    "scan_packs",
    "setup",
    "state_dir",
    "write_state_file",
]
