"""The Live Link Face CSV: the file Unreal's importer and Blender add-ons read.

Owns: Epic's 63 columns in Epic's order (``Timecode,BlendShapeCount``, the 52 shapes — note
``JawRight,JawLeft`` and ``MouthRight,MouthLeft`` —, then head and eye yaw, pitch, roll),
the row of one frame, the timecode and the file name ``<slate>_<take>_<subject>.csv``.
Does not own: the curves (faced.jobs.worker computes them and calls ``Writer.row``).

Why these rules (Epic's ``LiveLinkFaceImporterFactory`` and faceit's importer):
- Unreal aborts on a row with another field count than the header, and drops empty fields,
  so every field is filled. A frame without a face repeats the last face's values (zeros
  before the first face): a take with a blink of lost tracking does not snap to a neutral
  face (the curves JSON says ``face: false`` for those frames).
- Unreal reads ``HH:MM:SS:FF.fff`` with FF a fractional frame on a base it guesses: 60 when
  any frame number is above 30, else 30. Rows are written on a 60 base; a take so short
  that no frame number passes 30 is rewritten on a 30 base, which Unreal then guesses.
- faceit reads by position (``row[2:54]`` the shapes, then head, then eyes) in radians.
- Eye angles: faced measures gaze (-1..1), not angles; ``EYE_RANGE_RAD`` maps a full look
  to 30°, about how far eyes turn before the head follows. Eye roll is 0.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Final

from faced.schemas.analysis import Eyes
from faced.schemas.jobs import HeadAngles

BLENDSHAPE_COLUMNS: Final = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward",
    "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker",
    "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft",
    "MouthStretchRight", "MouthRollLower", "MouthRollUpper", "MouthShrugLower",
    "MouthShrugUpper", "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft",
    "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff",
    "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)  # fmt: skip
ROTATION_COLUMNS: Final = (
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)  # fmt: skip
HEADER: Final = ("Timecode", "BlendShapeCount", *BLENDSHAPE_COLUMNS, *ROTATION_COLUMNS)
BLENDSHAPE_COUNT: Final = 61
"""What Live Link Face writes in the second column: 52 shapes + 9 rotations."""
ARKIT_OF_COLUMN: Final = tuple(name[0].lower() + name[1:] for name in BLENDSHAPE_COLUMNS)
"""Each column's ARKit name (camelCase), as faced's results name the blendshapes."""
EYE_RANGE_RAD: Final = math.radians(30.0)
DAY_MS: Final = 24 * 3600 * 1000
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9-]+")


def timecode(t_s: float, base: int) -> str:
    """``HH:MM:SS:FF.fff`` of ``t_s`` seconds (from midnight) on a ``base`` fps frame base."""
    thousandths = round(t_s * base * 1000)
    whole_frames, fraction = divmod(thousandths, 1000)
    seconds, frame = divmod(whole_frames, base)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours:02d}:{minute:02d}:{second:02d}:{frame:02d}.{fraction:03d}"


def file_name(slate: str | None, take: int, subject: str) -> str:
    """``<slate>_<take>_<subject>.csv`` (Unreal's importer takes the subject's name from it:
    the parts keep only letters, digits and '-')."""
    return f"{_part(slate, 'take')}_{take}_{_part(subject, 'faced')}.csv"


def _part(text: str | None, fallback: str) -> str:
    cleaned = _UNSAFE.sub("-", text or "").strip("-")[:40]
    return cleaned or fallback


def _number(value: float) -> str:
    return f"{value:.6f}"


class Writer:
    """Writes one take's rows as they come, to a text file opened by the caller."""

    def __init__(self, out: IO[str], start_ms_of_day: int = 0) -> None:
        self._out = out
        self._start_s = (start_ms_of_day % DAY_MS) / 1000
        self._last: list[str] = [_number(0.0)] * (len(BLENDSHAPE_COLUMNS) + 9)
        self._times = array("d")
        self.rows = 0
        self._over_30 = False
        out.write(",".join(HEADER) + "\n")

    def row(
        self,
        t_s: float,
        blendshapes: Mapping[str, float] | None,
        head: HeadAngles | None,
        eyes: Eyes | None,
    ) -> None:
        """One frame: at ``t_s`` seconds into the take; None fields repeat the last face's."""
        if blendshapes is not None and head is not None and eyes is not None:
            values = [blendshapes.get(name, 0.0) for name in ARKIT_OF_COLUMN]
            values += [math.radians(head.yaw), math.radians(head.pitch), math.radians(head.roll)]
            for eye in (eyes.left, eyes.right):
                values += [eye.gaze[0] * EYE_RANGE_RAD, eye.gaze[1] * EYE_RANGE_RAD, 0.0]
            self._last = [_number(v) for v in values]
        at = self._start_s + t_s
        stamp = timecode(at, 60)
        if not self._over_30:
            # Times are kept only until the 60 base is safe (under a second of rows).
            self._times.append(at)
            if float(stamp.rsplit(":", 1)[1]) > 30:
                self._over_30 = True
                self._times = array("d")
        self._out.write(f"{stamp},{BLENDSHAPE_COUNT},{','.join(self._last)}\n")
        self.rows += 1

    def needs_30_base(self) -> bool:
        """True when no frame number passed 30 on the 60 base: Unreal would guess 30 fps
        and misplace every row, so the file must be rewritten on a 30 base."""
        return self.rows > 0 and not self._over_30

    def rebase_to_30(self, path: Path) -> None:
        """Rewrite the closed file ``path`` with its timecodes on a 30 base (a take under a
        second: a few rows)."""
        lines = path.read_text().splitlines()
        out = [lines[0]]
        for at, line in zip(self._times, lines[1:], strict=True):
            out.append(timecode(at, 30) + line[line.index(",") :])
        path.write_text("\n".join(out) + "\n")


__all__ = [
    "ARKIT_OF_COLUMN",
    "BLENDSHAPE_COLUMNS",
    "BLENDSHAPE_COUNT",
    "HEADER",
    "Writer",
    "file_name",
    "timecode",
]
