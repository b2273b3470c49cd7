"""Figure 9: 100,000 pipelined single `eval` requests, in batches, counting
hung batches (see README, *Known hang*).

Each batch is 2,000 `x := x + 1234` (print off) pipelined over one
connection, the way section 1 pipelines them, with windows of 16, 64 and
1024 in turn. Half the batches run alone on a fresh image; the other half run
as two clients at once on one fresh image (two interactive clients are how
the REPL meets pipelining). A batch counts as hung when no reply comes for
5 s; before its image is killed, the server is asked to write every process
and where it stands to its log (the stdin line `processes`), and the log is
kept for a maintainer. Also reported: the longest wait for a reply in any
batch that did not hang, and the time per statement (median of the batches).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import fmt, heading, line, missing

STATEMENTS = 2000
WINDOWS = (16, 64, 1024)
STALL = 5.0


class _Batch:
    """One pipelined batch on one connection; `gaps` is the longest wait for a reply."""

    def __init__(self, image, window: int) -> None:
        self.image = image
        self.window = window
        self.replies = 0
        self.last = time.monotonic()
        self.gap = 0.0
        self.failure: str | None = None
        self.seconds = float("nan")

    def on_reply(self, _request, reply) -> bool:
        now = time.monotonic()
        self.gap = max(self.gap, now - self.last)
        self.last = now
        self.replies += 1
        if not reply.get("ok"):
            self.failure = f"reply {reply!r}"
            return False
        return True

    def run(self, statements: int) -> None:
        from stui_repl.client.connection import Connection

        try:
            connection = Connection.open(self.image.host, self.image.port, self.image.token, timeout=30)
            try:
                connection.request({"op": "eval", "code": "x := 0", "declare": ["x"]}, timeout=30)
                requests = ({"op": "eval", "code": "x := x + 1234", "declare": ["x"], "print": False}
                            for _ in range(statements))
                self.last = start = time.monotonic()
                connection.pipeline(requests, self.on_reply, window=self.window)
                self.seconds = time.monotonic() - start
                check = connection.request({"op": "eval", "code": "x"}, timeout=30)
                if self.failure is None and check.get("value") != str(1234 * statements):
                    self.failure = f"sum {check.get('value')!r}"
            finally:
                connection.close()
        except Exception as exc:  # noqa: BLE001 - a hang kills the image: the connection fails
            if self.failure is None:
                self.failure = f"{type(exc).__name__}: {exc}"


def _run_image(install, clients: int, windows: list[int], statements: int, keep: Path) -> tuple[list[_Batch], bool]:
    """Batches at once on one fresh image; whether one hung (then its processes are in `keep`)."""
    from stui_repl.image import launcher

    image = launcher.launch(install)
    batches = [_Batch(image, window) for window in windows[:clients]]
    threads = [threading.Thread(target=batch.run, args=(statements,), daemon=True) for batch in batches]
    hung = False
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.2)
            now = time.monotonic()
            if any(thread.is_alive() and now - batch.last > STALL for thread, batch in zip(threads, batches)):
                hung = True
                _keep_processes(image, keep)
                image.process.kill()
                break
        for thread in threads:
            thread.join(30)
    finally:
        image.stop()
    return batches, hung


def _keep_processes(image, keep: Path) -> None:
    """Ask the hung image for its processes (written to its log), and keep the log."""
    try:
        with open(f"/proc/{image.process.pid}/fd/0", "w") as stdin:
            stdin.write("processes\n")
        time.sleep(1.0)
        shutil.copy(image.log_path, keep / f"hung-{image.process.pid}.log")
    except OSError:
        pass


def run(results: dict, *, quick: bool) -> None:
    # --quick: 4 batches of 500, one of them a pair of clients: every figure, in about 2 s.
    statements = 500 if quick else STATEMENTS
    total = 2_000 if quick else 100_000
    heading(f"9. {total:,} pipelined single evals, in batches of {statements:,}")
    keep = Path(tempfile.mkdtemp(prefix="stui-bench-hangs-"))
    install = results["install"]
    count = total // statements
    done: list[_Batch] = []
    hangs = 0
    hung_runs = {1: 0, 2: 0}
    image_runs = 0
    index = 0
    while index < count:
        clients = 2 if image_runs % 2 and index + 2 <= count else 1
        windows = [WINDOWS[(index + k) % len(WINDOWS)] for k in range(clients)]
        batches, hung = _run_image(install, clients, windows, statements, keep)
        image_runs += 1
        index += clients
        if hung:
            hangs += clients
            hung_runs[clients] += 1
            continue
        done.extend(batches)
    failed = [batch for batch in done if batch.failure]
    good = [batch for batch in done if not batch.failure]
    line("batches", f"{count} ({count * statements:,} evals; windows {', '.join(map(str, WINDOWS))}; "
         f"half of them two clients at once)")
    line("hung batches", f"{hangs} of {count} (no reply for {STALL:g} s)"
         + (f": {hung_runs[1]} alone, {hung_runs[2]} pairs of clients; the images' processes are in {keep}"
            if hangs else ""))
    if failed:
        line("failed batches", f"{len(failed)}: {failed[0].failure}")
    if good:
        line("longest wait for a reply", f"{fmt(max(batch.gap for batch in good))} (in batches that did not hang)")
        line("per statement", f"{fmt(statistics.median(batch.seconds / statements for batch in good))} "
             f"(median of {len(good)} batches)")
    else:
        missing("per statement", "no batch finished")
    results["pipeline100k_hangs"] = hangs
    results["pipeline100k_batches"] = count
    if not hangs:
        shutil.rmtree(keep, ignore_errors=True)
