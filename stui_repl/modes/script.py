"""Scripted mode: piped stdin, -c and -f.

A script is read as it arrives (scanner.ScriptScanner), so a pipe's
statements run as they come and a script of any length takes the memory of
its longest statement. Two ways to run it:

- **Filed in by the image** (`-f FILE`, and -q, when no values are printed,
  no session is used and the script's beginning holds no `:` line): the
  image reads, compiles and runs the text with its own reader, exactly as
  `gst FILE` does, and streams back what the code writes and the errors
  nothing handled. An error is one line on stderr naming the file and line;
  the first one ends the script unless --keep-going.
- **Statement by statement** otherwise: each statement's value is printed
  after the output it wrote, assignments make workspace variables (which
  `:vars` lists and a session keeps), and `:` lines are meta-commands. The
  statements are pipelined in batches; the server skips the rest after the
  first failure unless --keep-going.

The beginning that decides is what has come at once, up to 256 KiB: all
of nearly every script. A `:` line after it, in a script being filed in, ends
that file-in; the command runs, and a new file-in takes the rest.
"""

from __future__ import annotations

import codecs
import itertools
import os
import select
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from ..client import scanner, wire
from ..client.evaluator import Outcome
from ..commands import REGISTRY, Context
from ..errors import EXIT_OK, EXIT_SMALLTALK_ERROR, UsageError
from ..render import JsonRenderer, PlainRenderer

if TYPE_CHECKING:
    from ..session.controller import SessionController

BLOCK = 1 << 16  # how much is read at a time
BEGINNING = 1 << 18  # how much of a script decides how it runs (see the module docstring)


class ScriptInput:
    """A script's text as it arrives: read from a file or a pipe in blocks
    (UTF-8 whatever the locale, other bytes kept as gst reads bytes), or
    given whole (-c)."""

    def __init__(self, name: str, *, stream: BinaryIO | None = None, text: str | None = None) -> None:
        self.name = name
        self._stream = stream
        self._text = text

    def fileno(self) -> int:
        """Where the rest will come from (what a wait selects on)."""
        assert self._stream is not None
        return self._stream.fileno()

    def stretches(self) -> Iterator[scanner.Stretch | None]:
        """The script in stretches whose units are known; None while the next
        part has not arrived (read it once fileno() is readable)."""
        script = scanner.ScriptScanner()
        try:
            if self._text is not None:
                parts: Iterator[str | None] = iter([self._text])
            else:
                parts = self._parts()
            for part in parts:
                if part is None:
                    yield None
                elif (stretch := script.feed(part)) is not None:
                    yield stretch
        except scanner.ScriptTooLarge as exc:
            raise UsageError(f"{self.name} holds {exc}: not a script") from None
        last = script.end()
        if last is not None:
            yield last

    def _parts(self) -> Iterator[str | None]:
        assert self._stream is not None
        fd = self._stream.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        while True:
            try:
                if not select.select([fd], [], [], 0)[0]:
                    yield None
                    continue
                data = os.read(fd, BLOCK)
            except OSError as exc:
                raise UsageError(f"cannot read {self.name}: {exc.strerror or exc}") from None
            if not data:
                break
            yield decoder.decode(data)
        yield decoder.decode(b"", final=True)


def _beginning(stretches: Iterator[scanner.Stretch | None]) -> list[scanner.Stretch | None]:
    """The stretches that come at once, up to BEGINNING characters: the
    beginning that decides how a script runs (see the module docstring)."""
    head: list[scanner.Stretch | None] = []
    length = 0
    for stretch in stretches:
        head.append(stretch)
        if stretch is None:
            break
        length += len(stretch.text)
        if length >= BEGINNING:
            break
    return head


def _units(stretches: Iterator[scanner.Stretch | None]) -> Iterator[scanner.Unit | None]:
    for stretch in stretches:
        if stretch is None:
            yield None
        else:
            yield from stretch.units


# A piece of a file-in: the unit it holds (none: only blanks and comments),
# its text, and the line the text begins on.
Piece = tuple[scanner.Unit | None, str, int]


def _pieces(stretches: Iterator[scanner.Stretch | None]) -> Iterator[Piece | None]:
    for stretch in stretches:
        if stretch is None:
            yield None
            continue
        units = stretch.units  # one per piece; or none, and one piece of blanks and comments
        for i, (text, line) in enumerate(stretch.numbered_pieces()):
            yield (units[i] if units else None), text, line


def _unit_of(item: scanner.Unit | Piece | None) -> scanner.Unit | None:
    return item if item is None or isinstance(item, scanner.Unit) else item[0]


def _is_meta(item: scanner.Unit | Piece | None) -> bool:
    unit = _unit_of(item)
    return unit is not None and unit.kind == "meta"


def error_location(source: str, outcome: Outcome) -> str:
    error = outcome.result.error
    line = outcome.unit.line
    column = None
    if error is not None and error.line is not None:
        line, column = error.line, error.column
    return f"{source}:{line}:" + (f"{column}:" if column else "") + " "


def files_in(controller: SessionController, renderer: PlainRenderer, *, print_values: bool) -> bool:
    """Whether the image's own reader runs this script (see the module docstring)."""
    return not (print_values or isinstance(renderer, JsonRenderer) or controller.active is not None)


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
    script: ScriptInput,
    controller: SessionController,
    renderer: PlainRenderer,
    *,
    source: str,
    print_values: bool,
    keep_going: bool,
) -> int:
    """Evaluate the script; answer the exit status (0, or 1 after a Smalltalk error).

    With a session, the controller records what each statement assigned, to
    be saved when the script ends.
    """
    context = Context(renderer, controller)
    controller.show_events(lambda event: show_event(renderer, event, source))
    evaluator = context.evaluator
    filing = files_in(controller, renderer, print_values=print_values)
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

    def file_in(pieces: Iterator[Piece | None]) -> None:
        nonlocal failed
        result = evaluator.file_in(
            (None if piece is None else piece[1:] for piece in pieces),
            name=source, keep_going=keep_going, source=script,
        )
        if result.ok:
            return
        failed = True
        assert result.error is not None
        if not result.error.reported and result.error.kind != "failed":
            renderer.error(result.error, where=f"{source}: ")

    stretches = script.stretches()
    head = _beginning(stretches)
    if any(_is_meta(unit) for stretch in head if stretch is not None for unit in stretch.units):
        filing = False
    stretches = itertools.chain(head, stretches)
    items = _pieces(stretches) if filing else _units(stretches)
    for meta, group in itertools.groupby(items, key=_is_meta):
        if meta:
            for item in group:
                unit = _unit_of(item)
                assert unit is not None
                REGISTRY.run(context, unit.code)
                if context.quit_requested:
                    break
            if context.quit_requested:
                break
        elif filing:
            file_in(group)  # type: ignore[arg-type]
        else:
            evaluator.run_units(
                group, on_outcome, print_values=print_values, keep_going=keep_going,  # type: ignore[arg-type]
                source=script,
            )
        if failed and not keep_going:
            break
    evaluator.settle()
    renderer.flush()
    return EXIT_SMALLTALK_ERROR if failed else EXIT_OK
