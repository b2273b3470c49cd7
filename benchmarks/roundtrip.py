"""Figure 1: the round trip of one evaluation over an open connection.

Baseline: a raw loopback TCP echo of a line of the same size, served by a
separate Python process (as gst is a separate process), measured in the same
run. Also measured, for the breakdowns: `ping` (the protocol with no
evaluation), and the pipelined per-statement cost that bounds scripts.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import subprocess
import threading
import time

from common import PYTHON, child_env, fmt, heading, line, missing, ratio

ECHO_SERVER = r"""
import socket, sys
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
pending = b""
while True:
    data = conn.recv(65536)
    if not data:
        break
    pending += data
    if b"\n" in pending:
        *lines, pending = pending.split(b"\n")
        conn.sendall(b"".join(l + b"\n" for l in lines))
"""


def echo_round_trips(count: int, payload: bytes) -> list[float]:
    """Per-request round trips through a line echo server in another process."""
    server = subprocess.Popen([PYTHON, "-c", ECHO_SERVER], stdout=subprocess.PIPE, env=child_env())
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for i in range(count + count // 10):
            start = time.perf_counter()
            sock.sendall(payload)
            got = b""
            while not got.endswith(b"\n"):
                got += sock.recv(65536)
            if i >= count // 10:  # the first tenth is warm-up
                times.append(time.perf_counter() - start)
        sock.close()
        return times
    finally:
        server.wait(timeout=5)


class Watchdog:
    """Kills the image when replies stop coming (the connection then fails).

    tick() is called on every reply; `stall` seconds without one while the
    watchdog is armed count as a hang.
    """

    def __init__(self, image, stall: float) -> None:
        self.fired = False
        self._count = 0
        self._stop = threading.Event()

        def watch() -> None:
            last = -1
            while not self._stop.wait(stall):
                if self._count == last:
                    self.fired = True
                    image.process.kill()
                    return
                last = self._count

        threading.Thread(target=watch, daemon=True).start()

    def tick(self, *_args) -> bool:
        self._count += 1
        return True

    def cancel(self) -> None:
        self._stop.set()


def run(results: dict, *, quick: bool) -> None:
    count = 500 if quick else 2000
    heading(f"1. Round trip: `3 + 4` over an open connection ({count} requests)")
    request = {"op": "eval", "code": "3 + 4", "id": 100000}
    payload = json.dumps(request, separators=(",", ":")).encode() + b"\n"

    echo = echo_round_trips(count, payload)

    base = statistics.median(echo)
    results["echo"] = base

    # Sequential requests: one image, as the REPL uses it.
    evals: list[float] = []
    pings: list[float] = []
    try:
        with _session(results["install"]) as (connection, dog):
            for _ in range(count // 10):  # warm-up
                connection.request({"op": "eval", "code": "3 + 4"}, timeout=10)
                dog.tick()
            for _ in range(count):
                start = time.perf_counter()
                reply = connection.request({"op": "eval", "code": "3 + 4"}, timeout=10)
                evals.append(time.perf_counter() - start)
                dog.tick()
            if reply.get("value") != "7":
                missing("eval `3 + 4` round trip", f"unexpected reply {reply!r}")
            for _ in range(count // 4):
                start = time.perf_counter()
                connection.request({"op": "ping"}, timeout=10)
                pings.append(time.perf_counter() - start)
                dog.tick()
    except Exception as exc:  # noqa: BLE001 - reported, the other figures go on
        missing("sequential requests", f"failed: {exc}")

    if evals:
        rt = statistics.median(evals)
        results["roundtrip"] = rt
        line("eval `3 + 4` round trip",
             f"{fmt(rt)} median (mean {fmt(statistics.fmean(evals))}, p90 {fmt(_pct(evals, 0.9))})")
        line("baseline: TCP echo round trip", f"{fmt(base)} median (Python echo server in another process)")
        line("ratio eval / echo", ratio(rt, base))
    else:
        missing("eval `3 + 4` round trip", "no request answered")
    if pings:
        results["ping"] = statistics.median(pings)
        line("ping round trip (no evaluation)", f"{fmt(results['ping'])}  ({ratio(results['ping'], base)} echo)")

    # Pipelined, as scripts run: the per-statement cost of a long script.
    # A fresh image per batch, so that a hang in one batch does not end the rest.
    batches, hangs = [], 0
    statements = count
    for _ in range(2 if quick else 3):
        try:
            with _session(results["install"]) as (connection, dog):
                connection.request({"op": "eval", "code": "x := 0", "declare": ["x"]}, timeout=10)
                requests = ({"op": "eval", "code": "x := x + 1234", "declare": ["x"], "print": False}
                            for _ in range(statements))
                start = time.perf_counter()
                connection.pipeline(requests, dog.tick)
                batches.append((time.perf_counter() - start) / statements)
                check = connection.request({"op": "eval", "code": "x"}, timeout=10)
                if check.get("value") != str(1234 * statements):
                    missing("pipelined eval", f"sum wrong: {check.get('value')!r}")
        except _Hung:
            hangs += 1
        except Exception as exc:  # noqa: BLE001 - reported, the other batches go on
            missing("pipelined eval", f"failed: {exc}")
    if batches:
        results["pipelined_per_statement"] = statistics.median(batches)
        line("pipelined eval, per statement",
             f"{fmt(statistics.median(batches))}  (median of {len(batches)} batches of {statements} "
             f"`x := x + 1234`, print off)")
    else:
        missing("pipelined eval, per statement", "no batch finished")
    if hangs:
        results["pipeline_hangs"] = hangs
        line("HUNG pipelined batches", f"{hangs} of {hangs + len(batches)} (no reply for 5 s; see README)")


class _Hung(Exception):
    pass


@contextlib.contextmanager
def _session(install):
    """A fresh image and connection, with a watchdog; _Hung if replies stop."""
    from stui_repl.client.connection import Connection
    from stui_repl.image import launcher

    image = launcher.launch(install)
    dog = Watchdog(image, 5.0)
    try:
        connection = Connection.open(image.host, image.port, image.token)
        try:
            yield connection, dog
        finally:
            connection.close()
    except Exception:
        if dog.fired:
            raise _Hung("no reply for 5 s: the image hung (see README)") from None
        raise
    finally:
        dog.cancel()
        image.stop()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
