"""Commands that arrive over MQTT, carried out exactly as the REST API would.

Owns: turning one command (entity key + payload) into the same service call, with the same
validation, size limit and rate limit as the matching route: ``state`` and ``emotion`` as
``POST /api/state``, ``say`` as ``POST /api/speak``, ``reset`` as ``{"type": "reset"}``,
``face`` as ``PUT /api/config``, ``display``/``brightness`` as ``PUT /api/display``,
``volume`` as ``POST /api/audio/volume``. A refusal is the route's ``ApiError`` (status and
sentence), which the link publishes on the box's error topic. Does not own: the services,
the topics or the connection (faced.mqtt.link). Why apart: one table of what each command
means, tested through a real broker against the REST API's answers.

Everyone who may publish to the command topics controls the box like an API-key holder:
the broker's users and ACLs are the key (docs/api.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import msgspec

from faced.api import display as display_routes
from faced.api.codec import decode_body
from faced.api.errors import ApiError
from faced.api.face_routes import refused
from faced.api.ratelimit import RateLimiter
from faced.display_policy import DisplayService
from faced.face.model import InvalidUpdate
from faced.face_packs import Presets
from faced.mqtt.discovery import OFF, ON, SAY_MAX_CHARS
from faced.openface import OpenFace
from faced.schemas.audio import VolumeUpdate
from faced.schemas.display import DisplayUpdate
from faced.schemas.face_state import SpeakRequest, StateUpdate
from faced.voice import SpeakerService

log = logging.getLogger(__name__)

RATE_KEY: Final = "mqtt"
"""The rate limiter's key of every command over MQTT: the link is one client of the box."""


@dataclass
class Commands:
    """The services a command reaches, and the REST API's limits."""

    openface: OpenFace
    presets: Presets
    display: DisplayService
    speaker: SpeakerService
    limiter: RateLimiter
    max_bytes: int
    """``limits.agent_message_max_bytes``, as POST /api/state."""

    async def run(self, key: str, payload: bytes) -> None:
        """Carry out one command; ``ApiError`` when refused (nothing changed)."""
        if len(payload) > self.max_bytes:
            raise ApiError(413, f"command too large: limit {self.max_bytes} bytes")
        wait = self.limiter.hit(RATE_KEY)
        if wait > 0:
            raise ApiError(429, f"too many commands: retry in {wait:.1f} s")
        handler = getattr(self, f"_{key}", None)
        if handler is None:
            raise ApiError(404, f"no command {key!r}")
        await handler(payload)

    async def _state(self, payload: bytes) -> None:
        # A state name (the select), or a whole POST /api/state body (automations).
        self._apply(self._update(payload, "state"))

    async def _emotion(self, payload: bytes) -> None:
        self._apply(self._update(payload, "emotion"))

    async def _reset(self, payload: bytes) -> None:
        del payload  # the button's PRESS
        self._apply(StateUpdate(type="reset"))

    async def _say(self, payload: bytes) -> None:
        if payload.lstrip().startswith(b"{"):
            request = decode_body(payload, "json", SpeakRequest, name_the_field=True)
        else:
            text = _text(payload)
            if not text.strip():
                raise ApiError(400, "nothing to say: expected text")
            if len(text) > SAY_MAX_CHARS:
                raise ApiError(413, f"text too long: at most {SAY_MAX_CHARS} characters")
            # No agent streams audio for it: the box's text-to-speech speaks it.
            request = SpeakRequest(text=text, expect_audio=False)
        try:
            self.openface.speak(request, request.expect_audio)
        except InvalidUpdate as exc:
            raise refused(exc) from None

    async def _face(self, payload: bytes) -> None:
        await self.presets.switch(_text(payload).strip())

    async def _display(self, payload: bytes) -> None:
        word = _text(payload).strip().upper()
        if word not in (ON, OFF):
            raise ApiError(400, f"display: expected {ON} or {OFF}, got {word!r}")
        await display_routes.change(self.display, DisplayUpdate(power=word == ON), "MQTT")

    async def _brightness(self, payload: bytes) -> None:
        body = b'{"brightness": ' + _number(payload) + b"}"
        update = decode_body(body, "json", DisplayUpdate, name_the_field=True)
        await display_routes.change(self.display, update, "MQTT")

    async def _volume(self, payload: bytes) -> None:
        body = b'{"volume": ' + _number(payload) + b"}"
        await self.speaker.set_volume(decode_body(body, "json", VolumeUpdate))

    def _update(self, payload: bytes, field: str) -> StateUpdate:
        if payload.lstrip().startswith(b"{"):
            body = payload
        else:
            body = msgspec.json.encode({field: _text(payload).strip()})
        return decode_body(body, "json", StateUpdate, name_the_field=True)

    def _apply(self, update: StateUpdate) -> None:
        try:
            self.openface.apply(update)
        except InvalidUpdate as exc:
            raise refused(exc) from None


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "command is not UTF-8 text") from None


def _number(payload: bytes) -> bytes:
    """A number as Home Assistant sends it ("42", "42.0"): whole numbers only, as the API."""
    text = _text(payload).strip()
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, f"expected a number 0-100, got {text!r}") from None
    if not value.is_integer():
        raise ApiError(400, f"expected a whole number 0-100, got {text!r}")
    return str(int(value)).encode()


__all__ = ["RATE_KEY", "Commands"]
