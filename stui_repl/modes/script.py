"""Scripted mode: piped stdin, -c and -f.

Two ways to run a script:

- **Filed in by the image** (`-f FILE`, and -q, when no values are printed, no
  session is used and the text holds no `:` lines): the image reads,
  compiles and runs the text with its own reader, exactly as `gst FILE`
  does, and streams back what the code writes and the errors nothing
  handled. An error is one line on stderr naming the file and line; the
  first one ends the script unless --keep-going.
- **Statement by statement** otherwise: each statement's value is printed
  after the output it wrote, the variables a session keeps are recorded,
  and `:` lines are meta-commands. The statements are pipelined in batches;
  the server skips the rest after the first failure unless --keep-going.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..client import scanner, wire
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


def files_in(
    units: list[scanner.Unit], controller: SessionController, renderer: PlainRenderer, *, print_values: bool
) -> bool:
    """Whether the image's own reader can run this script (see the module docstring)."""
    if print_values or isinstance(renderer, JsonRenderer) or controller.active is not None:
        return False
    return not any(unit.kind == "meta" for unit in units)


def show_event(renderer: PlainRenderer, event: wire.Event, source: str) -> None:
    """Output and errors as the image reports them, while the script runs.
    An error names its file and line: the file-in's own, or the script's."""
    if event.kind == "output":
        renderer.output(event.text, event.stream)
    elif event.kind == "error" and event.error is not None and not isinstance(renderer, JsonRenderer):
        error = event.error
        where = f"{source}:{error.line}: " if error.file is None and error.line is not None else ""
        renderer.error(error, where=where)


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
    controller.show_events(lambda event: show_event(renderer, event, source))
    evaluator = context.evaluator
    units = scanner.split_script(text)  # once: 10,000 statements take 50 ms to scan
    if files_in(units, controller, renderer, print_values=print_values):
        result = evaluator.file_in(text, name=source, keep_going=keep_going, units=units)
        evaluator.settle()
        renderer.flush()
        if result.ok:
            return EXIT_OK
        assert result.error is not None
        if not result.error.reported and result.error.kind != "failed":
            renderer.error(result.error, where=f"{source}: ")
        return EXIT_SMALLTALK_ERROR
    failed = False

    def on_outcome(outcome: Outcome) -> bool:
        nonlocal failed
        result = outcome.result
        controller.record(outcome.unit, result)
        if isinstance(renderer, JsonRenderer):
            renderer.record(outcome.unit.line, outcome.unit.code, result)
        elif result.ok and print_values and outcome.unit.kind == "statement":
            renderer.value(result)
        if result.ok:
            return True
        failed = True
        assert result.error is not None
        context.last_error = result.error
        if not isinstance(renderer, JsonRenderer) and not result.error.reported:
            renderer.error(result.error, where=error_location(source, outcome))
        return keep_going

    for group in _groups(units):
        if group[0].kind == "meta":
            REGISTRY.run(context, group[0].code)
            if context.quit_requested:
                break
            continue
        evaluator.run_units(group, on_outcome, print_values=print_values, keep_going=keep_going)
        if failed and not keep_going:
            break
    evaluator.settle()
    renderer.flush()
    return EXIT_SMALLTALK_ERROR if failed else EXIT_OK
