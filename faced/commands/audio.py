"""`faced audio devices`: the PortAudio output devices `audio.sink = "pyaudio:DEVICE"` can name.

Owns: parsing the arguments and printing. Does not own: the device listing
(faced.devices.audio). Without pyaudio (the ``audio`` extra) it prints one line saying how
to install it and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("audio", help="the speaker: list output devices")
    actions = parser.add_subparsers(dest="audio_action", metavar="ACTION", required=True)
    devices = actions.add_parser(
        "devices",
        help="list PortAudio output devices (index, name, channels, default rate)",
        description='Name one in audio.sink as "pyaudio:INDEX" or "pyaudio:NAME" (any part '
        "of the name, case-insensitive).",
    )
    devices.set_defaults(func=_devices)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """PortAudio's ALSA probing prints pages of warnings on stderr (fd 2) at start-up."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield None
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _devices(args: argparse.Namespace) -> int:
    from faced.devices.audio import PyAudioMissing, import_pyaudio, output_devices  # noqa: PLC0415

    try:
        pyaudio = import_pyaudio()
    except PyAudioMissing as exc:
        print(f"faced audio devices: {exc}", file=sys.stderr)
        return 1
    with _quiet_stderr():
        audio = pyaudio.PyAudio()
    try:
        devices = output_devices(audio)
        try:
            default = int(audio.get_default_output_device_info()["index"])
        except (OSError, KeyError):
            default = None
    finally:
        audio.terminate()
    if not devices:
        print("faced audio devices: no PortAudio output device found", file=sys.stderr)
        return 1
    for device in devices:
        mark = "*" if device["index"] == default else " "
        print(
            f"{mark}{device['index']:>3}  {device['name']}  "
            f"({device['channels']} ch, {device['rate']} Hz)"
        )
    return 0
