"""The set-up `make test` leaves behind: the venv faced runs in, and the Debian test packages.

faced's venv must hold OpenCV's headless
build as its only cv2 and no MediaPipe: MediaPipe (the parity reference, in .venv-ref) asks
for OpenCV's GUI build, which needs X11 libraries a fresh or headless machine lacks
("libxcb.so.1: cannot open shared object file") and would replace the headless cv2 that
`faced serve` imports. And every Debian package the tests need is installed, so no test
elsewhere is skipped for a missing one.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent


def test_cv2_is_opencvs_headless_build() -> None:
    assert importlib.metadata.packages_distributions()["cv2"] == ["opencv-python-headless"]
    lines = cv2.getBuildInformation().splitlines()
    gui = [line.split(":", 1)[1].strip() for line in lines if line.strip().startswith("GUI:")]
    assert gui == ["NONE"], f"cv2 was built with a GUI: {gui}"


def test_mediapipe_is_not_importable_here() -> None:
    assert importlib.util.find_spec("mediapipe") is None, "MediaPipe belongs in .venv-ref"


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
