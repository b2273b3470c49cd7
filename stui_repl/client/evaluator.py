"""The evaluation core shared by the REPL and scripted mode.

It turns source text into protocol requests (via the scanner) and replies
into results. Interactive use evaluates one unit at a time so Ctrl-C can
interrupt it; scripts pipeline every unit and let the server skip the rest of
a batch after the first failure.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from . import scanner, wire
from .connection import Connection

_batches = itertools.count(1)


@dataclass(frozen=True)
class Outcome:
    """A unit and what became of it."""

    unit: scanner.Unit
    result: wire.EvalResult


def request_for(
    unit: scanner.Unit, *, print_value: bool = True, batch: str | None = None, describe: bool = False
) -> dict[str, Any]:
    """The protocol request that evaluates one scanned unit.

    `describe` asks the server to describe the variables the unit assigns,
    so that a session can record them without another round trip.
    """
    if unit.kind == "temps":
        return wire.declare_request(unit.names)
    if unit.kind == "declaration":
        return wire.eval_request(unit.code, mode="fileIn", print_value=print_value, batch=batch, line=unit.line)
    request = wire.eval_request(unit.code, declare=unit.names, print_value=print_value, batch=batch, line=unit.line)
    if describe and unit.names:
        request["bindings"] = True
    return request


def _no_scrub(text: str) -> str:
    return text


def scrubbed(result: wire.EvalResult, scrub: Callable[[str], str]) -> wire.EvalResult:
    """The result with every text a person could see passed through `scrub` (secret masking)."""
    if scrub is _no_scrub:
        return result
    error = result.error
    if error is not None:
        error = replace(error, message=scrub(error.message), stack=tuple(scrub(line) for line in error.stack))
    return replace(
        result,
        output=scrub(result.output),
        value=None if result.value is None else scrub(result.value),
        store=None if result.store is None or scrub(result.store) != result.store else result.store,
        error=error,
    )


SCRIPT_BATCH = 256


def _chunks(units: Iterable[scanner.Unit], size: int) -> Iterator[list[scanner.Unit]]:
    chunk: list[scanner.Unit] = []
    for unit in units:
        chunk.append(unit)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def script_unit(unit: scanner.Unit) -> dict[str, Any]:
    """One statement of a script request (see docs/protocol.md)."""
    if unit.kind == "temps":  # file-level | a b |: declare the variables
        return wire.script_unit("nil", line=unit.line, declare=unit.names)
    if unit.kind == "declaration":
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
    ) -> wire.EvalResult:
        """Send one unit and wait; Ctrl-C while waiting interrupts the image.

        Once interrupted, the image has `patience` seconds to answer: one
        that does not even then is hung (ConnectionLost), not busy.
        """
        request_id = self.connection.send(request_for(unit, describe=self.describe))
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
        return scrubbed(result_of(unit, reply), self.scrub)

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
        script; a batch pays them once and still reports each statement.
        """
        batch = None if keep_going else f"s{next(_batches)}"
        pending: dict[int, list[scanner.Unit]] = {}

        def requests() -> Iterator[dict[str, Any]]:
            for chunk in _chunks(units, SCRIPT_BATCH):
                request = wire.script_request(
                    [script_unit(unit) for unit in chunk], print_value=print_values, batch=batch, keep_going=keep_going
                )
                pending[id(request)] = chunk
                yield request

        def on_reply(request: dict[str, Any], reply: dict[str, Any]) -> bool:
            chunk = pending.pop(id(request))
            if not reply.get("ok"):
                return on_outcome(Outcome(chunk[0], scrubbed(wire.EvalResult.from_reply(reply), self.scrub)))
            pending_units = iter(chunk)
            answered = 0
            results = wire.script_results(reply)
            for covered, result in results:
                # A result may stand for several statements compiled together;
                # its output and time belong to the last of them.
                for _ in range(covered - 1):
                    unit = next(pending_units, None)
                    if unit is None or not on_outcome(Outcome(unit, wire.EvalResult())):
                        return False
                unit = next(pending_units, None)
                if unit is None or not on_outcome(Outcome(unit, scrubbed(result_of(unit, result), self.scrub))):
                    return False
                answered += covered
            if answered < len(chunk) and all(r.get("ok") for _, r in results):
                # Nothing failed, yet statements went unanswered: say so rather
                # than end the script quietly.
                missing = wire.RemoteError("internal", f"the image answered {answered} of {len(chunk)} statements")
                return on_outcome(Outcome(chunk[answered], wire.EvalResult(error=missing))) and False
            return answered == len(chunk)

        self.connection.pipeline(requests(), on_reply, window=8)

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

    def replay(self, units: list[dict[str, Any]]) -> dict[str, Any]:
        """Run statements quietly, one compile for a run of them (restoring a workspace)."""
        return self.connection.request(wire.script_request(units, print_value=False))

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
