"""Child processes that never outlive stui.

An embedded image quits when its stdin closes, but gst 3.2.5 does not notice
that while it computes: a `[true] whileTrue` image outlived a stui killed by
any signal. So on Linux every child also asks the kernel to kill it when its
parent goes (PR_SET_PDEATHSIG). The kernel means the parent *thread*: a
child started from a short-lived thread (a reconnect attempt) would be killed
when that thread ends, so long-lived children are started by one spawner
thread that lives as long as stui does.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols include libc's; find_library would run ldconfig.
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up before any fork: the child must not load libraries or take locks.
_prctl = _load_prctl()


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec_fn for children of `parent` (this process)."""
    if _prctl is None:
        return None
    prctl = _prctl

    def arrange() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return arrange


def run(argv: list[str], *, check: bool = False, **options: Any) -> subprocess.CompletedProcess:
    """subprocess.run for a child that dies with stui (the calling thread
    waits for it, so it is the right parent)."""
    return subprocess.run(argv, check=check, preexec_fn=_die_with_parent(os.getpid()), **options)


def spawn(argv: list[str], **options: Any) -> subprocess.Popen:
    """subprocess.Popen for a long-lived child that dies with stui, whichever
    thread asks."""

    def start() -> subprocess.Popen:
        # The preexec_fn only calls prctl and getppid, looked up before the fork.
        return subprocess.Popen(argv, preexec_fn=_die_with_parent(os.getpid()), **options)  # noqa: PLW1509

    # The main thread lives as long as stui does: it starts its children
    # itself, sparing stui -c a thread and a hand-off to it (about 3 ms).
    if threading.current_thread() is threading.main_thread():
        return start()
    return _Spawner.instance().call(start)


class _Result:
    """What an action answered or raised, once the spawner has run it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any = None, error: BaseException | None = None) -> None:
        self._value, self._error = value, error
        self._done.set()

    def get(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


class _Spawner:
    """One daemon thread that starts children and never ends before stui."""

    _lock = threading.Lock()
    _instance: _Spawner | None = None

    def __init__(self) -> None:
        self._work: queue.Queue[tuple[Callable[[], Any], _Result]] = queue.Queue()
        self._pid = os.getpid()
        threading.Thread(target=self._serve, name="stui-spawner", daemon=True).start()

    @classmethod
    def instance(cls) -> _Spawner:
        with cls._lock:
            # A forked copy of stui (tests do that) has no spawner thread.
            if cls._instance is None or cls._instance._pid != os.getpid():
                cls._instance = cls()
            return cls._instance

    def call(self, action: Callable[[], Any]) -> Any:
        done = _Result()
        self._work.put((action, done))
        return done.get()

    def _serve(self) -> None:
        while True:
            action, done = self._work.get()
            try:
                done.set(action())
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller, who raises it
                done.set(error=exc)
