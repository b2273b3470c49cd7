"""An attachment: a connection to an image, plus the image's process when
stui started it (the embedded image).

Opening and closing the pair in one place means a session switch or a
`:session reconnect` cannot leave an embedded gst running without a client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..client.connection import Connection
from ..errors import UsageError

if TYPE_CHECKING:  # the launcher (and provisioning) is imported only to launch
    from .launcher import Launch, RunningImage

# The embedded image, started before it is asked for (start_early).
_early: Launch | None = None


def start_early(progress: Callable[[str], None] | None = None) -> None:
    """Start the embedded image now, for the next Attachment.open to take:
    it loads while stui imports the rest of what the mode needs (a script's
    scanner and evaluator, the REPL's prompt_toolkit). Opened on an address
    instead (a session that remembers another image), it is let go."""
    global _early
    from .launcher import Launch

    _early = Launch(None, "127.0.0.1", 0, None, progress, 30.0, None, None)


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"an image address is HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


class Attachment:
    """A connection, and the image process behind it when stui started it."""

    def __init__(self, connection: Connection, image: RunningImage | None = None) -> None:
        self.connection = connection
        self.image = image

    @classmethod
    def open(
        cls,
        address: str | None,
        token: str | None = None,
        *,
        progress: Callable[[str], None] | None = None,
        resume: tuple[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Attachment:
        """Connect to `address` with `token`, or launch the embedded image when address is None.

        `resume` asks a server for the workspace this stui had before its
        connection broke (see Connection.open).
        """
        global _early
        early, _early = _early, None
        if address is not None:
            if early is not None:
                early.cancel()
            if not token:
                raise UsageError(f"connecting to {address} needs the server's token: --token-file FILE or STUI_TOKEN")
            host, port = parse_address(address)
            return cls(Connection.open(host, port, token, resume=resume, timeout=timeout))
        if early is not None:
            image = early.wait()
        else:
            from .launcher import launch

            image = launch(progress=progress)
        try:
            return cls(Connection.open(image.host, image.port, image.token), image)
        except BaseException:
            image.stop()
            raise

    @property
    def embedded(self) -> bool:
        return self.image is not None

    def describe(self) -> str:
        return "embedded" if self.embedded else self.connection.address

    @property
    def image_alive(self) -> bool:
        return self.image is not None and self.image.process.poll() is None

    def mask_log(self, scrub: Callable[[str], str]) -> None:
        """Have an embedded image's log masked by `scrub` too (the session's secrets)."""
        if self.image is not None:
            self.image.mask_log(scrub)

    def resume_ticket(self) -> tuple[str, str] | None:
        """What re-attaching to this link's workspace takes, if the server offers leases."""
        info = self.connection.info
        if info is None or not info.resume_token or not info.lease:
            return None
        return info.workspace, info.resume_token

    def close(self, *, patience: float = 0.5) -> None:
        """Let go; an embedded image is stopped (terminated after `patience` when it does not quit)."""
        self.connection.close()
        if self.image is not None:
            self.image.stop(timeout=patience)
