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
from typing import Any, NamedTuple, TypeVar

from ..errors import ReplyTimeout
from . import scanner, wire
from .connection import Connection

_batches = itertools.count(1)
_END: Any = object()  # an iterator's end
T = TypeVar("T")


class Outcome(NamedTuple):
    """A unit and what became of it."""

    unit: scanner.Unit
    result: wire.EvalResult


def request_for(
    unit: scanner.Unit, *, print_value: bool = True, batch: str | None = None, describe: bool = False,
    defined: bool = False, debug: bool = False,
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
    request = wire.eval_request(
        unit.code, declare=unit.names, print_value=print_value, batch=batch, line=unit.line, debug=debug
    )
    if describe and unit.names:
        request["bindings"] = True
    return request


def _no_scrub(text: str) -> str:
    return text


def _scrubbed_error(error: wire.RemoteError | None, scrub: Callable[[str], str]) -> wire.RemoteError | None:
    if error is None or scrub is _no_scrub:
        return error
    return error._replace(message=scrub(error.message), stack=tuple(scrub(line) for line in error.stack))


def scrubbed(result: wire.EvalResult, scrub: Callable[[str], str]) -> wire.EvalResult:
    """The result with every text a person could see passed through `scrub` (secret masking)."""
    if scrub is _no_scrub:
        return result
    return result._replace(
        output=scrub(result.output),
        value=None if result.value is None else scrub(result.value),
        error=_scrubbed_error(result.error, scrub),
    )


def scrubbed_event(event: wire.Event, scrub: Callable[[str], str]) -> wire.Event:
    if scrub is _no_scrub:
        return event
    return event._replace(text=scrub(event.text), error=_scrubbed_error(event.error, scrub))


SCRIPT_BATCH = 256


def runs(
    items: Iterable[T | None], budget: int, cost: Callable[[T], int], *, size: int | None = None
) -> Iterator[list[T] | None]:
    """Runs of items costing at most about `budget` characters in all (a
    request line has a limit) and at most `size` items; a larger item goes
    alone. A None (the script's next part has not arrived) ends the run in
    hand, so that what has come is sent, and is passed on."""
    run: list[T] = []
    length = 0
    for item in items:
        if item is None:
            if run:
                yield run
                run, length = [], 0
            yield None
            continue
        price = cost(item)
        if run and length + price > budget:
            yield run
            run, length = [], 0
        run.append(item)
        length += price
        if len(run) == size:
            yield run
            run, length = [], 0
    if run:
        yield run


def _text_cost(text: str) -> int:
    """What a text may take in a request line: JSON may write a character in 6 bytes."""
    return len(text) if text.isascii() else 6 * len(text)


def _unit_cost(unit: scanner.Unit) -> int:
    return _text_cost(unit.code) + 64


def _piece_cost(piece: tuple[str, int]) -> int:
    return _text_cost(piece[0]) + 3


def _texts(pieces: list[tuple[str, int]]) -> list[str]:
    return [text for text, _ in pieces]


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
        debug: bool = False,
    ) -> wire.EvalResult:
        """Send one unit and wait; Ctrl-C while waiting interrupts the image.

        Once interrupted, the image has `patience` seconds to answer: one
        that does not even then is hung (ConnectionLost), not busy.
        """
        request = request_for(unit, describe=self.describe, defined=defined, debug=debug)
        reply = self._wait_interruptibly(request, on_interrupt, patience)
        return scrubbed(result_of(unit, reply), self.scrub)

    def _wait_interruptibly(
        self, request: dict[str, Any], on_interrupt: Callable[[], None] | None, patience: float | None
    ) -> dict[str, Any]:
        """Send request and wait for its reply; Ctrl-C meanwhile interrupts."""
        return self._await(self.connection.send(request), on_interrupt, patience)

    def _await(
        self, request_id: int, on_interrupt: Callable[[], None] | None, patience: float | None,
        interrupts: list[int] | None = None,
    ) -> dict[str, Any]:
        """Wait for a reply; each Ctrl-C meanwhile interrupts the image, which
        then has `patience` seconds to answer. `interrupts`: those already sent."""
        interrupts = [] if interrupts is None else interrupts
        while True:
            try:
                reply = self.connection.wait(request_id, timeout=patience if interrupts else None)
                break
            except KeyboardInterrupt:
                self._interrupt(on_interrupt, interrupts)
        for interrupt_id in interrupts:
            self.connection.discard(interrupt_id)
        return reply

    def _interrupt(self, on_interrupt: Callable[[], None] | None, interrupts: list[int]) -> None:
        if on_interrupt:
            on_interrupt()
        interrupts.append(self.connection.send(wire.interrupt_request()))

    def file_in(
        self,
        pieces: Iterable[tuple[str, int] | None],
        *,
        name: str,
        keep_going: bool,
        on_interrupt: Callable[[], None] | None = None,
        source: Any = None,
    ) -> wire.EvalResult:
        """Have the image file a text in with its own reader, as `gst FILE`
        does: `pieces` make the text, each ending just before a statement or
        declaration (see scanner.Stretch.pieces), with the line it begins
        on; a None among them says the next has not arrived yet and `source`
        is where it will come from.

        Output and errors arrive as events while it runs; the result says
        whether any statement failed. Cut at its statements, the text lets
        the image stop between two pieces after the first failure (without
        keep_going), and even with it, one whole piece changed the order in
        which processes of equal priority ran (fidelity: process-yield). A
        text that fits one request goes in one, so that the image can see it
        is the file `name` names (and record it as the source of what it
        compiles); a longer one, or one still arriving, goes on in fileInMore
        requests as it comes, a few ahead of the image, so that neither end
        holds it all.
        """
        batches = runs(pieces, self._line_budget(), _piece_cost)
        first = next(batches, [])
        while first is None:  # nothing has come yet
            self._wait_for(source)
            first = next(batches, [])
        second = next(batches, _END)
        request = wire.file_in_request(
            _texts(first), name=name, line=first[0][1] if first else 1, keep_going=keep_going,
            more=second is not _END,
        )
        if second is _END:
            reply = self._wait_interruptibly(request, on_interrupt, None)
            return scrubbed(wire.EvalResult.from_reply(reply), self.scrub)
        request_id = self.connection.send(request)
        sent: list[int] = []
        interrupts: list[int] = []
        try:
            self._send_more(request_id, itertools.chain([second], batches), sent, source)
        except KeyboardInterrupt:  # the image ends the file-in, and skips what was sent
            self._interrupt(on_interrupt, interrupts)
        reply = self._await(request_id, on_interrupt, None, interrupts)
        for more_id in sent:  # each was answered: taken, or skipped once the file-in ended
            self.connection.discard(more_id)
        return scrubbed(wire.EvalResult.from_reply(reply), self.scrub)

    def _send_more(
        self, of: int, batches: Iterator[list[tuple[str, int]] | None], sent: list[int], source: Any
    ) -> None:
        """The fileInMore requests of file-in `of`, as the text comes, at most
        a few ahead of what the image has taken; the last says it is the
        last. A piece the image skips (the file-in ended) stops them."""

        def requests() -> Iterator[dict[str, Any] | None]:
            held: list[str] | None = None  # a run, until it is known whether it is the last
            for batch in batches:
                if held is not None:
                    yield wire.file_in_more_request(held, more=True, of=of)
                    held = None
                if batch is None:
                    yield None
                else:
                    held = _texts(batch)
            yield wire.file_in_more_request(held or [], more=False, of=of)

        def on_sent(request: dict[str, Any]) -> None:
            sent.append(request["id"])

        def on_reply(_request: dict[str, Any], reply: dict[str, Any]) -> bool:
            return bool(reply.get("ok"))

        self.connection.pipeline(requests(), on_reply, window=4, on_sent=on_sent, source=source)

    def _wait_for(self, source: Any) -> None:
        """Until `source` has more, read what the image sends meanwhile."""
        self.connection.pipeline(iter([None]), lambda _request, _reply: True, source=source)

    def _max_line(self) -> int:
        """The longest request line the image takes (hello's maxLine)."""
        info = self.connection.info
        return info.max_line if info is not None else wire.DEFAULT_MAX_LINE

    def _line_budget(self) -> int:
        """How much code one request may carry (see wire.budget_for)."""
        return wire.budget_for(self._max_line())

    def run_units(
        self,
        units: Iterable[scanner.Unit | None],
        on_outcome: Callable[[Outcome], bool],
        *,
        print_values: bool,
        keep_going: bool,
        source: Any = None,
    ) -> None:
        """Pipeline units in script batches; on_outcome answers False to stop.

        One request per statement would pay the server's per-request costs
        (queueing, process switches, a reply line) 10,000 times for a long
        script; a batch pays them once. Each statement's result comes as an
        event right after the output it wrote, so values and output stay in
        order. A None among the units says the next has not arrived: what
        has is sent, and the next is waited for on `source`.
        """
        batch = None if keep_going else f"s{next(_batches)}"
        pending: dict[int, list[scanner.Unit]] = {}  # id(request) -> its units
        cursors: dict[Any, Iterator[scanner.Unit]] = {}  # request id -> the units still to answer
        stopped = False

        def requests() -> Iterator[dict[str, Any] | None]:
            for chunk in runs(units, self._line_budget(), _unit_cost, size=SCRIPT_BATCH):
                if chunk is None:
                    yield None
                    continue
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
            self.connection.pipeline(requests(), on_reply, window=8, on_sent=sent, source=source)
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
                    self._interrupt(None, interrupts)
                    stopping = time.monotonic()
        finally:
            self._results = None
            self.on_event = shown
            for interrupt_id in interrupts:
                self.connection.discard(interrupt_id)

    def request_room(self) -> int:
        """The longest request line the image takes, less room for the id."""
        return self._max_line() - 64

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

    def debug(
        self, action: str, *, frame: int | None = None, code: str | None = None,
        on_interrupt: Callable[[], None] | None = None, patience: float | None = None,
    ) -> dict[str, Any]:
        """A request to the debugger of the kept process; Ctrl-C while it
        runs code (eval, retry, return, proceed) interrupts the image."""
        reply = self._wait_interruptibly(wire.debug_request(action, frame=frame, code=code), on_interrupt, patience)
        reply = self._scrub_fields(reply, ("value",))
        if isinstance(reply.get("receiver"), dict):
            reply["receiver"] = self._scrub_fields(reply["receiver"], ("value",))
        if isinstance(reply.get("variables"), list):
            reply["variables"] = [self._scrub_fields(v, ("value",)) for v in reply["variables"] if isinstance(v, dict)]
        return reply

    def complete(self, prefix: str, kind: str, *, timeout: float = 2.0) -> list[dict[str, Any]]:
        reply = self.connection.request(wire.complete_request(prefix, kind), timeout=timeout)
        return list(reply.get("candidates", ())) if reply.get("ok") else []
