"""Giving memory back (faced.resident) on this very process: what is dropped, what never is,
and that everything still reads the same afterwards; and the models LiteRT maps by path."""

from __future__ import annotations

import ctypes
import mmap
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faced import resident
from faced.vision.models import ModelStore
from faced.vision.runtime import Runtime

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/smaps is Linux's")

PAGE = mmap.PAGESIZE


def _mapping_of(path: Path) -> resident.Mapping:
    identity = path.stat()
    (found,) = [m for m in resident.mappings() if m.inode == identity.st_ino]
    return found


def test_a_shared_file_mapping_is_dropped_and_reads_the_same_after(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    content = np.random.default_rng(1).integers(0, 256, 64 * PAGE, dtype=np.uint8).tobytes()
    path.write_bytes(content)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert m[:] == content  # every page resident now
        assert _mapping_of(path).rss_kib >= 64 * PAGE // 1024
        assert resident.release_file_pages(path) == len(content)
        assert _mapping_of(path).rss_kib == 0
        assert m[:] == content  # back from the page cache


def test_the_cheap_listing_names_the_same_file_mappings(tmp_path: Path) -> None:
    """file_mappings (/proc/self/maps, what release_file_pages reads) lists what mappings
    (/proc/self/smaps) does, only without the sizes."""
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x01" * 8 * PAGE)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ):
        cheap = resident.file_mappings()
        full = resident.mappings()
    assert [m for m in cheap if m.path == str(path)]  # the mapping made here is in it
    assert all(m.rss_kib == 0 and m.anonymous_kib == 0 for m in cheap)
    headers = {(m.start, m.end, m.perms, m.device, m.inode, m.path) for m in full}
    assert {(m.start, m.end, m.perms, m.device, m.inode, m.path) for m in cheap} == headers


def test_a_private_page_is_never_dropped(tmp_path: Path) -> None:
    """A copied-on-write page made read-only afterwards (what the loader does to a library's
    relocated constants) keeps what was written into it."""
    path = tmp_path / "library.bin"
    path.write_bytes(b"\x00" * 4 * PAGE)
    with path.open("r+b") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY) as m:
        m[PAGE] = 0x5A  # a private copy of the second page, not in the file
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        address = ctypes.addressof(ctypes.c_char.from_buffer(m))
        assert libc.mprotect(address, len(m), mmap.PROT_READ) == 0
        mapping = _mapping_of(path)
        assert mapping.perms == "r--p" and mapping.anonymous_kib > 0
        resident.release_cold_mappings(stable_s=0.0)
        assert resident.release_file_pages(path) == 0  # private: not even by name
        assert m[PAGE] == 0x5A
        assert path.read_bytes()[PAGE] == 0
        libc.mprotect(address, len(m), mmap.PROT_READ | mmap.PROT_WRITE)  # for close


def test_cold_library_pages_go_and_the_libraries_still_work() -> None:
    image = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)
    before = cv2.resize(image, (32, 24), interpolation=cv2.INTER_AREA)
    library = next(m for m in resident.mappings() if m.path.endswith(".so") and "cv2" in m.path)
    resident_before = sum(m.rss_kib for m in resident.mappings() if m.path == library.path)
    released = resident.release_cold_mappings(stable_s=0.0)
    assert released > 0
    after = sum(m.rss_kib for m in resident.mappings() if m.path == library.path)
    assert after < resident_before
    assert np.array_equal(cv2.resize(image, (32, 24), interpolation=cv2.INTER_AREA), before)


def test_litert_maps_the_verified_model_and_gives_its_pages_back() -> None:
    store = ModelStore()
    path = store.path("face_landmarks_detector.tflite").resolve()
    inode = path.stat().st_ino

    def starts() -> set[int]:
        return {m.start for m in resident.mappings() if m.inode == inode}

    # Other tests in this process may hold the same model mapped: this runtime's mapping is
    # the one that was not there before.
    before = starts()
    runtime = Runtime()
    model = runtime.open(store, "face_landmarks_detector.tflite")
    (start,) = starts() - before

    def mapping() -> resident.Mapping:
        (found,) = [m for m in resident.mappings() if m.start == start]
        return found

    assert mapping().perms == "r--s"
    size_kib = store.manifest.file("face_landmarks_detector.tflite").size // 1024
    # The flatbuffer's tables LiteRT still reads come back; the packed weights do not.
    model.run([np.zeros(t.shape, t.dtype) for t in model.inputs])
    assert mapping().rss_kib < size_kib // 4
    (loaded,) = runtime.loaded
    assert loaded.sha256 == store.manifest.file("face_landmarks_detector.tflite").sha256


def test_the_opened_model_is_the_verified_one_even_when_replaced(tmp_path: Path) -> None:
    installed = ModelStore()
    for entry in installed.manifest.files:
        shutil.copy(installed.path(entry.name), tmp_path / entry.name)
    store = ModelStore(tmp_path, installed.manifest)
    name = "face_blendshapes.tflite"
    with store.open(name) as (held, data):
        replacement = tmp_path / "replacement"
        replacement.write_bytes(b"not a model")
        os.replace(replacement, tmp_path / name)  # an update swaps the file meanwhile
        assert held.read_bytes() == data
