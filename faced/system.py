"""The daemon's contract with its host: logging set-up and systemd's notify protocol.

Owns:

* ``setup_logging`` — one line per event, ``key=value`` text or JSON, with the structured
  fields a caller passes through ``extra=``; under systemd with systemd-python installed,
  records go to journald natively (fields become upper-case journal fields).
* ``Notifier`` — ``READY=1`` / ``STATUS=…`` / ``STOPPING=1`` / ``WATCHDOG=1`` to the
  service manager: through ``systemd.daemon.notify`` when importable, otherwise by speaking
  the ``NOTIFY_SOCKET`` datagram protocol directly (path or abstract ``@`` socket).
* ``watchdog_ctx`` — the aiohttp cleanup context that pings the watchdog from an event-loop
  task every ``WATCHDOG_USEC / 2``: a blocked loop stops the pings, which is the point.

* ``Lifecycle`` and ``restart`` — how the daemon stops (a signal) or restarts (the system
  API): under systemd it exits with ``EX_RESTART`` for the unit's ``Restart=`` to start it
  again; started by hand it replaces itself with the same command line (``exec``).

systemd-python is imported lazily; nothing here needs it. Does not own: when the daemon
is ready or stopping (faced.app says so through ``NOTIFIER_KEY``), or the unit files
(systemd/). Why apart: the host's protocols are the same whatever the daemon runs, and are
tested without a daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final, Literal, NoReturn

from aiohttp import web

from faced.config import LoggingConfig
from faced.keys import NOTIFIER_KEY

log = logging.getLogger(__name__)

# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a caller attached with ``extra={...}``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text_value(value: Any) -> str:
    text = str(value)
    # Quote only when needed so that lines stay greppable; json.dumps escapes newlines,
    # which keeps every event (tracebacks included) on one line.
    if text and not any(c in text for c in ' "=\n\r\t\\'):
        return text
    return json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """``ts=… level=… logger=… msg="…" field=value …``, one line per event."""

    def __init__(self, *, timestamps: bool = True) -> None:
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.timestamps:
            parts.append(f"ts={_timestamp(record)}")
        parts += [
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_text_value(record.getMessage())}",
        ]
        parts += [f"{k}={_text_value(v)}" for k, v in record_fields(record).items()]
        if record.exc_info:
            parts.append(f"exc={_text_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event.update(record_fields(record))
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)


class _JournalFields(logging.Filter):
    """Copies structured fields to upper-case names: journald keeps only those."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in record_fields(record).items():
            if not key.isupper():
                setattr(record, f"FACED_{key.upper()}", value)
        return True


def under_journald(environ: Mapping[str, str] | None = None) -> bool:
    """True when stderr is connected to the journal (systemd sets JOURNAL_STREAM=dev:ino)."""
    environ = os.environ if environ is None else environ
    stream = environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{stat.st_dev}:{stat.st_ino}"


def _journal_handler() -> logging.Handler | None:
    try:
        journal = importlib.import_module("systemd.journal")
    except ImportError:
        return None
    handler: logging.Handler = journal.JournalHandler(SYSLOG_IDENTIFIER="faced")
    handler.addFilter(_JournalFields())
    return handler


def setup_logging(config: LoggingConfig, *, stream: Any = None) -> logging.Handler:
    """Install the one root handler faced logs through; returns it."""
    handler: logging.Handler | None = None
    if stream is None and under_journald():
        handler = _journal_handler()
        if handler is not None:
            handler.setFormatter(logging.Formatter("%(message)s"))
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        if config.format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            # journald stamps every line itself; a second timestamp is noise there.
            handler.setFormatter(KeyValueFormatter(timestamps=not under_journald()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level.upper())
    # aiohttp's own access log duplicates ours (faced.api.middlewares).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler


# --- systemd notify -----------------------------------------------------------------------


def _socket_address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # vsock and other forms: not for an appliance on a Pi


class Notifier:
    """Tells the service manager about our state; a no-op outside systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.address = _socket_address(environ.get("NOTIFY_SOCKET", ""))
        self._socket: socket.socket | None = None
        self._send: Callable[[str], object] | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, message: str) -> bool:
        """Send ``message`` (``READY=1`` etc.); never blocks, never raises."""
        if self.address is None:
            return False
        try:
            return self._sender()(message) is not False
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc, extra={"notify": message})
            return False

    def _sender(self) -> Callable[[str], object]:
        if self._send is None:
            try:
                self._send = importlib.import_module("systemd.daemon").notify
            except ImportError:
                self._send = self._send_datagram
        return self._send

    def _send_datagram(self, message: str) -> bool:
        if self.address is None:
            return False
        if self._socket is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)  # a full receive queue drops a ping, never stalls the loop
            self._socket = sock
        try:
            self._socket.sendto(message.encode(), self.address)
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when not asked."""
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (e.g. a wrapper that exec'd us)
    return int(usec) / 2 / 1_000_000


async def _ping_watchdog(notifier: Notifier, interval: float) -> None:
    while True:
        notifier.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


async def watchdog_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the notifier on the app, plus the watchdog task when systemd asks."""
    notifier = Notifier()
    app[NOTIFIER_KEY] = notifier
    interval = watchdog_interval() if notifier.enabled else None
    task: asyncio.Task[None] | None = None
    if interval is not None:
        task = asyncio.create_task(_ping_watchdog(notifier, interval), name="systemd-watchdog")
        log.info("systemd watchdog every %.3f s", interval)
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    notifier.close()


# --- stopping and restarting -------------------------------------------------------------

EX_RESTART: Final = 75
"""sysexits.h EX_TEMPFAIL: the exit status of a requested restart under systemd; the unit
(systemd/faced.service) counts it as success and restarts on it (RestartForceExitStatus)."""


def under_systemd(environ: Mapping[str, str] | None = None) -> bool:
    """True when a service manager started this process (it sets INVOCATION_ID, and
    NOTIFY_SOCKET for Type=notify): a restart is then its job."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("INVOCATION_ID") or environ.get("NOTIFY_SOCKET"))


class Lifecycle:
    """The daemon's stop request: a signal sets ``stop``; a restart request also sets
    ``restart``, and ``serve`` then returns ``EX_RESTART``."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.restart = False

    def how(self) -> Literal["systemd", "exec"]:
        return "systemd" if under_systemd() else "exec"

    def request_restart(self) -> None:
        log.info("restart requested", extra={"how": self.how()})
        self.restart = True
        self.stop.set()


def reexec() -> NoReturn:
    """Replace this process with the same command line (same pid, so a supervisor that
    is not systemd, or a shell, keeps it). The listening socket was closed by the clean
    shutdown before, and Python's descriptors are not inherited."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)
