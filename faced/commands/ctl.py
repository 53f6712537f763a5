"""`faced ctl`: the operator's command line for a running daemon, here or across the LAN.

Owns: the arguments of ``faced ctl state|say|person|watch|health|history`` and what they
print (JSON: pretty for one answer, one line per event for ``watch``). Does not own the
calls: every one goes through faced.client's ``FaceClient``, so the command line and an
agent see the same results and the same errors. ``--url`` (env ``FACE_URL``) and
``--api-key`` (env ``FACE_API_KEY``) name the daemon and its key, as ``faced mcp`` does.
A refusal or an unreachable daemon prints one line on stderr and exits 1; a bad argument
exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from faced.commands import add_daemon_arguments

if TYPE_CHECKING:
    from faced.client import FaceClient

EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ctl",
        help="drive a running daemon: face state, speech, person events, health",
        description="Talk to a running faced daemon (this box or another on the LAN).",
    )
    add_daemon_arguments(parser, "its API key, when auth.api_key is set")
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="per request (default 30)"
    )
    actions = parser.add_subparsers(dest="ctl_action", metavar="ACTION", required=True)

    state = actions.add_parser(
        "state",
        help="show the face state, or change it",
        description="Without arguments, print the face state; with any, merge them into it "
        "and print the result. E.g. `faced ctl state thinking --emotion happy`.",
    )
    state.add_argument("state", nargs="?", help="idle, thinking, speaking, listening, …")
    _face_options(state)
    state.add_argument("--progress", type=float, help="0..1 (a progress bar)")
    state.add_argument("--color", help='"#RRGGBB"')
    state.add_argument("--look", type=_look, metavar="X,Y", help="gaze, each -1..1")
    state.add_argument("--reset", action="store_true", help="back to the default face first")
    state.set_defaults(func=_run(_state))

    say = actions.add_parser(
        "say",
        help="show a speech bubble and speak it (the daemon's text-to-speech, if any)",
        description="Start a speech (POST /api/speak) with TEXT; no audio follows, so a "
        "daemon with a speaker and espeak-ng speaks the text itself.",
    )
    say.add_argument("text")
    _face_options(say)
    say.add_argument("--state", help="the state while speaking (default speaking)")
    say.set_defaults(func=_run(_say))

    person = actions.add_parser("person", help="who is in front of the box now")
    person.set_defaults(func=_run(_person))

    watch = actions.add_parser(
        "watch",
        help="print person events as JSON lines (until interrupted)",
        description="Person events (arrived, left, attention_start, …) as JSON lines, "
        "reconnecting when the daemon restarts; --viewer prints what viewers get instead.",
    )
    watch.add_argument("--viewer", action="store_true", help="the viewers' messages instead")
    watch.add_argument("--count", type=_positive, metavar="N", help="stop after N messages")
    watch.set_defaults(func=_run(_watch))

    health = actions.add_parser("health", help="the daemon's health")
    health.set_defaults(func=_run(_health))
    history = actions.add_parser("history", help="recent state changes, texts, arrivals")
    history.set_defaults(func=_run(_history))


def _face_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--emotion", help="neutral, happy, sad, …")
    parser.add_argument("--intensity", type=float, help="0..1")
    parser.add_argument("--text", help="a speech bubble")
    parser.add_argument("--detail", help="a detail line")


def _look(value: str) -> dict[str, float]:
    try:
        x, y = (float(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (numbers -1..1), got {value!r}") from None
    return {"x": x, "y": y}


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


def _fields(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options the operator gave, as update fields (left out: unchanged)."""
    wire = {"look": "look_at"}
    return {
        wire.get(name, name): getattr(args, name)
        for name in names
        if getattr(args, name, None) is not None
    }


Action = Callable[["FaceClient", argparse.Namespace], Awaitable[None]]


def _run(action: Action) -> Callable[[argparse.Namespace], int]:
    """The command's ``func``: run ``action`` with a client; a failure is one line."""

    def func(args: argparse.Namespace) -> int:
        from faced.client import FaceClient, FacedError  # noqa: PLC0415 (faced --help stays fast)

        try:
            client = FaceClient(args.url, args.api_key, timeout_s=args.timeout)
        except ValueError as exc:
            print(f"faced ctl: {exc}", file=sys.stderr)
            return EXIT_USAGE

        async def main() -> None:
            async with client:
                await action(client, args)

        import asyncio  # noqa: PLC0415  (not at import: every command builds this parser)

        try:
            asyncio.run(main())
        except FacedError as exc:
            print(f"faced ctl: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        except BrokenPipeError:  # `faced ctl watch | head`: the reader has had enough
            sys.stderr.close()
        return 0

    return func


def _print(value: Any) -> None:
    import msgspec  # noqa: PLC0415

    print(msgspec.json.format(msgspec.json.encode(value), indent=2).decode(), flush=True)


async def _state(client: FaceClient, args: argparse.Namespace) -> None:
    update = _fields(args, "state", "emotion", "intensity", "text", "detail", "progress")
    update |= _fields(args, "color", "look")
    if args.reset:
        state = await client.set_state(type="reset")
    if update:
        state = await client.set_state(**update)
    elif not args.reset:
        state = await client.state()
    _print(state)


async def _say(client: FaceClient, args: argparse.Namespace) -> None:
    fields = _fields(args, "state", "emotion", "intensity", "detail")
    seq = await client.speak(args.text, expect_audio=False, **fields)
    _print({"seq": seq})


async def _person(client: FaceClient, args: argparse.Namespace) -> None:
    _print(await client.person())


async def _watch(client: FaceClient, args: argparse.Namespace) -> None:
    import msgspec  # noqa: PLC0415

    stream = client.viewer_messages() if args.viewer else client.person_events()
    async with contextlib.aclosing(stream):
        seen = 0
        async for message in stream:
            sys.stdout.write(msgspec.json.encode(message).decode() + "\n")
            sys.stdout.flush()
            seen += 1
            if args.count is not None and seen >= args.count:
                break


async def _health(client: FaceClient, args: argparse.Namespace) -> None:
    _print(await client.health())


async def _history(client: FaceClient, args: argparse.Namespace) -> None:
    _print(await client.history())
