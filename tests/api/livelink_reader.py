"""Readers of a Live Link Face CSV as its two kinds of consumers read it (test helpers).

``read_like_unreal`` follows Epic's ``LiveLinkFaceImporterFactory``: column 0 must be
``Timecode`` and column 1 ``BlendShapeCount``; each line is split on ',' with empty fields
dropped and must have exactly as many fields as the header (else the import aborts); the
timecode ``hh:mm:ss:frame.zzz`` is split on ':' and the 4th token is a fractional frame;
the frame rate is guessed, 60 if any frame number is above 30, else 30; each row's time is
``h*3600 + m*60 + s + frame/fps``; the subject is the file name's third '_' part. Other
columns are taken by name. ``read_like_faceit`` follows faceit's ``EpicMocapImporter``,
positional: ``row[2:54]`` the 52 shapes in Epic's order, ``row[54:57]`` head yaw, pitch,
roll, eyes at ``row[57:59]`` and ``row[60:62]``; rows whose BlendShapeCount is 0 skipped.
Written from those rules here, not from faced's writer.
"""

from __future__ import annotations

from dataclasses import dataclass

EPIC_SHAPES = [
    "EyeBlinkLeft",
    "EyeLookDownLeft",
    "EyeLookInLeft",
    "EyeLookOutLeft",
    "EyeLookUpLeft",
    "EyeSquintLeft",
    "EyeWideLeft",
    "EyeBlinkRight",
    "EyeLookDownRight",
    "EyeLookInRight",
    "EyeLookOutRight",
    "EyeLookUpRight",
    "EyeSquintRight",
    "EyeWideRight",
    "JawForward",
    "JawRight",
    "JawLeft",
    "JawOpen",
    "MouthClose",
    "MouthFunnel",
    "MouthPucker",
    "MouthRight",
    "MouthLeft",
    "MouthSmileLeft",
    "MouthSmileRight",
    "MouthFrownLeft",
    "MouthFrownRight",
    "MouthDimpleLeft",
    "MouthDimpleRight",
    "MouthStretchLeft",
    "MouthStretchRight",
    "MouthRollLower",
    "MouthRollUpper",
    "MouthShrugLower",
    "MouthShrugUpper",
    "MouthPressLeft",
    "MouthPressRight",
    "MouthLowerDownLeft",
    "MouthLowerDownRight",
    "MouthUpperUpLeft",
    "MouthUpperUpRight",
    "BrowDownLeft",
    "BrowDownRight",
    "BrowInnerUp",
    "BrowOuterUpLeft",
    "BrowOuterUpRight",
    "CheekPuff",
    "CheekSquintLeft",
    "CheekSquintRight",
    "NoseSneerLeft",
    "NoseSneerRight",
    "TongueOut",
]
EPIC_HEADER = [
    "Timecode",
    "BlendShapeCount",
    *EPIC_SHAPES,
    *["HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll"],
    *["RightEyeYaw", "RightEyePitch", "RightEyeRoll"],
]


@dataclass
class UnrealTake:
    subject: str
    fps: int
    times: list[float]
    """Seconds from the first row."""
    values: list[dict[str, float]]
    """Each row's properties by column name."""


def read_like_unreal(text: str, file_name: str) -> UnrealTake:
    lines = text.splitlines()
    header = [f for f in lines[0].split(",") if f]
    assert header == EPIC_HEADER, "the header is not Epic's 63 columns in Epic's order"
    assert len(header) >= 3
    stamps: list[tuple[int, int, int, float]] = []
    values = []
    for number, line in enumerate(lines[1:], 2):
        fields = [f for f in line.split(",") if f]
        assert len(fields) == len(header), f"line {number}: {len(fields)} fields, the import aborts"
        tokens = fields[0].split(":")
        assert len(tokens) == 4, f"line {number}: timecode {fields[0]!r}"
        stamps.append((int(tokens[0]), int(tokens[1]), int(tokens[2]), float(tokens[3])))
        values.append({name: float(v) for name, v in zip(header[2:], fields[2:], strict=True)})
    fps = 60 if any(frame > 30 for *_, frame in stamps) else 30
    absolute = [h * 3600 + m * 60 + s + frame / fps for h, m, s, frame in stamps]
    parts = file_name.removesuffix(".csv").split("_")
    assert len(parts) == 3, f"{file_name} is not <slate>_<take>_<subject>.csv"
    return UnrealTake(
        subject=parts[2],
        fps=fps,
        times=[t - absolute[0] for t in absolute],
        values=values,
    )


@dataclass
class FaceitRow:
    shapes: dict[str, float]
    head: tuple[float, float, float]
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]


def read_like_faceit(text: str) -> list[FaceitRow]:
    rows = []
    for line in text.splitlines()[1:]:
        row = line.split(",")
        if float(row[1]) == 0:
            continue
        numbers = [float(v) for v in row[2:]]
        rows.append(
            FaceitRow(
                shapes=dict(zip(EPIC_SHAPES, numbers[0:52], strict=True)),
                head=(numbers[52], numbers[53], numbers[54]),
                left_eye=(float(row[57]), float(row[58])),
                right_eye=(float(row[60]), float(row[61])),
            )
        )
    return rows
