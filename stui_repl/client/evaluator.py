"""The evaluation core shared by the REPL and scripted mode.

It turns source text into protocol requests (via the scanner) and what comes
back into results. The image streams what the code writes, the errors nothing
handled and a script's results as events while it runs; the evaluator masks
secrets in them and hands them to `on_event`, so every mode shows them as they
happen. Three ways to evaluate:

- one unit at a time (the REPL), so Ctrl-C can interrupt it;
- a script statement by statement with values (pipes, -c, -p), pipelined in
  batches whose results arrive as events;
- a script filed in by the image's own reader (`file_in`), as `gst FILE`
  runs it, when no values are wanted.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ReplyTimeout
from . import scanner, wire
from .connection import Connection

_batches = itertools.count(1)


@dataclass(frozen=True)
class Outcome:
    """A unit and what became of it."""

    unit: scanner.Unit
    result: wire.EvalResult


def request_for(
    unit: scanner.Unit, *, print_value: bool = True, batch: str | None = None, describe: bool = False,
    defined: bool = False,
) -> dict[str, Any]:
    """The protocol request that evaluates one scanned unit.

    `describe` asks the server to describe the variables the unit assigns,
    so that a session can record them without another round trip;
    `defined`, to name what a declaration defined.
    """
    if unit.kind == "temps":
        return wire.declare_request(unit.names)
    if unit.kind in ("declaration", "malformed"):  # gst's reader reports a malformed one
        return wire.eval_request(
            unit.code, mode="fileIn", print_value=print_value, batch=batch, line=unit.line, defined=defined
        )
    request = wire.eval_request(unit.code, declare=unit.names, print_value=print_value, batch=batch, line=unit.line)
    if describe and unit.names:
        request["bindings"] = True
    return request


def _no_scrub(text: str) -> str:
    return text


def _scrubbed_error(error: wire.RemoteError | None, scrub: Callable[[str], str]) -> wire.RemoteError | None:
    if error is None or scrub is _no_scrub:
        return error
    return replace(error, message=scrub(error.message), stack=tuple(scrub(line) for line in error.stack))


def scrubbed(result: wire.EvalResult, scrub: Callable[[str], str]) -> wire.EvalResult:
    """The result with every text a person could see passed through `scrub` (secret masking)."""
    if scrub is _no_scrub:
        return result
    return replace(
        result,
        output=scrub(result.output),
        value=None if result.value is None else scrub(result.value),
        error=_scrubbed_error(result.error, scrub),
    )


def scrubbed_event(event: wire.Event, scrub: Callable[[str], str]) -> wire.Event:
    if scrub is _no_scrub:
        return event
    return replace(event, text=scrub(event.text), error=_scrubbed_error(event.error, scrub))


SCRIPT_BATCH = 256


def _chunks(units: Iterable[scanner.Unit], size: int, budget: int) -> Iterator[list[scanner.Unit]]:
    """Runs of at most `size` units whose code is at most about `budget`
    characters (a request line has a limit); a larger unit goes alone."""
    chunk: list[scanner.Unit] = []
    length = 0
    for unit in units:
        cost = (len(unit.code) if unit.code.isascii() else 6 * len(unit.code)) + 64
        if chunk and length + cost > budget:
            yield chunk
            chunk, length = [], 0
        chunk.append(unit)
        length += cost
        if len(chunk) == size:
            yield chunk
            chunk, length = [], 0
    if chunk:
        yield chunk


def script_unit(unit: scanner.Unit) -> dict[str, Any]:
    """One statement of a script request (see docs/protocol.md)."""
    if unit.kind == "temps":  # file-level | a b |: declare the variables
        return wire.script_unit("nil", line=unit.line, declare=unit.names)
    if unit.kind in ("declaration", "malformed"):
        return wire.script_unit(unit.code, line=unit.line, mode="fileIn")
    return wire.script_unit(unit.code, line=unit.line, declare=unit.names)


def result_of(unit: scanner.Unit, reply: dict[str, Any]) -> wire.EvalResult:
    if unit.kind == "temps" and reply.get("ok"):
        return wire.EvalResult()
    return wire.EvalResult.from_reply(reply)


def file_in_chunks(text: str, units: list[scanner.Unit]) -> list[str]:
    """`text` cut where each unit begins: the pieces make the whole text, and
    each ends just before the next statement or declaration (see
    StuiGstFileIn on why the image wants them apart)."""
    line_starts = [0]
    for line in text.split("\n"):
        line_starts.append(line_starts[-1] + len(line) + 1)
    cuts = sorted({line_starts[unit.line - 1] + unit.column - 1 for unit in units[1:]})
    edges = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges) if b > a] or [text]


class Evaluator:
    """Evaluates text in one connection's workspace."""

    def __init__(
        self, connection: Connection, *, scrub: Callable[[str], str] | None = None, describe: bool = False
    ) -> None:
        self.connection = connection
        self.scrub = scrub or _no_scrub
        self.describe = describe
        # What the modes do with events: show output and errors as they come.
        self.on_event: Callable[[wire.Event], None] | None = None
        self._results: Callable[[wire.Event], None] | None = None
        connection.on_event = self._event
        for waiting in list(connection.events):  # what arrived before anyone listened
            self._event(waiting)
        connection.events.clear()

    def _event(self, event: wire.Event) -> None:
        event = scrubbed_event(event, self.scrub)
        if event.kind == "result":
            if self._results is not None:
                self._results(event)
            return
        if self.on_event is not None:
            self.on_event(event)

    def units_for_input(self, text: str) -> list[scanner.Unit]:
        """Interactive input: a sequence with its own temporaries stays one unit."""
        units = scanner.split_script(text)
        if any(unit.kind == "temps" for unit in units):
            names = scanner.assigned_names(text)
            first = units[0]
            return [scanner.Unit("statement", text.strip(), first.line, first.column, names)]
        return units

    def evaluate_unit(
        self,
        unit: scanner.Unit,
        *,
        on_interrupt: Callable[[], None] | None = None,
        patience: float | None = None,
        defined: bool = False,
    ) -> wire.EvalResult:
        """Send one unit and wait; Ctrl-C while waiting interrupts the image.

        Once interrupted, the image has `patience` seconds to answer: one
        that does not even then is hung (ConnectionLost), not busy.
        """
        request = request_for(unit, describe=self.describe, defined=defined)
        reply = self._wait_interruptibly(request, on_interrupt, patience)
        return scrubbed(result_of(unit, reply), self.scrub)

    def _wait_interruptibly(
        self,
        request: dict[str, Any],
        on_interrupt: Callable[[], None] | None,
        patience: float | None,
        *,
        following: Iterable[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """Send request (then `following`, which continue it and name it by
        its id) and wait for its reply; Ctrl-C meanwhile interrupts."""
        request_id = self.connection.send(request)
        for more in following:
            more["of"] = request_id
            self.connection.send(more)
        interrupts: list[int] = []
        while True:
            try:
                reply = self.connection.wait(request_id, timeout=patience if interrupts else None)
                break
            except KeyboardInterrupt:
                if on_interrupt:
                    on_interrupt()
                interrupts.append(self.connection.send(wire.interrupt_request()))
        for interrupt_id in interrupts:
            self.connection.discard(interrupt_id)
        return reply

    def file_in(
        self,
        text: str,
        *,
        name: str,
        keep_going: bool,
        on_interrupt: Callable[[], None] | None = None,
        units: list[scanner.Unit] | None = None,
    ) -> wire.EvalResult:
        """Have the image file `text` in with its own reader, as `gst FILE` does
        (`units`: the text's, when the caller has scanned it already).

        Output and errors arrive as events while it runs; the result says
        whether any statement failed. The text goes cut at its statements:
        without keep_going the image stops between two pieces after the
        first failure, and even with it, one whole piece changed the order
        in which processes of equal priority ran (fidelity: process-yield).
        """
        chunks = file_in_chunks(text, scanner.split_script(text) if units is None else units)
        first, *rest = wire.batches_within(chunks, self._line_budget())
        request = wire.file_in_request(first, name=name, keep_going=keep_going, more=bool(rest))
        following = [wire.file_in_more_request(run, more=i < len(rest) - 1) for i, run in enumerate(rest)]
        reply = self._wait_interruptibly(request, on_interrupt, None, following=following)
        for more in following:  # each is answered: taken, or skipped after a stop
            self.connection.wait(more["id"])
        return scrubbed(wire.EvalResult.from_reply(reply), self.scrub)

    def _line_budget(self) -> int:
        """How much code one request may carry (see wire.budget_for)."""
        info = self.connection.info
        return wire.budget_for(info.max_line if info is not None else wire.DEFAULT_MAX_LINE)

    def run_units(
        self,
        units: Iterable[scanner.Unit],
        on_outcome: Callable[[Outcome], bool],
        *,
        print_values: bool,
        keep_going: bool,
    ) -> None:
        """Pipeline units in script batches; on_outcome answers False to stop.

        One request per statement would pay the server's per-request costs
        (queueing, process switches, a reply line) 10,000 times for a long
        script; a batch pays them once. Each statement's result comes as an
        event right after the output it wrote, so values and output stay in
        order.
        """
        batch = None if keep_going else f"s{next(_batches)}"
        pending: dict[int, list[scanner.Unit]] = {}  # id(request) -> its units
        cursors: dict[Any, Iterator[scanner.Unit]] = {}  # request id -> the units still to answer
        stopped = False

        def requests() -> Iterator[dict[str, Any]]:
            for chunk in _chunks(units, SCRIPT_BATCH, self._line_budget()):
                request = wire.script_request(
                    [script_unit(unit) for unit in chunk], print_value=print_values, batch=batch,
                    keep_going=keep_going, record=self.describe,
                )
                pending[id(request)] = chunk
                yield request

        def outcome(unit: scanner.Unit | None, result: wire.EvalResult) -> bool:
            nonlocal stopped
            if unit is None or stopped:
                return False
            if not on_outcome(Outcome(unit, result)):
                stopped = True
            return not stopped

        def on_result(event: wire.Event) -> None:
            cursor = cursors.get(event.request_id)
            reply = event.result or {}
            if cursor is None:
                return
            # A result may stand for several statements compiled together;
            # its time belongs to the last of them.
            for _ in range(wire.statements_of(reply) - 1):
                if not outcome(next(cursor, None), wire.EvalResult()):
                    return
            unit = next(cursor, None)
            if unit is not None:
                outcome(unit, scrubbed(result_of(unit, reply), self.scrub))

        def on_reply(request: dict[str, Any], reply: dict[str, Any]) -> bool:
            chunk = pending.pop(id(request))
            left = cursors.pop(request["id"], iter(()))
            if not reply.get("ok"):
                outcome(chunk[0], scrubbed(wire.EvalResult.from_reply(reply), self.scrub))
                return False
            missing = next(left, None)
            if missing is not None and not stopped:
                # Nothing failed, yet statements went unanswered: say so rather
                # than end the script quietly.
                error = wire.RemoteError("internal", "the image did not answer every statement of a batch")
                outcome(missing, wire.EvalResult(error=error))
                return False
            return not stopped

        def sent(request: dict[str, Any]) -> None:
            cursors[request["id"]] = iter(pending[id(request)])

        self._results = on_result
        try:
            self.connection.pipeline(requests(), on_reply, window=8, on_sent=sent)
        finally:
            self._results = None

    def bindings(self) -> list[dict[str, Any]]:
        reply = self.connection.request(wire.bindings_request())
        found = list(reply.get("bindings", ())) if reply.get("ok") else []
        return [self._scrub_fields(b, ("value",)) for b in found]

    def remove_variable(self, name: str) -> bool:
        """Remove a workspace variable; whether there was one."""
        reply = self.connection.request(wire.remove_request([name]))
        return bool(reply.get("ok")) and name in (reply.get("removed") or ())

    def bind_secret(self, name: str, plaintext: str) -> wire.RemoteError | None:
        """Bind NAME to a secret in the image; the error when the image refuses."""
        reply = self.connection.request(wire.secret_request(name, plaintext))
        return None if reply.get("ok") else wire.RemoteError.from_wire(reply.get("error"))

    def record_changes(self) -> bool:
        """Ask the image to note what this workspace's code defines; False from an image that cannot."""
        return bool(self.connection.request(wire.record_changes_request()).get("ok"))

    def take_changes(self) -> list[dict[str, Any]]:
        """What the code defined since the last take, as the image saw it."""
        reply = self.connection.request(wire.take_changes_request())
        return [c for c in reply.get("changes", ()) if isinstance(c, dict)] if reply.get("ok") else []

    def install_code(self, entries: list[dict[str, Any]], *, force: bool = False) -> list[dict[str, Any]]:
        """File definitions in, each on its own; one outcome each (failed for all when the image refuses)."""
        reply = self.connection.request(wire.install_changes_request(entries, force=force))
        outcomes = reply.get("outcomes")
        if reply.get("ok") and isinstance(outcomes, list) and len(outcomes) == len(entries):
            return [o if isinstance(o, dict) else {"outcome": "failed"} for o in outcomes]
        why = wire.RemoteError.from_wire(reply.get("error")).one_line() if not reply.get("ok") else "no outcome"
        return [{"outcome": "failed", "message": why} for _ in entries]

    def replay(
        self, units: list[dict[str, Any]], *, keep_going: bool = False, limit: float | None = None, patience: float = 10.0
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run statements quietly, one compile for a run of them (restoring a
        workspace); answer the request's reply and its statements' results.

        A statement still running `limit` seconds after the last result came
        is interrupted, and its result says `timedOut`; under `keep_going`
        the rest go on. An image that does not stop within `patience`
        seconds of the interrupt raises ReplyTimeout.
        """
        results: list[dict[str, Any]] = []
        progress = time.monotonic()
        stopping: float | None = None  # when an interrupt was sent that has not yet shown as a result
        interrupts: list[int] = []

        def on_result(event: wire.Event) -> None:
            nonlocal progress, stopping
            result = dict(event.result or {})
            if stopping is not None and (result.get("error") or {}).get("kind") == "interrupted":
                result["timedOut"] = True
                stopping = None
            results.append(result)
            progress = time.monotonic()

        self._results = on_result
        shown, self.on_event = self.on_event, None  # what re-creating a variable prints is not news
        try:
            request_id = self.connection.send(wire.script_request(units, print_value=False, keep_going=keep_going))
            if limit is None:
                return self.connection.wait(request_id), results

            def deadline() -> float:
                return stopping + patience if stopping is not None else progress + limit

            while True:
                try:
                    return self.connection.wait(request_id, deadline=deadline), results
                except ReplyTimeout:
                    if stopping is not None:
                        raise
                    interrupts.append(self.connection.send(wire.interrupt_request()))
                    stopping = time.monotonic()
        finally:
            self._results = None
            self.on_event = shown
            for interrupt_id in interrupts:
                self.connection.discard(interrupt_id)

    def request_room(self) -> int:
        """The longest request line the image takes (hello's maxLine), less room for the id."""
        info = self.connection.info
        return (info.max_line if info is not None else wire.DEFAULT_MAX_LINE) - 64

    def fits(self, request: dict[str, Any]) -> bool:
        return len(wire.encode(request)) <= self.request_room()

    def settle(self, *, on_interrupt: Callable[[], None] | None = None) -> None:
        """End a program as gst does: what its processes print meanwhile
        arrives as events. An image without the op (an older server) skips it."""
        info = self.connection.info
        if info is not None and "settle" in info.ops:
            self._wait_interruptibly(wire.settle_request(), on_interrupt, None)

    def log(self) -> str:
        """What the image wrote that no workspace owned."""
        reply = self.connection.request(wire.log_request())
        return self.scrub(str(reply.get("log", ""))) if reply.get("ok") else ""

    def inspect(self, code: str) -> dict[str, Any]:
        reply = self.connection.request(wire.inspect_request(code, scanner.assigned_names(code)))
        reply = self._scrub_fields(reply, ("value",))
        for key in ("named", "indexed"):
            if isinstance(reply.get(key), list):
                reply[key] = [self._scrub_fields(slot, ("value",)) for slot in reply[key] if isinstance(slot, dict)]
        return reply

    def _scrub_fields(self, record: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        if self.scrub is _no_scrub:
            return record
        return {k: self.scrub(v) if k in keys and isinstance(v, str) else v for k, v in record.items()}

    def complete(self, prefix: str, kind: str, *, timeout: float = 2.0) -> list[dict[str, Any]]:
        reply = self.connection.request(wire.complete_request(prefix, kind), timeout=timeout)
        return list(reply.get("candidates", ())) if reply.get("ok") else []
