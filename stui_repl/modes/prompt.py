"""prompt_toolkit's side of the REPL: the completer, the history adapter, the
key bindings, and the prompt session made of them.

Importing prompt_toolkit takes longer than anything else stui does before
its first prompt, so modes.repl imports this module only when it builds the
prompt, after the image is up. pygments' Smalltalk lexer waits even longer:
until the first prompt is drawn (SmalltalkHighlighting).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import Application
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.filters import has_focus
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import DynamicLexer, Lexer, PygmentsLexer
from prompt_toolkit.output import ColorDepth

from ..client import scanner
from ..commands import REGISTRY, Context
from ..errors import StuiError

if TYPE_CHECKING:
    from ..session.active import ActiveSession
    from ..settings import Settings

CONTINUATION = "... "


class SmalltalkCompleter(Completer):
    """Asks the image; a slow or failing image just means no completions."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.lstrip().startswith(":") and " " in before.lstrip():
            yield from self._meta_argument(before.lstrip())
            return
        kind, prefix = scanner.completion_context(before)
        if kind == "meta":
            for name in REGISTRY.names():
                if name.startswith(prefix.removeprefix(":")):
                    yield Completion(":" + name, start_position=-len(prefix), display_meta="meta-command")
            return
        if kind not in ("name", "selector") or (not prefix and not complete_event.completion_requested):
            return
        try:
            candidates = self.context.evaluator.complete(prefix, kind)
        except (StuiError, OSError):  # not connected, or the link just broke: no completions
            return
        for candidate in candidates:
            text = str(candidate.get("text", ""))
            yield Completion(text, start_position=-len(prefix), display_meta=str(candidate.get("type", "")))

    def _meta_argument(self, line: str) -> Iterable[Completion]:
        """`:session sw` -> switch, `:session switch wo` -> work: the command's own completer."""
        name, _, typed = line.removeprefix(":").partition(" ")
        entry = REGISTRY.lookup(name)
        if entry is None or entry.complete is None:
            return
        last_word = typed.rsplit(" ", 1)[-1]
        for candidate in entry.complete(self.context, typed):
            word = candidate.rsplit(" ", 1)[-1]
            yield Completion(word, start_position=-len(last_word))


class SessionHistory(History):
    """The open session's history as prompt_toolkit sees it: Up arrow and Ctrl-R.

    Storing goes through the session, which leaves out `:secret` lines and
    anything holding a secret's plaintext.
    """

    def __init__(self, active: ActiveSession) -> None:
        super().__init__()
        self.active = active

    def load_history_strings(self) -> Iterable[str]:
        return reversed(self.active.session.history_inputs())

    def store_string(self, string: str) -> None:
        self.active.record_input(string)


def key_bindings(settings: Callable[[], Settings]) -> KeyBindings:
    bindings = KeyBindings()
    # Only the input itself: in Ctrl-R search, Enter must end the search.
    editing_input = has_focus(DEFAULT_BUFFER)

    @bindings.add("enter", filter=editing_input)
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        text = buffer.text
        mode = settings()["multiline"]
        runs = mode == "off" or (mode == "auto" and scanner.is_complete(text))
        if text.lstrip().startswith(":") or runs:
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    @bindings.add("escape", "enter", filter=editing_input)
    def _newline(event: KeyPressEvent) -> None:
        if settings()["multiline"] == "on":
            event.current_buffer.validate_and_handle()
        else:
            event.current_buffer.insert_text("\n")

    return bindings


class SmalltalkHighlighting:
    """pygments' Smalltalk lexer, made once the first prompt has been drawn.

    Importing pygments' lexers and compiling the Smalltalk rules takes about
    10 ms, which the first prompt need not wait for: until then the input
    is plain, and it is redrawn in colour as soon as the lexer is ready,
    long before a person has typed much.
    """

    def __init__(self) -> None:
        self.lexer: Lexer | None = None

    def dynamic(self) -> DynamicLexer:
        """The lexer a prompt session uses: plain until the real one is ready."""
        return DynamicLexer(lambda: self.lexer)

    def after_render(self, app: Application[Any]) -> None:
        """An after_render handler: the first time, the prompt is on the
        screen (the renderer has flushed it); make the lexer and draw again."""
        if self.lexer is not None:
            return
        from pygments.lexers.smalltalk import SmalltalkLexer

        self.lexer = PygmentsLexer(SmalltalkLexer)
        app.invalidate()


HIGHLIGHTING = SmalltalkHighlighting()


def prompt_session(
    context: Context,
    active: ActiveSession | None,
    settings: Callable[[], Settings],
    toolbar: Callable[[], Any],
    *,
    color: bool,
) -> PromptSession[str]:
    """A prompt for a session: its history is the session's."""
    session: PromptSession[str] = PromptSession(
        history=SessionHistory(active) if active is not None else InMemoryHistory(),
        lexer=HIGHLIGHTING.dynamic(),
        completer=SmalltalkCompleter(context),
        complete_while_typing=False,
        key_bindings=key_bindings(settings),
        multiline=True,
        prompt_continuation=lambda width, line_number, wrap_count: CONTINUATION.rjust(width),
        bottom_toolbar=toolbar,
        enable_history_search=True,
        enable_open_in_editor=True,  # Ctrl-X Ctrl-E (emacs) or v (vi): edit the input in $EDITOR
        color_depth=None if color else ColorDepth.MONOCHROME,
    )
    session.app.after_render += HIGHLIGHTING.after_render
    return session
