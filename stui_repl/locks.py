"""One way to keep stui processes apart: an exclusive flock on a lock file.

Provisioning gst, building the server image and saving a session each take
one. The kernel drops an flock when its holder dies, however it dies, so a
killed stui never leaves a lock behind. The lock file is opened without
following a symlink: a link planted where stui keeps its locks is refused,
never followed to a file someone else chose, and one that is not yours (or
is writable by others) is refused too (trust.py).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import trust
from .errors import StuiError, Untrusted


class LockBusy(StuiError):
    """Another process held the lock for longer than we were willing to wait."""


@contextmanager
def exclusive(
    path: Path,
    *,
    timeout: float | None = None,
    busy: str = "",
    waiting: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created 0600) for the `with` body.

    With `timeout`, give up after that many seconds with LockBusy(`busy`);
    without, wait as long as it takes. `waiting` is called once, when the
    lock is not free at the first try (to say why stui is waiting).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Untrusted(f"refusing the lock file {path}: it is a symbolic link, which stui does not follow; remove it", "a symbolic link") from None
        if exc.errno == errno.EACCES:  # another user's file, say: say whose
            trust.stat_of(path, "the lock file")
        raise
    try:
        trust.check_open(fd, path, "the lock file")
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if waiting is not None and not told:
                waiting()
                told = True
            if deadline is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
                break
            if time.monotonic() > deadline:
                raise LockBusy(busy or f"{path} is locked by another process")
            time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the flock
