"""The interactive REPL on prompt_toolkit.

Enter submits once the input is complete (brackets, strings and comments
closed) and otherwise opens a new line; Escape Enter always opens one (the
`multiline` setting changes both). Tab completes class names, selectors and
workspace variables from the image, meta-commands and their arguments.
Ctrl-C while code runs interrupts it in the image; at the prompt it clears
the line. Ctrl-D quits.

The REPL drives a SessionController: the history Up arrow and Ctrl-R
search is the session's, every evaluation reports what it assigned to the
session, and settings changed with `:set` apply from the next prompt.

prompt_toolkit is imported when the Repl is made (modes.prompt), after the
image is up; rich and pygments' lexer once the first prompt is drawn.
"""

from __future__ import annotations

import gc
import os
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import __version__, paths, trust
from ..client import scanner, wire
from ..client.connection import Connection
from ..client.evaluator import Evaluator
from ..client.wire import EvalResult, RemoteError
from ..commands import REGISTRY, Context
from ..errors import EXIT_OK, ConnectionLost, StuiError
from ..image.supervisor import RECONNECTING, UNREACHABLE
from ..render import RichRenderer
from ..session.controller import SessionController

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from ..session.active import ActiveSession

PROMPT = "st> "


class Repl:
    def __init__(self, controller: SessionController, renderer: RichRenderer | None = None, *, color: bool = True) -> None:
        # Importing prompt_toolkit and making the prompt make some 20,000
        # objects that live as long as stui: the cyclic collector stays off
        # while they are made (cli keeps it off through all of start-up), and
        # they are frozen out of its way after (else it goes over them again
        # and again: about 7 ms of the start). Then it runs for the session.
        gc.disable()
        try:
            self.controller = controller
            self.color = color
            self.renderer = renderer or RichRenderer(color=color)
            self.context = Context(self.renderer, controller, ask_secret=self._ask_secret, confirm=self._confirm)
            self.supervisor = controller.supervise(notify=self._notify, changed=self._redraw)
            self._theme: tuple[str, Any] | None = None
            self._history_of: ActiveSession | None = None
            self.prompt_session = self._prompt_session()
        finally:
            gc.freeze()
            gc.enable()

    @property
    def evaluator(self) -> Evaluator:
        return self.context.evaluator

    @property
    def connection(self) -> Connection:
        return self.evaluator.connection

    def _prompt_session(self) -> PromptSession[str]:
        """A prompt for the current session: its history is the session's."""
        from .prompt import prompt_session

        self._history_of = self.controller.active
        session = prompt_session(
            self.context, self._history_of, lambda: self.controller.settings, self._toolbar, color=self.color
        )
        session.app.after_render += self._after_drawing
        return session

    def _after_drawing(self, app: Any) -> None:
        """Once a prompt is on the screen: rich for the renderer (the greeting
        did without), and the colour theme the first prompt was drawn
        without (it colours only the input, and there is none yet)."""
        self.renderer.prepare()
        if self._theme is None:
            from prompt_toolkit.application import run_in_terminal

            self._use_theme(self.controller.settings["theme"], warn=lambda text: run_in_terminal(
                lambda: self.renderer.warning(text)))
            app.invalidate()

    def _apply_settings(self) -> None:
        """Settings can change at any `:set`; the prompt reads them before each input."""
        from prompt_toolkit.enums import EditingMode

        if self._history_of is not self.controller.active:
            self.prompt_session = self._prompt_session()
        settings = self.controller.settings
        self.prompt_session.editing_mode = EditingMode.VI if settings["edit_mode"] == "vi" else EditingMode.EMACS
        self.prompt_session.bottom_toolbar = self._toolbar if settings["toolbar"] else None
        typing = bool(settings["complete_while_typing"])
        self.prompt_session.complete_while_typing = typing
        # prompt_toolkit turns completion while typing off while Up searches
        # by prefix: with completion while typing, Up just walks the history.
        self.prompt_session.enable_history_search = not typing
        if self._theme is None:
            return  # the first prompt is drawn without one (see _after_drawing)
        if self._theme[0] != settings["theme"]:
            self._use_theme(settings["theme"], warn=self.renderer.warning)
        self.prompt_session.style = self._theme[1]

    def _use_theme(self, theme: str, *, warn: Callable[[str], Any]) -> None:
        """pygments' style `theme` for the prompt (about 5 ms to load)."""
        from prompt_toolkit.styles.pygments import style_from_pygments_cls
        from pygments.styles import get_style_by_name
        from pygments.util import ClassNotFound

        try:
            style = get_style_by_name(theme)
        except ClassNotFound:  # from a file: not checked when read, to keep scripts quick
            warn(f"no colour theme named {theme!r} (:set theme lists them); using the default")
            style = get_style_by_name("default")
        self._theme = (theme, style_from_pygments_cls(style))
        self.prompt_session.style = self._theme[1]

    def _ask_secret(self, label: str) -> str:
        # getpass turns the terminal's echo off, which prompt_toolkit cannot
        # do on a dumb terminal (it would show the value).
        import getpass

        try:
            return getpass.getpass(label)
        except (EOFError, KeyboardInterrupt):
            return ""

    def _confirm(self, question: str) -> bool:
        from prompt_toolkit import prompt

        try:
            return prompt(question).strip().lower() in ("y", "yes")
        except (EOFError, KeyboardInterrupt):
            return False

    # -- presentation ---------------------------------------------------------------

    def _toolbar(self) -> str:
        attachment = self.controller.attachment
        info = attachment.connection.info if attachment is not None else None
        if attachment is None:
            where = "no image"
        else:
            where = "embedded image" if attachment.embedded else attachment.connection.address
        image = f"{info.version} ({where})" if info else where
        active = self.controller.active
        session = f" · session {active.name}{'*' if active.dirty else ''}" if active else ""
        return f" {image}{session} · {self.supervisor.describe()} · :help · Ctrl-D quits "

    def _greet(self) -> None:
        """One line; the image's defects get one line more the first time stui meets its kind."""
        info = self.connection.info
        image = f"{info.version}" if info else "an image"
        attachment = self.controller.attachment
        where = "embedded" if attachment is not None and attachment.embedded else self.connection.address
        active = self.controller.active
        session = f", session {active.name}" if active else ""
        self.renderer.info(f"stui {__version__} on {image} ({where}{session}). :help for help, Ctrl-D to quit.")
        if info and info.defects and first_meeting(info):
            worked_around = sum(1 for d in info.defects if d.get("workedAround"))
            self.renderer.info(
                f"this image has {len(info.defects)} known defects, {worked_around} worked around (:defects lists them)"
            )

    def _show(self, unit: scanner.Unit, result: EvalResult, source: str) -> None:
        if result.defined:
            self.renderer.info("defined " + ", ".join(result.defined))
        if result.ok:
            if unit.kind != "statement":
                return
            if self._tall(result):
                self.renderer.page(lambda: self.renderer.value(result), command=_pager_command())
            else:
                self.renderer.value(result)
            return
        assert result.error is not None
        self.context.last_error = result.error
        if not result.error.reported:
            self.renderer.error(result.error)
        self._point_at(result.error, source)

    def _tall(self, result: EvalResult) -> bool:
        """Taller than the screen, and a pager is wanted and possible."""
        if self.controller.settings["pager"] != "auto" or not self.renderer.console.is_terminal:
            return False
        text = (result.value or "") + f"  {result.value_class or ''}"
        return self.renderer.height_of(text) > self.renderer.console.height - 2

    # -- what the image does meanwhile ------------------------------------------------

    def _on_event(self, event: wire.Event) -> None:
        """Output and errors, from whichever thread read them: straight to the
        terminal while the REPL waits for an evaluation, above the prompt (the
        line being typed survives) while the person types."""
        if self.supervisor.idle and threading.current_thread() is not threading.main_thread():
            app = self.prompt_session.app
            if app.is_running and app.loop is not None:
                from prompt_toolkit.application import run_in_terminal

                app.loop.call_soon_threadsafe(lambda: run_in_terminal(lambda: self._show_event(event, above_prompt=True)))
                return
        self._show_event(event)

    def _show_event(self, event: wire.Event, *, above_prompt: bool = False) -> None:
        if event.kind == "output":
            self.renderer.output(event.text, event.stream)
            if above_prompt:
                self.renderer.end_line()  # the prompt comes back on a line of its own
        elif event.kind == "error" and event.error is not None:
            self.context.last_error = event.error
            self.renderer.error(event.error)

    def _listen(self) -> None:
        """While the prompt waits, read what the image sends (a process an
        earlier evaluation forked may print at any time)."""
        while not self._stopping:
            attachment = self.controller.attachment
            if attachment is None or not self.supervisor.idle:
                time.sleep(0.05)
                continue
            connection = attachment.connection
            try:
                readable, _, _ = select.select([connection.fileno()], [], [], 0.1)
                if readable and self.supervisor.idle and not connection.read_available():
                    time.sleep(0.02)  # another thread holds it (a ping): it reads for us
            except (OSError, ValueError, StuiError):
                time.sleep(0.25)  # a lost connection is the supervisor's to notice

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

    def _ready(self) -> bool:
        """Is there an image to evaluate in? Waits for a reconnection under way."""
        if self.supervisor.state == RECONNECTING:
            self.renderer.info("waiting for the image to come back (Ctrl-C stops waiting)…")
            try:
                self.supervisor.wait_until_settled()
            except KeyboardInterrupt:
                return False
        if self.supervisor.state == UNREACHABLE:
            self.renderer.problem("not connected to an image: :session reconnect tries again, :q leaves")
            return False
        return True

    def evaluate(self, text: str) -> None:
        if not self._ready():
            return
        patience = float(self.controller.settings["heartbeat_timeout"])
        for unit in self.evaluator.units_for_input(text):
            if unit.kind == "meta":
                REGISTRY.run(self.context, unit.code)
                if self.context.quit_requested:
                    return
                continue
            try:
                result = self.evaluator.evaluate_unit(
                    unit, on_interrupt=lambda: self.renderer.info("interrupting…"), patience=patience, defined=True,
                    debug=self._debuggable(),
                )
            except ConnectionLost as exc:
                raise EvaluationLost(str(exc)) from None
            self.controller.record(unit, result)
            self._show(unit, result, text)
            if not result.ok:
                break
        self.controller.take_code()

    def _debuggable(self) -> bool:
        """Whether the image keeps a failed evaluation for :debug (an older server does not)."""
        info = self.connection.info
        return info is not None and "debug" in info.ops

    def _notify(self, text: str) -> None:
        """A notice from any thread: printed above the prompt when one is shown."""
        app = self.prompt_session.app
        if app.is_running and app.loop is not None and threading.current_thread() is not threading.main_thread():
            from prompt_toolkit.application import run_in_terminal

            app.loop.call_soon_threadsafe(lambda: run_in_terminal(lambda: self.renderer.warning(text)))
        else:
            self.renderer.warning(text)

    def _redraw(self) -> None:
        app = self.prompt_session.app
        if app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(app.invalidate)

    def run(self) -> int:
        self._greet()
        restored = self.controller.last_restore
        if restored is not None and not restored.problems and restored.summary():
            self.renderer.info(restored.summary() or "")
        self.controller.notify = self._notify
        self.controller.show_events(self._on_event)
        self.supervisor.start()
        self._stopping = False
        listener = threading.Thread(target=self._listen, name="stui-listener", daemon=True)
        listener.start()
        try:
            return self._loop()
        finally:
            self._stopping = True
            self.supervisor.stop()

    def _loop(self) -> int:
        while not self.context.quit_requested:
            self._apply_settings()
            self.supervisor.idle = True
            try:
                text = self.prompt_session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            finally:
                self.supervisor.idle = False
            if not text.strip():
                continue
            try:
                if text.lstrip().startswith(":") and "\n" not in text.strip():
                    REGISTRY.run(self.context, text.strip())
                else:
                    self.evaluate(text)
                self.controller.autosave()
            except EvaluationLost as exc:
                self.renderer.problem(f"{exc}: the result of that evaluation is unknown, and it is not run again")
                self.supervisor.lost("the connection to the image broke")
            except ConnectionLost as exc:
                self.supervisor.lost(str(exc))
            except KeyboardInterrupt:  # during a meta-command (:connect, :session switch...): it is cancelled
                self.renderer.info("interrupted")
        return EXIT_OK


def _pager_command() -> str:
    import shutil

    return os.environ.get("PAGER") or ("less" if shutil.which("less") else "more")


def first_meeting(info: wire.ServerInfo) -> bool:
    """Whether stui has not yet told this person about this kind of image's
    defects (it remembers the kinds it told about, in its state directory)."""
    key = f"{info.dialect} {info.version}: " + " ".join(sorted(str(d.get("id")) for d in info.defects))
    noted = paths.state_dir() / "noted-defects"
    try:
        known = noted.read_text().splitlines()
    except OSError:
        known = []
    if key in known:
        return False
    try:
        trust.private_dir(noted.parent)
        fd = os.open(noted, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "a") as handle:
            handle.write(key + "\n")
    except (OSError, StuiError):  # a notice may be repeated; nothing else depends on this file
        pass
    return True


class EvaluationLost(ConnectionLost):
    """The link broke while an evaluation was under way."""
