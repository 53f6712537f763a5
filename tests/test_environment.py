"""The set-up `make test` leaves behind: the venv faced runs in, and the Debian test packages.

faced's venv must hold OpenCV's headless build as its only cv2 and no MediaPipe, and what
`pip install faced` brings must carry none of the test, build or reference packages (the
runtime's dependency closure, read from the installed packages' metadata: what pip installs
is exactly that closure), nor may serving import them where they happen to be installed (the
test venv). MediaPipe (the parity reference, in .venv-ref) asks for OpenCV's GUI build,
which needs X11 libraries a fresh or headless machine lacks ("libxcb.so.1: cannot open
shared object file") and would replace the headless cv2 that `faced serve` imports. And
every Debian package the tests need is installed, so no test elsewhere is skipped for a
missing one.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def test_cv2_is_opencvs_headless_build() -> None:
    assert importlib.metadata.packages_distributions()["cv2"] == ["opencv-python-headless"]
    lines = cv2.getBuildInformation().splitlines()
    gui = [line.split(":", 1)[1].strip() for line in lines if line.strip().startswith("GUI:")]
    assert gui == ["NONE"], f"cv2 was built with a GUI: {gui}"


def test_mediapipe_is_not_importable_here() -> None:
    assert importlib.util.find_spec("mediapipe") is None, "MediaPipe belongs in .venv-ref"


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _extras_packages() -> set[str]:
    """Every package the optional extras name (test, build, mcp, onnx, …) and MediaPipe."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    return {_name(r) for group in extras.values() for r in group} | {"mediapipe"}


def _runtime_closure() -> set[str]:
    """The installed distributions `pip install .` pulls in: pyproject's dependencies, then
    each one's own requirements (extras and non-matching markers left out), transitively."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = _name(str(requirement))
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            todo.append(Requirement(text))
    return seen


def test_the_runtime_dependencies_carry_no_test_build_or_reference_package() -> None:
    closure = _runtime_closure()
    assert {"aiohttp", "numpy", "opencv-python-headless"} <= closure
    # What the runtime needs by itself (numpy, protobuf, …) may be an extra's too.
    assert (_extras_packages() - _runtime_needs(closure)) & closure == set()


def _runtime_needs(closure: set[str]) -> set[str]:
    return closure & {"numpy", "protobuf", "typing-extensions", "flatbuffers"}


SERVING_MODULES = ("faced.app", "faced.cli", "faced.commands.serve", "faced.devices.camera.demo")
NOT_FOR_SERVING = (
    "pytest", "mypy", "ruff", "PIL", "onnxruntime", "mcp", "openapi_spec_validator",
    "blockbuster", "mediapipe", "tensorflow", "onnx", "tf2onnx", "ai_edge_quantizer",
)  # fmt: skip


def test_serving_imports_no_test_or_reference_package() -> None:
    """Here the test extras are installed: the daemon's modules must still not import them."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {SERVING_MODULES!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    imported = set(json.loads(done.stdout))
    assert imported & set(NOT_FOR_SERVING) == set()


def test_the_debian_test_packages_are_installed() -> None:
    """What .ci/debian-packages.txt lists is installed (make test's system-deps step)."""
    listed = REPO / ".ci" / "debian-packages.txt"
    packages = [
        line.strip()
        for line in listed.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert packages
    dpkg_query = shutil.which("dpkg-query")
    assert dpkg_query is not None, "not a Debian system: install the equivalents of " + " ".join(
        packages
    )
    missing = []
    for package in packages:
        status = subprocess.run(
            [dpkg_query, "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        if status != "install ok installed":
            missing.append(package)
    assert missing == [], f"run make system-deps (or: sudo apt-get install -y {' '.join(missing)})"
