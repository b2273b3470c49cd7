"""The wire protocol: framing and every request and reply shape, free of I/O.

One JSON object per line, ASCII only (see docs/protocol.md). Every request
stui sends is built by a function here and every reply is read here, so the
protocol has one owner on the client side. Keeping this module pure lets the
framing and the reply parsing be tested without a socket, and lets the
scripted path use it without importing anything heavy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

PROTOCOL_VERSION = 2
DEFAULT_MAX_LINE = 4 * 1024 * 1024

_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


class ProtocolError(Exception):
    """The peer sent something that is not the protocol."""


def encode(message: dict[str, Any]) -> bytes:
    """One request as a line: ASCII only, so the peer can split at b'\\n'."""
    return _encoder.encode(message).encode("ascii") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed reply from the server: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed reply from the server: not a JSON object")
    return message


# A surrogate that stands for no byte: anything but U+DC80..U+DCFF.
_NOT_A_BYTE = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def output_text(value: Any) -> str:
    """An output event's text: the bytes the image wrote, as a str whose
    valid UTF-8 is its characters and whose every other byte is the lone
    surrogate U+DC80 + byte (Python's surrogateescape; see docs/protocol.md).
    A surrogate that stands for no byte (a peer breaking that rule) becomes
    U+FFFD, so that output_bytes never fails."""
    text = str(value)
    return text if text.isascii() else _NOT_A_BYTE.sub("\ufffd", text)


def output_bytes(text: str) -> bytes:
    """The bytes the image wrote, from output text: exact, stray bytes included."""
    return text.encode("utf-8", "surrogateescape")


class LineSplitter:
    """Collects received bytes and hands out complete lines."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._pending = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[bytes]:
        self._pending += data
        if b"\n" not in data:
            if len(self._pending) > self._max_line:
                raise ProtocolError(f"reply line longer than {self._max_line} bytes")
            return []
        *lines, rest = self._pending.split(b"\n")
        self._pending = bytearray(rest)
        return [bytes(line) for line in lines]


class RemoteError(NamedTuple):
    """Why a request failed, as the server described it."""

    kind: str
    message: str
    exception_class: str | None = None
    stack: tuple[str, ...] = ()
    line: int | None = None
    column: int | None = None
    # The file-in statement it arose in (its file's name), if any.
    file: str | None = None
    # Already shown: an error event reported it as it happened.
    reported: bool = False
    # Its process is kept where it stopped, for the debugger (:debug).
    debuggable: bool = False

    @classmethod
    def from_wire(cls, error: Any) -> RemoteError:
        if not isinstance(error, dict):
            return cls("malformed", "the server sent an error without a description")
        return cls(
            kind=str(error.get("kind", "unknown")),
            message=str(error.get("message", "")),
            exception_class=error.get("class"),
            stack=tuple(str(line) for line in error.get("stack", ()) or ()),
            line=error.get("line") if isinstance(error.get("line"), int) else None,
            column=error.get("column") if isinstance(error.get("column"), int) else None,
            file=error.get("file") if isinstance(error.get("file"), str) else None,
            reported=error.get("reported") is True,
            debuggable=error.get("debug") is True,
        )

    def location(self) -> str:
        """'line 3, column 5' for compile errors; empty otherwise."""
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column else "")

    def one_line(self, *, with_location: bool = True) -> str:
        """The text a person sees for this error: one line, even when the
        message has several (gst's default description has two)."""
        if self.kind == "exception":
            where = f"{self.file}:{self.line}: " if with_location and self.file and self.line else ""
            message = " ".join(self.message.splitlines())
            return f"{where}{self.exception_class or 'Error'}: {message}"
        if self.kind in ("syntax", "undeclared"):
            where = f" at {self.location()}" if with_location and self.line is not None else ""
            if self.kind == "undeclared":  # gst's message already says so: "undefined variable y referenced"
                return f"{self.message}{where}"
            return f"syntax error{where}: {self.message}"
        return self.message or self.kind


class EvalResult(NamedTuple):
    """What became of a statement: a value, or an error. Its output came
    before it, as output events; `output` holds it only where a caller
    gathered it (--format json)."""

    output: str = ""
    value: str | None = None
    value_class: str | None = None
    ms: int = 0
    error: RemoteError | None = None
    defined: tuple[str, ...] = ()
    extra: Mapping[str, Any] = MappingProxyType({})  # the reply it came from

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> EvalResult:
        error = None if reply.get("ok") else RemoteError.from_wire(reply.get("error"))
        return cls(
            value=reply.get("value"),
            value_class=reply.get("class"),
            ms=int(reply.get("ms", 0) or 0),
            error=error,
            defined=tuple(str(name) for name in reply.get("defined", ()) or ()),
            extra=reply,
        )


class Event(NamedTuple):
    """Something the image did while (or after) a request ran: it wrote
    (output), an error nothing handled ended a process (error), a statement
    of a script request finished (result). `request_id` is the request it
    belongs to, None when no request was running."""

    kind: str
    request_id: Any = None
    stream: str = "stdout"
    text: str = ""  # output text: bytes that are not UTF-8 as surrogates (see output_text)
    error: RemoteError | None = None
    result: dict[str, Any] | None = None


def event_of(message: dict[str, Any]) -> Event | None:
    """The event a message is, or None for a reply."""
    kind = message.get("event")
    if not isinstance(kind, str):
        return None
    request_id = message.get("id")
    if kind == "output":
        stream = "stderr" if message.get("stream") == "stderr" else "stdout"
        return Event("output", request_id, stream=stream, text=output_text(message.get("text", "")))
    if kind == "error":
        return Event("error", request_id, error=RemoteError.from_wire(message.get("error")))
    if kind == "result":
        result = message.get("result")
        return Event("result", request_id, result=result if isinstance(result, dict) else {})
    return Event(kind, request_id)


class ServerInfo(NamedTuple):
    """What hello told us about the image."""

    dialect: str
    version: str
    server: str
    image_id: str
    workspace: str
    ops: tuple[str, ...]
    defects: tuple[dict[str, Any], ...]
    max_line: int
    # For re-attaching to this workspace after the connection breaks (leases).
    resume_token: str = ""
    resumed: bool = False
    lease: float = 0.0

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> ServerInfo:
        limits = reply.get("limits") or {}
        return cls(
            dialect=str(reply.get("dialect", "?")),
            version=str(reply.get("version", "?")),
            server=str(reply.get("server", "?")),
            image_id=str(reply.get("imageId", "")),
            workspace=str(reply.get("workspace", "")),
            ops=tuple(reply.get("ops", ())),
            defects=tuple(d for d in reply.get("defects", ()) if isinstance(d, dict)),
            max_line=int(limits.get("maxLine", DEFAULT_MAX_LINE)),
            resume_token=str(reply.get("resumeToken", "")),
            resumed=reply.get("resumed") is True,
            lease=float(reply.get("lease", 0) or 0),
        )


# -- requests (the connection adds each one's id) ------------------------------------


def hello_request(token: str, client: str, *, resume: tuple[str, str] | None = None) -> dict[str, Any]:
    """The first request; `resume` (workspace, resume token) asks for a workspace back."""
    request: dict[str, Any] = {"op": "hello", "protocol": PROTOCOL_VERSION, "token": token, "client": client}
    if resume is not None:
        request["resume"] = {"workspace": resume[0], "token": resume[1]}
    return request


def ping_request() -> dict[str, Any]:
    return {"op": "ping"}


def interrupt_request() -> dict[str, Any]:
    return {"op": "interrupt"}


def complete_request(prefix: str, kind: str) -> dict[str, Any]:
    return {"op": "complete", "prefix": prefix, "kind": kind}


def inspect_request(code: str, declare: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {"op": "inspect", "code": code, "declare": list(declare)}


def bindings_request(names: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Describe the workspace's variables (all of them, or those named)."""
    request: dict[str, Any] = {"op": "bindings"}
    if names is not None:
        request["names"] = list(names)
    return request


def declare_request(names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {"op": "bindings", "action": "declare", "names": list(names)}


def remove_request(names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {"op": "bindings", "action": "remove", "names": list(names)}


def secret_request(name: str, value: str) -> dict[str, Any]:
    """Bind NAME to a secret holding VALUE; --debug's trace masks the value (see trace)."""
    return {"op": "bindings", "action": "secret", "name": name, "value": value}


def eval_request(
    code: str,
    *,
    declare: list[str] | tuple[str, ...] | None = None,
    mode: str = "statements",
    print_value: bool = True,
    batch: str | None = None,
    line: int = 1,
    defined: bool = False,
    debug: bool = False,
) -> dict[str, Any]:
    """An eval request without its id; optional fields only when not default.
    `defined` asks a fileIn for the names of what it defined; `debug`, to
    keep the process of a failure for the debugger (the REPL's :debug)."""
    request: dict[str, Any] = {"op": "eval", "code": code}
    if declare is not None:
        request["declare"] = list(declare)
    if mode != "statements":
        request["mode"] = mode
    if not print_value:
        request["print"] = False
    if batch is not None:
        request["batch"] = batch
    if line != 1:
        request["line"] = line
    if defined:
        request["defined"] = True
    if debug:
        request["debug"] = True
    return request


def script_unit(
    code: str, *, line: int = 1, declare: list[str] | tuple[str, ...] | None = None, mode: str = "statements"
) -> dict[str, Any]:
    """One statement of a script request."""
    unit: dict[str, Any] = {"code": code, "line": line}
    if mode != "statements":
        unit["mode"] = mode
    if declare is not None:
        unit["declare"] = list(declare)
    return unit


def file_in_request(
    chunks: list[str], *, name: str, line: int = 1, keep_going: bool = False, more: bool = False
) -> dict[str, Any]:
    """Text for the image to file in with its own reader, as `gst FILE` would:
    `chunks` (its statements and declarations, in order) make the whole text,
    or its beginning when `more` (the rest follows in file_in_more requests)."""
    request: dict[str, Any] = {"op": "fileIn", "chunks": chunks, "name": name}
    if line != 1:
        request["line"] = line
    if keep_going:
        request["keepGoing"] = True
    if more:
        request["more"] = True
    return request


def file_in_more_request(chunks: list[str], *, more: bool, of: int) -> dict[str, Any]:
    """More of file-in `of`'s text: too large for one line, or still arriving."""
    return {"op": "fileInMore", "of": of, "chunks": chunks, "more": more}


def budget_for(max_line: int) -> int:
    """How many characters of code one request may carry: JSON may write a
    character in up to 6 bytes (\\u0001), and the request needs room around."""
    return max_line // 8


def record_changes_request() -> dict[str, Any]:
    """From now on the image notes what this workspace's code defines."""
    return {"op": "changes", "action": "record"}


def take_changes_request() -> dict[str, Any]:
    """What this workspace's code defined since the last take, as the image saw it."""
    return {"op": "changes", "action": "take"}


def install_changes_request(entries: list[dict[str, Any]], *, force: bool = False) -> dict[str, Any]:
    """File a session's definitions in, each on its own; `force` replaces differing ones."""
    request: dict[str, Any] = {"op": "changes", "action": "install", "entries": entries}
    if force:
        request["force"] = True
    return request


def debug_request(action: str, *, frame: int | None = None, code: str | None = None) -> dict[str, Any]:
    """A request to the debugger of the workspace's kept process (see docs/protocol.md, debug)."""
    request: dict[str, Any] = {"op": "debug", "action": action}
    if frame is not None:
        request["frame"] = frame
    if code is not None:
        request["code"] = code
    return request


def log_request() -> dict[str, Any]:
    return {"op": "log"}


def settle_request() -> dict[str, Any]:
    """A program's end: its ready processes run, as gst lets them before it quits."""
    return {"op": "settle"}


def script_request(
    units: list[dict[str, Any]], *, print_value: bool = True, batch: str | None = None, keep_going: bool = False,
    record: bool = False,
) -> dict[str, Any]:
    """Many statements in one request: the server compiles runs of them as
    one when it may; `record` keeps each assignment's result apart (a session
    saves what completed even if the image dies mid-request)."""
    request: dict[str, Any] = {"op": "script", "units": units}
    if not print_value:
        request["print"] = False
    if record:
        request["record"] = True
    if batch is not None:
        request["batch"] = batch
    if keep_going:
        request["keepGoing"] = True
    return request


# -- replies ---------------------------------------------------------------------


def statements_of(result: dict[str, Any]) -> int:
    """How many statements a script result stands for: the server compiles
    runs of statements as one when it may, and answers once for them."""
    return max(1, int(result.get("statements", 1)))
