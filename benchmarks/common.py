"""Shared helpers for the benchmarks: timing, subprocesses, formatting.

Nothing here asserts anything about timings: the benchmarks print figures.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


# -- the environment child processes run in ------------------------------------

_PYC_DIR: str | None = None
_HOME: str | None = None


def bench_home() -> str:
    """A STUI_HOME for the run: sessions and keys start empty, the cache is the real one.

    Interactive stui saves a session when it quits; the benchmarks must not
    write into the person's own sessions.
    """
    global _HOME
    if _HOME is None:
        from stui_repl import paths

        _HOME = tempfile.mkdtemp(prefix="stui-bench-home-")
        Path(_HOME, "cache").symlink_to(paths.cache_dir())
        atexit.register(cleanup)
    return _HOME


def child_env(*, bytecode_cache: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for `stui` subprocesses.

    With bytecode_cache (the default) stui's modules are byte-compiled once
    into a private PYTHONPYCACHEPREFIX, as they would be in a pip install;
    this machine sets PYTHONDONTWRITEBYTECODE=1, which otherwise makes every
    start compile stui_repl from source. The source tree is never written.
    """
    global _PYC_DIR
    env = dict(os.environ)
    env["STUI_HOME"] = bench_home()
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if bytecode_cache:
        if _PYC_DIR is None:
            _PYC_DIR = tempfile.mkdtemp(prefix="stui-bench-pyc-")
            atexit.register(cleanup)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = _PYC_DIR
    if extra:
        env.update(extra)
    return env


def cleanup() -> None:
    global _PYC_DIR, _HOME
    if _PYC_DIR:
        shutil.rmtree(_PYC_DIR, ignore_errors=True)
        _PYC_DIR = None
    if _HOME:
        shutil.rmtree(_HOME, ignore_errors=True)
        _HOME = None


def time_to_prompt(*args: str, env: dict[str, str], timeout: float = 30) -> float:
    """Spawn `stui ARGS` on a pty; seconds until `st>` is drawn. It is then told to quit."""
    import pexpect

    start = time.perf_counter()
    child = pexpect.spawn(PYTHON, ["-m", "stui_repl", *args], cwd=str(REPO), env=env,
                          encoding="utf-8", dimensions=(24, 100), timeout=timeout)
    try:
        child.expect("st>")
        seconds = time.perf_counter() - start
        child.sendline(":q")
        child.expect(pexpect.EOF, timeout=timeout)
        return seconds
    finally:
        child.close(force=True)


def prompt_up_pair(
    heavy: str, light: str, *, runs: int, env: dict[str, str], reset: Callable[[], None]
) -> tuple[Sample, Sample]:
    """Prompt-up times with session `heavy` and with session `light`, taken
    alternately so that drifting machine load hits both alike; the first of
    each is a warm-up. `reset` runs after each start (quitting saved the
    session: the next run must see the same file)."""

    def prompt_up(name: str) -> float:
        try:
            return time_to_prompt("--session", name, env=env)
        finally:
            reset()

    heavy_times, light_times = [], []
    for _ in range(runs + 1):
        light_times.append(prompt_up(light))
        heavy_times.append(prompt_up(heavy))
    return (repeat(heavy, iter(heavy_times[1:]).__next__, runs=runs),
            repeat(light, iter(light_times[1:]).__next__, runs=runs))


def fsynced_write(path: Path, data: bytes) -> float:
    """Seconds to write `data` to `path` and fsync it: the I/O floor of a save."""
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - start


def stui_argv(*args: str) -> list[str]:
    """`stui ARGS` (the console script is `python -m stui_repl`)."""
    return [PYTHON, "-m", "stui_repl", *args]


# -- measuring -------------------------------------------------------------------


@dataclass
class Sample:
    """Repeated wall-clock measurements of one thing, in seconds."""

    name: str
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def low(self) -> float:
        return min(self.times) if self.times else float("nan")

    @property
    def high(self) -> float:
        return max(self.times) if self.times else float("nan")

    def describe(self) -> str:
        if not self.times:
            if not self.failures:
                return "n/a (not run)"
            return f"n/a ({len(self.failures)} failed: {self.failures[0]})"
        text = f"{fmt(self.median)}"
        if len(self.times) > 1:
            text += f"  (median of {len(self.times)}, {fmt(self.low)}..{fmt(self.high)})"
        if self.failures:
            text += f"  [{len(self.failures)} failed: {self.failures[0]}]"
        return text


def repeat(
    name: str,
    once: Callable[[], float | None],
    *,
    runs: int,
    budget: float | None = None,
    warmup: int = 0,
) -> Sample:
    """Call once() (answering seconds, or raising) up to `runs` times.

    Stops early when `budget` seconds have gone by (at least one run is
    always made), so slow code still finishes in bounded time; the number of
    runs made is reported with the median.
    """
    sample = Sample(name)
    for _ in range(warmup):
        with contextlib.suppress(Exception):
            once()
    start = time.perf_counter()
    for _ in range(runs):
        try:
            value = once()
        except Exception as exc:  # noqa: BLE001 - a failing run is reported, not fatal
            sample.failures.append(f"{type(exc).__name__}: {exc}"[:200])
        else:
            if value is not None:
                sample.times.append(value)
        if budget is not None and time.perf_counter() - start > budget:
            break
    return sample


class RunFailed(Exception):
    pass


@dataclass
class Timed:
    seconds: float
    returncode: int
    stdout: bytes
    stderr: bytes


def run_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdin_path: Path | None = None,
    timeout: float = 60.0,
    stall: float | None = None,
    cwd: Path | None = None,
) -> Timed:
    """Run argv to completion; wall time from spawn to exit.

    With `stall`, a run whose whole process tree (stui and its gst) uses no
    CPU for that many seconds is declared hung (Linux /proc only). On a hang or
    a timeout the process group is killed (the image quits when stui's pipe
    to it closes) and RunFailed is raised.
    """
    with contextlib.ExitStack() as files:
        stdin = files.enter_context(open(stdin_path, "rb")) if stdin_path else subprocess.DEVNULL
        out = files.enter_context(tempfile.TemporaryFile())
        err = files.enter_context(tempfile.TemporaryFile())
        return _run_timed(argv, env, stdin, out, err, timeout, stall, cwd)


def _run_timed(
    argv: Sequence[str],
    env: dict[str, str] | None,
    stdin: IO[bytes] | int,
    out: IO[bytes],
    err: IO[bytes],
    timeout: float,
    stall: float | None,
    cwd: Path | None,
) -> Timed:
    start = time.perf_counter()
    process = subprocess.Popen(
        list(argv), env=env, stdin=stdin, stdout=out, stderr=err,
        cwd=str(cwd or REPO), start_new_session=True,
    )
    # A blocking wait sees the exit at once (Popen.wait with a timeout polls
    # with sleeps of up to 50 ms, which would add to every figure); a watchdog
    # thread enforces the timeout and the stall rule.
    verdict: list[str] = []
    finished = threading.Event()

    def watch() -> None:
        last_cpu, last_change = -1, time.perf_counter()
        while not finished.wait(0.25):
            now = time.perf_counter()
            if now - start > timeout:
                verdict.append(f"no exit within {timeout:g} s (hung?)")
            elif stall is not None:
                cpu = _tree_cpu_ticks(process.pid)
                if cpu != last_cpu:
                    last_cpu, last_change = cpu, now
                elif now - last_change > stall:
                    verdict.append(f"hung: no CPU used by it or its image for {stall:g} s")
            if verdict:
                _kill_group(process, wait=False)
                return

    watchdog = threading.Thread(target=watch, daemon=True)
    watchdog.start()
    process.wait()
    seconds = time.perf_counter() - start
    finished.set()
    watchdog.join()
    if verdict:
        raise RunFailed(verdict[0])
    out.seek(0)
    err.seek(0)
    return Timed(seconds, process.returncode, out.read(), err.read())


def _tree_cpu_ticks(pid: int) -> int:
    """utime + stime of pid and all its descendants (0 where /proc is missing)."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def _kill_group(process: subprocess.Popen[bytes], *, wait: bool = True) -> None:
    """Kill the run's process group and its descendants (stui's gst has a session of its own)."""
    descendants = _descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    for pid in descendants:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if wait:
        process.wait()


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                found.extend(children)
                todo.extend(children)
        except (OSError, ValueError):
            continue
    return found


def checked(timed: Timed, what: str) -> Timed:
    if timed.returncode != 0:
        detail = (timed.stderr or timed.stdout).decode("utf-8", "replace").strip().splitlines()
        raise RunFailed(f"{what} exited {timed.returncode}: {detail[-1] if detail else ''}"[:200])
    return timed


def seconds_printing(timed: Timed, what: str, expected: bytes) -> float:
    """A successful run's seconds, once it printed exactly `expected`."""
    checked(timed, what)
    if timed.stdout != expected:
        raise RunFailed(f"{what} printed {len(timed.stdout):,} bytes ({timed.stdout[:40]!r}...), "
                        f"expected {len(expected):,} ({expected[:40]!r}...)")
    return timed.seconds


# -- formatting ------------------------------------------------------------------


def fmt(seconds: float) -> str:
    """A duration with a sensible unit."""
    if math.isnan(seconds):
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def target_note(value: float, target: float, *, unit: str = "seconds") -> str:
    if math.isnan(value):
        return ""
    verdict = "meets" if value <= target else "misses"
    shown = fmt(target) if unit == "seconds" else f"{target / 2**20:.0f} MiB"
    return f"target {shown}: {verdict} ({value / target:.1f}x target)"


# Figures a section should have printed and did not: run.py exits 1 when any
# is missing, so that a benchmark that rots fails the test that runs --quick.
MISSING: list[str] = []
_NOT_AVAILABLE = re.compile(r"(^|[\s(])n/a\b")


def heading(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def line(label: str, text: str) -> None:
    """Print one figure; one shown as n/a (not measured) is recorded in MISSING."""
    print(f"  {label:<34} {text}", flush=True)
    if _NOT_AVAILABLE.search(text):
        MISSING.append(f"{label.strip() or 'a figure'}: {text}")


def missing(label: str, why: str) -> None:
    """A figure that could not be measured: shown as n/a and recorded."""
    line(label, f"n/a ({why})")
