"""Attacks on the server's socket by clients without the token, over real
sockets: floods of long partial lines, slow senders and idle connections,
and running out of file descriptors. Meanwhile a client with the token keeps
evaluating, and gets every answer right; afterwards the image gives back its
memory and its descriptors.

Nothing here asserts a duration: the server's limits (a short line and a few
seconds before hello, a cap on connections waiting for hello) are checked by
what happens, with deadlines generous enough for a loaded machine."""

from __future__ import annotations

import json
import os
import resource
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from stui_repl.client.connection import Connection

HELLO_TIMEOUT = 2
MAX_UNAUTHENTICATED = 16


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def wait_until(condition, what, deadline: float = 60.0) -> None:
    """Poll condition; `what` names it in the failure (a callable: described then)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() >= end:
            raise AssertionError(f"timed out waiting until {what() if callable(what) else what}")
        time.sleep(0.1)


class Evaluator(threading.Thread):
    """A client with the token that evaluates `n := n + 1` until told to stop,
    checking every answer. `count` says how far it got."""

    def __init__(self, image) -> None:
        super().__init__(daemon=True)
        self.connection = Connection.open(image.host, image.port, image.token, timeout=60)
        self.connection.request({"op": "eval", "code": "n := 0", "declare": ["n"]}, timeout=60)
        self.count = 0
        self.failures: list[str] = []
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                reply = self.connection.request(
                    {"op": "eval", "code": "n := n + 1", "declare": ["n"]}, timeout=60)
                if reply.get("value") != str(self.count + 1):
                    self.failures.append(repr(reply))
                    return
                self.count += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(f"{type(exc).__name__}: {exc}")

    def progressed_during(self, action) -> None:
        """Run action(); the client must answer at least once more after it
        has begun (never asserts how fast)."""
        before = self.count
        action()
        wait_until(lambda: self.count > before + 1 or self.failures, "the client got an answer")
        assert not self.failures, self.failures

    def stop(self) -> None:
        self._stopping.set()
        self.join(120)
        self.connection.close()


@pytest.fixture
def guarded_image(gst_install, server_image) -> Iterator:
    from stui_repl.image.launcher import launch

    running = launch(gst_install, settings={
        "helloTimeout": HELLO_TIMEOUT, "maxUnauthenticated": MAX_UNAUTHENTICATED})
    yield running
    running.stop()


def closed_by_server(sock: socket.socket, deadline: float = 60.0) -> bool:
    """Whether the server closes sock within deadline (it may first send one error line)."""
    sock.settimeout(deadline)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def partial_line_flood(port: int, count: int, size: int) -> list[str]:
    """count connections at once, each sending size bytes of one unfinished line."""
    outcomes: list[str] = []
    chunk = b'{"id": 1, "op": "hello", "token": "' + b"x" * 65536

    def attack() -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sent = 0
        try:
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
            outcomes.append("all sent")
        except OSError:
            outcomes.append("cut off")
        finally:
            outcomes.append("closed" if closed_by_server(sock) else "left open")
            sock.close()

    threads = [threading.Thread(target=attack, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return outcomes


def test_floods_and_slow_senders_neither_stop_a_client_nor_keep_the_memory(guarded_image):
    """Regression: 100 connections each sending a 4 MB partial line took the
    image from 116 MB to 578 MB, and it stayed there after they closed;
    3,000 half-sent lines stayed open for ever."""
    pid = guarded_image.process.pid
    client = Evaluator(guarded_image)
    client.start()
    # Warm up what an attack exercises, so that loading code is not counted.
    partial_line_flood(guarded_image.port, 4, 256 * 1024)
    wait_until(lambda: open_sockets(pid) <= 2, "the warm-up connections closed")
    start = rss_kib(pid)

    # 1. Long partial lines: a line before hello may be 4 KiB, so each is cut
    #    off after a few KiB, with a line-too-long error, never buffered.
    outcomes: list[str] = []
    client.progressed_during(lambda: outcomes.extend(partial_line_flood(guarded_image.port, 100, 4 * 1024 * 1024)))
    assert outcomes.count("closed") == 100, outcomes
    assert outcomes.count("all sent") == 0, "the server read 4 MB of a line before hello"
    peak = rss_kib(pid)

    # 2. Slow senders: a byte now and then, never a whole line.
    slow = [socket.create_connection(("127.0.0.1", guarded_image.port)) for _ in range(10)]

    def trickle() -> None:
        for _ in range(HELLO_TIMEOUT * 10):
            for sock in slow:
                try:
                    sock.send(b" ")
                except OSError:
                    pass
            time.sleep(0.2)

    client.progressed_during(trickle)
    assert all(closed_by_server(sock) for sock in slow), "a slow sender was never closed"

    # 3. Many connections that never finish their line: past the cap the
    #    oldest go, and the rest when their time is up.
    idle = []
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for _ in range(min(1000, soft // 2)):
        sock = socket.create_connection(("127.0.0.1", guarded_image.port), timeout=60)
        sock.sendall(b'{"id": 1, "op": "hel')
        idle.append(sock)
    client.progressed_during(lambda: None)
    assert all(closed_by_server(sock) for sock in idle), "a half-sent line stayed open"
    for sock in slow + idle:
        sock.close()

    wait_until(lambda: open_sockets(pid) <= 2, "the server closed every attacker's socket")
    client.progressed_during(lambda: None)
    client.stop()
    assert not client.failures, client.failures
    after = rss_kib(pid)
    print(f"RSS {start} KiB before, {peak} KiB after the flood, {after} KiB after all closed")
    # Noise allowed: a few MB of the image's own growth, the code and
    # processes the attacks exercised. The regression kept 440 MB.
    assert after <= start + 32 * 1024, f"RSS {start} KiB before, {peak} KiB after the flood, {after} KiB after all closed"


def test_a_client_saying_hello_is_not_crowded_out_by_idle_connections(guarded_image):
    idle = []
    for _ in range(MAX_UNAUTHENTICATED * 4):
        sock = socket.create_connection(("127.0.0.1", guarded_image.port))
        sock.sendall(b"{")
        idle.append(sock)
    connection = Connection.open(guarded_image.host, guarded_image.port, guarded_image.token, timeout=60)
    assert connection.request({"op": "eval", "code": "3 + 4"}, timeout=60)["value"] == "7"
    connection.close()
    # The oldest were told why before being closed.
    first = idle[0]
    first.settimeout(60)
    line = first.makefile("rb").readline()
    assert json.loads(line) == {"id": None, "ok": False, "error": {
        "kind": "unauthenticated",
        "message": "too many connections are waiting to say hello; this one was the oldest"}}
    for sock in idle:
        sock.close()


def test_a_connection_without_hello_is_told_its_time_is_up(guarded_image):
    sock = socket.create_connection(("127.0.0.1", guarded_image.port), timeout=60)
    sock.sendall(b'{"id": 1, "op": "hello", ')
    line = sock.makefile("rb").readline()
    assert json.loads(line) == {"id": None, "ok": False, "error": {
        "kind": "unauthenticated", "message": f"no hello within {HELLO_TIMEOUT} s"}}
    assert closed_by_server(sock)
    sock.close()


def test_a_long_line_before_hello_is_refused_after_4_kib(guarded_image):
    sock = socket.create_connection(("127.0.0.1", guarded_image.port), timeout=60)
    sock.sendall(b'{"id": 1, "op": "hello", "client": "' + b"x" * 5000 + b'"}\n')
    line = sock.makefile("rb").readline()
    assert json.loads(line)["error"] == {"kind": "line-too-long", "message": "request line longer than 4096 bytes"}
    assert closed_by_server(sock)
    sock.close()
    # After hello, lines may be as long as limits.maxLine says.
    connection = Connection.open(guarded_image.host, guarded_image.port, guarded_image.token, timeout=60)
    code = "'" + "y" * 100_000 + "' size"
    assert connection.request({"op": "eval", "code": code}, timeout=60)["value"] == "100000"
    connection.close()


def test_long_lines_of_clients_with_the_token_are_given_back(guarded_image):
    """The memory of long requests, and of long lines left half-sent by
    clients that went away, goes back once they are done: the clock starts a
    global collection (an idle image never collects), and a workspace kept
    for its lease does not keep its last long statement."""
    pid = guarded_image.process.pid
    watcher = Connection.open(guarded_image.host, guarded_image.port, guarded_image.token, timeout=60)
    watcher.request({"op": "eval", "code": "3"}, timeout=60)
    start = rss_kib(pid)
    for _ in range(10):
        sock = socket.create_connection(("127.0.0.1", guarded_image.port), timeout=60)
        replies = sock.makefile("rb")
        sock.sendall(json.dumps({"id": 0, "op": "hello", "protocol": 2, "token": guarded_image.token}).encode() + b"\n")
        assert json.loads(replies.readline())["ok"]
        sock.sendall(b'{"id": 1, "op": "eval", "code": "\'' + b"x" * 4_000_000 + b'\' size"}\n')
        assert json.loads(replies.readline())["value"] == "4000000"
        sock.sendall(b'{"id": 2, "op": "eval", "code": "\'' + b"y" * 4_000_000)
        replies.close()
        sock.close()

    # 80 MB stayed before: each leased workspace kept its last 8 MB statement.
    # Now about 24 MB do, but where gst's heap happens to place objects made
    # meanwhile can keep a few more of its chunks (once, under load, more
    # than the 40 MB this allowed): the bound is well below the 80 MB.
    wait_until(
        lambda: rss_kib(pid) <= start + 56 * 1024,
        lambda: f"the image gave back its memory ({start} KiB before, {rss_kib(pid)} KiB now)",
    )
    assert "collecting garbage" in watcher.request({"op": "log"}, timeout=60)["log"]
    watcher.close()


def test_out_of_descriptors_the_listener_waits_instead_of_spinning(guarded_image):
    """Regression: at the file-descriptor limit, accept failed at once, over
    and over, at the priority of the server's readers: the image spun and no
    client was answered."""
    pid = guarded_image.process.pid
    client = Evaluator(guarded_image)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A new descriptor takes the lowest free number, which must reach the
    # limit: the count of open ones is not it when there is a hole below.
    used = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}
    lowest_free = next(n for n in range(len(used) + 1) if n not in used)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        waiting = socket.create_connection(("127.0.0.1", guarded_image.port), timeout=60)
        client.start()
        client.progressed_during(lambda: time.sleep(3))
        log = client.connection.request({"op": "log"}, timeout=60)["log"]
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    failures = [line for line in log.splitlines() if "accept failed" in line]
    assert failures, log
    # The log names the failures in a row at each power of two, and the wait
    # doubles: a spinning listener would have reached thousands.
    in_a_row = [int(line.split("), ")[1].split(" in a row")[0]) for line in failures]
    assert max(in_a_row) < 64, failures
    assert "waiting 10 ms" in failures[0], failures
    # With descriptors again, the client that waited is served.
    waiting.sendall(json.dumps({"id": 1, "op": "hello", "protocol": 2, "token": guarded_image.token}).encode() + b"\n")
    assert json.loads(waiting.makefile("rb").readline())["ok"] is True
    waiting.close()
    client.stop()
    assert not client.failures, client.failures
