"""Giving memory back: glibc's free pages, a model file's mapped pages once its weights are
packed, and the pages of mapped libraries that only start-up touched.

Owns when and how the daemon returns resident memory it no longer uses (Linux; elsewhere
every call does nothing). Does not own what allocates it (the components, LiteRT, glibc).
Why: the box runs beside a browser; the daemon's resident set should be what serving uses.

Three calls, each safe whoever reads the pages afterwards:

* ``malloc_trim``: glibc keeps freed pages in its arenas; this returns them.
* ``release_file_pages(path)``: drops this process's pages of read-only *shared* mappings of
  one file (a model LiteRT mapped by path, whose weights XNNPACK has packed into its own
  buffers): clean pages of a shared file mapping come back from the page cache on the next
  access.
* ``release_cold_mappings()``: the same for every read-only file mapping (libraries'
  code and constants, `cv2`'s and LiteRT's 10 MiB each) that holds no private (copied-on-
  write) page, once start-up has settled (``settle``). What serving touches comes back at
  its next access (a minor fault, from the page cache) and stays; the rest (initialisers,
  bindings tables, code paths nobody calls) stays out. It changes no anonymous memory. A
  mapping is only advised when two scans ``STABLE_S`` apart saw it unchanged and the import
  lock is held meanwhile, so a library being loaded at that moment (whose relocated pages
  must not be dropped) is never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

MADV_DONTNEED: Final = 4
STABLE_S: Final = 1.0
"""How long a mapping must stay unchanged before ``release_cold_mappings`` advises it."""
SETTLE_S: Final = 5.0
"""After READY: the tracker's first frames, the demo camera's and the viewers' first
encodes have run by then (`faced bench memory` samples tracking 10 s after it)."""


@functools.cache  # one lookup of the C library per process, not one per call
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):
        return None
    return libc


def malloc_trim() -> None:
    """Hand glibc's free pages back to the system (no-op elsewhere)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@dataclass(frozen=True, slots=True)
class Mapping:
    start: int
    end: int
    perms: str
    device: int
    inode: int
    path: str
    anonymous_kib: int
    rss_kib: int


def mappings(smaps: str = "/proc/self/smaps") -> list[Mapping]:
    """This process's file mappings with their resident and anonymous KiB (empty where
    /proc is missing). Reading smaps makes the kernel walk every mapping's page tables
    (~10 ms in the daemon): ``file_mappings`` is the cheap call where sizes are not needed."""
    try:
        text = Path(smaps).read_text()
    except OSError:
        return []
    found: list[Mapping] = []
    head: list[str] | None = None
    rss = anonymous = 0

    def close() -> None:
        if head is not None and (mapping := _file_mapping(head, anonymous, rss)) is not None:
            found.append(mapping)

    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if not key.endswith(":"):  # a mapping's header: address perms offset dev inode path
            close()
            head = line.split(maxsplit=5)
            rss = anonymous = 0
        elif key == "Rss:":
            rss = int(rest.split()[0])
        elif key == "Anonymous:":
            anonymous = int(rest.split()[0])
    close()
    return found


def file_mappings(maps: str = "/proc/self/maps") -> list[Mapping]:
    """This process's file mappings without their sizes (``anonymous_kib`` and ``rss_kib``
    are 0): the headers ``mappings`` reads, at a thirtieth of its cost."""
    try:
        text = Path(maps).read_text()
    except OSError:
        return []
    return [
        mapping
        for line in text.splitlines()
        if (mapping := _file_mapping(line.split(maxsplit=5), 0, 0)) is not None
    ]


def _file_mapping(head: list[str], anonymous_kib: int, rss_kib: int) -> Mapping | None:
    """The mapping of one header line (address perms offset dev inode path), None unless
    it maps a file."""
    if len(head) != 6 or not head[5].startswith("/"):
        return None
    low, high = (int(part, 16) for part in head[0].split("-"))
    major, minor = (int(part, 16) for part in head[3].split(":"))
    device = os.makedev(major, minor)
    return Mapping(low, high, head[1], device, int(head[4]), head[5], anonymous_kib, rss_kib)


def _advise(ranges: list[tuple[int, int]]) -> int:
    libc = _libc()
    if libc is None:
        return 0
    advised = 0
    for start, end in ranges:
        if libc.madvise(start, end - start, MADV_DONTNEED) == 0:
            advised += end - start
    return advised


def release_file_pages(path: Path) -> int:
    """Drop this process's resident pages of each read-only shared mapping of the file at
    ``path``; the bytes advised."""
    try:
        identity = os.stat(path)
    except OSError:
        return 0
    return _advise(
        [
            (m.start, m.end)
            for m in file_mappings()
            if m.inode == identity.st_ino
            and m.device == identity.st_dev
            and m.perms == "r--s"  # shared, never writable: no private page to lose
        ]
    )


def _cold_candidates() -> dict[tuple[int, int, str, int, int], int]:
    return {
        (m.start, m.end, m.perms, m.device, m.inode): m.rss_kib
        for m in mappings()
        if "w" not in m.perms and m.anonymous_kib == 0 and m.rss_kib > 0
    }


def release_cold_mappings(stable_s: float = STABLE_S) -> int:
    """Drop the resident pages of every read-only file mapping without private pages that
    stayed unchanged for ``stable_s`` (blocking: call it off the event loop); the KiB that
    were resident in them."""
    import _imp  # noqa: PLC0415  (CPython's import lock: no extension is loaded meanwhile)

    first = _cold_candidates()
    time.sleep(stable_s)
    _imp.acquire_lock()
    try:
        second = _cold_candidates()
        stable = [key for key in second if key in first]
        _advise([(start, end) for start, end, *_ in stable])
    finally:
        _imp.release_lock()
    return sum(second[key] for key in stable)


def settle() -> int:
    """Once start-up has settled: both of the above (blocking); the KiB released from file
    mappings."""
    malloc_trim()
    return release_cold_mappings()


async def settle_after(delay_s: float = SETTLE_S) -> None:
    """``settle`` ``delay_s`` after now, on a worker thread; logged at debug."""
    # Imported here: the model runtime imports this module, and `faced analyze` (no event
    # loop) should not pay for asyncio.
    import asyncio  # noqa: PLC0415

    await asyncio.sleep(delay_s)
    with contextlib.suppress(OSError):
        released = await asyncio.to_thread(settle)
        log.debug("settled: %.1f MiB of mapped files released", released / 1024)
