"""Starting and stopping a gst image that runs the stui server.

The server's Smalltalk sources are filed into gst once and saved as a snapshot
image in the cache, named by a hash of the sources and the gst it was built
with; later starts load that snapshot, which is ready in a few milliseconds.
The token goes to the server on its stdin (never on a command line, where
`ps` shows it), and stdin stays open: when stui goes away the pipe closes
and the image quits instead of living on; an image too busy to notice is
killed by the kernel (see children.py). What the image writes on stderr goes
to its log, masked (log.py).

The snapshot is code stui runs: it is built 0600 in a private directory and
used only while nobody else could have changed it (trust.py).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from .. import paths, trust
from ..errors import ImageUnreachable
from ..locks import exclusive
from . import children
from .gst import ensure_gst
from .install import GstInstall, ProvisionError
from .log import ImageLog

SERVER_DIR = Path(__file__).resolve().parents[1] / "server"
LOAD_SCRIPT = SERVER_DIR / "load-gst.st"
START_SCRIPT = SERVER_DIR / "start-gst.st"
ANNOUNCEMENT = "STUI-SERVER LISTENING"
TICK_INTERVAL = 0.02

Progress = Callable[[str], None]


def server_sources() -> list[Path]:
    """Every file that goes into the server image."""
    files = [
        SERVER_DIR / folder / name
        for folder in ("core", "gst")
        for name in sorted(os.listdir(SERVER_DIR / folder))
        if name.endswith(".st")
    ]
    return [LOAD_SCRIPT, START_SCRIPT, *files]


try:  # hashlib's own BLAKE2, without the OpenSSL hashlib loads first (4 ms of every start)
    from _blake2 import blake2b
except ImportError:
    from hashlib import blake2b


def image_key(install: GstInstall) -> str:
    """Names the server image: the gst it is for and the server's sources."""
    digest = blake2b(digest_size=8)
    # The same gst reached through a symlink is the same gst.
    args = [os.path.realpath(arg) if arg.startswith("/") else arg for arg in (str(install.gst), *install.base_args)]
    digest.update(f"{args}\0{install.version}\0".encode())
    for path in server_sources():
        with open(path, "rb") as source:
            digest.update(path.name.encode() + b"\0" + source.read() + b"\0")
    return digest.hexdigest()


def server_image(install: GstInstall, progress: Progress | None = None) -> Path:
    """The snapshot image with the server loaded, built if missing."""
    images = paths.images_dir()
    trust.private_dir(images)
    target = images / f"stui-server-{image_key(install)}.im"
    if trust.stat_of(target, "the server image"):
        return target
    with exclusive(images / ".lock"):
        if trust.stat_of(target, "the server image"):
            return target
        if progress:
            progress("building the server image (once)")
        partial = images / f".building-{os.getpid()}.im"
        command = [*install.command(str(LOAD_SCRIPT), "-a", str(SERVER_DIR), str(partial))]
        try:
            done = children.run(
                command, env=install.environ(), stdin=subprocess.DEVNULL,
                capture_output=True, timeout=300, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ImageUnreachable(f"could not build the server image: {exc}") from None
        if done.returncode != 0 or not partial.exists() or _has_load_errors(done.stdout + done.stderr):
            partial.unlink(missing_ok=True)
            detail = _last_line(done.stderr) or _last_line(done.stdout) or f"gst exited with {done.returncode}"
            raise ImageUnreachable(f"could not build the server image: {detail}")
        os.chmod(partial, 0o600)
        os.replace(partial, target)
        _forget_old_images(images, keep=3)
    return target


def _forget_old_images(images: Path, keep: int) -> None:
    """Keep the newest few: another stui (another checkout, another gst)
    may be about to start one of them."""
    built = sorted(images.glob("stui-server-*.im"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in built[keep:]:
        old.unlink(missing_ok=True)


def _has_load_errors(output: bytes) -> bool:
    """gst reports file-in errors on its output and carries on; we must not."""
    text = output.decode("utf-8", "replace")
    return any(marker in text for marker in ("parse error", "doesNotUnderstand", "undeclared variable", "Error class"))


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


class RunningImage:
    """A gst process we started, serving on host:port."""

    def __init__(self, host: str, port: int, token: str, process: subprocess.Popen[bytes], log: ImageLog) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.process = process
        self.log = log
        self._stopping: threading.Event | None = None

    @property
    def log_path(self) -> Path:
        """Where the log is, once the image wrote something (see log.py)."""
        return self.log.path

    def mask_log(self, scrub: Callable[[str], str]) -> None:
        """Mask what `scrub` masks (the open session's secrets) in the log from now on."""
        self.log.scrub = scrub

    def start_ticking(self) -> None:
        """Write a newline to the image's stdin every 20 ms: its clock.

        gst 3.2.5 hardly fires Delays while a process computes, but it does
        handle input; each tick preempts the running evaluation, which
        time-slices evaluations and lets the server stop runaway recursion
        (see StuiGstMain). Ticks never block: when the pipe is full, the image
        is not reading, and a dropped tick is no loss.
        """
        assert self.process.stdin is not None
        os.set_blocking(self.process.stdin.fileno(), False)
        self._stopping = threading.Event()
        threading.Thread(target=self._tick, args=(self._stopping,), name="stui-ticks", daemon=True).start()

    def _tick(self, stopping: threading.Event) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        while not stopping.wait(TICK_INTERVAL):
            try:
                os.write(stdin.fileno(), b"\n")
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return

    @property
    def address(self) -> str:
        from ..client.connection import join_address  # not before the image is spawned: see cli.run_scripted

        return join_address(self.host, self.port)

    def stop(self, timeout: float = 0.5) -> None:
        """Close stdin: an idle server quits at once (in about 0.1 s). One
        busy computing does not notice for as long as it computes, so after
        `timeout` it is terminated, and killed if even that is not enough."""
        if self._stopping is not None:
            self._stopping.set()
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        try:
            _wait(self.process, timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                _wait(self.process, 2.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.log.close()


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int:
    """process.wait(timeout), woken by the kernel when the process ends
    (a pidfd): Popen.wait with a timeout polls in growing sleeps, which
    made every stop of a quitting image take milliseconds more than it did."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or reaped already
        return process.wait(timeout)
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            raise subprocess.TimeoutExpired(process.args, timeout)
    finally:
        os.close(pidfd)
    return process.wait()


START_ATTEMPTS = 3


class _StartCrashed(Exception):
    """gst died before announcing itself (seen rarely, under load, inside
    libgst while it loads the image): nothing was lost, so start again."""


def launch(
    install: GstInstall | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
    lease: float | None = None,
    settings: dict[str, object] | None = None,
) -> RunningImage:
    """Start a gst image running the server and wait until it listens.

    `lease` is how many seconds the server keeps the workspace of a client
    whose connection closed, for it to resume (None: the server's default;
    0: released at once). `settings` adds other settings of the server's
    configuration line (docs/protocol.md, *Starting a server*), such as
    `helloTimeout`.
    """
    return Launch(install, host, port, token or None, progress, timeout, lease, settings).wait()


class Launch:
    """An image on its way up: gst started and loading the snapshot, its
    port not announced yet. What the client does meanwhile (a script's
    imports) overlaps the image's start-up."""

    def __init__(
        self, install: GstInstall | None, host: str, port: int, token: str | None, progress: Progress | None,
        timeout: float, lease: float | None, settings: dict[str, object] | None,
    ) -> None:
        try:
            self._install = install or ensure_gst(progress=progress)
        except ProvisionError as exc:
            raise ImageUnreachable(str(exc)) from None
        self._image = server_image(self._install, progress)
        self._settings: dict[str, object] = {
            **(settings or {}), "host": host, "port": port, "token": os.urandom(16).hex() if token is None else token,
        }
        if lease is not None:
            self._settings["lease"] = int(lease) if float(lease).is_integer() else lease
        self._timeout = timeout
        self._running: RunningImage | None = self._spawn()

    def cancel(self) -> None:
        """Not wanted after all: the image goes at once."""
        if self._running is not None:
            self._running.process.kill()
            self._running.stop()
            self._running = None

    def wait(self) -> RunningImage:
        """The image, once it listens (started again should gst crash while loading)."""
        for attempt in range(1, START_ATTEMPTS + 1):
            running = self._running or self._spawn()
            self._running = None
            try:
                running.port = _read_port(running, self._timeout)
                return running
            except _StartCrashed as crash:
                if attempt == START_ATTEMPTS:
                    raise ImageUnreachable(f"the image did not start: {crash}") from None
        raise AssertionError("unreachable")

    def _spawn(self) -> RunningImage:
        trust.private_dir(paths.logs_dir(), create=False)  # made when there is a first line to keep
        install = self._install
        try:
            process = children.spawn(
                install.command(str(START_SCRIPT), image=self._image),
                env=install.environ(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C at the terminal is for stui, not the image
            )
        except OSError as exc:
            raise ImageUnreachable(f"could not start gst: {exc}") from None
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        token = str(self._settings["token"])
        try:
            process.stdin.write(json.dumps(self._settings).encode() + b"\n")
            process.stdin.flush()
        except OSError:
            pass
        running = RunningImage(str(self._settings["host"]), 0, token, process, ImageLog(process.stderr, token))
        # The clock starts while gst loads the image, not after (a thread's
        # start is a millisecond or two of a busy machine); ticks the image
        # cannot read yet wait in the pipe, behind the configuration line.
        running.start_ticking()
        return running


def _read_port(running: RunningImage, timeout: float) -> int:
    stdout = running.process.stdout
    assert stdout is not None
    ready, _, _ = select.select([stdout], [], [], timeout)
    line = stdout.readline().decode("ascii", "replace").strip() if ready else ""
    if not line.startswith(ANNOUNCEMENT):
        running.stop(timeout=1.0)
        log = running.log.tail()
        detail = _last_line(log)
        if ready and b"Error occurred while not in byte code interpreter" in log:
            raise _StartCrashed(detail)
        if not ready:
            detail = detail or f"no answer within {timeout:g} s"
        raise ImageUnreachable(f"the image did not start: {detail or line or 'it exited'}")
    try:
        return int(line.split()[-1])
    except ValueError:
        running.stop(timeout=1.0)
        raise ImageUnreachable(f"the image announced an unreadable port: {line!r}") from None
