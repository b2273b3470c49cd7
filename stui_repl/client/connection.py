"""A connection to a stui server: socket, request ids, pipelining, events.

Synchronous on purpose: the REPL sends a request and waits for its reply
(Ctrl-C while waiting sends an interrupt and keeps waiting), and scripted mode
pipelines many requests through one non-blocking loop. Events (what the
image's processes write, their unhandled errors, a script's results) arrive
between replies and go to `on_event` as soon as they are read, by whichever
thread reads. Other threads may use a connection too: the REPL's heartbeat,
which pings only when it can take the lock at once, and its listener, which
reads events that arrive while the prompt waits; so every read and write
holds `lock`.
"""

from __future__ import annotations

import collections
import select
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from .. import __version__
from ..errors import ConnectionLost, ImageUnreachable, ReplyTimeout
from . import wire

RECV_SIZE = 1 << 16
_END: Any = object()  # an iterator's end

# --debug sets this to a trace.WireTrace: called with (">" or "<", address, message).
TRACE: Callable[[str, str, dict[str, Any]], None] | None = None


def join_address(host: str, port: int) -> str:
    """HOST:PORT as people write it: an IPv6 host in brackets ([::1]:7000)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether a server listening on `host` is reachable from this machine
    only. "0", "0.0.0.0" and "::" mean every interface."""
    import ipaddress  # only `stui serve` asks: not on every start-up's path

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Connection:
    """One authenticated client connection (one workspace on the server)."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self._sock = sock
        self.address = address
        self._splitter = wire.LineSplitter()
        self._replies: dict[Any, dict[str, Any]] = {}
        self._next_id = 0
        self.info: wire.ServerInfo | None = None
        self.lock = threading.RLock()
        # Where events go (a mode sets it); until then they wait in `events`.
        self.on_event: Callable[[wire.Event], None] | None = None
        self.events: collections.deque[wire.Event] = collections.deque(maxlen=10_000)

    @classmethod
    def open(
        cls, host: str, port: int, token: str, *, timeout: float = 10.0, resume: tuple[str, str] | None = None
    ) -> Connection:
        """Connect and authenticate; ImageUnreachable says why not.

        `resume` (workspace id, resume token) from an earlier hello asks the
        server for that workspace back; `info.resumed` says whether it was.
        """
        address = join_address(host, port)
        # An ASCII name needs no IDNA codec, whose import costs every start 2 ms.
        name: str | bytes = host.encode("ascii") if host.isascii() else host
        try:
            sock = socket.create_connection((name, port), timeout=timeout)
        except OSError as exc:
            raise ImageUnreachable(f"cannot reach an image at {address}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = cls(sock, address)
        try:
            hello = wire.hello_request(token, f"stui {__version__}", resume=resume)
            reply = connection.request(hello, timeout=timeout)
        except (ConnectionLost, wire.ProtocolError) as exc:
            connection.close()
            raise ImageUnreachable(f"{address} did not answer as a stui server ({exc})") from None
        if not reply.get("ok"):
            connection.close()
            error = wire.RemoteError.from_wire(reply.get("error"))
            if error.kind == "bad-token":
                raise ImageUnreachable(f"{address} refused the token (check --token-file or STUI_TOKEN)")
            raise ImageUnreachable(f"{address} refused the connection: {error.message}")
        sock.settimeout(None)
        connection.info = wire.ServerInfo.from_reply(reply)
        return connection

    # -- sending and receiving -------------------------------------------------

    def _assign_id(self, message: dict[str, Any]) -> int:
        self._next_id += 1
        message["id"] = self._next_id
        if TRACE is not None:
            TRACE(">", self.address, message)
        return self._next_id

    def send(self, message: dict[str, Any]) -> int:
        """Send without waiting; answer the request id."""
        with self.lock:
            request_id = self._assign_id(message)
            try:
                self._sock.sendall(wire.encode(message))
            except OSError as exc:
                raise ConnectionLost(f"lost the connection to {self.address}: {exc.strerror or exc}") from None
            return request_id

    def wait(
        self, request_id: int, *, timeout: float | None = None, deadline: Callable[[], float] | None = None
    ) -> dict[str, Any]:
        """Read until the reply to request_id arrives; keep other replies.

        `timeout` bounds each silence. `deadline` answers the time
        (time.monotonic()) by which the reply must have come, however much
        else arrives meanwhile; it is asked again after each read, since
        what arrives (a script's results) may move it.
        """
        with self.lock:
            self._sock.settimeout(timeout)
            try:
                while request_id not in self._replies:
                    if deadline is not None:
                        left = deadline() - time.monotonic()
                        if left <= 0:
                            raise ReplyTimeout(f"{self.address} did not answer in time")
                        self._sock.settimeout(left if timeout is None else min(left, timeout))
                    self._receive()
            except TimeoutError:
                waited = f"within {timeout:g} s" if timeout is not None else "in time"
                raise ReplyTimeout(f"{self.address} did not answer {waited}") from None
            except BrokenPipeError:  # an event's output met a closed stdout: not the socket's fault
                raise
            except OSError as exc:  # the socket was closed under us (the heartbeat gave up on it)
                raise ConnectionLost(f"lost the connection to {self.address}: {exc.strerror or exc}") from None
            finally:
                try:
                    self._sock.settimeout(None)
                except OSError:
                    pass
            return self._replies.pop(request_id)

    def request(self, message: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        with self.lock:
            return self.wait(self.send(message), timeout=timeout)

    def closed_by_peer(self) -> bool:
        """Has the other end closed the socket? A cheap look that neither reads nor waits."""
        with self.lock:
            try:
                readable, _, _ = select.select([self._sock], [], [], 0)
                return bool(readable) and self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                return False
            except (OSError, ValueError):
                return True

    def ping(self, timeout: float) -> bool:
        """Whether the image answers within `timeout`; False also when the connection is gone."""
        try:
            return bool(self.request(wire.ping_request(), timeout=timeout).get("ok"))
        except (ConnectionLost, wire.ProtocolError):
            return False

    def _receive(self) -> None:
        try:
            data = self._sock.recv(RECV_SIZE)
        except (TimeoutError, BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            raise ConnectionLost(f"lost the connection to {self.address}: {exc.strerror or exc}") from None
        if not data:
            raise ConnectionLost(f"the image at {self.address} closed the connection")
        for line in self._splitter.feed(data):
            self._store(wire.decode(line))

    def _store(self, message: dict[str, Any]) -> None:
        if TRACE is not None:
            TRACE("<", self.address, message)
        event = wire.event_of(message)
        if event is None:
            self._replies[message.get("id")] = message
        elif self.on_event is not None:
            self.on_event(event)
        else:
            self.events.append(event)

    def fileno(self) -> int:
        return self._sock.fileno()

    def read_available(self) -> bool:
        """Read and dispatch whatever has arrived, without waiting; False
        when another thread holds the connection (it reads for us then)."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            self._sock.setblocking(False)
            try:
                while True:
                    self._receive()
            except (BlockingIOError, InterruptedError):
                pass
            finally:
                try:
                    self._sock.setblocking(True)
                except OSError:
                    pass
            return True
        finally:
            self.lock.release()

    def discard(self, request_id: int) -> None:
        """Forget a reply we no longer care about (e.g. an interrupt's)."""
        self._replies.pop(request_id, None)

    # -- pipelining ----------------------------------------------------------------

    def pipeline(
        self,
        requests: Iterable[dict[str, Any] | None],
        on_reply: Callable[[dict[str, Any], dict[str, Any]], bool],
        *,
        window: int = 1024,
        on_sent: Callable[[dict[str, Any]], None] | None = None,
        source: Any = None,
    ) -> None:
        """Send requests ahead of their replies, at most `window` outstanding.

        on_reply(request, reply) is called in request order; when it answers
        False no further requests are sent (those already sent are drained).
        on_sent(request) is called once a request has its id, before any
        event of it can arrive. `requests` may yield None while the next
        one waits for `source` (a file descriptor or an object with
        fileno(): a script still arriving) to become readable; meanwhile
        replies and events are read as they come.
        Reading and writing share one selector loop so that neither side can
        block the other when replies are large.
        """
        with self.lock:
            self._pipeline(requests, on_reply, window, on_sent, source)

    def _pipeline(
        self,
        requests: Iterable[dict[str, Any] | None],
        on_reply: Callable[[dict[str, Any], dict[str, Any]], bool],
        window: int,
        on_sent: Callable[[dict[str, Any]], None] | None,
        source: Any,
    ) -> None:
        pending = iter(requests)
        outstanding: collections.deque[dict[str, Any]] = collections.deque()
        out = bytearray()
        sending = True  # more requests may still be sent
        waiting = False  # for `source`, before the next request
        stopped = False  # on_reply asked to stop
        sock = self._sock
        sock.setblocking(False)
        selector = selectors.DefaultSelector()
        try:
            selector.register(sock, selectors.EVENT_READ)
            while True:
                while sending and not waiting and len(outstanding) < window and len(out) < RECV_SIZE:
                    request = next(pending, _END)
                    if request is _END:
                        sending = False
                        break
                    if request is None:
                        waiting = source is not None
                        if waiting:
                            selector.register(source, selectors.EVENT_READ)
                        break
                    self._assign_id(request)
                    if on_sent is not None:
                        on_sent(request)
                    outstanding.append(request)
                    out += wire.encode(request)
                if not outstanding and not waiting:
                    return
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
                selector.modify(sock, events)
                for key, mask in selector.select():
                    if key.fileobj is not sock:  # the source has more
                        selector.unregister(source)
                        waiting = False
                        continue
                    if mask & selectors.EVENT_WRITE and out:
                        try:
                            sent = sock.send(out)
                        except BlockingIOError:
                            sent = 0
                        except OSError as exc:
                            raise ConnectionLost(f"lost the connection to {self.address}: {exc.strerror or exc}") from None
                        del out[:sent]
                    if mask & selectors.EVENT_READ:
                        try:
                            self._receive()
                        except BlockingIOError:
                            pass
                while outstanding and outstanding[0]["id"] in self._replies:
                    request = outstanding.popleft()
                    reply = self._replies.pop(request["id"])
                    if not stopped and not on_reply(request, reply):
                        stopped = True
                        sending = False
                        if waiting:
                            selector.unregister(source)
                            waiting = False
        finally:
            selector.close()
            sock.setblocking(True)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass
