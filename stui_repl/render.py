"""Turning results into text: rich for people at a terminal, plain for pipes.

Both renderers answer the same methods, so meta-commands and the evaluation
core never care where their output goes. rich is imported only when the rich
renderer first needs it: the scripted path must stay quick to start, and the
REPL's greeting, plain text, is printed before rich is (see RichRenderer.info).
"""

from __future__ import annotations

import codecs
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .client.wire import EvalResult, RemoteError, output_bytes


class PlainRenderer:
    """Plain text: what scripts and pipes get."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._last = self.out

    def output(self, text: str, stream: str = "stdout") -> None:
        """What the code wrote, on stdout or stderr as it wrote it, at once:
        the very bytes, UTF-8 or not, as `gst FILE` writes them."""
        if not text:
            return
        target = self.err if stream == "stderr" else self.out
        if target is not self._last:
            self._last.flush()
            self._last = target
        raw = getattr(target, "buffer", None)
        if raw is None:  # a stream of text only (a StringIO): the text as it is
            target.write(text)
            return
        target.flush()  # what went through the text layer comes first
        raw.write(output_bytes(text))
        raw.flush()

    def value(self, result: EvalResult) -> None:
        if result.value is not None:
            self.out.write(result.value + "\n")

    def error(self, error: RemoteError, *, where: str = "") -> None:
        """One line on stderr; `where` (file:line:) replaces the error's own location."""
        self.out.flush()
        self.err.write(f"{where}{error.one_line(with_location=not where)}\n")
        self.err.flush()

    def trace(self, error: RemoteError) -> None:
        self.out.write(error.one_line() + "\n")
        for line in error.stack:
            self.out.write(f"  {line}\n")

    def info(self, text: str) -> None:
        self.out.write(text + "\n")

    def warning(self, text: str) -> None:
        self.err.write(f"warning: {text}\n")

    def problem(self, text: str) -> None:
        self.err.write(f"stui: {text}\n")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if not rows:
            self.out.write(f"{title}: none\n")
            return
        widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
        self.out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
        for row in rows:
            self.out.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")

    def flush(self) -> None:
        self.out.flush()

    def code(self, source: str, *, theme: str = "default") -> None:
        """Smalltalk source (a method, a class definition), as it is."""
        self.output(source.rstrip("\n") + "\n")


# A lone surrogate: a byte of output that is not UTF-8 (see wire.output_text).
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_line(record: dict[str, Any]) -> str:
    """One JSON record, readable (ensure_ascii=False), with each lone
    surrogate kept as its \\u escape, the wire protocol's own spelling: it
    cannot be written as UTF-8, and Python's json reads it back as the byte."""
    line = json.dumps(record, ensure_ascii=False)
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", line)


class JsonRenderer(PlainRenderer):
    """--format json: one object per statement, on stdout, with the output
    the statement wrote (gathered from the events before its result)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        super().__init__(out, err)
        self._gathered: list[str] = []

    def output(self, text: str, stream: str = "stdout") -> None:
        self._gathered.append(text)

    def record(self, line: int, code: str, result: EvalResult) -> None:
        # Joined as bytes: a UTF-8 sequence split over two events is whole again.
        output = output_bytes("".join(self._gathered)).decode("utf-8", "surrogateescape")
        self._gathered = []
        record: dict[str, Any] = {"line": line, "code": code, "ok": result.ok, "output": output}
        if result.ok:
            for key, value in (("value", result.value), ("class", result.value_class)):
                if value is not None:
                    record[key] = value
        else:
            assert result.error is not None
            error = result.error
            record["error"] = {
                key: value
                for key, value in (
                    ("kind", error.kind), ("class", error.exception_class), ("message", error.message),
                    ("line", error.line), ("column", error.column), ("stack", list(error.stack)),
                )
                if value not in (None, [])
            }
        record["ms"] = result.ms
        self.out.write(json_line(record) + "\n")


class RichRenderer(PlainRenderer):
    """Colour for people: values with their class dimmed, errors in red."""

    def __init__(self, console: Any = None, *, color: bool = True) -> None:
        super().__init__()
        self._console = console
        self._err_console: Any = None
        self._color = color
        self._mid_line = False  # the code's output so far ends without a line end
        # Output is bytes and a terminal needs text: one UTF-8 decoder per
        # stream holds a sequence split over two events until its end.
        self._decoders = {stream: codecs.getincrementaldecoder("utf-8")("replace") for stream in ("stdout", "stderr")}

    @property
    def console(self) -> Any:
        """rich's console on stdout, made the first time it is wanted."""
        if self._console is None:
            self._console = self._new_console(stderr=False)
        return self._console

    @property
    def err_console(self) -> Any:
        """Errors and notices go to stderr, as on the command line."""
        if self._err_console is None:
            self._err_console = self._new_console(stderr=True)
        return self._err_console

    def _new_console(self, *, stderr: bool) -> Any:
        from rich.console import Console

        return Console(stderr=stderr, highlight=False, soft_wrap=True, no_color=not self._color)

    def prepare(self) -> None:
        """Import rich and make the consoles now (about 20 ms): the REPL
        calls this once its first prompt is drawn, so that the first value
        shown does not wait for them."""
        from rich.text import Text  # noqa: F401 - what every method but info() prints with

        if self._console is None:
            self._console = self._new_console(stderr=False)
        if self._err_console is None:
            self._err_console = self._new_console(stderr=True)

    def page(self, show: Callable[[], None], *, command: str) -> None:
        """Run show() with its output going through a pager (the text keeps its styles)."""
        import subprocess

        with self.console.capture() as captured:
            show()
        environment = {**os.environ, "LESS": os.environ.get("LESS", "-R")}
        try:
            done = subprocess.run(command, shell=True, input=captured.get(), text=True, env=environment, check=False)
        except OSError:
            done = None
        if done is None or done.returncode in (126, 127):  # the shell could not run the pager
            self.warning(f"the pager {command!r} could not be run; showing the result here")
            self.console.out(captured.get(), end="")

    def height_of(self, text: str) -> int:
        """How many screen lines text takes, wrapped at the console's width."""
        width = max(self.console.width, 1)
        return sum(max(1, -(-len(line) // width)) for line in text.split("\n"))

    def output(self, text: str, stream: str = "stdout") -> None:
        """What the code wrote, as it wrote it (a partial line stays partial).
        A byte that is not UTF-8 shows as U+FFFD."""
        if text:
            self._show_output(self._decoders[stream].decode(output_bytes(text)), stream)

    def _settle(self) -> None:
        """Bytes still waiting for the rest of their UTF-8 sequence show as
        U+FFFD once stui shows something else: the rest will not come."""
        for stream, decoder in self._decoders.items():
            self._show_output(decoder.decode(b"", final=True), stream)

    def _show_output(self, text: str, stream: str) -> None:
        if not text:
            return
        if stream == "stderr":
            self.console.file.flush()
            self.err_console.file.write(text)
            self.err_console.file.flush()
        else:
            self.console.out(text, end="", highlight=False)
            self.console.file.flush()
        self._mid_line = not text.endswith("\n")

    def end_line(self) -> None:
        """What stui says next starts on a line of its own."""
        self._settle()
        if self._mid_line:
            self.console.out("")
            self._mid_line = False

    def value(self, result: EvalResult) -> None:
        from rich.text import Text

        if result.value is None:
            return
        self.end_line()
        line = Text(result.value)
        if result.value_class:
            line.append(f"  {result.value_class}", style="dim")
        self.console.print(line)

    def error(self, error: RemoteError, *, where: str = "") -> None:
        from rich.text import Text

        self.end_line()
        self.console.file.flush()
        self.err_console.print(Text(where + error.one_line(with_location=not where), style="bold red"))
        if error.debuggable:
            self.err_console.print(Text("  (:debug opens the debugger where it stopped; :trace shows the stack)", style="dim"))
        elif error.stack:
            self.err_console.print(Text("  (:trace shows the stack)", style="dim"))

    def trace(self, error: RemoteError) -> None:
        from rich.text import Text

        self.console.print(Text(error.one_line(), style="bold red"))
        for line in error.stack:
            self.console.print(Text(f"  {line}", style="red"))

    def info(self, text: str) -> None:
        self.end_line()
        if self._console is None and all(line.isprintable() for line in text.split("\n")):
            # Byte for byte what rich prints for it (it only expands tabs and
            # drops control characters, which this text has none of), without
            # importing rich: the REPL's greeting comes before its first prompt.
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            return
        from rich.text import Text

        self.console.print(Text(text))

    def warning(self, text: str) -> None:
        from rich.text import Text

        self.end_line()
        self.console.file.flush()
        self.err_console.print(Text(f"warning: {text}", style="yellow"))

    def problem(self, text: str) -> None:
        from rich.text import Text

        self.end_line()
        self.console.file.flush()
        self.err_console.print(Text(text, style="bold red"))

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        from rich.table import Table

        if not rows:
            self.info(f"{title}: none")
            return
        table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(str(v) for v in row))
        self.console.print(table)

    def flush(self) -> None:
        self.console.file.flush()

    def code(self, source: str, *, theme: str = "default") -> None:
        """Smalltalk source highlighted as the prompt highlights input: Pygments'
        Smalltalk lexer in the theme setting's colours, plain text left in the
        terminal's own colour (a theme's black would vanish on a dark screen)."""
        from pygments import highlight
        from pygments.formatters import Terminal256Formatter
        from pygments.lexers.smalltalk import SmalltalkLexer
        from pygments.util import ClassNotFound
        from rich.text import Text

        self.end_line()
        try:
            formatter = Terminal256Formatter(style=theme)
        except ClassNotFound:  # an unknown theme: :set theme already warns about it
            formatter = Terminal256Formatter()
        self.console.print(Text.from_ansi(highlight(source.rstrip("\n"), SmalltalkLexer(), formatter).rstrip("\n")))
