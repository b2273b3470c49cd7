"""Supervising an attachment: a heartbeat, noticing a loss, and getting
back with backoff.

A loss is noticed three ways: a request fails (the REPL calls `lost`), the
socket is closed, or the idle heartbeat's `ping` gets no answer within the
timeout (a hung image, a dead network). Then a background thread calls the
`heal` it was given, retrying with exponential backoff and jitter (the
backoff package) until it works or the give-up time has passed. The person
hears one line when the attachment is lost and one when it is back; the
toolbar shows the state meanwhile. An evaluation that was running when the
link broke is never sent again: its result is unknown.

The heartbeat pings only while the REPL sits at its prompt, and only when
it can take the connection's lock at once, so it never waits behind the
person's own requests (a request made during a ping waits for its answer,
at most heartbeat_timeout).

The supervisor knows nothing of sessions: what it watches, how to heal it
and the settings come in as callables, so the session controller above can
hand them over and tests can hand over fakes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ImageUnreachable, StuiError
from .attachment import Attachment

CONNECTED = "connected"
RECONNECTING = "reconnecting"
UNREACHABLE = "unreachable"


class Supervisor:
    """Watches whatever `attachment()` answers; `heal()` replaces it and answers one line on what came back."""

    def __init__(
        self,
        *,
        attachment: Callable[[], Attachment | None],
        heal: Callable[[], str],
        settings: Callable[[], Mapping[str, Any]],
        notify: Callable[[str], None],
        changed: Callable[[], None] | None = None,
        image_restarted: Callable[[], bool] = lambda: False,
    ) -> None:
        self.attachment = attachment
        self.heal = heal
        self.settings = settings
        self.image_restarted = image_restarted
        self.notify = notify
        self.changed = changed or (lambda: None)
        self.state = CONNECTED
        self.attempts = 0
        self.idle = False  # at the prompt: the heartbeat may ping
        self._wake = threading.Event()
        self._settled = threading.Condition()
        self._stopping = False
        self._heart = threading.Thread(target=self._beat, name="stui-heartbeat", daemon=True)

    def start(self) -> None:
        self._heart.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        with self._settled:
            self._settled.notify_all()

    # -- noticing ---------------------------------------------------------------------

    def _beat(self) -> None:
        last = time.monotonic()
        while not self._stopping:
            # Short naps, so that a `:set heartbeat` takes effect at once and
            # a closed socket or a dead embedded image is noticed at once.
            self._wake.wait(0.25)
            if self._stopping:
                return
            self._look()
            interval = float(self.settings()["heartbeat"])
            if self._stopping or interval <= 0 or time.monotonic() - last < interval:
                continue
            last = time.monotonic()
            if not self.idle or self.state != CONNECTED:
                continue
            link = self.attachment()
            if link is None:
                continue
            lock = link.connection.lock
            if not lock.acquire(blocking=False):
                continue  # someone is talking to the image: it is not idle, and that will tell
            try:
                alive = link.connection.ping(float(self.settings()["heartbeat_timeout"]))
            finally:
                lock.release()
            if not alive and self.attachment() is link and self.idle:
                where = "the embedded image" if link.embedded else f"the image at {link.connection.address}"
                self.lost(f"{where} stopped answering")

    def _look(self) -> None:
        """Between pings: what can be seen without asking the image."""
        link = self.attachment()
        if link is None or not self.idle or self.state != CONNECTED:
            return
        if link.embedded and not link.image_alive:
            self.lost("the embedded image exited")
            return
        lock = link.connection.lock
        if lock.acquire(blocking=False):
            try:
                closed = link.connection.closed_by_peer()
            finally:
                lock.release()
            if closed and self.attachment() is link and self.idle:
                where = "the embedded image" if link.embedded else f"the image at {link.connection.address}"
                self.lost(f"{where} closed the connection")

    def lost(self, reason: str) -> None:
        """The link is broken: say so once and start healing in the background."""
        with self._settled:
            if self.state == RECONNECTING:
                return
            self.state = RECONNECTING
            self.attempts = 0
        self.notify(f"{reason}; reconnecting…")
        self.changed()
        threading.Thread(target=self._heal_with_backoff, name="stui-reconnect", daemon=True).start()

    # -- getting back -----------------------------------------------------------------

    def _heal_with_backoff(self) -> None:
        import backoff

        give_up = float(self.settings()["reconnect_give_up"])
        started = time.monotonic()

        @backoff.on_exception(
            backoff.expo, ImageUnreachable, max_time=give_up, jitter=backoff.full_jitter, max_value=8,
            giveup=lambda exc: self._stopping,
        )
        def attempt() -> str:
            self.attempts += 1
            self.changed()
            return self.heal()

        try:
            outcome = attempt()
        except ImageUnreachable as exc:
            self._settle(UNREACHABLE)
            self.notify(f"gave up reconnecting after {time.monotonic() - started:.0f} s ({exc}); :session reconnect tries again")
        except StuiError as exc:
            self._settle(UNREACHABLE)
            self.notify(f"cannot reconnect: {exc}; :session reconnect tries again")
        except Exception as exc:  # noqa: BLE001 - a dead healer would leave the REPL waiting for ever
            self._settle(UNREACHABLE)
            self.notify(f"cannot reconnect ({type(exc).__name__}: {exc}); :session reconnect tries again")
        else:
            self._settle(CONNECTED)
            self.notify(outcome)

    def _settle(self, state: str) -> None:
        with self._settled:
            self.state = state
            self._settled.notify_all()
        self.changed()

    def wait_until_settled(self) -> str:
        """Block until a reconnection ends (Ctrl-C stops waiting); answer the state."""
        with self._settled:
            while self.state == RECONNECTING and not self._stopping:
                self._settled.wait(0.2)
            return self.state

    def reconnected(self) -> None:
        """`:session reconnect` succeeded in the foreground."""
        self._settle(CONNECTED)

    def describe(self) -> str:
        """For the toolbar and :session list: connected, reconnecting, image restarted, unreachable."""
        if self.state == RECONNECTING:
            return f"reconnecting (attempt {self.attempts})…" if self.attempts > 1 else "reconnecting…"
        if self.state == CONNECTED and self.image_restarted():
            return "connected, image restarted"
        return self.state
