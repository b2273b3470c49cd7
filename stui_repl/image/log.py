"""The image's log: what gst writes on its stderr, kept for a person to read.

That is mostly output no workspace owns (a process whose client went away),
which may hold a secret, so it is masked like every other output: the
image's own token always, and the open session's secrets through `scrub`,
which whoever knows them sets (the session controller). gst writes into a
pipe, and a thread copies each complete line, masked, into
`<cache>/logs/image-PID-TIME.log`: mode 0600 in a private directory, made
only when there is something to keep, and only the newest few are kept.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .. import paths, trust

MASK = "********"
KEEP = 5  # logs kept, the newest
TAIL = 4096  # bytes of the end kept in memory, to explain a failed start
LONGEST_LINE = 1 << 20  # a line longer than this is masked in pieces


class ImageLog:
    """Copies one image's stderr into its log file, masked, until the pipe closes."""

    def __init__(self, stream: IO[bytes], token: str, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else paths.logs_dir()
        self.path = self.directory / f"image-{os.getpid()}-{time.time_ns()}.log"
        self.scrub: Callable[[str], str] | None = None
        self._token = token
        self._tail = b""
        self._file: IO[bytes] | None = None
        self._broken = False  # the log cannot be written: keep draining the pipe anyway
        self._thread = threading.Thread(target=self._copy, args=(stream,), name="stui-image-log", daemon=True)
        self._thread.start()

    def tail(self) -> bytes:
        """The last bytes written (masked), for the message when an image fails to start."""
        return self._tail

    def close(self, timeout: float = 0.5) -> None:
        """Wait for the copy to end, which it does when gst (and any child
        of it still holding its stderr) has gone."""
        self._thread.join(timeout)

    def _copy(self, stream: IO[bytes]) -> None:
        fd = stream.fileno()
        pending = b""
        try:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                pending += chunk
                cut = pending.rfind(b"\n") + 1
                if not cut and len(pending) > LONGEST_LINE:
                    cut = len(pending)
                if cut:
                    self._write(pending[:cut])
                    pending = pending[cut:]
            if pending:
                self._write(pending)
        finally:
            stream.close()
            if self._file is not None:
                self._file.close()

    def _mask(self, data: bytes) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        if self._token:
            text = text.replace(self._token, MASK)
        scrub = self.scrub
        if scrub is not None:
            text = scrub(text)
        return text.encode("utf-8", "surrogateescape")

    def _write(self, data: bytes) -> None:
        try:
            masked = self._mask(data)
        except Exception:  # noqa: BLE001 -- what cannot be masked is not kept
            masked = b"[stui: output left out: it could not be masked]\n"
        self._tail = (self._tail + masked)[-TAIL:]
        if self._broken:
            return
        try:
            if self._file is None:
                self._file = self._open()
            self._file.write(masked)
        except Exception:  # noqa: BLE001 -- a full disk, an untrusted directory: the image must not block
            self._broken = True

    def _open(self) -> IO[bytes]:
        trust.private_dir(self.directory)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        handle = os.fdopen(os.open(self.path, flags, 0o600), "ab", buffering=0)
        prune(self.directory, KEEP)
        return handle


def prune(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` logs. An image still writing to one
    that goes keeps writing to it unseen: the newest are what a person reads."""
    found = []
    for path in directory.glob("image-*.log"):
        try:
            found.append((path.stat().st_mtime, path))
        except OSError:
            continue
    found.sort(reverse=True)
    for _, path in found[keep:]:
        path.unlink(missing_ok=True)
