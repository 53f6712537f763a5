"""A real headless Chromium driven over the DevTools protocol, for the web page tests.

No extra dependency: Debian's ``chromium`` is started with
``--remote-debugging-port=0`` and a fresh profile, and aiohttp's WebSocket client speaks
CDP to it (one page target, flat sessions). ``Browser.page(url)`` opens a tab; a ``Page``
evaluates JavaScript, waits for conditions, takes screenshots and collects the page's
uncaught exceptions and console errors so tests can assert there were none.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import aiohttp

CHROMIUM_CANDIDATES: Final = ("chromium", "chromium-browser", "google-chrome")
ARTIFACTS_DIR: Final = Path(__file__).resolve().parents[1] / "test-artifacts"
_DEVTOOLS_RE: Final = re.compile(r"DevTools listening on (ws://\S+)")
_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    # Keep animation frames and timers running at full rate in a headless tab.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    explicit = os.environ.get("FACED_CHROMIUM")
    if explicit:
        return explicit
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class CdpError(RuntimeError):
    pass


class PageError(AssertionError):
    """JavaScript in the page threw, or a waited-for condition never held."""


class Page:
    def __init__(self, browser: Browser, session_id: str) -> None:
        self._browser = browser
        self.session_id = session_id
        self.errors: list[str] = []
        self._load = asyncio.Event()

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._browser.send(method, params, session_id=self.session_id)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self._load.set()
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            self.errors.append(str(exception.get("description") or details.get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(
                " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
            )
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error" and entry.get("source") != "network":
                self.errors.append(str(entry.get("text")))

    async def goto(self, url: str, seconds: float = 15.0) -> None:
        self._load.clear()
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise PageError(f"cannot open {url}: {result['errorText']}")
        async with asyncio.timeout(seconds):
            await self._load.wait()

    async def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` (awaited if it is a promise), as JSON."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise PageError(f"{expression[:80]!r} threw: {text}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, seconds: float = 10.0, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; its value. Fails naming ``what``."""
        last: Any = None
        try:
            async with asyncio.timeout(seconds):
                while True:
                    last = await self.evaluate(expression)
                    if last:
                        return last
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise PageError(
                f"timed out after {seconds} s waiting for {what or expression!r} "
                f"(last value {last!r}; page errors {self.errors})"
            ) from None

    async def screenshot(self, name: str) -> Path:
        """Save a PNG under test-artifacts/ (git-ignored) and return its path."""
        result = await self.send("Page.captureScreenshot", {"format": "png"})
        path = ARTIFACTS_DIR / f"{name}.png"
        data = base64.b64decode(result["data"])

        def write() -> None:
            ARTIFACTS_DIR.mkdir(exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(write)
        return path


class Browser:
    """One Chromium process with a throw-away profile."""

    def __init__(self, executable: str, width: int = 640, height: int = 480) -> None:
        self.executable = executable
        self.size = (width, height)
        self._process: asyncio.subprocess.Process | None = None
        self._profile: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._drain: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self.stderr_tail: list[str] = []

    async def start(self) -> None:
        self._profile = await asyncio.to_thread(tempfile.mkdtemp, prefix="faced-chromium-")
        width, height = self.size
        self._process = await asyncio.create_subprocess_exec(
            self.executable,
            *_FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its helpers share our process group id: one kill
        )
        url = await self._devtools_url()
        self._session = aiohttp.ClientSession()
        self._socket = await self._session.ws_connect(url, max_msg_size=64 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    async def _devtools_url(self) -> str:
        assert self._process is not None and self._process.stderr is not None
        async with asyncio.timeout(30):
            async for raw in self._process.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.stderr_tail = [*self.stderr_tail[-20:], line]
                match = _DEVTOOLS_RE.search(line)
                if match:
                    self._drain = asyncio.create_task(self._drain_stderr(), name="chromium-stderr")
                    return match.group(1)
        raise CdpError("chromium exited before DevTools listened:\n" + "\n".join(self.stderr_tail))

    async def _drain_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        async for raw in self._process.stderr:
            self.stderr_tail = [*self.stderr_tail[-20:], raw.decode(errors="replace").rstrip()]

    async def _read(self) -> None:
        assert self._socket is not None
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(CdpError(str(data["error"])))
                    else:
                        future.set_result(data.get("result", {}))
            else:
                page = self._pages.get(data.get("sessionId", ""))
                if page is not None:
                    page._event(data["method"], data.get("params", {}))
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(CdpError("browser connection closed"))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        assert self._socket is not None
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        payload: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            payload["sessionId"] = session_id
        await self._socket.send_str(json.dumps(payload))
        async with asyncio.timeout(30):
            return await future

    async def page(self, url: str | None = None) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank", "newWindow": True})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session_id] = page
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        width, height = self.size
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        if url is not None:
            await page.goto(url)
        return page

    async def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send("Browser.close"), 3)
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._session is not None:
            await self._session.close()
        process = self._process
        if process is not None:
            if process.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 3)
            # Helpers (zygote, GPU, renderers) are in the process group we started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        if self._profile is not None:
            await asyncio.to_thread(shutil.rmtree, self._profile, True)


@contextlib.asynccontextmanager
async def launched(executable: str, width: int = 640, height: int = 480) -> AsyncIterator[Browser]:
    browser = Browser(executable, width, height)
    try:
        await browser.start()
        yield browser
    finally:
        await browser.close()
