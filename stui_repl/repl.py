"""The interactive REPL on prompt_toolkit.

Enter submits once the input is complete (brackets, strings and comments
closed) and otherwise opens a new line; Escape Enter always opens one. Tab
completes class names, selectors and workspace variables from the image, and
meta-commands. Ctrl-C while code runs interrupts it in the image; at the
prompt it clears the line. Ctrl-D quits.
"""

from __future__ import annotations

from collections.abc import Iterable

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer
from pygments.lexers.smalltalk import SmalltalkLexer

from . import __version__, meta, scanner
from .connection import Connection
from .errors import EXIT_OK, EXIT_UNREACHABLE, ConnectionLost
from .evaluator import Evaluator
from .launcher import RunningImage
from .render import RichRenderer
from .wire import EvalResult, RemoteError

PROMPT = "st> "
CONTINUATION = "... "


class SmalltalkCompleter(Completer):
    """Asks the image; a slow or failing image just means no completions."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        kind, prefix = scanner.completion_context(document.text_before_cursor)
        if kind == "meta":
            for name in meta.REGISTRY.names():
                if name.startswith(prefix.removeprefix(":")):
                    yield Completion(":" + name, start_position=-len(prefix), display_meta="meta-command")
            return
        if kind not in ("name", "selector") or (not prefix and not complete_event.completion_requested):
            return
        try:
            candidates = self.evaluator.complete(prefix, kind)
        except (ConnectionLost, OSError):
            return
        for candidate in candidates:
            text = str(candidate.get("text", ""))
            yield Completion(text, start_position=-len(prefix), display_meta=str(candidate.get("type", "")))


def _key_bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        text = buffer.text
        if text.lstrip().startswith(":") or scanner.is_complete(text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


class Repl:
    def __init__(self, connection: Connection, image: RunningImage | None = None) -> None:
        self.connection = connection
        self.image = image
        self.evaluator = Evaluator(connection)
        self.renderer = RichRenderer()
        self.context = meta.Context(self.evaluator, self.renderer)
        self.state = "connected"
        self.session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(),
            lexer=PygmentsLexer(SmalltalkLexer),
            completer=SmalltalkCompleter(self.evaluator),
            complete_while_typing=False,
            key_bindings=_key_bindings(),
            multiline=True,
            prompt_continuation=lambda width, line_number, wrap_count: CONTINUATION.rjust(width),
            bottom_toolbar=self._toolbar,
            enable_history_search=True,
        )

    # -- presentation ---------------------------------------------------------------

    def _toolbar(self) -> str:
        info = self.connection.info
        where = "embedded image" if self.image else self.connection.address
        image = f"{info.version} ({where})" if info else where
        workspace = f" · workspace {info.workspace}" if info else ""
        return f" {image}{workspace} · {self.state} · :help · Ctrl-D quits "

    def _greet(self) -> None:
        info = self.connection.info
        image = f"{info.version}" if info else "an image"
        where = "embedded" if self.image else self.connection.address
        self.renderer.info(f"stui {__version__} on {image} ({where}). :help for help, Ctrl-D to quit.")
        if info and info.defects:
            open_defects = [d for d in info.defects if not d.get("workedAround")]
            text = f"this image has {len(info.defects)} known defects, {len(info.defects) - len(open_defects)} worked around"
            if open_defects:
                text += "; not fixed: " + "; ".join(str(d.get("summary", d.get("id"))) for d in open_defects)
            self.renderer.warning(text + " (:defects lists them)")

    def _show(self, unit: scanner.Unit, result: EvalResult, source: str) -> None:
        self.renderer.output(result.output)
        if result.ok:
            if result.defined:
                self.renderer.info("defined " + ", ".join(result.defined))
            elif unit.kind == "statement":
                self.renderer.value(result)
            return
        assert result.error is not None
        self.context.last_error = result.error
        self.renderer.error(result.error)
        self._point_at(result.error, source)

    def _point_at(self, error: RemoteError, source: str) -> None:
        """Show the line of a compile error with a caret under the column."""
        if error.line is None or error.column is None:
            return
        lines = source.splitlines()
        if not 1 <= error.line <= len(lines):
            return
        self.renderer.info("  " + lines[error.line - 1])
        self.renderer.info("  " + " " * (error.column - 1) + "^")

    # -- the loop ------------------------------------------------------------------

    def evaluate(self, text: str) -> None:
        for unit in self.evaluator.units_for_input(text):
            if unit.kind == "meta":
                meta.REGISTRY.run(self.context, unit.code)
                if self.context.quit_requested:
                    return
                continue
            result = self.evaluator.evaluate_unit(unit, on_interrupt=lambda: self.renderer.info("interrupting…"))
            self._show(unit, result, text)
            if not result.ok:
                return

    def run(self) -> int:
        self._greet()
        while not self.context.quit_requested:
            try:
                text = self.session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if not text.strip():
                continue
            try:
                if text.lstrip().startswith(":") and "\n" not in text.strip():
                    meta.REGISTRY.run(self.context, text.strip())
                else:
                    self.evaluate(text)
            except ConnectionLost as exc:
                self.state = "disconnected"
                self.renderer.problem(f"stui: {exc}")
                return EXIT_UNREACHABLE
        return EXIT_OK
