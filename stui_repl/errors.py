"""Errors a person sees: one line each, with the exit status they imply.

Anything raised as a StuiError is printed as its message alone; every other
exception is a bug and shows a traceback only under --debug.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_SMALLTALK_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_UNTRUSTED = 4


class StuiError(Exception):
    """A failure with a one-line explanation for the user."""

    exit_code = EXIT_SMALLTALK_ERROR


class UsageError(StuiError):
    exit_code = EXIT_USAGE


class ImageUnreachable(StuiError):
    """No image could be started or reached."""

    exit_code = EXIT_UNREACHABLE


class Untrusted(StuiError):
    """A file or directory stui would read or run that someone else could
    have written (see trust.py): refused, never used."""

    exit_code = EXIT_UNTRUSTED

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message  # the short why, for a table cell


class ConnectionLost(ImageUnreachable):
    """The image went away while we were talking to it."""


class ReplyTimeout(ConnectionLost):
    """No reply came in the time allowed: the image may be busy rather than
    gone, which a caller that set the time limit can tell apart."""


class Terminated(BaseException):
    """stui was told to stop by a signal (SIGTERM, SIGHUP). A BaseException,
    so that nothing on the way mistakes it for a failure to handle: it
    unwinds to the top, where the session is saved and the image stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
