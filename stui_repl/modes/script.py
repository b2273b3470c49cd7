"""Scripted mode: evaluate a whole text, statement by statement.

Used for piped stdin, -c and -f. The statements are pipelined to the image
(one round trip per statement would be far too slow for long scripts), and
the server skips the rest of the batch after the first error unless
--keep-going. A statement's output comes before its value, as in the REPL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..client import scanner
from ..client.evaluator import Outcome
from ..commands import REGISTRY, Context
from ..errors import EXIT_OK, EXIT_SMALLTALK_ERROR
from ..render import JsonRenderer, PlainRenderer

if TYPE_CHECKING:
    from ..session.controller import SessionController


def _groups(units: list[scanner.Unit]) -> Iterator[list[scanner.Unit]]:
    """Runs of evaluable units, with each meta line on its own."""
    run: list[scanner.Unit] = []
    for unit in units:
        if unit.kind == "meta":
            if run:
                yield run
                run = []
            yield [unit]
        else:
            run.append(unit)
    if run:
        yield run


def error_location(source: str, outcome: Outcome) -> str:
    error = outcome.result.error
    line = outcome.unit.line
    column = None
    if error is not None and error.line is not None:
        line, column = error.line, error.column
    return f"{source}:{line}:" + (f"{column}:" if column else "") + " "


def run(
    text: str,
    controller: SessionController,
    renderer: PlainRenderer,
    *,
    source: str,
    print_values: bool,
    keep_going: bool,
) -> int:
    """Evaluate text; answer the exit status (0, or 1 after a Smalltalk error).

    With a session, the controller records what each statement assigned, to
    be saved when the script ends.
    """
    context = Context(renderer, controller)
    failed = False

    def on_outcome(outcome: Outcome) -> bool:
        nonlocal failed
        result = outcome.result
        controller.record(outcome.unit, result)
        if isinstance(renderer, JsonRenderer):
            renderer.record(outcome.unit.line, outcome.unit.code, result)
        else:
            renderer.output(result.output)
            if result.ok and print_values and outcome.unit.kind == "statement":
                renderer.value(result)
        if result.ok:
            return True
        failed = True
        assert result.error is not None
        context.last_error = result.error
        if not isinstance(renderer, JsonRenderer):
            renderer.flush()
            renderer.error(result.error, where=error_location(source, outcome))
        return keep_going

    for group in _groups(scanner.split_script(text)):
        if group[0].kind == "meta":
            REGISTRY.run(context, group[0].code)
            if context.quit_requested:
                break
            continue
        context.evaluator.run_units(group, on_outcome, print_values=print_values, keep_going=keep_going)
        if failed and not keep_going:
            break
    renderer.flush()
    return EXIT_SMALLTALK_ERROR if failed else EXIT_OK
