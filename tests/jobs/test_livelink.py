"""The Live Link Face writer alone: columns, timecodes on the base Unreal guesses, names."""

from __future__ import annotations

import io
from pathlib import Path

from faced.jobs import livelink
from faced.schemas.analysis import Eye, Eyes
from faced.schemas.jobs import HeadAngles
from faced.vision.blendshapes import ARKIT_NAMES
from tests.api.livelink_reader import EPIC_HEADER, read_like_faceit, read_like_unreal

EYES = Eyes(left=Eye(gaze=(0.5, -0.2), openness=1.0), right=Eye(gaze=(0.4, -0.1), openness=1.0))


def test_the_columns_are_epics_and_cover_the_52_arkit_names() -> None:
    assert list(livelink.HEADER) == EPIC_HEADER and len(EPIC_HEADER) == 63
    assert sorted(livelink.ARKIT_OF_COLUMN) == sorted(ARKIT_NAMES)
    assert EPIC_HEADER.index("JawRight") + 1 == EPIC_HEADER.index("JawLeft")
    assert EPIC_HEADER.index("MouthRight") + 1 == EPIC_HEADER.index("MouthLeft")


def test_timecodes_are_fractional_frames_and_carry_over() -> None:
    assert livelink.timecode(0.0, 60) == "00:00:00:00.000"
    assert livelink.timecode(3661.5, 60) == "01:01:01:30.000"
    assert livelink.timecode(59.999999, 60) == "00:01:00:00.000"  # rounds into the minute
    assert livelink.timecode(1 / 45, 30) == "00:00:00:00.667"


def test_a_take_under_half_a_second_is_written_on_the_30_base_unreal_guesses(
    tmp_path: Path,
) -> None:
    path = tmp_path / "short.csv"
    times = [i / 24 for i in range(10)]  # 0.375 s: no 60-base frame number passes 30
    with path.open("w") as out:
        writer = livelink.Writer(out)
        for t in times:
            shapes = dict.fromkeys(ARKIT_NAMES, 0.25) | {"jawRight": 0.5}
            writer.row(t, shapes, HeadAngles(yaw=10, pitch=0, roll=0), EYES)
    assert writer.needs_30_base()
    writer.rebase_to_30(path)
    text = path.read_text()
    take = read_like_unreal(text, "s_1_box.csv")
    assert take.fps == 30
    assert all(abs(a - b) < 1e-4 for a, b in zip(take.times, times, strict=True))
    [row, *_] = read_like_faceit(text)
    assert row.shapes["JawRight"] == 0.5 and row.shapes["JawLeft"] == 0.25
    assert abs(row.head[0] - 0.174533) < 1e-6 and abs(row.left_eye[0] - 0.261799) < 1e-6


def test_frames_without_a_face_repeat_the_last_face_and_fill_every_field() -> None:
    out = io.StringIO()
    writer = livelink.Writer(out, start_ms_of_day=13 * 3600 * 1000)
    writer.row(0.0, None, None, None)
    writer.row(0.6, dict.fromkeys(ARKIT_NAMES, 0.5), HeadAngles(yaw=0, pitch=0, roll=0), EYES)
    writer.row(1.0, None, None, None)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("13:00:00:00.000,61,0.000000,")
    assert lines[2].startswith("13:00:00:36.000,61,0.500000")
    assert lines[3].split(",")[1:] == lines[2].split(",")[1:]
    assert not writer.needs_30_base()


def test_file_names_keep_the_three_parts_apart() -> None:
    assert livelink.file_name("smile test_2", 7, "box.local") == "smile-test-2_7_box-local.csv"
    assert livelink.file_name(None, 1, "") == "take_1_faced.csv"
