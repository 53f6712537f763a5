"""Shared test fixtures: the real daemon on loopback, and a guard against blocking the loop.

These names are stable; every test module may use them.

``make_config(**sections) -> Config``
    A validated ``faced.config.Config`` from per-section overrides, e.g.
    ``make_config(auth={"api_key": "k"}, limits={"requests_per_s": 5})``. It reads no file
    and no environment; ``server.host`` is 127.0.0.1, ``display.driver`` none and
    ``mdns.enabled`` false (a test never multicasts on the machine's network).

``faced_client(config=None, *, prepare=None, **sections) -> TestClient`` (async factory)
    Builds the real app with ``faced.app.create_app(config)`` (or ``make_config(**sections)``),
    calls ``prepare(app)`` if given (to add a test-only route), serves it on a free loopback
    port (aiohttp's TestServer; startup and cleanup contexts run) and returns a real
    HTTP/WebSocket client for it::

        client = await faced_client(auth={"api_key": "k"})
        response = await client.get("/health")
        ws = await client.ws_connect("/ws/viewer")

    ``client.app`` is the application (``client.app[HEALTH_KEY]`` …), ``client.server``
    the server (``client.make_url(path)``). Closed at teardown.

``run_faced(*args, env=None, config_text=None, wait=True, mdns=False) -> FacedProcess``
    (async factory) Runs the real ``python -m faced serve --host 127.0.0.1 --port <free>
    --camera none --display none [--no-mdns] [args]`` as a subprocess (``config_text``, if
    given, is written to a file passed as ``--config``), and with ``wait`` waits until GET
    /health answers. ``mdns=True`` lets it announce: only inside a private network namespace.
    See ``FacedProcess`` for ``url``, ``port``, ``stderr_lines``, ``terminate()`` and
    ``wait_exit(seconds)``. Killed at teardown if still running. For SIGTERM, exit status
    and systemd notify tests.

``free_port() -> int``
    A TCP port free on 127.0.0.1 right now.

``browser`` (async) and ``browser_size``
    A real headless Chromium (``tests/browser.py``) with a window of ``browser_size``
    (width, height; 640 x 480 unless a test module overrides the ``browser_size`` fixture),
    closed at teardown. Skipped only where Chromium is not installed, which ``make test``
    never allows (its system-deps step installs Debian's chromium).

``tiny_disk``
    A 256 KiB tmpfs mounted for the test (root only; skipped saying why elsewhere): a state
    directory that ``tests.helpers.fill_disk`` fills to the last byte.

``own_state_dir`` (autouse)
    Points ``$STATE_DIRECTORY`` at a fresh directory of the test's own, so
    what an app or a ``run_faced`` daemon without ``server.state_dir`` persists (volume,
    face pack, calibration, jobs) stays the test's: never the developer's
    ~/.local/state/faced, never seen by a test running beside it (make pytest's workers).

``blockbuster`` (autouse)
    Fails a test with ``BlockingError`` when code under ``faced/`` or ``tests/`` makes a
    blocking call (file I/O, time.sleep, blocking sockets, …) while an event loop is running
    in that thread. Sync tests are unaffected. Do file I/O in async tests with
    ``await asyncio.to_thread(...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from blockbuster import BlockBuster, blockbuster_ctx

import faced
from faced.app import create_app
from faced.config import Config, validate
from tests.browser import Browser, find_chromium, launched

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(sections: Mapping[str, Mapping[str, Any]]) -> Config:
    # display.driver none: a test never dims or switches off the screen of the machine it
    # runs on; display tests pass their own temp sysfs tree or tools. mdns off: a test never
    # multicasts (tests/test_discovery.py announces inside a private network namespace).
    raw: dict[str, Any] = {
        "server": {"host": "127.0.0.1"},
        "display": {"driver": "none"},
        "mdns": {"enabled": False},
    }
    for section, values in sections.items():
        raw[section] = {**raw.get(section, {}), **values}
    return validate(raw, "test config")


@pytest.fixture
def make_config() -> Callable[..., Config]:
    def factory(**sections: Mapping[str, Any]) -> Config:
        return _config(sections)

    return factory


FacedClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def faced_client(aiohttp_client: Any) -> FacedClientFactory:
    async def factory(
        config: Config | None = None,
        *,
        prepare: Callable[[web.Application], None] | None = None,
        **sections: Mapping[str, Any],
    ) -> TestClient[web.Request, web.Application]:
        if config is None:
            config = _config(sections)
        elif sections:
            raise TypeError("pass either a Config or section overrides, not both")
        app = create_app(config)
        if prepare is not None:
            prepare(app)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return factory


class FacedProcess:
    """A running ``faced serve`` subprocess on 127.0.0.1."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.stderr_lines: list[str] = []
        self._reader = asyncio.create_task(self._read_stderr(), name="faced-stderr")

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.stderr_lines.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    async def wait_healthy(self, seconds: float = 15.0) -> None:
        """Poll GET /health until it answers 200; fails if the process exits first."""
        async with asyncio.timeout(seconds), aiohttp.ClientSession() as session:
            while True:
                if self.process.returncode is not None:
                    await self._reader
                    raise AssertionError(
                        f"faced exited with {self.process.returncode}:\n{self.stderr}"
                    )
                try:
                    async with session.get(f"{self.url}/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, seconds: float = 10.0) -> int:
        async with asyncio.timeout(seconds):
            returncode = await self.process.wait()
            await self._reader
        return returncode

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


# Settings from the developer's shell must not leak into the daemon under test.
_NOT_INHERITED = frozenset(
    {"PORT", "FACE_API_KEY", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}
    | {"CREDENTIALS_DIRECTORY", "JOURNAL_STREAM"}
)

RunFaced = Callable[..., Awaitable[FacedProcess]]


@pytest.fixture
async def run_faced(tmp_path: Path) -> AsyncIterator[RunFaced]:
    started: list[FacedProcess] = []

    async def factory(
        *args: str,
        env: Mapping[str, str] | None = None,
        config_text: str | None = None,
        wait: bool = True,
        port: int | None = None,
        mdns: bool = False,
    ) -> FacedProcess:
        port = free_port() if port is None else port
        command = [sys.executable, "-m", "faced", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--camera", "none", "--display", "none"]
        if not mdns:  # a test never multicasts unless it runs in its own network namespace
            command.append("--no-mdns")
        if config_text is not None:
            path = tmp_path / f"faced-{len(started)}.toml"
            await asyncio.to_thread(path.write_text, config_text)
            command += ["--config", str(path)]
        command += list(args)
        child_env = {
            key: value
            for key, value in os.environ.items()
            if key not in _NOT_INHERITED and not key.startswith("OPENCLAW_")
        }
        child_env["PYTHONPATH"] = str(REPO_ROOT)
        child_env.update(env or {})
        process = await asyncio.create_subprocess_exec(
            *command,
            env=child_env,
            cwd=str(tmp_path),  # not the checkout: nothing picked up from the working dir
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        faced_process = FacedProcess(process, port)
        started.append(faced_process)
        if wait:
            await faced_process.wait_healthy()
        return faced_process

    yield factory
    for faced_process in started:
        await faced_process.kill()


def _scanned_modules() -> list[types.ModuleType]:
    # The tests directory need not be a package; a stand-in module names its path.
    tests = types.ModuleType("tests")
    tests.__path__ = [str(TESTS_DIR)]
    return [faced, tests]


@pytest.fixture(autouse=True)
def own_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    # Beside tmp_path, not in it: tests make their own tmp_path / "state" and list tmp_path.
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    return state


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    with blockbuster_ctx(_scanned_modules()) as detector:
        # Known, harmless blocking in aiohttp itself (as aiohttp's own suite allows).
        for func in ("io.TextIOWrapper.read", "os.stat"):
            detector.functions[func].can_block_in("aiohttp/client_reqrep.py", "update_auth")
        for func in ("os.getcwd", "os.readlink", "os.stat", "os.path.abspath", "os.path.samestat"):
            detector.functions[func].can_block_in("aiohttp/web_urldispatcher.py", "add_static")
        yield detector


@pytest.fixture
def browser_size() -> tuple[int, int]:
    """The browser window's (width, height); override this fixture in a module to change it."""
    return (640, 480)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium's executable (looked up outside any event loop: it stats the PATH)."""
    found = find_chromium()
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium; see make system-deps)")
    return found


@pytest.fixture
async def browser(chromium: str, browser_size: tuple[int, int]) -> AsyncIterator[Browser]:
    async with launched(chromium, *browser_size) as running:
        yield running


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (tests.helpers.tiny_tmpfs; skipped where it cannot be mounted, as
    when not root): a state directory that ``tests.helpers.fill_disk`` fills at once."""
    from tests.helpers import tiny_tmpfs  # noqa: PLC0415

    with tiny_tmpfs(tmp_path / "tiny-disk") as mounted:
        yield mounted


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long_only`` run under `make soak` / `make fuzz` (FACED_LONG_RUNS=1);
    elsewhere they are deselected (reported in the summary), not skipped one by one."""
    if os.environ.get("FACED_LONG_RUNS") == "1":
        return
    long_only = [item for item in items if item.get_closest_marker("long_only")]
    if long_only:
        config.hook.pytest_deselected(items=long_only)
        items[:] = [item for item in items if not item.get_closest_marker("long_only")]
