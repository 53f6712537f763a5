"""`faced ctl`: the operator's command line for a running daemon, here or across the LAN.

Owns: the arguments of ``faced ctl state|say|person|watch|health|history`` and of the takes
(``take``, ``jobs``, ``job``), and what they print (JSON: pretty for one answer, one line
per event for ``watch`` and ``job --follow``; a take's progress on stderr when it is a
terminal). Does not own the calls: every one goes through faced.client's ``FaceClient``,
so the command line and an agent see the same results and the same errors. ``--url`` (env
``FACE_URL``) and ``--api-key`` (env ``FACE_API_KEY``) name the daemon and its key, as
``faced mcp`` does. A refusal, an unreachable daemon or a failed take prints one line on
stderr and exits 1; a bad argument exits 2; an interrupted wait exits 130 (the job goes
on).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from faced.commands import add_daemon_arguments, at_least

_POSITIVE = at_least(int, 1)
_WHOLE = at_least(int, 0)
_POSITIVE_NUMBER = at_least(float, 0, strict=True)

if TYPE_CHECKING:
    from faced.client import FaceClient
    from faced.client.face_client import JobFile
    from faced.schemas.jobs import Job

EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
"""As a shell reports a command ended by Ctrl-C (128 + SIGINT)."""
DOWNLOADS: Final = ("csv", "curves", "video")
"""A take's results that ``--csv``, ``--curves`` and ``--video`` save (FaceClient's
``download_job``)."""


class UsageError(Exception):
    """A bad argument found only once the action runs (two that exclude each other, a video
    file that is not there): one line, exit 2."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ctl",
        help="drive a running daemon: face state, speech, person events, health, takes",
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
    watch.add_argument("--count", type=_POSITIVE, metavar="N", help="stop after N messages")
    watch.set_defaults(func=_run(_watch))

    _register_takes(actions)

    health = actions.add_parser("health", help="the daemon's health")
    health.set_defaults(func=_run(_health))
    history = actions.add_parser("history", help="recent state changes, texts, arrivals")
    history.set_defaults(func=_run(_history))


def _register_takes(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    take = actions.add_parser(
        "take",
        help="queue a take: a video file, or seconds of the box's camera, into ARKit curves",
        description="Queue a take (POST /api/v1/jobs): VIDEO is uploaded as it is read, or "
        "--record SECONDS records from the box's camera. Prints the job; with --wait, "
        "follows it (progress on stderr when it is a terminal) and prints it finished. "
        "--csv, --curves and --video wait, then save the results. "
        "E.g. `faced ctl take smile.mp4 --label smile --csv`.",
    )
    take.add_argument("clip", nargs="?", metavar="VIDEO", help="the video file to upload")
    take.add_argument(
        "--record",
        type=_POSITIVE_NUMBER,
        metavar="SECONDS",
        help="record this long (1-600 s) from the box's camera instead",
    )
    take.add_argument("--label", help="the take's name (the CSV's slate)")
    take.add_argument(
        "--keep-video", action="store_true", help="keep the video on the box after processing"
    )
    take.add_argument(
        "--calibrated", action="store_true", help="apply the current expression calibration"
    )
    take.add_argument("--fps", type=_POSITIVE_NUMBER, metavar="N", help="take frames at this rate")
    take.add_argument("--wait", action="store_true", help="follow it until done or failed")
    _download_options(take, video_help="save the video (implies --keep-video)")
    take.set_defaults(func=_run(_take, check=_check_take))

    jobs = actions.add_parser(
        "jobs",
        help="the takes, newest first, a page at a time",
        description="The jobs newest first, as GET /api/v1/jobs pages them: "
        '{"jobs": [...], "total", "limit", "offset"}.',
    )
    jobs.add_argument(
        "--limit", type=_POSITIVE, default=20, metavar="N", help="per page, 1..100 (default 20)"
    )
    jobs.add_argument(
        "--offset", type=_WHOLE, default=0, metavar="N", help="skip the N newest (default 0)"
    )
    jobs.set_defaults(func=_run(_jobs))

    job = actions.add_parser(
        "job",
        help="one take: its status; wait for it, save its results, or delete it",
        description="Print job ID (status, progress, error, result). --wait follows it "
        "until done or failed; --follow prints it at each change as JSON lines; --csv, "
        "--curves and --video save its results (FILE, or a directory for the daemon's "
        "name: <slate>_<take>_<subject>.csv, .json, the video's extension); --delete "
        "cancels it and removes it and its files.",
    )
    job.add_argument("id", help="the job id (faced ctl jobs)")
    job.add_argument("--wait", action="store_true", help="follow it until done or failed")
    job.add_argument("--follow", action="store_true", help="print it at each change as JSON lines")
    _download_options(job, video_help="save the video (kept with --keep-video)")
    job.add_argument("--delete", action="store_true", help="cancel it and remove it and its files")
    job.set_defaults(func=_run(_job))


def _download_options(parser: argparse.ArgumentParser, *, video_help: str) -> None:
    helps = {
        "csv": "save the Live Link Face CSV",
        "curves": "save the curves (JSON: per frame the blendshapes, head, eyes)",
        "video": video_help,
    }
    for what in DOWNLOADS:
        parser.add_argument(
            f"--{what}",
            nargs="?",
            const=".",
            metavar="FILE",
            help=f"{helps[what]} to FILE, or into a directory under the daemon's name for it "
            "(default: here)",
        )


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


def _fields(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options the operator gave, as update fields (left out: unchanged)."""
    wire = {"look": "look_at"}
    return {
        wire.get(name, name): getattr(args, name)
        for name in names
        if getattr(args, name, None) is not None
    }


Action = Callable[["FaceClient", argparse.Namespace], Awaitable[int | None]]
"""An action prints its answer; it returns an exit status only when that is not 0 (a
failed take), having said why on stderr."""


def _run(
    action: Action, check: Callable[[argparse.Namespace], None] | None = None
) -> Callable[[argparse.Namespace], int]:
    """The command's ``func``: ``check`` the arguments (it raises UsageError), then run
    ``action`` with a client; a failure is one line."""

    def func(args: argparse.Namespace) -> int:
        from faced.client import FaceClient, FacedError  # noqa: PLC0415 (faced --help stays fast)

        try:
            if check is not None:
                check(args)
            client = FaceClient(args.url, args.api_key, timeout_s=args.timeout)
        except (UsageError, ValueError) as exc:
            print(f"faced ctl: {exc}", file=sys.stderr)
            return EXIT_USAGE

        async def main() -> int | None:
            async with client:
                return await action(client, args)

        import asyncio  # noqa: PLC0415  (not at import: every command builds this parser)

        try:
            return asyncio.run(main()) or 0
        except UsageError as exc:
            print(f"faced ctl: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except FacedError as exc:
            print(f"faced ctl: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
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


# --- takes (jobs) ----------------------------------------------------------------------------


def _check_take(args: argparse.Namespace) -> None:
    if (args.clip is None) == (args.record is None):
        raise UsageError("give a VIDEO file or --record SECONDS (one of them)")
    if args.clip is not None and not os.path.isfile(args.clip):
        raise UsageError(f"no video file {args.clip!r}")


async def _take(client: FaceClient, args: argparse.Namespace) -> int | None:
    downloads = _downloads(args)
    job_id = await client.submit_job(
        args.clip,
        record_s=args.record,
        label=args.label,
        keep_video=args.keep_video or "video" in downloads,
        calibrated=args.calibrated,
        fps=args.fps,
    )
    return await _show(client, job_id, args.wait or bool(downloads), downloads)


async def _jobs(client: FaceClient, args: argparse.Namespace) -> None:
    _print(await client.jobs(limit=args.limit, offset=args.offset))


async def _job(client: FaceClient, args: argparse.Namespace) -> int | None:
    downloads = _downloads(args)
    if args.delete:
        if args.wait or args.follow or downloads:
            raise UsageError("--delete goes alone (no --wait, --follow, --csv, --curves, --video)")
        await client.delete_job(args.id)
        _print({"id": args.id, "deleted": True})
        return None
    if args.follow:
        if args.wait or downloads:
            raise UsageError("--follow goes alone (no --wait, --csv, --curves, --video)")
        return await _follow(client, args.id)
    return await _show(client, args.id, args.wait, downloads)


def _downloads(args: argparse.Namespace) -> dict[JobFile, str]:
    """The results asked for: what -> FILE or directory."""
    return {what: getattr(args, what) for what in DOWNLOADS if getattr(args, what) is not None}


async def _show(
    client: FaceClient, job_id: str, wait: bool, downloads: dict[JobFile, str]
) -> int | None:
    """Print the job (once finished, with ``wait``) after saving ``downloads``; a failed job
    is printed too, then said in one line (exit 1)."""
    job = await _wait(client, job_id) if wait else await client.job(job_id)
    if job.status == "failed":
        _print(job)
        print(f"faced ctl: job {job.id} failed: {job.error}", file=sys.stderr)
        return EXIT_REFUSED
    if downloads and job.status != "done":
        print(
            f"faced ctl: job {job.id} is {job.status}: no results yet (--wait waits for them)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    saved = {
        what: str(await client.download_job(job_id, what, to)) for what, to in downloads.items()
    }
    if not saved:
        _print(job)
        return None
    import msgspec  # noqa: PLC0415

    _print({**msgspec.to_builtins(job), "saved": saved})
    return None


async def _wait(client: FaceClient, job_id: str) -> Job:
    """The job once done or failed, from its event stream; its progress on a terminal."""
    import asyncio  # noqa: PLC0415

    progress = _Progress()
    job = None
    try:
        async for job in client.job_events(job_id):
            progress.show(job)
    except asyncio.CancelledError:  # Ctrl-C: the job is the daemon's, it goes on
        progress.end()
        print(
            f"faced ctl: stopped waiting; job {job_id} goes on "
            f"(faced ctl job {job_id} --wait, or --delete)",
            file=sys.stderr,
        )
        raise
    progress.end()
    assert job is not None  # the stream ends only on a finished job (or raises)
    return job


async def _follow(client: FaceClient, job_id: str) -> int | None:
    import msgspec  # noqa: PLC0415

    job = None
    async for job in client.job_events(job_id):
        sys.stdout.write(msgspec.json.encode(job).decode() + "\n")
        sys.stdout.flush()
    if job is not None and job.status == "failed":
        print(f"faced ctl: job {job.id} failed: {job.error}", file=sys.stderr)
        return EXIT_REFUSED
    return None


class _Progress:
    """A job's progress as one line rewritten on stderr, only when stderr is a terminal
    (a script's stderr stays for errors)."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()
        self.width = 0

    def show(self, job: Job) -> None:
        if not self.on:
            return
        doing = "recording" if job.recording else job.status
        line = f"job {job.id}: {doing} {job.progress:4.0%}"
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = len(line)

    def end(self) -> None:
        if self.on and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
            self.width = 0
