"""`faced config check [FILE]` and `faced config show`: validate and print the config.

Owns: the two subcommands' arguments and output. Does not own: the schema, loading or the
error wording (faced.config). ``check`` validates the whole effective configuration
(file, environment) without starting anything: "ok: FILE" and exit 0, or the one-line error
and exit 78. ``show`` prints the effective configuration, secrets masked, as TOML or JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from faced import config
from faced.config import EX_CONFIG, ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("config", help="check or show the configuration")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="validate a config file (and the environment) without starting"
    )
    check.add_argument("file", nargs="?", type=Path, help="default: /etc/faced/faced.toml")
    check.set_defaults(func=_check)
    show = actions.add_parser("show", help="print the effective config, secrets masked")
    show.add_argument("--config", type=Path, help="TOML config file")
    show.add_argument("--format", choices=("toml", "json"), default="toml")
    show.set_defaults(func=_show)


def _load(path: Path | None) -> config.Config:
    from faced.app import check_supported  # noqa: PLC0415

    effective = config.load(path)
    check_supported(effective)
    return effective


def _check(args: argparse.Namespace) -> int:
    path = args.file
    if path is None and config.DEFAULT_CONFIG_PATH.is_file():
        path = config.DEFAULT_CONFIG_PATH
    try:
        _load(path)
    except ConfigError as exc:
        print(f"faced config check: {exc}", file=sys.stderr)
        return EX_CONFIG
    print(f"ok: {path if path is not None else 'defaults and environment (no file)'}")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        effective = _load(args.config)
    except ConfigError as exc:
        print(f"faced config show: {exc}", file=sys.stderr)
        return EX_CONFIG
    data = config.to_dict(effective, mask_secrets=True)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        print(to_toml(data), end="")
    return 0


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # JSON string escapes are valid TOML


def to_toml(data: dict[str, Any]) -> str:
    """Sections of scalars as TOML, a nested section (audio.tts) as its own table after its
    parent's scalars; an unset (None) key is shown commented out."""
    lines: list[str] = []

    def table(name: str, values: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        nested = {key: value for key, value in values.items() if isinstance(value, dict)}
        for key, value in values.items():
            if key in nested:
                continue
            if value is None:
                lines.append(f"# {key} = (unset)")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
        for key, value in nested.items():
            table(f"{name}.{key}", value)

    for section, values in data.items():
        table(section, values)
    return "\n".join(lines)
