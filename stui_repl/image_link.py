"""What a session is attached to: a connection, and the embedded image if
stui started it.

Opening and closing the pair in one place means a session switch or a
`:session reconnect` cannot leave an embedded gst running without a client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .connection import Connection
from .errors import UsageError
from .launcher import RunningImage


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"an image address is HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


@dataclass
class ImageLink:
    connection: Connection
    image: RunningImage | None = None

    @classmethod
    def open(
        cls, address: str | None, token: str | None = None, *, progress: Callable[[str], None] | None = None
    ) -> ImageLink:
        """Connect to `address` with `token`, or launch the embedded image when address is None."""
        if address is not None:
            if not token:
                raise UsageError(f"connecting to {address} needs the server's token: --token-file FILE or STUI_TOKEN")
            host, port = parse_address(address)
            return cls(Connection.open(host, port, token))
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

    def close(self) -> None:
        self.connection.close()
        if self.image is not None:
            self.image.stop()
