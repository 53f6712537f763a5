"""`faced serve`: load the config, then run the daemon (faced.app.run).

Owns: parsing the flags and reporting config errors as one line on stderr with exit status
78 (EX_CONFIG). Does not own: the daemon (faced.app) or the config's rules (faced.config).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from faced.config import EX_CONFIG, ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the daemon: the API, the face, the camera",
        description="Run the daemon. Settings: defaults < --config FILE < the settings "
        "changed through the API (state directory) < environment < flags.",
    )
    # Values stay strings here so that the config, not argparse, judges them (exit 78).
    parser.add_argument("--host", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--port", help="TCP port (default 9999, env PORT)")
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML config file (default /etc/faced/faced.toml if present)",
    )
    parser.add_argument(
        "--camera",
        metavar="SOURCE",
        help="camera: none, demo, file:PATH, v4l2:/dev/videoN, picamera2, gstreamer:PIPELINE",
    )
    parser.add_argument(
        "--display",
        metavar="DRIVER",
        help="display driver: auto (default), sysfs, wayland, wlr-randr, vcgencmd, none",
    )
    parser.add_argument(
        "--audio",
        metavar="SINK",
        help="speaker: none (default; viewers play audio), pyaudio[:DEVICE], wav:PATH",
    )
    parser.add_argument(
        "--no-mdns",
        action="store_true",
        help="do not announce the daemon on the LAN over mDNS (mdns.enabled = false)",
    )
    parser.set_defaults(func=_serve)


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides.setdefault("server", {})["host"] = args.host
    if args.port is not None:
        overrides.setdefault("server", {})["port"] = args.port
    if args.camera is not None:
        overrides.setdefault("camera", {})["source"] = args.camera
    if args.display is not None:
        overrides.setdefault("display", {})["driver"] = args.display
    if args.audio is not None:
        overrides.setdefault("audio", {})["sink"] = args.audio
    if args.no_mdns:
        overrides.setdefault("mdns", {})["enabled"] = False
    return overrides


def _serve(args: argparse.Namespace) -> int:
    from faced import app, config  # noqa: PLC0415  (keeps `faced --help` fast)

    try:
        layers = config.load_layers(args.config, overrides=cli_overrides(args))
        effective = layers.effective()
        app.check_supported(effective)
    except ConfigError as exc:
        print(f"faced serve: {exc}", file=sys.stderr)
        return EX_CONFIG
    return app.run(effective, layers)
